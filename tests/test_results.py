"""The results layer: frozen dataclasses with to_dict (JSON) and tidy to_pandas; kept replicates; drawn seeds."""

import dataclasses
import json
import math

import numpy as np
import pytest

from brw import BrwError, frontier, frontier_tree, threshold, threshold_tree

LAW = "dirichlet:alpha=0.5,k=8"


def test_kept_replicate_values_are_each_replicate_alone():
    res = frontier(LAW, 300, replicates=5, seed=11, keep=[300, 7, 64])
    assert res.keep == (300, 7, 64) and res.replicate_values.shape == (5, 3)
    for j in (0, 3):
        alone = frontier(LAW, 300, replicates=1, seed=11, first_replicate=j)
        assert np.array_equal(res.replicate_values[j], alone.accepted[[299, 6, 63]])
    assert np.allclose(res.replicate_values.mean(axis=0), res.accepted[[299, 6, 63]], rtol=1e-12)
    # The mean and its standard error are the same with or without kept values.
    plain = frontier(LAW, 300, replicates=5, seed=11)
    assert np.array_equal(plain.accepted, res.accepted) and plain.replicate_values is None and plain.keep == ()


def test_a_slope_and_its_standard_error_from_one_call():
    P = [64, 128, 256, 512]
    res = frontier(LAW, 512, replicates=12, seed=2, keep=P)
    slopes = np.polyfit(np.log(P), res.replicate_values.T, 1)[0]  # one slope per replicate
    se = slopes.std(ddof=1) / math.sqrt(slopes.size)
    assert slopes.shape == (12,) and 0 < se < 0.2 * abs(slopes.mean())


@pytest.mark.parametrize("keep, words", [([0], "1..pmax"), ([301], "1..pmax"), ([2.5], "whole numbers"),
                                         ([True], "whole numbers")])
def test_bad_keep(keep, words):
    with pytest.raises(BrwError, match=words):
        frontier(LAW, 300, seed=1, keep=keep)


def test_at_refuses_non_integers_and_out_of_range():
    res = frontier("uniform:k=2", 10)
    for bad in ([1.5], 2.0, [0], [11], [True]):
        with pytest.raises(BrwError, match="P must"):
            res.at(bad)
    assert res.at([1, 10])[0].tolist() == [0.5, res.accepted[9]]


def test_frontier_result_to_dict_and_to_pandas():
    res = frontier(LAW, 100, replicates=4, seed=3, keep=[10, 100])
    d = json.loads(json.dumps(res.to_dict()))
    assert d["P"] == [1, 2, 4, 8, 16, 32, 64, 100] and d["seed"] == 3 and d["keep"] == [10, 100]
    assert np.array_equal(np.array(d["replicate_values"]), res.replicate_values)
    df = res.to_pandas()
    assert len(df) == 100 and set(df.law) == {LAW} and df.P.tolist() == list(range(1, 101))
    assert np.array_equal(df.accepted.to_numpy(), res.accepted)
    assert np.array_equal(df.tokens_per_step.to_numpy(), res.tokens_per_step)
    assert res.to_pandas(at=[5, 50]).P.tolist() == [5, 50]
    per = res.to_pandas(per_replicate=True)
    assert len(per) == 8 and per.replicate.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert np.array_equal(per.accepted.to_numpy(), res.replicate_values.ravel())
    with pytest.raises(BrwError, match="keep"):
        frontier(LAW, 10, seed=1).to_pandas(per_replicate=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.seed = 4


def test_threshold_result_records_first_replicate():
    many = threshold(LAW, [2.0, 4.0], replicates=5, seed=6)
    tail = threshold(LAW, [2.0, 4.0], replicates=2, seed=6, first_replicate=3)
    assert tail.first_replicate == 3 and np.array_equal(tail.count, many.count[3:])
    d = json.loads(json.dumps(tail.to_dict()))
    assert d["first_replicate"] == 3 and d["count"] == tail.count.tolist() and d["xs"] == [2.0, 4.0]
    df = tail.to_pandas()
    assert df.x.tolist() == [2.0, 4.0] and np.allclose(df["count"], tail.count.mean(axis=0))
    per = tail.to_pandas(per_replicate=True)
    assert per.replicate.tolist() == [3, 3, 4, 4] and per["count"].tolist() == tail.count.ravel().tolist()
    for bad in (-1, 1.5, True):
        with pytest.raises(BrwError, match="first_replicate"):
            threshold(LAW, [2.0], seed=6, first_replicate=bad)


def test_tree_to_dict_and_to_pandas():
    tree = frontier_tree(LAW, 20, seed=1, replicate=2)
    d = json.loads(json.dumps(tree.to_dict()))
    assert d["replicate"] == 2 and d["position"] == tree.position.tolist() and d["deepest"] == tree.deepest
    df = tree.to_pandas()
    assert len(df) == 20 and df.parent.tolist() == tree.parent.tolist()


def test_seed_none_draws_fresh_entropy_and_records_it():
    a = frontier(LAW, 50, replicates=3)
    b = frontier(LAW, 50, replicates=3)
    assert a.seed != b.seed and a.seed >= 0 and not np.array_equal(a.accepted, b.accepted)
    again = frontier(LAW, 50, replicates=3, seed=a.seed)  # the recorded seed replays the run
    assert np.array_equal(again.accepted, a.accepted) and a.to_dict()["seed"] == a.seed
    t = threshold(LAW, [3.0], replicates=2)
    assert np.array_equal(threshold(LAW, [3.0], replicates=2, seed=t.seed).count, t.count)
    tree = threshold_tree(LAW, 3.0)
    assert np.array_equal(threshold_tree(LAW, 3.0, seed=tree.seed).position, tree.position)
