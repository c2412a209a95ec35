"""Which predictions of the theory hold? Slope and offset of accepted(P) against every bound, for many laws.

The simulations are one sweep (``brw.sweep``): every law's frontier to P_max with the same replicates, read on
a grid of P (every P to 2^6, then 64 per doubling, every power of two among them), each replicate's
least-squares line accepted(P) = a + b log P over the powers of two 2^6 .. P_max fitted by the sweep
(``slope_from``). The study turns that table into the checks: the mean slope b beside 1/mu (the sharp
asymptotic's slope) and (mu + mu2)/mu^2 (the paper's), accepted(P_max) beside every bound of
``brw.theory.bounds`` (the sharp asymptotic, the renewal bound of identity 6, Wald-Lorden, the paper's bound),
and the sharp asymptotic's residual over the grid. With ``out`` the sweep's points are stored there, and a
rerun computes only the missing ones.

``theory_check()`` returns a :class:`TheoryCheck`; its table is ``brw.tables.theory_check`` and its figures
``brw.figures.theory_bounds`` and ``brw.figures.theory_residuals``. ``sims/verify_theory.py`` runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brw._version import __version__
from brw.errors import BrwError
from brw.results import Result

__all__ = ["theory_check", "from_table", "TheoryCheck", "Measured", "theory_row", "sweep_P", "FULL", "QUICK",
           "PLOTTED", "SEED", "REPLICATES", "QUICK_REPLICATES", "FIT_FROM"]

#: Laws spanning mu from 0.2 to 6.5 nats (a deterministic law's replicates are one tree).
FULL = [
    "fixed:p=0.95/0.05",
    "dirichlet:alpha=0.02,k=8",
    "fixed:p=0.7/0.3",
    "gem:theta=0.5",
    "fixed:p=0.5/0.25/0.25",
    "dirichlet:alpha=0.5,k=8",
    "gem:theta=2",
    "uniform:k=8",
    "dirichlet:alpha=0.05,k=30",
    "dirichlet:alpha=1,k=32",
    "uniform:k=400",
    "zipf:s=1.1,k=50000",
]
#: A slice for continuous integration: P to 2^12, five laws, few trees.
QUICK = ["fixed:p=0.7/0.3", "uniform:k=8", "dirichlet:alpha=0.5,k=8", "gem:theta=2", "zipf:s=1.1,k=50000"]
#: Laws drawn in the bounds figure (where they were checked).
PLOTTED = ["uniform:k=8", "dirichlet:alpha=0.5,k=8", "fixed:p=0.95/0.05", "zipf:s=1.1,k=50000"]
SEED = 2512
#: Replicate trees of every random law (full run, and the continuous-integration slice).
REPLICATES = 128
QUICK_REPLICATES = 16
#: The slope is fitted over the powers of two from this P to P_max.
FIT_FROM = 64
#: Points of the P grid per doubling above ``FIT_FROM`` (below it, every P).
PER_DOUBLING = 64


@dataclass(frozen=True)
class Measured:
    """One law's simulated curve, from the sweep's rows: accepted(P) and its standard error over replicates on
    the grid ``P``, the slope over the powers of two ``FIT_FROM`` .. P_max (mean of the replicates' fits) and
    its standard error, and the trees simulated (one for a deterministic law)."""

    law: object
    P: np.ndarray
    accepted: np.ndarray
    accepted_stderr: np.ndarray
    slope: float
    slope_stderr: float
    replicates: int


@dataclass(frozen=True)
class TheoryCheck(Result):
    """The theory check: one row per law (``laws``, JSON-ready dicts), each law's measured curve (``measured``,
    by spec, for the figures) and the sweep's table it came from (``table``)."""

    seed: int
    P_max: int
    replicates: int
    laws: list
    measured: dict = field(repr=False, default_factory=dict)
    table: object = field(repr=False, default=None, compare=False)
    version: str = __version__

    def to_dict(self) -> dict:
        """JSON-ready: version, seed, P_max, replicates and the rows (the measured curves stay out).

        Returns
        -------
        dict
        """
        return {"version": self.version, "seed": self.seed, "P_max": self.P_max, "replicates": self.replicates,
                "laws": self.laws}

    def _tidy(self) -> dict:
        """Columns: every number of a row (a range as ``_low`` and ``_high``), one row per law; seed, version."""
        flat = []
        for r in self.laws:
            row = {}
            for k, v in r.items():
                if k.endswith("_range"):
                    row[f"{k}_low"], row[f"{k}_high"] = v if v is not None else (None, None)
                elif not isinstance(v, list):
                    row[k] = v
            flat.append(row)
        return {k: [row[k] for row in flat] for k in flat[0]} | {"seed": [self.seed] * len(flat),
                                                                 "version": [self.version] * len(flat)}


