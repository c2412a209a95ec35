"""The one error type for user mistakes, and the interrupts a run still owes.

A `BrwError` says what is wrong and how to fix it in one line, quoting user input clipped (:func:`clip`). The
command line turns it into exit status 2 and that line on stderr; any other exception is a bug (status 1).

:data:`PENDING` holds the Ctrl-C (its signal number) or the SIGTERM's exit (a SystemExit) that the command line
recorded while a command runs (``brw.cli``): where a library swallowed the interrupt, or Python dropped it inside
a callback from C, the run still owes it, and :func:`raise_pending` (called by every progress update) ends the
run at its next step.
"""

import threading

#: Interrupts recorded while a command runs (cleared when it starts): signal numbers or SystemExit.
PENDING: list = []


class BrwError(ValueError):
    """A user mistake: bad spec, bad file, impossible size."""


def clip(text: str, most: int = 200) -> str:
    """``text`` cut to about ``most`` characters (its head and its tail), to quote user input in a message."""
    text = str(text)
    if len(text) <= most:
        return text
    return f"{text[:most * 2 // 3]}...({len(text)} characters)...{text[-most // 4:]}"


def raise_pending() -> None:
    """Raise the first interrupt the run owes (KeyboardInterrupt for a signal number, the SystemExit itself), in
    the main thread only; nothing when none is pending."""
    if PENDING and threading.current_thread() is threading.main_thread():
        e = PENDING[0]
        raise e if isinstance(e, SystemExit) else KeyboardInterrupt
