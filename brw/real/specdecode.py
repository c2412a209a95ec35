"""A real speculative decoder: lossless chain speculative sampling on a causal LM, with vLLM-format logs.

The loop (Leviathan, Kalman and Matias 2023, "Fast inference from transformers via speculative decoding";
Chen et al. 2023, "Accelerating large language model decoding with speculative sampling"): each round a drafter
proposes up to k tokens x_1..x_d, each drawn from its own distribution q_i (or a point mass); the verifier runs
one forward pass over the last committed token and the d drafts (d + 1 new tokens after its KV cache, the
``k = P + 1`` of :mod:`brw.real.costcurve`) and gets its distributions p_1..p_{d+1}; x_i is accepted with
probability min(1, p_i(x_i) / q_i(x_i)) while all before it were; at the first rejection the round's last token
is drawn from the residual normalise(max(p_i - q_i, 0)), and when all d are accepted the bonus token is drawn from
p_{d+1}. Every emitted token is then distributed exactly as the verifier's own sampling at temperature T would
draw it (tested: ``tests/test_specdecode.py``). Both caches keep only committed tokens between rounds: the
rejected suffix is cropped away.

Drafters (:func:`parse_drafter`), as a spec string:

- ``early-exit:layers=L``: the verifier cut after its first L decoder layers (:func:`brw.real.models.early_exit`,
  the construction of :mod:`brw.real.realdrafter`), sampling x_i ~ q_i = softmax(its logits / T), with its own KV
  cache; costs L layers and the LM head per drafted token.
- ``ngram[:min=N,max=M]``: prompt lookup, as vLLM's ``ngram`` method drafts (``vllm/v1/spec_decode/
  ngram_proposer.py``; defaults ``prompt_lookup_min = prompt_lookup_max = 5`` as vLLM sets them when neither is
  given): the longest n-gram (n in N..M) that ends the context and occurred earlier in it, at its earliest
  occurrence, proposes the up to k tokens that followed it (fewer near the end of the context, none when no
  n-gram recurs: that round is a plain decoding step and, as in vLLM, counts as no draft). q is a point mass, so
  x_i is accepted with probability p_i(x_i) and the residual is p_i without x_i. It costs no forward pass.

Randomness: one numpy Generator per request, ``SeedSequence(seed, spawn_key=(j,))`` for request j (so any request
replays alone, and the output is a function of the inputs and the seed; torch's own forward passes are
deterministic for a fixed thread count). Timing: ``time.perf_counter`` around every whole round (drafting, the
verifier's pass, acceptance, sampling and the cache crops) and, separately, the prefill; decoding throughput
counts rounds only. The bookkeeping that checks the theory (each drafted position's acceptance probability and
the overlap sum_x min(p, q)) is computed after a round's clock stops, from the logits it kept.

Logs, in the formats vLLM writes (learned from its source and docs; no code copied):

- ``FILE.log``: the lines of vLLM's v1 engine's ``LoggingStatLogger`` (``vllm/v1/metrics/loggers.py``:
  ``Engine 000: Avg prompt throughput: ..., Avg generation throughput: ..., Running: ..., Waiting: ..., GPU KV
  cache usage: ..., Prefix cache hit rate: ...``) and of ``SpecDecodingLogging.log`` (``vllm/v1/spec_decode/
  metrics.py``): ``SpecDecoding metrics: Mean acceptance length: %.2f, Accepted throughput: %.2f tokens/s,
  Drafted throughput: %.2f tokens/s, Accepted: %d tokens, Drafted: %d tokens, Per-position acceptance rate: %.3f,
  ..., Avg Draft acceptance rate: %.1f%%``: the format of vLLM main as read at commit
  ee4ceaae5953d367d8edd2132fd86d6c42506e1e of github.com/vllm-project/vllm, the one the API reference shows for
  releases 0.11.2 to 0.21.0 (throughputs since vLLM pull request 24127, September 2025; acceptance rate last).
  Each line carries vLLM's logger prefix ``INFO MM-DD HH:MM:SS [file:line]``, here ``[specdecode.py:N]`` with N
  the kind of line (1 start-up, 2 engine, 3 SpecDecoding). Mean acceptance length =
  1 + accepted / drafts (the bonus token included); per-position rate j = drafts accepting at least j tokens /
  drafts. Lines are emitted every ``interval`` seconds (vLLM's default 10) of the run's own clock: prefill and
  round seconds of its requests one after another, so a log written after interleaved timed runs reads as if they
  had run back to back. A first line names the model and the speculative config as vLLM's engine start-up
  line does (``Initializing a V1 LLM engine ... with config: model=..., speculative_config=...``).
- ``FILE.requests.jsonl``: one completion response per line in vLLM's per-request form (docs/features/
  speculative_decoding/acceptance_metrics.md, vLLM 0.32.0, ``--per-request-spec-decode-metrics detailed``):
  ``metrics.speculative_decoding`` holds ``mean_acceptance_length``, ``draft_acceptance_rate``,
  ``acceptance_histogram`` (length k + 1), ``num_spec_steps``, ``num_accepted_draft_tokens``,
  ``num_draft_tokens``, ``num_spec_tokens``, ``per_step_accepted``, ``per_step_drafted``; steps without a draft
  are not spec steps (as in vLLM); null for plain decoding (k = 0).
- ``FILE.rounds.jsonl``: one line per request, every round of it: ``accept_lengths`` (tokens committed per round,
  the bonus token included, as EAGLE's and Spec-Bench's answer files count them), ``accepted`` and ``drafted``
  (bonus excluded; rounds without a draft included, with drafted 0), ``round_seconds``, ``draft_seconds`` (the
  part of each round spent drafting), ``prefill_seconds``,
  ``context`` (tokens in the verifier's cache at each round's start) and ``accept_probability`` (per drafted
  position, min(1, p/q) of the drafted token).
"""

