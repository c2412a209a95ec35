"""Every number the package prints for a given seed stays the same across refactors.

Each line of ``tests/golden_commands.txt`` is run in-process with ``--json``; its output must equal the one
recorded in ``tests/data/golden.json`` key for key, timings and versions excepted, each float to the accuracy
of the computation behind it (``tolerance``): another machine's vectorised exp and log (numpy picks AVX-512,
AVX2 or plain code by CPU) and its BLAS differ in the last bits, and an iterative solver that stops at a
tolerance may stop elsewhere inside it. Any change of method moves the numbers far more.

How far each kind of number may move, and why:

- Sums, means and closed forms (accepted, standard errors, mu, mu2, the bounds, the renewal numerics): 1e-9
  relative (and 1e-15 absolute). ``python tests/test_golden.py --sensitivity`` reruns every command with numpy's
  exp, log, log1p and expm1 off by up to 2 units in the last place at random (what another CPU may do); the
  largest relative change it finds is 3e-13 (renewal bounds; 2e-15 or less elsewhere): 1e-9 leaves a factor
  of over 1000.
- A difference of two such numbers (``renewal_bound_width``, the bracket of the renewal bound; trace-info's
  ``law_mu_minus_mu`` and ``law_mu2_minus_mu2``) carries their absolute error: 1e-9 of the larger term (the
  bound, mu, mu2), not of the small difference (which moved by 7e-10 and 3e-6 of itself under that noise).
- ``biggins_theta``: Brent's bounded minimiser on s = log theta stops once its bracket is within
  2 (sqrt(eps) |s| + xatol / 3) of its point (``brw.theory.BIGGINS_XATOL``); two machines may stop anywhere in
  that bracket, so theta may move by 4 (sqrt(eps) |s| + xatol / 3) relative (about 5e-8; a failure seen on
  another CPU was 1.4e-8 against the old blanket 1e-9). ``biggins_gamma`` is the minimum's value: its error is
  second order in the bracket (below 1e-15), it keeps 1e-9.
- ``predicted_depth`` solves gamma n + (1.5 / theta) log n = x by brentq (scipy's xtol 2e-12, rtol 4 eps): n
  moves by its tolerance plus theta's error carried through, (1.5 log n / theta) d(theta)/theta divided by
  gamma + 1.5 / (theta n).

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

import numpy as np
import pytest

from brw import theory

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


#: Relative accuracy of sums, means and closed forms on another machine (see the module docstring).
REL = 1e-9
#: scipy's brentq defaults (predicted_depth): absolute and relative tolerance.
BRENTQ_XTOL, BRENTQ_RTOL = 2e-12, 4 * np.finfo(float).eps
SQRT_EPS = math.sqrt(np.finfo(float).eps)
#: A difference of two numbers -> the larger term, whose absolute error it carries.
DIFFERENCES = {"renewal_bound_width": "renewal_bound", "law_mu_minus_mu": "mu", "law_mu2_minus_mu2": "mu2"}


def _theta_rel(theta: float) -> float:
    """How far biggins_theta may move on another machine, relative: Brent's final bracket on log theta."""
    return 4 * (SQRT_EPS * abs(math.log(theta)) + theory.BIGGINS_XATOL / 3) if math.isfinite(theta) else 0.0


def tolerance(key: str, value: float, i: int | None, record: dict) -> float:
    """The absolute tolerance of the golden ``value`` of ``key`` (element ``i`` of a list) in ``record``, the
    dict that holds it: the accuracy of the computation behind it (see the module docstring)."""
    if key in DIFFERENCES:
        big = record[DIFFERENCES[key]]
        return REL * abs(big[i] if i is not None else big) + 1e-15
    if key == "biggins_theta":
        return _theta_rel(value) * abs(value) + REL * abs(value)
    if key == "predicted_depth" and record.get("biggins_theta") is not None:
        theta, gamma, n = record["biggins_theta"], record["biggins_gamma"], value
        carried = 0.0
        if math.isfinite(theta):
            carried = 1.5 * abs(math.log(n)) / theta * _theta_rel(theta) / (gamma + 1.5 / (theta * n))
        return 2 * (BRENTQ_XTOL + BRENTQ_RTOL * abs(n)) + carried + REL * abs(n)
    return REL * abs(value) + 1e-15


