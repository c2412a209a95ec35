"""The refusals and limits of brw.theory, each pinned at its exact boundary: the law's moments, P (whole numbers
from 1 to 10^308), grid steps and point counts (and the memory they need), levels x, the lattice tolerances,
xmax's 700 nats, the 680-nat ceiling of log(mu (P + 1)), the refusal of an unresolved P or law and its numbers,
accepted_count_law's convolution limit and coarse-grid refusal, context_mixture's inputs, Bounds' P dtype, the
defaults and keyword-only markers of the public functions, and the clips of user input in messages.

Each test sits on a boundary (the value at the limit treated one way, the next one the other) or reads the numbers
a message computes, so that a mutant moving a comparison, a constant, a default or a clip length fails here.
Memory limits are made machine-independent by monkeypatching ``available_memory``.
"""

import importlib
import inspect
import math
import re

import numpy as np
import pytest

from brw import BrwError, parse_law
from brw import theory as T
from brw.laws import Law

DIRICHLET = "dirichlet:alpha=0.5,k=8"
LOG2, LOG3 = math.log(2), math.log(3)
#: (mu + mu2) / mu^2 of uniform:k=2 (mu = log 2, mu2 = log(2)^2): the paper's bound is this times log P.
PAPER_2 = (1 + LOG2) / LOG2


class Atoms(Law):
    """A test-only discrete law: spine steps and weights as given, and mu, mu2, psi chosen by the test (they need
    not agree with the atoms: each test reads only what the code under test reads)."""

    name = "atoms-test"

    def __init__(self, steps=(1.0,), weights=(1.0,), mu=1.0, mu2=1.0, spec="atoms", psi=None):
        self._steps = np.asarray(steps, dtype=np.float64)
        self._weights = np.asarray(weights, dtype=np.float64)
        self._mu, self._mu2, self._spec, self._psi = mu, mu2, spec, psi

    @property
    def base_spec(self):
        return self._spec

    @property
    def mu(self):
        return self._mu

    @property
    def mu2(self):
        return self._mu2

    def psi(self, theta):
        return self._psi(theta)

    def spine_atoms(self):
        return self._steps, self._weights


def _memory(monkeypatch, module, nbytes):
    """Say this machine has ``nbytes`` available (to ``brw.limits.require`` or to ``brw.theory`` itself)."""
    monkeypatch.setattr(importlib.import_module(module), "available_memory", lambda: nbytes)


# ---------------------------------------------------------------------------------------------------------
# _law: mu finite and > 0, mu2 finite.


def test_a_law_of_mu_zero_is_refused_naming_mu_and_a_tiny_positive_mu_is_accepted():
    """mu = 0 (uniform:k=1) fails 'mu > 0' (a '>=' would pass it); mu = 1e-100 passes."""
    with pytest.raises(BrwError, match=r"^law uniform:k=1 has mu = 0\.0: every token is certain, the tree is one "
                                       r"path and the renewal theory does not apply \(accepted = P\)$"):
        T.paper_bound("uniform:k=1", [2])
    assert np.isfinite(T.paper_bound(Atoms(mu=1e-100, mu2=1.0), [2])).all()


def test_a_law_of_infinite_mu_is_refused_though_it_is_positive():
    """mu = inf passes 'mu > 0' alone: only the 'and isfinite' refuses it."""
    with pytest.raises(BrwError, match=r"^law atoms has mu = inf: every token is certain"):
        T.wald_lorden_bound(Atoms(mu=math.inf), [2])


def test_an_infinite_mu2_is_refused_and_a_huge_finite_one_accepted():
    with pytest.raises(BrwError, match=r"^law atoms has an infinite second log-moment mu2$"):
        T.paper_bound(Atoms(mu2=math.inf), [2])
    assert T.wald_lorden_bound(Atoms(mu=1.0, mu2=1e300), [1])[0] == 1e300


# ---------------------------------------------------------------------------------------------------------
# P: whole numbers >= 1, at most 10^308.


def test_P_of_exactly_1_is_accepted_and_0_refused_naming_it():
    assert T.paper_bound("uniform:k=2", [1]).tolist() == [0.0]  # log(1) = 0
    with pytest.raises(BrwError, match=r"^P must be whole numbers >= 1, got 0$"):
        T.paper_bound("uniform:k=2", [0])
    with pytest.raises(BrwError, match=r"^P must be whole numbers >= 1, got -3$"):
        T.paper_bound("uniform:k=2", [4, -3])


def test_P_of_exactly_10_to_the_308_is_accepted_and_one_more_refused_with_a_clipped_number():
    """MAX_P = 10^308; the refused P is quoted clipped to 30 characters: 20 digits, the length, 8 digits."""
    assert T.paper_bound("uniform:k=2", [10**308])[0] == pytest.approx(PAPER_2 * 308 * math.log(10), rel=1e-12)
    with pytest.raises(BrwError, match=r"^P=10000000000000000000\.\.\.\(309 characters\)\.\.\.00000001 is too large: "
                                       r"at most P=1e308$"):
        T.paper_bound("uniform:k=2", [10**308 + 1])


@pytest.mark.parametrize("P, shown", [(True, "True"), (2.5, "2.5"), (math.inf, "inf"), (math.nan, "nan"), ("4", "'4'"),
                                      (None, "None")])
def test_P_that_is_not_a_whole_number_is_refused_quoting_it(P, shown):
    """bools are not counts (though ints to Python); floats must be finite and whole; anything else is refused."""
    with pytest.raises(BrwError, match=rf"^P must be whole numbers >= 1, got {shown}$"):
        T.paper_bound("uniform:k=2", [3, P])


@pytest.mark.parametrize("P", [3.0, np.float32(3.0), np.int64(3), np.int8(3), 3])
def test_P_as_a_whole_float_or_any_numpy_integer_is_accepted(P):
    assert T.paper_bound("uniform:k=2", [P])[0] == pytest.approx(PAPER_2 * LOG3, rel=1e-14)
    assert T.paper_bound("uniform:k=2", P)[0] == pytest.approx(PAPER_2 * LOG3, rel=1e-14)  # a scalar is one P


