"""How many real trees a genre needs for its adjusted real mean to resolve a target relative standard error.

For each genre of a real-tree results file, the root- and greedy-adjusted real mean of ``brw compare``
(``brw.real.realtree.root_adjusted_mean`` with the trace's greedy covariates, 4 folds) gives a relative standard
error s_n at each P of the table from the n trees at hand. Sampling n of the trace's N answer positions without
replacement, s_n^2 = sigma^2 (1/n - 1/N), so the per-position relative variance is sigma^2 = s_n^2 / (1/n - 1/N)
and the count that reaches the target t is 1 / (t^2 / sigma^2 + 1/N); the genre needs the largest over P >= 4.
An estimate: sigma^2 comes from n trees itself, and the adjustment's leverage term shrinks as n grows.

    python sims/trees_needed.py smollm2-p1024 gemma3          # bundled names or .npz files; target 2%
    python sims/trees_needed.py gemma3 --target 0.015
"""

import argparse

import numpy as np

from brw.real.realtree import (answer_rows, bundled_greedy_covariates, load_realtrees, root_adjusted_mean,
                               trace_name)
from brw.traces import load_trace

FOLDS = 4


def needed(results: str, target: float) -> list[dict]:
    res = load_realtrees(results)
    P = [p for p in (4, 16, 64, 256, 1024) if p <= res.pmax]
    out = []
    for j, src in enumerate(res.meta["sources"]):
        name = trace_name(src)
        trace = load_trace(name)
        extra = bundled_greedy_covariates(name)
        sel = res.arrays["source"] == j
        n = int(sel.sum())
        N = answer_rows(trace).size
        m, se = root_adjusted_mean(res.accepted(res.sources[j]), res.arrays["row"][sel], trace, FOLDS, extra)
        rel = se[np.array(P) - 1] / m[np.array(P) - 1]
        sigma2 = rel**2 / (1 / n - 1 / N)
        need = np.ceil(1 / (target**2 / sigma2 + 1 / N)).astype(int)
        out.append({"genre": res.sources[j], "trees": n, "positions": N, "P": P, "relative_stderr": rel.tolist(),
                    "needed": need.tolist(), "needed_max": int(need.max())})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="bundled real-tree results names or .npz files")
    ap.add_argument("--target", type=float, default=0.02, help="relative standard error to reach (default 0.02)")
    args = ap.parse_args(argv)
    for results in args.results:
        for g in needed(results, args.target):
            print(f"{results} {g['genre']}: {g['trees']} trees of {g['positions']} positions; adjusted SE "
                  + ", ".join(f"P={p} {r:.2%}" for p, r in zip(g["P"], g["relative_stderr"]))
                  + f"; {args.target:.1%} needs {g['needed_max']} trees (per P: {g['needed']})")


if __name__ == "__main__":
    main()
