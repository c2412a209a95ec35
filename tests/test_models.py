"""brw/models.py, the one module that imports torch: nothing else in the package does, the real-tree results and
brw compare run without it, and the float64 next-token statistics are what they say."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
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
    offenders = sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                       if p.name != "models.py" or p.parent != PACKAGE
                       if imported_roots(p) & {"torch", "transformers"})
    assert offenders == []
    assert "torch" in imported_roots(PACKAGE / "models.py")


def test_realtree_results_and_compare_run_without_torch(tmp_path):
    """Importing the results module and running brw compare (on the bundled real trees) loads no torch."""
    code = """
import json, sys
import brw.realtree
from brw.cli import main
res = brw.realtree.load_realtrees()
brw.realtree.summarize(res)
code = main(["compare", "--replicates", "2", "--at", "1,16", "--json"])
print(json.dumps({"code": code, "loaded": sorted(m for m in ("torch", "transformers") if m in sys.modules)}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    d = json.loads(run.stdout.strip().splitlines()[-1])
    assert d == {"code": 0, "loaded": []}


def test_library_errors_without_a_model():
    from brw.models import find_model, set_threads

    with pytest.raises(BrwError, match="^model '/nonexistent/x' is neither 'smollm2'"):
        find_model("/nonexistent/x")
    with pytest.raises(BrwError, match=r"^threads must be a whole number >= 1, got 0$"):
        set_threads(0)


@needs_torch
def test_device_and_dtype_are_checked():
    from brw.models import load_model, pick_device

    assert pick_device("cpu") == "cpu" and pick_device("auto") in ("cpu", "cuda")
    with pytest.raises(BrwError, match="^device must be auto, cpu or cuda"):
        pick_device("tpu")
    with pytest.raises(BrwError, match="^dtype must be one of float32, bfloat16, float16"):
        load_model("smollm2", dtype="int8")


@needs_torch
def test_next_token_stats_against_numpy():
    import torch

    from brw.models import next_token_stats

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

    from brw.models import top_logprobs

    logits = torch.tensor([[0.0, 2.0, 1.0, 2.0, 2.0, -1.0]])
    lp, ids = top_logprobs(logits, 4, temperature=2.0)
    assert ids.tolist() == [[1, 3, 4, 2]]
    ref = logits.double().numpy()[0] / 2
    ref = ref - np.logaddexp.reduce(ref)
    np.testing.assert_allclose(lp[0], ref[[1, 3, 4, 2]], rtol=0, atol=1e-15)
