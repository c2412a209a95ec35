"""Every model of the verifier against reality: real optimal trees beside the theory and the simulator.

For each genre of a real-tree results file (``brw.realtree``; the bundled SmolLM2 trees by default) the real
accepted(P), averaged over contexts with its standard error, is set beside

(a) the paper's bound, (b) the sharp asymptotic and (c) the renewal bound, each with the trace's mu and mu2
(``brw.theory.bounds``),
(d) the simulator under the trace's empirical law (``trace:``), (e) under the parametric fit (``gemmix``,
``brw.fitted.fit_gemmix``) and (f) under the context-correlated law (``markov``, ``brw.fitted``).

"all" pools the genres: the real curve over every context, the predictions averaged with the genres'
context counts as weights.
"""

from __future__ import annotations

import math

import numpy as np

from brw.errors import BrwError

#: Every model of the verifier, by its key in the results, with its label in tables and figures.
MODELS = {"paper_bound": "(a) paper's bound", "asymptotic": "(b) sharp asymptotic",
          "renewal_bound": "(c) renewal bound", "empirical": "(d) sim: empirical law",
          "gemmix": "(e) sim: gemmix fit", "markov": "(f) sim: Markov regimes"}
#: The models that are formulas of the theory (the rest are simulations).
THEORY_MODELS = ("paper_bound", "asymptotic", "renewal_bound")
DEFAULT_AT = (1, 4, 16, 64, 256)


def _sim(spec, pmax, replicates, seed):
    from brw.frontier import frontier

    r = frontier(spec, pmax, replicates, seed)
    return r.accepted, r.stderr


def compare(results=None, *, replicates: int = 2000, seed: int = 0, regimes: int = 4, components: int = 12,
            at=DEFAULT_AT) -> dict:
    """The comparison as a dict: per genre and "all", the real curve and each model's prediction at every
    P <= Pmax, and relative errors (prediction - real) / real at the P in ``at``."""
    from brw import theory
    from brw.fitted import entropy_autocorrelation, fit_gemmix
    from brw.laws import parse_law
    from brw.realtree import load_realtrees

    res = load_realtrees(results)
    pmax = res.pmax
    at = [int(p) for p in at]
    if any(p < 1 or p > pmax for p in at):
        raise BrwError(f"--at values must lie in 1..{pmax} (the real trees' Pmax)")
    P = np.arange(1, pmax + 1)
    genres = {}
    for name in res.sources:
        real = res.accepted(name)
        if real.shape[0] < 2:
            continue
        law = parse_law(f"trace:{name}")
        fit = fit_gemmix(law.trace, components)
        markov = f"markov:trace={name},regimes={regimes}"
        b = theory.bounds(law, P)
        pred = {m: (getattr(b, m), np.zeros(pmax)) for m in THEORY_MODELS}
        pred.update({
            "empirical": _sim(law, pmax, replicates, seed),
            "gemmix": _sim(fit, pmax, replicates, seed),
            "markov": _sim(markov, pmax, replicates, seed),
        })
        genres[name] = {
            "contexts": int(real.shape[0]), "mu": law.mu, "mu2": law.mu2,
            "entropy_autocorrelation": entropy_autocorrelation(law.trace, (1, 2, 4)), "gemmix_mu2": fit.mu2,
            "laws": {"empirical": str(law), "gemmix": str(fit), "markov": markov},
            "real": (real.mean(0), real.std(0, ddof=1) / math.sqrt(real.shape[0])),
            "pred": pred,
        }
    if not genres:
        raise BrwError("the real-tree results hold no genre with at least two contexts")
    if len(genres) > 1:
        genres["all"] = _pool(genres, res.accepted())
    from brw._version import __version__

    out = {"version": __version__, "model": res.meta.get("model"), "pmax": pmax, "P": at,
           "replicates": replicates, "seed": seed,
           "regimes": regimes, "components": components, "genres": {}}
    idx = np.asarray(at) - 1
    for name, g in genres.items():
        real_m, real_se = g["real"]
        entry = {"contexts": g["contexts"], "mu": g["mu"], "mu2": g["mu2"], "laws": g.get("laws", {}),
                 "entropy_autocorrelation": g.get("entropy_autocorrelation", {}),
                 "gemmix_mu2": g.get("gemmix_mu2", float("nan")),
                 "real": real_m[idx].tolist(), "real_stderr": real_se[idx].tolist(), "curves": {
                     "real": real_m.tolist(), "real_stderr": real_se.tolist()}, "models": {}}
        for m in MODELS:
            v, se = g["pred"][m]
            rel = (v[idx] - real_m[idx]) / real_m[idx]
            entry["models"][m] = {"accepted": v[idx].tolist(), "stderr": se[idx].tolist(),
                                  "relative_error": rel.tolist(),
                                  "mean_abs_relative_error": float(np.mean(np.abs(rel)))}
            entry["curves"][m] = v.tolist()
        sims = ("empirical", "gemmix", "markov")
        entry["best_simulator"] = min(sims, key=lambda m: entry["models"][m]["mean_abs_relative_error"])
        out["genres"][name] = entry
    return out


def _pool(genres: dict, all_real: np.ndarray) -> dict:
    w = np.array([g["contexts"] for g in genres.values()], dtype=np.float64)
    w /= w.sum()
    pred = {}
    for m in MODELS:
        vals = np.array([g["pred"][m][0] for g in genres.values()])
        ses = np.array([g["pred"][m][1] for g in genres.values()])
        pred[m] = (w @ vals, np.sqrt((w**2) @ ses**2))
    return {"contexts": int(all_real.shape[0]), "mu": float("nan"), "mu2": float("nan"),
            "real": (all_real.mean(0), all_real.std(0, ddof=1) / math.sqrt(all_real.shape[0])), "pred": pred}
