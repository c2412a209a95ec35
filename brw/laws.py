"""Step laws: the law D of a node's next-token probability vector (theory.md section 2).

A law is a small frozen object named by one spec string (conventions.md, "Law specs"):
``parse_law(spec)`` builds it and ``str(law)`` prints the same spec back. Every law knows, exactly,

- ``mu``  = E[H(p)], the expected entropy (nats),
- ``mu2`` = E[sum p_i (log p_i)^2], the expected second log-moment,
- ``psi(theta)`` = log E[sum_i p_i^theta],
- the spine step law (draw p ~ D, then J ~ p, step = -log p_J): ``spine_cdf``, ``spine_atoms`` (discrete
  laws) and ``spine_sample``,

and what the kernels need to draw a node's vector (``kernel_law``, see ``brw.kernel_law``). A law pickles as its
spec string. Laws defined in other modules (``trace``, ``gemmix``, ``markov``) register themselves there; their
modules are imported on the first use of their name.
"""

from __future__ import annotations

import math
import importlib
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import special

from brw.errors import BrwError, clip
from brw.kernel_law import KIND_DIRICHLET, KIND_GEM, KIND_TABLE, KernelLaw
from brw.limits import require

__all__ = [
    "Law", "Uniform", "Fixed", "Dirichlet", "Zipf", "GEM", "parse_law", "register_law",
]

_REGISTRY: dict[str, type[Law]] = {}
#: Laws defined outside this module, by name: the module that registers them, imported on first use (so that
#: parsing a parametric law never loads trace files or fitting code).
_PROVIDERS = {"trace": "brw.trace_law", "gemmix": "brw.fitted", "markov": "brw.fitted", "ctx": "brw.context_laws",
              "path": "brw.context_laws", "edge": "brw.context_laws", "run": "brw.context_laws",
              "prefix": "brw.context_laws"}


def register_law(cls):
    """Class decorator: make ``cls.name`` parseable by :func:`parse_law`.

    Parameters
    ----------
    cls : type
        A subclass of :class:`Law` with a class attribute ``name`` and a classmethod ``from_spec_body``.

    Returns
    -------
    type
        ``cls`` itself.
    """
    _REGISTRY[cls.name] = cls
    return cls


def parse_law(spec) -> Law:
    """Build the law named by a spec string, or return a law as is.

    Parameters
    ----------
    spec : str or Law
        A law spec such as ``dirichlet:alpha=0.5,k=8`` or ``trace:chat`` (conventions, "Law specs").

    Returns
    -------
    Law
        The law; ``str(law)`` prints the spec back.

    Raises
    ------
    BrwError
        When the spec names no known law or its parameters are malformed.
    """
    if isinstance(spec, Law):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise BrwError(f"law spec must be a non-empty string like 'dirichlet:alpha=0.5,k=8', got {spec!r}")
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    if name not in _REGISTRY and name in _PROVIDERS:
        importlib.import_module(_PROVIDERS[name])
    cls = _REGISTRY.get(name)
    shown = clip(spec)  # messages quote the spec, which may be any length
    if cls is None:
        known = ", ".join(sorted(set(_REGISTRY) | set(_PROVIDERS)))
        raise BrwError(f"unknown law {clip(name, 40)!r} in spec {shown!r}; known laws: {known}")
    return cls.from_spec_body(rest, shown)


