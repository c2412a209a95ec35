"""The parametric step laws: ``uniform``, ``fixed``, ``zipf``, ``dirichlet`` and ``gem`` (conventions.md, "Law
specs"; theory.md section 3 for their exact quantities).

At temperature T (``T=``, :meth:`brw.laws.base.Law.tempered`): a law with one vector at every node tempers it
exactly (``uniform`` is unchanged, ``zipf`` becomes zipf with s / T, ``fixed`` the tempered vector); ``dirichlet``
and ``gem`` temper each node's vector in the kernels as it is drawn, and their mu, mu2, psi and spine step become
Monte Carlo estimates from a fixed sample of tempered vectors (:mod:`brw.laws.rows`, ``moment_stderr``). ``gem``
refuses T > 1 (its infinite vocabulary's tempered mass beyond the broken sticks has no bound there).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import special

from brw.errors import BrwError, clip
from brw.kernel_law import KIND_DIRICHLET, KIND_GEM, KIND_TABLE, KernelLaw
from brw.limits import require
from brw.spec import fmt, parse_fields, parse_float, parse_int
from brw.laws.base import Law, register_law
from brw.laws.rows import STICKS_ABOVE_ONE, SampledRows, sampled_dirichlet, sampled_sticks

__all__ = ["Uniform", "Fixed", "Zipf", "Dirichlet", "GEM"]


def _whole(value, law: str, key: str, minimum: int) -> int:
    """A constructor's whole-number parameter (an int, not a bool or a float), >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise BrwError(f"{law} law needs a whole number {key} >= {minimum}, got {key}={clip(repr(value), 40)}")
    return int(value)


def _real(value, law: str, key: str, *, positive: bool = False) -> float:
    """A constructor's real parameter (an int or a float, not a bool), finite, >= 0 (> 0 when ``positive``)."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    x = float(value) if ok else math.nan
    if not (math.isfinite(x) and (x > 0 if positive else x >= 0)):
        raise BrwError(f"{law} law needs a finite {key} {'>' if positive else '>='} 0, got "
                       f"{key}={clip(repr(value), 40)}")
    return x


def _check_vector(p: np.ndarray, what: str) -> np.ndarray:
    """A probability vector, sorted descending; raises BrwError on NaN, negatives or a bad sum."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise BrwError(f"{what}: needs a non-empty vector of probabilities")
    if not np.all(np.isfinite(p)):
        raise BrwError(f"{what}: entries must be finite numbers (found NaN or inf)")
    if np.any(p < 0):
        raise BrwError(f"{what}: entries must be >= 0 (found {p.min():g})")
    s = math.fsum(p)
    if abs(s - 1.0) > 1e-9:
        raise BrwError(f"{what}: entries sum to {s!r}, not 1 (within 1e-9); brw never renormalises input")
    return np.sort(p)[::-1].copy()


class _VectorLaw(Law):
    """A law whose vector is the same at every node: a deterministic tree."""

    deterministic = True

    @property
    def p(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def mu(self) -> float:
        p = self.p[self.p > 0]
        return float(-np.sum(p * np.log(p)))

    @property
    def mu2(self) -> float:
        p = self.p[self.p > 0]
        return float(np.sum(p * np.log(p) ** 2))

    def psi(self, theta):
        p = self.p[self.p > 0]
        theta = np.asarray(theta, dtype=np.float64)
        lp = np.log(p)
        return special.logsumexp(np.multiply.outer(theta, lp), axis=-1)

    def spine_atoms(self):
        p = self.p[self.p > 0]
        return -np.log(p), p.copy()

    def kernel_law(self) -> KernelLaw:
        p = self.p[self.p > 0]
        table = np.log(p)[None, :].copy()
        return KernelLaw(KIND_TABLE, table, np.zeros(4), table.shape[1])


@register_law
@dataclass(frozen=True)
class Uniform(_VectorLaw):
    """p = 1/k at every node: the lattice case, closed forms everywhere (theory.md identity 7)."""

    k: int
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "uniform"

    def __post_init__(self):
        self._check_temperature()  # p^(1/T) renormalised is p again: every quantity is T's as it is
        object.__setattr__(self, "k", _whole(self.k, "uniform", "k", 1))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("k",))
        return cls(parse_int(f["k"], "k", spec, minimum=1))

    @property
    def base_spec(self):
        return f"uniform:k={self.k}"

    @property
    def p(self):
        return np.full(self.k, 1.0 / self.k)

    @property
    def mu(self):
        return math.log(self.k)

    @property
    def mu2(self):
        return math.log(self.k) ** 2

    def psi(self, theta):
        return (1.0 - np.asarray(theta, dtype=np.float64)) * math.log(self.k)

    def spine_atoms(self):
        return np.array([math.log(self.k)]), np.array([1.0])

    def kernel_law(self):
        require("k", self.k, lambda k: 8.0 * k, what="the uniform law's vector")
        table = np.full((1, self.k), -math.log(self.k))
        return KernelLaw(KIND_TABLE, table, np.zeros(4), self.k)


