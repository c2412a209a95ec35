"""Numba kernels of the sampled-draft policies (``brw.sampled``, ``brw.policies``): arithmetic on arrays only.

A randomized drafter samples its draft from q and a lossless verifier accepts part of it (docs/theory.md
section 9). The kernels score such schemes on the frontier's own replicate trees: every node's verifier vector
is drawn from its key exactly as the frontier kernels draw it, and the drafter's q from the same key exactly as
the deterministic policies see it (``brw._kernels``, "Drafting policies"), so a sampled scheme, the
deterministic policies and the optimal frontier are scored on the same tree (common random numbers).

A node's *slots* list everything the verifier can sample there: its explicit children (one token each, in
verifier rank order) and, for a table row with tail groups, each group as one slot of ``count`` equal atoms.
sp[s] and sq[s] are the verifier's and the drafter's probability of one token of slot s, sc[s] its count and
sr[s] the verifier rank of its first token (a child's key is ``child_key(key, rank)``). A drafted tail atom is
split off its group into a singleton slot, so that a token drawn without replacement can be excluded alone.

Two kernels:

- ``chain_walk_one``: the exact expectations of a sampled chain of k tokens given the tree's vectors, as sums
  over the tree's paths x of length j <= k of a node term: token-by-token speculative sampling
  prod min(p, q); block verification min(W(parent) p, Q(parent) q), W its own recursion; the coupling ceiling
  min(P(x), Q(x)) (no lossless verification of one sampled chain exceeds it). Depth first; a node whose
  ceiling term times its importance factor is below ``tau`` is either dropped, its whole subtree's share
  bounded by that term times the levels left and added to ``bound`` (truncation: the result is exact to within
  ``bound``), or kept with probability term / tau and then counted tau / term times (Russian roulette:
  unbiased; every term of a kept node's subtree is at most its ceiling term, so none is heavy-tailed). The subtrees below a tail group's atoms, which cannot all be walked, are always
  represented by one atom drawn uniformly, counted ``count`` times (unbiased).
- ``tree_scheme_one``: multi-draft schemes by Monte Carlo over the drafts: draw a k-ary tree of d levels from
  q (with replacement: SpecInfer; without: RSD and traversal), breadth first, and for each node budget P take
  its first P nodes; the verifier's randomness is integrated out exactly given the drafts (recursive rejection
  sampling top down, or traversal verification's leaf-to-root sequence of tests).

Random draws (drafts, roulette, tail atoms) come from hashes of node keys with salts of their own, so every
number is a function of the root key alone.
"""

import math

import numpy as np
from numba import njit

from brw._kernels import child_key, drafter_candidates, mix64, next_uniform, stream_start

_NEG = -np.inf
_TWO_M53 = 1.0 / 9007199254740992.0
_S11 = np.uint64(11)
_ROULETTE = np.uint64(0x9B05688C2B3E6C1F)  # a node's roulette draw
_TAIL = np.uint64(0x1F83D9ABFB41BD6B)  # which atom of a tail group stands for the group
_DRAFTS = np.uint64(0x5BE0CD19137E2179)  # the drafts of one Monte Carlo draw
_DRAW = np.uint64(0xCBBB9D5DC1059ED8)

#: Scheme codes of ``tree_scheme_one``.
SCHEME_SPECINFER = 0  # k drafts per node with replacement, recursive rejection sampling (SpecInfer)
SCHEME_RSD = 1  # k drafts per node without replacement, recursive rejection sampling (RSD)
SCHEME_TRAVERSAL = 2  # k drafts per node without replacement, traversal verification (Weng et al. 2025)


@njit(cache=True, inline="always")
def hash_uniform(key, salt):
    """A uniform on (0, 1) that is a function of (key, salt) alone."""
    return ((mix64(key ^ salt) >> _S11) + 0.5) * _TWO_M53


# ---------------------------------------------------------------------------------------------------------
# A node's slots.


