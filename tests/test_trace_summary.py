"""brw trace-info: the summary numbers, the text, the figure, and one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from trace_data import K

from brw.cli import main
from brw.traces import load_trace

def test_cli_trace_info(tmp_path, trace_file, capsys):
    fig = tmp_path / "h.png"
    assert main(["trace-info", str(trace_file), "--json", "--bootstrap", "200", "--plot", str(fig)]) == 0
    d = json.loads(capsys.readouterr().out)
    t = load_trace(trace_file)
    assert d["positions"] == t.positions and d["contexts"] == 5 and d["k"] == K
    assert math.isclose(d["mu"], t.mu) and d["mu_ci"][0] <= d["mu"] <= d["mu_ci"][1]
    assert math.isclose(d["mu2"], t.mu2) and d["mu2_ci"][0] <= d["mu2"] <= d["mu2_ci"][1]
    assert d["top1_above_0_9"] == pytest.approx(np.mean(np.exp(t.top_logp[:, 0].astype(float)) > 0.9))
    assert sum(d["entropy_hist_counts"]) == t.positions
    assert abs(d["law_mu_minus_mu"]) < 1e-12 and d["tail_exact_share"] == 1.0
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert main(["trace-info", str(trace_file), "--bootstrap", "100"]) == 0
    text = capsys.readouterr().out
    assert "positions in 5 contexts" in text and "95% CI" in text and "entropy histogram" in text


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    assert main(["trace-info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brw: error: trace ") and err.count("\n") == 1
    assert main(["trace-info", "nosuchname"]) == 2
    from brw.traces import BUNDLED

    assert len(BUNDLED) >= 12  # SmolLM2 and Gemma 3 traces, greedy branches, SmolLM2 at T = 0.7
    assert f"bundled traces: {', '.join(sorted(BUNDLED))})" in capsys.readouterr().err


def test_bootstrap_is_checked_in_the_library(trace_file, capsys):
    from brw.errors import BrwError
    from brw.trace_summary import trace_summary

    with pytest.raises(BrwError, match="^bootstrap must be a whole number >= 1, got 0$"):
        trace_summary(load_trace(trace_file), bootstrap=0)
    assert main(["trace-info", str(trace_file), "--bootstrap", "0"]) == 2
    assert "bootstrap must be a whole number >= 1" in capsys.readouterr().err
