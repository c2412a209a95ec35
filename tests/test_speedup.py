"""The speed-up model: the optimum against a grid search, costs from a roofline and from tables."""

import heapq
import json

import numpy as np
import pytest

from brw.cli import main
from brw.errors import BrwError
from brw.speedup import Roofline, parse_cost, read_cost_table, speedup, step_seconds


def best_first_accepted(p, pmax):
    """accepted(P) of a fixed vector, P = 1..pmax: the pmax largest path products, popped in order."""
    p = sorted(p, reverse=True)
    heap, out, total = [(-p[0], 0, 1.0)], [], 0.0
    while len(out) < pmax:
        neg, r, up = heapq.heappop(heap)
        total -= neg
        out.append(total)
        if r + 1 < len(p):
            heapq.heappush(heap, (-up * p[r + 1], r + 1, up))
        heapq.heappush(heap, (neg * p[0], 0, -neg))
    return np.array(out)


def grid_optimum(acc, seconds, draft_step, draft_token):
    """Every P = 0..pmax by hand: tokens/s = (accepted + 1) / (verifier(P + 1) + drafting)."""
    rates = [1.0 / seconds(1)]
    for P in range(1, acc.size + 1):
        rates.append((acc[P - 1] + 1) / (seconds(P + 1) + draft_step + draft_token * P))
    return int(np.argmax(rates)), max(rates) / rates[0], max(rates)


@pytest.mark.parametrize("draft_step, draft_token", [(0.0, 0.0), (0.002, 0.0), (0.001, 0.0004), (0.0, 0.002)])
def test_roofline_optimum_is_the_grid_optimum(draft_step, draft_token):
    acc = best_first_accepted([0.7, 0.2, 0.1], 40)
    res = speedup("fixed:p=0.7/0.2/0.1", "roofline:t1=0.01,knee=16", 40, replicates=1, draft_step=draft_step,
                  draft_token=draft_token)
    P, ratio, rate = grid_optimum(acc, lambda k: 0.01 * max(1, k / 16), draft_step, draft_token)
    assert res.optimal_P == P and res.speedup == pytest.approx(ratio) and res.to_dict()["tokens_per_second"] == (
        pytest.approx(rate))
    np.testing.assert_allclose(res.accepted[1:], acc, rtol=1e-12)


def test_table_optimum_is_the_grid_optimum(tmp_path):
    f = tmp_path / "cost.txt"
    f.write_text("# tokens seconds\n1 1.0\n8 2.65\n32 9.0\n")  # a batch of 8 costs 2.65 x one token
    acc = best_first_accepted([0.8, 0.2], 31)
    res = speedup("fixed:p=0.8/0.2", str(f), replicates=1)
    assert res.pmax == 31  # what the table covers
    P, ratio, _ = grid_optimum(acc, lambda k: np.interp(k, [1, 8, 32], [1.0, 2.65, 9.0]), 0.0, 0.0)
    assert res.optimal_P == P and res.speedup == pytest.approx(ratio)
    assert 0 < P < 31


def test_linear_cost_never_pays():
    """Every token costs a full forward: speculation cannot win (accepted(P) < P)."""
    res = speedup("dirichlet:alpha=0.5,k=8", "roofline:t1=1,knee=1", 20, replicates=20)
    assert res.optimal_P == 0 and res.speedup == 1.0


def test_random_law_records_stderr():
    res = speedup("dirichlet:alpha=0.5,k=8", "roofline:t1=0.02,knee=32", replicates=30, seed=4)
    d = res.to_dict()
    assert d["pmax"] == 64 and d["replicates"] == 30 and d["seed"] == 4
    assert d["tokens_per_second_stderr"] > 0 and d["speedup"] > 1
    assert d["tokens_per_second"] == pytest.approx(np.max(res.tokens_per_second))


def test_roofline():
    r = parse_cost("roofline:t1=0.02,knee=64")
    assert r == Roofline(0.02, 64.0) and str(r) == "roofline:t1=0.02,knee=64"
    np.testing.assert_allclose(r.seconds([1, 64, 128]), [0.02, 0.02, 0.04])
    assert parse_cost(str(r)) == r
    np.testing.assert_allclose(step_seconds(r, 3, 0.01, 0.001), [0.02, 0.031, 0.032, 0.033])


@pytest.mark.parametrize("spec, words", [
    ("roofline:t1=0.02", "needs both"),
    ("roofline:t1=0.02,knee=64,x=1", "bad part"),
    ("roofline:t1=abc,knee=64", "not a number"),
    ("roofline:t1=-1,knee=64", "t1 must be"),
    ("roofline:t1=0.02,knee=0.5", "knee must be"),
    ("nofile.txt", "neither a file"),
])
def test_bad_cost_specs(spec, words):
    with pytest.raises(BrwError, match=words):
        parse_cost(spec)


