"""Numba kernels: arithmetic on arrays, nothing else (no parsing, printing, files or user errors).

Randomness is counter-based. Every node of a random tree has a 64-bit key; its children's keys are hashes of
(key, rank) and its probability vector is drawn from a stream seeded by its key alone. So a tree is a function
of the root key only: the frontier kernel, the threshold kernel and the pure-Python reference all see the same
tree whatever order they visit it in, for any thread count and any Pmax.

Law kinds (``brw.kernel_law``):
- KIND_TABLE: vectors are rows of ``table`` (sorted log-probabilities, padded with -inf). One row: the same
  vector at every node. Several rows: each node draws a row uniformly (an empirical law). A row may carry a
  tail after its table entries: ``tails[row, g] = (log q, n)``, n equal atoms of probability q per group g,
  groups in decreasing q, all below the row's last table entry (how a recorded top-k row keeps the mass
  beyond its k tokens without storing every token). Other kinds pass tails of shape (1, 0, 2).
  Regimes (theory.md section 7(a)): with params = (G, offsets[0..G], initial cdf[G], transition cdf[G x G])
  and G > 1, rows are grouped by regime (rows offsets[g]..offsets[g+1]); a node draws its regime from its
  parent's row of the transition matrix (the root from the initial law) and then a row of that regime. Its
  regime is read off its row, so walkers carry rows only. params[0] in [0, 1]: no regimes.
  Recorded contexts (rows grouped by context, in recorded order within each: rows offsets[c]..offsets[c+1]
  of the C contexts): the root draws a row uniformly from the whole table (a context with probability
  proportional to its rows); below it,
  - params = (ROWS_CONTEXT = -1, C, offsets[0..C]): a node draws a row uniformly from its parent's context
    (found by binary search of the parent's row in the offsets), so a whole tree lives in one context;
  - params = (ROWS_PATH = -2, C, offsets[0..C], follows[0..N-1]): follows[r] = 1 when row r + 1 is the next
    recorded position of row r's context, else 0. Every child of a node at row r takes row r + 1 when
    follows[r] = 1, and otherwise (the end of the recorded text) a row drawn uniformly from r's context.
  - params = (ROWS_EDGE = -3, G, B, e[1..B-1], offsets[0..G (B + 1)], group[0..N-1]): rows are laid out in
    G groups of B + 1 blocks, rows offsets[g (B + 1) + b]..offsets[g (B + 1) + b + 1] forming block b of
    group g, and group[r] names the group row r's children draw from. A node reached by an edge of surprisal
    -log p (its own log-probability in its parent's vector) in bin b ([e_b, e_{b+1}), e_0 = 0, e_B = inf)
    draws its row uniformly from block b of group[parent's row], or from that whole group when the block is
    empty. (Recorded contexts as groups: a group is a context, block b < B its rows recorded just after a
    token of surprisal bin b, block B those with nothing recorded before them.)
  - params = (ROWS_RUN = -4, C, S, offsets[0..S C], group[0..N-1], run[0..N-1], roots[0..R-1]): rows are
    laid out in S runs of C contexts, rows offsets[k C + c]..offsets[k C + c + 1] being context c's rows at
    run k, and row r belongs to context group[r] at run run[r]. The root draws its row uniformly from the R
    rows listed in roots (R is what is left of params). A node reached by its parent's most probable token
    (its log-probability equal to the parent row's first entry) is at run min(run[parent's row] + 1, S - 1),
    any other node at run 0; it draws its row uniformly from its parent's context at its run, or, when that
    block is empty, from every context's rows at its run (the whole table when there are none).
  - params = (ROWS_PREFIX = -5, C, S, offsets[0..S C], group[0..N-1], run[0..N-1], top_next[0..N-1],
    col[0..N-1], taken_next[0..N-1], roots[0..R-1]): as ROWS_RUN, except that a child whose own prefix was
    recorded takes that row: a node reached by its parent's most probable token takes top_next[parent's row],
    one whose log-probability equals entry col[parent's row] of the parent's row takes taken_next[parent's row]
    (-1 in any of them: nothing recorded, draw as ROWS_RUN). Children are told apart by their log-probability
    only, so a child exactly as probable as the top or the taken one would take the same row (as in ROWS_RUN,
    where it would continue the run).
- KIND_DIRICHLET: params = (alpha, k, a, 0); k gamma variates per node, normalised and sorted. a = 1 / T > 0
  tempers the vector (log G_i scaled by a before normalising: p^(1/T) renormalised); a = 0: untempered.
- KIND_GEM: params = (C, s[C], theta[C], weight cdf[C][, a]); a node picks component c, puts mass s_c on one
  atom and breaks 1 - s_c into GEM(theta_c) sticks until the unbroken mass is below e^-cut, then sorts.
  Plain GEM(theta) is (1, 0, theta, 1). With the optional a = 1 / T (T < 1) the vector is tempered: sticks are
  broken until the unbroken mass R, tempered, cannot reach the cut (a log R - log Z <= -cut, Z the tempered
  mass of the sticks broken so far: no unbroken atom q <= R can then sit below the cut, since q^a <= R^a),
  and every atom becomes a log q - log Z (the unbroken atoms' share of the true normaliser, at most e^-cut,
  is left out of Z: positions are low by at most e^-cut).

Two solvers find the optimal frontier. ``frontier_one`` (trees, in pop order) is best-first on a binary heap
whose entries are candidate children (position, parent key, rank among the parent's children, depth, parent's
pop index); popping child r of a parent pushes its sibling r + 1 (lazily) and its own first child.
``frontier_select_one`` (the accepted curve, what sweeps run) keeps the P smallest positions of a pruned
depth-first walk and sorts them: each node's vector is drawn once instead of twice, and no heap is needed.
"""

import math

from brw.limits import check_numba_environment

check_numba_environment()  # before Numba reads it: a bad NUMBA_NUM_THREADS makes `import numba` raise

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from brw.kernel_law import (KIND_DIRICHLET, KIND_GEM, KIND_TABLE, ROWS_EDGE, ROWS_PATH,  # noqa: E402
                            ROWS_PREFIX, ROWS_RUN)


from brw.streams import (CHILD as _CHILD, COMPONENT as _COMPONENT, GOLDEN as _GOLDEN, M1 as _M1,  # noqa: E402
                         M2 as _M2, REGIME as _REGIME, STREAM as _STREAM, TWO_M53 as _TWO_M53,
                         ZIGGURAT_F as _ZF, ZIGGURAT_R as _ZR, ZIGGURAT_X as _ZX)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_NEG_INF = -np.inf


# ---------------------------------------------------------------------------------------------------------
# Counter-based random numbers (splitmix64 finaliser as the hash).


@njit(cache=True, inline="always")
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def child_key(key, rank):
    return mix64(key + np.uint64(rank + 1) * _CHILD)


@njit(cache=True, inline="always")
def stream_start(key):
    return key ^ _STREAM


@njit(cache=True, inline="always")
def next_uniform(s):
    """(u, s'): u uniform on the open interval (0, 1) from stream state s."""
    s = s + _GOLDEN
    return ((mix64(s) >> _S11) + 0.5) * _TWO_M53, s


@njit(cache=True, inline="always")
def next_u64(s):
    s = s + _GOLDEN
    return mix64(s), s


_S8 = np.uint64(8)
_B255 = np.uint64(255)
_B1 = np.uint64(1)


@njit(cache=True)
def next_normal(s):
    """(z, s') with z standard normal: ziggurat (one 64-bit draw: 8 bits of layer, 1 of sign, 53 of abscissa;
    98.8% of draws end at the first comparison, with no transcendental function)."""
    while True:
        u, s = next_u64(s)
        i = np.int64(u & _B255)
        neg = (u >> _S8) & _B1
        z = np.float64(u >> _S11) * _TWO_M53 * _ZX[i]
        if z < _ZX[i + 1]:
            return (-z if neg else z), s
        if i == 0:  # the tail beyond r (Marsaglia 1964)
            while True:
                u1, s = next_uniform(s)
                u2, s = next_uniform(s)
                a = -math.log(u1) / _ZR
                if -2.0 * math.log(u2) > a * a:
                    z = _ZR + a
                    return (-z if neg else z), s
        u2, s = next_uniform(s)
        if _ZF[i] + u2 * (_ZF[i + 1] - _ZF[i]) < math.exp(-0.5 * z * z):
            return (-z if neg else z), s


