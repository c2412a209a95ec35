"""Which predictions of the theory hold? Slope and offset of accepted(P) against every bound, for many laws.

Runs ``brw.studies.theory_check`` (its simulations are one ``brw.sweep``, stored under --sweep-out so that a
rerun computes only what is missing) and writes figures/theory_check.{json,md} and, for the full run, the
figures theory_bounds.png and theory_residuals.png.

    python sims/verify_theory.py            # the full table (about 8 minutes on 2 busy cores)
    python sims/verify_theory.py --quick    # a slice to 2^12 for CI (well under a minute)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from brw import figures, tables
from brw.files import write_text
from brw.studies.theory_check import SEED, theory_check

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a CI slice: P to 2^12, five laws, few trees")
    ap.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default figures/)")
    ap.add_argument("--sweep-out", type=Path, default=None,
                    help="folder of the sweep's points (default out/theory_check or out/theory_check_quick)")
    ap.add_argument("--trace", action="append", default=[], help="extra law spec, e.g. trace:PATH (repeatable)")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    name = "theory_check_quick" if args.quick else "theory_check"
    sweep_out = args.sweep_out if args.sweep_out is not None else ROOT / "out" / name
    figs = [] if args.quick else [args.out / "theory_bounds.png", args.out / "theory_residuals.png"]
    for path in figs:
        figures.check_path(path)
    check = theory_check(quick=args.quick, extra_laws=args.trace, seed=args.seed, out=sweep_out,
                         progress=True, log=lambda line: print(line, file=sys.stderr))
    s = check.table.attrs["sweep"]
    print(f"sweep: {s['points']} points, {s['computed']} computed, {s['reused']} reused ({sweep_out})",
          file=sys.stderr)
    d = check.to_dict()
    write_text(args.out / f"{name}.json", json.dumps(d, indent=1) + "\n")
    write_text(args.out / f"{name}.md", tables.theory_check(d))
    if figs:
        for path in (figures.theory_bounds(check, figs[0]), figures.theory_residuals(check, figs[1])):
            if path:
                print(f"wrote {path}", file=sys.stderr)
    print(f"wrote {args.out / (name + '.json')} and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
