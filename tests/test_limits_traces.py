"""Boundary tests of brw/traces.py: every refusal and limit of the trace format pinned exactly at its edge.

Each test sits on one validation point of the module (a comparison, a constant, a default, a message's computed
numbers) with the value exactly at the limit treated one way and the value just past it the other, so that the
mutants mutation testing makes of these lines (``<`` for ``<=``, a constant +-1, ``and`` for ``or``, a dropped
negation, a wrong number in a message) fail a test. Pinned here: the reader's per-field size limits (entries and
bytes per entry, before any data are read), the header checks, shapes and dtypes, values, the mass tolerance, the
moment feasibility bounds (MOMENT_TOL, the float32 rounding slack of the tail fit, the Cauchy-Schwarz bound's
rounding allowance), brackets, ids, contexts and positions, moments at other temperatures, ``without_fold`` and
``moments``, ``make_trace``/``save_trace``/``resolve_trace`` defaults, and the clip of error texts.

Tolerances: the module's tolerances are restated here as literals (1e-4, 1e-6), so that a mutant of a constant
cannot move the test's boundary along with the code's; boundary values are found with ``np.nextafter`` so that
the comparison in the code is met with equality (float64 arithmetic repeated exactly as the code does it).
"""

from __future__ import annotations

import inspect
import io
import math
import re
import warnings
import zipfile

import numpy as np
import pytest
from trace_data import V, raw_save, synthetic

from brw import BrwError, traces
from brw.tailfit import tail_bounds
from brw.traces import load_trace, make_trace, resolve_trace, save_trace

EPS32 = float(np.finfo(np.float32).eps)


# ---------------------------------------------------------------------------------------------------------
# Helpers.


def _refusal(arrays, meta, where="t"):
    """make_trace's refusal message, or None when the trace is valid."""
    try:
        make_trace(meta=meta, where=where, **arrays)
    except BrwError as e:
        return str(e)
    return None


def _field(msg):
    """The field a refusal names (None for no refusal)."""
    if msg is None:
        return None
    m = re.search(r"field '(\w+)'", msg)
    return m.group(1) if m else msg


def _load_error(path):
    try:
        load_trace(path)
    except BrwError as e:
        return str(e)
    return None


def _npy_header(shape, descr="<f8"):
    """A version 1.0 .npy header declaring ``shape`` of ``descr``, with no data after it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _archive(tmp_path, arrays, meta_dict, members=(), name="x.npz", **override):
    """An archive written without validation (``override``: a field replaced, or dropped with None), with
    ``members`` (name, bytes) appended as they are."""
    p = raw_save(tmp_path / name, arrays, meta_dict, **override)
    if members:
        with zipfile.ZipFile(p, "a") as z:
            for member, data in members:
                z.writestr(member, data)
    return p


def _declared(tmp_path, key, shape, descr, arrays=None, meta=None):
    """Load a trace whose field ``key`` is a bare .npy header declaring ``shape`` of ``descr``: the error."""
    if arrays is None:
        arrays, meta = synthetic()
    p = _archive(tmp_path, arrays, meta, [(f"{key}.npy", _npy_header(shape, descr))], **{key: None})
    return _load_error(p)


def _from_dists(lps, k, vocab=True):
    """A one-context trace whose rows are the exact statistics of full log-probability vectors ``lps`` (N, V):
    its arrays and metadata (vocab_size V unless ``vocab`` is false). Row i takes its likeliest token, at
    offset i + 1 after a one-token prompt."""
    lps = np.asarray(lps, dtype=np.float64)
    n, vsize = lps.shape
    order = np.argsort(-lps, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(lps, order, 1)
    p = np.exp(lps)
    rest = np.ones_like(p, dtype=bool)
    np.put_along_axis(rest, order, False, 1)
    taken = order[:, 0].astype(np.int64)
    arrays = {
        "top_logp": top.astype(np.float32), "top_ids": order.astype(np.int64),
        "entropy": -(p * lps).sum(axis=1), "log_moment2": (p * lps**2).sum(axis=1),
        "tail_mass": (p * rest).sum(axis=1), "taken": taken, "taken_logp": top[:, 0].copy(),
        "context": np.zeros(n, dtype=np.int64), "offset": np.arange(1, n + 1, dtype=np.int64),
        "context_tokens": np.concatenate([[0], taken]).astype(np.int64),
        "context_offsets": np.array([0, n + 1], dtype=np.int64), "prompt_lengths": np.array([1], dtype=np.int64),
    }
    meta = {"model": "hand", "mode": "sampled", "temperature": 1.0, "k": k}
    if vocab:
        meta["vocab_size"] = vsize
    return arrays, meta


def _dists(n, vsize, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, vsize)) * scale
    return z - np.logaddexp.reduce(z, axis=1, keepdims=True)


def _bounds(arrays, vocab):
    """The moment check's bounds, as brw.traces._check_moments computes them (its constants as literals):
    (h_top, h_lo, h_hi, s_top, s_lo, s_hi) per row."""
    topd = arrays["top_logp"].astype(np.float64)
    with np.errstate(all="ignore"):
        top_mass = np.exp(topd).sum(axis=1)
        h_lo, h_hi, s_lo, s_hi = tail_bounds(topd, vocab)
        if vocab is not None and vocab > topd.shape[1]:
            nt = vocab - topd.shape[1]
            tm = np.clip(arrays["tail_mass"], 0.0, None)
            fits = tm / nt <= np.exp(topd[:, -1]) * (1 + np.abs(topd[:, -1]) * EPS32 + 1e-9)
            lq = np.where(tm > 0, np.log(np.where(tm > 0, tm, 1.0) / nt), 0.0)
            redo = np.isneginf(h_hi) & fits
            h_hi = np.where(redo, -tm * lq, h_hi)
            s_hi = np.where(redo, tm * lq**2, s_hi)
        h_top = -(np.exp(topd) * topd).sum(axis=1)
        s_top = (np.exp(topd) * topd**2).sum(axis=1)
        m_top = np.clip(1.0 - top_mass, 0.0, None)
        h_tail = np.clip(arrays["entropy"] - h_top - 1e-6, 0.0, None)
        s_lo = np.maximum(s_lo, np.where(m_top > 0, h_tail**2 / np.where(m_top > 0, m_top, 1.0), 0.0))
    return h_top, h_lo, h_hi, s_top, s_lo, s_hi


def _with(arrays, name, row, value):
    out = dict(arrays)
    a = np.array(arrays[name], copy=True)
    a[row] = value
    out[name] = a
    return out


def _moments_at(arrays, temps, h=None, s=None):
    """The arrays with moments at ``temps``: by default each row's own entropy and second log-moment."""
    m = len(temps)
    h = np.repeat(arrays["entropy"][:, None], m, axis=1) if h is None else h
    s = np.repeat(arrays["log_moment2"][:, None], m, axis=1) if s is None else s
    return {**arrays, "moments_at": np.asarray(temps, dtype=np.float64),
            "entropy_at": np.asarray(h, dtype=np.float64), "log_moment2_at": np.asarray(s, dtype=np.float64)}


# ---------------------------------------------------------------------------------------------------------
# Constants and defaults.


def test_the_module_constants_have_their_documented_values():
    """The literals every boundary below restates (a mutant of a constant fails here as well as there)."""
    assert traces.MASS_TOL == 1e-4 and traces.MOMENT_TOL == 1e-4 and traces._H_ROUNDING == 1e-6
    assert traces.MAX_MOMENTS == 64 and traces.MAX_MEMBER_BYTES == 4 * 2**30
    assert traces.MAX_CONTEXT_TOKENS == 2**21 and traces.MAX_META_CHARS == 2**20 and traces.MAX_TOKEN_CHARS == 1024
    assert traces.SCHEMA_VERSION == 1 and traces.FORMAT == "brw-trace" and traces.BRANCH_MODE == "greedy-branches"


