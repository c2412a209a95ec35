"""The kernel form of a step law: what the Numba kernels take to draw a node's vector (numpy only).

A law (``brw.laws``) describes itself to the kernels as a :class:`KernelLaw`: a kind, a table of sorted
log-probabilities with its tail groups, and numeric parameters (their layout per kind is documented in
``brw._kernels``). :func:`kernel_args` turns a law into the :class:`KernelArgs` bundle every kernel call
starts with; anything that walks the simulated trees (the frontier, the threshold tree, the pure-Python
reference, policies) builds it here. This module imports neither Numba nor the laws, so the laws and the
theory stand without the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["KIND_TABLE", "KIND_DIRICHLET", "KIND_GEM", "ROWS_CONTEXT", "ROWS_PATH", "ROWS_EDGE", "ROWS_RUN",
           "ROWS_PREFIX", "GEM_MARGIN", "KernelLaw", "KernelArgs", "kernel_args", "gem_cut"]

#: Vectors are rows of a table of sorted log-probabilities (one row: the same vector at every node).
KIND_TABLE = 0
#: A symmetric Dirichlet vector drawn at every node.
KIND_DIRICHLET = 1
#: Spike + GEM stick-breaking mixtures (plain GEM is one component without a spike).
KIND_GEM = 2

#: Table laws with context structure: ``params[0]`` of a table whose rows are grouped by recorded context.
#: ROWS_CONTEXT: every node of a tree draws its row from the root's context; ROWS_PATH: a child takes the row
#: that follows its parent's along the recorded text; ROWS_EDGE: a child draws a row of its parent's context
#: recorded after a token as surprising as its own edge; ROWS_RUN: a child draws a row of its parent's context
#: recorded at the end of as long a run of most probable tokens as its own path's; ROWS_PREFIX: a child takes
#: the recorded row of its own prefix where there is one, else draws as ROWS_RUN (layouts in ``brw._kernels``).
ROWS_CONTEXT = -1.0
ROWS_PATH = -2.0
ROWS_EDGE = -3.0
ROWS_RUN = -4.0
ROWS_PREFIX = -5.0

#: GEM laws: the frontier breaks sticks until the unbroken mass sits this far (nats) beyond the expected
#: P-th position; the run then checks that no replicate's frontier reached it (exactness, see ``gem_cut``).
GEM_MARGIN = 20.0


@dataclass(frozen=True)
class KernelLaw:
    """What the kernels need to draw a node's vector.

    Attributes
    ----------
    kind : int
        ``KIND_TABLE``, ``KIND_DIRICHLET`` or ``KIND_GEM``.
    table : numpy.ndarray
        Sorted log-probabilities, one row per vector for table laws (padded with -inf); (1, 1) otherwise.
    params : numpy.ndarray
        Numeric parameters of the kind (see ``brw._kernels``).
    width : int
        Most children a node can have in the kernels' buffers (0: sized from the cut, stick-breaking laws).
    tails : numpy.ndarray
        Each row's tail groups, ``tails[row, g] = (log q, count)``; shape (1, 0, 2) when there are none.
    """

    kind: int
    table: np.ndarray
    params: np.ndarray
    width: int
    tails: np.ndarray = field(default_factory=lambda: np.zeros((1, 0, 2)))


class KernelArgs(NamedTuple):
    """The argument bundle the kernels take, in their order: a law's kernel form and its cut."""

    kind: int
    table: np.ndarray
    tails: np.ndarray
    params: np.ndarray
    cut: float
    width: int

    @property
    def vector_args(self) -> tuple:
        """``(kind, table, tails, params, cut)``: what draws a node's vector, the leading arguments of every
        tree kernel (the buffer ``width`` comes later, at a place that differs between kernels)."""
        return self[:5]


def kernel_args(law, cut: float) -> KernelArgs:
    """The kernels' arguments for ``law``, walking positions up to ``cut``.

    Parameters
    ----------
    law : Law
        A step law (``brw.laws.Law``; ``brw.laws.parse_law`` makes one from a spec).
    cut : float
        The largest position that matters: stick-breaking laws stop breaking once the unbroken mass lies
        beyond it (use :func:`gem_cut` for a frontier, the last level for a threshold tree). Other laws
        ignore it.

    Returns
    -------
    KernelArgs
        ``(kind, table, tails, params, cut, width)``, arrays contiguous; ``width`` is the size of a node's
        vector buffer (for stick-breaking laws, enough sticks for ``cut`` with overwhelming probability).
    """
    kl = law.kernel_law()
    width = kl.width
    if kl.kind == KIND_GEM:
        ncomp = int(kl.params[0])
        theta = float(np.max(kl.params[1 + ncomp:1 + 2 * ncomp]))
        lam = theta * cut  # sticks: 1 + Poisson(theta * cut)
        if kl.params.shape[0] > 1 + 3 * ncomp:  # tempered (T = 1 / a < 1): the unbroken mass must fall below
            # e^-(T cut) times the largest atom, which lies above e^-(log(1 + theta) + 30) on all but ~e^-30 nodes
            lam = theta * (cut / kl.params[1 + 3 * ncomp] + math.log1p(theta) + 30.0)
        width = int(lam + 12.0 * math.sqrt(lam) + 32)
    return KernelArgs(kl.kind, np.ascontiguousarray(kl.table), np.ascontiguousarray(kl.tails), kl.params,
                      float(cut), width)


def gem_cut(law, pmax: int) -> float:
    """The cut of a P-node frontier: positions that matter lie far below log(mu (P + 1)) + ``GEM_MARGIN``.

    Parameters
    ----------
    law : Law
        A step law.
    pmax : int
        The largest P of the frontier.

    Returns
    -------
    float
        The cut for stick-breaking laws; infinity for every other law (only stick-breaking laws use one).
    """
    if law.kernel_law().kind != KIND_GEM:
        return math.inf
    return math.log(max(law.mu, 1e-3) * (pmax + 1)) + GEM_MARGIN