@njit(cache=True)
def next_log_gamma(a, d, c, s):
    """(log G, s') with G ~ Gamma(a, 1); Marsaglia-Tsang with d = a' - 1/3, c = 1/sqrt(9 d), a' = max(a, a + 1
    when a < 1), and their squeeze (most draws accept with no logarithm). Below 1 the boost G = G' U^(1/a) is
    applied in logs, so tiny alpha never underflows."""
    while True:
        x, s = next_normal(s)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u, s = next_uniform(s)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            break
        if math.log(u) < 0.5 * x2 + d - d * v + d * math.log(v):
            break
    lg = math.log(d * v)
    if a < 1.0:
        u, s = next_uniform(s)
        lg += math.log(u) / a
    return lg, s


@njit(cache=True)
def gamma_constants(a):
    aa = a + 1.0 if a < 1.0 else a
    d = aa - 1.0 / 3.0
    return d, 1.0 / math.sqrt(9.0 * d)


# ---------------------------------------------------------------------------------------------------------
# Node vectors.


@njit(cache=True)
def sort_desc(buf, n):
    """Sort buf[:n] in place, largest first (insertion sort for short rows, Shell sort above)."""
    gap = 1
    while gap < n // 3:
        gap = 3 * gap + 1
    while gap >= 1:
        for i in range(gap, n):
            v = buf[i]
            j = i
            while j >= gap and buf[j - gap] < v:
                buf[j] = buf[j - gap]
                j -= gap
            buf[j] = v
        gap //= 3


@njit(cache=True)
def dirichlet_fill(key, k, a, d, c, buf, inv_t):
    """Unsorted log-probabilities of the node's Dirichlet vector into buf[:k], tempered by inv_t = 1 / T when it
    is > 0; returns their maximum."""
    s = stream_start(key)
    m = _NEG_INF
    for i in range(k):
        lg, s = next_log_gamma(a, d, c, s)
        buf[i] = lg
        if lg > m:
            m = lg
    if inv_t > 0.0:  # p_i^(1/T) renormalised: the log-gammas scaled before normalising
        for i in range(k):
            buf[i] *= inv_t
        m *= inv_t
    tot = 0.0
    for i in range(k):
        tot += math.exp(buf[i] - m)
    lse = m + math.log(tot)
    for i in range(k):
        buf[i] -= lse
    return m - lse


@njit(cache=True, inline="always")
def _hash_uniform(key, salt):
    return ((mix64(key ^ salt) >> _S11) + 0.5) * _TWO_M53


@njit(cache=True)
def gem_fill(key, params, cut, buf):
    """A spike-plus-GEM vector's log-probabilities into buf (unsorted): the component's spike, then sticks
    until the unbroken mass is below e^-cut or buf is full. Returns (n, log of the unbroken mass). With the
    optional last parameter a = 1 / T, the tempered vector (see the module notes; the unbroken mass returned is
    then its tempered bound a log R - log Z)."""
    ncomp = np.int64(params[0])
    if params.shape[0] > 1 + 3 * ncomp:
        return _gem_fill_tempered(key, params, cut, buf, ncomp, params[1 + 3 * ncomp])
    spike, theta = _gem_component(key, params, ncomp)
    s = stream_start(key)
    lrem = 0.0
    n = 0
    if spike > 0.0:
        buf[0] = math.log(spike)
        lrem = math.log1p(-spike)
        n = 1
    inv = 1.0 / theta
    while lrem >= -cut and n < buf.shape[0]:
        u, s = next_uniform(s)
        l1mv = math.log(u) * inv  # log(1 - V), V ~ Beta(1, theta)
        buf[n] = lrem + math.log(-math.expm1(l1mv))
        lrem += l1mv
        n += 1
    return n, lrem


@njit(cache=True, inline="always")
def _gem_component(key, params, ncomp):
    """(spike, theta) of the mixture component a node's key picks (the only one when ncomp is 1)."""
    c = 0
    if ncomp > 1:
        v = _hash_uniform(key, _COMPONENT)
        while c < ncomp - 1 and v >= params[1 + 2 * ncomp + c]:
            c += 1
    return params[1 + c], params[1 + ncomp + c]


@njit(cache=True)
def _gem_fill_tempered(key, params, cut, buf, ncomp, a):
    """gem_fill at temperature 1 / a: the same sticks from the same stream, broken until a log R - log Z <= -cut,
    then each atom's a log q - log Z."""
    spike, theta = _gem_component(key, params, ncomp)
    s = stream_start(key)
    lrem = 0.0
    lz = _NEG_INF  # log of the tempered mass broken so far
    n = 0
    if spike > 0.0:
        buf[0] = math.log(spike)
        lz = a * buf[0]
        lrem = math.log1p(-spike)
        n = 1
    inv = 1.0 / theta
    while a * lrem - lz >= -cut and n < buf.shape[0]:
        u, s = next_uniform(s)
        l1mv = math.log(u) * inv  # log(1 - V), V ~ Beta(1, theta)
        buf[n] = lrem + math.log(-math.expm1(l1mv))
        x = a * buf[n]
        if x > lz:  # log(e^lz + e^x)
            lz = x + math.log1p(math.exp(lz - x))
        else:
            lz = lz + math.log1p(math.exp(x - lz))
        lrem += l1mv
        n += 1
    for i in range(n):
        buf[i] = a * buf[i] - lz
    return n, a * lrem - lz


