"""Figures: accepted(P) against log P with any bounds beside it. Files are written atomically."""

from __future__ import annotations

import numpy as np

from brw.files import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_frontier(result, path, curves: dict | None = None, title: str | None = None) -> None:
    """accepted(P) (mean and a 2-standard-error band) on a log-P axis, with named curves {name: (P, values)}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    P = result.P
    ax.plot(P, result.accepted, color="k", lw=2, label=f"optimal frontier ({result.replicates} trees)")
    if result.replicates > 1:
        ax.fill_between(P, result.accepted - 2 * result.stderr, result.accepted + 2 * result.stderr,
                        color="k", alpha=0.2, lw=0)
    for name, (x, y) in (curves or {}).items():
        ax.plot(x, y, lw=1.5, ls="--", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("P (draft nodes verified per step)")
    ax.set_ylabel("accepted tokens per step, E[X]")
    ax.set_title(title or f"{result.law}   mu = {result.mu:.3f}, mu2 = {result.mu2:.3f}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def finite(values) -> np.ndarray:
    """Values with non-finite entries as NaN (matplotlib leaves gaps)."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, np.nan)
