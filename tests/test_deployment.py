"""brw deployment: each engine's format against hand computation, intervals that cover, the chain speed of light
against exhaustive search, the limit against brw.frontier and brw.sequoia, the k recommendation against a closed
form, the command line end to end, and bad input refused in one line."""

import json
import math
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from brw.cli import main
from brw.deployment import against_limit, best_chain, extrapolate, fit_decay
from brw.engines import FORMATS, from_histograms, read_deployment, sniff_format, wilson
from brw.errors import BrwError
from brw.solver import frontier, root_keys
from brw.kernel_law import gem_cut, kernel_args
from brw.laws import parse_law
from brw.drafting import policies
from brw.reference import child_key, children
from brw.sequoia import sequoia_tree

DATA = Path(__file__).parent / "data" / "deployment"
SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"

# What each fixture holds, computed by hand from its lines (tests/data/deployment/README.md).
EXPECTED = {
    # two intervals and a restart, every draft of k = 4 tokens: steps = drafted / 4
    "vllm.log": ("vllm-log", 4, 1000 + 500 + 250, 7000, 2099 + 1040 + 515,
                 [844 + 420 + 210, 599 + 300 + 150, 385 + 190 + 95, 271 + 130 + 60], SMOL),
    # scrapes 1 -> 2 (differences), then a restart: scrape 3 counts from 0, then 3 -> 4
    "vllm-metrics.prom": ("vllm-prometheus", 3, 300 + 50 + 200, 900 + 150 + 600, 470 + 80 + 305,
                          [220 + 38 + 142, 150 + 26 + 99, 100 + 16 + 64], SMOL),
    # histograms [2, 1, 1, 4] and [5, 3, 1, 1]; the third request (n > 1) carries null
    "vllm-requests.jsonl": ("vllm-json", 3, 8 + 10, 24 + 30, 15 + 8, [6 + 5, 5 + 2, 4 + 1], SMOL),
    # steps 300 and 200 (mean lengths 2.35 and 2.20), rates (0.8, 0.55) and (0.75, 0.45)
    "llamacpp.log": ("llamacpp-log", 2, 500, 1000, 645, [240 + 150, 165 + 90], None),
    # histograms [1, 1, 2, 8] and [2, 1, 2, 5]; k = proposed / steps = 3
    "sglang.json": ("sglang-json", 3, 22, 66, 49, [11 + 8, 10 + 7, 8 + 5], None),
    # rounds [2, 0, 4, 4, 1, 3] and [4, 4, 0, 2]
    "accept-lengths.jsonl": ("accept-lengths", 4, 10, None, 24, [5 + 3, 4 + 3, 3 + 2, 2 + 2], SMOL),
}


