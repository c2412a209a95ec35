"""Result objects of the solvers: frozen dataclasses that record their inputs, seed and version.

``FrontierResult`` (``brw.frontier.frontier``), ``ThresholdResult`` (``brw.frontier.threshold``) and ``Tree``
(one replicate's tree as flat arrays). numpy only: reading a result needs no simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from brw._version import __version__
from brw.errors import BrwError

__all__ = ["FrontierResult", "ThresholdResult", "Tree", "default_at"]


def default_at(pmax: int) -> list[int]:
    """Powers of two up to pmax, and pmax."""
    at = [1 << i for i in range(pmax.bit_length()) if (1 << i) <= pmax]
    if at[-1] != pmax:
        at.append(pmax)
    return at


@dataclass(frozen=True)
class FrontierResult:
    """accepted[P - 1] = mean over replicates of E[X] for the optimal P-node tree; stderr likewise."""

    law: str
    mu: float
    mu2: float
    pmax: int
    replicates: int
    seed: int
    first_replicate: int
    accepted: np.ndarray
    stderr: np.ndarray
    deepest: np.ndarray  # depth of the deepest node of each replicate's Pmax-tree
    last_position: np.ndarray  # position of each replicate's Pmax-th node
    seconds: float
    version: str = __version__

    @property
    def P(self) -> np.ndarray:
        return np.arange(1, self.pmax + 1)

    @property
    def tokens_per_step(self) -> np.ndarray:
        return self.accepted + 1.0

    @property
    def nodes_per_second(self) -> float:
        return self.replicates * self.pmax / self.seconds if self.seconds > 0 else math.inf

    def at(self, P) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(P, dtype=np.int64) - 1
        if np.any(idx < 0) or np.any(idx >= self.pmax):
            raise BrwError(f"P must lie in 1..{self.pmax} for this result")
        return self.accepted[idx], self.stderr[idx]

    def to_dict(self, at=None) -> dict:
        at = default_at(self.pmax) if at is None else [int(p) for p in at]
        acc, se = self.at(at)
        return {
            "law": self.law, "mu": self.mu, "mu2": self.mu2, "P": at,
            "accepted": [float(a) for a in acc], "stderr": [float(s) for s in se],
            "replicates": self.replicates, "seed": self.seed, "first_replicate": self.first_replicate,
            "nodes_per_second": self.nodes_per_second, "version": self.version,
        }


@dataclass(frozen=True)
class ThresholdResult:
    """For each level xs[b]: mean over replicates of N(x) = #{non-root v : V(v) <= x} and of the mass
    sum e^-V over those nodes (add 1 for the root to get identity 2's U(x)), with standard errors."""

    law: str
    xs: np.ndarray
    replicates: int
    seed: int
    count: np.ndarray  # (replicates, len(xs)) cumulative counts
    mass: np.ndarray  # (replicates, len(xs)) cumulative masses
    deepest: np.ndarray
    seconds: float
    version: str = __version__

    def mean_count(self):
        return self.count.mean(axis=0), _se(self.count)

    def mean_mass(self):
        return self.mass.mean(axis=0), _se(self.mass)


@dataclass(frozen=True)
class Tree:
    """One tree as flat arrays: node i's parent (index, -1 for the root), depth and position V.
    For a frontier tree, nodes are in pop order (non-decreasing position)."""

    parent: np.ndarray
    depth: np.ndarray
    position: np.ndarray
    law: str = ""
    seed: int = 0
    replicate: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self):
        return self.position.shape[0]

    @property
    def accepted(self) -> np.ndarray:
        """accepted(P) for P = 1..len: prefix sums of e^-V (meaningful in pop order)."""
        return np.cumsum(np.exp(-self.position))


def _se(a: np.ndarray) -> np.ndarray:
    r = a.shape[0]
    if r < 2:
        return np.full(a.shape[1:], np.nan)
    return a.std(axis=0, ddof=1) / math.sqrt(r)
