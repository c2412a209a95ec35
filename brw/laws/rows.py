"""A law's node vectors as a table of rows: their exact quantities, exact tempering, and Monte Carlo rows.

- :class:`EmpiricalRows`: the exact mu, mu2, psi and spine atoms of a law whose node draws one of a table's
  rows (sorted log-probabilities, padded with -inf, each followed by tail groups of equal atoms), every row
  equally likely; the trace laws share it (theory.md section 5: the spine step of such a law is discrete).
- :func:`temper_rows`: the rows at temperature T (theory.md section 7b), exactly: each row's log-probabilities
  become log p / T - log Z_T with Z_T = sum p^(1/T) over the row's table entries *and* its tail atoms, so a tail
  group of m equal atoms stays a group of m equal atoms and the tempered row sums to 1. :func:`temper_trace`
  tempers a trace's rows and everything recorded with them (entropy, second log-moment, tail mass, the taken
  token's log-probability) the same way, before any law is fitted to them.
- :class:`SampledRows`, :func:`dirichlet_rows`, :func:`stick_rows`: a random law's vectors have no closed-form
  moments once tempered (a Dirichlet or GEM vector raised to 1/T); they are estimated from a fixed seeded
  sample of ``MC_ROWS`` tempered vectors, with standard errors (docs/theory.md, "Temperature").

The exponentials and logarithms of :func:`temper_rows` are the C library's, element by element (as
``brw.tailfit`` does), so that a tempered trace law is the same bits on every CPU.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
from scipy import special

from brw.errors import BrwError
from brw.tailfit import tail_moments

__all__ = ["EmpiricalRows", "SampledRows", "temper_rows", "temper_trace", "dirichlet_rows", "stick_rows",
           "sampled_dirichlet", "sampled_sticks", "MC_ROWS", "MC_SEED", "MC_ATOMS", "STICK_RESIDUAL",
           "STICKS_ABOVE_ONE"]

#: Monte Carlo sample of a tempered random law: this many vectors (fewer when they are long, see MC_ATOMS),
#: drawn from numpy's generator seeded with MC_SEED (the same sample on every run).
MC_ROWS = 1 << 14
MC_SEED = 20251224
#: Most log-probabilities the sample holds (rows times entries per row).
MC_ATOMS = 1 << 20
#: Stick-breaking samples break until the unbroken mass, tempered, is below this share of the broken mass.
STICK_RESIDUAL = 1e-12

#: Why stick-breaking laws (``gem``, ``gemmix``) refuse T > 1.
STICKS_ABOVE_ONE = ("an infinite vocabulary's tempered mass beyond the broken sticks has no bound above T = 1 "
                    "(use T <= 1, or a law with a finite vocabulary)")

_EXP = np.frompyfunc(math.exp, 1, 1)
_LOG = np.frompyfunc(math.log, 1, 1)


def _cexp(x: np.ndarray) -> np.ndarray:
    """exp by the C library, element by element (the same bits on every CPU); -inf gives 0."""
    return np.asarray(_EXP(np.asarray(x, dtype=np.float64)), dtype=np.float64)


class EmpiricalRows:
    """The exact quantities of a law whose node draws one of the rows ``_table`` (with tails ``_tails``), each
    row equally likely at a node: mu, mu2, psi and the spine step's atoms (a mixin for laws)."""

    _table: np.ndarray
    _tails: np.ndarray

    def _law_rows(self):
        """(table, tails) of the rows the quantities are of: the drawn ones, unless a law says otherwise."""
        return self._table, self._tails

    @property
    def rows(self) -> int:
        return self._law_rows()[0].shape[0]

    def _cached(self, name: str, make):
        """``make()`` once per law and rows (theory evaluates psi and mu thousands of times on the same rows)."""
        table, tails = self._law_rows()
        key = (name, id(table), id(tails))
        cache = self.__dict__.setdefault("_rows_cache", {})
        if key not in cache:
            cache[key] = (table, tails, make())  # holding the arrays keeps their ids unique while cached
        return cache[key][2]

    def _row_moments(self):
        return self._cached("moments", self._row_moments_now)

    def _row_moments_now(self):
        table, tails = self._law_rows()
        p = np.exp(table)
        th, ts = tail_moments(tails)
        with np.errstate(invalid="ignore"):  # -inf padding: 0 * inf
            return -np.where(p > 0, p * table, 0.0).sum(axis=1) + th, np.where(p > 0, p * table**2, 0.0).sum(
                axis=1) + ts

    @property
    def mu(self):
        return float(np.mean(self._row_moments()[0]))

    @property
    def mu2(self):
        return float(np.mean(self._row_moments()[1]))

    def _atoms(self):
        """(log p, log count) of every atom of every row, shape (rows, k + groups)."""
        table, tails = self._law_rows()
        cnt = tails[:, :, 1]
        lq = np.where(cnt > 0, tails[:, :, 0], 0.0)
        with np.errstate(divide="ignore"):
            lc = np.where(cnt > 0, np.log(np.where(cnt > 0, cnt, 1.0)), -np.inf)
        lp = np.concatenate([table, lq], axis=1)
        lcount = np.concatenate([np.where(np.isfinite(table), 0.0, -np.inf), lc], axis=1)
        return lp, lcount

    def psi(self, theta):
        theta = np.asarray(theta, dtype=np.float64)
        lp, lc = self._cached("finite_atoms", self._finite_atoms)
        # One theta at a time: the atoms number rows * (k + 3), too many to broadcast against a grid of thetas.
        out = np.array([special.logsumexp(t * lp + lc) for t in theta.ravel()]) - math.log(self.rows)
        return out.reshape(theta.shape) if theta.ndim else float(out[0])

    def _finite_atoms(self):
        lp, lc = self._atoms()
        keep = np.isfinite(lc)
        return lp[keep], lc[keep]

    def spine_atoms(self):
        lp, lc = self._atoms()
        w = np.exp(lp + lc) / self.rows
        keep = w > 0
        return -lp[keep], w[keep]

    @property
    def lattice_span(self):
        # Recorded log-probabilities share no lattice; scanning ~10^5 atoms for one would be slow and pointless.
        return 0.0


