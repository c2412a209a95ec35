"""Real optimal trees: the best-first draft tree of a real causal LM, with the model as its own drafter.

For a context (token ids), the speed-of-light tree of capacity P is the set of the P token sequences below
the context with the highest path probability under the model itself (theory.md section 1, the oracle
drafter), and accepted(P) is the sum of their path probabilities. ``expand(model, context, pmax)`` finds
the tree for every P <= pmax at once; ``expand_naive`` is the obviously-correct reference (one full forward
pass per node, no cache), used by the tests and by the speed comparison. ``realtrees`` expands the trees at
answer positions of recorded traces, resumably, into a results file (:mod:`brw.real.realtree`).

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
differ by about 1e-6 in probability (summation order), in float64 by about 1e-15 (tests/test_expansion.py).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brw.real import models
from brw.checks import whole_number
from brw.errors import BrwError
from brw.files import check_output, sha256
from brw.progress import Progress
from brw.real.realtree import MAX_P, RealTrees, load_realtrees, pick_order, save_realtrees, summarize, tree_temperatures
from brw.spec import check_temperature

__all__ = ["RealTree", "expand", "expand_naive", "realtrees", "DEFAULT_BATCH", "DEFAULT_LOOKAHEAD"]

#: Nodes per forward pass. On a 2-core CPU larger rounds waste more speculative nodes than they save in
#: per-pass overhead (see the module docstring); a GPU would take more.
DEFAULT_BATCH = 32
#: Tokens of a recorded answer's continuation evaluated along with the context (``expand``'s lookahead).
DEFAULT_LOOKAHEAD = 32


@dataclass(frozen=True)
class RealTree:
    """The pmax best nodes below one context, in best-first order (flat arrays, index = rank - 1).

    ``accepted[P - 1]`` is the sum of the P largest path probabilities (E[X] of the oracle drafter's
    P-node tree); ``logprob`` the path log-probabilities (non-increasing); ``parent`` the index of each
    node's parent in these arrays (-1 for a child of the root); ``depth`` and ``token`` the node's depth
    and its own token id. ``entropy``, ``moment2`` and ``top1`` are each node's own next-token distribution's
    entropy -sum p log p, second log-moment sum p (log p)^2 and largest probability (NaN for a node whose
    distribution was not needed: a leaf of the tree). ``evaluated`` counts the nodes whose next-token
    distribution was computed and ``forward_passes`` the model calls, the context's included.
    """

    accepted: np.ndarray
    logprob: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    token: np.ndarray
    entropy: np.ndarray
    moment2: np.ndarray
    top1: np.ndarray
    evaluated: int
    forward_passes: int
    seconds: float

    def paths(self) -> list[tuple[int, ...]]:
        """Each node's token sequence below the context (for comparisons and display).

        Returns
        -------
        list of tuple of int
        """
        out: list[tuple[int, ...]] = []
        for i in range(len(self.token)):
            p = int(self.parent[i])
            out.append((out[p] if p >= 0 else ()) + (int(self.token[i]),))
        return out


def _check(context, pmax: int, batch: int = 1) -> list[int]:
    ctx = [int(t) for t in context]
    if not ctx:
        raise BrwError("context needs at least one token")
    if pmax < 1:
        raise BrwError(f"pmax must be at least 1, got {pmax}")
    if batch < 1:
        raise BrwError(f"batch must be at least 1, got {batch}")
    return ctx


def _finish(lps, parents, depths, tokens, stats, pmax, evaluated, passes, t0) -> RealTree:
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
    st = np.array([x if x is not None else (np.nan,) * 3 for x in stats], dtype=np.float64).reshape(-1, 3)[order]
    return RealTree(
        accepted=np.cumsum(np.exp(lp)),
        logprob=lp,
        parent=par.astype(np.int32),
        depth=np.asarray(depths, dtype=np.int32)[order],
        token=np.asarray(tokens, dtype=np.int64)[order],
        entropy=st[:, 0], moment2=st[:, 1], top1=st[:, 2],
        evaluated=evaluated,
        forward_passes=passes,
        seconds=time.perf_counter() - t0,
    )


class _Search:
    """The state of a batched best-first expansion: the nodes found so far, in creation order, and the heap of
    candidates (-logprob, tie counter, parent index or -1 for the root, child rank).

    ``pre_lp``/``pre_tok`` row j: the top-k children (log-probabilities relative to their parent, token ids)
    after ``ahead[:j]``, from the context's pass, and ``pre_mom`` row j that distribution's (entropy,
    moment2); ``n_cached``: the KV-cache slots filled so far."""

    def __init__(self, pre_lp, pre_tok, pre_mom, ahead: list[int], n_ctx: int, k: int):
        self.pre_lp, self.pre_tok, self.pre_mom = pre_lp, pre_tok, pre_mom
        self.ahead, self.n_ctx, self.k = ahead, n_ctx, k
        self.n_cached = n_ctx + len(ahead)
        self.lps: list[float] = []
        self.parents: list[int] = []
        self.depths: list[int] = []
        self.tokens: list[int] = []
        self.on_path: list[int] = []       # j >= 1 when the node is ahead[:j], else 0
        self.anc: list[np.ndarray] = []    # cache slots the node attends to beyond the context (ancestors, self)
        self.kid_lp: list = []             # each evaluated node's top-k children (absolute path log-probs)
        self.kid_tok: list = []
        self.stats: list = []              # each evaluated node's (entropy, moment2, top1), None until then
        self.heap: list = []
        self.counter = 0
        self._push(pre_lp[0, 0], -1, 0)

    def _push(self, lp, par: int, r: int) -> None:
        heapq.heappush(self.heap, (-float(lp), self.counter, par, r))
        self.counter += 1

    def open_top(self, floor: float) -> bool:
        """Whether the best candidate lies at or above ``floor``."""
        return bool(self.heap) and -self.heap[0][0] >= floor

    def floor(self, pmax: int) -> float | None:
        """None once pmax nodes are certain (see the module docstring); else the pmax-th largest known path
        log-probability (every known one is a real node, so nothing below it can enter the tree)."""
        top = -self.heap[0][0] if self.heap else -np.inf
        have = int(np.count_nonzero(np.asarray(self.lps) >= top)) if self.lps else 0
        if have >= pmax:
            return None
        known = np.concatenate([self.pre_lp[0], *(x for x in self.kid_lp if x is not None)])
        return np.partition(known, len(known) - pmax)[len(known) - pmax] if len(known) >= pmax else -np.inf

    def set_children(self, i: int, lp, tok, mom) -> None:
        """Node i is evaluated: its top-k children (log-probabilities relative to it) join the heap lazily;
        mom: its distribution's (entropy, moment2)."""
        self.kid_lp[i] = lp + self.lps[i]
        self.kid_tok[i] = tok
        self.stats[i] = (float(mom[0]), float(mom[1]), float(np.exp(lp[0])))
        self._push(self.kid_lp[i][0], i, 0)

    def pop_round(self, floor: float, batch: int) -> list[int]:
        """Pop up to ``batch`` candidates at or above ``floor`` into the node tables; return those that need a
        forward pass (nodes on the lookahead path are evaluated at once from the context's pass)."""
        new: list[int] = []
        h = len(self.ahead)
        while len(new) < batch and self.open_top(floor):
            neg, _, par, r = heapq.heappop(self.heap)
            if par < 0:
                tok, d, a, q, sib = int(self.pre_tok[0, r]), 1, np.empty(0, dtype=np.int64), 0, self.pre_lp[0]
            else:
                tok, d, a, q = int(self.kid_tok[par][r]), self.depths[par] + 1, self.anc[par], self.on_path[par]
                sib = self.kid_lp[par]
            if r + 1 < self.k:
                self._push(sib[r + 1], par, r + 1)
            i = len(self.lps)
            self.lps.append(-neg)
            self.parents.append(par)
            self.depths.append(d)
            self.tokens.append(tok)
            self.kid_lp.append(None)
            self.kid_tok.append(None)
            self.stats.append(None)
            if (par < 0 or q > 0) and q < h and tok == self.ahead[q]:
                # On the lookahead path: its token sits at cache slot n_ctx + q.
                self.on_path.append(q + 1)
                self.anc.append(np.append(a, self.n_ctx + q))
                self.set_children(i, self.pre_lp[q + 1], self.pre_tok[q + 1], self.pre_mom[q + 1])
                continue
            self.on_path.append(0)
            self.anc.append(np.append(a, self.n_cached + len(new)))
            new.append(i)
        return new

    def attend(self, new: list[int]) -> np.ndarray:
        """Tree attention of a round: each new node sees the context, its ancestors' slots and itself."""
        allowed = np.zeros((len(new), self.n_cached + len(new)), dtype=bool)
        allowed[:, :self.n_ctx] = True
        for row, i in enumerate(new):
            allowed[row, self.anc[i]] = True
        return allowed


