"""Drafting policies on the optimal frontier's own trees: how far a drafting strategy is from the speed of light.

A policy picks a P-node draft tree from what a drafter sees; its value is the verifier's E[X], the sum over the
tree of the verifier's path probabilities (theory.md section 1). :func:`policies` scores every policy on the
same replicate trees as :func:`brw.frontier` (the same root keys; every node's vector drawn from its
key exactly as the frontier kernels draw it), so each policy's gap to the frontier is a paired difference with
a small standard error, and no policy that commits to its tree can beat the frontier on any tree (the sampled
policies below draw their drafts at random and are outside that bound: docs/theory.md section 9).

The drafter (:class:`Drafter`) sees q at each node: the verifier's p, or the vector of a law of its own laid
on the verifier's ranks in order; tempered (log q / T) and, with ``sigma`` > 0, with its logits moved by
``sigma`` times standard normals drawn from the node's own noise stream; then normalised (``brw._kernels``,
"Drafting policies"). With T = 1, no noise and no law of its own the drafter is the verifier.

Policies (spec grammar as for laws, ``NAME:key=value,...``; every policy also takes the drafter's keys ``T``,
``sigma`` and ``q=(LAW SPEC)``):

- ``chain``: the drafter's top-1 path.
- ``chains:k=K``: K chains, from the root's top-K candidates, each continued by top-1 (grown in turn).
- ``kary:k=K[,d=D]``: the full K-ary tree of the drafter's top-K candidates, level by level (D levels at most).
- ``medusa[:W=16]`` or ``medusa:a=A1/A2/...``: a static tree from per-rank accuracies (Medusa): the nodes of
  largest product of accuracies along their rank path. The accuracies a_r = E[p of the drafter's rank-r
  candidate] are measured on ``CALIBRATION_NODES`` nodes of their own (seeded by the run's seed) unless given.
- ``sequoia[:W=16][,depth=D]``: Sequoia's static tree (``brw.sequoia``, the dynamic program of Chen et al.)
  from the same per-rank accuracies, D levels at most (root counted, as Sequoia counts). Its tree of P nodes is
  not a subtree of its tree of P + 1, so it is scored at the P of ``at`` only.
- ``specexec``: the drafter's best-first tree (SpecExec): the P nodes of largest drafter path probability.
  With the verifier as drafter it is the optimal frontier itself.
- ``eagle2:k=K,d=D``: EAGLE-2's construction: expand the drafter's top-K for D levels (each level the K best of
  the last one by drafter path probability), then keep the best P by drafter path probability.

Trees smaller than P (``kary`` with ``d``, ``eagle2``) leave the rest of the budget unused: their accepted(P)
stays at the whole tree's value.

Sampled drafts (randomized drafting with lossless verification, ``brw.sampled``; outside the speed of light's
scope, so their gap to the frontier can be negative):

- ``specsample:k=K``: a chain of min(P, K) tokens drawn from q, speculative sampling (token by token).
- ``block:k=K``: the same chain under block verification (Sun et al. 2024).
- ``specinfer:k=K,d=D``: K drafts per node with replacement, D levels, recursive rejection sampling.
- ``rsd:k=K,d=D``: the same without replacement (RSD).
- ``traversal:k=K,d=D``: drafts without replacement, traversal verification (Weng et al. 2025).

The chains are exact given the tree's vectors (a walk over the tree's paths whose nodes of weight below
``CHAIN_TAU`` are kept at random and counted inversely to their chance, Russian roulette: unbiased), and with
the verifier as drafter exactly min(P, K). The multi-draft trees are grown breadth first, cut at P nodes and
scored at the P of ``at`` only, by Monte Carlo over ``SAMPLED_DRAWS`` drafted trees per replicate tree with the
verifier's randomness integrated out given the drafts.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from brw import _kernels as K
from brw import _sampled_kernels as SK
from brw._version import __version__
from brw.errors import BrwError
from brw.checks import check_count, check_seed, whole_numbers
from brw.solver import chunk_size, frontier_start, root_keys, run_replicates, thread_count
from brw.kernel_law import kernel_args, gem_cut
from brw.laws import Law, parse_law
from brw.spec import fmt
from brw.limits import require
from brw.progress import Progress
from brw.results import Result, default_at
from brw.sequoia import MAX_NODES

__all__ = ["Drafter", "Policy", "PoliciesResult", "parse_policy", "parse_policies", "policies", "rank_accuracy",
           "POLICY_NAMES", "DEFAULT_POLICIES", "CALIBRATION_NODES", "SAMPLED_POLICIES", "SAMPLED_DRAWS", "CHAIN_TAU"]

#: Every policy's name.
POLICY_NAMES = ("chain", "chains", "kary", "medusa", "sequoia", "specexec", "eagle2", "specsample", "block",
                "specinfer", "rsd", "traversal")
#: The policies whose drafter samples its draft (``brw.sampled``): chains, then multi-draft trees.
SAMPLED_POLICIES = ("specsample", "block", "specinfer", "rsd", "traversal")
#: Drafted trees per replicate tree of the multi-draft sampled policies (Monte Carlo over the drafts).
SAMPLED_DRAWS = 4
#: Weight below which the sampled chains' walk keeps a node at random (Russian roulette; brw._sampled_kernels).
CHAIN_TAU = 1e-2
#: What ``brw policies`` scores when no list is given: static shapes with a perfect ranking, then drafters whose
#: logits carry noise.
DEFAULT_POLICIES = ("chain", "chains:k=4", "kary:k=2", "medusa", "sequoia", "specexec:sigma=1",
                    "eagle2:k=4,d=6,sigma=1")
#: Nodes on which per-rank accuracies are measured (their own keys, from the run's seed).
CALIBRATION_NODES = 20000
#: Ranks per node in a measured accuracy vector, unless ``W`` says otherwise.
DEFAULT_RANKS = 16
#: The calibration nodes' spawn key: a stream no replicate uses (replicate j's root key is spawn key (j,)).
_CALIBRATION_STREAM = 2**62

# Keys each policy takes besides the drafter's, and which it requires.
_KEYS = {"chain": (), "chains": ("k",), "kary": ("k", "d"), "medusa": ("W", "a"), "sequoia": ("W", "a", "depth"),
         "specexec": (), "eagle2": ("k", "d"), "specsample": ("k",), "block": ("k",), "specinfer": ("k", "d"),
         "rsd": ("k", "d"), "traversal": ("k", "d")}
_REQUIRED = {"chains": ("k",), "kary": ("k",), "eagle2": ("k", "d"), "specsample": ("k",), "block": ("k",),
             "specinfer": ("k", "d"), "rsd": ("k", "d"), "traversal": ("k", "d")}
_DRAFTER_KEYS = ("T", "sigma", "q")


# --------------------------------------------------------------------------------------------------------
# The drafter and the policy specs.


@dataclass(frozen=True)
class Drafter:
    """What a drafter sees at each node: q from the verifier's p (or a law of its own), tempered and noised.

    Attributes
    ----------
    T : float
        Temperature: q proportional to p^(1/T) (> 0; 1 leaves p as it is).
    sigma : float
        Scale of the Gaussian noise on the drafter's logits (>= 0).
    law : Law or None
        A law of the drafter's own: its vector, drawn at each node independently of the verifier's, is laid on
        the verifier's ranks in order (the drafter ranks as the verifier does, with its own confidence, unless
        noise reorders it). None: the verifier's p.
    """

    T: float = 1.0
    sigma: float = 0.0
    law: Law | None = None

    def __post_init__(self):
        if not (isinstance(self.T, (int, float)) and math.isfinite(self.T) and self.T > 0):
            raise BrwError(f"the drafter's temperature T must be a finite number > 0, got {self.T!r}")
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma >= 0):
            raise BrwError(f"the drafter's noise scale sigma must be a finite number >= 0, got {self.sigma!r}")
        object.__setattr__(self, "T", float(self.T))
        object.__setattr__(self, "sigma", float(self.sigma))
        if self.law is not None:
            object.__setattr__(self, "law", parse_law(self.law))

    @property
    def is_verifier(self) -> bool:
        """True when q = p at every node."""
        return self.T == 1.0 and self.sigma == 0.0 and self.law is None

    def spec_fields(self) -> list[str]:
        """The drafter's ``key=value`` fields of a policy spec (defaults left out)."""
        out = []
        if self.T != 1.0:
            out.append(f"T={fmt(self.T)}")
        if self.sigma != 0.0:
            out.append(f"sigma={fmt(self.sigma)}")
        if self.law is not None:
            out.append(f"q=({self.law})")
        return out


