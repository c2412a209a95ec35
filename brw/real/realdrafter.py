"""A real drafter against the real speed of light: self-speculative drafting by early exit, scored by the verifier.

The drafter is the verifier cut after its first L decoder layers (:func:`brw.real.models.early_exit`: LayerSkip's
early exit, here without LayerSkip's training; no extra weights). At a context its tree is its own best-first
tree (SpecExec): the P nodes of largest *drafter* path probability, found by :func:`brw.real.expansion.expand` run on
the drafter. The verifier scores it in one forward pass over the tree under its tree mask (what a verification
step computes), which gives the verifier's probability of every node's token given its path; the drafter's
accepted(P) is the running sum of the verifier's path probabilities in the drafter's order, for every
P <= pmax. Beside it stands the real optimal tree's accepted(P) on the same contexts (the verifier as its own
drafter, :mod:`brw.real.expansion`), read from a real-tree results file (:mod:`brw.real.realtree`).

The simulator's imperfect drafter (:class:`brw.drafting.Drafter`: log q = log p / T + sigma z, normalised) is
fitted from the two models' next-token distributions at recorded positions (:func:`fit_drafter`): at each
position, over the verifier's top-K tokens, the drafter's log-probabilities regressed on the verifier's with a
free intercept per position; the slope is 1/T and the residual standard deviation sigma.

The results file (:func:`real_drafter_trees` writes it resumably, one context at a time) is a NumPy .npz
opened with allow_pickle=False: ``format`` "brw-realdrafter", ``schema_version`` 1, ``meta`` (JSON: model,
model_sha256, dtype, P, layers, the real-tree file and its sha256, seed, and each layer's fit once made);
per context ``source``, ``row``, ``context``, ``offset`` (as in the real-tree file), ``optimal`` (contexts, P)
the real optimal accepted(P), ``accepted`` (contexts, layers, P) the drafter's, ``seconds`` (contexts, layers).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brw.errors import BrwError
from brw.files import sha256, write_npz
from brw.checks import whole_numbers
from brw.results import Result, default_at
from brw.traces import DATA_DIR

__all__ = ["score_tree", "drafter_tree", "fit_drafter", "real_drafter_trees", "load_real_drafter", "RealDrafter",
           "DrafterFit", "with_fits", "answer_positions", "simulated_gaps", "BUNDLED_RESULTS", "RESULTS_FORMAT", "FIT_TOP_K", "ACCURACY_RANKS"]

#: The bundled results (sims/real_drafter.py regenerates them).
BUNDLED_RESULTS = DATA_DIR / "realdrafter-smollm2.npz"
RESULTS_FORMAT = "brw-realdrafter"
RESULTS_SCHEMA = 1
#: Tokens per position in the fit: the verifier's top K (the tokens a tree of a few hundred nodes is made of).
FIT_TOP_K = 32
#: Ranks of the per-rank accuracy vectors recorded beside a fit.
ACCURACY_RANKS = 16


# --------------------------------------------------------------------------------------------------------
# One context.


def score_tree(model, context, parent, token) -> np.ndarray:
    """The verifier's log-probability of each node's token given its path, in one pass under a tree mask.

    Parameters
    ----------
    model : transformers causal LM
        The verifier.
    context : sequence of int
        Token ids, at least one.
    parent : sequence of int
        Each node's parent (an index into these arrays, parents first; -1 for a child of the root).
    token : sequence of int
        Each node's own token.

    Returns
    -------
    float64 array
        log p(token[i] | context, path to i); the path log-probability is its sum along the path.
    """
    from brw.real import models

    ctx = [int(t) for t in context]
    parent = np.asarray(parent, dtype=np.int64)
    token = np.asarray(token, dtype=np.int64)
    n = token.size
    if not ctx:
        raise BrwError("context needs at least one token")
    if parent.shape != token.shape or n == 0:
        raise BrwError("parent and token must be equal-length, non-empty")
    if np.any(parent >= np.arange(n)) or np.any(parent < -1):
        raise BrwError("every node's parent must come before it (or be -1, the root)")
    depth = np.empty(n, dtype=np.int64)
    allowed = np.zeros((n, len(ctx) + n), dtype=bool)
    allowed[:, :len(ctx)] = True
    for i in range(n):
        p = parent[i]
        depth[i] = 1 if p < 0 else depth[p] + 1
        if p >= 0:
            allowed[i, len(ctx):] = allowed[p, len(ctx):]
        allowed[i, len(ctx) + i] = True
    out = np.empty(n)
    root = parent < 0
    with models.inference():
        logits, cache = models.forward(model, [ctx], keep=1)
        out[root] = models.token_logprobs(logits[0, -1:], np.zeros(int(root.sum()), np.int64), token[root])
        if not root.all():
            tl, _ = models.forward(model, [token.tolist()], attend=allowed, positions=[(len(ctx) - 1 + depth).tolist()],
                                   cache=cache)
            out[~root] = models.token_logprobs(tl[0], parent[~root], token[~root])
    return out


def drafter_tree(verifier, drafter, context, pmax: int, lookahead=()) -> tuple[np.ndarray, object]:
    """The drafter's best-first tree below a context and the verifier's accepted(P) of it.

    Parameters
    ----------
    verifier, drafter : transformers causal LMs
        The drafter is, for example, ``brw.real.models.early_exit(verifier, L)``.
    context : sequence of int
        Token ids.
    pmax : int
        Nodes of the drafter's tree.
    lookahead : sequence of int
        Tokens believed to follow (speed only; see :func:`brw.real.expansion.expand`).

    Returns
    -------
    accepted : float64 array (pmax,)
        The verifier's sum of path probabilities over the drafter's P best nodes, P = 1..pmax.
    tree : brw.real.expansion.RealTree
        The drafter's tree (its own path log-probabilities in ``logprob``).
    """
    from brw.real.expansion import expand

    tree = expand(drafter, context, pmax, lookahead=lookahead)
    lp = score_tree(verifier, context, tree.parent, tree.token)
    path = np.empty_like(lp)
    for i, p in enumerate(tree.parent):
        path[i] = lp[i] + (path[p] if p >= 0 else 0.0)
    return np.cumsum(np.exp(path)), tree


# --------------------------------------------------------------------------------------------------------
# The fit of the simulator's drafter.


@dataclass(frozen=True)
class DrafterFit(Result):
    """The simulator's drafter fitted to a real one (log q = log p / T + sigma z over the verifier's top K).

    Attributes
    ----------
    layers : int
        The drafter's decoder layers.
    T, sigma : float
        Fitted temperature (1 / slope) and logit noise (residual standard deviation).
    positions : int
        Positions fitted.
    top_k : int
        Tokens per position (the verifier's top K).
    r2 : float
        Share of the within-position variance of the drafter's log-probabilities that the slope explains.
    top1_agreement : float
        How often the drafter's top token is the verifier's.
    accuracy : numpy.ndarray
        a_r = mean verifier probability of the drafter's rank-r token, r = 1..ACCURACY_RANKS (Sequoia's
        positional vector of this drafter).
    verifier_accuracy : numpy.ndarray
        The same for the verifier as its own drafter (the mean sorted vector).
    """

    layers: int
    T: float
    sigma: float
    positions: int
    top_k: int
    r2: float
    top1_agreement: float
    accuracy: np.ndarray
    verifier_accuracy: np.ndarray

    def _tidy(self) -> dict:
        r = np.arange(1, self.accuracy.size + 1)
        return {"layers": [self.layers] * r.size, "rank": r, "accuracy": self.accuracy,
                "verifier_accuracy": self.verifier_accuracy}


def fit_drafter(verifier, drafter_layers, sequences, top_k: int = FIT_TOP_K) -> list[DrafterFit]:
    """Fit the simulator's drafter to early-exit drafters from next-token distributions at given positions.

    Parameters
    ----------
    verifier : transformers causal LM
    drafter_layers : sequence of int
        Decoder layers of each early-exit drafter.
    sequences : list of (list of int, sequence of int)
        Token ids and the positions t whose next-token distribution (after ids[:t + 1]) is fitted.
    top_k : int
        Tokens per position (the verifier's top K).

    Returns
    -------
    list of DrafterFit
        One per drafter, in the order of ``drafter_layers``.
    """
    from brw.real import models

    layers = [int(x) for x in drafter_layers]
    drafters = [models.early_exit(verifier, L) for L in layers]
    sxx = 0.0
    sxy = np.zeros(len(layers))
    syy = np.zeros(len(layers))
    npos = 0
    agree = np.zeros(len(layers))
    acc = np.zeros((len(layers), ACCURACY_RANKS))
    vacc = np.zeros(ACCURACY_RANKS)
    with models.inference():
        for ids, pos in sequences:
            pos = np.asarray(pos, dtype=np.int64)
            if pos.size == 0:
                continue
            vl, _ = models.forward(verifier, [list(ids)], use_cache=False)
            v = vl[0][pos]
            vtop, vid = models.top_logprobs(v, top_k)
            rows = np.repeat(np.arange(pos.size), top_k)
            x = vtop - vtop.mean(1, keepdims=True)
            sxx += float((x * x).sum())
            vacc += np.exp(models.top_logprobs(v, ACCURACY_RANKS)[0]).sum(0)
            for j, d in enumerate(drafters):
                dl, _ = models.forward(d, [list(ids)], use_cache=False)
                q = dl[0][pos]
                y = models.token_logprobs(q, rows, vid.ravel()).reshape(pos.size, top_k)
                y = y - y.mean(1, keepdims=True)
                sxy[j] += float((x * y).sum())
                syy[j] += float((y * y).sum())
                _, did = models.top_logprobs(q, ACCURACY_RANKS)
                agree[j] += float((did[:, 0] == vid[:, 0]).sum())
                vp = models.token_logprobs(v, np.repeat(np.arange(pos.size), ACCURACY_RANKS), did.ravel())
                acc[j] += np.exp(vp).reshape(pos.size, ACCURACY_RANKS).sum(0)
            npos += pos.size
    if npos == 0:
        raise BrwError("fit_drafter needs at least one position")
    out = []
    for j, L in enumerate(layers):
        slope = sxy[j] / sxx
        resid = syy[j] - slope * sxy[j]
        dof = npos * (top_k - 1) - 1
        out.append(DrafterFit(L, float(1.0 / slope), float(np.sqrt(max(resid, 0.0) / dof)), npos, top_k,
                              float(slope * sxy[j] / syy[j]), float(agree[j] / npos), acc[j] / npos, vacc / npos))
    return out


# --------------------------------------------------------------------------------------------------------
# Many contexts, resumably.


@dataclass(frozen=True)
class RealDrafter(Result):
    """Real drafters' accepted(P) beside the real optimal tree's, per context (see the module's docstring).

    Attributes
    ----------
    meta : dict
        The file's settings (model, P, layers, sources, seed, real-tree file) and fits.
    arrays : dict
        ``source``, ``row``, ``context``, ``offset``, ``optimal``, ``accepted``, ``seconds``.
    path : str or None
        Where it was read from or written to.
    """

    meta: dict
    arrays: dict
    path: str | None = None

    @property
    def pmax(self) -> int:
        """Nodes per tree."""
        return int(self.meta["P"])

    @property
    def layers(self) -> list[int]:
        """Each drafter's decoder layers."""
        return [int(x) for x in self.meta["layers"]]

    def gap(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean over contexts of optimal - drafter accepted(P), and its standard error.

        Returns
        -------
        tuple of numpy.ndarray
            Each (layers, pmax).
        """
        g = self.arrays["optimal"][:, None, :].astype(np.float64) - self.arrays["accepted"]
        n = g.shape[0]
        se = g.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.full(g.shape[1:], np.nan)
        return g.mean(0), se

    def to_dict(self, at=None) -> dict:
        """Summary at chosen P.

        Parameters
        ----------
        at : sequence of int, optional
            Default: powers of two up to pmax, and pmax.

        Returns
        -------
        dict
            ``P``, ``contexts``, ``optimal`` and its ``optimal_stderr``, and per drafter (``drafters``, one dict per
            layer count): ``layers``, ``accepted``, ``stderr``, ``gap``, ``gap_stderr``, its fit when made.
        """
        at = default_at(self.pmax) if at is None else [int(p) for p in whole_numbers(at, "P", 1, self.pmax)]
        idx = np.asarray(at) - 1
        opt = self.arrays["optimal"].astype(np.float64)
        acc = self.arrays["accepted"].astype(np.float64)
        n = opt.shape[0]

        def se(a):
            return (a.std(0, ddof=1) / np.sqrt(n)) if n > 1 else np.full(a.shape[1:], np.nan)

        gap, gap_se = self.gap()
        fits = {int(f["layers"]): f for f in self.meta.get("fits", [])}
        return {"model": self.meta.get("model"), "P": at, "contexts": n,
                "optimal": opt.mean(0)[idx].tolist(), "optimal_stderr": se(opt)[idx].tolist(),
                "drafters": [{"layers": L, "accepted": acc[:, j].mean(0)[idx].tolist(),
                              "stderr": se(acc[:, j])[idx].tolist(), "gap": gap[j, idx].tolist(),
                              "gap_stderr": gap_se[j, idx].tolist(), "fit": fits.get(L)}
                             for j, L in enumerate(self.layers)]}

    def _tidy(self) -> dict:
        """Columns: layers, P, optimal, accepted, gap, gap_stderr (one row per drafter and P)."""
        gap, gap_se = self.gap()
        opt = self.arrays["optimal"].astype(np.float64).mean(0)
        acc = self.arrays["accepted"].astype(np.float64).mean(0)
        P = np.arange(1, self.pmax + 1)
        cols = {"layers": [], "P": [], "optimal": [], "accepted": [], "gap": [], "gap_stderr": []}
        for j, L in enumerate(self.layers):
            cols["layers"] += [L] * P.size
            cols["P"] += P.tolist()
            cols["optimal"] += opt.tolist()
            cols["accepted"] += acc[j].tolist()
            cols["gap"] += gap[j].tolist()
            cols["gap_stderr"] += gap_se[j].tolist()
        return cols


def _save(res: RealDrafter, path: Path) -> None:
    arrays = {"schema_version": np.array(RESULTS_SCHEMA, np.int64), "format": np.array(RESULTS_FORMAT),
              "meta": np.array(json.dumps(res.meta, sort_keys=True, allow_nan=False)), **res.arrays}
    write_npz(path, arrays)


def load_real_drafter(path) -> RealDrafter:
    """Read a real-drafter results file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    RealDrafter
    """
    p = Path(path)
    if not p.is_file():
        raise BrwError(f"real-drafter results {p} do not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    except Exception as e:
        raise BrwError(f"real-drafter results {p}: not a readable .npz archive ({type(e).__name__})") from None
    if str(raw.get("format", "")) != RESULTS_FORMAT or int(raw.get("schema_version", -1)) != RESULTS_SCHEMA:
        raise BrwError(f"{p} is not a real-drafter results file (format {RESULTS_FORMAT}, schema {RESULTS_SCHEMA})")
    meta = json.loads(str(raw.pop("meta")))
    raw.pop("format")
    raw.pop("schema_version")
    return RealDrafter(meta, raw, str(p))


def _empty(meta: dict) -> RealDrafter:
    P, E = int(meta["P"]), len(meta["layers"])
    return RealDrafter(meta, {"source": np.zeros(0, np.int16), "row": np.zeros(0, np.int64),
                              "context": np.zeros(0, np.int32), "offset": np.zeros(0, np.int32),
                              "optimal": np.zeros((0, P), np.float32), "accepted": np.zeros((0, E, P), np.float32),
                              "seconds": np.zeros((0, E))})


def real_drafter_trees(out, layers, *, realtrees=None, contexts: int = 8, model="smollm2", threads: int | None = None,
                       log=None) -> RealDrafter:
    """Early-exit drafters' best-first trees, scored by the verifier, beside the real optimal trees, resumably.

    The contexts are the first ``contexts`` of each source of a real-tree results file (in its order), whose
    optimal accepted(P) are read from it, so the model, its dtype and P are that file's.

    Parameters
    ----------
    out : str or Path
        The results file (.npz); an existing one with the same settings is resumed (its contexts skipped).
    layers : sequence of int
        Each drafter's decoder layers.
    realtrees : str, Path or None
        A real-tree results file (default: the bundled SmolLM2 trees).
    contexts : int
        Contexts per source.
    model : str or LoadedModel
        The verifier, as :func:`brw.real.models.load_model` takes it; it must be the real-tree file's model.
    threads : int or None
        torch's CPU threads.
    log : callable or None
        Called with a line of progress per context.

    Returns
    -------
    RealDrafter
    """
    from brw.real import models
    from brw.real.realtree import BUNDLED_RESULTS, load_realtrees
    from brw.traces import load_trace

    log = log or (lambda msg: None)
    rt_path = Path(realtrees) if realtrees is not None else BUNDLED_RESULTS
    rt = load_realtrees(rt_path)
    layers = [int(x) for x in layers]
    if not layers or len(set(layers)) != len(layers):
        raise BrwError(f"layers must be distinct decoder layer counts, got {layers!r}")
    if contexts < 1:
        raise BrwError(f"contexts must be at least 1, got {contexts}")
    out = Path(out)
    if out.suffix != ".npz" or not out.parent.is_dir():
        raise BrwError(f"out {out} must be a .npz file in an existing folder")
    src = rt.arrays["source"]
    plan = []
    for j, name in enumerate(rt.sources):
        idx = np.flatnonzero(src == j)[:contexts]
        if idx.size < contexts:
            raise BrwError(f"{rt_path} holds only {idx.size} contexts of {name}, fewer than contexts={contexts}")
        plan += idx.tolist()
    fixed = {"P": rt.pmax, "layers": layers, "model": rt.meta.get("model"), "model_sha256": rt.meta.get("model_sha256"),
             "dtype": rt.meta.get("dtype"), "realtrees": rt_path.name, "realtrees_sha256": sha256(rt_path),
             "sources": rt.meta["sources"], "contexts_per_source": contexts}
    old = load_real_drafter(out) if out.exists() else None
    if old is not None:
        diff = sorted(k for k in fixed if old.meta.get(k) != fixed[k])
        if diff:
            raise BrwError(f"{out} holds results made with other settings ({', '.join(diff)} differ); rerun with "
                           "the same settings to resume, or write to another file")
    if old is not None and {(int(src[i]), int(rt.arrays["row"][i])) for i in plan} <= set(
            zip(old.arrays["source"].tolist(), old.arrays["row"].tolist())):
        return old  # every planned context is done: nothing to load the model for
    models.set_threads(threads)
    lm = model if isinstance(model, models.LoadedModel) else models.load_model(model, device="cpu",
                                                                              dtype=rt.meta.get("dtype", "float32"))
    sha = lm.meta.get("model_sha256", lm.meta.get("model_fingerprint"))
    if sha != fixed["model_sha256"] or lm.dtype != fixed["dtype"]:
        raise BrwError(f"the model loaded ({lm.meta.get('model')}, {lm.dtype}) is not the one of {rt_path}")
    drafters = [models.early_exit(lm.model, L) for L in layers]
    res = old if old is not None else _empty({**fixed, "device": lm.device, "threads": models.thread_count()})
    done = set(zip(res.arrays["source"].tolist(), res.arrays["row"].tolist()))
    traces = [load_trace(s["file"].removeprefix("bundled:")) for s in rt.meta["sources"]]
    lookahead = int(rt.meta.get("lookahead", 0))
    for n, i in enumerate(plan):
        row = int(rt.arrays["row"][i])
        s = int(src[i])
        if (s, row) in done:
            continue
        tr = traces[s]
        c, off = int(rt.arrays["context"][i]), int(rt.arrays["offset"][i])
        ids = [int(t) for t in tr.context_ids(c)]
        accs, secs = [], []
        for d in drafters:
            t0 = time.perf_counter()
            acc, _ = drafter_tree(lm.model, d, ids[:off], rt.pmax, lookahead=ids[off:off + lookahead])
            secs.append(time.perf_counter() - t0)
            accs.append(acc)
        new = {"source": s, "row": row, "context": c, "offset": off, "optimal": rt.arrays["accepted"][i],
               "accepted": np.stack(accs), "seconds": np.array(secs)}
        arrays = {k: np.concatenate([a, np.asarray([new[k]], dtype=a.dtype)]) for k, a in res.arrays.items()}
        res = RealDrafter(res.meta, arrays, str(out))
        _save(res, out)
        log(f"context {n + 1}/{len(plan)} ({rt.sources[s]} row {row}): "
            + ", ".join(f"L={L} accepted(P={rt.pmax}) {a[-1]:.3f} in {t:.1f}s" for L, a, t in zip(layers, accs, secs))
            + f"; optimal {float(new['optimal'][-1]):.3f}")
    return RealDrafter(res.meta, res.arrays, str(out))


def with_fits(res: RealDrafter, fits: list[DrafterFit]) -> RealDrafter:
    """The results with the fits recorded in their meta, written back to their file.

    Parameters
    ----------
    res : RealDrafter
    fits : list of DrafterFit

    Returns
    -------
    RealDrafter
    """
    meta = {**res.meta, "fits": [f.to_dict() for f in fits]}
    new = RealDrafter(meta, res.arrays, res.path)
    if res.path is not None:
        _save(new, Path(res.path))
    return new


def answer_positions(trace, contexts: int) -> list[tuple[list[int], np.ndarray]]:
    """The recorded answer positions of a trace's first contexts, as :func:`fit_drafter` takes them.

    Parameters
    ----------
    trace : brw.traces.Trace
    contexts : int
        How many of its contexts (in order).

    Returns
    -------
    list of (list of int, int64 array)
        Each context's token ids and the positions t (the distribution after ids[:t + 1]) of its recorded
        answer rows.
    """
    out = []
    for c in range(min(contexts, len(trace.prompt_lengths))):
        rows = np.flatnonzero((trace.context == c) & (trace.offset >= trace.prompt_lengths[c]))
        out.append(([int(t) for t in trace.context_ids(c)], trace.offset[rows].astype(np.int64) - 1))
    return out


def simulated_gaps(res: RealDrafter, replicates: int = 400, seed: int = 0) -> dict:
    """What the simulator predicts for each fitted drafter, beside what the real drafter did.

    For each source s and each drafter's fit (T, sigma), :func:`brw.drafting.policies` scores the drafter's
    best-first tree (``specexec:T=..,sigma=..``) on the trees of the law ``trace:s`` (the recorded vectors,
    independent along the tree) against the frontier on the same trees; sources are pooled with the weights of
    the real contexts.

    Parameters
    ----------
    res : RealDrafter
        Results with fits (:func:`with_fits`).
    replicates : int
        Simulated trees per source.
    seed : int
        The simulation's seed.

    Returns
    -------
    dict
        ``P`` (all of 1..pmax), and per drafter (``drafters``): ``layers``, ``T``, ``sigma``, ``policy``,
        real ``optimal``, ``accepted``, ``gap``, ``gap_stderr``; simulated ``sim_frontier``, ``sim_accepted``,
        ``sim_gap``, ``sim_gap_stderr`` (lists over P).
    """
    from brw.drafting import Drafter, Policy, policies

    fits = {int(f["layers"]): f for f in res.meta.get("fits", [])}
    if set(fits) != set(res.layers):
        raise BrwError("simulated_gaps needs a fit for every drafter (with_fits)")
    names = [s["name"] for s in res.meta["sources"]]
    weights = np.array([np.sum(res.arrays["source"] == j) for j in range(len(names))], dtype=np.float64)
    weights /= weights.sum()
    gap, gap_se = res.gap()
    opt = res.arrays["optimal"].astype(np.float64).mean(0)
    acc = res.arrays["accepted"].astype(np.float64).mean(0)
    out = {"P": list(range(1, res.pmax + 1)), "replicates": replicates, "seed": seed, "drafters": []}
    for j, L in enumerate(res.layers):
        f = fits[L]
        pol = Policy("specexec", drafter=Drafter(T=f["T"], sigma=f["sigma"]))
        fr = np.zeros(res.pmax)
        pa = np.zeros(res.pmax)
        g = np.zeros(res.pmax)
        gv = np.zeros(res.pmax)
        for w, name in zip(weights, names):
            if w == 0:
                continue
            sim = policies(f"trace:{name}", res.pmax, [pol], replicates, seed)
            fr += w * sim.frontier
            pa += w * sim.accepted[0]
            g += w * sim.gap[0]
            gv += (w * sim.gap_stderr[0]) ** 2
        out["drafters"].append({"layers": L, "T": f["T"], "sigma": f["sigma"], "policy": pol.spec,
                                "optimal": opt.tolist(), "accepted": acc[j].tolist(), "gap": gap[j].tolist(),
                                "gap_stderr": gap_se[j].tolist(), "sim_frontier": fr.tolist(),
                                "sim_accepted": pa.tolist(), "sim_gap": g.tolist(),
                                "sim_gap_stderr": np.sqrt(gv).tolist()})
    return out
