"""Laws that carry a trace's context structure: whole trees in one recorded context, and recorded paths.

A trace's rows come from recorded contexts (generations: a prompt and the text the model went on to write).
The ``trace:`` law draws every node's row from all of them alike; real trees do not. The laws here keep the
trace's rows (the same table, tails, mu, mu2 and psi as ``trace:``: those of the pooled rows, which is also
the root's law) and add structure along the tree, simulated by the kernels (``brw._kernels``, recorded
contexts) on the same counter-based randomness as every law:

- ``ctx:trace=NAME[,holdout=j/K]``, a hierarchical law: a tree first draws a recorded context, with
  probability proportional to its rows (the root draws a row uniformly, as a real tree's context is chosen),
  and then every node of the tree draws its row uniformly from that context's rows. A node's marginal law is
  the trace's; a tree is a mixture over contexts of the ``trace:`` laws of single contexts, so easy contexts
  make whole easy trees (Jensen: accepted(P), about log(mu P) / mu, is convex in mu). ``context=C`` restricts
  it to recorded context C alone (the law of one context's rows, i.i.d. over the tree: what the mixture
  mixes, :func:`brw.theory.context_mixture`).
- ``path:trace=NAME[,holdout=j/K]``, recorded-path resampling (theory.md section 7(b)): a node carries a
  recorded row; the root draws one uniformly; every child of a node at row r takes row r + 1 when that is the
  next recorded position of the same context, and otherwise (the end of the recorded text) a row drawn
  uniformly from the same context. Entropy along a path follows the recorded text, runs of easy tokens
  included; siblings share their row. Below the root a node's row leans towards later positions of its
  context (a path reaches position t of a text from any earlier restart), so only the root's law is exactly
  the pooled rows'.
- ``edge:trace=NAME[,holdout=j/K]``, edge-conditioned resampling: a child reached by an edge of surprisal
  s = -log p (its own probability in its parent's vector) draws its row uniformly from the rows of its
  parent's context that the recorded text reached through a token of surprisal in the same bin as s (bins
  ``brw.realtree.SURPRISAL_BINS``; the whole context when no such row was recorded); the root draws a row
  uniformly. In recorded text the entropy after a likely token is far below the entropy after an unlikely
  one (``brw.fitted.entropy_after_surprisal``), and a best-first tree grows its likely edges first: this law
  gives the tree that selection, and keeps each tree in its context as ``ctx:`` does.
- ``run:trace=NAME[,cap=S][,holdout=j/K]``, greedy-run resampling: a node's run is the number of most
  probable tokens in a row on the path into it (a recorded row's: how many positions before it the text took
  its top token in a row; runs from ``cap`` = 8 on are one). A child reached by its parent's most probable
  token continues its parent's run (+ 1), any other child starts at 0; it draws its row uniformly from the rows
  of its parent's context recorded at its run (of every context when that one has none). In recorded text the
  entropy falls with the run (SmolLM2 code: 2.12 nats after a non-top token, 1.41 after two top tokens in a
  row, 0.63 after eight or more), and a best-first tree's spine is the model's own greedy continuation, whose
  entropy falls with depth below its sampled text's (``brw.realtree.spine_statistics``): this law carries that.

``holdout=j/K`` fits each law to the trace less fold j of K of its recorded contexts (context c lies in fold
c % K: :meth:`brw.traces.Trace.without_fold`), for scoring on the held-out fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from brw.errors import BrwError, whole_number
from brw.kernel_law import KIND_TABLE, ROWS_CONTEXT, ROWS_EDGE, ROWS_PATH, ROWS_RUN, KernelLaw
from brw.laws import Law, _check_holdout, _holdout, _holdout_text, _int, _parse_fields, register_law
from brw.trace_law import EmpiricalRows, TraceLaw

__all__ = ["ContextTrace", "PathTrace", "EdgeTrace", "RunTrace", "recorded_contexts", "greedy_runs", "RUN_CAP"]


def recorded_contexts(trace):
    """The trace's rows in recorded order, grouped by context.

    Parameters
    ----------
    trace : brw.traces.Trace
        The recorded rows (in any order: recorders interleave contexts).

    Returns
    -------
    tuple of numpy.ndarray
        ``(order, contexts, offsets, follows)``: ``order`` sorts the rows by (context, offset); sorted rows
        ``offsets[i]..offsets[i + 1]`` are context ``contexts[i]``'s (the contexts that have rows, increasing);
        ``follows[r]`` is True when sorted row r + 1 is the next position (offset + 1) of sorted row r's
        context.
    """
    ctx = np.asarray(trace.context, dtype=np.int64)
    off = np.asarray(trace.offset, dtype=np.int64)
    order = np.lexsort((off, ctx))
    c, o = ctx[order], off[order]
    contexts, first = np.unique(c, return_index=True)
    offsets = np.append(first, c.size).astype(np.int64)
    follows = np.zeros(c.size, dtype=bool)
    follows[:-1] = (c[1:] == c[:-1]) & (o[1:] == o[:-1] + 1)
    return order, contexts, offsets, follows


#: Runs from this on are one state of ``run:`` unless its spec says ``cap``.
RUN_CAP = 8


def greedy_runs(trace) -> np.ndarray:
    """Each row's greedy run: how many positions right before it its recorded text took its top token in a
    row (0 when the token just before it was not the top one, or nothing was recorded before it).

    Parameters
    ----------
    trace : brw.traces.Trace

    Returns
    -------
    int64 array (N,)
        In the trace's own row order.
    """
    order, _, _, follows = recorded_contexts(trace)
    top = (np.asarray(trace.taken) == np.asarray(trace.top_ids)[:, 0])[order]
    run = np.zeros(top.size, dtype=np.int64)
    for i in np.flatnonzero(follows):  # sorted row i + 1 is the position after sorted row i
        run[i + 1] = run[i] + 1 if top[i] else 0
    out = np.empty_like(run)
    out[order] = run
    return out


@dataclass(frozen=True, eq=False)
class _ContextRows(EmpiricalRows, Law):
    """A trace's rows sorted by (context, offset), with the context bounds: what these laws share."""

    trace_source: str
    holdout: tuple[int, int] | None = None

    def __post_init__(self):
        object.__setattr__(self, "holdout", _check_holdout(self.holdout, self.name))
        base = TraceLaw(self.trace_source, self.holdout)
        order, contexts, offsets, follows = recorded_contexts(base.trace)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "contexts", contexts)
        object.__setattr__(self, "_offsets", offsets)
        object.__setattr__(self, "_follows", follows)
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_table", np.ascontiguousarray(base._table[order]))
        object.__setattr__(self, "_tails", np.ascontiguousarray(base._tails[order]))

    def _key(self):
        return (self.name, self.trace_source, self.holdout)

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def _context_of_rows(self) -> np.ndarray:
        """Each sorted row's context, as an index 0..C-1 into ``contexts``."""
        return np.repeat(np.arange(self.contexts.size), np.diff(self._offsets))

    def _into_blocks(self, major: np.ndarray, minor: np.ndarray, shape: tuple) -> np.ndarray:
        """Lay the rows out in blocks by (major, minor), recorded order inside each block: ``_blocks`` holds the
        blocks' first rows (row-major over ``shape``, then the end). Returns the permutation applied."""
        perm = np.lexsort((minor, major))
        counts = np.zeros(shape, dtype=np.int64)
        np.add.at(counts, (major, minor), 1)
        object.__setattr__(self, "_blocks", np.concatenate([[0], np.cumsum(counts.ravel())]))
        object.__setattr__(self, "_table", np.ascontiguousarray(self._table[perm]))
        object.__setattr__(self, "_tails", np.ascontiguousarray(self._tails[perm]))
        return perm

    def _context_params(self, mode: float, *extra) -> np.ndarray:
        return np.concatenate([[mode, float(self.contexts.size)], self._offsets.astype(np.float64), *extra])


