"""The speed-up model: which P to run on given hardware, and how fast the speed of light is there.

One step with P draft nodes feeds the verifier k = P + 1 new tokens (the root, the last token produced, which
is not yet in the cache, and the P drafts under a tree mask), drafts for draft_step + draft_token * P seconds,
and yields accepted(P) + 1 tokens (conventions: Counting). So

    T(P) = verifier(P + 1) + draft_step + draft_token * P,    tokens/s(P) = (accepted(P) + 1) / T(P),

and plain decoding (P = 0, no drafting) makes 1 / verifier(1) tokens per second. With accepted(P) from the
optimal frontier (``brw.frontier``) no drafter does better at that cost: the optimum over P is the speed of
light of the hardware, and its ratio to plain decoding the largest speed-up.

verifier(k) is a ``VerifierCost``: a table of (tokens, seconds) measured by ``brw costcurve`` or supplied by
the user (linear between its rows), or a roofline ``roofline:t1=SECONDS,knee=TOKENS``: memory-bound (every
forward costs t1, the time to read the weights) until the compute knee, compute-bound (t1 * k / knee) after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brw._version import __version__
from brw.errors import BrwError, clip
from brw.files import is_file, read_text
from brw.limits import require
from brw.results import Result

__all__ = ["VerifierCost", "Roofline", "CostTable", "parse_cost", "read_cost_table", "write_cost_table",
           "step_seconds", "Speedup", "speedup"]

#: Largest P the roofline's default range reaches (the default is twice the knee).
ROOFLINE_DEFAULT_MAX = 65536


class VerifierCost:
    """Seconds of one verifier forward over k new tokens, k >= 1."""

    spec: str
    max_tokens: float

    def seconds(self, tokens) -> np.ndarray:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __str__(self):
        return self.spec


@dataclass(frozen=True)
class Roofline(VerifierCost):
    """max(t1, t1 * k / knee): reading the weights until the compute knee, arithmetic after it."""

    t1: float
    knee: float

    def __post_init__(self):
        if not (math.isfinite(self.t1) and self.t1 > 0):
            raise BrwError(f"roofline t1 must be a finite number of seconds > 0, got {self.t1!r}")
        if not (math.isfinite(self.knee) and self.knee >= 1):
            raise BrwError(f"roofline knee must be a finite number of tokens >= 1, got {self.knee!r}")

    @property
    def spec(self) -> str:
        return f"roofline:t1={self.t1!r},knee={fmt(self.knee)}"

    @property
    def max_tokens(self) -> float:
        return math.inf

    def seconds(self, tokens) -> np.ndarray:
        k = np.asarray(tokens, dtype=np.float64)
        return self.t1 * np.maximum(1.0, k / self.knee)


@dataclass(frozen=True, eq=False)
class CostTable(VerifierCost):
    """Measured (tokens, seconds) rows, tokens increasing from 1; linear in between, nothing beyond."""

    tokens: np.ndarray
    table_seconds: np.ndarray
    source: str = ""

    @property
    def spec(self) -> str:
        return self.source

    @property
    def max_tokens(self) -> float:
        return float(self.tokens[-1])

    def seconds(self, tokens) -> np.ndarray:
        k = np.asarray(tokens, dtype=np.float64)
        if np.any(k < 1) or np.any(k > self.tokens[-1]):
            raise BrwError(f"the cost table {self.source} covers 1..{int(self.tokens[-1])} tokens per forward")
        return np.interp(k, self.tokens, self.table_seconds)


def fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def parse_cost(source) -> VerifierCost:
    """A verifier cost from a roofline spec or a cost table file.

    Parameters
    ----------
    source : str, path or VerifierCost
        ``roofline:t1=SECONDS,knee=TOKENS``, or a text file of (tokens, seconds) rows as ``read_cost_table``
        reads it.

    Returns
    -------
    VerifierCost
    """
    if isinstance(source, VerifierCost):
        return source
    text = str(source)
    if text.startswith("roofline:"):
        fields = {}
        for part in text[len("roofline:"):].split(","):
            key, eq, value = (s.strip() for s in part.partition("="))
            if not eq or key not in ("t1", "knee") or key in fields:
                raise BrwError(f"cost spec {text!r}: write roofline:t1=SECONDS,knee=TOKENS (bad part {part!r})")
            try:
                fields[key] = float(value)
            except ValueError:
                raise BrwError(f"cost spec {text!r}: {key}={value!r} is not a number") from None
        if set(fields) != {"t1", "knee"}:
            raise BrwError(f"cost spec {text!r} needs both t1=SECONDS and knee=TOKENS")
        return Roofline(fields["t1"], fields["knee"])
    if is_file(text):
        return read_cost_table(text)
    raise BrwError(f"cost {clip(text)!r} is neither a file nor a spec roofline:t1=SECONDS,knee=TOKENS")


def read_cost_table(path) -> CostTable:
    """Read a cost table: one ``tokens seconds`` row a line, ``#`` starts a comment.

    Parameters
    ----------
    path : str or path
        Rows with whole token counts, strictly increasing and starting at 1 (plain decoding), and finite
        positive seconds (any unit: speed-ups do not depend on it). ``brw costcurve`` writes this format.

    Returns
    -------
    CostTable
    """
    path = Path(path)
    lines = read_text(path, "cost table").splitlines()
    rows = []
    for i, line in enumerate(lines, 1):
        body = line.split("#", 1)[0].split()
        if not body:
            continue
        if len(body) != 2:
            raise BrwError(f"{path} line {i}: write two columns, tokens and seconds")
        try:
            k, s = int(body[0]), float(body[1])
        except ValueError:
            raise BrwError(f"{path} line {i}: {' '.join(body)!r} is not a whole token count and seconds") from None
        if not (math.isfinite(s) and s > 0):
            raise BrwError(f"{path} line {i}: seconds must be finite and > 0, got {body[1]}")
        rows.append((k, s))
    if not rows or rows[0][0] != 1:
        raise BrwError(f"{path}: the first row must be 1 token (plain decoding)")
    tokens = np.array([r[0] for r in rows], dtype=np.float64)
    if np.any(np.diff(tokens) <= 0):
        raise BrwError(f"{path}: token counts must increase from row to row")
    return CostTable(tokens, np.array([r[1] for r in rows]), str(path))


def write_cost_table(path, tokens, seconds, comments=()) -> None:
    """Write a cost table that ``read_cost_table`` reads back, whole or not at all.

    Parameters
    ----------
    path : str or path
        The file.
    tokens, seconds : array_like
        Whole token counts (increasing from 1) and seconds per forward.
    comments : sequence of str
        Lines for the file's ``#`` header (what was measured, where).
    """
    from brw.files import write_text

    lines = [f"# {c}" for c in comments] + ["# tokens seconds"]
    lines += [f"{int(k)} {float(s)!r}" for k, s in zip(tokens, seconds)]
    write_text(path, "\n".join(lines) + "\n")


def step_seconds(cost, pmax: int, draft_step: float = 0.0, draft_token: float = 0.0) -> np.ndarray:
    """Seconds of one step, T(P), at P = 0, 1, ..., pmax.

    Parameters
    ----------
    cost : str, path or VerifierCost
        The verifier's cost (see ``parse_cost``); it must cover pmax + 1 tokens per forward.
    pmax : int
        Largest number of draft nodes.
    draft_step, draft_token : float
        Drafting seconds per step and per draft token; P = 0 (plain decoding) drafts nothing.

    Returns
    -------
    numpy.ndarray
        out[P] = verifier(P + 1) + draft_step + draft_token * P (out[0] = verifier(1)). Any strategy's
        tokens per second is (accepted(P) + 1) / out[P].
    """
    cost = parse_cost(cost)
    if isinstance(pmax, bool) or not isinstance(pmax, (int, np.integer)) or pmax < 1:
        raise BrwError(f"P must be a whole number >= 1, got {pmax!r}")
    if pmax + 1 > cost.max_tokens:
        raise BrwError(f"P={pmax} needs {pmax + 1} tokens per forward; the cost table {cost.spec} stops at "
                       f"{int(cost.max_tokens)}: lower P")
    for name, v in (("draft_step", draft_step), ("draft_token", draft_token)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
            raise BrwError(f"{name} must be a finite number of seconds >= 0, got {v!r}")
    # T(P) and tokens/s for every P, and the frontier's curve behind them: a few floats per P.
    require("P", int(pmax), lambda p: 48.0 * p, what=f"the speed-up at cost {cost.spec}")
    P = np.arange(int(pmax) + 1)
    return cost.seconds(P + 1) + np.where(P > 0, draft_step + draft_token * P, 0.0)


@dataclass(frozen=True)
class Speedup(Result):
    """tokens/s against P = 0..pmax at a verifier cost: the optimal frontier of a law, and drafting policies
    scored on the same trees (``brw.policies``)."""

    law: str
    cost: str
    draft_step: float
    draft_token: float
    replicates: int
    seed: int
    accepted: np.ndarray  # the frontier's accepted[P], P = 0..pmax (accepted[0] = 0)
    stderr: np.ndarray  # its standard error across replicates
    step_seconds: np.ndarray  # T(P)
    policies: tuple[str, ...] = ()
    policy_accepted: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))  # (policies, pmax + 1), NaN:
    version: str = __version__                                                     # not scored at that P

    @property
    def tokens_per_second(self) -> np.ndarray:
        """The frontier's (accepted(P) + 1) / T(P) for P = 0..pmax."""
        return (self.accepted + 1.0) / self.step_seconds

    @property
    def policy_tokens_per_second(self) -> np.ndarray:
        """Each policy's tokens/s, shape (policies, pmax + 1)."""
        return (self.policy_accepted + 1.0) / self.step_seconds

    @property
    def pmax(self) -> int:
        return self.accepted.size - 1

    @property
    def optimal_P(self) -> int:
        return int(np.argmax(self.tokens_per_second))

    @property
    def plain_tokens_per_second(self) -> float:
        return float(self.tokens_per_second[0])

    @property
    def speedup(self) -> float:
        return float(self.tokens_per_second[self.optimal_P] / self.tokens_per_second[0])

    def to_dict(self) -> dict:
        """The optimum (the ``brw speedup`` keys).

        Returns
        -------
        dict
            optimal_P, tokens_per_second (and its stderr), accepted and step_seconds there,
            plain_tokens_per_second, speedup; ``policies``: per policy its optimal_P, tokens_per_second,
            accepted and speedup; and the inputs: law, cost, drafting, pmax, replicates, seed, version.
        """
        o = self.optimal_P
        rows = []
        for spec, rate, acc in zip(self.policies, self.policy_tokens_per_second, self.policy_accepted):
            p = int(np.nanargmax(rate))
            rows.append({"policy": spec, "optimal_P": p, "tokens_per_second": float(rate[p]),
                         "accepted": float(acc[p]), "speedup": float(rate[p] / rate[0])})
        return {"law": self.law, "cost": self.cost, "draft_step": self.draft_step, "draft_token": self.draft_token,
                "pmax": self.pmax, "replicates": self.replicates, "seed": self.seed, "optimal_P": o,
                "tokens_per_second": float(self.tokens_per_second[o]),
                "tokens_per_second_stderr": float(self.stderr[o] / self.step_seconds[o]),
                "accepted": float(self.accepted[o]), "step_seconds": float(self.step_seconds[o]),
                "plain_tokens_per_second": self.plain_tokens_per_second, "speedup": self.speedup,
                "policies": rows, "version": self.version}

    def _tidy(self) -> dict:
        """Columns strategy (``frontier`` or a policy), P, accepted, step_seconds, tokens_per_second, law, cost
        (one row per strategy and P = 0..pmax it was scored at)."""
        n = self.pmax + 1
        names = ["frontier", *self.policies]
        acc = np.vstack([self.accepted, self.policy_accepted]) if self.policies else self.accepted[None]
        keep = np.isfinite(acc)
        cols = {"strategy": np.repeat(names, n), "P": np.tile(np.arange(n), len(names)), "accepted": acc.ravel(),
                "step_seconds": np.tile(self.step_seconds, len(names)),
                "tokens_per_second": ((acc + 1.0) / self.step_seconds).ravel()}
        cols = {k: v[keep.ravel()] for k, v in cols.items()}
        m = int(keep.sum())
        return {**cols, "law": [self.law] * m, "cost": [self.cost] * m}


