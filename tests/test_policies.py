"""Drafting policies on the frontier's own trees: never above the frontier, the verifier as drafter is the
frontier, closed forms on fixed laws, naive references of the dynamic constructions, reproducible noise."""

import heapq
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brw import BrwError
from brw.cli import main
from brw.solver import frontier
from brw.drafting import (DEFAULT_POLICIES, Drafter, Policy, parse_policies, parse_policy, policies,
                          rank_accuracy)

ALL = ["chain", "chains:k=3", "kary:k=2", "kary:k=3,d=2", "medusa", "sequoia:depth=3", "specexec",
       "specexec:T=1.7", "specexec:T=0.6", "specexec:sigma=1.5", "eagle2:k=3,d=3,sigma=0.7",
       "chains:k=2,sigma=2", "specexec:q=(dirichlet:alpha=1,k=4)", "medusa:T=2,sigma=0.5"]


# ---------------------------------------------------------------------------------------------------------
# Naive references on a fixed law (every node the same vector p): a node is its rank path.


def _q(p, T=1.0):
    w = np.asarray(p) ** (1.0 / T)
    return w / w.sum()


def _best_first(score, value, W, P):
    """The P rank paths of largest product of score (ties: first pushed), summing the product of value."""
    heap = [(-score[r], r, (r,)) for r in range(W)]
    heapq.heapify(heap)
    total, out, order = 0.0, [], W
    while len(out) < P and heap:
        neg, _, path = heapq.heappop(heap)
        total += math.prod(value[r] for r in path)
        out.append(total)
        for r in range(W):
            heapq.heappush(heap, (neg * score[r], order, path + (r,)))
            order += 1
    return np.array(out)


def _eagle(q, p, k, d, P):
    """EAGLE-2 on a fixed law, written out: layers of the k best, then the P best of all generated."""
    gen = [((r,), q[r]) for r in range(k)]
    layer = list(gen)
    for _ in range(d - 1):
        new = [(path + (r,), s * q[r]) for path, s in layer for r in range(k)]
        gen += new
        layer = sorted(new, key=lambda t: -t[1])[:k]
    ranked = sorted(range(len(gen)), key=lambda i: (-gen[i][1], i))
    vals = np.array([math.prod(p[r] for r in gen[i][0]) for i in ranked])
    out = np.cumsum(vals)[:P]
    return np.concatenate([out, np.full(P - out.size, out[-1])])


P_FIXED = [0.5, 0.3, 0.15, 0.05]


def _fixed(pmax, specs, **kw):
    return policies("fixed:p=" + "/".join(map(str, P_FIXED)), pmax, specs, replicates=2, seed=3, **kw)


def test_greedy_chain_on_a_fixed_law_is_the_geometric_sum():
    res = _fixed(20, ["chain"])
    acc, se = res.curve("chain")
    want = np.cumsum(0.5 ** np.arange(1, 21))
    np.testing.assert_allclose(acc, want, rtol=1e-13)
    assert np.all(se == 0.0)


