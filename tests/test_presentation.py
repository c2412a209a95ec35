"""Figures, tables and progress bars: every --plot takes .png, .pdf and .svg, creates a missing folder, says
where it wrote, and is checked before any work; bars stay off a terminal."""

import json
import os

import pytest

from brw import BrwError, figures
from brw.cli import main
from brw.progress import Progress

MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}


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


def test_progress_is_silent_off_a_terminal(capsys):
    with Progress(10, "work") as bar:
        bar.update(10)
    assert bar.disable
    with Progress(10, "work", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr() == ("", "")


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