@njit(cache=True, inline="always")
def _lemire(u, n):
    return np.int64(((u >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))  # no division


@njit(cache=True, inline="always")
def table_row(table, params, key, prow, edge):
    """The row a node of an empirical law draws (row 0 when the table has one row); prow is its parent's row
    (-1 for the root), which matters only for a law with regimes or recorded contexts; edge is the node's
    surprisal -log p in its parent's vector, which matters only for ROWS_EDGE, ROWS_RUN and ROWS_PREFIX."""
    nrows = table.shape[0]
    if nrows == 1:
        return 0
    prow = np.int64(prow)  # the root's -1 is a literal: without this each helper below is compiled twice
    mode = params[0]
    if mode == ROWS_PATH and prow >= 0 and params[3 + np.int64(params[1]) + prow] > 0.0:
        return prow + 1
    if mode == ROWS_PREFIX and prow >= 0:
        nxt = _prefix_row(table, params, prow, edge)
        if nxt >= 0:
            return nxt
    u, _ = next_u64(stream_start(key))
    if mode > 1.0:
        return _regime_row(params, key, prow, u)
    if (mode == ROWS_RUN or mode == ROWS_PREFIX) and prow < 0:
        return _run_root(params, nrows, u, 2 if mode == ROWS_RUN else 5)
    if mode >= 0.0 or prow < 0:
        return _lemire(u, nrows)
    if mode == ROWS_EDGE:
        return _edge_row(params, prow, edge, u)
    if mode == ROWS_RUN or mode == ROWS_PREFIX:
        return _run_row(table, params, prow, edge, u)
    lo, hi = _context_rows(params, prow)
    return lo + _lemire(u, hi - lo)


@njit(cache=True)
def _edge_row(params, prow, edge, u):
    """ROWS_EDGE: a row of the block of prow's group that follows a token in edge's surprisal bin."""
    ngroups = np.int64(params[1])
    nbins = np.int64(params[2])
    per = nbins + 1  # blocks per group
    base = 2 + nbins  # offsets[0] (after the B - 1 inner bin edges)
    lo = np.int64(params[base + ngroups * per + 1 + prow])  # the group prow's children draw from
    b = 0
    while b < nbins - 1 and edge >= params[3 + b]:
        b += 1
    first = np.int64(params[base + lo * per + b])
    end = np.int64(params[base + lo * per + b + 1])
    if end <= first:  # no recorded row followed such a token in this context: the whole context
        first = np.int64(params[base + lo * per])
        end = np.int64(params[base + (lo + 1) * per])
    return first + _lemire(u, end - first)


@njit(cache=True)
def _run_root(params, nrows, u, arrays):
    """ROWS_RUN, ROWS_PREFIX: the root's row, uniform over the rows listed after the ``arrays`` per-row arrays."""
    at = 3 + np.int64(params[1]) * np.int64(params[2]) + 1 + arrays * nrows  # roots[0]
    return np.int64(params[at + _lemire(u, params.shape[0] - at)])


@njit(cache=True)
def _prefix_row(table, params, prow, edge):
    """ROWS_PREFIX: the recorded row of the child's own prefix, or -1."""
    nrows = table.shape[0]
    at = 3 + np.int64(params[1]) * np.int64(params[2]) + 1 + 2 * nrows  # top_next[0]
    if -edge >= table[prow, 0]:
        return np.int64(params[at + prow])
    col = np.int64(params[at + nrows + prow])
    if col > 0 and -edge == table[prow, col]:
        return np.int64(params[at + 2 * nrows + prow])
    return -1


@njit(cache=True)
def _run_row(table, params, prow, edge, u):
    """ROWS_RUN: a row of prow's context recorded after the child's greedy run (its parent's run + 1 when the
    child is its parent's most probable token, else 0; capped at the last state)."""
    ngroups = np.int64(params[1])
    nstates = np.int64(params[2])
    nrows = table.shape[0]
    at = 3 + nstates * ngroups + 1  # group[0]
    g = np.int64(params[at + prow])
    k = np.int64(params[at + nrows + prow])
    if -edge >= table[prow, 0]:
        k = min(k + 1, nstates - 1)
    else:
        k = 0
    first = np.int64(params[3 + k * ngroups + g])
    end = np.int64(params[3 + k * ngroups + g + 1])
    if end <= first:  # no row of this context at that run: the run's rows of every context
        first = np.int64(params[3 + k * ngroups])
        end = np.int64(params[3 + (k + 1) * ngroups])
        if end <= first:
            first = 0
            end = nrows
    return first + _lemire(u, end - first)


@njit(cache=True, inline="always")
def _context_rows(params, prow):
    """(first, end) rows of the recorded context holding row prow: binary search of the offsets."""
    lo = 0
    hi = np.int64(params[1])  # offsets[lo] <= prow < offsets[hi]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if params[2 + mid] <= prow:
            lo = mid
        else:
            hi = mid
    return np.int64(params[2 + lo]), np.int64(params[3 + lo])


@njit(cache=True)
def _regime_row(params, key, prow, u):
    g = np.int64(params[0])
    if prow < 0:
        base = 2 + g  # the initial law's cdf
    else:
        pg = 0
        while pg < g - 1 and prow >= params[2 + pg]:  # parent's regime: offsets[pg + 1] > prow
            pg += 1
        base = 2 + 2 * g + pg * g
    v = _hash_uniform(key, _REGIME)
    h = 0
    while h < g - 1 and v >= params[base + h]:
        h += 1
    lo = np.int64(params[1 + h])
    return lo + _lemire(u, np.int64(params[2 + h]) - lo)


@njit(cache=True)
def node_vector(kind, table, params, cut, key, buf, prow, edge):
    """(lp, n, row): the node's sorted log-probabilities lp[:n] (largest first; -inf entries are absent
    children) and, for table laws, its row (whose tail follows lp[:n]; see ``rank_lp``); prow: the parent's
    row and edge the node's surprisal in the parent's vector (table laws with regimes or contexts)."""
    if kind == KIND_TABLE:
        row = table_row(table, params, key, prow, edge)
        return table[row], table.shape[1], row
    elif kind == KIND_DIRICHLET:
        k = np.int64(params[1])
        d, c = gamma_constants(params[0])
        dirichlet_fill(key, k, params[0], d, c, buf, params[2])
        sort_desc(buf, k)
        return buf, k, 0
    else:
        n, _ = gem_fill(key, params, cut, buf)
        sort_desc(buf, n)
        return buf, n, 0


@njit(cache=True, inline="always")
def rank_lp(lp, n, tail, r):
    """Log-probability of the child of rank r: lp[r] below n, then the tail groups (log q, count)."""
    if r < n:
        return lp[r]
    r -= n
    for g in range(tail.shape[0]):
        cnt = np.int64(tail[g, 1])
        if r < cnt:
            return tail[g, 0]
        r -= cnt
    return _NEG_INF


@njit(cache=True)
def tail_lp(tails, row, r):
    """Log-probability of rank r among a table row's tail groups (r counted from the first tail atom)."""
    for g in range(tails.shape[1]):
        cnt = np.int64(tails[row, g, 1])
        if r < cnt:
            return tails[row, g, 0]
        r -= cnt
    return _NEG_INF


@njit(cache=True)
def node_top(kind, table, params, cut, key, buf, prow, edge):
    """The largest log-probability of the node's vector (what the frontier needs for a first child)."""
    if kind == KIND_TABLE:
        return table[table_row(table, params, key, prow, edge), 0]
    elif kind == KIND_DIRICHLET:
        d, c = gamma_constants(params[0])
        return dirichlet_fill(key, np.int64(params[1]), params[0], d, c, buf, params[2])
    else:
        n, _ = gem_fill(key, params, cut, buf)
        m = _NEG_INF
        for i in range(n):
            if buf[i] > m:
                m = buf[i]
        return m


# ---------------------------------------------------------------------------------------------------------
# Binary min-heap on parallel arrays, keyed by position (the best-first tree kernel).


@njit(cache=True, inline="always")
def _heap_set(hpos, hkey, hrank, hdep, hpar, i, pos, key, rank, dep, par):
    hpos[i] = pos
    hkey[i] = key
    hrank[i] = rank
    hdep[i] = dep
    hpar[i] = par


@njit(cache=True)
def _sift_up(hpos, hkey, hrank, hdep, hpar, i):
    pos, key, rank, dep, par = hpos[i], hkey[i], hrank[i], hdep[i], hpar[i]
    while i > 0:
        j = (i - 1) >> 1
        if hpos[j] <= pos:
            break
        _heap_set(hpos, hkey, hrank, hdep, hpar, i, hpos[j], hkey[j], hrank[j], hdep[j], hpar[j])
        i = j
    _heap_set(hpos, hkey, hrank, hdep, hpar, i, pos, key, rank, dep, par)


@njit(cache=True)
def _sift_down(hpos, hkey, hrank, hdep, hpar, i, n):
    pos, key, rank, dep, par = hpos[i], hkey[i], hrank[i], hdep[i], hpar[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and hpos[c + 1] < hpos[c]:
            c += 1
        if hpos[c] >= pos:
            break
        _heap_set(hpos, hkey, hrank, hdep, hpar, i, hpos[c], hkey[c], hrank[c], hdep[c], hpar[c])
        i = c
    _heap_set(hpos, hkey, hrank, hdep, hpar, i, pos, key, rank, dep, par)


# ---------------------------------------------------------------------------------------------------------
# The optimal frontier as a tree: best-first with lazy siblings, nodes in pop order.


@njit(cache=True)
def frontier_one(kind, table, tails, params, cut, root_key, pmax, acc, tpar, tdep, tpos, buf):
    """Pop the pmax smallest positions of the tree below root_key, in order. acc[i] = sum of e^-V over the
    first i + 1 popped nodes; node i's parent (pop index, -1 for the root), depth and position go to tpar,
    tdep, tpos. A child's position is its parent's position minus its log-probability, the same arithmetic as
    every other solver (so positions agree to the bit). Returns (deepest depth, last position). Heap: 28
    bytes per entry, at most pmax + 1 entries."""
    hpos = np.empty(pmax + 2)
    hkey = np.empty(pmax + 2, dtype=np.uint64)
    hrank = np.empty(pmax + 2, dtype=np.int32)
    hdep = np.empty(pmax + 2, dtype=np.int32)
    hpar = np.empty(pmax + 2, dtype=np.int32)
    trow = np.zeros(pmax if kind == KIND_TABLE else 1, dtype=np.int64)  # popped nodes' rows (table laws)
    root_row = table_row(table, params, root_key, -1, 0.0) if kind == KIND_TABLE else 0
    top = node_top(kind, table, params, cut, root_key, buf, -1, 0.0)
    if top == _NEG_INF:
        return -1, np.inf
    _heap_set(hpos, hkey, hrank, hdep, hpar, 0, 0.0 - top, root_key, 0, 1, -1)
    n = np.int64(1)  # int64, not a literal: a literal 1 made Numba compile _sift_down a second time
    total = 0.0
    deepest = 0
    pos = 0.0
    for i in range(pmax):
        if n == 0:  # a finite tree ran out of nodes (cannot happen for a law whose every node has a child)
            for j in range(i, pmax):
                acc[j] = total
            return deepest, np.inf
        pos = hpos[0]
        pkey = hkey[0]
        r = hrank[0]
        d = hdep[0]
        par = hpar[0]
        total += math.exp(-pos)
        acc[i] = total
        if d > deepest:
            deepest = d
        tpar[i] = par
        tdep[i] = d
        tpos[i] = pos
        # Replace the popped entry by its next sibling, or drop it. A table law's rows are kept, not redrawn:
        # with regimes a row depends on the parent's row.
        if kind == KIND_TABLE:
            row = trow[par] if par >= 0 else root_row
            lp = table[row]
            ln = table.shape[1]
        else:
            lp, ln, row = node_vector(kind, table, params, cut, pkey, buf, np.int64(-1), 0.0)
        # the popped node's own surprisal in its parent's vector (what ROWS_EDGE, RUN and PREFIX rows are drawn by)
        edge = -rank_lp(lp, ln, tails[row], r) if params[0] <= ROWS_EDGE else 0.0  # EDGE, RUN, PREFIX
        nxt = rank_lp(lp, ln, tails[row], r + 1)
        if nxt > _NEG_INF:
            hpos[0] = (tpos[par] if par >= 0 else 0.0) - nxt
            hrank[0] = r + 1
            _sift_down(hpos, hkey, hrank, hdep, hpar, 0, n)
        else:
            n -= 1
            if n > 0:
                _heap_set(hpos, hkey, hrank, hdep, hpar, 0, hpos[n], hkey[n], hrank[n], hdep[n], hpar[n])
                _sift_down(hpos, hkey, hrank, hdep, hpar, 0, n)
        # Push the popped node's first child.
        ckey = child_key(pkey, r)
        if kind == KIND_TABLE:
            trow[i] = table_row(table, params, ckey, row, edge)
            ctop = table[trow[i], 0]
        else:
            ctop = node_top(kind, table, params, cut, ckey, buf, -1, 0.0)
        if ctop > _NEG_INF:
            _heap_set(hpos, hkey, hrank, hdep, hpar, n, pos - ctop, ckey, 0, d + 1, i)
            n += 1
            _sift_up(hpos, hkey, hrank, hdep, hpar, n - 1)
    return deepest, pos


# ---------------------------------------------------------------------------------------------------------
# The threshold tree {V <= x}: depth-first, children in order of position, stop at the first beyond x.


@njit(cache=True)
def _threshold_walk(kind, table, tails, params, cut, xs, count, mass, tree, tpar, tdep, tpos, max_nodes,
                    skey, spos, snext, sidx, srow, slen, vbuf, d, ckey, cpos, cr, crow, cln, cidx, visited, deepest):
    """The walk of {V <= xs[-1]} from the state given, until it ends (status 0), finds more than max_nodes
    nodes (status 2) or fills its stack (status 1: grow it, call again). Arrays are never rebound here (see
    _select_walk)."""
    random_vectors = kind != KIND_TABLE
    x = xs[xs.shape[0] - 1]
    scap = skey.shape[0]
    while True:
        # Rank cr's log-probability, indexed in place. (Not a helper: Numba's IR inlining of a function with
        # array arguments adds reference counting to every pass, 14 -> 29 ns per node measured.)
        if cr < cln:
            lpr = vbuf[d, cr] if random_vectors else table[crow, cr]
        elif tails.shape[1] == 0:
            lpr = _NEG_INF
        else:
            lpr = tail_lp(tails, crow, cr - cln)
        npos = cpos - lpr
        if lpr == _NEG_INF or npos > x:  # no child left at or below x: back up to the parent
            if d == 0:
                return 0, d, ckey, cpos, cr, crow, cln, cidx, visited, deepest
            d -= 1
            ckey = skey[d]
            cpos = spos[d]
            crow = srow[d]
            cln = slen[d]
            cr = snext[d]
            cidx = sidx[d]
            continue
        if d + 1 == scap:
            return 1, d, ckey, cpos, cr, crow, cln, cidx, visited, deepest
        # Record the child (rank cr of the current node).
        lo = 0
        hi = xs.shape[0] - 1
        while lo < hi:  # first level b with npos <= xs[b]
            mid = (lo + hi) >> 1
            if npos <= xs[mid]:
                hi = mid
            else:
                lo = mid + 1
        count[lo] += 1
        mass[lo] += math.exp(-npos)
        if tree and visited < tpar.shape[0]:
            tpar[visited] = cidx
            tdep[visited] = d + 1
            tpos[visited] = npos
        visited += 1
        if visited > max_nodes:
            return 2, d, ckey, cpos, cr, crow, cln, cidx, visited, deepest
        if d + 1 > deepest:
            deepest = d + 1
        # Step down to it.
        skey[d] = ckey
        spos[d] = cpos
        srow[d] = crow
        slen[d] = cln
        snext[d] = cr + 1
        sidx[d] = cidx
        d += 1
        ckey = child_key(ckey, cr)
        cpos = npos
        cr = 0
        cidx = visited - 1
        if random_vectors:
            lp, cln, crow = node_vector(kind, table, params, cut, ckey, vbuf[d], np.int64(-1), 0.0)
        else:
            crow = table_row(table, params, ckey, crow, -lpr)


@njit(cache=True)
def threshold_one(kind, table, tails, params, cut, root_key, xs, count, mass, tree, tpar, tdep, tpos, max_nodes,
                  width):
    """Visit every non-root node with V <= xs[-1]. count[b] and mass[b] gather the nodes (and their e^-V) whose
    position falls in (xs[b-1], xs[b]]. In tree mode the first len(tpar) nodes go to tpar (visit index of the
    parent, -1 for the root), tdep, tpos. Returns (nodes visited, deepest depth); stops early, returning
    max_nodes + 1, once more than max_nodes nodes are found."""
    # Counts and masses gather in arrays of this call's own and are added to count and mass at the end:
    # replicates' rows of count and mass share cache lines, and every thread writing them per node would
    # keep stealing those lines from each other (threshold 1 -> 2 threads measured 0.97x).
    lcount = np.zeros(count.shape[0], dtype=count.dtype)
    lmass = np.zeros(mass.shape[0])
    scap = 256
    skey = np.empty(scap, dtype=np.uint64)
    spos = np.empty(scap)
    snext = np.empty(scap, dtype=np.int64)
    sidx = np.empty(scap, dtype=np.int64)
    srow = np.empty(scap, dtype=np.int64)
    slen = np.empty(scap, dtype=np.int64)
    random_vectors = kind != KIND_TABLE
    vbuf = np.empty((scap if random_vectors else 1, max(width, 1)))
    # The current node (key, position, row, length, next rank, visit index) lives in locals, the path above it
    # on the stack; a node's vector is drawn once, when the walk steps down to it. The counters start as int64,
    # not as literals: a literal 0 made Numba compile _threshold_walk twice (once for Literal[int](0) arguments).
    d = np.int64(0)
    ckey = root_key
    cpos = 0.0
    cr = np.int64(0)
    cidx = np.int64(-1)
    visited = np.int64(0)
    deepest = np.int64(0)
    if random_vectors:
        lp, cln, crow = node_vector(kind, table, params, cut, ckey, vbuf[0], np.int64(-1), 0.0)
    else:
        crow = table_row(table, params, ckey, -1, 0.0)
        cln = table.shape[1]
    while True:
        status, d, ckey, cpos, cr, crow, cln, cidx, visited, deepest = _threshold_walk(
            kind, table, tails, params, cut, xs, lcount, lmass, tree, tpar, tdep, tpos, max_nodes,
            skey, spos, snext, sidx, srow, slen, vbuf, d, ckey, cpos, cr, crow, cln, cidx, visited, deepest)
        if status != 1:
            for b in range(count.shape[0]):
                count[b] += lcount[b]
                mass[b] += lmass[b]
            return visited, deepest
        scap *= 2  # a deep path: double the stack and resume
        skey = _grow(skey, scap)
        spos = _grow(spos, scap)
        snext = _grow(snext, scap)
        sidx = _grow(sidx, scap)
        srow = _grow(srow, scap)
        slen = _grow(slen, scap)
        if random_vectors:
            vbuf = _grow_rows(vbuf, scap, d + 1)


@njit(cache=True)
def _grow(a, cap):
    b = np.empty(cap, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _grow_rows(vbuf, cap, used):
    """The walk's per-level vector buffer with cap rows, its first ``used`` rows kept."""
    nb = np.empty((cap, vbuf.shape[1]))
    nb[:used] = vbuf[:used]
    return nb


@njit(cache=True, nogil=True)
def threshold_batch(kind, table, tails, params, cut, keys, xs, max_nodes, width, count, mass, visited, deepest, lo,
                    hi):
    """Replicates lo .. hi - 1 (root key keys[j]) into count[j], mass[j], visited[j], deepest[j]."""
    no_tree = np.bool_(False)  # a bool, not the literal False: one compiled threshold_one for this and tree mode
    for j in range(lo, hi):
        dummy_i = np.empty(0, dtype=np.int32)
        dummy_f = np.empty(0)
        v, dd = threshold_one(kind, table, tails, params, cut, keys[j], xs, count[j], mass[j], no_tree, dummy_i,
                              dummy_i, dummy_f, max_nodes, width)
        visited[j] = v
        deepest[j] = dd



# ---------------------------------------------------------------------------------------------------------
# The optimal frontier's accepted curve: the P smallest positions by a pruned depth-first walk.
#
# accepted(P) needs only the multiset of the P smallest positions, not the order in which a best-first search
# would meet them. So: walk {V <= x} depth first (each node's vector drawn once, as in the threshold kernel;
# best-first draws it twice, once for its first child and again for each later sibling), append every
# position to a buffer of cap = 1.25 P + 64 slots; when the buffer is full, keep its P smallest (a
# selection, O(cap)) and lower x below the largest kept one (ties with it are interchangeable, so none is
# needed). At the end, select the P smallest and sort them (radix sort on the bits). The start x is a hint,
# log(mu (P + 1)) plus a margin (the key renewal theorem); a walk that finds fewer than P nodes restarts with
# a larger x. Memory: 12 bytes per buffer slot (position, depth) and the curve's 8: 23 bytes per node.


@njit(cache=True, inline="always")
def _swap2(a, b, i, j):
    t = a[i]
    a[i] = a[j]
    a[j] = t
    s = b[i]
    b[i] = b[j]
    b[j] = s


@njit(cache=True)
def _qselect(a, b, k, lo, hi):
    """Quickselect (Hoare, median of three) of rank k within a[lo:hi + 1], b alongside."""
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            _swap2(a, b, lo, mid)
        if a[hi] < a[lo]:
            _swap2(a, b, lo, hi)
        if a[hi] < a[mid]:
            _swap2(a, b, mid, hi)
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                _swap2(a, b, i, j)
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break


@njit(cache=True)
def select_pairs(a, b, k, n):
    """Reorder a[:n] (and b alongside) so that a[k] holds the value of rank k, with no larger value before it
    and no smaller one after it. Large arrays: two pivots from a sorted sample bracket rank k (Floyd and
    Rivest's idea), one three-way pass keeps the few values between them, and quickselect finishes there."""
    if n > 20000:
        m = 2048
        step = n // m
        samp = np.empty(m)
        for i in range(m):
            samp[i] = a[i * step]
        samp.sort()
        q = (k + 0.5) / n * m
        g = 4.0 * math.sqrt(m)
        il = int(q - g)
        ih = int(q + g)
        pl = samp[il] if il > 0 else -np.inf
        ph = samp[ih] if ih < m - 1 else np.inf
        lt = 0  # a[:lt] < pl, a[gt:] > ph
        gt = n
        i = 0
        while i < gt:
            v = a[i]
            if v < pl:
                _swap2(a, b, i, lt)
                lt += 1
                i += 1
            elif v > ph:
                gt -= 1
                _swap2(a, b, i, gt)
            else:
                i += 1
        if lt <= k < gt:
            _qselect(a, b, k, lt, gt - 1)
            return
    _qselect(a, b, k, np.int64(0), n - 1)


_RADIX_BITS = 8  # 256-way scatters stay in L1: 8 passes of these beat 6 of 11 bits at every size measured
_RADIX = 1 << _RADIX_BITS
_SIGN = np.uint64(1) << np.uint64(63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True)
def radix_sort_f8(a, tmp, n):
    """Sort a[:n] ascending (LSD radix sort on order-preserving bit patterns, 8-bit digits, digits that every
    value shares skipped; n < 2^31). tmp[:n] is scratch. Returns the array (a or tmp) that holds the sorted values."""
    if n == 0:
        return a
    src = a.view(np.uint64)
    dst = tmp.view(np.uint64)
    for i in range(n):  # order-preserving map: flip the sign bit of positives, every bit of negatives
        u = src[i]
        src[i] = (u ^ _ALL) if (u & _SIGN) else (u ^ _SIGN)
    npass = (64 + _RADIX_BITS - 1) // _RADIX_BITS
    hist = np.zeros((npass, _RADIX), dtype=np.int32)
    for i in range(n):
        u = src[i]
        for p in range(npass):
            hist[p, np.int64((u >> np.uint64(p * _RADIX_BITS)) & np.uint64(_RADIX - 1))] += 1
    flipped = False
    for p in range(npass):
        sh = np.uint64(p * _RADIX_BITS)
        first = np.int64((src[0] >> sh) & np.uint64(_RADIX - 1))
        if hist[p, first] == n:
            continue
        off = 0
        for dgt in range(_RADIX):
            c = hist[p, dgt]
            hist[p, dgt] = off
            off += c
        for i in range(n):
            u = src[i]
            dgt = np.int64((u >> sh) & np.uint64(_RADIX - 1))
            dst[hist[p, dgt]] = u
            hist[p, dgt] += 1
        src, dst = dst, src
        flipped = not flipped
    for i in range(n):
        u = src[i]
        src[i] = (u ^ _SIGN) if (u & _SIGN) else (u ^ _ALL)
    return tmp if flipped else a


@njit(cache=True)
def _select_walk(kind, table, tails, params, cut, skey, spos, snext, srow, slen, vbuf, pbuf, dbuf, pmax,
                 d, ckey, cpos, cr, crow, cln, n, x, pruned, shrunk):
    """The pruned walk, from the state given until it ends (status 0) or the stack is full (status 1: grow it
    and call again with the state returned). The arrays are arguments and never rebound here: a loop that
    rebinds an array pays reference counting on every pass (4 -> 20 ns per node measured)."""
    random_vectors = kind != KIND_TABLE
    scap = skey.shape[0]
    cap = pbuf.shape[0]
    while True:
        # Rank cr's log-probability, indexed in place. (Not a helper: Numba's IR inlining of a function with
        # array arguments adds reference counting to every pass, 14 -> 29 ns per node measured.)
        if cr < cln:
            lpr = vbuf[d, cr] if random_vectors else table[crow, cr]
        elif tails.shape[1] == 0:
            lpr = _NEG_INF
        else:
            lpr = tail_lp(tails, crow, cr - cln)
        npos = cpos - lpr
        if lpr == _NEG_INF or npos > x:  # no child left at or below x: back up to the parent
            if lpr > _NEG_INF:
                pruned = True
            if d == 0:
                return 0, d, ckey, cpos, cr, crow, cln, n, x, pruned, shrunk
            d -= 1
            ckey = skey[d]
            cpos = spos[d]
            crow = srow[d]
            cln = slen[d]
            cr = snext[d]
            continue
        if d + 1 == scap:
            return 1, d, ckey, cpos, cr, crow, cln, n, x, pruned, shrunk
        pbuf[n] = npos
        dbuf[n] = d + 1
        n += 1
        if n == cap:  # keep the pmax smallest; only positions below the largest kept one matter now
            select_pairs(pbuf, dbuf, pmax - 1, n)
            n = pmax
            x = np.nextafter(pbuf[pmax - 1], -np.inf)
            shrunk = True
        skey[d] = ckey
        spos[d] = cpos
        srow[d] = crow
        slen[d] = cln
        snext[d] = cr + 1
        d += 1
        ckey = child_key(ckey, cr)
        cpos = npos
        cr = 0
        if random_vectors:
            lp, cln, crow = node_vector(kind, table, params, cut, ckey, vbuf[d], np.int64(-1), 0.0)
        else:
            crow = table_row(table, params, ckey, crow, -lpr)


@njit(cache=True)
def frontier_select_one(kind, table, tails, params, cut, root_key, pmax, x0, acc, width):
    """acc[i] = sum of e^-V over the i + 1 smallest non-root positions of the tree below root_key (the optimal
    frontier's accepted curve). Returns (deepest depth among those pmax nodes, the pmax-th position)."""
    cap = pmax + pmax // 4 + 64
    pbuf = np.empty(cap)
    dbuf = np.empty(cap, dtype=np.int32)
    scap = 256
    skey = np.empty(scap, dtype=np.uint64)
    spos = np.empty(scap)
    snext = np.empty(scap, dtype=np.int64)
    srow = np.empty(scap, dtype=np.int64)
    slen = np.empty(scap, dtype=np.int64)
    random_vectors = kind != KIND_TABLE
    vbuf = np.empty((scap if random_vectors else 1, max(width, 1)))

    x = x0
    n = 0
    prev_n = -1
    for _attempt in range(200):
        # The walk keeps the current node (key, position, row, length, next rank) in locals and the path above
        # it on the stack; a child's vector is drawn once, when the walk steps down to it.
        # int64 and bool, not literals: a literal 0 or False made Numba compile _select_walk twice
        d = np.int64(0)
        ckey = root_key
        cpos = 0.0
        cr = np.int64(0)
        if random_vectors:
            lp, cln, crow = node_vector(kind, table, params, cut, ckey, vbuf[0], np.int64(-1), 0.0)
        else:
            crow = table_row(table, params, ckey, -1, 0.0)
            cln = table.shape[1]
        n = np.int64(0)
        pruned = np.bool_(False)
        shrunk = np.bool_(False)
        while True:
            status, d, ckey, cpos, cr, crow, cln, n, x, pruned, shrunk = _select_walk(
                kind, table, tails, params, cut, skey, spos, snext, srow, slen, vbuf, pbuf, dbuf, pmax,
                d, ckey, cpos, cr, crow, cln, n, x, pruned, shrunk)
            if status == 0:
                break
            scap *= 2  # a deep path: double the stack and resume
            skey = _grow(skey, scap)
            spos = _grow(spos, scap)
            snext = _grow(snext, scap)
            srow = _grow(srow, scap)
            slen = _grow(slen, scap)
            if random_vectors:
                vbuf = _grow_rows(vbuf, scap, d + 1)
        if shrunk or n >= pmax or not pruned:  # done, or the whole (finite) tree lies below x
            break
        # Too few nodes below x: N(x) grows like e^x, so step x up by the missing factor and a margin (more when
        # the last step found nothing new: a lattice law's next level may be a whole span away).
        x = x + math.log(pmax / max(n, 1)) + (0.25 if n > prev_n else 1.0)
        prev_n = n

    m = min(n, pmax)
    if n > pmax:
        select_pairs(pbuf, dbuf, pmax - 1, n)
    deepest = 0
    for i in range(m):
        if dbuf[i] > deepest:
            deepest = dbuf[i]
    srt = radix_sort_f8(pbuf, acc, m)
    total = 0.0
    last = np.inf
    for i in range(m):
        last = srt[i]
        total += math.exp(-last)
        acc[i] = total
    for i in range(m, pmax):  # a finite tree (cannot happen for a law whose every node has a child)
        acc[i] = total
    if m < pmax:
        last = np.inf
    return deepest, last


@njit(cache=True, nogil=True)
def frontier_batch(kind, table, tails, params, cut, keys, pmax, width, x0, acc, deepest, last, lo, hi):
    """Replicates lo .. hi - 1 (root key keys[j]) into acc[j]; x0 is the walk's starting level (see
    frontier_select_one)."""
    for j in range(lo, hi):
        dd, lastpos = frontier_select_one(kind, table, tails, params, cut, keys[j], pmax, x0, acc[j], width)
        deepest[j] = dd
        last[j] = lastpos



# ---------------------------------------------------------------------------------------------------------
# The floor: what any simulation of such a tree must do per node, and nothing more.


@njit(cache=True)
def floor_one(kind, table, params, cut, key, n, width, out):
    """n nodes below key: draw each node's randomness (its vector's top entry) and write a position into out
    (a ring)."""
    buf = np.empty(max(width, 1))
    acc = 0.0
    mask = out.shape[0] - 1
    for i in range(n):
        acc -= node_top(kind, table, params, cut, child_key(key, i), buf, -1, 0.0)
        out[i & mask] = acc


@njit(cache=True, nogil=True)
def floor_batch(kind, table, params, cut, keys, n, width, out, lo, hi):
    """For replicates lo .. hi - 1, n nodes each: draw each node's randomness (its vector's top entry) and write a
    position."""
    for j in range(lo, hi):
        floor_one(kind, table, params, cut, keys[j], n, width, out[j])


# ---------------------------------------------------------------------------------------------------------
# Sequoia's static-tree dynamic program (brw.sequoia has the recurrence).


@njit(cache=True)
def sequoia_program(p, n, unlimited, H, c, s_arg, j_arg):
    """Fill the program's tables for trees of 1..n nodes under L = c.shape[0] depth limits at once.

    Level index l holds trees of at most l + 1 levels; with ``unlimited`` (L = 1) a tree's children are
    trees of the same table. H[l, j, m]: best sum over j children (ranks 1..j) holding m nodes in all;
    s_arg[l, j, m]: the nodes of child j there; c[l, k]: best tree of k nodes (-inf where none fits);
    j_arg[l, k]: its number of children. H must come filled with -inf. Candidates built on an infeasible
    size are -inf (or NaN when p_j = 0) and never win the strict comparison.
    """
    L = c.shape[0]
    W = p.shape[0]
    for l in range(L):
        H[l, 0, 0] = 0.0
    for m in range(1, n + 1):
        for l in range(L):
            best = H[l, 0, m - 1]
            arg = 0
            for j in range(1, W + 1):
                if H[l, j, m - 1] > best:
                    best = H[l, j, m - 1]
                    arg = j
            c[l, m] = 1.0 + best
            j_arg[l, m] = arg
        if m == n:
            break
        for l in range(L):
            child = l if unlimited else l - 1
            if child < 0:
                continue
            for j in range(1, min(W, m) + 1):
                pj = p[j - 1]
                best = -np.inf
                arg = 0
                for a in range(1, m - j + 2):  # the other j - 1 children hold at least j - 1 nodes
                    x = H[l, j - 1, m - a] + pj * c[child, a]
                    if x > best:
                        best = x
                        arg = a
                H[l, j, m] = best
                s_arg[l, j, m] = arg


# ---------------------------------------------------------------------------------------------------------
# The best chain: the k-node path below the root of largest sum of path probabilities (brw.deployment).


@njit(cache=True)
def best_chain_one(kind, table, tails, params, cut, root_key, kmax, top, width, best, greedy, budget):
    """Exact branch and bound over the chains below root_key: best[j - 1] = the largest sum of path
    probabilities over the chains of j nodes (a path from a child of the root down j levels), greedy[j - 1] the
    sum along the chain of most probable children, for j = 1..kmax. Returns the nodes visited, or -1 when the
    search needed more than ``budget`` nodes (best is then a lower bound).

    A chain through a node c at depth d, of j >= d nodes, is worth at most S + pi(c) (1 + top + ... +
    top^(j - d)), S the sum over c and its ancestors less pi(c): every later node has at most ``top`` times
    its parent's probability (``top``: the largest probability any node's vector can hold). A child is entered
    only if that bound beats the best chain found so far for some j; children come in decreasing probability,
    so the first that fails ends its siblings too. The search starts down the greedy chain."""
    bufs = np.empty((kmax + 1, max(width, 1)))
    keys = np.empty(kmax + 1, dtype=np.uint64)
    rows = np.zeros(kmax + 1, dtype=np.int64)
    ns = np.zeros(kmax + 1, dtype=np.int64)
    lpi = np.zeros(kmax + 1)
    ssum = np.zeros(kmax + 1)
    nxt = np.zeros(kmax + 1, dtype=np.int64)
    geo = np.empty(kmax + 1)  # geo[m] = 1 + top + ... + top^m
    geo[0] = 1.0
    for m in range(1, kmax + 1):
        geo[m] = geo[m - 1] * top + 1.0
    for j in range(kmax):
        best[j] = 0.0
        greedy[j] = 0.0
    keys[0] = root_key
    _, n0, row0 = node_vector(kind, table, params, cut, root_key, bufs[0], np.int64(-1), 0.0)
    rows[0] = row0
    ns[0] = n0
    visited = 0
    d = 0
    on_greedy = True
    while d >= 0:
        lp = table[rows[d]] if kind == KIND_TABLE else bufs[d]
        r = nxt[d]
        clp = rank_lp(lp, ns[d], tails[rows[d]], r)
        if clp == _NEG_INF:  # no more children
            on_greedy = False
            d -= 1
            continue
        cl = lpi[d] + clp
        pi = math.exp(cl)
        useful = False
        for j in range(d + 1, kmax + 1):
            if ssum[d] + pi * geo[j - d - 1] > best[j - 1]:
                useful = True
                break
        if not useful:  # neither this child nor any later sibling can improve a chain
            on_greedy = False
            d -= 1
            continue
        nxt[d] = r + 1
        s = ssum[d] + pi
        if s > best[d]:
            best[d] = s
        if on_greedy:
            greedy[d] = s
        visited += 1
        if visited > budget:
            return -1
        if d + 1 == kmax:
            on_greedy = False
            continue
        ckey = child_key(keys[d], r)
        if kind == KIND_TABLE:
            edge = -clp if params[0] <= ROWS_EDGE else 0.0  # EDGE, RUN, PREFIX draw a row given the edge
            rows[d + 1] = table_row(table, params, ckey, rows[d], edge)
            ns[d + 1] = table.shape[1]
        else:
            _, cn, _ = node_vector(kind, table, params, cut, ckey, bufs[d + 1], np.int64(-1), 0.0)
            ns[d + 1] = cn
            rows[d + 1] = 0
        keys[d + 1] = ckey
        lpi[d + 1] = cl
        ssum[d + 1] = s
        nxt[d + 1] = 0
        d += 1
    return visited


@njit(cache=True, nogil=True)
def best_chain_batch(kind, table, tails, params, cut, keys, kmax, top, width, best, greedy, visited, budget, lo, hi):
    """best_chain_one for replicates lo .. hi - 1 (root key keys[j], into best[j], greedy[j], visited[j])."""
    for j in range(lo, hi):
        visited[j] = best_chain_one(kind, table, tails, params, cut, keys[j], kmax, top, width, best[j],
                                    greedy[j], budget)


# ---------------------------------------------------------------------------------------------------------
# Drafting policies (brw.policies): trees a drafter picks, scored by the verifier on the frontier's own trees.
#
# A drafter sees, at each node, log-weights over the node's children (the verifier's ranks): the verifier's own
# log p, or the sorted vector of a law of its own drawn from the node's key under another salt and laid on the
# verifier's ranks in order (okind >= 0; the drafter proposes no more children than that vector holds). The
# weights are divided by a temperature T and, for sigma > 0, moved by sigma times standard normals from the
# node's own noise stream, then normalised: that is q. The drafter's candidates are the children in decreasing
# q; a table row's tail atoms (the verifier's q only) follow its explicit entries, tempered and not noised.
# Keys, vectors and children are the verifier's, drawn exactly as the frontier kernels draw them, so a policy's
# tree and the optimal frontier are scored on the same random tree (common random numbers).

from brw.streams import DRAFTER as _DRAFTER, NOISE as _NOISE  # noqa: E402  (a node's drafter noise stream and own vector)


@njit(cache=True)
def drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, key, prow,
                       vbuf, obuf, work, idx, cap, crank, clq):
    """The drafter's view of the node ``key`` (prow: its parent's row, table laws). The first m <= cap
    candidates, best first, go to crank[:m] (verifier ranks) and clq[:m] (drafter log-probabilities).
    Returns (m, lp, n, row, lz, tail): the node's verifier vector as ``node_vector`` gives it, the drafter's
    log-normaliser and whether the row's tail atoms follow as further candidates (``drafter_candidate``)."""
    lp, n, row = node_vector(kind, table, params, cut, key, vbuf, prow, 0.0)
    nv = n
    while nv > 0 and lp[nv - 1] == _NEG_INF:
        nv -= 1
    m = nv
    base = lp
    if okind >= 0:
        olp, on, _ = node_vector(okind, otable, oparams, ocut, key ^ _DRAFTER, obuf, np.int64(-1), 0.0)
        while on > 0 and olp[on - 1] == _NEG_INF:
            on -= 1
        m = min(nv, on)
        base = olp
    tail = okind < 0 and nv == n and tails.shape[1] > 0
    invT = 1.0 / T
    s = stream_start(key ^ _NOISE)
    mx = _NEG_INF
    for r in range(m):
        w = base[r] * invT
        if sigma > 0.0:
            z, s = next_normal(s)
            w += sigma * z
        work[r] = w
        if w > mx:
            mx = w
    lz = 0.0
    if (T != 1.0 or sigma > 0.0) and m > 0:  # q = p itself is left untouched (no round-off)
        tot = 0.0
        for r in range(m):
            tot += math.exp(work[r] - mx)
        if tail:
            for g in range(tails.shape[1]):
                cnt = tails[row, g, 1]
                if cnt > 0.0:
                    tot += cnt * math.exp(tails[row, g, 0] * invT - mx)
        lz = mx + math.log(tot)
    c = min(m, cap)
    if sigma == 0.0:  # q keeps the order of the ranks it is laid on
        for r in range(c):
            crank[r] = r
            clq[r] = work[r] - lz
    elif c > 0:
        for r in range(m):
            idx[r] = r
            work[r] = -work[r]
        if m > c:
            select_pairs(work, idx, c - 1, m)
        order = np.argsort(work[:c])
        for i in range(c):
            crank[i] = idx[order[i]]
            clq[i] = -work[order[i]] - lz
    return c, lp, n, row, lz, tail and c == m


@njit(cache=True, inline="always")
def drafter_candidate(r, m, crank, clq, tails, row, n, lz, T, tail):
    """(verifier rank, drafter log-probability) of the drafter's candidate r; rank -1 when there is none."""
    if r < m:
        return crank[r], clq[r]
    if tail:
        lq = tail_lp(tails, row, r - m)
        if lq > _NEG_INF:
            return n + r - m, lq / T - lz
    return -1, _NEG_INF


@njit(cache=True, inline="always")
def _verifier_lp(lp, n, tails, row, vr):
    return lp[vr] if vr < n else tail_lp(tails, row, vr - n)


@njit(cache=True)
def drafted_best_first_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key,
                           pmax, width, owidth, acc):
    """The drafter's best-first tree (SpecExec): the pmax nodes of largest drafter path probability, popped in
    order; acc[i] = the verifier's sum of path probabilities over the first i + 1. Heap entries are candidates
    (drafter position, parent's pop index, rank among the parent's candidates); popping one pushes its next
    sibling and its own first candidate, the parent's view drawn again (as frontier_one does)."""
    vbuf = np.empty(max(width, 1))
    obuf = np.empty(max(owidth, 1))
    work = np.empty(max(width, 1))
    idx = np.empty(max(width, 1), dtype=np.int64)
    crank = np.empty(pmax, dtype=np.int64)
    clq = np.empty(pmax)
    tkey = np.empty(pmax + 1, dtype=np.uint64)  # node 0 is the root, node i the i-th popped
    tprow = np.empty(pmax + 1, dtype=np.int64)  # the row its vector is drawn after (its parent's)
    tv = np.empty(pmax + 1)  # verifier position
    tq = np.empty(pmax + 1)  # drafter position
    hq = np.empty(pmax + 2)
    hkey = np.zeros(pmax + 2, dtype=np.uint64)
    hr = np.empty(pmax + 2, dtype=np.int32)
    hd = np.zeros(pmax + 2, dtype=np.int32)
    hp = np.empty(pmax + 2, dtype=np.int32)
    tkey[0] = root_key
    tprow[0] = -1
    tv[0] = 0.0
    tq[0] = 0.0
    m, lp, n, row, lz, tail = drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams, ocut, T,
                                                 sigma, root_key, np.int64(-1), vbuf, obuf, work, idx, np.int64(pmax),
                                                 crank, clq)
    nh = 0
    vr, lq = drafter_candidate(0, m, crank, clq, tails, row, n, lz, T, tail)
    if vr >= 0:
        _heap_set(hq, hkey, hr, hd, hp, 0, -lq, 0, 0, 0, 0)
        nh = np.int64(1)
    total = 0.0
    for i in range(1, pmax + 1):
        if nh == 0:  # the drafter proposes no more nodes
            for j in range(i - 1, pmax):
                acc[j] = total
            return
        q = hq[0]
        par = hp[0]
        r = hr[0]
        m, lp, n, row, lz, tail = drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams, ocut,
                                                     T, sigma, tkey[par], tprow[par], vbuf, obuf, work, idx,
                                                     np.int64(pmax), crank, clq)
        vr, lq = drafter_candidate(r, m, crank, clq, tails, row, n, lz, T, tail)
        vpos = tv[par] - _verifier_lp(lp, n, tails, row, vr)
        ckey = child_key(tkey[par], vr)
        tkey[i] = ckey
        tprow[i] = row
        tv[i] = vpos
        tq[i] = q
        total += math.exp(-vpos)
        acc[i - 1] = total
        vr2, lq2 = drafter_candidate(r + 1, m, crank, clq, tails, row, n, lz, T, tail)
        if vr2 >= 0:
            hq[0] = tq[par] - lq2
            hr[0] = r + 1
            _sift_down(hq, hkey, hr, hd, hp, 0, nh)
        else:
            nh -= 1
            if nh > 0:
                _heap_set(hq, hkey, hr, hd, hp, 0, hq[nh], hkey[nh], hr[nh], hd[nh], hp[nh])
                _sift_down(hq, hkey, hr, hd, hp, 0, nh)
        m, lp, n, row, lz, tail = drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams, ocut,
                                                     T, sigma, ckey, tprow[i], vbuf, obuf, work, idx,
                                                     np.int64(pmax), crank, clq)
        vr3, lq3 = drafter_candidate(0, m, crank, clq, tails, row, n, lz, T, tail)
        if vr3 >= 0:
            _heap_set(hq, hkey, hr, hd, hp, nh, q - lq3, 0, 0, 0, i)
            nh += 1
            _sift_up(hq, hkey, hr, hd, hp, nh - 1)


