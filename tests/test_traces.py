"""The trace file format: round trips, validation (every error names the file, the field and the row), and a
reader that never unpickles, refuses what is not part of the format unread, and fuzzes clean."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trace_data import V, K, raw_save, synthetic, write_trace

from brw import BrwError
from brw.traces import SCHEMA_VERSION, load_trace, make_trace, save_trace


# ---------------------------------------------------------------------------------------------------------
# Round trips.


def test_round_trip(tmp_path, trace_file):
    arrays, meta = synthetic()
    t = load_trace(trace_file)
    for key, val in arrays.items():
        got = getattr(t, key)
        assert got.dtype == val.dtype, key
        np.testing.assert_array_equal(got, val, err_msg=key)
    assert t.meta == meta
    assert t.positions == len(arrays["entropy"]) and t.k == K and t.contexts == 5
    assert t.path == str(trace_file)
    # Saved again, it reads back the same; no temporary file is left behind; an ordinary file mode.
    again = save_trace(t, tmp_path / "again.npz")
    t2 = load_trace(again)
    for key in arrays:
        np.testing.assert_array_equal(getattr(t2, key), getattr(t, key))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.npz", "t.npz"]
    assert (os.stat(again).st_mode & 0o777) == (0o666 & ~_umask())
    # Context ids: the taken token sits at its offset.
    r = 7
    assert t.context_ids(int(t.context[r]))[int(t.offset[r])] == t.taken[r]


def _umask():
    u = os.umask(0)
    os.umask(u)
    return u


def test_bad_trace_writes_nothing(tmp_path):
    arrays, meta = synthetic()
    arrays["entropy"] = arrays["entropy"].copy()
    arrays["entropy"][2] = np.nan
    with pytest.raises(BrwError, match=r"field 'entropy' row 2: NaN or infinite"):
        make_trace(meta=meta, **arrays)
    good, _ = synthetic()
    t = make_trace(meta=meta, **good)
    t.entropy = arrays["entropy"]
    with pytest.raises(BrwError, match="NaN"):
        save_trace(t, tmp_path / "x.npz")
    with pytest.raises(BrwError, match="must end in .npz"):
        save_trace(make_trace(meta=meta, **good), tmp_path / "x.bin")
    with pytest.raises(BrwError, match="does not exist"):
        save_trace(make_trace(meta=meta, **good), tmp_path / "nope" / "x.npz")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# Validation: every error, with its message naming the file, the field and the row.


def _broken(tmp_path, **override):
    arrays, meta = synthetic()
    meta_override = override.pop("meta_dict", None)
    return raw_save(tmp_path / "bad.npz", arrays, meta_override or meta, **override)


def _mod(name, fn):
    arrays, _ = synthetic()
    a = arrays[name].copy()
    fn(a)
    return {name: a}


CASES = [
    ("nan", _mod("entropy", lambda a: a.__setitem__(3, np.nan)), r"field 'entropy' row 3: NaN or infinite"),
    ("inf", _mod("top_logp", lambda a: a.__setitem__((4, 2), -np.inf)), r"field 'top_logp' row 4: NaN or infinite"),
    ("positive", _mod("top_logp", lambda a: a.__setitem__((1, 0), 0.25)),
     r"field 'top_logp' row 1: log-probability 0\.25 \(column 0\) is above 0"),
    ("unsorted", _mod("top_logp", lambda a: a.__setitem__((5, slice(None)), a[5][[0, 2, 1, 3, 4, 5, 6, 7]])),
     r"field 'top_logp' row 5: top-k not sorted in decreasing order \(column 2"),
    ("mass>1", _mod("tail_mass", lambda a: a.__setitem__(6, a[6] + 0.01)),
     r"field 'tail_mass' row 6: .* exceeds 1 by more than 0\.0001"),
    ("mass<1", _mod("tail_mass", lambda a: a.__setitem__(np.argmax(a), 0.0)),
     r"field 'tail_mass' row \d+: top-k mass .* plus tail mass 0 = .* falls short of 1 by more than 0\.0001"),
    ("entropy low", _mod("entropy", lambda a: a.__setitem__(0, 0.0)),
     r"field 'entropy' row 0: entropy 0 nats cannot come from this top-k and tail: .* must lie in \["),
    ("entropy high", _mod("entropy", lambda a: a.__setitem__(0, 50.0)),
     r"field 'entropy' row 0: entropy 50 nats cannot come from this top-k and tail"),
    ("mu2 low", _mod("log_moment2", lambda a: a.__setitem__(2, 0.0)),
     r"field 'log_moment2' row 2: second log-moment 0 nats\^2 cannot come from this top-k and tail"),
    ("negative entropy", _mod("entropy", lambda a: a.__setitem__(1, -1.0)), r"field 'entropy' row 1: value -1\.0 is negative"),
    ("rows", {"entropy": synthetic()[0]["entropy"][:-1]}, r"field 'entropy': has \d+ rows but 'top_logp' has \d+"),
    ("ids shape", {"top_ids": synthetic()[0]["top_ids"][:, :-1]}, r"field 'top_ids': has shape .* but 'top_logp'"),
    ("dtype", {"top_logp": synthetic()[0]["top_logp"].astype(np.int64)},
     r"field 'top_logp': must be floating-point, got dtype int64"),
    ("ndim", {"entropy": synthetic()[0]["entropy"][:, None]}, r"field 'entropy': must have 1 dimension"),
    ("schema", {"schema_version": np.array(2)}, r"field 'schema_version': schema version 2 is not supported"),
    ("no schema", {"schema_version": None}, r"not a brw trace \(no 'schema_version' field\)"),
    ("missing", {"taken": None}, r"missing field\(s\) taken"),
    ("format", {"format": np.array("other")}, r"field 'format': is 'other'"),
    ("meta json", {"meta": np.array("{not json")}, r"field 'meta': is not valid JSON"),
    ("id range", _mod("top_ids", lambda a: a.__setitem__((2, 3), V + 5)), r"field 'top_ids' row 2: token id 405 outside"),
    ("dup ids", _mod("top_ids", lambda a: a.__setitem__((2, 3), a[2, 2])), r"field 'top_ids' row 2: the same token id"),
    ("context", _mod("context", lambda a: a.__setitem__(4, 99)), r"field 'context' row 4: context index 99 outside"),
    ("offset", _mod("offset", lambda a: a.__setitem__(4, 0)), r"field 'offset' row 4: offset 0 outside"),
    ("taken", _mod("taken", lambda a: a.__setitem__(3, (int(a[3]) + 1) % V)),
     r"field 'taken' row 3: token \d+ differs from the context's token"),
    ("offsets", _mod("context_offsets", lambda a: a.__setitem__(0, 1)), r"field 'context_offsets': must rise from 0"),
    ("taken_logp", _mod("taken_logp", lambda a: a.__setitem__(3, 0.5)), r"field 'taken_logp' row 3: log-probability 0\.5"),
    ("context token", _mod("context_tokens", lambda a: a.__setitem__(0, V)),
     r"field 'context_tokens': token id outside the vocabulary"),
    ("schema shape", {"schema_version": np.array([SCHEMA_VERSION])}, r"field 'schema_version': must be a single "
                                                                     r"integer"),
    ("prompt length", _mod("prompt_lengths", lambda a: a.__setitem__(2, 10**6)),
     r"field 'prompt_lengths' row 2: context 2: prompt longer than the context"),
]


@pytest.mark.parametrize("name,override,pattern", CASES, ids=[c[0] for c in CASES])
def test_validation_errors(tmp_path, name, override, pattern):
    path = _broken(tmp_path, **override)
    with pytest.raises(BrwError, match=pattern) as e:
        load_trace(path)
    msg = str(e.value)
    assert msg.startswith(f"trace {path}: ") and "\n" not in msg


def test_duplicate_position(tmp_path):
    arrays, meta = synthetic()
    arrays = {k: np.concatenate([v, v[:1]]) if k in ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass",
                                                       "taken", "taken_logp", "context", "offset") else v
              for k, v in arrays.items()}
    with pytest.raises(BrwError, match=r"field 'offset' row \d+: position \(context 0, offset \d+\) recorded twice"):
        load_trace(raw_save(tmp_path / "d.npz", arrays, meta))


def test_vocab_meta(tmp_path):
    arrays, meta = synthetic()
    with pytest.raises(BrwError, match=r"field 'meta': vocab_size must be a whole number >= k"):
        load_trace(raw_save(tmp_path / "v.npz", arrays, {**meta, "vocab_size": 3}))


def test_pickled_objects_refused(tmp_path):
    arrays, meta = synthetic()
    obj = np.empty(3, dtype=object)
    obj[:] = [{"a": 1}, [2], "x"]
    path = raw_save(tmp_path / "p.npz", arrays, meta, entropy=obj)
    with pytest.raises(BrwError, match=r"field 'entropy' holds pickled Python objects; brw never unpickles"):
        load_trace(path)


def test_not_a_file(tmp_path):
    with pytest.raises(BrwError, match=r"trace file .*nope\.npz does not exist \(bundled traces: chat, chat-greedy, "
                       r"chat-t07, chat-t07-greedy, code, code-greedy, code-t07, code-t07-greedy, gemma3-chat, "
                       r"gemma3-chat-greedy, gemma3-code, gemma3-code-greedy, gemma3-math, gemma3-math-greedy, math, "
                       r"math-greedy, math-t07, math-t07-greedy\)"):
        load_trace(tmp_path / "nope.npz")
    with pytest.raises(BrwError, match="is not a file"):
        load_trace(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"hello, not a zip")
    with pytest.raises(BrwError, match=r"not a readable \.npz archive \(truncated or corrupt\)"):
        load_trace(tmp_path / "junk.npz")


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_archive(tmp_path, compressed):
    arrays, meta = synthetic()
    data = raw_save(tmp_path / "ok.npz", arrays, meta, compressed=compressed).read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        p = tmp_path / f"cut{cut}.npz"
        p.write_bytes(data[:cut])
        with pytest.raises(BrwError, match=r"truncated or corrupt"):
            load_trace(p)


def test_unsupported_zip_version(tmp_path):
    """zipfile raises NotImplementedError for a member that needs a newer zip version: still one BrwError."""
    data = bytearray(VALID[False])
    cd = data.find(b"PK\x01\x02")
    data[cd + 6:cd + 8] = (174).to_bytes(2, "little")
    p = tmp_path / "v.npz"
    p.write_bytes(bytes(data))
    with pytest.raises(BrwError, match=r"not a readable \.npz archive \(truncated or corrupt\): NotImplementedError"):
        load_trace(p)


def test_member_that_is_not_npy(tmp_path):
    arrays, meta = synthetic()
    p = raw_save(tmp_path / "m.npz", arrays, meta)
    with zipfile.ZipFile(p, "a") as z:
        z.writestr("evil.pkl", b"\x80\x04K\x01.")
    with pytest.raises(BrwError, match=r"archive member 'evil\.pkl' is not a \.npy array"):
        load_trace(p)


def _with_member(tmp_path, name, data, drop=None):
    """A valid archive (less the field ``drop``) with one more member written as is."""
    arrays, meta = synthetic()
    p = raw_save(tmp_path / "h.npz", arrays, meta, **({drop: None} if drop else {}))
    with zipfile.ZipFile(p, "a") as z:
        z.writestr(name, data)
    return p


def _npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_member_outside_the_format_is_refused_unread(tmp_path, monkeypatch):
    """A member that is not a field of the format is refused by name before any member is opened (a small
    archive with a huge zero-filled extra member costs nothing to refuse)."""
    p = _with_member(tmp_path, "notes.npy", _npy_header((1000,)) + bytes(8000))
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *a, **kw):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *a, **kw)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    with pytest.raises(BrwError, match=r"archive member 'notes\.npy' is not a field of a brw trace; refused unread"):
        load_trace(p)
    assert opened == []


def test_lying_header_is_not_allocated(tmp_path):
    """A .npy header claiming more entries than the trace's rows allow is refused before its data are read."""
    p = _with_member(tmp_path, "entropy.npy", _npy_header((10**12,)) + bytes(64), drop="entropy")
    with pytest.raises(BrwError, match=r"field 'entropy' declares shape \(1000000000000,\) of float64, more than "
                                       r"a trace allows \(at most \d+ entries of 16 bytes: one per row"):
        load_trace(p)
    p = _with_member(tmp_path, "context_tokens.npy", _npy_header((10**9,), "<u2") + bytes(64),
                     drop="context_tokens")
    with pytest.raises(BrwError, match=r"field 'context_tokens' declares shape .* \(at most \d+ entries of 16 "
                                       r"bytes: 5 contexts of at most \d+ tokens\)"):
        load_trace(p)
    p = _with_member(tmp_path, "meta.npy", _npy_header((), "<U2000000") + bytes(8_000_000), drop="meta")
    with pytest.raises(BrwError, match=r"field 'meta' declares shape \(\) of <U2000000, more than a trace allows"):
        load_trace(p)