@register_law
@dataclass(frozen=True, eq=False)
class ContextTrace(_ContextRows):
    """A tree draws one recorded context of a trace (proportionally to its rows) and every node of it draws its
    row from that context (see the module notes). ``context`` (a recorded context id) restricts the law to
    that context's rows alone; ``holdout`` (j, K) fits it to the trace less fold j of K of its contexts.

    Attributes
    ----------
    contexts : numpy.ndarray
        The recorded contexts the law draws from (ids, increasing; only ``context`` when it is set).
    weights : numpy.ndarray
        Each context's share of the rows: the probability that a tree is drawn in it.
    """

    context: int | None = None
    name: ClassVar[str] = "ctx"

    def __post_init__(self):
        super().__post_init__()
        rows = np.diff(self._offsets)
        object.__setattr__(self, "weights", rows / rows.sum())
        if self.context is None:
            return
        c = whole_number(self.context, "context", 0)
        where = np.flatnonzero(self.contexts == c)
        if where.size == 0:
            held = f" (holdout={self.holdout[0]}/{self.holdout[1]} leaves out its fold)" if (
                self.holdout is not None and c % self.holdout[1] == self.holdout[0]) else ""
            raise BrwError(f"ctx law: context={c} has no rows in trace {self.trace_source!r}{held}; its contexts "
                           f"are {self.contexts.min()}..{self.contexts.max()}")
        lo, hi = self._offsets[where[0]], self._offsets[where[0] + 1]
        object.__setattr__(self, "context", c)
        object.__setattr__(self, "contexts", self.contexts[where])
        object.__setattr__(self, "weights", np.ones(1))
        object.__setattr__(self, "_offsets", np.array([0, hi - lo], dtype=np.int64))
        object.__setattr__(self, "_table", np.ascontiguousarray(self._table[lo:hi]))
        object.__setattr__(self, "_tails", np.ascontiguousarray(self._tails[lo:hi]))

    def _key(self):
        return (*super()._key(), self.context)

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("trace",), ("holdout", "context"))
        holdout = _holdout(f["holdout"], spec) if "holdout" in f else None
        context = _int(f["context"], "context", spec, minimum=0) if "context" in f else None
        return cls(f["trace"], holdout, context)

    @property
    def spec(self):
        one = "" if self.context is None else f",context={self.context}"
        return f"ctx:trace={self.trace_source}{_holdout_text(self.holdout)}{one}"

    def context_laws(self) -> list:
        """The law of each recorded context alone (``context=C``), in the order of ``contexts``.

        Returns
        -------
        list of ContextTrace
            One law per context; a tree of this law is a tree of law i with probability ``weights[i]``.
        """
        if self.context is not None:
            return [self]
        return [ContextTrace(self.trace_source, self.holdout, int(c)) for c in self.contexts]

    def kernel_law(self):
        params = np.zeros(4) if self.context is not None else self._context_params(ROWS_CONTEXT)
        return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)


