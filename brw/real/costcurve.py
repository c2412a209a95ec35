"""The verifier's cost curve on this machine: seconds of one forward over k new tokens after a context.

What one speculative step costs the verifier (``brw.speedup``): the context's L tokens sit in the KV cache,
and k = P + 1 new tokens (the root, the last token produced, and P draft nodes) attend to the context, to
their ancestors and to themselves under a tree mask, with logits for all k. ``cost_curve`` times exactly
that forward, ``brw.real.models.forward(..., attend=...)`` (the pass of the real-tree expansion), for k on a grid
from 1 (plain decoding) to Pmax + 1, on CUDA when present and the CPU otherwise. Each repeat runs the grid
once, in order, after one untimed pass at every k; the curve is the median per k. The cache is cropped back
to the context after every pass, so every pass sees the same L cached tokens.

The tree is 4-ary in breadth-first order: a dense tree mask costs the same whatever the tree's shape, and
positions (L - 1 + depth) stay near the context's end. The context is pseudo-random token ids (seeded): a
forward's cost does not depend on which tokens it reads. A pass ends when its last logit is on the host.

``chain=True`` times a chain instead: the k new tokens under the model's own causal attention, with no mask
given (the pass a chain drafter's verification runs, :mod:`brw.real.specdecode`). On a CPU it is cheaper than the
tree-masked pass of the same k at small k, where attention with an explicit mask takes a slower kernel.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from brw.real import models
from brw._version import __version__
from brw.errors import BrwError
from brw.files import check_output
from brw.progress import Progress
from brw.results import Result
from brw.speedup import CostTable, write_cost_table

__all__ = ["CostCurve", "token_grid", "tree_attention", "cost_curve"]

#: Every token count up to this is measured; beyond it about STEPS_PER_OCTAVE counts per doubling.
DENSE_UP_TO = 16
STEPS_PER_OCTAVE = 8
#: Children per node of the timed tree.
FANOUT = 4


def token_grid(kmax: int) -> np.ndarray:
    """Token counts to time: 1..16, then about 8 per doubling, and kmax.

    Parameters
    ----------
    kmax : int
        Largest count (Pmax + 1).

    Returns
    -------
    numpy.ndarray
        Increasing whole numbers from 1 to kmax.
    """
    dense = np.arange(1, min(kmax, DENSE_UP_TO) + 1)
    if kmax <= DENSE_UP_TO:
        return dense
    octaves = math.log2(kmax / DENSE_UP_TO)
    sparse = np.geomspace(DENSE_UP_TO, kmax, max(2, int(math.ceil(octaves * STEPS_PER_OCTAVE)) + 1))
    return np.unique(np.concatenate([dense, np.round(sparse).astype(np.int64), [kmax]]))


def tree_attention(n_ctx: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The tree mask and positions of a k-node 4-ary tree (breadth-first) after n_ctx cached tokens.

    Parameters
    ----------
    n_ctx : int
        Cached context tokens.
    k : int
        Tree nodes, the root counted.

    Returns
    -------
    attend : numpy.ndarray of bool, shape (k, n_ctx + k)
        Node i attends to the context, its ancestors and itself.
    positions : numpy.ndarray of int, shape (k,)
        n_ctx + depth (the root sits right after the context).
    """
    attend = np.zeros((k, n_ctx + k), dtype=bool)
    attend[:, :n_ctx] = True
    depth = np.zeros(k, dtype=np.int64)
    for i in range(k):
        attend[i, n_ctx + i] = True
        if i:
            parent = (i - 1) // FANOUT
            attend[i, n_ctx:n_ctx + i] |= attend[parent, n_ctx:n_ctx + i]
            depth[i] = depth[parent] + 1
    return attend, n_ctx + depth


@dataclass(frozen=True)
class CostCurve(Result):
    """Median seconds of one verifier forward over ``tokens[i]`` new tokens after ``context`` cached ones."""

    model: str
    device: str
    dtype: str
    context: int
    repeats: int
    seed: int
    tokens: np.ndarray
    seconds: np.ndarray  # median over repeats
    lowest: np.ndarray  # fastest repeat
    highest: np.ndarray  # slowest repeat
    threads: int
    torch_version: str
    mask: str = "tree"  # "tree": a tree under a tree mask; "chain": a chain under the causal mask
    version: str = __version__

    def table(self) -> CostTable:
        """The curve as the cost table ``brw.speedup`` reads.

        Returns
        -------
        CostTable
        """
        return CostTable(self.tokens.astype(np.float64), self.seconds.copy(), f"cost curve of {self.model}")

    def _tidy(self) -> dict:
        """Columns tokens, seconds, lowest, highest, model, device, context (one row per token count)."""
        n = self.tokens.size
        return {"tokens": self.tokens, "seconds": self.seconds, "lowest": self.lowest, "highest": self.highest,
                "model": [self.model] * n, "device": [self.device] * n, "context": [self.context] * n}


