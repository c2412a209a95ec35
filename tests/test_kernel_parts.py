"""The kernels' building blocks against independent computations: the published splitmix64 stream, numpy's
partition and sort, and the laws of the normal and gamma samplers (standard errors, fixed seeds)."""

import math

import numpy as np
import pytest
from scipy import special, stats

from brw import _kernels as K
from brw import frontier, parse_law
from brw.kernel_law import GEM_MARGIN, gem_cut, kernel_args
from brw.streams import ZIGGURAT_R

MASK = (1 << 64) - 1


def splitmix64(state: int, n: int) -> list[int]:
    """Vigna's splitmix64 (the published constants), n outputs from ``state``."""
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def test_streams_are_splitmix64():
    """next_u64 is splitmix64 (its first output from 1234567 is the published 6457827717110365317) and
    next_uniform is its top 53 bits, centred in their cell."""
    assert splitmix64(1234567, 1) == [6457827717110365317]
    for state in (0, 1234567, 2**64 - 1, 0x0123456789ABCDEF):
        s = np.uint64(state)
        want = splitmix64(state, 5)
        for w in want:
            u, s = K.next_u64(np.uint64(s))  # (a compiled call hands the state back as a Python int)
            assert int(u) == w
        s = np.uint64(state)
        for w in want:
            u, s = K.next_uniform(np.uint64(s))
            assert u == ((w >> 11) + 0.5) / 2.0**53 and 0.0 < u < 1.0


@pytest.mark.parametrize("n, k", [(1, 0), (2, 0), (2, 1), (9, 4), (1000, 0), (1000, 999), (1000, 377),
                                  (30000, 0), (30000, 29999), (30000, 12345), (50000, 40000)])
@pytest.mark.parametrize("ties", [False, True])
def test_select_pairs_partitions_like_numpy(n, k, ties):
    """After select_pairs(a, b, k, n): a[k] is the k-th smallest of a[:n], nothing larger before it, nothing
    smaller after it, b moved along with a, and a[n:] untouched (the large sizes take the sampled-pivot path)."""
    rng = np.random.default_rng(n + k)
    a = rng.standard_normal(n + 5)
    if ties:
        a = np.round(a, 1)
    orig = a.copy()
    b = np.arange(n + 5, dtype=np.int32)
    K.select_pairs(a, b, k, n)
    assert a[k] == np.sort(orig[:n])[k]
    assert np.all(a[:k] <= a[k]) and np.all(a[k + 1:n] >= a[k])
    assert np.array_equal(orig[b[:n]], a[:n]) and np.array_equal(np.sort(b[:n]), np.arange(n))
    assert np.array_equal(a[n:], orig[n:]) and np.array_equal(b[n:], np.arange(n, n + 5))


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300, 5000])
def test_radix_sort_sorts_any_sign(n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n + 3) * 10.0 ** rng.integers(-5, 5, n + 3)
    a[: n // 3] = np.abs(a[: n // 3])  # positives, negatives, zeros, infinities and shared high digits
    if n > 5:
        a[[1, 2, 3]] = [0.0, -np.inf, np.inf]
        a[4:6] = [7.0, 7.0]
    orig = a.copy()
    tmp = np.empty(n + 3)
    out = K.radix_sort_f8(a, tmp, n)
    assert out is a or out is tmp
    assert np.array_equal(out[:n], np.sort(orig[:n]))
    same = np.full(n + 3, 2.5)  # every digit shared: no pass moves anything
    assert np.array_equal(K.radix_sort_f8(same, np.empty(n + 3), n)[:n], same[:n])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 13, 40, 1000])
def test_sort_desc(n):
    rng = np.random.default_rng(n)
    buf = np.round(rng.standard_normal(n + 4), 2)
    orig = buf.copy()
    K.sort_desc(buf, n)
    assert np.array_equal(buf[:n], np.sort(orig[:n])[::-1]) and np.array_equal(buf[n:], orig[n:])


def _draws(fn, n, seed):
    s = np.uint64(seed)
    out = np.empty(n)
    for i in range(n):
        out[i], s = fn(np.uint64(s))
    return out


def test_normal_sampler_has_the_normal_law():
    """60000 ziggurat draws: mean, variance, the law in 40 equiprobable cells (chi-square at 1e-6), and the
    tail beyond the ziggurat's base r (its own branch): frequency and mean excess, in standard errors."""
    n = 60000
    z = _draws(K.next_normal, n, 11)
    assert abs(z.mean()) < 4.5 / math.sqrt(n)
    assert abs((z**2).mean() - 1.0) < 4.5 * math.sqrt(2.0 / n)
    edges = stats.norm.ppf(np.linspace(0, 1, 41))
    counts = np.histogram(z, edges)[0]
    chi2 = ((counts - n / 40) ** 2 / (n / 40)).sum()
    assert chi2 < stats.chi2.isf(1e-6, 39)
    assert abs((z < 0).mean() - 0.5) < 4.5 * 0.5 / math.sqrt(n)
    # The tail beyond r: P(|z| > r) = 2 Q(r), and E[|z| - r given |z| > r] = phi(r) / Q(r) - r.
    r = ZIGGURAT_R
    far = np.abs(z[np.abs(z) > r])
    p = 2 * stats.norm.sf(r)
    assert abs(far.size / n - p) < 4.5 * math.sqrt(p / n)
    excess = stats.norm.pdf(r) / stats.norm.sf(r) - r  # E[|z| - r | |z| > r]
    tail = _draws(K.next_normal, 400000, 12)
    far = np.abs(tail[np.abs(tail) > r]) - r
    assert far.size > 50 and abs(far.mean() - excess) < 4.5 * far.std() / math.sqrt(far.size)


