"""Boundary tests of the fitted laws' refusals and limits (brw/laws/fitted.py), the law-spec grammar (brw/spec.py)
and the Python-level sizing of the kernels' arguments (brw/kernel_law.py).

Each test sits exactly on a limit: the value at the limit treated one way and the value just past it the other,
messages read with the numbers they compute, defaults read by behaviour, ``and``/``or`` told apart by an input
where only one side holds. Pinned here:

- ``gemmix``: T at most 1 (and why), the vectors' shape, finiteness, s in [0, 1), theta > 0, weights >= 0
  summing to 1 within 1e-9, the message quoting the clipped spec, equality with T, the T = 1 closed forms against
  the T < 1 Monte Carlo sample (mu, mu2, psi, spine atoms, cdf and sampler, ``moment_stderr``), the kernel form's
  parameters with and without 1 / T;
- ``fit_gemmix``: ``components`` (default 12, at most the trace's positions), empty bins dropped, the spike
  clipped below 1, a component's GEM entropy floored at 0, the weights made to sum to exactly 1;
- ``entropy_autocorrelation`` (lags below the positions), ``entropy_after_run`` (``cap``, default 8);
- ``markov``: regimes (>= 1, at most the trace's positions, the memory of a regimes x regimes matrix), too few
  distinct entropies, holdout, T (no cap of its own), equality, the spec, the kernel parameters' layout;
- ``brw.spec``: fmt's integer form, every refusal of parse_fields, parse_float, parse_int, parse_holdout,
  check_holdout, check_temperature, split_temperature, and what they accept right at their limits;
- ``brw.kernel_law``: the buffer width of stick-breaking laws (plain and tempered) and ``gem_cut``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re

import numpy as np
import pytest
from scipy import special
from trace_data import ROW_FIELDS, K, V, add_row, finish, synthetic

from brw import BrwError, parse_law
from brw.errors import clip
from brw.kernel_law import GEM_MARGIN, KIND_GEM, KIND_TABLE, KernelLaw, gem_cut, kernel_args
from brw.laws.fitted import (GEMMix, MarkovTrace, _theta_for_entropy, entropy_after_run, entropy_autocorrelation,
                             fit_gemmix, fit_markov)
from brw.laws.rows import STICKS_ABOVE_ONE
from brw.spec import (check_holdout, check_temperature, fmt, holdout_text, parse_fields, parse_float,
                      parse_holdout, parse_int, split_temperature, temperature_text)
from brw.traces import make_trace, save_trace

ONE = ((0.5,), (2.0,), (1.0,))  # a valid one-component gemmix


@pytest.fixture(scope="module")
def hot():
    """A small tempered gemmix (a small theta keeps its Monte Carlo sample short: a few hundredths of a second)."""
    return GEMMix((0.5, 0.2), (0.2, 0.3), (0.4, 0.6), T=0.5)


def _trace(contexts=2, lengths=3, kinds=("peaked", "flat", "zipf"), seed=0):
    arrays, meta = synthetic(seed=seed, contexts=contexts, lengths=lengths, kinds=kinds)
    return make_trace(meta=meta, **arrays)


def _trace_of(dists, entropy_shift=0.0):
    """A one-context trace whose rows are the exact statistics of the given full V-token log-weight vectors (the
    recorded entropy moved by ``entropy_shift``), each taking its likeliest token."""
    f = {key: [] for key in ROW_FIELDS}
    for i, z in enumerate(dists):
        z = np.asarray(z, dtype=np.float64)
        lp = z - np.logaddexp.reduce(z)
        add_row(f, lp, K, int(np.argsort(-lp, kind="stable")[0]), 0, 1 + i)
        f["entropy"][-1] += entropy_shift
    arrays, meta = finish(f, [1] + [int(t) for t in f["taken"]], [0, len(dists) + 1], [1], K)
    return make_trace(meta=meta, **arrays)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Saved synthetic traces: six rows of distinct entropies ("six"), twelve uniform rows of one entropy
    ("uniform"), six flat-ish rows whose tails allow T > 1 ("warm")."""
    d = tmp_path_factory.mktemp("traces")
    out = {}
    for name, kw in [("six", {}), ("uniform", {"contexts": 3, "lengths": 4, "kinds": ("uniform",)}),
                     ("warm", {"kinds": ("flat", "middle")})]:
        out[name] = str(d / f"{name}.npz")
        save_trace(_trace(**kw), out[name])
    return out


def _mix(s, theta, w, **kw):
    return GEMMix(tuple(s), tuple(theta), tuple(w), **kw)


# ---------------------------------------------------------------------------------------------------------
# gemmix: its temperature.


def test_gemmix_takes_T_of_exactly_one_and_refuses_the_next_float_above_saying_why():
    """fitted:88 caps T at 1.0 with STICKS_ABOVE_ONE as the reason; T = 1 itself is accepted (base: T > most)."""
    at = GEMMix(*ONE, T=1)
    assert at.T == 1.0 and type(at.T) is float and str(at) == "gemmix:s=0.5,theta=2,w=1"
    above = math.nextafter(1.0, 2.0)
    with pytest.raises(BrwError, match=re.escape(f"gemmix law cannot take T={above!r} > 1: {STICKS_ABOVE_ONE}")):
        GEMMix(*ONE, T=above)


def test_gemmix_takes_a_temperature_below_one():
    assert GEMMix(*ONE, T=0.25).T == 0.25 and str(GEMMix(*ONE, T=0.25)).endswith(",T=0.25")


def test_gemmix_temperatures_compose_up_to_exactly_one_and_not_past_it():
    """tempered() multiplies temperatures: 0.5 then 2 is T = 1 (the law itself, accepted at the cap), 0.5 then 2.5
    is T = 1.25 (refused by the cap)."""
    half = GEMMix(*ONE, T=0.5)
    back = half.tempered(2)
    assert back == GEMMix(*ONE) and str(back) == "gemmix:s=0.5,theta=2,w=1"
    with pytest.raises(BrwError, match=r"^gemmix law cannot take T=1\.25 > 1: "):
        half.tempered(2.5)


