"""Temperature on real models (issue 24): the oracle tree of p_T against the naive one-forward-per-node search at
T, real-tree results that record T, moments at other temperatures recorded from the same logits, and brw compare
refusing trees at one temperature beside laws at another. Tiny random models (fast); skipped without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="real trees and recording need torch (pip install 'brw[model]')")
pytest.importorskip("transformers", reason="real trees and recording need transformers (pip install 'brw[model]')")

from brw.errors import BrwError  # noqa: E402
from brw.laws import parse_law  # noqa: E402
from brw.real.expansion import expand, expand_naive, realtrees  # noqa: E402
from brw.real.models import LoadedModel  # noqa: E402
from brw.real.realtree import RealTrees, load_realtrees, save_realtrees  # noqa: E402
from brw.real.recording import record  # noqa: E402
from brw.studies.compare import compare  # noqa: E402
from brw.traces import load_trace  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(vocab=100, seed=0, sharpen=20.0):
    """A 2-layer Llama with random weights in float64 (cached and uncached passes agree to ~1e-15)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    model = LlamaForCausalLM(cfg).eval().to(torch.float64)
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpen)
    return model


def _logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([list(ids)])).logits[0].double().numpy()


def _moments(z):
    lp = z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
    p = np.exp(lp)
    return -(p * lp).sum(-1), (p * lp * lp).sum(-1), lp


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


@pytest.mark.parametrize("ctx,T", [([1, 2, 3, 4, 5], 0.4), (list(range(10, 30)), 0.7), ([1, 2, 3, 4, 5], 1.6)])
def test_tree_at_T_equals_the_naive_search_at_T(tiny, ctx, T):
    """The batched, cached expansion at T (with and without lookahead) pops the naive loop's nodes at T; each
    evaluated node's entropy, second log-moment and top probability are those of p_T, computed here from a
    fresh forward pass; accepted(1) is p_T's top probability."""
    pmax = 24
    ref = expand_naive(tiny, ctx, pmax, temperature=T)
    for batch, ahead in ((1, ()), (8, max(ref.paths(), key=len))):
        got = expand(tiny, ctx, pmax, batch=batch, temperature=T, lookahead=ahead)
        assert got.paths() == ref.paths()
        np.testing.assert_allclose(got.accepted, ref.accepted, rtol=0, atol=1e-12)
    h, s, lp = _moments(_logits(tiny, ctx)[-1] / T)
    assert ref.accepted[0] == pytest.approx(np.exp(lp.max()), abs=1e-13)
    paths = ref.paths()
    for i in np.flatnonzero(~np.isnan(ref.entropy))[:6]:
        h, s, lp = _moments(_logits(tiny, list(ctx) + list(paths[i]))[-1] / T)
        assert ref.entropy[i] == pytest.approx(h, abs=1e-9) and ref.moment2[i] == pytest.approx(s, abs=1e-9)
        assert ref.top1[i] == pytest.approx(np.exp(lp.max()), abs=1e-12)
    if T != 1:
        assert not np.allclose(ref.accepted, expand_naive(tiny, ctx, pmax).accepted)


@pytest.fixture(scope="module")
def tiny_lm():
    model = tiny_model(vocab=100, seed=2, sharpen=8.0)
    return LoadedModel(model, None, "cpu", "float64",
                       {"model": "tiny random llama", "model_sha256": "0" * 64, "vocab_size": 100}, 0.0)


