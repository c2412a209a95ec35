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
    python sims/diagnose_roots.py --out figures/diagnose-gemma3-math.md    # the report as a file too
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from brw.files import write_text
from brw.laws import parse_law
from brw.real.realtree import load_realtrees, trace_name
from brw.solver import frontier
from brw.traces import BUNDLED

REPLICATES = 200
#: Depth bands of a real tree's spine (its chain of most probable children): what greedy branches of 8 steps
#: record, what 32 would add, and what lies beyond.
BANDS = ((1, 8), (9, 32), (33, 1 << 30))
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


def spine_bands(results: str, genre: str) -> dict:
    """How a genre's real accepted(Pmax) sits along the trees' spines: the share of the mean in spine nodes at
    each depth band of BANDS, and for the two trees with the most spine mass beyond depth 32 their spine's
    length and the shortest period of its tokens past depth 8 (a repetition loop has a small one)."""
    res = load_realtrees(results)
    sel = np.flatnonzero(res.arrays["source"] == res.sources.index(genre))
    band, total, deep = np.zeros((sel.size, len(BANDS))), np.zeros(sel.size), []
    for t, i in enumerate(sel):
        par = res.arrays["parent"][i].astype(np.int64)
        prob = np.diff(res.arrays["accepted"][i].astype(np.float64), prepend=0.0)
        node, spine = -1, []
        while True:
            kids = np.flatnonzero(par == node)
            if kids.size == 0:
                break
            node = int(kids[np.argmax(prob[kids])])
            spine.append(node)
        p = prob[spine]
        band[t] = [p[lo - 1:hi].sum() for lo, hi in BANDS]
        total[t] = prob.sum()
        tok = res.arrays["token"][i][spine][8:]
        period = next((k for k in range(1, tok.size // 2 + 1) if np.array_equal(tok[k:], tok[:-k])), None)
        deep.append((float(band[t, -1]), len(spine), period, int(res.arrays["context"][i]), float(total[t])))
    top = sorted(deep, key=lambda x: -x[0])[:2]
    return {"results": results, "genre": genre, "bands": [list(b) for b in BANDS],
            "share_of_mean": (band.mean(0) / total.mean()).tolist(),
            "deepest_spines": [{"mass_beyond_32": m, "spine": n, "period": per, "generation": g, "accepted": a}
                               for m, n, per, g, a in top],
            "their_share_beyond_32": float(sum(m for m, *_ in top) / max(band[:, -1].sum(), 1e-300))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="gemma3")
    ap.add_argument("--genre", default="gemma3-math")
    ap.add_argument("--replicates", type=int, default=REPLICATES)
    ap.add_argument("--greedy", default=None, help="the greedy branches prefix: takes (a bundled name or a file; "
                                                   "default: the trace's bundled NAME-greedy)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="also write the report to this file (Markdown)")
    args = ap.parse_args(argv)
    res = load_realtrees(args.results)
    name = trace_name(res.meta["sources"][res.sources.index(args.genre)])
    branches = args.greedy or (f"{name}-greedy" if f"{name}-greedy" in BUNDLED else None)
    greedy = f",greedy={branches}" if branches else ""
    out = [diagnose(args.results, args.genre, spec, args.replicates)
           for spec in (f"run:trace={name}", f"prefix:trace={name}{greedy}")]
    bands = spine_bands(args.results, args.genre)
    if args.json:
        print(json.dumps({"laws": out, "spine": bands}, indent=1))
        return
    lines = []
    for d in out:
        lines.append(f"{d['law']} on {d['results']} {d['genre']} ({d['trees']} trees, each from its own root)")
        for key in ("mean_error", "median_tree_error", "mean_error_without_them"):
            lines.append(f"  {key:26}" + "".join(f"  P={p}: {e:+6.1%}" for p, e in zip(d["P"], d[key])))
        lines.append(f"  the five trees short by most carry {d['top5_share_of_shortfall']:.0%} of the shortfall at "
                     f"Pmax: real {d['largest_real']} against {d['their_simulation']}; generations with a tree short "
                     f"by more than {SHORT:g} tokens: {d['short_generations']} ({d['trees']} - "
                     f"{d['trees_without_them']} trees)")
    lines.append(f"{args.genre}'s real accepted({res.pmax}) along the spines: " + ", ".join(
        f"depth {lo}-{hi if hi < 1 << 20 else 'on'} {x:.1%}" for (lo, hi), x in zip(BANDS, bands["share_of_mean"]))
        + f" of the mean; the two trees with most spine mass beyond depth 32 hold "
        f"{bands['their_share_beyond_32']:.0%} of it: " + "; ".join(
            f"generation {t['generation']}, accepted {t['accepted']:.1f}, spine {t['spine']} deep, "
            f"{t['mass_beyond_32']:.1f} beyond depth 32, tokens past depth 8 repeating with period {t['period']}"
            for t in bands["deepest_spines"]))
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        command = " ".join(["python", "sims/diagnose_roots.py", *(sys.argv[1:] if argv is None else argv)])
        write_text(args.out, "```\n" + text + f"\n```\n\n`{command}`\n")


if __name__ == "__main__":
    main()