from __future__ import annotations

import datetime
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brw._version import __version__
from brw.checks import check_count, check_seed
from brw.errors import BrwError, clip
from brw.files import atomic_path, check_output
from brw.progress import Progress
from brw.results import Result

__all__ = ["DrafterSpec", "parse_drafter", "ngram_proposal", "acceptance_probability", "residual",
           "sample_token", "softmax", "verify_chain", "Generation", "generate", "SpeculativeRun", "run_requests",
           "vllm_log_lines", "vllm_request", "rounds_record", "write_logs", "log_paths", "request_rng", "eos_ids",
           "DRAFTER_NAMES",
           "NGRAM_DEFAULT", "LOG_INTERVAL"]

DRAFTER_NAMES = ("ngram", "early-exit")
#: vLLM's prompt_lookup_min and prompt_lookup_max when neither is given.
NGRAM_DEFAULT = (5, 5)
#: Seconds between two log lines, vLLM's default (VLLM_LOG_STATS_INTERVAL).
LOG_INTERVAL = 10.0


# --------------------------------------------------------------------------------------------------------
# Drafters by spec.


@dataclass(frozen=True)
class DrafterSpec:
    """A drafter by name: ``ngram`` (``nmin``, ``nmax``) or ``early-exit`` (``layers``)."""

    name: str
    nmin: int = NGRAM_DEFAULT[0]
    nmax: int = NGRAM_DEFAULT[1]
    layers: int = 0

    @property
    def spec(self) -> str:
        """The spec string that parses back to this drafter."""
        if self.name == "ngram":
            return "ngram" if (self.nmin, self.nmax) == NGRAM_DEFAULT else f"ngram:min={self.nmin},max={self.nmax}"
        return f"early-exit:layers={self.layers}"

    @property
    def vllm_method(self) -> str:
        """What vLLM's speculative config calls this kind of drafter."""
        return "ngram" if self.name == "ngram" else "early_exit"

    def __str__(self):
        return self.spec


def parse_drafter(spec) -> DrafterSpec:
    """A drafter from its spec: ``ngram``, ``ngram:min=N,max=M`` or ``early-exit:layers=L``.

    Parameters
    ----------
    spec : str or DrafterSpec

    Returns
    -------
    DrafterSpec
    """
    if isinstance(spec, DrafterSpec):
        return spec
    if not isinstance(spec, str):
        raise BrwError(f"drafter must be a spec string (ngram, ngram:min=N,max=M, early-exit:layers=L), got "
                       f"{clip(repr(spec), 40)}")
    name, _, rest = spec.strip().partition(":")
    if name not in DRAFTER_NAMES:
        raise BrwError(f"drafter {clip(spec, 60)!r}: unknown name {clip(name, 30)!r}; known: {', '.join(DRAFTER_NAMES)}")
    allowed = ("min", "max") if name == "ngram" else ("layers",)
    fields = {}
    for part in [p for p in rest.split(",") if p.strip()] if rest else []:
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or key not in allowed or key in fields:
            raise BrwError(f"drafter {clip(spec, 60)!r}: bad part {clip(part, 30)!r} (keys of {name}: "
                           f"{', '.join(allowed)})")
        if not value.isdigit() or int(value) < 1:
            raise BrwError(f"drafter {clip(spec, 60)!r}: {key} must be a whole number >= 1, got {clip(value, 20)!r}")
        fields[key] = int(value)
    if name == "early-exit":
        if "layers" not in fields:
            raise BrwError(f"drafter {clip(spec, 60)!r}: write early-exit:layers=L (decoder layers kept)")
        return DrafterSpec(name, layers=fields["layers"])
    if "min" in fields and "max" not in fields:
        fields["max"] = fields["min"]
    if "max" in fields and "min" not in fields:
        fields["min"] = fields["max"]
    nmin, nmax = fields.get("min", NGRAM_DEFAULT[0]), fields.get("max", NGRAM_DEFAULT[1])
    if nmin > nmax:
        raise BrwError(f"drafter {clip(spec, 60)!r}: min must not exceed max")
    return DrafterSpec(name, nmin=nmin, nmax=nmax)