def test_member_larger_than_its_header_is_refused(tmp_path):
    """A member whose bytes run past what its .npy header declares (zeros hidden behind a small array)."""
    arrays, _ = synthetic()
    n = arrays["entropy"].shape[0]
    p = _with_member(tmp_path, "entropy.npy", _npy_header((n,)) + arrays["entropy"].tobytes() + bytes(1 << 20),
                     drop="entropy")
    with pytest.raises(BrwError, match=r"field 'entropy' cannot be read; .* header claims \d+ bytes but the member "
                                       r"holds \d+"):
        load_trace(p)


def _with_brackets(arrays):
    """The arrays of an imported-style trace: a bracket around each row's entropy and second log-moment."""
    out = dict(arrays)
    for name in ("entropy", "log_moment2"):
        out[name + "_lo"] = np.maximum(arrays[name] - 1e-3, 0.0)
        out[name + "_hi"] = arrays[name] + 1e-3
    return out


FLOAT_FIELDS = ["top_logp", "entropy", "log_moment2", "tail_mass", "taken_logp", "entropy_lo", "entropy_hi",
                "log_moment2_lo", "log_moment2_hi"]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_field_refuses_nan_and_inf(tmp_path, name, value):
    arrays, meta = synthetic()
    arrays = _with_brackets(arrays)
    make_trace(meta=meta, **arrays)  # valid as it stands
    a = arrays[name].copy()
    a[(3, 2) if a.ndim == 2 else 3] = value
    arrays[name] = a
    with pytest.raises(BrwError, match=rf"^trace .*: field '{name}' row 3: NaN or infinite value$"):
        load_trace(raw_save(tmp_path / "f.npz", arrays, meta))


