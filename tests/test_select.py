"""The frontier's fast path (``frontier_select_one``: a pruned depth-first walk, selection, radix sort) against
the best-first tree kernel, and its two building blocks against numpy."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brw import _kernels as K
from brw.solver import frontier_start, root_keys
from brw.kernel_law import gem_cut, kernel_args
from brw.laws import parse_law

LAWS = ["fixed:p=0.7/0.3", "uniform:k=3", "zipf:s=1.2,k=40", "dirichlet:alpha=0.5,k=8", "dirichlet:alpha=0.05,k=30",
        "gem:theta=2", "fixed:p=1"]


def _both(law, P, x0, replicate=0):
    law = parse_law(law)
    kind, table, tails, params, cut, width = kernel_args(law, gem_cut(law, P))
    key = root_keys(3, 1, replicate)[0]
    acc_tree = np.empty(P)
    tpar, tdep, tpos = np.empty(P, np.int32), np.empty(P, np.int32), np.empty(P)
    dt, lt = K.frontier_one(kind, table, tails, params, cut, key, P, acc_tree, tpar, tdep, tpos, np.empty(max(width, 1)))
    acc = np.empty(P)
    ds, ls = K.frontier_select_one(kind, table, tails, params, cut, key, P, x0, acc, width)
    return acc_tree, (dt, lt), acc, (ds, ls), tpos


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("shift", [0.0, -3.0, 4.0], ids=["hint", "too-low", "too-high"])
def test_select_equals_best_first_to_the_bit(law, shift):
    """Same positions (the same arithmetic), so the same sorted curve, bit for bit; a start level far too low
    (restarts) or far too high (the buffer fills and x shrinks) changes nothing."""
    for P in (1, 7, 600):
        x0 = frontier_start(parse_law(law), P) + shift
        acc_tree, (dt, lt), acc, (ds, ls), tpos = _both(law, P, x0)
        assert np.array_equal(acc, acc_tree)
        assert ls == lt == tpos[-1]
        if not parse_law(law).deterministic:  # no ties at the P-th position: the same node set
            assert ds == dt


def test_select_depth_bound_on_a_deep_law():
    """A nearly deterministic spine: the walk goes thousands of levels deep (its stack grows)."""
    acc_tree, (dt, _), acc, (ds, _), _ = _both("fixed:p=0.999/0.001", 5000, 1.0)
    assert np.array_equal(acc, acc_tree)
    assert ds == dt > 1000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False, width=64), st.sampled_from([0.0, -0.0, 1.5, 1.5, 2.0])),
                min_size=0, max_size=300))
def test_radix_sort_matches_numpy(values):
    a = np.array(values, dtype=np.float64)
    n = a.size
    tmp = np.empty(max(n, 1))
    out = K.radix_sort_f8(a.copy() if n else np.empty(1), tmp, n)
    assert np.array_equal(out[:n], np.sort(a))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([3.0, 3.0, 3.0]), min_size=1, max_size=300),
       st.data())
def test_select_pairs_partitions_and_keeps_pairs(values, data):
    a = np.array(values)
    n = a.size
    k = data.draw(st.integers(0, n - 1))
    work, idx = a.copy(), np.arange(n, dtype=np.int32)
    K.select_pairs(work, idx, k, n)
    assert work[k] == np.sort(a)[k]
    assert np.all(work[:k] <= work[k]) and np.all(work[k + 1:] >= work[k])
    assert np.array_equal(work, a[idx])  # the companion array moved with its values


def test_radix_sort_large_positions():
    rng = np.random.default_rng(0)
    a = np.log1p(rng.exponential(size=200_000) * 1e4)  # position-like: dense near the top
    tmp = np.empty_like(a)
    out = K.radix_sort_f8(a.copy(), tmp, a.size)
    assert np.array_equal(out, np.sort(a))
    assert math.isfinite(out[-1])


@pytest.mark.parametrize("kind", ["uniform", "ties", "sorted", "reversed"])
@pytest.mark.parametrize("frac", [0.0, 0.5, 0.91, 1.0])
def test_select_pairs_large_arrays(kind, frac):
    """Above 20000 values the sampled two-pivot pass runs first; it must give what quickselect gives."""
    rng = np.random.default_rng(1)
    n = 60_000
    a = {"uniform": rng.random(n), "ties": rng.integers(0, 7, n).astype(float), "sorted": np.arange(n, dtype=float),
         "reversed": np.arange(n, 0, -1, dtype=float)}[kind]
    k = min(int(frac * n), n - 1)
    work, idx = a.copy(), np.arange(n, dtype=np.int32)
    K.select_pairs(work, idx, k, n)
    assert work[k] == np.sort(a)[k]
    assert work[:k].max(initial=-np.inf) <= work[k] <= work[k + 1:].min(initial=np.inf)
    assert np.array_equal(work, a[idx])


def test_threshold_walk_on_a_deep_law_grows_its_stack():
    """A spine of 0.999-steps 2000 levels deep: the threshold walk resumes after doubling its stack."""
    from brw import threshold_tree
    from brw.reference import reference_threshold

    tree = threshold_tree("fixed:p=0.999/0.001", 2.0, seed=1)
    par, dep, pos = reference_threshold("fixed:p=0.999/0.001", 2.0, seed=1)
    assert len(tree) == len(pos) > 1000
    assert np.array_equal(np.sort(tree.position), np.sort(pos))
    assert tree.deepest == max(dep)
