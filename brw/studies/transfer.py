"""Laws off their own genre and model: every simulated law fitted to another trace, scored on a genre's real trees.

``brw.studies.compare`` scores each law on the real trees of the genre whose trace it was fitted to (out of
sample over that trace's generations). A user's prompts are never the bundled genres, so this study asks what a
law is worth elsewhere:

1. **Off its genre and model.** Every simulated law of :data:`brw.studies.compare.SIMULATORS`, fitted to the
   whole trace of each source (each bundled genre of each model, with its greedy branches where ``prefix``
   takes them), predicts the real trees of every other genre and model; its error against the target's adjusted
   real mean (``brw.real.realtree.root_adjusted_mean`` with the target's greedy covariates) at each P, with its
   95% interval.
2. **What a user has.** A user's own sampled trace is cheap (one pass over the prompts); greedy branches and
   real trees are not. Two predictors use only the target's own trace, fitted out of sample over its
   generations as ``compare`` does: ``prefix_text`` (recorded prefixes along the sampled text,
   ``prefix:trace=T``) and ``run`` (greedy runs, ``run:trace=T``). A third adds the greedy dynamics of another
   genre's branches, which the target lacks: ``transfer`` from source S predicts
   prefix_text(T) x prefix(S with its branches) / prefix_text(S), the factor by which S's own greedy
   continuations move its prediction at each P, carried to T.

Every simulation draws from its own stream, ``brw.studies.compare.spawn_seed(seed, 0, i, j)`` (law j
fitted to source i); the target's own-trace predictors run on ``compare``'s streams (``fold_seed(seed, g, k)``,
g the genre's place in its results file), so they are ``compare``'s (j) and (l) for the same seed and trees. Each
simulation can be replayed alone. The standard error of a product or ratio of independent simulations combines their relative
errors; each relative error's interval combines that with the real mean's (``compare.relative_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brw._version import __version__
from brw.checks import whole_number
from brw.errors import BrwError
from brw.real.realtree import greedy_covariates, load_realtrees, root_adjusted_mean, trace_name
from brw.results import Result
from brw.solver import frontier
from brw.studies.compare import DEFAULT_AT, SIMULATORS, fit_laws, relative_errors, simulate, spawn_seed
from brw.traces import BUNDLED, load_trace

__all__ = ["transfer", "Transfer", "RESULTS", "OWN_TRACE"]

#: The bundled real trees of each model this study scores on (SmolLM2's deepest, Gemma 3's).
RESULTS = ("smollm2-p1024", "gemma3")
#: The predictors that use the target's own sampled trace alone.
OWN_TRACE = ("prefix_text", "run")
#: The largest P of the cross-genre target (within 10% at every P up to it).
TARGET_P = 256


@dataclass(frozen=True)
class Transfer(Result):
    """Every law off its own genre and model, and the predictors a user can build, scored on real trees.

    ``targets`` maps each genre's trace name to a dict: ``results`` (the real-tree file), ``model``,
    ``contexts``, ``P``, the real mean and the adjusted one with standard errors at ``P``; ``laws``
    {source trace: {law: {accepted, stderr, relative errors with intervals}}} for every other source; ``own``
    {predictor of :data:`OWN_TRACE`: the same} (fitted to the target's own trace out of sample); ``transfer``
    {source: the same} (prefix_text of the target times the source's prefix / prefix_text). ``worst`` summarises
    each predictor's largest |error| and largest |interval end| over P <= :data:`TARGET_P`.
    """

    targets: dict
    sources: list
    replicates: int
    seed: int
    folds: int
    version: str = __version__

    def _tidy(self) -> dict:
        """Columns: target, kind (law, own or transfer), source, predictor, P, accepted, stderr,
        relative_error, low, high."""
        cols = {k: [] for k in ("target", "kind", "source", "predictor", "P", "accepted", "stderr",
                                "relative_error", "low", "high")}
        for t, d in self.targets.items():
            entries = [("law", s, m, r) for s, by in d["laws"].items() for m, r in by.items()]
            entries += [("own", t, m, r) for m, r in d["own"].items()]
            entries += [("transfer", s, "transfer", r) for s, r in d["transfer"].items()]
            for kind, s, m, r in entries:
                for i, p in enumerate(d["P"]):
                    for key, v in zip(cols, (t, kind, s, m, p, r["accepted"][i], r["stderr"][i],
                                             r["relative_error"][i], r["relative_error_low"][i],
                                             r["relative_error_high"][i])):
                        cols[key].append(v)
        return cols


def _entry(v, se, idx, real, real_se) -> dict:
    return {"accepted": v[idx].tolist(), "stderr": se[idx].tolist(), **relative_errors(v[idx], se[idx], real, real_se)}


def _worst(d: dict, P: list) -> dict:
    """Largest |error| and |interval end| over the P <= TARGET_P of one scored entry."""
    k = [i for i, p in enumerate(P) if p <= TARGET_P]
    err = np.abs(np.asarray(d["relative_error"])[k])
    end = np.maximum(np.abs(np.asarray(d["relative_error_low"])[k]), np.abs(np.asarray(d["relative_error_high"])[k]))
    return {"max_abs_error": float(err.max()), "max_abs_interval_end": float(end.max())}


def transfer(results=RESULTS, *, replicates: int = 2000, seed: int = 0, folds: int = 4) -> Transfer:
    """Every simulated law fitted to each bundled trace, scored on every other genre's and model's real trees,
    beside the predictors that use the target's own sampled trace (and another genre's greedy dynamics).

    Parameters
    ----------
    results : sequence of str, optional
        Real-tree results (bundled names or files); each of their genres is a target, and its trace a source.
    replicates : int, optional
        Simulated trees per law (and per fold of the target's own-trace predictors).
    seed : int, optional
    folds : int, optional
        K of the out-of-sample fits of the target's own trace (2..40).

    Returns
    -------
    Transfer
    """
    replicates = whole_number(replicates, "replicates")
    seed = whole_number(seed, "seed", 0)
    folds = whole_number(folds, "folds", 2)
    trees = {r: load_realtrees(r) for r in results}
    targets = [(r, j, genre, trace_name(src)) for r, res in trees.items()
               for j, (genre, src) in enumerate(zip(res.sources, res.meta["sources"]))]
    sources = [t for *_, t in targets]
    if len(set(sources)) != len(sources):
        raise BrwError("results: each genre's trace may appear once")
    pmax = max(res.pmax for res in trees.values())
    sims = {}  # source -> law -> (accepted, stderr) at P = 1..pmax
    for i, s in enumerate(sources):
        laws = fit_laws(s, folds=1)[None]
        sims[s] = {}
        for j, m in enumerate(SIMULATORS):
            r = frontier(laws[m], pmax, replicates, spawn_seed(seed, 0, i, j))
            sims[s][m] = (r.accepted, r.stderr)
    out = {}
    for r, j, genre, t in targets:
        res = trees[r]
        sel = res.arrays["source"] == j
        real = res.accepted(genre)
        P = [p for p in DEFAULT_AT if p <= res.pmax]
        idx = np.array(P) - 1
        tr = load_trace(t)
        extra = greedy_covariates(tr, load_trace(f"{t}-greedy")) if f"{t}-greedy" in BUNDLED else None
        adj, adj_se = root_adjusted_mean(real, res.arrays["row"][sel], tr, folds, extra)
        a, a_se = adj[idx], adj_se[idx]
        own, _, _ = simulate(fit_laws(t, folds=folds), res.arrays["context"][sel], res.pmax, replicates, seed, j,
                             folds, models=OWN_TRACE)
        entry = {"results": r, "model": res.meta.get("model"), "contexts": int(sel.sum()), "P": P,
                 "real": real.mean(0)[idx].tolist(),
                 "real_stderr": (real.std(0, ddof=1)[idx] / np.sqrt(real.shape[0])).tolist(),
                 "real_adjusted": a.tolist(), "real_adjusted_stderr": a_se.tolist(),
                 "laws": {s: {m: _entry(*sims[s][m], idx, a, a_se) for m in SIMULATORS} for s in sources if s != t},
                 "own": {m: _entry(*own[m], idx, a, a_se) for m in OWN_TRACE}, "transfer": {}}
        base, base_se = own["prefix_text"]
        for s in sources:
            if s == t:
                continue
            (num, num_se), (den, den_se) = sims[s]["prefix"], sims[s]["prefix_text"]
            v = base[: res.pmax] * num[: res.pmax] / den[: res.pmax]
            rel = np.sqrt((base_se / base) ** 2 + (num_se / num)[: res.pmax] ** 2 + (den_se / den)[: res.pmax] ** 2)
            entry["transfer"][s] = _entry(v, v * rel, idx, a, a_se)
        entry["worst"] = {**{f"own:{m}": _worst(entry["own"][m], P) for m in OWN_TRACE},
                          **{f"transfer:{s}": _worst(x, P) for s, x in entry["transfer"].items()},
                          **{f"{m}:{s}": _worst(entry["laws"][s][m], P) for s in entry["laws"] for m in SIMULATORS}}
        out[t] = entry
    return Transfer(targets=out, sources=sources, replicates=replicates, seed=seed, folds=folds)