def ngram_proposal(tokens, k: int, nmin: int = NGRAM_DEFAULT[0], nmax: int = NGRAM_DEFAULT[1]) -> np.ndarray:
    """Prompt lookup: what followed the earliest earlier occurrence of the longest n-gram ending the context.

    For n = nmax down to nmin, the last n tokens are looked for at every earlier start s (with at least one token
    after the occurrence, s + n <= len - 1); the first n that occurs wins, at its earliest s, and the tokens
    tokens[s + n : s + n + k] are proposed (vLLM's ``ngram`` rule, which finds the same match with a KMP scan).

    Parameters
    ----------
    tokens : sequence of int
        The context (prompt and generated tokens).
    k : int
        Most tokens proposed.
    nmin, nmax : int
        The n-gram lengths tried.

    Returns
    -------
    numpy.ndarray
        int64, 0..k tokens (empty when no n-gram of the context recurs).
    """
    t = np.asarray(tokens, dtype=np.int64)
    L = t.size
    for n in range(min(nmax, L - 1), nmin - 1, -1):
        windows = np.lib.stride_tricks.sliding_window_view(t[:L - 1], n)  # starts 0..L-1-n
        hits = np.flatnonzero((windows == t[L - n:]).all(axis=1))
        if hits.size:
            start = int(hits[0]) + n
            return t[start:start + k].copy()
    return np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------------------------------------
# The acceptance rule.


def acceptance_probability(p: np.ndarray, q, x: int) -> float:
    """min(1, p(x) / q(x)): the chance that a drafted x is kept.

    Parameters
    ----------
    p : numpy.ndarray
        The verifier's distribution (float64, sums to 1).
    q : numpy.ndarray or None
        The drafter's distribution, or None for a point mass at x.
    x : int
        The drafted token (q(x) > 0).

    Returns
    -------
    float
    """
    qx = 1.0 if q is None else float(q[x])
    return min(1.0, float(p[x]) / qx)


def residual(p: np.ndarray, q, x: int | None = None) -> np.ndarray:
    """normalise(max(p - q, 0)): where a rejected draft's token is drawn from.

    Parameters
    ----------
    p : numpy.ndarray
        The verifier's distribution.
    q : numpy.ndarray or None
        The drafter's distribution, or None for a point mass at ``x``.
    x : int, optional
        The point mass's token (with ``q`` None).

    Returns
    -------
    numpy.ndarray
        float64, sums to 1. When p <= q everywhere (p = q up to round-off, so a rejection had probability 0)
        it is p itself.
    """
    if q is None:
        r = np.array(p, dtype=np.float64)
        r[x] = 0.0
    else:
        r = np.maximum(np.asarray(p, dtype=np.float64) - q, 0.0)
    total = r.sum()
    if not total > 0:
        return np.asarray(p, dtype=np.float64) / np.sum(p)
    return r / total


def sample_token(prob: np.ndarray, rng: np.random.Generator) -> int:
    """One token drawn from ``prob`` (weights, normalised here) by inversion of its running sum.

    Parameters
    ----------
    prob : numpy.ndarray
        Non-negative weights with a positive sum; a token of weight 0 is never drawn.
    rng : numpy.random.Generator

    Returns
    -------
    int
    """
    c = np.cumsum(prob)
    i = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
    return min(i, c.size - 1)


def verify_chain(p, draft, q, rng: np.random.Generator) -> tuple[int, int]:
    """Speculative sampling of one round: how many drafted tokens are kept, and the round's last token.

    Parameters
    ----------
    p : indexable of numpy.ndarray
        p[i] is the verifier's distribution at drafted position i (0-based), i = 0..d (p[d] after all d drafts);
        rows are read only up to the first rejection.
    draft : sequence of int
        The d drafted tokens.
    q : sequence of numpy.ndarray or None
        The drafter's distribution at each drafted position, or None for point masses.
    rng : numpy.random.Generator

    Returns
    -------
    accepted : int
        Drafted tokens kept, 0..d.
    token : int
        Drawn from the residual of the first rejected position, or from p[d] when all d are kept (the bonus).
    """
    for i, x in enumerate(draft):
        qi = None if q is None else q[i]
        if rng.random() < acceptance_probability(p[i], qi, x):
            continue
        return i, sample_token(residual(p[i], qi, x), rng)
    return len(draft), sample_token(p[len(draft)], rng)


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) in float64, along the last axis: the decoder's distributions (verifier and drafter).

    Parameters
    ----------
    logits : numpy.ndarray
        Raw logits (any float dtype).
    temperature : float
        T > 0.

    Returns
    -------
    numpy.ndarray
        float64 probabilities, summing to 1 along the last axis.
    """
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class _Rows:
    """The verifier's distributions of one round, computed row by row when first read."""

    def __init__(self, logits: np.ndarray, temperature: float):
        self.logits, self.temperature, self.rows = logits, temperature, {}

    def __getitem__(self, i: int) -> np.ndarray:
        if i not in self.rows:
            self.rows[i] = softmax(self.logits[i], self.temperature)
        return self.rows[i]


# --------------------------------------------------------------------------------------------------------
# Drafters at work (each keeps its own state for one request).


class _NgramDrafter:
    def __init__(self, spec: DrafterSpec):
        self.spec = spec

    def start(self, prompt):
        pass

    def propose(self, committed, k, rng):
        return [int(t) for t in ngram_proposal(committed, k, self.spec.nmin, self.spec.nmax)], None

    def rollback(self, valid):
        pass