# ---------------------------------------------------------------------------------------------------------
# The fuzz test: nothing but BrwError comes out of the loader.


def _valid_bytes(compressed):
    arrays, meta = synthetic(seed=3, contexts=2)
    buf = io.BytesIO()
    out = {"schema_version": np.array(SCHEMA_VERSION, dtype=np.int64), "format": np.array("brw-trace"),
           "meta": np.array(json.dumps(meta)), **arrays}
    (np.savez_compressed if compressed else np.savez)(buf, **out)
    return buf.getvalue()


VALID = {False: _valid_bytes(False), True: _valid_bytes(True)}


def _load_bytes(tmp_path, data):
    p = tmp_path / "fuzz.npz"
    p.write_bytes(data)
    try:
        load_trace(p)
    except BrwError as e:
        assert "\n" not in str(e)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_fuzz_random_bytes(tmp_path, data):
    _load_bytes(tmp_path, data)


@pytest.mark.slow
@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(compressed=st.booleans(), edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                                min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_fuzz_corrupted_archive(tmp_path, compressed, edits, cut):
    data = bytearray(VALID[compressed])
    for where, byte in edits:
        data[int(where * len(data))] = byte
    if cut is not None:
        data = data[:int(cut * len(data))]
    _load_bytes(tmp_path, bytes(data))


_DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.uint16, np.bool_, np.complex64,
                           "U3", "S2", [("a", "<i4"), ("b", "<f8")]])