@pytest.mark.parametrize("T, shown", [(0, "0"), (-0.5, "-0.5"), (math.nan, "nan"), (True, "True")])
def test_gemmix_refuses_a_temperature_that_is_not_a_positive_number(T, shown):
    with pytest.raises(BrwError, match=rf"^gemmix law's T must be a finite number > 0 \(a temperature\), got {shown}$"):
        GEMMix(*ONE, T=T)


# ---------------------------------------------------------------------------------------------------------
# gemmix: its vectors.


def test_gemmix_quotes_input_that_is_not_numbers_whether_numpy_raises_value_or_type_errors():
    """fitted:92 catches both: text makes numpy raise ValueError, a dict TypeError, a bare number (not a
    vector) makes the spec's iteration raise TypeError."""
    for bad, shown in [(("a",), "('a',)"), (({},), "({},)"), (5, "5")]:
        with pytest.raises(BrwError, match=re.escape(f"gemmix law needs vectors of numbers s, theta and w, got "
                                                     f"({shown}, (1.0,), (1.0,))")):
            GEMMix(bad, (1.0,), (1.0,))


@pytest.mark.parametrize("s, theta, w", [
    ((0.5, 0.2), (1.0,), (1.0,)), ((0.5,), (1.0, 2.0), (1.0,)), ((0.5,), (1.0,), (0.5, 0.5)),
    ((0.5, 0.2), (1.0, 2.0), (1.0,)), ((), (), ())])
def test_gemmix_vectors_of_different_lengths_or_none_at_all_are_refused(s, theta, w):
    """Each of s, theta and w in turn has a length of its own (and all three empty): fitted:95."""
    spec = "gemmix:" + ",".join(f"{k}=" + "/".join(fmt(x) for x in v)
                                for k, v in zip(("s", "theta", "w"), (s, theta, w)))
    with pytest.raises(BrwError, match="^" + re.escape(f"gemmix law {spec}: s, theta and w need the same number "
                                                       f"(>= 1) of entries") + "$"):
        _mix(s, theta, w)


def test_gemmix_of_exactly_one_component_is_accepted():
    law = GEMMix(*ONE)
    assert law.s == (0.5,) and law.kernel_law().params[0] == 1.0


@pytest.mark.parametrize("s, theta, w", [
    ((math.nan,), (1.0,), (1.0,)), ((0.5,), (math.inf,), (1.0,)), ((0.5,), (math.nan,), (1.0,)),
    ((0.5, 0.5), (1.0, 1.0), (math.nan, 1.0)), ((0.5, 0.5), (1.0, 1.0), (1.0, math.inf))])
def test_gemmix_refuses_each_vector_that_holds_a_value_that_is_not_finite(s, theta, w):
    """nan in s, inf or nan in theta, nan or inf in w, one vector at a time: each would pass the later range
    checks (nan compares false), so only fitted:97 refuses them, for every vector separately."""
    with pytest.raises(BrwError, match=r"^gemmix law gemmix:.*: entries must be finite numbers$"):
        _mix(s, theta, w)


@pytest.mark.parametrize("s", [-1e-300, -0.5, 1.0, 1.5])
def test_gemmix_refuses_a_spike_outside_zero_to_one(s):
    with pytest.raises(BrwError, match=r"^gemmix law gemmix:s=.*: every s must lie in \[0, 1\)$"):
        _mix((0.2, s), (1.0, 1.0), (0.5, 0.5))


@pytest.mark.parametrize("s", [0.0, math.nextafter(1.0, 0.0)])
def test_gemmix_takes_a_spike_of_zero_and_the_largest_float_below_one(s):
    assert _mix((s,), (1.0,), (1.0,)).s == (s,)


@pytest.mark.parametrize("theta", [0.0, -0.0, -1.0])
def test_gemmix_refuses_a_theta_of_zero_or_less(theta):
    with pytest.raises(BrwError, match=r"^gemmix law gemmix:.*: every theta must be > 0$"):
        _mix((0.5, 0.5), (1.0, theta), (0.5, 0.5))


def test_gemmix_takes_the_least_positive_theta():
    assert _mix((0.5,), (5e-324,), (1.0,)).theta == (5e-324,)


@pytest.mark.parametrize("w", [(1.5, -0.5), (1.0 + 1.1e-9,), (1.0 - 1.1e-9,), (0.6, 0.6)])
def test_gemmix_refuses_negative_weights_even_summing_to_one_and_sums_off_by_more_than_1e_9(w):
    """(1.5, -0.5) sums to 1 exactly but has a negative weight (the ``or`` of fitted:103); 1 +- 1.1e-9 misses the
    1e-9 tolerance."""
    with pytest.raises(BrwError, match=r"^gemmix law gemmix:.*: weights w must be >= 0 and sum to 1 within 1e-9$"):
        _mix((0.5,) * len(w), (1.0,) * len(w), w)


@pytest.mark.parametrize("w", [(0.0, 1.0), (1.0 + 0.9e-9,), (1.0 - 0.9e-9,)])
def test_gemmix_takes_a_zero_weight_and_sums_within_1e_9_of_one(w):
    assert _mix((0.5,) * len(w), (1.0,) * len(w), w).w == w


def test_gemmix_messages_quote_a_long_spec_clipped_to_200_characters():
    """fitted:91 clips the spec at clip's default, 200: its first 133 and last 50 characters around its length."""
    n = 40
    law_args = ((0.5,) * n, (1.0,) * n, (0.5 / n,) * n)  # weights sum to 0.5: refused
    spec = "gemmix:s=" + "/".join(["0.5"] * n) + ",theta=" + "/".join(["1"] * n) + ",w=" + "/".join(
        [fmt(0.5 / n)] * n)
    assert len(spec) > 200
    with pytest.raises(BrwError) as e:
        GEMMix(*law_args)
    assert str(e.value) == (f"gemmix law {spec[:133]}...({len(spec)} characters)...{spec[-50:]}: weights w must be "
                            f">= 0 and sum to 1 within 1e-9")


