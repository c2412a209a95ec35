"""Every model of the verifier against reality: real optimal trees beside the theory and the simulator.

For each genre of a real-tree results file (``brw.real.realtree``; the bundled SmolLM2 trees by default) the real
accepted(P), averaged over contexts with its standard error, is set beside

(a) the paper's bound, (b) the sharp asymptotic and (c) the renewal bound, each with the trace's mu and mu2
(``brw.theory.bounds``), (b') the sharp asymptotic of each recorded context mixed with the contexts' weights
(``brw.theory.context_mixture``: the theory of the per-context law; it overshoots at small P where a context's
entropy is near zero),
(d) the simulator under the trace's empirical law (``trace:``), (e) under the parametric fit (``gemmix``,
``brw.laws.fitted.fit_gemmix``), (f) under the entropy-regime law (``markov``, ``brw.laws.fitted``), (g) under the
per-context law (``ctx``: a tree draws a recorded generation, its nodes that generation's rows), (h) under
recorded-path resampling (``path``: a child takes the next recorded position of its parent's row), (i) under
edge-conditioned resampling (``edge``: a child draws a row of its parent's generation recorded after a token as
surprising as its own edge) and (j) under greedy-run resampling (``run``: a child of its parent's most probable
token draws a row recorded after as long a run of top tokens as its own path's, any other child one recorded
after a token that was not the top one) and (k) under recorded-prefix resampling (``prefix``: a child whose
own prefix was recorded, along the sampled text or, for the bundled traces, the model's greedy branches from
it, takes that row; any other draws as in ``run``) and (l) the same without the greedy branches
(``prefix_text``: what a user's own sampled trace alone gives).

Beside the plain real mean, the root-adjusted one (``brw.real.realtree.root_adjusted_mean``) corrects it for the luck
of which answer positions were drawn as roots, and every prediction is also scored against it. Its control
variates are each root's recorded statistics and, where the trace's greedy branches are bundled, its greedy
continuation's (``brw.real.realtree.greedy_covariates``), known for every answer position.

Out of sample: with ``folds`` = K >= 2 the recorded generations (a trace's contexts) fall into K folds
(generation g in fold g % K); the real trees whose context lies in fold j are predicted by laws fitted to the
trace without fold j (the ``holdout=j/K`` field of every trace-fitted law), and a genre's prediction is the
folds' predictions weighted by their real contexts, so that it predicts the same contexts as the real mean.
``folds=1`` fits every law to the whole trace (in sample).

Every fold's simulations draw from their own random streams: fold k of genre g (g the genre's place among the
results' sources) runs ``frontier(law, pmax, replicates, fold_seed(seed, g, k))``, whose seed is derived from
``SeedSequence(seed, spawn_key=(g, k))`` (:func:`fold_seed`), so the folds' (and the genres') predictions are
independent and each fold can be replayed alone with ``brw frontier --seed``. A genre's prediction is
sum_k w_k v_k with standard error sqrt(sum_k w_k^2 se_k^2), right because the folds are independent
(``sims/seed_check.py`` checks it against the spread over seeds). Every relative error (prediction - real) /
real carries a 95% interval combining the prediction's standard error and the real curve's (plain or
adjusted), by the delta method: rel +- 1.96 sqrt((se_pred / real)^2 + (pred se_real / real^2)^2).

"all" pools the genres with equal weights: the real curve (plain and adjusted), the predictions and the real
slope are the means of the genres', so that the pool does not lean toward a genre that holds more trees (the
number of trees per genre is a choice of precision, not of the mix of prompts); ``contexts`` counts every one.

Temperature (theory.md section 7b): real trees expanded at T (``brw realtree --temperature``, the results'
``temperature``) are set only beside laws at the same T: a law fitted to a trace recorded at T_r and tempered by T'
(``T`` here, ``,T=`` on every spec) is at T_r T'. ``traces`` fits a genre's laws to another trace than the one its
trees were expanded from (the same prompts, as sims/record_traces.py records at every temperature: context c is
prompt c, so the K folds still hold out the same generations); the root adjustment keeps the trees' own trace.
``compare`` returns a :class:`Comparison`; ``brw compare`` prints its table
(``brw.tables.compare``) and draws its figure (``brw.figures.compare``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from brw._version import __version__
from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.limits import require
from brw.progress import Progress
from brw.real.realtree import (GREEDY_COVARIATES, ROOT_COVARIATES, bundled_greedy_covariates,
                               root_adjusted_mean, trace_name)
from brw.results import Result
from brw.spec import check_temperature, temperature_text

__all__ = ["compare", "Comparison", "Genre", "MODELS", "THEORY_MODELS", "SIMULATORS", "DEFAULT_AT", "fold_seed",
           "spawn_seed", "fit_laws", "simulate", "relative_errors", "Z95"]

#: Every model of the verifier, by its key in the results, with its label in tables and figures.
MODELS = {"paper_bound": "(a) paper's bound", "asymptotic": "(b) sharp asymptotic",
          "context_mixture": "(b') sharp, mixed over contexts",
          "renewal_bound": "(c) renewal bound", "empirical": "(d) sim: empirical law",
          "gemmix": "(e) sim: gemmix fit", "markov": "(f) sim: Markov regimes",
          "ctx": "(g) sim: per-context law", "path": "(h) sim: recorded paths",
          "edge": "(i) sim: edge-conditioned", "run": "(j) sim: greedy runs",
          "prefix": "(k) sim: recorded prefixes", "prefix_text": "(l) sim: recorded prefixes, text only"}
#: The models that are formulas of the theory (the rest are simulations).
THEORY_MODELS = ("paper_bound", "asymptotic", "context_mixture", "renewal_bound")
SIMULATORS = ("empirical", "gemmix", "markov", "ctx", "path", "edge", "run", "prefix", "prefix_text")
#: Most folds of the K-fold scoring (each fold fits every law once more).
MAX_FOLDS = 40
#: The real slope per doubling of P is measured from this P to the trees' Pmax.
SLOPE_FROM = 64
#: P of the table unless asked otherwise.
DEFAULT_AT = (1, 4, 16, 64, 256, 1024)
#: The normal quantile of two-sided 95% intervals.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Genre:
    """One genre (or "all") of a comparison: the real curve and every model's prediction at P = 1..Pmax.

    ``predictions[m]`` is (accepted, stderr) for each key of ``MODELS``; theory has no standard error (0).
    ``laws`` holds each simulated law's spec as fitted to the whole trace (with K folds, fold j's law adds
    ``holdout=j/K`` to it; gemmix is refitted per fold). A pooled genre has no law of its own: mu and mu2 are
    NaN, ``laws`` and ``entropy_autocorrelation`` empty. ``fold_seeds`` and ``fold_weights`` map each fold (0 in
    sample) to the seed of its simulations (:func:`fold_seed`) and its share of the real contexts;
    ``adjustment`` names the adjusted real mean's covariates.
    """

    contexts: int
    mu: float
    mu2: float
    real: np.ndarray
    real_stderr: np.ndarray
    predictions: dict
    laws: dict = field(default_factory=dict)
    entropy_autocorrelation: dict = field(default_factory=dict)
    entropy_after_surprisal: list = field(default_factory=list)
    gemmix_mu2: float = math.nan
    real_slope: tuple = (math.nan, math.nan)
    real_adjusted: np.ndarray | None = None
    real_adjusted_stderr: np.ndarray | None = None
    adjustment: tuple = ()
    fold_seeds: dict = field(default_factory=dict)
    fold_weights: dict = field(default_factory=dict)

    def to_dict(self, at, curves: bool = True) -> dict:
        """Values at the P in ``at``, relative errors (prediction - real) / real, and whole curves if asked."""
        idx = np.asarray(at) - 1
        real = self.real[idx]
        d = {"contexts": self.contexts, "mu": self.mu, "mu2": self.mu2, "laws": self.laws,
             "entropy_autocorrelation": self.entropy_autocorrelation,
             "entropy_after_surprisal": self.entropy_after_surprisal, "gemmix_mu2": self.gemmix_mu2,
             "real": real.tolist(), "real_stderr": self.real_stderr[idx].tolist(),
             "fold_seeds": {str(k): v for k, v in self.fold_seeds.items()},
             "fold_weights": {str(k): v for k, v in self.fold_weights.items()}}
        real_se = self.real_stderr[idx]
        adjusted = self.real_adjusted is not None
        if adjusted:
            d["real_adjusted"] = self.real_adjusted[idx].tolist()
            d["real_adjusted_stderr"] = self.real_adjusted_stderr[idx].tolist()
            d["adjustment"] = list(self.adjustment)
        if curves:
            d["curves"] = {"real": self.real.tolist(), "real_stderr": self.real_stderr.tolist(),
                           **({"real_adjusted": self.real_adjusted.tolist(),
                               "real_adjusted_stderr": self.real_adjusted_stderr.tolist()} if adjusted else {}),
                           **{m: self.predictions[m][0].tolist() for m in MODELS}}
        d["models"] = {}
        for m in MODELS:
            v, se = self.predictions[m]
            d["models"][m] = {"accepted": v[idx].tolist(), "stderr": se[idx].tolist(),
                              **relative_errors(v[idx], se[idx], real, real_se)}
            if adjusted:
                d["models"][m]["adjusted"] = relative_errors(v[idx], se[idx], self.real_adjusted[idx],
                                                             self.real_adjusted_stderr[idx])
        d["best_simulator"] = min(SIMULATORS, key=lambda m: d["models"][m]["mean_abs_relative_error"])
        if adjusted:
            d["best_simulator_adjusted"] = min(
                SIMULATORS, key=lambda m: d["models"][m]["adjusted"]["mean_abs_relative_error"])
        d["decomposition"] = self.decomposition(at)
        pmax = self.real.size
        if pmax >= 2 * SLOPE_FROM:
            per = math.log2(pmax / SLOPE_FROM)
            d["slope_per_doubling"] = {
                "from_P": SLOPE_FROM, "to_P": pmax, "real": self.real_slope[0], "real_stderr": self.real_slope[1],
                "ln2_over_mu": math.log(2) / self.mu if self.mu > 0 else math.nan,
                **{m: float(self.predictions[m][0][-1] - self.predictions[m][0][SLOPE_FROM - 1]) / per
                   for m in MODELS}}
        return d

    def decomposition(self, at) -> dict:
        """Where the real trees' extra accepted tokens over the i.i.d. walk come from, at each P of ``at``:
        ``gap`` = real - empirical; ``contexts`` = ctx - empirical (contexts that differ: a tree keeps its
        context); ``runs`` = run - ctx (on top of that, a child of its parent's most probable token goes on
        along a greedy run, whose entropy falls); ``unexplained`` = real - run; and the shares of the gap
        (``*_share``). ``paths`` = path - ctx (a child follows its parent's recorded text), ``edges`` = edge - ctx
        (a child's row follows the surprisal of its edge) and ``prefixes`` = prefix - ctx (a child takes its own
        recorded prefix's row where there is one) are the alternative second steps."""
        idx = np.asarray(at) - 1
        emp, ctx, path, edge, run, prefix = (self.predictions[m][0][idx]
                                             for m in ("empirical", "ctx", "path", "edge", "run", "prefix"))
        gap = self.real[idx] - emp
        parts = {"contexts": ctx - emp, "runs": run - ctx, "unexplained": self.real[idx] - run, "paths": path - ctx,
                 "edges": edge - ctx, "prefixes": prefix - ctx}
        with np.errstate(divide="ignore", invalid="ignore"):
            share = {f"{k}_share": np.where(gap != 0, v / gap, np.nan).tolist() for k, v in parts.items()}
        return {"gap": gap.tolist(), **{k: v.tolist() for k, v in parts.items()}, **share}


@dataclass(frozen=True)
class Comparison(Result):
    """Real optimal trees of ``model`` (P <= ``pmax``) against every model, per genre and pooled ("all").

    ``P`` are the draft-node counts of the table; ``genres`` maps each genre's name to its :class:`Genre`.
    The simulations ran ``replicates`` trees per law and fold with ``seed``; the Markov law had ``regimes``
    regimes and the gemmix fit ``components`` components; ``folds`` is K of the K-fold scoring (1: in sample).
    """

    model: str | None
    pmax: int
    P: list
    replicates: int
    seed: int
    regimes: int
    components: int
    genres: dict
    folds: int = 1
    version: str = __version__

    def to_dict(self, curves: bool = True) -> dict:
        """JSON-ready: what ``brw compare --json`` prints (there without the whole ``curves``).

        Parameters
        ----------
        curves : bool, optional
            Include every genre's whole curves (P = 1..pmax) beside its values at ``P``.

        Returns
        -------
        dict
        """
        return {"version": self.version, "model": self.model, "pmax": self.pmax, "P": list(self.P),
                "replicates": self.replicates, "seed": self.seed, "regimes": self.regimes,
                "components": self.components, "folds": self.folds,
                "genres": {name: g.to_dict(self.P, curves) for name, g in self.genres.items()}}

    def _tidy(self) -> dict:
        """Columns: genre, curve ("real" or a key of ``MODELS``), P, accepted, stderr (one row per genre, curve
        and P = 1..pmax), seed, version."""
        cols = {k: [] for k in ("genre", "curve", "P", "accepted", "stderr")}
        P = np.arange(1, self.pmax + 1)
        for name, g in self.genres.items():
            for curve, (v, se) in {"real": (g.real, g.real_stderr), **g.predictions}.items():
                for key, col in zip(cols, ([name] * P.size, [curve] * P.size, P, v, se)):
                    cols[key].extend(col)
        n = len(cols["P"])
        return {**cols, "seed": [self.seed] * n, "version": [self.version] * n}


def relative_errors(pred, pred_se, real, real_se) -> dict:
    """Relative errors (prediction - real) / real with their 95% intervals, their mean and largest absolute value.

    The interval combines the prediction's and the real curve's standard errors (independent: the simulations
    never see the real trees) by the delta method, rel +- Z95 sqrt((se_pred / real)^2 + (pred se_real /
    real^2)^2).

    Parameters
    ----------
    pred, pred_se, real, real_se : float arrays (n,)
        The prediction and the real curve at n values of P, with their standard errors (NaN: unknown).

    Returns
    -------
    dict
        ``relative_error`` (list), ``relative_error_stderr``, ``relative_error_low`` and ``relative_error_high``
        (the 95% interval's ends), ``mean_abs_relative_error``, ``max_abs_relative_error`` and
        ``max_abs_interval_end`` (the largest |end| of the intervals: at every P the error lies within +- it
        with 95% confidence each).
    """
    pred, pred_se, real, real_se = (np.asarray(a, dtype=np.float64) for a in (pred, pred_se, real, real_se))
    rel = (pred - real) / real
    se = np.sqrt((pred_se / real) ** 2 + (pred * real_se / real**2) ** 2)
    low, high = rel - Z95 * se, rel + Z95 * se
    return {"relative_error": rel.tolist(), "relative_error_stderr": se.tolist(),
            "relative_error_low": low.tolist(), "relative_error_high": high.tolist(),
            "mean_abs_relative_error": float(np.mean(np.abs(rel))), "max_abs_relative_error": float(np.max(np.abs(rel))),
            "max_abs_interval_end": float(np.max(np.maximum(np.abs(low), np.abs(high))))}


def spawn_seed(seed: int, *key: int) -> int:
    """A seed of its own for one part of a study: ``SeedSequence(seed, spawn_key=key)``'s first 64-bit word
    shifted right by one (63 bits, what ``brw.frontier`` and ``brw frontier --seed`` take).

    Parameters
    ----------
    seed : int
        The study's seed.
    *key : int
        The part's spawn key (whole numbers >= 0); keys of different lengths never collide.

    Returns
    -------
    int
    """
    state = np.random.SeedSequence(whole_number(seed, "seed", 0),
                                   spawn_key=tuple(whole_number(k, "key", 0) for k in key))
    return int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))


