"""The command line: JSON contract, errors as one line with exit status 2."""

import importlib
import json
import subprocess
import sys

import pytest

from brw.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_frontier_json_contract(capsys):
    code, out, err = run(capsys, "frontier", "--law", "dirichlet:alpha=0.5,k=8", "--P", "100", "--replicates", "5",
                         "--seed", "3", "--json")
    assert code == 0 and err == ""
    d = json.loads(out)
    for key in ["law", "mu", "mu2", "P", "accepted", "stderr", "replicates", "seed", "nodes_per_second"]:
        assert key in d
    assert d["P"] == [1, 2, 4, 8, 16, 32, 64, 100]
    assert len(d["accepted"]) == len(d["stderr"]) == len(d["P"])
    assert d["law"] == "dirichlet:alpha=0.5,k=8" and d["seed"] == 3 and d["replicates"] == 5


def test_frontier_at_and_text(capsys):
    code, out, _ = run(capsys, "frontier", "--law", "fixed:p=0.7/0.3", "--P", "10", "--at", "1,2,10")
    assert code == 0
    assert "0.7000" in out and "1.1900" in out


@pytest.mark.parametrize("argv, words", [
    (["frontier", "--law", "dirichlet:alpha=-1,k=8", "--P", "10"], "alpha=-1"),
    (["frontier", "--law", "fixed:p=0.7/0.2", "--P", "10"], "sum to"),
    (["frontier", "--law", "uniform:k=2", "--P", "0"], "P must be >= 1"),
    (["frontier", "--law", "uniform:k=2", "--P", "10", "--replicates", "0"], "replicates"),
    (["frontier", "--law", "uniform:k=2", "--P", "10", "--at", "11"], "--at"),
    (["frontier", "--law", "uniform:k=2", "--P", "x"], "argument --P: expected a whole number, got 'x'"),
    (["frontier", "--law", "uniform:k=2", "--P", "10", "--at", "a"], "argument --at: expected whole numbers"),
    (["frontier", "--law", "uniform:k=2", "--P", "10", "--plot", "f.jpg"], "ending in .png, .pdf or .svg"),
    (["frontier", "--law", "uniform:k=2"], "required"),
    (["frontier", "--law", "uniform:k=2", "--P", "2147483000"], "needs about"),
    (["nosuchcommand"], "invalid choice"),
])
def test_errors_are_one_line_exit_2(capsys, monkeypatch, argv, words):
    # P=2147483000 needs more than 16 GiB: refused whatever memory this machine has
    monkeypatch.setattr(importlib.import_module("brw.frontier"), "available_memory", lambda: 16 * 2**30)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err and err.startswith("brw: error:")


def test_console_script_exit_status(tmp_path):
    """A real process: status 2, one line, no traceback, nothing written."""
    p = subprocess.run([sys.executable, "-m", "brw.cli", "frontier", "--law", "nope", "--P", "5"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_frontier_bounds_columns(capsys):
    code, out, _ = run(capsys, "frontier", "--law", "dirichlet:alpha=0.5,k=8", "--P", "64", "--replicates", "4",
                       "--bounds", "--json")
    d = json.loads(out)
    assert code == 0
    for key in ["paper_bound", "wald_lorden_bound", "renewal_bound", "asymptotic"]:
        assert len(d[key]) == len(d["P"])


def test_compare_on_the_bundled_real_trees(capsys, tmp_path):
    """brw compare: every model at every P, relative errors that are what they say, and a figure."""
    png = tmp_path / "c.png"
    code, out, err = run(capsys, "compare", "--replicates", "20", "--at", "1,16,256", "--plot", str(png), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert set(d["genres"]) == {"code", "math", "chat", "all"} and png.stat().st_size > 0
    for g in d["genres"].values():
        for m, r in g["models"].items():
            for a, real, rel in zip(r["accepted"], g["real"], r["relative_error"]):
                assert rel == pytest.approx((a - real) / real)
        assert g["models"]["paper_bound"]["accepted"][0] == 0.0
        assert g["real"][0] == pytest.approx(g["models"]["empirical"]["accepted"][0], abs=0.15)  # E[top-1]
    code, out, err = run(capsys, "compare", "--at", "999")
    assert code == 2 and "--at" in err