def check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BrwError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def cost_curve(model="smollm2", context: int = 512, pmax: int = 256, repeats: int = 5, *, device: str = "auto",
               dtype: str = "float32", seed: int = 0, threads: int | None = None, out=None,
               progress: bool = False, chain: bool = False, keep: int | None = None) -> CostCurve:
    """Time one tree-masked verifier forward over k = 1..pmax + 1 new tokens after a context of L tokens.

    Parameters
    ----------
    model : str or LoadedModel
        What ``brw.real.models.load_model`` takes (default ``smollm2``), or a model it loaded.
    context : int
        Cached context tokens L.
    pmax : int
        Largest number of draft nodes: the grid reaches pmax + 1 tokens (the root and pmax drafts).
    repeats : int
        Timed passes per token count; the curve keeps their median.
    device : str
        ``auto`` (CUDA when present, else the CPU), ``cpu`` or ``cuda[:N]`` (a loaded model keeps its own).
    dtype : str
        Weight dtype when loading.
    seed : int
        Seed of the context's pseudo-random token ids.
    threads : int, optional
        torch CPU threads.
    out : str or path, optional
        Also write the curve there as a cost table, a .txt file (checked before any work; an existing file is
        refused).
    progress : bool
        Show a progress bar.
    chain : bool
        Time k new tokens in a chain under the causal mask (no mask given) instead of a tree under a tree mask.
    keep : int, optional
        Compute the logits of the last ``keep`` positions only, as a drafter does (default: every position's, as a
        verifier does).

    Returns
    -------
    CostCurve
    """
    context = check_count(context, "context")
    pmax = check_count(pmax, "pmax")
    repeats = check_count(repeats, "repeats")
    keep = None if keep is None else check_count(keep, "keep")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BrwError(f"seed must be a whole number >= 0, got {seed!r}")
    if out is not None:
        out = check_output(out, ".txt")
    models.set_threads(threads)
    lm = model if isinstance(model, models.LoadedModel) else models.load_model(model, device=device, dtype=dtype)
    net = lm.model
    grid = token_grid(pmax + 1)
    longest = context + int(tree_attention(0, int(grid[-1]))[1].max()) + 1
    limit = getattr(net.config, "max_position_embeddings", None)
    if limit is not None and longest > limit:
        raise BrwError(f"context {context} and a tree of {pmax + 1} tokens reach position {longest}, beyond the "
                       f"model's {limit}: lower context or pmax")
    ids = np.random.default_rng(seed).integers(0, lm.meta["vocab_size"], size=context + int(grid[-1]))
    masks = [tree_attention(context, int(k)) for k in grid]
    times = np.empty((repeats, grid.size))
    with models.inference():
        _, cache = models.forward(net, [ids[:context].tolist()], keep=1)

        def timed(j: int) -> float:
            attend, pos = masks[j]
            k = int(grid[j])
            t0 = time.perf_counter()
            if chain:  # positions follow the cache; the model's own causal mask
                logits, _ = models.forward(net, [ids[context:context + k].tolist()], cache=cache, keep=keep)
            else:
                logits, _ = models.forward(net, [ids[context:context + k].tolist()], attend=attend,
                                           positions=[pos.tolist()], cache=cache, keep=keep)
            float(logits[0, -1, 0])  # the pass is over once its last logit is on the host
            seconds = time.perf_counter() - t0
            cache.crop(-k)  # drop the k new slots (a negative count: transformers 4 and 5 agree)
            return seconds

        with Progress(repeats + 1, "cost curve", enabled=progress, unit="passes",
                      hint="fewer repeats or a smaller P (--repeats, --P)") as bar:
            for j in range(grid.size):  # warm-up: every shape once, untimed
                timed(j)
            bar.update(1)
            for r in range(repeats):
                for j in range(grid.size):
                    times[r, j] = timed(j)
                bar.update(1)
    curve = CostCurve(lm.meta["model"], lm.device, lm.dtype, context, repeats, int(seed), grid,
                      np.median(times, axis=0), times.min(axis=0), times.max(axis=0), models.thread_count(),
                      models.torch_version(), "chain" if chain else "tree")
    if out is not None:
        write_cost_table(out, curve.tokens, curve.seconds, [
            f"verifier cost curve: {curve.model} on {curve.device} ({curve.dtype}, {curve.threads} threads, "
            f"torch {curve.torch_version}, brw {curve.version})",
            f"one forward over k new tokens ({'a chain under the causal mask' if chain else 'a tree under a tree mask'})"
            f" after {context} cached tokens; median of "
            f"{repeats} repeats",
        ])
    return curve
