"""Sampled chains on a real model: SmolLM2's early-exit drafters sampling their drafts, beside their committed
trees and the real speed of light, on the same contexts.

The real-drafter results (:mod:`brw.realdrafter`, bundled for SmolLM2-135M: 18 contexts, drafters that exit
after 29, 28 and 26 of its 30 layers) hold each drafter's committed tree (its own best-first tree, scored by the
verifier) and the real optimal tree at every P <= 256. They do not hold the drafter's q and the verifier's p at
each node, which the sampled schemes need; :func:`real_chains` computes them: it walks the real tree below each
context level by level, one forward pass of the verifier per level under a tree mask, reading every drafter's
distribution off the same pass (an early-exit drafter is the verifier's first L layers followed by its final norm
and head). At every node it adds the exact sums over all 49,152 children of the three node terms of a sampled
chain (token-by-token speculative sampling, block verification, the coupling ceiling; docs/theory.md section 9)
and walks on into the children whose ceiling weight is at least ``tau``, and into each lighter child with
probability weight / tau, counting it tau / weight times (Russian roulette, unbiased; the draws come from a
NumPy generator seeded by the seed, the context and the node). The result is each drafter's accepted(j) of a
sampled chain of j tokens, j <= k, per context: exact in expectation, with the roulette's noise in the spread
over contexts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from brw._version import __version__
from brw.errors import BrwError
from brw.real.realdrafter import BUNDLED_RESULTS, load_real_drafter
from brw.results import Result
from brw.traces import load_trace

__all__ = ["real_chains", "context_chains", "RealChains", "DEFAULT_TAU", "DEFAULT_K", "BATCH"]

#: Ceiling weight below which a node is walked at random (roulette).
DEFAULT_TAU = 0.01
#: The longest sampled chain.
DEFAULT_K = 16
#: Most tree nodes in one forward pass.
BATCH = 96


@dataclass(frozen=True)
class RealChains(Result):
    """Sampled chains of real early-exit drafters, per context, beside their committed trees and the optimum.

    Attributes
    ----------
    meta : dict
        model, layers, k, tau, seed, the real-drafter file it read.
    source, row : numpy.ndarray
        Each context's genre (index into meta["sources"]) and trace row, as in the real-drafter file.
    token, block, ceiling : numpy.ndarray
        Shape (contexts, layers, k): accepted(j) of a chain of j tokens sampled from the drafter, token by token,
        block-verified, and the most any lossless verification of it can accept.
    committed : numpy.ndarray
        Shape (contexts, layers, k): the drafter's committed (best-first) tree's accepted(P), P <= k, from the file.
    optimal : numpy.ndarray
        Shape (contexts, k): the real speed of light at P <= k, from the file.
    tv, kl, bc : numpy.ndarray
        Shape (contexts, layers): TV(p, q), KL(p || q) and sum sqrt(p q) at the context's root.
    nodes : numpy.ndarray
        Tree nodes evaluated per context.
    seconds : numpy.ndarray
        Time per context.
    version : str
    """

    meta: dict
    source: np.ndarray
    row: np.ndarray
    token: np.ndarray
    block: np.ndarray
    ceiling: np.ndarray
    committed: np.ndarray
    optimal: np.ndarray
    tv: np.ndarray
    kl: np.ndarray
    bc: np.ndarray
    nodes: np.ndarray
    seconds: np.ndarray
    version: str = __version__

    def summary(self, at=(1, 2, 4, 8, 16)) -> dict:
        """Means over contexts with standard errors, per drafter and P, and the paired differences.

        Parameters
        ----------
        at : sequence of int
            Chain lengths / node budgets P (at most k).

        Returns
        -------
        dict
            ``P`` and, per drafter (``drafters``: one dict per layer count), ``tv``, ``kl``, ``bc`` (mean over
            contexts), and for each of ``token``, ``block``, ``ceiling``, ``committed``, ``optimal``,
            ``block_minus_token``, ``block_over_token`` (ratio of means), ``token_minus_committed``,
            ``block_minus_committed``, ``block_minus_optimal``: lists over P of [mean, stderr].
        """
        at = [int(P) for P in at if 1 <= P <= self.token.shape[2]]
        idx = np.asarray(at) - 1
        n = self.token.shape[0]

        def ms(x):
            return [[float(m), float(s)] for m, s in zip(x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(n))]

        out = {"P": at, "contexts": int(n), "drafters": []}
        for i, L in enumerate(self.meta["layers"]):
            tok, blk, cei = self.token[:, i, idx], self.block[:, i, idx], self.ceiling[:, i, idx]
            com, opt = self.committed[:, i, idx], self.optimal[:, idx]
            out["drafters"].append({
                "layers": int(L), "tv": float(self.tv[:, i].mean()), "kl": float(self.kl[:, i].mean()),
                "bc": float(self.bc[:, i].mean()), "token": ms(tok), "block": ms(blk), "ceiling": ms(cei),
                "committed": ms(com), "optimal": ms(opt), "block_minus_token": ms(blk - tok),
                "block_over_token": [float(b) for b in blk.mean(axis=0) / tok.mean(axis=0)],
                "token_minus_committed": ms(tok - com), "block_minus_committed": ms(blk - com),
                "block_minus_optimal": ms(blk - opt)})
        return out

    def to_dict(self) -> dict:
        """The meta, the summary and the per-context arrays as lists.

        Returns
        -------
        dict
        """
        d = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        d["summary"] = self.summary()
        return d

    def _tidy(self) -> dict:
        cols: dict = {c: [] for c in ("source", "row", "layers", "k", "token", "block", "ceiling", "committed",
                                      "optimal")}
        for c in range(self.token.shape[0]):
            for i, L in enumerate(self.meta["layers"]):
                for j in range(self.token.shape[2]):
                    for key, v in (("source", int(self.source[c])), ("row", int(self.row[c])), ("layers", int(L)),
                                   ("k", j + 1), ("token", self.token[c, i, j]), ("block", self.block[c, i, j]),
                                   ("ceiling", self.ceiling[c, i, j]), ("committed", self.committed[c, i, j]),
                                   ("optimal", self.optimal[c, j])):
                        cols[key].append(v)
        return cols


def real_chains(results=None, *, k: int = DEFAULT_K, tau: float = DEFAULT_TAU, seed: int = 0, contexts=None,
                model=None, threads: int | None = None, log=None) -> RealChains:
    """Sampled chains of a real-drafter file's early-exit drafters, on its contexts.

    Parameters
    ----------
    results : str or Path or None
        A real-drafter results file (:mod:`brw.realdrafter`); None: the bundled SmolLM2 one.
    k : int
        The longest chain (default ``DEFAULT_K``).
    tau : float
        Roulette threshold on a node's ceiling weight (default ``DEFAULT_TAU``).
    seed : int
        Seed of the roulette's draws.
    contexts : int or None
        The first this many contexts of the file (default: all).
    model : brw.models.LoadedModel or None
        The verifier, if loaded already (it must be the file's model); None loads it.
    threads : int or None
        Torch threads.
    log : callable or None
        Called with a line per context.

    Returns
    -------
    RealChains
    """
    from brw.real import models

    log = log or (lambda msg: None)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 64:
        raise BrwError(f"k must be a whole number in 1..64, got {k!r}")
    if not (isinstance(tau, (int, float)) and 0 < tau <= 1):
        raise BrwError(f"tau must be a number in (0, 1], got {tau!r}")
    rd = load_real_drafter(BUNDLED_RESULTS if results is None else results)
    layers = [int(L) for L in rd.meta["layers"]]
    n = rd.arrays["source"].size if contexts is None else min(int(contexts), rd.arrays["source"].size)
    models.set_threads(threads)
    lm = model if model is not None else models.load_model("smollm2", device="cpu", dtype=rd.meta.get("dtype", "float32"))
    sha = lm.meta.get("model_sha256", lm.meta.get("model_fingerprint"))
    if sha != rd.meta["model_sha256"]:
        raise BrwError(f"the model loaded ({lm.meta.get('model')}) is not the one of the real-drafter file")
    traces = [load_trace(s["file"].removeprefix("bundled:")) for s in rd.meta["sources"]]
    shape = (n, len(layers), k)
    tok, blk, cei = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    tv, kl, bc = np.zeros((n, len(layers))), np.zeros((n, len(layers))), np.zeros((n, len(layers)))
    nodes, secs = np.zeros(n, dtype=np.int64), np.zeros(n)
    for c in range(n):
        t0 = time.perf_counter()
        s, ctx = int(rd.arrays["source"][c]), int(rd.arrays["context"][c])
        ids = [int(t) for t in traces[s].context_ids(ctx)][:int(rd.arrays["offset"][c])]
        tok[c], blk[c], cei[c], nodes[c], (tv[c], kl[c], bc[c]) = context_chains(lm.model, ids, layers, k, tau,
                                                                                 [seed, c])
        secs[c] = time.perf_counter() - t0
        log(f"context {c + 1}/{n}: {nodes[c]} nodes in {secs[c]:.1f}s; "
            + ", ".join(f"L={L} token {tok[c, i, min(7, k - 1)]:.3f} block {blk[c, i, min(7, k - 1)]:.3f}"
                        for i, L in enumerate(layers)))
    meta = {"model": lm.meta.get("model"), "model_sha256": sha, "layers": layers, "k": k, "tau": float(tau),
            "seed": int(seed), "results": str(rd.path), "sources": [src["name"] for src in rd.meta["sources"]]}
    committed = np.asarray(rd.arrays["accepted"][:n, :, :k], dtype=np.float64)  # P <= k: what chains are set beside
    optimal = np.asarray(rd.arrays["optimal"][:n, :k], dtype=np.float64)
    return RealChains(meta, rd.arrays["source"][:n].copy(), rd.arrays["row"][:n].copy(), tok, blk, cei, committed,
                      optimal, tv, kl, bc, nodes, secs)


def _root_quality(p0, root_q):
    """(TV, KL(p || q), Bhattacharyya coefficient) of each drafter's root distribution against the verifier's."""
    return (np.array([0.5 * np.abs(p0 - q[0]).sum() for q in root_q]),
            np.array([float(np.sum(np.where(p0 > 0, p0 * (np.log(np.maximum(p0, 1e-300))
                                                       - np.log(np.maximum(q[0], 1e-300))), 0.0)))
                      for q in root_q]),
            np.array([float(np.sqrt(p0 * q[0]).sum()) for q in root_q]))


def _next_level(level: dict, p, qs, nd: int, j: int, k: int, tau: float, gen, levels) -> dict:
    """Add level j's terms (token by token, block, the coupling ceiling) of every drafter into ``levels`` and
    return the next level's nodes: the children kept by weight, light ones at random and reweighted (Russian
    roulette, unbiased)."""
    nxt = {"tok": [], "anc": [], "P": [], "Q": [], "T": [], "W": [], "I": []}
    for i in range(p.shape[0]):
        keep = np.zeros(p.shape[1], dtype=bool)
        imps = np.zeros((nd, p.shape[1]))
        for d in range(nd):
            I = level["I"][i, d]
            if I <= 0:
                continue
            q = qs[d][i]
            P, Q, T, W = level["P"][i], level["Q"][i, d], level["T"][i, d], level["W"][i, d]
            cP, cQ = P * p[i], Q * q
            ceil = np.minimum(cP, cQ)
            levels[0, d, j] += I * T * np.minimum(p[i], q).sum()
            levels[1, d, j] += I * np.minimum(W * p[i], cQ).sum()
            levels[2, d, j] += I * ceil.sum()
            if j + 1 == k:
                continue
            e = I * ceil
            heavy = e >= tau
            u = gen.random(e.size)
            light = ~heavy & (u * tau < e)
            imps[d, heavy] = I
            imps[d, light] = tau / ceil[light]
            keep |= heavy | light
        for x in np.flatnonzero(keep):
            nxt["tok"].append(int(x))
            nxt["anc"].append(level["anc"][i] + ([level["slot"][i]] if j > 0 else []))
            nxt["P"].append(level["P"][i] * p[i, x])
            qx = np.array([qs[d][i, x] for d in range(nd)])
            nxt["Q"].append(level["Q"][i] * qx)
            nxt["T"].append(level["T"][i] * np.minimum(p[i, x], qx))
            nxt["W"].append(np.minimum(level["W"][i] * p[i, x], level["Q"][i] * qx))
            nxt["I"].append(imps[:, x])
    return nxt


def context_chains(model, ids, layers, k: int = DEFAULT_K, tau: float = DEFAULT_TAU, seed=0):
    """Every early-exit drafter's sampled chain below one context of a real model, by a walk over its real tree.

    Parameters
    ----------
    model : transformers causal LM
        The verifier (Llama-style: ``model.model.layers``, ``model.model.norm``, ``model.lm_head``).
    ids : sequence of int
        The context's token ids.
    layers : sequence of int
        Each drafter's decoder layers (it reads the verifier's hidden state after them through the final norm
        and head, as ``brw.models.early_exit`` does).
    k : int
        The longest chain.
    tau : float
        Roulette threshold on a node's ceiling weight (a node at or above it is always walked).
    seed : int or sequence of int
        Seed of the roulette's draws (a NumPy ``SeedSequence`` entropy).

    Returns
    -------
    tuple
        ``(token, block, ceiling, nodes, (tv, kl, bc))``: three (len(layers), k) arrays of accepted(j) of a sampled
        chain of j tokens, the tree nodes evaluated, and TV(p, q), KL(p || q), sum sqrt(p q) at the root per
        drafter.
    """
    from brw.real import models

    layers = [int(L) for L in layers]
    seq = np.random.SeedSequence(seed)

    nd = len(layers)
    captured: dict = {}
    hooks = [model.model.layers[L - 1].register_forward_hook(
        lambda mod, inp, out, L=L: captured.__setitem__(L, out[0] if isinstance(out, tuple) else out))
        for L in layers]
    gen = np.random.default_rng(seq)
    try:
        with models.inference():
            logits, cache = models.forward(model, [ids])
            dists = _dists(model, logits[0, -1:], [captured[L][0, -1:] for L in layers])
            root_q = dists[1]
            p0 = dists[0][0]
            root = _root_quality(p0, root_q)
            # the current level: per node its token, cache slot, ancestors' slots, and per drafter P, Q, T, W, I
            level = {"tok": [None], "anc": [[]], "P": np.ones(1), "Q": np.ones((1, nd)), "T": np.ones((1, nd)),
                     "W": np.ones((1, nd)), "I": np.ones((1, nd))}
            pending = dists
            clen = len(ids)
            total = 1
            levels = np.zeros((3, nd, k))
            for j in range(k):
                p, qs = pending
                nxt = _next_level(level, p, qs, nd, j, k, tau, gen, levels)
                if j + 1 == k or not nxt["tok"]:
                    break
                m = len(nxt["tok"])
                level = {"tok": nxt["tok"], "anc": nxt["anc"], "P": np.array(nxt["P"]), "Q": np.array(nxt["Q"]),
                         "T": np.array(nxt["T"]), "W": np.array(nxt["W"]), "I": np.array(nxt["I"]),
                         "slot": list(range(clen, clen + m))}
                ps, qsl = [], [[] for _ in range(nd)]
                for b in range(0, m, BATCH):  # the level's nodes, a batch at a time, into the cache
                    sl = range(b, min(m, b + BATCH))
                    attend = np.zeros((len(sl), clen + len(sl)), dtype=bool)
                    attend[:, :len(ids)] = True
                    for r, i in enumerate(sl):
                        attend[r, level["anc"][i]] = True
                        attend[r, clen + r] = True
                    pos = [[len(ids) + j for _ in sl]]  # depth j + 1, at position len(ids) - 1 + depth
                    logits, cache = models.forward(model, [[level["tok"][i] for i in sl]], attend=attend,
                                                   positions=pos, cache=cache)
                    pb, qb = _dists(model, logits[0], [captured[L][0] for L in layers])
                    ps.append(pb)
                    for d in range(nd):
                        qsl[d].append(qb[d])
                    clen += len(sl)
                total += m
                pending = (np.concatenate(ps), [np.concatenate(x) for x in qsl])
    finally:
        for h in hooks:
            h.remove()
    return (np.cumsum(levels[0], axis=1), np.cumsum(levels[1], axis=1), np.cumsum(levels[2], axis=1), total,
            root)


def _dists(model, logits, hidden):
    """(p, [q per drafter]): float64 probabilities of the verifier's logits and of each drafter's, read off its
    hidden state through the verifier's final norm and head."""
    from brw.real.models import probabilities64

    p = probabilities64(logits)
    qs = [probabilities64(model.lm_head(model.model.norm(h))) for h in hidden]
    return p, qs
