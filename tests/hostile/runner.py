"""Run hostile cases in subprocesses under limits, a few at a time, and say what went wrong with each.

A command-line case runs ``brw`` exactly as the console script does, in a fresh temporary folder as its working
directory, with an address-space limit (``RLIMIT_AS``), a CPU-time limit and a file-size limit, in its own
process group (killed whole on time-out). It must exit with status 2 and print exactly one line on stderr,
nothing on stdout, no traceback, and leave its folder as it found it, using little CPU time.

Python-API cases run in batches, several per subprocess (``batch.py``), each in its own folder and each
checked the same way: the call raises ``BrwError`` with a one-line message, prints nothing, warns nothing,
writes nothing.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the installed console script runs.
ENTRY = "import sys; from brw.cli import main; sys.exit(main())"
#: Address space a case may map: far below the machine's memory, so that a size check that trusts the machine
#: rather than the limit is caught, and a runaway allocation fails fast instead of swapping.
ADDRESS_SPACE = 3 << 30
#: CPU seconds a refusal may take, start-up included (Python, numpy, scipy, numba, the bundled traces).
CPU_SECONDS = 6.0
#: Wall-clock seconds before a case is killed as hung (generous: the corpus shares two cores).
WALL_SECONDS = 90.0
#: Longest error line: user input is quoted clipped.
MAX_LINE = 1000
#: API cases per subprocess.
BATCH = 12
WORKERS = max(2, (os.cpu_count() or 2) + 1)


@dataclass(frozen=True)
class Case:
    """One hostile input. ``argv``: arguments of ``brw`` (a command-line case); ``code``: Python statements
    that must raise BrwError (an API case). ``files``: name -> bytes, a callable writing the file at the path
    given, or None for a folder; created in the case's working folder before it runs."""

    id: str
    argv: tuple[str, ...] | None = None
    code: str | None = None
    files: dict = field(default_factory=dict, hash=False, compare=False)
    env: dict = field(default_factory=dict, hash=False, compare=False)
    stdin: bytes = b""
    says: tuple[str, ...] = ()  # words the one line must hold (the parameter it names)


def _limits(address_space: int, cpu: float):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        c = int(cpu) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (c, c + 5))  # SIGXCPU, then SIGKILL: nothing outlives its test
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "PYTHON", "BRW_", "COV"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the working folder must stay as it was; bytecode goes nowhere
    env.update(extra)
    return env


def snapshot(folder: Path) -> list:
    """Every entry below ``folder`` (hidden ones too) with its type, size and modification time."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out.append((str(p.relative_to(folder)), st.st_mode >> 12, st.st_size, st.st_mtime_ns))
    return sorted(out)


def prepare(folder: Path, files: dict) -> None:
    for name, content in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            p.mkdir()
        elif callable(content):
            content(p)
        else:
            p.write_bytes(content)


@dataclass
class Outcome:
    status: int | None
    stdout: str
    stderr: str
    cpu: float
    wall: float
    timed_out: bool
    before: list
    after: list


def run_process(argv: list[str], cwd: Path, env: dict, stdin: bytes = b"", *, timeout: float = WALL_SECONDS,
                address_space: int = ADDRESS_SPACE, cpu: float = CPU_SECONDS) -> tuple:
    """(status, stdout, stderr, cpu seconds, wall seconds, timed out) of one process under the limits."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        inp.write(stdin)
        inp.seek(0)
        t0 = time.monotonic()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=inp, stdout=out, stderr=err,
                             preexec_fn=_limits(address_space, cpu), start_new_session=True)
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        try:  # a grandchild left in the group would outlive the test
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return (p.returncode, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                usage.ru_utime + usage.ru_stime, wall, bool(killed))


def run_cli(case: Case, base: Path) -> Outcome:
    cwd = Path(tempfile.mkdtemp(prefix="cli-", dir=base))
    prepare(cwd, case.files)
    before = snapshot(cwd)
    status, out, err, cpu, wall, hung = run_process([sys.executable, "-c", ENTRY, *case.argv], cwd,
                                                    _env(case.env), case.stdin)
    return Outcome(status, out, err, cpu, wall, hung, before, snapshot(cwd))


