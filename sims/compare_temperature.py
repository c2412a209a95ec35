"""SmolLM2's real optimal trees at T = 0.7, scored out of sample: writes figures/compare-t07.{json,md,png}.

The bundled trees ``smollm2-t07-p1024`` (128 answer positions per genre of the traces sampled at T = 0.7,
P <= 1024; sims/realtrees.py --temperature 0.7 --pmax 1024 --contexts 128, extended in stages)
are scored by ``brw compare`` exactly as the trees at T = 1 are (4-fold over recorded generations, against the plain
and the root-adjusted real means), twice:

- (A) laws fitted to the traces recorded at T = 0.7 (``code-t07``, ...: the text the sampler visits at 0.7);
- (B) laws fitted to the T = 1 traces of the same prompts and tempered to 0.7 (``brw compare --temperature 0.7
  --traces code-t07=code,...``: the T = 1 text, every row tempered exactly).

Each relative error comes with its 95% interval, the real and the predicted noise combined (delta method on
(prediction - real) / real). The difference A - B is the text the sampler visits (both laws are at T = 0.7); the
tempering itself is B at 0.7 against the same laws at T = 1 (figures/compare-p1024.json: ``brw compare --results
smollm2-p1024``), beside the real trees' own change from T = 1 to 0.7.

    python sims/compare_temperature.py       # 2000 simulated trees per law and fold: 4 minutes on two quiet cores
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from brw import figures, tables
from brw.files import write_text
from brw.studies.compare import SIMULATORS, compare

FIGURES = Path(__file__).resolve().parent.parent / "figures"
RESULTS = "smollm2-t07-p1024"
GENRES = ("code", "math", "chat")
Z95 = 1.959963984540054


def errors(g: dict, adjusted: bool) -> dict:
    """Per simulator: relative errors against the (root-adjusted) real mean with 95% intervals, real and
    predicted noise combined."""
    real = np.asarray(g["real_adjusted" if adjusted else "real"])
    real_se = np.asarray(g["real_adjusted_stderr" if adjusted else "real_stderr"])
    out = {}
    for m in SIMULATORS:
        pred = np.asarray(g["models"][m]["accepted"])
        se = np.asarray(g["models"][m]["stderr"])
        rel = (pred - real) / real
        rel_se = np.sqrt((se / real) ** 2 + (pred * real_se / real**2) ** 2)
        out[m] = {"relative_error": rel.tolist(), "low": (rel - Z95 * rel_se).tolist(),
                  "high": (rel + Z95 * rel_se).tolist(), "max_abs": float(np.max(np.abs(rel)))}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=FIGURES)
    args = ap.parse_args(argv)
    figures.check_path(args.out / "compare-t07.png")
    kw = dict(replicates=args.replicates, seed=args.seed, folds=args.folds)
    fitted = compare(RESULTS, **kw)
    tempered = compare(RESULTS, T=0.7, traces={f"{g}-t07": g for g in GENRES}, **kw)
    figures.compare(fitted, args.out / "compare-t07.png")
    figures.compare(tempered, args.out / "compare-t07-tempered.png")
    a, b = fitted.to_dict(curves=False), tempered.to_dict(curves=False)
    d = {"P": a["P"], "replicates": args.replicates, "seed": args.seed, "folds": args.folds,
         "fitted_to_t07": a, "tempered_from_t1": b, "genres": {}}
    lines = [f"SmolLM2 real trees at T = 0.7 ({RESULTS}), {args.folds}-fold out of sample, {args.replicates} trees per "
             "law and fold; relative error [95% interval] against the plain / root-adjusted real mean", ""]
    for name in a["genres"]:
        ga, gb = a["genres"][name], b["genres"][name]
        rec = {"real": ga["real"], "real_stderr": ga["real_stderr"], "real_adjusted": ga["real_adjusted"],
               "real_adjusted_stderr": ga["real_adjusted_stderr"], "mu_fitted": ga["mu"], "mu_tempered": gb["mu"]}
        for tag, g in (("fitted", ga), ("tempered", gb)):
            rec[tag] = {"plain": errors(g, False), "adjusted": errors(g, True)}
        # the text the sampler visits: fitted (T = 0.7 text) minus tempered (T = 1 text), both at T = 0.7
        rec["text_effect"] = {m: (np.asarray(ga["models"][m]["accepted"]) - np.asarray(gb["models"][m]["accepted"])
                                  ).tolist() for m in SIMULATORS}
        d["genres"][name] = rec
        lines.append(f"{name}: real " + ", ".join(f"P={p} {r:.3f} +- {s:.3f}" for p, r, s in
                                                    zip(a["P"], ga["real"], ga["real_stderr"]))
                     + (f"; mu(0.7 text) = {ga['mu']:.3f}, mu(T = 1 text tempered) = {gb['mu']:.3f}"
                        if isinstance(ga["mu"], float) and math.isfinite(ga["mu"]) else ""))
        for tag, label in (("fitted", "A fitted to the T = 0.7 traces"), ("tempered", "B the T = 1 traces tempered")):
            for m in ("empirical", "ctx", "run", "prefix"):
                e, ea = rec[tag]["plain"][m], rec[tag]["adjusted"][m]
                lines.append(f"  {label:32} {m:9} " + "  ".join(
                    f"P={p}: {x:+.1%} [{lo:+.1%}, {hi:+.1%}] / {y:+.1%}"
                    for p, x, lo, hi, y in zip(a["P"], e["relative_error"], e["low"], e["high"], ea["relative_error"])))
        lines.append("  text effect (A - B), prefix: " + ", ".join(
            f"P={p} {x:+.3f}" for p, x in zip(a["P"], rec["text_effect"]["prefix"])))
    text = "\n".join(lines) + "\n\n" + tables.compare(a) + "\n\n" + tables.compare(b)
    write_text(args.out / "compare-t07.json", json.dumps(d, indent=1) + "\n")
    write_text(args.out / "compare-t07.md", "```\n" + text + "\n```\n\n`python sims/compare_temperature.py`\n")
    print(text)


if __name__ == "__main__":
    main()
