"""Rebind the bundled greedy branches and real-tree results to re-recorded source traces whose arrays did not change.

A trace of greedy branches names its source trace by the file's SHA-256 (``source_sha256``; the ``greedy=`` rows of
``run:`` and ``prefix:`` are refused beside any other file). Re-recording SmolLM2's T = 1 traces with moments at
other temperatures (sims/record_traces.py --moments-at 0.5,0.7) adds fields and so changes the files' hashes, while
every array of the first recording, the text included, stays the same bits (tests/data/smollm2_t1_trace_arrays.json
holds their hashes). This script checks that, array by array, and then writes each branch file again with the new
source hash (its arrays untouched; ``source_rebound_from`` keeps the old hash), so the branches need not be
recorded again. The bundled real-tree results that name those traces (``sources[j]["sha256"]``: resuming them, and
tests/test_realtree.py, check it) are rebound the same way (``sha256_rebound_from``); a results file made elsewhere
from the old traces (a longer run, say) is rebound with ``--results FILE``.

    python sims/rebind_branches.py            # brw/data/smollm2-{code,math,chat}-greedy.npz, realtrees-smollm2*.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from brw.files import sha256, write_npz
from brw.real.realtree import BUNDLED as REAL, load_realtrees
from brw.traces import DATA_DIR, load_trace

OLD = Path(__file__).resolve().parent.parent / "tests" / "data" / "smollm2_t1_trace_arrays.json"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genres", default="code,math,chat")
    ap.add_argument("--results", nargs="*", default=[str(REAL["smollm2"]), str(REAL["smollm2-p1024"])],
                    help="real-tree results to rebind (default: the bundled SmolLM2 ones at T = 1)")
    args = ap.parse_args(argv)
    old = json.loads(OLD.read_text())
    new_sha = {}
    for genre in args.genres.split(","):
        src = DATA_DIR / f"smollm2-{genre}.npz"
        with np.load(src, allow_pickle=False) as z:
            for name, want in old[genre].items():
                a = np.asarray(z[name])
                got = f"{hashlib.sha256(a.tobytes()).hexdigest()}:{a.dtype}:{list(a.shape)}"
                if got != want:
                    raise SystemExit(f"{src}: array {name} differs from the first recording's; record the branches again")
        new_sha[genre] = sha256(src)
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
    for results in args.results:
        res = load_realtrees(results)  # checked whole; then only its metadata is written again
        sources, changed = [dict(src) for src in res.meta["sources"]], False
        for src in sources:
            genre = src.get("file", "").removeprefix("bundled:")
            if genre in new_sha and src.get("sha256") != new_sha[genre]:
                src["sha256_rebound_from"], src["sha256"], changed = src.get("sha256"), new_sha[genre], True
        if changed:
            with np.load(results, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
            raw["meta"] = np.array(json.dumps({**res.meta, "sources": sources}, sort_keys=True, allow_nan=False))
            write_npz(results, raw)
            load_realtrees(results)
            print(f"{Path(results).name}: sources rebound")


if __name__ == "__main__":
    main()
