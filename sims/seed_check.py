"""Are the predictions' standard errors in ``brw compare`` right? Their reported value against the spread over seeds.

``brw compare`` predicts each genre's real trees by the fold-weighted mean sum_k w_k v_k of K folds' simulations
(each fold from its own stream, ``brw.studies.compare.fold_seed``) and reports the standard error
sqrt(sum_k w_k^2 se_k^2). This script reruns the simulations of every simulated law, genre (and the pool "all")
of both bundled real models at every P of their tables (SmolLM2's P = 1024 trees, Gemma 3's P = 256 trees;
4-fold, the laws fitted once) with SEEDS seeds and REPLICATES trees per law and fold, and compares, per law,
genre and P, the spread (standard deviation) of the prediction over the seeds with the root mean square of the
reported standard errors. The check holds for any number of trees per fold (the standard error scales as
1 / sqrt(trees)), so it runs with few trees and many seeds: a standard deviation from n seeds has a relative
error of about 1 / sqrt(2 (n - 1)) (9% for 64 seeds; 24% for 10).

The criterion, stated before the run: for each comparison, the ratio spread / reported standard error and its
95% interval (percentile bootstrap over seeds, 2000 resamples; and the chi-square interval of a normal sample
beside it); a reported standard error is right where the interval holds 1. About 5% of the comparisons fall
outside by chance alone (they are not independent: the P of one law and genre share their trees), so the script
reports how many fall outside against that, and the pooled ratio per law (over models, genres and P).

    python sims/seed_check.py                       # 64 seeds x 16 trees: about 20 minutes of one core
    python sims/seed_check.py --seeds 10 --replicates 16 --out out/seed_check_quick    # a quick look

Each seed's predictions are stored in OUT/points/ at once (resumable: a rerun computes only the missing seeds);
the summary goes to figures/seed_check.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy import stats

from brw.files import write_text
from brw.real.realtree import load_realtrees, trace_name
from brw.studies.compare import DEFAULT_AT, SIMULATORS, fit_laws, simulate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ("smollm2-p1024", "gemma3")
SEEDS = 64
REPLICATES = 16
FOLDS = 4
BOOTSTRAP = 2000


def _seed_points(results: str, seeds, replicates: int, out: Path) -> dict:
    """{seed: {genre: {law: (accepted, stderr) at the table's P}}}, computed for the seeds not stored yet."""
    res = load_realtrees(results)
    at = [p for p in DEFAULT_AT if p <= res.pmax]
    idx = np.array(at) - 1
    store = out / "points"
    store.mkdir(parents=True, exist_ok=True)
    name = lambda s: store / f"{results}-R{replicates}-seed{s}.json"  # noqa: E731
    todo = [s for s in seeds if not name(s).is_file()]
    if todo:
        fits = {}
        for j, src in enumerate(res.meta["sources"]):
            fits[j] = fit_laws(trace_name(src), folds=FOLDS)
        for s in todo:
            t0 = time.process_time()
            point = {"results": results, "seed": s, "replicates": replicates, "P": at, "genres": {}}
            for j, genre in enumerate(res.sources):
                sel = res.arrays["source"] == j
                pred, _, _ = simulate(fits[j], res.arrays["context"][sel], res.pmax, replicates, s, j, FOLDS)
                point["genres"][genre] = {m: [v[idx].tolist(), se[idx].tolist()] for m, (v, se) in pred.items()}
            w = 1.0 / len(res.sources)  # "all" weighs the genres equally (compare._pool)
            point["genres"]["all"] = {
                m: [(w * sum(np.array(point["genres"][g][m][0]) for g in res.sources)).tolist(),
                    (w * np.sqrt(sum(np.array(point["genres"][g][m][1]) ** 2 for g in res.sources))).tolist()]
                for m in SIMULATORS}
            point["cpu_seconds"] = time.process_time() - t0
            write_text(name(s), json.dumps(point) + "\n")
            print(f"{results} seed {s}: {point['cpu_seconds']:.1f} cpu s", flush=True)
    return {s: json.loads(name(s).read_text()) for s in seeds}


def _ratio_interval(values: np.ndarray, ses: np.ndarray, rng) -> tuple[float, float, float, float, float]:
    """spread / rms(se), its percentile-bootstrap 95% interval over seeds, and the chi-square interval."""
    n = values.size
    ratio = values.std(ddof=1) / np.sqrt(np.mean(ses**2))
    pick = rng.integers(0, n, size=(BOOTSTRAP, n))
    boot = values[pick].std(axis=1, ddof=1) / np.sqrt(np.mean(ses[pick] ** 2, axis=1))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    chi_lo = ratio * np.sqrt((n - 1) / stats.chi2.ppf(0.975, n - 1))
    chi_hi = ratio * np.sqrt((n - 1) / stats.chi2.ppf(0.025, n - 1))
    return float(ratio), float(lo), float(hi), float(chi_lo), float(chi_hi)


def summarize(points: dict) -> dict:
    """Per results file, genre, law and P: the spread over seeds, the rms reported standard error, their ratio
    with its intervals; the count of comparisons whose interval misses 1; the pooled ratio per law."""
    rng = np.random.default_rng(0)
    rows, per_law = [], {m: [] for m in SIMULATORS}
    for results, by_seed in points.items():
        seeds = sorted(by_seed)
        first = by_seed[seeds[0]]
        for genre in first["genres"]:
            for m in SIMULATORS:
                v = np.array([by_seed[s]["genres"][genre][m][0] for s in seeds])
                se = np.array([by_seed[s]["genres"][genre][m][1] for s in seeds])
                for i, p in enumerate(first["P"]):
                    if np.mean(se[:, i] ** 2) == 0:
                        continue
                    r, lo, hi, clo, chi = _ratio_interval(v[:, i], se[:, i], rng)
                    rows.append({"results": results, "genre": genre, "law": m, "P": p, "seeds": len(seeds),
                                 "mean": float(v[:, i].mean()), "spread": float(v[:, i].std(ddof=1)),
                                 "reported": float(np.sqrt(np.mean(se[:, i] ** 2))), "ratio": r,
                                 "low": lo, "high": hi, "chi2_low": clo, "chi2_high": chi})
                    per_law[m].append(np.log(r))
    outside = [r for r in rows if not r["low"] <= 1 <= r["high"]]
    outside_chi2 = [r for r in rows if not r["chi2_low"] <= 1 <= r["chi2_high"]]
    within20 = [r for r in rows if 0.8 <= r["ratio"] <= 1.2]
    return {"comparisons": len(rows), "outside_bootstrap": len(outside), "outside_chi2": len(outside_chi2),
            "expected_by_chance": 0.05 * len(rows), "ratio_within_20pct": len(within20),
            "ratio_range": [min(r["ratio"] for r in rows), max(r["ratio"] for r in rows)],
            "pooled_ratio_per_law": {m: float(np.exp(np.mean(x))) for m, x in per_law.items() if x},
            "rows": rows}


def table(d: dict, meta: dict) -> str:
    lines = [f"reported standard error of each fold-weighted prediction against its spread over {meta['seeds']} "
             f"seeds ({meta['replicates']} trees per law and fold, {FOLDS}-fold; ratio = spread / rms reported "
             f"standard error, 95% interval by bootstrap over seeds)",
             f"comparisons: {d['comparisons']}; interval misses 1: {d['outside_bootstrap']} (bootstrap), "
             f"{d['outside_chi2']} (chi-square), {d['expected_by_chance']:.1f} expected by chance; ratio within "
             f"0.8..1.2: {d['ratio_within_20pct']}; ratios {d['ratio_range'][0]:.2f} .. {d['ratio_range'][1]:.2f}",
             "pooled ratio per law (geometric mean over models, genres and P): " + ", ".join(
                 f"{m} {r:.3f}" for m, r in d["pooled_ratio_per_law"].items()), ""]
    lines.append(f"{'results':15}{'genre':13}{'law':10}{'P':>6}{'mean':>9}{'spread':>9}{'reported':>10}"
                 f"{'ratio':>7}{'95% interval':>16}")
    for r in d["rows"]:
        flag = "" if r["low"] <= 1 <= r["high"] else "  *"
        interval = f"[{r['low']:.2f}, {r['high']:.2f}]"
        lines.append(f"{r['results']:15}{r['genre']:13}{r['law']:10}{r['P']:>6}{r['mean']:>9.3f}{r['spread']:>9.4f}"
                     f"{r['reported']:>10.4f}{r['ratio']:>7.2f}{interval:>16}{flag}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=SEEDS)
    ap.add_argument("--replicates", type=int, default=REPLICATES)
    ap.add_argument("--results", default=",".join(RESULTS))
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "seed_check", help="per-seed points (resumable)")
    ap.add_argument("--figures", type=Path, default=ROOT / "figures")
    args = ap.parse_args(argv)
    t0 = time.time()
    points = {r: _seed_points(r, range(args.seeds), args.replicates, args.out) for r in args.results.split(",")}
    d = summarize(points)
    meta = {"seeds": args.seeds, "replicates": args.replicates, "folds": FOLDS, "results": args.results.split(","),
            "cpu_seconds": sum(p["cpu_seconds"] for by in points.values() for p in by.values()),
            "numba_threads": os.environ.get("NUMBA_NUM_THREADS"), "wall_seconds_this_run": time.time() - t0}
    text = table(d, meta)
    write_text(args.figures / "seed_check.json", json.dumps({**meta, **d}, indent=1) + "\n")
    write_text(args.figures / "seed_check.md", "```\n" + text + "\n```\n\n`python sims/seed_check.py`"
               + (f" --seeds {args.seeds}" if args.seeds != SEEDS else "")
               + (f" --replicates {args.replicates}" if args.replicates != REPLICATES else "") + "\n")
    print(text)


if __name__ == "__main__":
    main()
