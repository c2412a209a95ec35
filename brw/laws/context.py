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
  ``brw.real.realtree.SURPRISAL_BINS``; the whole context when no such row was recorded); the root draws a row
  uniformly. In recorded text the entropy after a likely token is far below the entropy after an unlikely
  one (``brw.laws.fitted.entropy_after_surprisal``), and a best-first tree grows its likely edges first: this law
  gives the tree that selection, and keeps each tree in its context as ``ctx:`` does.
- ``run:trace=NAME[,cap=S][,holdout=j/K]``, greedy-run resampling: a node's run is the number of most
  probable tokens in a row on the path into it (a recorded row's: how many positions before it the text took
  its top token in a row; runs from ``cap`` = 8 on are one). A child reached by its parent's most probable
  token continues its parent's run (+ 1), any other child starts at 0; it draws its row uniformly from the rows
  of its parent's context recorded at its run (of every context when that one has none). In recorded text the
  entropy falls with the run (SmolLM2 code: 2.12 nats after a non-top token, 1.41 after two top tokens in a
  row, 0.63 after eight or more), and a best-first tree's spine is the model's own greedy continuation, whose
  entropy falls with depth below its sampled text's (``brw.real.realtree.spine_statistics``): this law carries that.
  ``greedy=G`` adds the rows of G, the model's greedy branches from the trace (:func:`brw.real.recording.
  record_branches`), to the blocks of their source contexts at their runs; the root still draws the trace's rows.
- ``prefix:trace=NAME[,greedy=G][,cap=S][,holdout=j/K]``, recorded-prefix resampling: a child whose own prefix
  the trace recorded takes that row, exactly: the child reached by the token the text took next (the row after
  its parent's), and the most probable child where the text goes on with it or, with ``greedy=``, where a
  greedy branch does (the branch's next row). Every other child draws its row as in ``run:``. Along the sampled
  text and the model's greedy continuations a tree is then the model's own, and a drawn row brings its own
  recorded continuations with it.

``holdout=j/K`` fits each law to the trace less fold j of K of its recorded contexts (context c lies in fold
c % K: :meth:`brw.traces.Trace.without_fold`), for scoring on the held-out fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from brw.checks import whole_number
from brw.errors import BrwError
from brw.kernel_law import KIND_TABLE, ROWS_CONTEXT, ROWS_EDGE, ROWS_PATH, ROWS_PREFIX, ROWS_RUN, KernelLaw
from brw.laws.base import Law, register_law
from brw.spec import check_holdout, holdout_text, parse_fields, parse_holdout, parse_int
from brw.laws.trace import EmpiricalRows, TraceLaw, fitted_rows
from brw.stats import SURPRISAL_BINS, regime_of_rows
from brw.traces import BRANCH_MODE, resolve_trace

__all__ = ["ContextTrace", "PathTrace", "EdgeTrace", "RunTrace", "PrefixTrace", "recorded_contexts", "greedy_runs",
           "RUN_CAP"]


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
    T: float = field(default=1.0, kw_only=True)

    def __post_init__(self):
        self._check_temperature()
        object.__setattr__(self, "holdout", check_holdout(self.holdout, self.name))
        base = TraceLaw(self.trace_source, self.holdout, T=self.T)  # the rows tempered before anything is fitted
        order, contexts, offsets, follows = recorded_contexts(base.trace)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "contexts", contexts)
        object.__setattr__(self, "_offsets", offsets)
        object.__setattr__(self, "_follows", follows)
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_table", np.ascontiguousarray(base._table[order]))
        object.__setattr__(self, "_tails", np.ascontiguousarray(base._tails[order]))

    def _key(self):
        return (self.name, self.trace_source, self.holdout, self.T)

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
        f = parse_fields(body, spec, ("trace",), ("holdout", "context"))
        holdout = parse_holdout(f["holdout"], spec) if "holdout" in f else None
        context = parse_int(f["context"], "context", spec, minimum=0) if "context" in f else None
        return cls(f["trace"], holdout, context)

    @property
    def base_spec(self):
        one = "" if self.context is None else f",context={self.context}"
        return f"ctx:trace={self.trace_source}{holdout_text(self.holdout)}{one}"

    def context_laws(self) -> list:
        """The law of each recorded context alone (``context=C``), in the order of ``contexts``.

        Returns
        -------
        list of ContextTrace
            One law per context; a tree of this law is a tree of law i with probability ``weights[i]``.
        """
        if self.context is not None:
            return [self]
        return [ContextTrace(self.trace_source, self.holdout, int(c), T=self.T) for c in self.contexts]

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
        f = parse_fields(body, spec, ("trace",), ("holdout",))
        return cls(f["trace"], parse_holdout(f["holdout"], spec) if "holdout" in f else None)

    @property
    def base_spec(self):
        return f"path:trace={self.trace_source}{holdout_text(self.holdout)}"

    def kernel_law(self):
        params = self._context_params(ROWS_PATH, self._follows.astype(np.float64))
        return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)


@register_law
@dataclass(frozen=True, eq=False)
class EdgeTrace(_ContextRows):
    """Edge-conditioned resampling on a trace (see the module notes): a child draws a row recorded just after a
    token as surprising as the child's own edge (bins of ``brw.real.realtree.SURPRISAL_BINS``), among the rows of
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
        f = parse_fields(body, spec, ("trace",), ("holdout", "regimes"))
        holdout = parse_holdout(f["holdout"], spec) if "holdout" in f else None
        regimes = parse_int(f["regimes"], "regimes", spec, minimum=1) if "regimes" in f else None
        return cls(f["trace"], holdout, regimes)

    @property
    def base_spec(self):
        groups = "" if self.regimes is None else f",regimes={self.regimes}"
        return f"edge:trace={self.trace_source}{groups}{holdout_text(self.holdout)}"

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
    a row of any context at that run; the root draws a row of the trace uniformly (its run is the recorded one).
    ``holdout`` (j, K) fits it to the trace less fold j of K of its contexts.

    ``greedy`` names a trace of the model's greedy branches from this trace (:func:`brw.real.recording.
    record_branches`): its rows join the blocks of their source contexts, a branch's row s steps after its
    branch point at run (the branch point's run + s), and they are held out with their source contexts. The
    root still draws from the trace's own rows, and mu, mu2 and psi are still theirs."""

    cap: int = RUN_CAP
    greedy: str | None = None
    name: ClassVar[str] = "run"

    def __post_init__(self):
        super().__post_init__()
        cap = whole_number(self.cap, "cap")
        rows = self._table.shape[0]
        if cap > rows:
            raise BrwError(f"{self.name} law: cap={cap} is more than the {rows} positions of the trace")
        trace = self.base.trace
        runs = greedy_runs(trace)
        run = np.minimum(runs[self._order], cap)
        own = self._context_of_rows()
        # each row's recorded successors (sorted row indices, -1: none): the row of its most probable child and
        # the row of the child the text took, with that child's column in the row
        top = (trace.taken == trace.top_ids[:, 0])[self._order]
        col = np.argmax(trace.top_ids[self._order] == trace.taken[self._order][:, None], axis=1)
        col = np.where(self._follows & (col > 0), col, -1)  # the taken token's column, when it is not the top
        nxt = np.where(self._follows, np.arange(rows) + 1, -1)
        top_next, taken_next = np.where(top, nxt, -1), np.where(col > 0, nxt, -1)
        root = np.ones(rows, dtype=bool)
        origin = np.stack([np.zeros(rows, dtype=np.int64), self._order], axis=1)
        if self.greedy is not None:
            table, tails, grun, gown, leaves, gnext, kept = self._greedy_rows(runs, cap)
            origin = np.concatenate([origin, np.stack([np.ones(kept.size, dtype=np.int64), kept], axis=1)])
            width = max(self._table.shape[1], table.shape[1])
            groups = max(self._tails.shape[1], tails.shape[1])
            t0, s0 = _widen(self._table, self._tails, width, groups)
            t1, s1 = _widen(table, tails, width, groups)
            object.__setattr__(self, "_table", np.concatenate([t0, t1]))
            object.__setattr__(self, "_tails", np.concatenate([s0, s1]))
            run, own = np.concatenate([run, grun]), np.concatenate([own, gown])
            root = np.concatenate([root, np.zeros(grun.size, dtype=bool)])
            first = np.flatnonzero(gnext[1] == 0)  # each branch's first row, leaving from text row leaves
            top_next[leaves] = rows + first
            top_next = np.concatenate([top_next, np.where(gnext[0] >= 0, rows + gnext[0], -1)])
            taken_next, col = np.concatenate([taken_next, np.full(grun.size, -1)]), np.concatenate(
                [col, np.full(grun.size, -1)])
        perm = self._into_blocks(run, own, (cap + 1, self.contexts.size))  # rows by (run, context)
        inv = np.empty_like(perm)
        inv[perm] = np.arange(perm.size)

        def moved(nx):  # successor row numbers after the permutation, -1 kept
            return np.where(nx >= 0, inv[np.maximum(nx, 0)], -1)[perm]

        object.__setattr__(self, "cap", cap)
        object.__setattr__(self, "_groups", own[perm])
        object.__setattr__(self, "_runs", run[perm])
        object.__setattr__(self, "_roots", np.flatnonzero(root[perm]))
        object.__setattr__(self, "_successors", (moved(top_next), col[perm], moved(taken_next)))
        object.__setattr__(self, "_origin", origin[perm])  # (0: the trace, 1: the branches; its row there)

    def _greedy_rows(self, runs: np.ndarray, cap: int):
        """The greedy branches' rows that belong to this law's contexts: (table, tails, run, context index,
        the sorted text row each kept branch leaves from, (next row of the same branch or -1, row's step - 1),
        the rows kept) with branch rows numbered in their kept order."""
        from brw.files import sha256

        g, table, tails, _, _ = fitted_rows(self.greedy, None, self.T)
        meta, where = g.meta, f"{self.name} law: greedy={self.greedy!r}"
        if meta.get("mode") != BRANCH_MODE:
            raise BrwError(f"{where} is not a trace of greedy branches (its mode is {meta.get('mode')!r}, not "
                           f"{BRANCH_MODE!r}; record one with brw record --branches)")
        if meta.get("source_sha256") != sha256(resolve_trace(self.trace_source)):
            raise BrwError(f"{where} branches from another trace than trace={self.trace_source!r} (its source's "
                           f"SHA-256 differs)")
        src, start = meta.get("branch_source_context"), meta.get("branch_offset")
        if not (isinstance(src, list) and isinstance(start, list) and len(src) == len(start) == g.contexts
                and all(type(v) is int and 0 <= v < 1 << 31 for v in src + start)):
            raise BrwError(f"{where}: its metadata must list one source context and offset per branch")
        src, start = np.asarray(src, dtype=np.int64), np.asarray(start, dtype=np.int64)
        if not np.array_equal(start, g.prompt_lengths.astype(np.int64)):
            raise BrwError(f"{where}: its branch offsets are not its contexts' prompt lengths")
        # the recorded (sorted) row each branch leaves from: its run is the branch's run there
        trace = self.base.trace
        mine = np.isin(src, self.contexts)  # a held-out fold's branches go with it
        tkey = (trace.context.astype(np.int64) * (1 << 32) + trace.offset.astype(np.int64))[self._order]
        want = src[mine] * (1 << 32) + start[mine]
        at = np.minimum(np.searchsorted(tkey, want), tkey.size - 1)
        if not np.array_equal(tkey[at], want):
            bad = int(np.flatnonzero(mine)[np.argmax(tkey[at] != want)])
            raise BrwError(f"{where}: branch {bad} does not leave from a recorded position of "
                           f"trace={self.trace_source!r}")
        branch_row = np.full(src.size, -1)
        branch_row[mine] = at
        b = g.context.astype(np.int64)  # each row's branch
        step = g.offset.astype(np.int64) - start[b]
        keep = np.flatnonzero(mine[b])
        keep = keep[np.lexsort((step[keep], b[keep]))]  # branch by branch, step by step
        b, step = b[keep], step[keep]
        if not np.array_equal(np.unique(step[np.r_[True, b[1:] != b[:-1]]]), [1]) or (
                np.diff(step)[b[1:] == b[:-1]] != 1).any():
            raise BrwError(f"{where}: a branch's rows are not its consecutive steps from 1")
        nxt = np.where(np.r_[b[1:] == b[:-1], False], np.arange(b.size) + 1, -1)
        run = np.minimum(runs[self._order][branch_row[b]] + step, cap)
        return (table[keep], tails[keep], run, np.searchsorted(self.contexts, src[b]),
                branch_row[b][step == 1], (nxt, step - 1), keep)

    def _law_rows(self):
        return self.base._table, self.base._tails

    def _key(self):
        return (*super()._key(), self.cap, self.greedy)

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("trace",), ("greedy", "holdout", "cap"))
        holdout = parse_holdout(f["holdout"], spec) if "holdout" in f else None
        cap = parse_int(f["cap"], "cap", spec, minimum=1) if "cap" in f else RUN_CAP
        return cls(f["trace"], holdout, cap, f.get("greedy"))

    @property
    def base_spec(self):
        greedy = f",greedy={self.greedy}" if self.greedy is not None else ""
        return f"{self.name}:trace={self.trace_source}{greedy},cap={self.cap}{holdout_text(self.holdout)}"

    def _run_params(self, mode, *extra):
        return np.concatenate([[mode, float(self.contexts.size), self.cap + 1.0],
                               self._blocks.astype(np.float64), self._groups.astype(np.float64),
                               self._runs.astype(np.float64), *extra, self._roots.astype(np.float64)])

    def kernel_law(self):
        return KernelLaw(KIND_TABLE, self._table, self._run_params(ROWS_RUN), self._table.shape[1], self._tails)


@register_law
@dataclass(frozen=True, eq=False)
class PrefixTrace(RunTrace):
    """Recorded prefixes first, greedy runs elsewhere: a node whose row is a recorded one (the trace's text, or
    with ``greedy`` a greedy branch) and whose own token is the one recorded next (the text's taken token, or
    the most probable one where the text or a branch goes on with it) takes the recorded row of its own prefix,
    exactly; any other child draws its row as in ``run:``. Along the sampled text and the model's greedy
    continuations a tree is then the model's own; only the rest is resampled."""

    name: ClassVar[str] = "prefix"

    def kernel_law(self):
        top_next, col, taken_next = (a.astype(np.float64) for a in self._successors)
        return KernelLaw(KIND_TABLE, self._table, self._run_params(ROWS_PREFIX, top_next, col, taken_next),
                         self._table.shape[1], self._tails)


def _widen(table: np.ndarray, tails: np.ndarray, width: int, groups: int):
    """The same vectors with ``width`` table entries and room for ``groups`` tail groups: the first tail atoms
    move into the table, one column each (the kernels read a row's tail only after all its table entries)."""
    n, k = table.shape
    out = np.full((n, width), -np.inf)
    out[:, :k] = table
    t = np.zeros((n, groups, 2))
    t[:, :tails.shape[1]] = tails
    for j in range(k, width):
        g = np.argmax(t[:, :, 1] > 0, axis=1)  # each row's first group with atoms left
        has = t[np.arange(n), g, 1] > 0
        out[has, j] = t[has, g[has], 0]
        t[has, g[has], 1] -= 1
    return out, t
