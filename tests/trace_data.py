"""Synthetic traces for the tests: arrays whose rows are exact statistics of full V-token distributions, a
saved trace file, and a writer of archives that skips validation (to make broken files)."""

from __future__ import annotations

import json

import numpy as np

from brw.traces import SCHEMA_VERSION, make_trace, save_trace

V = 400
K = 8


def _full_dist(rng, kind):
    """A log-probability vector over V tokens of an LM-like shape."""
    if kind == "peaked":
        z = rng.standard_normal(V) * 2.0
        z[rng.integers(V)] += 14.0
    elif kind == "flat":
        z = rng.standard_normal(V) * 0.3
    elif kind == "ties":  # the three likeliest tokens tie
        z = rng.standard_normal(V) * 2.0
        z[np.argsort(-z)[:3]] = z.max()
    elif kind == "uniform":  # every token as likely as the next: the top-k and the tail alike
        z = np.zeros(V)
    elif kind == "middle":  # Zipf-like: entropy well between "peaked" and "flat"
        z = rng.standard_normal(V) * 0.3 - np.log(np.arange(1, V + 1))
    else:
        z = rng.standard_normal(V) * rng.uniform(0.5, 4.0) - rng.uniform(0, 2) * np.log(np.arange(1, V + 1))
    return z - np.logaddexp.reduce(z)


ROW_FIELDS = ("top_logp", "top_ids", "entropy", "log_moment2", "tail_mass", "taken", "taken_logp", "context",
              "offset")


def add_row(f, lp, k, tok, context, offset):
    """Append to ``f`` (lists by field) the row of the full log-probability vector ``lp``: its top k, its exact
    entropy, second log-moment and tail mass, and the token ``tok`` taken at (context, offset)."""
    p = np.exp(lp)
    order = np.argsort(-lp, kind="stable")[:k]
    f["top_logp"].append(lp[order])
    f["top_ids"].append(order)
    f["entropy"].append(-(p * lp).sum())
    f["log_moment2"].append((p * lp * lp).sum())
    f["tail_mass"].append(np.delete(p, order).sum())
    f["taken"].append(tok)
    f["taken_logp"].append(lp[tok])
    f["context"].append(context)
    f["offset"].append(offset)


def finish(f, toks, offsets, plens, k):
    """The arrays (in the format's dtypes) and metadata of a trace of the rows in ``f`` and the given contexts."""
    arrays = {key: np.asarray(v) for key, v in f.items()}
    arrays["top_logp"] = arrays["top_logp"].astype(np.float32)
    arrays["top_ids"] = arrays["top_ids"].astype(np.uint16)
    arrays["taken"] = arrays["taken"].astype(np.uint16)
    arrays["context"] = arrays["context"].astype(np.int32)
    arrays["offset"] = arrays["offset"].astype(np.int32)
    arrays["context_tokens"] = np.asarray(toks, dtype=np.uint16)
    arrays["context_offsets"] = np.asarray(offsets, dtype=np.int64)
    arrays["prompt_lengths"] = np.asarray(plens, dtype=np.int32)
    meta = {"model": "synthetic", "mode": "sampled", "temperature": 1.0, "vocab_size": V, "k": k,
            "brw_version": "test", "device": "cpu", "dtype": "float64", "prompt_source": "tests"}
    return arrays, meta


def synthetic(seed=0, contexts=5, k=K, lengths=None, kinds=("peaked", "flat", "zipf")):
    """Arrays of a valid trace whose rows are exact statistics of full V-token distributions: ``lengths`` rows
    per context (default random, 3 to 11), row j of a context of the kind ``kinds[j % len(kinds)]``."""
    rng = np.random.default_rng(seed)
    f = {key: [] for key in ROW_FIELDS}
    toks, offsets, plens = [], [0], []
    for c in range(contexts):
        plen = int(rng.integers(1, 5))
        n = int(rng.integers(3, 12)) if lengths is None else lengths
        seq = list(rng.integers(0, V, size=plen))
        for j in range(n):
            lp = _full_dist(rng, kinds[j % len(kinds)])
            p = np.exp(lp)
            tok = int(rng.choice(V, p=p / p.sum()))
            add_row(f, lp, k, tok, c, len(seq))
            seq.append(tok)
        toks.extend(seq)
        offsets.append(len(toks))
        plens.append(plen)
    return finish(f, toks, offsets, plens, k)


def write_trace(path):
    """A valid synthetic trace saved at ``path``."""
    arrays, meta = synthetic()
    save_trace(make_trace(meta=meta, **arrays), path)
    return path


def raw_save(path, arrays, meta_dict, compressed=False, **override):
    """Write an archive without validation (to make broken files)."""
    out = {"schema_version": np.array(SCHEMA_VERSION, dtype=np.int64), "format": np.array("brw-trace"),
           "meta": np.array(json.dumps(meta_dict))}
    out.update(arrays)
    for key, val in override.items():
        if val is None:
            out.pop(key, None)
        else:
            out[key] = val
    with open(path, "wb") as f:
        (np.savez_compressed if compressed else np.savez)(f, **out)
    return path

