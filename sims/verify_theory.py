"""Which predictions of theory.md hold? Slope and offset of accepted(P) against every bound, for many laws.

For each law: simulate the optimal frontier to PMAX (replicates in batches, so the slope has a standard error),
fit accepted(P) = a + b log P over P = 2^6 .. PMAX (powers of two), and set the slope b beside 1/mu (the sharp
asymptotic's slope) and (mu + mu2)/mu^2 (the paper's), and accepted(PMAX) beside the sharp asymptotic, the
renewal bound (identity 6), Wald-Lorden and the paper's bound. Writes figures/theory_check.{json,md} and two
figures. Public API only (brw.frontier, brw.theory, brw.laws).

    python sims/verify_theory.py            # the full table (about 3-4 minutes on 2 cores)
    python sims/verify_theory.py --quick    # a slice to 2^12 for CI (well under a minute)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from brw import __version__, frontier, parse_law
from brw import theory as T
from brw.files import atomic_path, write_text

# (spec, replicates) spanning mu from 0.2 to 6.5 nats; deterministic laws need one tree.
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
QUICK = [
    ("fixed:p=0.7/0.3", 1),
    ("uniform:k=8", 1),
    ("dirichlet:alpha=0.5,k=8", 16),
    ("gem:theta=2", 8),
    ("zipf:s=1.1,k=50000", 1),
]
PLOTTED = ["uniform:k=8", "dirichlet:alpha=0.5,k=8", "fixed:p=0.95/0.05", "zipf:s=1.1,k=50000"]
BATCHES = 8
SEED = 2512


def trace_laws(extra: list[str]) -> list[tuple[str, int]]:
    """The bundled recorded traces (if brw.traces exists and they are installed), and any given."""
    specs = list(extra)
    try:
        from brw.traces import BUNDLED, DATA_DIR
    except ImportError:
        return [(s, 400) for s in specs]
    for name, file in sorted(BUNDLED.items()):
        if (Path(DATA_DIR) / file).is_file():
            specs.append(f"trace:{name}")
    return [(s, 400) for s in specs]


def fit_line(logP: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y against log P."""
    b, a = np.polyfit(logP, y, 1)
    return float(b), float(a)


def measure(spec: str, replicates: int, pmax: int, seed: int) -> dict:
    """Simulate in batches of replicates; the slope's standard error is the spread of the batch slopes."""
    law = parse_law(spec)
    P = 2 ** np.arange(6, int(math.log2(pmax)) + 1)
    batches = 1 if law.deterministic else min(BATCHES, replicates)
    per = replicates // batches
    curves, slopes, deepest, means = [], [], [], []
    t0 = time.perf_counter()
    for b in range(batches):
        fr = frontier(law, pmax, per, seed, first_replicate=b * per)
        curves.append(fr.accepted)
        slopes.append(fit_line(np.log(P), fr.accepted[P - 1])[0])
        deepest.append(fr.deepest.mean())
        means.append(fr.accepted[P - 1])
    seconds = time.perf_counter() - t0
    acc = np.mean(curves, axis=0)
    sd = (lambda v: float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0)
    acc_se = np.std(curves, axis=0, ddof=1) / math.sqrt(batches) if batches > 1 else np.zeros(pmax)
    return {"law": law, "P": P, "acc": acc, "acc_se": acc_se, "slope": float(np.mean(slopes)),
            "slope_se": sd(slopes), "deepest": float(np.mean(deepest)), "replicates": per * batches,
            "seconds": seconds}