def test_gemmix_equality_reads_every_field_and_T_and_other_types_are_unequal():
    a, b = GEMMix(*ONE), GEMMix(*ONE)
    assert a == b and hash(a) == hash(b)
    assert a != GEMMix(*ONE, T=0.5) and a != GEMMix((0.4,), (2.0,), (1.0,)) and a != GEMMix((0.5,), (3.0,), (1.0,))
    assert a != "gemmix:s=0.5,theta=2,w=1" and a != 3  # another type: unequal, not an AttributeError


def test_gemmix_spec_errors_name_the_missing_unknown_and_bad_fields():
    for spec, words in [("gemmix:s=0.5,theta=2", "law spec 'gemmix:s=0.5,theta=2' is missing w"),
                        ("gemmix:theta=2", "law spec 'gemmix:theta=2' is missing s, w"),
                        ("gemmix:s=0.5,theta=2,w=1,x=3",
                         "unknown parameter 'x' in law spec 'gemmix:s=0.5,theta=2,w=1,x=3'; expected s, theta, w"),
                        ("gemmix:s=0.5/abc,theta=2/1,w=0.5/0.5",
                         "s='abc' in law spec 'gemmix:s=0.5/abc,theta=2/1,w=0.5/0.5' is not a number"),
                        ("gemmix:", "law spec 'gemmix:' needs parameters: s=..., theta=..., w=..."),
                        ("gemmix:s=0.5,theta=0,w=1", "gemmix law gemmix:s=0.5,theta=0,w=1: every theta must be > 0")]:
        with pytest.raises(BrwError, match="^" + re.escape(words) + "$"):
            parse_law(spec)


# ---------------------------------------------------------------------------------------------------------
# gemmix: closed forms at T = 1, the Monte Carlo sample at T < 1.


def test_gemmix_moment_stderr_is_exactly_zero_at_T_1_and_the_samples_below(hot):
    assert GEMMix(*ONE).moment_stderr == (0.0, 0.0)
    se = hot.moment_stderr
    assert se == hot._sampled.stderr and se[0] > 0 and se[1] > 0


def test_tempered_gemmix_moments_and_psi_are_its_samples_not_the_closed_forms(hot):
    """At T < 1 mu, mu2 and psi are the Monte Carlo sample's (bit for bit), which are far from the T = 1 closed
    forms of the same components (tempering at T = 0.5 halves the entropy, roughly)."""
    plain, smp = GEMMix(hot.s, hot.theta, hot.w), hot._sampled
    t = np.array([0.6, 1.0, 2.0])
    assert hot.mu == smp.mu and hot.mu2 == smp.mu2
    assert np.array_equal(hot.psi(t), smp.psi(t))
    assert abs(hot.mu - plain.mu) > 0.1 and abs(hot.mu2 - plain.mu2) > 0.1
    assert abs(hot.psi(0.6) - plain.psi(0.6)) > 0.05


def test_tempered_gemmix_spine_is_its_samples_atoms_and_the_plain_one_is_continuous(hot):
    assert GEMMix(*ONE).spine_atoms() is None
    steps, w = hot.spine_atoms()
    s2, w2 = hot._sampled.spine_atoms()
    assert np.array_equal(steps, s2) and np.array_equal(w, w2)
    x = np.array([0.3, 1.0, 2.5])
    order = np.argsort(steps)
    cw = np.concatenate([[0.0], np.cumsum(w[order]) / np.cumsum(w[order])[-1]])
    np.testing.assert_array_equal(hot.spine_cdf(x), cw[np.searchsorted(steps[order], x, side="right")])
    np.testing.assert_array_equal(hot.spine_cdf(x, strict=True), cw[np.searchsorted(steps[order], x, side="left")])
    want = steps[np.random.default_rng(5).choice(steps.size, size=50, p=w / w.sum())]
    np.testing.assert_array_equal(hot.spine_sample(np.random.default_rng(5), 50), want)


def test_gemmix_kernel_parameters_carry_1_over_T_only_below_1(hot):
    """[components, s, theta, cumulative w] and, only at T != 1, 1 / T last (kernel_law's KIND_GEM layout)."""
    plain = GEMMix(hot.s, hot.theta, hot.w).kernel_law()
    assert plain.kind == KIND_GEM and plain.width == 0
    np.testing.assert_array_equal(plain.params, [2.0, 0.5, 0.2, 0.2, 0.3, 0.4, 1.0])
    np.testing.assert_array_equal(hot.kernel_law().params, [2.0, 0.5, 0.2, 0.2, 0.3, 0.4, 1.0, 2.0])


# ---------------------------------------------------------------------------------------------------------
# fit_gemmix.


def test_fit_gemmix_makes_twelve_components_by_default():
    tr = _trace(contexts=3, lengths=5)  # 15 rows, distinct top-1 probabilities
    assert len(fit_gemmix(tr).s) == 12 and inspect.signature(fit_gemmix).parameters["components"].default == 12


def test_fit_gemmix_takes_as_many_components_as_positions_and_refuses_one_more():
    tr = _trace()  # 6 rows
    assert len(fit_gemmix(tr, components=6).s) == 6
    with pytest.raises(BrwError, match="^" + re.escape(
            "components=7 is more than the 6 positions of the trace: at most components=6 fits (each component is "
            "a quantile bin of positions)") + "$"):
        fit_gemmix(tr, components=7)


@pytest.mark.parametrize("bad, shown", [(0, "0"), (-1, "-1"), (True, "True"), (2.0, "2.0")])
def test_fit_gemmix_refuses_components_that_are_not_a_whole_number_from_one(bad, shown):
    with pytest.raises(BrwError, match=rf"^components must be a whole number >= 1, got {shown}$"):
        fit_gemmix(_trace(), components=bad)


