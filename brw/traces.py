"""Verifier traces: recorded next-token distributions of a real model, and the ``trace`` step law built on them.

A trace is a table of recorded positions. Each row is one next-token distribution p of the verifier: its top-k
log-probabilities and token ids, and statistics of the *whole* vocabulary computed exactly from the logits
(entropy, second log-moment, mass outside the top k). The ``trace:`` law resamples rows (theory.md section 2:
an empirical law D), with the mass beyond the top k represented, never dropped (see :func:`fit_tails`).

File format (schema version 1): a NumPy ``.npz`` archive read with ``allow_pickle=False`` and validated whole
before anything is returned (:func:`load_trace`). Fields, N rows (positions), k top entries, C contexts:

=================  ===============  ====================================================================
field              dtype, shape     meaning
=================  ===============  ====================================================================
schema_version     int64, ()        1
format             str, ()          "brw-trace"
meta               str, ()          JSON object: model, model_sha256 or revision, dtype, device,
                                    temperature, mode ("sampled", "teacher-forced" or "imported"),
                                    prompt_source, brw_version, vocab_size, k, seed, ...
top_logp           float32/64 (N,k) the row's k largest log-probabilities, sorted decreasing, all <= 0
top_ids            int (N,k)        their token ids
entropy            float64 (N,)     H(p) = -sum p log p over the full vocabulary (nats)
log_moment2        float64 (N,)     sum p (log p)^2 over the full vocabulary
tail_mass          float64 (N,)     probability mass outside the top k
taken              int (N,)         the token actually taken (sampled, or the next token of the text)
taken_logp         float64 (N,)     its log-probability
context            int (N,)         index of the context (prompt + answer, or text window) of the row
offset             int (N,)         index in that context's token ids of the token this row predicts
context_tokens     int (T,)         token ids of all contexts, concatenated
context_offsets    int64 (C+1,)     context c is context_tokens[context_offsets[c]:context_offsets[c+1]]
prompt_lengths     int (C,)         tokens of context c that came from the prompt (the rest were generated)
=================  ===============  ====================================================================

Optional (imported traces, whose full-vocabulary statistics are only bracketed by the top-k):
``entropy_lo``, ``entropy_hi``, ``log_moment2_lo``, ``log_moment2_hi`` (float64, (N,)); ``entropy`` and
``log_moment2`` then hold the point the law uses, inside the bracket. ``token_strings`` (str, (V',)): the
token each id stands for, when ids are not the model's own (imported traces). Other fields are ignored.

Validation (one :class:`~brw.errors.BrwError` naming the file, the field and the row): unreadable, truncated or
corrupt archive; pickled object arrays; unknown schema version; missing fields, wrong dtypes, inconsistent
shapes; NaN or infinite values; log-probabilities above 0; an unsorted top-k; top-k plus tail mass off 1 by more
than ``MASS_TOL``; an entropy or second log-moment that the top-k and a tail of ``tail_mass`` spread over the
rest of the vocabulary (each tail token no more probable than the k-th) cannot produce, by more than
``MOMENT_TOL``; ids outside the vocabulary; context indices or offsets that point nowhere.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy import special

from brw import kernel_law as K
from brw.errors import BrwError
from brw.files import atomic_path, write_npz
from brw.laws import KernelLaw, Law, register_law

__all__ = [
    "SCHEMA_VERSION", "MASS_TOL", "MOMENT_TOL", "BUNDLED", "Trace", "TraceLaw", "load_trace", "save_trace",
    "resolve_trace", "fit_tails", "tail_bounds",
]

SCHEMA_VERSION = 1
FORMAT = "brw-trace"
#: |sum of the top-k probabilities + tail_mass - 1| allowed. float32 top-k log-probabilities move each p_i by
#: at most p_i |log p_i| 6e-8, so a whole row by about H 6e-8; API log-probabilities are rounded more coarsely.
MASS_TOL = 1e-4
#: Slack (nats, and nats^2 for the second log-moment) allowed on the feasibility bounds of a row's entropy and
#: second log-moment, for the same rounding.
MOMENT_TOL = 1e-4

#: Short names of the bundled traces (``trace:code`` ...) and their files in brw/data.
BUNDLED = {
    "code": "smollm2-code.npz",
    "math": "smollm2-math.npz",
    "chat": "smollm2-chat.npz",
}
DATA_DIR = Path(__file__).resolve().parent / "data"

_FLOAT_ROWS = ("entropy", "log_moment2", "tail_mass", "taken_logp")
_BRACKETS = ("entropy_lo", "entropy_hi", "log_moment2_lo", "log_moment2_hi")
_INT_ROWS = ("taken", "context", "offset")
REQUIRED = ("schema_version", "format", "meta", "top_logp", "top_ids", *_FLOAT_ROWS, *_INT_ROWS,
            "context_tokens", "context_offsets", "prompt_lengths")
#: Largest archive member read (uncompressed bytes): a corrupt header cannot make the loader allocate more.
MAX_MEMBER_BYTES = 4 << 30


# --------------------------------------------------------------------------------------------------------
# The trace in memory.


@dataclass(eq=False)
class Trace:
    """A validated trace (arrays as in the module docstring; ``meta`` a dict). Build with :func:`make_trace`
    or :func:`load_trace`; ``path`` is where it was read from (None when built in memory)."""

    top_logp: np.ndarray
    top_ids: np.ndarray
    entropy: np.ndarray
    log_moment2: np.ndarray
    tail_mass: np.ndarray
    taken: np.ndarray
    taken_logp: np.ndarray
    context: np.ndarray
    offset: np.ndarray
    context_tokens: np.ndarray
    context_offsets: np.ndarray
    prompt_lengths: np.ndarray
    meta: dict
    brackets: dict = field(default_factory=dict)  # name -> (N,) array, imported traces only
    token_strings: np.ndarray | None = None  # imported traces: the token each id stands for
    path: str | None = None

    @property
    def positions(self) -> int:
        return int(self.top_logp.shape[0])

    @property
    def k(self) -> int:
        return int(self.top_logp.shape[1])

    @property
    def contexts(self) -> int:
        return int(self.context_offsets.shape[0] - 1)

    @property
    def mu(self) -> float:
        """Mean recorded full-vocabulary entropy over positions (nats)."""
        return float(np.mean(self.entropy))

    @property
    def mu2(self) -> float:
        """Mean recorded full-vocabulary second log-moment over positions."""
        return float(np.mean(self.log_moment2))

    def context_ids(self, c: int) -> np.ndarray:
        """Token ids of context c (prompt then answer)."""
        return self.context_tokens[self.context_offsets[c]:self.context_offsets[c + 1]]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "schema_version": np.array(SCHEMA_VERSION, dtype=np.int64),
            "format": np.array(FORMAT),
            "meta": np.array(json.dumps(self.meta, sort_keys=True, allow_nan=False)),
            "top_logp": self.top_logp, "top_ids": self.top_ids, "entropy": self.entropy,
            "log_moment2": self.log_moment2, "tail_mass": self.tail_mass, "taken": self.taken,
            "taken_logp": self.taken_logp, "context": self.context, "offset": self.offset,
            "context_tokens": self.context_tokens, "context_offsets": self.context_offsets,
            "prompt_lengths": self.prompt_lengths,
        }
        out.update(self.brackets)
        if self.token_strings is not None:
            out["token_strings"] = self.token_strings
        return out


def id_dtype(vocab_size: int):
    """The smallest integer dtype that holds every token id (uint16 for vocabularies up to 65,536)."""
    return np.uint16 if vocab_size <= 1 << 16 else np.int32


def make_trace(*, meta: dict, where: str = "trace", **fields) -> Trace:
    """Build and validate a trace from arrays (the fields of the module docstring, less the three header
    fields). Raises BrwError naming ``where`` on any defect."""
    arrays = dict(fields)
    arrays["schema_version"] = np.array(SCHEMA_VERSION, dtype=np.int64)
    arrays["format"] = np.array(FORMAT)
    try:
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise BrwError(f"{where}: metadata is not plain JSON: {e}") from None
    return _validate(arrays, where)


# --------------------------------------------------------------------------------------------------------
# Writing.


def save_trace(trace: Trace, path) -> Path:
    """Write ``trace`` to ``path`` (.npz, compressed) whole or not at all: a temporary file beside it, then a
    rename. The trace is validated again first, so a bad trace leaves nothing on disk."""
    path = Path(path)
    arrays = trace.arrays()
    _validate(dict(arrays), str(path))
    if path.suffix != ".npz":
        raise BrwError(f"trace file {path} must end in .npz")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise BrwError(f"cannot write trace {path}: folder {directory} does not exist")
    write_npz(path, arrays)
    return path


# --------------------------------------------------------------------------------------------------------
# Reading.


def resolve_trace(name_or_path) -> Path:
    """A bundled short name (``code``, ``math``, ``chat``) or a path, as an existing file's path."""
    s = str(name_or_path)
    if s in BUNDLED:
        p = DATA_DIR / BUNDLED[s]
        if not p.is_file():
            raise BrwError(f"bundled trace {s!r} is missing from this installation ({p}); reinstall brw or "
                           f"regenerate it with sims/record_traces.py")
        return p
    p = Path(s).expanduser()
    if not p.exists():
        names = ", ".join(sorted(BUNDLED))
        raise BrwError(f"trace file {s} does not exist (bundled traces: {names})")
    if not p.is_file():
        raise BrwError(f"trace {s} is not a file")
    return p