def fold_seed(seed: int, genre: int, fold: int) -> int:
    """The seed of one fold's simulations: independent streams per genre and fold, spawned from ``seed``.

    ``SeedSequence(seed, spawn_key=(genre, fold))`` (numpy's spawning: a two-entry key, never one of the
    one-entry keys ``(j,)`` that seed replicate j of a run), its first 64-bit word shifted right by one, a
    63-bit seed that ``brw.frontier`` and ``brw frontier --seed`` take: fold k of genre g replays alone as
    ``frontier(law_k, pmax, replicates, fold_seed(seed, g, k))``.

    Parameters
    ----------
    seed : int
        The comparison's seed.
    genre : int
        The genre's place among the results file's sources.
    fold : int
        The fold (0 in sample).

    Returns
    -------
    int
    """
    return spawn_seed(seed, whole_number(genre, "genre", 0), whole_number(fold, "fold", 0))


def simulate(fits: dict, context, pmax: int, replicates: int, seed: int, genre: int, folds: int,
             models=SIMULATORS) -> tuple[dict, dict, dict]:
    """The simulated laws' fold-weighted predictions for one genre's real trees, each fold from its own streams.

    Parameters
    ----------
    fits : dict
        :func:`fit_laws` of the genre's trace with ``folds``.
    context : int array (n,)
        The real trees' recorded generations (context c lies in fold c % ``folds``).
    pmax : int
        P of the simulated trees.
    replicates : int
        Simulated trees per law and fold.
    seed : int
        The comparison's seed (fold k runs with :func:`fold_seed` (seed, genre, k)).
    genre : int
        The genre's place among the results' sources.
    folds : int
        K (1: in sample).
    models : sequence of str, optional
        Keys of :data:`SIMULATORS`.

    Returns
    -------
    (predictions, seeds, weights) : dicts
        ``predictions[m]`` = (accepted, stderr) at P = 1..pmax, stderr = sqrt(sum_k w_k^2 se_k^2);
        ``seeds`` and ``weights`` per fold.
    """
    from brw.solver import frontier

    context = np.asarray(context, dtype=np.int64)
    fold_of = context % folds
    parts = [(0, None)] if folds == 1 else [(j, j) for j in range(folds) if np.any(fold_of == j)]
    pred = {m: (np.zeros(pmax), np.zeros(pmax)) for m in models}
    seeds, weights = {}, {}
    for k, fold in parts:
        w = float(np.mean(fold_of == k)) if folds > 1 else 1.0
        seeds[k], weights[k] = fold_seed(seed, genre, k), w
        for m in models:
            r = frontier(fits[fold][m], pmax, replicates, seeds[k])
            pred[m] = (pred[m][0] + w * r.accepted, np.sqrt(pred[m][1] ** 2 + (w * r.stderr) ** 2))
    return pred, seeds, weights


