"""How wide are the mu / mu2 brackets of an imported (top-k only) trace? Measured on the bundled traces.

Each recorded SmolLM2 position is written out as an OpenAI chat-completions ``logprobs`` entry carrying only
its top k log-probabilities (k = 1, 5, 20: what APIs return; 64: what the recorder keeps), imported with
``brw.real.importers`` (vocabulary 49,152), and the bracket is set beside the true full-vocabulary mean recorded in
the trace.

    python sims/import_brackets.py            # a few seconds; prints a markdown table
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from brw.real.importers import import_logprobs
from brw.traces import load_trace


def as_chat_json(trace, k):
    choices = []
    for c in range(trace.contexts):
        rows = np.flatnonzero(trace.context == c)
        content = []
        for r in rows:
            tops = [{"token": f"<{int(t)}>", "logprob": float(lp)}
                    for t, lp in zip(trace.top_ids[r, :k], trace.top_logp[r, :k])]
            content.append({"token": f"<{int(trace.taken[r])}>", "logprob": float(trace.taken_logp[r]),
                            "top_logprobs": tops})
        choices.append({"index": c, "logprobs": {"content": content}})
    return {"object": "chat.completion", "choices": choices}


def main():
    lines = ["| trace | k | mu true | mu bracket | width | mu2 true | mu2 bracket | width |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("code", "math", "chat"):
            t = load_trace(name)
            for k in (1, 5, 20, 64):
                src = Path(tmp) / f"{name}-{k}.json"
                src.write_text(json.dumps(as_chat_json(t, k)))
                _, s = import_logprobs([src], vocab_size=t.meta["vocab_size"])
                (lo, hi), (lo2, hi2) = s["mu_bracket"], s["mu2_bracket"]
                assert lo <= t.mu <= hi and lo2 <= t.mu2 <= hi2
                lines.append(f"| {name} | {k} | {t.mu:.3f} | [{lo:.3f}, {hi:.3f}] | {hi - lo:.3f} | {t.mu2:.2f} | "
                             f"[{lo2:.2f}, {hi2:.2f}] | {hi2 - lo2:.2f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