@pytest.mark.slow
@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["top_logp", "top_ids", "entropy", "log_moment2", "tail_mass", "taken", "taken_logp",
                              "context", "offset", "context_tokens", "context_offsets", "prompt_lengths",
                              "schema_version", "meta", "format", "entropy_lo", "token_strings"]),
       dtype=_DTYPES, shape=st.lists(st.integers(0, 5), max_size=3), seed=st.integers(0, 2**32 - 1))
def test_fuzz_wrong_arrays(tmp_path, field, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    arr = np.zeros(shape, dtype=dtype)
    if arr.dtype.kind in "fiu" and arr.size:
        arr = (rng.standard_normal(arr.shape) * 100).astype(arr.dtype)
    arrays, meta = synthetic(seed=1, contexts=2)
    _load_bytes(tmp_path, raw_save(tmp_path / "w.npz", arrays, meta, **{field: arr}).read_bytes())


# ---------------------------------------------------------------------------------------------------------
# Names and limits.


def test_resolve_trace_names_and_paths(tmp_path, monkeypatch):
    from brw import traces

    for name, file in traces.BUNDLED.items():
        if (traces.DATA_DIR / file).is_file():
            assert traces.resolve_trace(name) == traces.DATA_DIR / file
    monkeypatch.setitem(traces.BUNDLED, "gone", "no-such-file.npz")
    with pytest.raises(BrwError, match=r"bundled trace 'gone' is missing from this installation"):
        traces.resolve_trace("gone")
    with pytest.raises(BrwError, match=r"does not exist \(bundled traces: "):
        traces.resolve_trace(tmp_path / "nope.npz")
    with pytest.raises(BrwError, match=r"is not a file"):
        traces.resolve_trace(tmp_path)
    assert traces.resolve_trace(str(write_trace(tmp_path / "t.npz"))) == tmp_path / "t.npz"


def test_meta_may_hold_up_to_its_limit(tmp_path):
    """A header field is read only up to its limit: meta of MAX_META_CHARS characters loads, one more does not."""
    from brw.traces import MAX_META_CHARS

    arrays, meta = synthetic()
    pad = MAX_META_CHARS - len(json.dumps({**meta, "pad": ""}))
    full = {**meta, "pad": "x" * pad}
    assert len(json.dumps(full)) == MAX_META_CHARS
    assert load_trace(raw_save(tmp_path / "full.npz", arrays, full)).meta["pad"] == "x" * pad
    with pytest.raises(BrwError, match=r"field 'meta'"):
        load_trace(raw_save(tmp_path / "over.npz", arrays, {**meta, "pad": "x" * (pad + 1)}))


def test_moment_errors_state_a_bracket_that_holds_the_top_k(tmp_path):
    """The bracket an entropy must lie in starts at or above the top-k's own entropy (the tail only adds)."""
    arrays, meta = synthetic()
    top = arrays["top_logp"][0].astype(np.float64)
    h_top = -(np.exp(top) * top).sum()
    arrays["entropy"] = arrays["entropy"].copy()
    arrays["entropy"][0] = 0.0
    with pytest.raises(BrwError, match=r"must lie in \[") as e:
        load_trace(raw_save(tmp_path / "e.npz", arrays, meta))
    lo, hi = (float(v) for v in re.search(r"must lie in \[([^,]+), ([^\]]+)\]", str(e.value)).groups())
    assert h_top - 1e-9 <= lo <= hi


def test_second_log_moment_below_the_cauchy_schwarz_bound_is_refused(tmp_path):
    """s >= s_top + h_tail^2 / m_tail (Cauchy-Schwarz on the tail of mass m_tail and entropy share h_tail): a
    row half way between that bound and the weaker ones is refused."""
    from brw.tailfit import tail_bounds

    arrays, meta = synthetic()
    row = 2
    top = arrays["top_logp"].astype(np.float64)
    p = np.exp(top[row])
    m = 1.0 - p.sum()
    h_tail = arrays["entropy"][row] + (p * top[row]).sum()
    s_top = (p * top[row] ** 2).sum()
    weaker = max(tail_bounds(top, V)[2][row], h_tail**2)
    cs = h_tail**2 / m
    assert cs > weaker + 0.5  # the bound matters for this row
    arrays["log_moment2"] = arrays["log_moment2"].copy()
    arrays["log_moment2"][row] = s_top + (weaker + cs) / 2
    with pytest.raises(BrwError, match=rf"field 'log_moment2' row {row}: second log-moment .* cannot come from"):
        load_trace(raw_save(tmp_path / "s.npz", arrays, meta))


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_members_in_every_npy_format_version_load(tmp_path, version, trace_file):
    """numpy writes .npy versions 1.0, 2.0 (large headers) and 3.0 (utf-8 headers); the reader takes all three."""
    want = load_trace(trace_file)
    path = tmp_path / "v.npz"
    with zipfile.ZipFile(trace_file) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            arr = np.lib.format.read_array(io.BytesIO(src.read(name)), allow_pickle=False)
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
            dst.writestr(name, buf.getvalue())
    got = load_trace(path)
    for key in ("top_logp", "entropy", "context_tokens", "taken"):
        np.testing.assert_array_equal(getattr(got, key), getattr(want, key))
    assert got.meta == want.meta


def test_duplicate_ids_in_a_one_row_trace(tmp_path):
    arrays, meta = synthetic(contexts=1, lengths=1)
    arrays["top_ids"] = arrays["top_ids"].copy()
    arrays["top_ids"][0, 3] = arrays["top_ids"][0, 2]
    with pytest.raises(BrwError, match=r"field 'top_ids' row 0: the same token id"):
        load_trace(raw_save(tmp_path / "one.npz", arrays, meta))


def test_context_ids_hold_the_prompt_then_each_taken_token_at_its_offset():
    """Context c's ids are its prompt (prompt_lengths[c] tokens) followed by its rows' taken tokens, row i's at
    position offset[i]; the contexts laid end to end are context_tokens."""
    arrays, meta = synthetic(contexts=4)
    t = make_trace(meta=meta, **arrays)
    for c in range(4):
        rows = np.flatnonzero(t.context == c)
        assert t.context_ids(c).size == t.prompt_lengths[c] + rows.size
    for i in range(t.taken.size):
        assert t.context_ids(t.context[i])[t.offset[i]] == t.taken[i]
    np.testing.assert_array_equal(np.concatenate([t.context_ids(c) for c in range(4)]), t.context_tokens)


@pytest.mark.parametrize("meta", [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}])
def test_metadata_that_is_not_plain_json_is_refused(meta):
    arrays, _ = synthetic(contexts=1, lengths=1)
    with pytest.raises(BrwError, match="metadata is not plain JSON"):
        make_trace(meta=meta, **arrays)