def test_P_refusal_quotes_a_value_of_40_characters_whole_and_clips_one_of_41():
    with pytest.raises(BrwError, match=r"got '" + "a" * 38 + r"'$"):
        T.paper_bound("uniform:k=2", ["a" * 38])  # repr: 40 characters
    with pytest.raises(BrwError, match=r"got 'a{25}\.\.\.\(41 characters\)\.\.\.a{9}'$"):
        T.paper_bound("uniform:k=2", ["a" * 39])


def test_P_that_is_not_one_dimensional_is_refused_and_its_repr_clipped_past_60_characters():
    """An empty list and a 2-D list are refused (size 0 OR ndim != 1); the repr is quoted whole up to 60
    characters, and past that as its first 40, its length and its last 15."""
    head = r"^P must be a whole number >= 1 or a non-empty list of them, got "
    with pytest.raises(BrwError, match=head + r"\[\]$"):
        T.paper_bound("uniform:k=2", [])
    with pytest.raises(BrwError, match=head + r"\[\[1, 2\]\]$"):
        T.paper_bound("uniform:k=2", [[1, 2]])
    sixty = [[10] + [1] * 18]
    assert len(repr(sixty)) == 60
    with pytest.raises(BrwError, match=re.escape(repr(sixty)) + "$"):
        T.paper_bound("uniform:k=2", sixty)
    sixty_one = [[100] + [1] * 18]
    assert len(repr(sixty_one)) == 61
    r = repr(sixty_one)
    with pytest.raises(BrwError, match=re.escape(f"got {r[:40]}...(61 characters)...{r[-15:]}") + "$"):
        T.paper_bound("uniform:k=2", sixty_one)


# ---------------------------------------------------------------------------------------------------------
# Grid steps, grid sizes and points.


@pytest.mark.parametrize("h", ["abc", None, [0.5]])
def test_a_grid_step_that_is_no_number_is_refused(h):
    with pytest.raises(BrwError, match=r"^grid step h must be a finite number > 0$"):
        T.spine_grid("uniform:k=3", h, 8)


def test_the_smallest_positive_grid_step_is_accepted():
    with np.errstate(over="ignore"):  # steps / h overflows to inf: beyond the grid, dropped
        g = T.spine_grid("uniform:k=3", 5e-324, 1)
    assert g.h == 5e-324 and g.floor.size == 2


@pytest.mark.parametrize("K, shown", [(0, "0"), (-1, "-1"), (True, "True"), (2.0, "2.0"),
                                      ("a" * 38, "'" + "a" * 38 + "'"),
                                      ("a" * 39, r"'a{25}\.\.\.\(41 characters\)\.\.\.a{9}'")])
def test_a_grid_size_K_that_is_not_a_whole_number_from_1_is_refused_quoting_it(K, shown):
    with pytest.raises(BrwError, match=rf"^grid size K must be a whole number >= 1, got {shown}$"):
        T.spine_grid("uniform:k=3", 0.5, K)


@pytest.mark.parametrize("K", [1, np.int64(1), np.int32(2)])
def test_a_grid_size_K_of_1_or_a_numpy_integer_is_accepted(K):
    assert T.spine_grid("uniform:k=3", 0.5, K).floor.size == int(K) + 1


def test_a_spine_grid_that_fits_memory_exactly_is_accepted_and_one_cell_more_refused(monkeypatch):
    """160 bytes per grid point (GRID_BYTES), 80% usable: 200000 bytes hold K = 1000 exactly."""
    _memory(monkeypatch, "brw.limits", 200000)
    assert T.spine_grid("uniform:k=3", 0.5, 1000).floor.size == 1001
    with pytest.raises(BrwError, match=r"^a spine grid of uniform:k=3 with K=1001 needs about 156\.4 KiB of memory "
                                       r"but 195\.3 KiB is available; at most K=1000 fits$"):
        T.spine_grid("uniform:k=3", 0.5, 1001)


@pytest.mark.parametrize("points, shown", [(0, "0"), (-5, "-5"), (True, "True"), (8.0, "8.0"),
                                           ("a" * 38, "'" + "a" * 38 + "'"),
                                           ("a" * 39, r"'a{25}\.\.\.\(41 characters\)\.\.\.a{9}'")])
def test_points_that_are_not_a_whole_number_from_1_are_refused_quoting_them(points, shown):
    with pytest.raises(BrwError, match=rf"^points must be a whole number >= 1, got {shown}$"):
        T.renewal(DIRICHLET, 3.0, points=points)


@pytest.mark.parametrize("points", [1, np.int64(1), np.int16(3)])
def test_one_grid_point_or_a_numpy_integer_is_accepted(points):
    r = T.renewal(DIRICHLET, 0.1, points=points)
    assert r.U_lo.size == int(points) + 1


def test_points_that_fit_memory_exactly_are_accepted_and_one_more_refused(monkeypatch):
    _memory(monkeypatch, "brw.limits", 200000)
    assert T.renewal(DIRICHLET, 1.0, points=1000).U_lo.size == 1001
    with pytest.raises(BrwError, match=r"^the renewal numerics of dirichlet:alpha=0\.5,k=8 with points=1001 needs "
                                       r"about 156\.4 KiB of memory but 195\.3 KiB is available; at most points=1000 "
                                       r"fits$"):
        T.renewal(DIRICHLET, 1.0, points=1001)


def test_an_explicit_grid_step_that_fits_memory_exactly_is_accepted_and_a_finer_one_refused(monkeypatch):
    """xmax / h points of 160 bytes against 80% of the memory: 1024 points (h = 2^-10 up to 1) need 163840 bytes,
    exactly 80% of 204800; the next smaller h is refused, the message naming the least h that fits."""
    _memory(monkeypatch, "brw.theory", 204800)
    assert T.renewal(DIRICHLET, 1.0, h=2.0**-10).U_lo.size == 1025
    with pytest.raises(BrwError, match=r"^grid step h=0\.000976562 makes 1\.02e\+03 grid points up to xmax=1, which "
                                       r"need about 160\.0 KiB of memory but 200\.0 KiB is available; at least "
                                       r"h=0\.000977 fits$"):
        T.renewal(DIRICHLET, 1.0, h=float(np.nextafter(2.0**-10, 0)))


