"""Every model of the verifier against reality: real optimal trees beside the theory and the simulator.

For each genre of a real-tree results file (``brw.realtree``; the bundled SmolLM2 trees by default) the real
accepted(P), averaged over contexts with its standard error, is set beside

(a) the paper's bound, (b) the sharp asymptotic and (c) the renewal bound, each with the trace's mu and mu2
(``brw.theory.bounds``),
(d) the simulator under the trace's empirical law (``trace:``), (e) under the parametric fit (``gemmix``,
``brw.fitted.fit_gemmix``) and (f) under the context-correlated law (``markov``, ``brw.fitted``).

"all" pools the genres: the real curve over every context, the predictions averaged with the genres'
context counts as weights. ``compare`` returns a :class:`Comparison`; ``brw compare`` prints its table
(``brw.tables.compare``) and draws its figure (``brw.figures.compare``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from brw._version import __version__
from brw.errors import BrwError, clip, whole_number
from brw.limits import require
from brw.results import Result

__all__ = ["compare", "Comparison", "Genre", "MODELS", "THEORY_MODELS", "SIMULATORS", "DEFAULT_AT"]

#: Every model of the verifier, by its key in the results, with its label in tables and figures.
MODELS = {"paper_bound": "(a) paper's bound", "asymptotic": "(b) sharp asymptotic",
          "renewal_bound": "(c) renewal bound", "empirical": "(d) sim: empirical law",
          "gemmix": "(e) sim: gemmix fit", "markov": "(f) sim: Markov regimes"}
#: The models that are formulas of the theory (the rest are simulations).
THEORY_MODELS = ("paper_bound", "asymptotic", "renewal_bound")
SIMULATORS = ("empirical", "gemmix", "markov")
#: P of the table unless asked otherwise.
DEFAULT_AT = (1, 4, 16, 64, 256)


@dataclass(frozen=True)
class Genre:
    """One genre (or "all") of a comparison: the real curve and every model's prediction at P = 1..Pmax.

    ``predictions[m]`` is (accepted, stderr) for each key of ``MODELS``; theory has no standard error (0).
    A pooled genre has no law of its own: mu and mu2 are NaN, ``laws`` and ``entropy_autocorrelation`` empty.
    """

    contexts: int
    mu: float
    mu2: float
    real: np.ndarray
    real_stderr: np.ndarray
    predictions: dict
    laws: dict = field(default_factory=dict)
    entropy_autocorrelation: dict = field(default_factory=dict)
    gemmix_mu2: float = math.nan

    def to_dict(self, at, curves: bool = True) -> dict:
        """Values at the P in ``at``, relative errors (prediction - real) / real, and whole curves if asked."""
        idx = np.asarray(at) - 1
        real = self.real[idx]
        d = {"contexts": self.contexts, "mu": self.mu, "mu2": self.mu2, "laws": self.laws,
             "entropy_autocorrelation": self.entropy_autocorrelation, "gemmix_mu2": self.gemmix_mu2,
             "real": real.tolist(), "real_stderr": self.real_stderr[idx].tolist()}
        if curves:
            d["curves"] = {"real": self.real.tolist(), "real_stderr": self.real_stderr.tolist(),
                           **{m: self.predictions[m][0].tolist() for m in MODELS}}
        d["models"] = {}
        for m in MODELS:
            v, se = self.predictions[m]
            rel = (v[idx] - real) / real
            d["models"][m] = {"accepted": v[idx].tolist(), "stderr": se[idx].tolist(),
                              "relative_error": rel.tolist(), "mean_abs_relative_error": float(np.mean(np.abs(rel)))}
        d["best_simulator"] = min(SIMULATORS, key=lambda m: d["models"][m]["mean_abs_relative_error"])
        return d


@dataclass(frozen=True)
class Comparison(Result):
    """Real optimal trees of ``model`` (P <= ``pmax``) against every model, per genre and pooled ("all").

    ``P`` are the draft-node counts of the table; ``genres`` maps each genre's name to its :class:`Genre`.
    The simulations ran ``replicates`` trees per law with ``seed``; the Markov law had ``regimes`` regimes and
    the gemmix fit ``components`` components.
    """

    model: str | None
    pmax: int
    P: list
    replicates: int
    seed: int
    regimes: int
    components: int
    genres: dict
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
                "components": self.components,
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


def _sim(spec, pmax, replicates, seed):
    from brw.frontier import frontier

    r = frontier(spec, pmax, replicates, seed)
    return r.accepted, r.stderr


def _mean(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over contexts (rows) and its standard error."""
    return real.mean(0), real.std(0, ddof=1) / math.sqrt(real.shape[0])


