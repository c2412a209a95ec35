"""Does accepted(P) grow like log(P) / mu? The slope of accepted(P) against log P, per law, from a sweep's table.

For each law and each sweep seed (an independent batch of trees: the P values of one batch share their trees) a
least-squares line accepted = a + b log P over the sweep's P values; the slope is the mean of the batches' b
and its standard error their spread. Beside it: 1/mu (the sharp asymptotic's slope), the slope of the renewal
bound over the same P (the sweep's theory rows) and the paper's (mu + mu2) / mu^2. The sweep is
``sims/sweep-example.toml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from brw._version import __version__
from brw.results import Result

__all__ = ["sweep_slopes", "SweepSlopes"]


@dataclass(frozen=True)
class SweepSlopes(Result):
    """One dict per law (``laws``): ``law``, ``mu``, ``mu2``, ``P`` (first and last), ``batches``, ``trees``,
    ``slope``, ``stderr``, ``inverse_mu``, ``slope_times_mu``, ``renewal_slope``, ``paper_slope``."""

    laws: list
    version: str = __version__

    def _tidy(self) -> dict:
        return {k: [r[k] for r in self.laws] for k in self.laws[0]} if self.laws else {}


def _slope(P, y) -> float:
    return float(np.polyfit(np.log(np.asarray(P, dtype=float)), np.asarray(y, dtype=float), 1)[0])


def sweep_slopes(df) -> SweepSlopes:
    """The slope of accepted(P) against log P per law, beside its predictions.

    Parameters
    ----------
    df : pandas.DataFrame
        A sweep's table with frontier rows (several sweep seeds give the slope a standard error) and, for the
        renewal bound's slope, theory rows at the same P.

    Returns
    -------
    SweepSlopes
        One dict per law, in the table's order.
    """
    front = df[(df.kind == "frontier") & df.error.isna()]
    theory = df[(df.kind == "theory") & df.error.isna()]
    rows = []
    for law, g in front.groupby("law", sort=False):
        batches = [_slope(b.P, b.accepted) for _, b in g.groupby("sweep_seed")]
        mu, mu2 = float(g.mu.iloc[0]), float(g.mu2.iloc[0])
        b = float(np.mean(batches))
        se = float(np.std(batches, ddof=1) / math.sqrt(len(batches))) if len(batches) > 1 else math.nan
        t = theory[theory.law == law].sort_values("P")
        renewal = _slope(t.P, t.renewal_bound) if len(t) > 1 else math.nan
        rows.append({"law": law, "mu": mu, "mu2": mu2, "P": [int(g.P.min()), int(g.P.max())],
                     "batches": len(batches), "trees": int(g.replicates.iloc[0]) * len(batches),
                     "slope": b, "stderr": se, "inverse_mu": 1 / mu, "slope_times_mu": b * mu,
                     "renewal_slope": renewal, "paper_slope": (mu + mu2) / mu**2})
    return SweepSlopes(rows)
