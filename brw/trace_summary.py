"""What ``brw trace-info`` reports about a trace: bootstrap intervals of its means, its entropy histogram, the
share of rows whose tail the ``trace:`` law fits exactly. Its table is ``brw.tables.trace_info`` and its figure
``brw.figures.trace_summary``."""

from __future__ import annotations

import math

import numpy as np

from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.limits import require
from brw.tailfit import TAIL_GROUPS, fit_tails
from brw.traces import FORMAT, SCHEMA_VERSION, Trace

__all__ = ["bootstrap_means", "entropy_histogram", "trace_summary"]


def bootstrap_means(values: np.ndarray, context: np.ndarray, replicates: int = 1000, seed: int = 0,
                    level: float = 0.95):
    """Percentile bootstrap interval for the mean over positions, resampling whole contexts (positions of one
    context are not independent).

    Parameters
    ----------
    values : array of shape (N,)
        One value per position.
    context : int array of shape (N,)
        The context of each position.
    replicates : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the interval.

    Returns
    -------
    lo, hi : float
        The interval's ends (both the mean when there is a single context).
    """
    replicates = whole_number(replicates, "replicates")
    seed = whole_number(seed, "seed", 0)
    ctx = np.asarray(context, dtype=np.int64)
    uniq, inv = np.unique(ctx, return_inverse=True)
    c = uniq.shape[0]
    require("replicates", replicates, lambda r: _resampling_bytes(r, c), what=f"a bootstrap over {c} contexts")
    sums = np.bincount(inv, weights=values, minlength=c)
    counts = np.bincount(inv, minlength=c).astype(np.float64)
    if c < 2:
        m = float(sums.sum() / counts.sum())
        return m, m
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    idx = rng.integers(0, c, size=(replicates, c))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


#: Most bins of an entropy histogram.
MAX_BINS = 10**6


def _resampling_bytes(replicates: int, contexts: int) -> float:
    """The bootstrap's peak: the resampled context indices, their sums and counts, and the means."""
    return replicates * (24.0 * contexts + 8.0)


def entropy_histogram(entropy: np.ndarray, width: float = 0.5):
    """Histogram of the entropies in bins of ``width`` nats from 0.

    Parameters
    ----------
    entropy : array of shape (N,)
        Entropies (nats).
    width : float
        Bin width (nats).

    Returns
    -------
    edges : array of shape (B + 1,)
        Bin edges, from 0.
    counts : int array of shape (B,)
        Positions per bin.
    """
    entropy = np.asarray(entropy, dtype=np.float64)
    if entropy.ndim != 1 or entropy.size == 0 or not np.all(np.isfinite(entropy)) or np.any(entropy < 0):
        raise BrwError("entropy must be a non-empty vector of finite numbers >= 0")
    if not (isinstance(width, (int, float, np.integer, np.floating)) and math.isfinite(width) and width > 0):
        raise BrwError(f"width must be a finite number > 0, got {clip(repr(width), 40)}")
    top = max(float(np.max(entropy)), width)
    if top / width > MAX_BINS:
        raise BrwError(f"an entropy histogram of width={width:g} up to {top:g} nats has {top / width:.3g} bins, "
                       f"more than {MAX_BINS}: at least width={top / MAX_BINS:.3g} fits")
    nb = int(math.ceil(top / width + 1e-12))
    edges = np.arange(nb + 1) * width
    counts, _ = np.histogram(entropy, bins=edges)
    return edges, counts


def trace_summary(trace: Trace, *, bootstrap: int = 1000, seed: int = 0) -> dict:
    """What ``brw trace-info`` reports.

    Parameters
    ----------
    trace : Trace
        A validated trace.
    bootstrap : int
        Bootstrap resamples for the intervals of mu and mu2.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        JSON-ready: sizes, metadata, mu and mu2 with 95% intervals (and brackets for imported traces), the
        entropy histogram, and how exactly the ``trace:`` law fits the rows' tails.
    """
    bootstrap = whole_number(bootstrap, "bootstrap")
    seed = whole_number(seed, "seed", 0)
    require("bootstrap", bootstrap, lambda r: _resampling_bytes(r, trace.contexts),
            what=f"bootstrap intervals over the {trace.contexts} contexts of {trace.path or 'the trace'}")
    top1 = np.exp(trace.top_logp[:, 0].astype(np.float64))
    edges, counts = entropy_histogram(trace.entropy)
    meta = trace.meta
    d = {
        "file": trace.path, "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "model": meta.get("model"), "mode": meta.get("mode"), "temperature": meta.get("temperature"),
        "vocab_size": meta.get("vocab_size"), "k": trace.k, "positions": trace.positions,
        "contexts": trace.contexts,
        "mu": trace.mu, "mu_ci": list(bootstrap_means(trace.entropy, trace.context, bootstrap, seed)),
        "mu2": trace.mu2, "mu2_ci": list(bootstrap_means(trace.log_moment2, trace.context, bootstrap, seed)),
        "ci_level": 0.95, "bootstrap": bootstrap, "seed": seed,
        "top1_above_0_9": float(np.mean(top1 > 0.9)),
        "mean_tail_mass": float(np.mean(trace.tail_mass)),
        "mean_nll_taken": float(-np.mean(trace.taken_logp)),
        "entropy_hist_edges": edges.tolist(), "entropy_hist_counts": counts.tolist(),
        "meta": meta,
    }
    if trace.brackets:
        b = trace.brackets
        d["mu_bracket"] = [float(np.mean(b["entropy_lo"])), float(np.mean(b["entropy_hi"]))]
        d["mu2_bracket"] = [float(np.mean(b["log_moment2_lo"])), float(np.mean(b["log_moment2_hi"]))]
    tails, exact, err_h, err_s = fit_tails(trace.top_logp, trace.entropy, trace.log_moment2)
    d["tail_groups"] = TAIL_GROUPS
    d["tail_exact_share"] = float(np.mean(exact))
    d["law_mu_minus_mu"] = float(np.mean(err_h))
    d["law_mu2_minus_mu2"] = float(np.mean(err_s))
    return d
