"""Every number the package prints for a given seed stays the same across refactors.

Each line of ``tests/golden_commands.txt`` is run in-process with ``--json``; its output must equal the one
recorded in ``tests/data/golden.json`` key for key (floats to 1e-9 relative or 1e-15 absolute, timings and
versions excepted: machines' vectorised exp and log and their BLAS differ in the last bits, which the
renewal numerics carry to ~1e-10; any change of method moves far more).
Run ``python tests/test_golden.py --write`` to record anew after a deliberate change of numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shlex
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
COMMANDS = [ln.strip() for ln in (HERE / "golden_commands.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
GOLDEN = HERE / "data" / "golden.json"
#: Keys that measure time or name the build, not results.
VOLATILE = {"nodes_per_second", "seconds", "version"}
#: Renamed keys: old name -> the conventions' name.
RENAMED = {"sharp_asymptotic": "asymptotic"}
DATA = "/brw/data/"


def run(line: str) -> dict:
    from brw.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(shlex.split(line) + ["--json"])
    assert code == 0, line
    return json.loads(out.getvalue())


def _norm(obj):
    if isinstance(obj, dict):
        return {RENAMED.get(k, k): _norm(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    if isinstance(obj, str) and DATA in obj:  # a bundled file's path depends on where the package lies
        return "brw/data/" + obj.split(DATA, 1)[1]
    return obj


def _same(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) <= set(b), f"{where}: keys {sorted(set(a) - set(b or {}))} missing"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: length"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        if math.isnan(a):
            assert math.isnan(b), where
        else:
            assert b == pytest.approx(a, rel=1e-9, abs=1e-15), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("line", COMMANDS)
def test_same_numbers_as_recorded(line):
    golden = json.loads(GOLDEN.read_text())
    _same(_norm(golden[line]), _norm(run(line)), line)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    GOLDEN.write_text(json.dumps({line: run(line) for line in COMMANDS}, indent=1) + "\n")
