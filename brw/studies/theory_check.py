"""Which predictions of the theory hold? Slope and offset of accepted(P) against every bound, for many laws.

For each law: simulate the optimal frontier to PMAX (replicates in batches, so that the slope has a standard
error), fit accepted(P) = a + b log P over P = 2^6 .. PMAX (powers of two), and set the slope b beside 1/mu
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

__all__ = ["theory_check", "TheoryCheck", "FULL", "QUICK", "PLOTTED", "BATCHES", "SEED"]

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
#: Batches of replicates: the slope's standard error is the spread of the batch slopes.
BATCHES = 8
SEED = 2512
#: Replicates of a recorded trace law.
TRACE_REPLICATES = 400


@dataclass(frozen=True)
class Measured:
    """One law's simulated curve: accepted(P) for P = 1..pmax with its standard error over batches, the
    fitted slope over the powers of two ``P`` and its standard error, and the mean depth of the deepest node."""

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
class TheoryCheck:
    """The theory check: one row per law (``laws``, JSON-ready dicts) and each law's measured curve
    (``measured``, by spec, for the figures)."""

    seed: int
    P_max: int
    batches: int
    laws: list
    measured: dict = field(repr=False, default_factory=dict)
    version: str = __version__

    def to_dict(self) -> dict:
        """JSON-ready: version, seed, P_max, batches and the rows (the measured curves stay out)."""
        return {"version": self.version, "seed": self.seed, "P_max": self.P_max, "batches": self.batches,
                "laws": self.laws}

    def to_pandas(self):
        """One row per law, every column of ``laws`` (the ranges as two columns each).

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        flat = []
        for r in self.laws:
            row = {}
            for k, v in r.items():
                if isinstance(v, list) and len(v) == 2 and k.endswith("_range"):
                    row[f"{k}_low"], row[f"{k}_high"] = v
                elif not isinstance(v, list):
                    row[k] = v
            flat.append(row)
        return pd.DataFrame(flat)


def trace_laws(extra=()) -> list[tuple[str, int]]:
    """The bundled recorded traces that are installed, and any extra specs, each with its replicates."""
    from brw.traces import BUNDLED, DATA_DIR

    specs = list(extra)
    specs += [f"trace:{name}" for name, file in sorted(BUNDLED.items()) if (Path(DATA_DIR) / file).is_file()]
    return [(s, TRACE_REPLICATES) for s in specs]


def fit_line(logP: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y against log P."""
    b, a = np.polyfit(logP, y, 1)
    return float(b), float(a)


def measure(spec: str, replicates: int, pmax: int, seed: int) -> Measured:
    """Simulate ``replicates`` trees of ``spec`` to ``pmax`` in ``BATCHES`` batches (one for a deterministic law).

    Parameters
    ----------
    spec : str
        The law.
    replicates : int
        Trees in all (rounded down to a multiple of the batches).
    pmax : int
        Largest P (a power of two >= 64).
    seed : int
        Seed; batch b replays replicates b * per .. (b + 1) * per - 1.

    Returns
    -------
    Measured
    """
    from brw.frontier import frontier
    from brw.laws import parse_law

    law = parse_law(spec)
    P = 2 ** np.arange(6, int(math.log2(pmax)) + 1)
    batches = 1 if law.deterministic else min(BATCHES, replicates)
    per = replicates // batches
    curves, slopes, deepest = [], [], []
    t0 = time.perf_counter()
    for b in range(batches):
        fr = frontier(law, pmax, per, seed, first_replicate=b * per)
        curves.append(fr.accepted)
        slopes.append(fit_line(np.log(P), fr.accepted[P - 1])[0])
        deepest.append(fr.deepest.mean())
    seconds = time.perf_counter() - t0
    acc_se = np.std(curves, axis=0, ddof=1) / math.sqrt(batches) if batches > 1 else np.zeros(pmax)
    slope_se = float(np.std(slopes, ddof=1) / math.sqrt(batches)) if batches > 1 else 0.0
    return Measured(law, P, np.mean(curves, axis=0), acc_se, float(np.mean(slopes)), slope_se,
                    float(np.mean(deepest)), per * batches, seconds)


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
        The continuous-integration slice: ``QUICK`` to P = 2^12, at least ``BATCHES`` trees per random law, no
        trace laws. Otherwise ``FULL`` to P = 2^16 and the bundled traces (minutes).
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
        if quick and reps > 1:
            reps = max(reps, BATCHES)
        m = measure(spec, reps, pmax, seed)
        measured[spec] = m
        row = theory_row(m, pmax)
        rows.append(row)
        if log is not None:
            log(f"{spec:28s} mu={row['mu']:.3f} slope={row['slope']:.4f}+-{row['slope_se']:.4f} "
                f"1/mu={row['inv_mu']:.4f} acc={row['accepted_at_max']:.3f} asym={row['asymptotic_at_max']:.3f} "
                f"ren={row['renewal_bound_at_max']:.3f} ({m.seconds:.1f}s)")
    return TheoryCheck(seed=seed, P_max=pmax, batches=BATCHES, laws=rows, measured=measured)