def temper_rows(table: np.ndarray, tails: np.ndarray, T: float):
    """Rows of sorted log-probabilities (and their tail groups) at temperature T, exactly.

    Parameters
    ----------
    table : float64 array (N, k)
        Sorted log-probabilities, largest first, padded with -inf.
    tails : float64 array (N, G, 2)
        Each row's tail groups (log q, count), every q below the row's last table entry.
    T : float
        The temperature, > 0.

    Returns
    -------
    (table_T, tails_T, log_z) : float64 arrays (N, k), (N, G, 2), (N,)
        log p / T - log Z_T for every table entry and tail atom (the counts unchanged; -inf stays -inf), and
        log Z_T = log(sum p^(1/T)) over each row's table entries and tail atoms.
    """
    a = 1.0 / T
    table = np.asarray(table, dtype=np.float64)
    tails = np.asarray(tails, dtype=np.float64)
    top = a * table[:, :1]  # each row's largest entry, scaled
    cnt = tails[:, :, 1]
    with np.errstate(invalid="ignore"):
        z = (_cexp(np.where(np.isfinite(table), a * table - top, -np.inf))).sum(axis=1)
        z += (cnt * _cexp(np.where(cnt > 0, a * tails[:, :, 0] - top, -np.inf))).sum(axis=1)
    log_z = top[:, 0] + np.asarray(_LOG(z), dtype=np.float64)
    out = np.where(np.isfinite(table), a * table - log_z[:, None], -np.inf)
    t = tails.copy()
    t[:, :, 0] = np.where(cnt > 0, a * tails[:, :, 0] - log_z[:, None], tails[:, :, 0])
    return np.ascontiguousarray(out), np.ascontiguousarray(t), log_z