@dataclass(frozen=True)
class Policy:
    """A drafting policy: a construction and the drafter it reads.

    Attributes
    ----------
    name : str
        One of ``POLICY_NAMES``.
    k, d : int or None
        Candidates per node and levels (``chains``, ``kary``, ``eagle2``).
    W : int or None
        Ranks of a measured accuracy vector (``medusa``, ``sequoia``).
    a : tuple of float or None
        Given per-rank accuracies a_1, a_2, ... (``medusa``, ``sequoia``), each in [0, 1], summing to at most 1.
    depth : int or None
        Sequoia's depth limit (levels, root counted).
    drafter : Drafter
        What the policy sees.
    """

    name: str
    k: int | None = None
    d: int | None = None
    W: int | None = None
    a: tuple[float, ...] | None = None
    depth: int | None = None
    drafter: Drafter = field(default_factory=Drafter)

    def __post_init__(self):
        if self.name not in POLICY_NAMES:
            raise BrwError(_unknown(self.name))
        given = {key for key in ("k", "d", "W", "a", "depth") if getattr(self, key) is not None}
        extra = given - set(_KEYS[self.name])
        if extra:
            raise BrwError(f"policy {self.name!r} takes no {', '.join(sorted(extra))}; its keys: "
                           f"{', '.join(_KEYS[self.name] + _DRAFTER_KEYS)}")
        missing = [key for key in _REQUIRED.get(self.name, ()) if getattr(self, key) is None]
        if missing:
            raise BrwError(f"policy {self.name!r} needs {', '.join(key + '=...' for key in missing)}")
        for key in ("k", "d", "W", "depth"):
            value = getattr(self, key)
            if value is not None:
                check_count(value, f"policy {self.name!r}: {key}")
        if self.name == "eagle2" and self.k + self.k * self.k * (self.d - 1) > 10**8:
            raise BrwError(f"eagle2 with k={self.k}, d={self.d} generates too many nodes; lower k or d")
        if self.a is not None:
            if self.W is not None:
                raise BrwError(f"policy {self.name!r} takes either measured accuracies (W) or given ones (a), "
                               "not both")
            a = np.asarray(self.a, dtype=np.float64)
            if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > 1) \
                    or a.sum() > 1 + 1e-9:
                raise BrwError(f"policy {self.name!r}: accuracies a must be numbers in [0, 1] summing to at most 1, "
                               f"got {self.a!r}")
            object.__setattr__(self, "a", tuple(float(x) for x in a))
        if not isinstance(self.drafter, Drafter):
            raise BrwError(f"drafter must be a Drafter, got {self.drafter!r}")

    @property
    def spec(self) -> str:
        """The canonical spec string (``parse_policy`` reads it back to the same policy)."""
        fields = []
        for key in ("k", "d", "W", "depth"):
            value = getattr(self, key)
            if value is not None:
                fields.append(f"{key}={value}")
        if self.a is not None:
            fields.append("a=" + "/".join(fmt(x) for x in self.a))
        fields += self.drafter.spec_fields()
        return self.name + (":" + ",".join(fields) if fields else "")

    def __str__(self) -> str:
        return self.spec

    @property
    def nested(self) -> bool:
        """True when the policy's tree of P nodes is its tree of P + 1 less one node (one pass gives every P);
        Sequoia's trees and the sampled multi-draft trees are scored at the P of ``at`` only."""
        return self.name not in ("sequoia", "specinfer", "rsd", "traversal")


