"""accepted(P) against the sampling temperature, 0.1 to 1: writes figures/temperature.{png,svg,json,md}
(``brw.studies.temperature``; the same as ``brw reproduce``'s temperature step).

For the bundled SmolLM2 traces (code, math, chat), at each temperature: the tempered i.i.d. walk and the tempered
recorded-prefix law simulated to P = 1024 (2000 trees each), the sharp asymptotic and the renewal bound of the
tempered i.i.d. law, the bundled real trees at T = 1 and T = 0.7, and P at T = 0; then where the theory leaves the
simulated i.i.d. walk by more than 5%, and the tempered laws' mu, mean top probability and share of
near-deterministic spine steps that say why.

    python sims/temperature.py                 # about 10 minutes on two busy cores
    python sims/temperature.py --quick         # seconds: one genre, two temperatures
    python sims/temperature.py --redraw        # the figure and table again, the real trees read afresh
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brw import figures, tables
from brw.files import write_text
from brw.studies.temperature import TEMPERATURES, from_dict, temperature_sweep

FIGURES = Path(__file__).resolve().parent.parent / "figures"
TOLERANCE = 0.05


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=FIGURES)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--redraw", action="store_true",
                    help="redraw from OUT/temperature.json, the bundled real trees read again (no simulation)")
    args = ap.parse_args(argv)
    figures.check_path(args.out / "temperature.png")
    if args.redraw:
        sw = from_dict(json.loads((args.out / "temperature.json").read_text()), real=True)
    elif args.quick:
        sw = temperature_sweep(("code",), (0.5, 1.0), (16, 64), replicates=32, seed=args.seed)
    else:
        sw = temperature_sweep(temperatures=TEMPERATURES, replicates=args.replicates, seed=args.seed)
    figures.temperature(sw, [args.out / "temperature.png", args.out / "temperature.svg"])
    d = sw.to_dict()
    d["breakdown"] = sw.breakdown(TOLERANCE)
    text = tables.temperature(d, TOLERANCE)
    write_text(args.out / "temperature.json", json.dumps(d, indent=1) + "\n")
    write_text(args.out / "temperature.md", "```\n" + text + "\n```\n\n`python sims/temperature.py`\n")
    print(text)


if __name__ == "__main__":
    main()
