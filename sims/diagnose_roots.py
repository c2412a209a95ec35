"""Where a law's error on real trees comes from: every real tree simulated from its own root row (a diagnostic,
never a prediction).

For each real tree of a genre, the law, fitted to the whole trace (in sample), is simulated with its root fixed
to the trace row the real tree grew from (REPLICATES trees each, seed = the tree's index). For ``prefix:`` and
``run:`` the root's recorded continuation then shapes the simulated tree, so this uses the text after the root:
it tells where the remaining error sits (a few trees, or all of them), not how well the law predicts. Printed
per P: the error of the mean over trees, the median of the per-tree errors, the share of the shortfall at Pmax
carried by the five trees short by most, and the error of the mean without the recorded generations of the
trees short by more than SHORT tokens at Pmax.

    python sims/diagnose_roots.py --results gemma3 --genre gemma3-math     # about a minute per law
    python sims/diagnose_roots.py --greedy gemma3-math-greedy32            # prefix: with other branches
"""

import argparse
import json

import numpy as np

from brw.solver import frontier
from brw.laws import parse_law
from brw.real.realtree import load_realtrees, trace_name
from brw.traces import BUNDLED

REPLICATES = 200
#: A tree whose real accepted(Pmax) exceeds its own-root simulation by more than this many tokens is "short".
SHORT = 5.0


def diagnose(results: str, genre: str, spec: str, replicates: int = REPLICATES) -> dict:
    res = load_realtrees(results)
    j = res.sources.index(genre)
    sel = res.arrays["source"] == j
    real, rows, ctx = res.accepted(genre), res.arrays["row"][sel], res.arrays["context"][sel]
    law = parse_law(spec)
    where = {int(r): i for i, (kind, r) in enumerate(law._origin) if kind == 0}  # trace row -> law row
    sims = []
    for t, r in enumerate(rows):
        object.__setattr__(law, "_roots", np.array([where[int(r)]]))  # the law's root rows, narrowed to this one
        sims.append(frontier(law, res.pmax, replicates, t).accepted)
    sims = np.array(sims)
    short = real[:, -1] - sims[:, -1]
    worst = np.argsort(-short)
    dropped = sorted({int(c) for c in ctx[short > SHORT]})
    keep = ~np.isin(ctx, dropped)
    P = [p for p in (1, 4, 16, 64, 256, 1024) if p <= res.pmax]
    idx = np.array(P) - 1
    return {"results": results, "genre": genre, "law": spec, "trees": int(rows.size), "P": P,
            "mean_error": (sims[:, idx].mean(0) / real[:, idx].mean(0) - 1).tolist(),
            "median_tree_error": np.median(sims[:, idx] / real[:, idx] - 1, axis=0).tolist(),
            "top5_share_of_shortfall": float(short[worst[:5]].sum() / short.sum()) if short.sum() > 0 else None,
            "short_generations": dropped, "trees_without_them": int(keep.sum()),
            "mean_error_without_them": (sims[keep][:, idx].mean(0) / real[keep][:, idx].mean(0) - 1).tolist(),
            "largest_real": np.round(real[worst[:5], -1], 2).tolist(),
            "their_simulation": np.round(sims[worst[:5], -1], 2).tolist()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="gemma3")
    ap.add_argument("--genre", default="gemma3-math")
    ap.add_argument("--replicates", type=int, default=REPLICATES)
    ap.add_argument("--greedy", default=None, help="the greedy branches prefix: takes (a bundled name or a file; "
                                                   "default: the trace's bundled NAME-greedy)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = load_realtrees(args.results)
    name = trace_name(res.meta["sources"][res.sources.index(args.genre)])
    branches = args.greedy or (f"{name}-greedy" if f"{name}-greedy" in BUNDLED else None)
    greedy = f",greedy={branches}" if branches else ""
    out = [diagnose(args.results, args.genre, spec, args.replicates)
           for spec in (f"run:trace={name}", f"prefix:trace={name}{greedy}")]
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for d in out:
        print(f"{d['law']} on {d['results']} {d['genre']} ({d['trees']} trees, each from its own root)")
        for key in ("mean_error", "median_tree_error", "mean_error_without_them"):
            print(f"  {key:26}" + "".join(f"  P={p}: {e:+6.1%}" for p, e in zip(d["P"], d[key])))
        print(f"  the five trees short by most carry {d['top5_share_of_shortfall']:.0%} of the shortfall at Pmax: "
              f"real {d['largest_real']} against {d['their_simulation']}; generations with a tree short by more "
              f"than {SHORT:g} tokens: {d['short_generations']} ({d['trees']} - {d['trees_without_them']} trees)")


if __name__ == "__main__":
    main()
