"""Sequoia's static draft tree: the dynamic program of Chen et al. (arXiv 2402.12374, section 3.1).

Sequoia's positional acceptance model: at every node, the verifier's token is the drafter's k-th proposal with
probability p_k (k = 1..W), and none of them with probability p_none = 1 - sum p_k, whatever the node's depth
or context. A node's children are its first j proposals (ranks 1..j), so a tree is an ordered tree of at most W
children per node. Its value is Sequoia's expected tokens per step, the root counted (conventions: Counting):
F(T) = sum over the n nodes of T of the product of p along the path (1 for the root) = accepted + 1 at
P = n - 1.

The program. Let c_l(n) be the largest F over trees of n nodes and at most l levels (the root's level counted,
as Sequoia counts depth), and H_l(m, j) the largest sum of p_i c_{l-1}(a_i) over i = 1..j with every a_i >= 1
and a_1 + ... + a_j = m (j children, ranks 1..j, m nodes below the root). Then

    H_l(0, 0) = 0,  H_l(m, j) = max over a = 1..m of H_l(m - a, j - 1) + p_j c_{l-1}(a),
    c_l(n) = 1 + max over j of H_l(n - 1, j).

Without a depth limit c_{l-1} is c itself (sizes below n), so one pass over m fills both tables; with a limit
the levels are a third array axis and the pass over m fills all of them at once. Each step is one numpy
operation on an (m, W) slice: O(n^2 W / 2) arithmetic per level, no Python loop over subtree sizes.

With p non-increasing, the optimum is the deterministic best-first tree (the n - 1 non-root nodes of largest
path product are rank-contiguous and prefix-closed, and no tree of n nodes holds more); ``best_first`` gives
it for the gap where p is not monotone (best-first sorts p: the speed of light of the same mass profile) or
the depth is limited.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brw import _kernels as K
from brw._version import __version__
from brw.errors import BrwError, clip
from brw.files import is_file, read_text
from brw.results import Result

__all__ = ["SequoiaTree", "acceptance_vector", "sequoia_tree", "best_first"]

#: Largest tree the program accepts: it costs O(n^2 W) per level (about 1 s at n = 2048, W = 32, depth 10).
MAX_NODES = 8192
#: A positional vector read from a file (Sequoia's layout, values printed to a few decimals) must sum to 1
#: within this, p_none included.
FILE_SUM_TOLERANCE = 1e-4
#: Bytes the depth-limited program may hold in its tables (levels x sizes x ranks x 12 bytes).
MAX_TABLE_BYTES = 2**30


@dataclass(frozen=True)
class SequoiaTree(Result):
    """Sequoia's optimal static tree for one acceptance vector, size and depth limit.

    Nodes are numbered level by level, each node's children in rank order; node 0 is the root.
    """

    acceptance: np.ndarray  # p_1..p_W
    n: int  # nodes, root counted
    max_depth: int | None  # the depth limit asked for (levels, root counted), None for none
    tokens_per_step: float  # F(T): expected tokens per step, root counted
    widths: np.ndarray  # nodes per level, widths[0] = 1 (the root); len(widths) = depth
    parent: np.ndarray  # parent[i] (-1 for the root)
    rank: np.ndarray  # rank[i] in 1..W among its siblings (0 for the root)
    curve: np.ndarray  # curve[k - 1]: tokens_per_step of the best tree of k nodes under the same limit, k = 1..n
    version: str = __version__

    @property
    def depth(self) -> int:
        """Levels of the tree, root counted (a chain of n nodes has depth n)."""
        return int(self.widths.size)

    @property
    def accepted(self) -> float:
        """E[X] = tokens_per_step - 1 at P = n - 1 draft nodes."""
        return self.tokens_per_step - 1.0

    def to_dict(self) -> dict:
        """The tree's summary (the ``brw sequoia`` keys).

        Returns
        -------
        dict
            n, depth, max_depth, tokens_per_step, widths, acceptance (p_1..p_W) and version.
        """
        return {"n": self.n, "depth": self.depth, "max_depth": self.max_depth,
                "tokens_per_step": float(self.tokens_per_step), "widths": [int(w) for w in self.widths],
                "acceptance": [float(x) for x in self.acceptance], "version": self.version}

    def _tidy(self, nodes: bool = False) -> dict:
        """Columns n, tokens_per_step, max_depth (one row per tree size 1..n: the optimum of each); with
        ``nodes``: node, parent, rank, depth (root 0)."""
        if nodes:
            depth = np.repeat(np.arange(self.depth), self.widths)
            return {"node": np.arange(self.n), "parent": self.parent, "rank": self.rank, "depth": depth}
        return {"n": np.arange(1, self.n + 1), "tokens_per_step": self.curve, "max_depth": [self.max_depth] * self.n}


# --------------------------------------------------------------------------------------------------------
# The acceptance vector.


def acceptance_vector(source) -> np.ndarray:
    """p_1..p_W from a file in Sequoia's layout, a ``p_1/p_2/.../p_W`` string, or a sequence of numbers.

    Parameters
    ----------
    source : str, path or sequence of float
        A text file whose first column is Sequoia's vector [0, p_1, ..., p_W, p_none] (one value a line; ``#``
        starts a comment; further columns are ignored), summing to 1 within ``FILE_SUM_TOLERANCE``; or the
        values p_1..p_W themselves, separated by ``/`` in a string (p_none is what they leave of 1).

    Returns
    -------
    numpy.ndarray
        p_1..p_W (float64), each in [0, 1], summing to at most 1.
    """
    if isinstance(source, Path) or (isinstance(source, str) and is_file(source)):
        return _read_vector_file(Path(source))
    if isinstance(source, str):
        try:
            vals = [float(v) for v in source.split("/")]
        except ValueError:
            raise BrwError(f"acceptance {clip(source)!r} is neither a file nor values p_1/p_2/.../p_W") from None
        return _check_acceptance(np.array(vals), f"acceptance {clip(source)!r}")
    try:
        vals = np.asarray(source, dtype=np.float64)
    except (TypeError, ValueError):
        raise BrwError(f"acceptance must be a file, a p_1/p_2/... string or numbers, got {source!r}") from None
    if vals.ndim != 1:
        raise BrwError("acceptance must be one vector p_1..p_W")
    return _check_acceptance(vals, "acceptance")


def _read_vector_file(path: Path) -> np.ndarray:
    lines = read_text(path, "acceptance file").splitlines()
    vals = []
    for i, line in enumerate(lines, 1):
        body = line.split("#", 1)[0].split()
        if not body:
            continue
        try:
            vals.append(float(body[0]))
        except ValueError:
            raise BrwError(f"{path} line {i}: {body[0]!r} is not a number (Sequoia's layout: one value a line, "
                           "0, p_1..p_W, p_none)") from None
    if len(vals) < 3:
        raise BrwError(f"{path} holds {len(vals)} values; Sequoia's layout needs 0, p_1..p_W, p_none (W >= 1)")
    if vals[0] != 0:
        raise BrwError(f"{path}: the first value is {vals[0]:g}, not 0; Sequoia's layout is 0, p_1..p_W, p_none")
    full = np.array(vals)
    if not np.all(np.isfinite(full)) or np.any(full < 0):
        raise BrwError(f"{path}: values must be finite and >= 0")
    if abs(full.sum() - 1.0) > FILE_SUM_TOLERANCE:
        raise BrwError(f"{path}: p_1..p_W and p_none sum to {full.sum():.6g}, not 1")
    return _check_acceptance(full[1:-1], str(path))


def _check_acceptance(p: np.ndarray, what: str) -> np.ndarray:
    if p.size < 1:
        raise BrwError(f"{what}: needs at least one value p_1")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise BrwError(f"{what}: every p_k must lie in [0, 1]")
    if p.sum() > 1.0 + FILE_SUM_TOLERANCE:
        raise BrwError(f"{what}: p_1..p_W sum to {p.sum():.6g}, more than 1")
    return p.astype(np.float64)


# --------------------------------------------------------------------------------------------------------
# The dynamic program.


def sequoia_tree(acceptance, n: int, depth: int | None = None) -> SequoiaTree:
    """Sequoia's optimal static tree of n nodes (root counted) under the positional acceptance model.

    Parameters
    ----------
    acceptance : str, path or sequence of float
        The positional vector: see ``acceptance_vector``.
    n : int
        Nodes of the tree, the root counted (P = n - 1 draft tokens), 1 <= n <= ``MAX_NODES``.
    depth : int, optional
        At most this many levels, the root's counted (as Sequoia counts): depth 2 is one level of draft tokens.
        None (the default) sets no limit.

    Returns
    -------
    SequoiaTree
        The tree (widths per level, parent and rank arrays), its expected tokens per step and the optimum of
        every smaller size under the same limit.
    """
    p = acceptance_vector(acceptance)
    n = _check_int(n, "n", 1)
    if n > MAX_NODES:
        raise BrwError(f"n must be at most {MAX_NODES} (the program takes O(n^2 W) time), got {n}")
    if depth is not None:
        depth = _check_int(depth, "depth", 1)
        if n > _capacity(p.size, depth):
            raise BrwError(f"no tree of {n} nodes fits in depth {depth} with {p.size} ranks per node "
                           f"(at most {_capacity(p.size, depth)}); raise depth or lower n")
    c, s_arg, j_arg = _program(p, n, None)
    parent, rank, widths = _build(n, None, s_arg, j_arg)
    curve = c[1:].copy()
    if depth is not None:  # a table per level: the curve's smaller optima may be deeper than the limit
        need = depth * n * (p.size + 1) * 12
        if need > MAX_TABLE_BYTES:
            raise BrwError(f"a depth-{depth} program with n={n} needs {need / 2**30:.1f} GiB of tables; "
                           "lower depth or n")
        limited, s_lim, j_lim = _program(p, n, depth)
        curve = limited[1:].copy()
        if widths.size > depth:  # the unlimited optimum is too deep: the limited program's tree
            c = limited
            parent, rank, widths = _build(n, depth, s_lim, j_lim)
        else:  # it fits, so it is optimal under the limit too: kept, and the curve ends at its value
            curve[-1] = c[n]
    return SequoiaTree(p, n, depth, float(c[n]), widths, parent, rank, curve)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise BrwError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise BrwError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _capacity(width: int, levels: int) -> int:
    """Nodes of the full width-ary tree of the given levels (capped: only compared with n)."""
    total, level = 0, 1
    for _ in range(levels):
        total += level
        level *= width
        if total > MAX_NODES:
            break
    return total


def _program(p: np.ndarray, n: int, levels: int | None):
    """The tables of ``brw._kernels.sequoia_program``: without a limit one table, else one per limit 1..levels
    (index l - 1)."""
    L = 1 if levels is None else levels
    W = p.size
    H = np.full((L, W + 1, n), -np.inf)
    c = np.full((L, n + 1), -np.inf)
    s_arg = np.zeros((L, W + 1, n), dtype=np.int32)
    j_arg = np.zeros((L, n + 1), dtype=np.int32)
    K.sequoia_program(p, n, levels is None, H, c, s_arg, j_arg)
    return c[L - 1], s_arg, j_arg


def _build(n: int, levels: int | None, s_arg: np.ndarray, j_arg: np.ndarray):
    """parent, rank and widths of the optimal tree from the argmax tables, level by level."""
    parent = np.empty(n, dtype=np.int32)
    rank = np.empty(n, dtype=np.int32)
    parent[0], rank[0] = -1, 0
    level = [(0, n, 0 if levels is None else levels - 1)]  # (node, subtree size, its table)
    widths = []
    count = 1
    while level:
        widths.append(len(level))
        below = []
        for node, size, t in level:
            sizes = []  # child j's nodes, for j = J..1: peel the last child off the remaining m nodes
            m = size - 1
            for j in range(int(j_arg[t, size]), 0, -1):
                sizes.append(int(s_arg[t, j, m]))
                m -= sizes[-1]
            for k, a in enumerate(reversed(sizes), 1):
                parent[count], rank[count] = node, k
                below.append((count, a, t if levels is None else t - 1))
                count += 1
        level = below
    return parent, rank, np.array(widths, dtype=np.int64)


# --------------------------------------------------------------------------------------------------------
# The deterministic best-first tree.


def best_first(acceptance, n: int) -> np.ndarray:
    """Expected tokens per step of the best-first tree of every size 1..n (root counted), no depth limit.

    The n - 1 non-root nodes of largest path product, with p sorted (the drafter that knows which rank is
    likeliest): the speed of light of the positional model's mass profile. For p non-increasing it is
    Sequoia's optimum; for p summing to 1 it is brw's frontier on the ``fixed:`` law of p.

    Parameters
    ----------
    acceptance : str, path or sequence of float
        The positional vector: see ``acceptance_vector``.
    n : int
        Largest tree, root counted.

    Returns
    -------
    numpy.ndarray
        out[k - 1] = tokens per step of the best-first tree of k nodes, k = 1..n.
    """
    p = np.sort(acceptance_vector(acceptance))[::-1]
    n = _check_int(n, "n", 1)
    out = np.empty(n)
    out[0] = 1.0
    heap = [(-p[0], 0, 1.0)]  # (-path product, rank - 1, the parent's path product)
    total = 1.0
    for k in range(1, n):  # a popped node pushes its next sibling and its first child
        neg, r, up = heapq.heappop(heap)
        total -= neg
        out[k] = total
        if r + 1 < p.size:
            heapq.heappush(heap, (-(up * p[r + 1]), r + 1, up))
        heapq.heappush(heap, (-(-neg * p[0]), 0, -neg))
    return out
