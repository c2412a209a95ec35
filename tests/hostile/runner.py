"""Run hostile cases in subprocesses under limits, a few at a time, and say what went wrong with each.

A command-line case runs ``brw`` exactly as the console script does, in a fresh temporary folder as its working
directory, with an address-space limit (``RLIMIT_AS``), a CPU-time limit and a file-size limit, in its own
process group (killed whole on time-out). It must exit with status 2 and print exactly one line on stderr,
nothing on stdout, no traceback, and leave its folder as it found it, using little CPU time.

Python-API cases run in batches, several per subprocess (``batch.py``), each in its own folder and each
checked the same way: the call raises ``BrwError`` with a one-line message, prints nothing, warns nothing,
writes nothing.

Processes are forked from a server that has imported numpy, scipy and Numba once (``zygote.py``: a fresh
interpreter spends more CPU on those imports than most refusals cost); the CPU seconds of that start-up are
charged to every case. A case that sets environment variables runs in a fresh interpreter, and so does the
first case of every command (``FRESH``), run both ways: the two must end alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import resource
import shutil
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
#: CPU seconds a refusal may take, start-up included (Python, numpy, scipy, numba, the bundled traces). A refusal
#: takes 1 to 3 s on a warm machine; on a fresh clone, with the other pytest-xdist worker compiling the kernels on
#: the second core, refusals that import Dask or start a fresh interpreter took 6.7 and 7.2 CPU seconds: 10 leaves
#: room for that and still catches a refusal that computes before it checks.
CPU_SECONDS = 10.0
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "PYTHON", "BRW_", "COV"))
           or k == "NUMBA_CACHE_DIR"}  # the compiled kernels of this test process (tests/conftest.py)
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
    cwd: str = ""


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


class Zygote:
    """A fork server (``zygote.py``): ``run`` gives what ``run_process`` gives, from a forked child."""

    def __init__(self):
        self.scratch = tempfile.mkdtemp(prefix="brw-zygote-")
        self.log = open(os.path.join(self.scratch, "server.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("zygote.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=_env({}), cwd=self.scratch)
        #: CPU seconds of the interpreter and the imports every command makes: charged to every case.
        self.startup = json.loads(self._answer())["startup"]

    def _answer(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server died: {Path(self.log.name).read_text()[-1500:]}")
        return line

    def run(self, argv, cwd: Path, env: dict, stdin: bytes = b"", *, mode: str = "cli",
            timeout: float = WALL_SECONDS, address_space: int = ADDRESS_SPACE, cpu: float = CPU_SECONDS) -> tuple:
        """(status, stdout, stderr, CPU seconds with the start-up, wall seconds, timed out), as ``run_process``."""
        names = [os.path.join(self.scratch, n) for n in ("in", "out", "err")]
        Path(names[0]).write_bytes(stdin)
        for n in names[1:]:
            Path(n).write_bytes(b"")
        req = {"mode": mode, "argv": list(argv), "cwd": str(cwd), "env": env, "stdin": names[0], "stdout": names[1],
               "stderr": names[2], "cpu": cpu, "address_space": address_space, "timeout": timeout}
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        a = json.loads(self._answer())
        out, err = (Path(n).read_bytes().decode("utf-8", "replace") for n in names[1:])
        return a["status"], out, err, a["cpu"] + self.startup, a["wall"], a["timed_out"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


_IDLE: "queue.SimpleQueue[Zygote]" = queue.SimpleQueue()
_ALL: list = []


@contextlib.contextmanager
def zygote():
    """A fork server of this process's own, for one thread at a time (started on first need)."""
    try:
        z = _IDLE.get_nowait()
    except queue.Empty:
        z = Zygote()
        _ALL.append(z)
    try:
        yield z
    except RuntimeError:  # it died: the next user starts another
        _ALL.remove(z)
        raise
    else:
        _IDLE.put(z)


def close_zygotes() -> None:
    while _ALL:
        _ALL.pop().close()
    while not _IDLE.empty():
        _IDLE.get_nowait()


def run_cli(case: Case, base: Path, fresh: bool = False) -> Outcome:
    """Run a command-line case: forked from a server, or in a fresh interpreter (``fresh``, or a case that sets
    environment variables, which Numba reads at import)."""
    cwd = Path(tempfile.mkdtemp(prefix="cli-", dir=base))
    prepare(cwd, case.files)
    before = snapshot(cwd)
    if fresh or case.env:
        status, out, err, cpu, wall, hung = run_process([sys.executable, "-c", ENTRY, *case.argv], cwd,
                                                        _env(case.env), case.stdin)
    else:
        with zygote() as z:
            status, out, err, cpu, wall, hung = z.run(case.argv, cwd, _env(case.env), case.stdin)
    return Outcome(status, out, err, cpu, wall, hung, before, snapshot(cwd), str(cwd))


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
    with zygote() as z:
        status, out, err, cpu, wall, hung = z.run([], root, _env({}), job, mode="batch", timeout=WALL_SECONDS * 2,
                                                  cpu=CPU_SECONDS * len(cases) + 10)
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


def fresh_cases(cases: list[Case]) -> set[str]:
    """Ids of the command-line cases that also run in a fresh interpreter: the first of every command."""
    first: dict = {}
    for c in cases:
        if c.argv is not None and not c.env:
            first.setdefault(c.argv[0] if c.argv else "", c.id)
    return set(first.values())


def _same_end(forked: Outcome, fresh: Outcome) -> list[str]:
    """What differs between a case forked from the server and the same case in a fresh interpreter: the exit
    status and the words of stdout and stderr. Each ran in a folder of its own, and numbers may differ: the
    memory a refusal reports as available is the address-space limit less what the process has mapped, which
    is more in a child of the server (it holds every preloaded module)."""
    def words(o: Outcome, text: str) -> str:
        return re.sub(r"\d+(?:\.\d+)?", "#", text.replace(o.cwd, "CWD"))

    a, b = ((o.status, words(o, o.stdout), words(o, o.stderr)) for o in (forked, fresh))
    if a != b:
        return [f"forked from the server it ended {a!r}, in a fresh interpreter {b!r}"]
    return []


def _cli_case(case: Case, base: Path, fresh: bool) -> dict[str, list[str]]:
    try:
        o = run_cli(case, base)
        problems = cli_problems(case, o)
        if fresh:
            f = run_cli(case, base, fresh=True)
            problems += cli_problems(case, f) if not problems else []
            problems += _same_end(o, f)
        return {case.id: problems}
    except Exception as e:  # the case itself cannot run (an argument too long for exec, say): say so
        return {case.id: [f"the case could not run: {type(e).__name__}: {e}"]}


def run_all(cases: list[Case], fresh: bool = True) -> dict[str, list[str]]:
    """Problems per case id, every case run (command-line cases one per process, API cases in batches). With
    ``fresh``, the first case of every command also runs in a fresh interpreter (``fresh_cases``)."""
    base = Path(tempfile.mkdtemp(prefix="brw-hostile-"))
    api = [c for c in cases if c.code is not None]
    cli = [c for c in cases if c.argv is not None]
    fresh_ids = fresh_cases(cases) if fresh else set()
    batches = [api[i:i + BATCH] for i in range(0, len(api), BATCH)]
    results: dict[str, list[str]] = {}
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            jobs = [pool.submit(run_batch, b, base) for b in batches]
            jobs += [pool.submit(_cli_case, c, base, c.id in fresh_ids) for c in cli]
            for j in jobs:
                results.update(j.result())
    finally:
        close_zygotes()
        shutil.rmtree(base, ignore_errors=True)
    return results
