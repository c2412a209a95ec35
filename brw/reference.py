"""Slow, obviously correct twins of the kernels, for the tests (and ``brw bench``'s baseline).

No lazy siblings and no cleverness: the best-first frontier pops the smallest position with ``heapq`` and
pushes *all* children of the popped node; the threshold tree is a plain breadth-first search. Node vectors
come from a plain-Python transcription of the kernels' key-derived streams (splitmix64 on Python integers,
the ziggurat and Marsaglia-Tsang samplers, stick-breaking, row, regime and recorded-context draws:
``children``), so on random laws the reference and the kernels walk the same tree, and a test that they agree
checks the compiled samplers as well as the solvers. Nothing here is compiled.
"""

from __future__ import annotations

import heapq
import math
from fractions import Fraction

from brw.streams import CHILD, COMPONENT, GOLDEN, M1, M2, REGIME, STREAM, TWO_M53, ZIGGURAT_F, ZIGGURAT_R, ZIGGURAT_X
from brw.solver import root_keys
from brw.kernel_law import (KIND_DIRICHLET, KIND_TABLE, ROWS_EDGE, ROWS_PATH, ROWS_PREFIX, ROWS_RUN, KernelArgs,
                            gem_cut, kernel_args)
from brw.laws import parse_law

__all__ = ["children", "child_key", "reference_frontier", "reference_threshold", "exact_fixed_accepted",
           "uniform_accepted"]


_MASK = (1 << 64) - 1
_GOLDEN = int(GOLDEN)
_ZX = [float(v) for v in ZIGGURAT_X]
_ZF = [float(v) for v in ZIGGURAT_F]


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * int(M1)) & _MASK
    z = ((z ^ (z >> 27)) * int(M2)) & _MASK
    return z ^ (z >> 31)


def child_key(key: int, rank: int) -> int:
    """The key of child ``rank`` (0 = most probable) of the node with key ``key``, as the kernels derive it.

    Parameters
    ----------
    key : int
        The parent's 64-bit key.
    rank : int
        The child's rank among its siblings.

    Returns
    -------
    int
        The child's 64-bit key.
    """
    return _mix64((key + (rank + 1) * int(CHILD)) & _MASK)


class _Stream:
    """The random stream of a node: the kernels' next_u64 / next_uniform on a Python integer state."""

    def __init__(self, key: int):
        self.s = key ^ int(STREAM)

    def u64(self) -> int:
        self.s = (self.s + _GOLDEN) & _MASK
        return _mix64(self.s)

    def uniform(self) -> float:
        return ((self.u64() >> 11) + 0.5) * TWO_M53

    def normal(self) -> float:
        while True:
            u = self.u64()
            i, neg = u & 255, (u >> 8) & 1
            z = float(u >> 11) * TWO_M53 * _ZX[i]
            if z < _ZX[i + 1]:
                return -z if neg else z
            if i == 0:
                while True:
                    a = -math.log(self.uniform()) / ZIGGURAT_R
                    if -2.0 * math.log(self.uniform()) > a * a:
                        return -(ZIGGURAT_R + a) if neg else ZIGGURAT_R + a
            if _ZF[i] + self.uniform() * (_ZF[i + 1] - _ZF[i]) < math.exp(-0.5 * z * z):
                return -z if neg else z

    def log_gamma(self, a: float) -> float:
        aa = a + 1.0 if a < 1.0 else a
        d = aa - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.normal()
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            u = self.uniform()
            x2 = x * x
            if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d - d * v + d * math.log(v):
                break
        lg = math.log(d * v)
        if a < 1.0:
            lg += math.log(self.uniform()) / a
        return lg


def _hash_uniform(key: int, salt) -> float:
    return ((_mix64(key ^ int(salt)) >> 11) + 0.5) * TWO_M53


def _pick(cdf, v: float) -> int:
    """First index whose cumulative weight exceeds v (the last one when none does)."""
    i = 0
    while i < len(cdf) - 1 and v >= cdf[i]:
        i += 1
    return i


