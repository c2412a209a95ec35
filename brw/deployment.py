"""A deployment against the speed of light: what it measured, the best any drafter could do with the same
budget, whether a tree would help, and which k is fastest.

:func:`against_limit` takes a :class:`brw.engines.Measurement` (what an engine logged: drafts of k tokens and
the share s_j of steps that accepted at least j of them) and reports, at the deployment's budget k:

1. what it measured (``accepted_per_step``, bonus token excluded; ``acceptance_length``, included);
2. with the verifier's law (``law``: a trace recorded on the same model, imported logprobs, or any law spec as
   a labelled stand-in), ``speed_of_light`` = accepted of the optimal k-node tree (:func:`brw.frontier`) and
   ``chain_speed_of_light`` = accepted of the best k-token chain (:func:`best_chain`), both on the same
   simulated trees, with the greedy chain beside them. These bound deterministic drafting (the drafter commits
   to tokens and the verifier checks them: theory.md section 7b). A drafter that samples its drafts and is
   verified by speculative sampling is outside that bound (a drafter with q = p accepts every token), so a
   measurement above it says so rather than being a contradiction;
3. Sequoia's dynamic program (:mod:`brw.sequoia`) on the measured positional acceptance: is a tree of the same
   k + 1 nodes worth it, and which shape. A chain measures its drafter's first choice only (the constant
   rank-1 acceptance a with a + a^2 + ... + a^k = accepted_per_step); ranks 2..W are not in any chain's log,
   so they are filled by a stated model: with a law, the mass the drafter's first choice misses is spread over
   ranks 2..W in the proportions of the verifier's own ranks (``brw.drafting.rank_accuracy``); without one, the
   most favourable vector the first rank allows (p_r <= a, sum <= 1), an upper bound on what a tree can gain
   under Sequoia's model;
4. with a verifier cost (``cost``: a ``brw costcurve`` table, a table of one's own or
   ``roofline:t1=...,knee=...``; :func:`brw.speedup.step_seconds`), tokens per second against k = 0..K for the
   measured drafter and for the speed of light, the recommended k (k = 0 is plain decoding) and the headroom.
   Beyond the measured k the drafter's survival is extrapolated: the conditional acceptance a_j = s_j / s_(j-1)
   is fitted by a_j = A r^(j - 1) (geometric decay, weighted least squares on log a_j with binomial weights;
   where the fit rises, the last measured a_k is held flat instead), so s_j = s_k a_(k+1) ... a_j. Intervals (95%) come from 2000 draws of the survival vector from a
   normal law with the measurement's covariance, each refitted: they carry the sampling error given the model,
   not the model's own error.

The best chain. A chain of j nodes v_1..v_j (v_1 a child of the root, each the next one's parent) drafted
deterministically accepts E[X] = pi(v_1) + ... + pi(v_j) (pi the path probability). The greedy chain takes the
most probable child each time; it is not always best (a less probable child may lead to a near-certain run).
:func:`best_chain` finds the best chain of every length j <= K exactly on each simulated tree by branch and
bound (``brw._kernels.best_chain_one``): below a node of probability pi, every later node has at most ``top``
times its parent's probability, ``top`` the largest probability any node's vector can hold, so a chain through
it is worth at most its prefix sum plus pi (1 + top + ... + top^m); children are tried in decreasing
probability and a subtree is entered only if that bound beats the best chain found so far for some length.
The tests hold it against exhaustive enumeration and the closed form of deterministic laws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from brw import _kernels as K
from brw._version import __version__
from brw.engines import Measurement, read_deployment
from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.solver import frontier, root_keys, run_replicates, thread_count
from brw.kernel_law import KIND_TABLE, gem_cut, kernel_args
from brw.laws import parse_law
from brw.drafting import rank_accuracy
from brw.results import Result
from brw.sequoia import sequoia_tree
from brw.speedup import parse_cost, step_seconds

__all__ = ["ChainResult", "Deployment", "best_chain", "against_limit", "deployment", "fit_decay", "extrapolate",
           "CHAIN_BUDGET", "MAX_K", "SEQUOIA_RANKS", "DRAWS"]

#: Nodes the best-chain search may visit per tree before it gives up (a near-uniform law with a long chain).
CHAIN_BUDGET = 2_000_000
#: The longest chain brw.deployment considers (max_k, the best chain).
MAX_K = 4096
#: Ranks of the positional vector given to Sequoia's program.
SEQUOIA_RANKS = 16
#: Draws of the survival vector behind the tokens-per-second intervals.
DRAWS = 2000
#: What the speed of light bounds.
SCOPE = ("deterministic drafting (the drafter commits to tokens, theory.md section 7b); a drafter verified by "
         "speculative sampling is bounded by how far its q is from p instead, and may exceed it")


# --------------------------------------------------------------------------------------------------------
# The best chain.


@dataclass(frozen=True)
class ChainResult(Result):
    """Best and greedy chains of every length 1..kmax on independent replicate trees of a law.

    ``best[j - 1]`` and ``greedy[j - 1]``: mean accepted (bonus excluded) over the replicates of the best and
    the greedy chain of j nodes; ``*_stderr`` their standard errors; ``per_replicate_best``, shape
    (replicates, kmax). Replicate r is the tree of ``brw.frontier`` with the same seed and replicate index.
    """

    law: str
    kmax: int
    replicates: int
    seed: int
    best: np.ndarray
    best_stderr: np.ndarray
    greedy: np.ndarray
    greedy_stderr: np.ndarray
    per_replicate_best: np.ndarray
    per_replicate_greedy: np.ndarray
    visited: int
    version: str = __version__

    def to_dict(self) -> dict:
        """The chains' means.

        Returns
        -------
        dict
            law, kmax, replicates, seed, best and greedy (lists over j = 1..kmax) with their stderr, visited
            (nodes the search entered in all) and version.
        """
        return {"law": self.law, "kmax": self.kmax, "replicates": self.replicates, "seed": self.seed,
                "best": self.best.tolist(), "best_stderr": self.best_stderr.tolist(), "greedy": self.greedy.tolist(),
                "greedy_stderr": self.greedy_stderr.tolist(), "visited": self.visited, "version": self.version}

    def _tidy(self) -> dict:
        """Columns j, best, best_stderr, greedy, greedy_stderr."""
        return {"j": np.arange(1, self.kmax + 1), "best": self.best, "best_stderr": self.best_stderr,
                "greedy": self.greedy, "greedy_stderr": self.greedy_stderr}


def best_chain(law, kmax: int, replicates: int = 1000, seed: int = 0, *, threads: int | None = None,
               budget: int = CHAIN_BUDGET) -> ChainResult:
    """The best chain of j nodes, j = 1..kmax, exactly, on replicate trees of a law (and the greedy chain).

    Parameters
    ----------
    law : Law or str
        The verifier's step law.
    kmax : int
        The longest chain.
    replicates : int
        Independent trees (the frontier's: same seed, same trees).
    seed : int
        Whole number >= 0.
    threads : int, optional
        Worker threads; results do not depend on it.
    budget : int
        Nodes the search may enter per tree (``CHAIN_BUDGET``).

    Returns
    -------
    ChainResult

    Raises
    ------
    BrwError
        For a bad law or size, or when a tree needs more than ``budget`` nodes (a law so flat that many chains
        are nearly as good: lower kmax).
    """
    law = parse_law(law)
    kmax = whole_number(kmax, "k")
    replicates = whole_number(replicates, "replicates")
    seed = whole_number(seed, "seed", 0)
    if kmax > MAX_K:
        raise BrwError(f"the best chain is searched up to {MAX_K} tokens, not {kmax} (k, or max_k)")
    args = kernel_args(law, gem_cut(law, kmax))
    top = float(np.exp(np.max(args.table[:, 0]))) if args.kind == KIND_TABLE else 1.0
    keys = root_keys(seed, replicates)
    best = np.zeros((replicates, kmax))
    greedy = np.zeros((replicates, kmax))
    visited = np.zeros(replicates, dtype=np.int64)
    nt = thread_count(threads)
    run_replicates(K.best_chain_batch, replicates, nt, *args.vector_args, keys, kmax, min(top, 1.0), args.width,
                   best, greedy, visited, int(budget))
    if np.any(visited < 0):
        raise BrwError(f"the best chain of {kmax} tokens on {law} needs more than {budget} nodes per tree (many "
                       "chains nearly as good); lower k")
    se = (lambda a: a.std(axis=0, ddof=1) / math.sqrt(replicates) if replicates > 1 else np.full(kmax, np.nan))
    return ChainResult(str(law), kmax, replicates, seed, best.mean(axis=0), se(best), greedy.mean(axis=0), se(greedy),
                       best, greedy, int(visited.sum()))


# --------------------------------------------------------------------------------------------------------
# Extrapolating the measured survival beyond k.


def fit_decay(survival, drafts: float) -> tuple[float, float]:
    """Fit a_j = A r^(j - 1) to the conditional acceptance a_j = s_j / s_(j-1) of a measured survival.

    Parameters
    ----------
    survival : array_like
        s_1..s_k, non-increasing, in [0, 1].
    drafts : float
        Steps behind it (the binomial weights: position j rests on drafts * s_(j-1) steps).

    Returns
    -------
    tuple of float
        (A, r), with 0 <= r <= 1 and A in [0, 1]. Where the fit rises (no decay), r = 1 and A is the last
        measured conditional rate; with one usable position, r = 1 and A is that position's rate.
    """
    s = np.asarray(survival, dtype=np.float64)
    prev = np.concatenate([[1.0], s[:-1]])
    use = (prev > 0) & (s > 0)
    if not np.any(use):
        return 0.0, 1.0
    a = s[use] / prev[use]
    n = np.maximum(drafts * prev[use], 1.0)
    j = np.nonzero(use)[0].astype(np.float64)  # j - 1 for position j
    var = (1.0 - a + 0.5 / n) / (np.maximum(a, 0.5 / n) * n)  # of log a_j, binomial, kept off 0
    w = 1.0 / var
    y = np.log(np.clip(a, 1e-300, 1.0))
    if use.sum() >= 2:
        jm, ym = np.average(j, weights=w), np.average(y, weights=w)
        sxx = float(np.sum(w * (j - jm) ** 2))
        beta = float(np.sum(w * (j - jm) * (y - ym)) / sxx) if sxx > 0 else 0.0
        alpha = ym - beta * jm
        if beta > 0:  # rates that rise: no decay to fit; the last measured rate, held flat
            alpha, beta = float(y[-1]), 0.0
    else:
        beta, alpha = 0.0, float(y[0])
    return float(min(math.exp(alpha), 1.0)), float(math.exp(beta))


def extrapolate(survival, drafts: float, kmax: int) -> np.ndarray:
    """The survival s_1..s_kmax: measured up to k, extrapolated beyond it with :func:`fit_decay`.

    Parameters
    ----------
    survival : array_like
        Measured s_1..s_k.
    drafts : float
        Steps behind it.
    kmax : int
        Positions wanted.

    Returns
    -------
    numpy.ndarray
        s_1..s_kmax (the measured values first; beyond k, s_j = s_k prod_{i=k+1..j} min(1, A r^(i-1))).
    """
    s = np.asarray(survival, dtype=np.float64)
    k = s.size
    if kmax <= k:
        return s[:kmax].copy()
    A, r = fit_decay(s, drafts)
    i = np.arange(k + 1, kmax + 1)
    cond = np.minimum(1.0, A * r ** (i - 1.0))
    return np.concatenate([s, s[-1] * np.cumprod(cond)])


def _rank1(accepted: float, k: int) -> float:
    """The constant a in [0, 1] with a + a^2 + ... + a^k = accepted (Sequoia's rank-1 acceptance)."""
    if accepted >= k:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if sum(mid ** j for j in range(1, k + 1)) < accepted:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------------------
# The answer.


@dataclass(frozen=True)
class Deployment(Result):
    """A measurement against the limit (see the module's docstring); ``to_dict`` gives the ``brw deployment``
    keys."""

    measurement: Measurement
    limit: dict
    version: str = __version__

    def to_dict(self) -> dict:
        """The measurement's keys and the limit's.

        Returns
        -------
        dict
            ``Measurement.to_dict()``; with a law: law, law_mu, law_mu2 (and law_mu_bracket for imported
            logprobs), law_model, replicates, seed, speed_of_light (accepted of the optimal k-node tree) with
            its stderr, chain_speed_of_light (the best k-token chain) and greedy_chain with theirs,
            share_of_speed_of_light and share_of_chain_speed_of_light (measured / limit), speed_of_light_scope;
            sequoia (Sequoia's tree of k + 1 nodes on the measured rank-1 acceptance: acceptance, model, n,
            depth, widths, tokens_per_step, chain_tokens_per_step, gain); with a cost: cost, draft_step,
            draft_token, k_values (0..K), tokens_per_second (the measured drafter, list) and
            tokens_per_second_ci, accepted_model (accepted per step behind it), extrapolation,
            recommended_k, recommended_k_support, recommended_tokens_per_second, deployed_tokens_per_second,
            plain_tokens_per_second, and with a law speed_of_light_tokens_per_second,
            chain_speed_of_light_tokens_per_second, speed_of_light_k, headroom.
        """
        return {**self.measurement.to_dict(), **self.limit, "version": self.version}

    def _tidy(self) -> dict:
        """Columns k, tokens_per_second, low, high (one row per k = 0..K; empty without a cost)."""
        ks = self.limit.get("k_values", [])
        ci = np.array(self.limit.get("tokens_per_second_ci", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
        return {"k": ks, "tokens_per_second": self.limit.get("tokens_per_second", []), "low": ci[:, 0],
                "high": ci[:, 1]}


def _law_trace(law):
    t = getattr(law, "trace", None)
    if t is None:
        t = getattr(getattr(law, "base", None), "trace", None)
    return t


def _base_name(name: str) -> str:
    return str(name).split(" (")[0].strip().rstrip("/").split("/")[-1].lower()


def _check_model(measurement: Measurement, law) -> str | None:
    trace = _law_trace(law)
    named = (trace.meta.get("model") if trace is not None else None) or None
    if named and measurement.model and named.strip().lower() not in ("unknown", "none"):
        a, b = _base_name(measurement.model), _base_name(named)
        if a and b and a not in b and b not in a:
            raise BrwError(f"the deployment's files name the model {clip(measurement.model, 60)!r} but the law "
                           f"{clip(str(law), 60)} was recorded on {clip(named, 60)!r}; give a trace of the "
                           "deployment's own model (or a law spec as a labelled stand-in)")
    return named


def _against_law(m, law, k: int, kmax: int, replicates: int, seed: int, threads, out: dict):
    """The speed of light at the deployment's budget (the optimal k-node tree, the best and the greedy k-chain
    on the same simulated trees), written into ``out``; returns the frontier and chain results."""
    named = _check_model(m, law)
    front = frontier(law, kmax, replicates, seed, keep=[k], threads=threads)
    chain = best_chain(law, kmax, replicates, seed, threads=threads)
    trace = _law_trace(law)
    out.update({"law": str(law), "law_mu": law.mu, "law_mu2": law.mu2, "law_model": named,
                "replicates": replicates, "seed": seed})
    lo = getattr(trace, "entropy_lo", None) if trace is not None else None
    hi = getattr(trace, "entropy_hi", None) if trace is not None else None
    if lo is not None and hi is not None:
        out["law_mu_bracket"] = [float(np.mean(lo)), float(np.mean(hi))]
    sol, chain_sol = float(front.accepted[k - 1]), float(chain.best[k - 1])
    gap = front.replicate_values[:, 0] - chain.per_replicate_best[:, k - 1]
    out.update({"speed_of_light": sol, "speed_of_light_stderr": float(front.stderr[k - 1]),
                "chain_speed_of_light": chain_sol, "chain_speed_of_light_stderr": float(chain.best_stderr[k - 1]),
                "greedy_chain": float(chain.greedy[k - 1]),
                "greedy_chain_stderr": float(chain.greedy_stderr[k - 1]),
                "tree_over_chain": float(gap.mean()),
                "tree_over_chain_stderr": float(gap.std(ddof=1) / math.sqrt(replicates)) if replicates > 1
                else math.nan,
                "share_of_speed_of_light": m.accepted_per_step / sol if sol > 0 else None,
                "share_of_chain_speed_of_light": m.accepted_per_step / chain_sol if chain_sol > 0 else None,
                "speed_of_light_scope": SCOPE})
    notes = []
    if m.accepted_per_step_ci[0] > chain_sol + 3 * float(chain.best_stderr[k - 1] or 0):
        notes.append("the measured accepted per step is above the deterministic chain's speed of light: a drafter "
                     "verified by speculative sampling (outside that bound), or a law that is not this verifier's")
    if notes:
        out["limit_notes"] = notes
    return front, chain


def _against_cost(m, cost_obj, T, max_k: int, draft_step: float, draft_token: float, draws: int, seed: int,
                  front, chain, out: dict) -> None:
    """Tokens per second against k for the measured drafter (extrapolated beyond its k, with intervals) and,
    given the law's frontier and chains, for the speed of light; the recommended k and the headroom, into
    ``out``."""
    surv = extrapolate(m.survival, m.drafts, max_k)
    acc = np.concatenate([[0.0], np.cumsum(surv)])
    rate = (1.0 + acc) / T
    A, r = fit_decay(m.survival, m.drafts)
    sims = _draws(m, max_k, draws, seed)
    sim_rate = (1.0 + sims) / T
    ci = np.percentile(sim_rate, [2.5, 97.5], axis=0).T
    best = int(np.argmax(rate))
    support = float(np.mean(np.argmax(sim_rate, axis=1) == best))
    out.update({"cost": cost_obj.spec, "draft_step": float(draft_step), "draft_token": float(draft_token),
                "k_values": list(range(max_k + 1)), "step_seconds": T.tolist(), "accepted_model": acc.tolist(),
                "tokens_per_second": rate.tolist(), "tokens_per_second_ci": ci.tolist(),
                "extrapolation": {"model": "a_j = A r^(j-1), s_j = s_k a_(k+1) ... a_j beyond the measured k",
                                  "A": A, "r": r, "measured_up_to": m.k},
                "recommended_k": best, "recommended_k_support": support,
                "recommended_tokens_per_second": float(rate[best]),
                "deployed_tokens_per_second": float(rate[m.k]), "plain_tokens_per_second": float(rate[0]),
                "speedup_recommended": float(rate[best] / rate[0]),
                "speedup_deployed": float(rate[m.k] / rate[0])})
    if front is not None:
        sol_rate = np.concatenate([[1.0], 1.0 + front.accepted]) / T
        chain_rate = np.concatenate([[1.0], 1.0 + chain.best]) / T
        sk = int(np.argmax(sol_rate))
        out.update({"speed_of_light_tokens_per_second": sol_rate.tolist(),
                    "chain_speed_of_light_tokens_per_second": chain_rate.tolist(), "speed_of_light_k": sk,
                    "chain_speed_of_light_k": int(np.argmax(chain_rate)),
                    "headroom": float(sol_rate[sk] / rate[best])})


def against_limit(measurement, law=None, cost=None, *, max_k: int | None = None, draft_step: float = 0.0,
                  draft_token: float = 0.0, replicates: int = 1000, seed: int = 0, threads: int | None = None,
                  draws: int = DRAWS) -> Deployment:
    """A deployment's measurement against the speed of light and its hardware (see the module's docstring).

    Parameters
    ----------
    measurement : Measurement
        What the engine logged (:func:`brw.engines.read_deployment`).
    law : str or Law, optional
        The verifier's step law: ``trace:PATH`` of the same model (a log that names another model than the
        trace is refused), a bundled trace, an imported-logprobs trace, or any spec as a stand-in.
    cost : str, path or VerifierCost, optional
        The verifier's cost per forward (:func:`brw.speedup.parse_cost`).
    max_k : int, optional
        The largest k of the tokens-per-second curve (default: max(2k, 8), within what the cost covers).
    draft_step, draft_token : float
        The drafter's seconds per step and per draft token (default 0: a free drafter, such as n-gram lookup).
    replicates, seed : int
        Simulated trees of the law (default 1000, seed 0).
    threads : int, optional
        Worker threads of the simulation.
    draws : int
        Draws behind the tokens-per-second intervals (default ``DRAWS``, seeded by ``seed``).

    Returns
    -------
    Deployment

    Raises
    ------
    BrwError
        For a bad law, cost or size; a measurement without k or without per-position counts where they are
        needed; a log naming another model than the trace.
    """
    if not isinstance(measurement, Measurement):
        raise BrwError(f"measurement must be a brw.engines.Measurement, got {type(measurement).__name__}")
    m = measurement
    out: dict = {}
    if law is None and cost is None:
        return Deployment(m, out)
    if m.k is None:
        raise BrwError("the measurement does not say k (the draft length); read it again with k=K (--k K)")
    k = m.k
    if k > MAX_K:
        raise BrwError(f"the measurement's k = {k} is beyond the {MAX_K} tokens brw.deployment compares")
    replicates = whole_number(replicates, "replicates")
    seed = whole_number(seed, "seed", 0)
    draws = whole_number(draws, "draws")
    cost_obj = None
    if cost is not None:
        cost_obj = parse_cost(cost)
        if m.survival is None:
            raise BrwError(f"the tokens-per-second curve needs per-position counts, which {m.format} did not give")
        top = cost_obj.max_tokens - 1 if math.isfinite(cost_obj.max_tokens) else math.inf
        if max_k is None:
            max_k = int(min(max(2 * k, 8), top))
        max_k = whole_number(max_k, "max_k")
        if max_k > MAX_K:
            raise BrwError(f"max_k must be at most {MAX_K} (chains longer than that are not drafted), got {max_k}")
        if max_k < k:
            raise BrwError(f"max_k must be at least the deployment's k = {k}, got {max_k}")
        T = step_seconds(cost_obj, max_k, draft_step, draft_token)  # checks the cost covers max_k + 1 tokens
    kmax = max_k if cost is not None else k

    front = chain = None
    if law is not None:
        law = parse_law(law)
        front, chain = _against_law(m, law, k, kmax, replicates, seed, threads, out)
    out["sequoia"] = _sequoia(m, law, seed) if m.survival is not None else None
    if cost is not None:
        _against_cost(m, cost_obj, T, max_k, draft_step, draft_token, draws, seed, front, chain, out)
    return Deployment(m, out)


def _draws(m: Measurement, kmax: int, draws: int, seed: int) -> np.ndarray:
    """accepted(k) for k = 0..kmax under ``draws`` survival vectors drawn around the measurement."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**61,)))
    cov = m.covariance
    k = m.k
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    root = v * np.sqrt(np.clip(w, 0.0, None))
    z = rng.standard_normal((draws, k))
    s = np.clip(m.survival + z @ root.T, 0.0, 1.0)
    s = np.minimum.accumulate(s, axis=1)
    out = np.empty((draws, kmax + 1))
    out[:, 0] = 0.0
    for i in range(draws):
        out[i, 1:] = np.cumsum(extrapolate(s[i], m.drafts, kmax))
    return out


def _sequoia(m: Measurement, law, seed: int) -> dict:
    k = m.k
    a = _rank1(m.accepted_per_step, k)
    W = SEQUOIA_RANKS
    if law is not None:
        q = rank_accuracy(law, ranks=W, seed=seed)
        rest = q[1:] * (1.0 - a) / max(1.0 - q[0], 1e-12)
        p = np.concatenate([[a], np.minimum(rest, 1.0)])
        model = ("rank 1: the constant acceptance a that gives the measured accepted per step on a chain; ranks "
                 f"2..{W}: the mass a misses, spread in the proportions of the verifier's own ranks 2..{W} "
                 "(brw.drafting.rank_accuracy on the law)")
    else:
        p = [a]
        left = 1.0 - a
        for _ in range(W - 1):
            p.append(min(a, left))
            left -= p[-1]
        p = np.array(p)
        model = ("rank 1: the constant acceptance a that gives the measured accepted per step on a chain; ranks "
                 f"2..{W}: the most favourable vector it allows (each at most a, summing to at most 1), an upper "
                 "bound on what a tree can gain (no law given)")
    tree = sequoia_tree(p, k + 1)
    chain = 1.0 + sum(a ** j for j in range(1, k + 1))
    return {"acceptance": [float(x) for x in p], "model": model, "n": k + 1, "depth": tree.depth,
            "widths": [int(w) for w in tree.widths], "tokens_per_step": float(tree.tokens_per_step),
            "chain_tokens_per_step": float(chain), "gain": float(tree.tokens_per_step - chain)}


def deployment(files, format: str | None = None, *, k: int | None = None, law=None, cost=None, **options) -> Deployment:
    """Read an engine's files and answer against the limit: :func:`brw.engines.read_deployment` then
    :func:`against_limit`.

    Parameters
    ----------
    files : str, path or sequence of them
        The engine's files.
    format : str, optional
        Force a format (``brw.engines.FORMATS``).
    k : int, optional
        The draft length (selects it among several, or supplies it).
    law, cost : optional
        As for :func:`against_limit`.
    **options
        Further keywords of :func:`against_limit`.

    Returns
    -------
    Deployment
    """
    return against_limit(read_deployment(files, format, k), law, cost, **options)

