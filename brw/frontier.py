"""The optimal frontier and the threshold tree of a branching random walk (theory.md sections 1 and 3).

``frontier(law, pmax, replicates, seed)`` finds, for each of R independent replicate trees, the exact set of
the P non-root nodes of smallest position, for every P <= pmax in one pass (a pruned depth-first walk that
keeps the pmax smallest positions; ``brw._kernels.frontier_select_one``), and returns
accepted(P) = E[X] (bonus token excluded) as a mean and a standard error across replicates.

``threshold(law, xs, replicates, seed)`` enumerates {V <= x} and returns the count and the mass of nodes at or
below each level x in xs. ``frontier_tree`` and ``threshold_tree`` return one replicate as flat arrays.

Replicate j's tree is a function of (law, seed, j) alone: its root key comes from
``SeedSequence(seed, spawn_key=(j,))``, and the kernels derive every node's randomness from keys
(``brw._kernels``). The same replicate is the same tree in both solvers, at any Pmax and thread count.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from brw import _kernels as K
from brw import __version__
from brw.errors import BrwError
from brw.laws import Law, parse_law
from brw.progress import Progress

__all__ = [
    "FrontierResult", "ThresholdResult", "Tree", "frontier", "frontier_tree", "threshold", "threshold_tree",
    "root_keys", "default_at",
]

#: Bytes per node of the frontier's accepted curve (``brw._kernels.frontier_select_one``): a buffer of
#: 1.25 P + 64 (position 8, depth 4) slots and the curve 8, so about 23; 32 is the promise.
FRONTIER_BYTES_PER_NODE = 32
#: The pruned walk starts at x = log(mu (P + 1)) + margin, margin = FRONTIER_X_MARGIN + 3 / sqrt(P) nats: about
#: e^margin P nodes lie below it (N(x) e^-x mu -> 1; its spread across trees shrinks like 1/sqrt(P), and a
#: walk that finds fewer than P nodes costs a second walk).
FRONTIER_X_MARGIN = 0.05
#: GEM laws: the frontier breaks sticks until the unbroken mass sits this far (nats) beyond the expected
#: P-th position; the run then checks that no replicate's frontier reached it (exactness, see ``_gem_cut``).
GEM_MARGIN = 20.0


def root_keys(seed: int, replicates: int, first: int = 0) -> np.ndarray:
    """The 64-bit root key of replicates first .. first + replicates - 1 (numpy SeedSequence spawn keys)."""
    seed = _check_seed(seed)
    return np.array(
        [np.random.SeedSequence(seed, spawn_key=(j,)).generate_state(1, np.uint64)[0]
         for j in range(first, first + replicates)],
        dtype=np.uint64,
    )


def default_at(pmax: int) -> list[int]:
    """Powers of two up to pmax, and pmax."""
    at = [1 << i for i in range(pmax.bit_length()) if (1 << i) <= pmax]
    if at[-1] != pmax:
        at.append(pmax)
    return at


@dataclass(frozen=True)
class FrontierResult:
    """accepted[P - 1] = mean over replicates of E[X] for the optimal P-node tree; stderr likewise."""

    law: str
    mu: float
    mu2: float
    pmax: int
    replicates: int
    seed: int
    first_replicate: int
    accepted: np.ndarray
    stderr: np.ndarray
    deepest: np.ndarray  # depth of the deepest node of each replicate's Pmax-tree
    last_position: np.ndarray  # position of each replicate's Pmax-th node
    seconds: float
    version: str = __version__

    @property
    def P(self) -> np.ndarray:
        return np.arange(1, self.pmax + 1)

    @property
    def tokens_per_step(self) -> np.ndarray:
        return self.accepted + 1.0

    @property
    def nodes_per_second(self) -> float:
        return self.replicates * self.pmax / self.seconds if self.seconds > 0 else math.inf

    def at(self, P) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(P, dtype=np.int64) - 1
        if np.any(idx < 0) or np.any(idx >= self.pmax):
            raise BrwError(f"P must lie in 1..{self.pmax} for this result")
        return self.accepted[idx], self.stderr[idx]

    def to_dict(self, at=None) -> dict:
        at = default_at(self.pmax) if at is None else [int(p) for p in at]
        acc, se = self.at(at)
        return {
            "law": self.law, "mu": self.mu, "mu2": self.mu2, "P": at,
            "accepted": [float(a) for a in acc], "stderr": [float(s) for s in se],
            "replicates": self.replicates, "seed": self.seed, "first_replicate": self.first_replicate,
            "nodes_per_second": self.nodes_per_second, "version": self.version,
        }


@dataclass(frozen=True)
class ThresholdResult:
    """For each level xs[b]: mean over replicates of N(x) = #{non-root v : V(v) <= x} and of the mass
    sum e^-V over those nodes (add 1 for the root to get identity 2's U(x)), with standard errors."""

    law: str
    xs: np.ndarray
    replicates: int
    seed: int
    count: np.ndarray  # (replicates, len(xs)) cumulative counts
    mass: np.ndarray  # (replicates, len(xs)) cumulative masses
    deepest: np.ndarray
    seconds: float
    version: str = __version__

    def mean_count(self):
        return self.count.mean(axis=0), _se(self.count)

    def mean_mass(self):
        return self.mass.mean(axis=0), _se(self.mass)


@dataclass(frozen=True)
class Tree:
    """One tree as flat arrays: node i's parent (index, -1 for the root), depth and position V.
    For a frontier tree, nodes are in pop order (non-decreasing position)."""

    parent: np.ndarray
    depth: np.ndarray
    position: np.ndarray
    law: str = ""
    seed: int = 0
    replicate: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self):
        return self.position.shape[0]

    @property
    def accepted(self) -> np.ndarray:
        """accepted(P) for P = 1..len: prefix sums of e^-V (meaningful in pop order)."""
        return np.cumsum(np.exp(-self.position))


