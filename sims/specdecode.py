"""A real speculative decoder on SmolLM2, on the CPU: tokens per second at every k, per-position acceptance against
the theory, and the two proof targets of issue 25 (brw.studies.specdecode states the model).

Every drafter (default: prompt lookup `ngram:min=1,max=3` and the early exit after 26 of 30 layers,
`early-exit:layers=26`, the cheapest of sims/real_drafter.py's) at k = 1..8, and plain decoding (k = 0), on the first
PROMPTS prompts of each genre of sims/prompts/ (code, math, chat), REPEATS times, up to TOKENS tokens each, at
temperature 1, one torch thread. A block is one prompt and one repeat: every configuration once, in a seeded
random order, then one pass of the cost curves (verifier over 1..9 new tokens after the mean context, each early
exit over one token; as a chain under the causal mask, what the decoder runs, 3 repeats, and under brw costcurve's
tree mask, 2 repeats). Each run of the script first warms up untimed (a short request per configuration and one
cost pass), then does blocks until done or --max-minutes, saving them to --state after each block (rerun to
resume). When every block is done it writes the logs of every configuration in vLLM's formats
(figures/specdecode-logs/DRAFTER-kK.log, .requests.jsonl, .rounds.jsonl) and figures/specdecode.{json,md}.

    python sims/specdecode.py --max-minutes 13          # repeat until it says done (resumes from --state)
    python sims/specdecode.py --lossless 2000           # only the chi-square on a tiny model, many runs

On a shared machine, pause other heavy work during each chunk; `sims/specdecode.sh` runs the chunks with the
background real-tree expansions paused (SIGSTOP) and always resumed (SIGCONT) afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from brw.files import atomic_path, write_text

ROOT = Path(__file__).resolve().parent.parent
DRAFTERS = ("ngram:min=1,max=3", "early-exit:layers=26")
GENRES = ("code", "math", "chat")


def _p(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _save(path: Path, state: dict) -> None:
    with atomic_path(path, fsync=False) as tmp:
        tmp.write_text(json.dumps(state, allow_nan=False))


def _lossless(runs: int, seed: int) -> dict:
    """The chi-square of tests/test_specdecode.py with many more runs: first and second tokens of two-token
    requests on a tiny random Llama against the verifier's own distributions, per drafter."""
    import torch
    import transformers
    from scipy import stats

    from brw.real import specdecode as sd

    V = 97
    cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)

    def probs(ids_batch):
        with torch.no_grad():
            return torch.softmax(model(input_ids=torch.tensor(ids_batch)).logits[:, -1].double(), -1).numpy()

    def pvalue(tokens, p):
        n = len(tokens)
        counts = np.bincount(tokens, minlength=p.size).astype(float)
        e = n * p
        big = e >= 5
        obs, exp = np.append(counts[big], counts[~big].sum()), np.append(e[big], e[~big].sum())
        if exp[-1] < 5:
            obs, exp = obs[:-1], exp[:-1]
            obs[np.argmin(exp)] += counts[~big].sum()
            exp[np.argmin(exp)] += e[~big].sum()
        if obs.size < 2:
            return None, int(obs.size)
        return float(stats.chi2.sf(((obs - exp) ** 2 / exp).sum(), obs.size - 1)), int(obs.size)

    self_p = probs([[1, a, 1] for a in range(V)])
    a = int(np.argmax(self_p[np.arange(V), np.arange(V)]))
    out = {"runs": runs, "seed": seed, "model": "tiny random Llama (2 layers, vocabulary 97)", "drafters": []}
    for name, prompt, spec in (("early-exit", [1], "early-exit:layers=1"), ("ngram", [1, a, 1], "ngram:min=1,max=2")):
        t0 = time.time()
        gens = [sd.generate(model, prompt, drafter=spec, k=2, max_tokens=2, rng=sd.request_rng(seed, j))
                for j in range(runs)]
        p1 = probs([prompt])[0]
        p2 = p1 @ probs([prompt + [t] for t in range(V)])
        first, cells1 = pvalue(np.array([g.tokens[0] for g in gens]), p1)
        second, cells2 = pvalue(np.array([g.tokens[1] for g in gens]), p2)
        acc = np.concatenate([g.accepted[g.drafted > 0] for g in gens])
        out["drafters"].append({"drafter": spec, "prompt": prompt, "first_token_p_value": first, "first_cells": cells1,
                                "second_token_p_value": second, "second_cells": cells2, "drafts": int(acc.size),
                                "share_rejected_first": float(np.mean(acc == 0)), "seconds": time.time() - t0})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=4, help="prompts per genre (default 4)")
    ap.add_argument("--repeats", type=int, default=2, help="repeats of every prompt (default 2)")
    ap.add_argument("--tokens", type=int, default=32, help="tokens per request at most (default 32)")
    ap.add_argument("--kmax", type=int, default=8)
    ap.add_argument("--drafter", action="append", help=f"drafter spec (repeatable; default {', '.join(DRAFTERS)})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k0", type=int, default=4, help="the k whose log predicts every k, reported first (default 4)")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    ap.add_argument("--state", type=Path, default=ROOT / "out" / "specdecode-state.json",
                    help="blocks done so far (resumable; default out/specdecode-state.json)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="start no block that would end (at the longest block's pace so far) after this many minutes")
    ap.add_argument("--out", type=Path, default=ROOT / "figures", help="writes specdecode.json and specdecode.md")
    ap.add_argument("--logs", type=Path, default=ROOT / "figures" / "specdecode-logs", help="folder of the vLLM logs")
    ap.add_argument("--partial", action="store_true",
                    help="write the logs and the report from the blocks done so far (the report says how many)")
    ap.add_argument("--lossless", type=int, default=0,
                    help="only run the tiny-model chi-square with this many runs per drafter, into --lossless-file")
    ap.add_argument("--lossless-file", type=Path, default=ROOT / "out" / "specdecode-lossless.json",
                    help="the chi-square's result, read into the report when present")
    args = ap.parse_args(argv)
    t_start = time.time()
    drafters = tuple(args.drafter or DRAFTERS)

    def log(msg):
        print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)

    if args.lossless:
        log(f"lossless check on the tiny model: {args.lossless} runs per drafter")
        res = _lossless(args.lossless, args.seed)
        args.lossless_file.parent.mkdir(parents=True, exist_ok=True)
        _save(args.lossless_file, res)
        log(json.dumps(res))
        return 0
    state = json.loads(args.state.read_text()) if args.state.exists() else {}
    settings = {"prompts": args.prompts, "repeats": args.repeats, "tokens": args.tokens, "kmax": args.kmax,
                "drafters": list(drafters), "seed": args.seed, "threads": args.threads}
    if state.get("settings", settings) != settings:
        sys.exit(f"{args.state} holds blocks of other settings; remove it or pass the same settings")
    state.setdefault("settings", settings)
    state.setdefault("records", [])
    state.setdefault("costs", [])
    state.setdefault("chunks", [])
    args.state.parent.mkdir(parents=True, exist_ok=True)

    import torch

    from brw.real import models
    from brw.real.recording import encode_prompts
    from brw.real.specdecode import generate, eos_ids, request_rng, write_logs
    from brw.studies.specdecode import analyse, cost_pass, generation_of, markdown, run_block

    torch.set_num_threads(args.threads)
    lm = models.load_model("smollm2", device="cpu")
    texts, genre_of = [], []
    for g in GENRES:
        texts += json.loads((ROOT / "sims" / "prompts" / f"{g}.json").read_text())[:args.prompts]
        genre_of += [g] * args.prompts
    ids = encode_prompts(lm.tokenizer, texts)
    eos = eos_ids(lm)
    configs = [(None, 0)] + [(d, k) for d in drafters for k in range(1, args.kmax + 1)]
    context = int(round(np.mean([len(p) for p in ids]) - 1 + args.tokens / 2))
    state["context"] = context
    blocks = [(p, r) for r in range(args.repeats) for p in range(len(ids))]
    done = {(x["prompt"], x["repeat"]) for x in state["records"]}
    todo = [b for b in blocks if b not in done]
    if todo and not args.partial:
        load0 = os.getloadavg()
        warm = ids[-1]
        for drafter, k in [(None, 0)] + [(d, args.kmax) for d in drafters]:  # untimed: every code path once
            generate(lm.model, warm, drafter=drafter, k=k, max_tokens=4, rng=request_rng(args.seed, 1 << 30), eos=())
        cost_pass(lm, context, args.kmax, drafters)  # untimed, and it runs every verifier shape once more untimed
        log(f"warmed up; {len(todo)} of {len(blocks)} blocks to do, context {context}")
        longest = 0.0
        for p, r in todo:
            if args.max_minutes is not None and time.time() - t_start + longest > 60 * args.max_minutes:
                break
            t0 = time.time()
            recs = run_block(lm, ids[p], p, r, r * len(ids) + p, configs, tokens=args.tokens, seed=args.seed,
                             eos=eos)
            cost = cost_pass(lm, context, args.kmax, drafters)
            state["records"] += recs
            state["costs"].append({**cost, "block": [p, r]})
            _save(args.state, state)
            longest = max(longest, time.time() - t0)
            tps = {f"{x['drafter'] or 'plain'}@{x['k']}": sum(x["emitted"]) / sum(x["seconds"]) for x in recs}
            log(f"block prompt {p} repeat {r} in {time.time() - t0:.0f}s: plain {tps['plain@0']:.2f} tok/s, "
                f"V(1) {cost['verify'][0]:.4f}s; load {os.getloadavg()[0]:.1f}")
        state["chunks"].append({"start": t_start, "seconds": time.time() - t_start, "load_start": load0,
                                "load_end": os.getloadavg()})
        _save(args.state, state)
    done = {(x["prompt"], x["repeat"]) for x in state["records"]}
    if any(b not in done for b in blocks) and not args.partial:
        log(f"{len(done)} of {len(blocks)} blocks done; rerun to go on")
        return 3
    log(f"{len(done)} of {len(blocks)} blocks done: writing logs and the report")
    res = analyse(state["records"], state["costs"], drafters=drafters, kmax=args.kmax, headline_k0=args.k0,
                  boot=args.boot, seed=args.seed)
    args.logs.mkdir(parents=True, exist_ok=True)
    files = []
    for drafter, k in configs:
        recs = sorted((x for x in state["records"] if x["drafter"] == drafter and x["k"] == k),
                      key=lambda x: x["request"])
        gens = [generation_of(x) for x in recs]
        name = "plain-k0" if drafter is None else f"{drafter.replace(':', '-').replace(',', '-').replace('=', '')}-k{k}"
        text = [lm.tokenizer.decode(g.tokens.tolist(), skip_special_tokens=True) for g in gens]
        paths = write_logs(args.logs / f"{name}.log", gens, k, model=lm.meta["model"], drafter=drafter or "",
                           texts=text)
        files += [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths]
    loads = [c["load_start"] for c in state["chunks"]] + [c["load_end"] for c in state["chunks"]]
    given = "".join(f" --{k} {getattr(args, k)}" for k in ("seed", "prompts", "repeats", "tokens")
                    if getattr(args, k) != ap.get_default(k))  # the settings not at their defaults: the line reruns it
    meta = {"command": f"python sims/specdecode.py{given} (resumable: rerun until it says done; sims/specdecode.sh "
                       "runs it in chunks of 13 minutes)",
            "model": lm.meta["model"], "prompts": 3 * args.prompts, "repeats": args.repeats, "tokens": args.tokens,
            "context": context, "threads": args.threads, "genres": list(GENRES),
            "warmup": "each chunk of the run (a process; one to three blocks) first decoded 4 tokens untimed "
                      "plainly and with each drafter at k = kmax, and ran one untimed cost pass (every cost curve "
                      "also runs each shape once untimed before timing it)",
            "load": f"{min(x[0] for x in loads):.1f} to {max(x[0] for x in loads):.1f} (1-minute averages at the "
                    "start and end of each chunk)" if loads else "-",
            "seconds": sum(c["seconds"] for c in state["chunks"]), "settings": state["settings"],
            "blocks_done": len(done), "blocks": len(blocks),
            "torch_threads": args.threads, "torch_version": models.torch_version(), "logs": files}
    lossless = json.loads(args.lossless_file.read_text()) if args.lossless_file.exists() else None
    report = {"meta": meta, "results": res, "lossless": lossless}
    args.out.mkdir(parents=True, exist_ok=True)
    rounded = json.loads(json.dumps(report), parse_float=lambda x: round(float(x), 6))
    write_text(args.out / "specdecode.json", json.dumps(rounded, indent=1, allow_nan=False) + "\n")
    md = markdown(res, meta)
    if lossless:
        L = lossless
        md += "\n## Losslessness on a tiny random Llama (`--lossless`)\n\n" + "\n".join(
            f"- `{d['drafter']}`, {L['runs']} two-token requests: chi-square p-value of the first token "
            f"{_p(d['first_token_p_value'])} ({d['first_cells']} cells), of the second {_p(d['second_token_p_value'])} "
            f"({d['second_cells']} cells); first drafts rejected at position 1: {d['share_rejected_first']:.3f}"
            for d in L["drafters"]) + "\n"
    write_text(args.out / "specdecode.md", md)
    log(f"wrote {args.out / 'specdecode.json'}, {args.out / 'specdecode.md'} and {len(files)} log files")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