def test_a_field_may_hold_up_to_4_gib():
    """The archive directory's size claims are checked before anything is read: a member may claim up to 4 GiB
    (MAX_MEMBER_BYTES: a large real trace's largest field fits), one byte more is refused as corrupt."""
    from brw.traces import _members

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("entropy.npy", b"x")
    with zipfile.ZipFile(buf) as zf:
        zf.infolist()[0].file_size = 4 * 2**30
        assert list(_members(zf, "big.npz")) == ["entropy"]
        zf.infolist()[0].file_size = 4 * 2**30 + 1
        with pytest.raises(BrwError, match=r"field 'entropy' claims 4294967297 bytes, more than the 4294967296"):
            _members(zf, "big.npz")


# ------------------------------------------------------------------------------------------------------------
# Survivors of the seed-17 mutation sample in the suite (docs/mutation.md), each test shown to kill its mutant.


def _with_moments_at(arrays, entropy_at, log_moment2_at):
    return {**arrays, "moments_at": np.array([0.7]), "entropy_at": np.asarray(entropy_at, dtype=np.float64),
            "log_moment2_at": np.asarray(log_moment2_at, dtype=np.float64)}


@pytest.mark.parametrize("name", ["entropy_at", "log_moment2_at"])
def test_moments_at_other_temperatures_that_are_not_numbers_are_refused(name):
    """traces:625: a NaN slipped through when the finiteness and sign checks were and-ed instead of or-ed."""
    arrays, meta = synthetic()
    h = arrays["entropy"][:, None].astype(np.float64)
    cols = {"entropy_at": h.copy(), "log_moment2_at": h**2 + 0.5}
    cols[name][2, 0] = np.nan
    with pytest.raises(BrwError, match=rf"{name}.*nan.*is not a finite number >= 0"):
        make_trace(meta=meta, **_with_moments_at(arrays, cols["entropy_at"], cols["log_moment2_at"]))