def _table_row(table, params, key: int, prow: int, edge: float) -> int:
    nrows = table.shape[0]
    if nrows == 1:
        return 0
    mode = float(params[0])
    if mode == ROWS_EDGE and prow >= 0:  # blocks (group c, bin b) of rows after a token of surprisal bin b
        ngroups, nbins = int(params[1]), int(params[2])
        inner = [float(v) for v in params[3:2 + nbins]]
        per = nbins + 1
        offsets = [int(v) for v in params[2 + nbins:3 + nbins + ngroups * per]]
        c = int(params[3 + nbins + ngroups * per + prow])  # the group prow's children draw from
        b = sum(1 for e in inner if edge >= e)
        first, end = offsets[c * per + b], offsets[c * per + b + 1]
        if end <= first:
            first, end = offsets[c * per], offsets[(c + 1) * per]
        return first + (((_Stream(key).u64() >> 32) * (end - first)) >> 32)
    if mode in (ROWS_RUN, ROWS_PREFIX):  # blocks (run k, context c); the parent's most probable token runs on
        ngroups, nstates = int(params[1]), int(params[2])
        offsets = [int(v) for v in params[3:4 + nstates * ngroups]]
        at = 4 + nstates * ngroups
        if prow < 0:  # the root: one of the listed rows
            roots = params[at + (2 if mode == ROWS_RUN else 5) * nrows:]
            return int(roots[((_Stream(key).u64() >> 32) * len(roots)) >> 32])
        if mode == ROWS_PREFIX:  # the recorded row of the child's own prefix, if any
            top_next, col, taken_next = (params[at + j * nrows + prow] for j in (2, 3, 4))
            if -edge >= table[prow, 0] and top_next >= 0:
                return int(top_next)
            if -edge < table[prow, 0] and col > 0 and -edge == table[prow, int(col)] and taken_next >= 0:
                return int(taken_next)
        c, k = int(params[at + prow]), int(params[at + nrows + prow])
        k = min(k + 1, nstates - 1) if -edge >= table[prow, 0] else 0
        first, end = offsets[k * ngroups + c], offsets[k * ngroups + c + 1]
        if end <= first:  # the run's rows of every context, else every row
            first, end = offsets[k * ngroups], offsets[(k + 1) * ngroups]
            if end <= first:
                first, end = 0, nrows
        return first + (((_Stream(key).u64() >> 32) * (end - first)) >> 32)
    if mode < 0 and prow >= 0:  # recorded contexts: rows offsets[c]..offsets[c+1] of context c
        nctx = int(params[1])
        offsets = [int(v) for v in params[2:3 + nctx]]
        if mode == ROWS_PATH and params[3 + nctx + prow] > 0:  # the next position of the recorded text
            return prow + 1
        c = max(i for i in range(nctx) if offsets[i] <= prow)  # the context holding the parent's row
        return offsets[c] + (((_Stream(key).u64() >> 32) * (offsets[c + 1] - offsets[c])) >> 32)
    u = _Stream(key).u64()
    g = int(params[0])
    if g <= 1:
        return ((u >> 32) * nrows) >> 32
    offsets = [int(v) for v in params[1:2 + g]]
    if prow < 0:
        cdf = params[2 + g:2 + 2 * g]
    else:
        pg = _pick(offsets[1:], prow + 0.5)  # the regime whose rows hold prow
        cdf = params[2 + 2 * g + pg * g:2 + 2 * g + (pg + 1) * g]
    h = _pick(cdf, _hash_uniform(key, REGIME))
    return offsets[h] + (((u >> 32) * (offsets[h + 1] - offsets[h])) >> 32)


def _dirichlet(key: int, alpha: float, k: int, inv_t: float = 0.0) -> list[float]:
    st = _Stream(key)
    lg = [st.log_gamma(alpha) for _ in range(k)]
    if inv_t > 0.0:  # tempered: p_i^(1/T) renormalised
        lg = [v * inv_t for v in lg]
    m = max(lg)
    lse = m + math.log(sum(math.exp(v - m) for v in lg))
    return [v - lse for v in lg]


