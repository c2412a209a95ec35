"""Step laws: specs round-trip, bad specs fail clearly, and the exact quantities match their definitions."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, special

from brw import BrwError, parse_law
from brw.laws import Dirichlet, Fixed

SPECS = [
    "uniform:k=8", "uniform:k=1", "fixed:p=0.7/0.3", "fixed:p=1", "fixed:p=0.5/0.25/0.125/0.125",
    "dirichlet:alpha=0.5,k=8", "dirichlet:alpha=0.05,k=1000", "zipf:s=1.1,k=50000", "zipf:s=0,k=3",
    "gem:theta=2", "gem:theta=0.3", "dirichlet:alpha=0.5,k=1",
]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_round_trip(spec):
    law = parse_law(spec)
    assert str(law) == spec
    assert parse_law(str(law)) == law


def test_fixed_sorts_entries():
    assert str(parse_law("fixed:p=0.3/0.7")) == "fixed:p=0.7/0.3"


@pytest.mark.parametrize("spec, words", [
    ("nolaw:k=3", "unknown law 'nolaw'"),
    ("dirichlet:alpha=-1,k=8", "alpha=-1"),
    ("dirichlet:alpha=0,k=8", "must be > 0"),
    ("dirichlet:alpha=nan,k=8", "must be finite"),
    ("dirichlet:alpha=0.5,k=0", "k=0"),
    ("dirichlet:alpha=0.5", "missing k"),
    ("dirichlet:alpha=0.5,k=8,beta=2", "unknown parameter 'beta'"),
    ("dirichlet:alpha=0.5,k=2.5", "whole number"),
    ("uniform:k=0", "k=0"),
    ("uniform", "needs parameters"),
    ("uniform:k=", r"bad parameter 'k=' in law spec 'uniform:k=': write key=value"),
    ("zipf:s=1,k=0", r"k=0 in law spec 'zipf:s=1,k=0' must be >= 1"),
    ("fixed:p=0.7/-0.3", "must be >= 0"),
    ("fixed:p=0.7/0.2", "sum to"),
    ("fixed:p=0.7/nan", "finite"),
    ("fixed:p=0.7/abc", "not a number"),
    ("zipf:s=-1,k=5", "s=-1"),
    ("gem:theta=0", "must be > 0"),
    ("", "non-empty"),
])
def test_bad_spec_is_one_clear_line(spec, words):
    with pytest.raises(BrwError) as e:
        parse_law(spec)
    msg = str(e.value)
    assert words in msg and "\n" not in msg


@pytest.mark.parametrize("spec", SPECS)
def test_psi_at_one_is_zero_and_its_slope_is_minus_mu(spec):
    law = parse_law(spec)
    assert abs(float(law.psi(1.0))) < 1e-10
    h = 1e-5
    slope = (float(law.psi(1 + h)) - float(law.psi(1 - h))) / (2 * h)
    assert slope == pytest.approx(-law.mu, abs=1e-5 * max(1, law.mu))


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.startswith("fixed:p=1") and "k=1" not in s])
def test_spine_moments_are_mu_and_mu2(spec):
    """E[step] = mu and E[step^2] = mu2 by integrating the spine cdf (the tail formula E[S^m] = int m x^(m-1) P(S > x))."""
    law = parse_law(spec)
    sf = lambda x: 1.0 - float(law.spine_cdf(x))  # noqa: E731
    atoms = law.spine_atoms()
    if atoms is not None:
        steps, w = atoms
        m1, m2 = np.sum(w * steps), np.sum(w * steps**2)
    else:
        m1 = integrate.quad(sf, 0, np.inf, limit=400)[0]
        m2 = integrate.quad(lambda x: 2 * x * sf(x), 0, np.inf, limit=400)[0]
    assert m1 == pytest.approx(law.mu, rel=1e-6)
    assert m2 == pytest.approx(law.mu2, rel=1e-6)


def test_dirichlet_closed_forms_against_sampled_vectors():
    """Identity 9: mu and mu2 of Dirichlet(alpha, k) equal the means of H(p) and sum p log^2 p over draws."""
    rng = np.random.default_rng(9)
    for alpha, k in [(0.5, 8), (0.1, 50), (2.0, 3)]:
        law = Dirichlet(alpha, k)
        p = rng.dirichlet(np.full(k, alpha), size=40000)
        lp = np.log(np.maximum(p, 1e-300))
        h = -(p * lp).sum(axis=1)
        m2 = (p * lp**2).sum(axis=1)
        for est, exact in [(h, law.mu), (m2, law.mu2)]:
            se = est.std() / math.sqrt(est.size)
            assert abs(est.mean() - exact) < 4 * se, (alpha, k, est.mean(), exact, se)


@pytest.mark.parametrize("spec", ["dirichlet:alpha=0.5,k=8", "gem:theta=2", "zipf:s=1.1,k=100"])
def test_spine_sampler_matches_cdf(spec):
    from scipy import stats

    law = parse_law(spec)
    x = law.spine_sample(np.random.default_rng(3), 20000)
    assert stats.kstest(x, lambda t: law.spine_cdf(t)).pvalue > 1e-3 or law.spine_atoms() is not None
    assert abs(x.mean() - law.mu) < 4 * x.std() / math.sqrt(x.size)


def test_gem_closed_forms():
    law = parse_law("gem:theta=2")
    assert law.mu == pytest.approx(special.digamma(3) - special.digamma(1))
    assert law.mu == pytest.approx(1.5)


vectors = st.lists(st.floats(0.001, 1.0), min_size=1, max_size=12).map(
    lambda w: tuple(np.asarray(w) / math.fsum(w)))


@given(vectors)
def test_fixed_quantities_are_exact_sums(p):
    p = np.asarray(p)
    p = p / math.fsum(p)
    if abs(math.fsum(p) - 1) > 1e-12:
        return
    law = Fixed(tuple(p))
    assert law.mu == pytest.approx(-np.sum(p * np.log(p)), abs=1e-12)
    assert law.mu2 == pytest.approx(np.sum(p * np.log(p) ** 2), abs=1e-12)
    assert law.mu2 >= law.mu**2 - 1e-12  # Jensen
    assert str(parse_law(str(law))) == str(law)


def test_zipf_vector_is_the_power_law():
    """p_i = i^-s / sum_j j^-s for i = 1..k, largest first; s = 0 is uniform."""
    for s_, k in [(1.1, 5), (2.0, 40), (0.0, 3)]:
        i = np.arange(1, k + 1, dtype=float)
        want = i**-s_ / np.sum(i**-s_)
        law = parse_law(f"zipf:s={s_},k={k}")
        np.testing.assert_allclose(law.p, want, rtol=1e-13)
        np.testing.assert_allclose(law.kernel_law().table[0], np.log(want), rtol=1e-13)


@pytest.mark.parametrize("spec", SPECS)
def test_laws_are_hashable_values(spec):
    """Equal specs give equal laws with equal hashes (laws serve as keys), different specs differ."""
    a, b = parse_law(spec), parse_law(spec)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != parse_law("uniform:k=5")


def test_discrete_spine_cdf_by_hand():
    """fixed:p=0.7/0.3: the spine step is -log 0.7 with probability 0.7 and -log 0.3 with 0.3 (the law's own
    atoms, as numpy's log gives them: on another CPU it may differ from math.log in the last bit)."""
    law = parse_law("fixed:p=0.7/0.3")
    steps, w = law.spine_atoms()
    a, b = sorted(steps)
    assert a == pytest.approx(-math.log(0.7), rel=1e-15) and b == pytest.approx(-math.log(0.3), rel=1e-15)
    x = np.array([0.0, a / 2, a, (a + b) / 2, b, 5.0])
    np.testing.assert_allclose(law.spine_cdf(x), [0, 0, 0.7, 0.7, 1, 1], rtol=1e-15, atol=0)
    np.testing.assert_allclose(law.spine_cdf(x, strict=True), [0, 0, 0, 0.7, 0.7, 1], rtol=1e-15, atol=0)
    one = parse_law("dirichlet:alpha=0.5,k=1")  # one token, certain: the step is exactly 0
    assert one.spine_cdf(0.0) == 1.0 and one.spine_cdf(0.0, strict=True) == 0.0 and one.spine_cdf(-1e-9) == 0.0


def test_a_token_of_probability_zero_changes_nothing():
    from brw import frontier

    a, b = parse_law("fixed:p=0.7/0.3/0"), parse_law("fixed:p=0.7/0.3")
    assert a.mu == b.mu and a.mu2 == b.mu2 and float(a.psi(2.0)) == float(b.psi(2.0))
    for x, y in zip(a.spine_atoms(), b.spine_atoms()):
        np.testing.assert_array_equal(x, y)
    assert a.lattice_span == b.lattice_span
    np.testing.assert_array_equal(frontier(a, 50).accepted, frontier(b, 50).accepted)


@pytest.mark.parametrize("spec", SPECS)
def test_spine_cdf_is_zero_below_zero_without_warnings(spec):
    """A step -log p is never negative: the spine cdf is exactly 0 below 0, quietly (no invalid-value warning
    from the branch that np.where discards)."""
    import warnings

    law = parse_law(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = law.spine_cdf(np.array([-5.0, -0.5, -1e-12]))
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0])


def test_lattice_span_is_the_smallest_step_when_it_divides_the_others():
    """The largest h dividing every step is the smallest step itself when the others are its multiples, returned
    exactly, also where the floating-point remainder of a multiple comes out one ulp short of h
    (fmod(3 log 2, log 2) = log 2 - 1.1e-16); steps without a common span give 0."""
    from brw.laws.base import lattice_span as _lattice_span

    for h, mult in [(0.1, (1, 3)), (0.1, (1, 3, 7)), (math.log(2), (1, 2, 3)), (0.7, (1, 3, 6))]:
        assert _lattice_span(np.array([h * m for m in mult])) == h, (h, mult)
    assert _lattice_span(np.array([1.0, math.sqrt(2)])) == 0.0
    law = parse_law("fixed:p=0.5/0.25/0.25")  # its steps as numpy's log gives them (math.log may differ by a bit)
    assert law.lattice_span == law.spine_atoms()[0].min() == pytest.approx(math.log(2), rel=1e-15)