def temper_trace(trace, table: np.ndarray, tails: np.ndarray, T: float):
    """A trace and its fitted rows at temperature T: every row tempered exactly (:func:`temper_rows`), and the
    statistics recorded with it recomputed from the tempered row, so that whatever a law fits to the trace
    (regimes by entropy, bins by the taken token's surprisal, a gemmix fit) is fitted to the tempered rows.

    Parameters
    ----------
    trace : brw.traces.Trace
        The recorded rows; ``table`` and ``tails`` are its top-k log-probabilities (float64) and fitted tails.
    table, tails : float64 arrays
        As :func:`temper_rows` takes them.
    T : float

    Returns
    -------
    (trace_T, table_T, tails_T)
        ``trace_T`` holds the tempered top-k, the tempered rows' entropy, second log-moment and tail mass (of
        the fitted tail model), the taken token's log p / T - log Z_T, no brackets and no stored moments; its
        metadata's ``temperature`` is the recorded one times T, and ``tempered_by`` is T.
    """
    table_t, tails_t, log_z = temper_rows(table, tails, T)
    p = _cexp(table_t)
    th, ts = tail_moments(tails_t)
    with np.errstate(invalid="ignore"):
        h = -np.where(p > 0, p * table_t, 0.0).sum(axis=1) + th
        s = np.where(p > 0, p * table_t**2, 0.0).sum(axis=1) + ts
    cnt = tails_t[:, :, 1]
    tail_mass = (cnt * _cexp(np.where(cnt > 0, tails_t[:, :, 0], -np.inf))).sum(axis=1)
    taken = np.asarray(trace.taken_logp, dtype=np.float64) / T - log_z
    meta = dict(trace.meta, temperature=float(trace.meta.get("temperature", 1.0)) * T, tempered_by=T)
    out = replace(trace, top_logp=table_t, entropy=h, log_moment2=s, tail_mass=tail_mass, taken_logp=taken,
                  meta=meta, brackets={}, moments_at=None, entropy_at=None, log_moment2_at=None, path=None)
    return out, table_t, tails_t


class SampledRows(EmpiricalRows):
    """A random law's quantities from a sample of its (tempered) vectors: the exact quantities of the sample's
    empirical law (:class:`EmpiricalRows`), which estimate the law's, with standard errors.

    Parameters
    ----------
    table : float64 array (n, W)
        One sampled vector's log-probabilities per row (any order, padded with -inf).
    """

    def __init__(self, table: np.ndarray):
        self._table = np.ascontiguousarray(table, dtype=np.float64)
        self._tails = np.zeros((self._table.shape[0], 0, 2))
        # computed once: theory asks for mu, mu2 and psi many times (Biggins' minimisation: ~100 values of psi)
        self._h, self._s = self._row_moments()
        self._lp = self._table[np.isfinite(self._table)]

    @property
    def mu(self):
        return float(np.mean(self._h))

    @property
    def mu2(self):
        return float(np.mean(self._s))

    def psi(self, theta):
        theta = np.asarray(theta, dtype=np.float64)
        top = float(self._lp.max())
        out = np.array([t * top + math.log(np.exp(t * (self._lp - top)).sum()) for t in theta.ravel()])
        out -= math.log(self.rows)
        return out.reshape(theta.shape) if theta.ndim else float(out[0])

    def spine_atoms(self):
        w = np.exp(self._lp) / self.rows
        return -self._lp[w > 0], w[w > 0]

    @property
    def stderr(self) -> tuple[float, float]:
        """Standard errors of ``mu`` and ``mu2`` as estimates of the law's (the sample's spread over sqrt n)."""
        n = self._h.size
        return float(self._h.std(ddof=1) / math.sqrt(n)), float(self._s.std(ddof=1) / math.sqrt(n))


def _tempered(lp: np.ndarray, T: float) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        a = lp / T
        bad = ~np.isfinite(a.max(axis=1))  # a T so small that a row's every log p / T overflows: from its largest
        if bad.any():
            a[bad] = (lp[bad] - lp[bad].max(axis=1, keepdims=True)) / T
    return a - special.logsumexp(a, axis=1, keepdims=True)


