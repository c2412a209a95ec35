"""Sampled chains on a real model (brw/real/realsampled.py): the level-by-level walk under a tree mask, with every
early-exit drafter read off the verifier's hidden states, against brute-force sums over every path of a tiny
random Llama evaluated one full sequence at a time."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="real models need torch (pip install 'brw[model]')")
transformers = pytest.importorskip("transformers", reason="real models need transformers (pip install 'brw[model]')")

from brw.real.realsampled import context_chains  # noqa: E402
from brw.sampled import TinyTree, chain_exact  # noqa: E402

CTX = [3, 1, 4, 1, 5]
LAYERS = (1, 2)


@pytest.fixture(scope="module")
def tiny():
    """A 3-layer Llama with random weights in float64 and a vocabulary of 9 (every path of 3 can be summed)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(2)
    cfg = LlamaConfig(vocab_size=9, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg).eval().to(torch.float64)
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)
    yield model
    torch.set_num_threads(before)


def _full_pass_tree(model, L):
    """p and the drafter's q at a path, each from one forward pass over the whole sequence (no cache, no mask)."""

    def vectors(path):
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([CTX + list(path)]), output_hidden_states=True)
            p = torch.softmax(out.logits[0, -1].double(), -1).numpy()
            q = torch.softmax(model.lm_head(model.model.norm(out.hidden_states[L][0, -1])).double(), -1).numpy()
        return p, q

    return TinyTree(vectors, 9)


@pytest.mark.slow
def test_real_walk_against_full_passes(tiny):
    tok, blk, cei, nodes, (tv, kl, bc) = context_chains(tiny, CTX, LAYERS, k=3, tau=1e-300, seed=0)
    assert nodes == 1 + 9 + 81  # every node above the last level, nothing left to the roulette
    for i, L in enumerate(LAYERS):
        tree = _full_pass_tree(tiny, L)
        ex = chain_exact(tree, 3)
        np.testing.assert_allclose(tok[i], ex["token"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(blk[i], ex["block"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(cei[i], ex["ceiling"], rtol=0, atol=1e-10)
        p, q = tree.pq(())
        assert tv[i] == pytest.approx(0.5 * np.abs(p - q).sum(), abs=1e-12)
        assert kl[i] == pytest.approx(float(np.sum(p * np.log(p / q))), abs=1e-10)
        assert bc[i] == pytest.approx(float(np.sqrt(p * q).sum()), abs=1e-12)


def test_real_walk_roulette_is_unbiased(tiny):
    exact = context_chains(tiny, CTX, LAYERS, k=3, tau=1e-300)[1][:, -1]
    runs = np.array([context_chains(tiny, CTX, LAYERS, k=3, tau=0.05, seed=s)[1][:, -1] for s in range(25)])
    se = runs.std(axis=0, ddof=1) / np.sqrt(runs.shape[0])
    assert np.all(se > 0)
    assert np.all(np.abs(runs.mean(axis=0) - exact) < 4.5 * se)
