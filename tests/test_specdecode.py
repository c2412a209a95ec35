"""brw.real.specdecode: the speculative decoder is lossless, accepts as the theory says, drafts as vLLM's ngram does,
and writes logs that parse back.

A tiny random-weight Llama (two layers, vocabulary 97, built from a config: no weights to download) is the
verifier; its first layer is the early-exit drafter. Statistical checks use fixed seeds: chi-square p-values
against the threshold P_MIN = 1e-3, differences of means against 4.5 standard errors (docs/testing.md).
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch", reason="the decoder needs torch: pip install -e '.[model]'")
transformers = pytest.importorskip("transformers", reason="the decoder needs transformers: pip install -e '.[model]'")

from brw import BrwError  # noqa: E402
from brw.cli import main  # noqa: E402
from brw.real import specdecode as sd  # noqa: E402
from brw.real.models import LoadedModel  # noqa: E402

torch.set_num_threads(1)
VOCAB = 97
P_MIN = 1e-3  # chi-square p-value below which a test fails
SE = 4.5  # standard errors allowed where many checks share a test
RUNS = 160  # short runs per drafter in the model-path chi-square (sims/specdecode.py --lossless runs more)


@pytest.fixture(scope="module")
def tiny():
    """A two-layer random Llama whose next-token distributions are peaked (entropy about 2 nats) and whose first
    layer alone (the early-exit drafter) overlaps them by about two thirds."""
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
    meta = {"model": "tiny random llama", "model_sha256": "0" * 64, "dtype": "float32", "device": "cpu",
            "vocab_size": VOCAB}
    return LoadedModel(model, None, "cpu", "float32", meta, 0.0)


def _probs(logits) -> np.ndarray:
    z = logits.double()
    return torch.softmax(z, dim=-1).numpy()


def verifier_probs(model, ids) -> np.ndarray:
    """p(. | ids[:t + 1]) for every t, from one plain forward without a cache."""
    with torch.no_grad():
        return _probs(model(input_ids=torch.tensor([ids])).logits[0])


def exit_probs(model, ids, layers: int) -> np.ndarray:
    """The early exit's q(. | ids[:t + 1]), built independently of brw: the final norm and LM head applied to the
    hidden state after ``layers`` decoder layers of one plain forward."""
    with torch.no_grad():
        h = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layers]
        return _probs(model.lm_head(model.model.norm(h))[0])


def chi2_pvalue(tokens, probs) -> float:
    """Pearson's chi-square of token counts against probabilities, cells of expected count < 5 pooled (and the
    pool joined to the smallest other cell when it is itself below 5)."""
    n = len(tokens)
    counts = np.bincount(tokens, minlength=probs.size).astype(float)
    expected = n * probs
    big = expected >= 5
    obs, exp = list(counts[big]), list(expected[big])
    rest_o, rest_e = counts[~big].sum(), expected[~big].sum()
    if rest_e >= 5:
        obs.append(rest_o)
        exp.append(rest_e)
    else:
        i = int(np.argmin(exp))
        obs[i] += rest_o
        exp[i] += rest_e
    obs, exp = np.array(obs), np.array(exp)
    return float(stats.chi2.sf(((obs - exp) ** 2 / exp).sum(), obs.size - 1))


# --------------------------------------------------------------------------------------------------------
# The acceptance rule, exactly.


def test_acceptance_and_residual_arithmetic_exact():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.6, 0.1, 0.1, 0.2])
    a = np.array([sd.acceptance_probability(p, q, x) for x in range(4)])
    np.testing.assert_allclose(a, [5 / 6, 1, 1, 0], rtol=0, atol=1e-15)
    res = sd.residual(p, q)
    np.testing.assert_allclose(res, [0, 2 / 3, 1 / 3, 0], rtol=0, atol=1e-15)
    # One position of speculative sampling emits x with probability q(x) a(x) + P(reject) residual(x) = p(x).
    reject = float(np.sum(q * (1 - a)))
    np.testing.assert_allclose(q * a + reject * res, p, rtol=0, atol=1e-15)
    # A point mass at x: kept with probability p(x), else drawn from p without x; together p again.
    for x in range(3):
        point = np.zeros(4)
        point[x] = 1.0
        ax = sd.acceptance_probability(p, None, x)
        assert ax == p[x]
        np.testing.assert_allclose(sd.residual(p, None, x), np.where(np.arange(4) == x, 0, p) / (1 - p[x]), atol=1e-15)
        np.testing.assert_allclose(point * ax + (1 - ax) * sd.residual(p, None, x), p, rtol=0, atol=1e-15)
    # p = q: nothing is ever rejected, and the residual of no mass falls back to p.
    np.testing.assert_allclose(sd.residual(q, q), q, atol=1e-15)
    assert all(sd.acceptance_probability(q, q, x) == 1.0 for x in range(4))


def test_sample_token_draws_its_weights_and_never_a_zero():
    rng = np.random.default_rng(0)
    w = np.array([0.0, 1.0, 0.0, 3.0, 0.0])
    draws = np.array([sd.sample_token(w, rng) for _ in range(4000)])
    assert set(np.unique(draws)) == {1, 3}
    share = np.mean(draws == 3)
    assert abs(share - 0.75) < SE * np.sqrt(0.75 * 0.25 / draws.size)


@functools.lru_cache(maxsize=None)
def _table(prefix: tuple, V: int, alpha: float, salt: int) -> np.ndarray:
    """A fixed pseudo-random distribution for each prefix (a toy language model)."""
    rng = np.random.default_rng([salt, len(prefix), *prefix])
    return rng.dirichlet(np.full(V, alpha))


def _toy_two_tokens(rng, k: int, V: int) -> tuple[int, int]:
    """Two tokens of a toy verifier p(. | prefix) decoded with chain drafts of a toy drafter q(. | prefix), through
    verify_chain round after round (what generate does, without a model)."""
    out: list[int] = []
    while len(out) < 2:
        draft, qs = [], []
        for _ in range(k):
            q = _table(tuple(out + draft), V, 0.7, 2)
            qs.append(q)
            draft.append(sd.sample_token(q, rng))
        rows = [_table(tuple(out + draft[:i]), V, 0.7, 1) for i in range(k + 1)]
        a, y = sd.verify_chain(rows, draft, qs, rng)
        out += draft[:a] + [y]
    return out[0], out[1]


def _toy_joint_pvalue(runs: int, seed: int) -> float:
    V, k = 5, 2
    rng = np.random.default_rng(seed)
    pairs = np.array([_toy_two_tokens(rng, k, V) for _ in range(runs)])
    p1 = _table((), V, 0.7, 1)
    joint = np.concatenate([p1[t] * _table((t,), V, 0.7, 1) for t in range(V)])
    return chi2_pvalue(pairs[:, 0] * V + pairs[:, 1], joint)


def test_chain_speculative_sampling_is_lossless_on_a_toy_language(monkeypatch):
    # The joint law of the first two tokens is p(t1) p(t2 | t1), over drafts that are kept, cut or all accepted.
    assert _toy_joint_pvalue(4000, seed=1) > P_MIN
    # The check has teeth: drawing a rejected position's token from p instead of the residual is caught.
    monkeypatch.setattr(sd, "residual", lambda p, q, x=None: np.asarray(p) / np.sum(p))
    assert _toy_joint_pvalue(4000, seed=1) < 1e-6


# --------------------------------------------------------------------------------------------------------
# The decoder on a real (tiny) model.


def _runs(lm, prompt, drafter, k, n, seed=0):
    return [sd.generate(lm.model, prompt, drafter=drafter, k=k, max_tokens=2, rng=sd.request_rng(seed, j))
            for j in range(n)]


@pytest.fixture(scope="module")
def short_runs(tiny):
    """RUNS two-token requests per drafter: early exit (one layer of two) from a one-token prompt, and prompt lookup
    from a prompt [1, a, 1] whose last token recurs, so that its first round drafts [a, 1], with a the token the
    model itself finds likeliest there (so that drafts are kept as well as cut)."""
    with torch.no_grad():
        p = _probs(tiny.model(input_ids=torch.tensor([[1, a, 1] for a in range(VOCAB)])).logits[:, -1])
    a = int(np.argmax(p[np.arange(VOCAB), np.arange(VOCAB)]))
    return {"early-exit": ([1], _runs(tiny, [1], "early-exit:layers=1", 2, RUNS)),
            "ngram": ([1, a, 1], _runs(tiny, [1, a, 1], "ngram:min=1,max=2", 2, RUNS))}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["early-exit", "ngram"])
def test_output_is_the_verifiers_distribution(tiny, short_runs, name):
    prompt, runs = short_runs[name]
    first = np.array([g.tokens[0] for g in runs])
    second = np.array([g.tokens[1] for g in runs])
    p1 = verifier_probs(tiny.model, prompt)[-1]
    with torch.no_grad():  # p(t2) = sum over t1 of p(t1) p(t2 | t1), all t1 in one batch
        batch = torch.tensor([prompt + [t] for t in range(VOCAB)])
        p2 = p1 @ _probs(tiny.model(input_ids=batch).logits[:, -1])
    assert chi2_pvalue(first, p1) > P_MIN
    assert chi2_pvalue(second, p2) > P_MIN
    # The runs did speculate: drafts were made, some kept and some cut.
    accepted = np.concatenate([g.accepted[g.drafted > 0] for g in runs])
    assert accepted.size >= RUNS and 0 < np.mean(accepted == 0) < 1


@pytest.mark.slow
def test_same_seed_same_tokens_and_requests_replay_alone(tiny, long_runs):
    """A request of a run is a function of the prompt, the seed and its number alone."""
    run = long_runs["early-exit"]
    for j in (0, 4):
        g = run.generations[j]
        alone = sd.generate(tiny.model, g.prompt, drafter=run.drafter, k=run.k, max_tokens=run.max_tokens,
                            rng=sd.request_rng(run.seed, j))
        np.testing.assert_array_equal(alone.tokens, g.tokens)
        np.testing.assert_array_equal(alone.accepted, g.accepted)
        np.testing.assert_array_equal(alone.accept_probability, g.accept_probability)
        assert g.tokens.size == run.max_tokens and g.finish_reason == "length"


@pytest.fixture(scope="module")
def long_runs(tiny, tmp_path_factory):
    """Longer requests (24 tokens, k = 3) through run_requests, with their logs."""
    folder = tmp_path_factory.mktemp("logs")
    rng = np.random.default_rng(5)
    prompts = [[1] + rng.integers(3, VOCAB, size=int(rng.integers(2, 6))).tolist() for _ in range(6)]
    out = {}
    for name, drafter in (("early-exit", "early-exit:layers=1"), ("ngram", "ngram:min=1,max=2")):
        out[name] = sd.run_requests(tiny, prompts, drafter=drafter, k=3, max_tokens=24, seed=3,
                                      out=folder / f"{name}.log", interval=1e-9, warmup_tokens=2,
                                      stop_at_eos=False)
    out["plain"] = sd.run_requests(tiny, prompts[:2], k=0, max_tokens=8, seed=3, out=folder / "plain.log",
                                     warmup_tokens=0)
    return out


@pytest.mark.parametrize("name", ["early-exit", "ngram"])
def test_recorded_acceptance_probabilities_match_a_forward_without_cache(tiny, long_runs, name):
    """Every kept draft's min(1, p/q), recomputed from one cache-free forward of the whole output: the KV caches
    held the committed tokens and nothing of the rejected drafts."""
    checked = 0
    for g in long_runs[name].generations:
        ids = g.prompt.tolist() + g.tokens.tolist()
        p = verifier_probs(tiny.model, ids)
        q = exit_probs(tiny.model, ids, 1) if name == "early-exit" else None
        pos = g.prompt.size  # index in ids of the first token of the round
        for a, e in zip(g.accepted, g.emitted):
            for i in range(min(a, e)):
                t = pos + i
                x = ids[t]
                want = min(1.0, p[t - 1, x] / q[t - 1, x]) if q is not None else p[t - 1, x]
                checked += 1
                assert abs(_round_probability(g, pos, i) - want) < 1e-5
            pos += e
    assert checked >= 10


def _round_probability(g, pos: int, i: int) -> float:
    """The recorded acceptance probability of position i of the round that starts at output index pos."""
    start = g.prompt.size + np.concatenate([[0], np.cumsum(g.emitted)[:-1]])
    r = int(np.flatnonzero(start == pos)[0])
    return float(g.accept_probability[r, i])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["early-exit", "ngram"])
def test_per_position_acceptance_agrees_with_the_theory(long_runs, short_runs, name):
    """P(accept >= j) = E[prod over positions i <= j of min(1, p_i(x_i) / q_i(x_i))] along the drafted path: each
    round's indicator minus its predicted probability has mean 0 (a martingale difference), so their mean lies
    within SE standard errors of 0 at every position."""
    gens = list(long_runs[name].generations) + list(short_runs[name][1])
    for j in (1, 2):
        diffs = np.concatenate([(g.accepted[g.drafted >= j] >= j)
                                - np.prod(g.accept_probability[g.drafted >= j, :j], axis=1) for g in gens])
        assert diffs.size >= 100
        assert abs(diffs.mean()) < SE * diffs.std(ddof=1) / np.sqrt(diffs.size)


def test_ngram_proposal_follows_vllm_rule():
    # vLLM's own example (ngram_proposer.py): [4, 2, 3] has no earlier match, [2, 3] has; three tokens follow it.
    np.testing.assert_array_equal(sd.ngram_proposal([1, 2, 3, 4, 2, 3], 4, 2, 3), [4, 2, 3])
    # The earliest occurrence of the longest n-gram wins.
    np.testing.assert_array_equal(sd.ngram_proposal([5, 1, 2, 9, 1, 2, 7, 1, 2], 2, 2, 2), [9, 1])
    np.testing.assert_array_equal(sd.ngram_proposal([1, 2, 3, 9, 2, 3, 8, 1, 2, 3], 2, 1, 3), [9, 2])
    np.testing.assert_array_equal(sd.ngram_proposal([7, 8, 7], 5, 1, 1), [8, 7])
    assert sd.ngram_proposal([1, 2, 3], 4, 1, 3).size == 0
    assert sd.ngram_proposal([4], 4, 1, 3).size == 0
    # Against the definition, on random sequences over a small alphabet.
    rng = np.random.default_rng(0)
    for _ in range(300):
        t = rng.integers(0, 4, size=int(rng.integers(1, 30))).tolist()
        k, lo = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        hi = lo + int(rng.integers(0, 3))
        want = []
        for n in range(hi, lo - 1, -1):
            starts = [s for s in range(len(t) - n) if n < len(t) and t[s:s + n] == t[len(t) - n:]]
            if starts:
                want = t[starts[0] + n:starts[0] + n + k]
                break
        assert sd.ngram_proposal(t, k, lo, hi).tolist() == want


def test_decoder_drafts_the_ngram_proposal(long_runs):
    """In every round, the n-gram drafter proposed ngram_proposal(context) and the kept tokens are its head."""
    for g in long_runs["ngram"].generations:
        ctx = g.prompt.tolist()
        out = g.tokens.tolist()
        for d, a, e in zip(g.drafted, g.accepted, g.emitted):
            proposal = sd.ngram_proposal(ctx, 3, 1, 2).tolist()
            assert d == len(proposal)
            kept = out[len(ctx) - g.prompt.size:][:e]
            assert kept[:min(a, e)] == proposal[:min(a, e)]
            ctx += kept
    gens = long_runs["ngram"].generations
    assert sum(int(g.accepted[g.drafted > 0].sum()) for g in gens) > 0 and any((g.drafted > 0).any() for g in gens)


# --------------------------------------------------------------------------------------------------------
# The logs parse back. (The deployment reader, brw deployment, must read these files the same way: check at merge.)

LINE = re.compile(r"^INFO \d\d-\d\d \d\d:\d\d:\d\d \[[\w.]+:\d+\] (?P<msg>.*)$")
SPEC = re.compile(r"SpecDecoding metrics: Mean acceptance length: (?P<mal>[\d.]+), Accepted throughput: "
                  r"(?P<at>[\d.]+) tokens/s, Drafted throughput: (?P<dt>[\d.]+) tokens/s, Accepted: (?P<acc>\d+) "
                  r"tokens, Drafted: (?P<dr>\d+) tokens, Per-position acceptance rate: (?P<rates>[\d., ]+), "
                  r"Avg Draft acceptance rate: (?P<rate>[\d.]+|nan)%$")


def _parse_log(path):
    lines = [LINE.match(x) for x in path.read_text().splitlines()]
    assert all(lines)
    spec = [SPEC.match(m["msg"]) for m in lines if m["msg"].startswith("SpecDecoding metrics:")]
    assert all(spec)
    return [m["msg"] for m in lines], spec


@pytest.mark.parametrize("name", ["early-exit", "ngram"])
def test_logs_parse_back(long_runs, name):
    run = long_runs[name]
    log, requests, rounds = (sd.log_paths(run.files[0]))
    msgs, spec = _parse_log(log)
    assert "speculative_config=SpeculativeConfig(method=" in msgs[0] and "num_spec_tokens=3" in msgs[0]
    assert any(m.startswith("Engine 000: Avg prompt throughput:") for m in msgs)
    gens = run.generations
    drafted = np.concatenate([g.drafted for g in gens])
    accepted = np.concatenate([g.accepted for g in gens])
    has = drafted > 0
    # A line per round (interval ~ 0): the counts add up to the run's, and each line's rates are its own.
    assert sum(int(m["acc"]) for m in spec) == accepted[has].sum()
    assert sum(int(m["dr"]) for m in spec) == drafted.sum()
    assert len(spec) == has.sum()
    for m, a, d in zip(spec, accepted[has], drafted[has]):
        rates = [float(r) for r in m["rates"].split(", ")]
        assert rates == [1.0 if a >= j else 0.0 for j in range(1, 4)]
        assert float(m["mal"]) == pytest.approx(1 + a, abs=0.005)
    # Per-request JSON (vLLM's detailed form): spec steps are the drafted rounds.
    reqs = [json.loads(x) for x in requests.read_text().splitlines()]
    assert len(reqs) == len(gens)
    for r, g in zip(reqs, gens):
        s = r["metrics"]["speculative_decoding"]
        assert s["per_step_accepted"] == g.accepted[g.drafted > 0].tolist()
        assert s["per_step_drafted"] == g.drafted[g.drafted > 0].tolist()
        assert sum(s["acceptance_histogram"]) == s["num_spec_steps"] == len(s["per_step_accepted"])
        assert len(s["acceptance_histogram"]) == s["num_spec_tokens"] + 1 == 4
        assert s["num_accepted_draft_tokens"] == sum(s["per_step_accepted"])
        if s["num_spec_steps"]:
            assert s["mean_acceptance_length"] == pytest.approx(1 + s["num_accepted_draft_tokens"] / s["num_spec_steps"])
        assert r["usage"]["completion_tokens"] == g.tokens.size
    # The rounds file: every round, accept_lengths with the bonus token.
    recs = [json.loads(x) for x in rounds.read_text().splitlines()]
    for rec, g in zip(recs, gens):
        assert rec["accept_lengths"] == (g.accepted + 1).tolist()
        assert rec["drafted"] == g.drafted.tolist() and sum(rec["emitted"]) == rec["new_tokens"] == g.tokens.size
        assert all(0 <= d <= s for d, s in zip(rec["draft_seconds"], rec["round_seconds"]))
        assert [len(x) for x in rec["accept_probability"]] == g.drafted.tolist()
    # The run's summary says the same.
    d = run.to_dict()
    assert d["drafts"] == has.sum() and d["accepted_tokens"] == accepted[has].sum()
    assert d["survival"][0] == pytest.approx(np.mean(accepted[has] >= 1))


def test_plain_decoding_logs_no_spec_lines(long_runs):
    run = long_runs["plain"]
    msgs, spec = _parse_log(sd.log_paths(run.files[0])[0])
    assert not spec and "speculative_config=None" in msgs[0]
    reqs = [json.loads(x) for x in sd.log_paths(run.files[0])[1].read_text().splitlines()]
    assert all(r["metrics"]["speculative_decoding"] is None for r in reqs)
    assert all((g.drafted == 0).all() and (g.emitted == 1).all() for g in run.generations)


def test_log_lines_follow_the_interval():
    """Lines come every interval of the run's own clock (prefill and rounds one after another), and at the end."""
    def gen(seconds):
        n = len(seconds)
        return sd.Generation(np.array([1, 2]), np.zeros(n, np.int64), 2, np.full(n, 2), np.ones(n, np.int64),
                             np.full(n, 2), np.array(seconds, float), np.zeros(n), np.arange(n), np.ones((n, 2)),
                             np.ones((n, 2)), 0.5, "length")

    lines = sd.vllm_log_lines([gen([1.0] * 5), gen([1.0] * 5)], 2, interval=4.0)
    spec = [x for x in lines if "SpecDecoding metrics:" in x]
    # clock: 0.5 prefill, rounds end at 1.5 .. 5.5 | 6, 7 .. 11: lines at 4.5, 9 (4.5 later) and at the end (11).
    assert len(spec) == 3
    assert [re.search(r"Accepted: (\d+)", x)[1] for x in spec] == ["4", "4", "2"]
    assert "Per-position acceptance rate: 1.000, 0.000" in spec[0]
    assert "Mean acceptance length: 2.00" in spec[0] and "Avg Draft acceptance rate: 50.0%" in spec[0]


