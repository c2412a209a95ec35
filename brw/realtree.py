"""Real optimal trees: the best-first draft tree of a real causal LM, with the model as its own drafter.

For a context (token ids), the speed-of-light tree of capacity P is the set of the P token sequences below
the context with the highest path probability under the model itself (theory.md section 1, the oracle
drafter), and accepted(P) is the sum of their path probabilities. ``expand(model, context, pmax)`` finds
the tree for every P <= pmax at once; ``expand_naive`` is the obviously-correct reference (one full forward
pass per node, no cache), used by the tests and by the speed comparison.

Why the batched expansion is exact (the same multiset of path probabilities, hence the same accepted(P),
and the same nodes when no two path probabilities tie):

- S, the set of nodes evaluated so far, is prefix-closed: a node enters the candidate heap only once its
  parent's next-token distribution is known. The heap holds, for every node of S (and the root), its best
  child not yet in S (lazy siblings: popping child r pushes child r + 1), so the heap's top M is the
  largest path log-probability outside S: every node outside S descends from some heap entry and path
  probabilities never grow along a path.
- Hence once at least pmax nodes of S have log-probability >= M, the pmax largest path probabilities of the
  whole infinite tree are the pmax largest within S, and accepted(P) is their running sum.
- Each round pops the best candidates (at most B, and only those at or above the floor: the pmax-th
  largest path log-probability among all nodes whose value is known, the top-k children of every
  evaluated node; that is a lower bound on the final pmax-th value, so nothing below it can enter the
  tree), evaluates them in one forward pass and pushes their first children. Popping a candidate that the
  one-at-a-time loop would never have reached costs compute (``evaluated`` - pmax), never exactness; and
  while fewer than pmax nodes are certain the heap's top is at or above the floor, so every round makes
  progress.
- A child of rank > pmax can never be among the pmax best (its pmax better siblings come first), so each
  node keeps only its top min(pmax, vocabulary) children.

The forward pass of a round reuses the context's KV cache: the context is run once; every evaluated node
appends exactly one token (its own) to the cache, at position len(context) + depth - 1, and attends to the
context, to its ancestors' cache slots and to itself through a 4D additive attention mask (tree attention).
A round costs about one weight read whatever its width (on a CPU a pass is memory-bound), so the number of
rounds, at least the tree's depth, sets the time; the lookahead (``expand``) cuts it on deep chains.
Next-token log-probabilities are a float64 log-softmax of the raw logits (divided by the temperature).
Exact means exact for the numbers the model computes: with float32 weights a cached pass and an uncached one
differ by about 1e-6 in probability (summation order), in float64 by about 1e-15 (tests/test_realtree.py).
"""

from __future__ import annotations

import heapq
import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brw.errors import BrwError
from brw.progress import Progress

__all__ = ["RealTree", "RealTrees", "expand", "expand_naive", "realtrees", "load_realtrees", "save_realtrees",
           "pick_rows", "summarize", "DEFAULT_BATCH", "DEFAULT_LOOKAHEAD", "BUNDLED_RESULTS"]

#: Nodes per forward pass. On a 2-core CPU larger rounds waste more speculative nodes than they save in
#: per-pass overhead (see the module docstring); a GPU would take more.
DEFAULT_BATCH = 32
#: Tokens of a recorded answer's continuation evaluated along with the context (``expand``'s lookahead).
DEFAULT_LOOKAHEAD = 32


@dataclass
class RealTree:
    """The pmax best nodes below one context, in best-first order (flat arrays, index = rank - 1).

    ``accepted[P - 1]`` is the sum of the P largest path probabilities (E[X] of the oracle drafter's
    P-node tree); ``logprob`` the path log-probabilities (non-increasing); ``parent`` the index of each
    node's parent in these arrays (-1 for a child of the root); ``depth`` and ``token`` the node's depth
    and its own token id. ``evaluated`` counts the nodes whose next-token distribution was computed and
    ``forward_passes`` the model calls, the context's included.
    """

    accepted: np.ndarray
    logprob: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    token: np.ndarray
    evaluated: int
    forward_passes: int
    seconds: float

    def paths(self) -> list[tuple[int, ...]]:
        """Each node's token sequence below the context (for comparisons and display)."""
        out: list[tuple[int, ...]] = []
        for i in range(len(self.token)):
            p = int(self.parent[i])
            out.append((out[p] if p >= 0 else ()) + (int(self.token[i]),))
        return out


