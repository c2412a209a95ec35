"""Spot-check bundled real trees against the one-node-at-a-time reference: for a few trees of a results file,
expand the same context again with ``brw.real.expansion.expand_naive`` (one full forward pass per node, no KV cache)
and compare the first NODES nodes (tokens and parents exactly, accepted(P) to float32 rounding).

    python sims/check_realtrees.py --results gemma3 --trees 0,20,200,383     # about a minute
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main(argv=None):
    from brw.real.expansion import expand_naive
    from brw.real.models import load_model, set_threads
    from brw.real.realtree import BUNDLED, load_realtrees
    from brw.traces import load_trace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="smollm2", help=f"bundled results ({', '.join(BUNDLED)}) or a file")
    ap.add_argument("--model", default=None, help="the model (default: smollm2, or gemma3 for Gemma's results)")
    ap.add_argument("--trees", default="0,1", help="comma-separated tree indices")
    ap.add_argument("--nodes", type=int, default=64, help="nodes compared per tree")
    args = ap.parse_args(argv)
    res = load_realtrees(args.results)
    model = args.model or ("gemma3" if str(res.meta.get("model", "")).startswith("Gemma") else "smollm2")
    set_threads(1)
    lm = load_model(model, device="cpu")
    a, bad = res.arrays, 0
    for i in (int(t) for t in args.trees.split(",")):
        trace = load_trace(res.sources[a["source"][i]])
        ctx = [int(t) for t in trace.context_ids(int(a["context"][i]))[:int(a["offset"][i])]]
        ref = expand_naive(lm.model, ctx, args.nodes, temperature=res.temperatures[a["source"][i]])
        same = bool(np.array_equal(ref.token, a["token"][i][:args.nodes])
                    and np.array_equal(ref.parent, a["parent"][i][:args.nodes]))
        diff = float(np.max(np.abs(ref.accepted - a["accepted"][i][:args.nodes])))
        bad += not same or diff > 1e-4
        print(json.dumps({"tree": i, "source": res.sources[a["source"][i]], "context_tokens": len(ctx),
                          "same_nodes": same, "max_abs_accepted_diff": diff}), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