@njit(cache=True)
def node_slots(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, key, prow, vbuf, obuf,
               work, idx, crank, clq, sp, sq, sc, sr):
    """The node ``key``'s slots into sp, sq, sc, sr (see the module's docstring); prow is its parent's row.
    Returns (slots, row). crank and clq must hold at least the node's explicit children (the table width)."""
    m, lp, n, row, lz, tail = drafter_candidates(kind, table, tails, params, cut, okind, otable, oparams, ocut, T,
                                                 sigma, key, np.int64(prow), vbuf, obuf, work, idx,
                                                 np.int64(crank.shape[0]), crank, clq)
    nv = n
    while nv > 0 and lp[nv - 1] == _NEG:
        nv -= 1
    for r in range(nv):
        sp[r] = math.exp(lp[r])
        sq[r] = 0.0
        sc[r] = 1.0
        sr[r] = r
    for i in range(m):
        sq[crank[i]] = math.exp(clq[i])
    ns = nv
    if nv == n and tails.shape[1] > 0:  # the row's tail groups (the frontier reaches them only after n)
        off = 0.0
        invT = 1.0 / T
        for g in range(tails.shape[1]):
            cnt = tails[row, g, 1]
            if cnt > 0.0:
                sp[ns] = math.exp(tails[row, g, 0])
                sq[ns] = math.exp(tails[row, g, 0] * invT - lz) if tail else 0.0
                sc[ns] = cnt
                sr[ns] = n + np.int64(off)
                ns += 1
            off += cnt
    return ns, row


# ---------------------------------------------------------------------------------------------------------
# The sampled chain: exact level sums given the tree.


@njit(cache=True)
def chain_walk_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key, K, tau,
                   roulette, width, owidth, tok, blk, ceil):
    """Level sums of a sampled chain of K tokens on the tree below root_key: tok[j], blk[j], ceil[j] (j < K)
    receive the sum over depth-(j + 1) paths of the token-by-token, block and coupling-ceiling terms (so E[X]
    of a chain of k <= K tokens is the sum of the first k). A node whose ceiling term (times its importance) is
    below tau is dropped (roulette False: that term times the levels below it goes to the bound) or kept with
    probability term / tau and its importance raised to make it tau (roulette True). Returns (bound, nodes):
    the truncation bound (0 with roulette) and the nodes visited.

    A node carries P, Q, T and W already multiplied by its importance (every recursion is homogeneous of
    degree one in them), so that deep paths neither underflow nor lose precision: a kept node's ceiling term is
    at least tau."""
    cap = max(width, 1)
    vbuf = np.empty(cap)
    obuf = np.empty(max(owidth, 1))
    work = np.empty(cap)
    idx = np.empty(cap, dtype=np.int64)
    crank = np.empty(cap, dtype=np.int64)
    clq = np.empty(cap)
    S = cap + tails.shape[1]
    # per depth: the node's slots and its (importance-weighted) path terms
    sp = np.empty((K, S))
    sq = np.empty((K, S))
    sc = np.empty((K, S))
    sr = np.empty((K, S), dtype=np.int64)
    ns = np.zeros(K, dtype=np.int64)
    nxt = np.zeros(K, dtype=np.int64)
    nkey = np.zeros(K, dtype=np.uint64)
    nrow = np.zeros(K, dtype=np.int64)
    nP = np.empty(K)
    nQ = np.empty(K)
    nT = np.empty(K)
    nW = np.empty(K)
    for j in range(K):
        tok[j] = 0.0
        blk[j] = 0.0
        ceil[j] = 0.0
    bound = 0.0
    visited = 1
    ns[0], nrow[0] = node_slots(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key,
                                np.int64(-1), vbuf, obuf, work, idx, crank, clq, sp[0], sq[0], sc[0], sr[0])
    nkey[0] = root_key
    nP[0] = 1.0
    nQ[0] = 1.0
    nT[0] = 1.0
    nW[0] = 1.0
    # every node's own level terms are added when its parent is first visited (all children at once)
    d = 0
    first = True
    while d >= 0:
        if first:
            first = False
            for s in range(ns[d]):
                p = sp[d, s]
                q = sq[d, s]
                c = sc[d, s]
                tok[d] += c * nT[d] * min(p, q)
                blk[d] += c * min(nW[d] * p, nQ[d] * q)
                ceil[d] += c * min(nP[d] * p, nQ[d] * q)
        if d + 1 >= K or nxt[d] >= ns[d]:
            d -= 1
            continue
        s = nxt[d]
        nxt[d] += 1
        p = sp[d, s]
        q = sq[d, s]
        cnt = sc[d, s]
        rank = sr[d, s]
        mult = 1.0
        if cnt > 1.0:  # a tail group: one atom, drawn uniformly, stands for all
            a = np.int64(hash_uniform(nkey[d] ^ np.uint64(s + 1), _TAIL) * cnt)
            rank += min(a, np.int64(cnt) - 1)
            mult = cnt
        cP = nP[d] * p * mult
        cQ = nQ[d] * q * mult
        cT = nT[d] * min(p, q) * mult
        cW = min(nW[d] * p, nQ[d] * q) * mult
        cc = min(cP, cQ)
        if not cc > 0.0:
            continue
        ckey = child_key(nkey[d], rank)
        if cc < tau:
            if not roulette:
                bound += cc * (K - d - 1)
                continue
            if hash_uniform(ckey, _ROULETTE) * tau >= cc:
                continue
            f = tau / cc
            cP *= f
            cQ *= f
            cT *= f
            cW *= f
        c = d + 1
        nkey[c] = ckey
        ns[c], nrow[c] = node_slots(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, ckey,
                                    nrow[d], vbuf, obuf, work, idx, crank, clq, sp[c], sq[c], sc[c], sr[c])
        nP[c] = cP
        nQ[c] = cQ
        nT[c] = cT
        nW[c] = cW
        nxt[c] = 0
        d = c
        first = True
        visited += 1
    return bound, visited