def test_moments_at_other_temperatures_come_from_the_same_logits(tiny_lm, tmp_path):
    """record(moments_at=...) stores, per row, the entropy and second log-moment of softmax(logits / (T t)), as
    computed here from an independent forward pass; the sampled text and every other array are those of the
    same recording without them; folds keep them; the file reads back."""
    ins = [[1, 2, 3], [5, 6, 7, 8], [9, 4]]
    kw = dict(mode="sampled", tokens=10, k=8, batch=2, seed=3, temperature=0.8, progress=False)
    record(tiny_lm, ins, tmp_path / "plain.npz", **kw)
    record(tiny_lm, ins, tmp_path / "moments.npz", moments_at=[0.7, 0.5], **kw)
    a, b = load_trace(tmp_path / "plain.npz"), load_trace(tmp_path / "moments.npz")
    for name, x in a.arrays().items():
        if name != "meta":
            assert np.array_equal(x, b.arrays()[name]), name
    assert a.moments_at is None and b.moments_at.tolist() == [0.5, 0.7] and b.meta["moments_at"] == [0.5, 0.7]
    for c in range(b.contexts):
        ids = b.context_ids(c).astype(np.int64).tolist()
        z = _logits(tiny_lm.model, ids[:-1])
        rows = np.flatnonzero(b.context == c)
        for j, t in enumerate(b.moments_at):
            h, s, _ = _moments(z[b.offset[rows] - 1] / (0.8 * t))
            np.testing.assert_allclose(b.entropy_at[rows, j], h, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(b.log_moment2_at[rows, j], s, rtol=1e-9, atol=1e-12)
    assert np.array_equal(b.moments(0.5)[0], b.entropy_at[:, 0]) and b.moments(0.6) is None
    assert b.moments(1.0)[0] is b.entropy
    fold = b.without_fold(1, 2)
    keep = b.context % 2 != 1
    assert np.array_equal(fold.entropy_at, b.entropy_at[keep])
    with pytest.raises(BrwError, match="moments_at"):
        record(tiny_lm, ins, tmp_path / "bad.npz", moments_at=[0.5, 0.5], **kw)


def test_real_trees_at_T_record_it_and_resume_only_at_it(tiny_lm, tmp_path):
    trace = tmp_path / "trace.npz"
    record(tiny_lm, [[1, 2, 3], [5, 6, 7, 8]], trace, mode="sampled", tokens=12, k=8, batch=2, seed=3,
           progress=False)
    kw = dict(model=tiny_lm, contexts=3, pmax=12, batch=4, seed=0, progress=False)
    cold = tmp_path / "cold.npz"
    realtrees(str(trace), cold, temperature=0.6, **kw)
    res = load_realtrees(cold)
    assert res.meta["temperature"] == 0.6 and res.temperature == 0.6 and res.temperatures == [0.6]
    tr = load_trace(trace)
    r = int(res.arrays["row"][0])
    ids = tr.context_ids(int(tr.context[r]))[:int(tr.offset[r])].astype(np.int64).tolist()
    np.testing.assert_allclose(res.arrays["accepted"][0], expand_naive(tiny_lm.model, ids, 12, temperature=0.6).accepted,
                               atol=1e-12)
    with pytest.raises(BrwError, match="temperature"):
        realtrees(str(trace), cold, temperature=0.7, **kw)
    # trees at the trace's own temperature: the file says 1; an older file without the key resumes as such
    plain = tmp_path / "plain.npz"
    realtrees(str(trace), plain, **{**kw, "contexts": 2})
    old = load_realtrees(plain)
    assert old.temperature == 1.0
    meta = {k: v for k, v in old.meta.items() if k != "temperature"}
    save_realtrees(RealTrees(meta, old.arrays), plain)
    more = realtrees(str(trace), plain, **kw)
    assert more["resumed_contexts"] == 2 and more["new_contexts"] == 1
    with pytest.raises(BrwError, match="temperature"):
        realtrees(str(trace), plain, temperature=0.5, **kw)


@pytest.mark.slow
def test_compare_sets_trees_only_beside_laws_at_their_temperature(tiny_lm, tmp_path):
    """Trees at T = 0.6 from a trace recorded at 1 (its top-k the whole vocabulary, so tempering its rows is
    exact): brw compare refuses them beside laws at T = 1 and scores them beside the laws tempered to 0.6, whose
    roots then match the trees' (the root adjustment would refuse them otherwise); naming the trees' own trace
    changes nothing."""
    trace = tmp_path / "whole.npz"
    record(tiny_lm, [[1, 2, 3], [5, 6, 7, 8], [9, 4], [3, 3]], trace, mode="sampled", tokens=10, k=100, batch=2,
           seed=5, progress=False)
    trees = tmp_path / "trees.npz"
    realtrees(str(trace), trees, model=tiny_lm, contexts=6, pmax=8, batch=4, seed=0, temperature=0.6,
              progress=False)
    with pytest.raises(BrwError, match=r"at T=0\.6 but laws .* are at T=1: temper them to match \(T=0\.6\)"):
        compare(trees, replicates=2, folds=1)
    c = compare(trees, replicates=2, folds=2, T=0.6, at=[1, 8])
    g = next(iter(c.genres.values()))
    assert g.mu == pytest.approx(parse_law(f"trace:{trace},T=0.6").mu, rel=1e-12)
    # every law tempered (gemmix is fitted to the tempered trace, so its own spec is at T = 1)
    assert all(spec.endswith(",T=0.6") for key, spec in g.laws.items() if key != "gemmix"), g.laws
    c2 = compare(trees, replicates=2, folds=2, T=0.6, at=[1, 8], traces={"whole": str(trace)})
    assert json.dumps(c2.to_dict(curves=False)) == json.dumps(c.to_dict(curves=False))
