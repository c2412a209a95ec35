"""On CUDA as on the CPU: recording a trace and expanding real optimal trees on a GPU give the CPU's tokens and
numbers, to the accuracy of float32.

Marked ``cuda`` and skipped where torch sees no CUDA device; ``sims/cuda_check.sh`` installs what they need and
runs them on a GPU machine. ``BRW_CUDA_TEST_DEVICE=cpu`` runs them here with the CPU in float32 standing in for
the GPU (a check of the tests themselves, not of CUDA).

The model is a small Llama with random weights built from a config (no weights to download): it checks the code
paths (devices, dtypes, the KV cache and the tree attention mask on the GPU), not a real model's numbers. The
reference is the CPU in float64; the GPU runs the same weights in float32. Tolerances follow from float32's
accuracy on this very model: the same computation on the CPU in float32 is the yardstick. Its largest error per
log-probability against float64, delta, is float32 round-off through this network; the GPU's float32 differs
from the CPU's only in the order of its sums, an error of the same size, so a GPU log-probability must lie
within 8 delta (and at least 32 float32 units of roundoff of its size) of float64. A path's log-probability sums one
per level, so its tolerance is its depth times that; accepted(P) sums path probabilities, whose relative error
is at most their log-probability's error, so it must lie within that error times accepted(P). Tokens must be
the CPU's: the tree's nodes are separated by far more than these tolerances (checked), so a different token is
a bug, not round-off.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the model extra: pip install -e '.[model]'")
transformers = pytest.importorskip("transformers", reason="needs the model extra: pip install -e '.[model]'")

from brw.real.expansion import expand, realtrees  # noqa: E402
from brw.real.models import LoadedModel  # noqa: E402
from brw.real.realtree import load_realtrees  # noqa: E402
from brw.real.recording import record  # noqa: E402
from brw.traces import load_trace  # noqa: E402

#: The device under test: CUDA, or what BRW_CUDA_TEST_DEVICE names (``cpu``: these tests checking themselves).
DEVICE = os.environ.get("BRW_CUDA_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(DEVICE is None, reason="no CUDA device here (sims/cuda_check.sh "
                                                                           "runs these on a GPU)")]
VOCAB = 101
#: float32's unit roundoff.
U32 = 2.0**-24


@pytest.fixture(scope="module")
def models():
    """The same random weights three times: the CPU in float64 (the reference), the CPU in float32 (the
    yardstick of float32 round-off) and the device under test in float32."""
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                   bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(7)
    base = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        base.lm_head.weight.mul_(12.0)  # peaked distributions: deep trees, small tails

    def loaded(device, dtype):
        import copy

        model = copy.deepcopy(base).to(device=device, dtype=getattr(torch, dtype)).eval()
        meta = {"model": "tiny random llama", "model_sha256": "0" * 64, "dtype": dtype, "device": device,
                "vocab_size": VOCAB}
        return LoadedModel(model, None, device, dtype, meta, 0.0)

    return {"ref": loaded("cpu", "float64"), "f32": loaded("cpu", "float32"), "dev": loaded(DEVICE, "float32")}


def texts(n: int, length: int, seed: int = 3) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[1] + rng.integers(3, VOCAB, size=length).tolist() for _ in range(n)]


def _tolerance(ref: np.ndarray, f32: np.ndarray) -> float:
    """8 times float32's error on the CPU (the yardstick), and at least 8 times 4 units of roundoff of the values'
    size (should the yardstick happen to land exactly)."""
    delta = float(np.max(np.abs(f32 - ref)))
    return 8.0 * max(delta, 4.0 * U32 * float(np.max(np.abs(ref))))


def _traces(models, tmp_path, inputs, **kw):
    out = {}
    for name, lm in models.items():
        record(lm, inputs, tmp_path / f"{name}.npz", progress=False, **kw)
        out[name] = load_trace(tmp_path / f"{name}.npz")
    return out


def test_teacher_forced_trace_on_the_device_is_the_cpus(models, tmp_path):
    inputs = texts(5, 40)
    t = _traces(models, tmp_path, inputs, mode="teacher-forced", k=8, batch=2,
                prompt_lengths=[len(x) for x in inputs])
    ref, f32, dev = t["ref"], t["f32"], t["dev"]
    for key in ("taken", "context", "offset", "context_tokens", "context_offsets"):
        np.testing.assert_array_equal(getattr(dev, key), getattr(ref, key), err_msg=key)
    for key in ("entropy", "log_moment2", "taken_logp", "top_logp"):
        a, b, c = (np.asarray(getattr(x, key), dtype=np.float64) for x in (ref, f32, dev))
        tol = _tolerance(a, b)
        assert np.max(np.abs(c - a)) <= tol, (key, float(np.max(np.abs(c - a))), tol)
    # The most probable token is the CPU's wherever it leads by more than the tolerance.
    gap = ref.top_logp[:, 0].astype(np.float64) - ref.top_logp[:, 1]
    clear = gap > 2 * _tolerance(ref.top_logp.astype(np.float64), f32.top_logp.astype(np.float64))
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(dev.top_ids[clear, 0], ref.top_ids[clear, 0])


def test_sampled_trace_on_the_device_replays_and_is_what_the_cpu_computes_for_its_tokens(models, tmp_path):
    """Sampling on the device draws from the device's own generator: the same seed draws the same tokens
    again, and the CPU in float64, fed those tokens, computes the numbers the device recorded."""
    prompts = texts(4, 6, seed=5)
    kw = dict(mode="sampled", tokens=16, temperature=1.0, k=8, batch=2, seed=4, progress=False)
    record(models["dev"], prompts, tmp_path / "a.npz", **kw)
    record(models["dev"], prompts, tmp_path / "b.npz", **kw)
    a, b = load_trace(tmp_path / "a.npz"), load_trace(tmp_path / "b.npz")
    np.testing.assert_array_equal(a.context_tokens, b.context_tokens)
    assert a.positions >= 4
    forced = [list(map(int, a.context_ids(c))) for c in range(a.contexts)]
    plen = [int(n) for n in a.prompt_lengths]
    t = _traces({k: models[k] for k in ("ref", "f32")}, tmp_path, forced, mode="teacher-forced", k=8, batch=2,
                prompt_lengths=plen)
    where = {(int(c), int(o)): i for i, (c, o) in enumerate(zip(t["ref"].context, t["ref"].offset))}
    rows = np.array([where[int(c), int(o)] for c, o in zip(a.context, a.offset)])  # the sampled positions
    for key in ("entropy", "log_moment2", "taken_logp"):
        ref, f32 = (np.asarray(getattr(t[k], key), dtype=np.float64)[rows] for k in ("ref", "f32"))
        got = np.asarray(getattr(a, key), dtype=np.float64)
        assert got.shape == ref.shape, key
        tol = _tolerance(ref, f32)
        assert np.max(np.abs(got - ref)) <= tol, (key, float(np.max(np.abs(got - ref))), tol)


def _trees(lm, contexts, pmax, batch):
    return [expand(lm.model, ctx, pmax, batch=batch) for ctx in contexts]


def _paths(parent: np.ndarray, token: np.ndarray) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    for p, t in zip(parent.tolist(), token.tolist()):
        out.append((out[p] if p >= 0 else ()) + (int(t),))
    return out


def _check_accepted(ref: np.ndarray, f32: np.ndarray, dev: np.ndarray, depth: np.ndarray) -> None:
    """accepted(P) of the device against float64: within float32's error per level (measured on the CPU from
    the path log-probabilities, the increments of accepted) times the depth of the deepest node so far."""
    lp = [np.log(np.diff(a, prepend=0.0)) for a in (ref, f32)]
    step = _tolerance(lp[0] / depth, lp[1] / depth)
    err = step * np.maximum.accumulate(depth)  # bound on |d log p| of every path among the first P
    assert np.all(np.abs(dev - ref) <= ref * err * (1 + 2 * err)), float(np.max(np.abs(dev - ref) / (ref * err)))


def test_real_trees_on_the_device_are_the_cpus(models, tmp_path):
    """The device's tree is the CPU's: the same nodes (two nodes closer than the tolerance may trade ranks,
    which moves accepted(P) by less than its tolerance), each with its log-probability, and accepted(P)."""
    contexts = [x[:24] for x in texts(3, 30, seed=11)]
    pmax = 48
    for ctx in contexts:
        w, r, b, d = (expand(models[k].model, ctx, n, batch=16) for k, n in (("ref", pmax + 1), ("ref", pmax),
                                                                               ("f32", pmax), ("dev", pmax)))
        depth = r.depth.astype(np.float64)
        tol = _tolerance(r.logprob / depth, b.logprob / depth) * depth  # each path's log-probability
        # The best node left out is further below the last one kept than the tolerance: the device must keep
        # the same nodes, a different one is a bug, not round-off.
        assert w.logprob[pmax - 1] - w.logprob[pmax] > 2 * tol.max(), "pick a model without a near-tie at pmax"
        mine = dict(zip(d.paths(), d.logprob))
        assert set(mine) == set(r.paths())
        assert all(abs(mine[p] - lp) <= t for p, lp, t in zip(r.paths(), r.logprob, tol))
        _check_accepted(r.accepted, b.accepted, d.accepted, depth)
    # The whole run (brw realtree) on the device: the same trees at the same answer positions.
    trace = tmp_path / "t.npz"
    record(models["ref"], texts(3, 6, seed=13), trace, mode="sampled", tokens=24, k=8, batch=3, seed=1,
           progress=False)
    runs = {}
    for k in ("ref", "f32", "dev"):
        realtrees(str(trace), tmp_path / f"{k}-trees.npz", model=models[k], contexts=3, pmax=24, batch=8, seed=0,
                  progress=False)
        runs[k] = load_realtrees(tmp_path / f"{k}-trees.npz").arrays
    for key in ("source", "row", "context", "offset"):
        np.testing.assert_array_equal(runs["dev"][key], runs["ref"][key], err_msg=key)
    tr = load_trace(trace)
    for i in range(runs["ref"]["accepted"].shape[0]):
        c, off = int(runs["ref"]["context"][i]), int(runs["ref"]["offset"][i])
        w = expand(models["ref"].model, tr.context_ids(c)[:off], 25, batch=8)
        # far above float32's error on these paths (about 1e-5 a level, above): no near-tie at pmax
        assert w.logprob[23] - w.logprob[24] > 1e-3, "pick a trace without a near-tie at pmax"
        assert set(_paths(runs["dev"]["parent"][i], runs["dev"]["token"][i])) == set(
            _paths(runs["ref"]["parent"][i], runs["ref"]["token"][i]))
        _check_accepted(*(runs[k]["accepted"][i].astype(np.float64) for k in ("ref", "f32", "dev")),
                        runs["ref"]["depth"][i].astype(np.float64))