def _unknown(name: str) -> str:
    hint = ""
    if name in ("noise", "temperature", "drafter"):
        hint = "; a drafter's noise and temperature are keys of every policy, e.g. specexec:sigma=1 or chain:T=1.5"
    return f"unknown policy {name!r}; known policies: {', '.join(POLICY_NAMES)}{hint}"


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses (a law spec inside ``q=(...)`` keeps its commas)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise BrwError(f"unbalanced ')' in {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise BrwError(f"unbalanced '(' in {text!r}")
    parts.append("".join(cur))
    return parts


def parse_policy(spec) -> Policy:
    """Build the policy named by a spec string, or return a policy as is.

    Parameters
    ----------
    spec : str or Policy
        ``NAME[:key=value,...]``, e.g. ``chains:k=4``, ``eagle2:k=4,d=6,T=1.5`` or
        ``specexec:q=(dirichlet:alpha=1,k=8)`` (see the module's docstring).

    Returns
    -------
    Policy
        The policy; ``str(policy)`` prints its canonical spec.
    """
    if isinstance(spec, Policy):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise BrwError(f"policy spec must be a non-empty string like 'chains:k=4', got {spec!r}")
    spec = spec.strip()
    name, colon, body = spec.partition(":")
    name = name.strip()
    if name not in POLICY_NAMES:
        raise BrwError(_unknown(name))
    if colon and not body.strip():
        raise BrwError(f"policy spec {spec!r} has a ':' but no key=value after it")
    fields: dict[str, str] = {}
    for part in _split_top(body) if body.strip() else []:
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise BrwError(f"bad parameter {part!r} in policy spec {spec!r}: write key=value")
        if key not in _KEYS[name] + _DRAFTER_KEYS:
            raise BrwError(f"unknown parameter {key!r} in policy spec {spec!r}; "
                           f"{name} takes {', '.join(_KEYS[name] + _DRAFTER_KEYS)}")
        if key in fields:
            raise BrwError(f"parameter {key!r} given twice in policy spec {spec!r}")
        fields[key] = value
    kw: dict = {}
    for key in ("k", "d", "W", "depth"):
        if key in fields:
            try:
                kw[key] = int(fields[key])
            except ValueError:
                raise BrwError(f"{key}={fields[key]!r} in policy spec {spec!r} must be a whole number") from None
    if "a" in fields:
        try:
            kw["a"] = tuple(float(x) for x in fields["a"].split("/"))
        except ValueError:
            raise BrwError(f"a={fields['a']!r} in policy spec {spec!r} must be numbers separated by '/'") from None
    dkw: dict = {}
    for key in ("T", "sigma"):
        if key in fields:
            try:
                dkw[key] = float(fields[key])
            except ValueError:
                raise BrwError(f"{key}={fields[key]!r} in policy spec {spec!r} is not a number") from None
    if "q" in fields:
        q = fields["q"]
        if not (q.startswith("(") and q.endswith(")")):
            raise BrwError(f"q={q!r} in policy spec {spec!r}: write the drafter's law in parentheses, "
                           "e.g. q=(dirichlet:alpha=1,k=8)")
        dkw["law"] = parse_law(q[1:-1])
    return Policy(name, drafter=Drafter(**dkw), **kw)


def parse_policies(specs) -> tuple[Policy, ...]:
    """Policies from a comma-separated list or a sequence of specs.

    Parameters
    ----------
    specs : str or sequence of (str or Policy)
        ``chain,chains:k=4,kary:k=2,d=5``: a comma starts a new policy unless what follows is a ``key=value`` of
        the policy before it.

    Returns
    -------
    tuple of Policy
        Distinct policies, in the order given.
    """
    if isinstance(specs, (str, Policy)):
        specs = [specs] if isinstance(specs, Policy) else _split_list(specs)
    try:
        specs = list(specs)
    except TypeError:
        raise BrwError(f"policies must be a list of policy specs, got {specs!r}") from None
    if not specs:
        raise BrwError("policies must name at least one policy")
    out = []
    for s in specs:
        p = parse_policy(s)
        if p in out:
            raise BrwError(f"policy {p} is listed twice")
        out.append(p)
    return tuple(out)


def _split_list(text: str) -> list[str]:
    items: list[str] = []
    for part in _split_top(text):
        part = part.strip()
        starts = ":" in part.split("=", 1)[0] or "=" not in part
        if starts:
            items.append(part)
        elif items and ":" in items[-1]:
            items[-1] += "," + part
        else:
            raise BrwError(f"{part!r} in the policy list {text!r} follows no policy that takes it "
                           "(write NAME:key=value)")
    return items


# --------------------------------------------------------------------------------------------------------
# Static shapes, in the drafter's ranks: node i is candidate rank[i] (0 = the drafter's best) of node parent[i]
# (-1: the root), parents first; a prefix of P nodes is the policy's P-node tree.


def _chains(k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """k chains grown in turn: node i < k is the root's candidate i, node i >= k continues node i - k."""
    i = np.arange(size, dtype=np.int64)
    return np.where(i < k, -1, i - k).astype(np.int32), np.where(i < k, i, 0).astype(np.int32)


def _kary(k: int, d: int | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The full k-ary tree level by level (breadth first), d levels at most."""
    if d is not None:
        full, level = 0, 1
        for _ in range(d):
            level *= k
            full += level
            if full >= size:
                break
        size = min(size, full)
    i = np.arange(size, dtype=np.int64)
    return (i // k - 1).astype(np.int32), (i % k).astype(np.int32)


def _best_first_shape(a: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The nodes of largest product of a along their rank path, in that order (ties: first found first)."""
    parent = np.empty(size, dtype=np.int32)
    rank = np.empty(size, dtype=np.int32)
    heap = [(-float(a[r]), r, -1, r) for r in range(a.size)]  # (-score, tie order, parent, rank)
    heapq.heapify(heap)
    order = a.size
    for i in range(size):
        if not heap:
            return parent[:i], rank[:i]
        neg, _, par, r = heapq.heappop(heap)
        parent[i], rank[i] = par, r
        for c in range(a.size):
            heapq.heappush(heap, (neg * float(a[c]), order, i, c))
            order += 1
    return parent, rank


def _sequoia_shape(a: np.ndarray, P: int, depth: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Sequoia's optimal tree of P + 1 nodes (root counted) in the drafter's ranks; a depth limit that holds
    fewer nodes gives its full tree (the rest of the budget unused)."""
    from brw.sequoia import sequoia_tree

    n = P + 1
    if depth is not None:
        n = min(n, sum(a.size**level for level in range(depth)))
    tree = sequoia_tree(a, n, depth)
    return (tree.parent[1:] - 1).astype(np.int32), (tree.rank[1:] - 1).astype(np.int32)


def _eval_order(parent: np.ndarray) -> np.ndarray:
    """Each parent's children together (parents still before their children)."""
    return np.argsort(parent, kind="stable").astype(np.int64)


# --------------------------------------------------------------------------------------------------------
# Kernel arguments.


def _drafter_args(drafter: Drafter, pmax: int) -> tuple[tuple, int]:
    """(okind, otable, oparams, ocut, T, sigma) and the drafter's vector buffer width."""
    if drafter.law is None:
        return (-1, np.zeros((1, 1)), np.zeros(4), math.inf, drafter.T, drafter.sigma), 1
    oa = kernel_args(drafter.law, gem_cut(drafter.law, pmax))
    return (oa.kind, oa.table, oa.params, oa.cut, drafter.T, drafter.sigma), oa.width


def rank_accuracy(law, drafter: Drafter | None = None, ranks: int = DEFAULT_RANKS, nodes: int = CALIBRATION_NODES,
                  seed: int | None = None) -> np.ndarray:
    """Per-rank accuracies of a drafter: a_r = E[the verifier's probability of the drafter's r-th candidate].

    What Medusa measures per head and Sequoia calls the positional acceptance vector, here measured on nodes of
    the law's own (each drawn as a root, from keys of a stream no replicate uses).

    Parameters
    ----------
    law : Law or str
        The verifier's step law.
    drafter : Drafter, optional
        The drafter (default: the verifier itself).
    ranks : int, optional
        How many ranks W (default ``DEFAULT_RANKS``).
    nodes : int, optional
        Nodes measured (default ``CALIBRATION_NODES``).
    seed : int or None, optional
        Whole number >= 0; None draws fresh entropy.

    Returns
    -------
    numpy.ndarray
        a_1..a_W (sum at most 1).
    """
    law = _verifier_law(law)
    drafter = Drafter() if drafter is None else drafter
    ranks = check_count(ranks, "ranks")
    nodes = check_count(nodes, "nodes")
    seed = check_seed(seed)
    args = kernel_args(law, gem_cut(law, ranks))
    dargs, owidth = _drafter_args(drafter, ranks)
    base = np.random.SeedSequence(seed, spawn_key=(_CALIBRATION_STREAM,)).generate_state(1, np.uint64)[0]
    out = np.zeros(ranks)
    K.drafter_accuracy(*args.vector_args, *dargs, base, nodes, ranks, args.width, owidth, out)
    return out / nodes


# --------------------------------------------------------------------------------------------------------
# The result.


@dataclass(frozen=True)
class PoliciesResult(Result):
    """accepted(P) of each policy beside the optimal frontier on the same replicate trees.

    Attributes
    ----------
    law : str
        The verifier's law.
    mu, mu2 : float
        The law's expected entropy and second log-moment.
    pmax : int
        The largest P.
    policies : tuple of str
        The policies' specs.
    replicates, seed, first_replicate : int
        Replicates ``first_replicate .. first_replicate + replicates - 1`` of ``seed`` (the same trees as
        ``frontier(law, pmax, replicates, seed)``).
    frontier, frontier_stderr : numpy.ndarray
        The optimal tree's accepted(P) for P = 1..pmax: mean over replicates and standard error.
    accepted, stderr : numpy.ndarray
        Shape (policies, pmax): each policy's accepted(P), mean and standard error (NaN where a policy was not
        scored: Sequoia's trees outside ``at``).
    gap, gap_stderr : numpy.ndarray
        Shape (policies, pmax): mean over replicates of frontier - policy on the same tree, and its standard
        error (paired, so much smaller than either curve's).
    at : tuple of int
        The P where every policy was scored.
    accuracies : dict
        The per-rank accuracy vector each static-tree policy was built from, by spec.
    seconds : float
        Time in the kernels.
    version : str
        The package version that computed it.
    values : numpy.ndarray or None
        With ``keep_replicates``: shape (replicates, policies + 1, len(at)), every replicate's accepted at the P
        of ``at``, the frontier first, then each policy (NaN where one was not scored).
    """

    law: str
    mu: float
    mu2: float
    pmax: int
    policies: tuple[str, ...]
    replicates: int
    seed: int
    first_replicate: int
    frontier: np.ndarray
    frontier_stderr: np.ndarray
    accepted: np.ndarray
    stderr: np.ndarray
    gap: np.ndarray
    gap_stderr: np.ndarray
    at: tuple[int, ...]
    accuracies: dict
    seconds: float
    version: str = __version__
    values: np.ndarray | None = None

    @property
    def P(self) -> np.ndarray:
        """1..pmax."""
        return np.arange(1, self.pmax + 1)

    def curve(self, policy) -> tuple[np.ndarray, np.ndarray]:
        """One policy's accepted(P) and standard error for P = 1..pmax.

        Parameters
        ----------
        policy : str or Policy
            One of the policies scored.

        Returns
        -------
        tuple of numpy.ndarray
            ``(accepted, stderr)``.
        """
        i = self._index(policy)
        return self.accepted[i], self.stderr[i]

    def _index(self, policy) -> int:
        spec = str(parse_policy(policy))
        if spec not in self.policies:
            raise BrwError(f"policy {spec} was not scored; scored: {', '.join(self.policies)}")
        return self.policies.index(spec)

    def to_dict(self, at=None) -> dict:
        """The result as ``brw policies --json`` prints it.

        Parameters
        ----------
        at : sequence of int, optional
            The P to report (default: the P where every policy was scored).

        Returns
        -------
        dict
            Keys ``law``, ``mu``, ``mu2``, ``P``, ``frontier``, ``frontier_stderr``, ``policies`` (one dict per
            policy: ``policy``, ``accepted``, ``stderr``, ``gap``, ``gap_stderr``), ``replicates``, ``seed``,
            ``first_replicate``, ``accuracies``, ``seconds``, ``version``. Values not scored are None.
        """
        at = list(self.at) if at is None else [int(p) for p in whole_numbers(at, "P", 1, self.pmax)]
        idx = np.asarray(at, dtype=np.int64) - 1

        def vals(a):
            return [None if not math.isfinite(v) else float(v) for v in a[idx]]

        return {
            "law": self.law, "mu": self.mu, "mu2": self.mu2, "P": at,
            "frontier": vals(self.frontier), "frontier_stderr": vals(self.frontier_stderr),
            "policies": [{"policy": p, "accepted": vals(self.accepted[i]), "stderr": vals(self.stderr[i]),
                          "gap": vals(self.gap[i]), "gap_stderr": vals(self.gap_stderr[i])}
                         for i, p in enumerate(self.policies)],
            "replicates": self.replicates, "seed": self.seed, "first_replicate": self.first_replicate,
            "accuracies": {k: [float(x) for x in v] for k, v in self.accuracies.items()},
            "seconds": self.seconds, "version": self.version,
        }

    def _tidy(self, at=None) -> dict:
        """Columns: law, policy, P, accepted, stderr, gap, gap_stderr, frontier, frontier_stderr, replicates,
        seed, version (one row per policy and P; default every P, rows a policy was not scored at left out)."""
        P = self.P if at is None else whole_numbers(at, "P", 1, self.pmax)
        cols: dict[str, list] = {c: [] for c in ("law", "policy", "P", "accepted", "stderr", "gap", "gap_stderr",
                                                 "frontier", "frontier_stderr", "replicates", "seed", "version")}
        for i, spec in enumerate(self.policies):
            for p in P:
                if not math.isfinite(self.accepted[i, p - 1]):
                    continue
                row = {"law": self.law, "policy": spec, "P": int(p), "accepted": self.accepted[i, p - 1],
                       "stderr": self.stderr[i, p - 1], "gap": self.gap[i, p - 1],
                       "gap_stderr": self.gap_stderr[i, p - 1], "frontier": self.frontier[p - 1],
                       "frontier_stderr": self.frontier_stderr[p - 1], "replicates": self.replicates,
                       "seed": self.seed, "version": self.version}
                for c, v in row.items():
                    cols[c].append(v)
        return cols


class _Moments:
    """Mean and sum of squared deviations, one replicate at a time (Welford): no per-replicate arrays kept, and
    the same numbers whatever the batches (so for any thread count)."""

    def __init__(self, shape):
        self.n = 0
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)

    def add(self, batch: np.ndarray) -> None:
        for x in batch:
            self.n += 1
            delta = x - self.mean
            self.mean += delta / self.n
            self.m2 += delta * (x - self.mean)

    def stderr(self) -> np.ndarray:
        if self.n < 2:
            return np.full(self.mean.shape, np.nan)
        return np.sqrt(self.m2 / (self.n - 1) / self.n)


# --------------------------------------------------------------------------------------------------------
# Scoring.


def _verifier_law(law) -> Law:
    """The verifier's law, parsed; the policy kernels draw a node's row from its parent's alone, so laws whose
    rows depend on the edge into a node are refused."""
    law = parse_law(law)
    if law.name in ("edge", "run", "prefix"):
        raise BrwError(f"policies cannot score {law}: its rows depend on each node's edge, which the policy "
                       f"kernels do not track (use ctx: or path: on the same trace)")
    return law


def policies(law, pmax: int, policies=DEFAULT_POLICIES, replicates: int = 100, seed: int | None = None, *,
             first_replicate: int = 0, at=None, threads: int | None = None, progress: bool = False,
             keep_replicates: bool = False) -> PoliciesResult:
    """Score drafting policies on the optimal frontier's own trees.

    Parameters
    ----------
    law : Law or str
        The verifier's step law or its spec.
    pmax : int
        The largest number P of draft nodes.
    policies : str or sequence of (str or Policy), optional
        The policies (default ``DEFAULT_POLICIES``): see the module's docstring and :func:`parse_policies`.
    replicates : int, optional
        Independent trees (default 100).
    seed : int or None, optional
        Whole number >= 0; None (the default) draws fresh entropy and records it in the result.
    first_replicate : int, optional
        Run replicates ``first_replicate .. first_replicate + replicates - 1`` of ``seed`` (default 0).
    at : sequence of int, optional
        P in 1..pmax where policies whose trees are not nested (Sequoia's, the sampled multi-draft trees) are
        scored (default: powers of two up to pmax, and pmax). Every other policy is scored at every P.
    threads : int or None, optional
        Worker threads (default: Numba's current count). Results are identical for any count.
    progress : bool, optional
        Show a progress bar on stderr.
    keep_replicates : bool, optional
        Keep every replicate's values at the P of ``at`` (``PoliciesResult.values``), for paired differences
        between any two policies.

    Returns
    -------
    PoliciesResult
        Each policy's accepted(P), the frontier's, and the paired gaps with standard errors. A deterministic
        policy's gap is never negative; a sampled policy's can be (randomized drafting is outside the speed of
        light's scope, docs/theory.md section 9).

    Examples
    --------
    >>> res = policies("dirichlet:alpha=0.5,k=8", 64, ["chain", "specexec:sigma=1"], replicates=50, seed=1)
    >>> bool((res.gap >= 0).all())
    True
    """
    law = _verifier_law(law)
    pmax = check_count(pmax, "P")
    pols = parse_policies(policies)
    replicates = check_count(replicates, "replicates")
    seed = check_seed(seed)
    first_replicate = check_count(first_replicate, "first_replicate", minimum=0)
    at = tuple(default_at(pmax)) if at is None else tuple(sorted({int(p) for p in whole_numbers(at, "at", 1, pmax)}))
    nthreads = thread_count(threads)
    _check_sizes(law, pols, pmax, at, replicates, keep_replicates, nthreads)
    args = kernel_args(law, gem_cut(law, pmax))
    x0 = frontier_start(law, pmax)
    plans, accuracies = _plans(pols, law, pmax, at, seed)
    npol = len(pols)
    chunk = chunk_size(replicates, pmax, nthreads)
    while chunk > 1 and chunk * pmax * 8 * (npol + 2) > 0.25 * _available():
        chunk //= 2
    keys = root_keys(seed, replicates, first_replicate)
    front = _Moments(pmax)
    acc_m = _Moments((npol, pmax))
    gap_m = _Moments((npol, pmax))
    seconds = 0.0
    kept = np.empty((replicates, npol + 1, len(at))) if keep_replicates else None
    idx_at = np.asarray(at, dtype=np.int64) - 1
    with Progress(replicates, "policies", enabled=progress, unit="replicates",
                  hint="fewer replicates, policies or a smaller P (--replicates, --policies, --P)") as bar:
        for start in range(0, replicates, chunk):
            ks = keys[start:start + chunk]
            n = ks.size
            t0 = time.perf_counter()
            fr = np.empty((n, pmax))
            run_replicates(K.frontier_batch, n, nthreads, *args.vector_args, ks, pmax, args.width, x0, fr,
                           np.empty(n, dtype=np.int64), np.empty(n))
            # Policy-major, so that each policy's rows are one C-contiguous block: a kernel compiled for C arrays
            # only (a strided view would make Numba compile a second version of it)
            by_policy = np.full((npol, n, pmax), np.nan)
            chains: dict = {}  # (drafter, k) -> the sampled chain's level sums on this chunk, walked once
            for i, (pol, dargs, owidth, shapes) in enumerate(plans):
                _score(pol, args, dargs, owidth, shapes, ks, pmax, at, by_policy[i], nthreads, chains)
            vals = by_policy.transpose(1, 0, 2)
            seconds += time.perf_counter() - t0
            if kept is not None:
                kept[start:start + n, 0] = fr[:, idx_at]
                kept[start:start + n, 1:] = vals[:, :, idx_at]
            front.add(fr)
            acc_m.add(vals)
            gap_m.add(fr[:, None, :] - vals)
            bar.update(n)
    return PoliciesResult(str(law), law.mu, law.mu2, pmax, tuple(p.spec for p in pols), replicates, seed,
                          first_replicate, front.mean, front.stderr(), acc_m.mean, acc_m.stderr(), gap_m.mean,
                          gap_m.stderr(), at, accuracies, seconds, values=kept)


def _check_sizes(law: Law, pols, pmax: int, at: tuple, replicates: int, keep_replicates: bool, nthreads: int):
    """Refuse, before any work, a run whose sizes cannot fit: P, the replicates' memory, the sampled schemes'
    trees, Sequoia's largest tree."""
    if pmax > 10**7:
        raise BrwError(f"P={pmax} is too large for policies: at most 10000000")
    # Per replicate: its key and, per policy and the frontier, its accepted curve while its chunk is folded in.
    require("replicates", replicates, lambda r: 24.0 * r + 8.0 * pmax * (len(pols) + 2)
            + (8.0 * r * (len(pols) + 1) * len(at) if keep_replicates else 0.0), what=f"policies on {law}")
    _check_sampled(law, pols, pmax, at, nthreads)
    if any(p.name == "sequoia" for p in pols):
        if max(at) + 1 > MAX_NODES:
            raise BrwError(f"the sequoia policy builds trees of at most {MAX_NODES} nodes (root counted): "
                           f"score it at P <= {MAX_NODES - 1} (at), got {max(at)}")


def _plans(pols, law: Law, pmax: int, at: tuple, seed: int):
    """Each policy's fixed inputs: ``(policy, drafter kernel arguments, drafter width, static shapes or None)``,
    and the per-rank accuracies that static policies were built from (measured once per drafter and W)."""
    accuracies: dict[str, np.ndarray] = {}
    measured: dict[tuple, np.ndarray] = {}  # (drafter, W) -> accuracies
    plans = []
    for pol in pols:
        dargs, owidth = _drafter_args(pol.drafter, pmax)
        if pol.name in ("medusa", "sequoia"):
            if pol.a is not None:
                a = np.asarray(pol.a)
            else:
                ranks = pol.W or DEFAULT_RANKS
                if (pol.drafter, ranks) not in measured:
                    measured[pol.drafter, ranks] = rank_accuracy(law, pol.drafter, ranks, seed=seed)
                a = measured[pol.drafter, ranks]
            accuracies[pol.spec] = a
        if pol.name == "chain":
            shapes = [_chains(1, pmax)]
        elif pol.name == "chains":
            shapes = [_chains(pol.k, pmax)]
        elif pol.name == "kary":
            shapes = [_kary(pol.k, pol.d, pmax)]
        elif pol.name == "medusa":
            shapes = [_best_first_shape(a, pmax)]
        elif pol.name == "sequoia":
            shapes = [_sequoia_shape(a, P, pol.depth) for P in at]
        else:
            shapes = None
        plans.append((pol, dargs, owidth, shapes))
    return plans, accuracies


def _available() -> int:
    from brw.solver import available_memory

    return available_memory()


def _check_sampled(law, pols, pmax: int, at, threads: int) -> None:
    """Refuse sampled policies whose kernels' buffers cannot fit (per thread: a slot vector per chain level,
    or per node of the largest drafted tree)."""
    width = kernel_args(law, gem_cut(law, pmax)).width + law.kernel_law().tails.shape[1]
    for pol in pols:
        if pol.name in ("specsample", "block"):
            require("k", min(pol.k, pmax), lambda k: 32.0 * threads * k * width, what=f"the policy {pol} on {law}")
        elif pol.name in SAMPLED_POLICIES:
            require("P", max(at), lambda P, k=pol.k: 32.0 * threads * (P + 1) * (width + k), what=f"the policy {pol} "
                    f"on {law}")


def _score(pol: Policy, args, dargs, owidth, shapes, keys, pmax, at, out, threads, chains=None) -> None:
    """One policy's accepted(P) on each replicate tree of ``keys`` into out (replicates x pmax), on ``threads``
    threads; ``chains`` caches the sampled chains' walks of this batch of keys."""
    n = keys.size
    if pol.name in ("specsample", "block"):
        k = min(pol.k, pmax)
        if pol.drafter.is_verifier:  # q = p: every drafted token is accepted (the walk would only add noise)
            out[:] = np.minimum(np.arange(1, pmax + 1), k)
            return
        cache = {} if chains is None else chains
        if (pol.drafter, k) not in cache:
            tok, blk = np.empty((n, k)), np.empty((n, k))
            run_replicates(SK.chain_walk_batch, n, threads, *args.vector_args, *dargs, keys, k, CHAIN_TAU, True,
                           args.width, owidth, tok, blk, np.empty((n, k)), np.empty(n), np.empty(n, dtype=np.int64))
            cache[pol.drafter, k] = (np.cumsum(tok, axis=1), np.cumsum(blk, axis=1))
        acc = cache[pol.drafter, k][0 if pol.name == "specsample" else 1]
        out[:, :k] = acc
        out[:, k:] = acc[:, -1:]
    elif pol.name in SAMPLED_POLICIES:
        code = {"specinfer": SK.SCHEME_SPECINFER, "rsd": SK.SCHEME_RSD, "traversal": SK.SCHEME_TRAVERSAL}[pol.name]
        at_arr = np.asarray(at, dtype=np.int64)
        res = np.empty((keys.size, at_arr.size))
        run_replicates(SK.tree_scheme_batch, n, threads, *args.vector_args, *dargs, keys, code, pol.k, pol.d, at_arr,
                       SAMPLED_DRAWS, args.width, owidth, res)
        out[:, at_arr - 1] = res
    elif pol.name == "specexec":
        run_replicates(K.drafted_best_first_batch, n, threads, *args.vector_args, *dargs, keys, pmax, args.width,
                       owidth, out)
    elif pol.name == "eagle2":
        run_replicates(K.drafted_eagle_batch, n, threads, *args.vector_args, *dargs, keys, pol.k, pol.d, args.width,
                       owidth, out)
    elif pol.nested:
        parent, rank = shapes[0]
        run_replicates(K.drafted_static_batch, n, threads, *args.vector_args, *dargs, keys, parent, rank,
                       _eval_order(parent), args.width, owidth, out)
    else:  # one tree per P: keep its whole value at that P
        for P, (parent, rank) in zip(at, shapes):
            full = np.empty((keys.size, max(parent.size, 1)))
            run_replicates(K.drafted_static_batch, n, threads, *args.vector_args, *dargs, keys, parent, rank,
                           _eval_order(parent), args.width, owidth, full)
            out[:, P - 1] = full[:, -1] if parent.size else 0.0