def test_make_trace_takes_keywords_only_and_calls_the_trace_trace_by_default():
    """where="trace" already starts with "trace", so its errors read "trace: field ..." (no second prefix)."""
    params = inspect.signature(make_trace).parameters
    assert params["meta"].kind is inspect.Parameter.KEYWORD_ONLY and params["meta"].default is inspect._empty
    assert params["where"].kind is inspect.Parameter.KEYWORD_ONLY and params["where"].default == "trace"
    arrays, meta = synthetic(contexts=1, lengths=2)
    with pytest.raises(BrwError, match=r"^trace: field 'entropy' row 1: value -1\.0 is negative$"):
        make_trace(meta=meta, **_with(arrays, "entropy", 1, -1.0))


@pytest.mark.parametrize("where,shown", [("lab", "trace lab"), ("trace lab", "trace lab"), ("tracer", "tracer")])
def test_a_name_already_starting_with_trace_is_not_prefixed_again(where, shown):
    arrays, meta = synthetic(contexts=1, lengths=2)
    msg = _refusal(_with(arrays, "entropy", 0, -2.0), meta, where=where)
    assert msg == f"{shown}: field 'entropy' row 0: value -2.0 is negative"


def test_metadata_that_is_not_json_is_refused_naming_the_caller():
    arrays, _ = synthetic(contexts=1, lengths=1)
    with pytest.raises(BrwError, match=r"^mine: metadata is not plain JSON: Out of range float values"):
        make_trace(meta={"x": float("nan")}, where="mine", **arrays)


def test_saving_over_an_existing_trace_file_is_allowed(tmp_path):
    """save_trace writes whole or not at all, and may replace a file it wrote before (exist_ok=True)."""
    arrays, meta = synthetic(contexts=2)
    t = make_trace(meta=meta, **arrays)
    path = tmp_path / "t.npz"
    save_trace(t, path)
    held = t.without_fold(0, 2)
    assert save_trace(held, path) == path
    assert load_trace(path).positions == held.positions < t.positions


def test_a_trace_path_under_the_home_folder_is_expanded(tmp_path, monkeypatch):
    arrays, meta = synthetic(contexts=1, lengths=2)
    save_trace(make_trace(meta=meta, **arrays), tmp_path / "t.npz")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_trace("~/t.npz") == tmp_path / "t.npz"
    assert load_trace("~/t.npz").path == str(tmp_path / "t.npz")


