"""Speed of the batched real-tree expansion against the naive loop, side by side on the same contexts.

For one answer position per bundled trace (code, math, chat; the first of ``pick_rows(trace, 1, seed)``),
SmolLM2-135M-Instruct expands the best-first tree three ways: the naive loop (one full forward pass over context
+ path per node, no cache) and the batched expansion (KV cache, tree attention, lookahead) at the same small P,
then the batched expansion at P = 256. Prints a table and writes figures/realtree_speed.json. Timings on a
shared CPU are noisy: run it when the machine is quiet, and compare within one run.

    python sims/realtree_speed.py [--P-naive 256] [--threads 1]     # about 5 minutes on 2 quiet cores

Measured (figures/realtree_speed.json, one torch thread, other jobs on the machine): at P = 256 the naive loop
makes 2.2-3.5 nodes/s and the batched expansion 95-111 nodes/s (28-44x), with the same 256 nodes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--P-naive", dest="p_naive", type=int, default=256,
                    help="P of the side-by-side run (default 256; the naive loop takes minutes per context)")
    ap.add_argument("--P", dest="pmax", type=int, default=256, help="P of the batched-only run (default 256)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "figures" / "realtree_speed.json")
    args = ap.parse_args(argv)

    import numpy as np
    from brw.real.expansion import DEFAULT_BATCH, DEFAULT_LOOKAHEAD, expand, expand_naive
    from brw.files import write_text
    from brw.real.models import load_model, set_threads
    from brw.real.realtree import pick_rows
    from brw.traces import load_trace

    set_threads(args.threads)
    lm = load_model("smollm2", device="cpu")
    rows = []
    for genre in ("code", "math", "chat"):
        tr = load_trace(genre)
        r = int(pick_rows(tr, 1, args.seed)[0])
        ids = tr.context_ids(int(tr.context[r])).tolist()
        off = int(tr.offset[r])
        ctx, ahead = ids[:off], ids[off:off + DEFAULT_LOOKAHEAD]
        naive = expand_naive(lm.model, ctx, args.p_naive)
        small = expand(lm.model, ctx, args.p_naive, lookahead=ahead)
        big = expand(lm.model, ctx, args.pmax, lookahead=ahead)
        row = {"genre": genre, "row": r, "context_tokens": off,
               "naive_nodes_per_s": args.p_naive / naive.seconds, "naive_s": naive.seconds,
               "batched_nodes_per_s": args.p_naive / small.seconds, "batched_s": small.seconds,
               "speedup": naive.seconds / small.seconds,
               "same_nodes": naive.paths() == small.paths(),
               "max_abs_diff": float(np.max(np.abs(naive.accepted - small.accepted))),
               f"batched_P{args.pmax}_s": big.seconds, f"batched_P{args.pmax}_nodes_per_s": args.pmax / big.seconds,
               f"P{args.pmax}_passes": big.forward_passes, f"P{args.pmax}_evaluated": big.evaluated,
               f"P{args.pmax}_depth": int(big.depth.max()), f"accepted_P{args.pmax}": float(big.accepted[-1])}
        rows.append(row)
        print(json.dumps(row), flush=True)
    res = {"model": lm.meta["model"], "threads": args.threads, "batch": DEFAULT_BATCH,
           "lookahead": DEFAULT_LOOKAHEAD, "P_naive": args.p_naive, "P": args.pmax, "rows": rows,
           "note": "wall-clock seconds on a shared 2-core CPU (other jobs running): noisy"}
    write_text(args.out, json.dumps(res, indent=1) + "\n")
    print(f"{'genre':<6} {'ctx':>5} {'naive n/s':>10} {'batched n/s':>12} {'speed-up':>9} {'same':>5} "
          f"{'P=' + str(args.pmax) + ' s':>9} {'n/s':>7} {'passes':>7} {'depth':>6}")
    for r in rows:
        print(f"{r['genre']:<6} {r['context_tokens']:>5} {r['naive_nodes_per_s']:>10.2f} "
              f"{r['batched_nodes_per_s']:>12.2f} {r['speedup']:>9.1f} {str(r['same_nodes']):>5} "
              f"{r[f'batched_P{args.pmax}_s']:>9.2f} {r[f'batched_P{args.pmax}_nodes_per_s']:>7.1f} "
              f"{r[f'P{args.pmax}_passes']:>7} {r[f'P{args.pmax}_depth']:>6}")


if __name__ == "__main__":
    main()
