"""Every figure of the package, drawn with one matplotlib set-up and written one way.

A figure is written whole or not at all (``brw.files.atomic_path``) as PNG, PDF or SVG, chosen by the file's
suffix; a missing folder is created. ``check_path`` says before any work whether a path can take a figure, so
that a long computation never ends on a bad name. Every drawing function returns the path it wrote.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from brw.errors import BrwError, clip
from brw.files import atomic_path, check_writable

__all__ = ["SUFFIXES", "check_path", "frontier", "compare", "depth_gap", "trace_summary", "theory_bounds",
           "theory_residuals", "speedup"]

#: The file types a figure may be written as.
SUFFIXES = (".png", ".pdf", ".svg")
#: Resolution of raster (PNG) figures.
DPI = 120


def check_path(path) -> Path:
    """Check that a figure can be written to ``path``, before any work is done.

    Parameters
    ----------
    path : str or os.PathLike
        The figure file: its suffix picks the format. Folders that do not exist yet are created on writing.

    Returns
    -------
    pathlib.Path
        ``path`` as a Path.

    Raises
    ------
    BrwError
        If the suffix is not .png, .pdf or .svg, the path is a folder, or its nearest existing parent is not a
        folder this process may write in.
    """
    text = os.fspath(path)
    shown = repr(clip(text, 120))
    path = Path(text)
    if path.suffix.lower() not in SUFFIXES or text.endswith(("/", os.sep)):
        raise BrwError(f"cannot write a figure to {shown}: give a file name ending in "
                       f"{', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]}")
    if path.is_dir():
        raise BrwError(f"cannot write a figure to {shown}: it is a folder")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise BrwError(f"cannot write a figure to {shown}: {str(parent)!r} is not a folder this process may "
                       "write in")
    check_writable(parent, f"cannot write a figure to {shown}")  # os.access says yes to root on /sys
    return path


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg canvas: the one set-up of every figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> str:
    """Write ``fig`` to ``path`` (format from the suffix) whole or not at all, and close it."""
    plt = _pyplot()
    path = check_path(path)
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, dpi=DPI, format=path.suffix[1:].lower())
    finally:
        plt.close(fig)
    return str(path)


def _log2_axis(ax, xlabel: str, ylabel: str | None = None) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def frontier(result, path, *, bounds: bool = False, title: str | None = None) -> str:
    """accepted(P) of a frontier result on a log-P axis, with its 2-standard-error band and the bounds.

    Parameters
    ----------
    result : FrontierResult
        The simulated frontier (``brw.frontier.frontier``).
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).
    bounds : bool, optional
        Also draw, dashed, every bound of ``brw.theory.BOUND_KEYS`` (on 48 values of P).
    title : str, optional
        Defaults to the law with its mu and mu2.

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    P = result.P
    ax.plot(P, result.accepted, color="k", lw=2, label=f"optimal frontier ({result.replicates} trees)")
    if result.replicates > 1:
        ax.fill_between(P, result.accepted - 2 * result.stderr, result.accepted + 2 * result.stderr,
                        color="k", alpha=0.2, lw=0)
    if bounds:
        from brw import theory

        grid = theory.bounds(result.law, np.unique(np.geomspace(1, result.pmax, 48).astype(np.int64)))
        for key in theory.BOUND_KEYS:
            ax.plot(grid.P, getattr(grid, key), lw=1.5, ls="--", label=key.replace("_", " "))
    _log2_axis(ax, "P (draft nodes verified per step)", "accepted tokens per step, E[X]")
    ax.set_title(title or f"{result.law}   mu = {result.mu:.3f}, mu2 = {result.mu2:.3f}")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def compare(comparison, path) -> str:
    """One panel per genre of a comparison (``brw compare``): the real curve with its band, and every model.

    Parameters
    ----------
    comparison : brw.studies.compare.Comparison
        The comparison.
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).

    Returns
    -------
    str
        The path written.
    """
    from brw.studies.compare import MODELS, THEORY_MODELS

    plt = _pyplot()
    genres = comparison.genres
    fig, axes = plt.subplots(1, len(genres), figsize=(4.2 * len(genres), 4.2), squeeze=False)
    P = np.arange(1, comparison.pmax + 1)
    for ax, (name, g) in zip(axes[0], genres.items()):
        ax.plot(P, g.real, color="k", lw=2.2, label="real optimal tree")
        ax.fill_between(P, g.real - 2 * g.real_stderr, g.real + 2 * g.real_stderr, color="k", alpha=0.18, lw=0)
        for m, label in MODELS.items():
            ax.plot(P, g.predictions[m][0], lw=1.3, ls="--" if m in THEORY_MODELS else "-", label=label)
        _log2_axis(ax, "P")
        ax.set_ylim(0, max(g.real.max() * 1.6, 1.0))
        ax.set_title(f"{name} ({g.contexts} contexts)")
    axes[0][0].set_ylabel("accepted tokens per step")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Real optimal trees ({comparison.model}) against every model", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def depth_gap(comparison, nodes: dict, path) -> str:
    """Where real trees' extra depth comes from: per genre, the gap real - i.i.d. walk at the table's P split
    into what per-context laws (``ctx``), recorded paths (``path``) and nothing yet explain; beside it, the
    mean entropy of real tree nodes by depth against each trace's mu.

    Parameters
    ----------
    comparison : brw.studies.compare.Comparison
    nodes : dict
        ``brw.realtree.node_statistics`` of the same real trees.
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    names = [n for n in comparison.genres if n != "all"]
    fig, (bar, ent) = plt.subplots(1, 2, figsize=(11, 4.2))
    P = comparison.P
    width = 0.8 / len(P)
    top = 0.0
    parts = (("contexts", "contexts differ (ctx - i.i.d.)", "C0"), ("paths", "along paths (path - ctx)", "C2"),
             ("unexplained", "unexplained (real - path)", "0.6"))
    for k, p in enumerate(P):
        dec = {n: comparison.genres[n].decomposition([p]) for n in names}
        x = np.arange(len(names)) + (k - (len(P) - 1) / 2) * width
        pos, neg = np.zeros(len(names)), np.zeros(len(names))
        for key, label, color in parts:
            v = np.array([dec[n][key][0] for n in names])
            base = np.where(v >= 0, pos, neg)
            bar.bar(x, v, width * 0.9, bottom=base, color=color, label=label if k == 0 else None,
                    edgecolor="k", lw=0.4)
            pos, neg = pos + np.maximum(v, 0), neg + np.minimum(v, 0)
        gap = np.array([dec[n]["gap"][0] for n in names])
        top = max(top, gap.max(), pos.max())
        bar.plot(x, gap, "k_", ms=12, mew=2, label="real - i.i.d. walk" if k == 0 else None)
        for xi in x:
            bar.text(xi, 0, f"{p}", ha="center", va="top", fontsize=6, rotation=90)
    bar.axhline(0, color="k", lw=0.6)
    bar.set_xticks(np.arange(len(names)), names)
    bar.set_ylabel("extra accepted tokens per step over the i.i.d. walk")
    bar.set_title(f"the gap at P = {', '.join(map(str, P))} (bars left to right)", fontsize=9)
    bar.set_ylim(top=1.45 * max(top, 0.1))  # room for the legend above the bars
    bar.legend(fontsize=7, loc="upper right")
    for j, n in enumerate(names):
        by = nodes.get(n, {}).get("entropy_by_depth") or []
        if by:
            ent.plot(np.arange(1, len(by) + 1), by, color=f"C{j}", label=f"{n}: real tree nodes")
            ent.axhline(comparison.genres[n].mu, color=f"C{j}", ls="--", lw=1, label=f"{n}: trace mu")
    ent.set_xlabel("depth in the real optimal tree")
    ent.set_ylabel("mean next-token entropy (nats)")
    ent.set_title("nodes deep in real trees have low entropy", fontsize=9)
    ent.legend(fontsize=7)
    model = str(comparison.model).split(" (")[0]
    fig.suptitle(f"Why real optimal trees of {model} are deeper than the i.i.d. walk predicts (out of sample, "
                 f"{comparison.folds}-fold)" if comparison.folds > 1 else
                 f"Why real optimal trees of {model} are deeper than the i.i.d. walk predicts", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def trace_summary(entropy, d: dict, path) -> str:
    """A trace's entropy histogram (``brw trace-info``), its mean marked.

    Parameters
    ----------
    entropy : numpy.ndarray
        Entropy of every position of the trace, in nats.
    d : dict
        ``brw.traces.trace_summary``'s result (bins, mean, file, sizes).
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(entropy, bins=np.asarray(d["entropy_hist_edges"]), color="0.6", edgecolor="0.3")
    ax.axvline(d["mu"], color="C3", label=f"mu = {d['mu']:.3f} nats")
    ax.set_xlabel("entropy of the next-token distribution (nats)")
    ax.set_ylabel("positions")
    name = Path(d["file"]).name if d["file"] else "trace"
    ax.set_title(f"{name}: {d['positions']} positions, {d['contexts']} contexts", fontsize=10)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def theory_bounds(check, path) -> str | None:
    """accepted(P) of the theory check's ``PLOTTED`` laws beside every bound, one panel per law.

    Parameters
    ----------
    check : brw.studies.theory_check.TheoryCheck
        The check, with its measured curves.
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).

    Returns
    -------
    str or None
        The path written; None (nothing written) when the check measured none of the plotted laws.
    """
    from brw import theory as T
    from brw.studies.theory_check import PLOTTED

    specs = [s for s in PLOTTED if s in check.measured]
    if not specs:
        return None
    plt = _pyplot()
    pmax = check.P_max
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), squeeze=False)
    grid = np.unique(np.round(np.logspace(0, math.log2(pmax), 80, base=2)).astype(int))
    for ax, spec in zip(axes.flat, specs):
        m = check.measured[spec]
        law, P, acc, se = m.law, m.P, m.accepted, m.accepted_stderr
        trees = f"{m.replicates} tree" + ("s" if m.replicates > 1 else "")
        ax.plot(P, acc, "k", lw=2.2, label=f"accepted (simulated, {trees})")
        if not law.deterministic:
            ax.fill_between(P, acc - 2 * se, acc + 2 * se, color="k", alpha=0.2, lw=0)
        ax.plot(grid, T.bounds(law, grid).renewal_bound, "C0-", lw=1.2, label="renewal bound (identity 6)")
        ax.plot(P, T.asymptotic(law, P), "C1--", lw=1.2, label="sharp asymptotic")
        if law.lattice_span > 0:
            h = law.lattice_span / (2 * law.mu)
            ax.plot(P, T.smooth_asymptotic(law, P) + h, "C1:", lw=1.2, label="smooth + h/(2 mu)")
        wald_lorden = T.wald_lorden_bound(law, P)
        ax.plot(P, wald_lorden, "C2-.", lw=1.2, label="Wald-Lorden")
        ax.plot(P, T.paper_bound(law, P), "C3-", lw=1.2, label="paper (mu+mu2) log P / mu^2")
        _log2_axis(ax, "P (draft nodes)", "accepted E[X]")
        ax.set_ylim(0, 1.15 * max(wald_lorden[-1], acc[-1]))
        ax.set_title(f"{law}   mu={law.mu:.3f} mu2={law.mu2:.3f}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(specs):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def theory_residuals(check, path) -> str:
    """Sharp asymptotic minus accepted(P) for every law of the theory check: random laws (2-standard-error
    bands) and deterministic laws (exact) side by side.

    Parameters
    ----------
    check : brw.studies.theory_check.TheoryCheck
        The check, with its measured curves.
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).

    Returns
    -------
    str
        The path written.
    """
    from brw import theory as T

    from brw.studies.theory_check import FIT_FROM

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for ax, random in zip(axes, (True, False)):
        for i, (spec, m) in enumerate(check.measured.items()):
            if m.law.deterministic == random:
                continue
            w = m.P >= FIT_FROM
            P = m.P[w]
            err = T.asymptotic(m.law, P) - m.accepted[w]
            ax.plot(P, err, lw=1.2, color=f"C{i % 10}", ls="-" if i < 10 else "--",
                    label=f"{spec} (mu={m.law.mu:.2f})")
            if random:  # 2 standard errors of the simulated mean
                band = 2 * m.accepted_stderr[w]
                ax.fill_between(P, err - band, err + band, color=f"C{i % 10}", alpha=0.10, lw=0)
        ax.axhline(0, color="k", lw=0.8)
        _log2_axis(ax, "P (draft nodes)", "sharp asymptotic - accepted")
        ax.set_title("random laws (bands: 2 standard errors)" if random else "deterministic laws (exact)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2)
    fig.tight_layout()
    return _save(fig, path)


def speedup(result, path) -> str:
    """tokens/s against P at a verifier cost: the optimal frontier (the speed of light) and each policy, with
    each curve's optimum marked and plain decoding as a horizontal line.

    Parameters
    ----------
    result : Speedup
        ``brw.speedup.speedup(...)``.
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    P = np.arange(1, result.pmax + 1)
    rate = result.tokens_per_second
    band = 2 * result.stderr / result.step_seconds
    ax.plot(P, rate[1:], color="k", lw=2, label=f"optimal frontier ({result.replicates} trees)")
    ax.fill_between(P, (rate - band)[1:], (rate + band)[1:], color="k", alpha=0.2, lw=0)
    o = result.optimal_P
    if o > 0:
        ax.plot([o], [rate[o]], "o", color="k", ms=7)
    ax.axhline(result.plain_tokens_per_second, color="0.4", lw=1, ls=":", label="plain decoding")
    for spec, r in zip(result.policies, result.policy_tokens_per_second):
        ok = np.isfinite(r[1:])
        sparse = ok.sum() < 0.5 * ok.size  # scored at a few P only (Sequoia's trees): markers
        line = ax.plot(P[ok], r[1:][ok], "o-" if sparse else "-", ms=4, lw=1.2, label=spec)[0]
        best = int(np.nanargmax(r))
        if best > 0:
            ax.plot([best], [r[best]], "o", color=line.get_color(), ms=7, mfc="none")
    _log2_axis(ax, "P (draft nodes verified per step)", "tokens per second")
    ax.set_title(f"{result.law}   {result.cost}", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)