def test_a_missing_trace_file_and_a_folder_are_named_in_their_refusals(tmp_path):
    with pytest.raises(BrwError, match=rf"^trace file {re.escape(str(tmp_path / 'no.npz'))} does not exist "
                                       r"\(bundled traces: chat, chat-greedy, "):
        resolve_trace(tmp_path / "no.npz")
    with pytest.raises(BrwError, match=rf"^trace {re.escape(str(tmp_path))} is not a file$"):
        resolve_trace(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Trace.moments and Trace.without_fold.


def test_moments_at_the_recorded_temperature_are_the_recorded_rows_even_without_stored_moments():
    arrays, meta = synthetic(contexts=2)
    t = make_trace(meta=meta, **arrays)
    h, s = t.moments(1.0)
    assert h is t.entropy and s is t.log_moment2
    assert t.moments(0.7) is None and t.moments(1.0 + 1e-12) is None


def test_moments_at_a_stored_temperature_are_its_own_column():
    arrays, meta = synthetic(contexts=2)
    h = np.stack([arrays["entropy"] * 0.5, arrays["entropy"] * 0.75], axis=1)
    s = np.stack([arrays["log_moment2"] * 0.5, arrays["log_moment2"] * 0.75], axis=1)
    t = make_trace(meta=meta, **_moments_at(arrays, [0.5, 0.7], h, s))
    np.testing.assert_array_equal(t.moments(0.7)[0], h[:, 1])
    np.testing.assert_array_equal(t.moments(0.7)[1], s[:, 1])
    np.testing.assert_array_equal(t.moments(0.5)[0], h[:, 0])
    assert t.moments(0.6) is None
    assert t.moments(1.0)[0] is t.entropy


def test_a_trace_splits_into_as_many_folds_as_it_has_contexts_and_no_more():
    arrays, meta = synthetic(contexts=3)
    t = make_trace(meta=meta, **arrays)
    held = t.without_fold(2, 3)
    assert set(held.context.tolist()) == {0, 1}
    with pytest.raises(BrwError, match=r"^folds=4 is more than the trace's 3 contexts: at most folds=3 fits "
                                       r"\(each fold holds whole contexts\)$"):
        t.without_fold(0, 4)


def test_the_last_fold_is_folds_minus_one():
    arrays, meta = synthetic(contexts=3)
    t = make_trace(meta=meta, **arrays)
    assert set(t.without_fold(1, 2).context.tolist()) == {0, 2}
    with pytest.raises(BrwError, match=r"^fold must lie in 0\.\.1 \(folds=2\), got fold=2$"):
        t.without_fold(2, 2)
    with pytest.raises(BrwError, match=r"^folds must be a whole number >= 2, got 1$"):
        t.without_fold(0, 1)
    with pytest.raises(BrwError, match=r"^fold must be a whole number >= 0, got -1$"):
        t.without_fold(-1, 2)
    assert set(t.without_fold(0, 2).context.tolist()) == {1}


def test_a_fold_that_holds_every_row_is_refused_with_its_numbers():
    arrays, meta = synthetic(contexts=2)
    t = make_trace(meta=meta, **arrays).without_fold(0, 2)  # only context 1 is left
    with pytest.raises(BrwError, match=r"^fold 1 of 2 holds every row of the trace: nothing is left to fit$"):
        t.without_fold(1, 2)


def test_without_fold_keeps_the_rows_of_moments_and_brackets_and_stacks_holdouts():
    arrays, meta = synthetic(contexts=3)
    arrays = _moments_at(arrays, [0.5])
    for name in ("entropy", "log_moment2"):
        arrays[name + "_lo"] = arrays[name] * 0.5
        arrays[name + "_hi"] = arrays[name] * 2.0
    t = make_trace(meta={**meta, "holdout": "9/10"}, **arrays)
    held = t.without_fold(1, 3)
    keep = t.context % 3 != 1
    np.testing.assert_array_equal(held.entropy_at, t.entropy_at[keep])
    np.testing.assert_array_equal(held.log_moment2_at, t.log_moment2_at[keep])
    for name in ("entropy_lo", "entropy_hi", "log_moment2_lo", "log_moment2_hi"):
        np.testing.assert_array_equal(held.brackets[name], t.brackets[name][keep])
    assert held.meta["holdout"] == ["9/10", "1/3"] and held.path is None
    assert t.without_fold(0, 2).meta["holdout"] == ["9/10", "0/2"]
    back = make_trace(meta=held.meta, **{k: v for k, v in held.arrays().items()
                                         if k not in ("schema_version", "format", "meta")})
    assert back.positions == held.positions


# ---------------------------------------------------------------------------------------------------------
# The reader: archive members, declared sizes (entries and bytes per entry), .npy versions and order.


def test_a_field_twice_in_the_archive_is_refused(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        p = _archive(tmp_path, arrays, meta, [("entropy.npy", _npy_header((2,)))])
    assert _load_error(p) == f"trace {p}: field 'entropy' appears twice in the archive"


def test_an_npy_version_the_reader_does_not_know_is_corrupt(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=2)
    data = b"\x93NUMPY\x04\x00" + _npy_header((2,))[8:]
    p = _archive(tmp_path, arrays, meta, [("entropy.npy", data)], entropy=None)
    assert re.fullmatch(r"trace .*: field 'entropy' cannot be read; the archive is truncated or corrupt "
                        r"\(ValueError: unknown \.npy version \(4, 0\)\)", _load_error(p))


def test_fortran_ordered_fields_read_back_in_their_own_order(tmp_path):
    arrays, meta = synthetic(contexts=2)
    fa = {**arrays, "top_logp": np.asfortranarray(arrays["top_logp"]),
          "top_ids": np.asfortranarray(arrays["top_ids"])}
    t = load_trace(_archive(tmp_path, fa, meta))
    np.testing.assert_array_equal(t.top_logp, arrays["top_logp"])
    np.testing.assert_array_equal(t.top_ids, arrays["top_ids"])


HEADER_CLAIMS = r"cannot be read; the archive is truncated or corrupt \(ValueError: header claims \d+ bytes"


def _limit_cases():
    """(field, shape at the limit, shape past it, dtype, the limit's message) with N = 42 rows, k = 8, C = 5
    contexts (synthetic())."""
    n, k, c = 42, 8, 5
    per_row = f"one per row, and 'top_logp' has {n} rows"
    return [
        ("top_ids", (n * k,), (n * k + 1,), "<u2",
         f"at most {n * k} entries of 16 bytes: 'top_logp' has {n * k} entries"),
        ("context_offsets", (n + 1,), (n + 2,), "<i8",
         f"at most {n + 1} entries of 16 bytes: at most one context per row, and 'top_logp' has {n} rows"),
        ("prompt_lengths", (n,), (n + 1,), "<i4",
         f"at most {n} entries of 16 bytes: at most one context per row, and 'top_logp' has {n} rows"),
        ("context_tokens", (c * 2**21,), (c * 2**21 + 1,), "<u2",
         f"at most {c * 2**21} entries of 16 bytes: {c} contexts of at most {2**21} tokens"),
        ("moments_at", (64,), (65,), "<f8", "at most 64 entries of 16 bytes: at most 64 temperatures"),
        ("entropy_at", (n, 64), (n, 65), "<f8",
         f"at most {n * 64} entries of 16 bytes: 64 temperatures per row, and 'top_logp' has {n} rows"),
        ("log_moment2_at", (n * 64,), (n * 64 + 1,), "<f8",
         f"at most {n * 64} entries of 16 bytes: 64 temperatures per row, and 'top_logp' has {n} rows"),
        ("token_strings", (V,), (V + 1,), "<U3", f"at most {V} entries of 4096 bytes: one per token of the vocabulary"),
        ("entropy", (n,), (n + 1,), "<f8", f"at most {n} entries of 16 bytes: {per_row}"),
        ("taken_logp", (n,), (n + 1,), "<f8", f"at most {n} entries of 16 bytes: {per_row}"),
        ("entropy_lo", (n,), (n + 1,), "<f8", f"at most {n} entries of 16 bytes: {per_row}"),
        ("top_logp", (4 * 2**30,), (4 * 2**30 + 1,), "<f4",
         "at most 4294967296 entries of 16 bytes: a trace field's size limit"),
        ("schema_version", (1,), (2,), "<i8", "at most 1 entries of 16 bytes: a header field holds one value"),
        ("format", (1,), (2,), "<U9", "at most 1 entries of 256 bytes: a header field holds one value"),
        ("meta", (1,), (2,), "<U9", "at most 1 entries of 4194304 bytes: a header field holds one value"),
    ]


@pytest.mark.parametrize("key,ok,bad,descr,why", _limit_cases(), ids=[c[0] for c in _limit_cases()])
def test_each_field_may_declare_entries_up_to_its_limit_and_not_one_more(tmp_path, key, ok, bad, descr, why):
    """A member declaring exactly as many entries as the trace allows passes the size check (and is then found
    short of its data); one entry more is refused, with the limit and its reason, before anything is read."""
    arrays, meta = synthetic()
    assert arrays["entropy"].shape == (42,) and arrays["context_offsets"].shape == (6,)
    at = _declared(tmp_path, key, ok, descr, arrays, meta)
    assert re.search(rf"field '{key}' {HEADER_CLAIMS}", at), at
    past = _declared(tmp_path, key, bad, descr, arrays, meta)
    shape = re.escape(str(tuple(bad)))
    assert re.fullmatch(rf"trace .*: field '{key}' declares shape {shape} of .*, more than a trace allows "
                        rf"\({re.escape(why)}\); the file is corrupt", past), past


ITEM_CASES = [("top_logp", (42, 8), 4), ("top_ids", (42, 8), 4), ("context_offsets", (6,), 4),
              ("prompt_lengths", (5,), 4), ("context_tokens", (59,), 4), ("moments_at", (1,), 4),
              ("entropy_at", (42, 1), 4), ("taken", (42,), 4), ("token_strings", (V,), 1024),
              ("schema_version", (), 4), ("format", (), 64), ("meta", (), 2**20)]


@pytest.mark.parametrize("key,shape,chars", ITEM_CASES, ids=[c[0] for c in ITEM_CASES])
def test_each_field_may_declare_entries_of_its_limit_in_bytes_and_not_one_more(tmp_path, key, shape, chars):
    """Bytes per entry: a string of ``chars`` characters (4 bytes each) is within the limit, one character
    more is refused before its data are read."""
    at = _declared(tmp_path, key, shape, f"<U{chars}")
    assert re.search(rf"field '{key}' {HEADER_CLAIMS}", at), at
    past = _declared(tmp_path, key, shape, f"<U{chars + 1}")
    assert re.search(rf"field '{key}' declares shape {re.escape(str(shape))} of <U{chars + 1}, more than a trace "
                     rf"allows \(at most \d+ entries of {4 * chars} bytes", past), past


def test_a_format_string_stored_wider_than_it_needs_loads(tmp_path):
    """The format field may be stored as a string of up to 64 characters: "brw-trace" in a <U64 array reads."""
    arrays, meta = synthetic(contexts=1, lengths=2)
    assert load_trace(_archive(tmp_path, arrays, meta, format=np.array("brw-trace", dtype="<U64"))).k == 8


def test_context_tokens_without_any_context_may_hold_no_token(tmp_path):
    """An empty context_offsets allows zero contexts, hence zero context tokens (never a negative count)."""
    arrays, meta = synthetic(contexts=1, lengths=2)
    p = _archive(tmp_path, arrays, meta, context_offsets=np.zeros(0, dtype=np.int64),
                 context_tokens=np.zeros(0, dtype=np.uint16))
    assert re.search(r"field 'context_offsets': must rise from 0 to len\(context_tokens\) = 0", _load_error(p))
    p = _archive(tmp_path, arrays, meta, context_offsets=np.zeros(0, dtype=np.int64),
                 context_tokens=np.zeros(1, dtype=np.uint16))
    assert re.search(r"field 'context_tokens' declares shape \(1,\) of uint16, more than a trace allows \(at most 0 "
                     r"entries of 16 bytes: 0 contexts of at most 2097152 tokens\)", _load_error(p))


def test_a_scalar_top_logp_counts_as_one_row(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=1, k=1)
    arrays["top_logp"] = arrays["top_logp"].reshape(())
    err = _load_error(_archive(tmp_path, arrays, meta))
    assert re.search(r"field 'top_logp': must have 2 dimension\(s\), got shape \(\)$", err), err
    err = _declared(tmp_path, "entropy", (2,), "<f8", arrays, meta)
    assert re.search(r"at most 1 entries of 16 bytes: one per row, and 'top_logp' has 1 rows", err), err


@pytest.mark.parametrize("vocab,ok", [(None, 2**24), (True, 2**24), (0, 2**24), (-3, 2**24), (3.0, 2**24),
                                      ("400", 2**24), (7, 7)])
def test_token_strings_are_limited_by_a_positive_integer_vocab_size_and_otherwise_by_2_to_the_24(tmp_path, vocab,
                                                                                                ok):
    arrays, meta = synthetic()
    meta = {key: val for key, val in meta.items() if key != "vocab_size"}
    if vocab is not None:
        meta["vocab_size"] = vocab
    at = _declared(tmp_path, "token_strings", (ok,), "<U1", arrays, meta)
    assert re.search(rf"field 'token_strings' {HEADER_CLAIMS}", at), at
    past = _declared(tmp_path, "token_strings", (ok + 1,), "<U1", arrays, meta)
    assert re.search(rf"field 'token_strings' declares shape \({ok + 1},\) of <U1, more than a trace allows \(at "
                     rf"most {ok} entries of 4096 bytes", past), past


# ---------------------------------------------------------------------------------------------------------
# Error texts: the clip of a decoding error.


@pytest.mark.parametrize("n,want", [(147, "ValueError: " + "x" * 147), (148, "ValueError: " + "x" * 145 + "...")])
def test_an_exception_text_is_clipped_to_160_characters_only_when_longer_than_159(n, want):
    got = traces._short(ValueError("x" * n))
    assert got == want and len(got) == len(want) <= 160


def test_an_exception_text_is_one_line():
    assert traces._short(KeyError("a\nb")) == "KeyError: 'a\\nb'"
    assert traces._short(ValueError("a\nb")) == "ValueError: a b"


# ---------------------------------------------------------------------------------------------------------
# The header.


def test_an_unsigned_schema_version_is_read(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=2)
    assert load_trace(_archive(tmp_path, arrays, meta, schema_version=np.array(1, dtype=np.uint8))).k == 8


@pytest.mark.parametrize("value", [np.array(1.0), np.array("1"), np.array([1])], ids=["float", "str", "shape1"])
def test_a_schema_version_that_is_not_one_integer_is_refused(tmp_path, value):
    arrays, meta = synthetic(contexts=1, lengths=2)
    err = _load_error(_archive(tmp_path, arrays, meta, schema_version=value))
    assert err.endswith(": field 'schema_version': must be a single integer"), err


def test_schema_version_zero_is_refused_naming_both_versions(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=2)
    err = _load_error(_archive(tmp_path, arrays, meta, schema_version=np.array(0)))
    assert err.endswith(": field 'schema_version': schema version 0 is not supported: this brw reads version 1; "
                        "upgrade brw or re-record the trace"), err


def test_every_missing_field_is_named_in_format_order(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=2)
    err = _load_error(_archive(tmp_path, arrays, meta, offset=None, taken=None))
    assert err == f"trace {tmp_path / 'x.npz'}: missing field(s) taken, offset; not a complete brw trace"


def test_the_header_is_checked_before_the_fields_it_sizes_are_read(tmp_path):
    """A missing field is reported even when another field is a lie that could not be read."""
    arrays, meta = synthetic(contexts=1, lengths=2)
    p = _archive(tmp_path, arrays, meta, [("entropy.npy", _npy_header((10**12,)))], entropy=None, taken=None)
    assert _load_error(p).endswith("missing field(s) taken; not a complete brw trace")


@pytest.mark.parametrize("value", [np.array(b"brw-trace"), np.array(["brw-trace"])], ids=["bytes", "shape1"])
def test_a_format_that_is_not_one_string_is_refused(tmp_path, value):
    arrays, meta = synthetic(contexts=1, lengths=2)
    err = _load_error(_archive(tmp_path, arrays, meta, format=value))
    assert err.endswith(": field 'format': must be a single string"), err


def test_a_format_that_is_another_string_is_refused_quoting_both(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=2)
    err = _load_error(_archive(tmp_path, arrays, meta, format=np.array("brw-trace2")))
    assert err.endswith(": field 'format': is 'brw-trace2', not 'brw-trace'"), err


@pytest.mark.parametrize("text,says", [("[1, 2]", "must be a JSON object"), ('"x"', "must be a JSON object"),
                                       ("[" * 100_000 + "]" * 100_000, "nests its JSON more deeply than metadata does"),
                                       ("{", r"is not valid JSON \(Expecting property name")])
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path, text, says):
    arrays, meta = synthetic(contexts=1, lengths=2)
    err = _load_error(_archive(tmp_path, arrays, meta, meta=np.array(text)))
    assert re.search(rf": field 'meta': {says}", err), err


# ---------------------------------------------------------------------------------------------------------
# Shapes and dtypes.


@pytest.mark.parametrize("shape", [(0, 8), (3, 0)])
def test_an_empty_top_k_is_refused(shape):
    arrays, meta = synthetic(contexts=1, lengths=3)
    msg = _refusal({**arrays, "top_logp": np.zeros(shape, dtype=np.float32)}, meta)
    assert msg == f"trace t: field 'top_logp': has shape {shape}: a trace needs at least one row and one top entry"


def test_a_one_by_one_top_k_is_a_trace():
    arrays, meta = synthetic(contexts=1, lengths=1, k=1)
    assert make_trace(meta=meta, **arrays).k == 1


def test_a_field_that_is_not_an_array_is_refused():
    arrays, meta = synthetic(contexts=1, lengths=2)
    assert _refusal({**arrays, "entropy": list(arrays["entropy"])}, meta) == "trace t: field 'entropy': is not an " \
                                                                              "array"


@pytest.mark.parametrize("name,dtype,want", [("context", np.float64, "integer"), ("taken", np.float32, "integer"),
                                             ("top_ids", np.float64, "integer"), ("entropy", np.int64,
                                                                                  "floating-point")])
def test_integer_and_float_fields_name_the_kind_they_need(name, dtype, want):
    arrays, meta = synthetic(contexts=1, lengths=2)
    msg = _refusal({**arrays, name: arrays[name].astype(dtype)}, meta)
    assert msg == f"trace t: field '{name}': must be {want}, got dtype {np.dtype(dtype)}"


def test_uint8_context_and_offset_indices_are_integers_whose_positions_do_not_wrap():
    """20 contexts of up to 14 tokens: (context, offset) keys reach 19 * 15 + 13 > 255, past uint8, and must not
    wrap into false duplicates."""
    arrays, meta = synthetic(contexts=20)
    arrays = {**arrays, "context": arrays["context"].astype(np.uint8), "offset": arrays["offset"].astype(np.uint8)}
    assert make_trace(meta=meta, **arrays).positions == 140


def test_a_bracket_field_with_too_few_rows_is_refused():
    arrays, meta = synthetic(contexts=1, lengths=4)
    for name in ("entropy", "log_moment2"):
        arrays[name + "_lo"], arrays[name + "_hi"] = arrays[name] * 0.5, arrays[name] * 2
    arrays["entropy_hi"] = arrays["entropy_hi"][:3]
    assert _refusal(arrays, meta) == "trace t: field 'entropy_hi': has 3 rows but 'top_logp' has 4"


@pytest.mark.parametrize("names,first", [(("entropy_hi", "log_moment2_lo"), "entropy_hi"),
                                         (("entropy_lo", "entropy_hi", "log_moment2_hi"), "entropy_lo")])
def test_brackets_come_as_a_set_of_four_naming_the_first_present(names, first):
    arrays, meta = synthetic(contexts=1, lengths=3)
    for name in names:
        arrays[name] = arrays[name.rsplit("_", 1)[0]].copy()
    assert _refusal(arrays, meta) == (f"trace t: field '{first}': bracket fields come as a set of four (entropy_lo, "
                                      f"entropy_hi, log_moment2_lo, log_moment2_hi)")


# ---------------------------------------------------------------------------------------------------------
# Values.


def test_a_log_probability_of_exactly_zero_is_not_above_zero_and_the_least_float_above_is():
    arrays, meta = synthetic(contexts=1, lengths=3)
    # 0.0 in the top-k: allowed as a log-probability; the row's mass is then too large (the next check).
    assert _field(_refusal(_with(arrays, "top_logp", (1, 0), 0.0), meta)) == "tail_mass"
    tiny = np.nextafter(np.float32(0), np.float32(1))
    msg = _refusal(_with(arrays, "top_logp", (1, 0), tiny), meta)
    assert msg == f"trace t: field 'top_logp' row 1: log-probability {float(tiny)!r} (column 0) is above 0"


def test_a_taken_log_probability_of_exactly_zero_is_allowed_and_the_least_float_above_refused():
    arrays, meta = synthetic(contexts=1, lengths=3)
    assert _refusal(_with(arrays, "taken_logp", 2, 0.0), meta) is None
    assert _refusal(_with(arrays, "taken_logp", 2, 5e-324), meta) == ("trace t: field 'taken_logp' row 2: "
                                                                     "log-probability 5e-324 is above 0")


def test_a_two_entry_top_k_is_checked_for_order_and_duplicates():
    arrays, meta = _from_dists(_dists(3, 6), k=2)
    assert _refusal(arrays, meta) is None
    swapped = np.array(arrays["top_logp"], copy=True)
    swapped[2] = swapped[2, ::-1]
    msg = _refusal({**arrays, "top_logp": swapped}, meta)
    assert msg == (f"trace t: field 'top_logp' row 2: top-k not sorted in decreasing order (column 1 = "
                   f"{float(swapped[2, 1])!r} > column 0 = {float(swapped[2, 0])!r})")
    dup = np.array(arrays["top_ids"], copy=True)
    dup[1, 1] = dup[1, 0]
    assert _refusal({**arrays, "top_ids": dup}, meta) == ("trace t: field 'top_ids' row 1: the same token id appears "
                                                          "twice in the top-k")


def test_the_first_unsorted_column_is_named():
    arrays, meta = synthetic(contexts=1, lengths=3)
    a = np.array(arrays["top_logp"], copy=True)
    a[1, 5], a[1, 6] = a[1, 6], a[1, 5]
    msg = _refusal({**arrays, "top_logp": a}, meta)
    assert msg.startswith("trace t: field 'top_logp' row 1: top-k not sorted in decreasing order (column 6 = ")


@pytest.mark.parametrize("name", ["entropy", "log_moment2", "tail_mass", "entropy_lo", "entropy_hi", "log_moment2_lo",
                                  "log_moment2_hi"])
def test_every_statistic_may_be_zero_but_not_the_least_float_below(name):
    """A zero statistic is not negative (later checks may refuse the row, never as negative); -5e-324 is."""
    arrays, meta = synthetic(contexts=1, lengths=4)
    for stat in ("entropy", "log_moment2"):
        arrays[stat + "_lo"], arrays[stat + "_hi"] = arrays[stat] * 0.0, arrays[stat] * 2.0
    assert _refusal(arrays, meta) is None
    msg = _refusal(_with(arrays, name, 2, 0.0), meta)
    assert msg is None or "is negative" not in msg, msg
    msg = _refusal(_with(arrays, name, 2, -5e-324), meta)
    assert msg == f"trace t: field '{name}' row 2: value -5e-324 is negative"


def test_the_first_negative_row_is_named():
    arrays, meta = synthetic(contexts=1, lengths=6)
    a = np.array(arrays["log_moment2"], copy=True)
    a[[3, 5]] = -1.0
    assert _refusal({**arrays, "log_moment2": a}, meta) == "trace t: field 'log_moment2' row 3: value -1.0 is negative"


# ---------------------------------------------------------------------------------------------------------
# Mass: top-k plus tail within 1e-4 of 1, boundary included.


def _tail_at(top_mass, target):
    """A tail mass t with top_mass + t == target exactly (float64), and the next float above it."""
    t = target - top_mass
    for _ in range(64):
        total = top_mass + t
        if total == target:
            up = np.nextafter(t, np.inf)
            while top_mass + up == target:
                up = np.nextafter(up, np.inf)
            down = np.nextafter(t, -np.inf)
            while top_mass + down == target:
                down = np.nextafter(down, -np.inf)
            return t, up, down
        t = np.nextafter(t, -np.inf if total > target else np.inf)
    raise AssertionError("no tail mass meets the target exactly")


def test_a_total_mass_of_exactly_one_plus_the_tolerance_is_kept_and_the_next_float_refused():
    arrays, meta = synthetic(contexts=1, lengths=4)
    r = 1
    top_mass = np.exp(arrays["top_logp"].astype(np.float64)).sum(axis=1)[r]
    t, up, _ = _tail_at(top_mass, 1 + 1e-4)
    assert _refusal(_with(arrays, "tail_mass", r, t), meta) is None
    msg = _refusal(_with(arrays, "tail_mass", r, up), meta)
    assert msg == (f"trace t: field 'tail_mass' row {r}: top-k mass {top_mass:.9g} plus tail mass {up:.9g} = "
                   f"{top_mass + up:.9g} exceeds 1 by more than 0.0001")


def test_a_total_mass_of_exactly_one_minus_the_tolerance_is_kept_and_the_next_float_below_refused():
    arrays, meta = synthetic(contexts=1, lengths=4)
    r = 2
    top_mass = np.exp(arrays["top_logp"].astype(np.float64)).sum(axis=1)[r]
    t, _, down = _tail_at(top_mass, 1 - 1e-4)
    assert _refusal(_with(arrays, "tail_mass", r, t), meta) is None
    msg = _refusal(_with(arrays, "tail_mass", r, down), meta)
    assert msg == (f"trace t: field 'tail_mass' row {r}: top-k mass {top_mass:.9g} plus tail mass {down:.9g} = "
                   f"{top_mass + down:.9g} falls short of 1 by more than 0.0001")


# ---------------------------------------------------------------------------------------------------------
# vocab_size.


def test_a_vocabulary_as_large_as_k_is_allowed_and_one_smaller_refused():
    arrays, meta = _from_dists(_dists(3, 4), k=4)
    assert meta["vocab_size"] == 4 and _refusal(arrays, meta) is None
    assert _refusal(arrays, {**meta, "vocab_size": 3}) == "trace t: field 'meta': vocab_size must be a whole number " \
                                                          ">= k = 4 and at most 2**31, got 3"


@pytest.mark.parametrize("vocab", [True, 1.0, "1"])
def test_a_vocab_size_that_is_not_an_integer_is_refused_even_when_it_equals_k(vocab):
    arrays, meta = _from_dists(_dists(2, 1), k=1)
    assert _refusal(arrays, meta) is None
    assert _refusal(arrays, {**meta, "vocab_size": vocab}) == (f"trace t: field 'meta': vocab_size must be a whole "
                                                               f"number >= k = 1 and at most 2**31, got {vocab!r}")


def test_a_vocab_size_of_2_to_the_31_is_read_and_one_more_refused_quoted_clipped(tmp_path):
    """Token ids are int32 beyond 65,536 tokens; a larger size (a JSON integer such as 10**400 reached the tail
    fit's float division as an OverflowError once) is refused in one line."""
    arrays, meta = synthetic(contexts=1, lengths=2)
    at = raw_save(tmp_path / "at.npz", arrays, {**meta, "vocab_size": 1 << 31})
    assert load_trace(at).meta["vocab_size"] == 1 << 31
    clipped = "1" + "0" * 25 + "...(401 characters)..." + "0" * 10
    for vocab, shown in [((1 << 31) + 1, "2147483649"), (10**400, clipped)]:
        path = raw_save(tmp_path / "past.npz", arrays, {**meta, "vocab_size": vocab})
        with pytest.raises(BrwError, match=r"vocab_size must be a whole number >= k = \d+ and at most 2\*\*31, "
                                           rf"got {re.escape(shown)}$"):
            load_trace(path)


def test_without_a_vocab_size_ids_and_context_tokens_have_no_upper_bound():
    arrays, meta = synthetic(contexts=1, lengths=3)
    meta = {key: val for key, val in meta.items() if key != "vocab_size"}
    toks = arrays["context_tokens"].astype(np.int64)
    toks[0] = 10**9  # a prompt token no row takes
    ids = arrays["top_ids"].astype(np.int64)
    ids[0, -1] = 10**9
    t = make_trace(meta=meta, **{**arrays, "context_tokens": toks, "top_ids": ids})
    assert t.context_tokens[0] == 10**9 and t.top_ids[0, -1] == 10**9


# ---------------------------------------------------------------------------------------------------------
# Moments: the entropy and second log-moment a top-k and its tail can produce, within 1e-4.


def test_an_entropy_exactly_at_its_lower_bound_less_the_tolerance_is_kept_and_the_next_float_below_refused():
    arrays, meta = synthetic(contexts=1, lengths=6)
    r = 2  # a Zipf-like row: its tail's least entropy is well above 0
    h_top, h_lo, h_hi, *_ = _bounds(arrays, V)
    assert h_lo[r] > 0.01
    edge = (h_top + h_lo)[r] - 1e-4
    assert _refusal(_with(arrays, "entropy", r, edge), meta) is None
    below = np.nextafter(edge, -np.inf)
    msg = _refusal(_with(arrays, "entropy", r, below), meta)
    assert msg == (f"trace t: field 'entropy' row {r}: entropy {below:.9g} nats cannot come from this top-k and "
                   f"tail: with top-k mass {np.exp(arrays['top_logp'][r].astype(np.float64)).sum():.9g} it must "
                   f"lie in [{(h_top + h_lo)[r]:.9g}, {(h_top + h_hi)[r]:.9g}] (within 0.0001)")


def test_an_entropy_exactly_at_its_upper_bound_plus_the_tolerance_is_not_refused_for_its_entropy():
    """At h_top + h_hi + 1e-4 the entropy check passes (the second moment's Cauchy-Schwarz bound may then refuse
    the row); the next float above is refused as an entropy."""
    arrays, meta = synthetic(contexts=1, lengths=6)
    r = 2
    h_top, _, h_hi, *_ = _bounds(arrays, V)
    edge = (h_top + h_hi)[r] + 1e-4
    assert _field(_refusal(_with(arrays, "entropy", r, edge), meta)) != "entropy"
    msg = _refusal(_with(arrays, "entropy", r, np.nextafter(edge, np.inf)), meta)
    assert re.fullmatch(rf"trace t: field 'entropy' row {r}: entropy .* nats cannot come from this top-k and "
                        rf"tail: .*", msg), msg


def test_without_a_vocab_size_the_entropy_has_no_upper_bound():
    arrays, meta = synthetic(contexts=1, lengths=3)
    meta = {key: val for key, val in meta.items() if key != "vocab_size"}
    big = _with(_with(arrays, "entropy", 1, 30.0), "log_moment2", 1, 1e6)
    assert _refusal(big, meta) is None


def test_a_second_log_moment_exactly_at_its_lower_bound_less_the_tolerance_is_kept():
    """Row 2 of synthetic() is one whose Cauchy-Schwarz bound (with the row's tail entropy taken 1e-6 nats
    smaller for the float32 rounding of its top-k) is the binding lower bound: moving that allowance moves the
    edge by far more than a float."""
    arrays, meta = synthetic()
    r = 2
    h_top, _, _, s_top, s_lo, s_hi = _bounds(arrays, V)
    top = arrays["top_logp"][r].astype(np.float64)
    cs = ((arrays["entropy"][r] - h_top[r] - 1e-6) ** 2) / (1.0 - np.exp(top).sum())
    assert s_lo[r] == cs and cs > tail_bounds(top[None], V)[2][0] + 0.5
    edge = (s_top + s_lo)[r] - 1e-4
    assert _refusal(_with(arrays, "log_moment2", r, edge), meta) is None
    below = np.nextafter(edge, -np.inf)
    msg = _refusal(_with(arrays, "log_moment2", r, below), meta)
    assert msg.startswith(f"trace t: field 'log_moment2' row {r}: second log-moment {below:.9g} nats^2 cannot come "
                          f"from this top-k and tail: with top-k mass ")
    assert msg.endswith(f"must lie in [{(s_top + s_lo)[r]:.9g}, {(s_top + s_hi)[r]:.9g}] (within 0.0001)")


def test_a_second_log_moment_exactly_at_its_upper_bound_plus_the_tolerance_is_kept():
    arrays, meta = synthetic(contexts=1, lengths=6)
    r = 1  # a flat row: its tail's largest second moment is finite
    *_, s_top, _, s_hi = _bounds(arrays, V)
    edge = (s_top + s_hi)[r] + 1e-4
    assert _refusal(_with(arrays, "log_moment2", r, edge), meta) is None
    msg = _refusal(_with(arrays, "log_moment2", r, np.nextafter(edge, np.inf)), meta)
    assert msg.startswith(f"trace t: field 'log_moment2' row {r}: second log-moment ")


def _peaked_rows():
    """One row of k = 2 over V = 4 tokens (two tail slots) peaked so that its top-k leaves 5e-7 more tail than two
    tokens of p_k = 1e-3 can hold: tail_bounds finds no room; the recorded tail mass, if it fits under
    p_k up to the float32 rounding of log p_k, bounds the tail instead."""
    pk = 1e-3
    top = np.array([[math.log(1 - pk - 2 * pk - 5e-7), math.log(pk)]], dtype=np.float32)
    arrays = {"top_logp": top, "top_ids": np.array([[0, 1]]), "taken": np.array([0]), "taken_logp": np.array([-0.01]),
              "context": np.array([0]), "offset": np.array([1]), "context_tokens": np.array([0, 0]),
              "context_offsets": np.array([0, 2]), "prompt_lengths": np.array([1])}
    meta = {"model": "hand", "mode": "sampled", "vocab_size": 4, "k": 2}
    return arrays, meta


def _fit_moments(arrays, tm):
    """The arrays with tail mass ``tm`` and entropy and second moment in the middle of what the check allows."""
    arrays = {**arrays, "tail_mass": np.array([tm]), "entropy": np.array([0.0]), "log_moment2": np.array([0.0])}
    h_top, h_lo, h_hi, *_ = _bounds(arrays, 4)
    arrays["entropy"] = (h_top + (h_lo + h_hi) / 2)
    _, _, _, s_top, s_lo, s_hi = _bounds(arrays, 4)
    arrays["log_moment2"] = s_top + (s_lo + s_hi) / 2
    return arrays


def test_a_recorded_tail_mass_fits_under_p_k_up_to_the_float32_rounding_of_log_p_k():
    arrays, meta = _peaked_rows()
    lpk = float(arrays["top_logp"][0, -1])
    # per tail token, as _check_moments allows: numpy's exp, as there (on another CPU's libm it may differ from
    # math.exp in the last bit, and this test sits on that bit)
    cap = float(np.exp(np.float64(lpk))) * (1 + abs(lpk) * EPS32 + 1e-9)
    tm = 2 * cap  # tm / 2 == cap exactly
    assert tm / 2 == cap and np.isneginf(tail_bounds(arrays["top_logp"].astype(np.float64), 4)[1][0])
    ok = _fit_moments(arrays, tm)
    assert _refusal(ok, meta) is None
    over = np.nextafter(tm, np.inf)
    msg = _refusal({**ok, "tail_mass": np.array([over])}, meta)
    assert re.fullmatch(r"trace t: field 'entropy' row 0: entropy .* nats cannot come from this top-k and tail: "
                        r"with top-k mass .* it must lie in \[.*, -inf\] \(within 0\.0001\)", msg), msg


def _edge(value, tol, side):
    """The float b with value == b - tol (side "lo") or value == b + tol (side "hi") exactly, and the float past
    it on the refusing side (the least b' with value < b' - tol, or the greatest with value > b' + tol)."""
    sign = 1 if side == "lo" else -1
    b = value + sign * tol
    for _ in range(64):
        got = b - tol if side == "lo" else b + tol
        if got == value:
            break
        b = np.nextafter(b, np.inf if got < value else -np.inf)
    else:
        raise AssertionError("no exact edge")
    past = b
    while (value >= past - tol) if side == "lo" else (value <= past + tol):
        past = np.nextafter(past, np.inf if side == "lo" else -np.inf)
    return b, past


@pytest.mark.parametrize("name", ["entropy", "log_moment2"])
@pytest.mark.parametrize("side", ["lo", "hi"])
def test_a_value_exactly_the_tolerance_outside_its_bracket_is_kept_and_the_next_float_refused(name, side):
    arrays, meta = synthetic(contexts=1, lengths=4)
    r = 1
    for stat in ("entropy", "log_moment2"):
        arrays[stat + "_lo"], arrays[stat + "_hi"] = arrays[stat] * 0.5, arrays[stat] * 2.0
    v = arrays[name][r]
    b, past = _edge(v, 1e-4, side)
    other = "hi" if side == "lo" else "lo"
    far = b + (1.0 if side == "lo" else -1.0)
    ok = _with(_with(arrays, f"{name}_{side}", r, b), f"{name}_{other}", r, far)
    assert _refusal(ok, meta) is None
    bad = _with(ok, f"{name}_{side}", r, past)
    lo, hi = (past, far) if side == "lo" else (far, past)
    assert _refusal(bad, meta) == (f"trace t: field '{name}' row {r}: value {float(v)!r} lies outside its bracket "
                                   f"[{float(lo)!r}, {float(hi)!r}]")


def test_a_bracket_whose_ends_cross_is_refused_even_within_the_tolerance_and_a_point_bracket_kept():
    arrays, meta = synthetic(contexts=1, lengths=4)
    for stat in ("entropy", "log_moment2"):
        arrays[stat + "_lo"], arrays[stat + "_hi"] = arrays[stat].copy(), arrays[stat].copy()
    assert _refusal(arrays, meta) is None
    e = arrays["entropy"][3]
    crossed = _with(_with(arrays, "entropy_lo", 3, e + 1e-5), "entropy_hi", 3, e - 1e-5)
    assert _refusal(crossed, meta) == (f"trace t: field 'entropy' row 3: value {float(e)!r} lies outside its "
                                       f"bracket [{float(e + 1e-5)!r}, {float(e - 1e-5)!r}]")


# ---------------------------------------------------------------------------------------------------------
# Ids and token strings.


def test_ids_run_from_0_to_vocab_size_less_one():
    arrays, meta = _from_dists(_dists(4, 5, seed=3), k=5)
    assert arrays["top_ids"].min() == 0 and arrays["top_ids"].max() == 4 and _refusal(arrays, meta) is None
    ids = np.array(arrays["top_ids"], copy=True)
    ids[2, 3] = 5
    assert _refusal({**arrays, "top_ids": ids}, meta) == ("trace t: field 'top_ids' row 2: token id 5 outside the "
                                                          "vocabulary 0..4")
    ids[2, 3] = -1
    assert _refusal({**arrays, "top_ids": ids}, meta) == ("trace t: field 'top_ids' row 2: token id -1 outside the "
                                                          "vocabulary 0..4")


def test_a_negative_id_is_refused_without_a_vocab_size():
    arrays, meta = _from_dists(_dists(3, 5), k=3, vocab=False)
    assert _refusal(arrays, meta) is None
    ids = np.array(arrays["top_ids"], copy=True)
    ids[1, 2] = -1
    assert _refusal({**arrays, "top_ids": ids}, meta) == ("trace t: field 'top_ids' row 1: token id -1 outside the "
                                                          "vocabulary 0..")


def test_a_taken_token_at_the_vocabulary_size_is_refused():
    arrays, meta = _from_dists(_dists(3, 5), k=3)
    taken = np.array(arrays["taken"], copy=True)
    taken[1] = 5
    assert _refusal({**arrays, "taken": taken}, meta) == ("trace t: field 'taken' row 1: token id 5 outside the "
                                                          "vocabulary 0..4")


def test_token_strings_may_list_the_whole_vocabulary_and_not_one_more():
    arrays, meta = _from_dists(_dists(3, 5), k=3)
    names = np.array([f"t{i}" for i in range(5)])
    assert make_trace(meta=meta, token_strings=names, **arrays).token_strings.tolist() == names.tolist()
    more = np.array([f"t{i}" for i in range(6)])
    assert _refusal({**arrays, "token_strings": more}, meta) == ("trace t: field 'token_strings': lists 6 tokens, "
                                                                 "more than vocab_size 5")


def test_token_strings_bound_the_ids_to_their_own_count():
    """With token strings, ids run below their count (here 4 of a 5-token vocabulary)."""
    arrays, meta = _from_dists(_dists(3, 5, seed=0), k=3)
    top = int(max(arrays["top_ids"].max(), arrays["context_tokens"].max()))
    assert top == 3
    n = top + 1
    assert _refusal({**arrays, "token_strings": np.array(["a"] * n)}, meta) is None
    msg = _refusal({**arrays, "token_strings": np.array(["a"] * top)}, meta)
    assert re.fullmatch(rf"trace t: field '(top_ids|taken)' row \d: token id {top} outside the vocabulary "
                        rf"0\.\.{top - 1}", msg), msg


@pytest.mark.parametrize("value", [np.array([["a"]]), np.array([b"a"]), np.array("a"), ["a"]],
                         ids=["2d", "bytes", "0d", "list"])
def test_token_strings_must_be_a_one_dimensional_array_of_strings(value):
    arrays, meta = _from_dists(_dists(3, 5), k=3)
    assert _refusal({**arrays, "token_strings": value}, meta) == ("trace t: field 'token_strings': must be a 1-D "
                                                                  "array of strings")


# ---------------------------------------------------------------------------------------------------------
# Contexts and positions.


def test_context_tokens_run_from_0_to_vocab_size_less_one():
    arrays, meta = synthetic(contexts=2)
    toks = np.array(arrays["context_tokens"], copy=True)
    toks[0], toks[1] = 0, V - 1  # prompt tokens no row takes
    assert _refusal({**arrays, "context_tokens": toks}, meta) is None
    neg = toks.astype(np.int64)
    neg[1] = -1
    assert _refusal({**arrays, "context_tokens": neg}, meta) == ("trace t: field 'context_tokens': token id outside "
                                                                 "the vocabulary")


def test_context_offsets_need_two_entries_and_must_end_at_the_token_count():
    arrays, meta = synthetic(contexts=2)
    n = arrays["context_tokens"].shape[0]
    want = (f"trace t: field 'context_offsets': must rise from 0 to len(context_tokens) = {n} with one entry per "
            f"context plus one")
    offs = np.array(arrays["context_offsets"], copy=True)
    offs[-1] = n - 1
    assert _refusal({**arrays, "context_offsets": offs}, meta) == want
    one = {**arrays, "context_offsets": np.array([0]), "context_tokens": arrays["context_tokens"][:0],
           "prompt_lengths": np.zeros(0, dtype=np.int64)}
    assert _refusal(one, meta) == want.replace(f"= {n} ", "= 0 ")


def test_an_empty_context_between_two_others_is_allowed_and_falling_offsets_refused():
    arrays, meta = synthetic(contexts=2)
    a, b = (int(x) for x in arrays["context_offsets"][1:])
    plen = arrays["prompt_lengths"]
    empty = {**arrays, "context_offsets": np.array([0, a, a, b]),
             "prompt_lengths": np.array([plen[0], 0, plen[1]]),
             "context": np.where(arrays["context"] == 1, 2, 0).astype(np.int32)}
    t = make_trace(meta=meta, **empty)
    assert t.contexts == 3 and t.context_ids(1).size == 0
    falling = {**empty, "context_offsets": np.array([0, a, a - 1, b])}
    assert _field(_refusal(falling, meta)) == "context_offsets"


def test_prompt_lengths_are_counted_against_the_contexts():
    arrays, meta = synthetic(contexts=3)
    msg = _refusal({**arrays, "prompt_lengths": arrays["prompt_lengths"][:2]}, meta)
    assert msg == "trace t: field 'prompt_lengths': has 2 entries for 3 contexts"


def test_a_prompt_may_fill_its_context_but_not_exceed_it_nor_be_negative():
    arrays, meta = synthetic(contexts=3)
    lens = np.diff(arrays["context_offsets"])
    plen = np.array(arrays["prompt_lengths"], dtype=np.int64)
    plen[1] = lens[1]
    plen[0] = 0
    assert _refusal({**arrays, "prompt_lengths": plen}, meta) is None
    plen[1] = lens[1] + 1
    assert _refusal({**arrays, "prompt_lengths": plen}, meta) == ("trace t: field 'prompt_lengths' row 1: context 1: "
                                                                  "prompt longer than the context")
    plen[1] = lens[1]
    plen[2] = -1
    assert _refusal({**arrays, "prompt_lengths": plen}, meta) == ("trace t: field 'prompt_lengths' row 2: context 2: "
                                                                  "prompt longer than the context")


@pytest.mark.parametrize("value", [5, -1])
def test_context_indices_run_from_0_to_the_last_context(value):
    arrays, meta = synthetic(contexts=5)
    assert arrays["context"].max() == 4
    msg = _refusal(_with(arrays, "context", 3, value), meta)
    assert msg == f"trace t: field 'context' row 3: context index {value} outside 0..4"


def test_offsets_run_from_1_to_the_context_length_less_one():
    arrays, meta = _from_dists(_dists(3, 6), k=2)
    assert arrays["offset"].tolist() == [1, 2, 3] and _refusal(arrays, meta) is None  # 1 and len - 1 = 3 both kept
    # One more token, the last row's taken token, at the end of the context: offset 4 = len - 1 is kept.
    longer = {**arrays, "context_tokens": np.concatenate([arrays["context_tokens"], arrays["taken"][2:]]),
              "context_offsets": np.array([0, 5])}
    assert _refusal(_with(longer, "offset", 2, 4), meta) is None
    assert _refusal(_with(longer, "offset", 2, 5), meta) == ("trace t: field 'offset' row 2: offset 5 outside 1..4 "
                                                             "of context 0")
    assert _refusal(_with(arrays, "offset", 0, 0), meta) == ("trace t: field 'offset' row 0: offset 0 outside 1..3 "
                                                             "of context 0")
    assert _refusal(_with(arrays, "offset", 2, 4), meta) == "trace t: field 'offset' row 2: offset 4 outside 1..3 " \
                                                           "of context 0"


def test_a_taken_token_that_differs_from_its_context_is_refused_with_both_tokens():
    arrays, meta = _from_dists(_dists(3, 6), k=2)
    toks = np.array(arrays["context_tokens"], copy=True)
    want = int(toks[2])
    toks[2] = (want + 1) % 6
    assert _refusal({**arrays, "context_tokens": toks}, meta) == (f"trace t: field 'taken' row 1: token {want} "
                                                                  f"differs from the context's token {(want + 1) % 6} "
                                                                  f"at offset 2")


def test_a_position_recorded_twice_names_the_second_row():
    arrays, meta = _from_dists(_dists(3, 6), k=2)
    twice = _with(_with(arrays, "offset", 2, 1), "taken", 2, arrays["taken"][0])
    twice["context_tokens"] = arrays["context_tokens"]
    msg = _refusal(twice, meta)
    assert msg == "trace t: field 'offset' row 2: position (context 0, offset 1) recorded twice"


# ---------------------------------------------------------------------------------------------------------
# Moments at other temperatures.


@pytest.mark.parametrize("present,first", [(("moments_at", "entropy_at"), "moments_at"),
                                           (("entropy_at", "log_moment2_at"), "entropy_at"),
                                           (("log_moment2_at",), "log_moment2_at")])
def test_moment_fields_come_as_a_set_of_three_naming_the_first_present(present, first):
    arrays, meta = synthetic(contexts=1, lengths=3)
    full = _moments_at(arrays, [0.5])
    part = {**arrays, **{name: full[name] for name in present}}
    assert _refusal(part, meta) == (f"trace t: field '{first}': moment fields come as a set of three (moments_at, "
                                    f"entropy_at, log_moment2_at)")


def test_up_to_64_temperatures_are_kept_and_65_or_none_refused():
    arrays, meta = synthetic(contexts=1, lengths=3)
    t = make_trace(meta=meta, **_moments_at(arrays, np.arange(1, 65) / 64))
    assert t.moments_at.shape == (64,) and t.entropy_at.shape == (3, 64)
    for m in (65, 0):
        msg = _refusal(_moments_at(arrays, np.arange(1, m + 1) / 64), meta)
        assert msg == f"trace t: field 'moments_at': must hold 1 to 64 temperatures, got {m}"


@pytest.mark.parametrize("temps,ok", [([0.5, 0.7], True), ([0.5, 0.5], False), ([0.0, 0.5], False),
                                      ([-0.5, 0.5], False), ([0.5, np.inf], False), ([np.nan], False),
                                      ([0.7, 0.5], False)])
def test_temperatures_must_be_finite_positive_and_strictly_increasing(temps, ok):
    arrays, meta = synthetic(contexts=1, lengths=3)
    msg = _refusal(_moments_at(arrays, temps), meta)
    if ok:
        assert msg is None
    else:
        assert msg == "trace t: field 'moments_at': temperatures must be finite, > 0 and increasing"


def test_temperatures_must_be_floats():
    arrays, meta = synthetic(contexts=1, lengths=3)
    full = _moments_at(arrays, [0.5])
    assert _refusal({**full, "moments_at": np.array([1])}, meta) == ("trace t: field 'moments_at': must be "
                                                                     "floating-point, got dtype int64")


def test_moments_need_one_value_per_row_and_temperature():
    arrays, meta = synthetic(contexts=1, lengths=3)
    full = _moments_at(arrays, [0.5, 0.7])
    msg = _refusal({**full, "log_moment2_at": full["log_moment2_at"][:, :1]}, meta)
    assert msg == "trace t: field 'log_moment2_at': has shape (3, 1), not (3, 2): one value per row and temperature"


@pytest.mark.parametrize("name", ["entropy_at", "log_moment2_at"])
def test_a_moment_of_zero_is_kept_and_the_least_float_below_refused_naming_its_column(name):
    arrays, meta = synthetic(contexts=1, lengths=3)
    full = _moments_at(arrays, [0.5, 0.7], np.zeros((3, 2)), np.ones((3, 2)))
    full[name] = np.array(full[name], copy=True)
    full[name][2, 1] = 0.0
    assert _refusal(full, meta) is None
    full[name][2, 1] = -5e-324
    assert _refusal(full, meta) == (f"trace t: field '{name}' row 2: value -5e-324 (column 1) is not a finite "
                                    f"number >= 0")


def test_a_tempered_entropy_may_reach_log_vocab_size_plus_the_tolerance_and_not_the_next_float():
    arrays, meta = synthetic(contexts=1, lengths=3)
    edge = math.log(V) + 1e-4
    h = np.ones((3, 2))
    h[1, 1] = edge
    s = np.full((3, 2), 100.0)
    assert _refusal(_moments_at(arrays, [0.5, 0.7], h, s), meta) is None
    h[1, 1] = np.nextafter(edge, np.inf)
    assert _refusal(_moments_at(arrays, [0.5, 0.7], h, s), meta) == (
        f"trace t: field 'entropy_at' row 1: entropy {float(h[1, 1])!r} and second log-moment 100.0 (column 1) cannot "
        f"come from one distribution (entropy <= log vocab_size, moment >= entropy^2)")


def test_without_a_vocab_size_a_tempered_entropy_has_no_upper_bound():
    arrays, meta = synthetic(contexts=1, lengths=3)
    meta = {key: val for key, val in meta.items() if key != "vocab_size"}
    assert _refusal(_moments_at(arrays, [0.5], np.full((3, 1), 50.0), np.full((3, 1), 2500.0)), meta) is None


def test_a_tempered_second_moment_below_entropy_squared_less_the_tolerance_is_refused():
    arrays, meta = synthetic(contexts=1, lengths=3)
    h = np.full((3, 1), 2.0)
    s = np.full((3, 1), 4.0)
    s[2, 0] = np.nextafter(4.0 - 1e-4, -np.inf)
    assert _refusal(_moments_at(arrays, [0.5], h, s), meta) == (
        f"trace t: field 'entropy_at' row 2: entropy 2.0 and second log-moment {float(s[2, 0])!r} (column 0) cannot "
        f"come from one distribution (entropy <= log vocab_size, moment >= entropy^2)")