@njit(cache=True, nogil=True)
def chain_walk_batch(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys, K, tau,
                     roulette, width, owidth, tok, blk, ceil, bound, nodes, lo, hi):
    for j in range(lo, hi):
        b, v = chain_walk_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys[j], K,
                              tau, roulette, width, owidth, tok[j], blk[j], ceil[j])
        bound[j] = b
        nodes[j] = v


# ---------------------------------------------------------------------------------------------------------
# Multi-draft trees: drafting, then the verifier's expectation given the drafts.


@njit(cache=True)
def _pick_slot(sq, sc, excl, ns, total, u):
    """The slot of a token drawn from q (mass sq * sc, slots marked in excl left out; total their sum)."""
    x = u * total
    last = -1
    for s in range(ns):
        if excl[s] != 0 or sq[s] <= 0.0:
            continue
        last = s
        x -= sq[s] * sc[s]
        if x < 0.0:
            return s
    return last


@njit(cache=True)
def draft_tree(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key, dkey, k, d,
               replace, size, vbuf, obuf, work, idx, crank, clq, sp, sq, sc, sr, ns, tok, fchild, nchild, depth):
    """Draft a k-ary tree of d levels below root_key, breadth first, at most ``size`` nodes besides the root:
    node 0 is the root, node i > 0 is token slot tok[i] of its parent's slots (children of a node are
    consecutive, fchild[i] the first, nchild[i] how many). Each node's children are k draws from its q (with
    replacement, or without it), from the stream of its draft key (dkey for the root, child_key(draft key, j)
    for its j-th child). A drafted tail atom is split into a slot of its own. Only nodes that draft children
    get their slots. Returns the number of nodes, root included."""
    width = sp.shape[1]
    dkeys = np.empty(size + 1, dtype=np.uint64)
    vkeys = np.empty(size + 1, dtype=np.uint64)
    prow = np.empty(size + 1, dtype=np.int64)  # the parent's row (what a node's vector is drawn after)
    excl = np.zeros(width, dtype=np.int64)
    vkeys[0] = root_key
    dkeys[0] = dkey
    prow[0] = -1
    depth[0] = 0
    count = 1
    i = 0
    while i < count:
        fchild[i] = count
        nchild[i] = 0
        ns[i] = 0
        if depth[i] < d and count <= size:
            ns[i], row = node_slots(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma,
                                    vkeys[i], prow[i], vbuf, obuf, work, idx, crank, clq, sp[i], sq[i], sc[i],
                                    sr[i])
            total = 0.0
            for s in range(ns[i]):
                excl[s] = 0
                total += sq[i, s] * sc[i, s]
            st = stream_start(dkeys[i])
            for j in range(k):
                if count > size or total <= 0.0:
                    break
                u, st = next_uniform(st)
                s = _pick_slot(sq[i], sc[i], excl, ns[i], total, u)
                if s < 0:
                    break
                if sc[i, s] > 1.0:  # split the drawn atom off its tail group
                    u2, st = next_uniform(st)
                    t = ns[i]
                    if t >= width:
                        break
                    a = min(np.int64(u2 * sc[i, s]), np.int64(sc[i, s]) - 1)
                    sp[i, t] = sp[i, s]
                    sq[i, t] = sq[i, s]
                    sc[i, t] = 1.0
                    sr[i, t] = sr[i, s] + a
                    sc[i, s] -= 1.0
                    excl[t] = 0
                    ns[i] += 1
                    s = t
                if not replace:
                    excl[s] = 1
                    total -= sq[i, s]
                c = count
                tok[c] = s
                depth[c] = depth[i] + 1
                dkeys[c] = child_key(dkeys[i], j)
                vkeys[c] = child_key(vkeys[i], sr[i, s])
                prow[c] = row
                nchild[i] += 1
                count += 1
        i += 1
    return count