def load_trace(name_or_path) -> Trace:
    """Read and validate a trace file (or a bundled short name). Raises one BrwError on any defect; nothing
    is half-loaded."""
    path = resolve_trace(name_or_path)
    arrays = _read_archive(path)
    trace = _validate(arrays, str(path))
    trace.path = str(path)
    return trace


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every member of the .npz as an array, never unpickling: each .npy header is read and checked (no object
    dtype, a size the member can hold) before its data are."""
    where = f"trace {path}"
    try:
        zf = zipfile.ZipFile(path)
    except Exception as e:  # any failure to parse the bytes (BadZipFile, NotImplementedError for odd versions...)
        raise BrwError(f"{where}: not a readable .npz archive (truncated or corrupt): {_short(e)}") from None
    arrays: dict[str, np.ndarray] = {}
    with zf:
        try:
            infos = zf.infolist()
        except Exception as e:  # pragma: no cover - infolist is read at open
            raise BrwError(f"{where}: corrupt archive directory: {_short(e)}") from None
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise BrwError(f"{where}: archive member {name!r} is not a .npy array; not a brw trace")
            key = name[:-4]
            if key in arrays:
                raise BrwError(f"{where}: field {key!r} appears twice in the archive")
            if info.file_size > MAX_MEMBER_BYTES:
                raise BrwError(f"{where}: field {key!r} claims {info.file_size} bytes, more than the "
                               f"{MAX_MEMBER_BYTES} a trace field may hold; the file is corrupt")
            arrays[key] = _read_member(zf, info, key, where)
    return arrays


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str) -> np.ndarray:
    fmt = np.lib.format
    # Decoding bytes can fail in many ways (zlib, CRC, struct, header parsing, short reads); every one of them
    # means the same thing here: the archive is corrupt. Checks on the decoded arrays come later, explicitly.
    try:
        with zf.open(info) as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f"unknown .npy version {version}")
            if dtype.hasobject:
                raise _Pickled()
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            if nbytes > info.file_size:
                raise ValueError(f"header claims {nbytes} bytes but the member holds {info.file_size}")
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise ValueError("short read")
            arr = np.frombuffer(data, dtype=dtype, count=count)
            arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
            return arr.copy()
    except _Pickled:
        raise BrwError(f"{where}: field {key!r} holds pickled Python objects; brw never unpickles, so save "
                       f"plain numeric or string arrays") from None
    except Exception as e:
        raise BrwError(f"{where}: field {key!r} cannot be read; the archive is truncated or corrupt "
                       f"({_short(e)})") from None


class _Pickled(Exception):
    pass


def _short(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return text if len(text) < 160 else text[:157] + "..."


# --------------------------------------------------------------------------------------------------------
# Validation.


def _validate(arrays: dict, where: str) -> Trace:
    # Hostile values (1e300, huge ids) may overflow in the feasibility arithmetic; the checks still fail them.
    with np.errstate(all="ignore"):
        return _validate_arrays(arrays, where)


def _validate_arrays(arrays: dict, where: str) -> Trace:
    w = where if where.startswith("trace") else f"trace {where}"

    def err(fieldname, msg, row=None):
        at = f"field {fieldname!r}" + (f" row {row}" if row is not None else "")
        return BrwError(f"{w}: {at}: {msg}")

    if "schema_version" not in arrays:
        raise BrwError(f"{w}: not a brw trace (no 'schema_version' field)")
    sv = arrays["schema_version"]
    if not isinstance(sv, np.ndarray) or sv.shape != () or sv.dtype.kind not in "iu":
        raise err("schema_version", "must be a single integer")
    if int(sv) != SCHEMA_VERSION:
        raise err("schema_version", f"schema version {int(sv)} is not supported: this brw reads version "
                                    f"{SCHEMA_VERSION}; upgrade brw or re-record the trace")
    missing = [f for f in REQUIRED if f not in arrays]
    if missing:
        raise BrwError(f"{w}: missing field(s) {', '.join(missing)}; not a complete brw trace")

    def text(fieldname):
        a = arrays[fieldname]
        if not isinstance(a, np.ndarray) or a.shape != () or a.dtype.kind != "U":
            raise err(fieldname, "must be a single string")
        return str(a)

    if text("format") != FORMAT:
        raise err("format", f"is {text('format')!r}, not {FORMAT!r}")
    try:
        meta = json.loads(text("meta"))
    except ValueError as e:
        raise err("meta", f"is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise err("meta", "must be a JSON object")

    def num(fieldname, kinds, ndim):
        a = arrays[fieldname]
        if not isinstance(a, np.ndarray):
            raise err(fieldname, "is not an array")
        if a.dtype.kind not in kinds:
            want = "floating-point" if kinds == "f" else "integer"
            raise err(fieldname, f"must be {want}, got dtype {a.dtype}")
        if a.ndim != ndim:
            raise err(fieldname, f"must have {ndim} dimension(s), got shape {a.shape}")
        return a

    top = num("top_logp", "f", 2)
    n, k = top.shape
    if n == 0 or k == 0:
        raise err("top_logp", f"has shape {top.shape}: a trace needs at least one row and one top entry")
    ids = num("top_ids", "iu", 2)
    if ids.shape != top.shape:
        raise err("top_ids", f"has shape {ids.shape} but 'top_logp' has shape {top.shape}")
    rows = {}
    for f in _FLOAT_ROWS + tuple(b for b in _BRACKETS if b in arrays):
        rows[f] = num(f, "f", 1).astype(np.float64)
    for f in _INT_ROWS:
        rows[f] = num(f, "iu", 1)
    for f, a in rows.items():
        if a.shape[0] != n:
            raise err(f, f"has {a.shape[0]} rows but 'top_logp' has {n}")
    present = [b for b in _BRACKETS if b in arrays]
    if present and len(present) != len(_BRACKETS):
        raise err(present[0], f"bracket fields come as a set of four ({', '.join(_BRACKETS)})")

    # Values: finite, signs, order.
    for f, a in [("top_logp", top)] + [(f, rows[f]) for f in _FLOAT_ROWS + tuple(present)]:
        bad = ~np.isfinite(a)
        if bad.any():
            r = int(np.argwhere(bad)[0][0])
            raise err(f, "NaN or infinite value", r)
    topd = top.astype(np.float64)
    if (topd > 0).any():
        r, c = (int(x) for x in np.argwhere(topd > 0)[0])
        raise err("top_logp", f"log-probability {float(topd[r, c])!r} (column {c}) is above 0", r)
    if k > 1:
        unsorted = topd[:, 1:] > topd[:, :-1]
        if unsorted.any():
            r, c = (int(x) for x in np.argwhere(unsorted)[0])
            raise err("top_logp", f"top-k not sorted in decreasing order (column {c + 1} = {float(topd[r, c + 1])!r} > "
                                  f"column {c} = {float(topd[r, c])!r})", r)
    for f in ("entropy", "log_moment2", "tail_mass") + tuple(present):
        if (rows[f] < 0).any():
            r = int(np.argmax(rows[f] < 0))
            raise err(f, f"value {float(rows[f][r])!r} is negative", r)
    if (rows["taken_logp"] > 0).any():
        r = int(np.argmax(rows["taken_logp"] > 0))
        raise err("taken_logp", f"log-probability {float(rows['taken_logp'][r])!r} is above 0", r)

    # Mass: top-k plus tail is 1.
    top_mass = np.exp(topd).sum(axis=1)
    total = top_mass + rows["tail_mass"]
    over = total > 1 + MASS_TOL
    if over.any():
        r = int(np.argmax(over))
        raise err("tail_mass", f"top-k mass {top_mass[r]:.9g} plus tail mass {rows['tail_mass'][r]:.9g} = "
                               f"{total[r]:.9g} exceeds 1 by more than {MASS_TOL:g}", r)
    under = total < 1 - MASS_TOL
    if under.any():
        r = int(np.argmax(under))
        raise err("tail_mass", f"top-k mass {top_mass[r]:.9g} plus tail mass {rows['tail_mass'][r]:.9g} = "
                               f"{total[r]:.9g} falls short of 1 by more than {MASS_TOL:g}", r)

    vocab = meta.get("vocab_size")
    if vocab is not None and (not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < k):
        raise err("meta", f"vocab_size must be a whole number >= k = {k}, got {vocab!r}")

    # Moments the top-k and a tail can produce.
    h_lo, h_hi, s_lo, s_hi = tail_bounds(topd, vocab)
    h_top = -(np.exp(topd) * topd).sum(axis=1)
    s_top = (np.exp(topd) * topd**2).sum(axis=1)
    # Cauchy-Schwarz on the tail: s >= h^2 / m for the row's own tail entropy h.
    m_top = np.clip(1.0 - top_mass, 0.0, None)
    h_tail = np.clip(rows["entropy"] - h_top, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_lo = np.maximum(s_lo, np.where(m_top > 0, h_tail**2 / np.where(m_top > 0, m_top, 1.0), 0.0))
    for f, base, lo, hi, unit in (("entropy", h_top, h_lo, h_hi, "nats"),
                                  ("log_moment2", s_top, s_lo, s_hi, "nats^2")):
        vals = rows[f]
        bad = (vals < base + lo - MOMENT_TOL) | (vals > base + hi + MOMENT_TOL)
        if bad.any():
            r = int(np.argmax(bad))
            what = "entropy" if f == "entropy" else "second log-moment"
            raise err(f, f"{what} {vals[r]:.9g} {unit} cannot come from this top-k and tail: with top-k "
                         f"mass {top_mass[r]:.9g} it must lie in [{base[r] + lo[r]:.9g}, {base[r] + hi[r]:.9g}] "
                         f"(within {MOMENT_TOL:g})", r)
    if present:
        for name in ("entropy", "log_moment2"):
            lo, hi = rows[name + "_lo"], rows[name + "_hi"]
            bad = (lo > hi) | (rows[name] < lo - MOMENT_TOL) | (rows[name] > hi + MOMENT_TOL)
            if bad.any():
                r = int(np.argmax(bad))
                raise err(name, f"value {float(rows[name][r])!r} lies outside its bracket "
                                f"[{float(lo[r])!r}, {float(hi[r])!r}]", r)

    # Ids and contexts.
    tstr = arrays.get("token_strings")
    vocab_ids = vocab  # ids must lie below this
    if tstr is not None:
        if not isinstance(tstr, np.ndarray) or tstr.ndim != 1 or tstr.dtype.kind != "U":
            raise err("token_strings", "must be a 1-D array of strings")
        if vocab is not None and tstr.shape[0] > vocab:
            raise err("token_strings", f"lists {tstr.shape[0]} tokens, more than vocab_size {vocab}")
        vocab_ids = tstr.shape[0]
    for f, a in (("top_ids", ids), ("taken", rows["taken"])):
        bad = (a < 0) | ((a >= vocab_ids) if vocab_ids is not None else False)
        if bad.any():
            r = int(np.argwhere(bad)[0][0])
            top_id = "" if vocab_ids is None else vocab_ids - 1
            raise err(f, f"token id {int(a.flat[np.flatnonzero(bad.ravel())[0]])} outside the vocabulary "
                         f"0..{top_id}", r)
    if k > 1:
        srt = np.sort(ids.astype(np.int64), axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if dup.any():
            raise err("top_ids", "the same token id appears twice in the top-k", int(np.argmax(dup)))
    toks = num("context_tokens", "iu", 1)
    offs = num("context_offsets", "iu", 1).astype(np.int64)
    plen = num("prompt_lengths", "iu", 1).astype(np.int64)
    if (toks < 0).any() or (vocab_ids is not None and (toks >= vocab_ids).any()):
        raise err("context_tokens", "token id outside the vocabulary")
    if offs.shape[0] < 2 or offs[0] != 0 or offs[-1] != toks.shape[0] or (np.diff(offs) < 0).any():
        raise err("context_offsets", f"must rise from 0 to len(context_tokens) = {toks.shape[0]} with one "
                                     f"entry per context plus one")
    nctx = offs.shape[0] - 1
    if plen.shape[0] != nctx:
        raise err("prompt_lengths", f"has {plen.shape[0]} entries for {nctx} contexts")
    if (plen < 0).any() or (plen > np.diff(offs)).any():
        c = int(np.argmax((plen < 0) | (plen > np.diff(offs))))
        raise err("prompt_lengths", f"context {c}: prompt longer than the context", c)
    ctx = rows["context"].astype(np.int64)
    off = rows["offset"].astype(np.int64)
    bad = (ctx < 0) | (ctx >= nctx)
    if bad.any():
        r = int(np.argmax(bad))
        raise err("context", f"context index {ctx[r]} outside 0..{nctx - 1}", r)
    lens = np.diff(offs)[ctx]
    bad = (off < 1) | (off >= lens)
    if bad.any():
        r = int(np.argmax(bad))
        raise err("offset", f"offset {off[r]} outside 1..{lens[r] - 1} of context {ctx[r]}", r)
    want = toks[offs[ctx] + off].astype(np.int64)
    bad = want != rows["taken"].astype(np.int64)
    if bad.any():
        r = int(np.argmax(bad))
        raise err("taken", f"token {int(rows['taken'][r])} differs from the context's token {int(want[r])} at "
                           f"offset {off[r]}", r)
    key = ctx * (int(lens.max()) + 1) + off
    if np.unique(key).shape[0] != n:
        _, first = np.unique(key, return_index=True)
        r = int(np.setdiff1d(np.arange(n), first)[0])
        raise err("offset", f"position (context {ctx[r]}, offset {off[r]}) recorded twice", r)

    return Trace(top_logp=top, top_ids=ids, entropy=rows["entropy"], log_moment2=rows["log_moment2"],
                 tail_mass=rows["tail_mass"], taken=rows["taken"], taken_logp=rows["taken_logp"],
                 context=rows["context"], offset=rows["offset"], context_tokens=toks,
                 context_offsets=arrays["context_offsets"], prompt_lengths=arrays["prompt_lengths"], meta=meta,
                 brackets={b: rows[b] for b in present}, token_strings=tstr)


def tail_bounds(top_logp: np.ndarray, vocab_size: int | None = None):
    """Per row, the range of the tail's contributions to the entropy and the second log-moment, given the
    top-k (sorted log-probabilities, shape (N, k)): the tail carries m = 1 - sum(top-k) in tokens each at most
    as probable as the k-th (q <= p_k), at most ``vocab_size - k`` of them (unbounded when None).

    Returns (h_lo, h_hi, s_lo, s_hi), each (N,):
    - h = -sum q log q. Concave, so its minimum is at a vertex of {0 <= q <= p_k, sum q = m}: floor(m/p_k)
      tokens at p_k and one remainder; its maximum is m spread evenly over vocab_size - k tokens.
    - s = sum q (log q)^2. q (log q)^2 is concave on [0, 1/e], so when p_k <= 1/e (always when k >= 3) the
      same two configurations bound it exactly. When p_k > 1/e the lower bound is Cauchy-Schwarz, s >= h^2/m
      >= h_lo^2/m, and the even spread still bounds it above (the concave envelope of q (log q)^2 agrees with it
      near 0, where m/(V - k) lies).
    """
    top = np.asarray(top_logp, dtype=np.float64)
    n = top.shape[0]
    lpk = top[:, -1]
    pk = np.exp(lpk)
    m = np.clip(1.0 - np.exp(top).sum(axis=1), 0.0, None)
    full = np.floor(m / pk)
    rem = np.clip(m - full * pk, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        lrem = np.where(rem > 0, np.log(np.where(rem > 0, rem, 1.0)), 0.0)
        h_lo = full * pk * (-lpk) - rem * lrem
        s_conc = full * pk * lpk**2 + rem * lrem**2
        cs = np.where(m > 0, h_lo**2 / np.where(m > 0, m, 1.0), 0.0)
    s_lo = np.where(pk <= math.exp(-1), s_conc, cs)
    if vocab_size is None:
        h_hi = np.full(n, np.inf)
        s_hi = np.full(n, np.inf)
    else:
        nt = max(vocab_size - top.shape[1], 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lq = np.where(m > 0, np.log(np.where(m > 0, m, 1.0) / max(nt, 1)), 0.0)
        # No room for a tail (V = k): its contributions are 0, and the mass check bounds what rounding left.
        h_hi = np.where(m > 0, -m * lq, 0.0) if nt > 0 else np.zeros(n)
        s_hi = np.where(m > 0, m * lq**2, 0.0) if nt > 0 else np.zeros(n)
        # A tail spread evenly cannot put more than p_k on a token: a row whose m/(V-k) > p_k has no room.
        h_hi = np.where((m > 0) & (np.exp(lq) > pk * (1 + 1e-9)), -np.inf, h_hi)
        s_hi = np.where((m > 0) & (np.exp(lq) > pk * (1 + 1e-9)), -np.inf, s_hi)
    return h_lo, h_hi, s_lo, s_hi


# --------------------------------------------------------------------------------------------------------
# The tail of a row, as the kernels' tail groups.

#: Tail groups per row (see fit_tails).
TAIL_GROUPS = 3


def fit_tails(top_logp: np.ndarray, entropy: np.ndarray, log_moment2: np.ndarray):
    """Tail groups that give each row its recorded entropy and second log-moment.

    A row's top-k leaves mass m = 1 - sum exp(top_logp) (computed from the stored top-k, so every law vector
    sums to 1) whose contributions to H and to sum p (log p)^2 must be h = H - H_top and s = M2 - M2_top. The
    tail is ``TAIL_GROUPS`` = 3 groups of n_g equal atoms of probability q_g = e^{-x_g}, with integer counts
    n_g and every q_g <= p_k (x_g >= -log p_k). Matching (m, h, s) exactly takes three continuous unknowns once
    the counts are integers (two groups would leave only two), so: a three-point law of surprisal with mean
    h/m and variance s/m - (h/m)^2 is laid out, its counts m pi_g e^{x_g} rounded to integers, and Newton's
    method (on log(x_g + log p_k), so no atom can rise above p_k) moves the three positions back onto the three
    equations, to round-off (|error| <= 1e-12 relative, flagged in ``exact``). Counts off by a few atoms are
    retried (a narrow tail pins its total count), and a single block of equal atoms is tried as one group.

    How exact, measured: on the bundled traces 11,310 of 11,323 rows are exact; the 13 others have tails below
    ~2.4e-6, the size of the float32 rounding of their stored top-k (about p |log p| 6e-8 per entry), which
    leaves the stored mass inconsistent with the recorded moments: 11 admit no tail at all (variance < 0 or
    mean surprisal below the bound), 2 none that this search finds. There the nearest fit is off by at most
    9e-8 nats (entropy) and 1.3e-6 (second moment) on the row, and the law's mu and mu2 differ from the
    recorded means by at most 1e-11 and 7e-10. Synthetic tails whose mass is spread over >= 1000 atoms
    (m^2 / sum n q^2) with a surprisal spread > 0.1 nats are matched exactly (tests/test_traces.py); tails of a handful of tokens or of nearly equal
    atoms may only be matched approximately (flagged; ``brw trace-info`` reports the share and the error).

    Returns (tails, exact, err_h, err_s): tails (N, 3, 2) of (log q, n) sorted by decreasing q (count 0 for
    an empty group); exact (N,) bool; err_h, err_s (N,) the law's row value minus the recorded one.
    """
    top = np.asarray(top_logp, dtype=np.float64)
    H = np.asarray(entropy, dtype=np.float64)
    M2 = np.asarray(log_moment2, dtype=np.float64)
    n = top.shape[0]
    p = np.exp(top)
    m = 1.0 - p.sum(axis=1)
    h = H + (p * top).sum(axis=1)
    s = M2 - (p * top**2).sum(axis=1)
    xk = -top[:, -1]

    tails = np.zeros((n, TAIL_GROUPS, 2))
    tails[:, :, 0] = -np.inf
    has = m > 1e-300
    idx = np.flatnonzero(has)
    if idx.size:
        x, cnt = _fit_rows(m[idx], h[idx], s[idx], xk[idx])
        order = np.argsort(x, axis=1)
        x = np.take_along_axis(x, order, axis=1)
        cnt = np.take_along_axis(cnt, order, axis=1)
        tails[idx, :, 0] = np.where(cnt > 0, -x, -np.inf)
        tails[idx, :, 1] = cnt
    lh, ls = tail_moments(tails)
    err_h = lh - h
    err_s = ls - s
    exact = (np.abs(err_h) <= 1e-12 * np.maximum(1.0, np.abs(H))) & \
            (np.abs(err_s) <= 1e-12 * np.maximum(1.0, np.abs(M2)))
    return tails, exact, err_h, err_s


def tail_moments(tails: np.ndarray):
    """Per row, the tail groups' contributions (h, s) to the entropy and the second log-moment."""
    lq = tails[:, :, 0]
    cnt = tails[:, :, 1]
    w = np.where(cnt > 0, cnt * np.exp(np.where(cnt > 0, lq, 0.0)), 0.0)
    x = np.where(cnt > 0, -lq, 0.0)
    return (w * x).sum(axis=1), (w * x * x).sum(axis=1)