def expand(model, context, pmax: int, batch: int = DEFAULT_BATCH, temperature: float = 1.0,
           lookahead=()) -> RealTree:
    """The pmax best nodes below ``context`` under ``model``, expanded in rounds of up to ``batch`` nodes.

    One forward pass over the context, then one pass per round over that round's new nodes only, reusing the
    KV cache through a tree attention mask.

    Parameters
    ----------
    model : transformers causal LM
        For example ``load_model(...).model``.
    context : sequence of int
        Token ids, at least one.
    pmax : int
        Nodes of the tree (accepted(P) for every P <= pmax).
    batch : int
        Most nodes per forward pass.
    temperature : float
        Next-token distributions are softmax(logits / temperature).
    lookahead : sequence of int
        Token ids believed to follow the context (in a trace, the answer's actual continuation). They ride
        along in the context's pass, which thereby gives the distributions of the nodes on that path for free;
        a deep, nearly deterministic chain then costs fewer rounds. The result does not depend on it.

    Returns
    -------
    RealTree
    """
    ctx = _check(context, pmax, batch)
    ahead = [int(t) for t in lookahead]
    window = models.sliding_window(model)
    t0 = time.perf_counter()
    with models.inference():
        # every slot kept: a sliding-window cache would drop the context's slots once the tree fills the window
        logits, cache = models.forward(model, [ctx + ahead], keep=len(ahead) + 1, cache=models.full_cache())
        k = min(pmax, logits.shape[-1])
        pre_lp, pre_tok, *pre_mom = models.top_logprobs(logits[0, -(len(ahead) + 1):], k, temperature,
                                                        moments=True)
        s = _Search(pre_lp, pre_tok, np.stack(pre_mom, axis=1), ahead, len(ctx), k)
        passes = 1
        while (floor := s.floor(pmax)) is not None:
            new = s.pop_round(floor, batch)
            if not new:
                if s.open_top(floor):
                    continue   # only lookahead nodes were popped; their children are in the heap now
                break          # the heap ran dry: a finite tree smaller than pmax (only tiny vocabularies)
            positions = [len(ctx) - 1 + s.depths[i] for i in new]
            if window is not None and max(positions) >= window:
                raise BrwError(f"a tree node reaches position {max(positions)}, beyond the model's sliding window of "
                               f"{window} tokens: tree attention over the cached tree is exact only inside it (use "
                               f"a shorter context or a smaller pmax)")
            logits, cache = models.forward(model, [[s.tokens[i] for i in new]], attend=s.attend(new),
                                           positions=[positions], cache=cache)
            passes += 1
            s.n_cached += len(new)
            vals, toks, ent, mom = models.top_logprobs(logits[0], k, temperature, moments=True)
            for row, i in enumerate(new):
                s.set_children(i, vals[row], toks[row], (ent[row], mom[row]))
    evaluated = sum(x is not None for x in s.kid_lp)
    return _finish(s.lps, s.parents, s.depths, s.tokens, s.stats, pmax, evaluated, passes, t0)


