"""The optimal frontier and the threshold tree of a branching random walk (theory.md sections 1 and 3).

``frontier(law, pmax, replicates, seed)`` finds, for each of R independent replicate trees, the exact set of
the P non-root nodes of smallest position, for every P <= pmax in one pass (a pruned depth-first walk that
keeps the pmax smallest positions; ``brw._kernels.frontier_select_one``), and returns
accepted(P) = E[X] (bonus token excluded) as a mean and a standard error across replicates.

``threshold(law, xs, replicates, seed)`` enumerates {V <= x} and returns the count and the mass of nodes at or
below each level x in xs. ``frontier_tree`` and ``threshold_tree`` return one replicate as flat arrays.

Replicate j's tree is a function of (law, seed, j) alone: its root key comes from
``SeedSequence(seed, spawn_key=(j,))`` (:func:`root_keys`), and the kernels derive every node's randomness from
keys (``brw._kernels``). The same replicate is the same tree in both solvers, at any Pmax and thread count.
``seed=None`` draws fresh entropy and the result records the seed drawn, so that any run can be replayed.

Whatever else walks the same trees (the reference, policies) builds the kernels' arguments with
``brw.kernel_law.kernel_args``, the root keys with :func:`root_keys` and runs the parallel kernels inside
:func:`kernel_threads`.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager

import numba
import numpy as np

from brw import _kernels as K
from brw.errors import BrwError
from brw.kernel_law import KIND_GEM, kernel_args, gem_cut
from brw.laws import Law, parse_law
from brw.progress import Progress
from brw.results import FrontierResult, ThresholdResult, Tree

__all__ = ["frontier", "frontier_tree", "threshold", "threshold_tree", "root_keys", "kernel_threads"]

#: Bytes per node of the frontier's accepted curve (``brw._kernels.frontier_select_one``): a buffer of
#: 1.25 P + 64 (position 8, depth 4) slots and the curve 8, so about 23; 32 is the promise.
FRONTIER_BYTES_PER_NODE = 32
#: The pruned walk starts at x = log(mu (P + 1)) + margin, margin = FRONTIER_X_MARGIN + 3 / sqrt(P) nats: about
#: e^margin P nodes lie below it (N(x) e^-x mu -> 1; its spread across trees shrinks like 1/sqrt(P), and a
#: walk that finds fewer than P nodes costs a second walk).
FRONTIER_X_MARGIN = 0.05


def root_keys(seed: int, replicates: int, first: int = 0) -> np.ndarray:
    """The root keys of replicates ``first .. first + replicates - 1``: replicate j's whole tree follows from its key.

    Parameters
    ----------
    seed : int
        The run's seed (a whole number >= 0).
    replicates : int
        How many consecutive replicates.
    first : int, optional
        The first replicate's index (default 0).

    Returns
    -------
    numpy.ndarray
        uint64 keys, ``SeedSequence(seed, spawn_key=(j,)).generate_state(1, uint64)[0]`` for each j.
    """
    seed = _check_seed(seed)
    replicates = _check_count(replicates, "replicates", minimum=0)
    first = _check_count(first, "first", minimum=0)
    return np.array(
        [np.random.SeedSequence(seed, spawn_key=(j,)).generate_state(1, np.uint64)[0]
         for j in range(first, first + replicates)],
        dtype=np.uint64,
    )


# --------------------------------------------------------------------------------------------------------
# Validation and resources.


def _check_seed(seed) -> int:
    """A whole number >= 0; None draws fresh entropy from the operating system (the seed to record)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
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
    """Memory available to a new allocation.

    Returns
    -------
    int
        Bytes available now (MemAvailable), or physical memory where /proc is absent.
    """
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


@contextmanager
def kernel_threads(threads: int | None = None):
    """Run the parallel kernels on ``threads`` threads inside the block; restore Numba's settings on exit.

    Inside, replicates are handed to threads one at a time (Numba's default splits them evenly up front): on
    a machine shared with other processes a thread that shares its core then takes fewer. Results do not
    change (each replicate depends on its key alone).

    Parameters
    ----------
    threads : int or None, optional
        Worker threads, capped at Numba's ``NUMBA_NUM_THREADS``; None keeps the current count.

    Yields
    ------
    int
        The thread count in force.
    """
    threads = _threads(threads)
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    old_chunk = numba.set_parallel_chunksize(1)
    try:
        yield threads
    finally:
        numba.set_num_threads(old)
        numba.set_parallel_chunksize(old_chunk)


