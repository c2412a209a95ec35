"""The slope of accepted(P) against log P per law, from the example sweep (``brw.studies.sweep_slopes``).

Writes figures/sweep_slopes.{md,json}.

    brw sweep sims/sweep-example.toml --out out/slopes
    python sims/sweep_slopes.py out/slopes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from brw import tables
from brw.files import write_text
from brw.studies.sweep_slopes import sweep_slopes

OUT = Path(__file__).resolve().parent.parent / "figures"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path, help="the folder of a finished sweep (its results.parquet)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for sweep_slopes.json and sweep_slopes.md")
    args = ap.parse_args(argv)
    d = sweep_slopes(pd.read_parquet(args.sweep / "results.parquet")).to_dict()
    text = tables.sweep_slopes(d)
    write_text(args.out / "sweep_slopes.json", json.dumps(d, indent=1) + "\n")
    write_text(args.out / "sweep_slopes.md", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