def _parse_fields(body: str, spec: str, allowed: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
    """key=value fields: every key of ``allowed`` once, those of ``optional`` at most once."""
    out: dict[str, str] = {}
    if not body:
        raise BrwError(f"law spec {spec!r} needs parameters: {', '.join(k + '=...' for k in allowed)}")
    for part in body.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise BrwError(f"bad parameter {part!r} in law spec {spec!r}: write key=value")
        if key not in allowed and key not in optional:
            raise BrwError(f"unknown parameter {key!r} in law spec {spec!r}; expected "
                           f"{', '.join(allowed + tuple(f'[{k}]' for k in optional))}")
        if key in out:
            raise BrwError(f"parameter {key!r} given twice in law spec {spec!r}")
        out[key] = value.strip()
    missing = [k for k in allowed if k not in out]
    if missing:
        raise BrwError(f"law spec {spec!r} is missing {', '.join(missing)}")
    return out


def _float(value: str, key: str, spec: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    try:
        x = float(value)
    except ValueError:
        raise BrwError(f"{key}={clip(value, 40)!r} in law spec {spec!r} is not a number") from None
    if not math.isfinite(x):
        raise BrwError(f"{key}={value!r} in law spec {spec!r} must be finite")
    if positive and not x > 0:
        raise BrwError(f"{key}={value} in law spec {spec!r} must be > 0")
    if nonnegative and not x >= 0:
        raise BrwError(f"{key}={value} in law spec {spec!r} must be >= 0")
    return x


def _int(value: str, key: str, spec: str, *, minimum: int) -> int:
    try:
        x = int(value)
    except ValueError:
        raise BrwError(f"{key}={clip(value, 40)!r} in law spec {spec!r} must be a whole number") from None
    if x < minimum:
        raise BrwError(f"{key}={x} in law spec {spec!r} must be >= {minimum}")
    return x


def _holdout(value: str, spec: str) -> tuple[int, int]:
    """A spec's ``holdout=j/K`` field: (j, K), whole numbers with K >= 2 and 0 <= j < K."""
    j, slash, k = value.partition("/")
    try:
        j, k = int(j), int(k)
    except ValueError:
        j = k = None
    if not slash or j is None or k < 2 or not 0 <= j < k:
        raise BrwError(f"holdout={clip(value, 40)!r} in law spec {spec!r} must be j/K, fold j of K folds "
                       f"(K >= 2, 0 <= j < K), e.g. holdout=1/4")
    return j, k


def _holdout_text(holdout) -> str:
    """The spec's ``,holdout=j/K`` suffix ('' without a holdout)."""
    return "" if holdout is None else f",holdout={holdout[0]}/{holdout[1]}"


def _check_holdout(holdout, law: str):
    """A law's ``holdout`` argument: None, or (j, K), whole numbers with K >= 2 and 0 <= j < K (fold j of K
    left out); returned as Python ints."""
    if holdout is None:
        return None
    ok = isinstance(holdout, tuple) and len(holdout) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in holdout)
    if not ok or holdout[1] < 2 or not 0 <= holdout[0] < holdout[1]:
        raise BrwError(f"{law} law needs holdout=None or (j, K), fold j of K folds with K >= 2 and 0 <= j < K, "
                       f"got holdout={clip(repr(holdout), 40)}")
    return int(holdout[0]), int(holdout[1])


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


def _fmt(x: float) -> str:
    """Shortest text that reads back as the same float (ints without '.0')."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


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


class Law:
    """Base class of step laws. Subclasses are frozen dataclasses with a class attribute ``name``."""

    name: ClassVar[str] = ""
    #: True when every node carries the same vector (no randomness in the tree).
    deterministic: ClassVar[bool] = False

    # -- spec ------------------------------------------------------------------------------------------
    @classmethod
    def from_spec_body(cls, body: str, spec: str) -> Law:  # pragma: no cover - abstract
        """Build the law from the part of its spec after ``NAME:``.

        Parameters
        ----------
        body : str
            The parameters, ``key=value,key=value``.
        spec : str
            The whole spec, for error messages.

        Returns
        -------
        Law
        """
        raise NotImplementedError

    def __str__(self) -> str:
        return self.spec

    def __reduce__(self):
        # A law crosses process boundaries as its spec string: a trace law's arrays stay behind.
        return parse_law, (self.spec,)

    @property
    def spec(self) -> str:  # pragma: no cover - abstract
        """The spec string that names the law; ``parse_law(law.spec) == law``."""
        raise NotImplementedError

    # -- exact quantities ------------------------------------------------------------------------------
    @property
    def mu(self) -> float:  # pragma: no cover - abstract
        """E[H(p)], the expected entropy of a node's vector (nats)."""
        raise NotImplementedError

    @property
    def mu2(self) -> float:  # pragma: no cover - abstract
        """E[sum p_i (log p_i)^2], the expected second log-moment (nats^2)."""
        raise NotImplementedError

    def psi(self, theta):  # pragma: no cover - abstract
        """The log-Laplace transform of the branching random walk.

        Parameters
        ----------
        theta : float or array_like
            Where to evaluate (theta > 0 for infinite vocabularies).

        Returns
        -------
        numpy.ndarray or float
            log E[sum_i p_i^theta], elementwise in ``theta``.
        """
        raise NotImplementedError

    # -- the spine step: draw p ~ D, J ~ p, step = -log p_J -------------------------------------------
    def spine_atoms(self):
        """The spine step's atoms, when it is discrete.

        Returns
        -------
        tuple of numpy.ndarray or None
            ``(steps, weights)``: the values -log p_J can take and their probabilities; None for a continuous
            spine step.
        """
        return None

    def spine_cdf(self, x, *, strict: bool = False):
        """The distribution function of the spine step -log p_J (p ~ D, J ~ p).

        Parameters
        ----------
        x : float or array_like
            Where to evaluate.
        strict : bool, optional
            P(step < x) instead of P(step <= x).

        Returns
        -------
        numpy.ndarray
            P(step <= x) (or < x), elementwise in ``x``.
        """
        atoms = self.spine_atoms()
        if atoms is None:  # pragma: no cover - continuous laws override
            raise NotImplementedError
        steps, w = atoms
        order = np.argsort(steps)
        steps, cw = steps[order], np.cumsum(w[order])
        cw = np.concatenate([[0.0], cw / cw[-1]])
        idx = np.searchsorted(steps, np.asarray(x, dtype=np.float64), side="left" if strict else "right")
        return cw[idx]

    def spine_sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Independent draws of the spine step.

        Parameters
        ----------
        rng : numpy.random.Generator
            The random source.
        n : int or tuple of int
            How many (or the shape).

        Returns
        -------
        numpy.ndarray
            Draws of -log p_J.
        """
        steps, w = self.spine_atoms()
        return steps[rng.choice(steps.size, size=n, p=w / w.sum())]

    @property
    def lattice_span(self) -> float:
        """Span h > 0 when the spine step lives on a lattice h*Z (renewal correction), else 0."""
        atoms = self.spine_atoms()
        if atoms is None:
            return 0.0
        steps = np.unique(atoms[0][atoms[1] > 0])
        return _lattice_span(steps)

    def kernel_law(self) -> KernelLaw:  # pragma: no cover - abstract
        """What the kernels need to draw a node's vector.

        Returns
        -------
        KernelLaw
            The law's kind, table, tails and parameters (``brw.kernel_law``).
        """
        raise NotImplementedError


def _lattice_span(steps: np.ndarray, rtol: float = 1e-9) -> float:
    """Largest h with every step an integer multiple of h (to rtol), or 0 when there is none."""
    steps = steps[steps > 0]
    if steps.size == 0:
        return 0.0
    h = steps.min()
    # Euclid on reals: h must divide every step; shrink h by remainders, give up when it degenerates.
    for s in steps:
        a, b = s, h
        for _ in range(64):
            r = math.fmod(a, b)
            if r < rtol * s or b - r < rtol * s:
                break
            a, b = b, r
        else:
            return 0.0
        h = b
        if h < 1e-6 * steps.max():
            return 0.0
    return float(h)


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
    name: ClassVar[str] = "uniform"

    def __post_init__(self):
        object.__setattr__(self, "k", _whole(self.k, "uniform", "k", 1))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("k",))
        return cls(_int(f["k"], "k", spec, minimum=1))

    @property
    def spec(self):
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
    name: ClassVar[str] = "fixed"
    _p: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        try:
            p = np.asarray(self.probs, dtype=np.float64)
        except (TypeError, ValueError):
            raise BrwError(f"fixed law needs a vector of probabilities, got p={clip(repr(self.probs), 60)}") from None
        p = _check_vector(p, f"fixed law p={clip(repr(self.probs), 60)}")
        object.__setattr__(self, "_p", p)
        object.__setattr__(self, "probs", tuple(float(x) for x in p))

    def __eq__(self, other):
        return isinstance(other, Fixed) and self.probs == other.probs

    def __hash__(self):
        return hash(self.probs)

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("p",))
        vals = [_float(v, "p", spec) for v in f["p"].split("/")]
        try:
            return cls(tuple(vals))
        except BrwError as e:
            raise BrwError(f"in law spec {spec!r}: {e}") from None

    @property
    def spec(self):
        return "fixed:p=" + "/".join(_fmt(x) for x in self.probs)

    @property
    def p(self):
        return self._p


@register_law
@dataclass(frozen=True)
class Zipf(_VectorLaw):
    """p_i proportional to i^-s, i = 1..k: deterministic with a long tail."""

    s: float
    k: int
    name: ClassVar[str] = "zipf"

    def __post_init__(self):
        object.__setattr__(self, "s", _real(self.s, "zipf", "s"))
        object.__setattr__(self, "k", _whole(self.k, "zipf", "k", 1))
        # Every exact quantity computes the whole vector (a few arrays of k floats at once).
        require("k", self.k, lambda k: 40.0 * k, what=f"the zipf law's vector (s={_fmt(self.s)})")

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("s", "k"))
        return cls(_float(f["s"], "s", spec, nonnegative=True), _int(f["k"], "k", spec, minimum=1))

    @property
    def spec(self):
        return f"zipf:s={_fmt(self.s)},k={self.k}"

    @property
    def p(self):
        lw = -self.s * np.log(np.arange(1, self.k + 1, dtype=np.float64))
        return np.exp(lw - special.logsumexp(lw))


@register_law
@dataclass(frozen=True)
class Dirichlet(Law):
    """Symmetric Dirichlet(alpha, ..., alpha) on k tokens, a fresh draw at every node (theory.md identity 9)."""

    alpha: float
    k: int
    name: ClassVar[str] = "dirichlet"

    def __post_init__(self):
        object.__setattr__(self, "alpha", _real(self.alpha, "dirichlet", "alpha", positive=True))
        object.__setattr__(self, "k", _whole(self.k, "dirichlet", "k", 1))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("alpha", "k"))
        return cls(_float(f["alpha"], "alpha", spec, positive=True), _int(f["k"], "k", spec, minimum=1))

    @property
    def spec(self):
        return f"dirichlet:alpha={_fmt(self.alpha)},k={self.k}"

    @property
    def _b(self) -> float:
        return (self.k - 1) * self.alpha

    @property
    def mu(self):
        if self.k == 1:
            return 0.0
        return float(special.digamma(self.k * self.alpha + 1) - special.digamma(self.alpha + 1))

    @property
    def mu2(self):
        if self.k == 1:
            return 0.0
        a, ka = self.alpha, self.k * self.alpha
        return float(self.mu**2 + special.polygamma(1, a + 1) - special.polygamma(1, ka + 1))

    def psi(self, theta):
        theta = np.asarray(theta, dtype=np.float64)
        a, ka = self.alpha, self.k * self.alpha
        # E[p_1^theta] for p_1 ~ Beta(a, (k-1)a), times k.
        return (math.log(self.k) + special.gammaln(a + theta) - special.gammaln(a)
                + special.gammaln(ka) - special.gammaln(ka + theta))

    def spine_cdf(self, x, *, strict=False):
        x = np.asarray(x, dtype=np.float64)
        if self.k == 1:
            return (x > 0).astype(float) if strict else (x >= 0).astype(float)
        # step = -log B, B ~ Beta(alpha + 1, b): P(step <= x) = P(B >= e^-x). Continuous: strict is moot.
        return np.where(x < 0, 0.0, special.betaincc(self.alpha + 1, self._b, np.exp(-np.maximum(x, 0))))

    def spine_sample(self, rng, n):
        if self.k == 1:
            return np.zeros(n)
        return -np.log(rng.beta(self.alpha + 1, self._b, size=n))

    @property
    def lattice_span(self):
        return math.inf if self.k == 1 else 0.0

    def kernel_law(self):
        return KernelLaw(KIND_DIRICHLET, np.zeros((1, 1)), np.array([self.alpha, self.k, 0.0, 0.0]), self.k)


@register_law
@dataclass(frozen=True)
class GEM(Law):
    """GEM(theta) stick-breaking (ranked: Poisson-Dirichlet(theta)), an infinite vocabulary.

    Size-biased picks of GEM(theta) are Beta(1, theta), so the spine step is -log B with B ~ Beta(1, theta).
    The kernels break sticks until the unbroken mass cannot put a child inside the frontier (they are told
    the largest position that matters), so no child that could enter is ever lost.
    """

    theta: float
    name: ClassVar[str] = "gem"

    def __post_init__(self):
        object.__setattr__(self, "theta", _real(self.theta, "gem", "theta", positive=True))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = _parse_fields(body, spec, ("theta",))
        return cls(_float(f["theta"], "theta", spec, positive=True))

    @property
    def spec(self):
        return f"gem:theta={_fmt(self.theta)}"

    @property
    def mu(self):
        return float(special.digamma(self.theta + 1) - special.digamma(1))

    @property
    def mu2(self):
        return float(self.mu**2 + special.polygamma(1, 1) - special.polygamma(1, self.theta + 1))

    def psi(self, theta):
        t = np.asarray(theta, dtype=np.float64)
        # E[B^(t-1)] for B ~ Beta(1, theta) = theta Gamma(t) Gamma(theta) / Gamma(t + theta); finite for t > 0.
        th = self.theta
        return math.log(th) + special.gammaln(t) + special.gammaln(th) - special.gammaln(t + th)

    def spine_cdf(self, x, *, strict=False):
        x = np.asarray(x, dtype=np.float64)
        # P(-log B <= x) = P(B >= e^-x) = (1 - e^-x)^theta.
        return np.where(x < 0, 0.0, (-np.expm1(-np.maximum(x, 0))) ** self.theta)

    def spine_sample(self, rng, n):
        return -np.log(rng.beta(1.0, self.theta, size=n))

    @property
    def lattice_span(self):
        return 0.0

    def kernel_law(self):
        # Buffer: sticks needed until the unbroken mass is below e^-cut: about theta * cut; the kernel
        # receives the cut and the API sizes the buffer (see brw.frontier).
        return KernelLaw(KIND_GEM, np.zeros((1, 1)), np.array([1.0, 0.0, self.theta, 1.0]), 0)