def test_a_second_moment_exactly_at_the_tolerance_below_entropy_squared_is_kept():
    """The moment check allows MOMENT_TOL of rounding, boundary included (traces:632: < became <=)."""
    from brw.traces import MOMENT_TOL

    arrays, meta = synthetic()
    h = arrays["entropy"][:, None].astype(np.float64)
    s = h**2 + 0.1
    s[1, 0] = h[1, 0] ** 2 - MOMENT_TOL
    tr = make_trace(meta=meta, **_with_moments_at(arrays, h, s))
    assert tr.log_moment2_at[1, 0] == s[1, 0]


def test_many_short_contexts_are_distinct_positions():
    """More contexts than the longest context's length: (context, offset) pairs must never collide in the
    duplicate check (traces:850, ctx / (L + 1) + off made context L + 1 at offset 1 equal context 0 at offset 2)."""
    arrays, meta = synthetic(contexts=12, lengths=3)
    tr = make_trace(meta=meta, **arrays)
    assert tr.top_logp.shape[0] == 36


@pytest.mark.parametrize("vocab", ["many", 4.5e8])
def test_token_strings_with_a_vocab_size_that_is_not_a_count_are_refused(tmp_path, vocab):
    """The size limit of token_strings reads vocab_size only when it is a positive integer (traces:479: an or in
    place of an and compared a string with 0, a traceback)."""
    arrays, meta = synthetic()
    meta = {**meta, "vocab_size": vocab}
    path = raw_save(tmp_path / "t.npz", {**arrays, "token_strings": np.array(["a"] * V)}, meta)
    with pytest.raises(BrwError):
        load_trace(path)


