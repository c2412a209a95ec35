"""Trace format, validation, the fuzzed loader, the tail fit, the trace law, importers and brw trace-info."""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brw import BrwError, parse_law
from brw.cli import main
from brw.importers import import_logprobs
from brw.traces import (
    BUNDLED, DATA_DIR, MASS_TOL, SCHEMA_VERSION, fit_tails, load_trace, make_trace, save_trace, tail_bounds,
)

V = 400
K = 8


def _full_dist(rng, kind):
    """A log-probability vector over V tokens of an LM-like shape."""
    if kind == "peaked":
        z = rng.standard_normal(V) * 2.0
        z[rng.integers(V)] += 14.0
    elif kind == "flat":
        z = rng.standard_normal(V) * 0.3
    else:
        z = rng.standard_normal(V) * rng.uniform(0.5, 4.0) - rng.uniform(0, 2) * np.log(np.arange(1, V + 1))
    return z - np.logaddexp.reduce(z)


def synthetic(seed=0, contexts=5, k=K):
    """Arrays of a valid trace whose rows are exact statistics of full V-token distributions."""
    rng = np.random.default_rng(seed)
    f = {key: [] for key in ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass", "taken", "taken_logp",
                             "context", "offset")}
    toks, offsets, plens = [], [0], []
    for c in range(contexts):
        plen = int(rng.integers(1, 5))
        n = int(rng.integers(3, 12))
        seq = list(rng.integers(0, V, size=plen))
        for j in range(n):
            lp = _full_dist(rng, ["peaked", "flat", "zipf"][j % 3])
            p = np.exp(lp)
            order = np.argsort(-lp, kind="stable")[:k]
            tok = int(rng.choice(V, p=p / p.sum()))
            f["top_logp"].append(lp[order])
            f["top_ids"].append(order)
            f["entropy"].append(-(p * lp).sum())
            f["log_moment2"].append((p * lp * lp).sum())
            f["tail_mass"].append(np.delete(p, order).sum())
            f["taken"].append(tok)
            f["taken_logp"].append(lp[tok])
            f["context"].append(c)
            f["offset"].append(len(seq))
            seq.append(tok)
        toks.extend(seq)
        offsets.append(len(toks))
        plens.append(plen)
    arrays = {key: np.asarray(v) for key, v in f.items()}
    arrays["top_logp"] = arrays["top_logp"].astype(np.float32)
    arrays["top_ids"] = arrays["top_ids"].astype(np.uint16)
    arrays["taken"] = arrays["taken"].astype(np.uint16)
    arrays["context"] = arrays["context"].astype(np.int32)
    arrays["offset"] = arrays["offset"].astype(np.int32)
    arrays["context_tokens"] = np.asarray(toks, dtype=np.uint16)
    arrays["context_offsets"] = np.asarray(offsets, dtype=np.int64)
    arrays["prompt_lengths"] = np.asarray(plens, dtype=np.int32)
    meta = {"model": "synthetic", "mode": "sampled", "temperature": 1.0, "vocab_size": V, "k": k,
            "brw_version": "test", "device": "cpu", "dtype": "float64", "prompt_source": "tests"}
    return arrays, meta


@pytest.fixture
def trace_file(tmp_path):
    arrays, meta = synthetic()
    path = tmp_path / "t.npz"
    save_trace(make_trace(meta=meta, **arrays), path)
    return path


def raw_save(path, arrays, meta_dict, compressed=False, **override):
    """Write an archive without validation (to make broken files)."""
    out = {"schema_version": np.array(SCHEMA_VERSION, dtype=np.int64), "format": np.array("brw-trace"),
           "meta": np.array(json.dumps(meta_dict))}
    out.update(arrays)
    for key, val in override.items():
        if val is None:
            out.pop(key, None)
        else:
            out[key] = val
    with open(path, "wb") as f:
        (np.savez_compressed if compressed else np.savez)(f, **out)
    return path


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
    with pytest.raises(BrwError, match=r"trace file .*nope\.npz does not exist \(bundled traces: chat, code, math\)"):
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


