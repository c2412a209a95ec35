"""The optimal frontier and the threshold tree: exact identities, the reference twin, and reproducibility."""

import importlib
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from brw import BrwError, frontier, frontier_tree, parse_law, threshold, threshold_tree
from brw import _kernels as K
from brw.solver import frontier_start, root_keys
from brw.kernel_law import KIND_TABLE, KernelLaw, gem_cut, kernel_args
from brw.laws import Fixed, Law
from brw.reference import children, exact_fixed_accepted, uniform_accepted


class RowsLaw(Law):
    """A test-only empirical law: random rows of sorted log-probs, each with a tail of equal atoms."""

    name = "rows-test"

    def __init__(self, rows=5, k=4, seed=0):
        rng = np.random.default_rng(seed)
        table, tails = [], []
        for _ in range(rows):
            p = np.sort(rng.dirichlet(np.ones(k)))[::-1] * 0.9
            q = p[-1] / 4  # tail: 0.1 of mass as groups (q, n1) and (q/3, n2)
            n1 = int(0.05 / q) + 1
            table.append(np.log(p))
            tails.append([(math.log(q), n1), (math.log(q / 3), 3)])
        self._table = np.array(table)
        self._tails = np.array(tails)

    @property
    def spec(self):
        return "rows-test"

    @property
    def mu(self):
        h = -(np.exp(self._table) * self._table).sum(axis=1)
        h -= (self._tails[:, :, 1] * np.exp(self._tails[:, :, 0]) * self._tails[:, :, 0]).sum(axis=1)
        return float(h.mean())

    mu2 = float("nan")  # not needed by these tests

    def kernel_law(self):
        return KernelLaw(KIND_TABLE, self._table, np.zeros(4), self._table.shape[1], self._tails)


LAWS = ["fixed:p=0.7/0.3", "uniform:k=3", "zipf:s=1.2,k=40", "dirichlet:alpha=0.5,k=8",
        "dirichlet:alpha=0.05,k=30", "gem:theta=2", RowsLaw()]


@pytest.mark.parametrize("law", LAWS, ids=str)
def test_trees_are_prefix_closed(law):
    for tree in (frontier_tree(law, 500, seed=2), threshold_tree(law, 5.0, seed=2)):
        idx = np.arange(len(tree))
        par = tree.parent
        assert np.all(par < idx)  # every parent is listed before its child
        root_kids = par < 0
        assert np.all(tree.depth[root_kids] == 1)
        assert np.all(tree.depth[~root_kids] == tree.depth[par[~root_kids]] + 1)
        assert np.all(tree.position[~root_kids] >= tree.position[par[~root_kids]] - 1e-12)


@pytest.mark.parametrize("law", LAWS, ids=str)
def test_identity_5_pathwise(law):
    """value(P) = integral_0^inf min(P, N(y)) e^-y dy, with N counting non-root nodes at or below y (with the
    root counted on both sides, it is min(P + 1, N(y))). The frontier and the threshold tree of one replicate
    are two different algorithms on the same tree."""
    P = 200
    ftree = frontier_tree(law, P, seed=8, replicate=2)
    x = float(ftree.position[-1]) + 0.5
    pos = np.sort(threshold_tree(law, x, seed=8, replicate=2).position)
    assert pos.size >= P
    # N(y) is a step function: it reaches j at pos[j-1]. integral of min(P, N) e^-y = sum_{j<=P} e^{-pos[j-1]}.
    edges = np.concatenate([pos[:P], [np.inf]])
    integral = sum(j * (math.exp(-edges[j - 1]) - math.exp(-edges[j])) for j in range(1, P + 1))
    assert integral == pytest.approx(ftree.accepted[-1], rel=1e-12)


def test_identity_1_level_mass_is_one():
    """For every depth n and realisation, the depth-n nodes carry total mass 1 (no child truncated)."""
    for law in ["dirichlet:alpha=0.5,k=3", "fixed:p=0.6/0.3/0.1", "dirichlet:alpha=0.2,k=4"]:
        args = kernel_args(parse_law(law), 50.0)
        for replicate in range(3):
            level = [(int(root_keys(1, 1, replicate)[0]), 0.0)]
            for depth in range(1, 6):
                level = [(int(K.child_key(np.uint64(key), r)), lw + lp)
                         for key, lw in level for r, lp in enumerate(children(args, key)[0])]
                assert math.fsum(math.exp(lw) for _, lw in level) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 8])