def test_token_ids_are_uint16_up_to_65536_tokens_and_int32_beyond():
    """uint16 holds ids 0..65535, so a vocabulary of 65,536 tokens fits and one more does not (mutation sample
    seed 23, traces:286: the limit moved to 2 << 16, which wraps the ids of a 100,000-token vocabulary)."""
    from brw.traces import id_dtype

    assert id_dtype(1) is np.uint16 and id_dtype(65536) is np.uint16
    assert id_dtype(65537) is np.int32 and id_dtype(131072) is np.int32 and id_dtype(262144) is np.int32
    assert np.array([65535], dtype=id_dtype(65536))[0] == 65535


def test_a_top_k_of_tied_log_probabilities_is_sorted(tmp_path):
    """Decreasing order allows ties: rows whose three likeliest tokens tie load (mutation sample seed 23,
    traces:700: ties refused as unsorted), and so do rows of a uniform distribution, whose tail tokens tie with
    the top-k too (the tail then fits only up to the float32 rounding of the stored top-k)."""
    path = tmp_path / "ties.npz"
    raw_save(path, *synthetic(kinds=("ties", "peaked")))
    t = load_trace(path)
    tied = (t.top_logp[:, 0] == t.top_logp[:, 1]) & (t.top_logp[:, 1] == t.top_logp[:, 2])
    assert tied.sum() >= 5 and not tied.all()
    raw_save(path, *synthetic(kinds=("uniform", "peaked")))
    t = load_trace(path)
    flat = np.all(t.top_logp == t.top_logp[:, :1], axis=1)
    assert flat.sum() >= 5 and np.allclose(t.entropy[flat], np.log(V))