@register_law
@dataclass(frozen=True, eq=False)
class Fixed(_VectorLaw):
    """The same vector at every node (theory.md identity 8). Entries are sorted; they must sum to 1."""

    probs: tuple[float, ...]
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "fixed"
    _p: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._check_temperature()
        try:
            p = np.asarray(self.probs, dtype=np.float64)
        except (TypeError, ValueError):
            raise BrwError(f"fixed law needs a vector of probabilities, got p={clip(repr(self.probs), 60)}") from None
        p = _check_vector(p, f"fixed law p={clip(repr(self.probs), 60)}")
        object.__setattr__(self, "probs", tuple(float(x) for x in p))
        if self.T != 1.0:  # p^(1/T) / sum p^(1/T), in logs; zeros stay zeros
            with np.errstate(divide="ignore", over="ignore"):
                lp = np.log(p) / self.T
                if not np.isfinite(lp.max()):  # a T so small that every log p / T overflows: from the largest
                    lp = (np.log(p) - np.log(p.max())) / self.T
            p = np.exp(lp - special.logsumexp(lp))
        object.__setattr__(self, "_p", p)

    def __eq__(self, other):
        return isinstance(other, Fixed) and (self.probs, self.T) == (other.probs, other.T)

    def __hash__(self):
        return hash((self.probs, self.T))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("p",))
        vals = [parse_float(v, "p", spec) for v in f["p"].split("/")]
        try:
            return cls(tuple(vals))
        except BrwError as e:
            raise BrwError(f"in law spec {spec!r}: {e}") from None

    @property
    def base_spec(self):
        return "fixed:p=" + "/".join(fmt(x) for x in self.probs)

    @property
    def p(self):
        return self._p


@register_law
@dataclass(frozen=True)
class Zipf(_VectorLaw):
    """p_i proportional to i^-s, i = 1..k: deterministic with a long tail."""

    s: float
    k: int
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "zipf"

    def __post_init__(self):
        self._check_temperature()  # zipf(s) at T is zipf(s / T)
        object.__setattr__(self, "s", _real(self.s, "zipf", "s"))
        object.__setattr__(self, "k", _whole(self.k, "zipf", "k", 1))
        # Every exact quantity computes the whole vector (a few arrays of k floats at once).
        require("k", self.k, lambda k: 40.0 * k, what=f"the zipf law's vector (s={fmt(self.s)})")

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("s", "k"))
        return cls(parse_float(f["s"], "s", spec, nonnegative=True), parse_int(f["k"], "k", spec, minimum=1))

    @property
    def base_spec(self):
        return f"zipf:s={fmt(self.s)},k={self.k}"

    @property
    def p(self):
        s = self.s if self.T == 1.0 else self.s / self.T
        with np.errstate(invalid="ignore"):
            lw = -s * np.log(np.arange(1, self.k + 1, dtype=np.float64))
        lw[0] = 0.0  # token 1 weighs 1^-s = 1, also where s / T overflows (inf * log 1 would be NaN)
        return np.exp(lw - special.logsumexp(lw))


