"""Importing OpenAI-style logprobs: brackets that contain the truth, their ends, errors, and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brw import BrwError, parse_law
from brw.cli import main
from brw.real.importers import import_logprobs
from brw.traces import load_trace

def _dist(seed, vocab=60):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(vocab) * 2.5
    lp = z - np.logaddexp.reduce(z)
    return lp


def _chat_json(dists, k, taken):
    content = []
    for lp, t in zip(dists, taken):
        order = np.argsort(-lp)[:k]
        content.append({"token": f"t{t}", "logprob": float(lp[t]), "bytes": list(f"t{t}".encode()),
                        "top_logprobs": [{"token": f"t{i}", "logprob": float(lp[i]), "bytes": list(f"t{i}".encode())}
                                         for i in order]})
    return {"id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "..."},
                         "logprobs": {"content": content}}]}


def _completions_json(dists, k, taken):
    return {"object": "text_completion", "choices": [{"index": 0, "text": "...", "logprobs": {
        "tokens": ["<echo>"] + [f"t{t}" for t in taken],
        "token_logprobs": [None] + [float(lp[t]) for lp, t in zip(dists, taken)],
        "top_logprobs": [None] + [{f"t{i}": float(lp[i]) for i in np.argsort(-lp)[:k]} for lp in dists],
        "text_offset": list(range(len(taken) + 1))}}]}


@pytest.mark.parametrize("shape", ["chat", "completions"])
def test_import_brackets_contain_truth(tmp_path, shape):
    vocab, k = 60, 5
    dists = [_dist(s, vocab) for s in range(12)]
    taken = [int(np.argmax(lp)) if s % 2 else int(np.argsort(-lp)[2]) for s, lp in enumerate(dists)]
    doc = (_chat_json if shape == "chat" else _completions_json)(dists, k, taken)
    src = tmp_path / "r.json"
    src.write_text(json.dumps([doc, doc]))  # two responses: two contexts
    out = tmp_path / "imp.npz"
    trace, s = import_logprobs([src], out, vocab_size=vocab)
    assert s["positions"] == 24 and s["contexts"] == 2 and s["k"] == k
    t = load_trace(out)
    assert t.meta["mode"] == "imported" and t.token_strings is not None
    H = np.array([-(np.exp(lp) * lp).sum() for lp in dists] * 2)
    M2 = np.array([(np.exp(lp) * lp**2).sum() for lp in dists] * 2)
    b = t.brackets
    assert np.all(b["entropy_lo"] <= H + 1e-12) and np.all(H <= b["entropy_hi"] + 1e-12)
    assert np.all(b["log_moment2_lo"] <= M2 + 1e-12) and np.all(M2 <= b["log_moment2_hi"] + 1e-12)
    assert s["mu_bracket"][0] <= H.mean() <= s["mu_bracket"][1]
    assert s["mu_bracket_width"] > 0 and s["mu2_bracket_width"] > 0
    # The point the law uses lies in the bracket, and the law reproduces it.
    assert np.all(b["entropy_lo"] <= t.entropy) and np.all(t.entropy <= b["entropy_hi"])
    law = parse_law(f"trace:{out}")
    assert abs(law.mu - t.mu) < 1e-9 and abs(law.mu2 - t.mu2) < 1e-9
    # Taken tokens and their log-probabilities survive, with the prompt placeholder at offset 0.
    assert t.token_strings[t.taken[0]] == f"t{taken[0]}"
    np.testing.assert_allclose(t.taken_logp[:12], [lp[x] for lp, x in zip(dists, taken)])
    assert t.token_strings[t.context_ids(0)[0]] == "<prompt>"


def test_import_bracket_ends(tmp_path):
    dists = [_dist(s) for s in range(6)]
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_chat_json(dists, 4, [0] * 6)))
    lo, s_lo = import_logprobs([src], vocab_size=60, tail="lo")
    hi, s_hi = import_logprobs([src], vocab_size=60, tail="hi")
    assert abs(lo.mu - s_lo["mu_bracket"][0]) < 1e-12 and abs(hi.mu - s_hi["mu_bracket"][1]) < 1e-12
    # Wider vocabularies leave the tail more room: the bracket widens.
    _, s_big = import_logprobs([src], vocab_size=100000)
    assert s_big["mu_bracket_width"] > s_lo["mu_bracket_width"]


def test_import_errors(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"choices": [{"message": {}}]}))
    with pytest.raises(BrwError, match="no 'logprobs' object"):
        import_logprobs([src], vocab_size=100)
    doc = _chat_json([_dist(1)], 3, [0])
    doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]["logprob"] = 0.5
    src.write_text(json.dumps(doc))
    with pytest.raises(BrwError, match="logprob 0.5 is above 0"):
        import_logprobs([src], vocab_size=100)
    doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]["logprob"] = -0.01
    doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1]["logprob"] = -0.02
    src.write_text(json.dumps(doc))
    with pytest.raises(BrwError, match=r"carry probability .* more than 1"):
        import_logprobs([src], vocab_size=100)
    src.write_text(json.dumps(_chat_json([_dist(1)], 3, [0])))
    with pytest.raises(BrwError, match="vocab_size = 3"):
        import_logprobs([src], vocab_size=3)
    with pytest.raises(BrwError, match="^tail must be one of"):
        import_logprobs([src], vocab_size=100, tail="middle")
    with pytest.raises(BrwError, match="must end in .npz"):
        import_logprobs([src], tmp_path / "t.txt", vocab_size=100)
    src.write_text("{oops")
    with pytest.raises(BrwError, match="not readable JSON"):
        import_logprobs([src], vocab_size=100)
    with pytest.raises(BrwError, match="does not exist"):
        import_logprobs([tmp_path / "none.json"], vocab_size=100)


def test_cli_import_logprobs(tmp_path, capsys):
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_completions_json([_dist(s) for s in range(5)], 5, [1, 2, 3, 4, 5])))
    out = tmp_path / "i.npz"
    assert main(["import-logprobs", str(src), "--out", str(out), "--vocab-size", "60", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["positions"] == 5 and d["mu_bracket_width"] > 0 and out.exists()
    assert main(["import-logprobs", str(src), "--out", str(out), "--vocab-size", "60"]) == 2
    assert "already exists" in capsys.readouterr().err