@njit(cache=True)
def _residual(r, q, sc, ns):
    """r <- normalised max(r - q, 0) over the slots; returns the mass before normalising."""
    tot = 0.0
    for s in range(ns):
        v = r[s] - q[s]
        if v < 0.0:
            v = 0.0
        r[s] = v
        tot += v * sc[s]
    if tot > 0.0:
        for s in range(ns):
            r[s] /= tot
    return tot


@njit(cache=True)
def rrs_value(sp, sq, sc, ns, tok, fchild, nchild, depth, P, replace, r, qq, val):
    """E[accepted | drafts] of recursive rejection sampling (top down) on the tree's first P + 1 nodes (root
    included): val[i] = the expected accepted tokens below node i. With replacement the proposal stays q after
    a rejection; without it, q loses the rejected token and is renormalised (RSD)."""
    for i in range(P, -1, -1):
        n = ns[i]
        v = 0.0
        f = fchild[i]
        last = min(f + nchild[i], P + 1)
        if f < last:
            zp = 0.0
            zq = 0.0
            for s in range(n):
                zp += sp[i, s] * sc[i, s]
                zq += sq[i, s] * sc[i, s]
            for s in range(n):
                r[s] = sp[i, s] / zp
                qq[s] = sq[i, s] / zq
            reach = 1.0
            for c in range(f, last):
                x = tok[c]
                a = 1.0
                if qq[x] > 0.0 and r[x] < qq[x]:
                    a = r[x] / qq[x]
                v += reach * a * (1.0 + val[c])
                reach *= 1.0 - a
                if reach <= 0.0:
                    break
                _residual(r, qq, sc[i], n)
                if not replace:  # the next draft avoids x: q without x, renormalised
                    rest = 1.0 - qq[x] * sc[i, x]
                    qq[x] = 0.0
                    if rest > 0.0:
                        for s in range(n):
                            qq[s] /= rest
        val[i] = v
    return val[0]


@njit(cache=True)
def _load(sp, sq, sc, ns, i, mb, ms, L):
    """Level L of the traversal's path holds node i: M_b = its p, M_s = its q, each normalised."""
    n = ns[i]
    zp = 0.0
    zq = 0.0
    for s in range(n):
        zp += sp[i, s] * sc[i, s]
        zq += sq[i, s] * sc[i, s]
    for s in range(n):
        mb[L, s] = sp[i, s] / zp
        ms[L, s] = sq[i, s] / zq


@njit(cache=True)
def _delete(sc, ns, v, x, mb, ms, palpha, L):
    """The child of token slot x of node v (level L of the path) was rejected: update v's state."""
    n = ns[v]
    pv = palpha[L]
    tot = 0.0
    for s in range(n):
        w = pv * mb[L, s] - ms[L, s]
        if w > 0.0:
            tot += w * sc[v, s]
    if tot > 0.0:
        for s in range(n):
            w = pv * mb[L, s] - ms[L, s]
            mb[L, s] = (w if w > 0.0 else 0.0) / tot
        palpha[L] = tot / (tot + (1.0 - pv))  # (1 - pv) first: tot + 1 may round to 1
    else:  # M_b <= M_s: no residual; p_alpha 0 (or stays 1 when M_b = M_s and p_alpha = 1)
        palpha[L] = 1.0 if pv >= 1.0 else 0.0
    rest = 1.0 - ms[L, x] * sc[v, x]
    ms[L, x] = 0.0
    if rest > 0.0:
        for s in range(n):
            ms[L, s] /= rest


