"""Recording verifier traces from a causal language model (the model extra: ``pip install 'brw[model]'``).

Two modes, both writing the trace format of :mod:`brw.traces`:

- sampled: each prompt (put through the model's chat template unless ``raw``) is continued for up to N tokens
  at temperature T, and every generated position is recorded: the distribution softmax(logits / T) that the
  token was drawn from. Generation stops early at the end-of-sequence token (that position is recorded).
- teacher-forced: given text is cut into windows of at most ``max_len`` tokens; every position after the
  first is recorded with the token the text actually has next.

Full-vocabulary statistics (entropy, sum p (log p)^2, the mass outside the top k) are computed on the device,
in float64, from the raw logits (:func:`brw.real.models.next_token_stats`); ``moments_at`` (``brw record
--moments-at 0.5,0.7``) adds, per row, the entropy and second log-moment of the row's distribution tempered to each
of those temperatures, from the same float64 logits in the same pass (the text sampled is the same as without). Prompts are batched (left padding,
explicit position ids, a KV cache: :class:`brw.real.models.Decoder`). Models are loaded by
:func:`brw.real.models.load_model`.

A third mode, greedy branches (:func:`record_branches`), continues a recorded trace: from every position
where the recorded text did not take its most probable token, it follows the model's own most probable
tokens for ``depth`` steps and records each distribution on the way (the greedy continuations that the
text itself does not show; the ``run:`` law's ``greedy=`` rows).

Resuming: contexts are recorded in fixed batches; each finished batch is written atomically to
``OUT.partial/part-NNNNN.npz`` beside a manifest of every setting that shapes the numbers. A rerun with the
same settings skips finished batches (batch b draws from its own seed, so it is the same whether it runs
first or after a restart), then merges the parts into OUT (validated, written atomically) and removes the
folder. An interruption loses at most the batch in flight, and no position is recorded twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from brw.real import models
from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.files import check_output, write_npz
from brw.real.models import LoadedModel
from brw.progress import Progress
from brw.spec import check_temperature
from brw.traces import BRANCH_MODE, MAX_MOMENTS, Trace, id_dtype, make_trace, save_trace

__all__ = ["record_sampled", "record_teacher_forced", "record", "record_branches", "check_settings", "check_moments_at",
           "read_prompts",
           "read_texts", "encode_prompts", "encode_texts", "branch_points", "DEFAULT_K", "MODES", "BRANCH_MODE"]

DEFAULT_K = 64
MODES = ("sampled", "teacher-forced")


# --------------------------------------------------------------------------------------------------------
# Inputs.


def read_texts(paths) -> list[str]:
    """The texts to teacher-force, one per file (UTF-8).

    Parameters
    ----------
    paths : sequence of str or Path

    Returns
    -------
    list of str
    """
    texts = []
    for path in paths:
        try:
            texts.append(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise BrwError(f"cannot read text file {path}: {e}") from None
    return texts


def read_prompts(path) -> list[str]:
    """Prompts from a .json file (a list of strings, or of objects with a "prompt" field) or a text file (one
    prompt per non-empty line).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of str
    """
    p = Path(path)
    if not p.is_file():
        raise BrwError(f"prompt file {path} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BrwError(f"cannot read prompt file {path}: {e}") from None
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise BrwError(f"prompt file {path} is not valid JSON: {e}") from None
        if not isinstance(data, list):
            raise BrwError(f"prompt file {path} must hold a JSON list of prompts")
        out = []
        for i, item in enumerate(data):
            if isinstance(item, dict):
                item = item.get("prompt")
            if not isinstance(item, str) or not item.strip():
                raise BrwError(f"prompt file {path}: entry {i} is not a non-empty string (or object with 'prompt')")
            out.append(item)
    else:
        out = [line for line in text.splitlines() if line.strip()]
    if not out:
        raise BrwError(f"prompt file {path} holds no prompts")
    return out


def encode_prompts(tokenizer, prompts: list[str], raw: bool = False) -> list[list[int]]:
    """Token ids of each prompt: through the chat template (user turn, generation prompt) unless ``raw`` or the
    tokenizer has none.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    prompts : list of str
    raw : bool
        Skip the chat template.

    Returns
    -------
    list of list of int
    """
    out = []
    use_template = not raw and getattr(tokenizer, "chat_template", None)
    for text in prompts:
        if use_template:
            s = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                              add_generation_prompt=True)
            ids = tokenizer(s, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(text)["input_ids"]
        if not ids:
            raise BrwError(f"prompt {text[:40]!r} encodes to no tokens")
        out.append([int(t) for t in ids])
    return out


def encode_texts(tokenizer, texts: list[str], max_len: int) -> list[list[int]]:
    """Windows of at most max_len tokens over each text (a context each; windows of one token are dropped).

    Parameters
    ----------
    tokenizer : transformers tokenizer
    texts : list of str
    max_len : int

    Returns
    -------
    list of list of int
    """
    out = []
    for text in texts:
        ids = [int(t) for t in tokenizer(text)["input_ids"]]
        for start in range(0, len(ids), max_len):
            w = ids[start:start + max_len]
            if len(w) >= 2:
                out.append(w)
    if not out:
        raise BrwError("the given text encodes to fewer than two tokens: nothing to record")
    return out


# --------------------------------------------------------------------------------------------------------
# One batch.


def _batch_seed(seed: int, batch: int) -> int:
    return int(np.random.SeedSequence([seed, batch]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _empty_rows(moments: bool = False):
    rows = {"top_logp": [], "top_ids": [], "entropy": [], "log_moment2": [], "tail_mass": [], "taken": [],
            "taken_logp": [], "context": [], "offset": []}
    return {**rows, "entropy_at": [], "log_moment2_at": []} if moments else rows


def _append(rows, stats: models.NextTokenStats, taken, sel, contexts, offsets):
    for key, val in stats.rows(sel, taken).items():
        rows[key].append(val)
    rows["taken"].append(np.asarray(taken, dtype=np.int64))
    rows["context"].append(np.asarray(contexts, dtype=np.int64))
    rows["offset"].append(np.asarray(offsets, dtype=np.int64))


def _sampled_batch(lm: LoadedModel, prompts: list[list[int]], first_context: int, *, tokens: int,
                   temperature: float, k: int, seed: int, eos: set[int], pad: int, on_token=None, moments_at=()):
    """Sample up to ``tokens`` tokens after each prompt; return (rows, contexts as id lists)."""
    B = len(prompts)
    gen = models.generator(lm.device, seed)
    rows = _empty_rows(bool(moments_at))
    answers = [[] for _ in range(B)]
    done = [False] * B
    with models.inference():
        dec = models.Decoder(lm.model, prompts, pad, lm.device)
        for _ in range(tokens):
            stats = models.next_token_stats(dec.logits, k, temperature, moments_at)
            nxt = models.sample(stats.logprobs, gen)
            nxt_l = nxt.cpu().tolist()
            sel = [i for i in range(B) if not done[i]]
            _append(rows, stats, [nxt_l[i] for i in sel], sel, [first_context + i for i in sel],
                    [len(prompts[i]) + len(answers[i]) for i in sel])
            for i in sel:
                answers[i].append(nxt_l[i])
                if nxt_l[i] in eos:
                    done[i] = True
            if on_token:
                on_token(len(sel))
            if all(done):
                break
            dec.step(nxt)
    contexts = [list(p) + a for p, a in zip(prompts, answers)]
    return rows, contexts


def _teacher_batch(lm: LoadedModel, texts: list[list[int]], first_context: int, *, temperature: float, k: int,
                   pad: int, chunk: int = 256, on_token=None, moments_at=()):
    """Every position of each text (right padded, one pass), with the token that follows it."""
    rows = _empty_rows(bool(moments_at))
    with models.inference():
        ids, mask = models.right_padded(texts, pad, lm.device)
        logits, _ = models.forward(lm.model, ids, attention_mask=mask, use_cache=False)
        for i, t in enumerate(texts):
            n = len(t) - 1
            for s0 in range(0, n, chunk):
                s1 = min(n, s0 + chunk)
                stats = models.next_token_stats(logits[i, s0:s1], k, temperature, moments_at)
                _append(rows, stats, t[s0 + 1:s1 + 1], list(range(s1 - s0)), [first_context + i] * (s1 - s0),
                        list(range(s0 + 1, s1 + 1)))
            if on_token:
                on_token(n)
    return rows, [list(t) for t in texts]


# --------------------------------------------------------------------------------------------------------
# The resumable recording.


def _part_arrays(rows, contexts, first_context):
    cat = {key: np.concatenate(val) if val else np.zeros(0) for key, val in rows.items()}
    lens = np.array([len(c) for c in contexts], dtype=np.int64)
    cat["batch_context_tokens"] = np.concatenate([np.asarray(c, dtype=np.int64) for c in contexts])
    cat["batch_context_lengths"] = lens
    cat["batch_first_context"] = np.array(first_context, dtype=np.int64)
    return cat


def _read_part(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except Exception as e:  # a part is our own file; a damaged one is redone, not trusted
        raise BrwError(f"partial recording file {path} is damaged ({type(e).__name__}); delete it and rerun "
                       f"to record that batch again") from None


def check_settings(out, *, mode: str, tokens: int = 200, temperature: float = 1.0, k: int = DEFAULT_K,
                   batch: int = 8, seed: int = 0, max_len: int | None = None, moments_at=None) -> Path:
    """Check a recording's settings before anything is loaded (no model, no torch): what :func:`record` and
    the command line run first, so that a mistake shows at once.

    Parameters
    ----------
    out : str or Path
        The trace file to write (.npz, in a folder that can take it; it must not exist).
    mode, tokens, temperature, k, batch, seed, moments_at : as :func:`record` takes them.
    max_len : int or None
        The teacher-forced window (:func:`record_teacher_forced`), when there is one.

    Returns
    -------
    Path
        ``out``.
    """
    out = check_output(out, ".npz")
    if mode not in MODES:
        raise BrwError(f"mode must be one of {', '.join(MODES)}, got {clip(repr(mode), 40)}")
    whole_number(k, "k")
    whole_number(batch, "batch")
    whole_number(seed, "seed", 0)
    if mode == "sampled":
        whole_number(tokens, "tokens")
    if max_len is not None:
        whole_number(max_len, "max_len", 2)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0):
        raise BrwError(f"temperature must be a finite number > 0, got {clip(repr(temperature), 40)}")
    check_moments_at(moments_at)
    return out


def check_moments_at(moments_at) -> list[float]:
    """The temperatures of ``record``'s ``moments_at``: a list of finite numbers > 0, none twice, at most
    ``brw.traces.MAX_MOMENTS`` ([] for None), returned sorted.

    Parameters
    ----------
    moments_at : sequence of float or None

    Returns
    -------
    list of float
    """
    if moments_at is None:
        return []
    if isinstance(moments_at, (str, bytes)) or not hasattr(moments_at, "__len__"):
        raise BrwError(f"moments_at must be a list of temperatures, e.g. [0.5, 0.7], got {clip(repr(moments_at), 40)}")
    temps = [check_temperature(t, "a temperature of moments_at") for t in moments_at]
    if not temps or len(temps) > MAX_MOMENTS or len(set(temps)) != len(temps):
        raise BrwError(f"moments_at must list 1 to {MAX_MOMENTS} different temperatures, got {clip(repr(moments_at), 60)}")
    return sorted(temps)


def _check_record(lm: LoadedModel, inputs, out: Path, mode: str, tokens: int, temperature: float, k: int,
                  batch: int, seed: int, moments_at=None) -> None:
    check_settings(out, mode=mode, tokens=tokens, temperature=temperature, k=k, batch=batch, seed=seed,
                   moments_at=moments_at)
    if k > lm.meta["vocab_size"]:
        raise BrwError(f"k = {k} exceeds the model's vocabulary of {lm.meta['vocab_size']}")
    if not inputs:
        raise BrwError("nothing to record: no prompts or text")


def _eos_and_pad(lm: LoadedModel) -> tuple[set[int], int]:
    """The end-of-sequence token ids (tokenizer, generation config, model config) and the padding id."""
    eos = set()
    gen_cfg = getattr(lm.model, "generation_config", None)
    for e in (getattr(lm.tokenizer, "eos_token_id", None), getattr(gen_cfg, "eos_token_id", None),
              getattr(lm.model.config, "eos_token_id", None)):
        if isinstance(e, int):
            eos.add(e)
        elif isinstance(e, (list, tuple)):
            eos.update(int(x) for x in e)
    pad = getattr(lm.tokenizer, "pad_token_id", None)
    return eos, pad if isinstance(pad, int) else (min(eos) if eos else 0)


def _open_partial(partial: Path, settings: dict) -> None:
    """Start the folder of parts, or check that the one there was made with the same settings."""
    manifest = partial / "manifest.json"
    if not partial.exists():
        partial.mkdir()
        manifest.write_text(json.dumps(settings, indent=1, sort_keys=True))
        return
    try:
        old = json.loads(manifest.read_text())
    except (OSError, ValueError):
        raise BrwError(f"{partial} holds no readable manifest.json; delete that folder to start over") from None
    if old != settings:
        diff = sorted(key for key in set(old) | set(settings) if old.get(key) != settings.get(key))
        raise BrwError(f"{partial} is an interrupted recording made with other settings ({', '.join(diff)} "
                       f"differ); rerun with the same settings to resume it, or delete it to start over")


def _merge(partial: Path, nb: int, batch: int, inputs, prompt_lengths, meta: dict, extra: dict, out: Path,
           moments_at=()):
    """The trace of all parts, validated; its metadata ``meta``, the positions recorded, then ``extra``."""
    parts = [_read_part(partial / f"part-{b:05d}.npz") for b in range(nb)]
    for b, part in enumerate(parts):
        if int(part["batch_first_context"]) != b * batch:
            raise BrwError(f"{partial}/part-{b:05d}.npz belongs to another batch; delete {partial} and rerun")
    fields = {key: np.concatenate([p[key] for p in parts]) for key in _empty_rows(bool(moments_at))}
    if moments_at:
        fields["moments_at"] = np.asarray(moments_at, dtype=np.float64)
    lens = np.concatenate([p["batch_context_lengths"] for p in parts])
    toks = np.concatenate([p["batch_context_tokens"] for p in parts])
    if lens.shape[0] != len(inputs):
        raise BrwError(f"{partial} holds {lens.shape[0]} contexts for {len(inputs)} inputs; delete it and rerun")
    if prompt_lengths is None:
        prompt_lengths = [len(x) for x in inputs]
    return _recorded_trace(fields, toks, lens, prompt_lengths, {**meta, **extra}, out)


def _recorded_trace(fields: dict, toks, lens, prompt_lengths, meta: dict, out) -> Trace:
    """The validated trace of recorded rows (``fields``, named as :func:`_empty_rows`) and contexts (their
    tokens concatenated, and lengths), in the format's dtypes; ``meta`` gains the positions recorded."""
    idt = id_dtype(meta["vocab_size"])
    moments = {key: np.asarray(fields[key], dtype=np.float64) for key in ("moments_at", "entropy_at", "log_moment2_at")
               if key in fields}
    return make_trace(
        meta={**meta, "recorded_positions": int(fields["entropy"].size)}, where=f"recording {out}", **moments,
        top_logp=fields["top_logp"].astype(np.float32), top_ids=fields["top_ids"].astype(idt),
        entropy=fields["entropy"].astype(np.float64), log_moment2=fields["log_moment2"].astype(np.float64),
        tail_mass=fields["tail_mass"].astype(np.float64), taken=fields["taken"].astype(idt),
        taken_logp=fields["taken_logp"].astype(np.float64), context=fields["context"].astype(np.int32),
        offset=fields["offset"].astype(np.int32), context_tokens=np.asarray(toks).astype(idt),
        context_offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        prompt_lengths=np.asarray(prompt_lengths, dtype=np.int32),
    )