@register_law
@dataclass(frozen=True, eq=False)
class PathTrace(_ContextRows):
    """Recorded-path resampling on a trace (theory.md section 7(b); see the module notes): a child takes the
    row after its parent's in the recorded text, or, at the end of the text, a uniform row of the same
    context. ``holdout`` (j, K) fits it to the trace less fold j of K of its contexts. mu, mu2 and psi are the
    pooled rows' (the root's law)."""

    name: ClassVar[str] = "path"

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("trace",), ("holdout",))
        return cls(f["trace"], _holdout(f["holdout"], spec) if "holdout" in f else None)

    @property
    def spec(self):
        return f"path:trace={self.trace_source}{_holdout_text(self.holdout)}"

    def kernel_law(self):
        params = self._context_params(ROWS_PATH, self._follows.astype(np.float64))
        return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)


@register_law
@dataclass(frozen=True, eq=False)
class EdgeTrace(_ContextRows):
    """Edge-conditioned resampling on a trace (see the module notes): a child draws a row recorded just after a
    token as surprising as the child's own edge (bins of ``brw.realtree.SURPRISAL_BINS``), among the rows of
    its parent's context, or with ``regimes`` = R among the rows, of any context, recorded after a row in the
    same entropy regime as its parent's (R entropy-quantile bins, as ``markov:`` forms them): the edge then
    acts on the parent's entropy level, which carries from node to node. ``holdout`` (j, K) fits it to the
    trace less fold j of K of its contexts. mu, mu2 and psi are the pooled rows' (the root's law).

    Attributes
    ----------
    bins : tuple of float
        The surprisal bins' edges (nats).
    groups : int
        The groups a parent's row falls in: its recorded contexts, or ``regimes``.
    """

    regimes: int | None = None
    name: ClassVar[str] = "edge"

    def __post_init__(self):
        from brw.fitted import regime_of_rows
        from brw.realtree import SURPRISAL_BINS

        super().__post_init__()
        nbins = len(SURPRISAL_BINS) - 1
        inner = np.asarray(SURPRISAL_BINS[1:-1], dtype=np.float64)
        # Sorted row t's block: the bin of the token taken at row t - 1 when that is the position before it in
        # the same text, else block nbins (nothing recorded before it). Its group (what it was drawn after):
        # its context, or the regime of row t - 1. Its children's group: its context, or its own regime.
        order = self._order
        taken = -np.asarray(self.base.trace.taken_logp, dtype=np.float64)[order]
        block = np.full(taken.size, nbins, dtype=np.int64)
        after = np.flatnonzero(self._follows) + 1
        block[after] = np.searchsorted(inner, taken[after - 1], side="right")
        if self.regimes is None:
            groups = self.contexts.size
            own = self._context_of_rows()
            member = own
        else:
            groups = whole_number(self.regimes, "regimes")
            if groups > taken.size:
                raise BrwError(f"edge law: regimes={groups} is more than the {taken.size} positions of the trace")
            own = regime_of_rows(np.asarray(self.base.trace.entropy, dtype=np.float64)[order], groups)
            member = np.zeros(taken.size, dtype=np.int64)  # rows with nothing before them: group 0's last block
            member[after] = own[after - 1]
            object.__setattr__(self, "regimes", groups)
        perm = self._into_blocks(member, block, (groups, nbins + 1))  # rows by (group, block)
        object.__setattr__(self, "bins", tuple(float(b) for b in SURPRISAL_BINS))
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "_groups", own[perm])

    def _key(self):
        return (*super()._key(), self.regimes)

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("trace",), ("holdout", "regimes"))
        holdout = _holdout(f["holdout"], spec) if "holdout" in f else None
        regimes = _int(f["regimes"], "regimes", spec, minimum=1) if "regimes" in f else None
        return cls(f["trace"], holdout, regimes)

    @property
    def spec(self):
        groups = "" if self.regimes is None else f",regimes={self.regimes}"
        return f"edge:trace={self.trace_source}{groups}{_holdout_text(self.holdout)}"

    def kernel_law(self):
        inner = np.asarray(self.bins[1:-1], dtype=np.float64)
        params = np.concatenate([[ROWS_EDGE, float(self.groups), len(self.bins) - 1.0],
                                 inner, self._blocks.astype(np.float64), self._groups.astype(np.float64)])
        return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)


