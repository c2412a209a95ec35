"""Real optimal trees against every model, out of sample: writes figures/compare*.{json,md,png} and
figures/depth_gap.png (``brw compare``, recorded).

For each bundled real-tree results file (``smollm2``: SmolLM2-135M to P = 256; ``smollm2-p1024``: the first of
the same positions per genre to P = 1024; ``gemma3``: Gemma 3 270M to P = 256; each file says how many contexts
it holds), ``brw compare`` with 4-fold scoring over recorded generations; for files with per-node statistics
also those statistics and the figure of where the real trees' extra depth comes from (figures/depth_gap*.png).

    python sims/compare_real.py                    # 2000 simulated trees per law and fold, seed 0: ~30 minutes
    python sims/compare_real.py --results gemma3   # one file only
    python sims/compare_real.py --results gemma3 --branches gemma3-math=PATH --tag greedy32
        # prefix: with other greedy branches for one trace (figures/compare-gemma3-greedy32.*; no depth-gap figure)
    python sims/compare_real.py --summary-only     # figures/real-summary.md again from the files above

Every run ends by writing figures/real-summary.md (``brw.tables.real_summary``) from whichever of the files in
SUMMARY exist: per model and genre, the adjusted real mean's precision and ``prefix:``'s worst error over P
with its 95% interval, and every simulated law's worst error; the documentation includes it rather than copying
its numbers.
"""

import argparse
import json
from pathlib import Path

from brw import figures, tables
from brw.files import write_text
from brw.real.realtree import BUNDLED, load_realtrees, node_statistics, spine_statistics
from brw.studies.compare import compare

FIGURES = Path(__file__).resolve().parent.parent / "figures"
#: Bundled results -> the name its outputs carry (and the suffix of its depth-gap figure).
RUNS = {"smollm2": ("compare", None), "smollm2-p1024": ("compare-p1024", ""), "gemma3": ("compare-gemma3", "-gemma3")}
#: The files figures/real-summary.md reads (when they exist) -> their label there and the genres it shows (None:
#: all; a run with other branches for one trace shows that trace's genre, the others being the untagged run's).
SUMMARY = {"compare-p1024": ("SmolLM2-135M, P <= 1024", None),
           "compare": ("SmolLM2-135M, P <= 256 (first 128 per genre)", None),
           "compare-gemma3": ("Gemma 3 270M, P <= 256", None),
           "compare-gemma3-greedy32": ("Gemma 3 270M, P <= 256, math's branches 32 deep", ("gemma3-math",))}


def write_summary(out: Path) -> str:
    """figures/real-summary.md from the comparisons in ``out`` (see SUMMARY)."""
    runs, stems = {}, []
    for stem, (label, genres) in SUMMARY.items():
        if (out / f"{stem}.json").is_file():
            d = json.loads((out / f"{stem}.json").read_text())
            if genres is not None:
                d["genres"] = {g: v for g, v in d["genres"].items() if g in genres}
            runs[label] = d
            stems.append(stem)
    if not runs:
        raise SystemExit(f"compare_real.py: no comparison in {out} ({', '.join(SUMMARY)}.json)")
    text = tables.real_summary(runs)
    sources = ", ".join(f"`{stem}.json`" for stem in stems)
    write_text(out / "real-summary.md", text + f"\n\nFrom {sources}; `python sims/compare_real.py --summary-only`.\n")
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regimes", type=int, default=4)
    ap.add_argument("--components", type=int, default=12)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=FIGURES)
    ap.add_argument("--results", default=",".join(RUNS), help=f"comma-separated subset of {','.join(RUNS)}")
    ap.add_argument("--branches", default="", help="TRACE=BRANCHES,...: the greedy branches prefix: takes for a trace "
                                                   "(default: its bundled NAME-greedy)")
    ap.add_argument("--tag", default="", help="added to the output names (with --branches)")
    ap.add_argument("--summary-only", action="store_true", help="only write real-summary.md from the files in --out")
    args = ap.parse_args(argv)
    if args.summary_only:
        print(write_summary(args.out))
        return
    branches = dict(pair.split("=", 1) for pair in args.branches.split(",") if pair)
    figures.check_path(args.out / "compare.png")
    chosen = args.results.split(",")
    if set(chosen) - set(RUNS):
        ap.error(f"--results takes names among {', '.join(RUNS)}")
    for results in chosen:
        stem, gap = RUNS[results]
        if not BUNDLED[results].is_file():
            continue
        if args.tag:
            stem, gap = f"{stem}-{args.tag}", None
        res = compare(results, replicates=args.replicates, seed=args.seed, regimes=args.regimes,
                      components=args.components, folds=args.folds, branches=branches)
        figures.compare(res, [args.out / f"{stem}.png", args.out / f"{stem}.svg"])
        d = res.to_dict(curves=False)
        text = tables.compare(d)
        trees = load_realtrees(results)
        if gap is not None:
            nodes = node_statistics(trees)
            d["node_statistics"] = nodes
            d["spine_statistics"] = spine_statistics(trees)
            text += "\n\n" + tables.node_statistics(nodes) + "\n\n" + tables.spine_statistics(d["spine_statistics"])
            figures.depth_gap(res, nodes, args.out / f"depth_gap{gap}.png")
        write_text(args.out / f"{stem}.json", json.dumps(d, indent=1) + "\n")
        how = f"`python sims/compare_real.py --results {results}" + (
            f" --branches {args.branches} --tag {args.tag}`" if args.tag else "`")
        write_text(args.out / f"{stem}.md", "```\n" + text + f"\n```\n\n{how}\n")
        print(text)
    write_summary(args.out)


if __name__ == "__main__":
    main()
