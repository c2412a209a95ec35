"""Fitted laws: the spike-plus-GEM mixture and the Markov-modulated trace law."""

import math

import numpy as np
import pytest

from brw import BrwError, frontier, parse_law
from brw import _kernels as K
from brw.laws.fitted import GEMMix, fit_gemmix, fit_markov, regime_of_rows
from brw.solver import root_keys
from brw.kernel_law import kernel_args
from brw.reference import children

MIX = "gemmix:s=0.9/0.3/0,theta=0.5/3/8,w=0.5/0.3/0.2"


def test_gemmix_spec_round_trip_and_errors():
    law = parse_law(MIX)
    assert str(law) == MIX and parse_law(str(law)) == law
    with pytest.raises(BrwError, match=r"need the same number \(>= 1\) of entries"):
        GEMMix((), (), ())
    for bad, words in [("gemmix:s=1,theta=1,w=1", r"\[0, 1\)"), ("gemmix:s=0.5,theta=-1,w=1", "theta"),
                       ("gemmix:s=0.5/0.2,theta=1,w=1", "same number"), ("gemmix:s=0.5,theta=1,w=0.7", "sum to 1")]:
        with pytest.raises(BrwError, match=words):
            parse_law(bad)


@pytest.mark.slow
def test_gemmix_closed_forms_against_its_own_vectors():
    """mu, mu2 and psi of gemmix equal the means of H, sum p log^2 p and sum p^t over the kernel's vectors."""
    law = parse_law(MIX)
    args = kernel_args(law, 60.0)
    keys = root_keys(5, 20000)
    h, m2, pt = [], [], []
    for key in keys:
        lp = np.array(children(args, int(key))[0])
        p = np.exp(lp)
        h.append(-(p * lp).sum())
        m2.append((p * lp**2).sum())
        pt.append((p**0.5).sum())
    for est, exact in [(h, law.mu), (m2, law.mu2), (np.log(np.mean(pt)), float(law.psi(0.5)))]:
        est = np.asarray(est)
        if est.ndim == 0:
            se = np.std(pt) / math.sqrt(len(pt)) / np.mean(pt)
            assert abs(est - exact) < 4 * se
        else:
            assert abs(est.mean() - exact) < 4 * est.std() / math.sqrt(est.size)


def test_gemmix_spine_sampler_matches_mu_and_cdf():
    law = parse_law(MIX)
    x = law.spine_sample(np.random.default_rng(2), 200000)
    assert abs(x.mean() - law.mu) < 4 * x.std() / math.sqrt(x.size)
    assert abs((x**2).mean() - law.mu2) < 4 * (x**2).std() / math.sqrt(x.size)
    for t in [0.05, 0.2, 1.0, 3.0]:
        assert abs((x <= t).mean() - float(law.spine_cdf(t))) < 4 * 0.5 / math.sqrt(x.size)


def test_plain_gem_is_a_one_component_gemmix():
    a = frontier("gem:theta=2", 300, replicates=5, seed=1)
    b = frontier(GEMMix((0.0,), (2.0,), (1.0,)), 300, replicates=5, seed=1)
    assert np.array_equal(a.accepted, b.accepted)
    # At T = 1 its moments and psi are the closed forms, not Monte Carlo estimates from sampled vectors (those
    # differ in the fourth digit; mutation sample seed 23, fitted:159: psi took the sampled path at T = 1).
    gem, mix, t = parse_law("gem:theta=2"), GEMMix((0.0,), (2.0,), (1.0,)), np.array([0.5, 0.8, 1.5, 2.0, 3.0])
    np.testing.assert_allclose(mix.psi(t), gem.psi(t), rtol=1e-12, atol=1e-14)
    assert mix.mu == pytest.approx(gem.mu, rel=1e-12) and mix.mu2 == pytest.approx(gem.mu2, rel=1e-12)


def test_markov_with_one_regime_is_the_trace_law():
    a = frontier("trace:code", 500, replicates=20, seed=3)
    b = frontier("markov:trace=code,regimes=1", 500, replicates=20, seed=3)
    assert np.array_equal(a.accepted, b.accepted)
    law = parse_law("markov:trace=code,regimes=1")
    assert law.mu == parse_law("trace:code").mu and str(law) == "markov:trace=code,regimes=1"


def test_fit_gemmix_reproduces_what_it_was_fitted_to():
    trace = parse_law("trace:chat").trace
    law = fit_gemmix(trace, components=8)
    assert law.mu == pytest.approx(trace.mu, rel=1e-6)  # overall mean entropy
    top1 = np.exp(trace.top_logp[:, 0].astype(np.float64))
    assert np.sum(np.asarray(law.w) * np.asarray(law.s)) == pytest.approx(top1.mean(), rel=1e-6)  # mean spike