def _mean(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over contexts (rows) and its standard error."""
    return real.mean(0), real.std(0, ddof=1) / math.sqrt(real.shape[0])


def fit_laws(name: str, regimes: int = 4, components: int = 12, folds: int = 4, greedy: str | None = None,
             T: float = 1.0) -> dict:
    """Every simulated law of a genre, fitted to its whole trace (key None) and, with ``folds`` > 1, without
    each fold j (key j): what :func:`simulate` takes.

    Parameters
    ----------
    name : str
        The trace (a bundled name or a path).
    regimes, components : int, optional
        Of the Markov law and the gemmix fit.
    folds : int, optional
    greedy : str, optional
        The greedy branches ``prefix`` takes (a bundled name or a file); by default the trace's bundled
        ``NAME-greedy`` where there is one.
    T : float, optional
        Temper every law by T (``,T=`` on its spec; gemmix is fitted to the tempered trace).

    Returns
    -------
    dict
        {None or fold: {simulator key: law}}.
    """
    return {fold: _fitted_laws(name, regimes, components, fold, folds, greedy, T)
            for fold in (None, *(range(folds) if folds > 1 else ()))}


def _fitted_laws(name: str, regimes: int, components: int, fold: int | None, folds: int,
                 branches: str | None = None, T: float = 1.0) -> dict:
    """Every simulated law of a genre, fitted to its trace without fold ``fold`` of ``folds`` (None: the
    whole trace) and tempered by T: each simulator's key -> the law (gemmix fitted to the tempered trace, the
    others as specs)."""
    from brw.laws.fitted import fit_gemmix
    from brw.laws import parse_law

    from brw.traces import BUNDLED

    hold = "" if fold is None else f",holdout={fold}/{folds}"
    if branches is None and f"{name}-greedy" in BUNDLED:  # the bundled traces' branches
        branches = f"{name}-greedy"
    greedy = f",greedy={branches}" if branches else ""
    specs = {"empirical": f"trace:{name}{hold}", "markov": f"markov:trace={name},regimes={regimes}{hold}",
             "ctx": f"ctx:trace={name}{hold}", "path": f"path:trace={name}{hold}",
             "edge": f"edge:trace={name}{hold}", "run": f"run:trace={name}{hold}",
             "prefix": f"prefix:trace={name}{greedy}{hold}", "prefix_text": f"prefix:trace={name}{hold}"}
    laws = {key: parse_law(spec + temperature_text(T)) for key, spec in specs.items()}
    laws["gemmix"] = fit_gemmix(laws["empirical"].trace, components)
    return laws


def _genre(fits: dict, real: np.ndarray, context: np.ndarray, rows: np.ndarray, replicates: int, seed: int,
           folds: int, genre: int, extra: np.ndarray | None, root=None) -> Genre:
    """One genre: per fold, the theory and the simulator under every law fitted without that fold, weighted by
    the fold's real contexts; ``fits`` maps None (the whole trace) and each fold to its ``_fitted_laws``;
    ``extra`` holds the greedy covariates of every trace row (None: the root's alone); ``root`` the trees' own
    trace where the laws are fitted to another (None: the laws' trace)."""
    from brw import theory
    from brw.laws.fitted import entropy_after_surprisal, entropy_autocorrelation

    pmax = real.shape[1]
    P = np.arange(1, pmax + 1)
    fold_of = context % folds
    parts = [(None, np.ones(real.shape[0], bool))] if folds == 1 else [
        (j, fold_of == j) for j in range(folds) if np.any(fold_of == j)]
    whole = fits[None]
    pred, seeds, weights = simulate(fits, context, pmax, replicates, seed, genre, folds)
    pred.update({m: (np.zeros(pmax), np.zeros(pmax)) for m in THEORY_MODELS})
    for fold, sel in parts:
        w = sel.sum() / real.shape[0]
        laws = fits[fold]
        b = theory.bounds(laws["empirical"], P)
        got = {m: getattr(b, m) for m in THEORY_MODELS if m != "context_mixture"}
        got["context_mixture"] = theory.context_mixture(laws["ctx"], P, prediction="asymptotic")
        for m, v in got.items():
            pred[m] = (pred[m][0] + w * v, pred[m][1])
    pred = {m: pred[m] for m in MODELS}
    m, se = _mean(real)
    trace = whole["empirical"]
    adj, adj_se = root_adjusted_mean(real, rows, trace.trace if root is None else root, folds, extra)
    return Genre(contexts=int(real.shape[0]), mu=trace.mu, mu2=trace.mu2, real=m, real_stderr=se, predictions=pred,
                 real_adjusted=adj, real_adjusted_stderr=adj_se,
                 adjustment=ROOT_COVARIATES + (GREEDY_COVARIATES if extra is not None else ()),
                 fold_seeds=seeds, fold_weights=weights,
                 laws={m: str(whole[m]) for m in SIMULATORS},
                 entropy_autocorrelation=entropy_autocorrelation(trace.trace, (1, 2, 4)),
                 entropy_after_surprisal=entropy_after_surprisal(trace.trace),
                 gemmix_mu2=whole["gemmix"].mu2, real_slope=_real_slope(real))


def _real_slope(real: np.ndarray) -> tuple[float, float]:
    """The real accepted(P)'s rise per doubling of P from SLOPE_FROM to Pmax, mean over contexts and its
    standard error (NaN when Pmax < 2 SLOPE_FROM)."""
    if real.shape[1] < 2 * SLOPE_FROM or real.shape[0] < 2:
        return math.nan, math.nan
    per = (real[:, -1] - real[:, SLOPE_FROM - 1]) / math.log2(real.shape[1] / SLOPE_FROM)
    return float(per.mean()), float(per.std(ddof=1) / math.sqrt(per.size))


def _pool(genres: dict) -> Genre:
    """The genres with equal weights: every curve, prediction and slope the mean of the genres', with standard
    errors combined as independent (the genres' contexts and their folds' random streams are disjoint)."""
    gs = list(genres.values())
    w = np.full(len(gs), 1.0 / len(gs))

    def mean(values, ses):
        return w @ np.asarray(values, dtype=np.float64), np.sqrt((w**2) @ np.asarray(ses, dtype=np.float64) ** 2)

    pred = {m: mean([g.predictions[m][0] for g in gs], [g.predictions[m][1] for g in gs]) for m in MODELS}
    real, real_se = mean([g.real for g in gs], [g.real_stderr for g in gs])
    adj, adj_se = mean([g.real_adjusted for g in gs], [g.real_adjusted_stderr for g in gs])
    slope = mean([[g.real_slope[0]] for g in gs], [[g.real_slope[1]] for g in gs])
    how = {g.adjustment for g in gs}
    return Genre(contexts=sum(g.contexts for g in gs), mu=math.nan, mu2=math.nan, real=real, real_stderr=real_se,
                 predictions=pred, real_slope=(float(slope[0][0]), float(slope[1][0])), real_adjusted=adj,
                 real_adjusted_stderr=adj_se, adjustment=how.pop() if len(how) == 1 else ())


def _law_traces(res, names: list, own: dict, traces: dict | None, T: float) -> tuple[dict, dict]:
    """Each genre's law trace, checked: (genre -> trace name, genre -> the trees' own trace where the laws'
    differs, for the root adjustment). A law at another temperature than its real trees is refused."""
    from brw.laws.trace import TraceLaw
    from brw.traces import load_trace

    traces = dict(traces or {})
    unknown = sorted(set(traces) - set(res.sources))
    if unknown:
        raise BrwError(f"traces names genres {', '.join(map(repr, unknown))} that the real trees do not have "
                       f"({', '.join(res.sources)})")
    out, roots = {}, {}
    for name in names:
        t_trees = res.temperatures[res.sources.index(name)]
        source = traces.get(name, own[name])
        trace = load_trace(source)
        t_law = float(trace.meta.get("temperature", 1.0)) * T
        if not math.isclose(t_law, t_trees, rel_tol=1e-9):
            raise BrwError(f"the real trees of {name!r} are at T={t_trees:g} but laws fitted to trace {source!r} "
                           f"(recorded at T={t_law / T:g}) tempered by T={T:g} are at T={t_law:g}: temper them "
                           f"to match (T={t_trees / (t_law / T):g})")
        if source != own[name]:
            mine = load_trace(own[name])
            t_own = float(mine.meta.get("temperature", 1.0))
            same = trace.contexts == mine.contexts and all(
                np.array_equal(trace.context_ids(c)[:trace.prompt_lengths[c]], mine.context_ids(c)[:mine.prompt_lengths[c]])
                for c in range(trace.contexts))
            if not same:
                raise BrwError(f"trace {source!r} does not hold the prompts of {own[name]!r} context by context: "
                               f"the K folds would not hold out the same generations")
            # the roots' statistics at the trees' temperature: the trees' own trace, tempered as the laws are
            roots[name] = TraceLaw(own[name], T=t_trees / t_own).trace if t_trees != t_own else mine
        out[name] = source
    return out, roots


def compare(results=None, *, replicates: int = 2000, seed: int = 0, regimes: int = 4, components: int = 12,
            at=None, folds: int = 4, branches: dict | None = None, T: float = 1.0, traces: dict | None = None,
            progress: bool = False) -> Comparison:
    """Real optimal trees against every model of the verifier, per genre and pooled.

    Parameters
    ----------
    results : str or os.PathLike, optional
        A real-tree results file (``brw realtree``) or a bundled one's name (``brw.real.realtree.BUNDLED``); the
        bundled SmolLM2 trees (P <= 256) by default.
    replicates : int, optional
        Simulated trees per law.
    seed : int, optional
        Seed of the simulations.
    regimes : int, optional
        Regimes of the Markov-modulated law.
    components : int, optional
        Components of the gemmix fit.
    at : sequence of int, optional
        P values of the table (1..the real trees' Pmax); by default those of ``DEFAULT_AT`` up to Pmax.
    folds : int, optional
        K of the K-fold scoring over recorded generations (1: every law fitted to the whole trace, in sample).
    branches : dict, optional
        {trace name: greedy branches} for ``prefix`` (a bundled name or a file), where another recording than
        the bundled ``NAME-greedy`` is wanted (deeper branches, say); the adjusted real mean's covariates stay
        those of the bundled branches.
    T : float, optional
        Temper every law by T (``,T=`` on its spec). The laws' temperature (their trace's recorded one times T)
        must be the real trees' (else a BrwError says which T matches).
    traces : dict, optional
        Genre -> the trace its laws are fitted to (a bundled name or a file), when not the trace its real trees
        were expanded from; it must hold the same prompts, context by context.
    progress : bool, optional
        Show progress on stderr, a genre at a time (``brw.progress``).

    Returns
    -------
    Comparison
        Per genre (with at least two contexts) and "all": the real curve and every model's prediction.
    """
    from brw.real.realtree import load_realtrees

    replicates = whole_number(replicates, "replicates")
    seed = whole_number(seed, "seed", 0)
    regimes = whole_number(regimes, "regimes")
    components = whole_number(components, "components")
    folds = whole_number(folds, "folds")
    if folds > MAX_FOLDS:
        raise BrwError(f"folds must lie in 1..{MAX_FOLDS}, got {folds}")
    # Each simulation keeps a key, a depth and a position per replicate.
    require("replicates", replicates, lambda r: 24.0 * r, what="the comparison's simulations")
    res = load_realtrees(results)
    pmax = res.pmax
    if at is None:
        at = [p for p in DEFAULT_AT if p <= pmax]
    at = [whole_number(p, "at") for p in (at if np.ndim(at) else [at])]
    if any(p < 1 or p > pmax for p in at):
        raise BrwError(f"at values must lie in 1..{pmax} (the real trees' Pmax), got {clip(repr(at), 60)}")
    names = [name for name in res.sources if res.accepted(name).shape[0] >= 2]
    own = {name: trace_name(src) for name, src in zip(res.sources, res.meta["sources"])}
    law_traces, roots = _law_traces(res, names, own, traces, check_temperature(T))
    # every fitted law is built once (and its regimes and components checked) before any simulation
    branches = dict(branches or {})
    fits = {name: fit_laws(law_traces[name], regimes, components, folds, branches.get(law_traces[name]), T)
            for name in names}
    genres = {}
    hint = "fewer replicates (--replicates 200; the default is 2000), or --folds 1 (every law fitted once)"
    with Progress(len(names), "compare", enabled=progress, unit="genres", hint=hint) as bar:
        for j, name in enumerate(res.sources):
            if name in names:
                sel = res.arrays["source"] == j
                genres[name] = _genre(fits[name], res.accepted(name), res.arrays["context"][sel],
                                      res.arrays["row"][sel], replicates, seed, folds, j,
                                      bundled_greedy_covariates(own[name]), roots.get(name))
                bar.update()
    if not genres:
        raise BrwError("the real-tree results hold no genre with at least two contexts")
    if len(genres) > 1:
        genres["all"] = _pool(genres)
    return Comparison(model=res.meta.get("model"), pmax=pmax, P=at, replicates=replicates, seed=seed,
                      regimes=regimes, components=components, genres=genres, folds=folds)
