"""Rebind the bundled greedy branches to re-recorded source traces whose arrays did not change.

A trace of greedy branches names its source trace by the file's SHA-256 (``source_sha256``; the ``greedy=`` rows of
``run:`` and ``prefix:`` are refused beside any other file). Re-recording SmolLM2's T = 1 traces with moments at
other temperatures (sims/record_traces.py --moments-at 0.5,0.7) adds fields and so changes the files' hashes, while
every array of the first recording, the text included, stays the same bits (tests/data/smollm2_t1_trace_arrays.json
holds their hashes). This script checks that, array by array, and then writes each branch file again with the new
source hash (its arrays untouched; ``source_rebound_from`` keeps the old hash), so the branches need not be
recorded again.

    python sims/rebind_branches.py            # brw/data/smollm2-{code,math,chat}-greedy.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from brw.files import sha256, write_npz
from brw.traces import DATA_DIR, load_trace

OLD = Path(__file__).resolve().parent.parent / "tests" / "data" / "smollm2_t1_trace_arrays.json"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genres", default="code,math,chat")
    args = ap.parse_args(argv)
    old = json.loads(OLD.read_text())
    for genre in args.genres.split(","):
        src = DATA_DIR / f"smollm2-{genre}.npz"
        with np.load(src, allow_pickle=False) as z:
            for name, want in old[genre].items():
                a = np.asarray(z[name])
                got = f"{hashlib.sha256(a.tobytes()).hexdigest()}:{a.dtype}:{list(a.shape)}"
                if got != want:
                    raise SystemExit(f"{src}: array {name} differs from the first recording's; record the branches again")
        path = DATA_DIR / f"smollm2-{genre}-greedy.npz"
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
        new = sha256(src)
        if meta["source_sha256"] == new:
            print(f"{path.name}: already bound to {new[:12]}")
            continue
        meta["source_rebound_from"] = meta["source_sha256"]
        meta["source_sha256"] = new
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, allow_nan=False))
        write_npz(path, arrays)
        load_trace(path)  # still a valid trace
        print(f"{path.name}: {meta['source_rebound_from'][:12]} -> {new[:12]}")


if __name__ == "__main__":
    main()
