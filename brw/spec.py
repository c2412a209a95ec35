"""The law-spec grammar (conventions.md, "Law specs"): ``NAME:key=value,key=value``, vectors separated by ``/``.

Every law, policy and drafter spec is read and printed back with these functions, so that a spec string names
the same object everywhere (command line, sweep configs, figure captions) and a mistake is one line that names
the offending part. Standard library and numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from brw.errors import BrwError, clip

__all__ = ["fmt", "parse_fields", "parse_float", "parse_int", "parse_holdout", "holdout_text", "check_holdout",
           "check_temperature", "split_temperature", "temperature_text"]


def fmt(x: float) -> str:
    """A number as a spec prints it: the shortest text that reads back as the same float (ints without '.0').

    Parameters
    ----------
    x : float

    Returns
    -------
    str
    """
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def parse_fields(body: str, spec: str, allowed: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
    """The ``key=value`` fields of a spec's body.

    Parameters
    ----------
    body : str
        The part after ``NAME:``.
    spec : str
        The whole spec, for messages.
    allowed : tuple of str
        Keys that must each appear once.
    optional : tuple of str, optional
        Keys that may appear at most once.

    Returns
    -------
    dict of str to str
        Each key's value text, stripped.

    Raises
    ------
    BrwError
        On a field without ``=``, an unknown, repeated or missing key.
    """
    out: dict[str, str] = {}
    if not body:
        raise BrwError(f"law spec {spec!r} needs parameters: {', '.join(k + '=...' for k in allowed)}")
    for part in body.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise BrwError(f"bad parameter {part!r} in law spec {spec!r}: write key=value")
        if key not in allowed and key not in optional:
            raise BrwError(f"unknown parameter {key!r} in law spec {spec!r}; expected "
                           f"{', '.join(allowed + tuple(f'[{k}]' for k in optional))}")
        if key in out:
            raise BrwError(f"parameter {key!r} given twice in law spec {spec!r}")
        out[key] = value.strip()
    missing = [k for k in allowed if k not in out]
    if missing:
        raise BrwError(f"law spec {spec!r} is missing {', '.join(missing)}")
    return out


def parse_float(value: str, key: str, spec: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    """A field's value as a finite float (> 0 with ``positive``, >= 0 with ``nonnegative``).

    Parameters
    ----------
    value, key, spec : str
        The value text, its key and the whole spec (for messages).
    positive, nonnegative : bool, optional
        The sign required.

    Returns
    -------
    float

    Raises
    ------
    BrwError
        Naming the field, when the text is not such a number.
    """
    try:
        x = float(value)
    except ValueError:
        raise BrwError(f"{key}={clip(value, 40)!r} in law spec {spec!r} is not a number") from None
    if not math.isfinite(x):
        raise BrwError(f"{key}={clip(value, 40)!r} in law spec {spec!r} must be finite")
    if positive and not x > 0:
        raise BrwError(f"{key}={clip(value, 40)} in law spec {spec!r} must be > 0")
    if nonnegative and not x >= 0:
        raise BrwError(f"{key}={clip(value, 40)} in law spec {spec!r} must be >= 0")
    return x


def parse_int(value: str, key: str, spec: str, *, minimum: int) -> int:
    """A field's value as a whole number >= ``minimum``.

    Parameters
    ----------
    value, key, spec : str
        The value text, its key and the whole spec (for messages).
    minimum : int
        The least value allowed.

    Returns
    -------
    int

    Raises
    ------
    BrwError
        Naming the field, otherwise.
    """
    try:
        x = int(value)
    except ValueError:
        raise BrwError(f"{key}={clip(value, 40)!r} in law spec {spec!r} must be a whole number") from None
    if x < minimum:
        raise BrwError(f"{key}={clip(str(x), 40)} in law spec {spec!r} must be >= {minimum}")
    return x


def parse_holdout(value: str, spec: str) -> tuple[int, int]:
    """A spec's ``holdout=j/K`` field: (j, K), whole numbers with K >= 2 and 0 <= j < K."""
    j, slash, k = value.partition("/")
    try:
        j, k = int(j), int(k)
    except ValueError:
        j = k = None
    if not slash or j is None or k < 2 or not 0 <= j < k:
        raise BrwError(f"holdout={clip(value, 40)!r} in law spec {spec!r} must be j/K, fold j of K folds "
                       f"(K >= 2, 0 <= j < K), e.g. holdout=1/4")
    return j, k


def holdout_text(holdout) -> str:
    """The spec's ``,holdout=j/K`` suffix ('' without a holdout)."""
    return "" if holdout is None else f",holdout={holdout[0]}/{holdout[1]}"


def check_holdout(holdout, law: str):
    """A law's ``holdout`` argument: None, or (j, K), whole numbers with K >= 2 and 0 <= j < K (fold j of K
    left out); returned as Python ints."""
    if holdout is None:
        return None
    ok = isinstance(holdout, tuple) and len(holdout) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in holdout)
    if not ok or holdout[1] < 2 or not 0 <= holdout[0] < holdout[1]:
        raise BrwError(f"{law} law needs holdout=None or (j, K), fold j of K folds with K >= 2 and 0 <= j < K, "
                       f"got holdout={clip(repr(holdout), 40)}")
    return int(holdout[0]), int(holdout[1])


def check_temperature(T, what: str = "T") -> float:
    """A temperature: a finite number > 0 (an int or a float, not a bool or text), as a float.

    Parameters
    ----------
    T : int or float
        The temperature; a node's vector p becomes p^(1/T), renormalised (conventions.md, "Law specs").
    what : str, optional
        What to call it in the message (``"T"``, ``"temperature"``, a law's name and ``T``).

    Returns
    -------
    float

    Raises
    ------
    BrwError
        When T is not a finite number > 0.
    """
    ok = not isinstance(T, (bool, np.bool_)) and isinstance(T, (int, float, np.integer, np.floating))
    x = float(T) if ok else math.nan
    if not (math.isfinite(x) and x > 0):
        raise BrwError(f"{what} must be a finite number > 0 (a temperature), got {clip(repr(T), 40)}")
    return x


def split_temperature(body: str, spec: str) -> tuple[str, float]:
    """Take the ``T=`` field out of a spec's body, wherever it stands: (the body without it, T).

    Every law takes ``T=`` the same way (conventions.md, "Law specs"): the law is built from the rest of the body
    and then tempered. Without the field T is 1.

    Parameters
    ----------
    body : str
        The part after ``NAME:``.
    spec : str
        The whole spec, for messages.

    Returns
    -------
    (str, float)

    Raises
    ------
    BrwError
        When ``T`` is given twice or is not a finite number > 0.
    """
    parts = body.split(",")
    at = [i for i, p in enumerate(parts) if p.partition("=")[0].strip() == "T"]
    if not at:
        return body, 1.0
    if len(at) > 1:
        raise BrwError(f"parameter 'T' given twice in law spec {spec!r}")
    value = parts.pop(at[0]).partition("=")[2].strip()
    T = parse_float(value, "T", spec) if value else math.nan
    if not T > 0:
        raise BrwError(f"T={clip(value, 40)} in law spec {spec!r} must be a temperature > 0 (T=1 is the law itself)")
    return ",".join(parts), T


def temperature_text(T: float) -> str:
    """The spec's ``,T=...`` suffix ('' at T = 1: an untempered law prints back without it)."""
    return "" if T == 1.0 else f",T={fmt(T)}"
