"""The bundled real-tree results (brw/data/realtrees-smollm2.npz, from sims/realtrees.py) belong to the bundled
traces: same trace files (sha256), the seeded choice of positions, and accepted(1) equal to each position's
recorded top-1 probability. Needs neither torch nor the model."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from brw.realtree import BUNDLED_RESULTS, load_realtrees, pick_rows, summarize
from brw.traces import load_trace, resolve_trace

pytestmark = pytest.mark.skipif(not BUNDLED_RESULTS.is_file(), reason="no bundled real-tree results yet "
                                                                       "(python sims/realtrees.py)")


def test_bundled_results_match_bundled_traces():
    res = load_realtrees()
    assert res.pmax >= 256
    a = res.arrays
    for j, src in enumerate(res.meta["sources"]):
        sel = a["source"] == j
        n = int(sel.sum())
        assert n >= 128, f"{src['name']}: {n} contexts"
        path = resolve_trace(src["name"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == src["sha256"], (
            f"bundled trace {src['name']} changed since the real trees were expanded: rerun sims/realtrees.py")
        tr = load_trace(src["name"])
        rows = pick_rows(tr, n, res.meta["seed"])
        np.testing.assert_array_equal(np.sort(a["row"][sel]), rows)
        np.testing.assert_array_equal(a["context"][sel], tr.context[a["row"][sel]])
        np.testing.assert_array_equal(a["offset"][sel], tr.offset[a["row"][sel]])
        np.testing.assert_allclose(a["accepted"][sel][:, 0], np.exp(tr.top_logp[a["row"][sel], 0]), atol=1e-5)
    acc = res.accepted()
    assert np.all(np.diff(acc, axis=1) >= 0) and np.all(acc[:, -1] <= res.pmax)
    s = summarize(res)
    assert set(s["by_source"]) == {*res.sources, "all"}
