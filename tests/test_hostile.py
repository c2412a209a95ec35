"""Hostile input never hangs, never exhausts memory, never prints a traceback.

The corpus (tests/hostile/cases.py) runs every case in a process of its own under an address-space, CPU-time and
file-size limit, a few at a time (tests/hostile/runner.py), and each case is one test here: exit status 2 and
one line for a command, BrwError with a one-line message for a Python call; nothing written, nothing printed
besides, no warning, no traceback, little CPU time. The processes are forked from a server that has imported
numpy, scipy and Numba (tests/hostile/zygote.py; the CPU of that start-up is charged to every case); the first
case of every command, and every case that sets environment variables, also runs in a fresh interpreter, and
must end there as it did when forked. The cases that need their own set-up (interrupts, closed pipes, signals
during a write, numbers that must come back exact) follow, each in a fresh interpreter.

pytest-xdist runs this file on one worker (--dist loadfile): the corpus runs once, in the module's fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hostile.cases import CASES
from hostile.runner import BATCH, ENTRY, ROOT, _env, fresh_cases, run_all

#: The quick tier's slice of the corpus (the rest is marked slow): the first case of every command and the first
#: batch of Python calls, all forked from the server. The fresh-interpreter runs of the first case of every command
#: (each pays the whole start-up: most of the slice's time) are made when the whole corpus runs, as in CI.
QUICK = fresh_cases(CASES) | {c.id for c in [c for c in CASES if c.code is not None][:BATCH]}


def _warm_kernels() -> None:
    """Compile the kernels the corpus's cases reach, once, into Numba's on-disk cache (``cache=True``). On a fresh
    clone a case would otherwise compile them in its own process and run over its CPU limit (a cold
    ``brw.frontier('uniform:k=2', 4)`` costs 10 to 25 CPU seconds); loading them from the cache costs a case
    little. Every kind of law the kernels draw, each path (walk, best-first, threshold, policies)."""
    import brw

    for law in ("uniform:k=2", "fixed:p=0.7/0.3", "gem:theta=2", "dirichlet:alpha=0.5,k=8",
                "gemmix:s=0.9,theta=2,w=1", "trace:code", "markov:trace=chat,regimes=3"):
        brw.frontier(law, 8, replicates=2, seed=0)
        brw.frontier_tree(law, 8, seed=0)
        brw.threshold(law, [1.0], replicates=2, seed=0)
    brw.policies("dirichlet:alpha=0.5,k=8", 8, ("chain", "specexec:sigma=1", "specsample:k=4,sigma=1"), replicates=2,
                 seed=0)


@pytest.fixture(scope="module")
def problems(request):
    """Problems of the cases selected in this session (all of them unless -m or -k leaves some out); the
    fresh-interpreter runs only with the whole corpus."""
    wanted = {item.callspec.params["case"].id for item in request.session.items
              if getattr(item, "originalname", "") == "test_hostile_input_is_refused"}
    _warm_kernels()
    return run_all([c for c in CASES if c.id in wanted], fresh=len(wanted) == len(CASES))


def test_the_corpus_is_large():
    assert len(CASES) >= 300
    assert {c.argv[0] for c in CASES if c.argv} >= {"frontier", "theory", "trace-info", "import-logprobs",
                                                     "compare", "bench", "realtree", "record", "policies",
                                                     "sequoia", "speedup", "sweep"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c.id in QUICK else pytest.mark.slow) for c in CASES],
                         ids=[c.id for c in CASES])
def test_hostile_input_is_refused(case, problems):
    found = problems[case.id]
    shown = " ".join(case.argv) if case.argv is not None else case.code
    assert not found, f"{shown}\n" + "\n".join(found)


# ------------------------------------------------------------------------------------------------------------
# What needs its own set-up: closed pipes, interrupts, signals during a write, numbers that must come back exact.

LONG = ["frontier", "--law", "dirichlet:alpha=0.5,k=8", "--P", "200000", "--replicates", "400", "--seed", "1"]


def _brw(tmp_path, argv, code=ENTRY, **kw):
    return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=tmp_path, env=_env({}), **kw)


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(tmp_path):
    p = _brw(tmp_path, ["theory", "--law", "uniform:k=2", "--at", "4", "--json"], stdout=subprocess.PIPE,
             stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before brw writes
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141 and err == b""


# Ctrl-C while a module loads raises KeyboardInterrupt at that import: inject it at each heavy one.
INTERRUPTER = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {name!r}:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
""" + ENTRY


def _one_quick(values, quick):
    """The values of a parametrized test, all but ``quick`` marked slow (the quick tier keeps one)."""
    return [pytest.param(v, marks=() if v == quick else pytest.mark.slow) for v in values]


@pytest.mark.parametrize("module", _one_quick(["numpy", "scipy.special", "numba", "brw.laws", "brw.solver",
                                               "brw.theory", "brw.figures", "matplotlib.pyplot"], "brw.solver"))