def run_cli(capsys, *argv):
    code = main(["deployment", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------------------------
# Readers against hand computation.


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_reader_against_hand_computation(name):
    fmt, k, drafts, tokens, accepted, counts, model = EXPECTED[name]
    assert sniff_format(DATA / name) == fmt
    m = read_deployment(DATA / name)
    assert (m.format, m.k, m.drafts, m.draft_tokens, m.accepted_tokens, m.model) == (fmt, k, drafts, tokens,
                                                                                     accepted, model)
    assert sum(counts) == accepted  # the fixture is consistent: sum_j P(X >= j) = E[X]
    np.testing.assert_allclose(m.survival, np.array(counts) / drafts, rtol=0, atol=1e-12)
    assert m.accepted_per_step == pytest.approx(accepted / drafts, rel=1e-12)
    assert m.acceptance_length == pytest.approx(m.accepted_per_step + 1, rel=1e-15)  # the engines' convention
    assert np.all(np.diff(m.survival) <= 0)  # survival is monotone
    lo, hi = m.survival_ci.T
    assert np.all((lo <= m.survival) & (m.survival <= hi)) and np.all((lo >= 0) & (hi <= 1))
    a, b = m.accepted_per_step_ci
    assert a < m.accepted_per_step < b


def test_the_fixtures_notes_say_what_was_split_and_left_out():
    prom = read_deployment(DATA / "vllm-metrics.prom")
    assert any("went back at line" in n and "restart" in n for n in prom.notes)
    assert [s["drafts"] for s in prom.segments] == [300, 250]
    assert any("1 records without speculative decoding metrics" in n
               for n in read_deployment(DATA / "vllm-requests.jsonl").notes)
    log = read_deployment(DATA / "vllm.log")
    assert [s["drafts"] for s in log.segments] == [1500, 250] and "engine start" in log.segments[1]["started_by"]


def test_vllm_line_with_short_drafts_infers_the_steps(tmp_path):
    """280 tokens in drafts of at most k = 3: steps are not D / k; the printed mean length (2.20) pins N = 100."""
    f = tmp_path / "short.log"
    f.write_text("INFO SpecDecoding metrics: Mean acceptance length: 2.20, Accepted throughput: 1.00 tokens/s, "
                 "Drafted throughput: 2.00 tokens/s, Accepted: 120 tokens, Drafted: 280 tokens, Per-position "
                 "acceptance rate: 0.600, 0.400, 0.200, Avg Draft acceptance rate: 42.9%\n")
    m = read_deployment(f)
    assert (m.drafts, m.k, m.accepted_tokens) == (100, 3, 120)
    np.testing.assert_allclose(m.survival, [0.6, 0.4, 0.2])
    assert any("draft slots held no token" in n for n in m.notes)


def test_one_scrape_is_the_totals_since_start(tmp_path):
    text = (DATA / "vllm-metrics.prom").read_text().split("# HELP vllm:spec_decode_num_drafts_total")[2]
    f = tmp_path / "one.prom"
    f.write_text("# HELP vllm:spec_decode_num_drafts_total" + text)
    m = read_deployment(f)
    assert (m.drafts, m.draft_tokens, m.accepted_tokens) == (400, 1200, 620)
    assert any("one scrape" in n for n in m.notes)


def test_engines_summed_and_split_form_of_llamacpp(tmp_path):
    lines = (DATA / "vllm-metrics.prom").read_text().splitlines()
    both = []
    for line in lines:  # every sample twice: engines 0 and 1 with the same counts
        both.append(line)
        if line.startswith("vllm:") and 'engine="0"' in line:
            both.append(line.replace('engine="0"', 'engine="1"'))
    f = tmp_path / "two.prom"
    f.write_text("\n".join(both) + "\n")
    assert read_deployment(f).drafts == 2 * 550


def test_from_histograms_matches_the_reader():
    m = from_histograms([[2, 1, 1, 4], [5, 3, 1, 1]], 3)
    r = read_deployment(DATA / "vllm-requests.jsonl")
    np.testing.assert_allclose(m.survival, r.survival)
    assert (m.drafts, m.accepted_tokens, m.requests) == (r.drafts, r.accepted_tokens, 2)


# --------------------------------------------------------------------------------------------------------
# Intervals that cover.


def test_wilson_intervals_cover_at_the_nominal_rate():
    """Independent steps: the survival's 95% intervals cover the truth at 95% (1200 simulated deployments,
    within 4.5 standard errors of a binomial share)."""
    rng = np.random.default_rng(20250101)
    s_true = np.array([0.8, 0.55, 0.3, 0.12])
    p_exact = -np.diff(np.concatenate([[1.0], s_true, [0.0]]))  # P(X = j), j = 0..4
    sims, cover = 1200, np.zeros(4)
    for _ in range(sims):
        h = rng.multinomial(300, p_exact)
        m = from_histograms([h], 4)
        cover += (m.survival_ci[:, 0] <= s_true) & (s_true <= m.survival_ci[:, 1])
    se = math.sqrt(0.95 * 0.05 / sims)
    assert np.all(np.abs(cover / sims - 0.95) < 4.5 * se), cover / sims


def test_design_effect_restores_coverage_of_correlated_requests():
    """Requests whose acceptance differs (each draws its own rate): plain Wilson intervals undercover, the
    widened ones cover at least nominally (4.5 standard errors)."""
    rng = np.random.default_rng(7)
    sims, k, cover, plain = 400, 2, 0, 0
    truth = None
    # the population share of steps accepting >= 1: E over requests of their rate (equal steps per request)
    rates = rng.beta(2, 2, size=200000)
    truth = rates.mean()
    for _ in range(sims):
        a = rng.beta(2, 2, size=30)  # 30 requests of 40 steps, each with its own rate
        first = rng.binomial(40, a)
        hist = np.zeros((30, k + 1))
        hist[:, 0] = 40 - first
        hist[:, 1] = first  # accepted exactly 1 (k = 2, position 2 never accepted)
        m = from_histograms(hist, k)
        cover += m.survival_ci[0, 0] <= truth <= m.survival_ci[0, 1]
        lo, hi = wilson(first.sum(), 1200)
        plain += lo <= truth <= hi
    se = math.sqrt(0.95 * 0.05 / sims)
    assert cover / sims > 0.95 - 4.5 * se and plain / sims < 0.95 - 4.5 * se, (cover / sims, plain / sims)


# --------------------------------------------------------------------------------------------------------
# The best chain.


def brute_chains(spec, kmax, seed, reps, limit=None):
    """Every chain of up to kmax nodes, enumerated on the reference's transcription of the trees."""
    law = parse_law(spec)
    args = kernel_args(law, gem_cut(law, kmax))
    out = np.zeros((reps, kmax))
    for r, key in enumerate(root_keys(seed, reps)):
        best = out[r]

        def walk(key, prow, edge, logp, total, d):
            lps, row = children(args, key, prow, limit=limit, edge=edge)
            for i, lp in enumerate(lps):
                v = total + math.exp(logp + lp)
                best[d] = max(best[d], v)
                if d + 1 < kmax:
                    walk(child_key(key, i), row, -lp, logp + lp, v, d + 1)

        walk(int(key), -1, 0.0, 0.0, 0.0, 0)
    return out


@pytest.mark.parametrize("spec, kmax, limit", [("dirichlet:alpha=0.5,k=4", 4, None), ("gem:theta=2", 3, 12),
                                               ("trace:chat", 2, 64), ("edge:trace=code", 2, 64)])
def test_best_chain_is_exhaustive_search(spec, kmax, limit):
    res = best_chain(spec, kmax, replicates=12, seed=5)
    np.testing.assert_allclose(res.per_replicate_best, brute_chains(spec, kmax, 5, 12, limit), rtol=1e-13, atol=0)
    assert np.all(res.per_replicate_best >= res.per_replicate_greedy - 1e-15)


def test_best_chain_beats_greedy_somewhere_and_greedy_is_the_chain_policy():
    res = best_chain("dirichlet:alpha=0.5,k=8", 6, replicates=200, seed=1)
    pol = policies("dirichlet:alpha=0.5,k=8", 6, ["chain"], replicates=200, seed=1)
    np.testing.assert_allclose(res.greedy, pol.accepted[0], rtol=1e-12)  # the same trees, the same top-1 path
    assert np.mean(res.per_replicate_best[:, -1] > res.per_replicate_greedy[:, -1] + 1e-12) > 0.01
    front = frontier("dirichlet:alpha=0.5,k=8", 6, 200, 1)
    assert np.all(res.best <= front.accepted + 1e-12)  # a chain is a tree


def test_best_chain_of_a_fixed_vector_is_its_geometric_sum():
    res = best_chain("fixed:p=0.6/0.3/0.1", 7, replicates=2, seed=0)
    np.testing.assert_allclose(res.best, [sum(0.6 ** i for i in range(1, j + 1)) for j in range(1, 8)], rtol=1e-14)


# --------------------------------------------------------------------------------------------------------
# Against the limit.


def test_limit_numbers_are_frontier_chain_and_sequoia():
    m = read_deployment(DATA / "vllm.log")
    d = against_limit(m, "trace:chat", replicates=60, seed=3).to_dict()
    front = frontier("trace:chat", 4, 60, 3)
    chain = best_chain("trace:chat", 4, 60, 3)
    assert d["speed_of_light"] == front.accepted[3] and d["speed_of_light_stderr"] == front.stderr[3]
    assert d["chain_speed_of_light"] == chain.best[3] and d["greedy_chain"] == chain.greedy[3]
    assert d["share_of_speed_of_light"] == pytest.approx(m.accepted_per_step / front.accepted[3])
    q = d["sequoia"]
    a = q["acceptance"][0]
    assert sum(a ** j for j in range(1, 5)) == pytest.approx(m.accepted_per_step, rel=1e-12)
    assert q["chain_tokens_per_step"] == pytest.approx(m.acceptance_length, rel=1e-12)
    tree = sequoia_tree(q["acceptance"], 5)
    assert q["tokens_per_step"] == tree.tokens_per_step and q["widths"] == tree.widths.tolist()
    assert q["tokens_per_step"] >= q["chain_tokens_per_step"] - 1e-12  # a chain is one of Sequoia's trees
    assert d["law_model"].startswith("SmolLM2-135M-Instruct")


def test_sequoia_without_a_law_bounds_the_gain():
    m = from_histograms([[600, 250, 100, 50]], 3)  # a weak drafter: a second guess at the root pays
    q = against_limit(m, cost="roofline:t1=1,knee=8", draws=50).to_dict()["sequoia"]
    p = np.array(q["acceptance"])
    assert p.sum() <= 1 + 1e-12 and np.all(p <= p[0] + 1e-15) and q["gain"] > 0


def test_decay_fit_recovers_a_geometric_law():
    A, r = 0.9, 0.8
    s = np.cumprod(A * r ** np.arange(5))
    assert fit_decay(s, 1e6) == pytest.approx((A, r), rel=1e-9)
    np.testing.assert_allclose(extrapolate(s, 1e6, 9), np.cumprod(A * r ** np.arange(9)), rtol=1e-9)
    A, r = fit_decay([0.5, 0.4, 0.36], 1000)  # conditional rates 0.5, 0.8, 0.9 rise: the last one, held flat
    assert (A, r) == (pytest.approx(0.9, rel=1e-12), 1.0)


@pytest.mark.parametrize("cost, draft_step, draft_token, expect", [
    ("roofline:t1=0.01,knee=6", 0.0, 0.0, 5),  # free up to the knee, linear after it: k + 1 = knee
    ("roofline:t1=0.01,knee=6", 0.05, 0.0, 0),  # drafting costs 5 forwards: plain decoding wins
    ("roofline:t1=0.01,knee=100", 0.0, 0.0015, None),  # a per-token drafting cost: the argmax of the closed form
])
def test_recommended_k_against_the_closed_form(cost, draft_step, draft_token, expect):
    """s_j = 0.5^j exactly (a constant conditional rate): the extrapolation is exact, accepted(k) =
    1 - 0.5^k, and tokens/s(k) = (2 - 0.5^k) / (verifier(k + 1) + drafting)."""
    m = from_histograms([[800, 400, 200, 100, 100]], 4)
    d = against_limit(m, cost=cost, max_k=12, draft_step=draft_step, draft_token=draft_token, draws=200).to_dict()
    t1, knee = 0.01, float(cost.split("knee=")[1])
    ks = np.arange(13)
    T = t1 * np.maximum(1, (ks + 1) / knee) + np.where(ks > 0, draft_step + draft_token * ks, 0)
    rate = (2 - 0.5 ** ks) / T
    np.testing.assert_allclose(d["tokens_per_second"], rate, rtol=1e-12)
    assert d["recommended_k"] == (int(np.argmax(rate)) if expect is None else expect) == int(np.argmax(rate))
    if expect is None:
        assert 0 < d["recommended_k"] < 12


def test_speed_of_light_curve_and_headroom():
    m = from_histograms([[500, 300, 150, 50]], 3)
    d = against_limit(m, "fixed:p=0.7/0.2/0.1", "roofline:t1=1,knee=4", max_k=6, replicates=2, draws=200).to_dict()
    front = frontier("fixed:p=0.7/0.2/0.1", 6, 2, 0)
    T = np.maximum(1, (np.arange(7) + 1) / 4)
    np.testing.assert_allclose(d["speed_of_light_tokens_per_second"], np.concatenate([[1], 1 + front.accepted]) / T)
    sk = d["speed_of_light_k"]
    assert d["headroom"] == pytest.approx(d["speed_of_light_tokens_per_second"][sk] /
                                          d["tokens_per_second"][d["recommended_k"]])
    assert all(a <= r <= b for r, (a, b) in zip(d["tokens_per_second"], d["tokens_per_second_ci"]))


# --------------------------------------------------------------------------------------------------------
# The command line.


def test_cli_json_keys_end_to_end(capsys, tmp_path):
    fig = tmp_path / "dep.png"
    code, out, err = run_cli(capsys, DATA / "vllm.log", "--law", "trace:chat", "--cost", "roofline:t1=0.01,knee=4",
                             "--replicates", 40, "--plot", fig, "--json")
    assert code == 0, err
    d = json.loads(out)
    for key in ("format", "k", "drafts", "draft_tokens", "accepted_tokens", "accepted_per_step", "acceptance_length",
                "survival", "survival_ci", "speed_of_light", "chain_speed_of_light", "recommended_k",
                "tokens_per_second"):
        assert key in d
    assert len(d["tokens_per_second"]) == len(d["k_values"]) == 9 and d["k_values"][0] == 0
    assert "bonus" in d["convention"] and fig.is_file() and d["plot"] == str(fig)


def test_cli_text_table(capsys):
    code, out, err = run_cli(capsys, DATA / "llamacpp.log")
    assert code == 0 and "accepted per step 1.2900" in out and "bonus token excluded" in out


@pytest.mark.parametrize("argv, words", [
    (["nonexistent.log"], "no such file"),
    ([DATA / "vllm.log", "--format", "tgi"], "format must be one of"),
    ([DATA / "vllm.log", "--law", "trace:gemma3-chat"], "name the model"),
    ([DATA / "vllm.log", "--law", "dirichlet:alpha=-1,k=3"], "alpha"),
    ([DATA / "vllm.log", "--k", "3"], "not k = 3"),
    ([DATA / "sglang.json", "--format", "vllm-json"], "neither a response"),
])
def test_cli_errors_are_one_line_exit_2(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err and "Traceback" not in err


def test_cli_bad_plot_path_refused_before_work_and_nothing_written(capsys, tmp_path):
    code, out, err = run_cli(capsys, tmp_path / "missing.log", "--plot", tmp_path / "fig.gif")
    assert code == 2 and ".png" in err and not list(tmp_path.iterdir())
    code, out, err = run_cli(capsys, DATA / "vllm.log", "--law", "trace:gemma3-chat", "--plot", tmp_path / "f.png")
    assert code == 2 and not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------------------
# Bad and inconsistent input.

LINE = ("INFO 06-01 22:00:42 [metrics.py:101] SpecDecoding metrics: Mean acceptance length: {m}, Accepted "
        "throughput: 1.00 tokens/s, Drafted throughput: 2.00 tokens/s, Accepted: {a} tokens, Drafted: {d} tokens, "
        "Per-position acceptance rate: {r}, Avg Draft acceptance rate: 50.0%")
GOOD = LINE.format(m="2.70", a=170, d=200, r="0.900, 0.800")


@pytest.mark.parametrize("text, words", [
    (GOOD[:120] + "\n" + GOOD + "\n", "without its"),  # a line cut in the middle of the file
    (LINE.format(m="2.70", a=170, d=200, r="0.800, 0.900") + "\n", "rise from position 1 to 2"),
    (LINE.format(m="nan", a=170, d=200, r="0.900, 0.800") + "\n", "NaN"),
    (LINE.format(m="2.70", a=-170, d=200, r="0.900, 0.800") + "\n", "not a whole number"),
    (LINE.format(m="2.70", a=170, d=200, r="0.900, inf") + "\n", "3 decimals"),
    (LINE.format(m="2.70", a=170, d=200, r="0.900, 0.600") + "\n", "do not fit together"),
    (GOOD + "\n" + LINE.format(m="2.10", a=110, d=300, r="0.600, 0.300, 0.200") + "\n", "mix draft lengths"),
    ("", "empty"),
    ("just a log line\n", "no known format"),
])
def test_bad_vllm_logs_are_one_line(tmp_path, text, words):
    f = tmp_path / "bad.log"
    f.write_text(text)
    with pytest.raises(BrwError, match=words) as e:
        read_deployment(f)
    assert "\n" not in str(e.value)


def test_truncated_last_line_is_left_out_with_a_note(tmp_path):
    f = tmp_path / "cut.log"
    f.write_text(GOOD + "\n" + GOOD[:-30])
    m = read_deployment(f)
    assert m.drafts == 100 and any("cut short" in n for n in m.notes)


def test_mixture_of_k_split_by_choice(tmp_path):
    f = tmp_path / "mix.log"
    f.write_text(GOOD + "\n" + LINE.format(m="2.10", a=110, d=300, r="0.600, 0.300, 0.200") + "\n")
    m = read_deployment(f, k=3)
    assert (m.k, m.drafts) == (3, 100) and any("another k" in n for n in m.notes)


@pytest.mark.parametrize("data, words", [
    (b"\x00\x01\x02binary\xff" * 100, "NUL"),
    (("SpecDecoding metrics: caf\xe9\n").encode("latin-1"), "not UTF-8"),
    (b"x" * (2**20) + b"\n", "no known format"),
])
def test_binary_and_non_utf8_refused(tmp_path, data, words):
    f = tmp_path / "junk.log"
    f.write_bytes(data)
    with pytest.raises(BrwError, match=words):
        read_deployment(f, format=None if words != "NUL" else "vllm-log")


@pytest.mark.parametrize("fmt, text, words", [
    ("vllm-prometheus", 'vllm:spec_decode_num_drafts_total{engine="0"} NaN\n', "finite whole"),
    ("vllm-prometheus", 'vllm:spec_decode_num_drafts_total{engine="0"} -3\n', "finite whole"),
    ("vllm-json", '{"acceptance_histogram": [1, -2, 3], "num_spec_tokens": 2}\n', "whole number >= 0"),
    ("vllm-json", '{"acceptance_histogram": [1, NaN, 3], "num_spec_tokens": 2}\n', "not JSON"),
    ("vllm-json", '{"acceptance_histogram": [1, 2], "num_spec_tokens": 2}\n', "not num_spec_tokens"),
    ("vllm-json", '{"acceptance_histogram": [1, 2, 3], "num_spec_tokens": 2, "num_spec_steps": 7}\n', "num_spec_steps"),
    ("sglang-json", '{"meta_info": {"spec_verify_ct": 4, "spec_accept_histogram": [1, 1, 1]}}\n', "holds 3 steps"),
    ("accept-lengths", '{"accept_lengths": [1, 5], "k": 4}\n', "above k = 4"),
    ("accept-lengths", '{"accept_lengths": [1, 2.5], "k": 4}\n', "whole number"),
    ("llamacpp-log", "draft acceptance rate = 0.50000 (  10 accepted /    20 generated)\n", "no mean acceptance"),
])
def test_bad_counts_refused(tmp_path, fmt, text, words):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(BrwError, match=words):
        read_deployment(f, format=fmt)


def test_counters_of_two_models_refused_and_restart_split(tmp_path):
    text = (DATA / "vllm-metrics.prom").read_text()
    f = tmp_path / "two.prom"
    f.write_text(text + text.replace("SmolLM2-135M-Instruct", "Other-1B").split("\n", 12)[-1])
    with pytest.raises(BrwError, match="several models"):
        read_deployment(f)


def test_ambiguous_file_lists_candidates(tmp_path):
    f = tmp_path / "both.txt"
    f.write_text(GOOD + "\n" + 'vllm:spec_decode_num_drafts_total{engine="0"} 3\n')
    with pytest.raises(BrwError, match=r"several formats \(vllm-log, vllm-prometheus\)"):
        read_deployment(f)
    assert set(FORMATS) >= {"vllm-log", "vllm-prometheus"}


@pytest.mark.slow
def test_a_large_log_streams_in_bounded_memory(tmp_path):
    """About 20 MB of log (chatter and a metrics line every tenth line): read under a tracemalloc peak of 4 MiB."""
    f = tmp_path / "big.log"
    chatter = ("INFO 06-01 22:00:52 [loggers.py:118] Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation "
               "throughput: 2.8 tokens/s, Running: 0 reqs, Waiting: 0 reqs, GPU KV cache usage: 0.0%\n")
    block = chatter * 9 + GOOD + "\n"
    with open(f, "w") as out:
        for _ in range(10_000):
            out.write(block)
    assert os.path.getsize(f) > 19e6
    tracemalloc.start()
    try:
        m = read_deployment(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (m.drafts, m.accepted_tokens) == (10_000 * 100, 10_000 * 170)
    assert peak < 4 * 2**20, peak


def test_the_walk_through_prints_what_the_docs_show(capsys):
    """docs/deployment.md's transcripts are the commands' own output (every line of each block)."""
    doc = (Path(__file__).parents[1] / "docs" / "deployment.md").read_text()
    parts = doc.split("\n    brw deployment ")[1:]
    assert len(parts) == 3
    root = Path(__file__).parents[1]
    for part in parts:
        command, rest = part.split("\n", 1)
        block = rest.split("```\n", 2)[1]
        old = os.getcwd()
        os.chdir(root)
        try:
            code, out, err = run_cli(capsys, *command.split())
        finally:
            os.chdir(old)
        assert code == 0, err
        lines = out.splitlines()
        for line in block.splitlines():
            assert line in lines, line
