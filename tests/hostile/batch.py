"""Run API cases one after another in this process (see runner.py): each in its own folder, its output captured
at the file-descriptor level, its warnings recorded, its CPU time measured. Reads the job as JSON on stdin;
writes one JSON line per case ({"start": id} before, {"id", "problems"} after) on the original stdout."""

import json
import os
import resource
import signal
import sys
import tempfile
import traceback
import warnings

from runner import snapshot  # noqa: E402  (run as a script: this folder is on sys.path)


class Hung(BaseException):
    pass


def _alarm(signum, frame):
    raise Hung()


def _cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    job = json.load(sys.stdin)
    report = os.fdopen(os.dup(1), "w")
    signal.signal(signal.SIGALRM, _alarm)
    import numpy as np

    import brw
    from brw.errors import BrwError

    for case in job["cases"]:
        print(json.dumps({"start": case["id"]}), file=report, flush=True)
        os.chdir(case["dir"])
        before = snapshot(case["dir"])
        problems = []
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        cap = tempfile.TemporaryFile()
        os.dup2(cap.fileno(), 1)
        os.dup2(cap.fileno(), 2)
        old_env = {k: os.environ.get(k) for k in case["env"]}
        os.environ.update(case["env"])
        t0 = _cpu()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                signal.setitimer(signal.ITIMER_REAL, job["timeout"])
                try:
                    exec(compile(case["code"], case["id"], "exec"), {"brw": brw, "np": np})
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            problems.append("returned instead of raising BrwError")
        except BrwError as e:
            msg = str(e)
            if "\n" in msg or len(msg) < 10 or len(msg) > job["max_line"]:
                problems.append(f"the message is not one line: {msg[:300]!r}")
            missing = [w for w in case["says"] if w not in msg]
            if missing:
                problems.append(f"the message does not say {missing}: {msg[:300]!r}")
        except Hung:
            problems.append(f"still running after {job['timeout']} s")
        except BaseException as e:  # noqa: BLE001 - any other exception is what this corpus looks for
            tb = "".join(traceback.format_exception(e))
            problems.append(f"raised {type(e).__name__}, not BrwError: {tb[-1500:]}")
        cpu = _cpu() - t0
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        cap.seek(0)
        printed = cap.read().decode("utf-8", "replace")
        if caught:
            problems.append(f"{len(caught)} warnings: {str(caught[0].message)[:300]}")
        if printed:
            problems.append(f"printed {printed[-500:]!r}")
        if cpu > job["cpu"]:
            problems.append(f"{cpu:.1f} CPU seconds (more than {job['cpu']})")
        if snapshot(case["dir"]) != before:
            problems.append("its folder changed")
        print(json.dumps({"id": case["id"], "problems": problems}), file=report, flush=True)


if __name__ == "__main__":
    main()
