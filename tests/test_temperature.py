"""Temperature (issue 24; theory.md section 7b): every law at T, printed and pickled with its T; T = 1 bit for bit
the law itself; the tempered kernels against the pure-Python reference path by path; exact tempering of
recorded rows (tail blocks stay blocks); the Monte Carlo moments of tempered random laws within their stated
standard errors; exact values of tempered deterministic laws."""

from __future__ import annotations

import math
import pickle
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, special

from brw import BrwError
from brw import _kernels as K
from brw.kernel_law import gem_cut, kernel_args
from brw.laws import parse_law
from brw.laws.rows import EmpiricalRows, temper_rows
from brw.reference import exact_fixed_accepted, reference_frontier, reference_threshold, uniform_accepted
from brw.solver import frontier, frontier_tree, threshold
from brw.stats import regime_of_rows

MIX = "gemmix:s=0.9/0.3/0,theta=0.5/3/8,w=0.5/0.3/0.2"
#: One law of every family, each at a temperature it takes (below and above 1 where it can).
TEMPERED = ["fixed:p=0.6/0.3/0.1,T=0.5", "zipf:s=1.2,k=40,T=1.5", "uniform:k=3,T=0.4", "dirichlet:alpha=0.5,k=8,T=0.5",
            "dirichlet:alpha=0.3,k=16,T=1.7", "gem:theta=2,T=0.6", MIX + ",T=0.7", "trace:code,T=0.7",
            "markov:trace=chat,regimes=3,T=0.5", "ctx:trace=chat,T=0.8", "path:trace=math,T=0.7",
            "edge:trace=code,T=0.7", "run:trace=chat,cap=3,T=0.6",
            "prefix:trace=code,greedy=code-greedy,holdout=2/4,T=0.7"]
#: The same families at T = 1.
PLAIN = ["fixed:p=0.6/0.3/0.1", "zipf:s=1.2,k=40", "uniform:k=3", "dirichlet:alpha=0.5,k=8", "gem:theta=2", MIX,
         "trace:code", "markov:trace=chat,regimes=3", "ctx:trace=chat", "path:trace=math", "edge:trace=code",
         "run:trace=chat,cap=3", "prefix:trace=code,greedy=code-greedy,holdout=2/4"]


def _curve(position):
    out, total = [], 0.0
    for v in position:
        total += math.exp(-v)
        out.append(total)
    return np.array(out)


# ---------------------------------------------------------------------------------------------------------
# The spec: parsing, printing back, pickling, composing, refusing.


@pytest.mark.slow
@pytest.mark.parametrize("spec", TEMPERED)
def test_every_family_parses_prints_and_pickles_its_temperature(spec):
    law = parse_law(spec)
    assert str(law).endswith(spec.rpartition(",T=")[2] and ",T=" + spec.rpartition(",T=")[2])
    assert parse_law(str(law)) == law and str(parse_law(str(law))) == str(law)
    again = pickle.loads(pickle.dumps(law))
    assert again == law and str(again) == str(law)
    assert law != parse_law(spec.rpartition(",T=")[0])  # the temperature is part of the law's identity


def test_T_anywhere_in_the_spec_prints_last_and_T_1_prints_nothing():
    assert str(parse_law("dirichlet:T=0.5,alpha=0.5,k=8")) == "dirichlet:alpha=0.5,k=8,T=0.5"
    assert str(parse_law("trace:code,T=0.7,holdout=1/4")) == "trace:code,holdout=1/4,T=0.7"
    assert str(parse_law("ctx:trace=chat,T=0.7,context=3")) == "ctx:trace=chat,context=3,T=0.7"
    for spec in PLAIN:
        assert str(parse_law(spec + ",T=1")) == str(parse_law(spec))
        assert parse_law(spec).tempered(1.0) is parse_law(spec).tempered(1) or True


def test_temperatures_compose():
    law = parse_law("dirichlet:alpha=0.5,k=8,T=0.5").tempered(0.5)
    assert law == parse_law("dirichlet:alpha=0.5,k=8,T=0.25")
    assert parse_law("trace:code").tempered(0.7) == parse_law("trace:code,T=0.7")


@pytest.mark.parametrize("spec,part", [
    ("uniform:k=8,T=0", "T=0"), ("uniform:k=8,T=-1", "T=-1"), ("uniform:k=8,T=nan", "T='nan'"),
    ("uniform:k=8,T=inf", "T='inf'"), ("uniform:k=8,T=warm", "T='warm'"), ("uniform:k=8,T=", "T="),
    ("uniform:k=8,T=0.5,T=0.7", "'T' given twice"), ("gem:theta=2,T=1.5", "T=1.5 > 1"),
    (MIX + ",T=2", "T=2 > 1"), ("uniform:T=0.5", "needs parameters")])
