"""Traces from the OpenAI-compatible ``logprobs`` JSON that vLLM, llama.cpp's server and hosted APIs return.

Two shapes are read (a file may hold one response, a list of responses, or the bare ``logprobs`` object):

- chat completions: ``choices[i].logprobs.content[j] = {"token", "logprob", "bytes"?, "top_logprobs": [{"token",
  "logprob", "bytes"?}, ...]}``;
- completions: ``choices[i].logprobs = {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token:
  logprob, ...}, ...]}`` (a null entry, as for an echoed first prompt token, is skipped).

Each choice is one context. The API gives token strings, not ids: ids index the table of distinct tokens seen
(field ``token_strings``; a token's ``bytes``, when given, tell apart tokens that print alike), and id 0 is a
placeholder for the unseen prompt, so context c is [prompt] + its tokens.

Only the top-k of each distribution is known, so its full-vocabulary entropy and second log-moment are
*bracketed*, exactly, by :func:`brw.tailfit.tail_bounds`: the tail mass m = 1 - sum(top-k) lies on tokens no
more probable than the k-th, at most ``vocab_size - k`` of them. The low end puts it on as few tokens as
possible, the high end spreads it evenly over the rest of the vocabulary. The trace stores the bracket
(``entropy_lo/hi``, ``log_moment2_lo/hi``) and, as ``entropy`` and ``log_moment2``, a point chosen by ``tail``:
``mid`` (default; the middle of the entropy bracket, and the middle of the second-moment bracket raised if
needed to what that entropy allows), ``lo`` or ``hi``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from brw.errors import BrwError, clip
from brw.files import check_output
from brw.limits import USABLE, available_memory, format_bytes
from brw.tailfit import tail_bounds
from brw.traces import MASS_TOL, make_trace

__all__ = ["import_logprobs", "read_logprobs_json", "TAIL_POINTS"]

TAIL_POINTS = ("mid", "lo", "hi")
PROMPT_TOKEN = "<prompt>"


def _positions_from_choice(choice, where):
    """[(taken_key, taken_logp, [(key, logp), ...]), ...] from one choice (either shape)."""
    if isinstance(choice, dict) and "logprobs" in choice:
        lp = choice["logprobs"]
    elif isinstance(choice, dict) and ("content" in choice or "top_logprobs" in choice):
        lp = choice  # the bare logprobs object
    else:
        lp = None
    if not isinstance(lp, dict):
        raise BrwError(f"{where}: no 'logprobs' object (ask the server for logprobs and top_logprobs)")
    out = []
    if "content" in lp:  # chat completions
        content = lp["content"]
        if not isinstance(content, list):
            raise BrwError(f"{where}: 'logprobs.content' must be a list")
        for j, item in enumerate(content):
            w = f"{where} content[{j}]"
            if not isinstance(item, dict):
                raise BrwError(f"{w}: must be an object with token, logprob and top_logprobs")
            tops = item.get("top_logprobs")
            if not isinstance(tops, list) or not tops:
                raise BrwError(f"{w}: no top_logprobs (ask for top_logprobs >= 1)")
            alts = [(_key(t, f"{w} top_logprobs[{i}]"), _logp(t.get("logprob") if isinstance(t, dict) else None,
                                                              f"{w} top_logprobs[{i}]"))
                    for i, t in enumerate(tops)]
            out.append((_key(item, w), _logp(item.get("logprob"), w), alts))
    elif "top_logprobs" in lp:  # completions
        tokens, tlp, tops = lp.get("tokens"), lp.get("token_logprobs"), lp.get("top_logprobs")
        if not (isinstance(tokens, list) and isinstance(tlp, list) and isinstance(tops, list)):
            raise BrwError(f"{where}: completions logprobs need lists 'tokens', 'token_logprobs', 'top_logprobs'")
        if not len(tokens) == len(tlp) == len(tops):
            raise BrwError(f"{where}: 'tokens', 'token_logprobs' and 'top_logprobs' differ in length "
                           f"({len(tokens)}, {len(tlp)}, {len(tops)})")
        for j, (tok, lpj, top) in enumerate(zip(tokens, tlp, tops)):
            w = f"{where} position {j}"
            if top is None or lpj is None:
                continue
            if not isinstance(top, dict) or not top:
                raise BrwError(f"{w}: top_logprobs entry must be a non-empty object token -> logprob")
            if not isinstance(tok, str):
                raise BrwError(f"{w}: token must be a string")
            alts = [((str(t), None), _logp(v, f"{w} token {t!r}")) for t, v in top.items()]
            out.append(((tok, None), _logp(lpj, w), alts))
    else:
        raise BrwError(f"{where}: 'logprobs' has neither 'content' (chat) nor 'top_logprobs' (completions)")
    return out


def _key(item, where):
    if not isinstance(item, dict) or not isinstance(item.get("token"), str):
        raise BrwError(f"{where}: needs a string 'token'")
    b = item.get("bytes")
    if b is not None and not (isinstance(b, list) and all(isinstance(x, int) and 0 <= x < 256 for x in b)):
        raise BrwError(f"{where}: 'bytes' must be a list of byte values")
    return item["token"], None if b is None else tuple(b)


def _logp(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BrwError(f"{where}: logprob must be a finite number, got {v!r}")
    if v > 1e-6:
        raise BrwError(f"{where}: logprob {v!r} is above 0")
    return min(float(v), 0.0)


#: Bytes of memory that parsing one byte of JSON may take (Python objects for numbers and short strings).
JSON_BYTES_PER_BYTE = 16


def _check_json_size(p: Path) -> None:
    """Refuse a file whose parse cannot fit in memory, before reading it."""
    size = p.stat().st_size
    have = available_memory()
    if size * JSON_BYTES_PER_BYTE > USABLE * have:
        raise BrwError(f"logprobs file {p} holds {format_bytes(size)}; parsing it needs about "
                       f"{format_bytes(size * JSON_BYTES_PER_BYTE)} of memory but {format_bytes(have)} is "
                       f"available: split it into files of at most {format_bytes(USABLE * have / JSON_BYTES_PER_BYTE)}")


def read_logprobs_json(paths) -> list[list]:
    """Contexts (one per choice) of positions, from one or more JSON files."""
    contexts = []
    for path in paths:
        p = Path(path)
        try:
            _check_json_size(p)
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BrwError(f"logprobs file {path} does not exist") from None
        except RecursionError:
            raise BrwError(f"logprobs file {path} nests its JSON more deeply than a logprobs response does "
                           f"(a few levels); it is not one") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise BrwError(f"logprobs file {path} is not readable JSON: {clip(str(e), 160)}") from None
        responses = data if isinstance(data, list) else [data]
        for r, resp in enumerate(responses):
            where = f"{path} response {r}"
            if isinstance(resp, dict) and "choices" in resp:
                choices = resp["choices"]
                if not isinstance(choices, list):
                    raise BrwError(f"{where}: 'choices' must be a list")
                for c, choice in enumerate(choices):
                    pos = _positions_from_choice(choice, f"{where} choice {c}")
                    if pos:
                        contexts.append(pos)
            else:
                pos = _positions_from_choice(resp, where)
                if pos:
                    contexts.append(pos)
    if not contexts:
        raise BrwError("the logprobs files hold no positions with top_logprobs")
    return contexts


def _rows(contexts, k: int):
    """The trace's rows from parsed logprobs: the token table (prompt token 0) and per position its top-k
    log-probabilities and token ids, the token taken and its log-probability, its context and offset, and each
    context's token sequence (lists)."""
    table = {(PROMPT_TOKEN, None): 0}

    def tid(key):
        if key not in table:
            table[key] = len(table)
        return table[key]

    top_logp, top_ids, taken, taken_logp, ctx_idx, offs, ctx_tokens, ctx_offsets = [], [], [], [], [], [], [], [0]
    for c, ctx in enumerate(contexts):
        seq = [0]
        for j, (tkey, tlp, alts) in enumerate(ctx):
            best = {}
            for key, v in alts:  # the same token twice: keep its larger log-probability
                best[key] = max(v, best.get(key, -math.inf))
            items = sorted(best.items(), key=lambda kv: -kv[1])
            if len(items) < k:
                raise BrwError(f"context {c} position {j}: top_logprobs repeat a token, leaving {len(items)} "
                               f"distinct entries where the trace keeps k = {k}")
            items = items[:k]
            mass = math.fsum(math.exp(v) for _, v in items)
            if mass > 1 + MASS_TOL:
                raise BrwError(f"context {c} position {j}: top_logprobs carry probability {mass:.9g}, more than 1 "
                               f"(+{MASS_TOL:g}); these are not log-probabilities of one distribution")
            top_logp.append([v for _, v in items])
            top_ids.append([tid(key) for key, _ in items])
            seq.append(tid(tkey))
            taken.append(seq[-1])
            taken_logp.append(tlp)
            ctx_idx.append(c)
            offs.append(j + 1)
        ctx_tokens.extend(seq)
        ctx_offsets.append(len(ctx_tokens))
    return table, (top_logp, top_ids, taken, taken_logp, ctx_idx, offs, ctx_tokens, ctx_offsets)


