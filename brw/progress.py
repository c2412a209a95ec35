"""Progress of long work, on stderr: a tqdm bar on a terminal; elsewhere (a log file, a pipe, CI) a plain line
every few seconds; nothing when disabled (``--json``, or a caller's ``progress=False``).

Every long command goes through :class:`Progress` (frontier, policies, speedup, sweep, compare, record,
realtree, costcurve, reproduce), so that all of them say alike how far they are, how long is left and, when
that is long, how to make them quicker.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from brw.errors import raise_pending

__all__ = ["Progress", "LINE_SECONDS", "HINT_SECONDS"]

#: Seconds between two lines off a terminal (a run shorter than this prints none).
LINE_SECONDS = 10.0
#: A run expected to take longer than this says how to make it quicker (its ``hint``).
HINT_SECONDS = 120.0


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """How far a long piece of work is, on stderr.

    ``with Progress(total, label, enabled) as bar: bar.update(n)``. On a terminal it is a tqdm bar. Off a
    terminal it writes a line such as ``brw frontier: 40/100 replicates (40%) in 12 s, about 18 s left`` every
    ``every`` seconds (none for a run shorter than that; a line per update with ``every=0``) and a last line
    when the work is done, if it wrote any. When the whole run is expected to take more than
    ``HINT_SECONDS``, it also says ``hint`` once (what makes the command quicker).

    Parameters
    ----------
    total : int
        Units of work (replicates, contexts, batches, steps).
    label : str
        What is being done, shown first.
    enabled : bool, optional
        False silences it (``--json``, or a caller's ``progress=False``).
    unit : str, optional
        What one unit of work is called (``replicates``, ``points``); default ``it``.
    every : float, optional
        Seconds between two lines off a terminal (default ``LINE_SECONDS``).
    hint : str, optional
        How to make the command quicker, e.g. ``--replicates 200 is 10 times quicker``.
    clock : callable, optional
        Seconds, monotonic (default ``time.monotonic``; tests pass their own).
    done : int
        Units done before this run (a resumed one): counted as done, but left out of the rate that the time left
        is estimated from.
    """

    def __init__(self, total: int, label: str, enabled: bool = True, unit: str = "it", *,
                 every: float | None = None, hint: str | None = None, clock=time.monotonic, done: int = 0):
        self.stream = sys.stderr
        self.total = max(int(total), 1)
        self.label = label
        self.unit = unit
        self.hint = hint
        self.every = LINE_SECONDS if every is None else float(every)
        self.clock = clock
        self.n = self.resumed = min(max(int(done), 0), self.total)
        self.postfix = ""
        self.lines = 0
        self.hinted = False
        terminal = bool(enabled) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.mode = "bar" if terminal else "lines" if enabled else "off"
        self.disable = self.mode == "off"
        self.bar = tqdm(total=self.total, desc=label, file=self.stream, dynamic_ncols=True, mininterval=0.1,
                        unit=unit, initial=self.n) if self.mode == "bar" else None
        self.start = self.last = clock()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close(done=exc[0] is None)

    def _left(self, now: float) -> float | None:
        """Seconds left at this run's rate so far (None before its first unit is done)."""
        if self.n <= self.resumed:
            return None
        return (now - self.start) * (self.total - self.n) / (self.n - self.resumed)

    def _maybe_hint(self, now: float, write) -> None:
        left = self._left(now)
        if self.hint and not self.hinted and left is not None and now - self.start + left > HINT_SECONDS:
            self.hinted = True
            write(f"brw {self.label}: about {_duration(now - self.start + left)} in all; quicker: {self.hint}")

    def update(self, n: int = 1) -> None:
        """``n`` more units of work are done. First, an interrupt the run still owes is raised here (one that
        landed where Python could not raise it, or that a library swallowed: ``brw.errors.PENDING``), so that
        long work ends at its next step, not after its last."""
        raise_pending()
        self.n = min(self.n + int(n), self.total)
        if self.mode == "bar":
            self.bar.update(int(n))
            self._maybe_hint(self.clock(), self.bar.write)
        elif self.mode == "lines":
            now = self.clock()
            if now - self.last >= self.every and self.n < self.total:
                self._line(now)

    def set_postfix_str(self, text: str) -> None:
        """What is being worked on now (a step's name, say)."""
        self.postfix = str(text)
        if self.mode == "bar":
            self.bar.set_postfix_str(text)

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _line(self, now: float) -> None:
        left = self._left(now)
        what = f" ({self.postfix})" if self.postfix else ""
        rest = f", about {_duration(left)} left" if left is not None else ""
        self._write(f"brw {self.label}: {self.n}/{self.total} {self.unit}{what} ({100 * self.n // self.total}%) in "
                    f"{_duration(now - self.start)}{rest}")
        self.lines += 1
        self.last = now
        self._maybe_hint(now, self._write)

    def close(self, done: bool = True) -> None:
        """End the bar; off a terminal, a last line if any was written."""
        if self.mode == "bar":
            self.bar.close()
        elif self.mode == "lines" and self.lines and done:
            took = _duration(self.clock() - self.start)
            self._write(f"brw {self.label}: {self.n}/{self.total} {self.unit} in {took}")
        self.mode = "off"