def _same(a, b, where: str, key: str = "", record=None, i=None) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) <= set(b), f"{where}: keys {sorted(set(a) - set(b or {}))} missing"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}", k, a)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: length"
        for j, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{j}]", key, record, j)
    elif isinstance(a, float) and isinstance(b, (int, float)):
        if math.isnan(a):
            assert math.isnan(b), where
        elif math.isinf(a):
            assert a == b, where
        else:
            tol = tolerance(key, a, i, record)
            assert abs(b - a) <= tol, f"{where}: {b!r} != {a!r} (tolerance {tol:.2g})"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_each_tolerance_is_its_computations_accuracy():
    """A recorded theory output: theta may move within Brent's bracket (a change seen on another CPU passes,
    one a hundred times larger does not), depth by what theta carries, every other number by 1e-9 only."""
    rec = json.loads(GOLDEN.read_text())["theory --law trace:math --at 2,256,65536"]
    theta, depth = rec["biggins_theta"], rec["predicted_depth"]
    assert 1.4e-8 * theta <= tolerance("biggins_theta", theta, None, rec) < 1e-6 * theta
    assert REL * depth[-1] < tolerance("predicted_depth", depth[-1], 2, rec) < 1e-6 * depth[-1]
    for key in ("renewal_bound", "asymptotic", "mu", "biggins_gamma"):
        v = rec[key][-1] if isinstance(rec[key], list) else rec[key]
        assert tolerance(key, v, 2, rec) == pytest.approx(REL * abs(v) + 1e-15)
    assert tolerance("renewal_bound_width", rec["renewal_bound_width"][2], 2, rec) == pytest.approx(
        REL * rec["renewal_bound"][2] + 1e-15)


@pytest.mark.parametrize("line", [pytest.param(c, marks=pytest.mark.slow) if c.startswith("compare") else c
                                  for c in COMMANDS])
def test_same_numbers_as_recorded(line):
    golden = json.loads(GOLDEN.read_text())
    _same(_norm(golden[line]), _norm(run(line)), line)


# --------------------------------------------------------------------------------------------------------
# --sensitivity: how far round-off of another machine moves each number (the measurement behind REL).

#: numpy functions that CPUs compute differently in the last bits, and the input at which each is exact on
#: every CPU (exp(0) = 1, log(1) = 0): never disturbed there.
NOISY = {"exp": 0.0, "log": 1.0, "log1p": 0.0, "expm1": 0.0}


class _Noisy:
    """A numpy function whose results are off by up to 2 units in the last place, at random."""

    def __init__(self, f, rng, exact):
        self.f, self.rng, self.exact = f, rng, exact

    def __call__(self, *args, **kw):
        r = self.f(*args, **kw)
        x = np.asarray(args[0]) if args else None
        if isinstance(r, np.ndarray) and r.dtype.kind == "f" and r.size:
            d = self.rng.integers(-2, 3, r.shape) * np.finfo(float).eps
            if x is not None and x.shape == r.shape:
                d = np.where(x != self.exact, d, 0.0)
            r *= 1 + d
        elif isinstance(r, (float, np.floating)) and (x is None or bool(np.all(x != self.exact))):
            r = type(r)(r * (1 + int(self.rng.integers(-2, 3)) * np.finfo(float).eps))
        return r

    def __getattr__(self, name):
        return getattr(self.f, name)


def _spread(a, b, where: str, out: dict) -> None:
    if isinstance(a, dict):
        for k in a:
            _spread(a[k], b.get(k), f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        for x, y in zip(a, b):
            _spread(x, y, where, out)
    elif isinstance(a, float) and isinstance(b, (int, float)) and math.isfinite(a) and a != 0:
        out[where] = max(out.get(where, 0.0), abs(b - a) / abs(a))


def sensitivity(repeats: int = 4) -> None:
    """Every command again under disturbed exp and log (``repeats`` draws): the largest relative change of each
    number that changed, command by command."""
    from brw.laws import trace as trace_laws

    golden = json.loads(GOLDEN.read_text())
    for line in COMMANDS:
        spread: dict = {}
        for seed in range(repeats):
            trace_laws._law_arrays.cache_clear()  # the laws of traces are rebuilt under the noise too
            rng = np.random.default_rng(seed)
            saved = {name: getattr(np, name) for name in NOISY}
            for name, exact in NOISY.items():
                setattr(np, name, _Noisy(saved[name], rng, exact))
            try:
                got = run(line)
            finally:
                for name, f in saved.items():
                    setattr(np, name, f)
            _spread(_norm(golden[line]), _norm(got), "", spread)
        moved = sorted(((v, k) for k, v in spread.items() if v > 0), reverse=True)
        print(f"{line}: " + (", ".join(f"{k[1:]} {v:.1e}" for v, k in moved[:6]) or "nothing moved"), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        GOLDEN.write_text(json.dumps({line: run(line) for line in COMMANDS}, indent=1) + "\n")
    elif sys.argv[1:] == ["--sensitivity"]:
        sensitivity()
    else:
        sys.exit(__doc__)