def test_markov_transitions_are_those_of_the_simulated_tree():
    """Parent -> child regime frequencies in simulated trees match the fitted transition matrix."""
    spec = "markov:trace=math,regimes=3"
    law = parse_law(spec)
    args = kernel_args(law, 50.0)
    offsets = law._offsets
    reg = lambda row: int(np.searchsorted(offsets, row, side="right") - 1)  # noqa: E731
    counts = np.zeros((3, 3))
    for key in root_keys(9, 3000):
        _, row = children(args, int(key), -1, limit=0)
        for r in range(3):
            _, crow = children(args, int(K.child_key(np.uint64(key), r)), row, limit=0)
            counts[reg(row), reg(crow)] += 1
    est = counts / counts.sum(axis=1, keepdims=True)
    se = np.sqrt(law.transitions * (1 - law.transitions) / counts.sum(axis=1, keepdims=True))
    assert np.all(np.abs(est - law.transitions) < 4 * se + 1e-12)
    _, trans, freq = fit_markov(law.base.trace, 3)
    assert np.allclose(trans.sum(axis=1), 1) and freq.sum() == pytest.approx(1)
    assert np.bincount(regime_of_rows(law.base.trace.entropy, 3)).min() > 0


def test_entropy_autocorrelation_against_its_definition():
    from brw.laws.fitted import entropy_autocorrelation

    trace = parse_law("trace:math").trace
    got = entropy_autocorrelation(trace, (1, 3))
    for lag in (1, 3):
        pairs = {}
        for i, (c, o) in enumerate(zip(trace.context.tolist(), trace.offset.tolist())):
            pairs[(c, o)] = trace.entropy[i]
        x = [(h, pairs[(c, o + lag)]) for (c, o), h in pairs.items() if (c, o + lag) in pairs]
        a, b = np.array(x).T
        assert got[lag] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)


def test_entropy_after_surprisal_against_its_definition():
    from brw.laws.fitted import entropy_after_surprisal
    from brw.real.realtree import SURPRISAL_BINS

    trace = parse_law("trace:chat").trace
    got = entropy_after_surprisal(trace)
    at = {(c, o): i for i, (c, o) in enumerate(zip(trace.context.tolist(), trace.offset.tolist()))}
    pairs = np.array([(-trace.taken_logp[i], trace.entropy[at[(c, o + 1)]]) for (c, o), i in at.items()
                      if (c, o + 1) in at])
    assert sum(n for _, n in got) == len(pairs) == trace.positions - trace.contexts
    for (lo, hi), (mean, n) in zip(zip(SURPRISAL_BINS[:-1], SURPRISAL_BINS[1:]), got):
        sel = (pairs[:, 0] >= lo) & (pairs[:, 0] < hi)
        assert n == sel.sum() > 100 and mean == pytest.approx(pairs[sel, 1].mean(), abs=1e-12)
    assert got[0][0] < got[-1][0] - 0.5  # after a likely token the text is surer of itself


def test_fit_gemmix_components_are_quantile_bins_of_top1():
    """Component c holds the rows whose top-1 probability falls in the c-th of ``components`` quantile bins:
    equal weights (ties aside), s_c the bin's mean top-1 probability, in increasing order."""
    trace = parse_law("trace:code").trace
    top1 = np.sort(np.exp(trace.top_logp[:, 0].astype(np.float64)))
    for c in (1, 4, 7):
        law = fit_gemmix(trace, components=c)
        assert len(law.s) == c
        np.testing.assert_allclose(law.w, np.full(c, 1 / c), atol=2 / top1.size)
        bins = np.array_split(top1, c)  # equal-count bins of the sorted values; a quantile edge may move a
        # row or two between neighbours, which moves a bin's mean by at most c / N each
        np.testing.assert_allclose(law.s, [b.mean() for b in bins], rtol=0, atol=2 * c / top1.size + 1e-8)


@pytest.mark.parametrize("spec", ["gemmix:s=0.9,theta=0.5,w=1", "gemmix:s=0.3,theta=3,w=1", "gemmix:s=0,theta=8,w=1"])
def test_gemmix_moments_of_one_component_against_its_spine(spec):
    """One component at a time (a mixture's terms could cancel): mu = E[step], mu2 = E[step^2] over 200000 spine
    steps drawn from the definition (spike with probability s, else -log(1 - s) - log B, B ~ Beta(1, theta))."""
    law = parse_law(spec)
    x = law.spine_sample(np.random.default_rng(4), 200000)
    assert abs(x.mean() - law.mu) < 4.5 * x.std() / math.sqrt(x.size)
    assert abs((x**2).mean() - law.mu2) < 4.5 * (x**2).std() / math.sqrt(x.size)


def test_gemmix_spine_cdf_jumps_by_the_spike_at_its_step():
    """P(step <= -log s) - P(step < -log s) = w s: the spike's atom, counted once and only without strict."""
    law = parse_law("gemmix:s=0.5/0.2,theta=2/3,w=0.4/0.6")
    spikes = -law._components()[3]  # the spikes' steps as the law computes them (numpy's log, not math.log)
    for at, s_, w_ in zip(spikes, (0.5, 0.2), (0.4, 0.6)):
        assert at == pytest.approx(-math.log(s_), rel=1e-15)
        jump = float(law.spine_cdf(at)) - float(law.spine_cdf(at, strict=True))
        assert jump == pytest.approx(w_ * s_, rel=1e-12)