@njit(cache=True)
def traversal_value(sp, sq, sc, ns, tok, fchild, nchild, depth, P, mb, ms, palpha, ptr, stack):
    """E[accepted | drafts] of traversal verification (Weng et al. 2025) on the tree's first P + 1 nodes: a
    depth-first, leaf-to-root sequence of tests. The first leaf in post order (children in draft order) is
    accepted with probability p_alpha, its whole path with it; when it is rejected it is deleted and its
    parent u updated: S = sum [p_alpha(u) M_b(u) - M_s(u)]_+, M_b(u) <- [...]_+ / S, M_s(u) loses the token
    and is renormalised, p_alpha(u) <- S / (S + 1 - p_alpha(u)). A node whose children are all deleted is a
    leaf. A child's p_alpha is min(p_alpha(u) M_b(u)[x] / M_s(u)[x], 1) when the traversal enters it. mb, ms
    hold one slot vector per level of the current path."""
    reach = 1.0
    e = 0.0
    _load(sp, sq, sc, ns, np.int64(0), mb, ms, np.int64(0))
    palpha[0] = 1.0
    stack[0] = 0
    ptr[0] = fchild[0]
    L = np.int64(0)
    while True:
        u = stack[L]
        if ptr[L] < min(fchild[u] + nchild[u], P + 1):  # enter the next child
            c = ptr[L]
            ptr[L] += 1
            x = tok[c]
            pa = 0.0
            if ms[L, x] > 0.0:
                pa = min(palpha[L] * mb[L, x] / ms[L, x], 1.0)
            if fchild[c] < min(fchild[c] + nchild[c], P + 1):
                L += 1
                stack[L] = c
                ptr[L] = fchild[c]
                palpha[L] = pa
                _load(sp, sq, sc, ns, c, mb, ms, L)
                continue
            # a drafted leaf: test it, and delete it when rejected
            e += reach * pa * depth[c]
            reach *= 1.0 - pa
            if reach <= 0.0:
                return e
            _delete(sc, ns, u, x, mb, ms, palpha, L)
            continue
        # u's children are all deleted: u is a leaf; test it
        pa = palpha[L]
        e += reach * pa * depth[u]
        reach *= 1.0 - pa
        if L == 0 or reach <= 0.0:
            return e
        L -= 1
        _delete(sc, ns, stack[L], tok[u], mb, ms, palpha, L)


@njit(cache=True)
def tree_scheme_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key, scheme, k,
                    d, at, draws, first_draw, width, owidth, out):
    """out[a] = the mean over drafted trees first_draw .. first_draw + draws - 1 of E[accepted | drafts] on the
    tree's first at[a] nodes (``at`` ascending), for a scheme of ``SCHEME_*``."""
    size = at[at.shape[0] - 1]
    cap = max(width, 1)
    vbuf = np.empty(cap)
    obuf = np.empty(max(owidth, 1))
    work = np.empty(cap)
    idx = np.empty(cap, dtype=np.int64)
    crank = np.empty(cap, dtype=np.int64)
    clq = np.empty(cap)
    S = cap + tails.shape[1] + k
    n1 = size + 1
    sp = np.empty((n1, S))
    sq = np.empty((n1, S))
    sc = np.empty((n1, S))
    sr = np.empty((n1, S), dtype=np.int64)
    ns = np.zeros(n1, dtype=np.int64)
    tok = np.zeros(n1, dtype=np.int64)
    fchild = np.zeros(n1, dtype=np.int64)
    nchild = np.zeros(n1, dtype=np.int64)
    depth = np.zeros(n1, dtype=np.int64)
    r = np.empty(S)
    qq = np.empty(S)
    val = np.zeros(n1)
    levels = min(d, size) + 1  # the path is never deeper than the tree has nodes
    mb = np.empty((levels, S))
    ms = np.empty((levels, S))
    palpha = np.empty(levels)
    ptr = np.empty(levels, dtype=np.int64)
    stack = np.empty(levels, dtype=np.int64)
    for a in range(at.shape[0]):
        out[a] = 0.0
    replace = scheme == SCHEME_SPECINFER
    for m in range(draws):
        dkey = mix64(root_key ^ _DRAFTS ^ (np.uint64(first_draw + m + 1) * _DRAW))
        count = draft_tree(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, root_key, dkey,
                           k, d, replace, size, vbuf, obuf, work, idx, crank, clq, sp, sq, sc, sr, ns, tok, fchild,
                           nchild, depth)
        for a in range(at.shape[0]):
            P = min(at[a], count - 1)
            if scheme == SCHEME_TRAVERSAL:
                v = traversal_value(sp, sq, sc, ns, tok, fchild, nchild, depth, P, mb, ms, palpha, ptr, stack)
            else:
                v = rrs_value(sp, sq, sc, ns, tok, fchild, nchild, depth, P, replace, r, qq, val)
            out[a] += v
    for a in range(at.shape[0]):
        out[a] /= draws