def speedup(law, cost, pmax: int | None = None, replicates: int = 100, seed: int = 0, *, policies=(),
            draft_step: float = 0.0, draft_token: float = 0.0, threads: int | None = None,
            progress: bool = False) -> Speedup:
    """The throughput-optimal P and the speed-up over plain decoding of the optimal frontier of a law.

    Parameters
    ----------
    law : str or Law
        The verifier's step law (a spec such as ``trace:chat``).
    cost : str, path or VerifierCost
        The verifier's cost per forward (see ``parse_cost``).
    pmax : int, optional
        Largest P tried. Default: what a cost table covers (its last token count - 1), twice the knee of a
        roofline (no P beyond the knee beats the knee: cost grows linearly there, accepted(P) like log P).
    replicates, seed : int
        Frontier replicates and seed (``brw.frontier``).
    policies : str or sequence of str, optional
        Drafting policies (``brw.policies``) to score on the frontier's own trees beside it (default none).
        Sequoia's static tree is scored at powers of two only.
    draft_step, draft_token : float
        Drafting seconds per step and per draft token (default 0: a free drafter).
    threads : int, optional
        Frontier threads.
    progress : bool
        Show the frontier's progress bar.

    Returns
    -------
    Speedup
        tokens/s for every P = 0..pmax, its optimum ``optimal_P`` and ``speedup`` over plain decoding, and
        each policy's.
    """
    cost = parse_cost(cost)
    if pmax is None:
        top = cost.max_tokens - 1 if math.isfinite(cost.max_tokens) else min(2 * cost.knee, ROOFLINE_DEFAULT_MAX)
        pmax = max(1, int(top))
    T = step_seconds(cost, pmax, draft_step, draft_token)  # checks pmax and the drafting costs before any work
    if policies:
        from brw.drafting import policies as score

        res = score(law, pmax, policies, replicates, seed, threads=threads, progress=progress)
        front, front_se, names = res.frontier, res.frontier_stderr, res.policies
        pol = np.hstack([np.zeros((len(names), 1)), res.accepted])
    else:
        from brw.solver import frontier

        res = frontier(law, pmax, replicates, seed, threads=threads, progress=progress)
        front, front_se, names, pol = res.accepted, res.stderr, (), np.zeros((0, pmax + 1))
    acc = np.concatenate([[0.0], front])
    se = np.concatenate([[0.0], np.nan_to_num(front_se)])
    return Speedup(res.law, cost.spec, float(draft_step), float(draft_token), res.replicates, res.seed, acc, se, T,
                   tuple(names), pol)
