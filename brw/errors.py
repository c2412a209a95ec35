"""The one error type for user mistakes.

A `BrwError` says what is wrong and how to fix it in one line, quoting user input clipped (:func:`clip`). The
command line turns it into exit status 2 and that line on stderr; any other exception is a bug (status 1).
"""


class BrwError(ValueError):
    """A user mistake: bad spec, bad file, impossible size."""


def clip(text: str, most: int = 200) -> str:
    """``text`` cut to about ``most`` characters (its head and its tail), to quote user input in a message."""
    text = str(text)
    if len(text) <= most:
        return text
    return f"{text[:most * 2 // 3]}...({len(text)} characters)...{text[-most // 4:]}"
