"""The one error type for user mistakes.

A `BrwError` says what is wrong and how to fix it in one line. The command line turns it into exit status 2
and that line on stderr; any other exception is a bug (status 1).
"""


class BrwError(ValueError):
    """A user mistake: bad spec, bad file, impossible size."""