@register_law
@dataclass(frozen=True, eq=False)
class RunTrace(_ContextRows):
    """Greedy-run resampling on a trace: a node's run is the number of most-probable tokens in a row that lead
    to it (a recorded row's: how many tokens before it the text took its top token in a row); a child reached by
    its parent's most probable token has its parent's run + 1, any other child run 0 (runs from ``cap`` on are
    one state). A child draws a row of its parent's context recorded at its run, or, when that context has none,
    a row of any context at that run; the root draws a row uniformly (its run is the recorded one).
    ``holdout`` (j, K) fits it to the trace less fold j of K of its contexts."""

    cap: int = RUN_CAP
    name: ClassVar[str] = "run"

    def __post_init__(self):
        super().__post_init__()
        cap = whole_number(self.cap, "cap")
        rows = self._table.shape[0]
        if cap > rows:
            raise BrwError(f"run law: cap={cap} is more than the {rows} positions of the trace")
        run = np.minimum(greedy_runs(self.base.trace)[self._order], cap)
        own = self._context_of_rows()
        perm = self._into_blocks(run, own, (cap + 1, self.contexts.size))  # rows by (run, context)
        object.__setattr__(self, "cap", cap)
        object.__setattr__(self, "_groups", own[perm])
        object.__setattr__(self, "_runs", run[perm])

    def _key(self):
        return (*super()._key(), self.cap)

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("trace",), ("holdout", "cap"))
        holdout = _holdout(f["holdout"], spec) if "holdout" in f else None
        cap = _int(f["cap"], "cap", spec, minimum=1) if "cap" in f else RUN_CAP
        return cls(f["trace"], holdout, cap)

    @property
    def spec(self):
        return f"run:trace={self.trace_source},cap={self.cap}{_holdout_text(self.holdout)}"

    def kernel_law(self):
        params = np.concatenate([[ROWS_RUN, float(self.contexts.size), self.cap + 1.0],
                                 self._blocks.astype(np.float64), self._groups.astype(np.float64),
                                 self._runs.astype(np.float64)])
        return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)
