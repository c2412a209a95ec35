"""Shared test settings: hypothesis never times examples, and is derandomized in CI (CI=true) and under pytest-xdist
(every worker must collect the same generated cases of tests/hostile/cases.py); the heaviest test files run first;
shared fixtures."""

import os

# Bytecode: with PYTHONDONTWRITEBYTECODE set (as on this project's machines) every process of the suite compiles
# brw's modules from source again, and every pytest-xdist worker rewrites the assertions of every test module again
# (no .pyc is kept): 35 CPU seconds of a warm run (536 -> 501, docs/testing.md). The suite writes them (into
# __pycache__, ignored by git), in its own processes and the subprocesses they start.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    import sys

    sys.dont_write_bytecode = False

# Each pytest-xdist worker keeps Numba's compiled kernels in a cache folder of its own. Numba's on-disk cache is
# not safe for two processes compiling the same functions at once (each numbers the data files of its new
# signatures afresh, so one can overwrite the other's and the index then points at the wrong code): on a fresh
# clone the two workers crashed with a segmentation fault in a policies kernel. Subprocesses of a test inherit
# the folder (the hostile corpus passes it on, tests/hostile/runner.py), so they load what their worker compiled.
if os.environ.get("PYTEST_XDIST_WORKER") and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                 ".pytest_cache", "numba-" + os.environ["PYTEST_XDIST_WORKER"])

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=60)
_derandomized = os.environ.get("CI") or os.environ.get("PYTEST_XDIST_WORKER")
settings.load_profile("ci" if _derandomized else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

if os.environ.get("BRW_TEST_OTHER_LIBM"):  # the suite as on another CPU (tests/other_libm.py)
    import other_libm

    other_libm.install()


#: Test files by their share of the suite's time, heaviest first (measured per file on two workers, 2026-12-07:
#: docs/testing.md). Under pytest-xdist with --dist loadfile --no-loadscope-reorder a file is one unit of work, given
#: out in this order (longest first: the two workers end within a few seconds of each other); the files of under
#: 2.5 s follow in their own order. A run in one process keeps the order of the command line.
HEAVIEST_FIRST = ["test_hostile.py", "test_theory.py", "test_reproduce.py", "test_cli.py", "test_context_laws.py",
                  "test_reference_paths.py", "test_theory_check.py", "test_docs.py", "test_realdrafter.py",
                  "test_expansion.py", "test_sweep.py", "test_golden.py", "test_presentation.py", "test_warmup.py",
                  "test_temperature.py", "test_costcurve.py", "test_fitted.py", "test_limits_theory.py",
                  "test_frontier.py", "test_recording.py", "test_layout.py", "test_tailfit.py", "test_transfer.py",
                  "test_deployment.py", "test_realtree.py", "test_traces.py", "test_specdecode.py"]


def _workers(config) -> int:
    """pytest-xdist workers this run will start (0: one process)."""
    n = getattr(config.option, "numprocesses", None)
    if not n or getattr(config.option, "dist", "no") == "no":
        return 0
    if n in ("auto", "logical"):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return int(n)


def pytest_configure(config):
    """Under pytest-xdist, before the workers start: compile the kernels once, in as many processes as there are
    workers (``brw compile``), into every worker's cache folder. Each worker would otherwise compile all of them
    itself, the same work once per worker (on a fresh clone about 2 minutes of each core). With a warm cache this
    takes a few seconds; BRW_TEST_COMPILE=0 skips it."""
    n = _workers(config)
    if os.environ.get("PYTEST_XDIST_WORKER") or n < 2 or os.environ.get("BRW_TEST_COMPILE") == "0":
        return
    import warnings

    from brw.errors import BrwError
    from brw.studies.warmup import compile_kernels

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache")
    try:  # a speed-up only: if it fails, each worker compiles what it needs, as without it (test_warmup tests it)
        targets = [os.environ["NUMBA_CACHE_DIR"]] if "NUMBA_CACHE_DIR" in os.environ else \
            [os.path.join(root, f"numba-gw{i}") for i in range(n)]  # where the workers will read (above)
        config._brw_compiled = compile_kernels(processes=n, targets=targets)
    except BrwError as e:
        warnings.warn(f"brw compile before the workers failed, each worker compiles for itself: {e}")


def pytest_report_header(config):
    done = getattr(config, "_brw_compiled", None)
    if done is not None:
        return (f"brw compile: {done.functions} functions compiled into the workers' caches, {done.kept} cached "
                f"already, {done.wall:.1f} s")


def pytest_collection_modifyitems(items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: the files in the order given (sims/mutation.py
        return  # lists the quickest discriminating tests first)
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order


@pytest.fixture
def trace_file(tmp_path):
    """A valid synthetic trace file (tests/trace_data.py)."""
    from trace_data import write_trace

    return write_trace(tmp_path / "t.npz")