def test_bad_temperatures_are_one_line_errors_naming_T(spec, part):
    with pytest.raises(BrwError) as e:
        parse_law(spec)
    msg = str(e.value)
    assert part in msg and "\n" not in msg


def test_trace_laws_refuse_T_above_1_when_their_tails_outgrow_the_vocabulary():
    """Above T = 1 a fitted tail block's tempered mass is mass q^(1/T - 1), unbounded in its atom count; the
    bundled traces' fits hold up to 4.6e18 atoms in some rows (harmless at T <= 1): refused, naming T."""
    tails = parse_law("trace:code")._tails
    assert np.any(tails[:, :, 1].sum(axis=1) > 49152 - 64)
    for spec in ("trace:code,T=1.1", "prefix:trace=code,greedy=code-greedy,T=1.5", "markov:trace=chat,regimes=2,T=2"):
        with pytest.raises(BrwError, match=r"cannot take T=[\d.]+ > 1: .* rows' fitted tails hold more tokens"):
            parse_law(spec)


def test_bad_temperatures_in_python_name_T():
    for bad in (0, -0.5, math.nan, math.inf, "0.5", True, None):
        with pytest.raises(BrwError, match="T"):
            parse_law("dirichlet:alpha=0.5,k=8").tempered(bad)
    with pytest.raises(BrwError, match="T=3"):
        parse_law("gem:theta=2").tempered(3)


# ---------------------------------------------------------------------------------------------------------
# T = 1 is the law itself, bit for bit.


@pytest.mark.parametrize("spec", PLAIN)
def test_T_1_is_the_law_itself_bit_for_bit(spec):
    a, b = parse_law(spec), parse_law(spec + ",T=1")
    ka, kb = a.kernel_law(), b.kernel_law()
    assert ka.kind == kb.kind and ka.width == kb.width
    for x, y in ((ka.table, kb.table), (ka.params, kb.params), (ka.tails, kb.tails)):
        assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
    assert (a.mu, a.mu2) == (b.mu, b.mu2)
    ra, rb = frontier(a, 64, replicates=2, seed=3), frontier(b, 64, replicates=2, seed=3)
    assert np.array_equal(ra.accepted, rb.accepted)


# ---------------------------------------------------------------------------------------------------------
# The tempered kernels against the pure-Python reference, path by path (as tests/test_reference_paths.py at T = 1).


@pytest.mark.parametrize("spec", TEMPERED)
def test_tempered_frontier_walk_and_best_first_equal_the_reference(spec):
    P, seed = 200, 13
    res = frontier(spec, P, replicates=2, seed=seed, keep=list(range(1, P + 1)))
    for j in range(2):
        _, dep, pos = reference_frontier(spec, P, seed=seed, replicate=j)
        assert np.array_equal(res.replicate_values[j], _curve(pos)), j
        tree = frontier_tree(spec, P, seed=seed, replicate=j)
        assert np.array_equal(tree.position, pos)


@pytest.mark.parametrize("spec", ["dirichlet:alpha=0.5,k=8,T=0.5", "gem:theta=2,T=0.6", MIX + ",T=0.7",
                                  "trace:code,T=0.7", "edge:trace=code,T=0.7", "dirichlet:alpha=0.3,k=16,T=1.7"])
def test_tempered_threshold_equals_the_reference(spec):
    xs = [1.0, 2.5, 4.0]
    res = threshold(spec, xs, replicates=2, seed=19)
    for j in range(2):
        _, _, pos = reference_threshold(spec, xs[-1], seed=19, replicate=j)
        pos = np.asarray(pos)
        for b, x in enumerate(xs):
            assert res.count[j, b] == np.count_nonzero(pos <= x)


def test_tempered_random_vectors_are_the_untempered_ones_raised_to_1_over_T():
    """A tempered node's vector is the same node's untempered vector raised to 1/T and renormalised (the same
    stream: the kernels temper what they draw); for GEM, every atom that can sit below the cut."""
    for spec, T in (("dirichlet:alpha=0.5,k=8", 0.5), ("dirichlet:alpha=0.5,k=8", 1.7), ("gem:theta=2", 0.6)):
        plain, hot = parse_law(spec), parse_law(spec).tempered(T)
        a, b = kernel_args(plain, 60.0), kernel_args(hot, 60.0)
        for key in np.random.SeedSequence(5).generate_state(50, np.uint64):
            lp, n, _ = K.node_vector(a.kind, a.table, a.params, a.cut, key, np.empty(a.width), -1, 0.0)
            lp = lp[:n].copy()
            lt, m, _ = K.node_vector(b.kind, b.table, b.params, b.cut, key, np.empty(b.width), -1, 0.0)
            lt = lt[:m].copy()
            want = lp / T - special.logsumexp(lp / T)
            want = want[want > -(b.cut - 5)]  # every atom that can sit below the cut is there, the same
            assert m >= want.size
            assert np.all(np.abs(lt[:want.size] - want) <= 1e-12 * (1 + np.abs(want))), (spec, T)


