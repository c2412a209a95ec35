"""Verifier traces: recorded next-token distributions of a real model, in one file format.

A trace is a table of recorded positions. Each row is one next-token distribution p of the verifier: its top-k
log-probabilities and token ids, and statistics of the *whole* vocabulary computed exactly from the logits
(entropy, second log-moment, mass outside the top k). The ``trace:`` law (:mod:`brw.laws.trace`) resamples rows
(theory.md section 2: an empirical law D), with the mass beyond the top k represented, never dropped (see
:func:`brw.tailfit.fit_tails`).

File format (schema version 1): a NumPy ``.npz`` archive read member by member without pickle and validated
whole before anything is returned (:func:`load_trace`). Fields, N rows (positions), k top entries, C contexts:

=================  ===============  ====================================================================
field              dtype, shape     meaning
=================  ===============  ====================================================================
schema_version     int64, ()        1
format             str, ()          "brw-trace"
meta               str, ()          JSON object: model, model_sha256 or revision, dtype, device,
                                    temperature, mode ("sampled", "teacher-forced", "imported" or
                                    "greedy-branches"), prompt_source, brw_version, vocab_size, k, seed,
                                    ...; greedy branches add source, source_sha256, depth and per
                                    context branch_source_context and branch_offset
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
token each id stands for, when ids are not the model's own (imported traces). Moments at other temperatures
(``brw record --moments-at``), a set of three: ``moments_at`` (float64, (M,), increasing temperatures > 0, at
most ``MAX_MOMENTS``), ``entropy_at`` and ``log_moment2_at`` (float64, (N, M)): the full-vocabulary entropy and
second log-moment of each row's distribution tempered to moments_at[j] (p^(1/T) renormalised, p the recorded
row: softmax(logits / (temperature T))), computed from the same logits as the row. Files without them are
read as before. No other member is allowed.

Reading (one :class:`~brw.errors.BrwError` naming the file and the field): an unreadable, truncated or corrupt
archive; a member that is not a field of the format (refused by name, unread); pickled object arrays; a member
larger than its own .npy header declares, or larger than the trace's header and row count allow (N and k from
``top_logp``; at most N contexts, ``MAX_CONTEXT_TOKENS`` tokens each, ``vocab_size`` token strings), refused
before its data are read.

Validation (one BrwError naming the file, the field and the row), in named checks: the header (schema version,
format, metadata with a ``vocab_size`` in k..``MAX_VOCAB``, required fields); shapes and dtypes; values (NaN or
infinite values, log-probabilities above 0, an unsorted top-k, negative statistics); mass (top-k plus tail mass off
1 by more than ``MASS_TOL``); moments (an entropy or second log-moment that the top-k and a tail of ``tail_mass``
spread over the rest of the vocabulary, each tail token no more probable than the k-th, cannot produce, by more
than ``MOMENT_TOL``); ids outside the vocabulary or repeated; contexts (indices or offsets that point nowhere).
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.files import check_output, write_npz
from brw.tailfit import tail_bounds

__all__ = [
    "SCHEMA_VERSION", "FORMAT", "BRANCH_MODE", "MASS_TOL", "MOMENT_TOL", "BUNDLED", "DATA_DIR", "MAX_MOMENTS", "Trace",
    "id_dtype",
    "make_trace", "save_trace", "resolve_trace", "load_trace",
]

SCHEMA_VERSION = 1
FORMAT = "brw-trace"
#: The ``mode`` of a trace of greedy branches (``brw.real.recording.record_branches``).
BRANCH_MODE = "greedy-branches"
#: |sum of the top-k probabilities + tail_mass - 1| allowed. float32 top-k log-probabilities move each p_i by
#: at most p_i |log p_i| 6e-8, so a whole row by about H 6e-8; API log-probabilities are rounded more coarsely.
MASS_TOL = 1e-4
#: Slack (nats, and nats^2 for the second log-moment) allowed on the feasibility bounds of a row's entropy and
#: second log-moment, for the same rounding.
MOMENT_TOL = 1e-4

#: Short names of the bundled traces (``trace:code`` ...) and their files in brw/data: SmolLM2-135M-Instruct's
#: (the plain genre names) and Gemma 3 270M's (``gemma3-``), both recorded by sims/record_traces.py, and each
#: one's greedy branches (``-greedy``: the ``run:`` law's ``greedy=`` rows, :func:`brw.real.recording.record_branches`);
#: SmolLM2's answers to the same prompts sampled at T = 0.7 (``-t07``, and their greedy branches).
BUNDLED = {
    "code": "smollm2-code.npz",
    "math": "smollm2-math.npz",
    "chat": "smollm2-chat.npz",
    "gemma3-code": "gemma3-code.npz",
    "gemma3-math": "gemma3-math.npz",
    "gemma3-chat": "gemma3-chat.npz",
    "code-greedy": "smollm2-code-greedy.npz",
    "math-greedy": "smollm2-math-greedy.npz",
    "chat-greedy": "smollm2-chat-greedy.npz",
    "gemma3-code-greedy": "gemma3-code-greedy.npz",
    "gemma3-math-greedy": "gemma3-math-greedy.npz",
    "gemma3-chat-greedy": "gemma3-chat-greedy.npz",
    "code-t07": "smollm2-code-t07.npz",
    "math-t07": "smollm2-math-t07.npz",
    "chat-t07": "smollm2-chat-t07.npz",
    "code-t07-greedy": "smollm2-code-t07-greedy.npz",
    "math-t07-greedy": "smollm2-math-t07-greedy.npz",
    "chat-t07-greedy": "smollm2-chat-t07-greedy.npz",
}
DATA_DIR = Path(__file__).resolve().parent / "data"

_HEADER = ("schema_version", "format", "meta")
_FLOAT_ROWS = ("entropy", "log_moment2", "tail_mass", "taken_logp")
_BRACKETS = ("entropy_lo", "entropy_hi", "log_moment2_lo", "log_moment2_hi")
_INT_ROWS = ("taken", "context", "offset")
_MOMENTS = ("moments_at", "entropy_at", "log_moment2_at")
REQUIRED = (*_HEADER, "top_logp", "top_ids", *_FLOAT_ROWS, *_INT_ROWS,
            "context_tokens", "context_offsets", "prompt_lengths")
#: Every member a trace archive may hold.
FIELDS = (*REQUIRED, *_BRACKETS, "token_strings", *_MOMENTS)
#: What the float32 rounding of a stored top-k can move its entropy by (about H 6e-8 nats; H < 17 nats).
_H_ROUNDING = 1e-6
#: Most temperatures a trace stores moments at.
MAX_MOMENTS = 64
#: Largest archive member read (uncompressed bytes): a corrupt header cannot make the loader allocate more.
MAX_MEMBER_BYTES = 4 << 30
#: Most tokens one context (prompt + answer, or text window) may hold: longer than any model's context window.
MAX_CONTEXT_TOKENS = 1 << 21
#: Most characters of the metadata JSON, and of one token string.
MAX_META_CHARS = 1 << 20
MAX_TOKEN_CHARS = 1 << 10
#: Largest vocab_size: token ids are int32 beyond 65,536 tokens (and a size past a float's range is no count).
MAX_VOCAB = 1 << 31



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
    moments_at: np.ndarray | None = None  # temperatures (M,) with stored moments, or None
    entropy_at: np.ndarray | None = None  # (N, M)
    log_moment2_at: np.ndarray | None = None  # (N, M)

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

    def moments(self, T: float):
        """The stored full-vocabulary moments of every row tempered to T (``brw record --moments-at``).

        Parameters
        ----------
        T : float
            A temperature relative to the recorded rows (1: the recorded ``entropy`` and ``log_moment2``).

        Returns
        -------
        (entropy, log_moment2) : float64 arrays (N,), or None when the trace stores none at T
        """
        if T == 1.0:
            return self.entropy, self.log_moment2
        if self.moments_at is None or not np.any(self.moments_at == T):
            return None
        j = int(np.flatnonzero(self.moments_at == T)[0])
        return self.entropy_at[:, j], self.log_moment2_at[:, j]

    def context_ids(self, c: int) -> np.ndarray:
        """Token ids of context c (prompt then answer)."""
        return self.context_tokens[self.context_offsets[c]:self.context_offsets[c + 1]]

    def without_fold(self, fold: int, folds: int) -> Trace:
        """The trace less one fold of its recorded contexts (generations), for fitting out of sample.

        Context (generation) ``c`` lies in fold ``c % folds``; the rows of the contexts in ``fold`` are dropped,
        never single positions of a context. Context ids, tokens and offsets are kept as they are, so a row
        still points at its own context; ``meta["holdout"]`` lists the folds removed (``"j/K"``).

        Parameters
        ----------
        fold : int
            The fold to remove, 0 <= fold < folds.
        folds : int
            How many folds the contexts are split into, 2 <= folds <= the trace's contexts.

        Returns
        -------
        Trace
            A valid trace of the remaining rows, in their recorded order (``path`` None).

        Raises
        ------
        BrwError
            On a bad fold, or when the fold holds every row.
        """
        folds = whole_number(folds, "folds", 2)
        fold = whole_number(fold, "fold", 0)
        if folds > self.contexts:
            raise BrwError(f"folds={folds} is more than the trace's {self.contexts} contexts: at most "
                           f"folds={self.contexts} fits (each fold holds whole contexts)")
        if fold >= folds:
            raise BrwError(f"fold must lie in 0..{folds - 1} (folds={folds}), got fold={fold}")
        keep = (self.context.astype(np.int64) % folds) != fold
        if not keep.any():
            raise BrwError(f"fold {fold} of {folds} holds every row of the trace: nothing is left to fit")
        rows = {name: getattr(self, name)[keep] for name in ("top_logp", "top_ids", *_FLOAT_ROWS, *_INT_ROWS)}
        if self.moments_at is not None:
            rows.update(entropy_at=self.entropy_at[keep], log_moment2_at=self.log_moment2_at[keep])
        prior = self.meta.get("holdout", [])
        meta = dict(self.meta, holdout=[*(prior if isinstance(prior, list) else [prior]), f"{fold}/{folds}"])
        return replace(self, **rows, meta=meta, brackets={b: a[keep] for b, a in self.brackets.items()},
                       path=None)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as the archive stores it (header fields included)."""
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
        if self.moments_at is not None:
            out.update(moments_at=self.moments_at, entropy_at=self.entropy_at, log_moment2_at=self.log_moment2_at)
        return out


