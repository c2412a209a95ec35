"""Attach the moments at other temperatures of a re-recording to the bundled SmolLM2 T = 1 traces.

sims/record_traces.py --moments-at 0.5,0.7 records the bundled traces again with the same prompts, seed, batch and
one torch thread. On this machine the re-recording samples the same text (every token, context and offset is the
same), but its floating-point statistics differ from the first recording's by up to a few 1e-5 (entropy 2.3e-5
nats, top-k log-probabilities 6e-5, and a few near-tied tail tokens swap ranks): the logits of the two machines
differ in their last float32 bits. Replacing the bundled traces would move every number computed from them (the
golden numbers, the real trees' root cross-check), so instead the bundled files keep every array bit for bit and
gain the re-recording's three moment fields (``moments_at``, ``entropy_at``, ``log_moment2_at``), which belong to
the same rows (the same text, row for row). The metadata says where they came from and how far the re-recording's
own entropies are from the file's (``moments_recording``).

    python sims/record_traces.py --moments-at 0.5,0.7 --out /tmp/t1     # the re-recording
    python sims/attach_moments.py --from /tmp/t1                        # into brw/data/smollm2-{code,math,chat}.npz
    python sims/rebind_branches.py                                      # the greedy branches to the new files
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from brw.files import sha256
from brw.traces import DATA_DIR, load_trace, save_trace

TEXT = ("taken", "context", "offset", "context_tokens", "context_offsets", "prompt_lengths")
#: Largest difference allowed between the two recordings' entropies (nats): float32 logits of two machines.
SAME_ROWS = 1e-3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", type=Path, required=True, help="folder of the re-recorded traces")
    ap.add_argument("--genres", default="code,math,chat")
    args = ap.parse_args(argv)
    for genre in args.genres.split(","):
        path = DATA_DIR / f"smollm2-{genre}.npz"
        old, new = load_trace(path), load_trace(args.source / path.name)
        for name in TEXT:
            if not np.array_equal(getattr(old, name), getattr(new, name)):
                raise SystemExit(f"{genre}: the re-recording's {name} differs: not the same text")
        dh = float(np.max(np.abs(old.entropy - new.entropy)))
        if dh > SAME_ROWS or new.moments_at is None:
            raise SystemExit(f"{genre}: entropies differ by {dh:.2e} nats (or no moments): not the same rows")
        meta = dict(old.meta, moments_at=new.moments_at.tolist(), moments_recording={
            "script": "sims/record_traces.py --moments-at " + ",".join(f"{t:g}" for t in new.moments_at),
            "sha256": sha256(new.path), "brw_version": new.meta.get("brw_version"),
            "same_text": True, "max_entropy_difference": dh,
            "max_log_moment2_difference": float(np.max(np.abs(old.log_moment2 - new.log_moment2)))})
        out = replace(old, meta=meta, moments_at=new.moments_at, entropy_at=new.entropy_at,
                      log_moment2_at=new.log_moment2_at)
        save_trace(out, path)
        print(f"{path.name}: moments at {new.moments_at.tolist()} attached (same text; entropies within {dh:.1e} nats)")


if __name__ == "__main__":
    main()