def _fit_rows(m, h, s, xk):
    """Positions x (R, 3) and integer counts (R, 3) for tails of mass m, surprisal mass h, second moment s,
    every position >= xk. See fit_tails."""
    r = m.shape[0]
    a = h / m
    # Each atom has q <= p_k and, its count being >= 1, q <= m: positions start at xlo.
    xlo = np.maximum(xk, -np.log(m))
    # Targets no tail can reach (float32 rounding of the stored top-k can exceed a tail below ~1e-7): only the
    # nearest point is sought for them.
    feasible = (a > xlo) & (s / m - a * a > 0)
    a = np.maximum(a, xlo)
    v = np.maximum(s / m - a * a, 0.0)
    sd = np.sqrt(v)
    d = a - xlo  # room below the mean

    best_x = best_c = None
    best_err = np.full(r, np.inf)

    def attempt(x_start, cnt, rows, iters=80):
        """Newton from x_start with counts cnt on the given rows: (x, relative error)."""
        x = _newton(x_start.copy(), cnt, m[rows], h[rows], s[rows], xk[rows], iters)
        w = cnt * np.exp(-x)
        err = (np.abs((w.sum(1) - m[rows]) / m[rows])
               + np.abs(((w * x).sum(1) - h[rows]) / np.maximum(h[rows], 1e-300))
               + np.abs(((w * x * x).sum(1) - s[rows]) / np.maximum(s[rows], 1e-300)))
        return x, np.where(np.isfinite(err), err, np.inf)

    first = None
    # Start layouts: weights (1/4, 1/2, 1/4) at a -+ sqrt(2 v) when there is room below the mean, else a lower
    # atom at a - d' (d' < d) balanced by an upper one; a second, lopsided layout for rows the first misses.
    for frac, pi1 in ((0.9, 0.25), (0.5, 0.1), (0.99, 0.45)):
        t = np.sqrt(v / (2 * pi1))  # pi1 t^2 * 2 = v for the symmetric layout
        dl = np.minimum(t, frac * d)
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(dl > 0, v / (pi1 * np.where(dl > 0, dl, 1.0)) - dl, t)  # pi1 dl (dl + up) = v
            pi3 = np.where(up > 0, pi1 * dl / np.where(up > 0, up, 1.0), 0.0)
        pi3 = np.clip(pi3, 0.0, 1.0 - pi1 - 1e-6)
        pi2 = 1.0 - pi1 - pi3
        x0 = np.stack([a - dl, a, a + up], axis=1)
        w0 = m[:, None] * np.stack([np.full(r, pi1), pi2, pi3], axis=1)
        with np.errstate(over="ignore"):
            c0 = w0 * np.exp(x0)
        cnt = np.maximum(np.rint(c0), 1.0)
        cnt = np.minimum(cnt, 2.0**62)
        # Keep each group's weight: shift its position by log(n / c) (exact mass from the start).
        with np.errstate(divide="ignore", invalid="ignore"):
            x = x0 + np.log(cnt / np.where(c0 > 0, c0, 1.0))
        x = np.where(np.isfinite(x), x, x0)
        if first is None:
            first = (x.copy(), cnt.copy())
        x, err = attempt(x, cnt, np.arange(r))
        if best_x is None:
            best_x, best_c, best_err = x, cnt, err
        else:
            better = err < best_err
            best_x = np.where(better[:, None], x, best_x)
            best_c = np.where(better[:, None], cnt, best_c)
            best_err = np.where(better, err, best_err)
        if (best_err < 1e-13).all():
            break
    # A tail of narrow spread pins its total count to within a few atoms (sum n_g e^{-x_g} = m with every
    # x_g near the mean): when the rounded counts miss that window, nudge them by a few atoms.
    x_first, c_first = first
    nudges = [(d1, d2, d3) for d2 in (1, -1, 2, -2, 3, -3, 5, -5, 8, -8)
              for d1, d3 in ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1))]
    for nudge in nudges:
        rows = np.flatnonzero((best_err >= 1e-13) & feasible)
        if rows.size == 0:
            break
        cnt = np.maximum(c_first[rows] + np.array(nudge, dtype=np.float64), 1.0)
        x, err = attempt(x_first[rows], cnt, rows, iters=30)
        better = err < best_err[rows]
        best_x[rows[better]] = x[better]
        best_c[rows[better]] = cnt[better]
        best_err[rows[better]] = err[better]
    # One group of n = round(m e^a) atoms at q = m / n: exact for a tail that is one block of equal atoms
    # (zero variance, where three distinct positions cannot be found), and the fallback when nothing else fits.
    with np.errstate(over="ignore"):
        n1 = np.clip(np.rint(m * np.exp(a)), 1.0, 2.0**62)
    x1 = np.log(n1 / m)
    x = np.stack([x1, x1, x1], axis=1)
    cnt = np.stack([n1, np.zeros(r), np.zeros(r)], axis=1)
    ok = x1 >= xk
    err = (np.abs(m * x1 - h) / np.maximum(h, 1e-300) + np.abs(m * x1 * x1 - s) / np.maximum(s, 1e-300))
    better = ok & (err < best_err)
    best_x = np.where(better[:, None], x, best_x)
    best_c = np.where(better[:, None], cnt, best_c)
    return best_x, best_c


