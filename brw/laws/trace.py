"""The ``trace:`` law: the empirical law of a trace's recorded rows (theory.md section 2).

Each node draws a recorded row uniformly; its children are the row's top-k tokens followed by the tail groups
of :func:`brw.tailfit.fit_tails`, so the law's ``mu`` and ``mu2`` equal the trace's recorded full-vocabulary
means. Registered with :func:`brw.laws.parse_law` under the name ``trace``: ``trace:SOURCE`` or
``trace:SOURCE,holdout=j/K`` (fitted on the trace less fold j of K of its recorded contexts,
:meth:`brw.traces.Trace.without_fold`). :class:`EmpiricalRows` (:mod:`brw.laws.rows`) holds the exact quantities
of any such table of rows; the laws with context structure (:mod:`brw.laws.context`) share it.

At temperature T (``trace:code,T=0.7``) the rows are fitted at T = 1 (tails included) and then tempered exactly
(:func:`brw.laws.rows.temper_trace`), trace and all, before any law sees them; every trace-fitted law takes its
rows from :func:`fitted_rows` and so tempers the same way. Above T = 1 a row's tempered tail mass grows with the
number of its tail atoms, which the tail fit does not bound: a trace whose fitted tails hold more atoms than its
vocabulary has room for refuses T > 1 (the bundled traces do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import numpy as np

from brw.errors import BrwError
from brw.kernel_law import KIND_TABLE, KernelLaw
from brw.laws.base import Law, register_law
from brw.laws.rows import EmpiricalRows, temper_trace
from brw.spec import check_holdout, holdout_text, parse_holdout
from brw.tailfit import fit_tails
from brw.traces import BUNDLED, load_trace, resolve_trace

__all__ = ["EmpiricalRows", "TraceLaw"]


@lru_cache(maxsize=32)
def _law_arrays(path: str, mtime_ns: int, size: int, holdout):
    trace = load_trace(path)
    if holdout is not None:
        trace = trace.without_fold(*holdout)
    table = np.ascontiguousarray(trace.top_logp, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # the fit's search meets rows with tails at float32
        tails, exact, err_h, err_s = fit_tails(table, trace.entropy, trace.log_moment2)  # rounding (T < 1): flagged
    return trace, table, tails, exact, err_h, err_s


@lru_cache(maxsize=16)
def _tempered_arrays(path: str, mtime_ns: int, size: int, holdout, T: float):
    trace, table, tails, exact, err_h, err_s = _law_arrays(path, mtime_ns, size, holdout)
    if T > 1.0:
        _check_room(trace, tails, T, path)
    trace, table, tails = temper_trace(trace, table, tails, T)
    return trace, table, tails, exact, err_h, err_s


def _check_room(trace, tails, T: float, path: str) -> None:
    """Above T = 1 a tail's tempered mass grows with its number of atoms (n q^(1/T) = mass q^(1/T - 1)), which the
    tail fit leaves free (a tail of a few 1e-6 of mass may hold 1e18 atoms): refuse a trace any of whose rows'
    fitted tails hold more atoms than the vocabulary has room for beyond the top-k."""
    vocab = trace.meta.get("vocab_size")
    room = None if not isinstance(vocab, int) or isinstance(vocab, bool) else vocab - trace.k
    atoms = tails[:, :, 1].sum(axis=1)
    over = int(np.sum(atoms > (room if room is not None else -1)))
    if over:
        raise BrwError(f"trace {path} cannot take T={T:g} > 1: {over} of its {atoms.size} rows' fitted tails hold more "
                       f"tokens than its vocabulary of {vocab} has beyond the top {trace.k}, so their tempered mass "
                       f"has no bound above T = 1 (use T <= 1)")


def fitted_rows(source: str, holdout, T: float = 1.0):
    """``(trace, table, tails, tail_exact, tail_error)`` of a trace source, less the held-out fold, at
    temperature T (cached per file version, fold and T). The tails are fitted at T = 1 (``tail_exact`` and
    ``tail_error`` are that fit's) and then tempered with the rows (:func:`brw.laws.rows.temper_trace`)."""
    path = resolve_trace(source)
    st = path.stat()
    arrays = _law_arrays if T == 1.0 else _tempered_arrays
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, holdout) + (() if T == 1.0 else (T,))
    trace, table, tails, exact, err_h, err_s = arrays(*key)
    return trace, table, tails, exact, (err_h, err_s)


@register_law
@dataclass(frozen=True, eq=False)
class TraceLaw(EmpiricalRows, Law):
    """The empirical law of a trace's rows: each node draws a recorded row uniformly; its children are the
    row's top-k tokens followed by the tail groups of :func:`brw.tailfit.fit_tails`, so ``mu`` and ``mu2``
    (computed from the law's own vectors) equal the trace's recorded full-vocabulary means.

    ``source`` is a bundled short name (``code``, ``math``, ``chat``) or a path; ``str(law)`` prints it back as
    given. A file that happens to be named like a bundled trace is reached as ``trace:./code``. ``holdout``
    ``(j, K)`` fits the law to the trace less fold j of K of its recorded contexts (spec
    ``trace:SOURCE,holdout=j/K``); ``trace`` is then the remaining rows. ``T`` tempers the rows (and ``trace``)
    exactly (:func:`fitted_rows`)."""

    source: str
    holdout: tuple[int, int] | None = None
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "trace"

    def __post_init__(self):
        self._check_temperature()
        object.__setattr__(self, "holdout", check_holdout(self.holdout, "trace"))
        trace, table, tails, exact, err = fitted_rows(self.source, self.holdout, self.T)
        object.__setattr__(self, "trace", trace)
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_tails", tails)
        object.__setattr__(self, "tail_exact", exact)
        object.__setattr__(self, "tail_error", err)

    def __eq__(self, other):
        return isinstance(other, TraceLaw) and (self.source, self.holdout, self.T) == (
            other.source, other.holdout, other.T)

    def __hash__(self):
        return hash(("trace", self.source, self.holdout, self.T))

    @classmethod
    def from_spec_body(cls, body, spec):
        body = body.strip()
        holdout = None
        if ",holdout=" in body:
            body, _, value = body.rpartition(",holdout=")
            holdout = parse_holdout(value.strip(), spec)
            body = body.strip()
        if not body:
            names = ", ".join(sorted(BUNDLED))
            raise BrwError(f"law spec {spec!r} needs a trace: trace:PATH or one of trace:{{{names}}}")
        return cls(body, holdout)

    @property
    def base_spec(self):
        return f"trace:{self.source}{holdout_text(self.holdout)}"

    def kernel_law(self):
        return KernelLaw(KIND_TABLE, self._table, np.zeros(4), self._table.shape[1], self._tails)