def trace_laws(extra=()) -> list[str]:
    """The bundled recorded traces that are installed, and any extra specs.

    Parameters
    ----------
    extra : sequence of str, optional
        More law specs, e.g. ``trace:PATH``.

    Returns
    -------
    list of str
        Specs: the extra ones first.
    """
    from brw.traces import BUNDLED, DATA_DIR

    installed = [name for name, file in sorted(BUNDLED.items()) if (Path(DATA_DIR) / file).is_file()]
    return list(extra) + [f"trace:{name}" for name in installed]


def sweep_P(pmax: int) -> list[int]:
    """The grid of P the sweep reads: every P to ``FIT_FROM``, then ``PER_DOUBLING`` per doubling (rounded), so
    every power of two from ``FIT_FROM`` to ``pmax`` is on it.

    Parameters
    ----------
    pmax : int
        Largest P: ``FIT_FROM`` times a power of two.

    Returns
    -------
    list of int
        Increasing; ends at ``pmax``.
    """
    steps = PER_DOUBLING * int(round(math.log2(pmax / FIT_FROM)))
    above = np.round(FIT_FROM * 2.0 ** (np.arange(steps + 1) / PER_DOUBLING)).astype(int)
    return sorted(set(range(1, FIT_FROM + 1)) | {int(p) for p in above})