def _gem(key: int, params, cut: float, width: int) -> list[float]:
    ncomp = int(params[0])
    c = _pick(params[1 + 2 * ncomp:1 + 3 * ncomp], _hash_uniform(key, COMPONENT)) if ncomp > 1 else 0
    spike, theta = float(params[1 + c]), float(params[1 + ncomp + c])
    st = _Stream(key)
    out, lrem = [], 0.0
    if spike > 0.0:
        out.append(math.log(spike))
        lrem = math.log1p(-spike)
    if len(params) > 1 + 3 * ncomp:  # tempered, T = 1 / a: break until a log R - log Z <= -cut
        a = float(params[1 + 3 * ncomp])
        lz = a * out[0] if out else -math.inf  # log of the tempered mass broken so far
        while a * lrem - lz >= -cut and len(out) < width:
            l1mv = math.log(st.uniform()) * (1.0 / theta)
            out.append(lrem + math.log(-math.expm1(l1mv)))
            x = a * out[-1]
            lz = x + math.log1p(math.exp(lz - x)) if x > lz else lz + math.log1p(math.exp(x - lz))
            lrem += l1mv
        return [a * v - lz for v in out]
    while lrem >= -cut and len(out) < width:
        l1mv = math.log(st.uniform()) * (1.0 / theta)
        out.append(lrem + math.log(-math.expm1(l1mv)))
        lrem += l1mv
    return out


def children(args: KernelArgs, key, prow: int = -1, limit: int | None = None,
             edge: float = 0.0) -> tuple[list[float], int]:
    """The children of one node, as the kernels draw them.

    Parameters
    ----------
    args : KernelArgs
        The law's kernel arguments (``brw.kernel_law.kernel_args``).
    key : int
        The node's 64-bit key (``brw.root_keys`` for a root, :func:`child_key` below it).
    prow : int, optional
        The parent's row (-1 for the root): table laws with regimes draw rows given it.
    limit : int or None, optional
        Most children returned (default all). A recorded row's tail may hold ~1e9 atoms: pass a limit.
    edge : float, optional
        The node's surprisal -log p in its parent's vector: edge-conditioned laws draw rows given it.

    Returns
    -------
    tuple of (list of float, int)
        The log-probabilities of the first ``limit`` children, largest first, tails expanded; the node's row.
    """
    kind, table, tails, params, cut, width = args
    key = int(key)
    if kind == KIND_TABLE:
        row = _table_row(table, params, key, prow, edge)
        lp = [float(v) for v in table[row] if v > -math.inf]
        for lq, n in tails[row]:
            room = (limit - len(lp)) if limit is not None else int(n)
            lp.extend([float(lq)] * max(0, min(int(n), room)))
        return (lp if limit is None else lp[:limit]), row
    if kind == KIND_DIRICHLET:
        lp = _dirichlet(key, float(params[0]), int(params[1]), float(params[2]))
    else:
        lp = _gem(key, params, cut, width)
    out = sorted((v for v in lp if v > -math.inf), reverse=True)
    return (out if limit is None else out[:limit]), 0


def reference_frontier(law, pmax: int, seed: int = 0, replicate: int = 0):
    """The optimal pmax-node tree of one replicate, by a plain best-first search.

    Parameters
    ----------
    law : Law or str
        The step law or its spec.
    pmax : int
        Nodes to pop.
    seed : int, optional
        The run's seed (default 0).
    replicate : int, optional
        Which replicate (default 0).

    Returns
    -------
    tuple of list
        ``(parent, depth, position)`` of the pmax smallest non-root positions, in pop order.
    """
    law = parse_law(law)
    args = kernel_args(law, gem_cut(law, pmax))
    root = int(root_keys(seed, 1, replicate)[0])
    heap = []
    counter = 0

    def push_children(key, prow, edge, pos, depth, index):
        nonlocal counter
        lps, row = children(args, key, prow, limit=pmax, edge=edge)  # no node has more than pmax children
        for r, lp in enumerate(lps):
            heapq.heappush(heap, (pos - lp, counter, child_key(key, r), row, -lp, depth + 1, index))
            counter += 1

    push_children(root, -1, 0.0, 0.0, 0, -1)
    parent, depth, position = [], [], []
    while len(position) < pmax and heap:
        pos, _, key, prow, edge, d, par = heapq.heappop(heap)
        parent.append(par)
        depth.append(d)
        position.append(pos)
        push_children(key, prow, edge, pos, d, len(position) - 1)
    return parent, depth, position


