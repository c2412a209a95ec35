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
``brw.kernel_law.kernel_args``, the root keys with :func:`root_keys` and runs the batch kernels on threads with
:func:`run_replicates`.
"""

from __future__ import annotations

import functools
import math
import time
from contextlib import contextmanager

import numpy as np

from brw.checks import check_count, check_seed, check_threads
from brw.errors import BrwError, clip
from brw.kernel_law import KIND_GEM, KIND_TABLE, gem_cut, kernel_args
from brw.laws import Law, parse_law
from brw.limits import USABLE, available_memory, format_bytes, require
from brw.progress import Progress
from brw.results import FrontierResult, ThresholdResult, Tree

__all__ = ["frontier", "frontier_tree", "threshold", "threshold_tree", "root_keys", "kernel_threads", "thread_count",
           "run_replicates", "chunk_size", "frontier_start"]

#: Bytes per node of the frontier's accepted curve (``brw._kernels.frontier_select_one``): a buffer of
#: 1.25 P + 64 (position 8, depth 4) slots and the curve 8, so about 23; 32 is the promise.
FRONTIER_BYTES_PER_NODE = 32
#: The pruned walk starts at x = log(mu (P + 1)) + margin, margin = FRONTIER_X_MARGIN + 3 / sqrt(P) nats: about
#: e^margin P nodes lie below it (N(x) e^-x mu -> 1; its spread across trees shrinks like 1/sqrt(P), and a
#: walk that finds fewer than P nodes costs a second walk).
FRONTIER_X_MARGIN = 0.05
#: Least tree nodes (replicates x P) per chunk of replicates handed to the kernels (:func:`chunk_size`).
CHUNK_NODES = 2**16


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
    seed = check_seed(seed)
    replicates = check_count(replicates, "replicates", minimum=0)
    first = check_count(first, "first", minimum=0)
    return np.array(
        [np.random.SeedSequence(seed, spawn_key=(j,)).generate_state(1, np.uint64)[0]
         for j in range(first, first + replicates)],
        dtype=np.uint64,
    )


# --------------------------------------------------------------------------------------------------------
# Validation and resources.


#: Levels of the walks' stacks allocated up front (they grow on deeper paths).
STACK_LEVELS = 256
#: Bytes per stack level besides the node's vector (key, position, next rank, row, length, index).
STACK_BYTES = 48


def _vector_rows(kind: int) -> int:
    """A walk keeps one drawn vector per stack level, except for table laws (rows are looked up)."""
    return 1 if kind == KIND_TABLE else STACK_LEVELS


def _check_vector_size(law: Law, threads: int, what: str) -> None:
    """Refuse a law whose vectors cannot fit, naming its k, before anything is built (a table law's
    ``kernel_law`` allocates its vector)."""
    k = getattr(law, "k", None)
    if isinstance(k, int):
        table = 8 if law.deterministic else 0  # the vector itself, and a buffer row per level and thread
        rows = 1 if law.deterministic else STACK_LEVELS
        require("k", k, lambda k: k * (table + 8.0 * rows * threads), what=f"{what} of the {law.name} law")


def _check_sticks(law: Law, args, threads: int, what: str) -> None:
    """Refuse a stick-breaking law whose nodes would break more sticks than fit, naming theta."""
    if args.kind != KIND_GEM:
        return
    per_stick = 8.0 * STACK_LEVELS * threads
    have = available_memory()
    if args.width * per_stick <= USABLE * have:
        return
    most = USABLE * have / per_stick
    lam = ((-12.0 + math.sqrt(144.0 + 4.0 * max(most - 32.0, 0.0))) / 2.0) ** 2  # lam + 12 sqrt(lam) + 32 = most
    theta = max(np.atleast_1d(getattr(law, "theta", math.nan)))
    # The sticks grow as theta times the cut; at a cut of 0 (a threshold at x = 0) only the 32 sticks every node
    # breaks are left, and no theta makes them fewer.
    best = f"at most theta={lam / args.cut:.3g} fits" if args.cut > 0 else "no theta fits"
    raise BrwError(f"{what} of {law} breaks about {float(args.width):.3g} sticks per node, which need about "
                   f"{format_bytes(args.width * per_stick)} of memory but {format_bytes(have)} is available; "
                   f"{best} (theta={theta:g} given)")


def _kernels():
    """The compiled kernels, and Numba with them: loaded once the inputs are checked, so that a mistake costs
    no compiler start-up (``brw._kernels`` refuses a bad NUMBA_NUM_THREADS before Numba reads it)."""
    from brw import _kernels

    return _kernels


def thread_count(threads) -> int:
    """The kernels' thread count for a ``threads`` argument.

    Parameters
    ----------
    threads : int or None
        Threads asked for (a whole number >= 1), or None for Numba's ``NUMBA_NUM_THREADS`` (the cores, unless
        the environment variable says otherwise).

    Returns
    -------
    int
        ``threads``, capped at ``NUMBA_NUM_THREADS``.

    Raises
    ------
    BrwError
        When ``threads`` is not a whole number >= 1.
    """
    threads = check_threads(threads)
    _kernels()
    import numba

    if threads is None:
        return int(numba.config.NUMBA_NUM_THREADS)
    return min(threads, int(numba.config.NUMBA_NUM_THREADS))


@contextmanager
def kernel_threads(threads: int | None = None):
    """:func:`thread_count` as a block, kept for callers of the public API: the batch kernels once ran on Numba's
    threads, which this set and restored; they now take their thread count from :func:`run_replicates`, so this
    only yields it. Deprecated: call :func:`thread_count`.

    Parameters
    ----------
    threads : int or None, optional
        Worker threads, capped at Numba's ``NUMBA_NUM_THREADS``; None: that many.

    Yields
    ------
    int
        The thread count in force.
    """
    yield thread_count(threads)


def run_replicates(kernel, replicates: int, threads: int, *args) -> None:
    """Run a batch kernel over replicates 0 .. replicates - 1 on ``threads`` threads: ``kernel(*args, lo, hi)``
    for consecutive ranges [lo, hi), handed out one at a time to whichever thread is free.

    The batch kernels are serial loops compiled with ``nogil=True``, so Python threads run them side by side. (They
    were ``prange`` loops: Numba's parallel back end compiled each of them again, 4 to 8 seconds apiece, a third of
    ``brw compile``; docs/testing.md.) Small ranges balance threads on trees of unequal size and on a core shared
    with other processes. Results do not depend on the split: replicate j depends on its root key alone. The
    calling thread works too; an interrupt reaches it between its ranges, and then the others finish the ranges
    they hold and take no more.

    Parameters
    ----------
    kernel : numba dispatcher
        A batch kernel of ``brw._kernels`` or ``brw._sampled_kernels`` (its last two arguments lo, hi).
    replicates : int
        How many replicates (the length of its per-replicate arrays).
    threads : int
        Threads to use (:func:`thread_count`).
    *args
        Its arguments before lo and hi.
    """
    threads = max(1, min(int(threads), replicates))
    if threads == 1:
        kernel(*args, 0, replicates)
        return
    import threading

    step = max(1, replicates // (16 * threads))
    starts = iter(range(0, replicates, step))
    take = threading.Lock()
    stop = threading.Event()
    failed: list = []

    def work():
        while not stop.is_set():
            with take:
                lo = next(starts, None)
            if lo is None:
                return
            try:
                kernel(*args, lo, min(lo + step, replicates))
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread, which raises it
                failed.append(e)
                stop.set()

    helpers = [threading.Thread(target=work, daemon=True) for _ in range(threads - 1)]
    for t in helpers:
        t.start()
    try:
        work()
    finally:
        stop.set()  # on an interrupt of the calling thread: the helpers finish their ranges and stop
        for t in helpers:
            t.join()
    if failed:
        raise failed[0]


def chunk_size(replicates: int, pmax: int, threads: int) -> int:
    """Replicates per chunk of a run whose trees have ``pmax`` nodes: four per thread, and at least
    ``CHUNK_NODES`` nodes in all, so that small trees do not pay the hand-off to threads (and the progress bar's
    update) every few replicates (frontier(P = 1) at 20000 replicates: 2500 chunks of 8 before)."""
    return max(1, min(replicates, max(4 * threads, -(-CHUNK_NODES // max(pmax, 1)))))


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
    pmax = check_count(pmax, "P")
    replicates = check_count(replicates, "replicates")
    seed = check_seed(seed)
    first_replicate = check_count(first_replicate, "first_replicate", minimum=0)
    keep_idx = _check_keep(keep, pmax)
    nthreads = thread_count(threads)
    if pmax >= 2**31 - 2:
        raise BrwError(f"P={pmax} is too large: at most P={2**31 - 3} nodes per tree")

    args, heap = _frontier_sizes(law, pmax, replicates, nthreads, keep_idx.size)
    x0 = frontier_start(law, pmax)
    # Replicates run in chunks; a chunk holds its accepted curves until they are folded into the mean.
    chunk = chunk_size(replicates, pmax, nthreads)
    while chunk > 1 and chunk * (pmax * 8 + heap) + 32 * pmax > 0.5 * available_memory():
        chunk //= 2
    keys = root_keys(seed, replicates, first_replicate)

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
    with Progress(replicates, "frontier", enabled=progress, unit="replicates",
                  hint="fewer replicates or a smaller P (--replicates, --P)") as bar:
        for start in range(0, replicates, chunk):
            stop = min(start + chunk, replicates)
            n = stop - start
            t0 = time.perf_counter()
            run_replicates(_kernels().frontier_batch, n, nthreads, *args.vector_args, keys[start:stop], pmax,
                           args.width, x0, acc[:n], deepest[start:stop], last[start:stop])
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


def _frontier_sizes(law: Law, pmax: int, replicates: int, nthreads: int, kept: int):
    """The kernels' arguments and the per-thread heap of a frontier, every size checked first."""
    what = f"a frontier of {law}"
    _check_vector_size(law, nthreads, "a frontier")
    args = kernel_args(law, gem_cut(law, pmax))
    _check_sticks(law, args, nthreads, "a frontier")

    def heap(P):  # per thread: the position buffer (position, depth), the walk's stack (256 levels to start)
        return (P + P // 4 + 64) * 12 + STACK_LEVELS * STACK_BYTES + _vector_rows(args.kind) * args.width * 8

    # At least: a heap per thread, one accepted curve and the Welford arrays (40 bytes per P); per replicate
    # its key, deepest node, last position and kept values.
    require("P", pmax, lambda P: nthreads * heap(P) + 40.0 * P, what=what)
    require("replicates", replicates, lambda R: nthreads * heap(pmax) + 40.0 * pmax + (24.0 + 8 * kept) * R,
            what=what)
    return args, heap(pmax)


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
    _kernels().frontier_batch(*args.vector_args, np.zeros(1, dtype=np.uint64), 1, args.width, 1.0,
                              np.empty((1, 1)), np.empty(1, dtype=np.int64), np.empty(1), 0, 1)


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
    P = check_count(P, "P")
    seed = check_seed(seed)
    replicate = check_count(replicate, "replicate", minimum=0)
    _check_vector_size(law, 1, "a frontier tree")
    args = kernel_args(law, gem_cut(law, P))
    _check_sticks(law, args, 1, "a frontier tree")
    # The best-first heap (28 bytes a slot), the tree's arrays and its curve (24 bytes a node).
    require("P", P, lambda P: (P + 2) * 28.0 + P * 24 + args.width * 8, what=f"a frontier tree of {law}")
    parent = np.empty(P, dtype=np.int32)
    depth = np.empty(P, dtype=np.int32)
    pos = np.empty(P)
    acc = np.empty(P)
    key = root_keys(seed, 1, replicate)[0]
    deepest, last = _kernels().frontier_one(*args.vector_args, key, P, acc, parent, depth, pos,
                                            np.empty(max(args.width, 1)))
    return Tree(parent, depth, pos, str(law), seed, replicate, int(deepest))


# --------------------------------------------------------------------------------------------------------
# The threshold tree.


def _check_levels(xs) -> np.ndarray:
    try:
        given = np.asarray(xs)
        if given.dtype.kind not in "iuf":  # text such as '0' would convert: refuse it, and True, as numpy cannot
            raise ValueError
        xs = np.atleast_1d(given.astype(np.float64))
    except (TypeError, ValueError):
        raise BrwError(f"threshold levels x must be numbers, got {clip(repr(xs), 60)}") from None
    if xs.ndim != 1 or xs.size == 0 or not np.all(np.isfinite(xs)) or np.any(xs < 0):
        raise BrwError("threshold levels x must be finite numbers >= 0")
    if np.any(np.diff(xs) <= 0):
        raise BrwError("threshold levels x must be strictly increasing")
    return xs


@functools.lru_cache(maxsize=16)
def _mean_count_curve(law: Law, x: float) -> tuple[np.ndarray, np.ndarray]:
    """(levels up to x, a lower bound of m there): the renewal numerics' m_lo where they resolve the law, and
    Wald's x / mu everywhere (see ``_check_nodes``)."""
    from brw import theory  # here: the threshold alone needs the renewal numerics

    with np.errstate(over="ignore"):  # x / mu beyond the floats is as infinite as it looks
        grid, m = np.array([x]), np.array([x]) / law.mu
    try:  # m is e^x-fold U: beyond 40 nats it exceeds any memory whatever the law, so 40 is where to look
        ren = theory.renewal(law, min(x, 40.0), points=4096)
        # m is non-decreasing: m_lo at the grid points up to x bounds m(x) from below. A grid point past x (the
        # grid's last, on a lattice the first lattice point at or past x) would overstate it.
        below = ren.x <= x
        grid = np.append(ren.x[below], x)
        with np.errstate(over="ignore"):
            m = np.maximum(np.append(ren.m_lo[below], ren.m_lo[below][-1]), grid / law.mu)
    except BrwError:  # a law the renewal grid cannot resolve: Wald's bound alone
        pass
    grid.flags.writeable = m.flags.writeable = False  # shared by every later call
    return grid, m


def _check_nodes(law: Law, x: float, max_nodes: int, bytes_per_node: float = 0.0) -> float:
    """Refuse a threshold tree {V <= x} that holds more than max_nodes nodes, or more than memory allows at
    ``bytes_per_node``, on average; naming x and the largest x that fits. Returns a lower bound of the mean
    count m(x) (root included; theory.md identity 3), from the renewal numerics where they resolve the law and
    from Wald's identity (m(x) >= U(x) > x / mu) everywhere."""
    if not law.mu > 0:
        raise BrwError(f"law {law} has mu = 0: every node has a child at its own position, so the tree "
                       f"{{V <= x}} is infinite for every x")
    have = available_memory()
    most = min(float(max_nodes), USABLE * have / bytes_per_node if bytes_per_node else math.inf)
    try:  # the same law and level again (a loop over replicates): the same curve, computed once
        grid, m = _mean_count_curve(law, x)
    except TypeError:  # a law that cannot be a cache key
        grid, m = _mean_count_curve.__wrapped__(law, x)
    # A tree's nodes, max_nodes and the arrays count them without the root; less 1e-9 relative, far above the
    # renewal numerics' round-off (about 1e-13), so that an exact lattice count equal to max_nodes is not refused.
    nodes = (m - 1.0) * (1.0 - 1e-9)
    if nodes[-1] <= most:
        return float(m[-1])
    fit = grid[nodes <= most]
    best = f"at most x={fit[-1]:.4g} fits" if fit.size else "no level fits"
    limit = (f"more than max_nodes={max_nodes}" if most == max_nodes else
             f"more than the {format_bytes(USABLE * have)} of memory available hold")
    raise BrwError(f"the threshold tree of {law} at x={x:g} holds at least {nodes[-1]:.3g} nodes besides the "
                   f"root on average (identity 3), {limit}; {best}")


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
        Most nodes one tree may hold below the last level (a BrwError beyond; default 10^9).
    threads : int or None, optional
        Worker threads (default: Numba's current count). Results are identical for any count.

    Returns
    -------
    ThresholdResult
        Cumulative counts and masses, shape (replicates, len(xs)).
    """
    law = parse_law(law)
    xs = _check_levels(xs)
    replicates = check_count(replicates, "replicates")
    seed = check_seed(seed)
    first_replicate = check_count(first_replicate, "first_replicate", minimum=0)
    max_nodes = check_count(max_nodes, "max_nodes")
    nthreads = thread_count(threads)
    _check_vector_size(law, nthreads, "a threshold tree")
    _check_nodes(law, float(xs[-1]), max_nodes)
    # Per replicate: its key, visited and deepest counts, and a count and a mass per level.
    require("replicates", replicates, lambda R: R * (24.0 + 16.0 * xs.size), what=f"a threshold of {law}",
            hint=f"xs holds {xs.size} levels")
    args = kernel_args(law, float(xs[-1]))
    _check_sticks(law, args, nthreads, "a threshold tree")
    keys = root_keys(seed, replicates, first_replicate)
    count = np.zeros((replicates, xs.size), dtype=np.int64)
    mass = np.zeros((replicates, xs.size))
    visited = np.zeros(replicates, dtype=np.int64)
    deepest = np.zeros(replicates, dtype=np.int64)
    t0 = time.perf_counter()
    run_replicates(_kernels().threshold_batch, replicates, nthreads, *args.vector_args, keys, xs, max_nodes,
                   args.width, count, mass, visited, deepest)
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
    seed = check_seed(seed)
    replicate = check_count(replicate, "replicate", minimum=0)
    max_nodes = check_count(max_nodes, "max_nodes")
    _check_vector_size(law, 1, "a threshold tree")
    expect = _check_nodes(law, float(xs[0]), max_nodes, bytes_per_node=16.0)  # parent, depth, position
    args = kernel_args(law, float(xs[0]))
    _check_sticks(law, args, 1, "a threshold tree")
    key = root_keys(seed, 1, replicate)[0]
    cap = int(min(max_nodes, 4 * expect + 1024))
    while True:  # arrays sized by the expected count; a second pass when the tree is larger than that
        parent = np.empty(cap, dtype=np.int32)
        depth = np.empty(cap, dtype=np.int32)
        pos = np.empty(cap)
        count = np.zeros(1, dtype=np.int64)
        mass = np.zeros(1)
        visited, deepest = _kernels().threshold_one(*args.vector_args, key, xs, count, mass, True, parent, depth,
                                                    pos, max_nodes, args.width)
        if visited > max_nodes:
            raise BrwError(f"the threshold tree at x={x:g} holds more than max_nodes={max_nodes} nodes; lower x")
        if visited <= cap:
            break
        cap = int(visited)
    return Tree(parent[:visited].copy(), depth[:visited].copy(), pos[:visited].copy(), str(law), seed, replicate,
                int(deepest))
