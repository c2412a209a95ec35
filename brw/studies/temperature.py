"""accepted(P) against the temperature a deployment samples at (theory.md section 7b; issue 24).

For each genre of the bundled SmolLM2 traces and each temperature T of a grid (0.1 to 1), the traces' laws
tempered to T (``trace:GENRE,T=...``: the i.i.d. walk; ``prefix:trace=GENRE,greedy=GENRE-greedy,T=...``: the
recorded-prefix law) are simulated to P = 1024, beside the theory of the tempered i.i.d. law (the sharp
asymptotic and the renewal bound of ``brw.theory.bounds``), the real optimal trees at every temperature the
bundled real-tree results hold (T = 1 and T = 0.7), and P itself, the T = 0 limit (a deterministic verifier
accepts every node of the greedy chain). Where the traces recorded at 0.7 are bundled, the prefix law fitted to
them (``prefix:trace=GENRE-t07,...``, the text the sampler visits at 0.7) is simulated at T = 0.7 too.

The tempered laws also give what explains where the theory stops following the simulated i.i.d. walk:
mu(T), mu2(T), the mean top probability of a tempered row, and the spine's share of near-deterministic steps
(P(step <= 0.05 nats)). :meth:`TemperatureSweep.breakdown` finds, per genre and P, the temperatures at which
the sharp asymptotic and the renewal bound are off the simulated i.i.d. walk by more than a tolerance.

``temperature_sweep()`` returns a :class:`TemperatureSweep`; ``brw.figures.temperature`` draws it,
``brw.tables.temperature`` tabulates it, ``sims/temperature.py`` runs it and ``brw reproduce`` has it as a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from brw._version import __version__
from brw.checks import whole_number
from brw.errors import BrwError
from brw.laws import parse_law
from brw.real.realtree import BUNDLED as REAL_BUNDLED, load_realtrees
from brw.results import Result
from brw.solver import frontier
from brw.spec import check_temperature, fmt
from brw.theory import bounds
from brw.traces import BUNDLED, resolve_trace

__all__ = ["temperature_sweep", "from_dict", "TemperatureSweep", "TEMPERATURES", "QUICK_TEMPERATURES", "AT", "GENRES",
           "REAL_RESULTS", "MODELS", "NEAR_DETERMINISTIC"]

#: The temperature grid, 0.1 to 1 (the bundled traces refuse T > 1: their fitted tails outgrow the vocabulary).
TEMPERATURES = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
QUICK_TEMPERATURES = (0.5, 1.0)
AT = (16, 64, 256, 1024)
GENRES = ("code", "math", "chat")
#: Bundled real-tree results set beside the simulations (each at its own temperature), when installed.
REAL_RESULTS = ("smollm2-p1024", "smollm2-t07-p1024")
#: The curves of a genre, by key: simulations (with standard errors) and theory.
MODELS = {"iid": "sim: i.i.d. walk (trace:)", "prefix": "sim: recorded prefixes (prefix:)",
          "asymptotic": "sharp asymptotic", "renewal_bound": "renewal bound"}
#: A spine step at most this many nats counts as near-deterministic (the verifier's top token at >= 95%).
NEAR_DETERMINISTIC = 0.05


@dataclass(frozen=True)
class TemperatureSweep(Result):
    """accepted(P) against T per genre.

    ``curves[genre][model]`` is a (len(temperatures), len(P)) list of lists for each key of ``MODELS``, with
    ``curves[genre][model + "_stderr"]`` for the simulations; ``stats[genre]`` holds per temperature ``mu``,
    ``mu2``, ``top1`` (mean top probability of a tempered row) and ``near_deterministic`` (P(spine step <=
    ``NEAR_DETERMINISTIC``)); ``real[genre]`` lists the real trees, one dict per results file (``results``,
    ``T``, ``accepted`` and ``stderr`` at ``P`` (None beyond its Pmax), ``contexts``); ``fitted_07[genre]`` is the
    prefix law fitted to the traces recorded at T = 0.7, simulated at 0.7 (``accepted``, ``stderr``), when they
    are bundled.
    """

    genres: tuple
    temperatures: tuple
    P: tuple
    replicates: int
    seed: int
    curves: dict
    stats: dict
    real: dict
    fitted_07: dict
    version: str = __version__

    def breakdown(self, tolerance: float = 0.05) -> dict:
        """Where the theory stops following the simulated i.i.d. walk as T falls.

        Parameters
        ----------
        tolerance : float, optional
            Largest |prediction - simulated| / simulated that still counts as following (default 5%).

        Returns
        -------
        dict
            {genre: {model: {P: the highest T of the grid at or below 1 where the relative error exceeds
            ``tolerance`` (None: nowhere), ...}}} for the sharp asymptotic and the renewal bound, with each one's
            relative errors (``errors``: (T, P) lists).
        """
        out = {}
        for g in self.genres:
            c = self.curves[g]
            sim = np.asarray(c["iid"], dtype=np.float64)
            out[g] = {}
            for m in ("asymptotic", "renewal_bound"):
                err = (np.asarray(c[m], dtype=np.float64) - sim) / sim
                first = {}
                for j, p in enumerate(self.P):
                    off = [t for i, t in enumerate(self.temperatures) if t <= 1.0 and abs(err[i, j]) > tolerance]
                    first[int(p)] = max(off) if off else None
                out[g][m] = {"stops_at": first, "errors": err.tolist()}
        return out

    def _tidy(self) -> dict:
        """Columns genre, model, T, P, accepted, stderr (one row per genre, curve, temperature and P)."""
        cols = {k: [] for k in ("genre", "model", "T", "P", "accepted", "stderr")}
        for g in self.genres:
            for m in MODELS:
                v = np.asarray(self.curves[g][m], dtype=np.float64)
                se = np.asarray(self.curves[g].get(m + "_stderr", np.zeros_like(v)), dtype=np.float64)
                for i, t in enumerate(self.temperatures):
                    for j, p in enumerate(self.P):
                        for key, val in zip(cols, (g, m, t, int(p), v[i, j], se[i, j])):
                            cols[key].append(val)
        return cols


def _temperatures(temperatures) -> tuple:
    ts = tuple(sorted({check_temperature(t, "temperature") for t in temperatures}))
    if not ts:
        raise BrwError("temperatures needs at least one temperature")
    return ts


def _real_curves(genre: str, at: tuple) -> list:
    """The bundled real trees of ``genre`` at each of their temperatures: mean accepted(P) over contexts."""
    out = []
    for name in REAL_RESULTS:
        if name not in REAL_BUNDLED or not REAL_BUNDLED[name].is_file():
            continue
        res = load_realtrees(name)
        t = res.temperatures
        for j, src in enumerate(res.sources):
            if src.split("-t")[0] != genre:  # code, code-t07: the genre's trees at that source's temperature
                continue
            a = res.accepted(src)
            if a.shape[0] < 2:
                continue
            ok = [p for p in at if p <= res.pmax]
            m = a[:, np.asarray(ok) - 1]
            pad = [None] * (len(at) - len(ok))
            out.append({"results": name, "T": t[j], "contexts": int(a.shape[0]),
                        "accepted": m.mean(0).tolist() + pad,
                        "stderr": (m.std(0, ddof=1) / math.sqrt(m.shape[0])).tolist() + pad})
    return out


def from_dict(d: dict, *, real: bool = False) -> TemperatureSweep:
    """A sweep from its ``to_dict()`` (a saved run), with the bundled real trees read again when ``real``
    (their files may have grown since: the simulations do not change).

    Parameters
    ----------
    d : dict
        ``TemperatureSweep.to_dict()``.
    real : bool, optional
        Replace ``real`` by the bundled real trees as they are now.

    Returns
    -------
    TemperatureSweep
    """
    keys = ("genres", "temperatures", "P", "replicates", "seed", "curves", "stats", "real", "fitted_07")
    try:
        args = {k: d[k] for k in keys}
    except (KeyError, TypeError) as e:
        raise BrwError(f"not a saved temperature sweep (missing {e})") from None
    for k in ("genres", "temperatures", "P"):
        args[k] = tuple(args[k])
    if real:
        args["real"] = {g: _real_curves(g, args["P"]) for g in args["genres"]}
    return TemperatureSweep(**args, version=d.get("version", __version__))


def _law_stats(law) -> dict:
    steps, w = law.spine_atoms()
    top1 = float(np.mean(np.exp(law.trace.top_logp[:, 0])))
    return {"mu": law.mu, "mu2": law.mu2, "top1": top1,
            "near_deterministic": float(w[steps <= NEAR_DETERMINISTIC].sum() / w.sum())}


def temperature_sweep(genres=GENRES, temperatures=TEMPERATURES, at=AT, *, replicates: int = 400, seed: int = 0,
                      prefix: bool = True, real: bool = True) -> TemperatureSweep:
    """accepted(P) against T for the bundled traces' laws, the theory and the real trees (module notes).

    Parameters
    ----------
    genres : sequence of str, optional
        Bundled SmolLM2 traces (``code``, ``math``, ``chat``; each needs its ``-greedy`` branches for ``prefix``).
    temperatures : sequence of float, optional
        The temperatures, each > 0 (default ``TEMPERATURES``, 0.1 to 1; the bundled traces refuse T > 1).
    at : sequence of int, optional
        P values (default 16, 64, 256, 1024).
    replicates : int, optional
        Simulated trees per law and temperature.
    seed : int, optional
        The simulations' seed (the same for every law and temperature: common random numbers across T).
    prefix : bool, optional
        Also simulate the recorded-prefix law (and, where bundled, the one fitted to the traces at T = 0.7).
    real : bool, optional
        Set the bundled real trees beside them.

    Returns
    -------
    TemperatureSweep
    """
    genres = tuple(genres)
    if not genres or any(g not in BUNDLED for g in genres):
        raise BrwError(f"genres must be bundled traces ({', '.join(sorted(BUNDLED))}), got {genres!r}")
    ts = _temperatures(temperatures)
    at = tuple(sorted({whole_number(p, "at") for p in at}))
    replicates = whole_number(replicates, "replicates", 2)
    seed = whole_number(seed, "seed", 0)
    pmax = max(at)
    idx = np.asarray(at) - 1
    curves, stats, reals, fitted = {}, {}, {}, {}
    for g in genres:
        c = {k: [] for k in ("iid", "iid_stderr", "prefix", "prefix_stderr", "asymptotic", "renewal_bound")}
        st = {k: [] for k in ("mu", "mu2", "top1", "near_deterministic")}
        greedy = f",greedy={g}-greedy" if f"{g}-greedy" in BUNDLED else ""
        for t in ts:
            law = parse_law(f"trace:{g},T={fmt(t)}")
            r = frontier(law, pmax, replicates, seed)
            c["iid"].append(r.accepted[idx].tolist())
            c["iid_stderr"].append(r.stderr[idx].tolist())
            b = bounds(law, list(at))
            c["asymptotic"].append(b.asymptotic.tolist())
            c["renewal_bound"].append(b.renewal_bound.tolist())
            if prefix:
                r = frontier(f"prefix:trace={g}{greedy},T={fmt(t)}", pmax, replicates, seed)
                c["prefix"].append(r.accepted[idx].tolist())
                c["prefix_stderr"].append(r.stderr[idx].tolist())
            else:
                c["prefix"].append([math.nan] * len(at))
                c["prefix_stderr"].append([math.nan] * len(at))
            for k, v in _law_stats(law).items():
                st[k].append(v)
        curves[g], stats[g] = c, st
        reals[g] = _real_curves(g, at) if real else []
        if prefix and f"{g}-t07" in BUNDLED and f"{g}-t07-greedy" in BUNDLED:
            try:
                resolve_trace(f"{g}-t07-greedy")
                r = frontier(f"prefix:trace={g}-t07,greedy={g}-t07-greedy", pmax, replicates, seed)
                fitted[g] = {"T": 0.7, "accepted": r.accepted[idx].tolist(), "stderr": r.stderr[idx].tolist()}
            except BrwError:  # the T = 0.7 traces are not installed
                pass
    return TemperatureSweep(genres, ts, at, replicates, seed, curves, stats, reals, fitted)