def import_logprobs(paths, out=None, *, vocab_size: int, tail: str = "mid", model: str = "unknown"):
    """Build (and write to ``out`` when given) a trace from OpenAI-compatible logprobs JSON files. Returns
    (trace, summary dict with the bracket widths)."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise BrwError(f"vocab_size must be the model's vocabulary size (a whole number >= 2), got {vocab_size!r}")
    if tail not in TAIL_POINTS:
        raise BrwError(f"tail must be one of {', '.join(TAIL_POINTS)}, got {clip(repr(tail), 40)}")
    if isinstance(paths, (str, bytes)) or not all(isinstance(p, (str, Path)) for p in paths):
        raise BrwError(f"paths must be a list of file names, got {clip(repr(paths), 60)}")
    if out is not None:
        check_output(out, ".npz")
    contexts = read_logprobs_json(paths)
    k = min(len(alts) for ctx in contexts for _, _, alts in ctx)
    kmax = max(len(alts) for ctx in contexts for _, _, alts in ctx)
    table, (top_logp, top_ids, taken, taken_logp, ctx_idx, offs, ctx_tokens, ctx_offsets) = _rows(contexts, k)
    top = np.asarray(top_logp, dtype=np.float64)
    if len(table) > vocab_size:
        raise BrwError(f"the files use {len(table) - 1} distinct tokens, more than vocab_size = {vocab_size}")
    if vocab_size < k + 1:
        raise BrwError(f"vocab_size = {vocab_size} leaves no room for a tail beyond the top {k}")
    p = np.exp(top)
    m = np.clip(1.0 - p.sum(axis=1), 0.0, None)
    h_top = -(p * top).sum(axis=1)
    s_top = (p * top**2).sum(axis=1)
    h_lo, h_hi, s_lo, s_hi = tail_bounds(top, vocab_size)
    bad = ~np.isfinite(h_hi) | (h_hi < h_lo)
    if bad.any():
        r = int(np.argmax(bad))
        raise BrwError(f"position {r}: a tail of mass {m[r]:.3g} cannot fit in the rest of a vocabulary of "
                       f"{vocab_size} tokens below the k-th probability; is vocab_size right?")
    if tail == "lo":
        h = h_lo.copy()
        s = s_lo.copy()
    elif tail == "hi":
        h = h_hi.copy()
        s = s_hi.copy()
    else:
        h = 0.5 * (h_lo + h_hi)
        s = 0.5 * (s_lo + s_hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.maximum(s, np.where(m > 0, h**2 / np.where(m > 0, m, 1.0), 0.0))  # Cauchy-Schwarz on the tail
    s = np.minimum(s, s_hi)
    n = top.shape[0]
    tokens_table = [t for (t, _), _ in sorted(table.items(), key=lambda kv: kv[1])]
    meta = {"model": model, "mode": "imported", "source": [str(x) for x in paths], "vocab_size": vocab_size,
            "k": k, "k_max_seen": kmax, "tail_point": tail, "temperature": None, "device": None, "dtype": None,
            "prompt_source": "unknown (token 0 stands for the prompt)"}
    from brw._version import __version__

    meta["brw_version"] = __version__
    trace = make_trace(
        meta=meta, where="imported logprobs",
        top_logp=top, top_ids=np.asarray(top_ids, dtype=np.int32), entropy=h_top + h, log_moment2=s_top + s,
        tail_mass=m, taken=np.asarray(taken, dtype=np.int32), taken_logp=np.asarray(taken_logp),
        context=np.asarray(ctx_idx, dtype=np.int32), offset=np.asarray(offs, dtype=np.int32),
        context_tokens=np.asarray(ctx_tokens, dtype=np.int32), context_offsets=np.asarray(ctx_offsets, np.int64),
        prompt_lengths=np.ones(len(contexts), dtype=np.int32),
        entropy_lo=h_top + h_lo, entropy_hi=h_top + h_hi, log_moment2_lo=s_top + s_lo, log_moment2_hi=s_top + s_hi,
        token_strings=np.array(tokens_table, dtype=str),
    )
    summary = {"positions": n, "contexts": len(contexts), "k": k, "vocab_size": vocab_size, "tail_point": tail,
               "mu": trace.mu, "mu2": trace.mu2,
               "mu_bracket": [float(np.mean(h_top + h_lo)), float(np.mean(h_top + h_hi))],
               "mu2_bracket": [float(np.mean(s_top + s_lo)), float(np.mean(s_top + s_hi))],
               "mean_tail_mass": float(np.mean(m))}
    summary["mu_bracket_width"] = summary["mu_bracket"][1] - summary["mu_bracket"][0]
    summary["mu2_bracket_width"] = summary["mu2_bracket"][1] - summary["mu2_bracket"][0]
    if out is not None:
        from brw.traces import save_trace

        save_trace(trace, out)
        trace.path = str(out)
        summary["file"] = str(out)
    return trace, summary