def frontier_start(law: Law, pmax: int) -> float:
    """Where the frontier kernel's pruned walk starts.

    Parameters
    ----------
    law : Law
        The step law.
    pmax : int
        The largest P.

    Returns
    -------
    float
        log(mu (pmax + 1)) plus a margin: N(x) ~ e^x / mu (key renewal theorem), so about pmax nodes lie below.
    """
    return math.log(max(law.mu, 1e-3) * (pmax + 1)) + FRONTIER_X_MARGIN + 3.0 / math.sqrt(pmax)


# --------------------------------------------------------------------------------------------------------
# The optimal frontier.


def frontier(law, pmax: int, replicates: int = 1, seed: int | None = None, *, first_replicate: int = 0,
             keep=None, threads: int | None = None, progress: bool = False) -> FrontierResult:
    """accepted(P) for every P <= pmax, averaged over independent replicate trees of ``law``.

    Parameters
    ----------
    law : Law or str
        The step law or its spec, e.g. ``"dirichlet:alpha=0.5,k=8"``.
    pmax : int
        The largest number P of draft (non-root) nodes.
    replicates : int, optional
        Independent trees (default 1).
    seed : int or None, optional
        Whole number >= 0; None (the default) draws fresh entropy and records it in the result.
    first_replicate : int, optional
        Run replicates ``first_replicate .. first_replicate + replicates - 1`` of ``seed`` (default 0): any
        replicate replays alone.
    keep : sequence of int, optional
        P values (in 1..pmax) at which to keep every replicate's accepted(P), for example to fit a slope
        per replicate and take its standard error across replicates.
    threads : int or None, optional
        Worker threads (default: Numba's current count). Results are identical for any count.
    progress : bool, optional
        Show a progress bar on stderr.

    Returns
    -------
    FrontierResult
        ``accepted`` and ``stderr`` for P = 1..pmax; ``replicate_values`` of shape (replicates, len(keep))
        when ``keep`` is given.

    Examples
    --------
    >>> res = frontier("dirichlet:alpha=0.5,k=8", 64, replicates=8, seed=1, keep=[16, 64])
    >>> res.replicate_values.shape
    (8, 2)
    """
    law = parse_law(law)
    pmax = _check_count(pmax, "P")
    replicates = _check_count(replicates, "replicates")
    seed = _check_seed(seed)
    first_replicate = _check_count(first_replicate, "first_replicate", minimum=0)
    keep_idx = _check_keep(keep, pmax)
    nthreads = _threads(threads)
    if pmax >= 2**31 - 2:
        raise BrwError(f"P={pmax} is too large: at most {2**31 - 3} nodes per tree")

    args = kernel_args(law, gem_cut(law, pmax))
    x0 = frontier_start(law, pmax)
    heap = (pmax + pmax // 4 + 64) * 12 + args.width * 8 * 256  # position buffer; walk stack (256 levels to start)
    # Replicates run in chunks; a chunk holds its accepted curves until they are folded into the mean.
    chunk = max(1, min(replicates, 4 * nthreads))
    while chunk > 1 and chunk * (pmax * 8 + heap) + 16 * pmax > 0.5 * available_memory():
        chunk //= 2
    _require_memory(min(chunk, nthreads) * heap + chunk * pmax * 8 + 16 * pmax,
                    f"a frontier with P={pmax}", "lower P")
    keys = root_keys(seed, replicates, first_replicate)

    with kernel_threads(nthreads):
        _warm_up(args)
        # One replicate: its curve is the mean (no Welford arrays, 16 bytes per node less at the peak).
        mean = np.zeros(pmax) if replicates > 1 else None
        m2 = np.zeros(pmax) if replicates > 1 else None
        delta = np.empty(pmax) if replicates > 1 else None
        tmp = np.empty(pmax) if replicates > 1 else None
        deepest = np.empty(replicates, dtype=np.int64)
        last = np.empty(replicates)
        acc = np.empty((chunk, pmax))
        kept = np.empty((replicates, keep_idx.size))
        seconds = 0.0
        with Progress(replicates, "frontier", enabled=progress) as bar:
            for start in range(0, replicates, chunk):
                stop = min(start + chunk, replicates)
                n = stop - start
                t0 = time.perf_counter()
                K.frontier_batch(*args.vector_args, keys[start:stop], pmax, args.width, x0, acc[:n],
                                 deepest[start:stop], last[start:stop])
                seconds += time.perf_counter() - t0
                kept[start:stop] = acc[:n, keep_idx]
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

    if args.kind == KIND_GEM and np.any(last >= args.cut):  # pragma: no cover - needs a frontier 20 nats off course
        raise RuntimeError(f"gem frontier reached the stick-breaking cut {args.cut:.1f}; raise GEM_MARGIN")
    stderr = np.sqrt(m2 / (replicates - 1) / replicates) if replicates > 1 else np.full(pmax, np.nan)
    return FrontierResult(str(law), law.mu, law.mu2, pmax, replicates, seed, first_replicate, mean, stderr,
                          deepest, last, seconds, tuple(int(i) + 1 for i in keep_idx),
                          kept if keep_idx.size else None)


def _check_keep(keep, pmax: int) -> np.ndarray:
    """Indices (P - 1) of the kept P, in the order given."""
    if keep is None:
        return np.zeros(0, dtype=np.int64)
    arr = np.atleast_1d(np.asarray(keep))
    if arr.ndim != 1 or arr.dtype == bool or (arr.size and arr.dtype.kind not in "iu"):
        raise BrwError(f"keep must be a list of whole numbers P, got {keep!r}")
    if np.any(arr < 1) or np.any(arr > pmax):
        raise BrwError(f"keep values must lie in 1..pmax = 1..{pmax}, got {keep!r}")
    return arr.astype(np.int64) - 1


def _warm_up(args):
    """Compile (or load from cache) outside the timed region."""
    K.frontier_batch(*args.vector_args, np.zeros(1, dtype=np.uint64), 1, args.width, 1.0, np.empty((1, 1)),
                     np.empty(1, dtype=np.int64), np.empty(1))


def frontier_tree(law, P: int, seed: int | None = None, replicate: int = 0) -> Tree:
    """The optimal P-node tree of one replicate.

    Parameters
    ----------
    law : Law or str
        The step law or its spec.
    P : int
        Draft (non-root) nodes.
    seed : int or None, optional
        Whole number >= 0; None (the default) draws fresh entropy and records it in the tree.
    replicate : int, optional
        Which replicate of ``seed`` (default 0): the same tree as replicate ``replicate`` of :func:`frontier`.

    Returns
    -------
    Tree
        The P nodes of smallest position, in pop order (non-decreasing position).
    """
    law = parse_law(law)
    P = _check_count(P, "P")
    seed = _check_seed(seed)
    replicate = _check_count(replicate, "replicate", minimum=0)
    args = kernel_args(law, gem_cut(law, P))
    _require_memory((P + 2) * 28 + P * 24, f"a frontier tree with P={P}", "lower P")
    parent = np.empty(P, dtype=np.int32)
    depth = np.empty(P, dtype=np.int32)
    pos = np.empty(P)
    acc = np.empty(P)
    key = root_keys(seed, 1, replicate)[0]
    deepest, last = K.frontier_one(*args.vector_args, key, P, acc, parent, depth, pos, np.empty(max(args.width, 1)))
    return Tree(parent, depth, pos, str(law), seed, replicate, int(deepest))


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


def threshold(law, xs, replicates: int = 1, seed: int | None = None, *, first_replicate: int = 0,
              max_nodes: int = 10**9, threads: int | None = None) -> ThresholdResult:
    """Count and mass of the non-root nodes v with V(v) <= x, for each level x, per replicate.

    Parameters
    ----------
    law : Law or str
        The step law or its spec.
    xs : float or sequence of float
        Levels, finite, >= 0 and strictly increasing.
    replicates : int, optional
        Independent trees (default 1).
    seed : int or None, optional
        Whole number >= 0; None (the default) draws fresh entropy and records it in the result.
    first_replicate : int, optional
        Run replicates ``first_replicate .. first_replicate + replicates - 1`` of ``seed`` (default 0).
    max_nodes : int, optional
        Most nodes one tree may hold below the last level (a BrwError beyond).
    threads : int or None, optional
        Worker threads (default: Numba's current count). Results are identical for any count.

    Returns
    -------
    ThresholdResult
        Cumulative counts and masses, shape (replicates, len(xs)).
    """
    law = parse_law(law)
    xs = _check_levels(xs)
    replicates = _check_count(replicates, "replicates")
    seed = _check_seed(seed)
    first_replicate = _check_count(first_replicate, "first_replicate", minimum=0)
    max_nodes = _check_count(max_nodes, "max_nodes")
    nthreads = _threads(threads)
    args = kernel_args(law, float(xs[-1]))
    keys = root_keys(seed, replicates, first_replicate)
    count = np.zeros((replicates, xs.size), dtype=np.int64)
    mass = np.zeros((replicates, xs.size))
    visited = np.zeros(replicates, dtype=np.int64)
    deepest = np.zeros(replicates, dtype=np.int64)
    with kernel_threads(nthreads):
        t0 = time.perf_counter()
        K.threshold_batch(*args.vector_args, keys, xs, max_nodes, args.width, count, mass, visited, deepest)
        seconds = time.perf_counter() - t0
    if np.any(visited > max_nodes):
        raise BrwError(f"the threshold tree at x={xs[-1]:g} holds more than max_nodes={max_nodes} nodes; "
                       "lower x or raise max_nodes")
    return ThresholdResult(str(law), xs, replicates, seed, first_replicate, np.cumsum(count, axis=1),
                           np.cumsum(mass, axis=1), deepest, seconds)


def threshold_tree(law, x: float, seed: int | None = None, replicate: int = 0, max_nodes: int = 10**7) -> Tree:
    """Every non-root node with V <= x of one replicate.

    Parameters
    ----------
    law : Law or str
        The step law or its spec.
    x : float
        The level, finite and >= 0.
    seed : int or None, optional
        Whole number >= 0; None (the default) draws fresh entropy and records it in the tree.
    replicate : int, optional
        Which replicate of ``seed`` (default 0).
    max_nodes : int, optional
        Most nodes the tree may hold (a BrwError beyond).

    Returns
    -------
    Tree
        The nodes depth-first (each parent before its children).
    """
    law = parse_law(law)
    xs = _check_levels([x])
    seed = _check_seed(seed)
    replicate = _check_count(replicate, "replicate", minimum=0)
    max_nodes = _check_count(max_nodes, "max_nodes")
    expect = _expected_nodes(law, float(xs[0]))
    _require_memory(min(expect, max_nodes) * 16, f"a threshold tree at x={x:g} (about {expect:.3g} nodes)",
                    "lower x")
    args = kernel_args(law, float(xs[0]))
    key = root_keys(seed, 1, replicate)[0]
    cap = int(min(max_nodes, 4 * expect + 1024))
    while True:  # arrays sized by the expected count; a second pass when the tree is larger than that
        parent = np.empty(cap, dtype=np.int32)
        depth = np.empty(cap, dtype=np.int32)
        pos = np.empty(cap)
        count = np.zeros(1, dtype=np.int64)
        mass = np.zeros(1)
        visited, deepest = K.threshold_one(*args.vector_args, key, xs, count, mass, True, parent, depth, pos,
                                           max_nodes, args.width)
        if visited > max_nodes:
            raise BrwError(f"the threshold tree at x={x:g} holds more than max_nodes={max_nodes} nodes; lower x")
        if visited <= cap:
            break
        cap = int(visited)
    return Tree(parent[:visited].copy(), depth[:visited].copy(), pos[:visited].copy(), str(law), seed, replicate,
                int(deepest))
