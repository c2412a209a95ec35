"""Real-tree results: accepted(P) of the real optimal trees of many contexts, and the file that holds them.

The trees themselves are expanded on a model by :mod:`brw.real.expansion` (``brw realtree``); this module reads,
writes and summarises their results without torch, so that ``brw compare`` runs without the model extra.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.files import write_npz
from brw.limits import USABLE, available_memory, format_bytes
from brw.results import Result
from brw.stats import SURPRISAL_BINS, binned_means
from brw.laws.context import recorded_contexts
from brw.traces import BRANCH_MODE, DATA_DIR

__all__ = ["BUNDLED", "RealTrees", "load_realtrees", "save_realtrees", "pick_rows", "pick_order", "answer_rows",
           "summarize", "node_statistics", "tree_temperatures",
           "binned_means", "spine_statistics", "trace_name", "root_covariates", "root_adjusted_mean",
           "ROOT_COVARIATES", "SURPRISAL_BINS", "greedy_continuation", "greedy_covariates",
           "bundled_greedy_covariates", "GREEDY_COVARIATES",
           "GREEDY_DEPTH",
           "BUNDLED_RESULTS", "RESULTS_FORMAT", "RESULTS_SCHEMA"]

#: Results file (schema version 2; version 1, without the per-node statistics, is still read): a NumPy .npz, opened with allow_pickle=False. n contexts, PMAX nodes each.
#:   schema_version int64 (); format str () "brw-realtree"; meta str () JSON (model, model_sha256, P, seed,
#:   sources [{name, file, sha256, temperature}] (temperature: the trace's recorded one), temperature (the
#:   trees': each node's distribution is softmax(logits / temperature); files without it, and trees expanded at
#:   each source's own temperature from sources that differ, have each source's), dtype, device, brw_version, torch);
#:   source int16 (n,) index into meta sources; row int64 (n,) the trace row (its context and offset follow);
#:   context int32 (n,), offset int32 (n,): the context is trace.context_ids(context)[:offset];
#:   accepted float64 or float32 (n, PMAX); parent int16, depth int16, token int32 (n, PMAX) as in
#:   brw.real.expansion.RealTree; entropy, moment2, top1 float32 (n, PMAX): each node's own next-token distribution's
#:   entropy, second log-moment and largest probability, NaN where it was not computed (a leaf) or not recorded
#:   (version 1 files); trace_top1 float64 (n,): exp of the trace's recorded top-1 log-probability at that
#:   row (a cross-check: accepted[:, 0] must match it to float32 round-off); seconds float64, evaluated int32,
#:   passes int32 (n,).
RESULTS_FORMAT = "brw-realtree"
RESULTS_SCHEMA = 2
#: Most nodes per tree: parent and depth are int16.
MAX_P = 32767
#: The bundled real-tree results for the bundled traces (sims/realtrees.py regenerates them).
BUNDLED_RESULTS = DATA_DIR / "realtrees-smollm2.npz"
#: Every bundled real-tree results file by name: ``smollm2`` (SmolLM2-135M, P <= 256, the default),
#: ``smollm2-p1024`` (the same contexts grown to P <= 1024, with per-node statistics), ``gemma3`` (Gemma 3
#: 270M on its own traces, P <= 256, with per-node statistics) and ``smollm2-t07-p1024`` (SmolLM2's trees at
#: T = 0.7, at answer positions of its traces sampled at 0.7, P <= 1024); each file says how many contexts it holds.
BUNDLED = {"smollm2": BUNDLED_RESULTS, "smollm2-p1024": BUNDLED_RESULTS.with_name("realtrees-smollm2-p1024.npz"),
           "gemma3": BUNDLED_RESULTS.with_name("realtrees-gemma3.npz"),
           "smollm2-t07-p1024": BUNDLED_RESULTS.with_name("realtrees-smollm2-t07-p1024.npz")}
_PER_CONTEXT = {"source": np.int16, "row": np.int64, "context": np.int32, "offset": np.int32,
                "trace_top1": np.float64, "seconds": np.float64, "evaluated": np.int32, "passes": np.int32}
_PER_NODE = {"accepted": None, "parent": np.int16, "depth": np.int16, "token": np.int32,  # accepted: per file
             "entropy": np.float32, "moment2": np.float32, "top1": np.float32}
_NODE_STATS = ("entropy", "moment2", "top1")  # absent from version 1 files


def answer_rows(trace) -> np.ndarray:
    """The rows of a trace inside its recorded answers (offset >= the prompt's length): the positions real trees
    are drawn from (:func:`pick_rows`), sorted."""
    return np.flatnonzero(trace.offset >= trace.prompt_lengths[trace.context])


def pick_rows(trace, n: int, seed: int) -> np.ndarray:
    """Trace rows inside the recorded answers (offset >= the prompt's length), uniformly without replacement.

    Deterministic in (trace, seed): the first n of one seeded permutation, so a larger n extends a smaller one.

    Parameters
    ----------
    trace : brw.traces.Trace
    n : int
        How many rows.
    seed : int

    Returns
    -------
    int64 array (n,)
        Row indices, sorted (by context, then offset).
    """
    return np.sort(pick_order(trace, n, seed))


def pick_order(trace, n: int, seed: int) -> np.ndarray:
    """:func:`pick_rows`'s rows in the order of their seeded permutation, so that the first m of them are the
    rows of ``pick_rows(trace, m, seed)``: work that stops early (an interrupted expansion) has done a uniform
    sample, not the rows of the earliest contexts.

    Parameters
    ----------
    trace : brw.traces.Trace
    n : int
    seed : int

    Returns
    -------
    int64 array (n,)
    """
    n = whole_number(n, "contexts")
    seed = whole_number(seed, "seed", 0)
    eligible = answer_rows(trace)
    if n > eligible.size:
        raise BrwError(f"asked for {n} contexts but the trace {trace.path or ''} has only {eligible.size} "
                       f"answer positions")
    perm = np.random.default_rng(np.random.SeedSequence(seed)).permutation(eligible.size)
    return eligible[perm[:n]]


@dataclass(frozen=True)
class RealTrees(Result):
    """Real-tree results of many contexts: ``meta`` (a dict, see the results-file comment), ``arrays`` (one
    entry per context along the first axis) and the ``path`` they were read from or written to.

    ``to_dict()`` gives every field (arrays as lists); ``to_pandas()`` one row per source and P (mean
    accepted(P) and its standard error; the row "all" pools the sources when there are several), or with
    ``per_context=True`` one row per context and P.
    """

    meta: dict
    arrays: dict
    path: str | None = None

    @classmethod
    def empty(cls, meta: dict, accepted_dtype=np.float64) -> RealTrees:
        """Results with no context yet.

        Parameters
        ----------
        meta : dict
            Holds at least ``P``, the nodes per context.
        accepted_dtype : numpy dtype
            float64, or float32 for a smaller file.

        Returns
        -------
        RealTrees
        """
        pmax = int(meta["P"])
        arrays = {key: np.zeros(0, dt) for key, dt in _PER_CONTEXT.items()}
        arrays.update({key: np.zeros((0, pmax), dt or accepted_dtype) for key, dt in _PER_NODE.items()})
        return cls(meta, arrays)

    def with_context(self, row: dict) -> RealTrees:
        """These results and one more context.

        Parameters
        ----------
        row : dict
            One value per field of ``arrays`` (a length-PMAX array for the per-node fields; the per-node
            statistics entropy, moment2 and top1 may be left out, then they are NaN: not known).

        Returns
        -------
        RealTrees
            New results (the same meta and path); the arrays are converted to the file's dtypes.
        """
        row = {**{k: np.full(self.pmax, np.nan) for k in _NODE_STATS}, **row}  # statistics not known: NaN
        arrays = {k: np.concatenate([a, np.asarray([row[k]], dtype=a.dtype)]) for k, a in self.arrays.items()}
        return RealTrees(self.meta, arrays, self.path)

    @property
    def sources(self) -> list[str]:
        """The names of the traces the contexts come from."""
        return [s["name"] for s in self.meta["sources"]]

    @property
    def temperatures(self) -> list[float]:
        """The temperature of each source's trees (:func:`tree_temperatures`)."""
        return tree_temperatures(self.meta)

    @property
    def temperature(self) -> float | None:
        """The trees' temperature when every source's is the same (else None)."""
        t = set(self.temperatures)
        return t.pop() if len(t) == 1 else None

    @property
    def pmax(self) -> int:
        """Nodes per context: accepted(P) is known for P = 1 .. pmax."""
        return int(self.meta["P"])

    def accepted(self, source: str | None = None) -> np.ndarray:
        """accepted(P) per context.

        Parameters
        ----------
        source : str or None
            One source by name, or None for all.

        Returns
        -------
        float64 array (contexts, pmax)
        """
        a = self.arrays["accepted"].astype(np.float64)
        if source is None:
            return a
        if source not in self.sources:
            raise BrwError(f"no source {source!r} in {self.path or 'these results'} (sources: "
                           f"{', '.join(self.sources)})")
        return a[self.arrays["source"] == self.sources.index(source)]

    def _tidy(self, at=None, per_context: bool = False) -> dict:
        """Columns model, source, P, accepted, stderr, contexts (one row per source and P in ``at``, default
        every P); with ``per_context``: model, source, row, context, offset, P, accepted."""
        P = np.arange(1, self.pmax + 1) if at is None else np.asarray(at, dtype=np.int64)
        if P.ndim != 1 or P.size == 0 or P.min() < 1 or P.max() > self.pmax:
            raise BrwError(f"at must hold P in 1..{self.pmax}, got {at!r}")
        a = self.accepted()[:, P - 1]
        model = self.meta.get("model")
        if per_context:
            n = a.shape[0]
            names = np.asarray(self.sources, dtype=object)[self.arrays["source"]] if n else np.zeros(0, object)
            return {"model": [model] * a.size, "source": np.repeat(names, P.size),
                    **{key: np.repeat(self.arrays[key], P.size) for key in ("row", "context", "offset")},
                    "P": np.tile(P, n), "accepted": a.ravel()}
        groups = [(name, self.arrays["source"] == j) for j, name in enumerate(self.sources)]
        if len(groups) > 1:
            groups.append(("all", np.ones(a.shape[0], bool)))
        cols = {"model": [], "source": [], "P": [], "accepted": [], "stderr": [], "contexts": []}
        for name, sel in groups:
            x, n = a[sel], int(sel.sum())
            cols["source"] += [name] * P.size
            cols["P"] += P.tolist()
            cols["accepted"] += (x.mean(0) if n else np.full(P.size, np.nan)).tolist()
            cols["stderr"] += (x.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.full(P.size, np.nan)).tolist()
            cols["contexts"] += [n] * P.size
        cols["model"] = [model] * len(cols["P"])
        return cols


def tree_temperatures(meta: dict) -> list[float]:
    """The temperature each source's trees were expanded at: the results' ``temperature`` when they record one,
    else (older files, or sources of different temperatures) each source trace's recorded temperature.

    Parameters
    ----------
    meta : dict
        A results file's metadata.

    Returns
    -------
    list of float
        One per source.
    """
    t = meta.get("temperature")
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return [float(t)] * len(meta["sources"])
    return [float(src.get("temperature", 1.0)) for src in meta["sources"]]


def save_realtrees(res: RealTrees, path) -> None:
    """Write results whole or not at all (a temporary file, then rename).

    Parameters
    ----------
    res : RealTrees
    path : str or Path
        The .npz file.
    """
    arrays = {"schema_version": np.array(RESULTS_SCHEMA, np.int64), "format": np.array(RESULTS_FORMAT),
              "meta": np.array(json.dumps(res.meta, sort_keys=True, allow_nan=False)), **res.arrays}
    write_npz(path, arrays)


def _read_npz(p: Path) -> dict:
    if not p.is_file():
        hint = " (regenerate it with sims/realtrees.py)" if p in BUNDLED.values() else ""
        raise BrwError(f"real-tree results {p} do not exist{hint}")
    where = f"real-tree results {p}"
    try:
        with zipfile.ZipFile(p) as zf:  # what the members declare, before any is read
            infos = zf.infolist()
    except Exception as e:
        raise BrwError(f"{where}: not a readable .npz archive ({type(e).__name__}: {str(e)[:120]})") from None
    known = {f"{k}.npy" for k in ("format", "schema_version", "meta", *_PER_CONTEXT, *_PER_NODE)}
    for info in infos:
        if info.filename not in known:
            raise BrwError(f"{where}: not a brw real-tree results file (archive member "
                           f"{clip(info.filename, 60)!r} is not one of its fields; refused unread)")
    have = available_memory()
    declared = sum(i.file_size for i in infos)
    if declared > USABLE * have:
        raise BrwError(f"{where}: its fields declare {format_bytes(declared)}, more than the {format_bytes(have)} "
                       f"of memory available")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise BrwError(f"{where}: not a readable .npz archive ({type(e).__name__}: {str(e)[:120]})") from None


def _scalar(raw: dict, key: str, kinds: str, where: str):
    a = raw.get(key)
    if a is None or a.shape != () or a.dtype.kind not in kinds:
        raise BrwError(f"{where}: not a brw real-tree results file (field {key!r} is not a single "
                       f"{'string' if kinds == 'U' else 'integer'})")
    return a.item()


def _read_meta(raw: dict, where: str) -> dict:
    if _scalar(raw, "format", "U", where) != RESULTS_FORMAT:
        raise BrwError(f"{where}: not a brw real-tree results file (field 'format' is not {RESULTS_FORMAT!r})")
    version = _scalar(raw, "schema_version", "iu", where)
    if version not in (1, RESULTS_SCHEMA):
        raise BrwError(f"{where}: schema version {version} is not supported (this brw reads 1 and "
                       f"{RESULTS_SCHEMA})")
    try:
        meta = json.loads(_scalar(raw, "meta", "U", where))
    except (ValueError, RecursionError) as e:
        raise BrwError(f"{where}: field 'meta' is not JSON ({clip(str(e), 80)})") from None
    P = meta.get("P") if isinstance(meta, dict) else None
    sources = meta.get("sources") if isinstance(meta, dict) else None
    if isinstance(P, bool) or not isinstance(P, int) or not 1 <= P <= MAX_P:
        raise BrwError(f"{where}: field 'meta' needs P, a whole number in 1..{MAX_P}, got {clip(repr(P), 40)}")
    if (not isinstance(sources, list) or not sources
            or not all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in sources)):
        raise BrwError(f"{where}: field 'meta' needs sources, a non-empty list of objects with a string 'name'")
    temps = [meta.get("temperature", 1.0)] + [x.get("temperature", 1.0) for x in sources]
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t > 0 for t in temps):
        raise BrwError(f"{where}: field 'meta' has a temperature that is not a finite number > 0")
    return meta


