"""Small statistics that laws, real-tree results and studies share: entropy regimes of rows, means in bins.

NumPy only.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SURPRISAL_BINS", "regime_of_rows", "binned_means"]

#: Bins (nats) of the surprisal -log p of the token that leads to a position: the edge into a tree node, or the
#: token taken just before a recorded position (``brw.laws.fitted.entropy_after_surprisal``).
SURPRISAL_BINS = (0.0, 0.05, 0.3, 1.0, 2.0, 4.0, math.inf)


def regime_of_rows(entropy: np.ndarray, regimes: int) -> np.ndarray:
    """The regime of each row: its entropy quantile bin.

    Parameters
    ----------
    entropy : numpy.ndarray
        Each row's recorded entropy.
    regimes : int
        Number of quantile bins.

    Returns
    -------
    numpy.ndarray
        int64 regime per row, 0 for the lowest entropies.
    """
    if regimes == 1:
        return np.zeros(entropy.size, dtype=np.int64)
    cuts = np.quantile(entropy, np.linspace(0, 1, regimes + 1)[1:-1])
    return np.searchsorted(cuts, entropy, side="right").astype(np.int64)


def binned_means(x: np.ndarray, y: np.ndarray, edges=SURPRISAL_BINS) -> list:
    """Mean of y over the bins [edges[i], edges[i + 1]) of x, with each bin's count.

    Parameters
    ----------
    x, y : float arrays of the same shape
    edges : increasing sequence of float

    Returns
    -------
    list of [mean or NaN, count], one per bin
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        at = (x >= lo) & (x < hi)
        n = int(at.sum())
        out.append([float(y[at].mean()) if n else math.nan, n])
    return out
