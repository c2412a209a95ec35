"""Sampled drafts with lossless verification: every scheme against brute-force enumeration of every draft and
every verifier draw on tiny trees, losslessness, the q = p identity, block >= token by token, Monte Carlo
against exact, the i.i.d. closed form, and the specs."""

import json
import math

import numpy as np
import pytest

from brw import BrwError
from brw.cli import main
from brw.solver import root_keys
from brw.drafting import CHAIN_TAU, SAMPLED_DRAWS, Drafter, parse_policies, parse_policy, policies
from brw.sampled import (TinyTree, block_iid, chain_drafts, chain_exact, chain_levels, conditional_value,
                         draw_values, drafter_quality, expected_accepted, node_vectors, output_law, ratio_steps,
                         target_law, tree_drafts, tree_values, verify_chain, verify_tree)

EXACT = 1e-12
LAW = "dirichlet:alpha=0.7,k=3"  # three children per node: trees small enough to enumerate
DRAFTERS = [Drafter(sigma=1.0), Drafter(T=1.7), Drafter(law="dirichlet:alpha=1,k=3", sigma=0.5)]


def _chain_outcomes(tree, k, scheme):
    out = []
    for prob, draft in chain_drafts(tree, k):
        out += [(prob * o[0], o[1], o[2]) for o in verify_chain(tree, draft, scheme)]
    return out


def _lossless_error(tree, outcomes, length):
    got, want = output_law(tree, outcomes, length), target_law(tree, length)
    return max(abs(got.get(x, 0.0) - v) for x, v in want.items()) + sum(v for x, v in got.items() if x not in want)


# ---------------------------------------------------------------------------------------------------------
# Chains: the exact recursion against every draft and every verifier draw.


def test_block_verification_paper_example():
    """Sun et al.'s motivating example: token by token 10/9, block verification 11/9, the joint ceiling 12/9."""
    tree = TinyTree.fixed([1 / 3, 2 / 3], [2 / 3, 1 / 3])
    ex = chain_exact(tree, 2)
    assert ex["token"][-1] == pytest.approx(10 / 9, abs=EXACT)
    assert ex["block"][-1] == pytest.approx(11 / 9, abs=EXACT)
    assert ex["ceiling"][-1] == pytest.approx(12 / 9, abs=EXACT)
    for scheme, want in (("token", 10 / 9), ("block", 11 / 9)):
        out = _chain_outcomes(tree, 2, scheme)
        assert expected_accepted(out) == pytest.approx(want, abs=EXACT)
        assert _lossless_error(tree, out, 3) < EXACT


@pytest.mark.parametrize("V,k,seed", [(2, 3, 0), (3, 3, 1), (4, 2, 2), (4, 3, 3)])
def test_chain_schemes_against_enumeration(V, k, seed):
    tree = TinyTree.random(V, seed)
    ex = chain_exact(tree, k)
    for scheme in ("token", "block"):
        for j in range(1, k + 1):  # every chain length, each checked on its own drafts
            out = _chain_outcomes(tree, j, scheme)
            assert abs(expected_accepted(out) - ex[scheme][j - 1]) < EXACT
            assert abs(sum(o[0] for o in out) - 1) < EXACT
            assert _lossless_error(tree, out, j + 1) < EXACT
    # block verification is never below token by token, and never above the coupling ceiling, at any length
    assert np.all(np.array(ex["block"]) >= np.array(ex["token"]) - EXACT)
    assert np.all(np.array(ex["ceiling"]) >= np.array(ex["block"]) - EXACT)


def test_block_beats_token_strictly_somewhere():
    gains = [chain_exact(TinyTree.random(3, s, zeros=False), 3) for s in range(5)]
    assert all(g["block"][-1] > g["token"][-1] + 1e-3 for g in gains)


# ---------------------------------------------------------------------------------------------------------
# Multi-draft trees: the kernels' conditional expectation given the drafts against the published algorithms.


TREE_CASES = [(s, 3, 2, 2, 4) for s in ("specinfer", "rsd", "traversal")] + \
    [(s, 4, 3, 1, 6) for s in ("specinfer", "rsd", "traversal")] + [(s, 2, 2, 3, 5) for s in ("rsd", "traversal")]


