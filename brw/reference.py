"""Slow, obviously correct twins of the kernels, for the tests (and ``brw bench``'s baseline).

No lazy siblings and no cleverness: the best-first frontier pops the smallest position with ``heapq`` and
pushes *all* children of the popped node; the threshold tree is a plain breadth-first search. Node vectors
come from the same key-derived streams as the kernels (``children``), so on random laws the reference and the
kernels walk the same tree and must agree to round-off.
"""

from __future__ import annotations

import heapq
import math
from fractions import Fraction

import numpy as np

from brw import _kernels as K
from brw.frontier import _gem_cut, _kernel_args, root_keys
from brw.laws import parse_law

__all__ = ["children", "reference_frontier", "reference_threshold", "exact_fixed_accepted", "uniform_accepted"]


def children(kernel_args, key, prow: int = -1, limit: int | None = None) -> tuple[list[float], int]:
    """(log-probabilities of the first ``limit`` (default all) children of the node with this key, largest
    first, tails expanded; the node's row). prow is the parent's row (-1 for the root): table laws with
    regimes draw rows given it. A recorded row's tail may hold ~1e9 atoms: callers pass a limit."""
    kind, table, tails, params, cut, width = kernel_args
    if kind == K.KIND_TABLE:
        row = int(K.table_row(table, params, np.uint64(key), prow))
        lp = [float(v) for v in table[row] if v > -math.inf]
        for lq, n in tails[row]:
            room = (limit - len(lp)) if limit is not None else int(n)
            lp.extend([float(lq)] * max(0, min(int(n), room)))
        return (lp if limit is None else lp[:limit]), row
    buf = np.empty(max(width, 1))
    lp, n, _ = K.node_vector(kind, table, params, cut, np.uint64(key), buf, -1)
    out = [float(v) for v in lp[:n] if v > -math.inf]
    return (out if limit is None else out[:limit]), 0


def reference_frontier(law, pmax: int, seed: int = 0, replicate: int = 0):
    """(parent, depth, position) of the pmax smallest non-root positions, in pop order, as lists."""
    law = parse_law(law)
    args = _kernel_args(law, _gem_cut(law, pmax))
    root = int(root_keys(seed, 1, replicate)[0])
    heap = []
    counter = 0

    def push_children(key, prow, pos, depth, index):
        nonlocal counter
        lps, row = children(args, key, prow, limit=pmax)  # no node has more than pmax children in the tree
        for r, lp in enumerate(lps):
            heapq.heappush(heap, (pos - lp, counter, int(K.child_key(np.uint64(key), r)), row, depth + 1, index))
            counter += 1

    push_children(root, -1, 0.0, 0, -1)
    parent, depth, position = [], [], []
    while len(position) < pmax and heap:
        pos, _, key, prow, d, par = heapq.heappop(heap)
        parent.append(par)
        depth.append(d)
        position.append(pos)
        push_children(key, prow, pos, d, len(position) - 1)
    return parent, depth, position


def reference_threshold(law, x: float, seed: int = 0, replicate: int = 0):
    """(parent, depth, position) of every non-root node with V <= x, breadth first, as lists."""
    law = parse_law(law)
    args = _kernel_args(law, float(x))
    root = int(root_keys(seed, 1, replicate)[0])
    parent, depth, position = [], [], []
    frontier = [(root, -1, 0.0, 0, -1)]
    while frontier:
        nxt = []
        for key, prow, pos, d, index in frontier:
            lps, row = children(args, key, prow, limit=_children_within(args, key, prow, x - pos))
            for r, lp in enumerate(lps):
                cpos = pos - lp
                if cpos <= x:
                    parent.append(index)
                    depth.append(d + 1)
                    position.append(cpos)
                    nxt.append((int(K.child_key(np.uint64(key), r)), row, cpos, d + 1, len(position) - 1))
        frontier = nxt
    return parent, depth, position


def _children_within(args, key, prow, room: float) -> int:
    """How many children of the node lie within ``room`` nats of it (tail groups counted, not expanded)."""
    kind, table, tails, params, cut, width = args
    lps, row = children(args, key, prow, limit=table.shape[1] if kind == K.KIND_TABLE else None)
    n = sum(1 for lp in lps if -lp <= room)
    if kind == K.KIND_TABLE and n == len(lps):
        for lq, cnt in tails[row]:
            if -lq > room:
                break
            n += int(cnt)
    return n


def exact_fixed_accepted(probs, pmax: int) -> list[Fraction]:
    """accepted(P), P = 1..pmax, for the same vector at every node, in exact rational arithmetic."""
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
    """Identity 7: full levels of k^L nodes count 1 each; the partial level counts its share."""
    if k == 1:
        return float(P)
    level, used, value = 1, 0, 0.0
    while used + k**level <= P:
        used += k**level
        value += 1.0
        level += 1
    return value + (P - used) / k**level