@njit(cache=True)
def drafted_static_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key,
                       parent, rank, order, width, owidth, acc):
    """A static tree in the drafter's ranks: node i is candidate rank[i] of node parent[i] (-1: the root), the
    nodes listed parents first. ``order`` visits them with each parent's children together, so each parent's
    view is drawn once. acc[i] = the verifier's sum of path probabilities over nodes 0..i (nodes the drafter
    cannot propose count 0, and so do their subtrees); entries beyond the tree repeat its total."""
    S = parent.shape[0]
    cap = 1
    for i in range(S):
        if rank[i] + 1 > cap:
            cap = rank[i] + 1
    vbuf = np.empty(max(width, 1))
    obuf = np.empty(max(owidth, 1))
    work = np.empty(max(width, 1))
    idx = np.empty(max(width, 1), dtype=np.int64)
    crank = np.empty(cap, dtype=np.int64)
    clq = np.empty(cap)
    nkey = np.empty(S, dtype=np.uint64)
    nprow = np.empty(S, dtype=np.int64)
    npos = np.empty(S)
    val = np.empty(S)
    cur = -2
    m, lp, n, row, lz, tail = 0, vbuf, 0, 0, 0.0, False
    pkey = root_key
    ppos = 0.0
    for j in range(S):
        i = order[j]
        p = parent[i]
        if p != cur:
            cur = p
            pkey = root_key if p < 0 else nkey[p]
            ppos = 0.0 if p < 0 else npos[p]
            m = 0
            tail = False
            if ppos < np.inf:
                m, lp, n, row, lz, tail = drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams,
                                                             ocut, T, sigma, pkey, -1 if p < 0 else nprow[p], vbuf,
                                                             obuf, work, idx, np.int64(cap), crank, clq)
        vr, lq = drafter_candidate(rank[i], m, crank, clq, tails, row, n, lz, T, tail)
        if vr < 0:
            npos[i] = np.inf
            nkey[i] = 0
            nprow[i] = -1
            val[i] = 0.0
            continue
        npos[i] = ppos - _verifier_lp(lp, n, tails, row, vr)
        nkey[i] = child_key(pkey, vr)
        nprow[i] = row
        val[i] = math.exp(-npos[i])
    total = 0.0
    for i in range(acc.shape[0]):
        if i < S:
            total += val[i]
        acc[i] = total