def id_dtype(vocab_size: int):
    """The smallest integer dtype that holds every token id.

    Parameters
    ----------
    vocab_size : int
        The vocabulary size.

    Returns
    -------
    numpy dtype
        uint16 for vocabularies up to 65,536 tokens, else int32.
    """
    return np.uint16 if vocab_size <= 1 << 16 else np.int32


def make_trace(*, meta: dict, where: str = "trace", **fields) -> Trace:
    """Build and validate a trace from arrays.

    Parameters
    ----------
    meta : dict
        The metadata (plain JSON: model, mode, temperature, vocab_size, k, ...).
    where : str
        What the trace is called in error messages.
    **fields : numpy arrays
        The fields of the module docstring, less the three header fields.

    Returns
    -------
    Trace
        The validated trace (``path`` None).

    Raises
    ------
    BrwError
        On any defect, naming ``where``, the field and the row.
    """
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
    """Write a trace whole or not at all: a temporary file beside the target, then a rename.

    The trace is validated again first, so a bad trace leaves nothing on disk.

    Parameters
    ----------
    trace : Trace
        The trace to write.
    path : str or Path
        The file to write (.npz, compressed); its folder must exist.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    arrays = trace.arrays()
    _validate(dict(arrays), str(path))
    check_output(path, ".npz", name="trace file", exist_ok=True)
    write_npz(path, arrays)
    return path


# --------------------------------------------------------------------------------------------------------
# Reading.


def resolve_trace(name_or_path) -> Path:
    """The file a trace name stands for.

    Parameters
    ----------
    name_or_path : str or Path
        A bundled short name (``code``, ``math``, ``chat``) or a path.

    Returns
    -------
    Path
        An existing file's path (not yet read).
    """
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
    """Read and validate a trace file, never unpickling; nothing is half-loaded.

    Parameters
    ----------
    name_or_path : str or Path
        A trace file (.npz) or a bundled short name (``code``, ``math``, ``chat``).

    Returns
    -------
    Trace
        The validated trace, ``path`` set to the file read.

    Raises
    ------
    BrwError
        One line naming the file, the field and the row, on any defect.
    """
    path = resolve_trace(name_or_path)
    arrays = _read_archive(path)
    trace = _validate(arrays, str(path))
    trace.path = str(path)
    return trace


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every member of the .npz as an array, never unpickling. Members are checked by name before any is read;
    then the header fields are read and checked, then ``top_logp`` (which sets N and k) and
    ``context_offsets`` (C), then the rest. Each member's .npy header is read and checked (no object dtype, a
    size the member holds exactly and the trace allows) before its data are."""
    where = f"trace {path}"
    try:
        zf = zipfile.ZipFile(path)
    except Exception as e:  # any failure to parse the bytes (BadZipFile, NotImplementedError for odd versions...)
        raise BrwError(f"{where}: not a readable .npz archive (truncated or corrupt): {_short(e)}") from None
    with zf:
        members = _members(zf, where)
        arrays = {key: _read_member(zf, members[key], key, where, _member_limit(key, {}, {}))
                  for key in _HEADER if key in members}
        # The header is checked (every required field present) before the fields it sizes are read.
        meta = _check_header(_Fields({**dict.fromkeys(members), **arrays}, where))
        first = ["top_logp", "context_offsets"]
        for key in first + [key for key in members if key not in arrays and key not in first]:
            arrays[key] = _read_member(zf, members[key], key, where, _member_limit(key, arrays, meta))
    return arrays