def _newton(x, cnt, m, h, s, xk, iters: int = 80):
    """Solve sum_g n_g e^{-x_g} x_g^j = (m, h, s)_j, j = 0, 1, 2, for x (R, 3) with every x_g > xk, batched
    over rows. Newton runs on y_g = log(x_g - xk), so no step can carry an atom above p_k; damped."""
    target = np.stack([m, h, s], axis=1)
    scale = np.stack([m, np.maximum(h, 1e-300), np.maximum(s, 1e-300)], axis=1)
    xk = xk[:, None]
    y = np.log(np.maximum(x - xk, 1e-12 * np.maximum(1.0, np.abs(xk))))
    active = np.ones(x.shape[0], dtype=bool)
    for _ in range(iters):
        if not active.any():
            break
        ya = y[active]
        xka = xk[active]
        d = np.exp(ya)
        xa = xka + d
        ca = cnt[active]
        w = ca * np.exp(-xa)
        F = np.stack([w.sum(1), (w * xa).sum(1), (w * xa * xa).sum(1)], axis=1) - target[active]
        Fs = F / scale[active]
        res = np.abs(Fs).max(axis=1)
        done = res < 1e-15
        # d/dx_g of w_g x_g^j = w_g (j x_g^(j-1) - x_g^j); times dx_g/dy_g = x_g - xk.
        J = np.stack([-w, w * (1 - xa), w * (2 * xa - xa * xa)], axis=1) * d[:, None, :] / scale[active][:, :, None]
        with np.errstate(all="ignore"):
            try:
                step = np.linalg.solve(J, -Fs[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = np.stack([np.linalg.lstsq(Ji, -fi, rcond=None)[0] for Ji, fi in zip(J, Fs)])
        step = np.where(np.isfinite(step), step, 0.0)
        big = np.abs(step).max(axis=1, keepdims=True)
        step = step * np.minimum(1.0, 2.0 / np.maximum(big, 1e-300))
        step[done] = 0.0
        y[active] = ya + step
        ai = np.flatnonzero(active)
        active[ai[done | (np.abs(step).max(axis=1) < 1e-15)]] = False
    return xk + np.exp(y)


# --------------------------------------------------------------------------------------------------------
# The trace law.


@lru_cache(maxsize=16)
def _law_arrays(path: str, mtime_ns: int, size: int):
    trace = load_trace(path)
    table = np.ascontiguousarray(trace.top_logp, dtype=np.float64)
    tails, exact, err_h, err_s = fit_tails(table, trace.entropy, trace.log_moment2)
    return trace, table, tails, exact, err_h, err_s


@register_law
@dataclass(frozen=True, eq=False)
class TraceLaw(Law):
    """The empirical law of a trace's rows: each node draws a recorded row uniformly; its children are the
    row's top-k tokens followed by the tail groups of :func:`fit_tails`, so ``mu`` and ``mu2`` (computed from
    the law's own vectors) equal the trace's recorded full-vocabulary means.

    ``source`` is a bundled short name (``code``, ``math``, ``chat``) or a path; ``str(law)`` prints it back as
    given. A file that happens to be named like a bundled trace is reached as ``trace:./code``."""

    source: str
    name: ClassVar[str] = "trace"

    def __post_init__(self):
        path = resolve_trace(self.source)
        st = path.stat()
        trace, table, tails, exact, err_h, err_s = _law_arrays(str(path.resolve()), st.st_mtime_ns, st.st_size)
        object.__setattr__(self, "trace", trace)
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_tails", tails)
        object.__setattr__(self, "tail_exact", exact)
        object.__setattr__(self, "tail_error", (err_h, err_s))

    def __eq__(self, other):
        return isinstance(other, TraceLaw) and self.source == other.source

    def __hash__(self):
        return hash(("trace", self.source))

    @classmethod
    def from_spec_body(cls, body, spec):
        body = body.strip()
        if not body:
            names = ", ".join(sorted(BUNDLED))
            raise BrwError(f"law spec {spec!r} needs a trace: trace:PATH or one of trace:{{{names}}}")
        return cls(body)

    @property
    def spec(self):
        return f"trace:{self.source}"

    @property
    def rows(self) -> int:
        return self._table.shape[0]

    def _row_moments(self):
        p = np.exp(self._table)
        th, ts = tail_moments(self._tails)
        return -(p * self._table).sum(axis=1) + th, (p * self._table**2).sum(axis=1) + ts

    @property
    def mu(self):
        return float(np.mean(self._row_moments()[0]))

    @property
    def mu2(self):
        return float(np.mean(self._row_moments()[1]))

    def _atoms(self):
        """(log p, log count) of every atom of every row, shape (rows, k + groups)."""
        cnt = self._tails[:, :, 1]
        lq = np.where(cnt > 0, self._tails[:, :, 0], 0.0)
        with np.errstate(divide="ignore"):
            lc = np.where(cnt > 0, np.log(np.where(cnt > 0, cnt, 1.0)), -np.inf)
        lp = np.concatenate([self._table, lq], axis=1)
        lcount = np.concatenate([np.zeros_like(self._table), lc], axis=1)
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

    def kernel_law(self):
        return KernelLaw(K.KIND_TABLE, self._table, np.zeros(4), self._table.shape[1], self._tails)


# --------------------------------------------------------------------------------------------------------
# Summaries (brw trace-info).


def bootstrap_means(values: np.ndarray, context: np.ndarray, replicates: int = 1000, seed: int = 0,
                    level: float = 0.95):
    """Percentile bootstrap interval for the mean over positions of ``values``, resampling whole contexts
    (positions of one context are not independent). Returns (lo, hi)."""
    ctx = np.asarray(context, dtype=np.int64)
    uniq, inv = np.unique(ctx, return_inverse=True)
    c = uniq.shape[0]
    sums = np.bincount(inv, weights=values, minlength=c)
    counts = np.bincount(inv, minlength=c).astype(np.float64)
    if c < 2:
        m = float(sums.sum() / counts.sum())
        return m, m
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    idx = rng.integers(0, c, size=(replicates, c))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


def entropy_histogram(entropy: np.ndarray, width: float = 0.5):
    """(edges, counts) of the entropies in bins of ``width`` nats from 0."""
    top = max(float(np.max(entropy)), width)
    nb = int(math.ceil(top / width + 1e-12))
    edges = np.arange(nb + 1) * width
    counts, _ = np.histogram(entropy, bins=edges)
    return edges, counts


def trace_summary(trace: Trace, *, bootstrap: int = 1000, seed: int = 0) -> dict:
    """What ``brw trace-info`` reports, as a JSON-ready dict."""
    top1 = np.exp(trace.top_logp[:, 0].astype(np.float64))
    edges, counts = entropy_histogram(trace.entropy)
    meta = trace.meta
    d = {
        "file": trace.path, "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "model": meta.get("model"), "mode": meta.get("mode"), "temperature": meta.get("temperature"),
        "vocab_size": meta.get("vocab_size"), "k": trace.k, "positions": trace.positions,
        "contexts": trace.contexts,
        "mu": trace.mu, "mu_ci": list(bootstrap_means(trace.entropy, trace.context, bootstrap, seed)),
        "mu2": trace.mu2, "mu2_ci": list(bootstrap_means(trace.log_moment2, trace.context, bootstrap, seed)),
        "ci_level": 0.95, "bootstrap": bootstrap, "seed": seed,
        "top1_above_0_9": float(np.mean(top1 > 0.9)),
        "mean_tail_mass": float(np.mean(trace.tail_mass)),
        "mean_nll_taken": float(-np.mean(trace.taken_logp)),
        "entropy_hist_edges": edges.tolist(), "entropy_hist_counts": counts.tolist(),
        "meta": meta,
    }
    if trace.brackets:
        b = trace.brackets
        d["mu_bracket"] = [float(np.mean(b["entropy_lo"])), float(np.mean(b["entropy_hi"]))]
        d["mu2_bracket"] = [float(np.mean(b["log_moment2_lo"])), float(np.mean(b["log_moment2_hi"]))]
    tails, exact, err_h, err_s = fit_tails(trace.top_logp, trace.entropy, trace.log_moment2)
    d["tail_groups"] = TAIL_GROUPS
    d["tail_exact_share"] = float(np.mean(exact))
    d["law_mu_minus_mu"] = float(np.mean(err_h))
    d["law_mu2_minus_mu2"] = float(np.mean(err_s))
    return d


def show_summary(d: dict) -> str:
    lines = [f"trace {d['file']}",
             f"  model {d['model']}  mode {d['mode']}  temperature {d['temperature']}  vocabulary {d['vocab_size']}"
             f"  top-k {d['k']}",
             f"  {d['positions']} positions in {d['contexts']} contexts",
             f"  mu  = {d['mu']:.4f} nats    95% CI [{d['mu_ci'][0]:.4f}, {d['mu_ci'][1]:.4f}] (bootstrap over "
             f"contexts, {d['bootstrap']} resamples)",
             f"  mu2 = {d['mu2']:.4f} nats^2  95% CI [{d['mu2_ci'][0]:.4f}, {d['mu2_ci'][1]:.4f}]"]
    if "mu_bracket" in d:
        lines.append(f"  bracket from the truncated top-k: mu in [{d['mu_bracket'][0]:.4f}, {d['mu_bracket'][1]:.4f}], "
                     f"mu2 in [{d['mu2_bracket'][0]:.4f}, {d['mu2_bracket'][1]:.4f}]")
    lines += [f"  top-1 probability > 0.9 at {100 * d['top1_above_0_9']:.1f}% of positions; mean tail mass beyond "
              f"the top {d['k']}: {d['mean_tail_mass']:.4f}; mean NLL of the taken token {d['mean_nll_taken']:.4f}",
              f"  trace law: tail as {d['tail_groups']} groups, exact on {100 * d['tail_exact_share']:.2f}% of rows; "
              f"law mu - mu = {d['law_mu_minus_mu']:.2e}, law mu2 - mu2 = {d['law_mu2_minus_mu2']:.2e}",
              "  entropy histogram (nats):"]
    counts = d["entropy_hist_counts"]
    edges = d["entropy_hist_edges"]
    peak = max(max(counts), 1)
    for i, c in enumerate(counts):
        bar = "#" * int(round(50 * c / peak))
        lines.append(f"  {edges[i]:5.1f}-{edges[i + 1]:<5.1f} {c:>7} {bar}")
    return "\n".join(lines)


def plot_summary(trace: Trace, d: dict, path) -> None:
    """Entropy histogram with the mean marked, as a figure file (PNG, PDF or SVG by extension)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(trace.entropy, bins=np.asarray(d["entropy_hist_edges"]), color="0.6", edgecolor="0.3")
    ax.axvline(d["mu"], color="C3", label=f"mu = {d['mu']:.3f} nats")
    ax.set_xlabel("entropy of the next-token distribution (nats)")
    ax.set_ylabel("positions")
    name = Path(d["file"]).name if d["file"] else "trace"
    ax.set_title(f"{name}: {d['positions']} positions, {d['contexts']} contexts", fontsize=10)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