def expand_naive(model, context, pmax: int, temperature: float = 1.0) -> RealTree:
    """The reference: the one-node-at-a-time best-first loop, one full forward pass (no cache) per node.

    Pop the most probable candidate; it is the next node of the tree; push its next sibling, and (unless the
    tree is complete) run the model on context + path to push its most probable child.

    Parameters
    ----------
    model : transformers causal LM
    context : sequence of int
        Token ids, at least one.
    pmax : int
        Nodes of the tree.
    temperature : float
        Next-token distributions are softmax(logits / temperature).

    Returns
    -------
    RealTree
    """
    ctx = _check(context, pmax)
    t0 = time.perf_counter()
    k = min(pmax, model.config.vocab_size)

    def dist(path):
        logits, _ = models.forward(model, [ctx + list(path)], use_cache=False, keep=1)
        v, t, ent, mom = models.top_logprobs(logits[0, -1:], k, temperature, moments=True)
        return v, t, (float(ent[0]), float(mom[0]), float(np.exp(v[0, 0])))

    with models.inference():
        root_lp, root_tok, _ = dist(())
        passes = 1
        lps, parents, depths, tokens, paths, kids, stats = [], [], [], [], [], [], []
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
                v, t, st = dist(paths[i])
                passes += 1
                kids.append((v[0], t[0]))
                stats.append(st)
                heapq.heappush(heap, (-float(v[0, 0] + lps[i]), counter, i, 0))
                counter += 1
            else:
                kids.append(None)
                stats.append(None)
    return _finish(lps, parents, depths, tokens, stats, pmax, passes - 1, passes, t0)