@pytest.mark.parametrize("a", [0.02, 0.3, 1.0, 2.5, 40.0])
def test_log_gamma_sampler_has_the_gamma_law(a):
    """log G, G ~ Gamma(a): E[G] = a, Var G = a, E[log G] = digamma(a), the law of G in 20 cells."""
    n = 20000
    d, c = K.gamma_constants(a)
    lg = _draws(lambda s: K.next_log_gamma(a, d, c, s), n, 7)
    g = np.exp(lg)
    assert abs(g.mean() - a) < 4.5 * math.sqrt(a / n)
    assert abs(lg.mean() - special.digamma(a)) < 4.5 * lg.std() / math.sqrt(n)
    edges = stats.gamma.ppf(np.linspace(0, 1, 21), a)
    counts = np.histogram(g, edges)[0]
    assert ((counts - n / 20) ** 2 / (n / 20)).sum() < stats.chi2.isf(1e-6, 19)


@pytest.mark.parametrize("law", ["gem:theta=0.5", "gem:theta=2", "gem:theta=30",
                                 "gemmix:s=0.9/0.3/0,theta=0.5/3/8,w=0.5/0.3/0.2"])
def test_stick_breaking_buffers_hold_every_stick_up_to_the_cut(law):
    """kernel_args sizes a stick-breaking law's buffer so that the sticks run out of mass (below e^-cut)
    before they run out of room, on every one of 3000 nodes, for a frontier's cut and a small one; the
    sticks and the unbroken rest add up to 1."""
    law = parse_law(law)
    for cut in (gem_cut(law, 300), 4.0):
        args = kernel_args(law, cut)
        buf = np.empty(args.width)
        for key in np.random.SeedSequence(3).generate_state(3000, np.uint64):
            n, lrem = K.gem_fill(key, args.params, cut, buf)
            assert lrem < -cut and n <= args.width
            assert math.fsum(np.exp(buf[:n])) + math.exp(lrem) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("law", ["gem:theta=2", "gemmix:s=0.9/0.3/0,theta=0.5/3/8,w=0.5/0.3/0.2"])
def test_the_stick_breaking_cut_lies_far_beyond_the_frontier(law):
    """gem_cut(law, P) sits GEM_MARGIN nats beyond log(mu (P + 1)), where the P-th position falls (key renewal):
    every replicate's P-th position stays at least GEM_MARGIN - 10 nats below it, at small and larger P."""
    law = parse_law(law)
    for P in (10, 3000):
        cut = gem_cut(law, P)
        res = frontier(law, P, replicates=20, seed=1)
        assert np.all(res.last_position < cut - (GEM_MARGIN - 10))


@pytest.mark.slow
@pytest.mark.parametrize("law", ["trace:chat", "dirichlet:alpha=0.5,k=8"])
def test_tempered_drafter_normaliser_covers_the_whole_vector(law):
    """A drafter tempered at T reads q proportional to p^(1/T): its log-normaliser is log sum_i p_i^(1/T) over the
    node's whole vector, a recorded row's tail atoms (every group, each atom count times) included."""
    law = parse_law(law)
    args = kernel_args(law, 30.0)
    kind, table, tails, params, cut, width = args
    T = 0.7
    width = max(width, 1)
    vbuf, obuf, work = np.empty(width), np.empty(1), np.empty(width)
    idx, crank, clq = np.empty(width, np.int64), np.empty(width, np.int64), np.empty(width)
    for key in np.random.SeedSequence(8).generate_state(40, np.uint64):
        m, lp, n, row, lz, tail = K.drafter_candidates(kind, table, tails, params, cut, -1, table, params, cut, T,
                                                        0.0, key, -1, vbuf, obuf, work, idx, width, crank, clq)
        top = np.asarray(lp[:n], dtype=float)
        terms = [v / T for v in top[top > -np.inf]]
        if kind == 0:
            terms += [math.log(c) + q / T for q, c in tails[row] if c > 0]
        assert lz == pytest.approx(special.logsumexp(terms), rel=1e-12, abs=1e-12)


def test_a_kernel_law_cannot_be_changed_in_place():
    """A law's kernel form is a frozen value: assigning a field raises instead of silently editing what every
    later kernel call of that law would read."""
    import dataclasses

    kl = parse_law("gem:theta=2").kernel_law()
    with pytest.raises(dataclasses.FrozenInstanceError):
        kl.width = 10
