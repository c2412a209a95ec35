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
           "theory_residuals", "speedup", "deployment", "accepted_bounds", "slopes", "traces", "policies", "sequoia",
           "speedups", "bench", "temperature"]

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


def _save(fig, path):
    """Write ``fig`` to ``path`` (format from the suffix) whole or not at all, and close it. ``path`` may be a
    list of paths (the same figure as PNG and SVG, say): then the list of paths written is returned."""
    plt = _pyplot()
    paths = [check_path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    try:
        for p in paths:
            with atomic_path(p, suffix=p.suffix) as tmp:
                fig.savefig(tmp, dpi=DPI, format=p.suffix[1:].lower())
    finally:
        plt.close(fig)
    return [str(p) for p in paths] if isinstance(path, (list, tuple)) else str(paths[0])


def _model_name(model) -> str:
    """A model's name without its file's details (``SmolLM2-135M-Instruct (Q4_1 GGUF ...)``: the part before)."""
    return str(model).split(" (")[0] if model else "the verifier"


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
        The simulated frontier (``brw.frontier``).
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


def compare(comparison, path, *, emphasised: int = 2, limit: float = 0.3) -> str:
    """One panel per genre of a comparison (``brw compare``): each simulated law's relative error against the
    adjusted real mean (``brw.real.realtree.root_adjusted_mean``; the plain one where there is none), against P,
    inside the real curve's 95% band.

    The band is the real mean's own 95% interval, +- Z95 se / real: a prediction inside it cannot be told from
    the real curve. The ``emphasised`` laws with the smallest mean absolute error over the table's P in the
    pooled genre are drawn thick, with their own 95% band (the prediction's standard error); the other laws thin;
    the renewal bound (c) dashed. Errors beyond +- ``limit`` are clipped to the frame (the paper's bound and the
    sharp asymptotics, far off, are in the table only). The legend sits below the panels.

    Parameters
    ----------
    comparison : brw.studies.compare.Comparison
        The comparison.
    path : str, os.PathLike or list of them
        Figure file(s) (.png, .pdf or .svg).
    emphasised : int, optional
        How many of the best laws to draw thick.
    limit : float, optional
        Half the height of the error axis (0.3: +-30%).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    from brw.studies.compare import MODELS, SIMULATORS, Z95

    plt = _pyplot()
    genres = comparison.genres
    d = comparison.to_dict(curves=False)["genres"]
    pooled = d["all"] if "all" in d else next(iter(d.values()))
    key = "adjusted" if "real_adjusted" in pooled else None
    score = {m: (pooled["models"][m][key] if key else pooled["models"][m])["mean_abs_relative_error"]
             for m in SIMULATORS}
    best = sorted(SIMULATORS, key=score.get)[:emphasised]
    ncol = min(len(genres), 4)
    nrow = math.ceil(len(genres) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.3 * nrow + 0.9), squeeze=False, sharey=True)
    P = np.arange(1, comparison.pmax + 1)
    handles = {}
    for ax, (name, g) in zip(axes.flat, genres.items()):
        adjusted = g.real_adjusted is not None
        real, real_se = (g.real_adjusted, g.real_adjusted_stderr) if adjusted else (g.real, g.real_stderr)
        band = Z95 * np.nan_to_num(real_se) / real
        handles["band"] = ax.fill_between(P, -band, band, color="0.82", lw=0,
                                          label=f"real mean's 95% band ({'adjusted' if adjusted else 'plain'})")
        ax.axhline(0, color="k", lw=0.8)
        for y in (-0.05, 0.05):
            handles["five"] = ax.axhline(y, color="k", lw=0.6, ls=":", label="+-5%")
        v = g.predictions["renewal_bound"][0]
        handles["renewal_bound"], = ax.plot(P, np.clip(v / real - 1, -limit, limit), color="0.4", lw=1.0, ls="--",
                                            label=MODELS["renewal_bound"])
        for i, m in enumerate(SIMULATORS):
            v, se = g.predictions[m]
            rel = np.clip(v / real - 1, -limit, limit)
            if m in best:
                handles[m], = ax.plot(P, rel, color=_COLOURS[4 + i], lw=2.2, label=MODELS[m] + " (best)", zorder=4)
                half = Z95 * se / real
                ax.fill_between(P, np.clip(rel - half, -limit, limit), np.clip(rel + half, -limit, limit),
                                color=_COLOURS[4 + i], alpha=0.2, lw=0, zorder=3)
            else:
                handles[m], = ax.plot(P, rel, color=_COLOURS[4 + i], lw=0.9, alpha=0.75, label=MODELS[m])
        _log2_axis(ax, "P (draft nodes verified per step)")
        ax.set_ylim(-limit, limit)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:+.0%}"))
        ax.set_title(f"{name} ({g.contexts} contexts)", fontsize=9)
    for ax in axes.flat[len(genres):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("(prediction - real) / real")
    order = ["band", "five", *best, *(m for m in SIMULATORS if m not in best), "renewal_bound"]
    fig.legend([handles[k] for k in order], [handles[k].get_label() for k in order], loc="lower center",
               ncol=4, fontsize=7, frameon=False)
    sample = f", out of sample ({comparison.folds}-fold)" if comparison.folds > 1 else ", in sample"
    fig.suptitle(f"Real optimal trees ({_model_name(comparison.model)}): each law's error against the "
                 f"{'adjusted ' if key else ''}real mean{sample}", fontsize=10)
    fig.tight_layout(rect=(0, 0.8 / (3.3 * nrow + 0.9), 1, 1))
    return _save(fig, path)


#: One colour per model of a comparison (the default cycle has ten).
_COLOURS = [f"C{i}" for i in range(10)] + ["navy", "darkgoldenrod", "lime"]


def depth_gap(comparison, nodes: dict, path) -> str:
    """Where real trees' extra depth comes from: per genre, the gap real - i.i.d. walk at the table's P split
    into what per-context laws (``ctx``), greedy runs (``run``) and nothing yet explain; beside it, the
    mean entropy of real tree nodes by depth against each trace's mu, and by the surprisal of the edge into them
    against the recorded text's entropy after a token of that surprisal.

    Parameters
    ----------
    comparison : brw.studies.compare.Comparison
    nodes : dict
        ``brw.real.realtree.node_statistics`` of the same real trees.
    path : str, os.PathLike or list of them
        Figure file(s) (.png, .pdf or .svg).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    names = [n for n in comparison.genres if n != "all"]
    fig, (bar, ent, edge) = plt.subplots(1, 3, figsize=(16, 4.4))
    P = comparison.P
    width = 0.8 / len(P)
    top = 0.0
    parts = (("contexts", "contexts differ (ctx - i.i.d.)", "C0"), ("runs", "greedy runs (run - ctx)", "C2"),
             ("unexplained", "unexplained (real - run)", "0.6"))
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
    from brw.real.realtree import SURPRISAL_BINS

    mid = np.array([(lo + hi) / 2 if math.isfinite(hi) else lo + 1 for lo, hi in
                    zip(SURPRISAL_BINS[:-1], SURPRISAL_BINS[1:])])
    for j, n in enumerate(names):
        tree = nodes.get(n, {}).get("entropy_by_edge_surprisal") or []
        text = comparison.genres[n].entropy_after_surprisal
        if tree and any(c for _, c in tree):
            edge.plot(mid, [m for m, _ in tree], "o-", color=f"C{j}", label=f"{n}: real tree nodes")
        if text:
            edge.plot(mid, [m for m, _ in text], "s--", color=f"C{j}", mfc="none", lw=1,
                      label=f"{n}: recorded text")
    edge.set_xscale("symlog", linthresh=0.05)
    edge.set_xticks(list(SURPRISAL_BINS[:-1]), [f"{b:g}" for b in SURPRISAL_BINS[:-1]])
    edge.set_xlabel("surprisal -log p of the token that led there (nats, bins from)")
    edge.set_ylabel("mean next-token entropy (nats)")
    edge.set_title("after a likely token the model is surer: trees grow likely edges first", fontsize=9)
    for ax in (ent, edge):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:  # results without per-node statistics
            ax.text(0.5, 0.5, "these real trees carry no per-node statistics", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="0.4")
    model = _model_name(comparison.model)
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


def deployment(d: dict, path) -> str:
    """A deployment: the measured survival with its intervals (and, with a cost, its extrapolation), and
    tokens per second against k for the measured drafter and the speed of light.

    Parameters
    ----------
    d : dict
        ``brw deployment``'s result (``brw.deployment.Deployment.to_dict()``).
    path : str or os.PathLike
        Figure file (.png, .pdf or .svg).

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    cost = "tokens_per_second" in d
    fig, axes = plt.subplots(1, 2 if cost else 1, figsize=(11 if cost else 6, 4.2), squeeze=False)
    ax = axes[0, 0]
    if d["survival"] is not None:
        j = np.arange(1, len(d["survival"]) + 1)
        ci = np.array(d["survival_ci"])
        ax.errorbar(j, d["survival"], yerr=[np.array(d["survival"]) - ci[:, 0], ci[:, 1] - np.array(d["survival"])],
                    fmt="o", color="k", capsize=3, label=f"measured ({d['format']}, {d['drafts']} drafts)")
        if cost:
            acc = np.array(d["accepted_model"])
            s = np.diff(acc)
            jj = np.arange(1, s.size + 1)
            ax.plot(jj[len(j) - 1:], s[len(j) - 1:], "--", color="0.4", label="extrapolated (geometric decay)")
    ax.set_xlabel("position j")
    ax.set_ylabel("share of steps accepting at least j tokens")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if cost:
        ax = axes[0, 1]
        ks = np.array(d["k_values"])
        ci = np.array(d["tokens_per_second_ci"])
        ax.plot(ks, d["tokens_per_second"], "o-", color="k", ms=4, label="measured drafter")
        ax.fill_between(ks, ci[:, 0], ci[:, 1], color="k", alpha=0.15, lw=0)
        if "speed_of_light_tokens_per_second" in d:
            ax.plot(ks, d["speed_of_light_tokens_per_second"], "-", color="C0", label="speed of light (tree)")
            ax.plot(ks, d["chain_speed_of_light_tokens_per_second"], "-.", color="C1", label="best chain")
        r = d["recommended_k"]
        ax.plot([r], [d["tokens_per_second"][r]], "o", ms=9, mfc="none", color="C3", label=f"recommended k = {r}")
        ax.axvline(d["k"], color="0.5", lw=1, ls=":", label=f"deployed k = {d['k']}")
        ax.set_xlabel("k (draft tokens per step)")
        ax.set_ylabel("tokens per second")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax.set_title(str(d["cost"]), fontsize=8)
    if d.get("law"):
        fig.suptitle(f"against {d['law']}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)



# --------------------------------------------------------------------------------------------------------
# The figures of ``brw reproduce`` (``brw.studies.reproduce``): each takes the numbers its step arranged.

#: Line styles of the bounds, shared by the figures that draw them.
_BOUND_STYLE = {"asymptotic": ("C1", "--", "sharp asymptotic"), "renewal_bound": ("C0", "-", "renewal bound"),
                "wald_lorden_bound": ("C2", "-.", "Wald-Lorden bound"),
                "paper_bound": ("C3", ":", "paper's bound (mu+mu2) log P / mu^2")}


def accepted_bounds(curves, path):
    """accepted(P) of several laws (points with 2-standard-error bars) beside every bound, a panel per law.

    Parameters
    ----------
    curves : list of dict
        Per law: ``law``, ``mu``, ``mu2``, ``P``, ``accepted``, ``stderr``, ``trees``, and the bounds
        (``brw.theory.BOUND_KEYS``) on the P values ``grid``.
    path : str, os.PathLike or list of them
        Figure file(s) (.png, .pdf or .svg).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    n = len(curves)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.4 * rows), squeeze=False)
    for ax, c in zip(axes.flat, curves):
        for key, (color, ls, label) in _BOUND_STYLE.items():
            ax.plot(c["grid"], c[key], color=color, ls=ls, lw=1.6, label=label)
        ax.errorbar(c["P"], c["accepted"], yerr=2 * np.asarray(c["stderr"]), fmt="o", color="k", ms=4, capsize=2,
                    lw=1, label=f"simulated optimum ({c['trees']} trees, 2 s.e.)", zorder=5)
        _log2_axis(ax, "P (draft nodes verified per step)", "accepted tokens per step, E[X]")
        top = max(np.max(c["wald_lorden_bound"]), np.max(c["accepted"]))
        ax.set_ylim(0, 1.25 * top)  # the paper's bound leaves the panel: the others stay readable
        ax.set_title(f"{c['law']}   mu = {c['mu']:.3f} nats, mu2 = {c['mu2']:.3f}", fontsize=10)
    axes.flat[0].legend(loc="upper left", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("The optimal tree's accepted tokens against log P, beside every bound "
                 "(the paper's bound runs off the top)", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _log_axes(ax) -> None:
    """Both axes logarithmic, ticks at 1, 2, 3, 5 and 7 times powers of ten written as plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0, 7.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def slopes(laws, path):
    """The measured slope of accepted(P) against log P, per law, against 1/mu and against (mu + mu2)/mu^2.

    Parameters
    ----------
    laws : list of dict
        ``brw.studies.theory_check.TheoryCheck.laws`` (``law``, ``slope``, ``slope_se``, ``inv_mu``,
        ``paper_slope``, ``lattice_span``, ``P_max``).
    path : str, os.PathLike or list of them
        Figure file(s).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    slope = np.array([r["slope"] for r in laws])
    se = np.nan_to_num(np.array([r["slope_se"] or 0.0 for r in laws], dtype=float))
    kind = np.array(["recorded traces" if r["law"].startswith("trace:") else
                     "lattice laws" if r["lattice_span"] else "non-lattice parametric laws" for r in laws])
    for ax, key, xlabel, title in (
            (axes[0], "inv_mu", "1/mu (1/nats)", "against 1/mu, the sharp asymptotic's slope"),
            (axes[1], "paper_slope", "(mu + mu2)/mu^2 (1/nats)", "against the paper's slope (mu + mu2)/mu^2")):
        x = np.array([r[key] for r in laws])
        lo, hi = min(x.min(), slope.min()) / 1.3, max(x.max(), slope.max()) * 1.3
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", label="slope = prediction")
        for i, (label, marker) in enumerate((("non-lattice parametric laws", "o"), ("lattice laws", "^"),
                                              ("recorded traces", "s"))):
            mask = kind == label
            if mask.any():
                ax.errorbar(x[mask], slope[mask], yerr=2 * se[mask], fmt=marker, ms=6, capsize=2, color=f"C{i}",
                            label=label)
        _log_axes(ax)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("measured slope d accepted / d log P (tokens per nat)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="upper left", fontsize=8)
    for i, (r, yi) in enumerate(zip(laws, slope)):  # numbered as the rows of the report's table
        axes[0].annotate(str(i + 1), (r["inv_mu"], yi), xytext=(7 if i % 2 else -12, -3 if i % 2 else 3),
                         textcoords="offset points", fontsize=7, color="0.3")
    fig.suptitle(f"Slope of accepted(P) against log P over P = 64 .. {laws[0]['P_max']} (bars: 2 standard errors; "
                 "numbers: the laws in the table's order)", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def traces(summaries, path):
    """The recorded traces: mu and mu2 with their confidence intervals per genre, and the entropy distributions.

    Parameters
    ----------
    summaries : dict
        genre -> (``brw.trace_summary.trace_summary`` dict, entropy of every position in nats).
    path : str, os.PathLike or list of them
        Figure file(s).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    names = list(summaries)
    fig, axes = plt.subplots(1, 3, figsize=(15, max(4.6, 0.7 * len(names) + 1)),
                             gridspec_kw={"width_ratios": [1, 1, 2]})
    y = np.arange(len(names))
    for ax, key, xlabel in ((axes[0], "mu", "mu = E[entropy] (nats)"),
                            (axes[1], "mu2", "mu2 = E[sum p (log p)^2] (nats^2)")):
        for i, name in enumerate(names):
            d = summaries[name][0]
            lo, hi = d[f"{key}_ci"]
            ax.errorbar([d[key]], [i], xerr=[[d[key] - lo], [hi - d[key]]], fmt="o", color=f"C{i}", capsize=4,
                        ms=7)
        ax.set_yticks(y, [f"{n}\n({summaries[n][0]['contexts']} contexts)" for n in names])
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.grid(alpha=0.3, axis="x")
        ax.set_title(f"{key} with its 95% interval", fontsize=10)
    ax = axes[2]
    top = max(float(np.max(summaries[n][1])) for n in names)
    bins = np.linspace(0, top, 40)
    for i, name in enumerate(names):
        d, entropy = summaries[name]
        ax.hist(entropy, bins=bins, density=True, histtype="step", lw=1.8, color=f"C{i}",
                label=f"{name}: mu = {d['mu']:.2f} nats, {d['positions']} positions")
    ax.set_yscale("log")
    ax.set_xlabel("entropy of the next-token distribution (nats)")
    ax.set_ylabel("density (1/nats, log scale)")
    ax.set_title("entropy distributions", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    models = " and ".join(dict.fromkeys(_model_name(summaries[n][0].get("model")) for n in names))
    fig.suptitle(f"Recorded traces of {models} (bootstrap over contexts)", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def policies(sim, real, path):
    """Drafting policies on simulated trees and real drafters on real trees, against the speed of light.

    Parameters
    ----------
    sim : dict
        law -> policy -> table rows (``P``, ``accepted``, ``stderr``, ``gap``, ``gap_stderr``; a sweep's
        ``policies`` rows of one law and policy).
    real : dict
        ``brw.real.realdrafter.RealDrafter.to_dict()``.
    path : str, os.PathLike or list of them
        Figure file(s).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    laws = list(sim)
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    panels = list(axes.flat)
    bars = []
    for ax, law in zip(panels, laws):
        first = next(iter(sim[law].values()))
        ax.plot(first.P, first.accepted + first.gap, color="k", lw=2.4, label="speed of light (optimal frontier)")
        for i, (pol, g) in enumerate(sim[law].items()):  # alternate styles: policies that tie stay visible
            ax.plot(g.P, g.accepted, marker="os^D"[i % 4], ms=3.5, lw=1.3, ls=("-", "--")[i % 2], color=f"C{i}",
                    label=pol)
            top = g.iloc[-1]
            bars.append((f"{law}: {pol}", float(top.gap), float(top.gap_stderr), f"C{i}"))
        _log2_axis(ax, "P (draft nodes verified per step)", "accepted tokens per step, E[X]")
        ax.set_ylim(bottom=0)
        ax.set_title(f"simulated, {law}", fontsize=10)
    panels[0].legend(fontsize=7.5, loc="upper left")
    ax = panels[len(laws)]
    P = np.asarray(real["P"])
    opt, ose = np.asarray(real["optimal"]), np.asarray(real["optimal_stderr"])
    ax.plot(P, opt, color="k", lw=2.4, label="real optimal tree (oracle drafter)")
    ax.fill_between(P, opt - 2 * ose, opt + 2 * ose, color="k", alpha=0.15, lw=0)
    for j, dr in enumerate(real["drafters"]):
        a, s = np.asarray(dr["accepted"]), np.asarray(dr["stderr"])
        ax.plot(P, a, marker="s", ms=3, lw=1.3, color=f"C{j + 4}", label=f"early exit after layer {dr['layers']}")
        ax.fill_between(P, a - 2 * s, a + 2 * s, color=f"C{j + 4}", alpha=0.12, lw=0)
        bars.append((f"real: exit after layer {dr['layers']}", dr["gap"][-1], dr["gap_stderr"][-1], f"C{j + 4}"))
    _log2_axis(ax, "P (draft nodes verified per step)", "accepted tokens per step, E[X]")
    ax.set_ylim(bottom=0)
    model = _model_name(real["model"])
    ax.set_title(f"real drafters of {model}, {real['contexts']} real contexts (bands: 2 s.e.)", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")
    ax = panels[len(laws) + 1]
    ypos = np.arange(len(bars))[::-1]
    ax.barh(ypos, [b[1] for b in bars], xerr=[2 * b[2] for b in bars], color=[b[3] for b in bars], alpha=0.8,
            capsize=2)
    ax.set_yticks(ypos, [b[0] for b in bars], fontsize=7)
    ax.set_xlabel("gap to the speed of light at the largest P\n(accepted tokens per step; bars: 2 paired s.e.)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("paired gaps at the largest P", fontsize=10)
    for ax in panels[len(laws) + 2:]:
        ax.axis("off")
    fig.suptitle("Drafting policies and real drafters against the speed of light", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def sequoia(panels, path):
    """Sequoia's static tree against the frontier, per law: scored on the law's trees and as its own positional
    model predicts it.

    Parameters
    ----------
    panels : dict
        law -> ``frontier`` (P, tokens per step), ``policies`` (policy spec -> (P, tokens per step, stderr, gap,
        gap stderr)), ``own`` (depth limit -> Sequoia's predicted tokens per step for n = 1.. nodes) and
        ``best_first`` (the positional vector's best-first tree, n = 1..).
    path : str, os.PathLike or list of them
        Figure file(s).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.8), squeeze=False)
    for ax, (law, p) in zip(axes[0], panels.items()):
        P, front = p["frontier"]
        ax.plot(P, front, color="k", lw=2.4, marker="o", ms=3, label="speed of light (optimal frontier)")
        for i, (pol, (Pp, tps, _, _, _)) in enumerate(p["policies"].items()):
            ax.plot(Pp, tps, color=f"C{i}", marker="os"[i % 2], ms=4, lw=1.4,
                    label=f"Sequoia's tree ({pol}) on the law's trees")
            depth = 6 if "depth" in pol else None
            n = np.arange(1, len(p["own"][depth]))
            ax.plot(n, p["own"][depth][1:], color=f"C{i}", ls="--", lw=1.2,
                    label=f"its own prediction (positional model{', 6 levels' if depth else ''})")
        bf = p["best_first"]
        ax.plot(np.arange(1, len(bf)), bf[1:], color="0.5", ls=":", lw=1.4,
                label="best-first tree of the positional model")
        _log2_axis(ax, "P (draft nodes verified per step)", "tokens per step (accepted + 1)")
        ax.set_xlim(1, P[-1])
        ax.set_ylim(bottom=1)
        ax.set_title(law, fontsize=10)
    axes[0][0].legend(fontsize=7.5, loc="upper left")
    fig.suptitle("Sequoia's optimum (its dynamic program on the positional acceptance vector) against the frontier",
                 fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def speedups(results, path):
    """tokens/s against P, one panel per verifier cost, one curve per law, each optimum marked.

    Parameters
    ----------
    results : list of (str, Speedup)
        (the cost's label, ``brw.speedup.speedup(...)``); results of one label share a panel.
    path : str, os.PathLike or list of them
        Figure file(s).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    labels = list(dict.fromkeys(label for label, _ in results))
    fig, axes = plt.subplots(1, len(labels), figsize=(6.4 * len(labels), 4.8), squeeze=False)
    for ax, label in zip(axes[0], labels):
        mine = [r for lab, r in results if lab == label]
        for i, r in enumerate(mine):
            P = np.arange(1, r.pmax + 1)
            rel = r.tokens_per_second / r.plain_tokens_per_second
            band = 2 * r.stderr / r.step_seconds / r.plain_tokens_per_second
            ax.plot(P, rel[1:], color=f"C{i}", lw=1.8, label=f"{r.law} ({r.replicates} trees)")
            ax.fill_between(P, (rel - band)[1:], (rel + band)[1:], color=f"C{i}", alpha=0.2, lw=0)
            o = r.optimal_P
            ax.plot([max(o, 1)], [rel[o]], "o", color=f"C{i}", ms=8)
            ax.annotate(f"P = {o}: {r.speedup:.2f}x", (max(o, 1), rel[o]), xytext=(6, 6 + 12 * i),
                        textcoords="offset points", fontsize=8, color=f"C{i}")
        ax.axhline(1.0, color="0.4", lw=1, ls=":", label="plain decoding")
        _log2_axis(ax, "P (draft nodes verified per step)", "tokens per second / plain decoding's")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{label}: {Path(str(mine[0].cost)).name}", fontsize=9)
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("The speed of light in tokens per second (optimal tree, free drafter; dots: the optimal P)",
                 fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def bench(d, path):
    """Nodes per second of each kernel, per law: the reference, the frontier on 1 and on every thread, the
    threshold walk and the floor (log scale).

    Parameters
    ----------
    d : dict
        ``brw.studies.bench.Benchmark.to_dict()``.
    path : str, os.PathLike or list of them
        Figure file(s).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    plt = _pyplot()
    top = max(d["threads"])
    kernels = [("reference", "pure-Python reference, 1 thread"), ("frontier@1", "frontier, 1 thread"),
               (f"frontier@{top}", f"frontier, {top} threads"), (f"threshold@{top}", f"threshold, {top} threads"),
               (f"floor@{top}", f"floor (randomness only), {top} threads")]
    laws = d["laws"]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / len(kernels)
    x = np.arange(len(laws))
    for k, (key, label) in enumerate(kernels):
        vals = [row["nodes_per_second"].get(key, np.nan) for row in laws]
        ax.bar(x + (k - (len(kernels) - 1) / 2) * width, vals, width, label=label, color=f"C{k}")
    ax.set_yscale("log")
    ax.set_xticks(x, [row["law"].replace(",", ",\n", 1) if len(row["law"]) > 24 else row["law"] for row in laws],
                  fontsize=8)
    ax.set_ylabel("tree nodes per second (log scale)")
    ax.set_xlabel("step law")
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"Kernel speed at P = {laws[0]['P']} (best of {d['repeats']} repeats; load average "
                 f"{d['load_average'][0]:.1f})", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def temperature(sweep, path):
    """accepted(P) against the temperature T: a row of panels per P, a column per genre (``brw.studies.temperature``).

    Each panel: the simulated optimum under the tempered i.i.d. law and the recorded-prefix law (2 standard
    errors), the sharp asymptotic and the renewal bound of the tempered i.i.d. law, the real optimal trees at each
    temperature they were expanded at (2 standard errors), the prefix law fitted to the traces sampled at T = 0.7
    (where bundled) and P itself at T = 0 (a deterministic verifier accepts the whole greedy chain).

    Parameters
    ----------
    sweep : brw.studies.temperature.TemperatureSweep
    path : str, os.PathLike or list of them
        Figure file(s) (.png, .pdf or .svg).

    Returns
    -------
    str or list of str
        The path(s) written.
    """
    from matplotlib.ticker import FuncFormatter

    plt = _pyplot()
    T = np.asarray(sweep.temperatures, dtype=np.float64)
    rows, cols = len(sweep.P), len(sweep.genres)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 2.9 * rows), squeeze=False, sharex=True)
    style = {"iid": ("C0", "-", "sim: i.i.d. walk, trace: at T"), "prefix": ("C3", "-", "sim: prefix: at T"),
             "asymptotic": ("C2", "--", "sharp asymptotic"), "renewal_bound": ("C1", ":", "renewal bound")}
    for j, g in enumerate(sweep.genres):
        c = sweep.curves[g]
        for i, P in enumerate(sweep.P):
            ax = axes[i][j]
            for m, (colour, ls, label) in style.items():
                v = np.asarray(c[m], dtype=np.float64)[:, i]
                if not np.any(np.isfinite(v)):
                    continue
                ax.plot(T, v, color=colour, ls=ls, lw=1.5, label=label)
                if m + "_stderr" in c:
                    se = np.asarray(c[m + "_stderr"], dtype=np.float64)[:, i]
                    ax.fill_between(T, v - 2 * se, v + 2 * se, color=colour, alpha=0.2, lw=0)
            for k, r in enumerate(sweep.real.get(g, [])):
                if r["accepted"][i] is not None:
                    ax.errorbar([r["T"]], [r["accepted"][i]], yerr=[2 * r["stderr"][i]], fmt="o", color="k", ms=5,
                                capsize=3, zorder=5, label="real optimal trees" if k == 0 else None)
            f = sweep.fitted_07.get(g)
            if f:
                ax.errorbar([f["T"]], [f["accepted"][i]], yerr=[2 * f["stderr"][i]], fmt="s", mfc="none",
                            color="C4", ms=6, capsize=3, zorder=4, label="sim: prefix: fitted to the T = 0.7 text")
            ax.plot([0.0], [P], marker="*", color="k", ms=10, ls="none", label="T = 0: P itself")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(round(v, 9))[0] in "25" else ""))
            ax.set_xlim(-0.03, T.max() + 0.05)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(g)
            if j == 0:
                ax.set_ylabel(f"accepted, P = {P}")
            if i == rows - 1:
                ax.set_xlabel("temperature T")
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle("accepted(P) against the sampling temperature\n(log scale; bands and bars: 2 s.e.)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
