"""The step law's base class and the registry of law names (theory.md section 2).

A law is a small frozen object named by one spec string (conventions.md, "Law specs"): ``brw.laws.parse_law(spec)``
builds it and ``str(law)`` prints the same spec back. Every law knows, exactly,

- ``mu``  = E[H(p)], the expected entropy (nats),
- ``mu2`` = E[sum p_i (log p_i)^2], the expected second log-moment,
- ``psi(theta)`` = log E[sum_i p_i^theta],
- the spine step law (draw p ~ D, then J ~ p, step = -log p_J): ``spine_cdf``, ``spine_atoms`` (discrete
  laws) and ``spine_sample``,

and what the kernels need to draw a node's vector (``kernel_law``, see ``brw.kernel_law``). A law pickles as its
spec string. Each family registers its class here with :func:`register_law`.

Temperature (conventions.md, "Law specs"; theory.md section 7b): every family takes ``T=`` the same way. The
spec's ``T=`` field is taken out here (:meth:`Law.from_spec`), the law is built from the rest and then tempered
(:meth:`Law.tempered`): each node's vector p becomes p^(1/T), renormalised, and ``mu``, ``mu2``, ``psi`` and the
spine step are the tempered law's. Families hold T as a keyword-only dataclass field (default 1: the law
itself, bit for bit, printed back without ``T=``) and say how they temper (docs/theory.md, "Temperature").
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import ClassVar

import numpy as np

from brw.errors import BrwError, clip
from brw.kernel_law import KernelLaw
from brw.spec import check_temperature, fmt, split_temperature, temperature_text

__all__ = ["Law", "register_law", "REGISTRY", "lattice_span"]

#: Law name -> its class, filled by :func:`register_law`.
REGISTRY: dict[str, type] = {}


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
    REGISTRY[cls.name] = cls
    return cls


class Law:
    """Base class of step laws. Subclasses are frozen dataclasses with a class attribute ``name``."""

    name: ClassVar[str] = ""
    #: True when every node carries the same vector (no randomness in the tree).
    deterministic: ClassVar[bool] = False
    #: The temperature: a node's vector is p^(1/T), renormalised. Families declare it as a keyword-only dataclass
    #: field (``T: float = field(default=1.0, kw_only=True)``); a law without that field is at T = 1.
    T = 1.0

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

    @classmethod
    def from_spec(cls, spec: str) -> Law:
        """Build the law from its whole spec string (``NAME:key=value,...``; ``brw.laws.parse_law`` finds the
        class by name and calls this). A ``T=`` field anywhere in it is taken out first: the law is built from
        the rest, then tempered (:meth:`tempered`).

        Parameters
        ----------
        spec : str
            The spec, whose name is this class's.

        Returns
        -------
        Law
        """
        shown = clip(spec)
        body, T = split_temperature(spec.partition(":")[2], shown)
        law = cls.from_spec_body(body, shown)
        return law if T == 1.0 else law.tempered(T)

    def __str__(self) -> str:
        return self.spec

    def __reduce__(self):
        # A law crosses process boundaries as its spec string: a trace law's arrays stay behind.
        return type(self).from_spec, (self.spec,)

    @property
    def spec(self) -> str:
        """The spec string that names the law; ``brw.laws.parse_law(law.spec) == law``: the family's own spec
        (``base_spec``) and, away from T = 1, ``,T=...`` last."""
        return self.base_spec + temperature_text(self.T)

    @property
    def base_spec(self) -> str:  # pragma: no cover - abstract
        """The spec of the law at T = 1 (the family's own fields)."""
        raise NotImplementedError

    def tempered(self, T) -> Law:
        """This law at temperature T: each node's vector p becomes p^(1/T), renormalised (theory.md section 7b).

        Temperatures compose: ``law.tempered(a).tempered(b)`` is the law at T = a b. T = 1 returns the law itself.

        Parameters
        ----------
        T : float
            A finite number > 0.

        Returns
        -------
        Law
            The tempered law (its spec ends with ``,T=...``).

        Raises
        ------
        BrwError
            On a bad T, or a T the family cannot take (it says why in one line).
        """
        T = check_temperature(T, f"{self.name or type(self).__name__} law's T")
        if T == 1.0:
            return self
        if "T" not in getattr(self, "__dataclass_fields__", {}):
            raise BrwError(f"law {clip(str(self))} takes no temperature T")
        return replace(self, T=self.T * T)

    def _check_temperature(self, most: float = math.inf, why: str = "") -> None:
        """Validate the family's T field (in ``__post_init__``): a finite number > 0, at most ``most``."""
        T = check_temperature(self.T, f"{self.name} law's T")
        if T > most:
            raise BrwError(f"{self.name} law cannot take T={fmt(T)} > {fmt(most)}: {why}")
        object.__setattr__(self, "T", T)

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
        return lattice_span(steps)

    def kernel_law(self) -> KernelLaw:  # pragma: no cover - abstract
        """What the kernels need to draw a node's vector.

        Returns
        -------
        KernelLaw
            The law's kind, table, tails and parameters (``brw.kernel_law``).
        """
        raise NotImplementedError


def lattice_span(steps: np.ndarray, rtol: float = 1e-9) -> float:
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
