"""Sampled drafts beside committed trees and the speed of light: does sampling a drafter's drafts beat committing
to its top choices, and can it beat the deterministic speed of light at the same node budget?

For drafters of measured quality (the simulator's drafter, ``brw.drafting.Drafter``: the verifier's logits moved
by Gaussian noise of scale sigma and tempered by T; its mean TV, KL and Bhattacharyya coefficient to the verifier
measured by ``brw.sampled.drafter_quality``) on the bundled trace laws, at each node budget P, on the same replicate
trees (paired):

- the optimal frontier (the speed of light of committed trees);
- the drafter's committed tree of the same P: SpecExec's best-first tree by q (``specexec``);
- the sampled schemes: a chain of P tokens sampled from q, token by token and block-verified (exact given the
  tree), SpecInfer, RSD and traversal trees (Monte Carlo over the drafts), and the best of them at each P;
- the sampled chain's coupling ceiling (no lossless verification of it does better).

It reports every paired difference with its standard error, the drafter quality (mean TV) at which the best
sampled scheme crosses the speed of light at each P (linear interpolation between the drafters on either side),
beside the closed forms of the i.i.d. model (docs/theory.md section 9): the token-by-token chain crosses where
sum_{j<=P} alpha^j = frontier(P), and no sampled chain can before sum_{j<=P} beta^j = frontier(P). With the
results of :func:`brw.real.realsampled.real_chains` it adds SmolLM2's early-exit drafters sampling their chains on
real trees. ``figure`` draws the finding; ``table`` writes it as Markdown.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from brw._version import __version__
from brw.errors import BrwError
from brw.solver import root_keys
from brw.drafting import CHAIN_TAU, parse_policy, policies
from brw.results import Result
from brw.sampled import chain_levels, drafter_quality

__all__ = ["sampled_study", "SampledStudy", "figure", "table", "DEFAULT_LAWS", "DEFAULT_DRAFTERS", "DEFAULT_AT",
           "TREE_SHAPES", "QUICK"]

DEFAULT_LAWS = ("trace:code", "trace:math", "trace:chat")
#: Drafters, as the drafter fields of a policy spec, best first; "T=0.84,sigma=2.8" is the fit of SmolLM2's
#: early-exit drafter after 29 of 30 layers (brw.realdrafter).
DEFAULT_DRAFTERS = ("sigma=0.25", "sigma=0.5", "sigma=1", "sigma=2", "T=0.84,sigma=2.8", "sigma=4")
DEFAULT_AT = (4, 8, 16, 32, 64, 128, 256)
#: The multi-draft shapes scored (breadth first, cut at P nodes).
TREE_SHAPES = ("specinfer:k=2,d=8", "rsd:k=2,d=8", "traversal:k=2,d=8", "traversal:k=4,d=4")
#: The settings of ``quick=True`` (under a minute).
QUICK = {"drafters": ("sigma=0.5", "sigma=1", "sigma=2"), "at": (4, 16, 64), "replicates": 24, "nodes": 4000}
#: The chain length at which block verification's gain over token by token is reported (the paper's gamma).
GAMMA = 8


@dataclass(frozen=True)
class SampledStudy(Result):
    """What :func:`sampled_study` measured.

    Attributes
    ----------
    laws, drafters : tuple of str
        The verifier's laws and the drafters (drafter fields of a policy spec).
    at : tuple of int
        Node budgets P.
    replicates, seed : int
    schemes : tuple of str
        The sampled schemes scored: ``specsample``, ``block`` (chains of P tokens) and ``TREE_SHAPES``.
    quality : list of dict
        Per law and drafter: ``law``, ``drafter``, ``tv``, ``tv_stderr``, ``kl``, ``kl_stderr``, ``bc``,
        ``bc_stderr``, ``alpha`` (``brw.sampled.drafter_quality``).
    rows : list of dict
        Per law, drafter and P: ``frontier``, ``specexec``, ``ceiling`` and every scheme's accepted, each with
        ``_se``; ``best_scheme`` and ``best``; the paired differences ``best_minus_frontier``,
        ``best_minus_specexec``, ``specexec_minus_frontier``, ``block_minus_token``, ``traversal_minus_rsd``
        (each with ``_se``; the last two on the same drafted chains and trees), ``traversal_over_rsd`` (ratio of
        means, minus 1).
    gain : list of dict
        Per law and drafter, chains of ``GAMMA`` tokens: ``token``, ``block`` (with ``_se``), ``gain``
        (block - token, paired ``gain_se``) and ``relative`` (block / token - 1) and ``relative_tps`` (the same
        on tokens per step, accepted + 1, which is what "block efficiency" counts).
    crossings : list of dict
        Per law and P: ``tv`` where the best sampled scheme meets the frontier (None when it never does, or
        always beats it, among the drafters), ``tv_token_closed_form`` = 1 - alpha* and ``bc_needed`` = beta*
        of the i.i.d. closed forms.
    real : dict or None
        ``brw.real.realsampled.RealChains.summary()`` for SmolLM2, when given.
    seconds : float
    version : str
    """

    laws: tuple
    drafters: tuple
    at: tuple
    replicates: int
    seed: int
    schemes: tuple
    quality: list
    rows: list
    gain: list
    crossings: list
    real: dict | None = None
    seconds: float = 0.0
    version: str = __version__
    settings: dict = field(default_factory=dict)

    def _tidy(self) -> dict:
        cols: dict = {}
        for r in self.rows:
            for k, v in r.items():
                cols.setdefault(k, []).append(v)
        return cols


def _drafter(fields: str):
    return parse_policy("specexec" + (":" + fields if fields else "")).drafter


def _ms(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan


def _geometric_root(target: float, P: int) -> float | None:
    """The r in (0, 1) with r + r^2 + ... + r^P = target (None when target >= P or <= 0)."""
    if not 0 < target < P:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        s = mid * (1 - mid ** P) / (1 - mid) if mid < 1 else float(P)
        lo, hi = (mid, hi) if s < target else (lo, mid)
    return 0.5 * (lo + hi)


def _crossings(law: str, at, per_drafter: list) -> list:
    """Per P, the drafter quality (TV) at which the best sampled scheme crosses the speed of light, by linear
    interpolation between the two measured drafters on either side (None when it does not cross), and the
    i.i.d. closed form's quality for comparison."""
    out = []
    for P in at:
        pts = sorted((r["tv"], r["best_minus_frontier"], r["drafter"], r["frontier"]) for r in per_drafter
                     if r["P"] == P)
        cross = None
        for (ta, ga, da, _), (tb, gb, db, _) in zip(pts, pts[1:]):
            if ga > 0 >= gb:
                cross = {"tv": ta + (0 - ga) * (tb - ta) / (gb - ga), "between": [da, db]}
                break
        front = pts[0][3]  # the same trees for every drafter
        r = _geometric_root(front, P)  # sum_{j<=P} r^j = frontier(P)
        out.append({"law": law, "P": P, "frontier": front,
                    "tv": None if cross is None else cross["tv"],
                    "between": None if cross is None else cross["between"],
                    "all_above": all(p[1] > 0 for p in pts), "all_below": all(p[1] <= 0 for p in pts),
                    "tv_token_closed_form": None if r is None else 1 - r, "bc_needed": r})
    return out