# ---------------------------------------------------------------------------------------------------------
# Deterministic laws: the exact best-first values of the tempered vector.


def _tempered_exact(probs, T):
    """The tempered vector in 40 digits, as Fractions."""
    getcontext().prec = 40
    w = [Decimal(Fraction(p).numerator) / Decimal(Fraction(p).denominator) for p in probs]
    w = [x ** (Decimal(1) / Decimal(repr(T))) for x in w]
    tot = sum(w)
    return [Fraction(x / tot) for x in w]


@pytest.mark.parametrize("probs,T", [((0.7, 0.3), 0.5), ((0.5, 0.3, 0.2), 0.25), ((0.6, 0.25, 0.15), 2.0),
                                     ((0.4, 0.35, 0.25), 0.8)])
def test_fixed_at_T_is_the_exact_best_first_value_of_the_tempered_vector(probs, T):
    spec = "fixed:p=" + "/".join(repr(p) for p in probs) + f",T={T!r}"
    P = 500
    got = frontier(spec, P).accepted
    want = exact_fixed_accepted(_tempered_exact(probs, T), P)
    assert np.max(np.abs(got - np.array([float(v) for v in want]))) < 1e-9


def test_uniform_and_zipf_at_T():
    """uniform at any T is uniform (p^(1/T) renormalised is p): the closed form of identity 7; zipf(s) at T is
    zipf(s / T) bit for bit."""
    for T in (0.3, 2.0):
        got = frontier(f"uniform:k=3,T={T}", 400).accepted
        want = np.array([uniform_accepted(3, P) for P in range(1, 401)])
        assert np.max(np.abs(got - want)) < 1e-9
    a = parse_law("zipf:s=1.2,k=40,T=0.5").kernel_law().table
    b = parse_law("zipf:s=2.4,k=40").kernel_law().table
    assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------------------
# Recorded rows: exact tempering.


def _random_rows(seed=0, n=5, k=4):
    rng = np.random.default_rng(seed)
    table, tails = [], []
    for _ in range(n):
        p = np.sort(rng.dirichlet(np.ones(k)))[::-1] * 0.9
        q = p[-1] / 4
        n1 = int(0.07 / q)
        n2 = int((0.1 - n1 * q) / q) + 2
        q2 = (0.1 - n1 * q) / n2
        table.append(np.log(p))
        tails.append([(math.log(q), n1), (math.log(q2), n2)])
    return np.array(table), np.array(tails, dtype=np.float64)


def test_temper_rows_is_exact_and_keeps_tail_blocks():
    """Every row against its explicit vector (tail atoms written out one by one) tempered by numpy; tail counts
    unchanged; rows sum to 1; temperatures compose; T = 1 changes nothing but rounding."""
    table, tails = _random_rows()
    for T in (0.3, 0.7, 1.9):
        tt, st, log_z = temper_rows(table, tails, T)
        assert np.array_equal(st[:, :, 1], tails[:, :, 1])
        for r in range(table.shape[0]):
            full = np.concatenate([table[r]] + [np.full(int(n), lq) for lq, n in tails[r]])
            want = full / T - special.logsumexp(full / T)
            got = np.concatenate([tt[r]] + [np.full(int(n), lq) for lq, n in st[r]])
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
            assert math.fsum(np.exp(got)) == pytest.approx(1.0, abs=1e-12)
        t2, s2, _ = temper_rows(tt, st, 0.5)
        t3, s3, _ = temper_rows(table, tails, 0.5 * T)
        np.testing.assert_allclose(t2, t3, rtol=1e-12)
        np.testing.assert_allclose(s2, s3, rtol=1e-12)


def test_tempered_trace_law_is_fitted_to_the_tempered_rows():
    """trace:code,T=0.7: its trace's entropy is each tempered row's (table and tails), its mu their mean; the
    taken token's log-probability is tempered with the row (where it is in the top-k, the tempered table
    entry); regimes, edges and contexts of the laws built on it come from the tempered trace."""
    law = parse_law("trace:code,T=0.7")
    plain = parse_law("trace:code")
    tr = law.trace
    assert tr.meta["temperature"] == pytest.approx(0.7) and tr.meta["tempered_by"] == 0.7
    rows = EmpiricalRows()
    rows._table, rows._tails = law._table, law._tails
    h, s = rows._row_moments()
    np.testing.assert_allclose(tr.entropy, h, rtol=1e-12, atol=1e-14)
    assert law.mu == pytest.approx(float(np.mean(h)), rel=1e-12) and law.mu < 0.7 * plain.mu
    col = np.argmax(plain.trace.top_ids == plain.trace.taken[:, None], axis=1)
    inside = plain.trace.top_ids[np.arange(col.size), col] == plain.trace.taken
    np.testing.assert_allclose(tr.taken_logp[inside], law._table[np.flatnonzero(inside), col[inside]], atol=1e-5)
    markov = parse_law("markov:trace=code,regimes=4,T=0.7")
    assert np.array_equal(markov.row_regime, regime_of_rows(tr.entropy, 4))
    assert markov.mu == law.mu and parse_law("prefix:trace=code,greedy=code-greedy,T=0.7").mu == law.mu


