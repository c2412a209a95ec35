"""Record the kernel benchmark (``brw bench``, ``brw.studies.bench``) under figures/, so that a speed regression shows in review.

Writes figures/bench.json (the whole result: rates on 1 and 2 threads, CPU-time rates, ratios, the large tree's
bytes per node, start-up times, the targets, the load average while it ran) and figures/bench.md
(the printed table). The machine is shared: rates move with the load, ratios measured in one run much less.

    python sims/bench.py            # the full benchmark (a few minutes; the empty-cache start-up compiles)
    python sims/bench.py --quick    # small sizes, no start-up timings (seconds; a smoke test)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from brw import tables
from brw.files import write_text
from brw.studies.bench import bench

OUT = Path(__file__).resolve().parent.parent / "figures"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, no start-up timings")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for bench.json and bench.md")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.quick:
        d = bench(pmax=5_000, replicates=4, reference_nodes=500, repeats=2, big_nodes=100_000,
                  startup_runs=False).to_dict()
        name = "bench_quick"
    else:
        d = bench().to_dict()
        name = "bench"
    d["command"] = "python sims/bench.py" + (" --quick" if args.quick else "")
    d["wall_seconds"] = time.time() - t0
    d["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = tables.bench(d)
    write_text(args.out / f"{name}.json", json.dumps(d, indent=1, allow_nan=True) + "\n")
    write_text(args.out / f"{name}.md", f"Produced by `{d['command']}` on {d['date_utc']}.\n\n```\n{text}\n```\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