# --------------------------------------------------------------------------------------------------------
# Real trees for positions of recorded traces, resumably.


def _check_run(sources, out, contexts, pmax: int, batch: int, lookahead: int, seed: int,
               threads) -> tuple[list[str], list[int], Path]:
    if isinstance(sources, str):
        sources = [s for s in sources.split(",") if s]
    sources = list(sources)
    if not sources:
        raise BrwError("sources needs at least one trace (a bundled name such as code, math, chat, or a file)")
    if len(set(sources)) != len(sources):
        raise BrwError(f"a trace is listed twice in {','.join(sources)}")
    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if whole(contexts) and contexts < 1:
        raise BrwError(f"contexts must be at least 1, got {contexts!r}")
    per = [contexts] * len(sources) if whole(contexts) else contexts
    if not isinstance(per, (list, tuple)) or len(per) != len(sources) or not all(whole(c) and c >= 1 for c in per):
        raise BrwError(f"contexts must be at least 1, or one count at least 1 per trace ({len(sources)}), got "
                       f"{contexts!r}")
    if not whole(pmax) or not 1 <= pmax <= MAX_P:
        raise BrwError(f"pmax must lie in 1..{MAX_P}, got {pmax!r}")
    if not whole(batch) or batch < 1:
        raise BrwError(f"batch must be at least 1, got {batch!r}")
    if not whole(lookahead) or lookahead < 0:
        raise BrwError(f"lookahead must be at least 0, got {lookahead!r}")
    whole_number(seed, "seed", 0)
    if threads is not None:
        whole_number(threads, "threads")
    return sources, list(per), check_output(out, ".npz", exist_ok=True)


def _source_meta(name: str, trace) -> dict:
    from brw.traces import BUNDLED, resolve_trace

    bundled = name in BUNDLED
    return {"name": name if bundled else Path(name).stem,
            "file": f"bundled:{name}" if bundled else str(Path(name).resolve()),
            "sha256": sha256(resolve_trace(name)), "temperature": float(trace.meta.get("temperature", 1.0))}