def reference_threshold(law, x: float, seed: int = 0, replicate: int = 0):
    """Every non-root node with V <= x of one replicate, by a plain breadth-first search.

    Parameters
    ----------
    law : Law or str
        The step law or its spec.
    x : float
        The level.
    seed : int, optional
        The run's seed (default 0).
    replicate : int, optional
        Which replicate (default 0).

    Returns
    -------
    tuple of list
        ``(parent, depth, position)``, breadth first.
    """
    law = parse_law(law)
    args = kernel_args(law, float(x))
    root = int(root_keys(seed, 1, replicate)[0])
    parent, depth, position = [], [], []
    frontier = [(root, -1, 0.0, 0.0, 0, -1)]
    while frontier:
        nxt = []
        for key, prow, edge, pos, d, index in frontier:
            lps, row = children(args, key, prow, limit=_children_within(args, key, prow, edge, pos, x), edge=edge)
            for r, lp in enumerate(lps):
                cpos = pos - lp
                if cpos <= x:
                    parent.append(index)
                    depth.append(d + 1)
                    position.append(cpos)
                    nxt.append((child_key(key, r), row, -lp, cpos, d + 1, len(position) - 1))
        frontier = nxt
    return parent, depth, position


def _children_within(args, key, prow, edge: float, pos: float, x: float) -> int:
    """How many children of the node at ``pos`` lie at or below ``x`` (tail groups counted, not expanded). A
    child's position is ``pos - lp``, the kernels' arithmetic: comparing -lp with x - pos instead loses the
    nodes that sit exactly on a lattice level."""
    table_law = args.kind == KIND_TABLE
    lps, row = children(args, key, prow, limit=args.table.shape[1] if table_law else None, edge=edge)
    n = sum(1 for lp in lps if pos - lp <= x)
    if table_law and n == len(lps):
        for lq, cnt in args.tails[row]:
            if pos - lq > x:
                break
            n += int(cnt)
    return n


def exact_fixed_accepted(probs, pmax: int) -> list[Fraction]:
    """accepted(P) for the same vector at every node, in exact rational arithmetic.

    Parameters
    ----------
    probs : sequence of float or Fraction
        The vector.
    pmax : int
        The largest P.

    Returns
    -------
    list of Fraction
        accepted(P) for P = 1..pmax.
    """
    p = sorted((Fraction(q) for q in probs if q > 0), reverse=True)
    heap = [(-q, i) for i, q in enumerate(p)]  # path probabilities (negated), tie-broken by insertion
    heapq.heapify(heap)
    counter = len(heap)
    out, total = [], Fraction(0)
    while len(out) < pmax:
        negq, _ = heapq.heappop(heap)
        total += -negq
        out.append(total)
        for q in p:
            heapq.heappush(heap, (negq * q, counter))
            counter += 1
    return out


def uniform_accepted(k: int, P: int) -> float:
    """accepted(P) of the uniform law, in closed form (identity 7).

    Parameters
    ----------
    k : int
        The uniform law's vocabulary.
    P : int
        Draft nodes.

    Returns
    -------
    float
        Full levels of k^L nodes count 1 each; the partial level counts its share.
    """
    if k == 1:
        return float(P)
    level, used, value = 1, 0, 0.0
    while used + k**level <= P:
        used += k**level
        value += 1.0
        level += 1
    return value + (P - used) / k**level
