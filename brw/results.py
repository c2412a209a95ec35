"""Result objects: frozen dataclasses that record their inputs, seed and version, and one way out of them.

Every result is a frozen dataclass mixing in :class:`Result`: ``to_dict()`` gives a JSON-able dict (what
``--json`` prints) and ``to_pandas()`` a tidy table (one row per law and P, or per replicate where asked), the
form sweeps concatenate. This module holds the solvers' results: :class:`FrontierResult`
(``brw.frontier``), :class:`ThresholdResult` (``brw.threshold``) and :class:`Tree` (one
replicate's tree as flat arrays). numpy only: reading a result needs no simulator, and pandas is imported by
``to_pandas`` alone.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from brw._version import __version__
from brw.checks import whole_numbers
from brw.errors import BrwError

__all__ = ["Result", "FrontierResult", "ThresholdResult", "Tree", "default_at"]


class Result:
    """Mixin of the frozen result dataclasses: ``to_dict()`` and a tidy ``to_pandas()``.

    A subclass gives its tidy table as columns from ``_tidy(**options)`` (a dict of equal-length sequences);
    its ``to_dict`` defaults to every field, arrays as lists.
    """

    def to_dict(self) -> dict:
        """The result as a JSON-able dict.

        Returns
        -------
        dict
            Every field by name; arrays become lists and numpy scalars Python numbers.
        """
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_pandas(self, **options):
        """The result as a tidy table.

        Parameters
        ----------
        **options
            What the result's tidy form takes (see its ``_tidy``), for example ``per_replicate=True``.

        Returns
        -------
        pandas.DataFrame
            One row per observation (law and P, or replicate, or node), one column per variable.
        """
        import pandas as pd  # here, not at import: reading a result should not load pandas

        return pd.DataFrame(self._tidy(**options))

    def _tidy(self, **options) -> dict:  # pragma: no cover - every result defines its table
        raise NotImplementedError


def _jsonable(value):
    """Arrays as lists and numpy scalars as Python numbers, recursively through dicts, lists and tuples."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def default_at(pmax: int) -> list[int]:
    """The P a report shows by default.

    Parameters
    ----------
    pmax : int
        The largest P.

    Returns
    -------
    list of int
        Powers of two up to ``pmax``, and ``pmax``.
    """
    at = [1 << i for i in range(pmax.bit_length()) if (1 << i) <= pmax]
    if at[-1] != pmax:
        at.append(pmax)
    return at


@dataclass(frozen=True)
class FrontierResult(Result):
    """accepted(P) of the optimal P-node tree for every P <= pmax, as mean and standard error over replicates.

    Attributes
    ----------
    law : str
        The law's spec.
    mu, mu2 : float
        The law's expected entropy and second log-moment (nats, nats^2).
    pmax : int
        The largest P.
    replicates, seed, first_replicate : int
        Replicates ``first_replicate .. first_replicate + replicates - 1`` of ``seed`` were run.
    accepted, stderr : numpy.ndarray
        ``accepted[P - 1]``: mean over replicates of E[X] (bonus token excluded); ``stderr`` its standard error
        (NaN for one replicate).
    deepest : numpy.ndarray
        Depth of the deepest node of each replicate's pmax-node tree.
    last_position : numpy.ndarray
        Position of each replicate's pmax-th node.
    seconds : float
        Time in the kernels.
    keep : tuple of int
        The P whose per-replicate values were kept (``frontier(..., keep=...)``); empty when none were.
    replicate_values : numpy.ndarray or None
        Shape (replicates, len(keep)): each replicate's accepted(P) at the kept P.
    version : str
        The package version that computed it.
    """

    law: str
    mu: float
    mu2: float
    pmax: int
    replicates: int
    seed: int
    first_replicate: int
    accepted: np.ndarray
    stderr: np.ndarray
    deepest: np.ndarray
    last_position: np.ndarray
    seconds: float
    keep: tuple[int, ...] = ()
    replicate_values: np.ndarray | None = None
    version: str = __version__

    @property
    def P(self) -> np.ndarray:
        """1..pmax."""
        return np.arange(1, self.pmax + 1)

    @property
    def tokens_per_step(self) -> np.ndarray:
        """accepted + 1 (the bonus token counted)."""
        return self.accepted + 1.0

    @property
    def nodes_per_second(self) -> float:
        """Tree nodes settled per second in the kernels."""
        return self.replicates * self.pmax / self.seconds if self.seconds > 0 else math.inf

    def at(self, P) -> tuple[np.ndarray, np.ndarray]:
        """accepted and its standard error at chosen P.

        Parameters
        ----------
        P : int or sequence of int
            Whole numbers in 1..pmax.

        Returns
        -------
        tuple of numpy.ndarray
            ``(accepted, stderr)`` at those P.
        """
        idx = whole_numbers(P, "P", 1, self.pmax) - 1
        return self.accepted[idx], self.stderr[idx]

    def to_dict(self, at=None) -> dict:
        """The result as ``brw frontier --json`` prints it.

        Parameters
        ----------
        at : sequence of int, optional
            The P to report (default :func:`default_at`).

        Returns
        -------
        dict
            Keys ``law``, ``mu``, ``mu2``, ``P``, ``accepted``, ``stderr``, ``replicates``, ``seed``,
            ``first_replicate``, ``nodes_per_second``, ``version``; with kept P also ``keep`` and
            ``replicate_values`` (one list per replicate).
        """
        at = default_at(self.pmax) if at is None else [int(p) for p in whole_numbers(at, "P", 1, self.pmax)]
        acc, se = self.at(at)
        out = {
            "law": self.law, "mu": self.mu, "mu2": self.mu2, "P": at,
            "accepted": [float(a) for a in acc], "stderr": [float(s) for s in se],
            "replicates": self.replicates, "seed": self.seed, "first_replicate": self.first_replicate,
            "nodes_per_second": self.nodes_per_second, "version": self.version,
        }
        if self.keep:
            out["keep"] = list(self.keep)
            out["replicate_values"] = self.replicate_values.tolist()
        return out

    def _tidy(self, at=None, per_replicate: bool = False) -> dict:
        """Columns: law, P, accepted, stderr, tokens_per_step, mu, mu2, replicates, seed, version (one row per
        P in ``at``, default every P); with ``per_replicate``: law, replicate, P, accepted, seed, version (one
        row per replicate and kept P)."""
        if per_replicate:
            if not self.keep:
                raise BrwError("per-replicate values were not kept: run frontier(..., keep=[P, ...])")
            reps = np.repeat(np.arange(self.first_replicate, self.first_replicate + self.replicates), len(self.keep))
            n = reps.size
            return {"law": [self.law] * n, "replicate": reps, "P": np.tile(np.asarray(self.keep), self.replicates),
                    "accepted": self.replicate_values.ravel(), "seed": [self.seed] * n, "version": [self.version] * n}
        P = self.P if at is None else whole_numbers(at, "P", 1, self.pmax)
        acc, se = self.at(P)
        n = P.size
        return {"law": [self.law] * n, "P": P, "accepted": acc, "stderr": se, "tokens_per_step": acc + 1.0,
                "mu": [self.mu] * n, "mu2": [self.mu2] * n, "replicates": [self.replicates] * n,
                "seed": [self.seed] * n, "version": [self.version] * n}