def fit_line(logP: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y against log P.

    Parameters
    ----------
    logP : numpy.ndarray
        log P.
    y : numpy.ndarray
        Values at those P.

    Returns
    -------
    (float, float)
        Slope and intercept.
    """
    b, a = np.polyfit(logP, y, 1)
    return float(b), float(a)


def _measured(law, g) -> Measured:
    """A law's frontier rows (one point, sorted by P) as its measured curve."""
    trees = 1 if law.deterministic else int(g.replicates.iloc[0])
    last = g.iloc[-1]
    if np.isnan(last.slope):
        raise BrwError(f"the sweep's rows of {law} carry no slope at P={int(last.P)}: run it with "
                       f"slope_from={FIT_FROM} and a P_max of {FIT_FROM} times a power of two")
    if trees < 2 and not law.deterministic:
        raise BrwError(f"{law} has one replicate: a random law needs at least 2 (the standard errors)")
    return Measured(law, g.P.to_numpy(), g.accepted.to_numpy(), np.nan_to_num(g.stderr.to_numpy()),
                    float(last.slope), 0.0 if law.deterministic else float(last.slope_stderr), trees)


def theory_row(m: Measured) -> dict:
    """One law's row: the measured slope and offsets beside every bound, as a JSON-ready dict.

    Parameters
    ----------
    m : Measured
        The law's simulated curve.

    Returns
    -------
    dict
    """
    from brw import theory as T

    law, P, acc, se = m.law, m.P, m.accepted, m.accepted_stderr
    pmax = int(P[-1])
    fit = np.array([FIT_FROM << j for j in range((pmax // FIT_FROM).bit_length())])
    at = np.searchsorted(P, fit)  # the powers of two on the grid
    mu, mu2 = law.mu, law.mu2
    b = T.bounds(law, fit)  # at the powers of two; the closed forms below on the whole grid
    asym = T.asymptotic(law, P)
    smooth = T.smooth_asymptotic(law, P)
    paper = T.paper_bound(law, P)
    bad = np.nonzero(acc > paper)[0]  # where accepted exceeds the paper's bound
    first_paper = 1 if bad.size == 0 else (int(P[bad[-1] + 1]) if bad[-1] + 1 < P.size else None)
    window = P >= FIT_FROM
    span = b.lattice_span
    err = (asym - acc)[window]
    lattice_err = (smooth + span / (2 * mu) - acc)[window]
    return {
        "law": str(law), "mu": mu, "mu2": mu2, "lattice_span": span, "replicates": m.replicates,
        "deterministic": bool(law.deterministic),
        "slope": m.slope, "slope_se": m.slope_stderr,
        "inv_mu": 1 / mu, "paper_slope": (mu + mu2) / mu**2,
        "asymptotic_fit_slope": fit_line(np.log(fit), asym[at])[0],
        "renewal_fit_slope": fit_line(np.log(fit), b.renewal_bound)[0],
        "P_max": pmax, "accepted_at_max": float(acc[-1]), "accepted_se_at_max": float(se[-1]),
        "asymptotic_at_max": float(b.asymptotic[-1]), "smooth_asymptotic_at_max": float(b.smooth_asymptotic[-1]),
        "renewal_bound_at_max": float(b.renewal_bound[-1]),
        "renewal_bound_width_at_max": float(b.renewal_bound_width[-1]),
        "wald_lorden_at_max": float(b.wald_lorden_bound[-1]), "paper_at_max": float(b.paper_bound[-1]),
        "asymptotic_error_at_max": float(asym[-1] - acc[-1]),
        "asymptotic_error_range": [float(np.min(err)), float(np.max(err))],
        "smooth_plus_h_error_range": [float(np.min(lattice_err)), float(np.max(lattice_err))] if span else None,
        "renewal_minus_accepted": [float(v) for v in b.renewal_bound - acc[at]],
        "renewal_exceeded_by_se": float(np.max((acc[at] - b.renewal_bound) / np.maximum(se[at], 1e-300))
                                        if not law.deterministic else 0.0),
        "accepted_above_renewal_deterministic": (float(np.max(acc[at] - b.renewal_bound))
                                                 if law.deterministic else None),
        "paper_holds_from_P": first_paper, "paper_fails_at_P1": bool(acc[0] > paper[0]),
        "biggins_gamma": b.biggins_gamma,
        "biggins_theta": b.biggins_theta if math.isfinite(b.biggins_theta) else None,
        "depth_predicted": float(b.predicted_depth[-1]),
    }


def from_table(df) -> TheoryCheck:
    """The theory check of a sweep's table: one row per law of its frontier points.

    Parameters
    ----------
    df : pandas.DataFrame
        ``brw.sweep(kind="frontier", slope_from=FIT_FROM, ...)``'s table: one point per law (one replicates
        value, one sweep seed), P on :func:`sweep_P` of its P_max, every point computed.

    Returns
    -------
    TheoryCheck
    """
    from brw.laws import parse_law

    front = df[df.kind == "frontier"]
    failed = front[front.error.notna()]
    if len(failed):
        raise BrwError(f"the sweep could not compute {failed.law.iloc[0]}: {failed.error.iloc[0]}")
    if front.empty:
        raise BrwError("the sweep's table has no frontier rows")
    for col in ("replicates", "sweep_seed"):
        if front[col].nunique() != 1:
            raise BrwError(f"the sweep's table has several {col} values; a theory check takes one")
    rows, measured = [], {}
    for spec, g in front.groupby("law", sort=False):
        m = _measured(parse_law(spec), g.sort_values("P"))
        measured[spec] = m
        rows.append(theory_row(m))
    pmax = int(front.P.max())
    return TheoryCheck(seed=int(front.sweep_seed.iloc[0]), P_max=pmax, replicates=int(front.replicates.iloc[0]), laws=rows,
                       measured=measured, table=df)


def theory_check(*, quick: bool = False, laws=None, P_max: int | None = None, replicates: int | None = None,
                 extra_laws=(), seed: int = SEED, out=None, client=None, dask_local: int | None = None,
                 workers: int | None = None, progress: bool = False, log=None) -> TheoryCheck:
    """Simulate every law of ``FULL`` (or ``QUICK``) in one sweep and set each beside the theory.

    Parameters
    ----------
    quick : bool, optional
        The continuous-integration slice: ``QUICK`` to P = 2^12 with ``QUICK_REPLICATES`` trees, no trace laws.
        Otherwise ``FULL`` and the bundled traces to P = 2^16 with ``REPLICATES`` trees (minutes).
    laws : sequence of str, optional
        Check these laws instead (no trace laws are added).
    P_max : int, optional
        Largest P instead: ``FIT_FROM`` times a power of two, at least twice ``FIT_FROM``.
    replicates : int, optional
        Trees per random law instead.
    extra_laws : sequence of str, optional
        More law specs to check, e.g. ``trace:PATH``.
    seed : int, optional
        The sweep seed (each law's trees are seeded from it and the law: ``brw.sweep``).
    out : str or Path, optional
        Folder for the sweep's points: a rerun computes only the points it lacks.
    client, dask_local, workers, progress
        Where and how the sweep runs (as ``brw.sweep``).
    log : callable, optional
        Called with one line per law once the sweep is done.

    Returns
    -------
    TheoryCheck
    """
    from brw.sweeps import sweep

    pmax = P_max if P_max is not None else 2**12 if quick else 2**16
    if isinstance(pmax, bool) or not isinstance(pmax, (int, np.integer)) or pmax < 2 * FIT_FROM or (
            pmax % FIT_FROM or (pmax // FIT_FROM) & (pmax // FIT_FROM - 1)):
        raise BrwError(f"P_max must be {FIT_FROM} times a power of two, at least {2 * FIT_FROM}; got {pmax!r}")
    specs = list(laws) if laws is not None else QUICK if quick else FULL + trace_laws()
    specs += list(extra_laws)
    reps = replicates if replicates is not None else QUICK_REPLICATES if quick else REPLICATES
    if isinstance(reps, (int, np.integer)) and not isinstance(reps, bool) and reps < 2:
        raise BrwError(f"replicates must be at least 2 (the standard errors of random laws), got {reps}")
    df = sweep(laws=specs, P=sweep_P(int(pmax)), kind="frontier", replicates=reps, seed=seed,
               slope_from=FIT_FROM, out=out, client=client, dask_local=dask_local, workers=workers,
               progress=progress)
    check = from_table(df)
    if log is not None:
        for row in check.laws:
            log(f"{row['law']:28s} mu={row['mu']:.3f} slope={row['slope']:.4f}+-{row['slope_se']:.4f} "
                f"1/mu={row['inv_mu']:.4f} acc={row['accepted_at_max']:.3f} asym={row['asymptotic_at_max']:.3f} "
                f"ren={row['renewal_bound_at_max']:.3f}")
    return check
