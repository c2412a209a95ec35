"""The checks every entry point shares: whole numbers, counts, seeds, thread counts.

Each takes what a caller was given and returns it as a plain Python (or numpy) value, or raises one
:class:`~brw.errors.BrwError` whose line names the parameter. Standard library and numpy only.
"""

from __future__ import annotations

import numbers

import numpy as np

from brw.errors import BrwError, clip

__all__ = ["whole_number", "check_count", "check_seed", "check_threads", "whole_numbers"]


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
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BrwError(f"{name} must be a whole number >= {minimum}, got {clip(repr(value), 40)}")
    if value < minimum:
        raise BrwError(f"{name} must be a whole number >= {minimum}, got {int(value)}")
    return int(value)


def check_count(value, name: str, minimum: int = 1) -> int:
    """A count: an int (Python or numpy, not a bool) >= ``minimum``.

    Parameters
    ----------
    value : object
        What the caller gave.
    name : str
        The parameter's name, for the message.
    minimum : int, optional
        The least value allowed (default 1).

    Returns
    -------
    int
        The value as a Python int.

    Raises
    ------
    BrwError
        Naming the parameter, otherwise.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise BrwError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise BrwError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_seed(seed) -> int:
    """A seed: a whole number >= 0; None draws fresh entropy from the operating system.

    Parameters
    ----------
    seed : int or None
        What the caller gave.

    Returns
    -------
    int
        The seed, the one to record with a result (fresh entropy when ``seed`` is None).

    Raises
    ------
    BrwError
        When ``seed`` is not None or a whole number >= 0.
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BrwError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def whole_numbers(values, name: str, lo: int, hi: int) -> np.ndarray:
    """Whole numbers in ``lo..hi``: P values asked of a result, say.

    Parameters
    ----------
    values : int or sequence of int
        What the caller gave.
    name : str
        The parameter's name, for the message.
    lo, hi : int
        The range allowed, both ends included.

    Returns
    -------
    numpy.ndarray
        int64, one dimension.

    Raises
    ------
    BrwError
        Naming the parameter, when a value is not a whole number in range.
    """
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1 or arr.dtype == bool or (arr.size and arr.dtype.kind not in "iu"):
        raise BrwError(f"{name} must be whole numbers in {lo}..{hi}, got {values!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < lo) or np.any(arr > hi):
        raise BrwError(f"{name} must lie in {lo}..{hi} for this result, got {values!r}")
    return arr


def check_threads(threads) -> int | None:
    """A ``threads`` argument: None (the library's choice) or a whole number >= 1.

    Parameters
    ----------
    threads : object
        What the caller gave.

    Returns
    -------
    int or None
        The thread count asked for (callers cap it at what their engine has: ``brw.solver.thread_count``).

    Raises
    ------
    BrwError
        Naming ``threads``, when it is not None or a whole number >= 1.
    """
    return None if threads is None else check_count(threads, "threads")
