"""Real optimal trees against every model: writes figures/compare.{json,md,png} (``brw compare``, recorded).

    python sims/compare_real.py            # 2000 simulated trees per law, seed 0, 4 regimes, 12 components
"""

import argparse
import json
from pathlib import Path

from brw import figures, tables
from brw.files import write_text
from brw.studies.compare import compare

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regimes", type=int, default=4)
    ap.add_argument("--components", type=int, default=12)
    ap.add_argument("--out", type=Path, default=FIGURES)
    args = ap.parse_args(argv)
    figures.check_path(args.out / "compare.png")
    res = compare(replicates=args.replicates, seed=args.seed, regimes=args.regimes, components=args.components)
    figures.compare(res, args.out / "compare.png")
    d = res.to_dict(curves=False)
    text = tables.compare(d)
    write_text(args.out / "compare.json", json.dumps(d, indent=1) + "\n")
    write_text(args.out / "compare.md", "```\n" + text + "\n```\n\n`python sims/compare_real.py`\n")
    print(text)


if __name__ == "__main__":
    main()
