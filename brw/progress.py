"""A progress bar on stderr for long work: shown only on a terminal, never under ``--json``."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, label, enabled) as bar: bar.update(n)``; silent unless enabled and stderr is a TTY."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(enabled) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0
        self.t0 = time.monotonic()
        self._last = 0.0

    def __enter__(self):
        return self

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        frac = min(self.done / self.total, 1.0)
        width = 30
        fill = int(frac * width)
        elapsed = now - self.t0
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                          f"{elapsed:.0f}s elapsed, {eta:.0f}s left ")
        self.stream.flush()

    def __exit__(self, *exc):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
        return False