def test_identity_7_uniform_closed_form(k):
    res = frontier(f"uniform:k={k}", 700)
    for P in [1, 2, k, k + 1, k * k, 100, 700]:
        assert res.accepted[P - 1] == pytest.approx(uniform_accepted(k, P), rel=1e-13)


@pytest.mark.parametrize("probs", [(0.7, 0.3), (0.5, 0.25, 0.125, 0.125), (0.9, 0.05, 0.03, 0.02), (1.0,)])
def test_identity_8_fixed_vector_exact(probs):
    P = 250
    exact = exact_fixed_accepted([Fraction(str(q)) for q in probs], P)
    res = frontier(Fixed(probs), P)
    np.testing.assert_allclose(res.accepted, [float(v) for v in exact], rtol=1e-12)


def test_threshold_counts_against_tree():
    law = "dirichlet:alpha=0.5,k=8"
    xs = [1.0, 2.5, 4.0]
    res = threshold(law, xs, replicates=4, seed=3)
    for j in range(4):
        tree = threshold_tree(law, xs[-1], seed=3, replicate=j)
        for b, x in enumerate(xs):
            inside = tree.position <= x
            assert res.count[j, b] == inside.sum()
            assert res.mass[j, b] == pytest.approx(np.exp(-tree.position[inside]).sum(), rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Reproducibility: (inputs, seed) alone.


@pytest.mark.parametrize("law", ["dirichlet:alpha=0.5,k=8", "gem:theta=2", RowsLaw()], ids=str)
def test_same_bits_for_any_thread_count_and_the_batch_kernels(law):
    a = frontier(law, 2000, replicates=9, seed=4, threads=1)
    b = frontier(law, 2000, replicates=9, seed=4, threads=2)
    assert np.array_equal(a.accepted, b.accepted)
    assert np.array_equal(a.stderr, b.stderr)
    assert np.array_equal(a.deepest, b.deepest)
    ta = threshold(law, [3.0, 5.0], replicates=6, seed=4, threads=1)
    tb = threshold(law, [3.0, 5.0], replicates=6, seed=4, threads=2)
    assert np.array_equal(ta.count, tb.count) and np.array_equal(ta.mass, tb.mass)
    # The batch kernels called directly on one thread (as the benchmark times its 1-thread rates) walk the same
    # trees as the public functions.
    args = kernel_args(parse_law(law), gem_cut(parse_law(law), 2000))
    acc, deepest, last = np.empty((9, 2000)), np.empty(9, dtype=np.int64), np.empty(9)
    K.frontier_batch(*args.vector_args, root_keys(4, 9), 2000, args.width, frontier_start(parse_law(law), 2000),
                     acc, deepest, last, 0, 9)
    # the curve: the same per-replicate values, averaged in another order (Welford there), so equal to rounding
    assert np.allclose(acc.mean(axis=0), a.accepted, rtol=1e-12, atol=0) and np.array_equal(deepest, a.deepest)
    targs = kernel_args(parse_law(law), 5.0)
    count, mass = np.zeros((6, 2), dtype=np.int64), np.zeros((6, 2))
    K.threshold_batch(*targs.vector_args, root_keys(4, 6), np.array([3.0, 5.0]), 10**9, targs.width, count, mass,
                      np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.int64), 0, 6)
    assert np.array_equal(np.cumsum(count, axis=1), ta.count)


def test_replicate_replays_alone_and_pmax_extends_the_same_tree():
    law = "dirichlet:alpha=0.3,k=16"
    many = frontier(law, 500, replicates=6, seed=21)
    for j in (0, 4):
        alone = frontier(law, 500, replicates=1, seed=21, first_replicate=j)
        assert alone.last_position[0] == many.last_position[j]
        # The kernels sum the C library's exp, Tree.accepted numpy's (its own vectorised code on some CPUs): 500
        # terms, each within a few units in the last place of the other.
        np.testing.assert_allclose(alone.accepted, frontier_tree(law, 500, seed=21, replicate=j).accepted,
                                   rtol=1e-13, atol=0)
    longer = frontier(law, 5000, replicates=6, seed=21)
    assert np.array_equal(longer.accepted[:500], many.accepted)


