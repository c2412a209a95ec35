"""Sequoia's static-tree program against brute force, the best-first tree and brw's frontier."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, strategies as st

from brw import frontier
from brw.cli import main
from brw.errors import BrwError
from brw.sequoia import acceptance_vector, best_first, sequoia_tree

VECTOR = Path(__file__).parent / "data" / "sequoia_acceptance_vector.txt"


def plane_trees(n, width, levels):
    """Every ordered tree of n nodes, at most ``width`` children a node and ``levels`` levels (root counted),
    as nested tuples of children."""
    if levels < 1:
        return
    if n == 1:
        yield ()
        return
    for k in range(1, min(width, n - 1) + 1):
        for cut in itertools.combinations(range(1, n - 1), k - 1):
            sizes = [b - a for a, b in zip((0,) + cut, cut + (n - 1,))]
            for kids in itertools.product(*(list(plane_trees(s, width, levels - 1)) for s in sizes)):
                yield kids


def value(tree, p):
    """Sequoia's F: 1 + sum over the children j of p_j F(child j)."""
    return 1.0 + sum(p[j] * value(kid, p) for j, kid in enumerate(tree))


def value_of_arrays(res):
    prod = np.empty(res.n)
    prod[0] = 1.0
    for i in range(1, res.n):
        prod[i] = prod[res.parent[i]] * res.acceptance[res.rank[i] - 1]
    return prod.sum()


def check_shape(res, limit):
    """Parents come first, every node's children are ranks 1..j, the widths add up, the depth holds."""
    assert res.parent[0] == -1 and res.rank[0] == 0
    assert np.all(res.parent[1:] < np.arange(1, res.n)) and np.all(np.diff(res.parent[1:]) >= 0)
    for v in range(res.n):
        kids = res.rank[1:][res.parent[1:] == v]
        assert kids.tolist() == list(range(1, kids.size + 1))
    depth = np.zeros(res.n, dtype=int)
    for i in range(1, res.n):
        depth[i] = depth[res.parent[i]] + 1
    assert np.bincount(depth).tolist() == res.widths.tolist()
    assert res.widths.sum() == res.n and res.depth == depth.max() + 1
    if limit is not None:
        assert res.depth <= limit


vectors = st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.3, 0.45]), min_size=1, max_size=3).filter(
    lambda v: sum(v) <= 1)


@given(p=vectors, n=st.integers(1, 8), limit=st.one_of(st.none(), st.integers(1, 5)))
@example(p=[0.45, 0.0, 0.2], n=8, limit=3)  # a zero rank inside; the unlimited optimum has 5 levels
@example(p=[0.1, 0.2, 0.45], n=8, limit=3)
@example(p=[0.1, 0.45], n=7, limit=None)
@example(p=[0.05, 0.0, 0.05], n=8, limit=3)  # the 8-node optimum fits the limit, the 7-node one does not
def test_program_equals_brute_force(p, n, limit):
    levels = n if limit is None else limit
    trees = list(plane_trees(n, len(p), levels))
    if not trees:
        with pytest.raises(BrwError, match="fits in depth"):
            sequoia_tree(p, n, limit)
        return
    res = sequoia_tree(p, n, limit)
    assert res.tokens_per_step == pytest.approx(max(value(t, p) for t in trees), abs=1e-12)
    assert value_of_arrays(res) == pytest.approx(res.tokens_per_step, abs=1e-12)
    check_shape(res, limit)
    for k in range(1, n + 1):  # the curve: the optimum of every smaller size under the same limit
        assert res.curve[k - 1] == pytest.approx(max(value(t, p) for t in plane_trees(k, len(p), levels)), abs=1e-12)


@pytest.mark.parametrize("p", [[0.6, 0.25, 0.1, 0.05], [0.5, 0.3], [0.9], [0.4, 0.4, 0.1, 0.0, 0.0]])
def test_non_increasing_vector_is_best_first(p):
    """On a non-increasing vector Sequoia's optimum is the deterministic best-first tree, at every size
    (sub-stochastic vectors too: p_none takes the rest)."""
    res = sequoia_tree(p, 300)
    np.testing.assert_allclose(res.curve, best_first(p, 300), rtol=1e-12)
    assert value_of_arrays(res) == pytest.approx(res.tokens_per_step, rel=1e-12)


@pytest.mark.parametrize("p", [[0.7, 0.3], [0.5, 0.25, 0.125, 0.125], [0.4, 0.3, 0.2, 0.1]])
def test_best_first_is_the_frontier_of_the_fixed_law(p):
    """A vector summing to 1: best-first is brw's frontier on the fixed law, accepted + 1."""
    spec = "fixed:p=" + "/".join(str(x) for x in p)
    f = frontier(spec, 500)
    np.testing.assert_allclose(best_first(p, 501)[1:], f.accepted + 1, rtol=1e-12)
    np.testing.assert_allclose(sequoia_tree(p, 501).curve[1:], f.accepted + 1, rtol=1e-12)