def test_an_explicit_grid_step_is_used_and_placed_on_the_lattice_only_when_the_steps_are_multiples_of_it():
    r = T.renewal("uniform:k=2", 5.0, h=LOG2 / 2)
    assert r.h == LOG2 / 2 and r.exact and r.U_lo.size == 16  # K = ceil(5 / (log 2 / 2)) = 15
    assert r.U(LOG2)[0] == r.U(LOG2)[1] == 2.0  # exact: the root and the one node at log 2
    r = T.renewal("uniform:k=2", 5.0, h=0.3)
    assert r.h == 0.3 and not r.exact and r.U_lo.size == 18  # K = ceil(16.67)


def test_a_grid_covers_xmax_with_the_fewest_cells_despite_round_off_and_has_at_least_one():
    """K = max(ceil(xmax / h - 1e-9), 1): log(125) / log(5) computes to 3.0000000000000004, still 3 cells of the
    lattice log 5; xmax = 0 still makes one cell."""
    assert math.log(125) / math.log(5) > 3
    r = T.renewal("uniform:k=5", math.log(125))
    assert r.exact and r.U_lo.size == 4
    r = T.renewal(DIRICHLET, 0.0, h=0.5)
    assert r.U_lo.size == 2 and r.xmax == 0.5


# ---------------------------------------------------------------------------------------------------------
# Levels x (and xmax): finite numbers >= 0.


@pytest.mark.parametrize("x, shown", [(-1.0, "-1.0"), (-1e-300, "-1e-300"), (math.inf, "inf"), (math.nan, "nan")])
def test_a_level_that_is_negative_or_not_finite_is_refused_naming_the_parameter(x, shown):
    with pytest.raises(BrwError, match=rf"^x must be a finite number >= 0, got {shown}$"):
        T.accepted_count_law("uniform:k=3", x)
    with pytest.raises(BrwError, match=rf"^xmax must be a finite number >= 0, got {shown}$"):
        T.renewal("uniform:k=3", x)


def test_a_level_that_is_no_number_is_refused_quoting_it():
    with pytest.raises(BrwError, match=r"^x must be a number, got 'abc'$"):
        T.renewal_estimate("uniform:k=3", "abc")
    with pytest.raises(BrwError, match=r"^xmax must be a number, got None$"):
        T.renewal("uniform:k=3", None)


def test_a_level_of_exactly_zero_is_accepted():
    assert T.renewal("uniform:k=3", 0.0).U(0.0) == (1.0, 1.0)
    n, _, hi = T.accepted_count_law("uniform:k=3", 0.0)
    assert n.tolist() == [1] and hi.tolist() == [0.0]


def test_xmax_of_exactly_700_nats_is_accepted_and_past_it_refused():
    r = T.renewal("uniform:k=2", 700.0)
    assert r.exact and r.xmax >= 700.0 and np.isfinite(r.m_hi).all()
    with pytest.raises(BrwError, match=r"^xmax=700\.5 is too large: e\^x overflows beyond 700 nats$"):
        T.renewal("uniform:k=2", 700.5)


# ---------------------------------------------------------------------------------------------------------
# Renewal: levels inside the grid, the index's tolerances, m_lo's floor at the root.


def test_levels_up_to_xmax_and_a_round_off_past_it_are_read_and_further_ones_refused():
    """The grid of uniform:k=3 up to 5 ends at 5 log 3 = 5.49306; x up to xmax (1 + 1e-12) reads the last point."""
    r = T.renewal("uniform:k=3", 5.0)
    top = r.xmax
    assert r.U(top) == (6.0, 6.0) and r.U(top * (1 + 0.9e-12)) == (6.0, 6.0)
    for x in (top * (1 + 1.1e-12), math.inf, math.nan, -1e-300):
        with pytest.raises(BrwError, match=r"^levels x must lie in \[0, 5\.49306\] for this renewal grid$"):
            r.U(x)
    with pytest.raises(BrwError, match=r"levels x must lie in \[0, 5\.49306\]"):
        r.m([0.0, top * 2])


def test_a_lattice_level_computed_a_round_off_below_its_grid_point_counts_that_point():
    """log(3^5) / log(3) computes to 4.999999999999999: floor(x / h + 1e-9) keeps it on level 5 (U = 6)."""
    x = math.log(3**5)
    assert x / LOG3 < 5
    r = T.renewal("uniform:k=3", 6.0)
    assert r.U(x) == (6.0, 6.0) and r.m(x)[0] == pytest.approx(364.0, rel=1e-12)  # 1 + 3 + ... + 3^5


def test_the_lower_bracket_of_m_never_falls_below_the_root():
    """On a grid too coarse for the law the summation by parts puts m_lo far below 1 (-134750 at points=8); the
    root is always counted, so it is floored at 1."""
    r = T.renewal(DIRICHLET, 10.0, points=8)
    assert r.m_lo.min() == 1.0 and np.all(r.m_lo <= r.m_hi)


def test_a_step_law_all_on_grid_point_0_has_no_renewal_sequence():
    with pytest.raises(BrwError, match=r"^the spine step is 0 with probability 1 on this grid; refine the grid$"):
        T.renewal_sequence(np.array([1.0, 0.0]))
    u = T.renewal_sequence(np.array([0.5, 0.5]))  # f0 < 1: u_0 = 1 / (1 - f0) = 2
    assert u.tolist() == [2.0, 2.0]