@pytest.mark.parametrize("scheme,V,k,d,seed", TREE_CASES)
def test_tree_schemes_against_enumeration(scheme, V, k, d, seed):
    tree = TinyTree.random(V, seed)
    size = 40
    drafts = tree_drafts(tree, k, d, scheme == "specinfer", size)
    assert abs(sum(p for p, _ in drafts) - 1) < EXACT
    for P in (2, size):  # a breadth-first cut inside the first level, and the whole tree
        outcomes, kernel = [], 0.0
        for prob, dt in drafts:
            ref = verify_tree(tree, dt, scheme, P)
            value = conditional_value(tree, dt, scheme, P)
            assert abs(expected_accepted(ref) - value) < EXACT
            kernel += prob * value
            outcomes += [(prob * o[0], o[1], o[2]) for o in ref]
        assert abs(expected_accepted(outcomes) - kernel) < EXACT
        assert abs(sum(o[0] for o in outcomes) - 1) < EXACT
        assert _lossless_error(tree, outcomes, d + 1) < EXACT


@pytest.mark.parametrize("scheme,chain", [("specinfer", "token"), ("rsd", "token"), ("traversal", "block")])
def test_one_draft_per_node_is_the_chain(scheme, chain):
    """With k = 1 each scheme is a sampled chain: RRS is token by token, traversal is block verification."""
    tree = TinyTree.random(3, 7)
    drafts = tree_drafts(tree, 1, 3, scheme == "specinfer", 10)
    value = sum(p * conditional_value(tree, dt, scheme, 10) for p, dt in drafts)
    assert abs(value - chain_exact(tree, 3)[chain][-1]) < EXACT


# ---------------------------------------------------------------------------------------------------------
# The kernels on a law's own trees.


@pytest.mark.parametrize("drafter", DRAFTERS, ids=str)
def test_chain_walk_is_exact_on_the_law_trees(drafter):
    keys = root_keys(5, 3)
    tok, blk, ceil, bound, _ = chain_levels(LAW, drafter, keys, 3)
    assert np.all(bound == 0)
    for j, key in enumerate(keys):
        ex = chain_exact(TinyTree.from_law(LAW, drafter, int(key)), 3)
        for name, levels in (("token", tok), ("block", blk), ("ceiling", ceil)):
            assert np.max(np.abs(np.cumsum(levels[j]) - ex[name])) < EXACT


def test_verifier_as_drafter_accepts_every_chain_token():
    tok, blk, ceil, _, _ = chain_levels(LAW, Drafter(), root_keys(2, 4), 4)
    for levels in (tok, blk, ceil):
        assert np.max(np.abs(np.cumsum(levels, axis=1) - np.arange(1, 5))) < EXACT
    res = policies(LAW, 6, ["specsample:k=4", "block:k=4"], replicates=3, seed=0)
    assert np.array_equal(res.accepted[0], [1, 2, 3, 4, 4, 4])
    assert np.array_equal(res.accepted[1], [1, 2, 3, 4, 4, 4])


def test_truncation_bound_holds():
    keys = root_keys(8, 6)
    d = Drafter(sigma=0.7)
    exact = [np.cumsum(a, axis=1) for a in chain_levels(LAW, d, keys, 5)[:3]]
    *cut, bound, _ = chain_levels(LAW, d, keys, 5, tau=0.02)
    assert bound.max() > 0
    for e, c in zip(exact, cut):
        c = np.cumsum(c, axis=1)
        assert np.all(c <= e + EXACT)
        assert np.all(e[:, -1] - c[:, -1] <= bound + EXACT)


def test_roulette_is_unbiased():
    keys = root_keys(9, 300)
    d = Drafter(sigma=0.7)
    exact = np.cumsum(chain_levels(LAW, d, keys, 5)[0], axis=1)[:, -1]
    tok, _, _, bound, _ = chain_levels(LAW, d, keys, 5, tau=0.05, roulette=True)
    diff = np.cumsum(tok, axis=1)[:, -1] - exact
    assert np.all(bound == 0)
    assert np.any(diff != 0)
    assert abs(diff.mean()) < 4.5 * diff.std(ddof=1) / math.sqrt(diff.size)


def test_monte_carlo_against_enumeration_of_the_drafts():
    """The Monte Carlo estimator below one root key, against its expectation computed by enumerating every
    draft of the same tree."""
    d, key = DRAFTERS[0], int(root_keys(3, 1)[0])
    tree = TinyTree.from_law(LAW, d, key)
    at = [2, 5]
    for scheme in ("specinfer", "rsd", "traversal"):
        drafts = tree_drafts(tree, 2, 2, scheme == "specinfer", max(at))
        want = [sum(p * conditional_value(tree, dt, scheme, P) for p, dt in drafts) for P in at]
        got = draw_values(LAW, d, key, scheme, 2, 2, at, 1500)
        se = got.std(axis=0, ddof=1) / math.sqrt(got.shape[0])
        assert np.all(np.abs(got.mean(axis=0) - want) < 4.5 * se)