def theory_row(m: dict, pmax: int) -> dict:
    law, P, acc, se = m["law"], m["P"], m["acc"], m["acc_se"]
    mu, mu2 = law.mu, law.mu2
    allP = np.arange(1, pmax + 1)
    asym = T.asymptotic(law, allP)
    smooth = T.smooth_asymptotic(law, allP)
    ren_lo, ren_hi = T.renewal_bound_bracket(law, P)
    paper = T.paper_bound(law, allP)
    wl = T.wald_lorden_bound(law, allP)
    bad = np.nonzero(acc > paper)[0]  # P = bad + 1 where accepted exceeds the paper's bound
    first_paper = 1 if bad.size == 0 else (int(bad[-1]) + 2 if bad[-1] + 1 < pmax else None)
    window = allP >= P[0]
    span = law.lattice_span if 0 < law.lattice_span < math.inf else 0.0
    gamma, theta = T.biggins_speed(law)
    row = {
        "law": str(law), "mu": mu, "mu2": mu2, "lattice_span": span, "replicates": m["replicates"],
        "deterministic": bool(law.deterministic),
        "slope": m["slope"], "slope_se": m["slope_se"],
        "inv_mu": 1 / mu, "paper_slope": (mu + mu2) / mu**2,
        "asymptotic_fit_slope": fit_line(np.log(P), asym[P - 1])[0],
        "renewal_fit_slope": fit_line(np.log(P), ren_hi)[0],
        "P_max": pmax, "accepted_at_max": float(acc[-1]), "accepted_se_at_max": float(se[-1]),
        "asymptotic_at_max": float(asym[-1]), "smooth_asymptotic_at_max": float(smooth[-1]),
        "renewal_bound_at_max": float(ren_hi[-1]), "renewal_bound_width_at_max": float(ren_hi[-1] - ren_lo[-1]),
        "wald_lorden_at_max": float(wl[-1]), "paper_at_max": float(paper[-1]),
        "asymptotic_error_at_max": float(asym[-1] - acc[-1]),
        "asymptotic_error_range": [float(np.min((asym - acc)[window])), float(np.max((asym - acc)[window]))],
        "smooth_plus_h_error_range": ([float(np.min((smooth + span / (2 * mu) - acc)[window])),
                                       float(np.max((smooth + span / (2 * mu) - acc)[window]))] if span else None),
        "renewal_minus_accepted": [float(v) for v in ren_hi - acc[P - 1]],
        "renewal_exceeded_by_se": float(np.max((acc[P - 1] - ren_hi) / np.maximum(se[P - 1], 1e-300))
                                        if not law.deterministic else 0.0),
        "accepted_above_renewal_deterministic": float(np.max(acc[P - 1] - ren_hi)) if law.deterministic else None,
        "paper_holds_from_P": first_paper, "paper_fails_at_P1": bool(acc[0] > paper[0]),
        "biggins_gamma": gamma, "biggins_theta": theta if math.isfinite(theta) else None,
        "depth_measured": m["deepest"], "depth_predicted": float(T.predicted_depth(law, [pmax], (gamma, theta))[0]),
        "simulation_seconds": m["seconds"],
    }
    return row