def _fitted_laws(name: str, regimes: int, components: int):
    """A genre's trace law, its gemmix fit and its Markov-modulated law (spec)."""
    from brw.fitted import fit_gemmix
    from brw.laws import parse_law

    law = parse_law(f"trace:{name}")
    markov = f"markov:trace={name},regimes={regimes}"
    parse_law(markov)
    return law, fit_gemmix(law.trace, components), markov


def _genre(name: str, real: np.ndarray, replicates: int, seed: int, regimes: int, components: int) -> Genre:
    """One genre: the theory with its trace's law, and the simulator under three laws fitted to it."""
    from brw import theory
    from brw.fitted import entropy_autocorrelation

    pmax = real.shape[1]
    law, fit, markov = _fitted_laws(name, regimes, components)
    b = theory.bounds(law, np.arange(1, pmax + 1))
    pred = {m: (getattr(b, m), np.zeros(pmax)) for m in THEORY_MODELS}
    pred.update({"empirical": _sim(law, pmax, replicates, seed), "gemmix": _sim(fit, pmax, replicates, seed),
                 "markov": _sim(markov, pmax, replicates, seed)})
    m, se = _mean(real)
    return Genre(contexts=int(real.shape[0]), mu=law.mu, mu2=law.mu2, real=m, real_stderr=se, predictions=pred,
                 laws={"empirical": str(law), "gemmix": str(fit), "markov": markov},
                 entropy_autocorrelation=entropy_autocorrelation(law.trace, (1, 2, 4)), gemmix_mu2=fit.mu2)


def _pool(genres: dict, all_real: np.ndarray) -> Genre:
    """Every context's real curve; the predictions averaged with the genres' context counts as weights."""
    w = np.array([g.contexts for g in genres.values()], dtype=np.float64)
    w /= w.sum()
    pred = {}
    for m in MODELS:
        vals = np.array([g.predictions[m][0] for g in genres.values()])
        ses = np.array([g.predictions[m][1] for g in genres.values()])
        pred[m] = (w @ vals, np.sqrt((w**2) @ ses**2))
    m, se = _mean(all_real)
    return Genre(contexts=int(all_real.shape[0]), mu=math.nan, mu2=math.nan, real=m, real_stderr=se,
                 predictions=pred)


def compare(results=None, *, replicates: int = 2000, seed: int = 0, regimes: int = 4, components: int = 12,
            at=DEFAULT_AT) -> Comparison:
    """Real optimal trees against every model of the verifier, per genre and pooled.

    Parameters
    ----------
    results : str or os.PathLike, optional
        A real-tree results file (``brw realtree``); the bundled SmolLM2 trees by default.
    replicates : int, optional
        Simulated trees per law.
    seed : int, optional
        Seed of the simulations.
    regimes : int, optional
        Regimes of the Markov-modulated law.
    components : int, optional
        Components of the gemmix fit.
    at : sequence of int, optional
        P values of the table (1..the real trees' Pmax).

    Returns
    -------
    Comparison
        Per genre (with at least two contexts) and "all": the real curve and every model's prediction.
    """
    from brw.realtree import load_realtrees

    replicates = whole_number(replicates, "replicates")
    seed = whole_number(seed, "seed", 0)
    regimes = whole_number(regimes, "regimes")
    components = whole_number(components, "components")
    # Each simulation keeps a key, a depth and a position per replicate.
    require("replicates", replicates, lambda r: 24.0 * r, what="the comparison's simulations")
    res = load_realtrees(results)
    pmax = res.pmax
    at = [whole_number(p, "at") for p in (at if np.ndim(at) else [at])]
    if any(p < 1 or p > pmax for p in at):
        raise BrwError(f"at values must lie in 1..{pmax} (the real trees' Pmax), got {clip(repr(at), 60)}")
    names = [name for name in res.sources if res.accepted(name).shape[0] >= 2]
    for name in names:  # every fitted law is built (and its regimes and components checked) before any work
        _fitted_laws(name, regimes, components)
    genres = {}
    for name in names:
        genres[name] = _genre(name, res.accepted(name), replicates, seed, regimes, components)
    if not genres:
        raise BrwError("the real-tree results hold no genre with at least two contexts")
    if len(genres) > 1:
        genres["all"] = _pool(genres, res.accepted())
    return Comparison(model=res.meta.get("model"), pmax=pmax, P=at, replicates=replicates, seed=seed,
                      regimes=regimes, components=components, genres=genres)