@njit(cache=True)
def drafted_eagle_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key, k, d,
                      width, owidth, acc):
    """EAGLE-2's tree: the root's top-k candidates, then d - 1 times: expand each of the last level's k best (by
    drafter path probability) into its top-k candidates; acc[i] = the verifier's sum of path probabilities over
    the i + 1 generated nodes of largest drafter path probability (ties: generation order, so every prefix is
    prefix-closed); entries beyond the generated nodes repeat the total."""
    S = k + k * k * (d - 1)
    vbuf = np.empty(max(width, 1))
    obuf = np.empty(max(owidth, 1))
    work = np.empty(max(width, 1))
    idx = np.empty(max(width, 1), dtype=np.int64)
    crank = np.empty(k, dtype=np.int64)
    clq = np.empty(k)
    gkey = np.empty(S, dtype=np.uint64)
    gprow = np.empty(S, dtype=np.int64)
    gv = np.empty(S)
    gq = np.empty(S)
    sel = np.empty(k, dtype=np.int64)
    nsel = 1
    sel[0] = -1  # the root
    cnt = 0
    for _level in range(d):
        start = cnt
        for t in range(nsel):
            s = sel[t]
            skey = root_key if s < 0 else gkey[s]
            sv = 0.0 if s < 0 else gv[s]
            sq = 0.0 if s < 0 else gq[s]
            m, lp, n, row, lz, tail = drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams,
                                                         ocut, T, sigma, skey, -1 if s < 0 else gprow[s], vbuf, obuf,
                                                         work, idx, np.int64(k), crank, clq)
            for r in range(k):
                vr, lq = drafter_candidate(r, m, crank, clq, tails, row, n, lz, T, tail)
                if vr < 0:
                    break
                gkey[cnt] = child_key(skey, vr)
                gprow[cnt] = row
                gv[cnt] = sv - _verifier_lp(lp, n, tails, row, vr)
                gq[cnt] = sq - lq
                cnt += 1
        if cnt == start:
            break
        best = np.argsort(gq[start:cnt], kind="mergesort")
        nsel = min(k, cnt - start)
        for t in range(nsel):
            sel[t] = start + best[t]
    order = np.argsort(gq[:cnt], kind="mergesort")
    total = 0.0
    for i in range(acc.shape[0]):
        if i < cnt:
            total += math.exp(-gv[order[i]])
        acc[i] = total