class _EarlyExitDrafter:
    """The verifier's first layers as a drafter, with its own KV cache of the committed tokens (and its drafts)."""

    def __init__(self, model, temperature: float):
        self.model, self.temperature = model, temperature
        self.cache, self.cached = None, 0

    def start(self, prompt):
        from brw.real import models

        self.cache, self.cached = None, 0
        if len(prompt) > 1:
            _, self.cache = models.forward(self.model, [list(prompt[:-1])], keep=1)
            self.cached = len(prompt) - 1

    def propose(self, committed, k, rng):
        from brw.real import models

        feed = list(committed[self.cached:])
        draft, qs = [], []
        for _ in range(k):
            logits, self.cache = models.forward(self.model, [feed], cache=self.cache, keep=1)
            self.cached += len(feed)
            q = softmax(logits[0, -1].float().cpu().numpy(), self.temperature)
            x = sample_token(q, rng)
            draft.append(x)
            qs.append(q)
            feed = [x]
        return draft, qs

    def rollback(self, valid):
        if self.cached > valid:
            self.cache.crop(valid - self.cached)  # a negative count removes that many slots
            self.cached = valid


def _drafter(spec: DrafterSpec, model, temperature: float):
    from brw.real import models

    if spec.name == "ngram":
        return _NgramDrafter(spec)
    return _EarlyExitDrafter(models.early_exit(model, spec.layers), temperature)


# --------------------------------------------------------------------------------------------------------
# One request.


@dataclass(frozen=True)
class Generation(Result):
    """One request decoded speculatively.

    Attributes
    ----------
    prompt, tokens : numpy.ndarray
        The prompt's and the generated token ids.
    k : int
        Tokens drafted per round at most (0: plain decoding).
    drafted, accepted, emitted : numpy.ndarray
        Per round: tokens drafted, drafted tokens kept (the bonus excluded, as the sampler decided them), tokens
        this round added to the output (accepted + 1, less what ran past max_tokens or an end-of-sequence token).
    seconds : numpy.ndarray
        Per round, seconds of the whole round.
    draft_seconds : numpy.ndarray
        Per round, the seconds of it spent drafting (from the round's start until the draft was made).
    context : numpy.ndarray
        Per round, the tokens in the verifier's KV cache when it started.
    accept_probability : numpy.ndarray
        (rounds, k): min(1, p_i(x_i) / q_i(x_i)) at each drafted position (NaN beyond the draft).
    overlap : numpy.ndarray
        (rounds, k): sum_x min(p_i(x), q_i(x)) at each drafted position (p_i(x_i) for a point mass).
    prefill_seconds : float
        The prompt's forward pass(es), verifier and drafter.
    finish_reason : str
        ``stop`` (an end-of-sequence token) or ``length``.
    """

    prompt: np.ndarray
    tokens: np.ndarray
    k: int
    drafted: np.ndarray
    accepted: np.ndarray
    emitted: np.ndarray
    seconds: np.ndarray
    draft_seconds: np.ndarray
    context: np.ndarray
    accept_probability: np.ndarray
    overlap: np.ndarray
    prefill_seconds: float
    finish_reason: str

    @property
    def decode_seconds(self) -> float:
        """Seconds of all rounds."""
        return float(self.seconds.sum())

    def _tidy(self) -> dict:
        """One row per round: drafted, accepted, emitted, seconds, context."""
        return {"round": np.arange(self.drafted.size), "drafted": self.drafted, "accepted": self.accepted,
                "emitted": self.emitted, "seconds": self.seconds, "context": self.context}