@pytest.mark.parametrize("scheme,chain", [("specinfer", 0), ("rsd", 0), ("traversal", 1)])
def test_monte_carlo_chains_against_the_exact_walk(scheme, chain):
    """k = 1 drafts per node: the Monte Carlo tree schemes against the exact chain on the same trees (paired)."""
    keys = root_keys(11, 150)
    d = DRAFTERS[1]
    exact = np.cumsum(chain_levels(LAW, d, keys, 4)[chain], axis=1)[:, [1, 3]]
    mc = tree_values(LAW, d, keys, scheme, 1, 4, [2, 4], draws=SAMPLED_DRAWS)
    diff = mc - exact
    se = diff.std(axis=0, ddof=1) / math.sqrt(diff.shape[0])
    assert np.all(np.abs(diff.mean(axis=0)) < 4.5 * se)


def test_iid_closed_form_and_ceiling():
    """An i.i.d. law: token by token accepts sum_j alpha^j on average (alpha = 1 - mean TV), and block
    verification stays under sum_j bc^j (bc = mean Bhattacharyya coefficient)."""
    d = Drafter(sigma=1.2)
    q = drafter_quality(LAW, d, nodes=20000, seed=3)
    k = 4
    tok, blk, _, _, _ = chain_levels(LAW, d, root_keys(4, 600), k)
    tok = np.cumsum(tok, axis=1)[:, -1]
    want = sum(q.alpha ** j for j in range(1, k + 1))
    dwant = sum(j * q.alpha ** (j - 1) for j in range(1, k + 1)) * q.tv_stderr
    assert abs(tok.mean() - want) < 4.5 * math.hypot(tok.std(ddof=1) / math.sqrt(tok.size), dwant)
    blk = np.cumsum(blk, axis=1)[:, -1]
    assert blk.mean() < sum(q.bc ** j for j in range(1, k + 1))


def test_block_verification_is_the_running_minimum_of_the_likelihood_ratio_walk():
    """i.i.d. model: block verification's a_j has the law of exp(min_{m<=j} S_m), S the walk of log(p/q), x ~ q."""
    d, k = Drafter(sigma=1.0), 6
    walk = block_iid(ratio_steps(LAW, d, 20000 * k, seed=5).reshape(-1, k), k)[:, -1]
    tree = np.cumsum(chain_levels(LAW, d, root_keys(6, 300), k)[1], axis=1)[:, -1]
    se = math.hypot(walk.std(ddof=1) / math.sqrt(walk.size), tree.std(ddof=1) / math.sqrt(tree.size))
    assert abs(walk.mean() - tree.mean()) < 4.5 * se


def test_drafter_quality_against_numpy():
    assert drafter_quality(LAW, Drafter(), nodes=50, seed=0).tv == 0
    d = Drafter(T=0.6)
    q = drafter_quality("fixed:p=0.5/0.3/0.2", d, nodes=5, seed=0)
    p = np.array([0.5, 0.3, 0.2])
    qq = p ** (1 / 0.6) / (p ** (1 / 0.6)).sum()
    assert q.tv == pytest.approx(0.5 * np.abs(p - qq).sum(), abs=EXACT)
    assert q.kl == pytest.approx(float(np.sum(p * np.log(p / qq))), abs=EXACT)
    assert q.bc == pytest.approx(float(np.sum(np.sqrt(p * qq))), abs=EXACT)
    nv = node_vectors("fixed:p=0.5/0.3/0.2", d, 7)
    assert np.allclose(nv.q, qq, atol=EXACT) and np.allclose(nv.p, p, atol=EXACT)


def test_tail_groups_are_slots():
    """A trace law's row: explicit children and tail groups, p summing to one and q too."""
    nv = node_vectors("trace:code", Drafter(sigma=1.0), int(root_keys(0, 1)[0]))
    assert np.any(nv.count > 1)
    assert abs(np.sum(nv.p * nv.count) - 1) < 1e-9
    assert abs(np.sum(nv.q * nv.count) - 1) < 1e-9


# ---------------------------------------------------------------------------------------------------------
# Policies: specs, pairing, threads.


@pytest.mark.parametrize("spec", ["specsample:k=8", "block:k=4,T=0.7", "specinfer:k=2,d=3,sigma=1",
                                  "rsd:k=3,d=2,q=(dirichlet:alpha=1,k=3)", "traversal:k=2,d=5,T=1.5,sigma=0.5"])
