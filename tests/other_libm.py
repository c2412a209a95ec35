"""The suite as on another CPU: numpy's exp, log, log1p and expm1 replaced by versions that differ from this
machine's in the last bits, by up to 4 units in the last place, deterministically (each input always gives the
same result, as a different vectorised implementation would: numpy picks AVX-512, AVX2 or plain code by CPU).

``BRW_TEST_OTHER_LIBM=1 pytest ...`` (tests/conftest.py installs it before any test module imports brw): every
tolerance of the suite must hold there too, since it must hold on any CPU. Inputs where the functions are exact
on every CPU (exp(0) = 1, log(1) = 0, and infinities and NaN) keep their exact results, and so does a result of
exactly 0 (an exp that underflows is 0 on every CPU, never the negative number a move of one unit would make); so
do Numba's kernels, which call the C library's functions, not numpy's, and any process the suite starts (sweep
workers), which does not install it.
"""

from __future__ import annotations

import numpy as np

#: The input at which each function is exact on every CPU.
EXACT = {"exp": 0.0, "log": 1.0, "log1p": 0.0, "expm1": 0.0}
ULPS = 4


class OtherLibm:
    """numpy's ``name`` off by up to ULPS units in the last place, the same for the same input."""

    def __init__(self, f, exact: float):
        self.f, self.exact = f, exact

    def __call__(self, x, *args, **kw):
        r = self.f(x, *args, **kw)
        if not (isinstance(r, (np.ndarray, np.floating, float)) and np.asarray(r).dtype == np.float64):
            return r
        xs = np.asarray(x, dtype=np.float64)
        if xs.shape != np.shape(r):
            return r
        bits = np.ascontiguousarray(xs).reshape(-1).view(np.uint64).reshape(xs.shape)
        with np.errstate(over="ignore"):
            k = ((bits * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(59)).astype(np.int64) % (2 * ULPS + 1) - ULPS
        ok = (xs != self.exact) & np.isfinite(xs) & np.isfinite(r) & (r != 0)  # an underflow to 0 is 0 everywhere
        moved = np.where(ok, r + k * np.spacing(np.abs(r)), r)
        if isinstance(r, np.ndarray):
            r[...] = moved  # in place: an out= argument sees it too
            return r
        return type(r)(moved[()])

    def __getattr__(self, name):
        return getattr(self.f, name)


def install() -> None:
    for name, exact in EXACT.items():
        setattr(np, name, OtherLibm(getattr(np, name), exact))