def _bare_sources(sources) -> list:
    """Sources without their rebinding history (``sha256_rebound_from``: sims/rebind_branches.py): a results file
    rebound to a re-recorded trace resumes as one made from it."""
    return [{k: v for k, v in s.items() if k != "sha256_rebound_from"} if isinstance(s, dict) else s
            for s in (sources or [])]


def _plan(traces, contexts, seed: int) -> list:
    """(trace, row) of every context to expand, each trace's in the order of its seeded permutation: a run stopped
    early leaves a uniform sample of each trace's answer positions, not its earliest contexts."""
    return [(i, int(r)) for i, tr in enumerate(traces) for r in pick_order(tr, contexts[i], seed)]


def _check_resume(old: RealTrees | None, fixed: dict, out: Path) -> None:
    if old is None:
        return

    def same(key) -> bool:
        if key == "sources":
            return _bare_sources(old.meta.get(key)) == _bare_sources(fixed[key])
        return old.meta.get(key) == fixed[key]

    diff = sorted(key for key in fixed if key != "temperature" and not same(key))
    if "sources" not in diff and old.temperatures != tree_temperatures(fixed):  # older files: each source's own
        diff.append("temperature")
    if diff:
        raise BrwError(f"{out} holds real trees made with other settings ({', '.join(diff)} differ); rerun "
                       f"with the same settings to resume, or write to another file")


def _context_row(lm, trace, source: int, r: int, pmax: int, batch: int, temperature: float,
                 lookahead: int) -> dict:
    """Expand the tree at row r of a trace; the results-file row."""
    c, off = int(trace.context[r]), int(trace.offset[r])
    ids = trace.context_ids(c)
    tree = expand(lm.model, ids[:off], pmax, batch=batch, temperature=temperature,
                  lookahead=ids[off:off + lookahead])
    return {"source": source, "row": r, "context": c, "offset": off,
            "trace_top1": float(np.exp(trace.top_logp[r, 0])), "seconds": tree.seconds,
            "evaluated": tree.evaluated, "passes": tree.forward_passes, "accepted": tree.accepted,
            "parent": tree.parent, "depth": tree.depth, "token": tree.token, "entropy": tree.entropy,
            "moment2": tree.moment2, "top1": tree.top1}


