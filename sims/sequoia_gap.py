"""Sequoia's static tree against the best-first tree (the speed of light of the positional model), and the
program's speed.

Sequoia's public acceptance vector is not monotone (p_9 > p_8, zeros among the tail ranks), and Sequoia limits
depth. For each size n and depth limit: Sequoia's optimum, the best-first tree of the sorted vector (no depth
limit) and the gap, for the vector as published and sorted (sorted, only the depth limit costs anything).
Writes figures/sequoia_gap.json and figures/sequoia_gap.md.

    python sims/sequoia_gap.py [--acceptance FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from brw.files import write_text
from brw.sequoia import acceptance_vector, best_first, sequoia_tree

ROOT = Path(__file__).resolve().parent.parent
SIZES = [16, 64, 128, 256, 512, 1024, 2048]
DEPTHS = [None, 4, 6, 8, 10, 12, 16]
TIMED = [(128, 10), (512, 10), (1024, None), (1024, 10), (2048, None), (2048, 10)]


def measure(p: np.ndarray) -> dict:
    bf = best_first(p, max(SIZES))
    rows = []
    for n in SIZES:
        for d in DEPTHS:
            res = sequoia_tree(p, n, d)
            gap = float(bf[n - 1] - res.tokens_per_step)  # >= 0; round-off below 1e-12 is 0
            rows.append({"n": n, "max_depth": d, "depth": res.depth, "tokens_per_step": res.tokens_per_step,
                         "best_first": float(bf[n - 1]), "gap": gap if abs(gap) > 1e-12 else 0.0})
    return {"acceptance": p.tolist(), "rows": rows}


def timings(p: np.ndarray, repeats: int = 3) -> list[dict]:
    sequoia_tree(p, 40, 3)  # compile (or load the kernel cache) outside the timed region
    out = []
    for n, d in TIMED:
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            sequoia_tree(p, n, d)
            best = min(best, time.perf_counter() - t0)
        out.append({"n": n, "max_depth": d, "seconds": best})
    return out


def show(d: dict) -> str:
    lines = []
    for name in ("published", "sorted"):
        lines.append(f"{name} vector: Sequoia's tokens per step (root counted) and, in brackets, its gap to the "
                     "best-first tree; columns: depth limit D (levels, root counted)")
        lines.append(f"{'n':>6} " + " ".join(f"{'none' if x is None else 'D=' + str(x):>16}" for x in DEPTHS)
                     + f" {'best-first':>11}")
        for n in SIZES:
            cells = [r for r in d[name]["rows"] if r["n"] == n]
            lines.append(f"{n:>6} " + " ".join(f"{r['tokens_per_step']:>7.4f} ({r['gap']:.4f})" for r in cells)
                         + f" {cells[0]['best_first']:>11.4f}")
        lines.append("")
    lines.append("program time (best of 3, one thread, load average "
                 f"{d['load_average'][0]:.1f} on {d['cpus']} CPUs)")
    for t in d["timings"]:
        lines.append(f"  n = {t['n']:>5}  depth {'none' if t['max_depth'] is None else t['max_depth']:>4}  "
                     f"{t['seconds']:.3f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acceptance", default=str(ROOT / "tests" / "data" / "sequoia_acceptance_vector.txt"),
                    help="vector file in Sequoia's layout (default: Sequoia's public vector)")
    ap.add_argument("--out", type=Path, default=ROOT / "figures", help="folder for sequoia_gap.json and .md")
    args = ap.parse_args(argv)
    p = acceptance_vector(args.acceptance)
    d = {"source": Path(args.acceptance).name, "published": measure(p), "sorted": measure(np.sort(p)[::-1]),
         "timings": timings(p), "load_average": list(os.getloadavg()), "cpus": os.cpu_count(),
         "command": "python sims/sequoia_gap.py", "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    text = show(d)
    write_text(args.out / "sequoia_gap.json", json.dumps(d, indent=1) + "\n")
    write_text(args.out / "sequoia_gap.md", f"Produced by `{d['command']}` on {d['date_utc']}.\n\n```\n{text}\n```\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
