"""Several runs of sims/specdecode.py, each with its own decoder seed, read as one: the proof targets of issue 25 on
the pooled blocks, beside each run's own.

    python sims/specdecode_pool.py --state RUN0.json --state RUN1.json --state RUN2.json --out figures

Every state must hold a finished run of the same settings apart from the seed. The pooled analysis is
brw.studies.specdecode.analyse on the blocks of every run (renumbered so that no two runs share a block) and the
cost passes of every run; its block bootstrap resamples blocks within each run (strata), so each resample keeps
every run's share of the blocks and the cost passes of each run beside its blocks. A run's own result is the same
analysis on its blocks alone. Writes specdecode-pooled.json and specdecode-pooled.md into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from brw.files import write_text
from brw.studies.specdecode import analyse

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path) -> dict:
    state = json.loads(path.read_text())
    s = state["settings"]
    blocks = {(x["prompt"], x["repeat"]) for x in state["records"]}
    if len(blocks) != 3 * s["prompts"] * s["repeats"] or not state["costs"]:
        sys.exit(f"{path}: an unfinished run ({len(blocks)} blocks); finish it with sims/specdecode.py first")
    return state


def pooled(states: list[dict], *, k0: int, boot: int, seed: int) -> dict:
    """The analysis of the blocks of every run: block r of run i becomes repeat i * repeats + r."""
    reps = states[0]["settings"]["repeats"]
    records, costs, strata = [], [], {}
    for i, s in enumerate(states):
        records += [{**x, "repeat": i * reps + x["repeat"]} for x in s["records"]]
        costs += [{**c, "block": [c["block"][0], i * reps + c["block"][1]]} for c in s["costs"]]
        strata.update({(x["prompt"], i * reps + x["repeat"]): i for x in s["records"]})
    st = states[0]["settings"]
    return analyse(records, costs, drafters=st["drafters"], kmax=st["kmax"], headline_k0=k0, boot=boot, seed=seed,
                   strata=strata)


def _target(res: dict) -> dict:
    """Per drafter, the headline k0's largest |predicted / measured - 1| with its interval, the recommended k, the
    best measured k, and whether the recommendation's measured speed is within 5% of the best's."""
    out = {}
    for d in res["drafters"]:
        h = d["headline"]
        out[d["drafter"]] = {"k0": h["k0"], "max_error": h["max_error"], "max_error_ci": h["max_error_ci"],
                             "recommended_k": h["recommended_k"], "best_measured_k": d["best_measured_k"],
                             "target_i": h["target_i"], "plain_scaled_max_error": h["plain_scaled"]["max_error"],
                             "plain_scaled_max_error_ci": h["plain_scaled"]["max_error_ci"]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", type=Path, action="append", required=True, help="a finished run's state (repeatable)")
    ap.add_argument("--k0", type=int, default=4, help="the k whose log predicts every k (default 4)")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    ap.add_argument("--out", type=Path, default=ROOT / "figures", help="writes specdecode-pooled.{json,md}")
    args = ap.parse_args(argv)
    states = [_load(p) for p in args.state]
    base = {k: v for k, v in states[0]["settings"].items() if k != "seed"}
    for p, s in zip(args.state, states):
        if {k: v for k, v in s["settings"].items() if k != "seed"} != base:
            sys.exit(f"{p}: other settings than {args.state[0]} ({s['settings']} against {states[0]['settings']})")
    seeds = [s["settings"]["seed"] for s in states]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"two runs share a decoder seed ({seeds}): the same requests twice are not independent runs")
    st = states[0]["settings"]
    runs = []
    for p, s in zip(args.state, states):
        res = analyse(s["records"], s["costs"], drafters=st["drafters"], kmax=st["kmax"], headline_k0=args.k0,
                      boot=args.boot, seed=0)
        loads = [x for c in s["chunks"] for x in (c["load_start"][0], c["load_end"][0])]
        runs.append({"state": str(p), "seed": s["settings"]["seed"], "blocks": res["blocks"],
                     "plain": res["plain"], "load": [min(loads), max(loads)], "targets": _target(res)})
    pool = pooled(states, k0=args.k0, boot=args.boot, seed=0)
    report = {"settings": base, "seeds": seeds, "k0": args.k0, "boot": args.boot, "runs": runs,
              "pooled": {"blocks": pool["blocks"], "plain": pool["plain"], "targets": _target(pool),
                         "drafters": [{"drafter": d["drafter"], "measured": d["measured"],
                                       "headline": d["headline"]} for d in pool["drafters"]]}}
    lines = ["# The real speculative decoder, several runs pooled", "",
             "`python sims/specdecode_pool.py " + " ".join(f"--state STATE{s['settings']['seed']}" for s in states)
             + "`, where STATE*S* is the `--state` of a finished `python sims/specdecode.py --seed S` run (settings "
             + json.dumps(base) + ")", "",
             f"Headline k0 = {args.k0}: the log at k = k0 predicts every k (the stated model, as spent). Intervals: "
             f"95% block bootstrap ({args.boot} resamples; pooled: blocks resampled within each run). Target (i): the "
             "recommended k's measured speed within 5% of the best measured k's. Target (ii): predicted tokens/s "
             "within 10% of measured at every k = 0..8.", "",
             "| run | load (1-min) | plain tok/s (95%) | drafter | largest error | 95% interval | "
             "plain_scaled: largest error (95%) | recommended k | best measured k |", "|---|---|---|---|---|---|---|---|---|"]

    def rows(name, load, res_plain, targets):
        for d, t in targets.items():
            ci, ps = t["max_error_ci"], t["plain_scaled_max_error_ci"]
            lines.append(f"| {name} | {load} | {res_plain['tokens_per_second']:.2f} "
                         f"[{res_plain['ci'][0]:.2f}, {res_plain['ci'][1]:.2f}] | `{d}` | {t['max_error']:.3f} | "
                         f"[{ci[0]:.3f}, {ci[1]:.3f}] | {t['plain_scaled_max_error']:.3f} [{ps[0]:.3f}, {ps[1]:.3f}] | "
                         f"{t['recommended_k']} | {t['best_measured_k']} |")

    for r in runs:
        rows(f"seed {r['seed']}", f"{r['load'][0]:.1f}-{r['load'][1]:.1f}", r["plain"], r["targets"])
    rows("pooled (seeds " + ", ".join(map(str, seeds)) + ")", "-", pool["plain"], _target(pool))
    errs = {d: [r["targets"][d]["max_error"] for r in runs] for d in runs[0]["targets"]}
    lines += ["", "Spread of the largest error over the runs: " + "; ".join(
        f"`{d}` {min(v):.3f} to {max(v):.3f} (mean {np.mean(v):.3f})" for d, v in errs.items()) + ".", "",
        "## Pooled: predicted / measured at every k (headline k0)", "",
        "| drafter | k | measured tok/s (95%) | predicted | predicted / measured | 95% interval | plain_scaled: predicted / "
        "measured | 95% interval |", "|---|---|---|---|---|---|---|---|"]
    for d in pool["drafters"]:
        h = d["headline"]
        for k in range(len(h["ratio"])):
            m = d["measured"][k]
            iv = h["ratio_ci"][k]
            ps, pv = h["plain_scaled"]["ratio"][k], h["plain_scaled"]["ratio_ci"][k]
            lines.append(f"| `{d['drafter']}` | {k} | {m['tokens_per_second']:.2f} [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}] | "
                         f"{h['predicted'][k]:.2f} | {h['ratio'][k]:.3f} | [{iv[0]:.3f}, {iv[1]:.3f}] | {ps:.3f} | "
                         f"[{pv[0]:.3f}, {pv[1]:.3f}] |")
    args.out.mkdir(parents=True, exist_ok=True)
    rounded = json.loads(json.dumps(report), parse_float=lambda x: round(float(x), 6))
    write_text(args.out / "specdecode-pooled.json", json.dumps(rounded, indent=1, allow_nan=False) + "\n")
    write_text(args.out / "specdecode-pooled.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
