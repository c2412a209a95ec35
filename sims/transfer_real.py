"""Laws off their own genre and model, and what a user's own sampled trace predicts: writes
figures/transfer.{json,md} (``brw.studies.transfer``).

Every simulated law of ``brw compare``, fitted to each bundled trace (three genres of SmolLM2-135M and of
Gemma 3 270M), predicts every other genre's real trees (SmolLM2's P = 1024 trees, Gemma 3's P = 256 trees);
beside them the predictors that use only the target's own sampled trace, out of sample over its generations, and
that trace with another genre's greedy dynamics (its branches' effect on ``prefix:``).

    python sims/transfer_real.py                   # 2000 trees per law: about 20 minutes of one core
    python sims/transfer_real.py --replicates 200  # a quick look
"""

import argparse
import json
import time
from pathlib import Path

from brw import tables
from brw.files import write_text
from brw.studies.transfer import RESULTS, transfer

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--results", default=",".join(RESULTS))
    ap.add_argument("--out", type=Path, default=FIGURES)
    args = ap.parse_args(argv)
    t0 = time.process_time()
    res = transfer(args.results.split(","), replicates=args.replicates, seed=args.seed, folds=args.folds)
    d = {**res.to_dict(), "cpu_seconds": time.process_time() - t0}
    text = tables.transfer(d)
    write_text(args.out / "transfer.json", json.dumps(d, indent=1) + "\n")
    extra = "".join(f" --{k} {getattr(args, k)}" for k, v in (("replicates", 2000), ("seed", 0), ("folds", 4))
                    if getattr(args, k) != v)
    write_text(args.out / "transfer.md", "```\n" + text + f"\n```\n\n`python sims/transfer_real.py{extra}`\n")
    print(text)


if __name__ == "__main__":
    main()