def test_a_step_law_a_round_off_below_1_on_grid_point_0_is_accepted():
    f0 = float(np.nextafter(1.0, 0.0))
    assert T.renewal_sequence(np.array([f0]))[0] == pytest.approx(1 / (1 - f0), rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# The lattice: MAX_LATTICE_POINTS = 2^16 cells of the span, and the 1e-9 tolerance of a multiple.

H7 = 2.0**-7  # a span whose 2^16 cells reach 512 nats (inside 700), and whose multiples are exact


def test_a_lattice_grid_of_exactly_2_to_the_16_cells_is_used_and_one_round_off_more_is_not():
    """xmax / span = 65536 exactly: the lattice grid (exact); the next float up: a grid of ``points`` cells, here 4
    cells of 128 nats, on which every step of 2^-7 or 2^-6 rounds to 0: refused."""
    law = Atoms(steps=(H7, 2 * H7), weights=(0.5, 0.5), mu=1.0)
    assert law.lattice_span == H7
    top = 65536 * H7
    r = T.renewal(law, top, points=4)
    assert r.exact and r.h == H7 and r.U_lo.size == 65537
    with pytest.raises(BrwError, match="the spine step is 0 with probability 1"):
        T.renewal(law, float(np.nextafter(top, 1e3)), points=4)


def test_the_grid_step_of_a_law_on_and_off_its_lattice_limit_and_of_a_level_zero():
    law = parse_law("uniform:k=2")
    top = 65536 * LOG2
    assert T._grid_step(law, top, 4) == (LOG2, True)
    after = float(np.nextafter(top, math.inf))
    assert T._grid_step(law, after, 4) == (after / 4, False)
    assert T._grid_step(parse_law(DIRICHLET), 0.0, 4) == (1e-12 / 4, False)  # max(xmax, 1e-12) / points


def test_points_needed_and_the_largest_resolved_top_switch_at_2_to_the_16_lattice_cells():
    """A lattice law on at most 2^16 cells of its span needs no points; past that 2 xmax^2 / mu. Its largest
    resolved top is the larger of 2^16 spans and sqrt(points mu / 2), at most 700."""
    law = Atoms(steps=(H7, 2 * H7), weights=(0.5, 0.5), mu=2.0)
    top = 65536 * H7
    assert T._points_needed(law, top) == 0.0
    after = float(np.nextafter(top, 1e3))
    assert T._points_needed(law, after) == 2.0 * after**2 / 2.0
    assert T._points_needed(parse_law(DIRICHLET), 3.0) == 2.0 * 9.0 / parse_law(DIRICHLET).mu
    assert T._largest_resolved_x(law, 4) == 512.0
    assert T._largest_resolved_x(law, 600**2) == 600.0  # sqrt(360000 * 2 / 2) beats 512, below 700
    assert T._largest_resolved_x(law, 10**6) == 700.0
    assert T._largest_resolved_x(parse_law(DIRICHLET), 8) == math.sqrt(8 * parse_law(DIRICHLET).mu / 2)


def test_an_atom_within_1e_9_of_the_larger_of_step_and_span_is_on_the_lattice_and_past_it_is_not():
    """|step - h rint(step / h)| <= 1e-9 max(step, h): for h = 1 a step 2 (1 + 0.9e-9) is on, 2 (1 + 1.1e-9) is
    off; a step 3e-10 is 3e-10 from 0, within 1e-9 of h = 1 (but not of the step itself)."""
    on = lambda steps: T._on_lattice(Atoms(steps=steps, weights=(1.0,) * len(steps)), 1.0)
    assert on((1.0, 2.0 * (1 + 0.9e-9)))
    assert not on((1.0, 2.0 * (1 + 1.1e-9)))
    assert on((1.0, 3e-10))
    assert not on((1.0, 2e-9))
    assert not T._on_lattice(parse_law(DIRICHLET), 1.0)  # a continuous spine step is on no lattice


def test_spine_grid_on_the_lattice_refuses_steps_that_are_not_multiples_of_h():
    with pytest.raises(BrwError, match=r"^spine steps of fixed:p=0\.5/0\.25/0\.25 are not multiples of h=0\.3$"):
        T.spine_grid("fixed:p=0.5/0.25/0.25", 0.3, 8, on_lattice=True)


def test_spine_grid_keeps_a_step_that_lands_exactly_on_its_last_cell():
    """Steps log 2 and 2 log 2 on the lattice log 2 with K = 2: the step at K h is kept, beyond is dropped."""
    g = T.spine_grid("fixed:p=0.5/0.25/0.25", LOG2, 2, on_lattice=True)
    assert g.exact and g.floor.tolist() == [0.0, 0.5, 0.5] and g.ceil.tolist() == [0.0, 0.5, 0.5]
    g = T.spine_grid("fixed:p=0.5/0.25/0.25", LOG2, 1, on_lattice=True)
    assert g.floor.tolist() == [0.0, 0.5]


def test_spine_grid_off_the_lattice_by_default():
    g = T.spine_grid("fixed:p=0.5/0.25/0.25", LOG2, 3)
    assert not g.exact and g.floor.tolist() == [0.5, 0.5, 0.0, 0.0]


# ---------------------------------------------------------------------------------------------------------
# renewal_estimate's grids, lattice_asymptotic's span, asymptotic's choice.


def test_renewal_estimate_with_fewer_than_4_points_uses_one_point_for_its_coarse_grids():
    """points=3: the grids of points // 16 and points // 4 cells would have none; they get one."""
    est, err, lo, hi = T.renewal_estimate(DIRICHLET, 1.0, points=3)
    assert lo <= est <= hi and err >= 0.0
    assert (lo, hi) == tuple(float(v) for v in T.renewal(DIRICHLET, 1.0, points=3).U(1.0))


def test_renewal_estimate_is_clipped_into_the_rigorous_bracket():
    """fixed:p=0.7/0.3 at x = 1.3 on 64 points: the bracket closes at U = 2.833 but the extrapolated midpoint of
    the coarser grids is 2.793, below it: the estimate is the bracket's end."""
    est, err, lo, hi = T.renewal_estimate("fixed:p=0.7/0.3", 1.3, points=64)
    assert lo == hi == pytest.approx(2.833, abs=1e-9) and est == lo and err > 0.01


def test_lattice_asymptotic_takes_a_span_and_refuses_a_bad_one_or_a_law_without_one():
    assert T.lattice_asymptotic(DIRICHLET, [4], span=0.5)[0] == pytest.approx(
        T.lattice_asymptotic(Atoms(steps=(0.5,), mu=parse_law(DIRICHLET).mu, mu2=parse_law(DIRICHLET).mu2), [4])[0],
        rel=1e-15)
    for span in (0.0, -1.0, math.inf):
        with pytest.raises(BrwError, match=r"^grid step h must be a finite number > 0$"):
            T.lattice_asymptotic("uniform:k=2", [4], span=span)
    with pytest.raises(BrwError, match=r"^law dirichlet:alpha=0\.5,k=8 has no lattice spine step; use "
                                       r"smooth_asymptotic$"):
        T.lattice_asymptotic(DIRICHLET, [4])


def test_asymptotic_is_the_lattice_form_for_a_lattice_law_and_the_smooth_form_otherwise():
    P = [1, 5, 100]
    assert np.array_equal(T.asymptotic("uniform:k=2", P), T.lattice_asymptotic("uniform:k=2", P))
    assert not np.array_equal(T.asymptotic("uniform:k=2", P), T.smooth_asymptotic("uniform:k=2", P))
    assert np.array_equal(T.asymptotic(DIRICHLET, P), T.smooth_asymptotic(DIRICHLET, P))


# ---------------------------------------------------------------------------------------------------------
# The renewal bound: log(mu (P + 1)) at most 680 nats, and P or a law the grid cannot resolve.


def _largest_P_at_680():
    """The largest float P with log(mu) + log(P + 1) == 680.0 exactly for uniform:k=2, and the next float."""
    mu = LOG2
    p = math.exp(680.0) / mu
    for _ in range(300):
        p = float(np.nextafter(p, 0.0))
    while math.log(mu) + math.log(float(np.nextafter(p, math.inf)) + 1) <= 680.0:
        p = float(np.nextafter(p, math.inf))
    assert math.log(mu) + math.log(p + 1) == 680.0
    return int(p), int(float(np.nextafter(p, math.inf)))


def test_a_P_with_log_mu_P_of_exactly_680_is_computed_and_the_next_refused_naming_the_largest():
    fits, refused = _largest_P_at_680()
    assert T.renewal_bound("uniform:k=2", [fits], points=4)[0] == pytest.approx(680.0 / LOG2 + 1, abs=2.0)
    with pytest.raises(BrwError, match=r"^P=3\.02e\+295 is too large for the renewal numerics of uniform:k=2 \(e\^x "
                                       r"overflows past 700 nats\): at most P=3\.02e\+295 fits$"):
        T.renewal_bound("uniform:k=2", [1, refused], points=4)


def test_the_ceiling_of_680_nats_names_the_largest_P_for_the_law():
    """e^680 / mu: 1.05e295 for mu = 2 (an atoms law), against 3.02e295 for uniform:k=2 above."""
    with pytest.raises(BrwError, match=r"^P=1e\+300 is too large .* at most P=1\.05e\+295 fits$"):
        T.renewal_bound(Atoms(steps=(2.0,), mu=2.0), [10**300], points=4)


def test_a_P_beyond_what_the_points_resolve_is_refused_naming_the_largest_P_that_fits():
    """points=16 resolve dirichlet:alpha=0.5,k=8 up to sqrt(16 mu / 2) = 3.43 nats, where m_lo = 12.6. P is taken
    when m_lo > P + 1, so ceil(12.6) - 2 = 11 fits and is named (floor - 2 = 10 was named once), 12 does not; the
    grid it needed reaches at least 2 (3.43 + 4)^2 / mu = 75.1 points."""
    law = parse_law(DIRICHLET)
    xfit = math.sqrt(16 * law.mu / 2)
    m_lo = float(T.renewal(law, xfit, points=16).m_lo[-1])
    assert 12 < m_lo < 13
    need = 2 * (xfit + 4) ** 2 / law.mu
    assert f"{need:.3g}" == "75.1"
    for P in (12, 10**6):
        shown = re.escape(f"{P:.6g}")
        with pytest.raises(BrwError, match=rf"^P={shown} needs a renewal grid of at least 75\.1 points for "
                                           r"dirichlet:alpha=0\.5,k=8 \(points=16\): at most P=11 fits$"):
            T.renewal_bound(DIRICHLET, [P], points=16)
    assert T.renewal_bound(DIRICHLET, [11], points=16)[0] > 1.0


@pytest.mark.parametrize("points, m_lo, largest", [(5, 3.024, 2), (4, 2.514, 1)])
def test_a_grid_whose_m_lo_is_just_above_P_plus_1_names_that_P(points, m_lo, largest):
    """points=5: m_lo(xfit) = 3.02 > 2 + 1, so P = 2 fits (named) and P = 3 does not; points=4: m_lo = 2.51, P = 1."""
    law = parse_law(DIRICHLET)
    assert T.renewal(law, T._largest_resolved_x(law, points), points=points).m_lo[-1] == pytest.approx(m_lo, abs=1e-3)
    with pytest.raises(BrwError, match=rf"^P=1e\+06 needs a renewal grid of at least \S+ points .*\(points={points}\): "
                                       rf"at most P={largest} fits$"):
        T.renewal_bound(DIRICHLET, [10**6], points=points)
    assert T.renewal_bound(DIRICHLET, [largest], points=points)[0] > 0.0
    with pytest.raises(BrwError, match=rf"at most P={largest} fits$"):
        T.renewal_bound(DIRICHLET, [largest + 1], points=points)


@pytest.mark.parametrize("spec, points", [("gem:theta=2", 3), (DIRICHLET, 2)])
def test_too_few_points_for_a_law_far_from_certainty_are_blamed_not_the_law(spec, points):
    """points=3 and 2 resolve no P of these laws (m_lo = 1.88 and 1.59 at the grid's top: not above P + 1 = 2),
    which the default points resolve far: the refusal names the points (it once said 'nearly every token is
    certain ... use a law with mu >= 1' of laws with mu = 1.5)."""
    with pytest.raises(BrwError, match=rf"^P=1e\+06 needs a renewal grid of at least \S+ points for {re.escape(spec)}, "
                                       rf"and points={points} resolves no P; raise points \(points=262144 resolves P "
                                       r"up to (\S+)\)$") as err:
        T.renewal_bound(spec, [10**6], points=points)
    assert float(re.search(r"up to (\S+)\)$", str(err.value)).group(1)) > 1e6
    assert T.renewal_bound(spec, [10**6], points=2**12)[0] > 1.0


@pytest.mark.parametrize("spec, key, rest, sign, outside", [("zipf:s=30,k=40", "s", ",k=40", -1, 1.1),
                                                            ("gem:theta=1e-9", "theta", "", 1, 2.0)])
def test_the_parameter_named_for_a_law_too_near_certainty_is_near_the_edge_of_what_fits(spec, key, rest, sign,
                                                                                        outside):
    """The hint is near the edge, not just a value that fits: 10% inside it the law is resolved, and outside it by
    10% (zipf; its s moves toward certainty as it grows, sign -1: its search runs on -log s) or a factor 2 (gem,
    where the hint sizes the grid by the usual top and so errs on the safe side) it is refused again."""
    with pytest.raises(BrwError, match=rf"at {'least' if sign > 0 else 'most'} about {key}=(\S+) fits$") as err:
        T.renewal_bound(spec, [10**6])
    edge = float(re.search(rf"{key}=(\S+) fits$", str(err.value)).group(1))
    family = spec.split(":")[0]
    assert T.renewal_bound(f"{family}:{key}={edge * 1.1**sign:.6g}{rest}", [10**6])[0] > 1.0
    with pytest.raises(BrwError):
        T.renewal_bound(f"{family}:{key}={edge / outside**sign:.6g}{rest}", [10**6])


def test_a_dirichlet_law_too_near_certainty_is_told_the_least_alpha_that_fits():
    """dirichlet's spread parameter alpha grows away from certainty (sign +1): the hint is 'at least about alpha='
    and a law just above that alpha is resolved."""
    with pytest.raises(BrwError, match=r"nearly every token is certain.*; at least about alpha=(\S+) fits$") as err:
        T.renewal_bound("dirichlet:alpha=1e-9,k=8", [10**6], points=2**10)
    alpha = float(re.search(r"alpha=(\S+) fits", str(err.value)).group(1))
    assert 0.01 < alpha < 0.1
    assert T.renewal_bound(f"dirichlet:alpha={alpha * 1.1:.6g},k=8", [10**6], points=2**10)[0] > 1.0



def test_a_law_without_a_spread_parameter_too_near_certainty_is_told_the_least_mu_that_fits():
    """fixed:p=0.999999/0.000001 (mu = 1.48e-5) on 1024 points: the least mu with 2 top(mu)^2 / mu <= 1024, where
    top(mu) = max(log(mu (P + 1)) + 2, 4 mu, 1), is 0.439."""
    from scipy.optimize import brentq

    need = lambda mu: 2 * max(math.log(mu * (10**6 + 1)) + 2, 4 * mu, 1.0) ** 2 / mu - 1024
    least = brentq(need, 0.1, 1.0, xtol=1e-12)
    assert f"{least:.3g}" == "0.439"
    with pytest.raises(BrwError, match=r"^law fixed:p=0\.999999/1e-06 has mu = 1\.48e-05 nats: nearly every token is "
                                       r"certain, and its renewal numerics would need 2\.25e\+06 grid points "
                                       r"\(points=1024\); use a law with mu >= 0\.439$"):
        T.renewal_bound("fixed:p=0.999999/0.000001", [10**6], points=1024)


def test_the_top_of_the_renewal_grid():
    """max(log(mu (P + 1)) + 2 + 2 span, 4 mu, 1), an infinite span adding nothing."""
    assert T._grid_top(0.5, 0.25, math.exp(10.0) / 0.5 - 1) == pytest.approx(12.5, rel=1e-14)
    assert T._grid_top(0.5, math.inf, math.exp(10.0) / 0.5 - 1) == pytest.approx(12.0, rel=1e-14)
    assert T._grid_top(5.0, 0.0, 1.0) == 20.0  # 4 mu beats log(10) + 2
    assert T._grid_top(0.1, 0.0, 1.0) == 1.0  # 1 beats log(0.2) + 2 = 0.39 and 4 mu = 0.4


def test_renewal_bound_bracket_uses_a_renewal_given_to_it():
    """A renewal passed as ``ren`` is used as is, even one with a grid of its own choosing."""
    r = T.renewal("uniform:k=2", 12.0)
    lo, hi = T.renewal_bound_bracket("uniform:k=2", [1, 4], ren=r)
    _, want_hi = T.renewal_bound_bracket("uniform:k=2", [1, 4])
    np.testing.assert_allclose(hi, want_hi, rtol=1e-12)
    assert hi[0] == pytest.approx(0.5, rel=1e-12)  # accepted(1) of uniform:k=2 is 1/2
    coarse = T.renewal(DIRICHLET, 9.0, points=64)  # cells of 0.14 nats: a wide bracket
    lo, hi = T.renewal_bound_bracket(DIRICHLET, [4], ren=coarse)
    fine_lo, fine_hi = T.renewal_bound_bracket(DIRICHLET, [4], points=2**12)
    assert hi[0] - lo[0] > 0.05 and fine_hi[0] - fine_lo[0] < 0.01


# ---------------------------------------------------------------------------------------------------------
# Biggins' speed: psi(theta) / theta still falling at the largest theta means theta* = inf.


def test_a_flat_psi_over_theta_is_a_limit_at_infinity_whose_speed_is_the_least_weighted_step():
    """psi(theta) = -theta: psi / theta is -1 everywhere, a tie with its value at the largest theta: theta* = inf
    and gamma the smallest step of positive weight (1.0, not the zero-weight 0.05)."""
    law = Atoms(steps=(0.05, 1.0), weights=(0.0, 1.0), psi=lambda t: -t)
    assert T.biggins_speed(law) == (1.0, math.inf)


@pytest.mark.parametrize("scale", [1.0, 4.0])
@pytest.mark.parametrize("rise, limit", [(0.5e-12, True), (2e-12, False)])
def test_psi_over_theta_within_1e_12_of_its_least_value_at_the_largest_theta_is_still_falling(rise, limit, scale):
    """psi / theta = -c up to theta = 1e4, where it is -c (1 - rise): a rise of 0.5e-12 (relative to c) is
    round-off, the infimum a limit (theta* = inf); a rise of 2e-12 makes theta* finite (Brent's minimum, inside the
    grid). c = 4 tells a relative tolerance from an absolute one (or one divided by c)."""
    law = Atoms(steps=(scale,), psi=lambda t: scale * t * (-1.0 + (rise if t > 5000 else 0.0)))
    gamma, theta = T.biggins_speed(law)
    assert math.isinf(theta) is limit and gamma == pytest.approx(scale, rel=1e-11)


def test_predicted_depth_with_an_infinite_theta_is_the_level_over_gamma_and_with_a_finite_one_solves_for_n():
    """theta* = inf: n = log(mu (P + 1)) / gamma; theta* = 1: gamma n + 1.5 log n = log(mu (P + 1)) (brentq, to its
    default xtol 2e-12)."""
    P = np.array([1, 63])
    x = np.log(LOG2 * (P + 1))
    np.testing.assert_allclose(T.predicted_depth("uniform:k=2", P, speed=(2.0, math.inf)), x / 2.0, rtol=1e-15)
    n = T.predicted_depth("uniform:k=2", P, speed=(2.0, 1.0))
    np.testing.assert_allclose(2.0 * n + 1.5 * np.log(n), x, atol=1e-10)
    assert n[0] > x[0] / 2.0 and n[1] < x[1] / 2.0  # 1.5 log n < 0 below n = 1, > 0 above


# ---------------------------------------------------------------------------------------------------------
# accepted_count_law: at most 100000 convolutions, a grid fine enough, and its clips.


def test_a_small_level_is_costed_as_at_least_one_nat_in_the_convolution_count():
    """steps = (x + 10 sqrt(max(x, 1) mu2 / mu)) / mu: at x = 0.01 for fixed:p=0.99999/0.00001 the spread term
    uses 1, not x, and the count 2.55e5 is refused (with x it would be 2.6e4); the message names the x that fits,
    mu 100000 / 2."""
    law = parse_law("fixed:p=0.99999/0.00001")
    steps = (0.01 + 10 * math.sqrt(law.mu2 / law.mu)) / law.mu
    assert 1e5 < steps and (0.01 + 10 * math.sqrt(0.01 * law.mu2 / law.mu)) / law.mu < 1e5
    fit = law.mu * 1e5 / 2
    with pytest.raises(BrwError, match=rf"^the accepted-count law of fixed:p=0\.99999/1e-05 at x=0\.01 needs about "
                                       rf"{re.escape(f'{steps:.3g}')} convolutions, more than the 100000 allowed; "
                                       rf"at most about x={fit:.3g} fits$"):
        T.accepted_count_law(law, 0.01)


def test_a_count_just_below_100000_convolutions_is_not_refused_for_its_count():
    """An x needing 99999.5 convolutions passes the count (a limit lowered to 99999 would refuse it there); on 64
    cells it is then refused for the grid, at once."""
    law = parse_law(DIRICHLET)

    def steps(x):
        return (x + 10.0 * math.sqrt(max(x, 1.0) * law.mu2 / law.mu)) / law.mu

    lo, hi = 1.0, 1e7
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if steps(mid) < 99999.5 else (lo, mid)
    assert 99999 < steps(lo) < 100000
    with pytest.raises(BrwError, match=r"too coarse"):
        T.accepted_count_law(law, lo, points=64)


def test_the_coarse_grid_refusal_states_its_numbers():
    """dirichlet:alpha=0.5,k=8 at x = 1000 on 64 cells (h = 15.6): the floor grid's mass at 0 is f0 = 1 - 3.6e-10,
    and f0^100000 = 0.99996 >= tol: refused, the message naming f0, h, tol, the limit and the points."""
    law = parse_law(DIRICHLET)
    f0 = float(T.spine_grid(law, 1000.0 / 64, 64).floor[0])
    assert 0.999 < f0 < 1.0 and f0**100000 > 1e-12
    with pytest.raises(BrwError, match=r"^the grid of accepted_count_law\(dirichlet:alpha=0\.5,k=8, x=1000\) is too "
                                       r"coarse: 1 of the spine step lies below its cell h=15\.6, so P\(S_n <= x\) "
                                       r"cannot fall below tol=1e-12 within 100000 convolutions; raise points "
                                       r"\(now 64\) or lower x$"):
        T.accepted_count_law(law, 1000.0, points=64)


def test_the_coarse_grid_refusal_weighs_f0_to_the_100000th_against_tol():
    """x = 75 on 16 cells: f0 = 0.99526, f0^100000 = 7.19e-207. tol = 1e-3 runs (the bracket falls below it in a
    few thousand convolutions); tol = 7e-207, just below f0^100000, is refused at once."""
    law = parse_law(DIRICHLET)
    f0 = float(T.spine_grid(law, 75.0 / 16, 16).floor[0])
    assert 7e-207 < f0**100000 < 7.2e-207
    _, _, hi = T.accepted_count_law(law, 75.0, points=16, tol=1e-3)
    assert hi[-1] < 1e-3 <= hi[-2]
    with pytest.raises(BrwError, match=r"0\.995265 of the spine step lies below its cell h=4\.69, .* tol=7e-207 "):
        T.accepted_count_law(law, 75.0, points=16, tol=7e-207)


def test_a_whole_spine_step_below_one_cell_is_refused_as_too_coarse_whatever_tol():
    """f0 = 1 (every step shorter than the cell): f0^100000 = 1 is never below a tol < 1, refused at once."""
    law = Atoms(steps=(1e-6,), mu=1.0, mu2=1.0)
    with pytest.raises(BrwError, match=r"is too coarse: 1 of the spine step lies below its cell .* tol=0\.999 within"):
        T.accepted_count_law(law, 1.0, points=4, tol=0.999)


def test_the_accepted_count_law_counts_a_lattice_level_computed_a_round_off_below_it():
    """log(3^5) / log 3 = 4.999999999999999: K = floor(x / h + 1e-9) = 5, so P(S_5 <= x) = 1."""
    n, lo, hi = T.accepted_count_law("uniform:k=3", math.log(3**5))
    assert n.tolist() == [1, 2, 3, 4, 5, 6] and hi.tolist() == [1.0] * 5 + [0.0] and lo.tolist() == hi.tolist()


def test_the_accepted_count_law_never_exceeds_1_and_its_lower_end_never_exceeds_its_upper():
    for spec, x in (("uniform:k=3", 20.0), ("fixed:p=0.7/0.3", 10.0), ("fixed:p=0.5/0.25/0.25", 20.0)):
        _, lo, hi = T.accepted_count_law(spec, x)
        assert hi.max() == 1.0 and np.all(lo <= hi), spec


@pytest.mark.parametrize("tol", [0.0, -1.0, 1.0, float("nan"), "abc", True])
def test_a_tolerance_that_is_not_a_number_strictly_between_0_and_1_is_refused(tol):
    """tol = 0 or below once reached math.log (ValueError), a string a TypeError, NaN ran 100000 convolutions."""
    shown = re.escape(repr(tol))
    with pytest.raises(BrwError, match=rf"^tol must be a number between 0 and 1 \(exclusive\), got {shown}$"):
        T.accepted_count_law(DIRICHLET, 3.0, tol=tol)


def test_a_tolerance_just_inside_0_and_1_is_taken():
    n, lo, hi = T.accepted_count_law(DIRICHLET, 3.0, tol=math.nextafter(1.0, 0.0))
    assert n.tolist() == [1] and hi[0] < 1.0
    n, lo, hi = T.accepted_count_law("uniform:k=2", 3.0, tol=5e-324)
    assert hi[-1] == 0.0 and n[-1] == 5  # depths 0..3 lie at or below log(2^3) > 3: P(S_5 <= 3) = 0


# ---------------------------------------------------------------------------------------------------------
# context_mixture: a ctx: law and a known prediction.


def test_context_mixture_refuses_a_law_that_is_not_ctx_quoting_it_clipped_past_80_characters():
    with pytest.raises(BrwError, match=r"^context_mixture needs a ctx: law \(a tree per recorded context\), got "
                                       r"uniform:k=2$"):
        T.context_mixture("uniform:k=2", [4])
    with pytest.raises(BrwError, match=r"got " + "s" * 80 + "$"):
        T.context_mixture(Atoms(spec="s" * 80), [4])
    with pytest.raises(BrwError, match=r"got s{53}\.\.\.\(81 characters\)\.\.\.s{20}$"):
        T.context_mixture(Atoms(spec="s" * 81), [4])


@pytest.fixture(scope="module")
def ctx_law():
    try:
        return parse_law("ctx:trace=gemma3-chat")
    except BrwError as e:  # pragma: no cover - traces not installed
        pytest.skip(f"no ctx:trace=gemma3-chat here: {e}")


@pytest.mark.parametrize("prediction, shown", [("sharp", "'sharp'"), ("Renewal", "'Renewal'"), (None, "None"),
                                               ("x" * 38, "'" + "x" * 38 + "'"),
                                               ("x" * 39, r"'x{25}\.\.\.\(41 characters\)\.\.\.x{9}'")])
def test_context_mixture_refuses_an_unknown_prediction_quoting_it(ctx_law, prediction, shown):
    with pytest.raises(BrwError, match=rf"^prediction must be 'renewal' or 'asymptotic', got {shown}$"):
        T.context_mixture(ctx_law, [4], prediction=prediction)


def test_context_mixture_predicts_by_renewal_by_default_and_by_the_sharp_formula_on_request(ctx_law):
    """One recorded context (ctx:trace=gemma3-chat,context=3, weight 1): the mixture is that context's renewal
    bound by default, its sharp asymptotic with prediction='asymptotic' (they differ by 0.02 at P = 4, 0.05 at
    P = 64)."""
    one = ctx_law.context_laws()[3]
    P = [4, 64]
    renewal, sharp = T.renewal_bound(one, P, points=256), T.asymptotic(one, P)
    assert np.all(np.abs(renewal - sharp) > 0.01)
    np.testing.assert_allclose(T.context_mixture(one, P, points=256), renewal, rtol=1e-12)
    np.testing.assert_allclose(T.context_mixture(one, P, prediction="asymptotic"), sharp, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# bounds(): P's dtype, T, the context mixture only for a ctx: law.


def test_bounds_keeps_P_as_int64_up_to_2_to_the_63_minus_1_and_as_python_ints_from_2_to_the_63():
    b = T.bounds("uniform:k=2", [1, 2**63 - 1], points=64)
    assert b.P.dtype == np.int64 and b.P.tolist() == [1, 2**63 - 1]
    b = T.bounds("uniform:k=2", [1, 2**63], points=64)
    assert b.P.dtype == object and b.P.tolist() == [1, 2**63]


def test_bounds_tempers_by_T_only_when_asked_and_reports_no_context_mixture_for_a_plain_law():
    b = T.bounds("fixed:p=0.7/0.3", [4], points=64)
    assert b.law == "fixed:p=0.7/0.3" and b.mu == parse_law("fixed:p=0.7/0.3").mu
    assert b.context_mixture is None and "context_mixture" not in b.to_dict()
    hot = T.bounds("fixed:p=0.7/0.3", [4], points=64, T=2.0)
    assert hot.law == "fixed:p=0.7/0.3,T=2" and hot.mu == parse_law("fixed:p=0.7/0.3,T=2").mu > b.mu


# ---------------------------------------------------------------------------------------------------------
# Defaults and keyword-only parameters of the public functions.


@pytest.mark.parametrize("fn, name, default", [
    (T.renewal, "points", 2**18), (T.renewal, "h", None), (T.renewal_estimate, "points", 2**18),
    (T.renewal_bound_bracket, "points", 2**18), (T.renewal_bound_bracket, "ren", None),
    (T.renewal_bound, "points", 2**18), (T.accepted_count_law, "points", 4096), (T.accepted_count_law, "tol", 1e-12),
    (T.context_mixture, "prediction", "renewal"), (T.context_mixture, "points", 2**18), (T.bounds, "points", 2**18),
    (T.bounds, "T", 1.0), (T.spine_grid, "on_lattice", False),
])
def test_keyword_only_parameters_and_their_defaults(fn, name, default):
    p = inspect.signature(fn).parameters[name]
    assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default == default and type(p.default) is type(default)


@pytest.mark.parametrize("fn, name", [(T.lattice_asymptotic, "span"), (T.predicted_depth, "speed")])
def test_optional_positional_parameters_default_to_none(fn, name):
    p = inspect.signature(fn).parameters[name]
    assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is None


def test_the_module_constants():
    """Their values as documented (DEFAULT_POINTS, the lattice limit, MAX_P, the overflow ceilings)."""
    assert (T.DEFAULT_POINTS, T.MAX_LATTICE_POINTS, T.MAX_P) == (2**18, 2**16, 10**308)
    assert (T.MAX_LOG_MU_P, T.MIN_GRID_TOP, T.MAX_CONVOLUTIONS, T.GRID_BYTES) == (680.0, 1e-3, 100000, 160)
    assert T.BIGGINS_XATOL == 1e-8
    assert T.BOUND_KEYS == ("paper_bound", "wald_lorden_bound", "renewal_bound", "asymptotic")