def realtrees(sources, out, *, model="smollm2", contexts: int = 128, pmax: int = 256, batch: int = DEFAULT_BATCH,
              seed: int = 0, device: str | None = "auto", dtype: str = "float32", lookahead: int = DEFAULT_LOOKAHEAD,
              threads: int | None = None, store_float32: bool = False, temperature: float | None = None,
              progress: bool = True) -> dict:
    """Expand the real optimal tree at answer positions of traces and write the results, resumably.

    One context at a time, each saved at once: a rerun with the same settings skips the contexts already in
    ``out``, and a larger ``contexts`` with the same seed extends the same choice of positions.

    Parameters
    ----------
    sources : str or list of str
        Traces (bundled short names or paths; a string is split at commas).
    out : str or Path
        The results file (.npz, :mod:`brw.real.realtree`); an existing one with the same settings is resumed.
    model : str or LoadedModel
        What :func:`brw.real.models.load_model` takes, or a model already loaded (then device and dtype are its).
    contexts : int or sequence of int
        Answer positions per trace (chosen by :func:`brw.real.realtree.pick_rows`), or one count per trace (a
        genre that needs more trees than another extends alone).
    pmax : int
        Nodes per tree, 1..32767.
    batch : int
        Most tree nodes per forward pass.
    seed : int
        Seed of the choice of positions.
    device, dtype : str
        As :func:`brw.real.models.load_model` takes them.
    lookahead : int
        Tokens of the recorded answer after each position that ride along in the context's pass (speed only;
        see :func:`expand`).
    threads : int or None
        torch's CPU threads (None: torch's choice).
    store_float32 : bool
        Store accepted(P) as float32 (a smaller file).
    temperature : float or None
        Expand the oracle trees of p_T, softmax(logits / T), and their per-node statistics at T (None: each
        trace's recorded temperature). The results record it (``meta["temperature"]``, also when every source
        shares one recorded temperature).
    progress : bool
        Show a progress bar on a terminal.

    Returns
    -------
    dict
        :func:`brw.real.realtree.summarize` of the whole file, with file, new_contexts, resumed_contexts, seconds,
        nodes_per_second, seconds_per_context, device, batch.
    """
    from brw._version import __version__
    from brw.traces import load_trace

    sources, contexts, out = _check_run(sources, out, contexts, pmax, batch, lookahead, seed, threads)
    if temperature is not None:
        temperature = check_temperature(temperature, "temperature")
    if not isinstance(model, models.LoadedModel):
        models.check_model(model, device, dtype)  # before torch: a mistake shows at once
    traces = [load_trace(s) for s in sources]
    src_meta = [_source_meta(name, tr) for name, tr in zip(sources, traces)]
    plan = _plan(traces, contexts, seed)
    acc_dtype = np.float32 if store_float32 else np.float64
    # fixed: what must match to resume; the rest of meta records how this run went
    fixed = {"P": pmax, "seed": seed, "sources": src_meta, "accepted_dtype": np.dtype(acc_dtype).name}
    own = {s["temperature"] for s in src_meta}
    if temperature is not None or len(own) == 1:  # the trees' temperature (per source otherwise)
        fixed["temperature"] = temperature if temperature is not None else own.pop()
    temps = tree_temperatures(fixed)
    old = load_realtrees(out) if out.exists() else None
    _check_resume(old, fixed, out)  # before loading a model: a mistake shows at once
    models.set_threads(threads)
    lm = model if isinstance(model, models.LoadedModel) else models.load_model(model, device=device, dtype=dtype)
    fixed.update({"model": lm.meta.get("model"), "dtype": lm.dtype,
                  "model_sha256": lm.meta.get("model_sha256", lm.meta.get("model_fingerprint"))})
    _check_resume(old, fixed, out)
    meta = {**fixed, **({"model_terms": lm.meta["model_terms"]} if "model_terms" in lm.meta else {}),
            "device": lm.device, "batch": batch, "lookahead": lookahead,
            "threads": models.thread_count(), "brw_version": __version__, "torch": models.torch_version()}
    if old is not None:  # the same sources (checked above), with any rebinding history they carry
        meta["sources"] = old.meta["sources"]
    res = RealTrees(meta, old.arrays) if old is not None else RealTrees.empty(meta, acc_dtype)
    done = set(zip(res.arrays["source"].tolist(), res.arrays["row"].tolist()))
    todo = [(i, r) for i, r in plan if (i, r) not in done]
    t0 = time.perf_counter()
    compute = 0.0
    with Progress(len(plan), f"realtree {out.name}", enabled=progress, unit="contexts",
                  hint="fewer contexts or a smaller P (--contexts, --P); rerun the same command to resume",
                  done=len(plan) - len(todo)) as bar:
        for i, r in todo:
            row = _context_row(lm, traces[i], i, r, pmax, batch, temps[i], lookahead)
            compute += row["seconds"]
            res = res.with_context(row)
            save_realtrees(res, out)
            bar.update(1)
    summary = summarize(RealTrees(meta, res.arrays, str(out)))
    new = len(todo)
    summary.update({"file": str(out), "new_contexts": new, "resumed_contexts": len(plan) - new,
                    "seconds": time.perf_counter() - t0,
                    "nodes_per_second": new * pmax / compute if compute > 0 else None,
                    "seconds_per_context": compute / new if new else None,
                    "device": lm.device, "batch": batch})
    return summary
