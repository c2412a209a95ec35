"""Figures, tables and progress: every --plot takes .png, .pdf and .svg, creates a missing folder, says where it
wrote, and is checked before any work; progress is a bar on a terminal, a line every few seconds elsewhere, and
nothing under --json."""

import inspect
import json
import os

import pytest

from brw import BrwError, figures, progress
from brw.cli import main
from brw.progress import Progress

MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}


@pytest.mark.slow
@pytest.mark.parametrize("suffix", figures.SUFFIXES)
def test_frontier_plot_in_every_format_and_a_new_folder(capsys, tmp_path, suffix):
    path = tmp_path / "new" / "deeper" / f"f{suffix}"
    assert main(["frontier", "--law", "dirichlet:alpha=0.5,k=4", "--P", "64", "--replicates", "3", "--bounds",
                 "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"figure: {path}")
    assert path.read_bytes().startswith(MAGIC[suffix])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_plot_path_in_json(capsys, tmp_path):
    path = tmp_path / "f.svg"
    assert main(["frontier", "--law", "fixed:p=0.7/0.3", "--P", "16", "--plot", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(path)


@pytest.mark.parametrize("argv", [
    ["frontier", "--law", "uniform:k=2", "--P", "10"],
    ["compare", "--replicates", "2"],
    ["trace-info", "chat"],
])
@pytest.mark.parametrize("name, words", [("f.jpg", "ending in .png, .pdf or .svg"), ("dir", "it is a folder"),
                                         ("file/f.png", "is not a folder")])
def test_bad_figure_path_fails_before_any_work(capsys, tmp_path, argv, name, words):
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "file").write_text("")
    path = tmp_path / ("dir.png" if name == "dir" else name)
    assert main(argv + ["--plot", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and words in err


def test_check_path_names_no_flag(tmp_path):
    with pytest.raises(BrwError) as e:
        figures.check_path(tmp_path / "x.gif")
    assert "--" not in str(e.value)
    assert figures.check_path(tmp_path / "a" / "b.PDF").name == "b.PDF"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_path_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(BrwError, match="may write in"):
            figures.check_path(ro / "sub" / "f.png")
    finally:
        ro.chmod(0o700)


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_off_a_terminal_is_a_line_every_few_seconds(capsys):
    """Off a terminal (a log, a pipe, CI): nothing for a short run, then a plain line (no carriage return) every
    LINE_SECONDS with what is done, the time so far and the time left, a last line when it is done, and the
    hint once the whole run looks longer than HINT_SECONDS; nothing at all when disabled."""
    clock = Clock()
    with Progress(10, "work", clock=clock, hint="do less") as bar:
        clock.now = 1.0
        bar.update(5)
    assert not bar.disable and capsys.readouterr() == ("", "")  # shorter than a line's interval: silent
    with Progress(100, "frontier", unit="replicates", clock=clock, hint="fewer replicates") as bar:
        for _ in range(10):
            clock.now += 0.25 * progress.LINE_SECONDS
            bar.update(10)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "brw frontier: 40/100 replicates (40%) in 10 s, about 15 s left"
    assert len(lines) == 3 and lines[1].startswith("brw frontier: 80/100") and "\r" not in "".join(lines)
    assert lines[-1] == "brw frontier: 100/100 replicates in 25 s"
    with Progress(1000, "compare", unit="folds", clock=clock, hint="fewer replicates") as bar:
        clock.now += progress.HINT_SECONDS
        bar.update(100)  # a tenth in two minutes: twenty minutes in all
        clock.now += progress.HINT_SECONDS
        bar.update(100)
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == ["brw compare: 100/1000 folds (10%) in 2 min, about 18 min left",
                         "brw compare: about 20 min in all; quicker: fewer replicates"]
    assert sum("quicker" in line for line in lines) == 1  # said once
    with Progress(3, "reproduce", unit="steps", every=0, clock=clock) as bar:  # a line per step
        for name in ("a", "b", "c"):
            bar.set_postfix_str(name)
            bar.update(1)
    assert [line.split(" in ")[0] for line in capsys.readouterr().err.splitlines()] == [
        "brw reproduce: 1/3 steps (a) (33%)", "brw reproduce: 2/3 steps (b) (66%)", "brw reproduce: 3/3 steps"]
    # A resumed run: the units done before it count as done, not in the rate (40 done before; 10 in 10 s now).
    with Progress(100, "realtree", unit="contexts", clock=clock, done=40) as bar:
        clock.now += progress.LINE_SECONDS
        bar.update(10)
    assert capsys.readouterr().err.splitlines()[0] == "brw realtree: 50/100 contexts (50%) in 10 s, about 50 s left"
    with Progress(10, "work", enabled=False, clock=clock) as bar:
        clock.now += 100 * progress.LINE_SECONDS
        bar.update(3)
    assert bar.disable and capsys.readouterr() == ("", "")


#: The commands that can run long with their defaults, each showing its progress unless --json.
LONG = ["frontier", "policies", "speedup", "sweep", "compare", "record", "realtree", "costcurve", "reproduce",
        "bench"]


@pytest.mark.parametrize("name", LONG)
def test_every_long_command_shows_progress_unless_json(name):
    from brw import cli

    assert "progress=not args.json" in inspect.getsource(cli.COMMANDS[name][1])


@pytest.mark.parametrize("argv, label", [
    (["frontier", "--law", "dirichlet:alpha=0.5,k=4", "--P", "4096", "--replicates", "40"], "frontier"),
    (["policies", "--law", "fixed:p=0.7/0.3", "--P", "256", "--replicates", "600"], "policies"),
    (["speedup", "--law", "dirichlet:alpha=0.5,k=4", "--cost", "roofline:t1=0.02,knee=8", "--P", "1024",
      "--replicates", "200"], "frontier"),
    (["bench", "--law", "fixed:p=0.7/0.3", "--law", "uniform:k=3", "--P", "50", "--replicates", "1", "--reference-P",
      "20", "--repeats", "1", "--big", "0", "--no-startup"], "bench"),
])
def test_long_commands_print_progress_lines_off_a_terminal(capsys, monkeypatch, argv, label):
    """A few updates each (replicates come in chunks of 4 per thread and at least 2^16 nodes, brw.solver.chunk_size:
    a few chunks need trees of a few thousand nodes; bench goes a law at a time)."""
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)  # a line at every update
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"brw {label}: ") and err.endswith("\n") and "\r" not in err
    assert main(argv + ["--json"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name, kw, words", [
    ("x.txt", {}, "out {} must end in .npz"),
    ("missing/x.npz", {}, "out {}: folder"),
    ("there.npz", {}, "out {} already exists"),
])
def test_check_output_names_the_parameter(tmp_path, name, kw, words):
    from brw.files import check_output

    (tmp_path / "there.npz").write_bytes(b"")
    path = tmp_path / name
    with pytest.raises(BrwError) as e:
        check_output(path, ".npz", **kw)
    assert str(e.value).startswith(words.format(path))
    assert check_output(tmp_path / "there.npz", ".npz", exist_ok=True) == tmp_path / "there.npz"


def test_record_table_of_greedy_branches():
    """`brw record --branches` without --json prints its own two lines (its summary has no mode, mu or mu2)."""
    from brw import tables

    d = {"file": "g.npz", "positions": 96, "branches": 12, "source": "mine.npz", "depth": 8, "parts": 3,
         "resumed_parts": 1, "seconds": 4.0, "positions_per_second": 24.0, "load_seconds": 1.0}
    text = tables.record(d)
    assert text.split("\n") == ["wrote g.npz: 96 positions on 12 greedy branches of 8 steps from mine.npz",
                                "4.0 s (24.0 positions/s), 1 of 3 contexts resumed"]
    assert tables.record({**d, "resumed_parts": 0, "positions_per_second": None}).endswith("\n4.0 s")
def test_the_readme_test_command_is_what_ci_runs():
    """.ci/run installs and runs exactly the README's test command (the line that runs pytest)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ci = [line for line in (root / ".ci" / "run").read_text().splitlines() if "pytest" in line]
    readme = [line.strip() for line in (root / "README.md").read_text().splitlines() if "-m pytest" in line]
    assert len(ci) == 1 and ci[0].strip() in readme


def test_real_summary_holds_the_named_law_to_the_targets():
    """The real-tree summary reads each genre's worst |error| of the law named beforehand (not the per-row best),
    with its 95% interval and P, the adjusted real SE's worst relative value at P >= 4, and says whether the
    5% target is met and whether the interval resolves it (inside +-5%, or wholly outside)."""
    from brw import tables
    from brw.studies.compare import SIMULATORS

    def genre(errors, lows, highs, other=0.001):
        models = {m: {"adjusted": {"relative_error": [other] * 3, "relative_error_low": [other] * 3,
                                   "relative_error_high": [other] * 3, "max_abs_relative_error": other}}
                  for m in SIMULATORS}
        models["prefix"] = {"adjusted": {"relative_error": errors, "relative_error_low": lows,
                                         "relative_error_high": highs,
                                         "max_abs_relative_error": max(map(abs, errors))}}
        return {"contexts": 10, "real_adjusted": [1.0, 2.0, 4.0], "real_adjusted_stderr": [0.5, 0.01, 0.12],
                "models": models}

    d = {"P": [1, 4, 16], "genres": {
        "met": genre([0.01, -0.03, 0.02], [0.0, -0.045, 0.0], [0.02, -0.015, 0.04]),
        "unresolved": genre([0.0, 0.04, -0.01], [0.0, -0.01, -0.02], [0.0, 0.09, 0.0]),
        "missed": genre([0.0, 0.0, -0.07], [0.0, 0.0, -0.09], [0.0, 0.0, -0.055])}}
    text = tables.real_summary({"M": d})
    first = text.split("Every simulated law")[0]
    rows = {line.split(" | ")[1]: line.rstrip(" |").split(" | ") for line in first.splitlines()
            if line.startswith("| M |")}
    assert rows["met"][3:8] == ["3.00%", "4", "-3.0% [-4, -2]", "yes, resolved", "yes"]  # 0.12 / 4 at P = 16
    assert rows["unresolved"][4:8] == ["4", "+4.0% [-1, +9]", "yes", "no"]
    assert rows["missed"][4:8] == ["16", "-7.0% [-9, -6]", "no, resolved", "no"]
    assert "| M | met | 0.1% |" in text  # every other law's worst error in the second table