def test_different_seeds_differ_and_result_records_seed_and_version():
    a = frontier("dirichlet:alpha=0.5,k=8", 50, replicates=3, seed=1)
    b = frontier("dirichlet:alpha=0.5,k=8", 50, replicates=3, seed=2)
    assert not np.array_equal(a.accepted, b.accepted)
    d = a.to_dict()
    assert d["seed"] == 1 and d["version"] and d["P"] == [1, 2, 4, 8, 16, 32, 50]


# ---------------------------------------------------------------------------------------------------------
# Properties over probability vectors.

vectors = st.lists(st.integers(1, 1000), min_size=1, max_size=8).map(lambda w: [v / sum(w) for v in w])


def _fixed(w):
    p = np.asarray(w, dtype=np.float64)
    p[0] += 1.0 - math.fsum(p)  # exact sum 1 after rounding
    return Fixed(tuple(p))


@given(vectors, st.integers(1, 400))
def test_accepted_is_monotone_concave_bounded(w, P):
    law = _fixed(w)
    acc = frontier(law, P).accepted
    inc = np.diff(np.concatenate([[0.0], acc]))
    assert np.all(inc >= 0)  # nondecreasing
    # concave: increments e^-V never grow (an increment is a difference of running sums: a few ulps of acc)
    assert np.all(np.diff(inc) <= 4 * np.spacing(acc[-1]))
    assert np.all(acc <= np.arange(1, P + 1) + 1e-12)  # accepted(P) <= P
    assert acc[0] == pytest.approx(max(law.probs), rel=1e-14)  # accepted(1) = max p


@given(vectors, st.randoms(use_true_random=False))
def test_permuting_the_vector_changes_nothing(w, rnd):
    law = _fixed(w)
    perm = list(law.probs)
    rnd.shuffle(perm)
    spec = "fixed:p=" + "/".join(repr(v) for v in perm)
    assert np.array_equal(frontier(spec, 64).accepted, frontier(law, 64).accepted)


@pytest.mark.slow
def test_accepted_1_is_expected_max_probability():
    """accepted(1) = E[max p]: the frontier's first pop against numpy's own Dirichlet sampler."""
    for alpha, k in [(0.5, 8), (0.1, 20), (3.0, 4)]:
        res = frontier(f"dirichlet:alpha={alpha},k={k}", 1, replicates=20000, seed=7)
        pmax = np.random.default_rng(0).dirichlet(np.full(k, alpha), size=200000).max(axis=1)
        se = math.hypot(res.stderr[0], pmax.std() / math.sqrt(pmax.size))
        assert abs(res.accepted[0] - pmax.mean()) < 4 * se


@pytest.mark.slow
def test_expected_level_masses_match_many_to_one():
    """Statistical: E[sum_{V <= x} e^-V] for Dirichlet is the spine renewal function, which for x below every
    possible two-step position is 1 + P(S_1 <= x) (the spine cdf)."""
    law = parse_law("dirichlet:alpha=0.5,k=8")
    # Two steps of a Dirichlet(0.5, 8) spine can be tiny, so compare the full U(x) via spine samples instead.
    x = 2.0
    res = threshold(law, [x], replicates=4000, seed=12)
    steps = law.spine_sample(np.random.default_rng(1), (400000, 40)).cumsum(axis=1)
    u_mc = (steps <= x).sum(axis=1)
    m, se = res.mean_mass()
    se_tot = math.hypot(se[0], u_mc.std() / math.sqrt(u_mc.size))
    assert abs(m[0] - u_mc.mean()) < 4 * se_tot