def record(lm: LoadedModel, inputs: list[list[int]], out, *, mode: str, tokens: int = 200,
           temperature: float = 1.0, k: int = DEFAULT_K, batch: int = 8, seed: int = 0,
           prompt_lengths: list[int] | None = None, meta: dict | None = None, progress: bool = True,
           moments_at=None) -> dict:
    """Record a trace from token-id inputs, resumably (see the module docstring).

    Parameters
    ----------
    lm : LoadedModel
        From :func:`brw.real.models.load_model`.
    inputs : list of list of int
        Prompts (sampled mode) or text windows (teacher-forced mode), as token ids.
    out : str or Path
        The trace file (.npz) to write; it must not exist.
    mode : str
        ``sampled`` or ``teacher-forced``.
    tokens : int
        Tokens to sample per prompt (sampled mode).
    temperature : float
        Recorded distributions are softmax(logits / temperature).
    k : int
        Top log-probabilities kept per position.
    batch : int
        Inputs per forward pass, and per resumable part.
    seed : int
        Sampling seed (batch b draws from its own stream).
    prompt_lengths : list of int or None
        Tokens of each input that are prompt (default: all of it).
    meta : dict or None
        Extra metadata for the trace.
    progress : bool
        Show a progress bar on a terminal.
    moments_at : sequence of float or None
        Temperatures T_j (relative to the recorded distributions): every row also stores the full-vocabulary
        entropy and second log-moment of its distribution tempered to T_j (the trace's ``moments_at``,
        ``entropy_at``, ``log_moment2_at``), from the same logits in the same pass; the sampled text is the
        same as without them.

    Returns
    -------
    dict
        file, positions, contexts, mu, mu2, batches, resumed_batches, recorded_now, seconds,
        positions_per_second, model, device, mode.
    """
    from brw._version import __version__

    out = Path(out)
    _check_record(lm, inputs, out, mode, tokens, temperature, k, batch, seed, moments_at)
    moments_at = check_moments_at(moments_at)
    eos, pad = _eos_and_pad(lm)
    settings = {
        "mode": mode, "tokens": tokens if mode == "sampled" else None, "temperature": temperature, "k": k,
        "batch": batch, "seed": seed, "device": lm.device, "dtype": lm.dtype,
        "model": {key: lm.meta.get(key) for key in ("model_sha256", "model_fingerprint")},
        "inputs_sha256": hashlib.sha256(json.dumps(inputs).encode()).hexdigest(),
        "torch": models.torch_version(),
        **({"moments_at": moments_at} if moments_at else {}),
    }
    partial = Path(str(out) + ".partial")
    _open_partial(partial, settings)
    nb = (len(inputs) + batch - 1) // batch
    todo = [b for b in range(nb) if not (partial / f"part-{b:05d}.npz").is_file()]
    resumed = nb - len(todo)
    expected = tokens * len(inputs) if mode == "sampled" else sum(len(t) - 1 for t in inputs)
    t0 = time.perf_counter()
    recorded = 0
    with Progress(expected, f"record {out.name}", enabled=progress, unit="tokens",
                  hint="fewer tokens or prompts (--tokens); an interrupted recording resumes",
                  done=int(expected * resumed / nb)) as bar:
        for b in todo:
            chunk = inputs[b * batch:(b + 1) * batch]
            if mode == "sampled":
                rows, contexts = _sampled_batch(lm, chunk, b * batch, tokens=tokens, temperature=temperature, k=k,
                                                seed=_batch_seed(seed, b), eos=eos, pad=pad, on_token=bar.update,
                                                moments_at=moments_at)
            else:
                rows, contexts = _teacher_batch(lm, chunk, b * batch, temperature=temperature, k=k, pad=pad,
                                                on_token=bar.update, moments_at=moments_at)
            arrays = _part_arrays(rows, contexts, b * batch)
            recorded += arrays["entropy"].shape[0]
            write_npz(partial / f"part-{b:05d}.npz", arrays, compressed=False)
    seconds = time.perf_counter() - t0

    # Merge, validate, write whole, then drop the parts.
    full_meta = {**lm.meta, "temperature": temperature, "mode": mode, "k": k, "seed": seed, "batch": batch,
                 "tokens": tokens if mode == "sampled" else None, **({"moments_at": moments_at} if moments_at else {})}
    extra = {"brw_version": __version__, **(meta or {})}
    trace = _merge(partial, nb, batch, inputs, prompt_lengths, full_meta, extra, out, moments_at)
    save_trace(trace, out)
    shutil.rmtree(partial, ignore_errors=True)
    return {"file": str(out), "positions": trace.positions, "contexts": trace.contexts, "mu": trace.mu,
            "mu2": trace.mu2, "batches": nb, "resumed_batches": resumed, "recorded_now": recorded,
            "seconds": seconds, "positions_per_second": recorded / seconds if seconds > 0 else None,
            "model": lm.meta["model"], "device": lm.device, "mode": mode}