@register_law
@dataclass(frozen=True)
class Dirichlet(Law):
    """Symmetric Dirichlet(alpha, ..., alpha) on k tokens, a fresh draw at every node (theory.md identity 9).

    At T != 1 every node's vector is tempered as the kernels draw it, and mu, mu2, psi and the spine step are
    Monte Carlo estimates from a fixed sample of tempered vectors (``moment_stderr``)."""

    alpha: float
    k: int
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "dirichlet"

    def __post_init__(self):
        self._check_temperature()
        object.__setattr__(self, "alpha", _real(self.alpha, "dirichlet", "alpha", positive=True))
        if self.alpha < sys.float_info.min:  # 1 / alpha would overflow: the sampler draws log(U) / alpha
            raise BrwError(f"dirichlet law needs alpha >= {sys.float_info.min:.6g} (the least normal float), got "
                           f"alpha={self.alpha!r}")
        object.__setattr__(self, "k", _whole(self.k, "dirichlet", "k", 1))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("alpha", "k"))
        return cls(parse_float(f["alpha"], "alpha", spec, positive=True), parse_int(f["k"], "k", spec, minimum=1))

    @property
    def base_spec(self):
        return f"dirichlet:alpha={fmt(self.alpha)},k={self.k}"

    @property
    def _b(self) -> float:
        return (self.k - 1) * self.alpha

    @property
    def _sampled(self) -> SampledRows:
        """The Monte Carlo sample of tempered vectors (T != 1 and k > 1 only)."""
        return sampled_dirichlet(self.alpha, self.k, self.T)

    @property
    def _exact(self) -> bool:
        return self.T == 1.0 or self.k == 1

    @property
    def moment_stderr(self) -> tuple[float, float]:
        """Standard errors of ``mu`` and ``mu2``: 0 where they are closed forms (T = 1), else the Monte Carlo
        sample's (:func:`brw.laws.rows.dirichlet_rows`)."""
        return (0.0, 0.0) if self._exact else self._sampled.stderr

    @property
    def mu(self):
        if self.k == 1:
            return 0.0
        if self.T != 1.0:
            return self._sampled.mu
        return float(special.digamma(self.k * self.alpha + 1) - special.digamma(self.alpha + 1))

    @property
    def mu2(self):
        if self.k == 1:
            return 0.0
        if self.T != 1.0:
            return self._sampled.mu2
        a, ka = self.alpha, self.k * self.alpha
        return float(self.mu**2 + special.polygamma(1, a + 1) - special.polygamma(1, ka + 1))

    def psi(self, theta):
        if not self._exact:
            return self._sampled.psi(theta)
        theta = np.asarray(theta, dtype=np.float64)
        a, ka = self.alpha, self.k * self.alpha
        # E[p_1^theta] for p_1 ~ Beta(a, (k-1)a), times k.
        return (math.log(self.k) + special.gammaln(a + theta) - special.gammaln(a)
                + special.gammaln(ka) - special.gammaln(ka + theta))

    def spine_atoms(self):
        return None if self._exact else self._sampled.spine_atoms()

    def spine_cdf(self, x, *, strict=False):
        if not self._exact:
            return super().spine_cdf(x, strict=strict)
        x = np.asarray(x, dtype=np.float64)
        if self.k == 1:
            return (x > 0).astype(float) if strict else (x >= 0).astype(float)
        # step = -log B, B ~ Beta(alpha + 1, b): P(step <= x) = P(B >= e^-x). Continuous: strict is moot.
        return np.where(x < 0, 0.0, special.betaincc(self.alpha + 1, self._b, np.exp(-np.maximum(x, 0))))

    def spine_sample(self, rng, n):
        if self.k == 1:
            return np.zeros(n)
        if self.T != 1.0:
            return super().spine_sample(rng, n)
        return -np.log(rng.beta(self.alpha + 1, self._b, size=n))

    @property
    def lattice_span(self):
        return math.inf if self.k == 1 else 0.0

    def kernel_law(self):
        inv_t = 0.0 if self.T == 1.0 else 1.0 / self.T  # params[2]: 1 / T (0: untempered, the old arithmetic)
        return KernelLaw(KIND_DIRICHLET, np.zeros((1, 1)), np.array([self.alpha, self.k, inv_t, 0.0]), self.k)