def sampled_study(laws=DEFAULT_LAWS, drafters=DEFAULT_DRAFTERS, at=DEFAULT_AT, replicates: int = 200, seed: int = 0,
                  *, nodes: int = 20000, real: dict | None = None, quick: bool = False, threads: int | None = None,
                  log=None) -> SampledStudy:
    """Sampled drafts against committed trees and the speed of light, on the same trees.

    Parameters
    ----------
    laws : sequence of str
        The verifier's laws (default: the bundled traces).
    drafters : sequence of str
        Drafters as the drafter fields of a policy spec (``T=..,sigma=..,q=(..)``).
    at : sequence of int
        Node budgets P.
    replicates : int
        Replicate trees per law and drafter (the same trees for every drafter).
    seed : int
    nodes : int
        Nodes on which each drafter's quality is measured.
    real : dict or None
        ``RealChains.summary()`` of SmolLM2's sampled chains, recorded into the result as is.
    quick : bool
        The settings of ``QUICK`` (under a minute), whatever drafters, at, replicates and nodes say.
    threads : int or None
    log : callable or None
        Called with a line per law and drafter.

    Returns
    -------
    SampledStudy
    """
    log = log or (lambda msg: None)
    if quick:
        drafters, at, replicates, nodes = QUICK["drafters"], QUICK["at"], QUICK["replicates"], QUICK["nodes"]
    at = tuple(sorted({int(P) for P in at}))
    if not at or at[0] < 1:
        raise BrwError(f"at must be node budgets >= 1, got {at!r}")
    pmax = at[-1]
    idx = np.asarray(at) - 1
    t0 = time.perf_counter()
    keys = root_keys(seed, replicates)
    schemes = ("specsample", "block") + TREE_SHAPES
    quality, rows, gain, crossings = [], [], [], []
    for law in laws:
        per_drafter = []
        for fields in drafters:
            d = _drafter(fields)
            q = drafter_quality(law, d, nodes=nodes, seed=seed)
            quality.append({"law": law, "drafter": fields, "tv": q.tv, "tv_stderr": q.tv_stderr, "kl": q.kl,
                            "kl_stderr": q.kl_stderr, "bc": q.bc, "bc_stderr": q.bc_stderr, "alpha": q.alpha})
            pols = [f"specexec:{fields}" if fields else "specexec"] + \
                [f"{s},{fields}" if fields else s for s in TREE_SHAPES]
            res = policies(law, pmax, pols, replicates, seed, at=at, threads=threads, keep_replicates=True)
            tok, blk, cei, _, _ = chain_levels(law, d, keys, pmax, CHAIN_TAU, True, threads)
            vals = {"frontier": res.values[:, 0], "specexec": res.values[:, 1],
                    "specsample": np.cumsum(tok, axis=1)[:, idx], "block": np.cumsum(blk, axis=1)[:, idx],
                    "ceiling": np.cumsum(cei, axis=1)[:, idx]}
            for i, s in enumerate(TREE_SHAPES):
                vals[s] = res.values[:, 2 + i]
            g = min(GAMMA, pmax) - 1
            tg, bg = np.cumsum(tok, axis=1)[:, g], np.cumsum(blk, axis=1)[:, g]
            gain.append({"law": law, "drafter": fields, "tv": q.tv, "k": g + 1, "token": _ms(tg)[0],
                         "token_se": _ms(tg)[1], "block": _ms(bg)[0], "block_se": _ms(bg)[1],
                         "gain": _ms(bg - tg)[0], "gain_se": _ms(bg - tg)[1],
                         "relative": float(bg.mean() / tg.mean() - 1),
                         "relative_tps": float((bg.mean() + 1) / (tg.mean() + 1) - 1)})
            for a, P in enumerate(at):
                row = {"law": law, "drafter": fields, "tv": q.tv, "P": P}
                for name in ("frontier", "specexec", "ceiling") + schemes:
                    row[name], row[name + "_se"] = _ms(vals[name][:, a])
                best = max(schemes, key=lambda s: row[s])
                row["best_scheme"], row["best"], row["best_se"] = best, row[best], row[best + "_se"]
                for name, x, y in (("best_minus_frontier", best, "frontier"), ("best_minus_specexec", best, "specexec"),
                                   ("specexec_minus_frontier", "specexec", "frontier"),
                                   ("block_minus_token", "block", "specsample"),
                                   ("traversal_minus_rsd", TREE_SHAPES[2], TREE_SHAPES[1])):
                    row[name], row[name + "_se"] = _ms(vals[x][:, a] - vals[y][:, a])
                row["traversal_over_rsd"] = row[TREE_SHAPES[2]] / row[TREE_SHAPES[1]] - 1
                rows.append(row)
                per_drafter.append(row)
            log(f"{law} {fields or 'q = p'}: TV {q.tv:.3f}, " + ", ".join(
                f"P={r['P']} best {r['best_scheme']} {r['best']:.3f} vs frontier {r['frontier']:.3f}"
                for r in per_drafter[-len(at):][::max(1, len(at) // 3)]))
        crossings += _crossings(law, at, per_drafter)
    return SampledStudy(tuple(laws), tuple(drafters), at, int(replicates), int(seed), schemes, quality, rows, gain,
                        crossings, real, time.perf_counter() - t0,
                        settings={"quick": bool(quick), "nodes": int(nodes), "chain_tau": CHAIN_TAU,
                                  "gamma": GAMMA})


# --------------------------------------------------------------------------------------------------------
# The table and the figure.


def _f(x, nd=3):
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def table(study: SampledStudy) -> str:
    """The study as Markdown: drafter quality, best sampled scheme against committed trees and the frontier,
    the crossings, block verification's gain, and SmolLM2.

    Parameters
    ----------
    study : SampledStudy

    Returns
    -------
    str
    """
    out = ["# Sampled drafts against committed trees and the speed of light",
           "",
           f"{study.replicates} replicate trees per law (seed {study.seed}); every difference is paired (the same "
           f"trees) with its standard error. accepted = E[X], bonus token excluded. Drafters: the verifier's logits "
           f"plus sigma x N(0, 1), tempered by T. Sampled schemes: {', '.join(study.schemes)} (chains of P tokens; "
           f"trees breadth first, cut at P nodes). The speed of light bounds committed trees only "
           f"(docs/theory.md section 9).",
           "", "## Drafter quality (mean over the law's nodes)", "",
           "| law | drafter | TV(p, q) | KL(p ‖ q) | BC(p, q) |", "|---|---|---|---|---|"]
    for q in study.quality:
        out.append(f"| {q['law']} | {q['drafter'] or 'q = p'} | {_f(q['tv'])} ± {_f(q['tv_stderr'], 4)} | "
                   f"{_f(q['kl'])} ± {_f(q['kl_stderr'], 4)} | {_f(q['bc'])} ± {_f(q['bc_stderr'], 4)} |")
    out += ["", "## Best sampled scheme, the drafter's committed tree (SpecExec) and the frontier", "",
            "| law | drafter (TV) | P | frontier | SpecExec | best sampled | scheme | best − frontier | "
            "best − SpecExec | chain ceiling |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in study.rows:
        out.append(f"| {r['law']} | {r['drafter'] or 'q = p'} ({_f(r['tv'], 2)}) | {r['P']} | {_f(r['frontier'])} | "
                   f"{_f(r['specexec'])} | {_f(r['best'])} ± {_f(r['best_se'])} | {r['best_scheme']} | "
                   f"{_f(r['best_minus_frontier'])} ± {_f(r['best_minus_frontier_se'])} | "
                   f"{_f(r['best_minus_specexec'])} ± {_f(r['best_minus_specexec_se'])} | "
                   f"{_f(r['ceiling'])} ± {_f(r['ceiling_se'])} |")
    out += ["", "## Where the best sampled scheme crosses the speed of light", "",
            "TV: the drafter quality (mean TV) at which the best sampled scheme meets the frontier, interpolated "
            "between the two drafters on either side; i.i.d. closed forms: a token-by-token chain of P tokens beats "
            "the frontier when TV < 1 - r*, and no sampled chain can unless BC > r*, with "
            "r* + r*^2 + ... + r*^P = frontier(P).", "",
            "| law | P | frontier | crossing TV (measured) | between | token chain: TV < | any chain: BC > |",
            "|---|---|---|---|---|---|---|"]
    for c in study.crossings:
        meas = _f(c["tv"]) if c["tv"] is not None else ("all drafters above" if c["all_above"] else
                                                       ("all below" if c["all_below"] else "no single crossing"))
        out.append(f"| {c['law']} | {c['P']} | {_f(c['frontier'])} | {meas} | "
                   f"{' / '.join(c['between']) if c['between'] else '-'} | {_f(c['tv_token_closed_form'])} | "
                   f"{_f(c['bc_needed'])} |")
    out += ["", f"## Block verification against token by token, the same sampled chain of {GAMMA} tokens", "",
            "| law | drafter | TV | token by token | block | gain (paired) | accepted +% | tokens per step +% |",
            "|---|---|---|---|---|---|---|---|"]
    for g in study.gain:
        out.append(f"| {g['law']} | {g['drafter'] or 'q = p'} | {_f(g['tv'])} | {_f(g['token'])} ± "
                   f"{_f(g['token_se'])} | {_f(g['block'])} ± {_f(g['block_se'])} | {_f(g['gain'])} ± "
                   f"{_f(g['gain_se'])} | {100 * g['relative']:.1f} | {100 * g['relative_tps']:.1f} |")
    out += ["", f"## Traversal verification against RSD's recursive rejection sampling, the same drafted trees "
                f"({TREE_SHAPES[2].split(':')[1]})", "",
            "| law | drafter | TV | P | RSD | traversal | traversal − RSD (paired) | +% |", "|---|---|---|---|---|---|---|---|"]
    for r in study.rows:
        out.append(f"| {r['law']} | {r['drafter'] or 'q = p'} | {_f(r['tv'])} | {r['P']} | {_f(r[TREE_SHAPES[1]])} | "
                   f"{_f(r[TREE_SHAPES[2]])} | {_f(r['traversal_minus_rsd'])} ± {_f(r['traversal_minus_rsd_se'])} | "
                   f"{100 * r['traversal_over_rsd']:.1f} |")
    if study.real:
        rl = study.real
        out += ["", f"## SmolLM2-135M: early-exit drafters sampling their chains on real trees "
                    f"({rl['contexts']} contexts)", "",
                "Exact expectations over the real tree (roulette below a weight threshold); committed: the "
                "drafter's own best-first tree, scored by the verifier; optimal: the real speed of light. Mean over "
                "contexts ± standard error; differences paired by context.", "",
                "| drafter | TV at roots | P | optimal | committed | token chain | block chain | block − token | "
                "block / token | block − committed | block − optimal |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for d in rl["drafters"]:
            for a, P in enumerate(rl["P"]):
                out.append(f"| early exit after {d['layers']} layers | {_f(d['tv'])} | {P} | "
                           f"{_f(d['optimal'][a][0])} ± {_f(d['optimal'][a][1])} | {_f(d['committed'][a][0])} ± "
                           f"{_f(d['committed'][a][1])} | {_f(d['token'][a][0])} ± "
                           f"{_f(d['token'][a][1])} | {_f(d['block'][a][0])} ± {_f(d['block'][a][1])} | "
                           f"{_f(d['block_minus_token'][a][0], 4)} ± {_f(d['block_minus_token'][a][1], 4)} | "
                           f"{_f(d['block_over_token'][a])} | {_f(d['block_minus_committed'][a][0])} ± "
                           f"{_f(d['block_minus_committed'][a][1])} | {_f(d['block_minus_optimal'][a][0])} ± "
                           f"{_f(d['block_minus_optimal'][a][1])} |")
    return "\n".join(out) + "\n"


def figure(study: SampledStudy, path) -> None:
    """Draw the finding: per law, accepted(P) of the frontier, of committed and sampled drafts for a few drafters
    (top), and the best sampled scheme over the frontier against the drafter's TV (bottom, 1: the crossing);
    SmolLM2's real sampled chains in a last column when the study holds them.

    Parameters
    ----------
    study : SampledStudy
    path : str, os.PathLike or list of them
        .png, .pdf or .svg (one drawing, saved to each).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    laws = list(study.laws)
    ncol = len(laws) + (1 if study.real else 0)
    fig, axes = plt.subplots(2, ncol, figsize=(4.2 * ncol, 7.4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    drafters = list(study.drafters)
    colors = {d: cmap(i / max(1, len(drafters) - 1)) for i, d in enumerate(drafters)}
    shown = drafters[1::2] if len(drafters) > 3 else drafters
    for c, law in enumerate(laws):
        ax = axes[0, c]
        rows = [r for r in study.rows if r["law"] == law]
        P = [r["P"] for r in rows if r["drafter"] == drafters[0]]
        front = [r["frontier"] for r in rows if r["drafter"] == drafters[0]]
        ax.plot(P, front, color="k", lw=2.4, marker="o", ms=3, label="speed of light (committed trees)")
        for d in shown:
            rr = [r for r in rows if r["drafter"] == d]
            tv = rr[0]["tv"]
            ax.errorbar(P, [r["best"] for r in rr], yerr=[2 * r["best_se"] for r in rr], color=colors[d], lw=1.6,
                        marker="s", ms=3, capsize=2, label=f"best sampled, {d} (TV {tv:.2f})")
            ax.plot(P, [r["specexec"] for r in rr], color=colors[d], lw=1.2, ls="--",
                    label=f"committed (SpecExec), {d}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(law, fontsize=10)
        ax.set_xlabel("P (draft nodes)")
        if c == 0:
            ax.set_ylabel("accepted tokens per step E[X]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left")
        ax = axes[1, c]
        for a, Pv in enumerate(study.at):
            rr = sorted((r for r in rows if r["P"] == Pv), key=lambda r: r["tv"])
            col = plt.get_cmap("plasma")(a / max(1, len(study.at) - 1))
            ax.errorbar([r["tv"] for r in rr], [r["best"] / r["frontier"] for r in rr],
                        yerr=[2 * r["best_minus_frontier_se"] / r["frontier"] for r in rr], color=col, marker="o",
                        ms=3, capsize=2, lw=1.2, label=f"P = {Pv}")
        ax.axhline(1, color="k", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("drafter's mean TV(p, q)")
        if c == 0:
            ax.set_ylabel("best sampled / speed of light\n(bars: 2 paired s.e. of the difference)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    if study.real:
        rl = study.real
        ax = axes[0, -1]
        Ps = rl["P"]
        d0 = rl["drafters"][0]
        ax.plot(Ps, [m for m, _ in d0["optimal"]], color="k", lw=2.4, marker="o", ms=3,
                label="real speed of light (optimal tree)")
        for i, d in enumerate(rl["drafters"]):
            col = plt.get_cmap("tab10")(i)
            lab = f"exit after {d['layers']} (TV {d['tv']:.2f})"
            ax.plot(Ps, [m for m, _ in d["committed"]], color=col, ls="--", lw=1.2, label=f"committed, {lab}")
            ax.errorbar(Ps, [m for m, _ in d["block"]], yerr=[2 * s for _, s in d["block"]], color=col, lw=1.6,
                        marker="s", ms=3, capsize=2, label=f"sampled chain, block, {lab}")
            ax.plot(Ps, [m for m, _ in d["token"]], color=col, ls=":", lw=1.2, label=f"sampled chain, token, {lab}")
        ax.set_xscale("log", base=2)
        ax.set_title(f"SmolLM2-135M, early-exit drafters ({rl['contexts']} contexts)", fontsize=10)
        ax.set_xlabel("P (draft nodes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5.5, loc="upper left")
        ax = axes[1, -1]
        for i, d in enumerate(rl["drafters"]):
            col = plt.get_cmap("tab10")(i)
            ax.errorbar(Ps, [m for m, _ in d["block_minus_token"]], yerr=[2 * s for _, s in d["block_minus_token"]],
                        color=col, marker="o", ms=3, capsize=2, label=f"exit after {d['layers']}: block − token")
        ax.axhline(0, color="k", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("chain length")
        ax.set_ylabel("accepted gain (paired, bars 2 s.e.)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("Sampled drafts (lossless verification) against committed trees and the speed of light",
                 fontsize=11)
    fig.tight_layout()
    for one in ([path] if isinstance(path, (str, os.PathLike)) else path):
        fig.savefig(one, dpi=130)
    plt.close(fig)
