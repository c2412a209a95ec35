"""Which predictions of the theory hold? Slope and offset of accepted(P) against every bound, for many laws.

For each law: simulate the optimal frontier to PMAX, fit accepted(P) = a + b log P over P = 2^6 .. PMAX (powers
of two) for every replicate (so that the slope has a standard error), and set the mean slope b beside 1/mu
(the sharp asymptotic's slope) and (mu + mu2)/mu^2 (the paper's), and accepted(PMAX) beside every bound of
``brw.theory.bounds``: the sharp asymptotic, the renewal bound (identity 6), Wald-Lorden and the paper's bound.

``theory_check()`` returns a :class:`TheoryCheck`; its table is ``brw.tables.theory_check`` and its figures
``brw.figures.theory_bounds`` and ``brw.figures.theory_residuals``. ``sims/verify_theory.py`` runs it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brw._version import __version__
from brw.results import Result

__all__ = ["theory_check", "TheoryCheck", "Measured", "measure", "theory_row", "FULL", "QUICK", "PLOTTED", "SEED"]

#: (spec, replicates) spanning mu from 0.2 to 6.5 nats; deterministic laws need one tree.
FULL = [
    ("fixed:p=0.95/0.05", 1),
    ("dirichlet:alpha=0.02,k=8", 64),
    ("fixed:p=0.7/0.3", 1),
    ("gem:theta=0.5", 64),
    ("fixed:p=0.5/0.25/0.25", 1),
    ("dirichlet:alpha=0.5,k=8", 96),
    ("gem:theta=2", 40),
    ("uniform:k=8", 1),
    ("dirichlet:alpha=0.05,k=30", 48),
    ("dirichlet:alpha=1,k=32", 32),
    ("uniform:k=400", 1),
    ("zipf:s=1.1,k=50000", 1),
]
#: A slice for continuous integration: P to 2^12, five laws, few trees.
QUICK = [
    ("fixed:p=0.7/0.3", 1),
    ("uniform:k=8", 1),
    ("dirichlet:alpha=0.5,k=8", 16),
    ("gem:theta=2", 8),
    ("zipf:s=1.1,k=50000", 1),
]
#: Laws drawn in the bounds figure (where they were checked).
PLOTTED = ["uniform:k=8", "dirichlet:alpha=0.5,k=8", "fixed:p=0.95/0.05", "zipf:s=1.1,k=50000"]
SEED = 2512
#: Replicates of a recorded trace law.
TRACE_REPLICATES = 400


@dataclass(frozen=True)
class Measured:
    """One law's simulated curve: accepted(P) for P = 1..pmax with its standard error over replicates, the
    slope fitted over the powers of two ``P`` (mean over replicates) and its standard error, and the mean depth
    of the deepest node."""

    law: object
    P: np.ndarray
    accepted: np.ndarray
    accepted_stderr: np.ndarray
    slope: float
    slope_stderr: float
    deepest: float
    replicates: int
    seconds: float


@dataclass(frozen=True)
class TheoryCheck(Result):
    """The theory check: one row per law (``laws``, JSON-ready dicts) and each law's measured curve
    (``measured``, by spec, for the figures)."""

    seed: int
    P_max: int
    laws: list
    measured: dict = field(repr=False, default_factory=dict)
    version: str = __version__

    def to_dict(self) -> dict:
        """JSON-ready: version, seed, P_max and the rows (the measured curves stay out).

        Returns
        -------
        dict
        """
        return {"version": self.version, "seed": self.seed, "P_max": self.P_max, "laws": self.laws}

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


def trace_laws(extra=()) -> list[tuple[str, int]]:
    """The bundled recorded traces that are installed, and any extra specs, each with its replicates.

    Parameters
    ----------
    extra : sequence of str, optional
        More law specs, e.g. ``trace:PATH``.

    Returns
    -------
    list of (str, int)
        (spec, replicates) pairs: the extra specs first.
    """
    from brw.traces import BUNDLED, DATA_DIR

    specs = list(extra)
    specs += [f"trace:{name}" for name, file in sorted(BUNDLED.items()) if (Path(DATA_DIR) / file).is_file()]
    return [(s, TRACE_REPLICATES) for s in specs]


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


def measure(spec: str, replicates: int, pmax: int, seed: int) -> Measured:
    """Simulate ``replicates`` trees of ``spec`` to ``pmax`` (one for a deterministic law), keeping every
    replicate's accepted(P) at the powers of two from 64 on for its slope.

    Parameters
    ----------
    spec : str
        The law.
    replicates : int
        Trees.
    pmax : int
        Largest P (a power of two >= 64).
    seed : int
        Seed of the trees.

    Returns
    -------
    Measured
    """
    from brw.frontier import frontier
    from brw.laws import parse_law

    law = parse_law(spec)
    P = 2 ** np.arange(6, int(math.log2(pmax)) + 1)
    replicates = 1 if law.deterministic else replicates
    t0 = time.perf_counter()
    fr = frontier(law, pmax, replicates, seed, keep=P)
    seconds = time.perf_counter() - t0
    slopes = np.polyfit(np.log(P), fr.replicate_values.T, 1)[0]  # one least-squares line per replicate
    many = replicates > 1
    return Measured(law, P, fr.accepted, fr.stderr if many else np.zeros(pmax), float(np.mean(slopes)),
                    float(np.std(slopes, ddof=1) / math.sqrt(replicates)) if many else 0.0,
                    float(fr.deepest.mean()), replicates, seconds)


def theory_row(m: Measured, pmax: int) -> dict:
    """One law's row: the measured slope and offsets beside every bound, as a JSON-ready dict.

    Parameters
    ----------
    m : Measured
        The law's simulated curve (``measure``).
    pmax : int
        Largest P of the curve.

    Returns
    -------
    dict
    """
    from brw import theory as T

    law, P, acc, se = m.law, m.P, m.accepted, m.accepted_stderr
    mu, mu2 = law.mu, law.mu2
    b = T.bounds(law, P)  # at the powers of two; the closed forms below at every P
    allP = np.arange(1, pmax + 1)
    asym = T.asymptotic(law, allP)
    smooth = T.smooth_asymptotic(law, allP)
    paper = T.paper_bound(law, allP)
    bad = np.nonzero(acc > paper)[0]  # P = bad + 1 where accepted exceeds the paper's bound
    first_paper = 1 if bad.size == 0 else (int(bad[-1]) + 2 if bad[-1] + 1 < pmax else None)
    window = allP >= P[0]
    span = b.lattice_span
    err = (asym - acc)[window]
    return {
        "law": str(law), "mu": mu, "mu2": mu2, "lattice_span": span, "replicates": m.replicates,
        "deterministic": bool(law.deterministic),
        "slope": m.slope, "slope_se": m.slope_stderr,
        "inv_mu": 1 / mu, "paper_slope": (mu + mu2) / mu**2,
        "asymptotic_fit_slope": fit_line(np.log(P), asym[P - 1])[0],
        "renewal_fit_slope": fit_line(np.log(P), b.renewal_bound)[0],
        "P_max": pmax, "accepted_at_max": float(acc[-1]), "accepted_se_at_max": float(se[-1]),
        "asymptotic_at_max": float(b.asymptotic[-1]), "smooth_asymptotic_at_max": float(b.smooth_asymptotic[-1]),
        "renewal_bound_at_max": float(b.renewal_bound[-1]),
        "renewal_bound_width_at_max": float(b.renewal_bound_width[-1]),
        "wald_lorden_at_max": float(b.wald_lorden_bound[-1]), "paper_at_max": float(b.paper_bound[-1]),
        "asymptotic_error_at_max": float(asym[-1] - acc[-1]),
        "asymptotic_error_range": [float(np.min(err)), float(np.max(err))],
        "smooth_plus_h_error_range": ([float(np.min((smooth + span / (2 * mu) - acc)[window])),
                                       float(np.max((smooth + span / (2 * mu) - acc)[window]))] if span else None),
        "renewal_minus_accepted": [float(v) for v in b.renewal_bound - acc[P - 1]],
        "renewal_exceeded_by_se": float(np.max((acc[P - 1] - b.renewal_bound) / np.maximum(se[P - 1], 1e-300))
                                        if not law.deterministic else 0.0),
        "accepted_above_renewal_deterministic": (float(np.max(acc[P - 1] - b.renewal_bound))
                                                 if law.deterministic else None),
        "paper_holds_from_P": first_paper, "paper_fails_at_P1": bool(acc[0] > paper[0]),
        "biggins_gamma": b.biggins_gamma,
        "biggins_theta": b.biggins_theta if math.isfinite(b.biggins_theta) else None,
        "depth_measured": m.deepest, "depth_predicted": float(b.predicted_depth[-1]),
        "simulation_seconds": m.seconds,
    }


def theory_check(*, quick: bool = False, extra_laws=(), seed: int = SEED, log=None) -> TheoryCheck:
    """Simulate every law of ``FULL`` (or ``QUICK``) and set each beside the theory.

    Parameters
    ----------
    quick : bool, optional
        The continuous-integration slice: ``QUICK`` to P = 2^12, no trace laws. Otherwise ``FULL`` to P = 2^16 and the bundled traces (minutes).
    extra_laws : sequence of str, optional
        More law specs to check (full run only), e.g. ``trace:PATH``.
    seed : int, optional
        Seed of the simulations.
    log : callable, optional
        Called with one line per law as it is done (progress).

    Returns
    -------
    TheoryCheck
    """
    pmax = 2**12 if quick else 2**16
    laws = QUICK if quick else FULL + trace_laws(extra_laws)
    rows, measured = [], {}
    for spec, reps in laws:
        m = measure(spec, reps, pmax, seed)
        measured[spec] = m
        row = theory_row(m, pmax)
        rows.append(row)
        if log is not None:
            log(f"{spec:28s} mu={row['mu']:.3f} slope={row['slope']:.4f}+-{row['slope_se']:.4f} "
                f"1/mu={row['inv_mu']:.4f} acc={row['accepted_at_max']:.3f} asym={row['asymptotic_at_max']:.3f} "
                f"ren={row['renewal_bound_at_max']:.3f} ({m.seconds:.1f}s)")
    return TheoryCheck(seed=seed, P_max=pmax, laws=rows, measured=measured)