def generate(model, prompt, *, drafter=None, k: int = 0, max_tokens: int = 64, rng: np.random.Generator,
             eos=(), temperature: float = 1.0, timer=time.perf_counter) -> Generation:
    """Decode one request speculatively (chain drafts, speculative sampling), lossless at ``temperature``.

    Parameters
    ----------
    model : transformers causal LM
        The verifier.
    prompt : sequence of int
        Token ids, at least one.
    drafter : str, DrafterSpec or None
        What :func:`parse_drafter` takes; None with k = 0 (plain decoding).
    k : int
        Tokens drafted per round at most; 0 decodes plainly (one verifier pass per token).
    max_tokens : int
        Tokens generated at most.
    rng : numpy.random.Generator
        Every random draw of the request (drafts, acceptances, residual and bonus tokens).
    eos : collection of int
        End-of-sequence ids: generation stops after one is emitted.
    temperature : float
        The verifier samples softmax(logits / T), the drafter softmax(its logits / T).
    timer : callable
        The clock (seconds).

    Returns
    -------
    Generation
    """
    from brw.real import models

    prompt = [int(t) for t in prompt]
    if not prompt:
        raise BrwError("prompt needs at least one token")
    k = check_count(k, "k", 0)
    max_tokens = check_count(max_tokens, "max_tokens")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise BrwError(f"temperature must be a finite number > 0, got {temperature!r}")
    if k > 0 and drafter is None:
        raise BrwError("k > 0 needs a drafter (ngram, ngram:min=N,max=M or early-exit:layers=L)")
    spec = parse_drafter(drafter) if k > 0 else None
    eos = {int(e) for e in eos}
    committed = list(prompt)
    rows = {"drafted": [], "accepted": [], "emitted": [], "seconds": [], "draft_seconds": [], "context": [], "r": [],
            "b": []}
    out: list[int] = []
    finish = "length"
    with models.inference():
        t0 = timer()
        cache = None
        if len(prompt) > 1:
            _, cache = models.forward(model, [prompt[:-1]], keep=1)
        work = _drafter(spec, model, temperature) if spec is not None else None
        if work is not None:
            work.start(prompt)
        prefill = timer() - t0
        while len(out) < max_tokens and finish == "length":
            t0 = timer()
            n = len(committed)
            draft, qs = work.propose(committed, k, rng) if work is not None else ([], None)
            drafting = timer() - t0
            d = len(draft)
            logits, cache = models.forward(model, [[committed[-1]] + draft], cache=cache)
            lg = logits[0].float().cpu().numpy()
            p = _Rows(lg, temperature)
            a, y = verify_chain(p, draft, qs, rng)
            new = draft[:a] + [y]
            committed += new
            if d > a:
                cache.crop(a - d)  # keep the committed tokens but the last: n + a slots
            if work is not None:
                work.rollback(n + a)
            seconds = timer() - t0
            # Bookkeeping for the theory, off the clock.
            take = []
            for t in new:
                if len(out) + len(take) >= max_tokens:
                    break
                take.append(t)
                if t in eos:
                    finish = "stop"
                    break
            out += take
            r = np.full(k, np.nan)
            b = np.full(k, np.nan)
            for i, x in enumerate(draft):
                pi = p[i]
                r[i] = acceptance_probability(pi, None if qs is None else qs[i], x)
                b[i] = pi[x] if qs is None else float(np.minimum(pi, qs[i]).sum())
            for key, v in (("drafted", d), ("accepted", a), ("emitted", len(take)), ("seconds", seconds),
                           ("draft_seconds", drafting), ("context", n - 1), ("r", r), ("b", b)):
                rows[key].append(v)
    if len(out) >= max_tokens and finish != "stop":
        finish = "length"
    ints = {key: np.asarray(rows[key], dtype=np.int64) for key in ("drafted", "accepted", "emitted", "context")}
    return Generation(np.asarray(prompt, np.int64), np.asarray(out, np.int64), k, ints["drafted"], ints["accepted"],
                      ints["emitted"], np.asarray(rows["seconds"], dtype=np.float64),
                      np.asarray(rows["draft_seconds"], dtype=np.float64), ints["context"],
                      np.asarray(rows["r"], dtype=np.float64).reshape(len(rows["r"]), k),
                      np.asarray(rows["b"], dtype=np.float64).reshape(len(rows["b"]), k), float(prefill), finish)


# --------------------------------------------------------------------------------------------------------
# Logs in vLLM's formats.


def _prefix(when: datetime.datetime, line: int) -> str:
    """vLLM's logger prefix: level, month-day time, [file:line]."""
    return f"INFO {when.strftime('%m-%d %H:%M:%S')} [specdecode.py:{line}] "