def record_sampled(lm: LoadedModel, prompts: list[str], out, *, raw: bool = False, **kw) -> dict:
    """Record sampled answers to prompts.

    Parameters
    ----------
    lm : LoadedModel
    prompts : list of str
    out : str or Path
        The trace file (.npz).
    raw : bool
        Feed prompts as plain text, without the model's chat template.
    **kw
        The settings of :func:`record` (tokens, temperature, k, batch, seed, meta, progress).

    Returns
    -------
    dict
        As :func:`record`.
    """
    ids = encode_prompts(lm.tokenizer, prompts, raw=raw)
    return record(lm, ids, out, mode="sampled", **kw)


def record_teacher_forced(lm: LoadedModel, texts: list[str], out, *, max_len: int = 512, **kw) -> dict:
    """Record every position of texts, each with the token the text has next.

    Parameters
    ----------
    lm : LoadedModel
    texts : list of str
        Cut into windows of at most ``max_len`` tokens, one context each.
    out : str or Path
        The trace file (.npz).
    max_len : int
        Window length in tokens, at least 2.
    **kw
        The settings of :func:`record` (temperature, k, batch, meta, progress).

    Returns
    -------
    dict
        As :func:`record`.
    """
    whole_number(max_len, "max_len", 2)
    windows = encode_texts(lm.tokenizer, texts, max_len)
    return record(lm, windows, out, mode="teacher-forced", prompt_lengths=[len(w) for w in windows], **kw)