def test_specs_print_back(spec):
    assert str(parse_policy(spec)) == spec
    assert parse_policy(str(parse_policy(spec))) == parse_policy(spec)


@pytest.mark.parametrize("spec,word", [("specsample", "k=..."), ("specinfer:k=2", "d=..."), ("block:k=2,d=3", "d"),
                                       ("traversal:k=0,d=2", "k"), ("rsd:k=2,d=x", "d="),
                                       ("specsample:k=4,q=dirichlet", "q=")])
def test_bad_specs_are_refused(spec, word, capsys):
    with pytest.raises(BrwError) as e:
        parse_policy(spec)
    assert "\n" not in str(e.value) and word in str(e.value)
    assert main(["policies", "--law", LAW, "--P", "4", "--policies", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err


def test_policies_pair_sampled_schemes_with_the_frontier():
    pols = parse_policies("specsample:k=8,sigma=1,block:k=8,sigma=1,traversal:k=2,d=4,sigma=1")
    res = policies(LAW, 8, pols, replicates=20, seed=4, at=[4, 8], keep_replicates=True)
    keys = root_keys(4, 20)
    tok, blk, _, _, _ = chain_levels(LAW, Drafter(sigma=1.0), keys, 8, tau=CHAIN_TAU, roulette=True)
    assert np.allclose(res.accepted[0], np.cumsum(tok, axis=1).mean(axis=0), rtol=0, atol=EXACT)
    assert np.allclose(res.accepted[1], np.cumsum(blk, axis=1).mean(axis=0), rtol=0, atol=EXACT)
    trav = tree_values(LAW, Drafter(sigma=1.0), keys, "traversal", 2, 4, [4, 8], draws=SAMPLED_DRAWS)
    assert np.allclose(res.values[:, 3], trav, rtol=0, atol=EXACT)
    assert np.all(np.isnan(res.accepted[2, [0, 1, 2, 4, 5, 6]]))
    assert np.allclose(res.values[:, 0].mean(axis=0), res.frontier[[3, 7]], atol=EXACT)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["policies"][2]["accepted"][0] == pytest.approx(trav[:, 0].mean(), abs=EXACT)


def test_sampled_policies_do_not_depend_on_threads():
    pols = ["block:k=16,sigma=1", "specinfer:k=2,d=4,sigma=1", "rsd:k=2,d=4,T=1.5"]
    one = policies("trace:math", 16, pols, replicates=6, seed=2, threads=1)
    two = policies("trace:math", 16, pols, replicates=6, seed=2, threads=2)
    assert np.array_equal(one.accepted, two.accepted, equal_nan=True)


# ---------------------------------------------------------------------------------------------------------
# The study (sims/sampled.py runs it in full): a small slice.


@pytest.mark.slow
def test_study_slice(tmp_path):
    from brw.studies.sampled import figure, sampled_study, table

    st = sampled_study(laws=("dirichlet:alpha=0.5,k=8",), drafters=("sigma=0.4", "sigma=3"), at=(2, 8),
                       replicates=12, nodes=500, seed=1)
    assert len(st.rows) == 4 and len(st.quality) == 2 and len(st.crossings) == 2
    for r in st.rows:
        assert r["best"] == max(r[s] for s in st.schemes)
        assert r["best_minus_frontier"] == pytest.approx(r["best"] - r["frontier"], abs=1e-12)
        assert r["block"] >= r["specsample"] and r["ceiling"] >= r["block"]  # one walk: term by term
    good = [r for r in st.rows if r["drafter"] == "sigma=0.4"]
    bad = [r for r in st.rows if r["drafter"] == "sigma=3"]
    assert all(g["tv"] < b["tv"] for g, b in zip(good, bad))
    c = st.crossings[1]
    assert c["bc_needed"] + c["bc_needed"] ** 2 + sum(c["bc_needed"] ** j for j in range(3, 9)) == \
        pytest.approx(c["frontier"], abs=1e-9)
    assert c["tv_token_closed_form"] == pytest.approx(1 - c["bc_needed"], abs=1e-15)
    text = table(st)
    assert "## Where the best sampled scheme crosses the speed of light" in text and "sigma=3" in text
    figure(st, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10000


def test_sampled_tree_too_large_is_refused_in_one_line(capsys):
    assert main(["policies", "--law", LAW, "--P", "16", "--policies", "specinfer:k=1000000000000,d=6"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "memory" in err and "Traceback" not in err
    res = policies(LAW, 8, ["traversal:k=2,d=1000000000000", "specsample:k=1000000000000"], replicates=2, seed=0)
    assert np.all(np.isfinite(res.accepted[1]))