def vllm_log_lines(generations, k: int, *, model: str = "", drafter: str = "", interval: float = LOG_INTERVAL,
                   start: datetime.datetime | None = None) -> list[str]:
    """The lines vLLM's v1 engine would log over these requests, one after another.

    Parameters
    ----------
    generations : sequence of Generation
        Requests in the order they ran (all with the same k).
    k : int
        num_speculative_tokens (0: no SpecDecoding lines).
    model : str
        The model's name, for the start-up line.
    drafter : str
        The drafter's spec, for the start-up line.
    interval : float
        Seconds of the run's clock between two logs (vLLM's default 10); the last lines follow the last round.
    start : datetime.datetime, optional
        The clock's start (default now).

    Returns
    -------
    list of str
        A start-up line naming the model and config, then per interval the engine line and, when anything was
        drafted in it, the SpecDecoding line.
    """
    if not (isinstance(interval, (int, float)) and interval > 0):
        raise BrwError(f"interval must be a number of seconds > 0, got {interval!r}")
    start = start or datetime.datetime.now()
    method = parse_drafter(drafter).vllm_method if drafter and k > 0 else None
    spec_cfg = (f"SpeculativeConfig(method='{method}', drafter='{drafter}', num_spec_tokens={k})"
                if method else "None")
    lines = [_prefix(start, 1) + f"Initializing a V1 LLM engine (brw {__version__} specdecode) with config: "
             f"model='{model}', speculative_config={spec_cfg}, seed=None"]
    clock = 0.0
    acc = {"prompt": 0, "gen": 0, "drafts": 0, "dtok": 0, "atok": 0, "pos": np.zeros(max(k, 1), np.int64),
           "since": 0.0}

    def flush():
        elapsed = clock - acc["since"]
        when = start + datetime.timedelta(seconds=clock)
        pt = acc["prompt"] / elapsed if elapsed > 0 else 0.0
        gt = acc["gen"] / elapsed if elapsed > 0 else 0.0
        lines.append(_prefix(when, 2) + f"Engine 000: Avg prompt throughput: {pt:.1f} tokens/s, Avg generation "
                     f"throughput: {gt:.1f} tokens/s, Running: 1 reqs, Waiting: 0 reqs, GPU KV cache usage: 0.0%, "
                     "Prefix cache hit rate: 0.0%")
        if k > 0 and acc["drafts"] > 0:
            rates = ", ".join(f"{r:.3f}" for r in acc["pos"][:k] / acc["drafts"])
            rate = 100.0 * acc["atok"] / acc["dtok"] if acc["dtok"] > 0 else float("nan")
            lines.append(_prefix(when, 3) + "SpecDecoding metrics: "
                         f"Mean acceptance length: {1 + acc['atok'] / acc['drafts']:.2f}, "
                         f"Accepted throughput: {acc['atok'] / elapsed if elapsed > 0 else 0.0:.2f} tokens/s, "
                         f"Drafted throughput: {acc['dtok'] / elapsed if elapsed > 0 else 0.0:.2f} tokens/s, "
                         f"Accepted: {acc['atok']} tokens, Drafted: {acc['dtok']} tokens, "
                         f"Per-position acceptance rate: {rates}, Avg Draft acceptance rate: {rate:.1f}%")
        acc.update(prompt=0, gen=0, drafts=0, dtok=0, atok=0, pos=np.zeros(max(k, 1), np.int64), since=clock)

    pending = False
    for g in generations:
        clock += g.prefill_seconds
        acc["prompt"] += g.prompt.size
        for d, a, e, s in zip(g.drafted, g.accepted, g.emitted, g.seconds):
            clock += float(s)
            acc["gen"] += int(e)
            if d > 0:
                acc["drafts"] += 1
                acc["dtok"] += int(d)
                acc["atok"] += int(a)
                acc["pos"][:a] += 1
            pending = True
            if clock - acc["since"] >= interval:
                flush()
                pending = False
    if pending or len(lines) == 1:
        flush()
    return lines


def vllm_request(g: Generation, index: int, *, model: str = "", text: str = "") -> dict:
    """One request as vLLM's completions API returns it with ``--per-request-spec-decode-metrics detailed``.

    Parameters
    ----------
    g : Generation
    index : int
        The request's number (its id is ``cmpl-brw-INDEX``).
    model : str
    text : str
        The generated text.

    Returns
    -------
    dict
        ``id``, ``object``, ``model``, ``choices``, ``usage`` and ``metrics.speculative_decoding`` (null for k = 0).
    """
    spec = None
    if g.k > 0:
        drafted = g.drafted > 0
        steps, acc, dtok = int(drafted.sum()), g.accepted[drafted], g.drafted[drafted]
        spec = {"mean_acceptance_length": 1.0 + acc.sum() / steps if steps else 1.0,
                "draft_acceptance_rate": float(acc.sum() / dtok.sum()) if dtok.sum() else None,
                "acceptance_histogram": np.bincount(acc, minlength=g.k + 1)[:g.k + 1].tolist(),
                "num_spec_steps": steps, "num_accepted_draft_tokens": int(acc.sum()),
                "num_draft_tokens": int(dtok.sum()), "num_spec_tokens": g.k,
                "per_step_accepted": acc.tolist(), "per_step_drafted": dtok.tolist()}
        spec["mean_acceptance_length"] = float(spec["mean_acceptance_length"])
    return {"id": f"cmpl-brw-{index}", "object": "text_completion", "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": g.finish_reason}],
            "usage": {"prompt_tokens": int(g.prompt.size), "completion_tokens": int(g.tokens.size),
                      "total_tokens": int(g.prompt.size + g.tokens.size)},
            "metrics": {"speculative_decoding": spec}}


def rounds_record(g: Generation, index: int, *, model: str = "", drafter: str = "") -> dict:
    """One request's rounds, for the JSON-lines file of accepted lengths.

    Parameters
    ----------
    g : Generation
    index : int
    model, drafter : str

    Returns
    -------
    dict
        ``request_id``, ``model``, ``drafter``, ``k``, ``accept_lengths`` (accepted + 1 per round: the bonus
        token included), ``accepted``, ``drafted``, ``emitted``, ``round_seconds``, ``draft_seconds``,
        ``prefill_seconds``, ``context``, ``accept_probability`` (per round, its drafted positions), ``new_tokens``, ``wall_time``
        (decoding seconds, prefill excluded), ``finish_reason``.
    """
    probs = [[round(float(x), 6) for x in row[:d]] for row, d in zip(g.accept_probability, g.drafted)]
    return {"request_id": f"cmpl-brw-{index}", "model": model, "drafter": drafter if g.k > 0 else None, "k": g.k,
            "accept_lengths": (g.accepted + 1).tolist(), "accepted": g.accepted.tolist(),
            "drafted": g.drafted.tolist(), "emitted": g.emitted.tolist(),
            "round_seconds": [round(float(s), 6) for s in g.seconds],
            "draft_seconds": [round(float(s), 6) for s in g.draft_seconds],
            "prefill_seconds": round(g.prefill_seconds, 6),
            "context": g.context.tolist(), "accept_probability": probs, "new_tokens": int(g.tokens.size),
            "wall_time": round(g.decode_seconds, 6), "finish_reason": g.finish_reason}