# --------------------------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize("spec", ["bogus", "ngram:min=0", "ngram:n=2", "ngram:min=3,max=2", "early-exit",
                                  "early-exit:layers=x", "ngram:min=2,min=3", 5])
def test_bad_drafter_specs(spec):
    with pytest.raises(BrwError, match="drafter"):
        sd.parse_drafter(spec)


def test_drafter_specs_print_back():
    for spec in ("ngram", "ngram:min=1,max=3", "early-exit:layers=26"):
        assert sd.parse_drafter(spec).spec == spec
    assert sd.parse_drafter("ngram:max=3").spec == "ngram:min=3,max=3"


def test_generate_refuses_bad_input(tiny):
    rng = np.random.default_rng(0)
    with pytest.raises(BrwError, match="drafter"):
        sd.generate(tiny.model, [1], k=2, rng=rng)
    with pytest.raises(BrwError, match="prompt"):
        sd.generate(tiny.model, [], rng=rng)
    with pytest.raises(BrwError, match="temperature"):
        sd.generate(tiny.model, [1], rng=rng, temperature=0.0)


@pytest.mark.parametrize("argv, what", [
    (["--drafter", "bogus", "--k", "2", "--out", "run.log"], "drafter"),
    (["--k", "2", "--out", "run.txt"], ".log"),
    (["--k", "2", "--out", "run.log", "--temperature", "0"], "temperature"),
])
def test_cli_refuses_before_loading(tmp_path, capsys, monkeypatch, argv, what):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.json").write_text('["hello"]')
    assert main(["specdecode", "--prompts", "p.json", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and what in err[0]
    assert list(tmp_path.iterdir()) == [tmp_path / "p.json"]


# --------------------------------------------------------------------------------------------------------
# The study's stated model (brw.studies.specdecode).


def test_survival_extrapolation_and_predicted_tokens_per_second_exact():
    from brw.studies.specdecode import extrapolate_survival, predict

    np.testing.assert_allclose(extrapolate_survival([0.5, 0.25], 5), [0.5, 0.25, 0.125, 0.0625, 0.03125], rtol=1e-15)
    np.testing.assert_allclose(extrapolate_survival([0.6], 3), [0.6, 0.36, 0.216], rtol=1e-15)
    np.testing.assert_allclose(extrapolate_survival([0.6, 0.3, 0.2], 2), [0.6, 0.3], rtol=1e-15)
    V = [1.0, 1.5, 2.0]
    # f = 1: (1 + E[accepted | k]) / (k c + V(k + 1)); k = 0 is 1 / V(1).
    np.testing.assert_allclose(predict([0.5, 0.25], 1.0, V, 0.5, 2), [1.0, 1.5 / 2.0, 1.75 / 3.0], rtol=1e-15)
    # Half the rounds draft: the others cost V(1) and make one token.
    np.testing.assert_allclose(predict([0.5, 0.25], 0.5, V, 0.0, 2), [1.0, 1.25 / 1.25, 1.375 / 1.5], rtol=1e-15)
    # A round overhead o = 0.25 s on every round, plain decoding's included; recovered from a run's seconds per round.
    np.testing.assert_allclose(predict([0.5, 0.25], 0.5, V, 0.0, 2, overhead=0.25),
                               [1 / 1.25, 1.25 / 1.5, 1.375 / 1.75], rtol=1e-15)
    from brw.studies.specdecode import round_overhead

    assert round_overhead(1.75, 0.5, V, 0.0, 2) == pytest.approx(0.25, rel=1e-15)
    assert round_overhead(3.25, 1.0, V, 0.5, 2) == pytest.approx(0.25, rel=1e-15)  # 2 c + V(3) = 3


def test_the_model_as_the_decoder_spends_a_round_exact():
    from brw.studies.specdecode import predict, round_overhead

    V, s = [1.0, 1.5, 2.0], [0.5, 0.25]
    # An early exit (f = 1): k D(1) + s_k (D(2) - D(1)) of forwards (after a round that kept all k its first forward
    # takes two tokens), k h of its own softmaxes and draws, and h per emitted token (1 + A_k) for the verifier.
    D, h = [0.5, 0.75], 0.125
    k1 = (1 + 0.5) / (0.5 + 0.5 * 0.25 + 1 * h + 1.5 + h * 1.5)
    k2 = (1 + 0.75) / (2 * 0.5 + 0.25 * 0.25 + 2 * h + 2.0 + h * 1.75)
    np.testing.assert_allclose(predict(s, 1.0, V, 0.5, 2, draft_curve=D, host=h, draft_host=h),
                               [1 / (1.0 + h), k1, k2], rtol=1e-15)
    # Prompt lookup: half the rounds draft, its search g costs every round, no drafter forward or softmax.
    g = 0.0625
    k1 = (1 + 0.25) / (g + 0.5 * 1.5 + 0.5 * 1.0 + h * 1.25)
    k2 = (1 + 0.375) / (g + 0.5 * 2.0 + 0.5 * 1.0 + h * 1.375)
    np.testing.assert_allclose(predict(s, 0.5, V, 0.0, 2, host=h, search=g), [1 / (1.0 + h), k1, k2], rtol=1e-15)
    # The overhead is what the round took beyond that model.
    spent = 2 * 0.5 + 0.25 * 0.25 + 2 * h + 2.0 + h * 1.75
    assert round_overhead(spent + 0.25, 1.0, V, 0.5, 2, s, draft_curve=D, host=h, draft_host=h) == pytest.approx(
        0.25, rel=1e-14)


def test_cost_pass_times_each_part_on_a_tiny_model(tiny):
    from brw.studies.specdecode import cost_pass

    c = cost_pass(tiny, 8, 2, ["ngram", "early-exit:layers=1"], repeats=1)
    assert len(c["verify"]) == len(c["verify_tree"]) == 3
    assert c["draft"]["ngram"] == 0.0 and c["draft_curve"]["ngram"] is None
    assert c["draft_search"]["ngram"] > 0 and c["draft_search"]["early-exit:layers=1"] == 0.0
    curve = c["draft_curve"]["early-exit:layers=1"]
    assert len(curve) == 2 and curve[0] == c["draft"]["early-exit:layers=1"] and min(curve) > 0
    assert 0 < c["host"] < 1 and all(v > 0 for v in c["verify"])


def _record(drafter, k, prompt, rounds, seconds, accepted, drafted=None):
    drafted = [k] * rounds if drafted is None else drafted
    probs = [[0.5] * d + [None] * (k - d) for d in drafted]
    return {"drafter": drafter, "k": k, "prompt": prompt, "repeat": 0, "request": prompt, "prompt_ids": [1, 2],
            "token_ids": [3] * sum(a + 1 for a in accepted), "drafted": drafted, "accepted": accepted,
            "emitted": [a + 1 for a in accepted], "seconds": [seconds] * rounds, "context": list(range(rounds)),
            "accept_probability": probs, "overlap": probs, "prefill_seconds": 0.1, "finish_reason": "length"}


def _two_blocks(*configs) -> list:
    """Records of blocks 0 and 1, each running every (drafter, k, seconds per round, accepted per round)."""
    return [_record(d, k, p, len(a), secs, a) for p in (0, 1) for d, k, secs, a in configs]


def test_analyse_reads_measured_rates_and_picks_the_predicted_best_k():
    from brw.studies.specdecode import analyse

    # Two blocks; k = 0 makes 1 token per 1 s; a drafter with s_1 = 1/2, s_2 = 1/4 (half the rounds keep one token,
    # a quarter keep two) at V = (1, 1.2, 1.3) and no drafting cost.
    costs = [{"verify": [1.0, 1.2, 1.3], "draft": {"ngram": 0.0}}] * 3
    recs = _two_blocks((None, 0, 1.0, [0] * 4), ("ngram", 1, 1.2, [1, 1, 0, 0]), ("ngram", 2, 1.3, [2, 1, 0, 0]))
    res = analyse(recs, costs, drafters=["ngram"], kmax=2, boot=50, seed=0)
    d = res["drafters"][0]
    assert [m["tokens_per_second"] for m in d["measured"]] == pytest.approx([1.0, 1.5 / 1.2, 1.75 / 1.3])
    assert [s["measured"] for s in d["survival"]] == pytest.approx([0.5, 0.25])
    assert [s["exact"] for s in d["survival"]] == pytest.approx([0.5, 0.25])
    p2 = d["predictions"][1]
    assert p2["k0"] == 2 and p2["predicted"] == pytest.approx([1.0, 1.5 / 1.2, 1.75 / 1.3])
    assert p2["recommended_k"] == 2 and p2["target_i"] and p2["target_ii"] and p2["max_error"] == pytest.approx(0)
    # The rounds took exactly the model's seconds: no overhead, the same prediction.
    w = p2["with_overhead"]
    assert w["overhead"] == pytest.approx(0, abs=1e-12) and w["predicted"] == pytest.approx(p2["predicted"])
    # From the k = 1 log alone, s_2 is extrapolated as s_1^2 = 1/4: the same here.
    assert d["predictions"][0]["survival_used"] == pytest.approx([0.5, 0.25])


def test_analyse_predicts_from_the_rounds_as_spent():
    from brw.studies.specdecode import analyse

    # An early exit whose rounds took exactly the as-spent model's seconds: k D(1) + s_k (D(2) - D(1)) + k h
    # + V(k + 1) + h (1 + A_k); plain rounds V(1) + h. The prediction from either k0 is then exact, and the
    # forward passes alone run high.
    V, D, h = [1.0, 1.2, 1.3], [0.25, 0.375], 0.0625
    s1, s2 = 0.5, 0.25
    spent = {1: 0.25 + s1 * 0.125 + h + 1.2 + h * 1.5, 2: 0.5 + s2 * 0.125 + 2 * h + 1.3 + h * 1.75}
    ee = "early-exit:layers=1"
    costs = [{"verify": V, "draft": {ee: D[0]}, "draft_curve": {ee: D}, "draft_search": {ee: 0.0}, "host": h}] * 3
    recs = _two_blocks((None, 0, 1.0 + h, [0] * 4), (ee, 1, spent[1], [1, 1, 0, 0]), (ee, 2, spent[2], [2, 1, 0, 0]))
    res = analyse(recs, costs, drafters=[ee], kmax=2, boot=50, seed=0)
    assert res["cost"]["model"] == "as spent"
    d = res["drafters"][0]
    for p in d["predictions"]:
        assert p["predicted"] == pytest.approx([m["tokens_per_second"] for m in d["measured"]], rel=1e-12)
        assert p["max_error"] == pytest.approx(0, abs=1e-12) and p["with_overhead"]["overhead"] == pytest.approx(
            0, abs=1e-12)
        assert p["forwards_only"]["ratio"][1] > 1.05
        assert p["plain_scaled"]["scale"] == pytest.approx(1, rel=1e-12)
        assert p["plain_scaled"]["predicted"] == pytest.approx(p["predicted"], rel=1e-12)


def test_a_position_never_accepted_keeps_its_binomial_noise():
    from brw.studies.specdecode import analyse

    # Position 2 is never accepted in 2 x 4 rounds: the block bootstrap resamples 0 every time, so the interval of
    # the measured share is the Wilson interval, whose upper end for no hits in n is z^2 / (n + z^2).
    costs = [{"verify": [1.0, 1.2, 1.3], "draft": {"ngram": 0.0}}] * 3
    recs = _two_blocks((None, 0, 1.0, [0] * 4), ("ngram", 2, 1.3, [1, 1, 0, 0]), ("ngram", 1, 1.2, [1, 0, 0, 0]))
    d = analyse(recs, costs, drafters=["ngram"], kmax=2, boot=50, seed=0)["drafters"][0]
    s2 = d["survival"][1]
    z2 = 1.959963984540054 ** 2
    assert s2["measured"] == 0 and s2["rounds"] == 8
    assert s2["measured_ci"] == pytest.approx([0.0, z2 / (8 + z2)], rel=1e-12, abs=1e-15)
    # exact - measured (0.25 - 0): every resample gives the same, so the interval is the hits' noise given the
    # drafts (hit_noise): each block's 4 rounds accept two with the same probability a = 1/4, so they count as one
    # situation repeated 4 times: +- z sqrt(2 * 4^2 a (1 - a)) / 8.
    half = 1.959963984540054 * (2 * 16 * 0.25 * 0.75) ** 0.5 / 8
    assert s2["exact_minus_measured_ci"] == pytest.approx([0.25 - half, 0.25 + half], rel=1e-12)
    assert s2["overlap_minus_measured_ci"] == pytest.approx([0.25 - half, 0.25 + half], rel=1e-12)
    # The same rounds again at k = 3 (the runs at each k of a block share their request streams, so they count as
    # one run's noise, not two): the same width, not 1/sqrt(2) of it.
    recs += _two_blocks(("ngram", 3, 1.4, [1, 1, 0, 0]))
    costs3 = [{"verify": [1.0, 1.2, 1.3, 1.4], "draft": {"ngram": 0.0}}] * 3
    d3 = analyse(recs, costs3, drafters=["ngram"], kmax=3, boot=50, seed=0)["drafters"][0]
    assert d3["survival"][1]["rounds"] == 16
    assert d3["survival"][1]["exact_minus_measured_ci"] == pytest.approx([0.25 - half, 0.25 + half], rel=1e-12)


def test_hit_noise_counts_a_recurring_situation_once():
    from brw.studies.specdecode import hit_noise

    # One block, k = 2: rounds accept the first token with probability 0.5 and two with 0.5 * 0.2 or 0.5 * 0.4.
    rec = _record("ngram", 2, 0, 2, 1.0, [0, 0])
    rec["accept_probability"] = rec["overlap"] = [[0.5, 0.2], [0.5, 0.4]]
    sd = hit_noise([rec], "ngram", 2)
    # j = 1: the same a = 0.5 twice in one block is one situation repeated: sqrt(2^2 * 0.25); j = 2: two distinct.
    assert sd == pytest.approx([2 * 0.5, (0.1 * 0.9 + 0.2 * 0.8) ** 0.5], rel=1e-12)
    other = {**rec, "prompt": 1}  # the same in another block: independent of the first
    assert hit_noise([rec, other], "ngram", 2) == pytest.approx(sd * 2 ** 0.5, rel=1e-12)
    assert hit_noise([rec], "early-exit:layers=1", 2).tolist() == [0.0, 0.0]


def test_pooled_runs_resample_blocks_within_each_run():
    from brw.errors import BrwError
    from brw.studies.specdecode import analyse

    # Run 0's blocks all decode at 1 token/s, run 1's at 2. Resampled within runs, every resample keeps two blocks
    # of each, so the pooled rate is the same in each (zero width); resampled across runs it moves.
    recs, costs, strata = [], [], {}
    for run, secs in ((0, 1.0), (1, 0.5)):
        for p in (0, 1):
            recs.append({**_record(None, 0, p, 4, secs, [0] * 4), "repeat": run})
            recs.append({**_record("ngram", 1, p, 4, secs, [1, 0, 0, 0]), "repeat": run})
            costs.append({"verify": [1.0, 1.2], "draft": {"ngram": 0.0}, "block": [p, run]})
            strata[(p, run)] = run
    kw = dict(drafters=["ngram"], kmax=1, boot=200, seed=0)
    within = analyse(recs, costs, strata=strata, **kw)["plain"]
    across = analyse(recs, costs, **kw)["plain"]
    assert within["tokens_per_second"] == across["tokens_per_second"] == pytest.approx(4 / 3)
    assert within["ci"] == pytest.approx([4 / 3, 4 / 3], rel=1e-12)
    assert across["ci"][1] - across["ci"][0] > 0.1
    with pytest.raises(BrwError, match="no cost pass"):
        analyse(recs, [c for c in costs if c["block"][1] == 0], strata=strata, **kw)
    with pytest.raises(BrwError, match="no stratum"):
        analyse(recs, costs, strata={b: s for b, s in strata.items() if s == 0}, **kw)
