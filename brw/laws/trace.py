"""The ``trace:`` law: the empirical law of a trace's recorded rows (theory.md section 2).

Each node draws a recorded row uniformly; its children are the row's top-k tokens followed by the tail groups
of :func:`brw.tailfit.fit_tails`, so the law's ``mu`` and ``mu2`` equal the trace's recorded full-vocabulary
means. Registered with :func:`brw.laws.parse_law` under the name ``trace``: ``trace:SOURCE`` or
``trace:SOURCE,holdout=j/K`` (fitted on the trace less fold j of K of its recorded contexts,
:meth:`brw.traces.Trace.without_fold`). :class:`EmpiricalRows` holds the exact quantities of any such table of
rows; the laws with context structure (:mod:`brw.laws.context`) share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
from scipy import special

from brw.errors import BrwError
from brw.kernel_law import KIND_TABLE, KernelLaw
from brw.laws.base import Law, register_law
from brw.spec import check_holdout, holdout_text, parse_holdout
from brw.tailfit import fit_tails, tail_moments
from brw.traces import BUNDLED, load_trace, resolve_trace

__all__ = ["EmpiricalRows", "TraceLaw"]


@lru_cache(maxsize=32)
def _law_arrays(path: str, mtime_ns: int, size: int, holdout):
    trace = load_trace(path)
    if holdout is not None:
        trace = trace.without_fold(*holdout)
    table = np.ascontiguousarray(trace.top_logp, dtype=np.float64)
    tails, exact, err_h, err_s = fit_tails(table, trace.entropy, trace.log_moment2)
    return trace, table, tails, exact, err_h, err_s


def fitted_rows(source: str, holdout):
    """``(trace, table, tails, tail_exact, tail_error)`` of a trace source, less the held-out fold (cached per
    file version and fold)."""
    path = resolve_trace(source)
    st = path.stat()
    trace, table, tails, exact, err_h, err_s = _law_arrays(str(path.resolve()), st.st_mtime_ns, st.st_size, holdout)
    return trace, table, tails, exact, (err_h, err_s)


class EmpiricalRows:
    """The exact quantities of a law whose node draws one of the rows ``_table`` (with tails ``_tails``), each
    row equally likely at a node: mu, mu2, psi and the spine step's atoms (a mixin for laws)."""

    _table: np.ndarray
    _tails: np.ndarray

    def _law_rows(self):
        """(table, tails) of the rows the quantities are of: the drawn ones, unless a law says otherwise."""
        return self._table, self._tails

    @property
    def rows(self) -> int:
        return self._law_rows()[0].shape[0]

    def _row_moments(self):
        table, tails = self._law_rows()
        p = np.exp(table)
        th, ts = tail_moments(tails)
        return -(p * table).sum(axis=1) + th, (p * table**2).sum(axis=1) + ts

    @property
    def mu(self):
        return float(np.mean(self._row_moments()[0]))

    @property
    def mu2(self):
        return float(np.mean(self._row_moments()[1]))

    def _atoms(self):
        """(log p, log count) of every atom of every row, shape (rows, k + groups)."""
        table, tails = self._law_rows()
        cnt = tails[:, :, 1]
        lq = np.where(cnt > 0, tails[:, :, 0], 0.0)
        with np.errstate(divide="ignore"):
            lc = np.where(cnt > 0, np.log(np.where(cnt > 0, cnt, 1.0)), -np.inf)
        lp = np.concatenate([table, lq], axis=1)
        lcount = np.concatenate([np.zeros_like(table), lc], axis=1)
        return lp, lcount

    def psi(self, theta):
        theta = np.asarray(theta, dtype=np.float64)
        lp, lc = self._atoms()
        keep = np.isfinite(lc)
        lp, lc = lp[keep], lc[keep]
        # One theta at a time: the atoms number rows * (k + 3), too many to broadcast against a grid of thetas.
        out = np.array([special.logsumexp(t * lp + lc) for t in theta.ravel()]) - math.log(self.rows)
        return out.reshape(theta.shape) if theta.ndim else float(out[0])

    def spine_atoms(self):
        lp, lc = self._atoms()
        w = np.exp(lp + lc) / self.rows
        keep = w > 0
        return -lp[keep], w[keep]

    @property
    def lattice_span(self):
        # Recorded log-probabilities share no lattice; scanning ~10^5 atoms for one would be slow and pointless.
        return 0.0


@register_law
@dataclass(frozen=True, eq=False)
class TraceLaw(EmpiricalRows, Law):
    """The empirical law of a trace's rows: each node draws a recorded row uniformly; its children are the
    row's top-k tokens followed by the tail groups of :func:`brw.tailfit.fit_tails`, so ``mu`` and ``mu2``
    (computed from the law's own vectors) equal the trace's recorded full-vocabulary means.

    ``source`` is a bundled short name (``code``, ``math``, ``chat``) or a path; ``str(law)`` prints it back as
    given. A file that happens to be named like a bundled trace is reached as ``trace:./code``. ``holdout``
    ``(j, K)`` fits the law to the trace less fold j of K of its recorded contexts (spec
    ``trace:SOURCE,holdout=j/K``); ``trace`` is then the remaining rows."""

    source: str
    holdout: tuple[int, int] | None = None
    name: ClassVar[str] = "trace"

    def __post_init__(self):
        object.__setattr__(self, "holdout", check_holdout(self.holdout, "trace"))
        trace, table, tails, exact, err = fitted_rows(self.source, self.holdout)
        object.__setattr__(self, "trace", trace)
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_tails", tails)
        object.__setattr__(self, "tail_exact", exact)
        object.__setattr__(self, "tail_error", err)

    def __eq__(self, other):
        return isinstance(other, TraceLaw) and (self.source, self.holdout) == (other.source, other.holdout)

    def __hash__(self):
        return hash(("trace", self.source, self.holdout))

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
    def spec(self):
        return f"trace:{self.source}{holdout_text(self.holdout)}"

    def kernel_law(self):
        return KernelLaw(KIND_TABLE, self._table, np.zeros(4), self._table.shape[1], self._tails)
