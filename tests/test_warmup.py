"""brw compile (brw.studies.warmup): jobs dealt to workers, files moved into a cache one function at a time, and a
cache filled by worker processes that a fresh process loads without compiling."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from brw import cli
from brw.errors import BrwError
from brw.studies import warmup
from brw.studies.warmup import JOBS, compile_kernels

ROOT = Path(__file__).resolve().parent.parent


def test_bad_requests_are_refused_before_any_work():
    for kw, words in [({"jobs": ["nope"]}, "unknown job 'nope'"), ({"jobs": []}, "no jobs"),
                      ({"processes": 0}, "processes must be >= 1"), ({"processes": 1.5}, "whole number")]:
        with pytest.raises(BrwError, match=words):
            compile_kernels(**kw)
    with pytest.raises(BrwError, match="unknown job"):
        warmup.run_job("nope")


def test_jobs_are_dealt_heaviest_first_to_the_least_loaded_worker():
    names = list(JOBS)
    for n in (1, 2, 3, 4):
        parts = warmup._assign(names, n)
        assert sorted(j for p in parts for j in p) == sorted(names) and len(parts) == min(n, len(names))
    # two workers: the heaviest job alone against the rest (75 s against 44 + 10)
    assert warmup._assign(names, 2) == [["frontier"], ["sampled", "tree"]]


def _function(folder: Path, name: str, data: int, text: bytes = b"x") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py311.nbi").write_bytes(text)
    for i in range(1, data + 1):
        (folder / f"{name}.py311.{i}.nbc").write_bytes(text + bytes([i]))


def test_what_a_worker_compiled_moves_in_one_function_at_a_time(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _function(src, "_kernels.b-20", 1, b"seed")  # copied in as the worker's seed, not compiled: left
    _function(dst, "_kernels.b-20", 1, b"old")
    for f in src.iterdir():
        os.utime(f, (1000.0, 1000.0))
    _function(src, "_kernels.a-10", 2, b"new")
    _function(src, "_kernels.c-30", 1, b"new")
    _function(src, "_kernels.a-100", 1, b"other")  # a name that starts like another's is a function of its own
    _function(dst, "_kernels.c-30", 3, b"old")  # compiled again by the worker: replaced
    moved, left = warmup._move_in(src, dst, 2000.0)
    assert (moved, left) == (3, 1)
    assert (dst / "_kernels.a-10.py311.nbi").read_bytes() == b"new"
    assert sorted(p.name for p in dst.glob("_kernels.a-10.*.nbc")) == ["_kernels.a-10.py311.1.nbc",
                                                                      "_kernels.a-10.py311.2.nbc"]
    assert (dst / "_kernels.a-100.py311.nbi").read_bytes() == b"other"
    assert (dst / "_kernels.b-20.py311.nbi").read_bytes() == b"old"
    assert (dst / "_kernels.c-30.py311.nbi").read_bytes() == b"new"
    assert (dst / "_kernels.c-30.py311.1.nbc").read_bytes() == b"new\x01"
    assert not list(dst.glob("*.tmp.*"))
    groups = warmup._groups(src)
    assert [p.name for p in groups["_kernels.a-10.py311.nbi"]] == ["_kernels.a-10.py311.nbi",
                                                                   "_kernels.a-10.py311.1.nbc",
                                                                   "_kernels.a-10.py311.2.nbc"]


def _compiles(cache: Path, job: str) -> dict:
    """Run one job in a fresh process reading ``cache``; Numba's compile events there, by function."""
    code = ("import json, sys\n"
            "from numba.core import event\n"
            "seen = []\n"
            "class L(event.Listener):\n"
            "    def on_start(self, e): seen.append(e.data['dispatcher'].py_func.__qualname__)\n"
            "    def on_end(self, e): pass\n"
            "event.register('numba:compile', L())\n"
            "from brw.studies.warmup import run_job\n"
            f"run_job({job!r})\n"
            "print(json.dumps(seen))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_workers_fill_a_cache_that_a_fresh_process_loads_without_compiling(tmp_path):
    """The tree and sampled jobs in two workers, on two targets that are copies of this process's warm cache but
    for best-first and the threshold walk (the cheapest kernels to compile): the tree job's worker compiles those
    two again, the sampled job's worker loads all it needs, the two kernels move into both targets, and a fresh
    process runs the tree job on either target with no compilation."""
    here = os.environ.get("NUMBA_CACHE_DIR")
    if not here or not Path(here).is_dir():
        pytest.skip("needs the run's own Numba cache folder (pytest-xdist workers have one)")
    a, b = tmp_path / "a", tmp_path / "b"
    for target in (a, b):
        shutil.copytree(here, target)
        gone = [p for p in target.rglob("*") if p.name.startswith(("_kernels.frontier_one-", "_kernels.threshold_one-"))]
        assert gone, "the warm cache should hold the tree job's kernels"
        for p in gone:
            p.unlink()
    res = compile_kernels(["tree", "sampled"], processes=2, targets=[a, b])
    assert res.processes == 2 and set(res.seconds) == {"tree", "sampled"}
    assert res.functions >= 4 and res.kept > 0  # the two taken out, moved into each target; the rest loaded
    for target in (a, b):
        assert {p.name.split("-")[0] for p in target.rglob("*.nbi")} >= {"_kernels.frontier_one",
                                                                         "_kernels.threshold_one"}
    for target in (a, b):
        assert _compiles(target, "tree") == []
    assert cli.main(["compile", "--jobs", "nope"]) == 2
