"""The command line: JSON contract, errors as one line with exit status 2."""

import importlib
import json
import math
import subprocess
import sys

import numpy as np
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
    monkeypatch.setattr(importlib.import_module("brw.limits"), "available_memory", lambda: 16 * 2**30)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err and err.startswith("brw: error:")


def test_console_script_exit_status(tmp_path):
    """A real process: status 2, one line, no traceback, nothing written."""
    p = subprocess.run([sys.executable, "-m", "brw.cli", "frontier", "--law", "nope", "--P", "5"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_frontier_bounds_columns(capsys):
    """--bounds prints, at every P of the table, the theory's values for the law (theory.bounds)."""
    from brw import theory

    code, out, _ = run(capsys, "frontier", "--law", "dirichlet:alpha=0.5,k=8", "--P", "64", "--replicates", "4",
                       "--bounds", "--json")
    d = json.loads(out)
    assert code == 0
    b = theory.bounds("dirichlet:alpha=0.5,k=8", d["P"])
    for key in ["paper_bound", "wald_lorden_bound", "renewal_bound", "asymptotic"]:
        assert d[key] == pytest.approx(getattr(b, key).tolist(), rel=1e-12, abs=0)
    # and those are the formulas themselves: the paper's (mu + mu2) log P / mu^2, Wald-Lorden's
    # log P / mu + mu2 / mu^2
    mu, mu2, P = d["mu"], d["mu2"], np.array(d["P"], dtype=float)
    assert d["paper_bound"] == pytest.approx(((mu + mu2) * np.log(P) / mu**2).tolist(), rel=1e-12)
    assert d["wald_lorden_bound"] == pytest.approx((np.log(P) / mu + mu2 / mu**2).tolist(), rel=1e-12)


@pytest.mark.slow
def test_compare_on_the_bundled_real_trees(capsys, tmp_path):
    """brw compare: the real curves are the means of the bundled real trees, the theory is theory.bounds for
    each genre's trace law, the simulations are frontier() of every law with the genre's own seed (spawned from
    the comparison's, fold_seed), "all" is the genres' mean with equal weights (curves, predictions, slope), every
    relative error carries its 95% interval, and the empirical law's accepted(1) is the trace's E[top-1 probability]
    within its standard error."""
    from brw import frontier, parse_law, theory
    from brw.real.realtree import load_realtrees
    from brw.studies.compare import Z95, fold_seed

    png = tmp_path / "c.png"
    at = [1, 16, 256]
    code, out, err = run(capsys, "compare", "--replicates", "20", "--seed", "5", "--at", "1,16,256", "--plot",
                         str(png), "--folds", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert set(d["genres"]) == {"code", "math", "chat", "all"} and png.stat().st_size > 0
    trees = load_realtrees()
    idx = np.array(at) - 1
    names = ("code", "math", "chat")
    for name, g in d["genres"].items():
        real = trees.accepted(None if name == "all" else name)
        assert g["contexts"] == real.shape[0]
        if name == "all":  # the genres' mean, each genre weighing a third whatever its count
            means = [trees.accepted(n).mean(0)[idx] for n in names]
            ses = [trees.accepted(n).std(0, ddof=1)[idx] / math.sqrt(trees.accepted(n).shape[0]) for n in names]
            assert g["real"] == pytest.approx((sum(means) / 3).tolist(), rel=1e-12)
            assert g["real_stderr"] == pytest.approx((np.sqrt(sum(s**2 for s in ses)) / 3).tolist(), rel=1e-12)
        else:
            assert g["real"] == pytest.approx(real.mean(0)[idx].tolist(), rel=1e-12)
            assert g["real_stderr"] == pytest.approx((real.std(0, ddof=1)[idx] / math.sqrt(real.shape[0])).tolist(),
                                                     rel=1e-12)
        for m, r in g["models"].items():
            for a, se, real_p, real_se, rel, lo, hi in zip(r["accepted"], r["stderr"], g["real"], g["real_stderr"],
                                                           r["relative_error"], r["relative_error_low"],
                                                           r["relative_error_high"]):
                assert rel == pytest.approx((a - real_p) / real_p)
                half = Z95 * math.hypot(se / real_p, a * real_se / real_p**2)
                assert (lo, hi) == pytest.approx((rel - half, rel + half), rel=1e-12, abs=1e-15)
        if name == "all":
            continue
        assert g["fold_seeds"] == {"0": fold_seed(5, trees.sources.index(name), 0)} and g["fold_weights"] == {"0": 1.0}
        # each formula of theory.bounds by itself: bounds() would also compute Biggins' speed (1-2 s for a trace
        # law, not compared here); test_theory.py checks that bounds() gathers these very functions
        for m in ("paper_bound", "asymptotic", "renewal_bound"):
            want = getattr(theory, m)(f"trace:{name}", at)
            assert g["models"][m]["accepted"] == pytest.approx(want.tolist(), rel=1e-12)
        mix = theory.context_mixture(f"ctx:trace={name}", at, prediction="asymptotic")
        assert g["models"]["context_mixture"]["accepted"] == pytest.approx(mix.tolist(), rel=1e-12)
        assert g["laws"]["prefix"] == f"prefix:trace={name},greedy={name}-greedy,cap=8"
        assert g["laws"]["prefix_text"] == f"prefix:trace={name},cap=8"
        for m in ("empirical", "gemmix", "markov", "ctx", "path", "edge", "run", "prefix", "prefix_text"):
            sim = frontier(g["laws"][m], trees.pmax, replicates=20, seed=g["fold_seeds"]["0"])
            assert g["models"][m]["accepted"] == pytest.approx(sim.accepted[idx].tolist(), rel=1e-12)
        top1 = np.exp(parse_law(f"trace:{name}").trace.top_logp[:, 0].astype(np.float64)).mean()
        emp = g["models"]["empirical"]
        assert abs(emp["accepted"][0] - top1) < 4.5 * emp["stderr"][0]
    for m in ("paper_bound", "empirical"):
        pooled = sum(np.array(d["genres"][n]["models"][m]["accepted"]) for n in names) / 3
        assert d["genres"]["all"]["models"][m]["accepted"] == pytest.approx(pooled.tolist(), rel=1e-12)
    code, out, err = run(capsys, "compare", "--at", "999")
    assert code == 2 and "at values must lie in 1..256" in err


#: A fresh process that imports the real-tree results module, summarizes the bundled real trees and runs
#: ``brw compare`` ARGV, then prints its status, what it printed and which of torch and transformers it loaded.
WITHOUT_TORCH = """
import contextlib, io, json, sys
import brw.real.realtree
from brw.cli import main
res = brw.real.realtree.load_realtrees()
brw.real.realtree.summarize(res)
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    code = main(["compare"] + sys.argv[1:])
print(json.dumps({"code": code, "out": buf.getvalue(),
                  "loaded": sorted(m for m in ("torch", "transformers") if m in sys.modules)}))
"""


@pytest.mark.slow
def test_compare_out_of_sample(capsys, tmp_path):
    """K-fold: the real trees whose recorded generation lies in fold j are predicted by laws fitted without
    fold j, and a genre's prediction weights the folds by their real contexts; the decomposition of the gap
    over the i.i.d. walk adds up. Run in a fresh process, which also shows that importing the real-tree results
    module and running brw compare (held-out laws included) loads no torch (it was tests/test_models.py's
    test_realtree_results_and_compare_run_without_torch, a second compare of its own: 15 CPU seconds)."""
    from brw import frontier, theory
    from brw.real.realtree import load_realtrees
    from brw.studies.compare import fold_seed

    at, K = [1, 64, 256], 2
    argv = ["--replicates", "10", "--seed", "2", "--at", "1,64,256", "--folds", str(K), "--json"]
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and got["loaded"] == [], got["loaded"]
    d = json.loads(got["out"])
    assert d["folds"] == K
    trees = load_realtrees()
    idx = np.array(at) - 1
    g = d["genres"]["math"]
    fold = trees.arrays["context"][trees.arrays["source"] == trees.sources.index("math")] % K
    w = np.bincount(fold, minlength=K) / fold.size
    for m, spec in (("empirical", "trace:math"), ("markov", "markov:trace=math,regimes=4"),
                    ("ctx", "ctx:trace=math"), ("path", "path:trace=math"), ("run", "run:trace=math,cap=8"),
                    ("prefix", "prefix:trace=math,greedy=math-greedy,cap=8")):
        assert g["laws"][m] == spec
        sims = [frontier(f"{spec},holdout={j}/{K}", trees.pmax, 10, g["fold_seeds"][str(j)]) for j in range(K)]
        want = sum(w[j] * sims[j].accepted[idx] for j in range(K))
        se = np.sqrt(sum((w[j] * sims[j].stderr[idx]) ** 2 for j in range(K)))
        assert g["models"][m]["accepted"] == pytest.approx(want.tolist(), rel=1e-12), m
        assert g["models"][m]["stderr"] == pytest.approx(se.tolist(), rel=1e-12), m
    seeds = [g["fold_seeds"][str(j)] for j in range(K)]
    assert seeds == [fold_seed(2, trees.sources.index("math"), j) for j in range(K)] and len(set(seeds)) == K
    # numpy's spawning, written out: the key (genre, fold) below the comparison's seed, 63 bits of its first word
    state = np.random.SeedSequence(2, spawn_key=(trees.sources.index("math"), 1)).generate_state(1, np.uint64)
    assert seeds[1] == int(state[0]) >> 1
    want = sum(w[j] * theory.renewal_bound(f"trace:math,holdout={j}/{K}", at) for j in range(K))  # as bounds() has it
    assert g["models"]["renewal_bound"]["accepted"] == pytest.approx(want.tolist(), rel=1e-12)
    for name, g in d["genres"].items():
        dec = g["decomposition"]
        assert np.allclose(np.add(dec["contexts"], dec["runs"]) + dec["unexplained"], dec["gap"], atol=1e-12)
        emp, ctx = (np.array(g["models"][m]["accepted"]) for m in ("empirical", "ctx"))
        for key, m in (("runs", "run"), ("paths", "path"), ("edges", "edge"), ("prefixes", "prefix")):
            assert np.allclose(dec[key], np.array(g["models"][m]["accepted"]) - ctx, atol=1e-12)
        assert np.allclose(dec["contexts"], ctx - emp, atol=1e-12)
        assert dec["gap"] == pytest.approx(np.subtract(g["real"], g["models"]["empirical"]["accepted"]).tolist())
        r = g["models"]["path"]
        assert r["max_abs_relative_error"] == pytest.approx(max(abs(x) for x in r["relative_error"]))
        pers = [(r[:, 255] - r[:, 63]) / 2 for r in (trees.accepted(n) for n in  # two doublings, P = 64 to 256
                ([name] if name != "all" else trees.sources))]  # "all": the genres' mean, equal weights
        sl = g["slope_per_doubling"]
        assert (sl["from_P"], sl["to_P"]) == (64, 256)
        assert sl["real"] == pytest.approx(np.mean([per.mean() for per in pers]), rel=1e-12)
        se = math.sqrt(sum(per.var(ddof=1) / per.size for per in pers)) / len(pers)
        assert sl["real_stderr"] == pytest.approx(se, rel=1e-12)
        emp = g["models"]["empirical"]["accepted"]
        assert sl["empirical"] == pytest.approx((emp[2] - emp[1]) / 2, rel=1e-9)
    code, out, err = run(capsys, "compare", "--folds", "0")
    assert code == 2 and "folds" in err


def test_help_texts_state_the_sizes_of_the_installed_data():
    """No help text states a stale count: every 'N contexts' and 'P <= N' in any command's help is a size of a
    bundled file, read from it; compare's help gives every bundled results file's sizes and names every law it
    simulates (run: and prefix: included)."""
    import argparse
    import re

    from brw.cli import build_parser
    from brw.real.realtree import BUNDLED, load_realtrees
    from brw.studies.compare import SIMULATORS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {name: " ".join(p.format_help().split()) for name, p in sub.choices.items()}
    counts, pmaxes = set(), set()
    for name, path in BUNDLED.items():
        if path.is_file():
            res = load_realtrees(name)
            n = sorted({res.accepted(g).shape[0] for g in res.sources})
            counts.update(n)
            pmaxes.add(res.pmax)
            assert f"{name}" in helps["compare"]
            assert f"{'/'.join(map(str, n))} contexts per genre ({', '.join(res.sources)}), P <= {res.pmax}" in \
                helps["compare"], name
    assert counts and pmaxes
    for name, text in helps.items():
        for n in re.findall(r"(\d+) contexts", text):
            assert int(n) in counts, (name, n)
        for n in re.findall(r"P <= (\d+)", text):
            assert int(n) in pmaxes, (name, n)
    for m in SIMULATORS:
        assert f"({'trace' if m == 'empirical' else m}:)" in helps["compare"], m