def test_theta_for_entropy_inverts_gem_entropy():
    from brw.laws.fitted import _theta_for_entropy, gem_entropy

    for h in (0.01, 0.3, 0.999, 1.0, 2.5, 7.0):
        assert float(gem_entropy(_theta_for_entropy(h))) == pytest.approx(h, rel=1e-10)
    for h in (0.0, 1e-12, 1e-9):  # the floor, its boundary included: theta = 1e-9, not a root near 6e-10
        assert _theta_for_entropy(h) == 1e-9


def test_fitted_laws_are_equal_by_value():
    assert parse_law(MIX) == parse_law(MIX) and parse_law(MIX) != parse_law("gemmix:s=0.9,theta=0.5,w=1")
    a, b = parse_law("markov:trace=code,regimes=2"), parse_law("markov:trace=code,regimes=2")
    assert a == b and hash(a) == hash(b) and a != parse_law("markov:trace=code,regimes=3")
    assert a != parse_law("markov:trace=math,regimes=2")


def test_entropy_autocorrelation_needs_three_pairs():
    """A text of 4 rows has 3 lag-1 pairs (a correlation), 2 lag-2 pairs (NaN: fewer than three)."""
    from trace_data import synthetic

    from brw.laws.fitted import entropy_autocorrelation
    from brw.traces import make_trace

    arrays, meta = synthetic(contexts=1, lengths=4)
    got = entropy_autocorrelation(make_trace(meta=meta, **arrays), (1, 2))
    h = arrays["entropy"]
    assert got[1] == pytest.approx(np.corrcoef(h[:-1], h[1:])[0, 1], rel=1e-12) and math.isnan(got[2])


def test_a_regime_without_successors_moves_like_the_frequencies():
    """Texts of three rows, low -> middle -> high entropy: the high regime never has a successor, so its row
    of the transition matrix is the regimes' frequencies; the others move one way round."""
    from trace_data import synthetic

    from brw.traces import make_trace

    arrays, meta = synthetic(contexts=5, lengths=3, kinds=("peaked", "middle", "flat"))
    _, trans, freq = fit_markov(make_trace(meta=meta, **arrays), 3)
    np.testing.assert_array_equal(trans[:2], [[0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(trans[2], freq)


def test_a_regime_without_successors_keeps_the_frequencies_and_warns_nothing():
    """Two rows per context, the low-entropy one first: the high-entropy regime is never followed by a recorded
    row, so its transition row is the regime frequencies, computed without a 0/0 (mutation sample seed 17,
    fitted:371: only a RuntimeWarning told the mutant apart)."""
    import warnings

    from trace_data import synthetic

    from brw.traces import make_trace

    arrays, meta = synthetic(contexts=6, lengths=2, kinds=("peaked", "flat"))
    trace = make_trace(meta=meta, **arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg, trans, freq = fit_markov(trace, 2)
    assert reg.tolist() == [0, 1] * 6
    np.testing.assert_array_equal(trans, [[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_array_equal(freq, [0.5, 0.5])


def test_every_law_takes_its_temperature_by_keyword_only():
    """The convention (docs/conventions.md): T is a keyword-only field of every family that has one, so that a
    positional argument never lands in T (mutation sample seed 23, fitted:384: MarkovTrace's T lost kw_only)."""
    import dataclasses
    import inspect

    import brw.laws.context  # noqa: F401 - each module registers its families
    import brw.laws.fitted  # noqa: F401
    import brw.laws.parametric  # noqa: F401
    import brw.laws.trace  # noqa: F401
    from brw.laws.base import REGISTRY

    with_t = [cls for cls in REGISTRY.values() if "T" in {f.name for f in dataclasses.fields(cls)}]
    assert {"markov", "gemmix", "dirichlet", "gem"} <= {cls.name for cls in with_t}
    for cls in with_t:
        assert inspect.signature(cls).parameters["T"].kind is inspect.Parameter.KEYWORD_ONLY, cls.name


def test_a_gemmix_of_things_that_are_not_numbers_quotes_them_clipped_to_80_characters():
    """Input quoted in a message is clipped (brw.errors.clip): here to 80 characters, its first 53 and its last 20
    around the full length (mutation sample seed 23, fitted:94: clipped to 81 instead)."""
    s = tuple(f"s{i}" for i in range(100))
    whole = repr((s, (1.0,), (1.0,)))
    with pytest.raises(BrwError) as e:
        GEMMix(s, (1.0,), (1.0,))
    quoted = str(e.value).split(", got ", 1)[1]
    assert quoted == f"{whole[:53]}...({len(whole)} characters)...{whole[-20:]}"