@pytest.mark.parametrize("text, words", [
    ("2 1.0\n4 2.0\n", "first row must be 1"),
    ("1 1.0\n4 2.0\n3 2.5\n", "increase"),
    ("1 1.0\n4 x\n", "line 2"),
    ("1 1.0 7\n", "two columns"),
    ("1 0\n", "seconds must be"),
    ("", "first row"),
])
def test_bad_cost_tables(tmp_path, text, words):
    f = tmp_path / "cost.txt"
    f.write_text(text)
    with pytest.raises(BrwError, match=words):
        read_cost_table(f)


def test_errors_before_work(tmp_path):
    f = tmp_path / "cost.txt"
    f.write_text("1 1.0\n8 2.65\n")
    with pytest.raises(BrwError, match="stops at 8"):
        speedup("fixed:p=0.7/0.3", str(f), 8)
    with pytest.raises(BrwError, match="draft_token"):
        speedup("fixed:p=0.7/0.3", str(f), draft_token=-1.0)
    with pytest.raises(BrwError, match="P must be"):
        speedup("fixed:p=0.7/0.3", str(f), 0)


def test_cli(capsys, tmp_path):
    assert main(["speedup", "--law", "fixed:p=0.7/0.3", "--cost", "roofline:t1=0.02,knee=8", "--replicates", "1",
                 "--draft-token", "0.001", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("optimal_P", "tokens_per_second", "speedup", "plain_tokens_per_second", "pmax", "cost"):
        assert key in d
    assert d["pmax"] == 16 and d["plain_tokens_per_second"] == pytest.approx(50.0)
    assert main(["speedup", "--law", "fixed:p=0.7/0.3", "--cost", "roofline:t1=0.02,knee=8"]) == 0
    assert "speed-up" in capsys.readouterr().out
    assert main(["speedup", "--law", "fixed:p=0.7/0.3", "--cost", "roofline:t1=0.02"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brw: error:") and err.count("\n") == 1


def test_tidy_table():
    res = speedup("fixed:p=0.7/0.3", "roofline:t1=0.02,knee=8", replicates=1)
    df = res.to_pandas()
    assert list(df["P"]) == list(range(17)) and df["tokens_per_second"].idxmax() == res.optimal_P


def test_cost_table_round_trip(tmp_path):
    from brw.speedup import write_cost_table

    f = tmp_path / "cost.txt"
    write_cost_table(f, [1, 2, 5], [0.01, 0.0125, 1 / 30], ["measured here"])
    t = read_cost_table(f)
    assert t.tokens.tolist() == [1, 2, 5] and t.table_seconds.tolist() == [0.01, 0.0125, 1 / 30]
    assert f.read_text().startswith("# measured here\n")


def test_policies_on_the_same_trees():
    """A drafter equal to the verifier (specexec) is the frontier; no policy is faster at any P."""
    res = speedup("dirichlet:alpha=0.5,k=8", "roofline:t1=0.02,knee=16", replicates=20, seed=2,
                  policies=["specexec", "chain", "sequoia", "eagle2:k=4,d=6,sigma=1"], draft_token=0.0005)
    np.testing.assert_array_equal(res.policy_accepted[0], res.accepted)
    rates = res.policy_tokens_per_second
    assert np.all(rates[np.isfinite(rates)] <= np.broadcast_to(res.tokens_per_second, rates.shape)[np.isfinite(rates)]
                  + 1e-12)
    d = res.to_dict()
    assert [p["policy"] for p in d["policies"]] == list(res.policies)
    assert d["policies"][0]["optimal_P"] == d["optimal_P"] and d["policies"][0]["speedup"] == d["speedup"]
    assert d["policies"][2]["optimal_P"] in (1, 2, 4, 8, 16, 32)  # Sequoia's trees: powers of two only
    alone = speedup("dirichlet:alpha=0.5,k=8", "roofline:t1=0.02,knee=16", replicates=20, seed=2,
                    draft_token=0.0005)
    np.testing.assert_allclose(alone.accepted, res.accepted, rtol=1e-12)
    assert set(res.to_pandas()["strategy"]) == {"frontier", *res.policies}


def test_cli_policies_and_plot(capsys, tmp_path):
    fig = tmp_path / "speed.png"
    assert main(["speedup", "--law", "dirichlet:alpha=0.5,k=8", "--cost", "roofline:t1=0.02,knee=8",
                 "--replicates", "5", "--policies", "chain,kary:k=2,sequoia", "--plot", str(fig), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in d["policies"]] == ["chain", "kary:k=2", "sequoia"]
    assert d["plot"] == str(fig) and fig.stat().st_size > 1000
    assert all(p["tokens_per_second"] <= d["tokens_per_second"] for p in d["policies"])


def test_cli_bad_plot_before_work(capsys, tmp_path):
    assert main(["speedup", "--law", "fixed:p=0.7/0.3", "--cost", "roofline:t1=0.02,knee=8", "--plot",
                 str(tmp_path / "x.gif")]) == 2
    assert ".png" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