def _se(a: np.ndarray) -> np.ndarray:
    r = a.shape[0]
    if r < 2:
        return np.full(a.shape[1:], np.nan)
    return a.std(axis=0, ddof=1) / math.sqrt(r)


# --------------------------------------------------------------------------------------------------------
# Validation and resources.


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BrwError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def _check_count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise BrwError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise BrwError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or physical memory where /proc is absent."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _require_memory(nbytes: float, what: str, fix: str) -> None:
    have = available_memory()
    if nbytes > 0.8 * have:
        raise BrwError(f"{what} needs about {_gib(nbytes)} of memory but {_gib(have)} is available; {fix}")


def _threads(threads) -> int:
    if threads is None:
        return numba.get_num_threads()
    threads = _check_count(threads, "threads")
    return min(threads, numba.config.NUMBA_NUM_THREADS)


def _dynamic_replicates() -> int:
    """Hand replicates to threads one at a time (Numba's default splits them evenly up front): on a machine
    shared with other processes a thread that shares its core then takes fewer. Results do not change (each
    replicate depends on its key alone). Returns the previous chunk size, to restore."""
    return numba.set_parallel_chunksize(1)


def _gem_cut(law: Law, pmax: int) -> float:
    """Positions that matter for a P-node frontier lie far below log(mu (P + 1)) + GEM_MARGIN (only
    stick-breaking laws use a cut)."""
    if law.kernel_law().kind != K.KIND_GEM:
        return math.inf
    return math.log(max(law.mu, 1e-3) * (pmax + 1)) + GEM_MARGIN


def frontier_start(law: Law, pmax: int) -> float:
    """Where the frontier kernel's pruned walk starts: N(x) ~ e^x / mu (key renewal theorem), plus a margin."""
    return math.log(max(law.mu, 1e-3) * (pmax + 1)) + FRONTIER_X_MARGIN + 3.0 / math.sqrt(pmax)


def _kernel_args(law: Law, cut: float):
    kl = law.kernel_law()
    width = kl.width
    if kl.kind == K.KIND_GEM:
        ncomp = int(kl.params[0])
        lam = float(np.max(kl.params[1 + ncomp:1 + 2 * ncomp])) * cut  # sticks: 1 + Poisson(theta * cut)
        width = int(lam + 12.0 * math.sqrt(lam) + 32)
    return kl.kind, np.ascontiguousarray(kl.table), np.ascontiguousarray(kl.tails), kl.params, float(cut), width


# --------------------------------------------------------------------------------------------------------
# The optimal frontier.