def test_k_chains_and_kary_trees_on_a_fixed_law_are_their_closed_forms():
    pmax = 30
    res = _fixed(pmax, ["chains:k=3", "kary:k=2", "kary:k=2,d=3"])
    p1 = 0.5
    # chains grown in turn: the node at depth L of chain j is worth p_j p_1^(L-1)
    vals = [P_FIXED[j] * p1 ** (i // 3) for i, j in zip(range(pmax), [i % 3 for i in range(pmax)])]
    np.testing.assert_allclose(res.curve("chains:k=3")[0], np.cumsum(vals), rtol=1e-13)
    # a full binary tree's level L is worth (p_1 + p_2)^L in all; breadth first, children in rank order
    vals = []
    level = [1.0]
    while len(vals) < pmax:
        level = [v * P_FIXED[r] for v in level for r in range(2)]
        vals += level
    np.testing.assert_allclose(res.curve("kary:k=2")[0], np.cumsum(vals[:pmax]), rtol=1e-13)
    full = sum(0.8**L for L in (1, 2, 3))  # 14 nodes, then the budget goes unused
    np.testing.assert_allclose(res.curve("kary:k=2,d=3")[0][13:], full, rtol=1e-13)


@pytest.mark.parametrize("T", [0.5, 1.0, 2.5])
def test_tempered_best_first_on_a_fixed_law_matches_the_naive_heap(T):
    pmax = 40
    res = _fixed(pmax, [Policy("specexec", drafter=Drafter(T=T))])
    want = _best_first(_q(P_FIXED, T), P_FIXED, 4, pmax)
    np.testing.assert_allclose(res.accepted[0], want, rtol=1e-12)


def test_eagle2_on_a_fixed_law_matches_the_naive_construction():
    pmax = 50
    res = _fixed(pmax, ["eagle2:k=3,d=4,T=2"])
    np.testing.assert_allclose(res.accepted[0], _eagle(_q(P_FIXED, 2.0), P_FIXED, 3, 4, pmax), rtol=1e-12)


def test_medusa_and_sequoia_on_a_fixed_law_with_a_perfect_drafter_are_the_frontier():
    """The accuracies are p itself; p non-increasing: the best-first tree (Sequoia's optimum too)."""
    res = _fixed(40, ["medusa", "sequoia"])
    np.testing.assert_allclose(res.accuracies["medusa"][:4], P_FIXED, rtol=1e-12)
    np.testing.assert_allclose(res.accepted[0], res.frontier, rtol=1e-12)
    at = np.array(res.at) - 1
    np.testing.assert_allclose(res.accepted[1][at], res.frontier[at], rtol=1e-12)


def test_sequoia_with_a_depth_limit_scores_sequoias_own_value_on_a_fixed_law():
    from brw.sequoia import sequoia_tree

    res = _fixed(40, ["sequoia:depth=3"], at=[5, 17, 40])
    a = res.accuracies["sequoia:depth=3"]
    for P in (5, 17, 40):
        want = sequoia_tree(a, min(P + 1, 1 + 16 + 256), 3).tokens_per_step - 1.0
        assert res.accepted[0][P - 1] == pytest.approx(want, rel=1e-12)
    assert np.isnan(res.accepted[0][0])  # not scored outside at


def test_a_drafter_of_its_own_proposes_only_what_its_vector_holds():
    """q = (1): one candidate per node, the verifier's top rank: the greedy chain."""
    res = _fixed(12, ["specexec:q=(fixed:p=1)", "chain"])
    np.testing.assert_allclose(res.accepted[0], res.accepted[1], rtol=1e-13)


# ---------------------------------------------------------------------------------------------------------
# Random laws: the same trees as the frontier.


LAWS = ["dirichlet:alpha=0.5,k=8", "gem:theta=2", "trace:chat", "markov:trace=code,regimes=2",
        "zipf:s=1.2,k=300", "gemmix:s=0.9/0.2,theta=0.5/6,w=0.3/0.7"]


@pytest.mark.parametrize("law", LAWS)
def test_the_verifier_as_drafter_reproduces_the_frontier_exactly(law):
    res = policies(law, 200, ["specexec"], replicates=6, seed=11)
    ref = frontier(law, 200, replicates=6, seed=11)
    np.testing.assert_allclose(res.frontier, ref.accepted, rtol=1e-14)  # the same trees (means summed apart)
    np.testing.assert_array_equal(res.accepted[0], res.frontier)
    assert np.all(res.gap == 0.0)


@settings(max_examples=12)
@given(law=st.sampled_from(LAWS + ["fixed:p=0.4/0.35/0.25", "uniform:k=3"]), seed=st.integers(0, 2**32),
       policy=st.sampled_from(ALL))
def test_no_policy_beats_the_frontier_on_any_tree(law, seed, policy):
    """One replicate per run: the gap is that tree's own."""
    res = policies(law, 64, [policy], replicates=1, seed=seed, at=[1, 7, 64])
    gap = res.gap[0]
    assert np.all(gap[np.isfinite(gap)] >= -1e-12)


def test_gaps_are_paired_and_their_standard_errors_small():
    res = policies("dirichlet:alpha=0.5,k=8", 128, ["specexec:sigma=1", "chain"], replicates=200, seed=5)
    i = res.policies.index("specexec:sigma=1")
    assert np.all(res.gap[i, 7:] > 5 * res.gap_stderr[i, 7:])  # a real gap, resolved
    unpaired = np.hypot(res.stderr[i, 7:], res.frontier_stderr[7:])  # two independent runs' difference
    assert np.all(res.gap_stderr[i, 7:] < 0.7 * unpaired)
    acc, se = res.curve("chain")
    assert acc[-1] < res.frontier[-1]


def test_results_depend_on_the_seed_alone():
    specs = ["specexec:sigma=1", "eagle2:k=4,d=4,sigma=1", "medusa:sigma=1", "chains:k=2,sigma=1"]
    a = policies("dirichlet:alpha=0.3,k=16", 64, specs, replicates=6, seed=9, threads=1)
    b = policies("dirichlet:alpha=0.3,k=16", 64, specs, replicates=6, seed=9, threads=2)
    np.testing.assert_array_equal(a.accepted, b.accepted)
    # replicates 3..5 alone are the same trees as replicates 3..5 of the whole run
    first = policies("dirichlet:alpha=0.3,k=16", 64, specs[:1], replicates=3, seed=9)
    rest = policies("dirichlet:alpha=0.3,k=16", 64, specs[:1], replicates=3, seed=9, first_replicate=3)
    whole = policies("dirichlet:alpha=0.3,k=16", 64, specs[:1], replicates=6, seed=9)
    np.testing.assert_allclose((first.accepted + rest.accepted) / 2, whole.accepted, rtol=1e-12)
    np.testing.assert_allclose((first.gap + rest.gap) / 2, whole.gap, rtol=1e-12, atol=1e-15)


def test_a_noisier_drafter_loses_more():
    res = policies("dirichlet:alpha=0.5,k=8", 64, ["specexec:sigma=0.3", "specexec:sigma=1", "specexec:sigma=3"],
                   replicates=100, seed=2)
    g = res.gap[:, -1]
    assert g[0] < g[1] < g[2]


def test_rank_accuracy_of_the_verifier_is_the_expected_sorted_vector():
    a = rank_accuracy("fixed:p=0.6/0.3/0.1", ranks=5, nodes=10, seed=0)
    np.testing.assert_allclose(a, [0.6, 0.3, 0.1, 0, 0], rtol=1e-13)
    # Dirichlet(1, 2): the larger of two uniform shares has mean 3/4
    a = rank_accuracy("dirichlet:alpha=1,k=2", ranks=2, nodes=20000, seed=0)
    assert a[0] == pytest.approx(0.75, abs=4 * math.sqrt(1 / 48 / 20000))
    assert a.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------
# Specs, results and the command line.


@pytest.mark.parametrize("spec", ["chain", "chains:k=4", "kary:k=2,d=5", "medusa", "medusa:W=8",
                                  "medusa:a=0.6/0.2/0.1", "sequoia:W=8,depth=6", "specexec:T=1.5",
                                  "eagle2:k=4,d=6,T=1.5", "specexec:sigma=1", "chain:T=0.5,sigma=2",
                                  "specexec:q=(dirichlet:alpha=0.5,k=8)"])
def test_a_policy_prints_back_its_spec(spec):
    assert str(parse_policy(spec)) == spec
    assert parse_policy(str(parse_policy(spec))) == parse_policy(spec)


def test_a_policy_list_splits_on_commas_that_start_a_policy():
    pols = parse_policies("chain,kary:k=2,d=5,specexec:q=(dirichlet:alpha=1,k=8),T=2,eagle2:k=4,d=6")
    assert [str(p) for p in pols] == ["chain", "kary:k=2,d=5", "specexec:T=2,q=(dirichlet:alpha=1,k=8)",
                                      "eagle2:k=4,d=6"]
    assert [str(p) for p in parse_policies(list(DEFAULT_POLICIES))] == list(DEFAULT_POLICIES)


@pytest.mark.parametrize("spec, match", [
    ("noise:sigma=1", "keys of every policy"),
    ("beam", "unknown policy 'beam'"),
    ("chains", "needs k="),
    ("chain:k=2", "unknown parameter .k. in policy spec .chain:k=2.; chain takes T, sigma, q"),
    ("kary:k=0", "k must be >= 1"),
    ("kary:k=two", "whole number"),
    ("specexec:T=0", "T must be"),
    ("specexec:sigma=-1", "sigma must be"),
    ("specexec:T=nan", "T must be"),
    ("medusa:a=0.9/0.5", "summing to at most 1"),
    ("medusa:W=4,a=0.5", "not both"),
    ("specexec:q=dirichlet:alpha=1", "parentheses"),
    ("specexec:q=(nolaw:x=1)", "unknown law"),
    ("chain:T=1,T=2", "twice"),
    ("chain:", "no key=value"),
    ("specexec:q=(dirichlet:alpha=1,k=8", "unbalanced"),
])
def test_bad_policy_specs_are_one_clear_error(spec, match):
    with pytest.raises(BrwError, match=match):
        parse_policy(spec)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(BrwError, match="listed twice"):
        parse_policies("chain,chain")
    with pytest.raises(BrwError, match="follows no policy"):
        parse_policies("chain,k=2")
    with pytest.raises(BrwError, match="P must be"):
        policies("uniform:k=2", 0, ["chain"], seed=0)
    with pytest.raises(BrwError, match="at most 8192 nodes"):
        policies("uniform:k=2", 9000, ["sequoia"], replicates=1, seed=0)
    with pytest.raises(BrwError, match="at must lie"):
        policies("uniform:k=2", 8, ["chain"], seed=0, at=[9])


def test_result_tables():
    res = policies("dirichlet:alpha=0.5,k=8", 32, ["chain", "sequoia"], replicates=4, seed=1)
    d = res.to_dict()
    assert d["P"] == [1, 2, 4, 8, 16, 32] and [p["policy"] for p in d["policies"]] == ["chain", "sequoia"]
    assert res.to_dict(at=[3])["policies"][1]["accepted"] == [None]  # Sequoia is scored at `at` only
    json.dumps(d, allow_nan=False)
    df = res.to_pandas()
    assert len(df) == 32 + 6 and set(df["policy"]) == {"chain", "sequoia"}
    assert np.allclose(df["frontier"] - df["accepted"], df["gap"])


def test_cli_policies_json(capsys):
    rc = main(["policies", "--law", "dirichlet:alpha=0.5,k=8", "--P", "16", "--policies",
               "chain,kary:k=2,d=3,specexec:sigma=1", "--replicates", "8", "--seed", "4", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in d["policies"]] == ["chain", "kary:k=2,d=3", "specexec:sigma=1"]
    assert d["P"] == [1, 2, 4, 8, 16] and d["seed"] == 4 and d["replicates"] == 8
    rc = main(["policies", "--law", "dirichlet:alpha=0.5,k=8", "--P", "16", "--policies", "chain,kary:k=2,d=3",
               "--replicates", "8", "--seed", "4"])
    out = capsys.readouterr().out
    assert rc == 0 and "kary:k=2,d=3" in out and "frontier" in out


def test_cli_bad_policy_exits_2(capsys):
    assert main(["policies", "--law", "uniform:k=2", "--P", "8", "--policies", "noise:sigma=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "specexec:sigma=1" in err


def test_drafter_keys_print_back():
    """A policy with drafter keys prints back to its spec (the spec names each result's policy)."""
    from brw.drafting import parse_policies

    for spec in ("specexec:sigma=1", "specexec:T=1.5", "medusa:sigma=0.5"):
        assert [p.spec for p in parse_policies(spec)] == [spec]