def load_realtrees(path=None) -> RealTrees:
    """Read a results file, checked whole: one BrwError on any defect.

    Parameters
    ----------
    path : str or Path or None
        The .npz file, or the name of a bundled one (:data:`BUNDLED`); None reads the default bundled results
        (:data:`BUNDLED_RESULTS`).

    Returns
    -------
    RealTrees
    """
    p = BUNDLED_RESULTS if path is None else BUNDLED.get(str(path), Path(path))
    raw = _read_npz(p)
    where = f"real-tree results {p}"
    meta = _read_meta(raw, where)
    pmax, nsrc = int(meta["P"]), len(meta["sources"])
    if int(raw["schema_version"]) == 1:  # recorded before the per-node statistics: not known
        n = raw["accepted"].shape[0] if "accepted" in raw and raw["accepted"].ndim else 0
        raw.update({key: np.full((n, pmax), np.nan, np.float32) for key in _NODE_STATS if key not in raw})
    arrays = {}
    n = None
    for key in (*_PER_CONTEXT, *_PER_NODE):
        if key not in raw:
            raise BrwError(f"{where}: field {key!r} is missing")
        a = raw[key]
        want = (pmax,) if key in _PER_NODE else ()
        if n is None:
            n = a.shape[0] if a.ndim else -1
        if a.ndim != 1 + len(want) or a.shape != (n, *want) or a.dtype.kind not in "iuf":
            raise BrwError(f"{where}: field {key!r} has shape {a.shape} and dtype {a.dtype}; expected "
                           f"({n}{', ' + str(pmax) if want else ''}) numbers")
        arrays[key] = a
    acc = arrays["accepted"]
    bad = ~np.all(np.isfinite(acc), axis=1) | np.any(np.diff(acc, axis=1) < 0, axis=1) | np.any(acc <= 0, axis=1)
    if np.any(bad):
        raise BrwError(f"{where}: field 'accepted' row {int(np.flatnonzero(bad)[0])} is not a positive, finite, "
                       f"non-decreasing curve")
    for key, lo, hi in (("entropy", 0.0, np.inf), ("moment2", 0.0, np.inf), ("top1", 0.0, 1.0)):
        x = arrays[key]
        bad = ~np.isnan(x) & ~((x >= lo - 1e-6) & (x <= hi + 1e-6))
        if np.any(bad):
            r, c = np.argwhere(bad)[0]
            raise BrwError(f"{where}: field {key!r} row {r} node {c} is {x[r, c]!r}, outside [{lo}, {hi}]")
    if n and (arrays["source"].min() < 0 or arrays["source"].max() >= nsrc):
        raise BrwError(f"{where}: field 'source' points outside the {nsrc} sources of the metadata")
    return RealTrees(meta, arrays, str(p))