# --------------------------------------------------------------------------------------------------------
# Greedy branches.


def branch_points(trace) -> tuple[np.ndarray, np.ndarray]:
    """Where :func:`record_branches` branches: the recorded rows whose taken token is not their most probable
    one, in (context, offset) order.

    The greedy continuation of every recorded position is then recorded exactly once to ``depth`` steps: it
    follows the text while the text takes top tokens, and the branch from the first position where it does
    not.

    Parameters
    ----------
    trace : brw.traces.Trace

    Returns
    -------
    (rows, contexts) : int64 arrays
        The rows, and each one's context.
    """
    ctx = np.asarray(trace.context, dtype=np.int64)
    order = np.lexsort((np.asarray(trace.offset, dtype=np.int64), ctx))
    depart = np.asarray(trace.taken)[order] != np.asarray(trace.top_ids)[order, 0]
    rows = order[depart]
    return rows, ctx[rows]


def _branch_context(lm: LoadedModel, ids: list[int], starts: list[int], firsts: list[int], *, depth: int, k: int,
                    temperature: float, batch: int, window: int | None, on_token=None):
    """Branches of one context: branch b replaces token starts[b] by firsts[b] and goes on greedily; returns
    (rows, token lists of the branches) with rows in step order, contexts numbered 0.. by branch."""
    rows = _empty_rows()
    tokens = [list(ids[:t]) + [g] for t, g in zip(starts, firsts)]
    if window is not None and max(starts) + depth > window:
        raise BrwError(f"a branch reaches position {max(starts) + depth}, beyond the model's sliding window of "
                       f"{window} tokens (tree attention over the cache is exact only inside it)")
    n_ctx = max(starts)
    with models.inference():
        _, cache = models.forward(lm.model, [list(ids[:n_ctx])], keep=1, cache=models.full_cache())
        for lo in range(0, len(starts), batch):
            sel = list(range(lo, min(len(starts), lo + batch)))
            B = len(sel)
            for s in range(depth):  # step s feeds each branch's token s (at position start + s)
                allowed = np.zeros((B, n_ctx + B * (s + 1)), dtype=bool)
                for row, b in enumerate(sel):
                    allowed[row, :starts[b]] = True
                    allowed[row, n_ctx + row + B * np.arange(s + 1)] = True
                logits, cache = models.forward(lm.model, [[tokens[b][-1] for b in sel]], attend=allowed,
                                               positions=[[starts[b] + s for b in sel]], cache=cache)
                stats = models.next_token_stats(logits[0], k, temperature)
                nxt = stats.top_ids[:, 0].cpu().tolist()
                _append(rows, stats, nxt, list(range(B)), sel, [starts[b] + s + 1 for b in sel])
                for row, b in enumerate(sel):
                    tokens[b].append(int(nxt[row]))
                if on_token:
                    on_token(B)
            cache.crop(-B * depth)  # back to the context (a negative count: transformers 4 and 5 agree)
    return rows, tokens