def test_fit_gemmix_of_one_component():
    law = fit_gemmix(_trace(), components=1)
    assert len(law.s) == 1 and law.w == (1.0,)


def test_fit_gemmix_drops_empty_bins_and_puts_tied_rows_in_the_last():
    """Twelve rows with one top-1 probability: every quantile edge is that value, so every row falls in the last
    bin (clipped from `components`); the other bins are empty and dropped."""
    tr = _trace(contexts=3, lengths=4, kinds=("uniform",))
    law = fit_gemmix(tr, components=3)
    assert law.w == (1.0,) and law.s == (float(f"{np.exp(np.float64(tr.top_logp[0, 0])):.9g}"),)


def test_fit_gemmix_clips_a_certain_spike_to_one_less_1e_9():
    """Rows whose top-1 probability is 1 in float64: s = 1 - 1e-9 (printed to 9 digits), not 1 (refused)."""
    z = np.zeros(V)
    z[0] = 60.0
    tr = _trace_of([z, z, z])
    assert np.all(np.exp(tr.top_logp[:, 0].astype(np.float64)) == 1.0)
    law = fit_gemmix(tr, components=1)
    assert law.s == (0.999999999,) and law.theta == (1e-9,)


def test_fit_gemmix_floors_a_components_gem_entropy_at_zero():
    """Two-token rows p = (0.9, 0.1) and (0.6, 0.4) in one bin: their mean entropy is below the binary entropy
    of their mean top-1 probability (concavity), so the GEM part's entropy is floored at 0: theta = 1e-9."""
    def two(p):
        z = np.full(V, -20.0)
        z[0], z[1] = math.log(p), math.log(1 - p)
        return z
    law = fit_gemmix(_trace_of([two(0.9), two(0.6)]), components=1)
    assert law.theta == (1e-9,) and law.s == (pytest.approx(0.75, abs=1e-6),)


def test_fit_gemmix_components_are_the_bins_rounded_to_nine_digits():
    """s_c is the bin's mean top-1 probability, theta_c the GEM parameter of its remaining entropy, both printed
    to 9 significant digits; with 6 distinct rows and 6 components every bin holds one row."""
    tr = _trace()
    law = fit_gemmix(tr, components=6)
    top1 = np.exp(tr.top_logp[:, 0].astype(np.float64))
    order = np.argsort(top1)
    sc = top1[order]
    h = np.asarray(tr.entropy, dtype=np.float64)[order]
    hb = -special.xlogy(sc, sc) - special.xlogy(1 - sc, 1 - sc)  # as fitted's _binary_entropy: the same bits
    assert law.s == tuple(float(f"{v:.9g}") for v in sc)
    assert law.theta == tuple(float(f"{_theta_for_entropy(max(a - b, 0.0) / (1.0 - c)):.9g}")
                              for a, b, c in zip(h, hb, sc))


def test_fit_gemmix_weights_sum_to_exactly_one_by_correcting_the_first():
    """35 distinct rows in 4 quantile bins hold 9, 8, 9 and 9 rows (the 18th row sits on the middle edge and goes
    above it: side="right"), and fsum(9/35, 8/35, 9/35, 9/35) misses 1 by one ulp: the first weight takes the
    difference (fitted:241), so the weights sum to 1 exactly."""
    law = fit_gemmix(_trace(contexts=5, lengths=7), components=4)
    w = np.array([9, 8, 9, 9]) / 35
    assert math.fsum(w) != 1.0
    assert law.w[1:] == tuple(w[1:]) and law.w[0] == w[0] + (1.0 - math.fsum(w)) and math.fsum(law.w) == 1.0


def test_fit_gemmix_of_a_gem_entropy_beyond_the_theta_search_range_takes_the_largest_theta():
    """Three rows with top-1 probability 1 - 4e-11 (above 1 - 1e-9) whose recorded entropy is 1e-6 nats above the
    exact one (the trace's validation accepts it: within its tolerance): the spike is clipped to 1 - 1e-9, so the GEM
    part needs entropy (1e-6 - 2.2e-8) / 1e-9, about 980 nats, beyond theta = 1e12 (28.2 nats), where scipy's
    brentq once raised ValueError. The largest theta is taken: the fit's entropy misses the recorded one by that
    1e-9 of the mass times the 950 nats it cannot hold, 1e-6 nats."""
    z = np.zeros(V)
    z[0] = 30.0
    trace = _trace_of([z, z, z], entropy_shift=1e-6)
    assert np.all(np.exp(trace.top_logp[:, 0].astype(np.float64)) > 1 - 1e-9)
    law = fit_gemmix(trace, components=1)
    assert law.theta == (1e12,) and law.s == (float(f"{1 - 1e-9:.9g}"),)
    assert abs(law.mu - float(np.mean(trace.entropy))) < 1.1e-6


# ---------------------------------------------------------------------------------------------------------
# entropy_autocorrelation, entropy_after_run.


def test_entropy_autocorrelation_takes_lags_up_to_one_below_the_positions():
    tr = _trace()  # 6 rows
    assert set(entropy_autocorrelation(tr, (5,))) == {5}
    assert set(entropy_autocorrelation(tr, 5)) == {5}  # a bare lag too
    for lags in [(6,), (1, 6), (6, 1)]:  # the message names the largest lag, wherever it stands
        with pytest.raises(BrwError, match=r"^lags must be below the 6 positions of the trace, got 6$"):
            entropy_autocorrelation(tr, lags)


def test_entropy_autocorrelation_refuses_a_lag_below_one_and_defaults_to_lags_one_and_two():
    tr = _trace()
    with pytest.raises(BrwError, match=r"^lag must be a whole number >= 1, got 0$"):
        entropy_autocorrelation(tr, (0, 1))
    assert list(entropy_autocorrelation(tr)) == [1, 2]