def markdown(rows: list[dict], pmax: int, seed: int) -> str:
    e = int(math.log2(pmax))
    lines = [
        f"# Theory check: slope and offset of accepted(P), P = 2^6 .. 2^{e}",
        "",
        f"`python sims/verify_theory.py` (brw {__version__}, seed {seed}). slope: least squares of accepted(P) on "
        f"log P over the powers of two 2^6..2^{e} (mean of {BATCHES} batch fits; +- one standard error; "
        "deterministic laws are exact). asym slope: the same fit applied to the sharp asymptotic (it differs "
        "from 1/mu by the curvature of log(P + 1) and, for lattice laws, their log-periodic wiggle); renewal slope: "
        "the same fit applied to the renewal bound (exact numerics, no o(1) dropped). Offsets at P = 2^"
        f"{e}: accepted, the sharp asymptotic (lattice form where h > 0), the renewal bound (identity 6, upper "
        "end of its bracket), Wald-Lorden, the paper's bound without O(1). depth: deepest node, measured / "
        "predicted by Biggins.",
        "",
        "| law | mu | mu2 | h | slope | 1/mu | asym slope | renewal slope | paper slope | accepted | asymptotic "
        "| renewal | Wald-Lorden | paper | asym - acc range | depth meas/pred |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        se = "" if r["deterministic"] else f" +- {r['slope_se']:.4f}"
        ase = "" if r["deterministic"] else f" +- {r['accepted_se_at_max']:.3f}"
        lo, hi = r["asymptotic_error_range"]
        lines.append(
            f"| {r['law']} | {r['mu']:.3f} | {r['mu2']:.3f} | {r['lattice_span']:.3f} | {r['slope']:.4f}{se} | "
            f"{r['inv_mu']:.4f} | {r['asymptotic_fit_slope']:.4f} | {r['renewal_fit_slope']:.4f} | "
            f"{r['paper_slope']:.3f} | "
            f"{r['accepted_at_max']:.3f}{ase} | {r['asymptotic_at_max']:.3f} | {r['renewal_bound_at_max']:.3f} | "
            f"{r['wald_lorden_at_max']:.3f} | {r['paper_at_max']:.3f} | {lo:+.3f} .. {hi:+.3f} | "
            f"{r['depth_measured']:.1f} / {r['depth_predicted']:.1f} |")
    lat = [r for r in rows if r["smooth_plus_h_error_range"]]
    if lat:
        lines += ["", "Lattice laws: error of theory.md's 'smooth formula + h/(2 mu)' over the same P "
                      "(the lattice form's error is in the table):", ""]
        for r in lat:
            a, b = r["smooth_plus_h_error_range"]
            lines.append(f"- {r['law']} (h = {r['lattice_span']:.3f}): {a:+.3f} .. {b:+.3f}")
    lines += ["", "Where accepted(P) <= paper bound (no O(1)) holds from, measured: "
              + ", ".join(f"{r['law']}: P >= {r['paper_holds_from_P']}" for r in rows), ""]
    lines.append("")
    return "\n".join(lines)


def plot(measured: dict, pmax: int, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    specs = [s for s in PLOTTED if s in measured]
    if specs:
        fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), squeeze=False)
        for ax, spec in zip(axes.flat, specs):
            m = measured[spec]
            law, acc, se = m["law"], m["acc"], m["acc_se"]
            P = np.arange(1, pmax + 1)
            ax.plot(P, acc, "k", lw=2.2, label=f"accepted (simulated, {m['replicates']} trees)")
            if not law.deterministic:
                ax.fill_between(P, acc - 2 * se, acc + 2 * se, color="k", alpha=0.2, lw=0)
            grid = np.unique(np.round(np.logspace(0, math.log2(pmax), 80, base=2)).astype(int))
            ax.plot(grid, T.renewal_bound(law, grid), "C0-", lw=1.2, label="renewal bound (identity 6)")
            ax.plot(P, T.asymptotic(law, P), "C1--", lw=1.2, label="sharp asymptotic")
            if law.lattice_span > 0:
                h = law.lattice_span / (2 * law.mu)
                ax.plot(P, T.smooth_asymptotic(law, P) + h, "C1:", lw=1.2, label="smooth + h/(2 mu)")
            ax.plot(P, T.wald_lorden_bound(law, P), "C2-.", lw=1.2, label="Wald-Lorden")
            ax.plot(P, T.paper_bound(law, P), "C3-", lw=1.2, label="paper (mu+mu2) log P / mu^2")
            ax.set_xscale("log", base=2)
            ax.set_ylim(0, 1.15 * max(T.wald_lorden_bound(law, [pmax])[0], acc[-1]))
            ax.set_title(f"{law}   mu={law.mu:.3f} mu2={law.mu2:.3f}", fontsize=9)
            ax.set_xlabel("P (draft nodes)")
            ax.set_ylabel("accepted E[X]")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
        for ax in list(axes.flat)[len(specs):]:
            ax.axis("off")
        fig.tight_layout()
        path = out / "theory_bounds.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(str(path))

    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    P = np.arange(1, pmax + 1)
    for ax, random in zip(axes, (True, False)):
        for i, (spec, m) in enumerate(measured.items()):
            if m["law"].deterministic == random:
                continue
            err = T.asymptotic(m["law"], P) - m["acc"]
            ax.plot(P[63:], err[63:], lw=1.2, color=f"C{i % 10}", ls="-" if i < 10 else "--",
                    label=f"{spec} (mu={m['law'].mu:.2f})")
            if random:  # 2 standard errors of the simulated mean
                ax.fill_between(P[63:], err[63:] - 2 * m["acc_se"][63:], err[63:] + 2 * m["acc_se"][63:],
                                color=f"C{i % 10}", alpha=0.10, lw=0)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("P (draft nodes)")
        ax.set_ylabel("sharp asymptotic - accepted")
        ax.set_title("random laws (bands: 2 standard errors)" if random else "deterministic laws (exact)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2)
    fig.tight_layout()
    path = out / "theory_residuals.png"
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    written.append(str(path))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a CI slice: P to 2^12, five laws, few trees")
    ap.add_argument("--out", default="figures", help="output folder (default figures/)")
    ap.add_argument("--trace", action="append", default=[], help="extra law spec, e.g. trace:PATH (repeatable)")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    pmax = 2**12 if args.quick else 2**16
    laws = (QUICK if args.quick else FULL) + ([] if args.quick else trace_laws(args.trace))
    out = Path(args.out)
    name = "theory_check_quick" if args.quick else "theory_check"
    rows, measured = [], {}
    for spec, reps in laws:
        if args.quick and reps > 1:
            reps = max(reps, BATCHES)
        try:
            m = measure(spec, reps, pmax, args.seed)
        except Exception as e:  # a trace that cannot be loaded is skipped, loudly
            if spec.startswith("trace:"):
                print(f"skipping {spec}: {e}", file=sys.stderr)
                continue
            raise
        measured[spec] = m
        row = theory_row(m, pmax)
        rows.append(row)
        print(f"{spec:28s} mu={row['mu']:.3f} slope={row['slope']:.4f}+-{row['slope_se']:.4f} 1/mu={row['inv_mu']:.4f} "
              f"acc={row['accepted_at_max']:.3f} asym={row['asymptotic_at_max']:.3f} "
              f"ren={row['renewal_bound_at_max']:.3f} ({m['seconds']:.1f}s)", file=sys.stderr)
    doc = {"version": __version__, "seed": args.seed, "P_max": pmax, "batches": BATCHES, "laws": rows}
    write_text(out / f"{name}.json", json.dumps(doc, indent=1) + "\n")
    write_text(out / f"{name}.md", markdown(rows, pmax, args.seed))
    if not args.quick:
        for p in plot(measured, pmax, out):
            print(f"wrote {p}", file=sys.stderr)
    print(f"wrote {out / (name + '.json')} and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
