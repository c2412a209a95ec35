"""The ``trace:`` law: its moments are the trace's recorded means, it simulates, and the bundled traces load."""

from __future__ import annotations

import numpy as np
import pytest
from trace_data import K

from brw import BrwError, parse_law
from brw.traces import BUNDLED, DATA_DIR, load_trace

def test_trace_law_matches_recorded_means(trace_file):
    spec = f"trace:{trace_file}"
    law = parse_law(spec)
    t = load_trace(trace_file)
    assert str(law) == spec and law.spec == spec and parse_law(str(law)) == law
    assert law.tail_exact.all()
    assert abs(law.mu - t.mu) < 1e-12 * t.mu
    assert abs(law.mu2 - t.mu2) < 1e-12 * t.mu2
    assert abs(float(law.psi(1.0))) < 1e-12
    steps, w = law.spine_atoms()
    assert abs(w.sum() - 1) < 1e-12
    assert abs((steps * w).sum() - t.mu) < 1e-10 and abs((steps**2 * w).sum() - t.mu2) < 1e-9
    kl = law.kernel_law()
    assert kl.table.shape == (t.positions, K) and kl.tails.shape == (t.positions, 3, 2)
    assert np.isfinite(law.psi(np.array([0.5, 2.0]))).all()


def test_trace_law_simulates(trace_file):
    from brw.solver import frontier

    law = parse_law(f"trace:{trace_file}")
    r = frontier(law, 256, replicates=8, seed=3)
    acc = np.asarray(r.accepted)
    assert np.all(np.diff(acc) > 0) and 0 < acc[0] < 1 and acc[-1] < 256


def test_trace_law_spec_errors():
    with pytest.raises(BrwError, match=r"needs a trace: trace:PATH or one of trace:\{chat, chat-greedy, chat-t07, "
                       r"chat-t07-greedy, code, code-greedy, code-t07, code-t07-greedy, gemma3-chat, gemma3-chat-greedy, "
                       r"gemma3-code, gemma3-code-greedy, gemma3-math, gemma3-math-greedy, math, math-greedy, math-t07, "
                       r"math-t07-greedy\}"):
        parse_law("trace:")
    with pytest.raises(BrwError, match=r"trace file no/such\.npz does not exist"):
        parse_law("trace:no/such.npz")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in BUNDLED if not n.endswith("-greedy")))  # branches: test_context_laws
def test_bundled_traces(name):
    path = DATA_DIR / BUNDLED[name]
    if not path.exists():
        pytest.skip(f"bundled trace {path.name} not generated yet (sims/record_traces.py)")
    law = parse_law(f"trace:{name}")
    t = law.trace
    hot = name.endswith("-t07")  # SmolLM2's answers sampled at T = 0.7 (issue 24)
    assert str(law) == f"trace:{name}"
    assert t.positions >= 3000 and t.k == 64 and t.meta["mode"] == "sampled" and t.meta["temperature"] == (
        0.7 if hot else 1.0)
    model, _, genre = name.removesuffix("-t07").rpartition("-")
    vocab = {"": 49152, "gemma3": 262144}[model]    # SmolLM2-135M-Instruct's, Gemma 3 270M's
    assert t.meta["vocab_size"] == vocab and t.meta["genre"] == genre
    assert t.meta["model"].startswith({"": "SmolLM2-135M-Instruct", "gemma3": "Gemma 3 270M base"}[model])
    # Exact to round-off except on rows whose tail (< 1e-7) is smaller than the float32 rounding of the stored
    # top-k: there a few parts in 1e8 of a row, a few parts in 1e11 of the mean.
    # At T = 0.7 more rows are that peaked (up to 12% of them): mu and mu2 within 1e-8 and 1e-7 of the recorded.
    tol, tol2 = (1e-8, 1e-7) if hot else (1e-9, 1e-9)
    assert abs(law.mu - t.mu) < tol * t.mu and abs(law.mu2 - t.mu2) < tol2 * t.mu2
    assert law.tail_exact.mean() > (0.85 if hot else 0.995)
    err_h, err_s = law.tail_error
    assert np.abs(err_h).max() < 1e-6 and np.abs(err_s).max() < 1e-4
    # Sampled from the recorded distributions: mean surprisal of the taken tokens estimates mu.
    nll = -t.taken_logp.mean()
    assert abs(nll - t.mu) < 0.15 * t.mu
    # The contexts (prompt + answer ids) are there for real-tree expansion.
    c = int(t.context[-1])
    ids = t.context_ids(c)
    assert len(ids) > t.prompt_lengths[c]
    assert path.stat().st_size < 3_000_000