def test_ctrl_c_during_imports_is_one_line_and_130(tmp_path, module):
    argv = LONG[:5] + ["--replicates", "2", "--bounds", "--plot", "f.png"]
    p = _brw(tmp_path, argv, INTERRUPTER.format(name=module), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 130, err
    assert err.decode().splitlines() == ["brw: interrupted"] and out == b""
    assert list(tmp_path.iterdir()) == []


#: The console script, saying when it is about to call main: the milliseconds before main's first statement
#: (the interpreter, ``import brw.cli``, which loads only argparse and json) are the interpreter's own.
READY = "import sys; from brw.cli import main; sys.stderr.write('ready\\n'); sys.stderr.flush(); sys.exit(main())"


@pytest.mark.parametrize("delay", _one_quick([0.05, 0.2, 0.5, 1.0, 2.0], 0.5))
def test_ctrl_c_at_any_moment_is_one_line_and_130(tmp_path, delay):
    """A real SIGINT once main runs: during imports, parsing, the simulation or the figure."""
    p = _brw(tmp_path, LONG + ["--plot", "f.png"], READY, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stderr.readline() == b"ready\n"
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    lines = err.decode().splitlines()
    assert p.returncode == 130 and lines == ["brw: interrupted"], (p.returncode, err[-2000:])
    assert not [f for f in os.listdir(tmp_path) if f != "f.png"]  # the figure whole, or nothing


def test_sigterm_inside_an_atomic_write_removes_the_temporary_file(tmp_path):
    code = ("import os, signal, time\nfrom brw.files import atomic_path\n"
            "with atomic_path('fig.png') as tmp:\n    tmp.write_bytes(b'half a figure')\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(60)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env({}), capture_output=True, timeout=120)
    assert p.returncode == 128 + signal.SIGTERM and p.stderr == b""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("delay", _one_quick([0.5, 1.5, 3.0], 1.5))
def test_sigterm_during_a_command_leaves_no_temporary_file(tmp_path, delay):
    p = _brw(tmp_path, LONG[:5] + ["--replicates", "4", "--bounds", "--plot", "f.png"], READY,
             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stderr.readline() == b"ready\n"
    time.sleep(delay)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    # Done, unwound (SystemExit), or killed outright once brw's own work was over (interpreter shut-down).
    assert p.returncode in (0, 128 + signal.SIGTERM, -signal.SIGTERM), (p.returncode, err[-2000:])
    assert set(os.listdir(tmp_path)) <= {"f.png"}, (os.listdir(tmp_path), err[-2000:])


@pytest.mark.slow
def test_P_beyond_2_53_and_int64_comes_back_exact():
    big = [2**53 + 1, 2**63 - 1, 10**30 + 1]
    p = subprocess.run([sys.executable, "-c", ENTRY, "theory", "--law", "dirichlet:alpha=0.5,k=8", "--at",
                        ",".join(map(str, big)), "--json"], cwd=ROOT, env=_env({}), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["P"] == big and all(a > 0 for a in d["renewal_bound"])


def test_an_interrupt_dropped_in_c_code_ends_the_run_soon(monkeypatch, capsys):
    """Ctrl-C that lands inside a callback from C (Numba loading or compiling a kernel) cannot be raised there and
    reaches sys.unraisablehook; it must still end the run when control is back in Python, not after the whole
    command (a frontier run went on for 48 s after it, printing its progress)."""
    from types import SimpleNamespace

    from brw import cli

    def run(args):
        sys.unraisablehook(SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt(),
                                          exc_traceback=None, err_msg=None, object=None))
        for _ in range(400):  # 20 s of work in Python, if nothing stops it
            time.sleep(0.05)
        return {}

    monkeypatch.setitem(cli.COMMANDS, "frontier", (cli.COMMANDS["frontier"][0], run, cli.COMMANDS["frontier"][2]))
    t0 = time.monotonic()
    assert cli.main(["frontier", "--law", "uniform:k=2", "--P", "8"]) == 130
    assert time.monotonic() - t0 < 5
    assert capsys.readouterr().err.splitlines() == ["brw: interrupted"]
    assert not cli._ACTIVE and signal.getsignal(signal.SIGINT) is not cli._interrupt


def test_an_interrupt_a_library_swallows_ends_the_run_at_its_next_step(monkeypatch, capsys):
    """Ctrl-C whose KeyboardInterrupt a library catches and drops (seen once under load: a frontier run went on
    printing its progress and said "interrupted" only at its end) ends the run at the next progress update, with
    nothing more printed; once the command is over, the interrupt it owed is settled (a later progress update in
    the same process raises nothing)."""
    from brw import cli
    from brw.errors import PENDING
    from brw.progress import Progress

    def run(args):
        with Progress(40, "frontier", unit="replicates", every=0) as bar:
            for i in range(40):
                if i == 3:
                    try:  # a library that swallows the interrupt
                        os.kill(os.getpid(), signal.SIGINT)
                        time.sleep(1)
                    except KeyboardInterrupt:
                        pass
                time.sleep(0.05)
                bar.update()
        return {}

    monkeypatch.setitem(cli.COMMANDS, "frontier", (cli.COMMANDS["frontier"][0], run, cli.COMMANDS["frontier"][2]))
    t0 = time.monotonic()
    assert cli.main(["frontier", "--law", "uniform:k=2", "--P", "8"]) == 130
    assert time.monotonic() - t0 < 2.6  # 3 steps and the swallowed second, then no step (unchecked: 3 s or more)
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "brw: interrupted" and [line.split()[2] for line in err[:-1]] == ["1/40", "2/40", "3/40"]
    assert not PENDING
    with Progress(2, "later", enabled=False) as bar:
        bar.update()
