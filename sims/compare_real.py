"""Real optimal trees against every model, out of sample: writes figures/compare*.{json,md,png} and
figures/depth_gap.png (``brw compare``, recorded).

For each bundled real-tree results file (``smollm2``: 128 contexts per genre to P = 256; ``smollm2-p1024``: 64
of them per genre to P = 1024, with per-node statistics), ``brw compare`` with 4-fold scoring over recorded
generations; for the deepest file also the real trees' node statistics and the figure of where their extra
depth comes from.

    python sims/compare_real.py            # 2000 simulated trees per law and fold, seed 0: a few minutes
"""

import argparse
import json
from pathlib import Path

from brw import figures, tables
from brw.files import write_text
from brw.realtree import BUNDLED, load_realtrees, node_statistics
from brw.studies.compare import compare

FIGURES = Path(__file__).resolve().parent.parent / "figures"
#: Bundled results -> the name its outputs carry.
RUNS = {"smollm2": "compare", "smollm2-p1024": "compare-p1024"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regimes", type=int, default=4)
    ap.add_argument("--components", type=int, default=12)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=FIGURES)
    args = ap.parse_args(argv)
    figures.check_path(args.out / "compare.png")
    for results, stem in RUNS.items():
        if not BUNDLED[results].is_file():
            continue
        res = compare(results, replicates=args.replicates, seed=args.seed, regimes=args.regimes,
                      components=args.components, folds=args.folds)
        figures.compare(res, args.out / f"{stem}.png")
        d = res.to_dict(curves=False)
        text = tables.compare(d)
        trees = load_realtrees(results)
        if trees.arrays["entropy"].size and not (trees.arrays["entropy"] != trees.arrays["entropy"]).all():
            nodes = node_statistics(trees)
            d["node_statistics"] = nodes
            text += "\n\n" + tables.node_statistics(nodes)
            figures.depth_gap(res, nodes, args.out / "depth_gap.png")
        write_text(args.out / f"{stem}.json", json.dumps(d, indent=1) + "\n")
        write_text(args.out / f"{stem}.md", "```\n" + text + "\n```\n\n`python sims/compare_real.py`\n")
        print(text)


if __name__ == "__main__":
    main()
