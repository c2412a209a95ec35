"""brw reproduce: every figure and the report are written, and every number of the report is one of the run's."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest

from brw import tables
from brw.cli import main
from brw.errors import BrwError
from brw.real.realtree import BUNDLED
from brw.studies.reproduce import QUICK, REPORT, RESULTS, STEPS, reproduce

#: A number as the report prints it: sign, digits, decimals, exponent, percent.
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]\d+)?%?(?![\w.])")


def _leaves(obj):
    """Every number in a JSON value."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _leaves(v)


def _shown(token: str) -> tuple[float, float] | None:
    """The value a printed number stands for and half its last digit (its rounding); None for a whole number
    without exponent or percent (counts, P values: not measurements)."""
    pct = token.endswith("%")
    body = token.rstrip("%")
    mant, _, exp = body.partition("e")
    if not pct and not exp and "." not in mant:
        return None
    decimals = len(mant.partition(".")[2])
    half = 0.5 * 10.0 ** (-decimals) * (10.0 ** int(exp) if exp else 1.0)
    value = float(body)
    return (value / 100, half / 100) if pct else (value, half)


def _numbers_in(text: str) -> list[str]:
    """Printed numbers of captions and table rows, leaving out law specs (``dirichlet:alpha=0.5``) and code."""
    text = re.sub(r"`[^`]*`", " ", text)
    text = " ".join(w for w in text.split() if ":" not in w and "=" not in w)
    return NUMBER.findall(text)


@pytest.fixture(scope="module")
def shared_compare():
    """brw.studies.compare.compare with each result kept for the module: the quick run and the run over every
    bundled model both compare the default verifier's real trees, with the same arguments (the result is a
    function of them: fixed seed), so the second takes the first's Comparison instead of fitting and simulating
    it again (5-8 CPU seconds). The results kept, by arguments."""
    from brw.studies import compare as module

    real, kept = module.compare, {}

    def compare(*args, **kw):
        key = repr((args, sorted(kw.items())))
        if key not in kept:
            kept[key] = real(*args, **kw)
        return kept[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "compare", compare)
        yield kept


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_compare):
    out = tmp_path_factory.mktemp("reproduce") / "figures"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = main(["reproduce", "--quick", "--out", str(out), "--json"])
    assert status == 0
    return out, json.loads(buf.getvalue())


@pytest.mark.slow
def test_every_figure_and_the_report_are_written(run):
    out, printed = run
    d = json.loads((out / RESULTS).read_text())
    assert printed == d
    assert [s["name"] for s in d["steps"]] == [s.name for s in STEPS]
    report = (out / REPORT).read_text()
    assert report == tables.reproduce(d)  # the report is a function of the run's numbers
    models = QUICK.compare_models  # the real-tree steps draw one figure per real model
    for s in d["steps"]:
        per = models if s["name"] in ("real", "extra_depth") else 1
        assert sorted(f.rsplit(".", 1)[1] for f in s["figures"]) == ["png"] * per + ["svg"] * per, s["name"]
        stems = {f.rsplit(".", 1)[0] for f in s["figures"]}
        assert len(stems) == per and s["name"] in stems, s["name"]  # each as PNG and SVG, the first named as the step
        for f in s["figures"]:
            data = (out / f).read_bytes()
            assert data.startswith(b"\x89PNG") if f.endswith(".png") else b"<svg" in data[:2000]
            if f.endswith(".png"):
                assert f"]({f})" in report  # every PNG is shown
        assert s["caption"] in report and s["caption"].count(". ") >= 1
    # nothing half-done is left beside the results: only the figures, the report, its numbers and the sweeps
    written = {p.name for p in out.iterdir()}
    assert written == {f for s in d["steps"] for f in s["figures"]} | {REPORT, RESULTS, ".sweep"}


@pytest.mark.slow
def test_every_number_of_the_report_is_the_runs(run):
    out, _ = run
    d = json.loads((out / RESULTS).read_text())
    report = (out / REPORT).read_text()
    checked = 0
    for s in d["steps"]:
        values = list(_leaves(s["numbers"])) + list(_leaves(s["rows"]))
        section = report.split(f"## {s['number']}. {s['title']}")[1].split("\n## ")[0]
        body = [line for line in section.splitlines() if not line.startswith(("![", "*", "Figure:", "|---"))]
        body = [line for line in body if line != section.splitlines()[0]]
        rows = [line for line in body if line.startswith("|")][1:]  # the header names columns
        prose = [line for line in body if not line.startswith("|")]
        for token in _numbers_in("\n".join(prose + rows)):
            shown = _shown(token)
            if shown is None:
                continue
            value, half = shown
            assert any(abs(v - value) <= half * (1 + 1e-9) + 1e-12 for v in values), (s["name"], token)
            checked += 1
    assert checked > 200


@pytest.mark.slow
def test_the_real_tree_steps_draw_every_bundled_model(tmp_path, shared_compare):
    """The quick run compares one real model; with every bundled one, each gets its figures and its sentence.
    (The default verifier's comparison is the quick run's where that ran first in this module: shared_compare.)"""
    res = reproduce(tmp_path, settings=dataclasses.replace(QUICK, compare_models=None), steps=["real", "extra_depth"])
    models = 1 + BUNDLED["gemma3"].is_file()
    report = (tmp_path / REPORT).read_text()
    for s in res.steps:
        assert len(s["figures"]) == 2 * models and all((tmp_path / f).is_file() for f in s["figures"])
        assert len(s["numbers"]["models"]) == models and s["caption"] in report
        if models > 1:
            assert s["caption"].count(" On ") >= models - 1  # a sentence per further model
    with pytest.raises(BrwError, match="settings must be"):
        reproduce(tmp_path, settings={"quick": True})


@pytest.mark.slow
def test_a_second_run_reuses_the_sweeps(run):
    out, _ = run
    res = reproduce(out, quick=True, steps=["accepted", "slopes"])
    assert res.sweeps and all(c["computed"] == 0 and c["reused"] == c["points"] for c in res.sweeps.values())
    assert [s["name"] for s in res.steps] == ["accepted", "slopes"]


def test_bad_output_folders_are_refused_before_any_work(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(BrwError, match="is a file"):
        reproduce(f)
    with pytest.raises(BrwError, match="not a folder"):
        reproduce(f / "below")
    with pytest.raises(BrwError, match="unknown steps nope"):
        reproduce(tmp_path / "out", steps=["nope"])
    assert not (tmp_path / "out").exists()
    assert main(["reproduce", "--out", str(f)]) == 2


def test_numbers_are_read_as_printed():
    assert _shown("4.643") == (4.643, pytest.approx(0.0005))
    assert _shown("+6%")[0] == pytest.approx(0.06) and _shown("+6%")[1] == pytest.approx(0.005)
    assert _shown("1.81e+05") == (181000.0, pytest.approx(500.0))
    assert _shown("256") is None
    assert _numbers_in("`trace:code` at P = 1024, dirichlet:alpha=0.5,k=8 4.64 +- 0.03; 28.0%") == \
        ["1024", "4.64", "0.03", "28.0%"]
    assert math.isclose(_shown("-0.46%")[0], -0.0046)