def _branch_source(lm: LoadedModel, source, k: int):
    """The branch points (rows, their contexts) of a source trace that ``lm`` may branch from, or one BrwError:
    the trace must come from a file and from this model, and leave its most probable token somewhere."""
    if source.path is None:
        raise BrwError("record_branches needs a trace read from a file (its hash ties the branches to it)")
    if k > lm.meta["vocab_size"]:
        raise BrwError(f"k = {k} exceeds the model's vocabulary of {lm.meta['vocab_size']}")
    want, have = source.meta.get("model_sha256"), lm.meta.get("model_sha256")
    if want and have and want != have:
        raise BrwError(f"trace {source.path} was recorded by another model (weights SHA-256 {want[:12]}..., "
                       f"this one {have[:12]}...): greedy branches must come from the model that wrote the text")
    rows, ctx = branch_points(source)
    if rows.size == 0:
        raise BrwError(f"trace {source.path} never leaves its most probable token: there is nothing to branch from")
    return rows, ctx


def record_branches(lm: LoadedModel, source, out, *, depth: int = 8, k: int = 32, batch: int = 32,
                    meta: dict | None = None, progress: bool = True) -> dict:
    """Record the model's greedy continuations from a trace's positions, resumably (one part per context).

    From every row of ``source`` whose taken token is not its most probable one (:func:`branch_points`), the
    branch feeds that most probable token instead and then the model's own most probable token, ``depth``
    times, recording each next-token distribution (as :func:`record` does, at the source's temperature). A
    branch is a context of the new trace: the source context's tokens up to the branch point, then the greedy
    tokens. The metadata name, for every branch, its source context and the source row's offset
    (``branch_source_context``, ``branch_offset``) and the source file's SHA-256, so that a law can tie the
    branches to the source's contexts (and hold them out with them).

    Parameters
    ----------
    lm : LoadedModel
        The model that recorded ``source`` (checked by its weights' SHA-256 when both record one).
    source : brw.traces.Trace
        A trace read from a file (its ``path`` is hashed into the metadata).
    out : str or Path
        The trace file (.npz) to write; it must not exist.
    depth : int
        Greedy steps per branch.
    k : int
        Top log-probabilities kept per position.
    batch : int
        Branches per forward pass.
    meta : dict or None
        Extra metadata.
    progress : bool
        Show a progress bar on a terminal.

    Returns
    -------
    dict
        file, positions, branches, source, depth, parts, resumed_parts, seconds, positions_per_second.
    """
    from brw._version import __version__
    from brw.files import sha256

    out = check_output(out, ".npz")
    depth = whole_number(depth, "depth")
    k = whole_number(k, "k")
    batch = whole_number(batch, "batch")
    rows, ctx = _branch_source(lm, source, k)
    temperature = float(source.meta.get("temperature", 1.0))
    src_sha = sha256(source.path)
    settings = {"mode": BRANCH_MODE, "depth": depth, "k": k, "batch": batch, "source_sha256": src_sha,
                "device": lm.device, "dtype": lm.dtype, "torch": models.torch_version(),
                "model": {key: lm.meta.get(key) for key in ("model_sha256", "model_fingerprint")}}
    partial = Path(str(out) + ".partial")
    _open_partial(partial, settings)
    contexts = np.unique(ctx)
    todo = [i for i, c in enumerate(contexts) if not (partial / f"part-{i:05d}.npz").is_file()]
    window = models.sliding_window(lm.model)
    t0 = time.perf_counter()
    recorded = 0
    with Progress(rows.size * depth, f"branches {out.name}", enabled=progress, unit="tokens",
                  hint="a smaller depth (--depth); an interrupted recording resumes") as bar:
        bar.update(depth * int(np.isin(ctx, np.delete(contexts, todo)).sum()))
        for i in todo:
            mine = rows[ctx == contexts[i]]
            ids = [int(t) for t in source.context_ids(int(contexts[i]))]
            starts = [int(t) for t in source.offset[mine]]
            firsts = [int(t) for t in source.top_ids[mine, 0]]
            got, tokens = _branch_context(lm, ids, starts, firsts, depth=depth, k=k, temperature=temperature,
                                          batch=batch, window=window, on_token=bar.update)
            arrays = _part_arrays(got, tokens, i)
            order = np.lexsort((arrays["offset"], arrays["context"]))  # rows branch by branch, step by step
            arrays.update({key: arrays[key][order] for key in _empty_rows()})
            arrays["batch_source_context"] = np.full(len(starts), contexts[i], dtype=np.int64)
            arrays["batch_offset"] = np.asarray(starts, dtype=np.int64)
            recorded += arrays["entropy"].shape[0]
            write_npz(partial / f"part-{i:05d}.npz", arrays, compressed=False)
    seconds = time.perf_counter() - t0

    parts = [_read_part(partial / f"part-{i:05d}.npz") for i in range(contexts.size)]
    first = np.cumsum([0] + [p["batch_context_lengths"].size for p in parts])
    fields = {key: np.concatenate([p[key] for p in parts]) for key in _empty_rows()}
    fields["context"] = np.concatenate([p["context"] + first[i] for i, p in enumerate(parts)])
    lens = np.concatenate([p["batch_context_lengths"] for p in parts])
    starts = np.concatenate([p["batch_offset"] for p in parts])
    full_meta = {**lm.meta, "temperature": temperature, "mode": BRANCH_MODE, "k": k, "depth": depth,
                 "batch": batch, "source": Path(source.path).name, "source_sha256": src_sha,
                 "branch_source_context": np.concatenate([p["batch_source_context"] for p in parts]).tolist(),
                 "branch_offset": starts.tolist(), "brw_version": __version__, **(meta or {})}
    trace = _recorded_trace(fields, np.concatenate([p["batch_context_tokens"] for p in parts]), lens, starts,
                            full_meta, out)
    save_trace(trace, out)
    shutil.rmtree(partial, ignore_errors=True)
    return {"file": str(out), "positions": trace.positions, "branches": trace.contexts, "source": str(source.path),
            "depth": depth, "parts": int(contexts.size), "resumed_parts": int(contexts.size) - len(todo),
            "seconds": seconds, "positions_per_second": recorded / seconds if seconds > 0 else None}