def log_paths(log) -> tuple[Path, Path, Path]:
    """The three files of a run: ``X.log``, ``X.requests.jsonl``, ``X.rounds.jsonl``.

    Parameters
    ----------
    log : str or Path
        The log file, ending in .log.

    Returns
    -------
    tuple of Path
    """
    log = Path(log)
    if log.suffix != ".log":
        raise BrwError(f"out {clip(str(log), 120)} must end in .log (the requests and rounds files go beside it)")
    stem = log.with_suffix("")
    return log, Path(f"{stem}.requests.jsonl"), Path(f"{stem}.rounds.jsonl")


def write_logs(log, generations, k: int, *, model: str = "", drafter: str = "", texts=None,
               interval: float = LOG_INTERVAL, start: datetime.datetime | None = None) -> tuple[Path, Path, Path]:
    """Write a run's vLLM log, its per-request JSON lines and its rounds file, each whole or not at all.

    Parameters
    ----------
    log : str or Path
        ``X.log``; ``X.requests.jsonl`` and ``X.rounds.jsonl`` go beside it.
    generations : sequence of Generation
    k : int
    model, drafter : str
    texts : sequence of str, optional
        Each request's generated text.
    interval : float
        Seconds between log lines (see :func:`vllm_log_lines`).
    start : datetime.datetime, optional

    Returns
    -------
    tuple of Path
        The three files.
    """
    paths = log_paths(log)
    texts = list(texts) if texts is not None else [""] * len(generations)
    files = {paths[0]: "\n".join(vllm_log_lines(generations, k, model=model, drafter=drafter, interval=interval,
                                                start=start)) + "\n",
             paths[1]: "".join(json.dumps(vllm_request(g, j, model=model, text=t), allow_nan=False) + "\n"
                               for j, (g, t) in enumerate(zip(generations, texts))),
             paths[2]: "".join(json.dumps(rounds_record(g, j, model=model, drafter=drafter), allow_nan=False) + "\n"
                               for j, g in enumerate(generations))}
    for path, text in files.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return paths


# --------------------------------------------------------------------------------------------------------
# A run of many requests.


@dataclass(frozen=True)
class SpeculativeRun(Result):
    """Requests decoded one after another with one drafter and one k: what a serving engine's log covers.

    Attributes
    ----------
    model : str
    drafter : str
        The drafter's spec (None for plain decoding).
    k : int
    seed : int
        Request j drew from ``SeedSequence(seed, spawn_key=(j,))``.
    temperature : float
    max_tokens : int
    generations : tuple of Generation
    warmup : str
        What ran untimed before the timed requests.
    files : tuple of str
        The log files written.
    version : str
    """

    model: str
    drafter: str | None
    k: int
    seed: int
    temperature: float
    max_tokens: int
    generations: tuple = field(repr=False)
    warmup: str = ""
    files: tuple = ()
    version: str = __version__

    def to_dict(self) -> dict:
        """The run's totals and per-position survival (the generations themselves are in the log files).

        Returns
        -------
        dict
            ``model``, ``drafter``, ``k``, ``seed``, ``temperature``, ``max_tokens``, ``requests``, ``tokens``,
            ``rounds``, ``decode_seconds``, ``prefill_seconds``, ``tokens_per_second`` (decoding, prefill
            excluded), ``drafts`` (rounds with a draft), ``draft_tokens``, ``accepted_tokens``,
            ``mean_acceptance_length`` (1 + accepted / drafts, the bonus included), ``accepted_per_draft``
            (bonus excluded), ``survival`` (share of drafts accepting at least j tokens, j = 1..k), ``warmup``,
            ``files``, ``version``.
        """
        gs = self.generations
        drafted = np.concatenate([g.drafted for g in gs]) if gs else np.zeros(0, np.int64)
        accepted = np.concatenate([g.accepted for g in gs]) if gs else np.zeros(0, np.int64)
        has = drafted > 0
        tokens = int(sum(g.tokens.size for g in gs))
        secs = float(sum(g.decode_seconds for g in gs))
        drafts = int(has.sum())
        surv = [float(np.mean(accepted[has] >= j)) if drafts else None for j in range(1, self.k + 1)]
        return {"model": self.model, "drafter": self.drafter, "k": self.k, "seed": self.seed,
                "temperature": self.temperature, "max_tokens": self.max_tokens, "requests": len(gs),
                "tokens": tokens, "rounds": int(drafted.size), "decode_seconds": secs,
                "prefill_seconds": float(sum(g.prefill_seconds for g in gs)),
                "tokens_per_second": tokens / secs if secs > 0 else None, "drafts": drafts,
                "draft_tokens": int(drafted.sum()), "accepted_tokens": int(accepted[has].sum()),
                "mean_acceptance_length": 1.0 + float(accepted[has].sum()) / drafts if drafts else None,
                "accepted_per_draft": float(accepted[has].sum()) / drafts if drafts else None,
                "survival": surv, "warmup": self.warmup, "files": list(self.files), "version": self.version}

    def _tidy(self) -> dict:
        """One row per round: request, drafted, accepted, emitted, seconds."""
        cols = {"request": [], "drafted": [], "accepted": [], "emitted": [], "seconds": []}
        for j, g in enumerate(self.generations):
            cols["request"] += [j] * g.drafted.size
            for key in ("drafted", "accepted", "emitted", "seconds"):
                cols[key] += getattr(g, key).tolist()
        return cols