def test_entropy_after_run_caps_runs_at_8_by_default_and_refuses_a_cap_below_1():
    tr = _trace(contexts=3, lengths=5)
    got = entropy_after_run(tr)
    assert len(got) == 9 and sum(n for _, n in got) == 15
    one = entropy_after_run(tr, cap=1)
    assert len(one) == 2 and sum(n for _, n in one) == 15  # runs of 1 or more are one bin: every row counted
    with pytest.raises(BrwError, match=r"^cap must be a whole number >= 1, got 0$"):
        entropy_after_run(tr, cap=0)


# ---------------------------------------------------------------------------------------------------------
# markov: regimes.


def test_fit_markov_takes_as_many_regimes_as_positions_and_refuses_one_more():
    tr = _trace()
    reg, trans, _ = fit_markov(tr, 6)
    assert sorted(reg.tolist()) == list(range(6)) and trans.shape == (6, 6)
    with pytest.raises(BrwError, match="^" + re.escape(
            "regimes=7 is more than the 6 positions of the trace: at most regimes=6 fits (each regime is an "
            "entropy-quantile bin of positions)") + "$"):
        fit_markov(tr, 7)


@pytest.mark.parametrize("bad, shown", [(0, "0"), (True, "True"), (1.0, "1.0")])
def test_fit_markov_refuses_regimes_that_are_not_a_whole_number_from_one(bad, shown):
    with pytest.raises(BrwError, match=rf"^regimes must be a whole number >= 1, got {shown}$"):
        fit_markov(_trace(), bad)


def test_markov_regimes_cost_40_bytes_times_regimes_squared(monkeypatch):
    """5 regimes need 40 * 25 = 1000 bytes: accepted with exactly 1000 / 0.8 = 1250 bytes available, refused with
    1249, naming the largest count that fits (4: 640 bytes)."""
    limits = importlib.import_module("brw.limits")
    tr = _trace()
    monkeypatch.setattr(limits, "available_memory", lambda: 1250)
    assert fit_markov(tr, 5)[1].shape == (5, 5)
    monkeypatch.setattr(limits, "available_memory", lambda: 1249)
    with pytest.raises(BrwError, match="^" + re.escape(
            "a Markov-modulated law with regimes=5 needs about 1000 B of memory but 1.2 KiB is available; at most "
            "regimes=4 fits") + "$"):
        fit_markov(tr, 5)


def test_markov_refuses_regimes_before_it_loads_its_trace():
    with pytest.raises(BrwError, match=r"^regimes must be a whole number >= 1, got 0$"):
        MarkovTrace("no/such.npz", 0)


def test_markov_refuses_a_regime_without_rows_and_takes_regimes_of_one_row_each(files):
    """Twelve rows of one entropy cannot make 2 regimes (the lower is empty); six distinct entropies make 6
    regimes of exactly one row (a count of 1 is not 0)."""
    path = files["uniform"]
    assert MarkovTrace(path, 1).regimes == 1
    with pytest.raises(BrwError, match="^" + re.escape(
            f"markov law: trace {path!r} has too few distinct entropies for 2 regimes; use fewer") + "$"):
        MarkovTrace(path, 2)
    law = MarkovTrace(files["six"], 6)
    assert law._offsets.tolist() == list(range(7))


def test_markov_spec_takes_regimes_from_one_and_refuses_zero_in_the_specs_words(files):
    """parse_int's minimum=1 (fitted:418) refuses 0 in the spec's words, before whole_number's own message."""
    spec = f"markov:trace={files['six']},regimes=0"
    with pytest.raises(BrwError, match="^" + re.escape(f"regimes=0 in law spec {spec!r} must be >= 1") + "$"):
        parse_law(spec)
    assert parse_law(f"markov:trace={files['six']},regimes=1").regimes == 1


def test_markov_spec_errors_name_missing_unknown_and_bad_fields():
    for spec, words in [("markov:trace=code", "law spec 'markov:trace=code' is missing regimes"),
                        ("markov:regimes=2", "law spec 'markov:regimes=2' is missing trace"),
                        ("markov:trace=code,regimes=2,cap=3", ("unknown parameter 'cap' in law spec "
                         "'markov:trace=code,regimes=2,cap=3'; expected trace, regimes, [holdout]")),
                        ("markov:trace=code,regimes=2.5",
                         "regimes='2.5' in law spec 'markov:trace=code,regimes=2.5' must be a whole number"),
                        ("markov:trace=code,regimes=2,holdout=4/4", ("holdout='4/4' in law spec "
                         "'markov:trace=code,regimes=2,holdout=4/4' must be j/K, fold j of K folds (K >= 2, "
                         "0 <= j < K), e.g. holdout=1/4"))]:
        with pytest.raises(BrwError, match="^" + re.escape(words) + "$"):
            parse_law(spec)


# ---------------------------------------------------------------------------------------------------------
# markov: holdout, T, equality, the kernel form.


def test_markov_holdout_from_its_spec_and_from_numpy_integers(files):
    law = parse_law(f"markov:trace={files['six']},regimes=2,holdout=1/2")
    assert law.holdout == (1, 2) and str(law) == f"markov:trace={files['six']},regimes=2,holdout=1/2"
    np_law = MarkovTrace(files["six"], 2, (np.int64(1), np.int64(2)))
    assert np_law.holdout == (1, 2) and all(type(v) is int for v in np_law.holdout) and np_law == law


@pytest.mark.parametrize("holdout", [(2, 2), (0, 1), (-1, 3), (True, 2), [0, 2], (0, 2, 3)])
def test_markov_refuses_a_holdout_that_is_not_a_fold_of_two_or_more(holdout, files):
    with pytest.raises(BrwError, match="^" + re.escape(
            f"markov law needs holdout=None or (j, K), fold j of K folds with K >= 2 and 0 <= j < K, got "
            f"holdout={holdout!r}") + "$"):
        MarkovTrace(files["six"], 2, holdout)


