"""Theory without simulation: renewal numerics, bounds and asymptotics of a step law (theory.md sections 2-6).

Everything here is a function of the law alone (its ``mu``, ``mu2``, ``psi`` and spine step law), so it works
for every :class:`brw.laws.Law`, the empirical trace laws included (their spine step is discrete: exact atoms).

The renewal function U(x) = sum_n P(S_n <= x) and the mean count m(x) = E #{v : V(v) <= x} are computed on a
grid of step h by flooring and by ceiling every spine step to the grid (theory.md section 5). A floored walk is
never above the true walk, so its renewal function is an upper bound of U and the ceiled one a lower bound; m is
bracketed from U by summation by parts (``Renewal``). Where the spine step lives on a lattice h Z the grid is that
lattice and the bracket has width 0. The lattice renewal sequence u = 1 / (1 - f(z)) is a power-series inverse,
computed by Newton's iteration with FFT products in O(K log K). The rigorous bracket of a non-lattice law is
about x^2 / (points mu^2) wide; ``renewal_estimate`` extrapolates its midpoint (Richardson) where the spine
density is smooth.

Bounds on accepted = E[X] (bonus token excluded) at P draft nodes:

- ``paper_bound``: (mu + mu2) log(P) / mu^2, the paper's bound without its O(1);
- ``wald_lorden_bound``: log(P) / mu + mu2 / mu^2 (theory.md section 6);
- ``renewal_bound``: identity 6, min over x of U(x) + e^-x (P + 1 - m(x)), minus the root; by parts this is
  e^-x (P + 1 + integral_0^x e^y U(y) dy), monotone in U, so its bracket is narrow even for discrete laws;
- ``asymptotic``: the sharp formula, log(mu (P + 1)) / mu + mu2 / (2 mu^2) - 1, and, where the spine step is
  lattice, its lattice form (``lattice_asymptotic``): the renewal bound evaluated with the lattice renewal
  asymptotics. The lattice correction is *not* a constant h / (2 mu) added to the smooth formula: see
  ``lattice_asymptotic``.

``bounds(law, P)`` computes all of them at once (with the renewal bound's bracket, the depth of the P-node tree
and Biggins' speed) as a :class:`Bounds`; the command line, ``brw compare`` and the theory check use it.

A law whose trees are mixtures (``ctx:``, one recorded context per tree) is predicted by the mixture over its
contexts of each context's own prediction (``context_mixture``): accepted(P) is convex in mu, so the mixture
lies above the pooled law's prediction (Jensen). Single contexts reach entropies near zero, where the sharp
formula fails at small P; the renewal numerics hold there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy import fft as sfft
from scipy import optimize

from brw.errors import BrwError, clip
from brw.laws import Law, parse_law
from brw.limits import USABLE, available_memory, format_bytes, require
from brw.results import Result

__all__ = [
    "SpineGrid", "Renewal", "spine_grid", "renewal", "renewal_sequence", "renewal_estimate", "paper_bound",
    "wald_lorden_bound", "renewal_bound", "renewal_bound_bracket", "asymptotic", "smooth_asymptotic",
    "lattice_asymptotic", "biggins_speed", "predicted_depth", "accepted_count_law", "context_mixture", "Bounds",
    "bounds",
    "BOUND_KEYS", "DEFAULT_POINTS", "BIGGINS_XATOL",
]

#: Grid points of the renewal numerics when the spine step is not lattice (bracket width ~ x^2 / (points mu^2)).
DEFAULT_POINTS = 2**18
#: Most grid points a lattice law may use. A finer "span" is a numerical accident of two nearly commensurate
#: steps (hypothesis found 0.502/0.498: span 9e-7); such a law is bracketed like a non-lattice one.
MAX_LATTICE_POINTS = 2**16


# --------------------------------------------------------------------------------------------------------
# Validation.


def _law(law) -> Law:
    law = parse_law(law)
    if not (law.mu > 0 and math.isfinite(law.mu)):
        raise BrwError(f"law {law} has mu = {law.mu}: every token is certain, the tree is one path and the "
                       "renewal theory does not apply (accepted = P)")
    if not math.isfinite(law.mu2):
        raise BrwError(f"law {law} has an infinite second log-moment mu2")
    return law


#: Largest P the formulas take: log(P) of a float64.
MAX_P = 10**308


def _count_list(P) -> list[int]:
    """P as exact Python ints (whole numbers >= 1, any size up to MAX_P), or one BrwError."""
    try:
        arr = np.atleast_1d(np.asarray(P, dtype=object))
    except (TypeError, ValueError):  # pragma: no cover - ragged input
        arr = np.zeros((0, 0))
    if arr.ndim != 1 or arr.size == 0:
        raise BrwError(f"P must be a whole number >= 1 or a non-empty list of them, got {clip(repr(P), 60)}")
    out = []
    for v in arr:
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            n = int(v)
        elif isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
            n = int(v)
        else:
            raise BrwError(f"P must be whole numbers >= 1, got {clip(repr(v), 40)}")
        if n < 1:
            raise BrwError(f"P must be whole numbers >= 1, got {n}")
        if n > MAX_P:
            raise BrwError(f"P={clip(str(n), 30)} is too large: at most P=1e308")
        out.append(n)
    return out


def _counts(P) -> np.ndarray:
    return np.array([float(p) for p in _count_list(P)])


#: Bytes per renewal grid point: the spine grid (floor, ceil and the CDF on the grid), the series inverses
#: and their FFT buffers, U and m bracketed.
GRID_BYTES = 160


def _step(h) -> float:
    """A grid step: a finite number > 0."""
    try:
        h = float(h)
    except (TypeError, ValueError):
        h = math.nan
    if not (h > 0 and math.isfinite(h)):
        raise BrwError("grid step h must be a finite number > 0")
    return h


def _grid_points(points, law) -> int:
    """A number of grid points: a whole number >= 1 that fits in memory."""
    if isinstance(points, (bool, np.bool_)) or not isinstance(points, (int, np.integer)) or points < 1:
        raise BrwError(f"points must be a whole number >= 1, got {clip(repr(points), 40)}")
    require("points", int(points), lambda n: GRID_BYTES * n, what=f"the renewal numerics of {law}")
    return int(points)


def _level(x, name="x") -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise BrwError(f"{name} must be a number, got {x!r}") from None
    if not (math.isfinite(x) and x >= 0):
        raise BrwError(f"{name} must be a finite number >= 0, got {x!r}")
    return x


# --------------------------------------------------------------------------------------------------------
# The spine step on a grid (theory.md section 5).


@dataclass(frozen=True)
class SpineGrid:
    """The spine step law pushed onto the grid h {0, 1, ..., K}: ``floor[j]`` = P(floor(step / h) = j) and
    ``ceil[j]`` = P(ceil(step / h) = j). Mass beyond K h is dropped (it cannot reach levels <= K h).
    ``exact``: every step already lies on the grid (floor == ceil)."""

    h: float
    floor: np.ndarray
    ceil: np.ndarray
    exact: bool


def _grid_step(law: Law, xmax: float, points: int) -> tuple[float, bool]:
    """The lattice span where the spine step is lattice (exact numerics), else xmax / points."""
    span = law.lattice_span
    if 0 < span < math.inf and xmax / span <= MAX_LATTICE_POINTS and _on_lattice(law, span):
        return span, True
    return max(xmax, 1e-12) / points, False


def _on_lattice(law: Law, h: float) -> bool:
    """Every spine atom is a multiple of h to round-off (1e-9 of the step)."""
    atoms = law.spine_atoms()
    if atoms is None:
        return False
    steps = np.asarray(atoms[0], dtype=np.float64)
    return bool(np.all(np.abs(steps - h * np.rint(steps / h)) <= 1e-9 * np.maximum(steps, h)))


def spine_grid(law, h: float, K: int, *, on_lattice: bool = False) -> SpineGrid:
    """Floor and ceil discretisations of the spine step of ``law`` on the grid h {0..K}.

    Discrete laws (``spine_atoms()`` not None) use their exact atoms; others their ``spine_cdf``. With
    ``on_lattice`` the atoms must be multiples of h (to 1e-6 of h) and are placed exactly.
    """
    law = parse_law(law)
    h = _step(h)
    if isinstance(K, (bool, np.bool_)) or not isinstance(K, (int, np.integer)) or K < 1:
        raise BrwError(f"grid size K must be a whole number >= 1, got {clip(repr(K), 40)}")
    require("K", int(K), lambda n: GRID_BYTES * n, what=f"a spine grid of {law}")
    atoms = law.spine_atoms()
    if atoms is not None:
        steps, w = np.asarray(atoms[0], dtype=np.float64), np.asarray(atoms[1], dtype=np.float64)
        w = w / w.sum()
        if on_lattice:
            if not _on_lattice(law, h):
                raise BrwError(f"spine steps of {law} are not multiples of h={h!r}")
            idx = np.rint(steps / h)
            f = _bin(idx, w, K)
            return SpineGrid(h, f, f, True)
        # Round-off must never move a step the wrong way: floor from just below, ceil from just above.
        q = steps / h
        lo = np.floor(q * (1 - 4e-16) - 4e-16)
        hi = np.ceil(q * (1 + 4e-16) + 4e-16)
        return SpineGrid(h, _bin(np.maximum(lo, 0), w, K), _bin(hi, w, K), False)
    x = h * np.arange(-1, K + 2, dtype=np.float64)
    below = np.asarray(law.spine_cdf(x, strict=True), dtype=np.float64)  # P(step < x)
    upto = np.asarray(law.spine_cdf(x, strict=False), dtype=np.float64)  # P(step <= x)
    below, upto = np.maximum.accumulate(below), np.maximum.accumulate(upto)
    floor = np.diff(below[1:])  # P(j h <= step < (j + 1) h), j = 0..K
    ceil = np.diff(upto[:-1])  # P((j - 1) h < step <= j h), j = 0..K
    return SpineGrid(h, np.maximum(floor, 0.0), np.maximum(ceil, 0.0), False)


def _bin(idx: np.ndarray, w: np.ndarray, K: int) -> np.ndarray:
    keep = idx <= K
    return np.bincount(idx[keep].astype(np.int64), weights=w[keep], minlength=K + 1)[: K + 1]


# --------------------------------------------------------------------------------------------------------
# Lattice renewal: u = 1 / (1 - f(z)) by Newton's iteration on power series.


def _product(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """First n coefficients of the product of two power series (FFT, or direct when short)."""
    if min(a.size, b.size) <= 64:
        return np.convolve(a, b)[:n]
    size = sfft.next_fast_len(a.size + b.size - 1, real=True)
    return sfft.irfft(sfft.rfft(a, size) * sfft.rfft(b, size), size)[:n]


def _series_inverse(a: np.ndarray) -> np.ndarray:
    """g with a g = 1 mod z^len(a); a[0] != 0. Newton: a g = 1 + z^m t  =>  g <- g - z^m (g t)."""
    n = a.size
    g = np.array([1.0 / a[0]])
    m = 1
    while m < n:
        m2 = min(2 * m, n)
        t = _product(a[:m2], g, m2)[m:m2]
        g = np.concatenate([g, -_product(g, t, m2 - m)])
        m = m2
    return g


def renewal_sequence(f: np.ndarray) -> np.ndarray:
    """u_k, k = 0..K, of the lattice renewal with step law f: sum_k u_k z^k = 1 / (1 - f(z))."""
    f = np.asarray(f, dtype=np.float64)
    if not f[0] < 1.0:
        raise BrwError("the spine step is 0 with probability 1 on this grid; refine the grid")
    a = -f.copy()
    a[0] += 1.0
    return _series_inverse(a)


@dataclass(frozen=True)
class Renewal:
    """U and m on the grid x_k = k h, k = 0..K, bracketed: U_lo <= U <= U_hi, m_lo <= m <= m_hi (root included
    in both: U(0) >= 1, m(0) >= 1). ``exact`` when the grid is the lattice of the spine step."""

    law: str
    h: float
    U_lo: np.ndarray
    U_hi: np.ndarray
    m_lo: np.ndarray
    m_hi: np.ndarray
    exact: bool

    @property
    def x(self) -> np.ndarray:
        return self.h * np.arange(self.U_lo.size)

    @property
    def xmax(self) -> float:
        return self.h * (self.U_lo.size - 1)

    def _index(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if np.any(~np.isfinite(x)) or np.any(x < 0) or np.any(x > self.xmax * (1 + 1e-12)):
            raise BrwError(f"levels x must lie in [0, {self.xmax:g}] for this renewal grid")
        # The lattice walks live on the grid, so U(x) = U(floor(x / h) h) for them; a tiny tolerance keeps
        # grid points computed with round-off on their own index.
        return np.minimum(np.floor(x / self.h + 1e-9).astype(np.int64), self.U_lo.size - 1)

    def U(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of U(x) = sum_n P(S_n <= x)."""
        k = self._index(x)
        return self.U_lo[k], self.U_hi[k]

    def m(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of m(x) = E #{v : V(v) <= x}, at grid points x (use ``x`` for the grid)."""
        k = self._index(x)
        return self.m_lo[k], self.m_hi[k]

    def U_width(self, x) -> float:
        lo, hi = self.U(x)
        return float(np.max(hi - lo))


def _m_bracket(h: float, U_lo: np.ndarray, U_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summation by parts: m(x) = e^x U(x) - integral_0^x e^y U(y) dy. U is bracketed by step functions that
    are constant on [k h, (k + 1) h), so the integral is bracketed cell by cell."""
    x = h * np.arange(U_lo.size)
    cell = np.exp(x) * math.expm1(h)  # integral of e^y over [x_k, x_k + h)
    int_lo = np.concatenate([[0.0], np.cumsum(U_lo[:-1] * cell[:-1])])
    int_hi = np.concatenate([[0.0], np.cumsum(U_hi[:-1] * cell[:-1])])
    ex = np.exp(x)
    return ex * U_lo - int_hi, ex * U_hi - int_lo


def renewal(law, xmax: float, *, points: int = DEFAULT_POINTS, h: float | None = None) -> Renewal:
    """U(x) and m(x) for 0 <= x <= xmax, bracketed by floor and ceil discretisation of the spine step.

    The grid is the spine step's lattice where it has one (exact), else ``points`` cells (or step ``h``).
    The bracket width of U at x is about x^2 / (points mu^2) for a non-lattice law.
    """
    law = _law(law)
    xmax = _level(xmax, "xmax")
    if xmax > 700:
        raise BrwError(f"xmax={xmax:g} is too large: e^x overflows beyond 700 nats")
    if h is None:
        h, on_lattice = _grid_step(law, xmax, _grid_points(points, law))
    else:
        h = _step(h)
        have = available_memory()
        if xmax / h * GRID_BYTES > USABLE * have:
            raise BrwError(f"grid step h={h:g} makes {xmax / h:.3g} grid points up to xmax={xmax:g}, which need "
                           f"about {format_bytes(xmax / h * GRID_BYTES)} of memory but {format_bytes(have)} is "
                           f"available; at least h={xmax * GRID_BYTES / (USABLE * have):.3g} fits")
        on_lattice = _on_lattice(law, h)
    K = max(int(math.ceil(xmax / h - 1e-9)), 1)  # the grid covers xmax
    grid = spine_grid(law, h, K, on_lattice=on_lattice)
    U_hi = np.cumsum(renewal_sequence(grid.floor))
    U_lo = U_hi if grid.exact else np.cumsum(renewal_sequence(grid.ceil))
    U_lo = np.minimum(U_lo, U_hi)  # round-off only
    m_lo, m_hi = _m_bracket(h, U_lo, U_hi)
    return Renewal(str(law), h, U_lo, U_hi, np.maximum(m_lo, 1.0), m_hi, grid.exact)


def renewal_estimate(law, x: float, *, points: int = DEFAULT_POINTS) -> tuple[float, float, float, float]:
    """A sharper (not rigorous) U(x): Richardson extrapolation of the bracket's midpoint, whose error is first
    order in h for a spine step with a smooth density. Grids of points/16, points/4 and points give two
    extrapolations; their difference is the error estimate. Returns (estimate, error estimate, lower, upper),
    the last two the rigorous bracket of the finest grid. For discrete or singular spine laws the estimate
    is not better than the bracket (the error estimate then says so)."""
    law = _law(law)
    x = _level(x)
    points = _grid_points(points, law)
    mids = []
    for n in (max(points // 16, 1), max(points // 4, 1), points):
        lo, hi = renewal(law, max(x, 1e-9), points=n).U(x)
        mids.append((float(lo) + float(hi)) / 2)
    ex1 = mids[1] + (mids[1] - mids[0]) / 3
    ex2 = mids[2] + (mids[2] - mids[1]) / 3
    est = min(max(ex2, float(lo)), float(hi))
    return est, abs(ex2 - ex1), float(lo), float(hi)


# --------------------------------------------------------------------------------------------------------
# Bounds and asymptotics of accepted = E[X] at P draft nodes (theory.md sections 4 and 6).


def paper_bound(law, P) -> np.ndarray:
    """(mu + mu2) log(P) / mu^2: the paper's bound on E[X], without its O(1) (zero at P = 1)."""
    law = _law(law)
    return (law.mu + law.mu2) * np.log(_counts(P)) / law.mu**2


def wald_lorden_bound(law, P) -> np.ndarray:
    """log(P) / mu + mu2 / mu^2 >= U(log P) >= E[X], for every P >= 1 (theory.md section 6)."""
    law = _law(law)
    return np.log(_counts(P)) / law.mu + law.mu2 / law.mu**2


def smooth_asymptotic(law, P) -> np.ndarray:
    """log(mu (P + 1)) / mu + mu2 / (2 mu^2) - 1: the sharp asymptotic of a non-lattice spine step."""
    law = _law(law)
    return np.log(law.mu * (_counts(P) + 1)) / law.mu + law.mu2 / (2 * law.mu**2) - 1.0


def lattice_asymptotic(law, P, span: float | None = None) -> np.ndarray:
    """The sharp asymptotic of a spine step on the lattice h Z (h = ``span``, default the law's).

    With span h the renewal theorem holds at lattice points only: U(k h) ~ k h / mu + mu2 / (2 mu^2) + h / (2 mu)
    and m(k h) ~ c e^{k h}, c = (h / mu) / (1 - e^-h). Both are step functions, so identity 6 is minimised by
    filling every full level up to k h (k the last with m(k h) <= P + 1) and spending the P + 1 - m(k h) nodes
    left at level (k + 1) h, each worth e^-(k+1)h. This is log-periodic in P. Writing P + 1 = c e^{k h} t with
    t in [1, e^h), it exceeds the smooth formula by
        [h / 2 - log(h / (1 - e^-h)) + h (t - 1) / (e^h - 1) - log t] / mu,
    whose last two terms (chord minus log) lie in [0, ~h^2 / 8]: the whole correction vanishes like h^2 for a
    fine lattice. It is *not* the constant h / (2 mu) of the renewal theorem at lattice points (measured against
    identity 7 in tests/test_theory.py: that constant is 0.4 to 0.7 too high for uniform:k=8).
    """
    law = _law(law)
    h = law.lattice_span if span is None else _step(span)
    if not (0 < h < math.inf):
        raise BrwError(f"law {law} has no lattice spine step; use smooth_asymptotic")
    n = _counts(P) + 1
    mu, mu2 = law.mu, law.mu2
    c = (h / mu) / -math.expm1(-h)
    k = np.floor(np.log(n / c) / h + 1e-12)
    U = k * h / mu + mu2 / (2 * mu**2) + h / (2 * mu)
    return U + np.exp(-(k + 1) * h) * n - c * math.exp(-h) - 1.0


def asymptotic(law, P) -> np.ndarray:
    """theory.md section 4's sharp asymptotic of E[X]: the lattice form where the spine step is lattice.

    Parameters
    ----------
    law : Law or str
        The step law (or its spec).
    P : int or sequence of int
        Draft nodes, each >= 1.

    Returns
    -------
    numpy.ndarray
        The sharp formula at each P (``smooth_asymptotic``, or ``lattice_asymptotic`` for a lattice spine).
    """
    law = _law(law)
    if 0 < law.lattice_span < math.inf:
        return lattice_asymptotic(law, P)
    return smooth_asymptotic(law, P)


#: The renewal grid must reach past log(mu (P + 1)) and stay below e^x's overflow: P <= e^MAX_LOG_MU_P / mu.
MAX_LOG_MU_P = 680.0
#: A law whose resolved grid cannot reach this far (nats) is refused without computing.
MIN_GRID_TOP = 1e-3


def _grid_top(mu: float, span: float, pmax: float) -> float:
    """Where the renewal grid for P up to pmax starts: past the level where m(x) = P + 1."""
    return max(math.log(mu * (pmax + 1)) + 2.0 + 2.0 * (span if span < math.inf else 0), 4 * mu, 1.0)


def _points_needed(law: Law, xmax: float) -> float:
    """Grid points that resolve the law up to xmax: the bracket of m(x) is sound while x h / mu < 1/2 (a wider
    one puts its lower end below the root, and the numerics never reach m = P + 1); a lattice law is exact on
    its lattice."""
    span = law.lattice_span
    if 0 < span < math.inf and xmax / span <= MAX_LATTICE_POINTS:
        return 0.0
    return 2.0 * xmax**2 / law.mu


def _largest_resolved_x(law: Law, points: int) -> float:
    """The largest grid top that ``points`` grid points resolve (infinite for a lattice law on its lattice)."""
    span = law.lattice_span
    lattice = MAX_LATTICE_POINTS * span if 0 < span < math.inf else 0.0
    return min(max(lattice, math.sqrt(points * law.mu / 2.0)), 700.0)


def _refuse_unresolved(law: Law, pmax: float, points: int, xmax: float, at_fit: Renewal | None = None) -> None:
    """Refuse a P or a law the renewal numerics cannot take on ``points`` grid points, naming P when smaller P
    fit (the largest that does, from m(x) at the largest grid that resolves the law, ``at_fit`` when the caller
    has it) and the law's own parameter when none does (the law is too near certainty: mu tiny)."""
    need = _points_needed(law, xmax)
    xfit = _largest_resolved_x(law, points)
    if xfit >= MIN_GRID_TOP and at_fit is None:
        at_fit = renewal(law, xfit, points=points)
    # P is taken when m_lo > P + 1: the largest such whole P is ceil(m_lo) - 2.
    pfit = math.ceil(float(at_fit.m_lo[-1])) - 2.0 if xfit >= MIN_GRID_TOP else 0.0
    if pfit >= 1:
        raise BrwError(f"P={pmax:.6g} needs a renewal grid of at least {need:.3g} points for {law} "
                       f"(points={points}): at most P={pfit:.6g} fits")
    if points < DEFAULT_POINTS:  # too few points for a law that the default resolves: blame the points
        xdef = _largest_resolved_x(law, DEFAULT_POINTS)
        pdef = 0.0
        if MIN_GRID_TOP <= xdef < math.inf:
            pdef = math.ceil(float(renewal(law, xdef, points=DEFAULT_POINTS).m_lo[-1])) - 2.0
        if pdef >= 1:
            raise BrwError(f"P={pmax:.6g} needs a renewal grid of at least {need:.3g} points for {law}, and "
                           f"points={points} resolves no P; raise points (points={DEFAULT_POINTS} resolves "
                           f"P up to {pdef:.6g})")
    raise BrwError(f"law {law} has mu = {law.mu:.3g} nats: nearly every token is certain, and its renewal "
                   f"numerics would need {need:.3g} grid points (points={points}); "
                   f"{_resolvable_hint(law, pmax, points)}")


#: The parameter that moves a parametric law away from certainty, and the way it moves it (+1: larger).
_SPREAD = {"gem": ("theta", 1), "dirichlet": ("alpha", 1), "zipf": ("s", -1)}


def _resolvable_hint(law: Law, pmax: float, points: int) -> str:
    """'at least theta=...' for a parametric law, else the least mu that the grid resolves."""
    def fits(candidate) -> bool:
        m = candidate.mu
        return m > 0 and _points_needed(candidate, _grid_top(m, candidate.lattice_span, pmax)) <= points

    name = getattr(law, "name", "")
    if name in _SPREAD:
        import dataclasses

        key, sign = _SPREAD[name]
        lo, hi = math.log(getattr(law, key)), math.log(1e6)  # log of the parameter: lo fails
        if sign < 0:
            lo, hi = -lo, -math.log(1e-6) if getattr(law, key) > 1e-6 else -lo
        if fits(dataclasses.replace(law, **{key: math.exp(sign * hi)})):
            for _ in range(80):
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if fits(dataclasses.replace(law, **{key: math.exp(sign * mid)})) else (mid, hi)
            return f"at {'least' if sign > 0 else 'most'} about {key}={math.exp(sign * hi):.3g} fits"
    lo, hi = math.log(law.mu) if law.mu > 0 else -700.0, 0.0  # log mu: the least mu that fits, any law
    for _ in range(80):
        mid = (lo + hi) / 2
        need = 2.0 * _grid_top(math.exp(mid), 0.0, pmax) ** 2 / math.exp(mid)
        lo, hi = (lo, mid) if need <= points else (mid, hi)
    return f"use a law with mu >= {math.exp(hi):.3g}"


def _renewal_for(law: Law, P: np.ndarray, points: int) -> Renewal:
    """A grid reaching past the level where m(x) = P + 1 for the largest P. P too large for e^x, or for a
    grid of ``points`` that resolves the law, is refused naming P (or the law, when no P fits)."""
    pmax = float(P.max())
    if math.log(law.mu) + math.log(pmax + 1) > MAX_LOG_MU_P:
        raise BrwError(f"P={pmax:.3g} is too large for the renewal numerics of {law} (e^x overflows past 700 "
                       f"nats): at most P={math.exp(MAX_LOG_MU_P) / law.mu:.3g} fits")
    xmax = _grid_top(law.mu, law.lattice_span, pmax)
    xfit = _largest_resolved_x(law, points)
    if xfit < MIN_GRID_TOP:
        _refuse_unresolved(law, pmax, points, xmax)
    xmax = min(xmax, xfit)  # a law near certainty may reach m = P + 1 below the usual top: try the grid it fits
    while True:
        r = renewal(law, xmax, points=points)
        if r.m_lo[-1] > pmax + 1:
            return r
        if xmax >= xfit:  # r is the renewal at xfit
            _refuse_unresolved(law, pmax, points, xmax + 4.0, r)
        xmax = min(xmax + 4.0, xfit)


def renewal_bound_bracket(law, P, *, points: int = DEFAULT_POINTS, ren: Renewal | None = None):
    """(lower, upper) of identity 6's bound min_x U(x) + e^-x (P + 1 - m(x)), minus the root, for each P.

    Summation by parts turns the bound into R(x) = e^-x (P + 1 + integral_0^x e^y U(y) dy), which is monotone
    in U: the floor and ceil renewal functions give R_hi >= R >= R_lo at every x. Both are step functions of U
    that are constant on grid cells, so on a cell R_lo and R_hi are a constant plus a multiple of e^-x, and
    their minima over all x are attained at grid points. ``upper`` is itself a valid upper bound of E[X].
    """
    law = _law(law)
    P = _counts(P)
    r = _renewal_for(law, P, points) if ren is None else ren
    x = r.x
    cell = np.exp(x[:-1]) * math.expm1(r.h)  # integral of e^y over [x_k, x_k + h)
    ex = np.exp(-x)
    ex_int_lo = ex * np.concatenate([[0.0], np.cumsum(r.U_lo[:-1] * cell)])
    ex_int_hi = ex * np.concatenate([[0.0], np.cumsum(r.U_hi[:-1] * cell)])
    lo = np.array([np.min(ex * (p + 1) + ex_int_lo) for p in P])
    hi = np.array([np.min(ex * (p + 1) + ex_int_hi) for p in P])
    return lo - 1.0, hi - 1.0


def renewal_bound(law, P, *, points: int = DEFAULT_POINTS) -> np.ndarray:
    """Identity 6 minimised over x, as E[X] (root removed): the rigorous upper end of its bracket."""
    return renewal_bound_bracket(law, P, points=points)[1]


# --------------------------------------------------------------------------------------------------------
# Biggins: the speed of the leftmost particle, and the depth of the P-node tree.


#: Brent's absolute tolerance on log(theta) in ``biggins_speed``: theta* is known to a few times this (relative),
#: gamma to its square.
BIGGINS_XATOL = 1e-8


def biggins_speed(law) -> tuple[float, float]:
    """(gamma, theta*) with gamma = -inf_{theta > 0} psi(theta) / theta: the most probable depth-n path sits
    at position ~ gamma n. theta* = inf when the infimum is approached only as theta -> inf (vector laws:
    then gamma = -log p_1)."""
    law = _law(law)
    t = np.linspace(math.log(1e-3), math.log(1e4), 121)
    with np.errstate(all="ignore"):  # one theta at a time: psi of an empirical law is a big array per theta
        vals = np.array([float(law.psi(math.exp(s))) for s in t]) / np.exp(t)
    vals = np.where(np.isfinite(vals), vals, np.inf)
    i = int(np.argmin(vals))
    # psi(theta)/theta still falling (to round-off) at the largest theta: the infimum is the limit theta -> inf.
    if i == t.size - 1 or vals[-1] <= vals[i] + 1e-12 * abs(vals[i]):
        atoms = law.spine_atoms()
        if atoms is not None:  # psi(theta)/theta -> log max p as theta -> inf
            return float(np.min(atoms[0][atoms[1] > 0])), math.inf
        return float(-vals[-1]), math.inf
    a, b = t[max(i - 1, 0)], t[min(i + 1, t.size - 1)]
    res = optimize.minimize_scalar(lambda s: float(law.psi(math.exp(s))) / math.exp(s), bounds=(a, b),
                                   method="bounded", options={"xatol": BIGGINS_XATOL})
    return float(-res.fun), float(math.exp(res.x))


def predicted_depth(law, P, speed: tuple[float, float] | None = None) -> np.ndarray:
    """Depth of the deepest node of the P-node tree: solve gamma n + (3 / (2 theta*)) log n = log(mu (P + 1)),
    the P-th position being log(mu (P + 1)). ``speed``: (gamma, theta*) if already known."""
    law = _law(law)
    gamma, theta = biggins_speed(law) if speed is None else speed
    x = np.log(law.mu * (_counts(P) + 1))
    if not math.isfinite(theta):
        return x / gamma
    out = np.empty_like(x)
    for i, xi in enumerate(x):
        f = lambda n: gamma * n + 1.5 / theta * math.log(n) - xi  # noqa: E731
        hi = max(2.0, 2 * xi / gamma + 2)
        out[i] = optimize.brentq(f, 1e-9, hi) if f(1e-9) < 0 < f(hi) else xi / gamma
    return out


# --------------------------------------------------------------------------------------------------------
# Identity 4: the law of the accepted count of the threshold tree {V <= x}.


#: Most convolutions accepted_count_law runs (a refusal beyond).
MAX_CONVOLUTIONS = 100000


def _tolerance(tol) -> float:
    """A probability tolerance: a number with 0 < tol < 1."""
    ok = not isinstance(tol, (bool, np.bool_)) and isinstance(tol, (int, float, np.integer, np.floating))
    if not (ok and 0.0 < float(tol) < 1.0):
        raise BrwError(f"tol must be a number between 0 and 1 (exclusive), got {clip(repr(tol), 40)}")
    return float(tol)


def accepted_count_law(law, x: float, *, points: int = 4096, tol: float = 1e-12):
    """P(X >= n) = P(S_n <= x) for n = 1, 2, ... until it falls below ``tol``: (n, lower, upper) arrays.

    The accepted count of the threshold tree {V <= x} has exactly this law (identity 4); its mean is U(x) - 1.
    ``tol`` is a probability, 0 < tol < 1; ``points`` sizes the grid as for :func:`renewal`.
    """
    law = _law(law)
    x = _level(x)
    points = _grid_points(points, law)
    tol = _tolerance(tol)
    # About (x + a few spreads) / mu convolutions until P(S_n <= x) is negligible; at most MAX_CONVOLUTIONS run.
    steps = (x + 10.0 * math.sqrt(max(x, 1.0) * law.mu2 / law.mu)) / law.mu
    if steps > MAX_CONVOLUTIONS:
        raise BrwError(f"the accepted-count law of {law} at x={x:g} needs about {steps:.3g} convolutions, more than "
                       f"the {MAX_CONVOLUTIONS} allowed; at most about x={law.mu * MAX_CONVOLUTIONS / 2:.3g} fits")
    h, on_lattice = _grid_step(law, max(x, 1e-9), points)
    K = int(math.floor(x / h + 1e-9))
    grid = spine_grid(law, h, max(K, 1), on_lattice=on_lattice)
    lo, hi = [], []
    dist_hi = np.zeros(K + 1)
    dist_hi[0] = 1.0
    dist_lo = dist_hi.copy()
    f_hi, f_lo = grid.floor[: K + 1], grid.ceil[: K + 1]
    # The upper bracket keeps at least f0^n at level 0 after n steps (f0: the floor grid's mass at 0, the steps
    # shorter than h), so it cannot fall below tol in time when f0^MAX_CONVOLUTIONS >= tol: refuse now.
    f0 = float(f_hi[0])
    if f0 > 0.0 and MAX_CONVOLUTIONS * math.log(f0) >= math.log(tol):
        raise BrwError(f"the grid of accepted_count_law({law}, x={x:g}) is too coarse: {f0:.6g} of the spine step "
                       f"lies below its cell h={h:.3g}, so P(S_n <= x) cannot fall below tol={tol:g} within "
                       f"{MAX_CONVOLUTIONS} convolutions; raise points (now {points}) or lower x")
    for _ in range(MAX_CONVOLUTIONS):
        dist_hi = np.maximum(_product(dist_hi, f_hi, K + 1), 0.0)
        dist_lo = dist_hi if grid.exact else np.maximum(_product(dist_lo, f_lo, K + 1), 0.0)
        hi.append(min(float(dist_hi.sum()), 1.0))
        lo.append(min(float(dist_lo.sum()), hi[-1]))
        if hi[-1] < tol:
            break
    else:  # the check above refuses the grids whose upper bracket cannot fall at all; this one fell too slowly
        raise BrwError(f"P(S_n <= {x:g}) did not fall below {tol:g}; the spine step is too often tiny")
    return np.arange(1, len(hi) + 1), np.array(lo), np.array(hi)


# --------------------------------------------------------------------------------------------------------
# Laws whose trees are mixtures over recorded contexts.


def context_mixture(law, P, *, prediction: str = "renewal", points: int = DEFAULT_POINTS) -> np.ndarray:
    """accepted(P) of a ``ctx:`` law as the mixture over its recorded contexts of each context's prediction.

    A tree of ``ctx:trace=NAME`` lives in context c with probability w_c (c's share of the rows) and is then a
    tree of the i.i.d. law of c's rows (``ctx:trace=NAME,context=c``), so E[X] = sum_c w_c E[X | c] exactly;
    each E[X | c] is predicted without simulation.

    Parameters
    ----------
    law : Law or str
        A ``ctx:`` law (or its spec). Restricted to one context (``context=C``) it is that context's
        prediction alone.
    P : int or sequence of int
        Draft nodes, each >= 1.
    prediction : {"renewal", "asymptotic"}, optional
        Each context's prediction: ``renewal`` (default) identity 6 minimised on the renewal numerics
        (``renewal_bound``), valid at every P and every entropy; ``asymptotic`` the sharp formula, which
        overshoots at small P for contexts of low entropy.
    points : int, optional
        Grid points of each context's renewal numerics.

    Returns
    -------
    numpy.ndarray
        sum_c w_c prediction_c(P) at each P.
    """
    from brw.laws.context import ContextTrace

    law = parse_law(law)
    if not isinstance(law, ContextTrace):
        raise BrwError(f"context_mixture needs a ctx: law (a tree per recorded context), got {clip(str(law), 80)}")
    if prediction not in ("renewal", "asymptotic"):
        raise BrwError(f"prediction must be 'renewal' or 'asymptotic', got {clip(repr(prediction), 40)}")
    Pa = _counts(P)
    out = np.zeros(Pa.shape)
    for w, one in zip(law.weights, law.context_laws()):
        out += w * (renewal_bound(one, Pa, points=points) if prediction == "renewal" else asymptotic(one, Pa))
    return out


# --------------------------------------------------------------------------------------------------------
# All of it for a law and P values: `brw theory`, `brw frontier --bounds`, compare and the theory check.

#: The bounds every command reports under these names (conventions: ``brw theory`` and ``frontier --bounds``).
BOUND_KEYS = ("paper_bound", "wald_lorden_bound", "renewal_bound", "asymptotic")


@dataclass(frozen=True)
class Bounds(Result):
    """Every bound and prediction of accepted = E[X] at draft-node counts ``P`` for one law (``bounds``).

    The four keys of ``BOUND_KEYS`` are the conventions' names; ``renewal_bound`` is the upper end of identity
    6's bracket ``[renewal_bound_lower, renewal_bound]`` (width ``renewal_bound_width``). ``lattice_span`` is 0
    for a non-lattice spine step; ``biggins_theta`` is inf when Biggins' infimum is a limit. ``to_dict()`` is
    what ``brw theory --json`` prints; ``to_pandas()`` has one row per P. ``context_mixture`` is set for a
    ``ctx:`` law only (``context_mixture``: the mixture over its contexts of their renewal predictions, the
    prediction to use for such a law); None otherwise.
    """

    law: str
    mu: float
    mu2: float
    P: np.ndarray
    paper_bound: np.ndarray
    wald_lorden_bound: np.ndarray
    renewal_bound: np.ndarray
    asymptotic: np.ndarray
    renewal_bound_lower: np.ndarray
    renewal_bound_width: np.ndarray
    smooth_asymptotic: np.ndarray
    lattice_span: float
    biggins_gamma: float
    biggins_theta: float
    predicted_depth: np.ndarray
    context_mixture: np.ndarray | None = None

    def to_dict(self) -> dict:
        """Every field by name, arrays as lists (what ``brw theory --json`` prints); ``context_mixture`` only
        for a ``ctx:`` law.

        Returns
        -------
        dict
        """
        out = super().to_dict()
        if self.context_mixture is None:
            del out["context_mixture"]
        return out

    def _tidy(self) -> dict:
        """Columns: every field, one row per P (the law's numbers repeated; ``context_mixture`` only for a
        ``ctx:`` law)."""
        n = self.P.size
        return {f.name: getattr(self, f.name) if isinstance(getattr(self, f.name), np.ndarray)
                else [getattr(self, f.name)] * n for f in fields(self)
                if not (f.name == "context_mixture" and self.context_mixture is None)}


def bounds(law, P, *, points: int = DEFAULT_POINTS, T: float = 1.0) -> Bounds:
    """All bounds and predictions of accepted(P) for ``law`` at each of ``P``, without simulation.

    Parameters
    ----------
    law : Law or str
        The step law (or its spec, which may carry ``T=``); mu must be finite and > 0, mu2 finite.
    P : int or sequence of int
        Draft nodes, each >= 1. The renewal bound costs one pass over its grid per P: ask for the P you need.
    points : int, optional
        Grid points of the renewal numerics for a non-lattice spine step (``renewal``).
    T : float, optional
        Temper the law by T first (``law.tempered(T)``, theory.md section 7b): mu(T), mu2(T), the bounds, the
        sharp asymptotic and the renewal numerics of the tempered law. Tempered random laws (dirichlet, gem,
        gemmix) carry Monte Carlo moments (their ``moment_stderr``); table laws are exact.

    Returns
    -------
    Bounds
        The paper's, Wald-Lorden and renewal bounds, the sharp asymptotic and its smooth form, the renewal
        bound's bracket, the lattice span, Biggins' (gamma, theta*) and the depth of the P-node tree; for a
        ``ctx:`` law also ``context_mixture`` (one renewal computation per recorded context).
    """
    law = _law(parse_law(law).tempered(T))
    Pa = _counts(P)
    lo, hi = renewal_bound_bracket(law, Pa, points=points)
    gamma, theta = biggins_speed(law)
    span = law.lattice_span
    exact = _count_list(P)  # P as given, exactly (int64 where it fits, Python ints beyond)
    return Bounds(
        law=str(law), mu=law.mu, mu2=law.mu2, P=np.array(exact, dtype=np.int64 if max(exact) < 2**63 else object),
        paper_bound=paper_bound(law, Pa), wald_lorden_bound=wald_lorden_bound(law, Pa), renewal_bound=hi,
        asymptotic=asymptotic(law, Pa), renewal_bound_lower=lo, renewal_bound_width=hi - lo,
        smooth_asymptotic=smooth_asymptotic(law, Pa), lattice_span=span if 0 < span < math.inf else 0.0,
        biggins_gamma=gamma, biggins_theta=theta, predicted_depth=predicted_depth(law, Pa, (gamma, theta)),
        context_mixture=context_mixture(law, Pa, points=points) if _mixes_contexts(law) else None,
    )


def _mixes_contexts(law: Law) -> bool:
    """A ``ctx:`` law over several contexts (without importing the trace laws for any other law)."""
    return law.name == "ctx" and getattr(law, "context", None) is None
