"""Randomized drafting with lossless verification: what lies beyond the deterministic speed of light.

The speed of light (``brw.frontier``) bounds drafters that commit to a tree: for a committed tree T,
E[X] = sum over T of the verifier's path probabilities, whatever the lossless verifier. A drafter that
*samples* its draft from q is outside that bound: the verifier's acceptance test couples the draft's randomness
with its own, and a drafter with q = p has every drafted chain token accepted (docs/theory.md section 9 states
the scope, the coupling bound that replaces the speed of light, and the proofs).

The schemes (policies of ``brw.policies``, scored on the frontier's own replicate trees):

- ``specsample:k=K``: a chain of K tokens drawn from q, verified token by token (speculative sampling:
  Leviathan et al. 2023, Chen et al. 2023): x accepted with probability min(1, p(x)/q(x)). Exact given the
  tree's vectors: E[X] = sum over paths x of length j <= K of prod min(p, q) along x.
- ``block:k=K``: the same chain under block verification (Sun et al. 2024, "Block Verification Accelerates
  Speculative Decoding"), optimal among all valid verifications of one chain. Exact: P(at least j accepted)
  = E_q[a_j], a_0 = 1, a_j = min(a_{j-1} p(x_j)/q(x_j), 1), so E[X] = sum over paths of
  W(x) = Q(x) a(x) = min(W(parent) p(x_j), Q(x)), W of the root 1.
- ``specinfer:k=K,d=D``: K drafts per node drawn from q with replacement, D levels, verified top down by
  recursive rejection sampling (SpecInfer, Miao et al. 2024): draft i accepted with probability
  min(1, r_i(x_i)/q(x_i)), r_1 = p, r_{i+1} = norm(max(r_i - q, 0)).
- ``rsd:k=K,d=D``: the same drafts without replacement (Recursive Speculative Decoding, Jeon et al. 2024,
  constant branching): the i-th proposal is q without the tokens drawn before it, renormalised, and the
  residual subtracts that proposal.
- ``traversal:k=K,d=D``: drafts without replacement, verified leaf to root (Traversal Verification, Weng et
  al. 2025); on a chain it is block verification.

Trees of the multi-draft schemes are grown breadth first and cut at P nodes; they are scored by Monte Carlo
over the drafts (``SAMPLED_DRAWS`` drafted trees per replicate tree) with the verifier's randomness integrated
out exactly given the drafts. Every draw is a hash of node keys, so results are a function of (inputs, seed)
alone, for any thread count.

This module also holds the brute force that the tests hold the kernels to: tiny trees with p and q given per
node (:class:`TinyTree`), every draft of every scheme enumerated with its probability (:func:`chain_drafts`,
:func:`tree_drafts`), each verification algorithm written out as published and enumerated over the verifier's
draws (:func:`verify_chain`, :func:`verify_tree`), and the verifier's law of the output it produces
(:func:`output_law`) to check that a scheme is lossless; and the drafter-quality measures
(:func:`drafter_quality`: mean total variation, KL and Bhattacharyya coefficient between p and q on a law's
nodes).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from brw import _sampled_kernels as SK
from brw._kernels import child_key
from brw._version import __version__
from brw.checks import check_seed, whole_number
from brw.errors import BrwError
from brw.solver import root_keys, run_replicates, thread_count
from brw.kernel_law import gem_cut, kernel_args
from brw.laws import parse_law
from brw.limits import require
from brw.drafting import CALIBRATION_NODES, Drafter
from brw.results import Result

__all__ = ["node_vectors", "NodeVectors", "drafter_quality", "DrafterQuality", "chain_values", "ChainValues",
           "chain_levels", "tree_values", "draw_values", "drafter_args", "ratio_steps", "block_iid",
           "TinyTree", "chain_exact", "chain_drafts", "tree_drafts", "DraftedTree", "verify_chain", "verify_tree",
           "conditional_value", "expected_accepted", "output_law", "target_law", "SCHEMES", "CHAIN_SCHEMES",
           "TREE_SCHEMES", "QUALITY_STREAM"]

#: Sampled-draft schemes: chains (exact) and multi-draft trees (Monte Carlo over the drafts).
CHAIN_SCHEMES = ("specsample", "block")
TREE_SCHEMES = ("specinfer", "rsd", "traversal")
SCHEMES = CHAIN_SCHEMES + TREE_SCHEMES
#: The spawn key of the nodes on which a drafter's quality is measured (a stream no replicate uses).
QUALITY_STREAM = 2**62 + 1
_SCHEME_CODE = {"specinfer": SK.SCHEME_SPECINFER, "rsd": SK.SCHEME_RSD, "traversal": SK.SCHEME_TRAVERSAL}


def drafter_args(law, drafter: Drafter, cut: float) -> tuple:
    """The kernels' drafter arguments ``(okind, otable, oparams, ocut, T, sigma)`` and the drafter's vector
    buffer width.

    Parameters
    ----------
    law : Law
        The verifier's law (only its cut matters here).
    drafter : Drafter
    cut : float
        Positions that matter (stick-breaking laws).

    Returns
    -------
    tuple
        ``((okind, otable, oparams, ocut, T, sigma), owidth)``.
    """
    if drafter.law is None:
        return (-1, np.zeros((1, 1)), np.zeros(4), math.inf, drafter.T, drafter.sigma), 1
    oa = kernel_args(drafter.law, cut)
    return (oa.kind, oa.table, oa.params, oa.cut, drafter.T, drafter.sigma), oa.width


def _setup(law, drafter, pmax: int = 256):
    law = parse_law(law)
    drafter = Drafter() if drafter is None else drafter
    if not isinstance(drafter, Drafter):
        raise BrwError(f"drafter must be a brw.drafting.Drafter, got {drafter!r}")
    cut = gem_cut(law, pmax)
    args = kernel_args(law, cut)
    dargs, owidth = drafter_args(law, drafter, cut)
    return law, drafter, args, dargs, owidth


# --------------------------------------------------------------------------------------------------------
# One node, and a drafter's distance from the verifier.


@dataclass(frozen=True)
class NodeVectors:
    """A node's slots as the kernels see them: one entry per explicit child, one per tail group.

    Attributes
    ----------
    p, q : numpy.ndarray
        The verifier's and the drafter's probability of one token of each slot.
    count : numpy.ndarray
        Tokens per slot (1 for an explicit child; a tail group's atoms).
    rank : numpy.ndarray
        The verifier rank of each slot's first token (a child's key is ``child_key(key, rank)``).
    row : int
        The node's table row (0 for other laws): what its children's vectors are drawn after.
    """

    p: np.ndarray
    q: np.ndarray
    count: np.ndarray
    rank: np.ndarray
    row: int


def node_vectors(law, drafter: Drafter | None = None, key: int = 0, prow: int = -1) -> NodeVectors:
    """The verifier's p and the drafter's q at the node of a given key, exactly as the kernels draw them.

    Parameters
    ----------
    law : Law or str
        The verifier's law.
    drafter : Drafter, optional
        The drafter (default: the verifier itself).
    key : int
        The node's 64-bit key (a root key of ``brw.frontier.root_keys``, or ``child_key`` of one).
    prow : int
        Its parent's table row (-1 for a root).

    Returns
    -------
    NodeVectors
    """
    law, drafter, args, dargs, owidth = _setup(law, drafter)
    cap = max(args.width, 1)
    S = cap + args.tails.shape[1]
    sp, sq, sc = np.empty(S), np.empty(S), np.empty(S)
    sr = np.empty(S, dtype=np.int64)
    n, row = SK.node_slots(*args.vector_args, *dargs, np.uint64(key), int(prow), np.empty(cap), np.empty(max(owidth, 1)),
                           np.empty(cap), np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap),
                           sp, sq, sc, sr)
    return NodeVectors(sp[:n].copy(), sq[:n].copy(), sc[:n].copy(), sr[:n].copy(), int(row))


@dataclass(frozen=True)
class DrafterQuality(Result):
    """How far a drafter's q is from the verifier's p, averaged over a law's nodes.

    Attributes
    ----------
    law : str
        The verifier's law.
    drafter : str
        The drafter's fields (``T=..,sigma=..,q=(..)``; empty: the verifier itself).
    nodes : int
        Nodes measured (each drawn as a root, from keys of a stream no replicate uses).
    tv, tv_stderr : float
        Mean total variation distance TV(p, q) = sum |p - q| / 2, and its standard error.
    kl, kl_stderr : float
        Mean KL(p || q) in nats (inf when q misses a token of p).
    bc, bc_stderr : float
        Mean Bhattacharyya coefficient sum sqrt(p q) (1 - squared Hellinger distance).
    alpha : float
        1 - tv: the mean probability that one drafted token is accepted by speculative sampling.
    seed : int
    version : str
    """

    law: str
    drafter: str
    nodes: int
    tv: float
    tv_stderr: float
    kl: float
    kl_stderr: float
    bc: float
    bc_stderr: float
    alpha: float
    seed: int
    version: str = __version__

    def _tidy(self) -> dict:
        return {k: [v] for k, v in self.to_dict().items()}


def drafter_quality(law, drafter: Drafter | None = None, nodes: int = CALIBRATION_NODES,
                    seed: int | None = None) -> DrafterQuality:
    """Mean total variation, KL and Bhattacharyya coefficient between p and q over a law's nodes.

    For an i.i.d. law (every node's vector drawn independently) these are what the sampled chain's exact
    expectations depend on: a chain of k tokens verified token by token accepts sum_{j<=k} alpha^j on average,
    alpha = 1 - mean TV, and no lossless verification of it accepts more than sum_{j<=k} bc^j (docs/theory.md
    section 9).

    Parameters
    ----------
    law : Law or str
        The verifier's law.
    drafter : Drafter, optional
        The drafter (default: the verifier itself, distance 0).
    nodes : int, optional
        Nodes measured (default ``CALIBRATION_NODES``).
    seed : int or None, optional
        Whole number >= 0; None draws fresh entropy.

    Returns
    -------
    DrafterQuality
    """
    law, drafter, args, dargs, owidth = _setup(law, drafter)
    nodes = whole_number(nodes, "nodes")
    seed = check_seed(seed)
    require("nodes", nodes, lambda n: 32.0 * n, what=f"the drafter quality on {law}")
    base = np.random.SeedSequence(seed, spawn_key=(QUALITY_STREAM,)).generate_state(1, np.uint64)[0]
    out = np.empty((nodes, 4))
    SK.drafter_distance(*args.vector_args, *dargs, base, nodes, args.width, owidth, out)

    def mean_se(x):
        m = float(np.mean(x))
        if not math.isfinite(m):
            return m, math.nan
        return m, float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan

    tv, tv_se = mean_se(out[:, 0])
    kl, kl_se = mean_se(out[:, 1])
    bc, bc_se = mean_se(out[:, 2])
    return DrafterQuality(str(law), ",".join(drafter.spec_fields()), nodes, tv, tv_se, kl, kl_se, bc, bc_se,
                          float(np.mean(out[:, 3])), seed)


# --------------------------------------------------------------------------------------------------------
# The sampled chain on a law's replicate trees.


@dataclass(frozen=True)
class ChainValues(Result):
    """A sampled chain's exact accepted(k) on replicate trees: token by token, block, and the coupling ceiling.

    Attributes
    ----------
    law, drafter : str
    k : int
        The longest chain; ``token[j - 1]`` is the chain of j tokens.
    replicates, seed, first_replicate : int
        The same replicate trees as ``brw.frontier.frontier(law, ..., replicates, seed)``.
    tau : float
        The walk's weight threshold; ``roulette``: below it nodes were kept at random (unbiased) rather than
        dropped (then ``bound`` bounds what was dropped).
    roulette : bool
    token, token_stderr, block, block_stderr, ceiling, ceiling_stderr : numpy.ndarray
        Mean over replicates of accepted(j), j = 1..k, and standard errors: speculative sampling, block
        verification, and the most any lossless verification of the sampled chain can accept.
    gain, gain_stderr : numpy.ndarray
        Block minus token by token on the same trees (paired).
    bound : float
        Mean over replicates of the truncation bound (0 with roulette): each replicate's exact values lie in
        [value, value + its bound].
    bound_max : float
        The largest replicate's bound.
    nodes : float
        Mean nodes visited per tree.
    version : str
    """

    law: str
    drafter: str
    k: int
    replicates: int
    seed: int
    first_replicate: int
    tau: float
    roulette: bool
    token: np.ndarray
    token_stderr: np.ndarray
    block: np.ndarray
    block_stderr: np.ndarray
    ceiling: np.ndarray
    ceiling_stderr: np.ndarray
    gain: np.ndarray
    gain_stderr: np.ndarray
    bound: float
    bound_max: float
    nodes: float
    version: str = __version__

    def _tidy(self) -> dict:
        j = np.arange(1, self.k + 1)
        return {"law": [self.law] * self.k, "drafter": [self.drafter] * self.k, "k": j, "token": self.token,
                "token_stderr": self.token_stderr, "block": self.block, "block_stderr": self.block_stderr,
                "ceiling": self.ceiling, "ceiling_stderr": self.ceiling_stderr, "gain": self.gain,
                "gain_stderr": self.gain_stderr}


def chain_levels(law, drafter: Drafter | None, keys, k: int, tau: float = 0.0, roulette: bool = False,
                 threads: int | None = None) -> tuple[np.ndarray, ...]:
    """Per replicate tree, the level sums of a sampled chain (``brw._sampled_kernels.chain_walk_one``).

    Parameters
    ----------
    law : Law or str
        The verifier's law.
    drafter : Drafter or None
        The drafter (None: the verifier).
    keys : array of uint64
        Root keys (``brw.frontier.root_keys``).
    k : int
        Chain length.
    tau : float
        Weight threshold of the walk (0: walk every node of positive weight).
    roulette : bool
        Below tau, keep nodes at random (unbiased) instead of dropping them (bounded).
    threads : int or None
        Worker threads; results do not depend on it.

    Returns
    -------
    tuple of numpy.ndarray
        ``(token, block, ceiling, bound, nodes)``: three (replicates, k) arrays of level sums (column j - 1:
        the depth-j paths), each replicate's truncation bound and nodes visited.
    """
    law, drafter, args, dargs, owidth = _setup(law, drafter)
    k = whole_number(k, "k")
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 0):
        raise BrwError(f"tau must be a finite number >= 0, got {tau!r}")
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    S = max(args.width, 1) + args.tails.shape[1]
    require("k", k, lambda kk: 32.0 * kk * S * 4 + 24.0 * kk * keys.size, what=f"a sampled chain on {law}")
    n = keys.size
    tok, blk, ceil = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    bound, nodes = np.zeros(n), np.zeros(n, dtype=np.int64)
    nt = thread_count(threads)
    run_replicates(SK.chain_walk_batch, n, nt, *args.vector_args, *dargs, keys, k, float(tau), bool(roulette),
                   args.width, owidth, tok, blk, ceil, bound, nodes)
    return tok, blk, ceil, bound, nodes


def chain_values(law, drafter: Drafter | None = None, k: int = 8, replicates: int = 100, seed: int | None = None,
                 *, tau: float = 1e-4, roulette: bool = False, first_replicate: int = 0,
                 threads: int | None = None) -> ChainValues:
    """accepted(j), j = 1..k, of a chain sampled from the drafter: token by token, block, and the ceiling.

    Parameters
    ----------
    law : Law or str
        The verifier's law.
    drafter : Drafter, optional
        The drafter (default: the verifier, which accepts every token).
    k : int, optional
        The longest chain (default 8).
    replicates : int, optional
        Replicate trees (default 100), the same as the frontier's for the same seed.
    seed : int or None, optional
        Whole number >= 0; None draws fresh entropy.
    tau : float, optional
        Weight threshold of the walk (default 1e-4).
    roulette : bool, optional
        Below tau keep nodes at random, counted tau/weight times (unbiased), instead of dropping them (the
        default: the values are then lower bounds, exact to within ``bound``).
    first_replicate : int, optional
    threads : int or None, optional

    Returns
    -------
    ChainValues
    """
    drafter = Drafter() if drafter is None else drafter
    seed = check_seed(seed)
    replicates = whole_number(replicates, "replicates")
    keys = root_keys(seed, replicates, first_replicate)
    tok, blk, ceil, bound, nodes = chain_levels(law, drafter, keys, k, tau, roulette, threads)

    def ms(a):
        c = np.cumsum(a, axis=1)
        se = c.std(axis=0, ddof=1) / math.sqrt(c.shape[0]) if c.shape[0] > 1 else np.full(c.shape[1], np.nan)
        return c.mean(axis=0), se

    t, tse = ms(tok)
    b, bse = ms(blk)
    c, cse = ms(ceil)
    g, gse = ms(blk - tok)
    return ChainValues(str(parse_law(law)), ",".join(drafter.spec_fields()), int(k), replicates, seed,
                       int(first_replicate), float(tau), bool(roulette), t, tse, b, bse, c, cse, g, gse,
                       float(bound.mean()), float(bound.max()), float(nodes.mean()))


def ratio_steps(law, drafter: Drafter | None, n: int, seed: int | None = None) -> np.ndarray:
    """Independent steps log(p(x) / q(x)), x drawn from q, each at a node of its own (drawn as a root).

    In the i.i.d. model block verification's weight after j drafted tokens, a_j = min(a_{j-1} p/q, 1), has by
    time reversal the law of exp(min_{0<=m<=j} S_m), S the walk of these steps (docs/theory.md section 9).

    Parameters
    ----------
    law : Law or str
    drafter : Drafter or None
    n : int
        Steps.
    seed : int or None

    Returns
    -------
    numpy.ndarray
        n steps (-inf where the verifier never samples the drafted token).
    """
    law, drafter, args, dargs, owidth = _setup(law, drafter)
    n = whole_number(n, "n")
    seed = check_seed(seed)
    require("n", n, lambda m: 8.0 * m, what=f"ratio steps on {law}")
    base = np.random.SeedSequence(seed, spawn_key=(QUALITY_STREAM + 1,)).generate_state(1, np.uint64)[0]
    out = np.empty(n)
    SK.ratio_steps(*args.vector_args, *dargs, base, n, args.width, owidth, out)
    return out


def block_iid(steps: np.ndarray, k: int) -> np.ndarray:
    """Block verification's accepted(j), j = 1..k, in the i.i.d. model, from walks of ratio steps.

    Parameters
    ----------
    steps : numpy.ndarray
        Shape (walks, k): independent steps (:func:`ratio_steps` reshaped).
    k : int

    Returns
    -------
    numpy.ndarray
        Shape (walks, k): per walk, the running sum over j' <= j of exp(min_{0<=m<=j'} S_m); its mean over walks
        estimates accepted(j).
    """
    S = np.cumsum(steps[:, :k], axis=1)
    return np.cumsum(np.exp(np.minimum(np.minimum.accumulate(S, axis=1), 0.0)), axis=1)


# --------------------------------------------------------------------------------------------------------
# Multi-draft trees on a law's replicate trees.


def _tree_setup(scheme, k, d, at):
    if scheme not in TREE_SCHEMES:
        raise BrwError(f"scheme must be one of {', '.join(TREE_SCHEMES)}, got {scheme!r}")
    k = whole_number(k, "k")
    d = whole_number(d, "d")
    at = np.asarray(sorted({whole_number(int(P), "P") for P in np.atleast_1d(at)}), dtype=np.int64)
    return _SCHEME_CODE[scheme], k, d, at


def tree_values(law, drafter: Drafter | None, keys, scheme: str, k: int, d: int, at, draws: int = 4,
                threads: int | None = None) -> np.ndarray:
    """Per replicate tree, a multi-draft scheme's accepted(P): the mean over ``draws`` drafted trees of
    E[accepted | drafts] (what ``brw.policies`` scores).

    Parameters
    ----------
    law : Law or str
    drafter : Drafter or None
    keys : array of uint64
        Root keys.
    scheme : str
        ``specinfer``, ``rsd`` or ``traversal``.
    k, d : int
        Drafts per node and levels.
    at : sequence of int
        Node budgets P (the drafted tree's first P nodes, breadth first).
    draws : int, optional
        Drafted trees per replicate tree (default 4).
    threads : int or None, optional

    Returns
    -------
    numpy.ndarray
        Shape (replicates, len(at)), ``at`` sorted.
    """
    law, drafter, args, dargs, owidth = _setup(law, drafter)
    code, k, d, at = _tree_setup(scheme, k, d, at)
    draws = whole_number(draws, "draws")
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    out = np.empty((keys.size, at.size))
    nt = thread_count(threads)
    run_replicates(SK.tree_scheme_batch, keys.size, nt, *args.vector_args, *dargs, keys, code, k, d, at, draws,
                   args.width, owidth, out)
    return out


def draw_values(law, drafter: Drafter | None, key: int, scheme: str, k: int, d: int, at, draws: int,
                first_draw: int = 0) -> np.ndarray:
    """E[accepted | drafts] of each drafted tree below one root key, draw by draw.

    Parameters
    ----------
    law : Law or str
    drafter : Drafter or None
    key : int
        The root key.
    scheme : str
    k, d : int
    at : sequence of int
    draws : int
        How many drafted trees.
    first_draw : int, optional
        The first draw's index (``tree_values`` uses draws 0 .. draws - 1).

    Returns
    -------
    numpy.ndarray
        Shape (draws, len(at)).
    """
    law, drafter, args, dargs, owidth = _setup(law, drafter)
    code, k, d, at = _tree_setup(scheme, k, d, at)
    out = np.empty((whole_number(draws, "draws"), at.size))
    for m in range(out.shape[0]):
        SK.tree_scheme_one(*args.vector_args, *dargs, np.uint64(key), code, k, d, at, 1, first_draw + m,
                           args.width, owidth, out[m])
    return out


# --------------------------------------------------------------------------------------------------------
# Brute force on tiny trees: every draft and every verifier draw.


class TinyTree:
    """A tree with p and q given at every node (a node is its token path), for brute-force enumeration.

    Parameters
    ----------
    vectors : callable
        ``vectors(path) -> (p, q)``, two probability vectors over the same tokens 0..V-1 (q may have zeros).
    V : int
        Vocabulary size.

    Notes
    -----
    Vectors are cached per path; :meth:`random`, :meth:`fixed` and :meth:`from_law` build the usual ones.
    """

    def __init__(self, vectors, V: int):
        self._vectors = vectors
        self.V = int(V)
        self._cache: dict = {}

    def pq(self, path) -> tuple[np.ndarray, np.ndarray]:
        """The verifier's and the drafter's vectors at the node ``path`` (a tuple of tokens)."""
        path = tuple(path)
        if path not in self._cache:
            p, q = self._vectors(path)
            self._cache[path] = (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64))
        return self._cache[path]

    @classmethod
    def random(cls, V: int, seed: int, zeros: bool = True) -> TinyTree:
        """Independent random p and q at every node (Dirichlet(1) draws from a stream of the path); with
        ``zeros`` some entries of q or p are 0 (a drafter that never proposes a token, a token the verifier
        never samples)."""

        def vec(path):
            rng = np.random.default_rng([seed, len(path), *path])
            p = rng.dirichlet(np.ones(V))
            q = rng.dirichlet(np.ones(V))
            if zeros and V > 2 and rng.random() < 0.3:
                q[rng.integers(V)] = 0.0
                q /= q.sum()
            if zeros and V > 2 and rng.random() < 0.2:
                p[rng.integers(V)] = 0.0
                p /= p.sum()
            return p, q

        return cls(vec, V)

    @classmethod
    def fixed(cls, p, q) -> TinyTree:
        """The same p and q at every node."""
        p = np.asarray(p, dtype=np.float64)
        q = np.asarray(q, dtype=np.float64)
        return cls(lambda path: (p, q), p.size)

    @classmethod
    def from_law(cls, law, drafter: Drafter | None, root_key: int) -> TinyTree:
        """The tree below a root key of a law, with the drafter's q, as the kernels see it (token = slot;
        laws whose rows carry tail groups are refused: their atoms cannot be enumerated)."""
        law = parse_law(law)
        root = node_vectors(law, drafter, root_key)
        if np.any(root.count != 1):
            raise BrwError(f"{law} has tail groups: a tiny tree needs every token explicit")
        V = root.p.size
        nodes: dict = {(): (np.uint64(root_key), -1)}

        def vec(path):
            if path not in nodes:
                pkey, prow = nodes[path[:-1]]
                nv = node_vectors(law, drafter, pkey, prow)
                nodes[path] = (child_key(np.uint64(pkey), np.int64(nv.rank[path[-1]])), nv.row)
            key, prow = nodes[path]
            nv = node_vectors(law, drafter, key, prow)
            if nv.p.size != V:
                raise BrwError("the tiny tree's nodes must all have the same number of children")
            return nv.p, nv.q

        return cls(vec, V)


def chain_exact(tree: TinyTree, k: int) -> dict:
    """The sampled chain's exact accepted(j), j = 1..k, by summing over every path of length j.

    Parameters
    ----------
    tree : TinyTree
    k : int

    Returns
    -------
    dict
        ``token``, ``block``, ``ceiling``: lists of accepted(j) (cumulative over levels).
    """
    levels = {"token": np.zeros(k), "block": np.zeros(k), "ceiling": np.zeros(k)}

    def walk(path, P, Q, T, W):
        d = len(path)
        p, q = tree.pq(path)
        for x in range(tree.V):
            cP, cQ = P * p[x], Q * q[x]
            cT, cW = T * min(p[x], q[x]), min(W * p[x], cQ)
            levels["token"][d] += cT
            levels["block"][d] += cW
            levels["ceiling"][d] += min(cP, cQ)
            if d + 1 < k and min(cP, cQ) > 0:
                walk(path + (x,), cP, cQ, cT, cW)

    walk((), 1.0, 1.0, 1.0, 1.0)
    return {name: np.cumsum(v).tolist() for name, v in levels.items()}


def chain_drafts(tree: TinyTree, k: int) -> list[tuple[float, tuple]]:
    """Every chain of k tokens the drafter can sample, with its probability Q.

    Parameters
    ----------
    tree : TinyTree
    k : int

    Returns
    -------
    list of (float, tuple of int)
    """
    out = []
    for path in itertools.product(range(tree.V), repeat=k):
        prob = 1.0
        for j in range(k):
            prob *= tree.pq(path[:j])[1][path[j]]
            if prob == 0:
                break
        if prob > 0:
            out.append((prob, path))
    return out


def verify_chain(tree: TinyTree, draft, scheme: str) -> list[tuple[float, tuple, np.ndarray]]:
    """Verify a sampled chain, every verifier draw enumerated.

    ``token``: speculative sampling (Leviathan et al. 2023; Chen et al. 2023): x_i accepted with probability
    min(1, p_i(x_i)/q_i(x_i)); at the first rejection the next token is drawn from norm(max(p_i - q_i, 0));
    after k acceptances from p_{k+1}. ``block``: block verification (Sun et al. 2024, their Algorithm 2):
    a_0 = 1, a_i = min(a_{i-1} p_i(x_i)/q_i(x_i), 1); for i < k the residual mass
    r_i = sum max(a_i p_{i+1} - q_{i+1}, 0) and h_i = r_i / (r_i + 1 - a_i), h_k = a_k; independent
    eta_i ~ Bernoulli(h_i), tau = the largest i with eta_i = 1 (eta_0 = 1); the next token is drawn from
    norm(max(a_tau p_{tau+1} - q_{tau+1}, 0)), or from p_{k+1} when tau = k.

    Parameters
    ----------
    tree : TinyTree
    draft : tuple of int
        The drafted tokens x_1..x_k.
    scheme : str
        ``token`` or ``block``.

    Returns
    -------
    list of (float, tuple, numpy.ndarray)
        (probability, accepted tokens, the law of the verifier's next token) for each outcome.
    """
    draft = tuple(draft)
    k = len(draft)
    if scheme == "token":
        out, reach = [], 1.0
        for i in range(k):
            p, q = tree.pq(draft[:i])
            x = draft[i]
            a = min(1.0, p[x] / q[x])
            if a < 1:
                out.append((reach * (1 - a), draft[:i], _norm(np.maximum(p - q, 0))))
            reach *= a
        out.append((reach, draft, tree.pq(draft)[0]))
        return [o for o in out if o[0] > 0]
    if scheme != "block":
        raise BrwError(f"scheme must be token or block, got {scheme!r}")
    a = [1.0]
    for i in range(k):
        p, q = tree.pq(draft[:i])
        a.append(min(a[-1] * p[draft[i]] / q[draft[i]], 1.0))
    h = []
    for i in range(k + 1):
        if i == k:
            h.append(a[k])
            continue
        p, q = tree.pq(draft[:i])
        r = float(np.maximum(a[i] * p - q, 0).sum())
        h.append(1.0 if r + (1 - a[i]) <= 0 else r / (r + (1 - a[i])))
    out, reach = [], 1.0
    for i in range(k, -1, -1):
        prob = reach * h[i] if i > 0 else reach
        if prob > 0:
            if i == k:
                nxt = tree.pq(draft)[0]
            else:
                p, q = tree.pq(draft[:i])
                nxt = _norm(np.maximum(a[i] * p - q, 0))
            out.append((prob, draft[:i], nxt))
        reach *= 1 - h[i]
    return out


def _norm(v: np.ndarray) -> np.ndarray:
    s = v.sum()
    return v / s if s > 0 else v


@dataclass(frozen=True)
class DraftedTree:
    """A drafted tree in the kernels' layout: node 0 is the root, nodes breadth first, a node's children
    consecutive and in draft order.

    Attributes
    ----------
    paths : tuple of tuple
        Each node's token path.
    tok : tuple of int
        Each node's own token (-1 for the root).
    fchild, nchild : tuple of int
        Each node's first child and number of children.
    """

    paths: tuple
    tok: tuple
    fchild: tuple
    nchild: tuple

    @property
    def depth(self) -> tuple:
        """Each node's depth."""
        return tuple(len(p) for p in self.paths)


def tree_drafts(tree: TinyTree, k: int, d: int, replace: bool, size: int) -> list[tuple[float, DraftedTree]]:
    """Every tree a multi-draft drafter can sample, with its probability, as the kernels draft it.

    Breadth first: each node of depth < d, while the tree has at most ``size`` nodes besides the root, draws
    k children from its q (with replacement: independent draws; without: each draw from q without the tokens
    drawn before it, renormalised, stopping when no token is left), stopping once ``size`` nodes are drafted.

    Parameters
    ----------
    tree : TinyTree
    k, d : int
        Drafts per node and levels.
    replace : bool
    size : int
        Most nodes besides the root.

    Returns
    -------
    list of (float, DraftedTree)
    """
    results = []

    def grow(i, paths, tok, fchild, nchild, prob):
        if i == len(paths):
            results.append((prob, DraftedTree(tuple(paths), tuple(tok), tuple(fchild), tuple(nchild))))
            return
        fchild = fchild + [len(paths)]
        if len(paths[i]) >= d or len(paths) > size:
            grow(i + 1, paths, tok, fchild, nchild + [0], prob)
            return
        q = tree.pq(paths[i])[1]

        def draw(j, drawn, pr, newp, newt):
            if j == k or len(paths) + len(newp) > size:
                grow(i + 1, paths + newp, tok + newt, fchild, nchild + [len(newp)], pr)
                return
            avail = q.copy()
            if not replace:
                avail[list(drawn)] = 0.0
            tot = avail.sum()
            if tot <= 1e-15:
                grow(i + 1, paths + newp, tok + newt, fchild, nchild + [len(newp)], pr)
                return
            for x in range(tree.V):
                if avail[x] > 0:
                    draw(j + 1, drawn | {x}, pr * avail[x] / tot, newp + [paths[i] + (x,)], newt + [x])

        draw(0, frozenset(), prob, [], [])

    grow(0, [()], [-1], [], [], 1.0)
    return results


def verify_tree(tree: TinyTree, dt: DraftedTree, scheme: str, P: int) -> list[tuple[float, tuple, np.ndarray]]:
    """Verify a drafted tree's first P + 1 nodes (root included), every verifier draw enumerated.

    ``specinfer``/``rsd``: recursive rejection sampling top down (SpecInfer, Miao et al. 2024; RSD, Jeon et al.
    2024): at a node, r = p and the proposal g = q; draft i (in draft order) is accepted with probability
    min(1, r(x_i)/g(x_i)) and the walk moves into it; on a rejection r <- norm(max(r - g, 0)), and without
    replacement g also loses x_i (renormalised); when every draft is rejected the next token is drawn from r.
    ``traversal``: traversal verification (Weng et al. 2025), leaf to root: the first leaf in post order is
    accepted with probability p_alpha (then its whole path is, and the next token is drawn from its M_b); a
    rejected leaf is deleted and its parent u updated: S = sum [p_alpha(u) M_b(u) - M_s(u)]_+,
    M_b(u) <- [p_alpha(u) M_b(u) - M_s(u)]_+ / S, M_s(u) <- M_s(u) without the token, renormalised,
    p_alpha(u) <- S / (S + 1 - p_alpha(u)); a child's p_alpha is min(p_alpha(u) M_b(u)(x) / M_s(u)(x), 1)
    when the traversal enters it; a node whose children are all deleted becomes a leaf.

    Parameters
    ----------
    tree : TinyTree
    dt : DraftedTree
    scheme : str
        ``specinfer``, ``rsd`` or ``traversal``.
    P : int
        Nodes verified besides the root (the first P of the breadth-first order).

    Returns
    -------
    list of (float, tuple, numpy.ndarray)
        (probability, accepted tokens, the law of the verifier's next token).
    """
    n = min(P + 1, len(dt.paths))

    def children(i):
        return [c for c in range(dt.fchild[i], dt.fchild[i] + dt.nchild[i]) if c < n]

    if scheme in ("specinfer", "rsd"):
        out = []

        def rrs(i, prob):
            p, q = tree.pq(dt.paths[i])
            r, g = p.copy(), q.copy()
            for c in children(i):
                x = dt.tok[c]
                a = 1.0 if r[x] >= g[x] else r[x] / g[x]
                if a > 0:
                    rrs(c, prob * a)
                prob *= 1 - a
                if prob <= 0:
                    return
                r = _norm(np.maximum(r - g, 0))
                if scheme == "rsd":
                    g = g.copy()
                    g[x] = 0.0
                    g = _norm(g)
            out.append((prob, dt.paths[i], r))

        rrs(0, 1.0)
        return out
    if scheme != "traversal":
        raise BrwError(f"scheme must be specinfer, rsd or traversal, got {scheme!r}")
    p0, q0 = tree.pq(())
    mb = {0: p0.copy()}
    ms = {0: _norm(q0.copy())}
    pa = {0: 1.0}
    deleted: set = set()
    parent = {c: i for i in range(n) for c in children(i)}
    out, reach = [], 1.0
    while True:
        u = 0  # the first leaf in post order: the first undeleted child, all the way down
        while True:
            live = [c for c in children(u) if c not in deleted]
            if not live:
                break
            c = live[0]
            if c not in pa:
                x = dt.tok[c]
                pa[c] = min(pa[u] * mb[u][x] / ms[u][x], 1.0) if ms[u][x] > 0 else 0.0
                pc, qc = tree.pq(dt.paths[c])
                mb[c], ms[c] = pc.copy(), _norm(qc.copy())
            u = c
        if reach * pa[u] > 0:
            out.append((reach * pa[u], dt.paths[u], mb[u]))
        reach *= 1 - pa[u]
        if u == 0 or reach <= 0:
            return out
        deleted.add(u)
        v = parent[u]
        w = np.maximum(pa[v] * mb[v] - ms[v], 0)
        S = w.sum()
        if S > 0:
            mb[v] = w / S
            pa[v] = S / (S + (1 - pa[v]))
        else:
            pa[v] = 1.0 if pa[v] >= 1 else 0.0
        g = ms[v].copy()
        g[dt.tok[u]] = 0.0
        ms[v] = _norm(g)


def conditional_value(tree: TinyTree, dt: DraftedTree, scheme: str, P: int) -> float:
    """What the kernels compute for one drafted tree: E[accepted | drafts] on its first P + 1 nodes.

    Parameters
    ----------
    tree : TinyTree
    dt : DraftedTree
    scheme : str
        ``specinfer``, ``rsd`` or ``traversal``.
    P : int

    Returns
    -------
    float
    """
    N, V = len(dt.paths), tree.V
    sp, sq = np.zeros((N, V)), np.zeros((N, V))
    for i, path in enumerate(dt.paths):
        if dt.nchild[i]:
            sp[i], sq[i] = tree.pq(path)
    sc = np.ones((N, V))
    ns = np.full(N, V, dtype=np.int64)
    tok = np.array([max(t, 0) for t in dt.tok], dtype=np.int64)
    fchild = np.array(dt.fchild, dtype=np.int64)
    nchild = np.array(dt.nchild, dtype=np.int64)
    depth = np.array(dt.depth, dtype=np.int64)
    P = min(P, N - 1)
    if scheme == "traversal":
        L = int(depth.max()) + 1
        return float(SK.traversal_value(sp, sq, sc, ns, tok, fchild, nchild, depth, P, np.empty((L, V)),
                                        np.empty((L, V)), np.empty(L), np.empty(L, dtype=np.int64),
                                        np.empty(L, dtype=np.int64)))
    return float(SK.rrs_value(sp, sq, sc, ns, tok, fchild, nchild, depth, P, scheme == "specinfer", np.empty(V),
                              np.empty(V), np.zeros(N)))


def expected_accepted(outcomes) -> float:
    """E[accepted] of a list of (probability, accepted tokens, ...) outcomes.

    Parameters
    ----------
    outcomes : iterable of tuples

    Returns
    -------
    float
    """
    return float(sum(o[0] * len(o[1]) for o in outcomes))


def output_law(tree: TinyTree, outcomes, length: int) -> dict:
    """The law of the first ``length`` tokens a scheme's step produces, continued by the verifier.

    A step emits its accepted tokens and one token drawn from the law it leaves; the verifier then continues
    by sampling p. A scheme is lossless when this equals :func:`target_law`.

    Parameters
    ----------
    tree : TinyTree
    outcomes : iterable of (float, tuple, numpy.ndarray)
        Weighted outcomes: (probability, accepted tokens, law of the next token), e.g. from
        :func:`verify_chain` or :func:`verify_tree` weighted by the drafts' probabilities.
    length : int
        At least one more than the longest accepted path.

    Returns
    -------
    dict
        Token tuple -> probability.
    """
    law: dict = {}
    for prob, acc, nxt in outcomes:
        for x in range(tree.V):
            if nxt[x] > 0:
                _continue(tree, acc + (x,), prob * nxt[x], length, law)
    return law


def _continue(tree, path, prob, length, law):
    if len(path) >= length:
        law[path[:length]] = law.get(path[:length], 0.0) + prob
        return
    p = tree.pq(path)[0]
    for x in range(tree.V):
        if p[x] > 0:
            _continue(tree, path + (x,), prob * p[x], length, law)


def target_law(tree: TinyTree, length: int) -> dict:
    """The verifier's own law of its first ``length`` tokens.

    Parameters
    ----------
    tree : TinyTree
    length : int

    Returns
    -------
    dict
        Token tuple -> probability.
    """
    law: dict = {}
    _continue(tree, (), 1.0, length, law)
    return law