def test_markov_fits_its_regimes_to_the_trace_law_at_its_T_less_its_holdout(files):
    """The base trace law takes markov's T and holdout: at T = 0.5 its moments are those of trace:PATH,T=0.5 (not
    of T = 1); with holdout=(0, 2) one of the two contexts (3 of 6 rows) is left out."""
    p = files["six"]
    hot, plain = MarkovTrace(p, 2, T=0.5), parse_law(f"trace:{p}")
    assert hot.mu == parse_law(f"trace:{p},T=0.5").mu and hot.mu < plain.mu
    assert MarkovTrace(p, 2, (0, 2)).base.trace.positions == 3 and MarkovTrace(p, 2).base.trace.positions == 6


def test_markov_moments_psi_and_spine_are_its_trace_laws(files):
    """A node's marginal law is the trace's: mu, mu2, psi and the spine atoms, exactly."""
    law = MarkovTrace(files["six"], 3)
    base = parse_law(f"trace:{files['six']}")
    t = np.array([0.5, 1.0, 2.0])
    assert (law.mu, law.mu2) == (base.mu, base.mu2) and np.array_equal(law.psi(t), base.psi(t))
    for a, b in zip(law.spine_atoms(), base.spine_atoms()):
        assert np.array_equal(a, b)


def test_markov_has_no_temperature_cap_of_its_own(files):
    """markov's own check has no upper limit (its trace law refuses T > 1 only where the tails cannot take it):
    a trace whose tails allow it takes T = 1.5."""
    assert MarkovTrace(files["warm"], 2, T=1.5).T == 1.5


@pytest.mark.parametrize("T, shown", [(0, "0"), (math.inf, "inf"), (False, "False")])
def test_markov_refuses_a_temperature_that_is_not_a_positive_number(T, shown, files):
    with pytest.raises(BrwError, match=rf"^markov law's T must be a finite number > 0 \(a temperature\), got {shown}$"):
        MarkovTrace(files["six"], 2, T=T)


def test_markov_equality_reads_trace_regimes_holdout_and_T(files):
    p = files["six"]
    a = MarkovTrace(p, 2)
    assert a == MarkovTrace(p, 2) and hash(a) == hash(MarkovTrace(p, 2))
    assert a != MarkovTrace(p, 3) and a != MarkovTrace(p, 2, (0, 2)) and a != MarkovTrace(p, 2, T=0.5)
    assert a != MarkovTrace(files["warm"], 2) and a != str(a) and a != 2


def test_fitted_laws_have_no_lattice_span(files, hot):
    """Neither law's spine step lives on a lattice: span 0 (no renewal correction), also where the trace has only
    a few rows."""
    assert GEMMix(*ONE).lattice_span == 0.0 and hot.lattice_span == 0.0
    assert MarkovTrace(files["six"], 2).lattice_span == 0.0


def test_markov_kernel_parameters_are_regimes_offsets_and_cumulative_frequencies_and_transitions(files):
    """params = [G, offsets (G + 1), cumsum(frequencies), cumsum of each transition row]; table rows sorted by
    regime (stable)."""
    law = MarkovTrace(files["six"], 3)
    reg, trans, freq = fit_markov(law.base.trace, 3)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(reg, minlength=3))])
    kl, base = law.kernel_law(), law.base.kernel_law()
    np.testing.assert_array_equal(kl.params, np.concatenate([[3.0], offsets, np.cumsum(freq),
                                                             np.cumsum(trans, axis=1).ravel()]))
    order = np.argsort(reg, kind="stable")
    assert kl.kind == KIND_TABLE and kl.width == base.width
    np.testing.assert_array_equal(kl.table, base.table[order])
    np.testing.assert_array_equal(kl.tails, base.tails[order])
    assert not np.array_equal(np.cumsum(trans, axis=1), np.cumsum(trans, axis=0))  # the axis matters here


# ---------------------------------------------------------------------------------------------------------
# brw.spec


@pytest.mark.parametrize("x, text", [(2.0, "2"), (-3.0, "-3"), (0.0, "0"), (2.5, "2.5"), (-2.5, "-2.5"),
                                     (999999999999999.0, "999999999999999"), (1e15, "1000000000000000.0"),
                                     (-1e15, "-1000000000000000.0"), (-999999999999999.0, "-999999999999999")])
def test_fmt_prints_whole_numbers_below_1e15_as_ints_and_the_rest_as_repr(x, text):
    assert fmt(x) == text


def test_parse_fields_refuses_an_empty_body_listing_every_required_key():
    with pytest.raises(BrwError, match="^" + re.escape("law spec 'x:' needs parameters: a=..., b=...") + "$"):
        parse_fields("", "x:", ("a", "b"))


@pytest.mark.parametrize("part", ["a", "=1", "a=", "a= ", " =1"])
def test_parse_fields_refuses_a_field_without_a_key_an_equals_sign_or_a_value(part):
    """Each of the three conditions alone (no '=', no key, no value) refuses the field."""
    with pytest.raises(BrwError, match="^" + re.escape(f"bad parameter {part!r} in law spec 'x': write key=value")):
        parse_fields(f"b=2,{part}", "x", ("a", "b"))


def test_parse_fields_refuses_unknown_and_repeated_keys_and_lists_the_missing():
    with pytest.raises(BrwError, match="^" + re.escape("unknown parameter 'c' in law spec 'x'; expected a, b, [o]")):
        parse_fields("a=1,c=2", "x", ("a", "b"), ("o",))
    with pytest.raises(BrwError, match="^" + re.escape("parameter 'o' given twice in law spec 'x'") + "$"):
        parse_fields("a=1,b=2,o=1,o=2", "x", ("a", "b"), ("o",))
    with pytest.raises(BrwError, match="^" + re.escape("law spec 'x' is missing a, b") + "$"):
        parse_fields("o=1", "x", ("a", "b"), ("o",))


def test_parse_fields_takes_optional_keys_once_and_strips_keys_and_values():
    assert parse_fields(" a = 1 ,o=x", "x", ("a",), ("o",)) == {"a": "1", "o": "x"}
    assert parse_fields("a=1", "x", ("a",), ("o",)) == {"a": "1"}
    assert inspect.signature(parse_fields).parameters["optional"].default == ()


