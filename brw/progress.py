"""Progress bars for long work (tqdm on stderr): shown only on a terminal, never under ``--json``."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["Progress"]


class Progress(tqdm):
    """A tqdm bar on stderr, silent unless ``enabled`` and stderr is a terminal.

    ``with Progress(total, label, enabled) as bar: bar.update(n)``.

    Parameters
    ----------
    total : int
        Units of work (replicates, contexts, batches).
    label : str
        What is being done, shown before the bar.
    enabled : bool, optional
        False silences the bar (``--json``, or a caller's ``progress=False``).
    unit : str, optional
        What one unit of work is called in the rate (``point/s``); default tqdm's ``it``.
    """

    def __init__(self, total: int, label: str, enabled: bool = True, unit: str = "it"):
        stream = sys.stderr
        shown = bool(enabled) and hasattr(stream, "isatty") and stream.isatty()
        super().__init__(total=max(int(total), 1), desc=label, disable=not shown, file=stream,
                         dynamic_ncols=True, mininterval=0.1, unit=unit)