def cli_problems(case: Case, o: Outcome) -> list[str]:
    """What is wrong with a command-line case's outcome (empty: nothing)."""
    problems = []
    lines = o.stderr.splitlines()
    if o.timed_out:
        problems.append(f"killed after {o.wall:.0f} s (hung)")
    if o.status != 2:
        problems.append(f"exit status {o.status}, not 2")
    if "Traceback" in o.stderr:
        problems.append("a traceback on stderr")
    if len(lines) != 1 or not o.stderr.endswith("\n"):
        problems.append(f"{len(lines)} lines on stderr, not 1")
    elif not lines[0].startswith("brw: error: ") or len(lines[0]) < len("brw: error: ") + 10:
        problems.append("the line does not read 'brw: error: ...'")
    elif len(lines[0]) > MAX_LINE:
        problems.append(f"a line of {len(lines[0])} characters")
    missing = [w for w in case.says if w not in o.stderr]
    if missing:
        problems.append(f"the line does not say {missing}")
    if o.stdout:
        problems.append(f"{len(o.stdout)} characters on stdout")
    if o.before != o.after:
        problems.append(f"the working folder changed: {sorted(set(o.after) ^ set(o.before))[:4]}")
    if o.cpu > CPU_SECONDS and not o.timed_out:
        problems.append(f"{o.cpu:.1f} CPU seconds (more than {CPU_SECONDS})")
    if problems:
        problems.append("stderr: " + o.stderr[-1500:])
    return problems


def run_batch(cases: list[Case], base: Path) -> dict[str, list[str]]:
    """API cases in one subprocess (``batch.py``); problems per case id."""
    root = Path(tempfile.mkdtemp(prefix="api-", dir=base))
    spec = []
    for i, case in enumerate(cases):
        d = root / f"case{i}"
        d.mkdir()
        prepare(d, case.files)
        spec.append({"id": case.id, "code": case.code, "dir": str(d), "env": case.env, "says": case.says})
    job = json.dumps({"cases": spec, "cpu": CPU_SECONDS, "timeout": WALL_SECONDS / 2, "max_line": MAX_LINE}).encode()
    status, out, err, cpu, wall, hung = run_process(
        [sys.executable, str(Path(__file__).with_name("batch.py"))], root, _env({}), job,
        timeout=WALL_SECONDS * 2, cpu=CPU_SECONDS * len(cases) + 10)
    results, started = {}, None
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "start" in msg:
            started = msg["start"]
        else:
            results[msg["id"]] = msg["problems"]
    for case in cases:
        if case.id not in results:
            why = "killed as hung" if hung else f"batch exited with status {status}"
            who = "while running this case" if case.id == started else "before this case ran"
            results[case.id] = [f"{why} {who}; stderr: {err[-1500:]}"]
    return results


def _cli_case(case: Case, base: Path) -> dict[str, list[str]]:
    try:
        return {case.id: cli_problems(case, run_cli(case, base))}
    except Exception as e:  # the case itself cannot run (an argument too long for exec, say): say so
        return {case.id: [f"the case could not run: {type(e).__name__}: {e}"]}


def run_all(cases: list[Case]) -> dict[str, list[str]]:
    """Problems per case id, every case run (command-line cases one per process, API cases in batches)."""
    base = Path(tempfile.mkdtemp(prefix="brw-hostile-"))
    api = [c for c in cases if c.code is not None]
    cli = [c for c in cases if c.argv is not None]
    batches = [api[i:i + BATCH] for i in range(0, len(api), BATCH)]
    results: dict[str, list[str]] = {}
    with ThreadPoolExecutor(WORKERS) as pool:
        jobs = [pool.submit(run_batch, b, base) for b in batches]
        jobs += [pool.submit(_cli_case, c, base) for c in cli]
        for j in jobs:
            results.update(j.result())
    return results