def request_rng(seed: int, j: int) -> np.random.Generator:
    """The random stream of request j: ``SeedSequence(seed, spawn_key=(j,))``.

    Parameters
    ----------
    seed : int
    j : int

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(j,)))


def eos_ids(lm) -> set[int]:
    """The end-of-sequence ids of a loaded model (tokenizer, generation config and model config together).

    Parameters
    ----------
    lm : brw.real.models.LoadedModel

    Returns
    -------
    set of int
    """
    out = set()
    cfgs = (getattr(lm.tokenizer, "eos_token_id", None), getattr(getattr(lm.model, "generation_config", None),
                                                                  "eos_token_id", None),
            getattr(lm.model.config, "eos_token_id", None))
    for e in cfgs:
        if isinstance(e, int):
            out.add(e)
        elif isinstance(e, (list, tuple)):
            out.update(int(x) for x in e)
    return out


def run_requests(lm, prompts, *, drafter=None, k: int = 0, max_tokens: int = 64, seed: int | None = 0,
                   temperature: float = 1.0, out=None, interval: float = LOG_INTERVAL, warmup_tokens: int = 8,
                   stop_at_eos: bool = True, progress: bool = False) -> SpeculativeRun:
    """Decode requests one after another with one drafter and k, and write vLLM-format logs of the run.

    Parameters
    ----------
    lm : brw.real.models.LoadedModel
        The verifier (and, for ``early-exit``, the drafter's layers).
    prompts : sequence of sequence of int
        Token ids of each request's prompt.
    drafter : str, DrafterSpec or None
        None only with k = 0.
    k : int
        num_speculative_tokens (0: plain decoding).
    max_tokens : int
        Tokens per request at most.
    seed : int or None
        Request j draws from ``SeedSequence(seed, spawn_key=(j,))``; None draws a fresh seed (recorded).
    temperature : float
    out : str or Path, optional
        ``X.log``: also writes ``X.requests.jsonl`` and ``X.rounds.jsonl`` (all three checked before any work).
    interval : float
        Seconds between log lines.
    warmup_tokens : int
        An untimed request of this many tokens on the first prompt runs first (0: none), so that one-time costs
        stay out of the timings.
    stop_at_eos : bool
        Stop a request at the model's end-of-sequence token.
    progress : bool
        Show a progress bar.

    Returns
    -------
    SpeculativeRun
    """
    prompts = [[int(t) for t in p] for p in prompts]
    if not prompts or any(not p for p in prompts):
        raise BrwError("prompts must be a non-empty list of non-empty token lists")
    k = check_count(k, "k", 0)
    max_tokens = check_count(max_tokens, "max_tokens")
    warmup_tokens = check_count(warmup_tokens, "warmup_tokens", 0)
    seed = check_seed(seed)
    spec = parse_drafter(drafter) if drafter is not None else None
    if k > 0 and spec is None:
        raise BrwError("k > 0 needs a drafter (ngram, ngram:min=N,max=M or early-exit:layers=L)")
    paths = None
    if out is not None:
        paths = log_paths(out)
        for path in paths:
            check_output(path, path.suffix)
    eos = eos_ids(lm) if stop_at_eos else set()
    model_name = lm.meta.get("model", "")
    dspec = spec.spec if spec is not None and k > 0 else None
    if warmup_tokens:
        generate(lm.model, prompts[0], drafter=dspec, k=k, max_tokens=warmup_tokens,
                 rng=np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(len(prompts), 1))),
                 eos=(), temperature=temperature)
    gens = []
    with Progress(len(prompts), f"specdecode k={k}", enabled=progress, unit="request") as bar:
        for j, p in enumerate(prompts):
            gens.append(generate(lm.model, p, drafter=dspec, k=k, max_tokens=max_tokens, rng=request_rng(seed, j),
                                 eos=eos, temperature=temperature))
            bar.update(1)
    files = ()
    if paths is not None:
        texts = None
        if lm.tokenizer is not None:
            texts = [lm.tokenizer.decode(g.tokens.tolist(), skip_special_tokens=True) for g in gens]
        files = tuple(str(p) for p in write_logs(paths[0], gens, k, model=model_name, drafter=dspec or "",
                                                  texts=texts, interval=interval))
    warm = (f"one untimed request of {warmup_tokens} tokens on the first prompt before the timed ones"
            if warmup_tokens else "none")
    return SpeculativeRun(model_name, dspec, k, seed, float(temperature), max_tokens, tuple(gens), warm, files)