def dirichlet_rows(alpha: float, k: int, T: float, n: int | None = None, seed: int = MC_SEED) -> np.ndarray:
    """Log-probabilities of n symmetric Dirichlet(alpha, k) vectors at temperature T (numpy's own sampler).

    Parameters
    ----------
    alpha : float
    k : int
    T : float
    n : int, optional
        Vectors (default MC_ROWS, fewer so that n k <= MC_ATOMS, at least 256).
    seed : int, optional

    Returns
    -------
    float64 array (n, k)
    """
    n = n or max(256, min(MC_ROWS, MC_ATOMS // k))
    if n * k > 16 * MC_ATOMS:
        raise BrwError(f"dirichlet law with k={k}: its quantities at T != 1 come from {n} sampled vectors, "
                       f"{n * k} numbers, too many; at T != 1 at most k={16 * MC_ATOMS // 256} works")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    # log Gamma(alpha) variates, without underflow for small alpha: log G = log G' + log(U) / alpha, G' ~ Gamma(alpha + 1)
    lg = np.log(rng.standard_gamma(alpha + 1.0, size=(n, k))) + np.log(rng.random((n, k))) / alpha
    return _tempered(lg, T)


def stick_rows(s, theta, w, T: float, n: int | None = None, seed: int = MC_SEED) -> np.ndarray:
    """Log-probabilities of n spike-plus-GEM vectors (component c with probability w_c: one atom s_c, the rest
    broken as GEM(theta_c) sticks) at temperature T <= 1, broken until the unbroken mass, tempered, is below
    ``STICK_RESIDUAL`` of the broken mass (it is left out).

    Parameters
    ----------
    s, theta, w : sequences of float
        The components (plain GEM(theta): s = (0,), theta = (theta,), w = (1,)).
    T : float
        At most 1 (the tempered mass of infinitely many unbroken sticks is bounded by the unbroken mass to the
        power 1/T only then).
    n : int, optional
        Vectors (default MC_ROWS, fewer so that rows times sticks <= MC_ATOMS, at least 1024).
    seed : int, optional

    Returns
    -------
    float64 array (n, W), -inf padded
    """
    s, theta, w = (np.asarray(v, dtype=np.float64) for v in (s, theta, w))
    a = 1.0 / T
    tmax = float(theta.max())
    m = int(tmax * (T * -math.log(STICK_RESIDUAL) + math.log1p(tmax) + 10.0)) + 16
    while True:
        rows = n or max(1024, min(MC_ROWS, MC_ATOMS // m))
        if rows * m > 16 * MC_ATOMS:  # a large theta: refused before the first draw, not by a MemoryError in it
            raise _too_many_sticks(tmax, rows * m, T)
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        c = rng.choice(s.size, size=rows, p=w / w.sum())
        sc, th = s[c], theta[c]
        l1mv = np.log(rng.random((rows, m))) / th[:, None]  # log(1 - V), V ~ Beta(1, theta)
        lrem0 = np.log1p(-sc)
        before = lrem0[:, None] + np.concatenate([np.zeros((rows, 1)), np.cumsum(l1mv, axis=1)[:, :-1]], axis=1)
        with np.errstate(divide="ignore"):
            lp = np.concatenate([np.where(sc > 0, np.log(np.where(sc > 0, sc, 1.0)), -np.inf)[:, None],
                                 before + np.log(-np.expm1(l1mv))], axis=1)
        lz = special.logsumexp(a * lp, axis=1)
        residual = a * (lrem0 + l1mv.sum(axis=1)) - lz  # log of the bound on the unbroken tempered share
        if residual.max() <= math.log(STICK_RESIDUAL):
            return a * lp - lz[:, None]
        if rows * m * 2 > 16 * MC_ATOMS:
            raise _too_many_sticks(tmax, rows * m, T)
        m *= 2


def _too_many_sticks(tmax: float, sticks: int, T: float) -> BrwError:
    return BrwError(f"a stick-breaking law with theta up to {tmax:g} needs more than {sticks} sticks "
                    f"for its quantities at T={T:g}; use a smaller theta")


@lru_cache(maxsize=8)
def sampled_dirichlet(alpha: float, k: int, T: float) -> SampledRows:
    """The Monte Carlo sample of a symmetric Dirichlet's vectors at T (cached): :func:`dirichlet_rows`.

    Parameters
    ----------
    alpha : float
    k : int
    T : float

    Returns
    -------
    SampledRows
    """
    return SampledRows(dirichlet_rows(alpha, k, T))


@lru_cache(maxsize=8)
def sampled_sticks(s: tuple, theta: tuple, w: tuple, T: float) -> SampledRows:
    """The Monte Carlo sample of a spike-plus-GEM mixture's vectors at T <= 1 (cached): :func:`stick_rows`.

    Parameters
    ----------
    s, theta, w : tuple of float
        The components (plain GEM(theta): (0,), (theta,), (1,)).
    T : float

    Returns
    -------
    SampledRows
    """
    return SampledRows(stick_rows(s, theta, w, T))
