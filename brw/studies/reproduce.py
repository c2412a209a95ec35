"""Every figure and table of brw's findings, from the embedded data and the simulator, in one run.

``reproduce(out)`` runs ``STEPS`` in order. Each step calls the public API and the other studies (it computes
nothing of its own beyond arranging their numbers), draws its figure as PNG and SVG (``brw.figures``) and
returns a :class:`Outcome`: the figure files, a caption of two or three sentences built from its numbers, the
table behind it and those numbers. ``brw.tables.reproduce`` turns the outcomes into ``REPORT.md``; the same
numbers go to ``results.json`` beside it, so every number of the report is one of this run.

Data: the bundled traces (``trace:code|math|chat``), the bundled real optimal trees and real-drafter results
(read, never expanded), the measured cost curve, and simulation. Simulations of the frontier, the bounds and
the drafting policies go through the sweep layer (``brw.sweep``) into ``DIR/.sweep``, so a second run reuses
them. Files are made in a temporary folder inside ``DIR`` and moved into place when the run is over: an
interrupted run leaves the previous files whole (and its finished sweep points for the next run).

``quick=True`` runs every step on the smallest sizes that still draw its figure and write its caption (a few
laws, P to 128, a handful of trees, one real model, every sweep point in this process): a smoke check of every
step, not a measurement. Its budget, on two quiet cores: 60 seconds for ``brw reproduce --quick`` on a fresh
machine, Numba's first compilation of the kernels (about 17 s) and Python's imports (about 4 s) included, which
leaves about 39 s for the steps. Each step's quick mode has ``Step.budget`` seconds of them, warm (2 s unless it
says otherwise; ``results.json`` records what each took): the nine steps' budgets add up to 29 s, so three more
steps of 2 s fit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from brw._version import __version__
from brw.errors import BrwError, clip
from brw.results import Result
from brw.studies.theory_check import FIT_FROM as THEORY_FIT_FROM, FULL as THEORY_FULL
from brw.studies.temperature import AT as TEMPERATURE_AT, GENRES as TEMPERATURE_GENRES, TEMPERATURES

__all__ = ["reproduce", "Reproduction", "Outcome", "Step", "STEPS", "Settings", "FULL", "QUICK", "COST_CURVE",
           "ROOFLINE", "REPORT", "RESULTS"]

#: The measured verifier cost (SmolLM2-135M on one CPU thread, ``brw costcurve``).
COST_CURVE = Path(__file__).resolve().parent.parent / "data" / "costcurve-smollm2-cpu.txt"
#: A roofline verifier: every forward reads the weights (t1 seconds) until the compute knee.
ROOFLINE = "roofline:t1=0.02,knee=64"
#: The report and its numbers, in the output folder.
REPORT = "REPORT.md"
RESULTS = "results.json"
#: Where the sweeps keep their points, inside the output folder.
SWEEP_DIR = ".sweep"


@dataclass(frozen=True)
class Settings:
    """Sizes of one run (``FULL`` or ``QUICK``)."""

    check_laws: tuple  # laws of the theory check (the bundled traces join them)
    check_pmax: int  # the theory check's largest P
    check_replicates: int  # its trees per random law
    bound_laws: tuple  # the laws drawn beside the bounds (among the check's)
    policy_laws: tuple
    policy_log2: int  # drafting policies to P = 2^policy_log2
    policy_replicates: int
    compare_nodes: int  # simulated tree nodes per law and fold in the real-tree comparison (trees = nodes / Pmax)
    compare_min_replicates: int
    compare_folds: int
    speed_replicates: int
    bootstrap: int
    bench: dict  # keywords of brw.studies.bench.bench
    check_traces: int | None = None  # bundled traces that join the theory check (None: every one installed)
    compare_models: int | None = None  # real models compared (None: every bundled one; the default verifier first)
    sweep_workers: int | None = None  # brw.sweep's workers (None: its default; 1: every point in this process)
    traces: tuple | None = None  # bundled traces summarised (None: every one)
    temperature: dict = field(default_factory=dict)  # keywords of brw.studies.temperature.temperature_sweep
    sampled: dict = field(default_factory=dict)  # keywords of brw.studies.sampled.sampled_study


FULL = Settings(
    check_laws=tuple(THEORY_FULL), check_pmax=2**13, check_replicates=48,
    bound_laws=("dirichlet:alpha=0.5,k=8", "zipf:s=1.1,k=50000", "trace:code", "trace:chat"),
    policy_laws=("trace:code", "trace:chat"), policy_log2=8, policy_replicates=400,
    compare_nodes=256 * 256, compare_min_replicates=64, compare_folds=4, speed_replicates=400, bootstrap=1000,
    bench=dict(pmax=20_000, replicates=4, reference_nodes=2_000, repeats=2),
    temperature=dict(genres=TEMPERATURE_GENRES, temperatures=TEMPERATURES, at=TEMPERATURE_AT, replicates=2000),
    sampled=dict(replicates=200))
#: A smoke check of every step: a deterministic, a random and a recorded law (the cheapest of each kind), P to
#: 128 (the theory check's least: twice the P where its slope fit starts), a few trees, one real model in sample
#: and its three traces, every sweep point in this process (no worker processes, each of which would compile
#: the kernels afresh).
QUICK = Settings(
    check_laws=("fixed:p=0.7/0.3", "gem:theta=2", "trace:code"), check_pmax=2 * THEORY_FIT_FROM,
    check_replicates=4,
    bound_laws=("gem:theta=2", "trace:code"),
    policy_laws=("trace:code",), policy_log2=4, policy_replicates=8,
    compare_nodes=4 * 256, compare_min_replicates=4, compare_folds=1, speed_replicates=8, bootstrap=50,
    bench=dict(pmax=200, replicates=2, reference_nodes=50, repeats=1), check_traces=0, compare_models=1,
    sweep_workers=1, traces=("code", "math", "chat"),
    temperature=dict(genres=("code",), temperatures=(0.5, 1.0), at=(16, 64), replicates=32, prefix=False),
    sampled=dict(laws=("trace:code",), drafters=("sigma=0.5", "sigma=2"), at=(4, 16), replicates=8, nodes=500))
#: Drafting policies scored on the simulated trees (figure of policies; the two Sequoia trees for Sequoia's).
POLICIES = ("chain", "chains:k=4", "kary:k=2", "medusa", "sequoia", "sequoia:depth=6", "specexec:sigma=1",
            "eagle2:k=4,d=6,sigma=1")
SEED = 0


@dataclass(frozen=True)
class Outcome:
    """What one step produced.

    Attributes
    ----------
    figures : list of str
        Figure files, relative to the output folder (PNG first, then SVG).
    caption : str
        Two or three sentences stating what the figure shows, every number from ``numbers``.
    columns : list of str
        The table's column headers.
    formats : list of str
        Each column's format (a ``format`` spec, e.g. ``.3f``; ``s`` for text), or one such list per row.
    rows : list of list
        The table's rows (raw values; None prints as a dash).
    numbers : dict
        The numbers the caption quotes, by name.
    notes : list of str
        Anything the reader should know that is not a number (data left out, say).
    """

    figures: list
    caption: str
    columns: list
    formats: list
    rows: list
    numbers: dict
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"figures": list(self.figures), "caption": self.caption, "columns": list(self.columns),
                "formats": list(self.formats), "rows": _plain(self.rows), "numbers": _plain(self.numbers),
                "notes": list(self.notes)}


@dataclass(frozen=True)
class Step:
    """One figure of the report: its file stem, its title, the function that makes it and the seconds its quick
    mode may take (warm, on two quiet cores; see the module docstring)."""

    name: str
    title: str
    run: Callable
    budget: float = 2.0


@dataclass(frozen=True)
class Reproduction(Result):
    """A finished run: each step's outcome (``steps``: dicts with number, name, title, seconds and the outcome's
    keys) and what each sweep computed and reused (``sweeps``: name -> points, computed, reused)."""

    out: str
    quick: bool
    seconds: float
    steps: list
    sweeps: dict = field(default_factory=dict)
    version: str = __version__

    def to_dict(self) -> dict:
        """JSON-ready: what ``results.json`` holds and ``brw reproduce --json`` prints.

        Returns
        -------
        dict
        """
        return {"version": self.version, "out": self.out, "quick": self.quick, "seconds": self.seconds,
                "report": str(Path(self.out) / REPORT), "sweeps": self.sweeps, "steps": self.steps}

    def _tidy(self) -> dict:
        """Columns: step, title, seconds, figures (one row per step)."""
        return {"step": [s["name"] for s in self.steps], "title": [s["title"] for s in self.steps],
                "seconds": [s["seconds"] for s in self.steps],
                "figures": [" ".join(s["figures"]) for s in self.steps]}


def _plain(obj):
    """numpy numbers as Python numbers, NaN and infinities as None, recursively."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class _Run:
    """What the steps share: sizes, where figures go, where sweeps keep their points, and results that two
    steps read (a sweep's table)."""

    def __init__(self, settings: Settings, tmp: Path, sweeps: Path):
        self.s = settings
        self.tmp = tmp
        self.sweeps = sweeps
        self.cache: dict = {}
        self.sweep_counts: dict = {}

    def paths(self, stem: str) -> list[str]:
        return [str(self.tmp / f"{stem}.png"), str(self.tmp / f"{stem}.svg")]

    def sweep(self, name: str, **grid):
        """A sweep into ``DIR/.sweep/NAME`` (resumable), its table kept for the other steps."""
        if name not in self.cache:
            from brw.sweeps import sweep

            df = sweep(out=self.sweeps / name, workers=self.s.sweep_workers, **grid)
            failed = df.attrs["sweep"]["failed"]
            if failed:
                raise BrwError(f"{len(failed)} sweep points failed, e.g. {failed[0]['law']}: {failed[0]['error']}")
            self.cache[name] = df
            self.sweep_counts[name] = {k: df.attrs["sweep"][k] for k in ("points", "computed", "reused")}
        return self.cache[name]

    def theory_check(self):
        """The theory check (``brw.studies.theory_check``) of the run's laws, its sweep in ``DIR/.sweep``."""
        if "theory_check" not in self.cache:
            from brw.studies.theory_check import theory_check, trace_laws

            s = self.s
            folder = self.sweeps / "theory_check"
            check = theory_check(laws=list(s.check_laws) + trace_laws()[:s.check_traces], P_max=s.check_pmax,
                                 replicates=s.check_replicates, out=folder, workers=s.sweep_workers)
            self.cache["theory_check"] = check
            stats = check.table.attrs.get("sweep", {})
            self.sweep_counts["theory_check"] = {k: stats.get(k) for k in ("points", "computed", "reused")}
        return self.cache["theory_check"]

    @staticmethod
    def bound_curves(law, P) -> dict:
        """Every bound of ``brw.theory.BOUND_KEYS`` at ``P`` (each from its own function: no depth prediction)."""
        from brw import theory

        return {"paper_bound": theory.paper_bound(law, P), "wald_lorden_bound": theory.wald_lorden_bound(law, P),
                "renewal_bound": theory.renewal_bound(law, P), "asymptotic": theory.asymptotic(law, P)}

    def comparisons(self) -> list:
        """Real optimal trees against every model (``brw.studies.compare``), once per real model on its deepest
        bundled real trees: (Comparison, name of those trees) pairs, the default verifier's first. Not a sweep:
        it runs whole every time."""
        if "comparisons" not in self.cache:
            from brw.real.realtree import BUNDLED, load_realtrees
            from brw.studies.compare import compare

            deepest = {}  # model -> (name, pmax)
            for n, p in BUNDLED.items():
                if Path(p).is_file():
                    res = load_realtrees(n)
                    if res.temperature != 1.0:  # trees at other temperatures: the temperature step
                        continue
                    model = res.meta.get("model")
                    if model not in deepest or res.pmax > deepest[model][1]:
                        deepest[model] = (n, res.pmax)
            if not deepest:
                raise BrwError("no bundled real-tree results are installed")
            s = self.s
            self.cache["comparisons"] = [
                (compare(n, replicates=max(s.compare_min_replicates, s.compare_nodes // pmax), seed=SEED,
                         folds=s.compare_folds), n) for n, pmax in list(deepest.values())[:s.compare_models]]
        return self.cache["comparisons"]

    def policy_table(self):
        s = self.s
        return self.sweep("policies", kind="policies", laws=list(s.policy_laws),
                          P=[2**i for i in range(s.policy_log2 + 1)], replicates=s.policy_replicates, seed=SEED,
                          policies=list(POLICIES))


# --------------------------------------------------------------------------------------------------------
# 1. accepted(P) beside every bound


def _bounds(run: _Run) -> Outcome:
    from brw import figures

    check = run.theory_check()
    curves, rows = [], []
    for spec in run.s.bound_laws:
        m = check.measured[spec]
        r = next(r for r in check.laws if r["law"] == spec)
        two = np.flatnonzero((m.P & (m.P - 1)) == 0)  # the powers of two of the sweep's grid: the points drawn
        grid = m.P[np.unique(np.r_[np.round(np.geomspace(1, m.P.size, 40)).astype(np.int64) - 1, m.P.size - 1])]
        curves.append({"law": spec, "mu": m.law.mu, "mu2": m.law.mu2, "P": m.P[two], "accepted": m.accepted[two],
                       "stderr": m.accepted_stderr[two], "trees": m.replicates, "grid": grid,
                       **run.bound_curves(m.law, grid)})
        rows.append([spec, r["mu"], r["mu2"], r["accepted_at_max"], r["accepted_se_at_max"], r["asymptotic_at_max"],
                     r["renewal_bound_at_max"], r["wald_lorden_at_max"], r["paper_at_max"],
                     r["paper_at_max"] / r["accepted_at_max"]])
    pmax = check.P_max
    paths = figures.accepted_bounds(curves, run.paths("accepted"))
    every = [r for r in check.laws if r["P_max"] == pmax]
    ratio = [r["paper_at_max"] / r["accepted_at_max"] for r in every]
    first = rows[0]
    numbers = {"P_max": pmax, "laws": len(every), "paper_ratio_low": min(ratio), "paper_ratio_high": max(ratio),
               "renewal_exceeded_se_max": max(r["renewal_exceeded_by_se"] for r in every),
               "first_law": first[0], "first_accepted": first[3], "first_stderr": first[4],
               "first_asymptotic": first[5], "first_renewal": first[6], "trees": check.replicates}
    caption = (f"Simulated accepted(P) (points: the mean of {numbers['trees']} trees, bars: 2 standard errors) "
               f"follows the renewal bound and the sharp asymptotic for parametric and recorded laws alike: at "
               f"P = {pmax}, {numbers['first_law']} accepts {numbers['first_accepted']:.3f} +- "
               f"{numbers['first_stderr']:.3f} tokens against a renewal bound of {numbers['first_renewal']:.3f} and "
               f"an asymptotic {numbers['first_asymptotic']:.3f}; over all {numbers['laws']} laws of the check the "
               f"simulation never exceeds the renewal bound by more than {numbers['renewal_exceeded_se_max']:.1f} "
               f"standard errors. The paper's bound (mu + mu2) log P / mu^2 holds but is "
               f"{numbers['paper_ratio_low']:.1f} to {numbers['paper_ratio_high']:.1f} times the measured value at "
               f"P = {pmax}.")
    return Outcome(_rel(paths, run), caption,
                   ["law", "mu (nats)", "mu2", f"accepted at P = {pmax}", "+- se", "sharp asymptotic",
                    "renewal bound", "Wald-Lorden", "paper's bound", "paper / accepted"],
                   ["s", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".2f"], rows, numbers)


# --------------------------------------------------------------------------------------------------------
# 2. the slope against 1/mu and against the paper's slope


def _slopes(run: _Run) -> Outcome:
    from brw import figures

    check = run.theory_check()
    laws = check.laws
    paths = figures.slopes(laws, run.paths("slopes"))
    rows = []
    for r in laws:
        z = (r["slope"] - r["renewal_fit_slope"]) / r["slope_se"] if r["slope_se"] else None
        rows.append([r["law"], r["mu"], r["mu2"], r["slope"], r["slope_se"] if r["slope_se"] else None,
                     r["inv_mu"], r["slope"] / r["inv_mu"] - 1, r["renewal_fit_slope"], z, r["paper_slope"],
                     r["paper_slope"] / r["slope"], "yes" if r["lattice_span"] else "no"])
    smooth = [r for r in rows if r[11] == "no"]
    lattice = [r for r in rows if r[11] == "yes"]
    worst = max(smooth, key=lambda r: abs(r[6]))
    z = [abs(r[8]) for r in rows if r[8] is not None]
    exact = [abs(r[3] - r[7]) for r in rows if r[8] is None]  # deterministic laws: one tree, no standard error
    ratio = [r[10] for r in rows]
    mus = [r[1] for r in rows]
    numbers = {"laws": len(rows), "P_low": 64, "P_high": check.P_max, "mu_low": min(mus), "mu_high": max(mus),
               "smooth_laws": len(smooth), "inverse_mu_gap_median": float(np.median([abs(r[6]) for r in smooth])),
               "inverse_mu_gap_max": abs(worst[6]), "inverse_mu_gap_law": worst[0],
               "renewal_within_2se": sum(v <= 2 for v in z), "random_laws": len(z),
               "deterministic_laws": len(exact), "deterministic_gap_max": max(exact, default=None),
               "lattice_laws": len(lattice), "lattice_gap_max": max((abs(r[6]) for r in lattice), default=None),
               "paper_ratio_low": min(ratio), "paper_ratio_high": max(ratio), "trees": check.replicates}
    deterministic = (f" and for the {numbers['deterministic_laws']} deterministic ones to "
                     f"{numbers['deterministic_gap_max']:.4f}" if exact else "")
    lattice_text = (f" Lattice laws ({numbers['lattice_laws']}) fill whole levels: their accepted(P) is log-periodic "
                    f"and the fitted slope is up to {numbers['lattice_gap_max']:.1%} off 1/mu." if lattice else "")
    caption = (f"Over P = {numbers['P_low']} .. {numbers['P_high']} the measured slope of accepted(P) against log P is "
               f"the renewal bound's own slope, for {numbers['renewal_within_2se']} of the "
               f"{numbers['random_laws']} random laws within 2 standard errors ({numbers['trees']} trees each)"
               f"{deterministic}; for the {numbers['smooth_laws']} non-lattice laws (mu {numbers['mu_low']:.2f} to "
               f"{numbers['mu_high']:.2f} nats over all {numbers['laws']}) it is "
               f"{numbers['inverse_mu_gap_median']:.1%} from 1/mu at the median, at most "
               f"{numbers['inverse_mu_gap_max']:.1%} ({numbers['inverse_mu_gap_law']}). The paper's (mu + mu2)/mu^2 "
               f"is {numbers['paper_ratio_low']:.1f} to {numbers['paper_ratio_high']:.1f} times the measured slope."
               f"{lattice_text}")
    return Outcome(_rel(paths, run), caption,
                   ["#", "law", "mu (nats)", "mu2", "slope", "+- se", "1/mu", "slope mu - 1", "renewal bound's slope",
                    "(slope - renewal) / se", "paper's (mu+mu2)/mu^2", "paper / slope", "lattice"],
                   ["d", "s", ".3f", ".3f", ".4f", ".4f", ".4f", "+.2%", ".4f", "+.1f", ".3f", ".2f", "s"],
                   [[i + 1, *r] for i, r in enumerate(rows)], numbers)


# --------------------------------------------------------------------------------------------------------
# 3. the recorded traces


def _traces(run: _Run) -> Outcome:
    from brw import figures
    from brw.trace_summary import trace_summary
    from brw.traces import BUNDLED, load_trace

    summaries, rows = {}, []
    for name in BUNDLED if run.s.traces is None else run.s.traces:
        trace = load_trace(name)
        d = trace_summary(trace, bootstrap=run.s.bootstrap, seed=SEED)
        summaries[name] = (d, trace.entropy)
        rows.append([name, _model(d["model"]), d["positions"], d["contexts"], d["mu"], d["mu_ci"][0], d["mu_ci"][1],
                     d["mu2"], d["mu2_ci"][0], d["mu2_ci"][1], d["mu2"] / d["mu"] ** 2, d["top1_above_0_9"]])
    paths = figures.traces(summaries, run.paths("traces"))
    hi = max(rows, key=lambda r: r[4])
    lo = min(rows, key=lambda r: r[4])
    heavy = [r[10] for r in rows]
    numbers = {"high_genre": hi[0], "high_mu": hi[4], "high_mu_low": hi[5], "high_mu_high": hi[6],
               "low_genre": lo[0], "low_mu": lo[4], "low_mu_low": lo[5], "low_mu_high": lo[6],
               "tail_low": min(heavy), "tail_high": max(heavy), "confident_low": min(r[11] for r in rows),
               "confident_high": max(r[11] for r in rows), "model": " and ".join(dict.fromkeys(r[1] for r in rows)),
               "ci_level": d["ci_level"], "confident_above": 0.9}
    caption = (f"Of the verifiers ({numbers['model']}), the least certain is on {numbers['high_genre']}: mu = "
               f"{numbers['high_mu']:.3f} nats ({numbers['ci_level']:.0%} interval {numbers['high_mu_low']:.3f} .. "
               f"{numbers['high_mu_high']:.3f}, bootstrap over contexts) against {numbers['low_mu']:.3f} "
               f"({numbers['low_mu_low']:.3f} .. {numbers['low_mu_high']:.3f}) on {numbers['low_genre']}. Its "
               f"steps are heavy-tailed, mu2/mu^2 = {numbers['tail_low']:.2f} to {numbers['tail_high']:.2f}, and "
               f"the entropy is bimodal: {_span(numbers['confident_low'], numbers['confident_high'], '.0%')} of "
               f"positions put more than {numbers['confident_above']:g} on one token.")
    return Outcome(_rel(paths, run), caption,
                   ["genre", "model", "positions", "contexts", "mu (nats)", "95% low", "95% high", "mu2",
                    "95% low", "95% high", "mu2 / mu^2", "share top-1 > 0.9"],
                   ["s", "s", "d", "d", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".2f", ".1%"], rows, numbers)


# --------------------------------------------------------------------------------------------------------
# 4. real optimal trees against every model, out of sample


def _real(run: _Run) -> Outcome:
    from brw import figures

    paths, rows, formats, per = [], [], [], {}
    for i, (c, name) in enumerate(run.comparisons()):
        paths += figures.compare(c, run.paths("real" if i == 0 else f"real-{name}"))
        r, f, per[name] = _real_numbers(c, name)
        rows += r
        formats += f
    first, *others = per.values()
    sample = (f"out of sample ({first['folds']}-fold over recorded generations: each law is fitted without the "
              "contexts it predicts)" if first["folds"] > 1 else "in sample")
    caption = (f"Over {first['contexts']} real contexts of {first['model']} the real optimal tree accepts "
               f"{first['real_top']:.2f} +- {first['real_top_stderr']:.2f} tokens at P = {first['P_top']}; the renewal "
               f"bound, rigorous for independent steps with the traces' laws, is {first['renewal_short']:.0%} below "
               f"it: real trees run deeper than any i.i.d. tree. Scored {sample}, the best simulator, "
               f"{first['best']}, is off by {first['best_error']:.1%} on average over P and at most "
               f"{first['best_worst_error']:.1%} (the i.i.d. empirical law {first['empirical_error']:.1%} on average); "
               f"against the root-adjusted real curve (the luck of which roots were drawn taken out) the best, "
               f"{first['best_adjusted']}, is off by {first['best_adjusted_error']:.1%} on average and at most "
               f"{first['best_adjusted_worst_error']:.1%} over P (95% intervals within "
               f"+-{first['best_adjusted_worst_end']:.1%}).")
    for o in others:
        caption += (f" On {o['model']} ({o['contexts']} contexts, P <= {o['pmax']}) the renewal bound is "
                    f"{o['renewal_short']:.0%} below the real curve at P = {o['P_top']}, the best simulator, "
                    f"{o['best']}, is off by {o['best_error']:.1%} on average and at most {o['best_worst_error']:.1%} "
                    f"(the i.i.d. empirical law {o['empirical_error']:.1%}); against the root-adjusted real curve, "
                    f"{o['best_adjusted']} by {o['best_adjusted_error']:.1%} and at most "
                    f"{o['best_adjusted_worst_error']:.1%} over P.")
    P = max((n["P"] for n in per.values()), key=len)  # every model's P are the first of the same table's
    notes = [f"Real trees: the bundled `{name}` results of {n['model']} (P <= {n['pmax']}), read, not expanded; "
             f"simulations: {n['replicates']} trees per law and fold." for name, n in per.items()]
    notes.append("Relative errors (prediction - real) / real with their 95% intervals, from the prediction's "
                 "standard error (each fold's simulations from its own spawned stream) and the real curve's; the "
                 "row 'real accepted' holds the real mean over contexts itself, 'worst end' the largest |end| of the "
                 "intervals over P. A model whose trees stop at a smaller P leaves the last columns empty.")
    notes.append("Adjusted: the mean over contexts corrected by regression on each root's recorded top "
                 "probability, top-4 mass and entropy and on its greedy continuation's (the text where it took its "
                 "top token, then the recorded greedy branches: what the greedy chain of 8 tokens accepts and its "
                 "mean entropy), whose means over every answer position of the held-out generations the trace "
                 "knows (control variates, `brw.real.realtree.root_adjusted_mean`); it removes the luck of which "
                 "positions were drawn, not any model's error.")
    wide = len(P) + 6  # verifier, genre, prediction, one column per P, mean, worst and worst end
    rows = [r[:-3] + [None] * (wide - len(r)) + r[-3:] for r in rows]
    formats = [f[:-3] + ["s"] * (wide - len(f)) + f[-3:] for f in formats]
    return Outcome(_rel(paths, run), caption,
                   ["verifier", "genre", "prediction", *(f"P = {p}" for p in P), "mean abs", "worst abs",
                    "worst end"], formats, rows, {**first, "models": per, "interval": 0.95}, notes=notes)


def _real_numbers(c, name: str) -> tuple[list, list, dict]:
    """One real model's comparison: its table rows, their formats and its numbers."""
    from brw.studies.compare import MODELS, SIMULATORS

    rows, formats = [], []
    d = c.to_dict(curves=False)
    P, model = d["P"], _model(c.model)
    def errors(r):
        return [*(f"{e:+.0%} [{lo * 100:+.0f}, {hi * 100:+.0f}]" for e, lo, hi in zip(
            r["relative_error"], r["relative_error_low"], r["relative_error_high"])),
            r["mean_abs_relative_error"], r["max_abs_relative_error"], r["max_abs_interval_end"]]

    for genre, g in d["genres"].items():
        rows.append([model, genre, "real accepted (tokens)", *g["real"], None, None, None])
        formats.append(["s", "s", "s", *([".2f"] * len(P)), "s", "s", "s"])
        for m, label in MODELS.items():
            rows.append([model, genre, label, *errors(g["models"][m])])
            formats.append(["s", "s", "s", *(["s"] * len(P)), ".1%", ".1%", ".1%"])
        rows.append([model, genre, "real, adjusted (tokens)", *g["real_adjusted"], None, None, None])
        formats.append(["s", "s", "s", *([".2f"] * len(P)), "s", "s", "s"])
        for m in SIMULATORS:
            rows.append([model, genre, f"{MODELS[m]}, against it", *errors(g["models"][m]["adjusted"])])
            formats.append(["s", "s", "s", *(["s"] * len(P)), ".1%", ".1%", ".1%"])
    every = d["genres"]["all"] if "all" in d["genres"] else next(iter(d["genres"].values()))
    err = {m: every["models"][m]["mean_abs_relative_error"] for m in SIMULATORS}
    best = min(err, key=err.get)
    adj = {m: every["models"][m]["adjusted"]["mean_abs_relative_error"] for m in SIMULATORS}
    best_adj = min(adj, key=adj.get)
    real_top = every["real"][-1]
    renewal_top = every["models"]["renewal_bound"]["accepted"][-1]
    numbers = {"model": model, "pmax": c.pmax, "P": P, "contexts": every["contexts"], "folds": c.folds,
               "results": name, "best": MODELS[best].split(": ")[-1], "best_error": err[best],
               "best_worst_error": every["models"][best]["max_abs_relative_error"],
               "empirical_error": err["empirical"], "real_top": real_top,
               "real_top_stderr": every["real_stderr"][-1], "renewal_top": renewal_top,
               "renewal_short": 1 - renewal_top / real_top, "P_top": P[-1],
               "best_top_error": every["models"][best]["relative_error"][-1], "replicates": c.replicates,
               "best_adjusted": MODELS[best_adj].split(": ")[-1], "best_adjusted_error": adj[best_adj],
               "best_adjusted_worst_error": every["models"][best_adj]["adjusted"]["max_abs_relative_error"],
               "best_adjusted_worst_end": every["models"][best_adj]["adjusted"]["max_abs_interval_end"],
               "errors": {genre: {m: [g["models"][m][k] for k in ("relative_error", "relative_error_low",
                                                                  "relative_error_high")]
                                  for m in MODELS} for genre, g in d["genres"].items()},
               "adjusted_errors": {genre: {m: [g["models"][m]["adjusted"][k]
                                               for k in ("relative_error", "relative_error_low", "relative_error_high")]
                                           for m in SIMULATORS} for genre, g in d["genres"].items()}}
    return rows, formats, numbers


# --------------------------------------------------------------------------------------------------------
# 5. where the real trees' extra depth comes from


def _gap(run: _Run) -> Outcome:
    from brw import figures
    from brw.real.realtree import load_realtrees, node_statistics

    paths, rows, per, notes = [], [], {}, []
    for i, (c, name) in enumerate(run.comparisons()):
        nodes = node_statistics(load_realtrees(name))
        paths += figures.depth_gap(c, nodes, run.paths("extra_depth" if i == 0 else f"extra_depth-{name}"))
        model = _model(c.model)
        top = []
        genres = [g for g in c.genres if g != "all"] + (["all"] if "all" in c.genres else [])
        for genre in genres:
            dec = c.genres[genre].decomposition(c.P)
            st = nodes.get(genre, {})
            for j, p in enumerate(c.P):
                rows.append([model, genre, p, dec["gap"][j], dec["contexts"][j], dec["runs"][j],
                             dec["unexplained"][j], dec["contexts_share"][j], dec["runs_share"][j],
                             dec["unexplained_share"][j], dec["paths_share"][j], dec["edges_share"][j],
                             dec["prefixes_share"][j], st.get("parent_child_entropy_correlation"),
                             st.get("within_tree_correlation"), st.get("between_tree_share")])
            top.append(rows[-1])
        every = top[-1]  # "all" when there are genres to pool
        per[name] = {"model": model, "P_top": c.P[-1], "genre": every[1], "gap": every[3],
                     "contexts_share": every[7], "runs_share": every[8], "unexplained_share": every[9],
                     "paths_share": every[10], "edges_share": every[11], "prefixes_share": every[12],
                     "gap_low": min(r[3] for r in top), "gap_high": max(r[3] for r in top), "results": name}
        if not any(st.get("nodes") for st in nodes.values()):
            notes.append(f"The bundled `{name}` trees carry no per-node statistics (an older file): the right "
                         "panel and the correlation columns stay empty.")
    first, *others = per.values()

    def shares(n: dict) -> str:
        return (f"laws that keep each tree in its own recorded context explain {n['contexts_share']:.0%}, greedy "
                f"runs (a child of its parent's most probable token drawn after as long a run of top tokens in the "
                f"recorded text) another {n['runs_share']:.0%}, and {n['unexplained_share']:.0%} is left unexplained "
                f"(instead of runs, following the recorded text along paths: {n['paths_share']:.0%}; drawing each "
                f"node after a token as surprising as its edge: {n['edges_share']:.0%}; taking the recorded row of "
                f"each recorded prefix, the sampled text and the model's greedy branches: {n['prefixes_share']:.0%})")

    caption = (f"At P = {first['P_top']} the real optimal trees of {first['model']} accept {first['gap']:.2f} tokens "
               f"per step more than the i.i.d. walk of the traces' laws "
               f"({'every genre pooled' if first['genre'] == 'all' else first['genre']}; "
               f"{_span(first['gap_low'], first['gap_high'], '.2f')} across genres). Of that gap, {shares(first)}.")
    for o in others:
        caption += (f" On {o['model']} at P = {o['P_top']} the gap is {o['gap']:.2f} tokens "
                    f"({_span(o['gap_low'], o['gap_high'], '.2f')} across genres): {shares(o)}.")
    return Outcome(_rel(paths, run), caption,
                   ["verifier", "genre", "P", "gap (real - i.i.d.)", "contexts", "runs", "unexplained",
                    "contexts share", "runs share", "unexplained share", "paths share", "edges share",
                    "prefixes share", "parent-child entropy corr.", "within trees", "between-tree share"],
                   ["s", "s", "d", "+.3f", "+.3f", "+.3f", "+.3f", "+.0%", "+.0%", "+.0%", "+.0%", "+.0%", "+.0%",
                    ".3f", ".3f", ".3f"],
                   rows,
                   {**first, "models": per}, notes)


# --------------------------------------------------------------------------------------------------------
# 6. drafting policies and a real drafter against the speed of light


def _policies(run: _Run) -> Outcome:
    from brw import figures
    from brw.real.realdrafter import BUNDLED_RESULTS, load_real_drafter

    df = run.policy_table()
    pmax = 2**run.s.policy_log2
    sim = {}
    for law, g in df.groupby("law", sort=False):
        sim[law] = {pol: gp.sort_values("P") for pol, gp in g.groupby("policy", sort=False)}
    real = load_real_drafter(BUNDLED_RESULTS)
    rd = real.to_dict(at=[2**i for i in range(int(math.log2(real.pmax)) + 1)])
    paths = figures.policies(sim, rd, run.paths("policies"))
    rows = []
    for law, pols in sim.items():
        for pol, g in pols.items():
            top = g[g.P == pmax].iloc[0]
            front = top.accepted + top.gap
            rows.append([law, pol, pmax, float(front), float(top.accepted), float(top.gap), float(top.gap_stderr),
                         float(top.accepted / front)])
    for dr in rd["drafters"]:
        rows.append([f"real, {_model(rd['model'])}", f"early exit after layer {dr['layers']}", rd["P"][-1],
                     rd["optimal"][-1], dr["accepted"][-1], dr["gap"][-1], dr["gap_stderr"][-1],
                     dr["accepted"][-1] / rd["optimal"][-1]])
    simrows = [r for r in rows if not r[0].startswith("real")]
    realrows = [r for r in rows if r[0].startswith("real")]
    best = max(simrows, key=lambda r: r[7])
    worst = min(simrows, key=lambda r: r[7])
    numbers = {"pmax": pmax, "best_policy": best[1], "best_law": best[0], "best_share": best[7], "best_gap": best[5],
               "best_gap_se": best[6], "worst_policy": worst[1], "worst_law": worst[0], "worst_share": worst[7],
               "real_pmax": rd["P"][-1], "real_optimal": rd["optimal"][-1], "real_contexts": rd["contexts"],
               "real_share_low": min(r[7] for r in realrows), "real_share_high": max(r[7] for r in realrows),
               "real_gap_low": min(r[5] for r in realrows), "real_gap_high": max(r[5] for r in realrows),
               "replicates": run.s.policy_replicates}
    caption = (f"On the simulator's trees ({numbers['replicates']} per law, every gap paired on the same trees) the "
               f"best policy at P = {pmax}, {numbers['best_policy']} on {numbers['best_law']}, keeps "
               f"{numbers['best_share']:.0%} of the speed of light (gap {numbers['best_gap']:.3f} +- "
               f"{numbers['best_gap_se']:.3f}); {numbers['worst_policy']} on {numbers['worst_law']} keeps only "
               f"{numbers['worst_share']:.0%}. The real early-exit drafters keep {numbers['real_share_low']:.0%} to "
               f"{numbers['real_share_high']:.0%} of the real optimal tree's {numbers['real_optimal']:.2f} accepted "
               f"tokens at P = {numbers['real_pmax']} over {numbers['real_contexts']} contexts (gaps "
               f"{numbers['real_gap_low']:.2f} to {numbers['real_gap_high']:.2f}).")
    return Outcome(_rel(paths, run), caption,
                   ["law", "policy", "P", "speed of light", "accepted", "gap", "+- se (paired)", "share kept"],
                   ["s", "s", "d", ".3f", ".3f", ".3f", ".3f", ".0%"], rows, numbers)


# --------------------------------------------------------------------------------------------------------
# 7. Sequoia's optimum against the frontier


def _sequoia(run: _Run) -> Outcome:
    from brw import figures
    from brw.drafting import rank_accuracy
    from brw.sequoia import best_first, sequoia_tree

    df = run.policy_table()
    pmax = 2**run.s.policy_log2
    panels, rows = {}, []
    for law, g in df.groupby("law", sort=False):
        vec = rank_accuracy(law, seed=SEED)
        curves = {}
        for pol in ("sequoia", "sequoia:depth=6"):
            gp = g[g.policy == pol].sort_values("P")
            curves[pol] = (gp.P.to_numpy(), gp.accepted.to_numpy() + 1, gp.stderr.to_numpy(),
                           gp.gap.to_numpy(), gp.gap_stderr.to_numpy())
            front = (gp.P.to_numpy(), (gp.accepted + gp.gap).to_numpy() + 1)
        own = {None: sequoia_tree(vec, pmax + 1).curve, 6: sequoia_tree(vec, pmax + 1, 6).curve}
        bf = best_first(vec, pmax + 1)
        panels[law] = {"frontier": front, "policies": curves, "own": own, "best_first": bf}
        for pol, (P, tps, _, gap, gse) in curves.items():
            depth = 6 if "depth" in pol else None
            for p in (P[P >= 4]):
                i = int(np.flatnonzero(P == p)[0])
                rows.append([law, pol, int(p), float(front[1][i]), float(tps[i]), float(curves[pol][2][i]),
                             float(gap[i]), float(gse[i]), float(own[depth][p]),
                             float((own[depth][p] - tps[i]) / curves[pol][2][i])])
    paths = figures.sequoia(panels, run.paths("sequoia"))
    top = [r for r in rows if r[2] == pmax and r[1] == "sequoia"]
    deep = [r for r in rows if r[2] == pmax and r[1] == "sequoia:depth=6"]
    z = [abs(r[9]) for r in rows]
    numbers = {"pmax": pmax, "gap_low": min(r[6] for r in top), "gap_high": max(r[6] for r in top),
               "depth_gap_low": min(r[6] for r in deep), "depth_gap_high": max(r[6] for r in deep),
               "share_low": min(r[4] / r[3] for r in top), "share_high": max(r[4] / r[3] for r in top),
               "own_se_max": max(z), "front_low": min(r[3] for r in top), "front_high": max(r[3] for r in top)}
    caption = (f"Sequoia's dynamic program, fed the positional acceptance vector measured on the same law, builds a "
               f"static tree {_span(numbers['gap_low'], numbers['gap_high'], '.2f')} tokens per step short of the "
               f"frontier's {_span(numbers['front_low'], numbers['front_high'], '.2f')} at P = {pmax} on the recorded "
               f"laws (it keeps {_span(numbers['share_low'], numbers['share_high'], '.0%')} of the tokens per step; "
               f"{_span(numbers['depth_gap_low'], numbers['depth_gap_high'], '.2f')} short with 6 levels). Its own "
               f"positional model predicts what that tree accepts on the law's trees to within "
               f"{numbers['own_se_max']:.1f} standard errors (for independent steps it is exact in expectation): "
               "the loss is the static shape, which cannot follow where each tree's mass lies.")
    return Outcome(_rel(paths, run), caption,
                   ["law", "Sequoia tree", "P", "frontier (tokens/step)", "Sequoia on the law's trees", "+- se",
                    "gap", "+- se (paired)", "Sequoia's own prediction", "(prediction - actual) / se"],
                   ["s", "s", "d", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", "+.1f"], rows, numbers)


# --------------------------------------------------------------------------------------------------------
# 8. tokens per second against P


def _speed(run: _Run) -> Outcome:
    from brw import figures
    from brw.speedup import speedup

    if not COST_CURVE.is_file():
        raise BrwError(f"the measured cost curve {COST_CURVE} is missing from this installation")
    results, rows = [], []
    for label, cost in (("measured: SmolLM2-135M on 1 CPU thread", str(COST_CURVE)), ("roofline", ROOFLINE)):
        for law in run.s.policy_laws:
            r = speedup(law, cost, None, run.s.speed_replicates, SEED)
            results.append((label, r))
            d = r.to_dict()
            rows.append([label, law, d["optimal_P"], d["tokens_per_second"] / d["plain_tokens_per_second"],
                         d["tokens_per_second_stderr"] / d["plain_tokens_per_second"], d["speedup"],
                         d["accepted"], d["pmax"]])
    paths = figures.speedups(results, run.paths("speedup"))
    cpu = [r for r in rows if r[0].startswith("measured")]
    roof = [r for r in rows if r[0] == "roofline"]
    numbers = {"cpu_P_low": min(r[2] for r in cpu), "cpu_P_high": max(r[2] for r in cpu),
               "cpu_speedup_low": min(r[5] for r in cpu), "cpu_speedup_high": max(r[5] for r in cpu),
               "roof_P_low": min(r[2] for r in roof), "roof_P_high": max(r[2] for r in roof),
               "roof_speedup_low": min(r[5] for r in roof), "roof_speedup_high": max(r[5] for r in roof),
               "roofline": ROOFLINE, "replicates": run.s.speed_replicates}
    caption = (f"With the measured CPU cost the verifier is compute-bound almost at once and the speed of light sits "
               f"at P = {_span(numbers['cpu_P_low'], numbers['cpu_P_high'], 'd')}: "
               f"{_span(numbers['cpu_speedup_low'], numbers['cpu_speedup_high'], '.2f')} times plain decoding's "
               f"tokens per second with a free drafter ({', '.join(run.s.policy_laws)}). On a memory-bound roofline "
               f"({ROOFLINE}) the optimum moves to P = {_span(numbers['roof_P_low'], numbers['roof_P_high'], 'd')} "
               f"and the limit to {_span(numbers['roof_speedup_low'], numbers['roof_speedup_high'], '.2f')} times; "
               "no drafter does better at these costs.")
    return Outcome(_rel(paths, run), caption,
                   ["verifier cost", "law", "optimal P", "tokens/s over plain", "+- se", "speed-up", "accepted",
                    "P scanned to"],
                   ["s", "s", "d", ".3f", ".3f", ".3f", ".3f", "d"], rows, numbers,
                   notes=[f"The measured cost curve is {COST_CURVE.name} (brw costcurve --model smollm2 --context "
                          "512 --P 256 --threads 1)."])


# --------------------------------------------------------------------------------------------------------
# 9. the benchmark


def _bench(run: _Run) -> Outcome:
    from brw import figures
    from brw.studies.bench import bench

    b = bench(**run.s.bench, big_nodes=0, startup_runs=False, cold_start=False, seed=SEED).to_dict()
    paths = figures.bench(b, run.paths("bench"))
    top = max(b["threads"])
    rows = []
    for row in b["laws"]:
        r, q = row["nodes_per_second"], row["ratios"]
        rows.append([row["law"], r.get("reference"), r["frontier@1"], r["threshold@1"], r["floor@1"],
                     r[f"frontier@{top}"], q["frontier_over_reference_1thread"], r["floor@1"] / r["frontier@1"]])
    # a trace row has thousands of tail atoms, every one of which the reference pushes: no fair comparison there
    ref = [r[6] for r in rows if r[6] is not None and not r[0].startswith("trace:")]
    floor = [r[7] for r in rows]
    numbers = {"P": b["laws"][0]["P"], "threads": top, "ref_low": min(ref), "ref_high": max(ref),
               "floor_low": min(floor), "floor_high": max(floor), "load": b["load_average"][0],
               "fast": max(max(r[2], r[5]) for r in rows) / 1e6}
    caption = (f"On one thread the frontier kernel runs {_span(numbers['ref_low'], numbers['ref_high'], '.0f')} times "
               f"the pure-Python reference on the same trees (laws without recorded tails), and the floor (drawing each node's randomness and "
               f"writing a position, nothing else) is {_span(numbers['floor_low'], numbers['floor_high'], '.2f')} "
               f"times faster than the whole frontier; the fastest frontier makes {numbers['fast']:.1f}M nodes/s. "
               f"Load average {numbers['load']:.1f} on a shared machine: these rates are noisy.")
    return Outcome(_rel(paths, run), caption,
                   ["law", "reference", "frontier", "threshold", "floor", f"frontier, {top} threads",
                    "frontier / reference", "floor / frontier"],
                   ["s", ".3g", ".3g", ".3g", ".3g", ".3g", ".0f", ".2f"], rows, numbers,
                   notes=[f"Nodes per second at P = {numbers['P']}, best of {b['repeats']} interleaved repeats; one "
                          "thread unless the column says otherwise."])


# --------------------------------------------------------------------------------------------------------
# 10. accepted(P) against the sampling temperature


#: How far the theory may be from the simulated i.i.d. walk and still count as following it.
TEMPERATURE_TOLERANCE = 0.05


def _temperature(run: _Run) -> Outcome:
    from brw import figures
    from brw.studies.temperature import temperature_sweep

    sw = temperature_sweep(**run.s.temperature, seed=SEED)
    brk = sw.breakdown(TEMPERATURE_TOLERANCE)
    paths = figures.temperature(sw, run.paths("temperature"))
    T, P = list(sw.temperatures), list(sw.P)
    rows = []
    for g in sw.genres:
        c, st = sw.curves[g], sw.stats[g]
        for i, t in enumerate(T):
            row = [g, t, st["mu"][i], st["top1"][i], st["near_deterministic"][i]]
            for j in range(len(P)):
                row += [c["prefix"][i][j], c["iid"][i][j], brk[g]["asymptotic"]["errors"][i][j],
                        brk[g]["renewal_bound"]["errors"][i][j]]
            rows.append(row)
    top, hi = len(P) - 1, T.index(1.0) if 1.0 in T else len(T) - 1
    lo = T.index(0.7) if 0.7 in T else 0
    key = "prefix" if np.all(np.isfinite(np.asarray(sw.curves[sw.genres[0]]["prefix"], dtype=float))) else "iid"
    at1 = [sw.curves[g][key][hi][top] for g in sw.genres]
    at07 = [sw.curves[g][key][lo][top] for g in sw.genres]
    atmin = [sw.curves[g][key][0][top] for g in sw.genres]
    stops = {p: [brk[g]["asymptotic"]["stops_at"][p] for g in sw.genres] for p in P}
    highest = {p: max((t for t in v if t is not None), default=None) for p, v in stops.items()}
    worst = {p: max(abs(brk[g]["asymptotic"]["errors"][i][j]) for g in sw.genres for i in range(len(T)))
             for j, p in enumerate(P)}
    numbers = {"P_top": P[-1], "T_low": T[lo], "T_high": T[hi], "T_min": T[0], "law": key,
               "at_high": at1, "at_low": at07, "at_min": atmin, "asymptotic_off_below": highest,
               "asymptotic_worst": worst, "tolerance": TEMPERATURE_TOLERANCE,
               "mu_high": [sw.stats[g]["mu"][hi] for g in sw.genres], "mu_min": [sw.stats[g]["mu"][0] for g in sw.genres],
               "top1_min": [sw.stats[g]["top1"][0] for g in sw.genres]}
    law = "recorded-prefix law" if key == "prefix" else "i.i.d. walk"
    per = ", ".join(f"{a:.2f} to {b:.2f} ({g})" for g, a, b in zip(sw.genres, at1, at07))
    caption = (f"Tempering the traces' laws from T = {T[hi]:g} to {T[lo]:g} raises the simulated optimum of the "
               f"{law} at P = {P[-1]} from {per} tokens per step"
               + (f", and at T = {T[0]:g} to " + ", ".join(f"{a:.1f}" for a in atmin) if lo > 0 else "")
               + f" (P = {P[-1]} is the T = 0 limit), as mu falls from "
               + ", ".join(f"{a:.2f} to {b:.3f}" for a, b in zip(numbers["mu_high"], numbers["mu_min"]))
               + " nats. ")
    off = [p for p in P if highest[p] is not None]
    if off:
        caption += ("The sharp asymptotic of the tempered i.i.d. walk is off its simulation by more than "
                    f"{TEMPERATURE_TOLERANCE:.0%} at " + ", ".join(f"P = {p} for T <= {highest[p]:g}" for p in off)
                    + f" (at worst {max(worst[p] for p in off):.0%}), and within it elsewhere on the grid.")
    else:
        caption += (f"The sharp asymptotic of the tempered i.i.d. walk stays within {TEMPERATURE_TOLERANCE:.0%} of "
                    f"its simulation at every P and T <= 1 of the grid (at worst {max(worst.values()):.1%}).")
    reals = [(g, r) for g in sw.genres for r in sw.real.get(g, []) if r["T"] != 1.0 and r["accepted"][top] is not None]
    numbers["real"] = [{"genre": g, "T": r["T"], "accepted": r["accepted"][top], "stderr": r["stderr"][top]}
                       for g, r in reals]
    if reals:
        caption += " Real optimal trees (mean +- standard error) at " + "; ".join(
            f"T = {r['T']:g} ({g}): {r['accepted'][top]:.2f} +- {r['stderr'][top]:.2f}" for g, r in reals) + \
            f" at P = {P[-1]}."
    notes = [f"{sw.replicates} simulated trees per law and temperature (seed {sw.seed}); the i.i.d. walk is "
             "`trace:GENRE,T=...`, the recorded-prefix law `prefix:trace=GENRE,greedy=GENRE-greedy,T=...`, the T = 1 "
             "traces tempered exactly (theory.md section 7b); theory of the tempered i.i.d. law.",
             "Relative errors of the theory are against the simulated i.i.d. walk, the walk the theory describes; "
             "top1: the mean top probability of a tempered row; p <= 0.05: the spine's share of steps of at most "
             "0.05 nats (the verifier's top token at >= 95%)."]
    columns = ["genre", "T", "mu(T)", "top1", "p <= 0.05"] + [
        x for p in P for x in (f"P = {p} prefix", f"P = {p} i.i.d.", f"P = {p} asymptotic", f"P = {p} renewal")]
    formats = ["s", "g", ".3f", ".3f", ".3f"] + [x for _ in P for x in (".3f", ".3f", "+.1%", "+.1%")]
    return Outcome(_rel(paths, run), caption, columns, formats, rows, numbers, notes)


def _sampled(run: _Run) -> Outcome:
    from brw.studies.sampled import figure, sampled_study

    st = sampled_study(seed=SEED, **run.s.sampled)
    paths = run.paths("sampled")
    figure(st, paths)
    top = max(st.at)
    rows = [[r["law"], r["drafter"], r["tv"], r["P"], r["frontier"], r["specexec"], r["best"], r["best_scheme"],
             r["best_minus_frontier"], r["best_minus_frontier_se"]] for r in st.rows]
    crossed = [c for c in st.crossings if c["tv"] is not None]
    at_top = [r for r in st.rows if r["P"] == top]
    beats = [r for r in at_top if r["best_minus_frontier"] - 1.96 * r["best_minus_frontier_se"] > 0]
    gains = [g["relative"] for g in st.gain]
    numbers = {"P_top": top, "crossing_tv": [c["tv"] for c in crossed], "crossing_P": [c["P"] for c in crossed],
               "beats_at_top": [[r["law"], r["drafter"], r["tv"]] for r in beats],
               "block_gain": gains, "gamma": st.gain[0]["k"] if st.gain else None,
               "tv": [q["tv"] for q in st.quality], "z": 1.96}
    tvs = numbers["tv"]
    caption = (f"Sampled drafts verified losslessly (speculative sampling, block verification, SpecInfer, RSD, "
               f"traversal verification) are outside the speed of light, which bounds committed trees: for drafters "
               f"of mean TV {_span(min(tvs), max(tvs), '.2f')} from the verifier, the best sampled scheme beats the "
               f"speed of light at P = {top} (by more than 1.96 paired standard errors) for {len(beats)} of "
               f"{len(at_top)} law-drafter pairs. ")
    if crossed:
        caption += (f"It crosses below the speed of light at a drafter TV of "
                    f"{_span(min(numbers['crossing_tv']), max(numbers['crossing_tv']), '.2f')} (P = "
                    f"{_span(min(numbers['crossing_P']), max(numbers['crossing_P']), 'd')}). ")
    if gains:
        caption += (f"Block verification of a sampled chain of {numbers['gamma']} tokens accepts "
                    f"{_span(min(gains), max(gains), '+.1%')} more than token-by-token verification of the same "
                    f"chain.")
    notes = [f"{st.replicates} replicate trees per law (seed {st.seed}), the same trees for every drafter and scheme; "
             "drafters: the verifier's logits plus sigma x N(0, 1), tempered by T; differences paired, with their "
             "standard errors.",
             "The SmolLM2 early-exit chains are in sims/sampled.py --real (figures/sampled-real.json)."]
    columns = ["law", "drafter", "TV", "P", "speed of light", "SpecExec (committed)", "best sampled", "scheme",
               "best - speed of light", "paired s.e."]
    formats = ["s", "s", ".3f", "d", ".3f", ".3f", ".3f", "s", "+.3f", ".3f"]
    return Outcome(_rel(paths, run), caption, columns, formats, rows, numbers, notes)


def _model(name) -> str:
    """A model's name without its file's details: ``SmolLM2-135M-Instruct (Q4_1 GGUF ...)`` -> ``SmolLM2-135M-Instruct``."""
    return str(name).split(" (")[0] if name else "the verifier"


def _span(lo, hi, spec: str) -> str:
    """``lo to hi`` in ``spec``, or one number when both print alike."""
    a, b = format(lo, spec), format(hi, spec)
    return a if a == b else f"{a} to {b}"


def _rel(paths, run: _Run) -> list[str]:
    return [os.path.relpath(p, run.tmp) for p in paths]


#: Every figure of the report, in order.
STEPS = [
    Step("accepted", "accepted(P) against log P beside every bound", _bounds, budget=5.0),
    Step("slopes", "The slope of accepted(P): 1/mu, not (mu + mu2)/mu^2", _slopes),
    Step("traces", "The recorded traces: mu and mu2 per genre, entropy distributions", _traces),
    Step("real", "Real optimal trees against every prediction, out of sample", _real, budget=10.0),
    Step("extra_depth", "Where the real trees' extra depth comes from", _gap),
    Step("policies", "Drafting policies and a real drafter against the speed of light", _policies),
    Step("sequoia", "Sequoia's optimum against the frontier", _sequoia),
    Step("speedup", "Tokens per second against P: the optimal P for a measured cost and a roofline", _speed),
    Step("bench", "The benchmark: brw's kernels beside the reference and the floor", _bench),
    Step("temperature", "accepted(P) against the sampling temperature, to the greedy limit", _temperature),
    Step("sampled", "Sampled drafts with lossless verification beside the speed of light", _sampled),
]


def _check_out(out) -> Path:
    text = os.fspath(out)
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise BrwError(f"out {clip(text, 120)!r} is a file; give a folder")
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    from brw.files import check_writable

    if not parent.is_dir():
        raise BrwError(f"out {clip(text, 120)!r}: {str(parent)!r} is not a folder")
    check_writable(parent, f"out {clip(text, 120)!r}")
    return path


def reproduce(out="figures", *, quick: bool = False, progress: bool = False, steps=None,
              settings: Settings | None = None) -> Reproduction:
    """Run every step of the report into ``out``: figures (PNG and SVG), ``REPORT.md`` and ``results.json``.

    Parameters
    ----------
    out : str or os.PathLike, optional
        The output folder (created if missing). Sweeps keep their points in ``out/.sweep``: a second run
        reuses them.
    quick : bool, optional
        Smaller sizes (``QUICK``): about a minute, a check rather than a measurement.
    progress : bool, optional
        A progress bar per figure on stderr (only on a terminal).
    steps : sequence of str, optional
        Names of the steps to run (default: every step of ``STEPS``).
    settings : Settings, optional
        Sizes of the run instead of ``FULL`` or ``QUICK`` (``quick`` then only labels the run).

    Returns
    -------
    Reproduction
        Every step's outcome and the time it took.

    Raises
    ------
    BrwError
        If ``out`` is a file or cannot take files (before any work), or a step cannot run.
    """
    from brw import tables
    from brw.progress import Progress

    if settings is not None and not isinstance(settings, Settings):
        raise BrwError(f"settings must be a brw.studies.reproduce.Settings, got {type(settings).__name__}")
    out = _check_out(out)
    chosen = STEPS if steps is None else [s for s in STEPS if s.name in set(steps)]
    if steps is not None and len(chosen) != len(set(steps)):
        unknown = sorted(set(steps) - {s.name for s in STEPS})
        raise BrwError(f"unknown steps {', '.join(unknown)}; choose among {', '.join(s.name for s in STEPS)}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=".reproduce-", dir=out))
    try:
        run = _Run(settings if settings is not None else QUICK if quick else FULL, tmp, out / SWEEP_DIR)
        done = []
        with Progress(len(chosen), "reproduce", enabled=progress, unit="steps", every=0,
                      hint="--quick: a smoke check of every step in about a minute") as bar:
            for number, step in enumerate(chosen, 1):
                bar.set_postfix_str(step.name)
                t1 = time.perf_counter()
                o = step.run(run)
                done.append({"number": number, "name": step.name, "title": step.title,
                             "seconds": time.perf_counter() - t1, **o.to_dict()})
                bar.update(1)
        res = Reproduction(str(out), quick, time.perf_counter() - t0, done, run.sweep_counts)
        d = res.to_dict()
        (tmp / RESULTS).write_text(json.dumps(_plain(d), indent=1, allow_nan=False) + "\n")
        (tmp / REPORT).write_text(tables.reproduce(d))
        for s in done:  # figures first, the report last: a reader never sees a report without its figures
            for f in s["figures"]:
                os.replace(tmp / f, out / f)
        for name in (RESULTS, REPORT):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res