def test_best_first_sorts_the_vector():
    """Best-first may pick rank 3 before rank 2: the speed of light of the mass profile, above Sequoia."""
    p = [0.5, 0.05, 0.3]
    np.testing.assert_allclose(best_first(p, 50), best_first(sorted(p, reverse=True), 50))
    assert sequoia_tree(p, 3).tokens_per_step == pytest.approx(1 + 0.5 + 0.25)  # a chain beats ranks 1, 2
    assert best_first(p, 3)[-1] == pytest.approx(1 + 0.5 + 0.3)


def test_closed_forms():
    p = [0.5, 0.2, 0.1]
    assert sequoia_tree(p, 4, depth=2).tokens_per_step == pytest.approx(1.8)  # root and its three children
    assert sequoia_tree([0.8], 6).tokens_per_step == pytest.approx(sum(0.8**k for k in range(6)))  # a chain
    assert sequoia_tree([0.8], 6).widths.tolist() == [1] * 6


def test_depth_limit_costs_and_relaxes():
    full = sequoia_tree(VECTOR, 256)
    for d in (3, 5, full.depth - 1):
        lim = sequoia_tree(VECTOR, 256, d)
        assert lim.depth <= d and lim.tokens_per_step < full.tokens_per_step
        check_shape(lim, d)
    assert sequoia_tree(VECTOR, 256, full.depth).tokens_per_step == full.tokens_per_step
    assert np.all(np.diff(sequoia_tree(VECTOR, 256, 6).curve) >= 0)


def test_public_vector():
    """Sequoia's own vector (tests/data holds a copy of it): not monotone, so below best-first by a little."""
    p = acceptance_vector(VECTOR)
    assert p.size == 32 and p[0] == pytest.approx(0.634183) and p.sum() == pytest.approx(1 - 0.073463, abs=1e-4)
    assert np.any(np.diff(p) > 0)
    res = sequoia_tree(VECTOR, 1024)
    gap = best_first(VECTOR, 1024)[-1] - res.tokens_per_step
    assert 0 < gap < 0.05
    check_shape(res, None)


def test_acceptance_sources(tmp_path):
    np.testing.assert_array_equal(acceptance_vector("0.5/0.25"), [0.5, 0.25])
    np.testing.assert_array_equal(acceptance_vector([0.5, 0.25]), [0.5, 0.25])
    f = tmp_path / "v.txt"
    f.write_text("# a comment\n0\n0.5 10\n0.25\n0.25\n")
    np.testing.assert_array_equal(acceptance_vector(str(f)), [0.5, 0.25])


@pytest.mark.parametrize("text, words", [
    ("0.5\n0.25\n0.25\n", "first value"),
    ("0\n0.5\n0.25\n", "sum to"),
    ("0\n0.5\nx\n0.5\n", "line 3"),
    ("0\n1\n", "needs 0, p_1"),
])
def test_bad_files(tmp_path, text, words):
    f = tmp_path / "v.txt"
    f.write_text(text)
    with pytest.raises(BrwError, match=words):
        acceptance_vector(str(f))


@pytest.mark.parametrize("args, words", [
    (("0.7/0.6", 4), "more than 1"),
    (("0.7/-0.1", 4), r"\[0, 1\]"),
    (("nofile.txt", 4), "neither a file"),
    (("0.7", 0), "n must be >= 1"),
    (("0.7", 10**6), "at most"),
    (("0.5/0.5", 8, 2), "fits in depth 2"),
    (("0.5/0.5", 8, 0), "depth must be >= 1"),
])
def test_errors_name_parameters(args, words):
    with pytest.raises(BrwError, match=words):
        sequoia_tree(*args)


def test_cli(capsys):
    assert main(["sequoia", "--acceptance", str(VECTOR), "--n", "128", "--depth", "10", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n"] == 128 and d["depth"] <= 10 and sum(d["widths"]) == 128 and d["widths"][0] == 1
    assert d["tokens_per_step"] == pytest.approx(sequoia_tree(VECTOR, 128, 10).tokens_per_step)
    assert d["best_first_tokens_per_step"] >= d["tokens_per_step"]
    assert main(["sequoia", "--acceptance", "0.6/0.3", "--n", "5"]) == 0
    assert "tokens per step" in capsys.readouterr().out
    assert main(["sequoia", "--acceptance", "0.6/0.6", "--n", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brw: error:") and err.count("\n") == 1


def test_tidy_tables():
    res = sequoia_tree("0.6/0.3", 20, 5)
    assert list(res.to_pandas()["tokens_per_step"]) == list(res.curve)
    nodes = res.to_pandas(nodes=True)
    assert list(nodes["depth"].value_counts().sort_index()) == list(res.widths)
    assert all(nodes["depth"][1:].to_numpy() == nodes["depth"].to_numpy()[nodes["parent"][1:]] + 1)