def summarize(res: RealTrees, at: list[int] | None = None) -> dict:
    """Mean accepted(P) and its standard error over contexts, per source and overall.

    Parameters
    ----------
    res : RealTrees
    at : list of int or None
        The P to report (default: the frontier's default points up to ``res.pmax``).

    Returns
    -------
    dict
        model, P, pmax, sources, by_source {name: {contexts, accepted, stderr}} (with "all" when there are
        several sources), contexts, evaluated_per_node, top1_max_abs_diff.
    """
    from brw.results import default_at

    pmax = res.pmax
    at = default_at(pmax) if at is None else [whole_number(p, "P") for p in at]
    if not at or max(at) > pmax:
        raise BrwError(f"P values must lie in 1..{pmax} (the real trees' Pmax), got {clip(repr(at), 60)}")
    a = res.accepted()
    per = {}
    groups = [(name, res.arrays["source"] == j) for j, name in enumerate(res.sources)]
    if len(groups) > 1:
        groups.append(("all", np.ones(a.shape[0], bool)))
    for name, sel in groups:
        x = a[sel][:, np.asarray(at) - 1]
        n = x.shape[0]
        per[name] = {"contexts": int(n),
                     "accepted": x.mean(0).tolist() if n else [None] * len(at),
                     "stderr": (x.std(0, ddof=1) / np.sqrt(n)).tolist() if n > 1 else [None] * len(at)}
    ev = res.arrays["evaluated"]
    return {"model": res.meta.get("model"), "P": at, "pmax": pmax, "sources": res.sources, "by_source": per,
            "contexts": int(a.shape[0]),
            "evaluated_per_node": float(ev.mean() / pmax) if ev.size else None,
            "top1_max_abs_diff": (float(np.max(np.abs(a[:, 0] - res.arrays["trace_top1"])))
                                  if a.shape[0] else None)}