# ---------------------------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize("kwargs, words", [
    (dict(pmax=0), "P must be >= 1"),
    (dict(pmax=10, replicates=0), "replicates must be >= 1"),
    (dict(pmax=10, seed=-1), "seed"),
    (dict(pmax=10, seed=2.5), r"seed must be a whole number >= 0, got 2\.5"),
    (dict(pmax=10, seed=True), r"seed must be a whole number >= 0, got True"),
    (dict(pmax=10, seed="3"), r"seed must be a whole number >= 0, got '3'"),
    (dict(pmax=2.5), "whole number"),
    (dict(pmax=2**31 - 10), r"needs about \d+\.\d GiB of memory but 16\.0 GiB is available; at most P=\d+ fits"),
    (dict(pmax=10**12), "too large"),
    (dict(pmax=2**31 - 2), r"P=2147483646 is too large: at most P=2147483645 nodes per tree"),
    (dict(pmax=2**31 - 3), "needs about"),
])
def test_bad_sizes(kwargs, words, monkeypatch):
    # The refusal must not depend on this machine's memory: say it has 16 GiB.
    monkeypatch.setattr(importlib.import_module("brw.limits"), "available_memory", lambda: 16 * 2**30)
    with pytest.raises(BrwError, match=words):
        frontier("fixed:p=0.7/0.3", **kwargs)


def test_bad_threshold_levels():
    for xs in ([], [float("nan")], [2.0, 1.0], [-1.0]):
        with pytest.raises(BrwError):
            threshold("uniform:k=2", xs)
    with pytest.raises(BrwError, match="max_nodes"):
        threshold_tree("uniform:k=2", 30.0, max_nodes=1000)


def test_threshold_refuses_past_its_default_of_a_billion_nodes():
    """threshold's default max_nodes is 10^9 (its docstring): uniform:k=2 holds 2^(floor(x / log 2) + 1) - 1
    nodes at x, so x = 40 (about 2^58) is refused naming that limit (mutation sample seed 17, frontier:440: the
    default moved to 10^10)."""
    with pytest.raises(BrwError, match=r"more than max_nodes=1000000000; at most x="):
        threshold("uniform:k=2", [40.0])


@pytest.mark.parametrize("law", ["dirichlet:alpha=0.5,k=8", "dirichlet:alpha=0.01,k=5", "dirichlet:alpha=3.5,k=6",
                                 "gem:theta=2", "gemmix:s=0.9/0.2,theta=0.5/6,w=0.3/0.7",
                                 "markov:trace=chat,regimes=3", "trace:code"], ids=str)
def test_compiled_streams_equal_their_plain_python_transcription(law):
    """The kernels' node vectors and rows (compiled) and the reference's (plain Python integers and floats)
    are the same numbers, bit for bit, key after key: the samplers, not only the solvers, are checked."""
    args = kernel_args(parse_law(law), 30.0)
    kind, table, tails, params, cut, width = args
    buf = np.empty(max(width, 1))
    keys = root_keys(17, 1500)
    for i, key in enumerate(keys):
        prow = -1 if i % 3 == 0 else int(i % table.shape[0])
        mine, row = children(args, int(key), prow, limit=table.shape[1] if kind == KIND_TABLE else None)
        lp, n, krow = K.node_vector(kind, table, params, cut, key, buf, prow, 0.0)
        assert row == krow
        kernel = [float(v) for v in lp[:n] if v > -np.inf]
        assert mine == kernel


def test_a_stick_breaking_law_whose_sticks_cannot_fit_is_refused_naming_theta():
    """GEM(theta = 1e10) breaks 3e10 to 3e11 sticks per node near the frontier: a buffer row per level of the walk's
    stack (256) on every thread would need tens of TiB, so each entry point refuses it before allocating, naming the
    largest theta that fits (mutation sample seed 23, solver:106 and 571: the bytes per stick divided by the
    levels instead of multiplied, and threshold_tree's check run for 0 threads)."""
    for call in (lambda: threshold_tree("gem:theta=1e10", 3.0), lambda: threshold("gem:theta=1e10", [3.0]),
                 lambda: frontier("gem:theta=1e10", 100)):
        with pytest.raises(BrwError, match=r"breaks about \d(\.\d+)?e\+1[01] sticks per node, which need about .* "
                                           r"at most theta=\S+ fits \(theta=1e\+10 given\)"):
            call()
