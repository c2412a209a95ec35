"""Every model of the verifier against reality: real optimal trees beside the theory and the simulator.

For each genre of a real-tree results file (``brw.realtree``; the bundled SmolLM2 trees by default) the real
accepted(P), averaged over contexts with its standard error, is set beside

(a) the paper's bound, (b) the sharp asymptotic and (c) the renewal bound, each with the trace's mu and mu2,
(d) the simulator under the trace's empirical law (``trace:``), (e) under the parametric fit (``gemmix``,
``brw.fitted.fit_gemmix``) and (f) under the context-correlated law (``markov``, ``brw.fitted``).

"all" pools the genres: the real curve over every context, the predictions averaged with the genres'
context counts as weights.
"""

from __future__ import annotations

import math

import numpy as np

from brw.errors import BrwError

MODELS = ("paper_bound", "sharp_asymptotic", "renewal_bound", "empirical", "gemmix", "markov")
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
        pred = {
            "paper_bound": (theory.paper_bound(law, P), np.zeros(pmax)),
            "sharp_asymptotic": (theory.sharp_asymptotic(law, P), np.zeros(pmax)),
            "renewal_bound": (theory.renewal_bound(law, P), np.zeros(pmax)),
            "empirical": _sim(law, pmax, replicates, seed),
            "gemmix": _sim(fit, pmax, replicates, seed),
            "markov": _sim(markov, pmax, replicates, seed),
        }
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


_LABELS = {"paper_bound": "(a) paper's bound", "sharp_asymptotic": "(b) sharp asymptotic",
           "renewal_bound": "(c) renewal bound", "empirical": "(d) sim: empirical law",
           "gemmix": "(e) sim: gemmix fit", "markov": "(f) sim: Markov regimes"}


def show(d: dict) -> str:
    """The comparison as text: real accepted(P) and each model's relative error."""
    lines = [f"real optimal trees of {d['model']} (P <= {d['pmax']}) against every model; "
             f"simulations: {d['replicates']} trees, seed {d['seed']}, {d['regimes']} Markov regimes, "
             f"{d['components']} gemmix components"]
    for name, g in d["genres"].items():
        lines.append("")
        head = f"{name}: {g['contexts']} contexts"
        if isinstance(g["mu"], float) and math.isfinite(g["mu"]):
            head += f", mu = {g['mu']:.3f}, mu2 = {g['mu2']:.3f}"
        if g.get("entropy_autocorrelation"):
            head += ", entropy autocorrelation along the text " + ", ".join(
                f"lag {k}: {v:.2f}" for k, v in g["entropy_autocorrelation"].items())
        lines.append(head)
        lines.append(f"{'':26}" + "".join(f"{'P=' + str(p):>16}" for p in d["P"]) + f"{'mean |rel|':>12}")
        lines.append(f"{'real accepted':26}" + "".join(
            f"{m:>9.3f} +-{s:<5.3f}" for m, s in zip(g["real"], g["real_stderr"])))
        for m in MODELS:
            r = g["models"][m]
            lines.append(f"{_LABELS[m]:26}" + "".join(
                f"{a:>8.3f} ({e:+5.0%})" for a, e in zip(r["accepted"], r["relative_error"]))
                + f"{r['mean_abs_relative_error']:>12.1%}")
        lines.append(f"best simulator: {g['best_simulator']}"
                     + (f"; the gemmix fit's mu2 is {g['gemmix_mu2']:.3f}" if math.isfinite(g["gemmix_mu2"]) else ""))
    return "\n".join(lines)


def plot(d: dict, path) -> None:
    """One panel per genre: the real curve (2-standard-error band) and every model."""
    from brw.files import atomic_path
    from brw.plots import _pyplot

    plt = _pyplot()
    names = list(d["genres"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.2), squeeze=False)
    P = np.arange(1, d["pmax"] + 1)
    for ax, name in zip(axes[0], names):
        c = d["genres"][name]["curves"]
        real, se = np.asarray(c["real"]), np.asarray(c["real_stderr"])
        ax.plot(P, real, color="k", lw=2.2, label="real optimal tree")
        ax.fill_between(P, real - 2 * se, real + 2 * se, color="k", alpha=0.18, lw=0)
        for m in MODELS:
            ax.plot(P, c[m], lw=1.3, ls="--" if m in ("paper_bound", "sharp_asymptotic", "renewal_bound") else "-",
                    label=_LABELS[m])
        ax.set_xscale("log", base=2)
        top = max(real.max() * 1.6, 1.0)
        ax.set_ylim(0, top)
        ax.set_title(f"{name} ({d['genres'][name]['contexts']} contexts)")
        ax.set_xlabel("P")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accepted tokens per step")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Real optimal trees ({d['model']}) against every model", fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