@dataclass(frozen=True)
class ThresholdResult(Result):
    """Count and mass of the nodes at or below each level x, per replicate.

    Attributes
    ----------
    law : str
        The law's spec.
    xs : numpy.ndarray
        The levels, strictly increasing.
    replicates, seed, first_replicate : int
        Replicates ``first_replicate .. first_replicate + replicates - 1`` of ``seed`` were run.
    count : numpy.ndarray
        Shape (replicates, len(xs)): N(x) = #{non-root v : V(v) <= x}.
    mass : numpy.ndarray
        Shape (replicates, len(xs)): the sum of e^-V over those nodes (add 1 for the root to get identity 2's
        U(x)).
    deepest : numpy.ndarray
        Depth of each replicate's deepest node below the last level.
    seconds : float
        Time in the kernels.
    version : str
        The package version that computed it.
    """

    law: str
    xs: np.ndarray
    replicates: int
    seed: int
    first_replicate: int
    count: np.ndarray
    mass: np.ndarray
    deepest: np.ndarray
    seconds: float
    version: str = __version__

    def mean_count(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean over replicates of N(x) at each level, and its standard error (NaN for one replicate)."""
        return self.count.mean(axis=0), _se(self.count)

    def mean_mass(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean over replicates of the mass at each level, and its standard error (NaN for one replicate)."""
        return self.mass.mean(axis=0), _se(self.mass)

    def _tidy(self, per_replicate: bool = False) -> dict:
        """Columns: law, x, count, count_stderr, mass, mass_stderr, replicates, seed, version (one row per
        level); with ``per_replicate``: law, replicate, x, count, mass, seed, version."""
        if per_replicate:
            nx = self.xs.size
            reps = np.repeat(np.arange(self.first_replicate, self.first_replicate + self.replicates), nx)
            n = reps.size
            return {"law": [self.law] * n, "replicate": reps, "x": np.tile(self.xs, self.replicates),
                    "count": self.count.ravel(), "mass": self.mass.ravel(), "seed": [self.seed] * n,
                    "version": [self.version] * n}
        (count, count_se), (mass, mass_se) = self.mean_count(), self.mean_mass()
        n = self.xs.size
        return {"law": [self.law] * n, "x": self.xs, "count": count, "count_stderr": count_se, "mass": mass,
                "mass_stderr": mass_se, "replicates": [self.replicates] * n, "seed": [self.seed] * n,
                "version": [self.version] * n}


@dataclass(frozen=True)
class Tree(Result):
    """One replicate's tree as flat arrays (the root itself is not stored).

    Attributes
    ----------
    parent : numpy.ndarray
        Node i's parent, an index into these arrays (-1: the root).
    depth : numpy.ndarray
        Node i's depth (1 for the root's children).
    position : numpy.ndarray
        Node i's position V = -log of its path probability.
    law : str
        The law's spec.
    seed, replicate : int
        The tree is replicate ``replicate`` of ``seed``.
    deepest : int
        Depth of the deepest node the walk visited.
    version : str
        The package version that computed it.

    For a frontier tree nodes are in pop order (non-decreasing position); a threshold tree is depth-first.
    """

    parent: np.ndarray
    depth: np.ndarray
    position: np.ndarray
    law: str
    seed: int
    replicate: int
    deepest: int
    version: str = __version__

    def __len__(self):
        return self.position.shape[0]

    @property
    def accepted(self) -> np.ndarray:
        """accepted(P) for P = 1..len: prefix sums of e^-V (meaningful in pop order)."""
        return np.cumsum(np.exp(-self.position))

    def _tidy(self) -> dict:
        """Columns: node, parent, depth, position (one row per node)."""
        return {"node": np.arange(len(self)), "parent": self.parent, "depth": self.depth, "position": self.position}


def _se(a: np.ndarray) -> np.ndarray:
    r = a.shape[0]
    if r < 2:
        return np.full(a.shape[1:], np.nan)
    return a.std(axis=0, ddof=1) / math.sqrt(r)
