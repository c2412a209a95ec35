"""Readers for what serving engines write about speculative decoding, turned into one measurement.

A deployment that drafts chains of k tokens verifies one chain per step (a *draft*); the step accepts X of its
k tokens (0 <= X <= k) and the verifier adds one of its own. Every engine below reports, in its own words, how
many steps there were, how many tokens they drafted and accepted, and (most of them) how many steps accepted at
least j tokens for j = 1..k. That last vector, divided by the steps, is the *survival* s_j = P(X >= j), which
vLLM and llama.cpp print as "per-position acceptance rate": unconditional shares, so s_1 >= s_2 >= ... always
(a rise is impossible and refused). ``accepted_per_step`` = E[X] = s_1 + ... + s_k is brw's ``accepted``
(bonus token excluded); ``acceptance_length`` = E[X] + 1 is what the engines print (bonus token included).

Formats (``FORMATS``; each parser written from the project's own source or documentation, cited):

- ``vllm-log``: vLLM's ``SpecDecoding metrics: Mean acceptance length: %.2f, ..., Accepted: %d tokens, Drafted:
  %d tokens, Per-position acceptance rate: %.3f, ..., Avg Draft acceptance rate: %.1f%%`` lines
  (``vllm/v1/spec_decode/metrics.py``, ``SpecDecodingLogging.log``). Each line covers one logging interval
  (the counts are reset after it). The line does not print the number of drafts: it is inferred from the
  drafted tokens (D / k when every draft carried k tokens) and checked against the printed mean length and
  rates to their printed precision; the survival counts carry that rounding (added to their intervals). A
  line ``Initializing ... LLM engine ... with config: model='NAME'`` starts a run and names the model.
- ``vllm-prometheus``: vLLM's Prometheus text exposition, one or several scrapes (``SpecDecodingProm``):
  ``vllm:spec_decode_num_drafts_total``, ``vllm:spec_decode_num_draft_tokens_total``,
  ``vllm:spec_decode_num_accepted_tokens_total`` and ``vllm:spec_decode_num_accepted_tokens_per_pos_total
  {position="j"}`` (j = 0..k-1, counts of drafts that accepted more than j tokens). Counters only grow: the
  measurement is the difference between scrapes (one scrape: the totals since the server started). A counter
  that goes back (or a ``_created`` time that changes) is a restart: the file is split into segments there,
  and the counts after it are what the restarted counter holds (as Prometheus' ``increase`` does). Series are
  summed over the ``engine`` label; ``model_name`` names the model.
- ``vllm-json``: vLLM's per-request ``metrics.speculative_decoding`` (``--per-request-spec-decode-metrics``,
  ``docs/features/speculative_decoding/acceptance_metrics.md``): ``num_spec_tokens`` (k),
  ``acceptance_histogram`` (index j: steps that accepted exactly j draft tokens), ``num_spec_steps``,
  ``num_accepted_draft_tokens``, ``num_draft_tokens``, ``mean_acceptance_length`` and, with ``detailed``,
  ``per_step_accepted``. Whole responses (the response's ``model`` names the model) or the bare objects, one
  per line (JSON lines), or one JSON document holding one or a list of them.
- ``llamacpp-log``: llama.cpp server's per-request line ``draft acceptance = %0.5f (%5d accepted / %5d
  generated), mean acceptance length = %5.2f, acceptance rate per position = (%.3f, ...)``
  (``tools/server/server-context.cpp``, ``print_timings``), or its split form ``..., mean len = %5.2f`` followed
  by ``acc per pos = (...)``. Its rates are ``n_accepted_per_pos[i] / n_draft_verif_steps`` (survival); the
  steps are inferred as for vLLM's line.
- ``sglang-json``: SGLang's per-request ``meta_info`` (``python/sglang/srt/managers/tokenizer_manager.py``):
  ``spec_verify_ct`` (steps), ``spec_accept_length`` (= completion_tokens / spec_verify_ct, bonus included),
  and where present the accepted and proposed draft counts and ``spec_accept_histogram``.
- ``accept-lengths``: JSON lines ``{"accept_lengths": [x_1, x_2, ...], "k": K}``, one per request, x the draft
  tokens accepted at each round (bonus excluded), as EAGLE-style evaluation scripts record them.

Intervals: ``survival_ci`` is the Wilson score interval of the counts, which assumes the steps are independent;
where the format gives requests (the three JSON formats, llama.cpp's per-request lines) it is widened by the
design effect of requests (sqrt of the cluster-robust variance over the binomial one, when above 1), so that
steps of one request that succeed or fail together are not counted as independent evidence. ``interval_method``
says which was used. Readers stream their input line by line (a gigabyte log is never held whole).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from brw._version import __version__
from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.results import Result

__all__ = ["FORMATS", "Measurement", "read_deployment", "from_histograms", "sniff_format", "wilson"]

#: Every format's name, in sniffing order.
FORMATS = ("vllm-log", "vllm-prometheus", "vllm-json", "llamacpp-log", "sglang-json", "accept-lengths")
#: Bytes read at a time.
BLOCK = 256 * 1024
#: The longest line a reader takes (bytes): a longer one is binary junk or a file of another kind.
MAX_LINE = 16 * 2**20
#: Bytes a format sniff reads at most from the start of a file (it stops at the first block with a signature).
SNIFF_BYTES = 64 * 2**20
#: A JSON file that is one document (not JSON lines) is read whole up to this size.
MAX_JSON_DOCUMENT = 64 * 2**20
#: Requests needed to estimate their design effect (with fewer, the steps are taken as independent, and said so).
MIN_REQUESTS = 10
#: Step counts tried when a printed line leaves its steps open (every draft did not carry k tokens).
MAX_TRIES = 100_000
#: 97.5% standard normal quantile: two-sided 95% intervals.
Z95 = 1.959963984540054
#: What the engines' acceptance length is, in brw's words.
CONVENTION = ("accepted_per_step = E[accepted draft tokens per step], the verifier's bonus token excluded (brw's "
              "accepted); acceptance_length = accepted_per_step + 1, bonus included (what vLLM, llama.cpp and "
              "SGLang print)")

_SIGNATURES = {
    "vllm-log": ("SpecDecoding metrics:",),
    "vllm-prometheus": ("vllm:spec_decode_num_drafts",),
    "vllm-json": ('"acceptance_histogram"', '"speculative_decoding"', '"num_spec_steps"'),
    "llamacpp-log": ("draft acceptance = ", "draft acceptance rate = "),
    "sglang-json": ('"spec_verify_ct"',),
    "accept-lengths": ('"accept_lengths"',),
}
_VLLM_ONLY = ('"num_spec_steps"', '"speculative_decoding"', '"num_spec_tokens"')


# --------------------------------------------------------------------------------------------------------
# The measurement.


@dataclass(frozen=True)
class Measurement(Result):
    """What a deployment measured: drafts, tokens, survival with intervals (see the module's docstring).

    Attributes
    ----------
    format : str
        The format read (one of ``FORMATS``).
    k : int or None
        Draft length (tokens per chain); None when the format does not say and none was given.
    drafts : int
        Verification steps (one drafted chain each).
    draft_tokens : int or None
        Tokens drafted (None when the format does not say).
    accepted_tokens : int
        Draft tokens accepted.
    survival : numpy.ndarray or None
        s_j = share of steps that accepted at least j tokens, j = 1..k.
    survival_ci : numpy.ndarray or None
        Their 95% intervals, shape (k, 2).
    accepted_per_step_ci : tuple of float
        95% interval of accepted_per_step.
    covariance : numpy.ndarray or None
        Covariance matrix of the survival estimate (k x k), with the same widening as its intervals.
    """

    format: str
    k: int | None
    drafts: int
    draft_tokens: int | None
    accepted_tokens: int
    survival: np.ndarray | None
    survival_ci: np.ndarray | None
    accepted_per_step_ci: tuple
    covariance: np.ndarray | None
    interval_method: str
    requests: int | None
    model: str | None
    sources: tuple
    segments: tuple
    notes: tuple
    version: str = __version__

    @property
    def accepted_per_step(self) -> float:
        """E[X]: accepted draft tokens per step, bonus token excluded (brw's ``accepted``)."""
        return self.accepted_tokens / self.drafts

    @property
    def acceptance_length(self) -> float:
        """E[X] + 1: tokens per step with the bonus token, the engines' "mean acceptance length"."""
        return self.accepted_per_step + 1.0

    def to_dict(self) -> dict:
        """The measurement (the ``brw deployment`` keys).

        Returns
        -------
        dict
            format, k, drafts, draft_tokens, accepted_tokens, accepted_per_step (bonus excluded) with
            accepted_per_step_ci, acceptance_length (bonus included), convention, survival and survival_ci
            (lists over j = 1..k, null when the format has no per-position counts), interval_method,
            requests, model, sources, segments (per run or restart: where, k, drafts, accepted_tokens, ...),
            notes and version.
        """
        lo, hi = self.accepted_per_step_ci
        return {"format": self.format, "k": self.k, "drafts": self.drafts, "draft_tokens": self.draft_tokens,
                "accepted_tokens": self.accepted_tokens, "accepted_per_step": self.accepted_per_step,
                "accepted_per_step_ci": [lo, hi], "acceptance_length": self.acceptance_length,
                "acceptance_length_ci": [lo + 1.0, hi + 1.0], "convention": CONVENTION,
                "survival": None if self.survival is None else [float(x) for x in self.survival],
                "survival_ci": None if self.survival_ci is None else [[float(a), float(b)] for a, b in
                                                                        self.survival_ci],
                "interval_method": self.interval_method, "requests": self.requests, "model": self.model,
                "sources": list(self.sources), "segments": [dict(s) for s in self.segments],
                "notes": list(self.notes), "version": self.version}

    def _tidy(self) -> dict:
        """Columns j, survival, low, high (one row per position)."""
        k = 0 if self.survival is None else self.k
        ci = np.zeros((0, 2)) if self.survival_ci is None else self.survival_ci
        return {"j": np.arange(1, k + 1), "survival": [] if self.survival is None else self.survival,
                "low": ci[:, 0], "high": ci[:, 1]}


def wilson(count, n, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial share.

    Parameters
    ----------
    count, n : float
        Successes and trials (n > 0; counts inferred from rounded shares may be fractional).
    z : float
        Normal quantile (default: two-sided 95%).

    Returns
    -------
    tuple of float
        (low, high), within [0, 1].
    """
    p = count / n
    d = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------------------------------------
# Pieces (an interval of a log, a request, a difference of scrapes) gathered into segments.


@dataclass
class _Piece:
    k: int | None
    drafts: float
    draft_tokens: float | None
    accepted: float
    counts: np.ndarray | None  # steps accepting at least j tokens, j = 1..k
    slack: float = 0.0  # half-width of every count's rounding (shares printed to a few decimals)
    request: bool = False  # an independent unit for the design effect
    exact_drafts: bool = True


@dataclass
class _Segment:
    source: str
    run: int
    k: int | None
    model: str | None
    first: int = 0
    last: int = 0
    pieces: int = 0
    drafts: float = 0.0
    draft_tokens: float | None = 0.0
    accepted: float = 0.0
    counts: np.ndarray | None = None
    slack: float = 0.0
    requests: int = 0
    syy: np.ndarray | None = None
    syn: np.ndarray | None = None
    snn: float = 0.0
    saa: float = 0.0
    san: float = 0.0
    inferred: int = 0
    why: str = ""

    def add(self, p: _Piece, line: int) -> None:
        if not self.pieces:
            self.first = line
        self.last = line
        self.pieces += 1
        self.drafts += p.drafts
        self.draft_tokens = None if (self.draft_tokens is None or p.draft_tokens is None) else \
            self.draft_tokens + p.draft_tokens
        self.accepted += p.accepted
        self.inferred += 0 if p.exact_drafts else 1
        if p.counts is not None and (self.counts is not None or self.pieces == 1):
            self.counts = p.counts.astype(np.float64) if self.counts is None else self.counts + p.counts
            self.slack += p.slack
        else:
            self.counts = None
        if p.request:
            self.requests += 1
            self.snn += p.drafts ** 2
            self.saa += p.accepted ** 2
            self.san += p.accepted * p.drafts
            if p.counts is not None:
                y = p.counts.astype(np.float64)
                self.syy = np.outer(y, y) if self.syy is None else self.syy + np.outer(y, y)
                self.syn = y * p.drafts if self.syn is None else self.syn + y * p.drafts

    def summary(self) -> dict:
        return {"source": self.source, "run": self.run, "lines": [self.first, self.last], "k": self.k,
                "model": self.model, "drafts": int(round(self.drafts)),
                "draft_tokens": None if self.draft_tokens is None else int(round(self.draft_tokens)),
                "accepted_tokens": int(round(self.accepted)),
                "accepted_per_step": self.accepted / self.drafts if self.drafts else None,
                "requests": self.requests or None, "started_by": self.why}


class _Collector:
    """Gathers the pieces of every file into segments: a new run, a restart or a change of k starts one."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.segments: list[_Segment] = []
        self.notes: list[str] = []
        self.current: _Segment | None = None
        self.source = ""
        self.run = 0
        self.model: str | None = None
        self._why = "start of file"

    def start_file(self, source: str) -> None:
        self.source, self.run, self.model, self.current = source, 0, None, None
        self._why = "start of file"

    def new_run(self, why: str, model: str | None = None) -> None:
        if self.current is not None and self.current.pieces:
            self.segments.append(self.current)
        self.run += 1
        if model is not None:
            self.model = model
        self.current = None
        self._why = why

    def add(self, piece: _Piece, line: int, model: str | None = None) -> None:
        if model is not None and self.model is not None and model != self.model and self.current is not None:
            self.new_run(f"model {model} at line {line}", model)
        if model is not None:
            self.model = model
        cur = self.current
        if cur is not None and cur.pieces and piece.k != cur.k:
            self.segments.append(cur)
            self.notes.append(f"{self.source}: k changes from {cur.k} to {piece.k} at line {line}; split there")
            self.run += 1
            cur = None
            self._why = f"k = {piece.k} from line {line}"
        if cur is None:
            cur = self.current = _Segment(self.source, self.run, piece.k, self.model, why=self._why)
            self._why = "continued"
        cur.model = cur.model or self.model
        cur.add(piece, line)

    def finish(self) -> list[_Segment]:
        if self.current is not None and self.current.pieces:
            self.segments.append(self.current)
        self.current = None
        return self.segments


# --------------------------------------------------------------------------------------------------------
# Reading lines: streamed, bounded, UTF-8 or refused.


def _lines(path: str):
    """(line number, text, whether it ended with a newline), one line at a time, read in blocks of ``BLOCK``
    bytes: memory stays bounded whatever the file's size."""
    shown = clip(path, 120)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise BrwError(f"cannot read {shown}: {e.strerror or e}") from None
    with f:
        n, rest = 0, b""
        while True:
            try:
                block = f.read(BLOCK)
            except OSError as e:
                raise BrwError(f"cannot read {shown}: {e.strerror or e}") from None
            if not block:
                if rest:
                    yield n + 1, _decode(rest, n, shown).rstrip("\r"), False
                return
            nul = block.find(b"\0")
            if nul >= 0:
                line = n + rest.count(b"\n") + block.count(b"\n", 0, nul) + 1
                raise BrwError(f"{shown} line {line} holds NUL bytes: a binary file, not an engine's log")
            data = rest + block
            cut = data.rfind(b"\n")
            body, rest = (data[:cut], data[cut + 1:]) if cut >= 0 else (b"", data)
            if len(rest) > MAX_LINE:
                line = n + body.count(b"\n") + 2 if cut >= 0 else n + 1
                raise BrwError(f"{shown} line {line} is longer than {MAX_LINE // 2**20} MiB: not a log or JSON lines "
                               "file of an engine (binary junk?)")
            if cut < 0:
                continue
            for text in _decode(body, n, shown).split("\n"):
                n += 1
                yield n, text.rstrip("\r"), True


def _decode(data: bytes, before: int, shown: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = before + data.count(b"\n", 0, e.start) + 1
        raise BrwError(f"{shown} line {line} is not UTF-8 text: not an engine's log, or a damaged one") from None


def _signatures(path: str) -> tuple[set, int]:
    """The formats whose signatures appear in the first block(s) of a file that hold any (reading stops at the
    first block with one, or after ``SNIFF_BYTES``), and the bytes read."""
    seen, read, tail = set(), 0, ""
    try:
        with open(path, "rb") as f:
            while not seen and read < SNIFF_BYTES:
                block = f.read(BLOCK)
                if not block:
                    break
                if b"\0" in block:
                    raise BrwError(f"{clip(path, 120)} holds NUL bytes: a binary file, not an engine's log")
                read += len(block)
                text = tail + block.decode("utf-8", errors="replace")
                seen = {name for name, marks in _SIGNATURES.items() if any(m in text for m in marks)}
                if {"sglang-json", "vllm-json"} <= seen and not any(m in text for m in _VLLM_ONLY):
                    seen.discard("vllm-json")  # SGLang's own keys may share a word with vLLM's
                tail = text[-64:]
    except OSError as e:
        raise BrwError(f"cannot read {clip(path, 120)}: {e.strerror or e}") from None
    return seen, read


def sniff_format(path) -> str:
    """The format of an engine's file, from the signatures in its first block that holds any (within
    ``SNIFF_BYTES``).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        One of ``FORMATS``.

    Raises
    ------
    BrwError
        When no format's signature appears (an empty file included), or several do (the message lists them:
        pass ``format``).
    """
    path = os.fspath(path)
    _check_file(path)
    seen, read = _signatures(path)
    if not read:
        raise BrwError(f"{clip(path, 120)} is empty: no speculative decoding metrics to read")
    if len(seen) == 1:
        return seen.pop()
    if not seen:
        raise BrwError(f"{clip(path, 120)}: no known format found in its first {SNIFF_BYTES // 2**20} MiB (formats: "
                       f"{', '.join(FORMATS)}); pass --format NAME if it is one of them")
    raise BrwError(f"{clip(path, 120)} looks like several formats ({', '.join(sorted(seen))}); pass --format NAME "
                   "with one of them")


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise BrwError(f"no such file: {clip(path, 120)}")


# --------------------------------------------------------------------------------------------------------
# Numbers as the engines print them.

_RATE3 = re.compile(r"^[0-9]+\.[0-9]{3}$")


def _rates(text: str, where: str, what: str) -> np.ndarray:
    """Shares printed with %.3f, comma-separated: in [0, 1], non-increasing (they are survival shares)."""
    parts = [t.strip() for t in text.split(",")] if text.strip() else []
    r = []
    for t in parts:
        if not _RATE3.match(t):
            raise BrwError(f"{where}: {what} {clip(t, 30)!r} is not a share printed to 3 decimals (truncated line, "
                           "or NaN/inf/negative numbers)")
        r.append(float(t))
        if r[-1] > 1.0:
            raise BrwError(f"{where}: a {what} above 1 ({r[-1]:.3f}): not a share of steps")
        if len(r) > 1 and r[-1] > r[-2]:
            j = len(r) - 1
            raise BrwError(f"{where}: the {what}s rise from position {j} to {j + 1} ({r[-2]:.3f} then {r[-1]:.3f}); "
                           "they count the steps accepting at least j tokens, which cannot rise with j: a damaged "
                           "line")
    return np.array(r)


def _infer_steps(accepted: int, drafted: int, mean_len: float, rates: np.ndarray, where: str,
                 len_decimals: int = 2):
    """Steps N of an interval whose line prints accepted A, drafted D, the mean length 1 + A/N to
    ``len_decimals`` and the survival shares to 3: N = D/k when that fits every printed number (every draft
    carried k tokens), else the fitting N nearest A / sum(rates). Returns (N, exact, low, high)."""
    k = rates.size
    rs = rates.tolist()
    h_len = 0.5 * 10.0 ** -len_decimals + 1e-9
    h_rate = 0.0005 + 1e-12

    def fits(n: int) -> bool:
        if n < 1 or abs(1.0 + accepted / n - mean_len) > h_len:
            return False
        lo_sum = hi_sum = 0
        for r in rs:  # some whole count of steps within the rounding of each printed share
            lo = max(math.ceil(n * (r - h_rate) - 1e-9), 0)
            hi = min(math.floor(n * (r + h_rate) + 1e-9), n)
            if lo > hi:
                return False
            lo_sum += lo
            hi_sum += hi
        return lo_sum <= accepted <= hi_sum

    if k and drafted % k == 0 and fits(drafted // k):
        n = drafted // k
        return n, True, n, n
    top = mean_len - 1.0
    lo_n = max(1, math.ceil(drafted / k)) if k else 1  # every draft holds 1..k tokens
    hi_n = max(lo_n, drafted)
    if top - h_len > 0:
        hi_n = min(hi_n, math.floor(accepted / (top - h_len)))
        lo_n = max(lo_n, math.ceil(accepted / (top + h_len)))
    total = sum(rs)
    guess = accepted / total if total > 0 else 0.5 * (lo_n + hi_n)
    g = min(max(round(guess), lo_n), hi_n)
    n, tried = None, 0
    for d in range(hi_n - lo_n + 1):  # outward from the guess; the first N that fits
        for c in ((g - d, g + d) if d else (g,)):
            if lo_n <= c <= hi_n and tried < MAX_TRIES:
                tried += 1
                if fits(c):
                    n = c
                    break
        if n is not None or tried >= MAX_TRIES:
            break
    if n is None:
        raise BrwError(f"{where}: its numbers do not fit together (accepted {accepted}, drafted {drafted}, mean "
                       f"acceptance length {mean_len}, {k} per-position rates): a damaged or truncated line")
    # the range the printed numbers allow (its ends, as far as MAX_TRIES more checks find them)
    lo = next((c for c in range(max(lo_n, n - MAX_TRIES), n) if fits(c)), n)
    hi = next((c for c in range(min(hi_n, n + MAX_TRIES), n, -1) if fits(c)), n)
    return n, lo == hi, lo, hi


def _rate_piece(accepted, drafted, mean_len, rates, where, request=False):
    n, exact, lo, hi = _infer_steps(accepted, drafted, mean_len, rates, where)
    if rates.size and abs(float(rates.sum()) * n - accepted) > 0.0005 * n * rates.size + 1e-9:
        raise BrwError(f"{where}: the per-position rates add up to {rates.sum():.3f} per step but accepted/steps is "
                       f"{accepted / n:.3f}: a damaged or truncated line")
    return _Piece(rates.size or None, float(n), float(drafted), float(accepted), rates * n, 0.0005 * n, request,
                  exact_drafts=(lo == hi) or n * rates.size == drafted), (lo, hi)


# --------------------------------------------------------------------------------------------------------
# vLLM's SpecDecoding log lines.

_VLLM_ENGINE = re.compile(r"Initializing an? (?:V1 )?LLM engine.*?\bmodel='([^']*)'")
_VLLM_FIELDS = {
    "mean": re.compile(r"Mean acceptance length:\s*(\S+?),"),
    "accepted": re.compile(r"Accepted:\s*(\S+) tokens"),
    "drafted": re.compile(r"Drafted:\s*(\S+) tokens"),
    "rates": re.compile(r"Per-position acceptance rate:\s*(.*?)(?:,\s*Avg Draft acceptance rate|$)"),
}


def _whole_text(text: str, where: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise BrwError(f"{where}: {what} {clip(text, 30)!r} is not a whole number of tokens (NaN, inf or negative?)")
    return int(text)


def _read_vllm_log(path: str, col: _Collector) -> None:
    for n, text, ended in _lines(path):
        m = _VLLM_ENGINE.search(text) if "LLM engine" in text else None
        if m:
            col.new_run(f"engine start at line {n}", m.group(1))
            continue
        i = text.find("SpecDecoding metrics:")
        if i < 0:
            continue
        body = text[i:]
        where = f"{path} line {n}"
        found = {key: rx.search(body) for key, rx in _VLLM_FIELDS.items()}
        if found["mean"] is None and found["rates"] is None and found["accepted"] and found["drafted"]:
            raise BrwError(f"{where}: this vLLM version's SpecDecoding line prints no mean acceptance length and no "
                           "per-position rates, so its steps are unknown; use its Prometheus counters instead")
        missing = [key for key, v in found.items() if v is None]
        if missing:
            if not ended:
                col.notes.append(f"{path}: its last line (line {n}) is cut short; left out")
                continue
            raise BrwError(f"{where}: a SpecDecoding metrics line without its {', '.join(missing)} "
                           "(truncated, or not vLLM's format)")
        mean_text = found["mean"].group(1)
        if not re.fullmatch(r"[0-9]+\.[0-9]{2}", mean_text):
            raise BrwError(f"{where}: mean acceptance length {clip(mean_text, 30)!r} is not a number printed to 2 "
                           "decimals (NaN, inf or negative?)")
        try:
            accepted = _whole_text(found["accepted"].group(1), where, "accepted")
            drafted = _whole_text(found["drafted"].group(1), where, "drafted")
            rates = _rates(found["rates"].group(1), where, "per-position acceptance rate")
            if accepted > drafted:
                raise BrwError(f"{where}: {accepted} tokens accepted of {drafted} drafted")
            if not rates.size:
                raise BrwError(f"{where}: no per-position acceptance rates")
            piece, span = _rate_piece(accepted, drafted, float(mean_text), rates, where)
        except BrwError:
            if not ended:
                col.notes.append(f"{path}: its last line (line {n}) is cut short; left out")
                continue
            raise
        if span[0] != span[1] and piece.drafts * piece.k != drafted:
            col.notes.append(f"{where}: drafts inferred as {int(piece.drafts)} (the printed numbers allow "
                             f"{span[0]}..{span[1]}; drafts there carried fewer than k tokens)")
        col.add(piece, n)


# --------------------------------------------------------------------------------------------------------
# llama.cpp server's per-request lines.

_LLAMA = re.compile(r"draft acceptance(?: rate)? = *(\S+) *\( *(\S+) accepted */ *(\S+) generated\)"
                    r"(?:, mean (?:acceptance length|len) = *(\S+?)(?:,|$))?"
                    r"(?: *acceptance rate per position = \((.*?)\))?")
_LLAMA_POS = re.compile(r"acc per pos = \((.*?)\)")


def _read_llamacpp_log(path: str, col: _Collector) -> None:
    pending = None  # a "mean len" line waiting for its "acc per pos" line

    def flush(rates_text, n_line):
        nonlocal pending
        (accepted, drafted, mean_len, ratio, where, line) = pending
        pending = None
        rates = _rates(rates_text, where, "acceptance rate per position")
        if not rates.size:
            col.notes.append(f"{where}: no per-position rates (no verification step); left out")
            return
        piece, _ = _rate_piece(accepted, drafted, mean_len, rates, where, request=True)
        if abs(accepted / drafted - ratio) > 0.5e-5 + 1e-9:
            raise BrwError(f"{where}: draft acceptance {ratio} is not {accepted}/{drafted}: a damaged line")
        col.add(piece, line)

    for n, text, ended in _lines(path):
        m = _LLAMA.search(text)
        where = f"{path} line {n}"
        if m is None:
            p = _LLAMA_POS.search(text)
            if p and pending is not None:
                flush(p.group(1), n)
            continue
        if pending is not None:
            raise BrwError(f"{pending[4]}: a 'mean len' line without its 'acc per pos' line (run llama-server with "
                           "trace verbosity, -v, or a version that prints both on one line)")
        ratio_t, acc_t, gen_t, mean_t, rates_t = m.groups()
        try:
            accepted = _whole_text(acc_t, where, "accepted")
            drafted = _whole_text(gen_t, where, "generated")
            if mean_t is None:
                raise BrwError(f"{where}: this llama.cpp line prints no mean acceptance length, so its steps are "
                               "unknown (llama.cpp before the per-position statistics); use a newer llama-server")
            if not re.fullmatch(r"[0-9]+\.[0-9]{2}", mean_t) or not re.fullmatch(r"[0-9]+\.[0-9]{5}", ratio_t):
                raise BrwError(f"{where}: the draft acceptance {clip(ratio_t, 20)!r} or mean length "
                               f"{clip(mean_t, 20)!r} is not a number as llama.cpp prints it (NaN, inf, negative?)")
            if drafted == 0 or accepted > drafted:
                raise BrwError(f"{where}: {accepted} tokens accepted of {drafted} generated")
            pending = (accepted, drafted, float(mean_t), float(ratio_t), where, n)
            if rates_t is not None:
                flush(rates_t, n)
        except BrwError:
            if not ended:
                col.notes.append(f"{path}: its last line (line {n}) is cut short; left out")
                pending = None
                continue
            raise
    if pending is not None:
        raise BrwError(f"{pending[4]}: a 'mean len' line without its 'acc per pos' line (run llama-server with "
                       "trace verbosity, -v, or a version that prints both on one line)")


# --------------------------------------------------------------------------------------------------------
# vLLM's Prometheus text exposition.

_PROM_NAMES = {"vllm:spec_decode_num_drafts_total": "drafts", "vllm:spec_decode_num_draft_tokens_total": "tokens",
               "vllm:spec_decode_num_accepted_tokens_total": "accepted",
               "vllm:spec_decode_num_accepted_tokens_per_pos_total": "pos"}
_PROM_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(\S+))?\s*$")
_PROM_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _labels(text: str, where: str) -> dict:
    out, pos = {}, 0
    text = text or ""
    while pos < len(text.rstrip()):
        m = _PROM_LABEL.match(text, pos)
        if m is None:
            raise BrwError(f"{where}: labels {clip(text, 60)!r} are not Prometheus' name=\"value\" pairs (truncated?)")
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


class _Scrape:
    def __init__(self, line: int):
        self.line = line
        self.values: dict = {}  # (name, labels) -> value
        self.created: dict = {}

    def totals(self, where: str):
        """{model: (drafts, tokens, accepted, per_pos array)} summed over engines."""
        out: dict = {}
        for (name, labels), v in self.values.items():
            lab = dict(labels)
            model = lab.get("model_name")
            t = out.setdefault(model, {"drafts": 0.0, "tokens": 0.0, "accepted": 0.0, "pos": {}})
            kind = _PROM_NAMES[name]
            if kind == "pos":
                if "position" not in lab or not re.fullmatch(r"[0-9]+", lab["position"]):
                    raise BrwError(f"{where}: a per-position counter without a whole position label")
                j = int(lab["position"])
                t["pos"][j] = t["pos"].get(j, 0.0) + v
            else:
                t[kind] += v
        for model, t in out.items():
            ks = sorted(t["pos"])
            if ks != list(range(len(ks))):
                raise BrwError(f"{where}: per-position counters for positions {ks}, not 0..k-1")
            t["pos"] = np.array([t["pos"][j] for j in ks])
        return out


def _read_vllm_prometheus(path: str, col: _Collector) -> None:
    scrapes_seen = 0
    prev = None  # totals of the previous scrape
    prev_created = None
    cur = None

    def close(scrape):
        nonlocal prev, prev_created, scrapes_seen
        where = f"{path} scrape at line {scrape.line}"
        tot = scrape.totals(where)
        if len(tot) > 1:
            raise BrwError(f"{where}: counters of several models ({', '.join(sorted(map(str, tot)))}); keep one "
                           "model's lines (grep model_name=...)")
        (model, t), = tot.items()
        if not t["pos"].size:
            raise BrwError(f"{where}: no vllm:spec_decode_num_accepted_tokens_per_pos_total series (k unknown)")
        names = {name for name, _ in scrape.values}
        for name in _PROM_NAMES:
            if name not in names:
                raise BrwError(f"{where}: the scrape lacks {name} (a truncated scrape?)")
        scrapes_seen += 1
        created = scrape.created.get("vllm:spec_decode_num_drafts_created")
        restart = False
        if prev is not None:
            back = [k for k in ("drafts", "tokens", "accepted") if t[k] < prev[k]]
            if t["pos"].size == prev["pos"].size and np.any(t["pos"] < prev["pos"]):
                back.append("per-position")
            if t["pos"].size != prev["pos"].size:
                back.append("k")
            moved = created is not None and prev_created is not None and created != prev_created
            if back or moved:
                restart = True
                what = ", ".join(back) if back else "the counters' creation time"
                col.notes.append(f"{path}: {what} went back at line {scrape.line} (a restart); split into segments "
                                 "there, the restarted counters counted from 0")
                col.new_run(f"restart at line {scrape.line}", model)
        if prev is None or restart:
            base = {"drafts": 0.0, "tokens": 0.0, "accepted": 0.0, "pos": np.zeros(t["pos"].size)}
            if prev is None:
                first_scrape[0] = (scrape.line, t, model)
                prev, prev_created = t, created
                return
        else:
            base = prev
        _prom_piece(col, t, base, scrape.line, model, where)
        prev, prev_created = t, created

    first_scrape = [None]
    for n, text, ended in _lines(path):
        s = text.strip()
        if not s:
            continue
        where = f"{path} line {n}"
        if s.startswith("#"):
            if s.startswith("# HELP vllm:spec_decode_num_drafts") and cur is not None and cur.values:
                close(cur)
                cur = None
            continue
        m = _PROM_SAMPLE.match(s)
        if m is None:
            if not ended:
                col.notes.append(f"{path}: its last line (line {n}) is cut short; left out")
                continue
            raise BrwError(f"{where}: {clip(s, 60)!r} is not a Prometheus sample line")
        name = m.group(1)
        base_name = name[:-len("_created")] + "_total" if name.endswith("_created") else name
        if base_name not in _PROM_NAMES:
            continue
        try:
            labels = _labels(m.group(2), where)
            value = float(m.group(3))
        except ValueError:
            raise BrwError(f"{where}: value {clip(m.group(3), 30)!r} is not a number") from None
        except BrwError:
            if not ended:
                col.notes.append(f"{path}: its last line (line {n}) is cut short; left out")
                continue
            raise
        if name.endswith("_created"):
            if cur is not None:
                cur.created[name] = value
            continue
        if not math.isfinite(value) or value < 0 or not float(value).is_integer():
            raise BrwError(f"{where}: counter {name} = {m.group(3)}: counts must be finite whole numbers >= 0")
        key = (name, tuple(sorted((a, b) for a, b in labels.items() if a != "engine")) + (("engine",
                                                                                          labels.get("engine")),))
        if cur is None or key in cur.values:
            if cur is not None:
                close(cur)
            cur = _Scrape(n)
        cur.values[key] = value
    if cur is not None and cur.values:
        close(cur)
    if scrapes_seen == 1 and first_scrape[0] is not None:
        line, t, model = first_scrape[0]
        col.notes.append(f"{path}: one scrape: its counters are the totals since the server started")
        _prom_piece(col, t, {"drafts": 0.0, "tokens": 0.0, "accepted": 0.0, "pos": np.zeros(t["pos"].size)}, line,
                    model, f"{path} scrape at line {line}")


def _prom_piece(col, t, base, line, model, where):
    d = {k: t[k] - base[k] for k in ("drafts", "tokens", "accepted")}
    pos = t["pos"] - base["pos"]
    if d["drafts"] == 0 and d["tokens"] == 0:
        return
    col.add(_Piece(int(pos.size), d["drafts"], d["tokens"], d["accepted"], pos), line, model)


# --------------------------------------------------------------------------------------------------------
# JSON records: vLLM's per-request metrics, SGLang's meta_info, accept_lengths lines.


def _json_values(path: str):
    """(line, value) for each JSON value of a JSON lines file, or (1, value) for one JSON document."""
    first = None
    for n, text, ended in _lines(path):
        if text.strip():
            first = (n, text, ended)
            break
    if first is None:
        return
    try:
        json.loads(first[1])
        lines_mode = True
    except ValueError:
        lines_mode = False
    if lines_mode:
        for n, text, ended in _lines(path):
            if not text.strip():
                continue
            try:
                yield n, json.loads(text, parse_constant=_no_constant)
            except ValueError as e:
                if not ended:
                    yield n, _Truncated()
                    return
                raise BrwError(f"{path} line {n} is not JSON ({clip(str(e), 80)}): a truncated or damaged line") \
                    from None
        return
    size = os.path.getsize(path)
    if size > MAX_JSON_DOCUMENT:
        raise BrwError(f"{path} is one JSON document of {size / 2**20:.0f} MiB; write one record per line (JSON lines) "
                       f"to stream it (documents up to {MAX_JSON_DOCUMENT // 2**20} MiB are read whole)")
    parts = [text for _, text, _ in _lines(path)]
    try:
        yield 1, json.loads("\n".join(parts), parse_constant=_no_constant)
    except ValueError as e:
        raise BrwError(f"{path} is not JSON ({clip(str(e), 80)}): truncated or damaged") from None


class _Truncated:
    pass


def _no_constant(name):
    raise ValueError(f"{name} is not a count")


def _whole(value, where: str, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or value < minimum:
        raise BrwError(f"{where}: {what} must be a whole number >= {minimum}, got {clip(repr(value), 40)}")
    return int(value)


def _number(value, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BrwError(f"{where}: {what} must be a finite number >= 0, got {clip(repr(value), 40)}")
    return float(value)


def _histogram(values, where: str, what: str) -> np.ndarray:
    if not isinstance(values, list):
        raise BrwError(f"{where}: {what} must be a list of whole numbers, got {clip(repr(values), 40)}")
    return np.array([_whole(v, where, f"{what} entry") for v in values], dtype=np.float64)


def _survival_counts(hist: np.ndarray, k: int) -> np.ndarray:
    """Steps accepting at least j tokens, j = 1..k, from a histogram of exactly-j counts (j = 0..)."""
    h = np.zeros(k + 1)
    h[:min(hist.size, k + 1)] = hist[:k + 1]
    return np.cumsum(h[::-1])[::-1][1:]


def _walk(value, where: str):
    """The records (objects) inside a JSON value, in lists at any depth."""
    if isinstance(value, list):
        for v in value:
            yield from _walk(v, where)
    elif isinstance(value, dict):
        yield value
    else:
        raise BrwError(f"{where}: {clip(repr(value), 40)} is not a JSON object (a record) or a list of them")


def _read_json(path: str, col: _Collector, record) -> None:
    skipped = 0
    for n, value in _json_values(path):
        if isinstance(value, _Truncated):
            col.notes.append(f"{path}: its last line (line {n}) is cut short; left out")
            continue
        for rec in _walk(value, f"{path} line {n}"):
            got = record(rec, f"{path} line {n}")
            if got is None:
                skipped += 1
                continue
            piece, model = got
            col.add(piece, n, model)
    if skipped:
        col.notes.append(f"{path}: {skipped} records without speculative decoding metrics left out")


def _vllm_record(rec: dict, where: str, k_given: int | None):
    model = rec.get("model") if isinstance(rec.get("model"), str) else None
    sd = rec
    if isinstance(rec.get("metrics"), dict) and "speculative_decoding" in rec["metrics"]:
        sd = rec["metrics"]["speculative_decoding"]
        if sd is None:
            return None  # n > 1 requests carry null
    elif not any(key in rec for key in ("acceptance_histogram", "num_spec_steps", "per_step_accepted")):
        raise BrwError(f"{where}: neither a response with metrics.speculative_decoding nor vLLM's per-request "
                       "speculative decoding object")
    if not isinstance(sd, dict):
        raise BrwError(f"{where}: metrics.speculative_decoding must be an object, got {clip(repr(sd), 40)}")
    k = _whole(sd["num_spec_tokens"], where, "num_spec_tokens", 1) if "num_spec_tokens" in sd else None
    hist = _histogram(sd["acceptance_histogram"], where, "acceptance_histogram") \
        if sd.get("acceptance_histogram") is not None else None
    if sd.get("per_step_accepted") is not None:
        steps = _histogram(sd["per_step_accepted"], where, "per_step_accepted")
        h2 = np.bincount(steps.astype(np.int64), minlength=1).astype(np.float64)
        if hist is not None:
            m = max(h2.size, hist.size)
            if not np.array_equal(np.pad(h2, (0, m - h2.size)), np.pad(hist, (0, m - hist.size))):
                raise BrwError(f"{where}: per_step_accepted and acceptance_histogram disagree")
        hist = h2 if hist is None else hist
    if k is None:
        k = k_given if k_given is not None else (hist.size - 1 if hist is not None and hist.size > 1 else None)
    if hist is not None and k is not None:
        if hist.size > k + 1 and np.any(hist[k + 1:] > 0):
            raise BrwError(f"{where}: steps that accepted more than k = {k} tokens")
        if "num_spec_tokens" in sd and sd.get("acceptance_histogram") is not None and \
                len(sd["acceptance_histogram"]) != k + 1:
            raise BrwError(f"{where}: acceptance_histogram has {len(sd['acceptance_histogram'])} entries, not "
                           f"num_spec_tokens + 1 = {k + 1}")
    if hist is not None:
        steps_n = float(hist.sum())
        accepted = float((np.arange(hist.size) * hist).sum())
    else:
        if "num_spec_steps" not in sd:
            raise BrwError(f"{where}: no acceptance_histogram, per_step_accepted or num_spec_steps")
        steps_n = float(_whole(sd["num_spec_steps"], where, "num_spec_steps"))
        if "num_accepted_draft_tokens" in sd:
            accepted = float(_whole(sd["num_accepted_draft_tokens"], where, "num_accepted_draft_tokens"))
        else:
            length = _number(sd.get("mean_acceptance_length"), where, "mean_acceptance_length")
            accepted = float(round((length - 1.0) * steps_n))
    for key, val in (("num_spec_steps", steps_n), ("num_accepted_draft_tokens", accepted)):
        if key in sd and _whole(sd[key], where, key) != val:
            raise BrwError(f"{where}: {key} = {sd[key]} but the histogram gives {val:g}")
    if steps_n == 0:
        return None
    if sd.get("mean_acceptance_length") is not None:
        length = _number(sd["mean_acceptance_length"], where, "mean_acceptance_length")
        if abs(length - (1.0 + accepted / steps_n)) > 1e-6 * max(1.0, length):
            raise BrwError(f"{where}: mean_acceptance_length {length} is not 1 + accepted/steps = "
                           f"{1 + accepted / steps_n:.6g}")
    tokens = float(_whole(sd["num_draft_tokens"], where, "num_draft_tokens")) if "num_draft_tokens" in sd else None
    if tokens is not None and (accepted > tokens or (k is not None and tokens > k * steps_n)):
        raise BrwError(f"{where}: {accepted:g} accepted of {tokens:g} drafted tokens in {steps_n:g} steps of k = {k}")
    counts = _survival_counts(hist, k) if hist is not None and k is not None else None
    return _Piece(k, steps_n, tokens, accepted, counts, 0.0, True), model


_SGL_ACCEPTED = ("spec_accepted_drafts", "spec_accept_token_num", "spec_num_correct_drafts", "spec_accepted_tokens")
_SGL_PROPOSED = ("spec_proposed_drafts", "spec_draft_token_num", "spec_num_proposed_drafts")


def _sglang_record(rec: dict, where: str, k_given: int | None, notes: set):
    mi = rec.get("meta_info") if isinstance(rec.get("meta_info"), dict) else rec
    if "spec_verify_ct" not in mi:
        if rec is mi:
            raise BrwError(f"{where}: an SGLang record without meta_info.spec_verify_ct")
        return None
    steps = float(_whole(mi["spec_verify_ct"], where, "spec_verify_ct"))
    if steps == 0:
        return None
    accepted = next((float(_whole(mi[key], where, key)) for key in _SGL_ACCEPTED if key in mi), None)
    hist = _histogram(mi["spec_accept_histogram"], where, "spec_accept_histogram") \
        if mi.get("spec_accept_histogram") else None
    if accepted is None and hist is None:
        if "completion_tokens" in mi:
            accepted = float(_whole(mi["completion_tokens"], where, "completion_tokens")) - steps
        elif "spec_accept_length" in mi:
            accepted = float(round(_number(mi["spec_accept_length"], where, "spec_accept_length") * steps)) - steps
        else:
            raise BrwError(f"{where}: spec_verify_ct without spec_accept_length or completion_tokens")
        notes.add("SGLang's spec_accept_length is completion_tokens / spec_verify_ct: the accepted tokens taken from "
                  "it include the prefill's first token (at most one per request)")
        accepted = max(accepted, 0.0)
    proposed = next((float(_whole(mi[key], where, key)) for key in _SGL_PROPOSED if key in mi), None)
    if proposed is None and mi.get("spec_accept_rate") and accepted:
        proposed = float(round(accepted / _number(mi["spec_accept_rate"], where, "spec_accept_rate")))
    k = None
    if proposed is not None and steps and proposed / steps == round(proposed / steps) and proposed > 0:
        k = int(round(proposed / steps))
    if k is None:
        k = k_given
    if k is None and hist is not None:
        k = hist.size - 1
        notes.add("SGLang gives no draft length: k taken as the longest acceptance histogram (pass --k)")
    counts = None
    if hist is not None:
        if hist.sum() != steps:
            raise BrwError(f"{where}: spec_accept_histogram holds {hist.sum():g} steps, spec_verify_ct {steps:g}")
        if k is not None and hist.size > k + 1 and np.any(hist[k + 1:] > 0):
            raise BrwError(f"{where}: steps that accepted more than k = {k} tokens")
        acc_h = float((np.arange(hist.size) * hist).sum())
        if accepted is not None and acc_h != accepted:
            raise BrwError(f"{where}: the histogram gives {acc_h:g} accepted tokens, the counters {accepted:g}")
        accepted = acc_h
        counts = _survival_counts(hist, k) if k else None
    if proposed is not None and accepted > proposed:
        raise BrwError(f"{where}: {accepted:g} accepted of {proposed:g} proposed draft tokens")
    return _Piece(k, steps, proposed, accepted, counts, 0.0, True), None


def _accept_lengths_record(rec: dict, where: str, k_given: int | None, notes: set):
    if "accept_lengths" not in rec:
        raise BrwError(f"{where}: a record without accept_lengths")
    x = _histogram(rec["accept_lengths"], where, "accept_lengths")
    if not x.size:
        return None
    k = next((_whole(rec[key], where, key, 1) for key in ("k", "num_spec_tokens", "num_speculative_tokens")
              if key in rec), None)
    if k is None:
        k = k_given
    if k is None:
        k = int(x.max())
        notes.add("accept_lengths records name no k: k taken as the largest accepted length seen (pass --k)")
    if x.max() > k:
        raise BrwError(f"{where}: an accepted length of {int(x.max())} above k = {k} (accept_lengths exclude the "
                       "bonus token)")
    hist = np.bincount(x.astype(np.int64), minlength=k + 1).astype(np.float64)
    model = rec.get("model") if isinstance(rec.get("model"), str) else None
    return _Piece(k or None, float(x.size), None, float(x.sum()), _survival_counts(hist, k) if k else None, 0.0,
                  True), model


# --------------------------------------------------------------------------------------------------------
# Files to a measurement.


def from_histograms(histograms, k: int, format: str = "histograms") -> Measurement:
    """A measurement from per-request histograms of accepted draft tokens (what a decoder of one's own counts).

    Parameters
    ----------
    histograms : array_like
        One row per request: entry j = the steps of that request that accepted exactly j draft tokens,
        j = 0..k (whole numbers >= 0).
    k : int
        The draft length.
    format : str
        The name the measurement records.

    Returns
    -------
    Measurement
        As the readers give it; the requests' design effect widens the intervals (``MIN_REQUESTS`` or more).
    """
    k = whole_number(k, "k")
    h = np.asarray(histograms, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != k + 1:
        raise BrwError(f"histograms must be one row of k + 1 = {k + 1} counts per request, got shape {h.shape}")
    if not np.all(np.isfinite(h)) or np.any(h < 0) or np.any(h != np.round(h)):
        raise BrwError("histograms must hold whole numbers >= 0")
    col = _Collector(format)
    col.start_file(format)
    j = np.arange(k + 1)
    for i, row in enumerate(h):
        if row.sum() > 0:
            col.add(_Piece(k, float(row.sum()), float(k * row.sum()), float((j * row).sum()),
                           _survival_counts(row, k), 0.0, True), i + 1)
    return _measure(format, [format], col.finish(), [], None)


def read_deployment(files, format: str | None = None, k: int | None = None) -> Measurement:
    """Read what an engine wrote about its speculative decoding into one measurement.

    Parameters
    ----------
    files : str, path or sequence of them
        The engine's files (logs, scrapes, JSON), all of one format; they are streamed.
    format : str, optional
        One of ``FORMATS``; default: sniffed from each file (an ambiguous file is an error that lists the
        candidates).
    k : int, optional
        The draft length: selects the segments of that k when the files mix several, and supplies k to formats
        that do not record it (SGLang without proposed counts, ``accept-lengths`` without ``k``).

    Returns
    -------
    Measurement

    Raises
    ------
    BrwError
        For a file that is missing, empty, binary, not UTF-8 or of no known format; damaged lines (one
        truncated last line is left out, with a note); counts that are NaN, infinite, negative or do not fit
        together; per-position rates that rise; several k without ``k``; no steps at all.
    """
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    files = [os.fspath(f) for f in files]
    if not files:
        raise BrwError("give at least one file")
    if format is not None and format not in FORMATS:
        raise BrwError(f"format must be one of {', '.join(FORMATS)}, got {clip(repr(format), 40)}")
    if k is not None:
        k = whole_number(k, "k")
    fmts = []
    for f in files:
        _check_file(f)
        fmts.append(format or sniff_format(f))
    if len(set(fmts)) > 1:
        raise BrwError(f"the files are of several formats ({', '.join(sorted(set(fmts)))}); read one format at a "
                       "time (the same deployment's log and counters would count its steps twice)")
    fmt = fmts[0]
    col = _Collector(fmt)
    notes: set = set()
    for f in files:
        col.start_file(f)
        if os.path.getsize(f) == 0:
            raise BrwError(f"{clip(f, 120)} is empty: no speculative decoding metrics to read")
        if fmt == "vllm-log":
            _read_vllm_log(f, col)
        elif fmt == "llamacpp-log":
            _read_llamacpp_log(f, col)
        elif fmt == "vllm-prometheus":
            _read_vllm_prometheus(f, col)
        elif fmt == "vllm-json":
            _read_json(f, col, lambda r, w: _vllm_record(r, w, k))
        elif fmt == "sglang-json":
            _read_json(f, col, lambda r, w: _sglang_record(r, w, k, notes))
        else:
            _read_json(f, col, lambda r, w: _accept_lengths_record(r, w, k, notes))
        col.finish()
        if not any(s.source == f for s in col.segments):
            raise BrwError(f"{clip(f, 120)}: no speculative decoding metrics of format {fmt} in it")
    return _measure(fmt, files, col.segments, col.notes + sorted(notes), k)


def _survival(fmt: str, segments, drafts: float, accepted: float, kk: int, requests, method: str, notes: list):
    """Survival (the share of steps accepting at least j tokens) from pooled per-position counts, with its 95%
    intervals, covariance, the standard error of the mean accepted and the interval method's description."""
    counts = sum(s.counts for s in segments)
    slack = sum(s.slack for s in segments)
    if np.any(counts > drafts + 1e-6) or np.any(np.diff(counts) > 1e-6 + slack):
        raise BrwError("the per-position counts rise with position or exceed the steps: impossible for counts of "
                       "steps accepting at least j tokens")
    gap = abs(counts.sum() - accepted)
    if gap > 1e-6 + slack * kk:
        if fmt == "vllm-prometheus" and gap <= 0.005 * max(accepted, 1.0):
            notes.append(f"accepted tokens and the per-position counts differ by {gap:.0f} (a scrape taken "
                         "between the counters' updates)")
        else:
            raise BrwError(f"accepted tokens ({accepted:.0f}) differ from the per-position counts' sum "
                           f"({counts.sum():.0f}): the counts do not fit together")
    surv = np.clip(counts / drafts, 0.0, 1.0)
    surv = np.minimum.accumulate(surv)
    factor = np.ones(kk)
    cov_b = (np.minimum.outer(surv, surv) - np.outer(surv, surv)) / drafts
    if requests is not None and requests >= MIN_REQUESTS:
        syy = sum(s.syy for s in segments)
        syn = sum(s.syn for s in segments)
        snn = sum(s.snn for s in segments)
        resid = np.diag(syy) - 2 * surv * syn + surv ** 2 * snn
        var_c = requests / (requests - 1) * np.maximum(resid, 0.0) / drafts ** 2
        var_b = np.diag(cov_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(var_b > 0, np.sqrt(np.maximum(var_c / var_b, 1.0)), 1.0)
        method = (f"Wilson score intervals widened by the design effect of {requests} requests (steps of one "
                  "request may be correlated; requests assumed independent)")
    elif requests is not None:
        method += (f" (only {requests} request{'s' if requests != 1 else ''}: too few to estimate how much "
                   "their steps are correlated)")
    ci = np.empty((kk, 2))
    for j in range(kk):
        lo, hi = wilson(counts[j], drafts)
        c = 0.5 * (lo + hi)
        half = 0.5 * (hi - lo) * factor[j] + slack / drafts
        ci[j] = max(0.0, c - half), min(1.0, c + half)
    if slack:
        method += "; plus the rounding of the printed shares"
    cov = cov_b * np.outer(factor, factor)
    mean = float(surv.sum())
    var_x = float(((2 * np.arange(1, kk + 1) - 1) * surv).sum() - mean ** 2)
    se = math.sqrt(max(var_x, 0.0) / drafts) * float(factor.max()) + slack * kk / drafts
    return surv, ci, cov, se, method


def _measure(fmt: str, files, segments: list[_Segment], notes: list[str], k: int | None) -> Measurement:
    segments = [s for s in segments if s.drafts > 0]
    if not segments:
        raise BrwError(f"no verification steps in {', '.join(clip(f, 60) for f in files)}")
    ks = sorted({s.k for s in segments}, key=lambda v: -1 if v is None else v)
    if k is not None:
        known = [s.k for s in segments if s.k is not None]
        if known and k not in known:
            raise BrwError(f"the files hold drafts of k = {', '.join(map(str, sorted(set(known))))}, not k = {k}")
        left = [s for s in segments if s.k not in (k, None)]
        if left:
            notes.append(f"{len(left)} segments of another k ({', '.join(str(s.k) for s in left)}) left out (k = {k} "
                         "asked for)")
        segments = [s for s in segments if s.k in (k, None)]
        for s in segments:
            s.k = k
    elif len(ks) > 1:
        parts = "; ".join(f"k = {kk}: {sum(s.drafts for s in segments if s.k == kk):.0f} drafts in " +
                          ", ".join(f"{s.source} lines {s.first}-{s.last}" for s in segments if s.k == kk)[:200]
                          for kk in ks)
        raise BrwError(f"the files mix draft lengths ({parts}); measure one at a time with --k K")
    kk = segments[0].k
    drafts = sum(s.drafts for s in segments)
    accepted = sum(s.accepted for s in segments)
    tokens = None if any(s.draft_tokens is None for s in segments) else sum(s.draft_tokens for s in segments)
    if tokens is not None and accepted > tokens + 1e-6:
        raise BrwError(f"{accepted:.0f} tokens accepted of {tokens:.0f} drafted: the counts do not fit together")
    if len(segments) > 1:
        notes.append(f"{len(segments)} segments (runs or restarts) of k = {kk} pooled")
    model = _one_model(segments, notes)
    have_counts = kk is not None and all(s.counts is not None for s in segments)
    requests = sum(s.requests for s in segments) if all(s.requests for s in segments) else None
    method = "binomial: Wilson score intervals, steps assumed independent"
    if have_counts:
        surv, ci, cov, se, method = _survival(fmt, segments, drafts, accepted, kk, requests, method, notes)
    else:
        surv = ci = cov = None
        mean = accepted / drafts
        if requests is not None and requests >= MIN_REQUESTS:
            saa, san, snn = (sum(getattr(s, a) for s in segments) for a in ("saa", "san", "snn"))
            resid = saa - 2 * mean * san + mean ** 2 * snn
            se = math.sqrt(requests / (requests - 1) * max(resid, 0.0)) / drafts
            method = f"normal interval over {requests} requests (requests assumed independent)"
        else:
            se = math.nan
            method = "no interval: the format gives neither per-position counts nor requests"
        if kk is None:
            notes.append("k unknown: the format does not record the draft length; pass --k to compare with a law")
    mean = accepted / drafts
    ci_mean = (max(0.0, mean - Z95 * se), mean + Z95 * se) if math.isfinite(se) else (math.nan, math.nan)
    inferred = sum(s.inferred for s in segments)
    if inferred:
        notes.append(f"drafts of {inferred} lines inferred from the printed numbers (the line gives no step count)")
    if tokens is not None and kk is not None and tokens < kk * drafts - 1e-6:
        notes.append(f"{kk * drafts - tokens:.0f} of {kk * drafts:.0f} draft slots held no token (drafts shorter "
                     "than k: n-gram misses, grammar or length limits); survival counts them as not accepted")
    return Measurement(fmt, kk, int(round(drafts)), None if tokens is None else int(round(tokens)),
                       int(round(accepted)), surv, ci, ci_mean, cov, method, requests, model, tuple(files),
                       tuple(s.summary() for s in segments), tuple(notes))


def _one_model(segments, notes) -> str | None:
    names = sorted({s.model for s in segments if s.model})
    if len(names) > 1:
        raise BrwError(f"the files name several models ({', '.join(clip(n, 60) for n in names)}); measure one model "
                       "at a time")
    return names[0] if names else None
