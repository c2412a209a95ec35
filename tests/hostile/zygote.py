"""A fork server for hostile cases: one interpreter imports what every brw command imports, then forks a child
per case, which runs the console script's own line (``runner.ENTRY``) or a batch of API cases (``batch.py``).

Why: a fresh interpreter spends 0.3-1.2 CPU seconds importing Python, numpy, scipy and Numba before brw looks
at its input, several times what most refusals cost; over some 600 cases that was most of the corpus's three
minutes. A forked child starts with those modules loaded and is otherwise a process of its own, as a fresh one
would be: its own working folder, environment, stdin/stdout/stderr files, process group, resource limits
(address space, CPU time, file size), exit status and CPU account, and the interpreter's own exit (``SystemExit``,
an uncaught exception's traceback, atexit handlers) since the child leaves the server's loop before it runs the
case. What a child cannot see afresh is the import of those modules: the runner adds the CPU seconds they took
here (``startup``, interpreter included) to every case's own, so that "at most 10 CPU seconds, start-up
included" still holds a refusal to what a fresh interpreter would have spent. Cases that set environment
variables read at import (``NUMBA_NUM_THREADS``) run in fresh interpreters instead (runner.py).

Protocol: one JSON request a line on fd 0, one JSON answer a line on fd 1. The first answer, before any
request, is ``{"startup": CPU seconds}``. A request: ``mode`` ("cli": ``argv``; "batch": the job file as stdin),
``cwd``, ``env`` (the whole environment), ``stdin``, ``stdout``, ``stderr`` (paths), ``cpu`` and
``address_space`` (limits), ``timeout`` (wall seconds before the child's group is killed). An answer:
``status`` (as subprocess reports it), ``cpu`` (the child's user + system seconds), ``wall``, ``timed_out``.
"""

import atexit
import gc
import json
import os
import resource
import signal
import sys
import threading
import time

#: What every brw command that gets past parsing imports: measured as the start-up that each case is charged, with
#: the first build of the command-line parser, which imports what its help texts read and caches the sizes of the
#: bundled files they state (without it every child did that itself: the 675 command-line cases took 77 s on one
#: core, 50 s with it).
STARTUP = ["numpy", "scipy.special", "scipy.optimize", "scipy.stats", "numba", "brw.cli"]
#: Loaded too, to spare the children their import, but not charged: brw's own modules (a refusal that needs
#: one of them pays its import in a fresh interpreter, and is charged the start-up above in its place) and
#: matplotlib (commands that draw).
PRELOAD = ["brw.laws", "brw.solver", "brw.theory", "brw.traces", "brw.trace_summary", "brw.drafting",
           "brw.sequoia", "brw.speedup", "brw.sweeps", "brw.results", "brw.figures", "brw.studies.compare",
           "brw.studies.bench", "matplotlib.pyplot"]


class _Late(Exception):
    pass


def _alarm(signum, frame):
    raise _Late


def _cpu_self() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _wait(pid: int, timeout: float) -> tuple:
    """(exit code as subprocess reports it, CPU seconds, timed out) of the child ``pid``."""
    late = False
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        _, status, usage = os.wait4(pid, 0)
    except _Late:
        late = True
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status, usage = os.wait4(pid, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:  # a grandchild left in the group would outlive the case
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, late


def _serve(reader, answers: int) -> dict:
    """Answer the requests read from ``reader`` until it closes; in a forked child, return its request."""
    signal.signal(signal.SIGALRM, _alarm)
    for line in reader:
        req = json.loads(line)
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            return req
        status, cpu, late = _wait(pid, req["timeout"])
        os.write(answers, (json.dumps({"status": status, "cpu": cpu, "wall": time.monotonic() - t0,
                                       "timed_out": late}) + "\n").encode())
    sys.exit(0)


def _become(req: dict, reader, answers: int) -> None:
    """Turn this forked child into the process the case would have had."""
    os.setsid()
    reader.close()
    os.close(answers)
    os.chdir(req["cwd"])
    for fd, path, flags in ((0, req["stdin"], os.O_RDONLY), (1, req["stdout"], os.O_WRONLY | os.O_TRUNC),
                            (2, req["stderr"], os.O_WRONLY | os.O_TRUNC)):
        f = os.open(path, flags)
        os.dup2(f, fd)
        os.close(f)
    os.environ.clear()
    os.environ.update(req["env"])
    limit = req["address_space"]
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    c = int(req["cpu"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (c, c + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    import importlib

    here = os.path.dirname(os.path.abspath(__file__))
    requests, answers = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    for name in STARTUP:
        importlib.import_module(name)
    from brw.cli import build_parser

    build_parser()  # every command builds it (its help texts read the bundled files' sizes once): charged too
    startup = _cpu_self()
    for name in PRELOAD:
        importlib.import_module(name)
    from runner import ENTRY  # this folder is sys.path[0]

    import batch

    gc.freeze()  # the children's collections leave the preloaded objects alone (no copy-on-write of their pages)
    os.write(answers, (json.dumps({"startup": startup}) + "\n").encode())
    reader = os.fdopen(requests, "r", buffering=1)
    req = _serve(reader, answers)
    # The child from here on: it never returns to the loop.
    _become(req, reader, answers)
    try:
        if req["mode"] == "batch":
            sys.argv = [os.path.join(here, "batch.py")]
            batch.main()
        else:
            sys.argv = ["-c", *req["argv"]]
            sys.path[0] = ""  # as under python -c: the working folder first
            exec(compile(ENTRY, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        code = 0
    except SystemExit as e:
        code = _status(e.code)
    except BaseException:  # what the interpreter does with an uncaught exception: its traceback, status 1
        sys.excepthook(*sys.exc_info())
        code = 1
    _exit(code)


def _status(code) -> int:
    """The exit status the interpreter makes of ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _exit(code: int) -> None:
    """End as the interpreter ends, in what a process can observe: wait for threads that are not daemons, run
    the atexit handlers, flush stdout and stderr; but skip tearing down every module and object, which in a
    forked child copies the server's pages for nothing (a tenth of a CPU second a case)."""
    threading._shutdown()  # the interpreter's own join of non-daemon threads at exit
    atexit._run_exitfuncs()
    for name in ("stdout", "stderr"):
        try:
            getattr(sys, name).flush()
        except Exception:  # noqa: BLE001 - at exit a stream that cannot be flushed is reported, and status 120
            os.write(2, f"Exception ignored in: <_io.TextIOWrapper name='<{name}>'>\n".encode())
            code = code or 120
    os._exit(code)


if __name__ == "__main__":
    main()