@njit(cache=True, nogil=True)
def tree_scheme_batch(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys, scheme, k, d,
                      at, draws, width, owidth, out, lo, hi):
    for j in range(lo, hi):
        tree_scheme_one(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, keys[j], scheme,
                        k, d, at, draws, np.int64(0), width, owidth, out[j])


# ---------------------------------------------------------------------------------------------------------
# Drafter quality.


@njit(cache=True)
def drafter_distance(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, base, nodes, width,
                     owidth, out):
    """out[j] = (TV(p, q), KL(p || q), Bhattacharyya sum sqrt(p q), 1 - TV) at node child_key(base, j), each
    node drawn as a root, over every slot (a tail group's atoms counted)."""
    cap = max(width, 1)
    vbuf = np.empty(cap)
    obuf = np.empty(max(owidth, 1))
    work = np.empty(cap)
    idx = np.empty(cap, dtype=np.int64)
    crank = np.empty(cap, dtype=np.int64)
    clq = np.empty(cap)
    S = cap + tails.shape[1]
    sp = np.empty(S)
    sq = np.empty(S)
    sc = np.empty(S)
    sr = np.empty(S, dtype=np.int64)
    for j in range(nodes):
        n, _ = node_slots(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma,
                          child_key(base, j), np.int64(-1), vbuf, obuf, work, idx, crank, clq, sp, sq, sc, sr)
        tv = 0.0
        kl = 0.0
        bc = 0.0
        mn = 0.0
        for s in range(n):
            p = sp[s]
            q = sq[s]
            c = sc[s]
            tv += 0.5 * c * abs(p - q)
            mn += c * min(p, q)
            bc += c * math.sqrt(p * q)
            if p > 0.0:
                kl += c * p * (math.log(p / q) if q > 0.0 else np.inf)
        out[j, 0] = tv
        out[j, 1] = kl
        out[j, 2] = bc
        out[j, 3] = mn


_STEP = np.uint64(0xD6E8FEB86659FD93)  # the token a ratio step draws


@njit(cache=True)
def ratio_steps(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, base, n, width, owidth,
                out):
    """out[j] = log(p(x) / q(x)) with x drawn from q at node child_key(base, j) (each node drawn as a root): the
    steps of the likelihood-ratio walk that block verification's weights follow in the i.i.d. model."""
    cap = max(width, 1)
    vbuf = np.empty(cap)
    obuf = np.empty(max(owidth, 1))
    work = np.empty(cap)
    idx = np.empty(cap, dtype=np.int64)
    crank = np.empty(cap, dtype=np.int64)
    clq = np.empty(cap)
    S = cap + tails.shape[1]
    sp = np.empty(S)
    sq = np.empty(S)
    sc = np.empty(S)
    sr = np.empty(S, dtype=np.int64)
    excl = np.zeros(S, dtype=np.int64)
    for j in range(n):
        key = child_key(base, j)
        ns, _ = node_slots(kind, table, tails, params, cut, okind, otable, oparams, ocut, T, sigma, key, np.int64(-1),
                           vbuf, obuf, work, idx, crank, clq, sp, sq, sc, sr)
        total = 0.0
        for s in range(ns):
            total += sq[s] * sc[s]
        s = _pick_slot(sq, sc, excl, ns, total, hash_uniform(key, _STEP))
        out[j] = math.log(sp[s] / sq[s]) if sp[s] > 0.0 else -np.inf