def _check(context, pmax: int, batch: int = 1) -> list[int]:
    ctx = [int(t) for t in context]
    if not ctx:
        raise BrwError("a context needs at least one token")
    if pmax < 1:
        raise BrwError(f"pmax must be at least 1, got {pmax}")
    if batch < 1:
        raise BrwError(f"the batch size must be at least 1, got {batch}")
    return ctx


def _children(logits, k: int, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Top-k children of each row of raw logits: (log-probs float64 [n, k], token ids int64 [n, k]), from a
    float64 log-softmax of logits / temperature. Ties are ordered by token id so that every code path ranks
    siblings the same way."""
    import torch

    z = logits.to(torch.float64)
    if temperature != 1.0:
        z = z / temperature
    lp = torch.log_softmax(z, dim=-1)
    vals, idx = torch.topk(lp, k, dim=-1, sorted=True)
    vals = vals.cpu().numpy()
    idx = idx.cpu().numpy()
    for r in range(vals.shape[0]):
        order = np.lexsort((idx[r], -vals[r]))
        vals[r] = vals[r, order]
        idx[r] = idx[r, order]
    return vals, idx


def _keep_last(model, n: int) -> dict:
    """``logits_to_keep=n`` where the model takes it: a pass over a context then projects only its last n
    positions onto the vocabulary (the projection is a fifth of SmolLM2's compute per token)."""
    return {"logits_to_keep": n} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


def _cache_keyword(model) -> str:
    """transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _out_cache(out):
    return out["cache"] if "cache" in out else out["past_key_values"]


def _finish(lps, parents, depths, tokens, pmax, evaluated, passes, t0) -> RealTree:
    lps = np.asarray(lps, dtype=np.float64)
    # Best-first order: larger log-probability first; among ties the earlier-created node (a fixed rule).
    order = np.argsort(-lps, kind="stable")[:pmax]
    if len(order) < pmax:
        raise BrwError(f"the tree below this context has fewer than {pmax} nodes")
    rank_of = np.full(len(lps), -1, dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    par = np.asarray(parents, dtype=np.int64)[order]
    par = np.where(par >= 0, rank_of[np.maximum(par, 0)], -1)
    if np.any((np.asarray(parents)[order] >= 0) & (par < 0)):
        raise AssertionError("best-first tree is not prefix-closed")  # cannot happen: see module docstring
    lp = lps[order]
    return RealTree(
        accepted=np.cumsum(np.exp(lp)),
        logprob=lp,
        parent=par.astype(np.int32),
        depth=np.asarray(depths, dtype=np.int32)[order],
        token=np.asarray(tokens, dtype=np.int64)[order],
        evaluated=evaluated,
        forward_passes=passes,
        seconds=time.perf_counter() - t0,
    )


def expand(model, context, pmax: int, batch: int = DEFAULT_BATCH, temperature: float = 1.0,
           lookahead=()) -> RealTree:
    """The pmax best nodes below ``context`` under ``model``, expanded in rounds of up to ``batch`` nodes.

    One forward pass over the context, then one pass per round over that round's new nodes only, reusing the
    KV cache through a tree attention mask. ``lookahead``: token ids believed to follow the context (in a
    trace, the answer's actual continuation). They ride along in the context's pass, which thereby gives the
    distributions of the nodes on that path for free; a deep, nearly deterministic chain then costs fewer
    rounds. The result does not depend on it (exact: see the module docstring)."""
    import torch

    ctx = _check(context, pmax, batch)
    ahead = [int(t) for t in lookahead]
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    cache_kw = _cache_keyword(model)
    n_ctx = len(ctx)
    h = len(ahead)
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ctx + ahead], device=device), use_cache=True,
                    **_keep_last(model, h + 1))
        cache = _out_cache(out)
        k = min(pmax, out.logits.shape[-1])
        pre_lp, pre_tok = _children(out.logits[0, -(h + 1):], k, temperature)  # row j: after ahead[:j]
        root_lp, root_tok = pre_lp[:1], pre_tok[:1]
        passes = 1
        # Node tables (creation order). kid_lp/kid_tok: each evaluated node's top-k children (absolute
        # path log-probabilities), None until evaluated.
        lps: list[float] = []
        parents: list[int] = []
        depths: list[int] = []
        tokens: list[int] = []
        on_path: list[int] = []         # j >= 1 when the node is ahead[:j], else 0
        anc: list[np.ndarray] = []      # cache slots the node attends to beyond the context (ancestors, self)
        kid_lp: list = []
        kid_tok: list = []
        # Candidate heap: (-logprob, tie counter, parent index or -1 for the root, child rank).
        heap = [(-float(root_lp[0, 0]), 0, -1, 0)]
        counter = 1
        n_cached = n_ctx + h
        neg_inf = torch.finfo(dtype).min
        while True:
            top = -heap[0][0] if heap else -np.inf
            have = int(np.count_nonzero(np.asarray(lps) >= top)) if lps else 0
            if have >= pmax:
                break
            # Every node whose log-probability is known (the top-k children of the root and of each
            # evaluated node) is a real node, so the pmax-th largest of them is a lower bound on the pmax-th
            # largest overall: a candidate below it can never enter the tree and is never evaluated.
            known = np.concatenate([root_lp[0], *(x for x in kid_lp if x is not None)])
            floor = np.partition(known, len(known) - pmax)[len(known) - pmax] if len(known) >= pmax else -np.inf
            new: list[int] = []
            while heap and len(new) < batch and -heap[0][0] >= floor:
                neg, _, par, r = heapq.heappop(heap)
                if par < 0:
                    tok, d, a, q = int(root_tok[0, r]), 1, np.empty(0, dtype=np.int64), 0
                    sib = root_lp[0]
                else:
                    tok, d, a, q = int(kid_tok[par][r]), depths[par] + 1, anc[par], on_path[par]
                    sib = kid_lp[par]
                if r + 1 < k:
                    heapq.heappush(heap, (-float(sib[r + 1]), counter, par, r + 1))
                    counter += 1
                i = len(lps)
                lps.append(-neg)
                parents.append(par)
                depths.append(d)
                tokens.append(tok)
                kid_lp.append(None)
                kid_tok.append(None)
                if (par < 0 or q > 0) and q < h and tok == ahead[q]:
                    # On the lookahead path: its token sits at cache slot n_ctx + q and its distribution
                    # came with the context's pass, so it is evaluated now, outside the batch.
                    on_path.append(q + 1)
                    anc.append(np.append(a, n_ctx + q))
                    kid_lp[i] = pre_lp[q + 1] + lps[i]
                    kid_tok[i] = pre_tok[q + 1]
                    heapq.heappush(heap, (-float(kid_lp[i][0]), counter, i, 0))
                    counter += 1
                    continue
                on_path.append(0)
                anc.append(np.append(a, n_cached + len(new)))
                new.append(i)
            if not new:
                if heap and -heap[0][0] >= floor:
                    continue   # only lookahead nodes were popped; their children are in the heap now
                break          # the heap ran dry: a finite tree smaller than pmax (only tiny vocabularies)
            m = len(new)
            mask = torch.full((1, 1, m, n_cached + m), neg_inf, dtype=dtype)
            mask[..., :n_ctx] = 0
            for row, i in enumerate(new):
                mask[0, 0, row, torch.from_numpy(anc[i])] = 0
            ids = torch.tensor([[tokens[i] for i in new]], device=device)
            pos = torch.tensor([[n_ctx - 1 + depths[i] for i in new]], device=device)
            out = model(input_ids=ids, attention_mask=mask.to(device), position_ids=pos, use_cache=True,
                        **{cache_kw: cache})
            cache = _out_cache(out)
            passes += 1
            n_cached += m
            vals, toks = _children(out.logits[0], k, temperature)
            for row, i in enumerate(new):
                kid_lp[i] = vals[row] + lps[i]
                kid_tok[i] = toks[row]
                heapq.heappush(heap, (-float(kid_lp[i][0]), counter, i, 0))
                counter += 1
    evaluated = sum(x is not None for x in kid_lp)
    return _finish(lps, parents, depths, tokens, pmax, evaluated, passes, t0)


def expand_naive(model, context, pmax: int, temperature: float = 1.0) -> RealTree:
    """The reference: the one-node-at-a-time best-first loop, one full forward pass (no cache) per node.

    Pop the most probable candidate; it is the next node of the tree; push its next sibling, and (unless the
    tree is complete) run the model on context + path to push its most probable child."""
    import torch

    ctx = _check(context, pmax)
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    last = _keep_last(model, 1)

    def dist(path):
        out = model(input_ids=torch.tensor([ctx + list(path)], device=device), use_cache=False, **last)
        return _children(out.logits[0, -1:], k, temperature)

    with torch.inference_mode():
        k = min(pmax, model.config.vocab_size)
        root_lp, root_tok = dist(())
        passes = 1
        lps, parents, depths, tokens, paths, kids = [], [], [], [], [], []
        heap = [(-float(root_lp[0, 0]), 0, -1, 0)]
        counter = 1
        while heap and len(lps) < pmax:
            neg, _, par, r = heapq.heappop(heap)
            lp_sib, tok_sib = (root_lp[0], root_tok[0]) if par < 0 else kids[par]
            base = 0.0 if par < 0 else lps[par]
            if r + 1 < k:
                heapq.heappush(heap, (-float(lp_sib[r + 1] + base), counter, par, r + 1))
                counter += 1
            i = len(lps)
            lps.append(-neg)
            parents.append(par)
            depths.append(1 if par < 0 else depths[par] + 1)
            tokens.append(int(tok_sib[r]))
            paths.append((() if par < 0 else paths[par]) + (int(tok_sib[r]),))
            if len(lps) < pmax:
                v, t = dist(paths[i])
                passes += 1
                kids.append((v[0], t[0]))
                heapq.heappush(heap, (-float(v[0, 0] + lps[i]), counter, i, 0))
                counter += 1
            else:
                kids.append(None)
    return _finish(lps, parents, depths, tokens, pmax, passes - 1, passes, t0)


# --------------------------------------------------------------------------------------------------------
# Real trees for positions of recorded traces, resumably, and their results file.

#: Results file (schema version 1): a NumPy .npz, opened with allow_pickle=False. n contexts, PMAX nodes each.
#:   schema_version int64 (); format str () "brw-realtree"; meta str () JSON (model, model_sha256, P, seed,
#:   sources [{name, file, sha256, temperature}], dtype, device, brw_version, torch);
#:   source int16 (n,) index into meta sources; row int64 (n,) the trace row (its context and offset follow);
#:   context int32 (n,), offset int32 (n,): the context is trace.context_ids(context)[:offset];
#:   accepted float64 or float32 (n, PMAX); parent int16, depth int16, token int32 (n, PMAX) as in RealTree;
#:   trace_top1 float64 (n,): exp of the trace's recorded top-1 log-probability at that row (a cross-check:
#:   accepted[:, 0] must match it to float32 round-off); seconds float64, evaluated int32, passes int32 (n,).
RESULTS_FORMAT = "brw-realtree"
RESULTS_SCHEMA = 1
#: The bundled real-tree results for the bundled traces (sims/realtrees.py regenerates them).
BUNDLED_RESULTS = Path(__file__).resolve().parent / "data" / "realtrees-smollm2.npz"
_PER_CONTEXT = ("source", "row", "context", "offset", "trace_top1", "seconds", "evaluated", "passes")
_PER_NODE = ("accepted", "parent", "depth", "token")


def pick_rows(trace, n: int, seed: int) -> np.ndarray:
    """n trace rows inside the recorded answers (offset >= the prompt's length), uniformly without replacement,
    deterministic in (trace, seed): the first n of one seeded permutation, so a larger n extends a smaller
    one. Returned sorted (by context, then offset)."""
    eligible = np.flatnonzero(trace.offset >= trace.prompt_lengths[trace.context])
    if n > eligible.size:
        raise BrwError(f"asked for {n} contexts but the trace {trace.path or ''} has only {eligible.size} "
                       f"answer positions")
    perm = np.random.default_rng(np.random.SeedSequence(seed)).permutation(eligible.size)
    return np.sort(eligible[perm[:n]])


@dataclass
class RealTrees:
    """Results of many contexts (arrays as in the results-file comment above; ``meta`` a dict)."""

    meta: dict
    arrays: dict
    path: str | None = None

    @property
    def sources(self) -> list[str]:
        return [s["name"] for s in self.meta["sources"]]

    @property
    def pmax(self) -> int:
        return int(self.meta["P"])

    def accepted(self, source: str | None = None) -> np.ndarray:
        """accepted(P) per context, float64 (n, PMAX), of one source (by name) or all."""
        a = self.arrays["accepted"].astype(np.float64)
        if source is None:
            return a
        if source not in self.sources:
            raise BrwError(f"no source {source!r} in {self.path or 'these results'} (sources: "
                           f"{', '.join(self.sources)})")
        return a[self.arrays["source"] == self.sources.index(source)]


def _empty_arrays(pmax: int, acc_dtype) -> dict:
    return {"source": np.zeros(0, np.int16), "row": np.zeros(0, np.int64), "context": np.zeros(0, np.int32),
            "offset": np.zeros(0, np.int32), "trace_top1": np.zeros(0), "seconds": np.zeros(0),
            "evaluated": np.zeros(0, np.int32), "passes": np.zeros(0, np.int32),
            "accepted": np.zeros((0, pmax), acc_dtype), "parent": np.zeros((0, pmax), np.int16),
            "depth": np.zeros((0, pmax), np.int16), "token": np.zeros((0, pmax), np.int32)}


def save_realtrees(res: RealTrees, path) -> None:
    """Write whole or not at all (temporary file, then rename)."""
    from brw.files import write_npz

    arrays = {"schema_version": np.array(RESULTS_SCHEMA, np.int64), "format": np.array(RESULTS_FORMAT),
              "meta": np.array(json.dumps(res.meta, sort_keys=True, allow_nan=False)), **res.arrays}
    write_npz(path, arrays)


def load_realtrees(path=None) -> RealTrees:
    """Read a results file (default: the bundled one), checked whole: one BrwError on any defect."""
    p = Path(path) if path is not None else BUNDLED_RESULTS
    if not p.is_file():
        hint = " (regenerate it with sims/realtrees.py)" if path is None else ""
        raise BrwError(f"real-tree results {p} do not exist{hint}")
    try:
        with np.load(p, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    except Exception as e:
        raise BrwError(f"real-tree results {p}: not a readable .npz archive ({type(e).__name__}: "
                       f"{str(e)[:120]})") from None
    where = f"real-tree results {p}"
    if raw.get("format", np.array("")).item() != RESULTS_FORMAT:
        raise BrwError(f"{where}: not a brw real-tree results file (field 'format' is not {RESULTS_FORMAT!r})")
    if int(raw.get("schema_version", -1)) != RESULTS_SCHEMA:
        raise BrwError(f"{where}: schema version {int(raw.get('schema_version', -1))} is not supported "
                       f"(this brw reads {RESULTS_SCHEMA})")
    try:
        meta = json.loads(str(raw["meta"].item()))
        pmax = int(meta["P"])
        nsrc = len(meta["sources"])
    except (KeyError, ValueError, TypeError) as e:
        raise BrwError(f"{where}: field 'meta' is not the expected JSON ({e})") from None
    arrays = {}
    n = None
    for key in _PER_CONTEXT + _PER_NODE:
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
    if not np.all(np.isfinite(acc)) or np.any(np.diff(acc, axis=1) < 0) or np.any(acc <= 0):
        bad = int(np.flatnonzero(~np.all(np.isfinite(acc), axis=1) | np.any(np.diff(acc, axis=1) < 0, axis=1)
                                 | np.any(acc <= 0, axis=1))[0])
        raise BrwError(f"{where}: field 'accepted' row {bad} is not a positive, finite, non-decreasing curve")
    if n and (arrays["source"].min() < 0 or arrays["source"].max() >= nsrc):
        raise BrwError(f"{where}: field 'source' points outside the {nsrc} sources of the metadata")
    return RealTrees(meta, arrays, str(p))


def _file_sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def realtrees(sources, out, *, model: str = "smollm2", contexts: int = 128, pmax: int = 256,
              batch: int = DEFAULT_BATCH, seed: int = 0, device: str | None = "auto", dtype: str = "float32",
              lookahead: int = DEFAULT_LOOKAHEAD, threads: int | None = None, store_float32: bool = False,
              progress: bool = True, lm=None, stop_after: int | None = None) -> dict:
    """Expand the real optimal tree at ``contexts`` answer positions of each trace in ``sources`` (bundled
    short names or paths) and write the results to ``out``, one context at a time, resumably: a rerun with the
    same settings skips the contexts already in ``out``. ``lookahead``: how many tokens of the recorded answer
    after each position ride along in the context's pass (speed only; see ``expand``). ``threads``: torch's
    CPU threads (None: torch's default). ``lm`` (a brw.recording.LoadedModel) skips loading;
    ``stop_after`` (tests) raises KeyboardInterrupt after that many new contexts, as an interruption would.
    Returns a summary dict (see ``summarize``)."""
    from brw._version import __version__
    from brw.traces import load_trace, resolve_trace

    if isinstance(sources, str):
        sources = [s for s in sources.split(",") if s]
    if not sources:
        raise BrwError("give at least one trace (a bundled name such as code, math, chat, or a file)")
    if len(set(sources)) != len(sources):
        raise BrwError(f"a trace is listed twice in {','.join(sources)}")
    if contexts < 1:
        raise BrwError(f"--contexts must be at least 1, got {contexts}")
    if pmax < 1 or pmax > 32767:
        raise BrwError(f"--P must lie in 1..32767, got {pmax}")
    if batch < 1:
        raise BrwError(f"--batch must be at least 1, got {batch}")
    if lookahead < 0:
        raise BrwError(f"--lookahead must be at least 0, got {lookahead}")
    if threads is not None and threads < 1:
        raise BrwError(f"--threads must be at least 1, got {threads}")
    out = Path(out)
    if out.suffix != ".npz":
        raise BrwError(f"--out {out} must end in .npz")
    if not out.parent.is_dir():
        raise BrwError(f"--out {out}: folder {out.parent} does not exist")
    traces = [load_trace(s) for s in sources]
    src_meta = []
    for name, tr in zip(sources, traces):
        bundled = name in _bundled_names()
        src_meta.append({"name": name if bundled else Path(name).stem,
                         "file": f"bundled:{name}" if bundled else str(Path(name).resolve()),
                         "sha256": _file_sha256(resolve_trace(name)),
                         "temperature": float(tr.meta.get("temperature", 1.0))})
    plan = [(i, int(r)) for i, tr in enumerate(traces) for r in pick_rows(tr, contexts, seed)]

    try:
        import torch
    except ImportError:
        raise BrwError("real trees need torch and transformers: install the extra with pip install 'brw[model]' "
                       "(torch stays pinned at 2.13.0)") from None

    if threads is not None:
        torch.set_num_threads(threads)
    acc_dtype = np.float32 if store_float32 else np.float64
    fixed = {"P": pmax, "seed": seed, "sources": src_meta, "accepted_dtype": np.dtype(acc_dtype).name}
    old = load_realtrees(out) if out.exists() else None

    def check_resume(what):
        diff = sorted(key for key in what if old.meta.get(key) != what[key])
        if diff:
            raise BrwError(f"{out} holds real trees made with other settings ({', '.join(diff)} differ); rerun "
                           f"with the same settings to resume, or choose another --out")

    if old is not None:
        check_resume(fixed)  # before loading a model: a mistake shows at once
    if lm is None:
        from brw.recording import load_model

        lm = load_model(model, device=device, dtype=dtype)
    fixed.update({"model": lm.meta.get("model"), "dtype": lm.dtype,
                  "model_sha256": lm.meta.get("model_sha256", lm.meta.get("model_fingerprint"))})
    # fixed: what must match to resume; the rest records how this run went
    meta = {**fixed, "device": lm.device, "batch": batch, "lookahead": lookahead,
            "threads": torch.get_num_threads(), "brw_version": __version__, "torch": torch.__version__}
    if old is not None:
        check_resume(fixed)
        arrays = old.arrays
    else:
        arrays = _empty_arrays(pmax, acc_dtype)
    done = set(zip(arrays["source"].tolist(), arrays["row"].tolist()))
    todo = [(i, r) for i, r in plan if (i, r) not in done]
    resumed = len(plan) - len(todo)

    t0 = time.perf_counter()
    new = 0
    compute = 0.0
    with Progress(len(plan), f"realtree {out.name}", enabled=progress) as bar:
        bar.update(resumed)
        for i, r in todo:
            if stop_after is not None and new >= stop_after:
                raise KeyboardInterrupt
            tr = traces[i]
            c, off = int(tr.context[r]), int(tr.offset[r])
            ids = tr.context_ids(c)
            tree = expand(lm.model, ids[:off], pmax, batch=batch, temperature=src_meta[i]["temperature"],
                          lookahead=ids[off:off + lookahead])
            compute += tree.seconds
            row = {"source": np.int16(i), "row": r, "context": c, "offset": off,
                   "trace_top1": float(np.exp(tr.top_logp[r, 0])), "seconds": tree.seconds,
                   "evaluated": tree.evaluated, "passes": tree.forward_passes,
                   "accepted": tree.accepted.astype(acc_dtype), "parent": tree.parent.astype(np.int16),
                   "depth": tree.depth.astype(np.int16), "token": tree.token.astype(np.int32)}
            arrays = {k: np.concatenate([arrays[k], np.asarray([row[k]], dtype=arrays[k].dtype)])
                      for k in arrays}
            save_realtrees(RealTrees(meta, arrays), out)
            new += 1
            bar.update(1)
    res = RealTrees(meta, arrays, str(out))
    summary = summarize(res)
    summary.update({"file": str(out), "new_contexts": new, "resumed_contexts": resumed,
                    "seconds": time.perf_counter() - t0,
                    "nodes_per_second": new * pmax / compute if compute > 0 else None,
                    "seconds_per_context": compute / new if new else None,
                    "device": lm.device, "batch": batch})
    return summary


def _bundled_names():
    from brw.traces import BUNDLED

    return BUNDLED


def summarize(res: RealTrees, at: list[int] | None = None) -> dict:
    """Mean accepted(P) and its standard error over contexts, per source and overall, at P in ``at``."""
    from brw.results import default_at

    pmax = res.pmax
    at = at or default_at(pmax)
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