def test_parse_float_quotes_text_that_is_not_a_number_clipped_to_40_characters():
    text = "x" * 30 + "y" * 30
    with pytest.raises(BrwError, match="^" + re.escape(f"a={clip(text, 40)!r} in law spec 's' is not a number") + "$"):
        parse_float(text, "a", "s")
    assert clip(text, 40) == "x" * 26 + "...(60 characters)..." + "y" * 10


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_parse_float_refuses_what_is_not_finite(text):
    with pytest.raises(BrwError, match="^" + re.escape(f"a={text!r} in law spec 's' must be finite") + "$"):
        parse_float(text, "a", "s")


def test_parse_float_positive_refuses_zero_and_takes_the_least_positive_float():
    with pytest.raises(BrwError, match="^" + re.escape("a=0 in law spec 's' must be > 0") + "$"):
        parse_float("0", "a", "s", positive=True)
    assert parse_float("5e-324", "a", "s", positive=True) == 5e-324


def test_parse_float_nonnegative_takes_zero_and_minus_zero_and_refuses_the_least_negative_float():
    assert parse_float("0", "a", "s", nonnegative=True) == 0.0 and parse_float("-0.0", "a", "s", nonnegative=True) == 0
    with pytest.raises(BrwError, match="^" + re.escape("a=-5e-324 in law spec 's' must be >= 0") + "$"):
        parse_float("-5e-324", "a", "s", nonnegative=True)