def frontier(law, pmax: int, replicates: int = 1, seed: int = 0, *, first_replicate: int = 0,
             threads: int | None = None, progress: bool = False, parallel: bool = True) -> FrontierResult:
    """accepted(P) for every P <= pmax, averaged over independent replicate trees of ``law``.

    Replicate j uses root key ``root_keys(seed, 1, j)``; ``first_replicate`` replays replicates
    first_replicate .. first_replicate + replicates - 1 alone. Results are identical for any ``threads``.
    """
    law = parse_law(law)
    pmax = _check_count(pmax, "P")
    replicates = _check_count(replicates, "replicates")
    seed = _check_seed(seed)
    first_replicate = _check_count(first_replicate, "first_replicate", minimum=0)
    nthreads = _threads(threads)
    if pmax >= 2**31 - 2:
        raise BrwError(f"P={pmax} is too large: at most {2**31 - 3} nodes per tree")

    kind, table, tails, params, cut, width = _kernel_args(law, _gem_cut(law, pmax))
    x0 = frontier_start(law, pmax)
    heap = (pmax + pmax // 4 + 64) * 12 + width * 8 * 256  # position buffer; walk stack (256 levels to start)
    # Replicates run in chunks; a chunk holds its accepted curves until they are folded into the mean.
    chunk = max(1, min(replicates, 4 * nthreads))
    while chunk > 1 and chunk * (pmax * 8 + heap) + 16 * pmax > 0.5 * available_memory():
        chunk //= 2
    _require_memory(min(chunk, nthreads) * heap + chunk * pmax * 8 + 16 * pmax,
                    f"a frontier with P={pmax}", "lower P")
    batch = K.frontier_batch if parallel else K.frontier_batch_serial
    keys = root_keys(seed, replicates, first_replicate)

    old = numba.get_num_threads()
    numba.set_num_threads(nthreads)
    old_chunk = _dynamic_replicates()
    try:
        _warm_up(batch, kind, table, tails, params, cut, width)
        # One replicate: its curve is the mean (no Welford arrays, 16 bytes per node less at the peak).
        mean = np.zeros(pmax) if replicates > 1 else None
        m2 = np.zeros(pmax) if replicates > 1 else None
        delta = np.empty(pmax) if replicates > 1 else None
        tmp = np.empty(pmax) if replicates > 1 else None
        deepest = np.empty(replicates, dtype=np.int64)
        last = np.empty(replicates)
        acc = np.empty((chunk, pmax))
        seconds = 0.0
        with Progress(replicates, "frontier", enabled=progress) as bar:
            for start in range(0, replicates, chunk):
                stop = min(start + chunk, replicates)
                n = stop - start
                t0 = time.perf_counter()
                batch(kind, table, tails, params, cut, keys[start:stop], pmax, width, x0, acc[:n], deepest[start:stop],
                      last[start:stop])
                seconds += time.perf_counter() - t0
                if replicates == 1:
                    mean = acc[0]
                for i in range(n if replicates > 1 else 0):  # Welford, in replicate order: the same bits for any
                    j = start + i + 1  # chunking; in place, so that no temporary array joins the peak
                    np.subtract(acc[i], mean, out=delta)
                    np.divide(delta, j, out=tmp)
                    mean += tmp
                    np.subtract(acc[i], mean, out=tmp)
                    tmp *= delta
                    m2 += tmp
                bar.update(n)
    finally:
        numba.set_num_threads(old)
        numba.set_parallel_chunksize(old_chunk)

    if kind == K.KIND_GEM and np.any(last >= cut):  # pragma: no cover - needs a frontier 20 nats off course
        raise RuntimeError(f"gem frontier reached the stick-breaking cut {cut:.1f}; raise GEM_MARGIN")
    stderr = np.sqrt(m2 / (replicates - 1) / replicates) if replicates > 1 else np.full(pmax, np.nan)
    return FrontierResult(str(law), law.mu, law.mu2, pmax, replicates, seed, first_replicate, mean, stderr,
                          deepest, last, seconds)


def _warm_up(batch, kind, table, tails, params, cut, width):
    """Compile (or load from cache) outside the timed region."""
    batch(kind, table, tails, params, cut, np.zeros(1, dtype=np.uint64), 1, width, 1.0, np.empty((1, 1)),
          np.empty(1, dtype=np.int64), np.empty(1))


def frontier_tree(law, P: int, seed: int = 0, replicate: int = 0) -> Tree:
    """The optimal P-node tree of one replicate, in pop order."""
    law = parse_law(law)
    P = _check_count(P, "P")
    seed = _check_seed(seed)
    replicate = _check_count(replicate, "replicate", minimum=0)
    kind, table, tails, params, cut, width = _kernel_args(law, _gem_cut(law, P))
    _require_memory((P + 2) * 28 + P * 24, f"a frontier tree with P={P}", "lower P")
    parent = np.empty(P, dtype=np.int32)
    depth = np.empty(P, dtype=np.int32)
    pos = np.empty(P)
    acc = np.empty(P)
    key = root_keys(seed, 1, replicate)[0]
    deepest, last = K.frontier_one(kind, table, tails, params, cut, key, P, acc, parent, depth, pos,
                                   np.empty(max(width, 1)))
    return Tree(parent, depth, pos, str(law), seed, replicate, {"deepest": int(deepest)})


# --------------------------------------------------------------------------------------------------------
# The threshold tree.


def _check_levels(xs) -> np.ndarray:
    xs = np.atleast_1d(np.asarray(xs, dtype=np.float64))
    if xs.ndim != 1 or xs.size == 0 or not np.all(np.isfinite(xs)) or np.any(xs < 0):
        raise BrwError("threshold levels x must be finite numbers >= 0")
    if np.any(np.diff(xs) <= 0):
        raise BrwError("threshold levels x must be strictly increasing")
    return xs


def _expected_nodes(law: Law, x: float) -> float:
    """A rough E[#{V <= x}] ~ e^x / mu (key renewal theorem), for size checks only."""
    return math.exp(min(x, 700.0)) / max(law.mu, 1e-3)


def threshold(law, xs, replicates: int = 1, seed: int = 0, *, first_replicate: int = 0,
              max_nodes: int = 10**9, threads: int | None = None, parallel: bool = True) -> ThresholdResult:
    """Count and mass of {v non-root : V(v) <= x} for each x in xs, per replicate."""
    law = parse_law(law)
    xs = _check_levels(xs)
    replicates = _check_count(replicates, "replicates")
    seed = _check_seed(seed)
    max_nodes = _check_count(max_nodes, "max_nodes")
    nthreads = _threads(threads)
    kind, table, tails, params, cut, width = _kernel_args(law, float(xs[-1]))
    keys = root_keys(seed, replicates, first_replicate)
    count = np.zeros((replicates, xs.size), dtype=np.int64)
    mass = np.zeros((replicates, xs.size))
    visited = np.zeros(replicates, dtype=np.int64)
    deepest = np.zeros(replicates, dtype=np.int64)
    batch = K.threshold_batch if parallel else K.threshold_batch_serial
    old = numba.get_num_threads()
    numba.set_num_threads(nthreads)
    old_chunk = _dynamic_replicates()
    try:
        t0 = time.perf_counter()
        batch(kind, table, tails, params, cut, keys, xs, max_nodes, width, count, mass, visited, deepest)
        seconds = time.perf_counter() - t0
    finally:
        numba.set_num_threads(old)
        numba.set_parallel_chunksize(old_chunk)
    if np.any(visited > max_nodes):
        raise BrwError(f"the threshold tree at x={xs[-1]:g} holds more than max_nodes={max_nodes} nodes; "
                       "lower x or raise max_nodes")
    return ThresholdResult(str(law), xs, replicates, seed, np.cumsum(count, axis=1), np.cumsum(mass, axis=1),
                           deepest, seconds)


def threshold_tree(law, x: float, seed: int = 0, replicate: int = 0, max_nodes: int = 10**7) -> Tree:
    """Every non-root node with V <= x of one replicate, depth-first (each parent before its children)."""
    law = parse_law(law)
    xs = _check_levels([x])
    seed = _check_seed(seed)
    max_nodes = _check_count(max_nodes, "max_nodes")
    expect = _expected_nodes(law, float(xs[0]))
    _require_memory(min(expect, max_nodes) * 16, f"a threshold tree at x={x:g} (about {expect:.3g} nodes)",
                    "lower x")
    kind, table, tails, params, cut, width = _kernel_args(law, float(xs[0]))
    key = root_keys(seed, 1, replicate)[0]
    cap = int(min(max_nodes, 4 * expect + 1024))
    while True:  # arrays sized by the expected count; a second pass when the tree is larger than that
        parent = np.empty(cap, dtype=np.int32)
        depth = np.empty(cap, dtype=np.int32)
        pos = np.empty(cap)
        count = np.zeros(1, dtype=np.int64)
        mass = np.zeros(1)
        visited, deepest = K.threshold_one(kind, table, tails, params, cut, key, xs, count, mass, True, parent, depth,
                                           pos, max_nodes, width)
        if visited > max_nodes:
            raise BrwError(f"the threshold tree at x={x:g} holds more than max_nodes={max_nodes} nodes; lower x")
        if visited <= cap:
            break
        cap = int(visited)
    return Tree(parent[:visited].copy(), depth[:visited].copy(), pos[:visited].copy(), str(law), seed, replicate,
                {"deepest": int(deepest)})