def _members(zf: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by field name; a member that is not a field of the format is refused unread."""
    try:
        infos = zf.infolist()
    except Exception as e:  # pragma: no cover - infolist is read at open
        raise BrwError(f"{where}: corrupt archive directory: {_short(e)}") from None
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if not name.endswith(".npy"):
            raise BrwError(f"{where}: archive member {name!r} is not a .npy array; not a brw trace")
        key = name[:-4]
        if key not in FIELDS:
            raise BrwError(f"{where}: archive member {name!r} is not a field of a brw trace; refused unread")
        if key in members:
            raise BrwError(f"{where}: field {key!r} appears twice in the archive")
        if info.file_size > MAX_MEMBER_BYTES:
            raise BrwError(f"{where}: field {key!r} claims {info.file_size} bytes, more than the "
                           f"{MAX_MEMBER_BYTES} a trace field may hold; the file is corrupt")
        members[key] = info
    return members


def _member_limit(key: str, arrays: dict, meta: dict) -> tuple[int, int, str]:
    """(most entries, most bytes per entry, why) a member may declare, given the members read before it: the
    header fields are scalars, ``top_logp`` sets N rows and k columns, every other field is sized by them."""
    if key in _HEADER:
        chars = {"schema_version": 4, "format": 64, "meta": MAX_META_CHARS}[key]
        return 1, 4 * chars, "a header field holds one value"
    if key == "top_logp":
        return MAX_MEMBER_BYTES, 16, "a trace field's size limit"
    top = arrays["top_logp"]
    n = int(top.shape[0]) if top.ndim else 1
    rows = f"'top_logp' has {n} rows"
    if key == "top_ids":
        return top.size, 16, f"'top_logp' has {top.size} entries"
    if key == "context_offsets":
        return n + 1, 16, f"at most one context per row, and {rows}"
    if key == "prompt_lengths":
        return n, 16, f"at most one context per row, and {rows}"
    if key == "context_tokens":
        c = max(arrays["context_offsets"].size - 1, 0)
        return c * MAX_CONTEXT_TOKENS, 16, f"{c} contexts of at most {MAX_CONTEXT_TOKENS} tokens"
    if key == "moments_at":
        return MAX_MOMENTS, 16, f"at most {MAX_MOMENTS} temperatures"
    if key in ("entropy_at", "log_moment2_at"):
        return n * MAX_MOMENTS, 16, f"{MAX_MOMENTS} temperatures per row, and {rows}"
    if key == "token_strings":
        vocab = meta.get("vocab_size")
        ok = isinstance(vocab, int) and not isinstance(vocab, bool) and vocab > 0
        return (vocab if ok else 1 << 24), 4 * MAX_TOKEN_CHARS, "one per token of the vocabulary"
    return n, 16, f"one per row, and {rows}"


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str, limit) -> np.ndarray:
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
            _check_declared(key, where, shape, dtype, limit)
            nbytes = count * dtype.itemsize
            if f.tell() + nbytes != info.file_size:
                raise ValueError(f"header claims {f.tell() + nbytes} bytes but the member holds {info.file_size}")
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise ValueError("short read")
            if f.read(1):  # also what makes zipfile check the member's CRC (at its end, not before)
                raise ValueError(f"data beyond the {nbytes} bytes its header declares")
            arr = np.frombuffer(data, dtype=dtype, count=count)
            arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
            return arr.copy()
    except BrwError:
        raise
    except _Pickled:
        raise BrwError(f"{where}: field {key!r} holds pickled Python objects; brw never unpickles, so save "
                       f"plain numeric or string arrays") from None
    except Exception as e:
        raise BrwError(f"{where}: field {key!r} cannot be read; the archive is truncated or corrupt "
                       f"({_short(e)})") from None


def _check_declared(key: str, where: str, shape, dtype, limit) -> None:
    """Refuse, before reading them, data larger than the trace allows for this field."""
    most, itemsize, why = limit
    count = math.prod(shape)
    if count > most or dtype.itemsize > itemsize:
        raise BrwError(f"{where}: field {key!r} declares shape {shape} of {dtype}, more than a trace allows "
                       f"(at most {most} entries of {itemsize} bytes: {why}); the file is corrupt")


class _Pickled(Exception):
    pass


def _short(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return text if len(text) < 160 else text[:157] + "..."


# --------------------------------------------------------------------------------------------------------
# Validation: named checks, in order; each raises one BrwError naming the file, the field and the row.


class _Fields:
    """The arrays under validation, with the error and type helpers the checks share."""

    def __init__(self, arrays: dict, where: str):
        self.arrays = arrays
        self.where = where if where.startswith("trace") else f"trace {where}"

    def err(self, fieldname: str, msg: str, row=None) -> BrwError:
        at = f"field {fieldname!r}" + (f" row {row}" if row is not None else "")
        return BrwError(f"{self.where}: {at}: {msg}")

    def text(self, fieldname: str) -> str:
        a = self.arrays[fieldname]
        if not isinstance(a, np.ndarray) or a.shape != () or a.dtype.kind != "U":
            raise self.err(fieldname, "must be a single string")
        return str(a)

    def num(self, fieldname: str, kinds: str, ndim: int) -> np.ndarray:
        a = self.arrays[fieldname]
        if not isinstance(a, np.ndarray):
            raise self.err(fieldname, "is not an array")
        if a.dtype.kind not in kinds:
            want = "floating-point" if kinds == "f" else "integer"
            raise self.err(fieldname, f"must be {want}, got dtype {a.dtype}")
        if a.ndim != ndim:
            raise self.err(fieldname, f"must have {ndim} dimension(s), got shape {a.shape}")
        return a


@dataclass
class _Rows:
    """The row fields once their shapes are checked: the top-k (N, k), and each (N,) field by name (float
    fields as float64; brackets only when present)."""

    top: np.ndarray
    topd: np.ndarray  # top as float64
    ids: np.ndarray
    rows: dict
    brackets: tuple


def _validate(arrays: dict, where: str) -> Trace:
    f = _Fields(arrays, where)
    # Hostile values (1e300, huge ids) may overflow in the feasibility arithmetic; the checks still fail them.
    with np.errstate(all="ignore"):
        meta = _check_header(f)
        r = _check_shapes(f)
        _check_values(f, r)
        top_mass = _check_mass(f, r)
        vocab = _check_vocab_size(f, meta, r.top.shape[1])
        _check_moments(f, r, top_mass, vocab)
        tstr, vocab_ids = _check_ids(f, r, vocab)
        toks = _check_contexts(f, r, vocab_ids)
        moments = _check_moments_at(f, r.top.shape[0], vocab)
    rows = r.rows
    return Trace(top_logp=r.top, top_ids=r.ids, entropy=rows["entropy"], log_moment2=rows["log_moment2"],
                 tail_mass=rows["tail_mass"], taken=rows["taken"], taken_logp=rows["taken_logp"],
                 context=rows["context"], offset=rows["offset"], context_tokens=toks,
                 context_offsets=arrays["context_offsets"], prompt_lengths=arrays["prompt_lengths"], meta=meta,
                 brackets={b: rows[b] for b in r.brackets}, token_strings=tstr, **moments)


def _check_moments_at(f: _Fields, n: int, vocab: int | None) -> dict:
    """The moments at other temperatures, when present: all three fields, increasing finite temperatures > 0,
    (N, M) finite statistics, entropies in [0, log vocab_size] and second log-moments >= entropy^2 (Jensen),
    within MOMENT_TOL. Returns the Trace fields ({} when absent)."""
    present = [name for name in _MOMENTS if name in f.arrays]
    if not present:
        return {}
    if len(present) != len(_MOMENTS):
        raise f.err(present[0], f"moment fields come as a set of three ({', '.join(_MOMENTS)})")
    temps = f.num("moments_at", "f", 1).astype(np.float64)
    if temps.size == 0 or temps.size > MAX_MOMENTS:
        raise f.err("moments_at", f"must hold 1 to {MAX_MOMENTS} temperatures, got {temps.size}")
    if not np.all(np.isfinite(temps) & (temps > 0)) or np.any(np.diff(temps) <= 0):
        raise f.err("moments_at", "temperatures must be finite, > 0 and increasing")
    out = {"moments_at": temps}
    for name in _MOMENTS[1:]:
        a = f.num(name, "f", 2).astype(np.float64)
        if a.shape != (n, temps.size):
            raise f.err(name, f"has shape {a.shape}, not ({n}, {temps.size}): one value per row and temperature")
        bad = ~np.isfinite(a) | (a < 0)
        if bad.any():
            row, c = (int(x) for x in np.argwhere(bad)[0])
            raise f.err(name, f"value {float(a[row, c])!r} (column {c}) is not a finite number >= 0", row)
        out[name] = a
    h, s = out["entropy_at"], out["log_moment2_at"]
    top = math.log(vocab) if vocab else math.inf
    bad = (h > top + MOMENT_TOL) | (s < h**2 - MOMENT_TOL)
    if bad.any():
        row, c = (int(x) for x in np.argwhere(bad)[0])
        raise f.err("entropy_at", f"entropy {float(h[row, c])!r} and second log-moment {float(s[row, c])!r} (column "
                                  f"{c}) cannot come from one distribution (entropy <= log vocab_size, moment >= "
                                  f"entropy^2)", row)
    return out


def _check_header(f: _Fields) -> dict:
    """Schema version, required fields, format and metadata; returns the metadata. Needs only the header
    fields' values: the others need only be present (the reader checks the header before reading them)."""
    arrays = f.arrays
    if "schema_version" not in arrays:
        raise BrwError(f"{f.where}: not a brw trace (no 'schema_version' field)")
    sv = arrays["schema_version"]
    if not isinstance(sv, np.ndarray) or sv.shape != () or sv.dtype.kind not in "iu":
        raise f.err("schema_version", "must be a single integer")
    if int(sv) != SCHEMA_VERSION:
        raise f.err("schema_version", f"schema version {int(sv)} is not supported: this brw reads version "
                                      f"{SCHEMA_VERSION}; upgrade brw or re-record the trace")
    missing = [name for name in REQUIRED if name not in arrays]
    if missing:
        raise BrwError(f"{f.where}: missing field(s) {', '.join(missing)}; not a complete brw trace")
    if f.text("format") != FORMAT:
        raise f.err("format", f"is {f.text('format')!r}, not {FORMAT!r}")
    try:
        meta = json.loads(f.text("meta"))
    except ValueError as e:
        raise f.err("meta", f"is not valid JSON ({e})") from None
    except RecursionError:
        raise f.err("meta", "nests its JSON more deeply than metadata does") from None
    if not isinstance(meta, dict):
        raise f.err("meta", "must be a JSON object")
    return meta


def _check_shapes(f: _Fields) -> _Rows:
    """dtypes and shapes of the row fields: a non-empty (N, k) top-k, every row field (N,), brackets a set."""
    top = f.num("top_logp", "f", 2)
    n, _ = top.shape
    if top.size == 0:
        raise f.err("top_logp", f"has shape {top.shape}: a trace needs at least one row and one top entry")
    ids = f.num("top_ids", "iu", 2)
    if ids.shape != top.shape:
        raise f.err("top_ids", f"has shape {ids.shape} but 'top_logp' has shape {top.shape}")
    present = tuple(b for b in _BRACKETS if b in f.arrays)
    rows = {name: f.num(name, "f", 1).astype(np.float64) for name in _FLOAT_ROWS + present}
    rows.update({name: f.num(name, "iu", 1) for name in _INT_ROWS})
    for name, a in rows.items():
        if a.shape[0] != n:
            raise f.err(name, f"has {a.shape[0]} rows but 'top_logp' has {n}")
    if present and len(present) != len(_BRACKETS):
        raise f.err(present[0], f"bracket fields come as a set of four ({', '.join(_BRACKETS)})")
    return _Rows(top, top.astype(np.float64), ids, rows, present)


def _check_values(f: _Fields, r: _Rows) -> None:
    """Finite floats; log-probabilities <= 0; the top-k sorted; non-negative statistics."""
    for name, a in [("top_logp", r.top)] + [(name, r.rows[name]) for name in _FLOAT_ROWS + r.brackets]:
        bad = ~np.isfinite(a)
        if bad.any():
            raise f.err(name, "NaN or infinite value", int(np.argwhere(bad)[0][0]))
    topd = r.topd
    if (topd > 0).any():
        row, c = (int(x) for x in np.argwhere(topd > 0)[0])
        raise f.err("top_logp", f"log-probability {float(topd[row, c])!r} (column {c}) is above 0", row)
    if topd.shape[1] > 1:
        unsorted = topd[:, 1:] > topd[:, :-1]
        if unsorted.any():
            row, c = (int(x) for x in np.argwhere(unsorted)[0])
            raise f.err("top_logp", f"top-k not sorted in decreasing order (column {c + 1} = "
                                    f"{float(topd[row, c + 1])!r} > column {c} = {float(topd[row, c])!r})", row)
    for name in ("entropy", "log_moment2", "tail_mass") + r.brackets:
        a = r.rows[name]
        if (a < 0).any():
            row = int(np.argmax(a < 0))
            raise f.err(name, f"value {float(a[row])!r} is negative", row)
    taken_logp = r.rows["taken_logp"]
    if (taken_logp > 0).any():
        row = int(np.argmax(taken_logp > 0))
        raise f.err("taken_logp", f"log-probability {float(taken_logp[row])!r} is above 0", row)


def _check_mass(f: _Fields, r: _Rows) -> np.ndarray:
    """Top-k plus tail mass is 1, within MASS_TOL; returns each row's top-k mass."""
    top_mass = np.exp(r.topd).sum(axis=1)
    tail = r.rows["tail_mass"]
    total = top_mass + tail
    for bad, how in ((total > 1 + MASS_TOL, "exceeds 1"), (total < 1 - MASS_TOL, "falls short of 1")):
        if bad.any():
            row = int(np.argmax(bad))
            raise f.err("tail_mass", f"top-k mass {top_mass[row]:.9g} plus tail mass {tail[row]:.9g} = "
                                     f"{total[row]:.9g} {how} by more than {MASS_TOL:g}", row)
    return top_mass


def _check_vocab_size(f: _Fields, meta: dict, k: int) -> int | None:
    """The metadata's vocab_size, when given: a whole number in k..MAX_VOCAB."""
    vocab = meta.get("vocab_size")
    if vocab is not None and (not isinstance(vocab, int) or isinstance(vocab, bool) or not k <= vocab <= MAX_VOCAB):
        raise f.err("meta", f"vocab_size must be a whole number >= k = {k} and at most 2**31, "
                            f"got {clip(repr(vocab), 40)}")
    return vocab


def _check_moments(f: _Fields, r: _Rows, top_mass: np.ndarray, vocab: int | None) -> None:
    """Entropy and second log-moment that the top-k and a tail can produce (brw.tailfit.tail_bounds), within
    MOMENT_TOL; the point inside its bracket, for imported traces."""
    topd, rows = r.topd, r.rows
    h_lo, h_hi, s_lo, s_hi = tail_bounds(topd, vocab)
    if vocab is not None and vocab > topd.shape[1]:
        # tail_bounds finds no room for a tail whose mass 1 - top-k, spread over the rest of the vocabulary,
        # puts more than p_k on a token. On a very peaked row (T < 1) that mass is only the float32 rounding of
        # the stored top-k (~1e-8) while p_k is ~1e-12: the recorded tail mass, which fits, bounds the tail then.
        # "Fits" up to the rounding of the stored float32 log p_k (an absolute error of |log p_k| eps32 / 2, so
        # that relative in p_k): a flat row, whose tail tokens are exactly as likely as p_k, fits.
        nt = vocab - topd.shape[1]
        tm = np.clip(rows["tail_mass"], 0.0, None)
        fits = tm / nt <= np.exp(topd[:, -1]) * (1 + np.abs(topd[:, -1]) * np.finfo(np.float32).eps + 1e-9)
        with np.errstate(divide="ignore", invalid="ignore"):
            lq = np.where(tm > 0, np.log(np.where(tm > 0, tm, 1.0) / nt), 0.0)
        redo = np.isneginf(h_hi) & fits
        h_hi = np.where(redo, -tm * lq, h_hi)
        s_hi = np.where(redo, tm * lq**2, s_hi)
    h_top = -(np.exp(topd) * topd).sum(axis=1)
    s_top = (np.exp(topd) * topd**2).sum(axis=1)
    # Cauchy-Schwarz on the tail: s >= h^2 / m for the row's own tail entropy h. h is the recorded entropy less
    # the float32 top-k's, which is off by up to ~1e-6 (H 6e-8); divided by a tail mass near 0 (a row peaked at
    # T < 1: m ~ 1e-12) that rounding alone would refuse the row, so h is taken that much smaller.
    m_top = np.clip(1.0 - top_mass, 0.0, None)
    h_tail = np.clip(rows["entropy"] - h_top - _H_ROUNDING, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_lo = np.maximum(s_lo, np.where(m_top > 0, h_tail**2 / np.where(m_top > 0, m_top, 1.0), 0.0))
    for name, base, lo, hi, unit in (("entropy", h_top, h_lo, h_hi, "nats"),
                                     ("log_moment2", s_top, s_lo, s_hi, "nats^2")):
        vals = rows[name]
        bad = (vals < base + lo - MOMENT_TOL) | (vals > base + hi + MOMENT_TOL)
        if bad.any():
            row = int(np.argmax(bad))
            what = "entropy" if name == "entropy" else "second log-moment"
            raise f.err(name, f"{what} {vals[row]:.9g} {unit} cannot come from this top-k and tail: with top-k "
                              f"mass {top_mass[row]:.9g} it must lie in [{base[row] + lo[row]:.9g}, "
                              f"{base[row] + hi[row]:.9g}] (within {MOMENT_TOL:g})", row)
    if r.brackets:
        for name in ("entropy", "log_moment2"):
            lo, hi = rows[name + "_lo"], rows[name + "_hi"]
            bad = (lo > hi) | (rows[name] < lo - MOMENT_TOL) | (rows[name] > hi + MOMENT_TOL)
            if bad.any():
                row = int(np.argmax(bad))
                raise f.err(name, f"value {float(rows[name][row])!r} lies outside its bracket "
                                  f"[{float(lo[row])!r}, {float(hi[row])!r}]", row)


def _check_ids(f: _Fields, r: _Rows, vocab: int | None) -> tuple[np.ndarray | None, int | None]:
    """Token strings, when given; top-k and taken ids inside the vocabulary; no id twice in a row's top-k.
    Returns (token_strings or None, the bound every id lies below or None)."""
    tstr = f.arrays.get("token_strings")
    vocab_ids = vocab
    if tstr is not None:
        if not isinstance(tstr, np.ndarray) or tstr.ndim != 1 or tstr.dtype.kind != "U":
            raise f.err("token_strings", "must be a 1-D array of strings")
        if vocab is not None and tstr.shape[0] > vocab:
            raise f.err("token_strings", f"lists {tstr.shape[0]} tokens, more than vocab_size {vocab}")
        vocab_ids = tstr.shape[0]
    for name, a in (("top_ids", r.ids), ("taken", r.rows["taken"])):
        bad = (a < 0) | ((a >= vocab_ids) if vocab_ids is not None else False)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            top_id = "" if vocab_ids is None else vocab_ids - 1
            raise f.err(name, f"token id {int(a.flat[np.flatnonzero(bad.ravel())[0]])} outside the vocabulary "
                              f"0..{top_id}", row)
    if r.ids.shape[1] > 1:
        srt = np.sort(r.ids.astype(np.int64), axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if dup.any():
            raise f.err("top_ids", "the same token id appears twice in the top-k", int(np.argmax(dup)))
    return tstr, vocab_ids


def _check_contexts(f: _Fields, r: _Rows, vocab_ids: int | None) -> np.ndarray:
    """Context tokens inside the vocabulary, offsets and prompt lengths consistent, and every row pointing at
    its own position (context, offset) once, whose token is the one taken. Returns the context tokens."""
    toks = f.num("context_tokens", "iu", 1)
    offs = f.num("context_offsets", "iu", 1).astype(np.int64)
    plen = f.num("prompt_lengths", "iu", 1).astype(np.int64)
    if (toks < 0).any() or (vocab_ids is not None and (toks >= vocab_ids).any()):
        raise f.err("context_tokens", "token id outside the vocabulary")
    if offs.shape[0] < 2 or offs[0] != 0 or offs[-1] != toks.shape[0] or (np.diff(offs) < 0).any():
        raise f.err("context_offsets", f"must rise from 0 to len(context_tokens) = {toks.shape[0]} with one "
                                       f"entry per context plus one")
    nctx = offs.shape[0] - 1
    if plen.shape[0] != nctx:
        raise f.err("prompt_lengths", f"has {plen.shape[0]} entries for {nctx} contexts")
    if (plen < 0).any() or (plen > np.diff(offs)).any():
        c = int(np.argmax((plen < 0) | (plen > np.diff(offs))))
        raise f.err("prompt_lengths", f"context {c}: prompt longer than the context", c)
    _check_positions(f, r, toks, offs)
    return toks


def _check_positions(f: _Fields, r: _Rows, toks: np.ndarray, offs: np.ndarray) -> None:
    """Each row's (context, offset) exists, holds the taken token, and is recorded once."""
    nctx = offs.shape[0] - 1
    taken = r.rows["taken"]
    ctx = r.rows["context"].astype(np.int64)
    off = r.rows["offset"].astype(np.int64)
    bad = (ctx < 0) | (ctx >= nctx)
    if bad.any():
        row = int(np.argmax(bad))
        raise f.err("context", f"context index {ctx[row]} outside 0..{nctx - 1}", row)
    lens = np.diff(offs)[ctx]
    bad = (off < 1) | (off >= lens)
    if bad.any():
        row = int(np.argmax(bad))
        raise f.err("offset", f"offset {off[row]} outside 1..{lens[row] - 1} of context {ctx[row]}", row)
    want = toks[offs[ctx] + off].astype(np.int64)
    bad = want != taken.astype(np.int64)
    if bad.any():
        row = int(np.argmax(bad))
        raise f.err("taken", f"token {int(taken[row])} differs from the context's token {int(want[row])} at "
                             f"offset {off[row]}", row)
    key = ctx * (int(lens.max()) + 1) + off
    if np.unique(key).shape[0] != ctx.shape[0]:
        _, first = np.unique(key, return_index=True)
        row = int(np.setdiff1d(np.arange(ctx.shape[0]), first)[0])
        raise f.err("offset", f"position (context {ctx[row]}, offset {off[row]}) recorded twice", row)
