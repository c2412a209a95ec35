"""Record what the sweep layer costs (``brw.studies.sweep_bench``) under figures/, beside ``sims/bench.py``.

Writes figures/sweep_bench.json (the whole result: small-point overhead per split of the cores, large-point
share of the kernels' throughput locally and on a two-worker Dask LocalCluster, the targets, the load average)
and figures/sweep_bench.md (the printed tables).

    python sims/sweep_bench.py            # about 8 minutes on 2 quiet cores
    python sims/sweep_bench.py --quick    # small and once: a check that it runs (figures/sweep_bench_quick.*)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from brw import tables
from brw.files import write_text
from brw.studies.sweep_bench import sweep_bench

OUT = Path(__file__).resolve().parent.parent / "figures"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sweeps, one run each")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for sweep_bench.json and sweep_bench.md")
    args = ap.parse_args(argv)
    t0 = time.time()
    d = sweep_bench(quick=args.quick).to_dict()
    name = "sweep_bench_quick" if args.quick else "sweep_bench"
    d["command"] = "python sims/sweep_bench.py" + (" --quick" if args.quick else "")
    d["wall_seconds"] = time.time() - t0
    d["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = tables.sweep_bench(d)
    write_text(args.out / f"{name}.json", json.dumps(d, indent=1) + "\n")
    write_text(args.out / f"{name}.md", f"Produced by `{d['command']}` on {d['date_utc']}.\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