def test_parse_float_takes_any_sign_by_default_and_its_sign_flags_by_keyword_only():
    assert parse_float("-2.5", "a", "s") == -2.5 and parse_float("0", "a", "s") == 0.0
    params = inspect.signature(parse_float).parameters
    for name in ("positive", "nonnegative"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY and params[name].default is False


def test_parse_float_quotes_a_long_number_clipped_to_40_characters_in_each_refusal():
    """A 401-digit number overflows to inf (not finite), a 60-character zero is not > 0, a 60-character negative
    is not >= 0: each message quotes the text clipped to 40 characters (26 first, 10 last)."""
    big, zero, neg = "1" + "0" * 400, "0." + "0" * 58, "-0." + "0" * 56 + "1"
    for text, kw, tail in [(big, {}, "must be finite"), (zero, {"positive": True}, "must be > 0"),
                           (neg, {"nonnegative": True}, "must be >= 0")]:
        shown = repr(clip(text, 40)) if not kw else clip(text, 40)
        assert len(text) > 40 and shown.strip("'").startswith(text[:26] + "...(")
        with pytest.raises(BrwError, match="^" + re.escape(f"a={shown} in law spec 's' {tail}") + "$"):
            parse_float(text, "a", "s", **kw)


def test_parse_int_quotes_a_long_number_below_its_minimum_clipped_to_40_characters():
    text = "-" + "9" * 59
    with pytest.raises(BrwError, match="^" + re.escape(f"k={clip(text, 40)} in law spec 's' must be >= 1") + "$"):
        parse_int(text, "k", "s", minimum=1)


def test_parse_int_takes_its_minimum_and_refuses_one_less():
    assert parse_int("3", "k", "s", minimum=3) == 3
    with pytest.raises(BrwError, match="^" + re.escape("k=2 in law spec 's' must be >= 3") + "$"):
        parse_int("2", "k", "s", minimum=3)
    assert inspect.signature(parse_int).parameters["minimum"].kind is inspect.Parameter.KEYWORD_ONLY


def test_parse_int_quotes_text_that_is_not_a_whole_number_clipped_to_40_characters():
    text = "7" * 30 + ".5" + "0" * 30
    with pytest.raises(BrwError, match="^" + re.escape(f"k={clip(text, 40)!r} in law spec 's' must be a whole "
                                                       f"number") + "$"):
        parse_int(text, "k", "s", minimum=1)


@pytest.mark.parametrize("text, want", [("0/2", (0, 2)), ("1/2", (1, 2)), ("3/4", (3, 4)), ("0/10", (0, 10))])
def test_parse_holdout_takes_every_fold_of_two_or_more(text, want):
    assert parse_holdout(text, "s") == want


@pytest.mark.parametrize("text", ["0/1", "1/1", "2/2", "5/4", "-1/2", "1", "1/", "/2", "a/2", "1/2/3"])
def test_parse_holdout_refuses_what_is_not_a_fold_j_of_K_at_least_2(text):
    with pytest.raises(BrwError, match="^" + re.escape(f"holdout={text!r} in law spec 's' must be j/K, fold j of K "
                                                       f"folds (K >= 2, 0 <= j < K), e.g. holdout=1/4") + "$"):
        parse_holdout(text, "s")


def test_parse_holdout_quotes_its_value_clipped_to_40_characters():
    text = "1/" + "9" * 30 + "x" * 30
    with pytest.raises(BrwError, match="^" + re.escape(f"holdout={clip(text, 40)!r} in law spec")):
        parse_holdout(text, "s")


def test_holdout_and_temperature_texts():
    assert holdout_text(None) == "" and holdout_text((0, 2)) == ",holdout=0/2"
    assert temperature_text(1.0) == "" and temperature_text(1) == "" and temperature_text(0.5) == ",T=0.5"
    assert temperature_text(math.nextafter(1.0, 2.0)) == ",T=1.0000000000000002"


@pytest.mark.parametrize("holdout, want", [(None, None), ((0, 2), (0, 2)), ((1, 2), (1, 2)),
                                           ((np.int32(2), np.int64(3)), (2, 3))])
def test_check_holdout_takes_none_and_folds_of_two_or_more_as_python_ints(holdout, want):
    got = check_holdout(holdout, "x")
    assert got == want and (got is None or all(type(v) is int for v in got))


@pytest.mark.parametrize("holdout", [(0, 1), (2, 2), (-1, 2), (True, 2), (0, True), (np.bool_(False), 2),
                                     (0.0, 2), [0, 2], (0,), (0, 2, 3), "0/2"])
def test_check_holdout_refuses_what_is_not_a_fold_of_whole_numbers(holdout):
    with pytest.raises(BrwError, match="^" + re.escape(f"x law needs holdout=None or (j, K), fold j of K folds with "
                                                       f"K >= 2 and 0 <= j < K, got holdout={holdout!r}") + "$"):
        check_holdout(holdout, "x")


def test_check_holdout_quotes_its_value_clipped_to_40_characters():
    bad = tuple(range(30))
    with pytest.raises(BrwError, match=re.escape(f"got holdout={clip(repr(bad), 40)}") + "$"):
        check_holdout(bad, "x")


@pytest.mark.parametrize("T, want", [(1, 1.0), (5e-324, 5e-324), (np.int64(2), 2.0), (np.float32(0.5), 0.5),
                                     (1e308, 1e308)])
def test_check_temperature_takes_every_finite_positive_number(T, want):
    got = check_temperature(T)
    assert got == want and type(got) is float


@pytest.mark.parametrize("T", [0, 0.0, -5e-324, math.nan, math.inf, True, np.bool_(True), "0.5", None])
def test_check_temperature_refuses_what_is_not_a_finite_positive_number(T):
    with pytest.raises(BrwError, match="^" + re.escape(f"T must be a finite number > 0 (a temperature), got {T!r}")
                       + "$"):
        check_temperature(T)


def test_check_temperature_names_what_it_checks_and_clips_its_value_to_40_characters():
    bad = "x" * 100
    with pytest.raises(BrwError, match="^" + re.escape(f"the law's T must be a finite number > 0 (a temperature), "
                                                       f"got {clip(repr(bad), 40)}") + "$"):
        check_temperature(bad, "the law's T")


def test_split_temperature_without_T_is_the_body_at_1_and_takes_T_anywhere():
    assert split_temperature("a=1,b=2", "s") == ("a=1,b=2", 1.0)
    assert split_temperature(" T =0.5,a=1", "s") == ("a=1", 0.5)
    assert split_temperature("a=1,T=2", "s") == ("a=1", 2.0)


def test_split_temperature_refuses_T_twice():
    with pytest.raises(BrwError, match="^" + re.escape("parameter 'T' given twice in law spec 's'") + "$"):
        split_temperature("T=0.5,a=1,T=0.5", "s")


@pytest.mark.parametrize("value", ["0", "-0.5", "", "-0." + "0" * 50 + "1"])
def test_split_temperature_refuses_a_T_of_zero_or_less_or_none_quoting_it_clipped(value):
    with pytest.raises(BrwError, match="^" + re.escape(f"T={clip(value, 40)} in law spec 's' must be a temperature > "
                                                       f"0 (T=1 is the law itself)") + "$"):
        split_temperature(f"a=1,T={value}", "s")


def test_split_temperature_takes_the_least_positive_T():
    assert split_temperature("T=5e-324", "s") == ("", 5e-324)


# ---------------------------------------------------------------------------------------------------------
# brw.kernel_law: sizing the kernels' buffers.


@pytest.mark.parametrize("theta", [(2.0, 3.0), (3.0, 2.0)])
def test_kernel_args_sizes_a_gem_buffer_by_its_largest_theta(theta):
    """Untempered: lam = max(theta) cut (1 + Poisson sticks), width = int(lam + 12 sqrt(lam) + 32). The largest
    theta (3) stands last, then first, and every s and cumulative weight is below it: a slice of params one off
    either way (reading an s, or a weight) misses it in one of the two."""
    law = _mix((0.5, 0.2), theta, (0.5, 0.5))
    args = kernel_args(law, 10)
    lam = 3.0 * 10.0
    assert args.width == int(lam + 12.0 * math.sqrt(lam) + 32) and args.cut == 10.0 and type(args.cut) is float


def test_kernel_args_sizes_a_tempered_gem_buffer_by_its_temperature():
    """Tempered (1 / T last in params): lam = theta (cut / (1 / T) + log1p(theta) + 30)."""
    law = _mix((0.5, 0.2), (2.0, 3.0), (0.5, 0.5), T=0.5)
    args = kernel_args(law, 10.0)
    lam = 3.0 * (10.0 / 2.0 + math.log1p(3.0) + 30.0)
    assert args.width == int(lam + 12.0 * math.sqrt(lam) + 32)


def test_kernel_args_keeps_the_width_of_a_table_law():
    law = parse_law("fixed:p=0.5/0.3/0.2")
    assert kernel_args(law, 10.0).width == law.kernel_law().width == 3


def test_gem_cut_is_infinite_for_table_laws_and_margin_beyond_log_mu_p_plus_one_for_sticks():
    assert gem_cut(parse_law("fixed:p=0.5/0.5"), 100) == math.inf
    law = GEMMix(*ONE)
    assert gem_cut(law, 100) == math.log(law.mu * 101) + GEM_MARGIN and GEM_MARGIN == 20.0


def test_gem_cut_floors_mu_at_1e_3():
    """A nearly certain spike (mu about 2e-5) takes mu = 1e-3; a law with mu between 1e-3 and 1e-2 keeps its own."""
    tiny = _mix((0.999999,), (1.0,), (1.0,))
    assert tiny.mu < 1e-3 and gem_cut(tiny, 100) == math.log(1e-3 * 101) + GEM_MARGIN
    small = _mix((0.9995,), (1.0,), (1.0,))
    assert 1e-3 < small.mu < 1e-2 and gem_cut(small, 100) == math.log(small.mu * 101) + GEM_MARGIN


def test_a_kernel_law_has_no_tail_groups_by_default():
    kl = KernelLaw(KIND_TABLE, np.zeros((1, 1)), np.zeros(1), 1)
    assert kl.tails.shape == (1, 0, 2)
