"""Tail-fit numerics: the fitted tail's moments equal the recorded ones; the bracket ends are attained."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brw.tailfit import fit_tails, tail_bounds

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


@settings(deadline=None, max_examples=100)
@given(pk=st.floats(1e-9, 0.3), groups=st.lists(st.tuples(st.floats(1e-7, 1.0), st.integers(10, 10**7)),
                                                  min_size=1, max_size=4))
@pytest.mark.slow
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


def test_tail_bounds_exact_extremes():
    """The bracket ends are attained: tail on as few tokens as possible, and spread evenly."""
    top = np.log(np.array([[0.5, 0.2, 0.1]]))
    h_lo, h_hi, s_lo, s_hi = tail_bounds(top, vocab_size=13)
    # m = 0.2 = two tokens at p_k = 0.1 (concentrated); or 0.02 on each of 10 tokens (even).
    assert math.isclose(h_lo[0], 0.2 * -math.log(0.1)) and math.isclose(h_hi[0], 0.2 * -math.log(0.02))
    assert math.isclose(s_lo[0], 0.2 * math.log(0.1) ** 2) and math.isclose(s_hi[0], 0.2 * math.log(0.02) ** 2)


@pytest.mark.slow
def test_the_fit_does_not_depend_on_the_machines_blas():
    """A trace law's tails are the same bits whichever kernels OpenBLAS picks for the CPU (its counts and its
    choice among exact fits hang on the last bit; LAPACK's solve and numpy's vectorised exp/log differ by CPU).
    Before the fit solved its own 3 x 3 systems, OPENBLAS_CORETYPE=Prescott changed the code trace's tails."""
    import hashlib
    import os
    import subprocess
    import sys

    code = ("import hashlib, numpy as np; from brw import traces, tailfit; tr = traces.load_trace('code'); "
            "t = tailfit.fit_tails(tr.top_logp, tr.entropy, tr.log_moment2)[0]; "
            "print(hashlib.sha256(np.ascontiguousarray(t).tobytes()).hexdigest())")
    got = {core: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env={**os.environ, "OPENBLAS_CORETYPE": core}).stdout.strip()
           for core in ("Prescott", "Haswell")}
    from brw import traces

    tr = traces.load_trace("code")
    here = hashlib.sha256(np.ascontiguousarray(fit_tails(tr.top_logp, tr.entropy, tr.log_moment2)[0]).tobytes())
    assert got["Prescott"] == got["Haswell"] == here.hexdigest()