@njit(cache=True)
def drafter_accuracy(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, base, nodes, W,
                     width, owidth, out):
    """out[r] += the verifier's probability of the drafter's candidate r (r < W) at each of the nodes
    child_key(base, 0 .. nodes - 1), each drawn as a root: per-rank accuracies summed (Medusa's, and Sequoia's
    positional vector, once divided by nodes)."""
    vbuf = np.empty(max(width, 1))
    obuf = np.empty(max(owidth, 1))
    work = np.empty(max(width, 1))
    idx = np.empty(max(width, 1), dtype=np.int64)
    crank = np.empty(W, dtype=np.int64)
    clq = np.empty(W)
    for j in range(nodes):
        m, lp, n, row, lz, tail = drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams, ocut,
                                                     T, sigma, child_key(base, j), np.int64(-1), vbuf, obuf, work, idx,
                                                     np.int64(W), crank, clq)
        for r in range(W):
            vr, lq = drafter_candidate(r, m, crank, clq, tails, row, n, lz, T, tail)
            if vr < 0:
                break
            out[r] += math.exp(_verifier_lp(lp, n, tails, row, vr))


@njit(cache=True, nogil=True)
def drafted_best_first_batch(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys, pmax,
                             width, owidth, acc, lo, hi):
    for j in range(lo, hi):
        drafted_best_first_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys[j],
                               pmax, width, owidth, acc[j])


@njit(cache=True, nogil=True)
def drafted_static_batch(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys, parent,
                         rank, order, width, owidth, acc, lo, hi):
    for j in range(lo, hi):
        drafted_static_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys[j], parent,
                           rank, order, width, owidth, acc[j])


@njit(cache=True, nogil=True)
def drafted_eagle_batch(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys, k, d, width,
                        owidth, acc, lo, hi):
    for j in range(lo, hi):
        drafted_eagle_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys[j], k, d,
                          width, owidth, acc[j])