def test_lying_header_is_not_allocated(tmp_path):
    """A .npy header claiming a huge shape is refused before anything that size is allocated."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    buf.write(b"\0" * 64)
    arrays, meta = synthetic()
    p = raw_save(tmp_path / "h.npz", arrays, meta)
    with zipfile.ZipFile(p, "a") as z:
        z.writestr("entropy2.npy", buf.getvalue())
    with pytest.raises(BrwError, match=r"field 'entropy2' cannot be read; the archive is truncated or corrupt"):
        load_trace(p)


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
# The tail fit: the law's row moments equal the recorded ones.


def test_fit_tails_exact_on_lm_like_rows():
    rng = np.random.default_rng(7)
    Vb, k = 20000, 64
    rows = []
    for i in range(300):
        z = rng.standard_normal(Vb) * rng.uniform(0.3, 6) - rng.uniform(0, 2.5) * np.log(np.arange(1, Vb + 1))
        if i % 4 == 0:
            z[rng.integers(Vb)] += rng.uniform(5, 30)  # confident rows: tiny tails
        lp = z - np.logaddexp.reduce(z)
        p = np.exp(lp)
        rows.append((np.sort(lp)[::-1][:k], -(p * lp).sum(), (p * lp * lp).sum()))
    top = np.array([r[0] for r in rows]).astype(np.float32)
    H = np.array([r[1] for r in rows])
    M2 = np.array([r[2] for r in rows])
    tails, exact, eh, es = fit_tails(top, H, M2)
    assert exact.all()
    assert np.abs(eh).max() < 1e-12 and np.abs(es).max() < 1e-11
    cnt = tails[:, :, 1]
    assert np.all(cnt == np.round(cnt)) and np.all(cnt >= 0)
    # Groups in decreasing q, none above the row's k-th probability.
    lq = np.where(cnt > 0, tails[:, :, 0], -np.inf)
    assert np.all(lq <= top[:, -1:].astype(np.float64) + 1e-15)
    assert np.all(np.diff(np.where(cnt > 0, lq, -1e300), axis=1) <= 0)


@settings(deadline=None, max_examples=300)
@given(pk=st.floats(1e-9, 0.3), groups=st.lists(st.tuples(st.floats(1e-7, 1.0), st.integers(10, 10**7)),
                                                  min_size=1, max_size=4))
def test_fit_tails_property(pk, groups):
    """Every tail made of real atoms (integer counts, each q <= p_k; here at least 10 per block, as beyond the
    top-64 of a real vocabulary, where thousands of tokens share the tail) has its moments matched exactly."""
    q = np.array([pk * u for u, _ in groups])
    c = np.array([float(n) for _, n in groups])
    m = float((q * c).sum())
    if not m <= 1 - 2 * pk:
        return  # no room left for a top-1 at least as probable as p_k
    top = np.log(np.array([[1 - m - pk, pk]]))
    p = np.exp(top)
    H = np.array([-(p * top).sum() - (c * q * np.log(q)).sum()])
    M2 = np.array([(p * top**2).sum() + (c * q * np.log(q) ** 2).sum()])
    tails, exact, eh, es = fit_tails(top, H, M2)
    h_t, s_t = -(c * q * np.log(q)).sum(), (c * q * np.log(q) ** 2).sum()
    assert np.all(tails[0, :, 1] == np.round(tails[0, :, 1]))
    lq = tails[0, :, 0][tails[0, :, 1] > 0]
    assert np.all(lq <= top[0, -1] + 1e-12)
    # Exact on every such tail of >= 1000 atoms (beyond the top-64 of a real vocabulary there are tens of
    # thousands) but nearly degenerate ones: a tail whose surprisal hardly varies (three distinct
    # positions cannot carry it; one block of equal atoms is matched by a single group only when m e^a is a
    # whole number), one hugging the bound q <= p_k, or one below 1e-10 of the row, where round-off in
    # m = 1 - sum(top) leaves no exact solution. Those are flagged and stay close.
    # "Atoms" counts the ones that carry the mass: m^2 / sum n q^2 (a tail of 136 atoms of 4e-3 beside 32,836
    # of 1e-9 has 136; hypothesis found that one, matched only to 1e-5).
    a = h_t / m
    sd = math.sqrt(max(s_t / m - a * a, 0.0))
    effective = m * m / float((c * q * q).sum())
    if m > 1e-10 and effective >= 1000 and sd > 0.1 and a - max(-math.log(pk), -math.log(m)) > 0.1:
        assert exact[0], (eh[0] / h_t, es[0] / s_t)
    assert abs(eh[0]) <= 0.01 * h_t + 1e-13 and abs(es[0]) <= 0.02 * s_t + 1e-12


def test_fit_tails_no_tail():
    top = np.log(np.array([[0.5, 0.3, 0.2]]))
    p = np.exp(top)
    tails, exact, eh, es = fit_tails(top, -(p * top).sum(1), (p * top**2).sum(1))
    assert np.all(tails[:, :, 1] == 0)
    assert abs(eh[0]) < 1e-15 and abs(es[0]) < 1e-15


# ---------------------------------------------------------------------------------------------------------
# The trace law.


def test_trace_law_matches_recorded_means(trace_file):
    spec = f"trace:{trace_file}"
    law = parse_law(spec)
    t = load_trace(trace_file)
    assert str(law) == spec and law.spec == spec and parse_law(str(law)) == law
    assert law.tail_exact.all()
    assert abs(law.mu - t.mu) < 1e-12 * t.mu
    assert abs(law.mu2 - t.mu2) < 1e-12 * t.mu2
    assert abs(float(law.psi(1.0))) < 1e-12
    steps, w = law.spine_atoms()
    assert abs(w.sum() - 1) < 1e-12
    assert abs((steps * w).sum() - t.mu) < 1e-10 and abs((steps**2 * w).sum() - t.mu2) < 1e-9
    kl = law.kernel_law()
    assert kl.table.shape == (t.positions, K) and kl.tails.shape == (t.positions, 3, 2)
    assert np.isfinite(law.psi(np.array([0.5, 2.0]))).all()


def test_trace_law_simulates(trace_file):
    from brw.frontier import frontier

    law = parse_law(f"trace:{trace_file}")
    r = frontier(law, 256, replicates=8, seed=3)
    acc = np.asarray(r.accepted)
    assert np.all(np.diff(acc) > 0) and 0 < acc[0] < 1 and acc[-1] < 256


def test_trace_law_spec_errors():
    with pytest.raises(BrwError, match=r"needs a trace: trace:PATH or one of trace:\{chat, code, math\}"):
        parse_law("trace:")
    with pytest.raises(BrwError, match=r"trace file no/such\.npz does not exist"):
        parse_law("trace:no/such.npz")


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_traces(name):
    path = DATA_DIR / BUNDLED[name]
    if not path.exists():
        pytest.skip(f"bundled trace {path.name} not generated yet (sims/record_traces.py)")
    law = parse_law(f"trace:{name}")
    t = law.trace
    assert str(law) == f"trace:{name}"
    assert t.positions >= 3000 and t.k == 64 and t.meta["mode"] == "sampled" and t.meta["temperature"] == 1.0
    assert t.meta["vocab_size"] == 49152 and t.meta["genre"] == name
    # Exact to round-off except on rows whose tail (< 1e-7) is smaller than the float32 rounding of the stored
    # top-k: there a few parts in 1e8 of a row, a few parts in 1e11 of the mean.
    assert abs(law.mu - t.mu) < 1e-9 * t.mu and abs(law.mu2 - t.mu2) < 1e-9 * t.mu2
    assert law.tail_exact.mean() > 0.995
    err_h, err_s = law.tail_error
    assert np.abs(err_h).max() < 1e-6 and np.abs(err_s).max() < 1e-4
    # Sampled at T = 1 from the recorded distributions: mean surprisal of the taken tokens estimates mu.
    nll = -t.taken_logp.mean()
    assert abs(nll - t.mu) < 0.15 * t.mu
    # The contexts (prompt + answer ids) are there for real-tree expansion.
    c = int(t.context[-1])
    ids = t.context_ids(c)
    assert len(ids) > t.prompt_lengths[c]
    assert path.stat().st_size < 3_000_000


# ---------------------------------------------------------------------------------------------------------
# Importers.


def _dist(seed, vocab=60):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(vocab) * 2.5
    lp = z - np.logaddexp.reduce(z)
    return lp


def _chat_json(dists, k, taken):
    content = []
    for lp, t in zip(dists, taken):
        order = np.argsort(-lp)[:k]
        content.append({"token": f"t{t}", "logprob": float(lp[t]), "bytes": list(f"t{t}".encode()),
                        "top_logprobs": [{"token": f"t{i}", "logprob": float(lp[i]), "bytes": list(f"t{i}".encode())}
                                         for i in order]})
    return {"id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "..."},
                         "logprobs": {"content": content}}]}


def _completions_json(dists, k, taken):
    return {"object": "text_completion", "choices": [{"index": 0, "text": "...", "logprobs": {
        "tokens": ["<echo>"] + [f"t{t}" for t in taken],
        "token_logprobs": [None] + [float(lp[t]) for lp, t in zip(dists, taken)],
        "top_logprobs": [None] + [{f"t{i}": float(lp[i]) for i in np.argsort(-lp)[:k]} for lp in dists],
        "text_offset": list(range(len(taken) + 1))}}]}


@pytest.mark.parametrize("shape", ["chat", "completions"])
def test_import_brackets_contain_truth(tmp_path, shape):
    vocab, k = 60, 5
    dists = [_dist(s, vocab) for s in range(12)]
    taken = [int(np.argmax(lp)) if s % 2 else int(np.argsort(-lp)[2]) for s, lp in enumerate(dists)]
    doc = (_chat_json if shape == "chat" else _completions_json)(dists, k, taken)
    src = tmp_path / "r.json"
    src.write_text(json.dumps([doc, doc]))  # two responses: two contexts
    out = tmp_path / "imp.npz"
    trace, s = import_logprobs([src], out, vocab_size=vocab)
    assert s["positions"] == 24 and s["contexts"] == 2 and s["k"] == k
    t = load_trace(out)
    assert t.meta["mode"] == "imported" and t.token_strings is not None
    H = np.array([-(np.exp(lp) * lp).sum() for lp in dists] * 2)
    M2 = np.array([(np.exp(lp) * lp**2).sum() for lp in dists] * 2)
    b = t.brackets
    assert np.all(b["entropy_lo"] <= H + 1e-12) and np.all(H <= b["entropy_hi"] + 1e-12)
    assert np.all(b["log_moment2_lo"] <= M2 + 1e-12) and np.all(M2 <= b["log_moment2_hi"] + 1e-12)
    assert s["mu_bracket"][0] <= H.mean() <= s["mu_bracket"][1]
    assert s["mu_bracket_width"] > 0 and s["mu2_bracket_width"] > 0
    # The point the law uses lies in the bracket, and the law reproduces it.
    assert np.all(b["entropy_lo"] <= t.entropy) and np.all(t.entropy <= b["entropy_hi"])
    law = parse_law(f"trace:{out}")
    assert abs(law.mu - t.mu) < 1e-9 and abs(law.mu2 - t.mu2) < 1e-9
    # Taken tokens and their log-probabilities survive, with the prompt placeholder at offset 0.
    assert t.token_strings[t.taken[0]] == f"t{taken[0]}"
    np.testing.assert_allclose(t.taken_logp[:12], [lp[x] for lp, x in zip(dists, taken)])
    assert t.token_strings[t.context_ids(0)[0]] == "<prompt>"


def test_import_bracket_ends(tmp_path):
    dists = [_dist(s) for s in range(6)]
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_chat_json(dists, 4, [0] * 6)))
    lo, s_lo = import_logprobs([src], vocab_size=60, tail="lo")
    hi, s_hi = import_logprobs([src], vocab_size=60, tail="hi")
    assert abs(lo.mu - s_lo["mu_bracket"][0]) < 1e-12 and abs(hi.mu - s_hi["mu_bracket"][1]) < 1e-12
    # Wider vocabularies leave the tail more room: the bracket widens.
    _, s_big = import_logprobs([src], vocab_size=100000)
    assert s_big["mu_bracket_width"] > s_lo["mu_bracket_width"]


def test_import_errors(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"choices": [{"message": {}}]}))
    with pytest.raises(BrwError, match="no 'logprobs' object"):
        import_logprobs([src], vocab_size=100)
    doc = _chat_json([_dist(1)], 3, [0])
    doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]["logprob"] = 0.5
    src.write_text(json.dumps(doc))
    with pytest.raises(BrwError, match="logprob 0.5 is above 0"):
        import_logprobs([src], vocab_size=100)
    doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]["logprob"] = -0.01
    doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1]["logprob"] = -0.02
    src.write_text(json.dumps(doc))
    with pytest.raises(BrwError, match=r"carry probability .* more than 1"):
        import_logprobs([src], vocab_size=100)
    src.write_text(json.dumps(_chat_json([_dist(1)], 3, [0])))
    with pytest.raises(BrwError, match="vocab-size"):
        import_logprobs([src], vocab_size=3)
    src.write_text("{oops")
    with pytest.raises(BrwError, match="not readable JSON"):
        import_logprobs([src], vocab_size=100)
    with pytest.raises(BrwError, match="does not exist"):
        import_logprobs([tmp_path / "none.json"], vocab_size=100)


def test_tail_bounds_exact_extremes():
    """The bracket ends are attained: tail on as few tokens as possible, and spread evenly."""
    top = np.log(np.array([[0.5, 0.2, 0.1]]))
    h_lo, h_hi, s_lo, s_hi = tail_bounds(top, vocab_size=13)
    # m = 0.2 = two tokens at p_k = 0.1 (concentrated); or 0.02 on each of 10 tokens (even).
    assert math.isclose(h_lo[0], 0.2 * -math.log(0.1)) and math.isclose(h_hi[0], 0.2 * -math.log(0.02))
    assert math.isclose(s_lo[0], 0.2 * math.log(0.1) ** 2) and math.isclose(s_hi[0], 0.2 * math.log(0.02) ** 2)


# ---------------------------------------------------------------------------------------------------------
# brw trace-info and brw import-logprobs on the command line.


def test_cli_trace_info(tmp_path, trace_file, capsys):
    fig = tmp_path / "h.png"
    assert main(["trace-info", str(trace_file), "--json", "--bootstrap", "200", "--plot", str(fig)]) == 0
    d = json.loads(capsys.readouterr().out)
    t = load_trace(trace_file)
    assert d["positions"] == t.positions and d["contexts"] == 5 and d["k"] == K
    assert math.isclose(d["mu"], t.mu) and d["mu_ci"][0] <= d["mu"] <= d["mu_ci"][1]
    assert math.isclose(d["mu2"], t.mu2) and d["mu2_ci"][0] <= d["mu2"] <= d["mu2_ci"][1]
    assert d["top1_above_0_9"] == pytest.approx(np.mean(np.exp(t.top_logp[:, 0].astype(float)) > 0.9))
    assert sum(d["entropy_hist_counts"]) == t.positions
    assert abs(d["law_mu_minus_mu"]) < 1e-12 and d["tail_exact_share"] == 1.0
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert main(["trace-info", str(trace_file), "--bootstrap", "100"]) == 0
    text = capsys.readouterr().out
    assert "positions in 5 contexts" in text and "95% CI" in text and "entropy histogram" in text


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    assert main(["trace-info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brw: error: trace ") and err.count("\n") == 1
    assert main(["trace-info", "nosuchname"]) == 2
    assert "bundled traces: chat, code, math" in capsys.readouterr().err


def test_cli_import_logprobs(tmp_path, capsys):
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_completions_json([_dist(s) for s in range(5)], 5, [1, 2, 3, 4, 5])))
    out = tmp_path / "i.npz"
    assert main(["import-logprobs", str(src), "--out", str(out), "--vocab-size", "60", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["positions"] == 5 and d["mu_bracket_width"] > 0 and out.exists()
    assert main(["import-logprobs", str(src), "--out", str(out), "--vocab-size", "60"]) == 2
    assert "already exists" in capsys.readouterr().err