@register_law
@dataclass(frozen=True)
class GEM(Law):
    """GEM(theta) stick-breaking (ranked: Poisson-Dirichlet(theta)), an infinite vocabulary.

    Size-biased picks of GEM(theta) are Beta(1, theta), so the spine step is -log B with B ~ Beta(1, theta).
    The kernels break sticks until the unbroken mass cannot put a child inside the frontier (they are told
    the largest position that matters), so no child that could enter is ever lost. At T < 1 they break until
    the unbroken mass, tempered, cannot reach it; T > 1 is refused (that mass has no bound there).
    """

    theta: float
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "gem"

    def __post_init__(self):
        self._check_temperature(1.0, STICKS_ABOVE_ONE)
        object.__setattr__(self, "theta", _real(self.theta, "gem", "theta", positive=True))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("theta",))
        return cls(parse_float(f["theta"], "theta", spec, positive=True))

    @property
    def base_spec(self):
        return f"gem:theta={fmt(self.theta)}"

    @property
    def _sampled(self) -> SampledRows:
        """The Monte Carlo sample of tempered vectors (T < 1 only)."""
        return sampled_sticks((0.0,), (self.theta,), (1.0,), self.T)

    @property
    def moment_stderr(self) -> tuple[float, float]:
        """Standard errors of ``mu`` and ``mu2``: 0 at T = 1 (closed forms), else the Monte Carlo sample's."""
        return (0.0, 0.0) if self.T == 1.0 else self._sampled.stderr

    @property
    def mu(self):
        if self.T != 1.0:
            return self._sampled.mu
        return float(special.digamma(self.theta + 1) - special.digamma(1))

    @property
    def mu2(self):
        if self.T != 1.0:
            return self._sampled.mu2
        return float(self.mu**2 + special.polygamma(1, 1) - special.polygamma(1, self.theta + 1))

    def psi(self, theta):
        if self.T != 1.0:
            return self._sampled.psi(theta)
        t = np.asarray(theta, dtype=np.float64)
        # E[B^(t-1)] for B ~ Beta(1, theta) = theta Gamma(t) Gamma(theta) / Gamma(t + theta); finite for t > 0.
        th = self.theta
        return math.log(th) + special.gammaln(t) + special.gammaln(th) - special.gammaln(t + th)

    def spine_atoms(self):
        return None if self.T == 1.0 else self._sampled.spine_atoms()

    def spine_cdf(self, x, *, strict=False):
        if self.T != 1.0:
            return super().spine_cdf(x, strict=strict)
        x = np.asarray(x, dtype=np.float64)
        # P(-log B <= x) = P(B >= e^-x) = (1 - e^-x)^theta.
        return np.where(x < 0, 0.0, (-np.expm1(-np.maximum(x, 0))) ** self.theta)

    def spine_sample(self, rng, n):
        if self.T != 1.0:
            return super().spine_sample(rng, n)
        return -np.log(rng.beta(1.0, self.theta, size=n))

    @property
    def lattice_span(self):
        return 0.0

    def kernel_law(self):
        # Buffer: sticks needed until the unbroken mass is below e^-cut: about theta * cut; the kernel
        # receives the cut and the API sizes the buffer (see brw.frontier).
        tempered = [] if self.T == 1.0 else [1.0 / self.T]  # KIND_GEM's optional last parameter: 1 / T
        return KernelLaw(KIND_GEM, np.zeros((1, 1)), np.array([1.0, 0.0, self.theta, 1.0, *tempered]), 0)