#: What the root-adjusted mean regresses on: statistics of a context's root distribution, recorded by the trace
#: at every answer position (so that their mean over all positions is known exactly).
ROOT_COVARIATES = ("top1", "top4", "entropy")


def root_covariates(trace, rows) -> np.ndarray:
    """The root statistics of :data:`ROOT_COVARIATES` at trace rows: the top probability, the top four's mass
    and the entropy of the next-token distribution recorded there (a real tree's root distribution).

    Parameters
    ----------
    trace : brw.traces.Trace
    rows : int array (n,)

    Returns
    -------
    float64 array (n, 3)
    """
    top = np.exp(np.asarray(trace.top_logp[rows], dtype=np.float64))
    return np.column_stack([top[:, 0], top[:, :4].sum(1), np.asarray(trace.entropy[rows], dtype=np.float64)])


#: What the greedy continuation adds to the root statistics (:func:`greedy_covariates`), to GREEDY_DEPTH steps.
GREEDY_COVARIATES = ("greedy_accepted", "greedy_entropy")
GREEDY_DEPTH = 8


def greedy_continuation(trace, greedy, depth: int = GREEDY_DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """The top probability and the entropy along every trace row's greedy continuation, known for every row.

    A real tree's spine is the model's greedy continuation of its root's context. The recorded text shows it
    while the text takes its top token; from the first position where it does not, the trace's greedy branches
    (:func:`brw.real.recording.record_branches`: from every such position, the model's own top tokens for the
    branches' depth) go on with it. Step 0 is the row itself; step d the distribution after d top tokens.

    Parameters
    ----------
    trace : brw.traces.Trace
        A recorded trace.
    greedy : brw.traces.Trace
        Its greedy branches (mode ``greedy-branches``, recorded from this trace).
    depth : int, optional
        Steps of the continuation (default :data:`GREEDY_DEPTH`).

    Returns
    -------
    (top1, entropy) : float64 arrays (rows, depth + 1)
        In the trace's row order; NaN past the end of what was recorded (the end of a text, or of a branch
        shallower than ``depth``).

    Raises
    ------
    BrwError
        When ``greedy`` is not a trace of greedy branches of ``trace``'s contexts.
    """
    depth = whole_number(depth, "depth")
    meta = greedy.meta
    src, start = meta.get("branch_source_context"), meta.get("branch_offset")
    if meta.get("mode") != BRANCH_MODE or not (isinstance(src, list) and isinstance(start, list)
                                               and len(src) == len(start) == greedy.contexts):
        raise BrwError("greedy: not a trace of greedy branches (brw record --branches) with one source context "
                       "and offset per branch")
    n = int(np.asarray(trace.entropy).size)
    order, _, _, follows = recorded_contexts(trace)
    key = np.asarray(trace.context, np.int64) * (1 << 32) + np.asarray(trace.offset, np.int64)
    took = np.asarray(trace.taken) == np.asarray(trace.top_ids)[:, 0]
    text_next = np.full(n, -1, np.int64)  # the next text row where the text took its top token
    sorted_next = np.where(follows, order[np.minimum(np.arange(n) + 1, n - 1)], -1)
    text_next[order] = np.where(took[order], sorted_next, -1)
    # branch rows by (branch, step): step 1 leaves from the source row at (context, offset)
    b = np.asarray(greedy.context, np.int64)
    src, start = np.asarray(src, np.int64), np.asarray(start, np.int64)
    step = np.asarray(greedy.offset, np.int64) - start[b]
    brow = np.lexsort((step, b))
    same = np.r_[b[brow][1:] == b[brow][:-1], False] & np.r_[np.diff(step[brow]) == 1, False]
    branch_next = np.full(b.size, -1, np.int64)
    branch_next[brow] = np.where(same, np.roll(brow, -1), -1)
    first = brow[step[brow] == 1]
    where = {int(k): int(r) for r, k in zip(first, src[b[first]] * (1 << 32) + start[b[first]])}
    branch_first = np.array([where.get(int(k), -1) for k in key], dtype=np.int64)
    t_top, g_top = (np.exp(np.asarray(t.top_logp[:, 0], np.float64)) for t in (trace, greedy))
    t_ent, g_ent = (np.asarray(t.entropy, np.float64) for t in (trace, greedy))
    top1, ent = np.full((n, depth + 1), np.nan), np.full((n, depth + 1), np.nan)
    top1[:, 0], ent[:, 0] = t_top, t_ent
    text, branch = np.arange(n), np.full(n, -1, np.int64)  # where each continuation is: a text or a branch row
    for d in range(1, depth + 1):
        on_text = text >= 0
        nxt = np.where(on_text, text_next[np.maximum(text, 0)], -1)
        leave = on_text & (nxt < 0)
        branch = np.where(leave, branch_first[np.maximum(text, 0)],
                          np.where(branch >= 0, branch_next[np.maximum(branch, 0)], -1))
        text = nxt
        top1[:, d] = np.where(text >= 0, t_top[np.maximum(text, 0)],
                              np.where(branch >= 0, g_top[np.maximum(branch, 0)], np.nan))
        ent[:, d] = np.where(text >= 0, t_ent[np.maximum(text, 0)],
                             np.where(branch >= 0, g_ent[np.maximum(branch, 0)], np.nan))
    return top1, ent


def greedy_covariates(trace, greedy, depth: int = GREEDY_DEPTH) -> np.ndarray:
    """:data:`GREEDY_COVARIATES` at every trace row: statistics of its greedy continuation
    (:func:`greedy_continuation`) that a real tree rooted there leans on.

    ``greedy_accepted`` is what the greedy chain of ``depth`` draft tokens accepts, the sum over d = 1..depth of
    the product of the top probabilities at steps 0..d-1 (the optimal tree's spine, which carries most of its
    accepted tokens at small P); ``greedy_entropy`` is the mean entropy at steps 1..depth, how easy the tree's
    continuation is below the spine's first steps.
    Where a continuation was recorded to fewer steps, both use the steps recorded (the entropy: the row's own
    when none was), a fixed function of the recorded data like the rest.

    Parameters
    ----------
    trace, greedy : brw.traces.Trace
        As :func:`greedy_continuation` takes them.
    depth : int, optional

    Returns
    -------
    float64 array (rows, 2)
    """
    top1, ent = greedy_continuation(trace, greedy, depth)
    path = np.cumprod(np.nan_to_num(top1[:, :-1], nan=0.0), axis=1)  # a step past the record adds nothing
    known = ~np.isnan(ent[:, 1:])
    count = known.sum(1)
    mean_ent = np.where(count > 0, np.nansum(np.where(known, ent[:, 1:], 0.0), 1) / np.maximum(count, 1), ent[:, 0])
    return np.column_stack([path.sum(1), mean_ent])


def bundled_greedy_covariates(name: str) -> np.ndarray | None:
    """:func:`greedy_covariates` of every row of the bundled trace ``name`` from its bundled greedy branches
    (``NAME-greedy``), or None when it has none."""
    from brw.traces import BUNDLED as BUNDLED_TRACES
    from brw.traces import load_trace

    branches = f"{name}-greedy"
    return greedy_covariates(load_trace(name), load_trace(branches)) if branches in BUNDLED_TRACES else None


def root_adjusted_mean(real: np.ndarray, rows: np.ndarray, trace, folds: int = 1,
                       extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Real accepted(P) averaged over contexts, corrected for the luck of which roots were drawn.

    The contexts are answer positions of the trace drawn uniformly without replacement (:func:`pick_rows`), and
    the trace knows every answer position's root distribution (and, with its greedy branches, its greedy
    continuation). A regression estimator (control variates) uses that: within each fold of the recorded
    generations (context c in fold c % ``folds``, as the K-fold scoring forms them), the mean of the contexts'
    accepted(P) moves by b (population mean - sample mean) of the covariates, the root statistics
    :func:`root_covariates` and the columns of ``extra`` (e.g. :func:`greedy_covariates`), b the within-fold
    least-squares slope per P; folds keep their contexts' weights, so the estimate targets what the plain mean
    targets (what the fold-weighted predictions predict): the mean over the folds' answer positions. At P = 1,
    accepted is the root's top probability, so the estimate there is its exact mean over those positions.

    The standard error is the residuals' in the leave-one-out (HC3) form, each residual e_i divided by 1 - h_i
    (h_i its leverage: 1 / n_j of its fold's mean plus its covariates'), with the finite population correction of
    sampling n_j of the N_j answer positions of fold j without replacement: var = sum_i (1 - n_j / N_j)
    (e_i / (1 - h_i))^2 / n^2. Real trees are heavy-tailed, and the plain residual variance came out 10-20% low
    for such outcomes at n = 128 (the estimator's bias is of order 1/n, a tenth of a standard error there).
    ``tests/test_realtree.py`` checks bias and standard error on synthetic populations and on outcomes known at
    every position of a recorded trace.

    Parameters
    ----------
    real : float array (n, pmax)
        accepted(P) per context.
    rows : int array (n,)
        Each context's trace row (the results' ``row``).
    trace : brw.traces.Trace
        The trace the contexts were drawn from.
    folds : int, optional
    extra : float array (trace rows, m), optional
        More covariates, one row per trace row (every answer position's must be finite).

    Returns
    -------
    (mean, stderr) : float64 arrays (pmax,)
    """
    real = np.asarray(real, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    n = real.shape[0]
    answer = answer_rows(trace)

    def covariates(at):
        x = root_covariates(trace, at)
        return x if extra is None else np.column_stack([x, np.asarray(extra, np.float64)[at]])

    x = covariates(rows)
    if not np.allclose(x[:, 0], real[:, 0], rtol=1e-4, atol=1e-5):
        raise BrwError("the real trees' roots do not match their trace rows (another trace than the one they were "
                       "expanded from?)")
    if extra is not None and (np.shape(extra)[0] != np.asarray(trace.entropy).size
                              or not np.all(np.isfinite(covariates(answer)))):
        raise BrwError("extra covariates need one finite row per trace row")
    fold = np.asarray(trace.context, dtype=np.int64) % folds
    yc, xc, shift = np.empty_like(real), np.empty_like(x), np.zeros(x.shape[1])
    groups, kept, lev = 0, np.zeros(n), np.zeros(n)  # each context's share of its fold left unsampled, leverage
    for j in np.unique(fold[rows]):
        sel = fold[rows] == j
        pop = answer[fold[answer] == j]
        yc[sel] = real[sel] - real[sel].mean(0)
        xc[sel] = x[sel] - x[sel].mean(0)
        shift += sel.sum() / n * (covariates(pop).mean(0) - x[sel].mean(0))
        kept[sel] = max(0.0, 1.0 - sel.sum() / pop.size)
        lev[sel] = 1.0 / sel.sum()
        groups += 1
    if n - groups - x.shape[1] < 2:
        return real.mean(0), np.full(real.shape[1], np.nan)
    b, pinv = np.linalg.lstsq(xc, yc, rcond=None)[0], np.linalg.pinv(xc)
    lev += np.einsum("ij,ji->i", xc, pinv)
    resid = (yc - xc @ b) / np.maximum(1.0 - lev, 1e-3)[:, None]  # HC3: each residual as if left out
    return real.mean(0) + shift @ b, np.sqrt((kept[:, None] * resid**2).sum(0)) / n


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def node_statistics(res: RealTrees) -> dict:
    """How the next-token distributions inside real trees are spread and correlated, per source and overall.

    From the per-node statistics (schema 2): over the nodes whose distribution was computed, their count,
    mean entropy, mean second log-moment and mean top probability; the Pearson correlation of a node's
    entropy with its parent's over every parent-child pair (``parent_child_entropy_correlation``), and the
    same after subtracting each tree's mean node entropy from both (``within_tree_correlation``: what is
    left once contexts' differences are removed, the dependence along paths); the share of the entropy's
    variance between trees (``between_tree_share``); and the mean entropy by depth (1, 2, ...; up to the
    deepest depth with at least 20 nodes); and the mean entropy of nodes by the surprisal of the edge into them
    (``entropy_by_edge_surprisal``: per bin of :data:`SURPRISAL_BINS`, (mean, count); the edge's probability is
    the ratio of the node's and its parent's path probabilities, the steps of accepted(P), so the deepest edges
    of float32 results carry a rounding error of a few hundredths of a nat).

    Parameters
    ----------
    res : RealTrees

    Returns
    -------
    dict
        {source or "all": {...}}; a source without statistics (schema 1) has nodes = 0 and NaN values.
    """
    ent, m2, top = (res.arrays[k].astype(np.float64) for k in ("entropy", "moment2", "top1"))
    par, depth = res.arrays["parent"].astype(np.int64), res.arrays["depth"].astype(np.int64)
    acc = res.arrays["accepted"].astype(np.float64)
    path_prob = np.diff(acc, axis=1, prepend=0.0)  # node i's path probability: accepted's step at P = i + 1
    groups = [(name, res.arrays["source"] == j) for j, name in enumerate(res.sources)]
    if len(groups) > 1:
        groups.append(("all", np.ones(ent.shape[0], bool)))
    out = {}
    for name, sel in groups:
        e, p, d = ent[sel], par[sel], depth[sel]
        known = ~np.isnan(e)
        n = int(known.sum())
        tree_mean = np.array([row[k].mean() if k.any() else np.nan for row, k in zip(e, known)])
        child, parent, dev_c, dev_p, edge_h, edge_s = [], [], [], [], [], []
        for row, prow, k, mu, path in zip(e, p, known, tree_mean, path_prob[sel]):
            pair = k & (prow >= 0)
            pair[pair] &= k[prow[pair]]
            child.append(row[pair])
            parent.append(row[prow[pair]])
            dev_c.append(row[pair] - mu)
            dev_p.append(row[prow[pair]] - mu)
            # the edge into each node: its path probability over its parent's (the root's children: their own)
            up = np.where(prow >= 0, path[np.maximum(prow, 0)], 1.0)
            ok = k & (path > 0) & (up > 0)
            edge_h.append(row[ok])
            edge_s.append(np.log(up[ok]) - np.log(path[ok]))
        child, parent = np.concatenate(child or [np.zeros(0)]), np.concatenate(parent or [np.zeros(0)])
        dev_c, dev_p = np.concatenate(dev_c or [np.zeros(0)]), np.concatenate(dev_p or [np.zeros(0)])
        allk = e[known]
        between = (float(np.nanvar(np.repeat(tree_mean, known.sum(1))) / allk.var())
                   if n > 2 and allk.var() > 0 else math.nan)
        by_depth = []
        for level in range(1, int(d.max(initial=0)) + 1):
            at = known & (d == level)
            if at.sum() < 20:
                break
            by_depth.append(float(e[at].mean()))
        out[name] = {"trees": int(sel.sum()), "nodes": n,
                     "mean_entropy": float(allk.mean()) if n else math.nan,
                     "mean_moment2": float(m2[sel][known].mean()) if n else math.nan,
                     "mean_top1": float(top[sel][known].mean()) if n else math.nan,
                     "pairs": int(child.size),
                     "parent_child_entropy_correlation": _corr(parent, child),
                     "within_tree_correlation": _corr(dev_p, dev_c),
                     "between_tree_share": between,
                     "entropy_by_depth": by_depth,
                     "entropy_by_edge_surprisal": binned_means(np.concatenate(edge_s or [np.zeros(0)]),
                                                               np.concatenate(edge_h or [np.zeros(0)]))}
    return out


def trace_name(src: dict) -> str:
    """What ``load_trace`` and ``trace:`` take for a results file's source (an entry of ``meta["sources"]``):
    a bundled trace's name, or the trace file's path."""
    f = str(src.get("file", ""))
    return f.removeprefix("bundled:") if f.startswith("bundled:") or f.endswith(".npz") else src["name"]


def spine_statistics(res: RealTrees, depth: int = 10) -> dict:
    """The greedy spine of each real tree against the recorded text it branches from, per source.

    A tree's spine is its chain of most probable children from the root: the verifier's own greedy
    continuation of the context. At each depth d = 1..``depth``, over the trees whose spine reaches d: the mean
    next-token entropy of the spine's node (``spine_entropy``), the mean entropy that the trace recorded d
    positions further along the sampled text of the same context (``text_entropy``: what ``path:`` gives the
    node), and how often that text had taken its top token at the step before (``text_took_top``); ``trees``
    counts them. Positions the recorded text does not reach are left out of ``text_*``.

    Parameters
    ----------
    res : RealTrees
        Results with per-node statistics (schema 2); their traces must be readable (bundled or by path).
    depth : int, optional

    Returns
    -------
    dict
        {source: {"spine_entropy", "text_entropy", "text_took_top": lists of ``depth`` floats (NaN where no
        tree reaches), "trees": list of ints}}; a source without statistics (schema 1) is left out.
    """
    from brw.traces import load_trace

    depth = whole_number(depth, "depth")
    a = res.arrays
    out = {}
    for j, (name, src) in enumerate(zip(res.sources, res.meta["sources"])):
        sel = np.flatnonzero(a["source"] == j)
        if sel.size == 0 or np.all(np.isnan(a["entropy"][sel])):
            continue
        tr = load_trace(trace_name(src))
        at = {(int(c), int(o)): r for r, (c, o) in enumerate(zip(tr.context, tr.offset))}
        sums = np.zeros((4, depth))  # spine entropy, text entropy, text took its top token, text positions
        trees = np.zeros(depth, dtype=np.int64)
        for i in sel:
            par, ent = a["parent"][i], a["entropy"][i]
            prob = np.diff(a["accepted"][i].astype(np.float64), prepend=0.0)
            row = int(a["row"][i])
            ctx, off = int(tr.context[row]), int(tr.offset[row])
            node = -1
            for d in range(depth):
                kids = np.flatnonzero(par == node)
                if kids.size == 0:
                    break
                node = kids[np.argmax(prob[kids])]
                if np.isnan(ent[node]):
                    break
                trees[d] += 1
                sums[0, d] += ent[node]
                before, after = at.get((ctx, off + d)), at.get((ctx, off + d + 1))
                if before is not None and after is not None:
                    sums[1, d] += tr.entropy[after]
                    sums[2, d] += tr.taken[before] == tr.top_ids[before, 0]
                    sums[3, d] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = {"spine_entropy": (sums[0] / trees).tolist(), "text_entropy": (sums[1] / sums[3]).tolist(),
                         "text_took_top": (sums[2] / sums[3]).tolist(), "trees": trees.tolist()}
    return out


