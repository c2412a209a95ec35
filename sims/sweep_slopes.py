"""The slope of accepted(P) against log P, per law, from a sweep's table (sims/sweep-example.toml).

For each law and each sweep seed (an independent batch of trees) a least-squares line accepted = a + b log P
over the sweep's P values; the slope is the mean of the batches' b and its standard error their spread. Beside
it: 1/mu (the sharp asymptotic's slope), the slope of the renewal bound over the same P (theory rows) and the
paper's (mu + mu2) / mu^2. Writes figures/sweep_slopes.{md,json}.

    brw sweep sims/sweep-example.toml --out out/slopes
    python sims/sweep_slopes.py out/slopes
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from brw.files import write_text

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def slope(P, y) -> float:
    return float(np.polyfit(np.log(np.asarray(P, dtype=float)), np.asarray(y, dtype=float), 1)[0])


def slopes(df: pd.DataFrame) -> list[dict]:
    """One dict per law: mu, mu2, the measured slope and its standard error, and the predicted slopes."""
    front = df[(df.kind == "frontier") & df.error.isna()]
    theory = df[(df.kind == "theory") & df.error.isna()]
    rows = []
    for law, g in front.groupby("law", sort=False):
        batches = [slope(b.P, b.accepted) for _, b in g.groupby("sweep_seed")]
        mu, mu2 = float(g.mu.iloc[0]), float(g.mu2.iloc[0])
        b = float(np.mean(batches))
        se = float(np.std(batches, ddof=1) / math.sqrt(len(batches))) if len(batches) > 1 else math.nan
        t = theory[theory.law == law].sort_values("P")
        renewal = slope(t.P, t.renewal_bound) if len(t) > 1 else math.nan
        rows.append({"law": law, "mu": mu, "mu2": mu2, "P": [int(g.P.min()), int(g.P.max())],
                     "batches": len(batches), "trees": int(g.replicates.iloc[0]) * len(batches),
                     "slope": b, "stderr": se, "inverse_mu": 1 / mu, "slope_times_mu": b * mu,
                     "renewal_slope": renewal, "paper_slope": (mu + mu2) / mu**2})
    return rows


def markdown(rows: list[dict]) -> str:
    lo, hi = rows[0]["P"]
    lines = [f"# Slope of accepted(P) against log P, P = {lo} .. {hi} ({rows[0]['trees']} trees per law in "
             f"{rows[0]['batches']} batches)", "",
             "| law | mu | slope (+- se) | 1/mu | slope x mu | renewal bound's slope | (slope - renewal) / se "
             "| paper's (mu+mu2)/mu^2 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['law']}` | {r['mu']:.3f} | {r['slope']:.5f} +- {r['stderr']:.5f} | "
                     f"{r['inverse_mu']:.5f} | {r['slope_times_mu']:.4f} | {r['renewal_slope']:.5f} | "
                     f"{(r['slope'] - r['renewal_slope']) / r['stderr']:+.1f} | {r['paper_slope']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", help="the folder of a finished sweep (its results.parquet)")
    ap.add_argument("--out", default=str(FIGURES / "sweep_slopes"), help="path without suffix (.json, .md added)")
    args = ap.parse_args()
    rows = slopes(pd.read_parquet(Path(args.sweep) / "results.parquet"))
    write_text(args.out + ".json", json.dumps(rows, indent=1) + "\n")
    write_text(args.out + ".md", markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
