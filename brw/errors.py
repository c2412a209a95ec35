"""The one error type for user mistakes.

A `BrwError` says what is wrong and how to fix it in one line, quoting user input clipped (:func:`clip`). The
command line turns it into exit status 2 and that line on stderr; any other exception is a bug (status 1).
"""


class BrwError(ValueError):
    """A user mistake: bad spec, bad file, impossible size."""


def whole_number(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int when it is a whole number >= ``minimum`` (an int, not a bool or a float).

    Parameters
    ----------
    value : object
        What the caller was given.
    name : str
        The parameter's name, for the message.
    minimum : int
        The least value allowed.

    Returns
    -------
    int
        The value.

    Raises
    ------
    BrwError
        Naming the parameter, otherwise.
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BrwError(f"{name} must be a whole number >= {minimum}, got {clip(repr(value), 40)}")
    if value < minimum:
        raise BrwError(f"{name} must be a whole number >= {minimum}, got {int(value)}")
    return int(value)


def clip(text: str, most: int = 200) -> str:
    """``text`` cut to about ``most`` characters (its head and its tail), to quote user input in a message."""
    text = str(text)
    if len(text) <= most:
        return text
    return f"{text[:most * 2 // 3]}...({len(text)} characters)...{text[-most // 4:]}"