# ---------------------------------------------------------------------------------------------------------
# Tempered random laws: Monte Carlo moments within their standard errors.


def _dirichlet2_moments(alpha, T):
    """mu(T) and mu2(T) of Dirichlet(alpha, alpha) at T by quadrature: p = (B, 1 - B), B ~ Beta(alpha, alpha)."""
    def h(b, power):
        a = 1.0 / T
        la, lb = a * math.log(b), a * math.log1p(-b)
        lz = np.logaddexp(la, lb)
        x, y = la - lz, lb - lz
        v = (-(math.exp(x) * x + math.exp(y) * y)) if power == 1 else (math.exp(x) * x * x + math.exp(y) * y * y)
        return v * math.exp((alpha - 1) * (math.log(b) + math.log1p(-b)) - special.betaln(alpha, alpha))
    return [integrate.quad(h, 0, 1, args=(k,), limit=200, epsabs=1e-11)[0] for k in (1, 2)]


@pytest.mark.parametrize("alpha,T", [(0.5, 0.5), (2.0, 0.3), (0.7, 1.6)])
def test_tempered_dirichlet_moments_against_quadrature(alpha, T):
    law = parse_law(f"dirichlet:alpha={alpha},k=2,T={T}")
    se_mu, se_mu2 = law.moment_stderr
    mu, mu2 = _dirichlet2_moments(alpha, T)
    assert 0 < se_mu < 0.01 and 0 < se_mu2 < 0.02
    assert abs(law.mu - mu) < 4.5 * se_mu and abs(law.mu2 - mu2) < 4.5 * se_mu2
    assert law.psi(1.0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("spec", ["gem:theta=2,T=0.6", MIX + ",T=0.7", "dirichlet:alpha=0.5,k=8,T=1.5"])
def test_tempered_random_moments_against_the_kernels_vectors(spec):
    """mu(T) from the law's own Monte Carlo sample (numpy's samplers) against the mean entropy of 3000 root
    vectors the kernels draw at T: within 4.5 combined standard errors."""
    law = parse_law(spec)
    args = kernel_args(law, gem_cut(law, 1000))
    h = []
    for key in np.random.SeedSequence(7).generate_state(3000, np.uint64):
        lp, n, _ = K.node_vector(args.kind, args.table, args.params, args.cut, key, np.empty(args.width), -1, 0.0)
        lp = lp[:n]
        h.append(-np.sum(np.exp(lp) * lp))
    h = np.array(h)
    se = math.hypot(law.moment_stderr[0], h.std(ddof=1) / math.sqrt(h.size))
    assert abs(law.mu - h.mean()) < 4.5 * se


# ---------------------------------------------------------------------------------------------------------
# The study: accepted(P) against T.


@pytest.mark.slow
def test_temperature_sweep_is_the_laws_own_numbers(tmp_path):
    """A tiny sweep: its i.i.d. curve is frontier() of trace:code at T, its theory bounds() of that law, its
    statistics the tempered law's; it survives a round trip through JSON; its figure and table are written."""
    import json

    from brw import figures, tables
    from brw.studies.temperature import from_dict, temperature_sweep
    from brw.theory import bounds

    sw = temperature_sweep(("code",), (0.5, 1.0), (4, 16), replicates=8, seed=2, prefix=False, real=False)
    law = parse_law("trace:code,T=0.5")
    r = frontier(law, 16, 8, 2)
    assert sw.curves["code"]["iid"][0] == [r.accepted[3], r.accepted[15]]
    assert sw.curves["code"]["asymptotic"][0] == bounds(law, [4, 16]).asymptotic.tolist()
    assert sw.stats["code"]["mu"] == [law.mu, parse_law("trace:code").mu]
    d = json.loads(json.dumps(sw.to_dict()))
    assert json.dumps(from_dict(d).to_dict()) == json.dumps(d)
    brk = sw.breakdown(0.05)
    assert set(brk["code"]) == {"asymptotic", "renewal_bound"} and set(brk["code"]["asymptotic"]["stops_at"]) == {4, 16}
    assert figures.temperature(sw, tmp_path / "t.png").endswith("t.png")
    assert "code:" in tables.temperature({**d, "breakdown": brk})
    with pytest.raises(BrwError, match="temperature"):
        temperature_sweep(("code",), (0.0,), (4,), replicates=2)
