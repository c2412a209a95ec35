"""What the machine allows: sizes are checked against the memory available before anything is allocated.

Every public function that allocates or loops in proportion to a parameter (replicates, P, k, regimes,
bootstrap resamples, threshold levels, declared file sizes) asks :func:`require` first. A size that cannot
fit is refused with one line that names the parameter driving the cost and the largest value that fits.

The memory available is the least of the kernel's MemAvailable, the cgroup's limit less its usage, and the
address-space limit (``ulimit -v``) less what the process already maps. Standard library only: this module
is imported before numpy, scipy or numba.
"""

from __future__ import annotations

import math
import os
from typing import Callable

from brw.errors import BrwError, clip

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None

__all__ = ["available_memory", "largest_fitting", "require", "format_bytes", "check_numba_environment", "USABLE"]

#: Share of the available memory a computation may plan to use (the rest is headroom for Python, numpy
#: temporaries and other processes).
USABLE = 0.8


def _meminfo(field: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), or None when unlimited or unknown."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")), None)
        if rel is None:
            return None
        base = os.path.join("/sys/fs/cgroup", rel.lstrip("/"))
        with open(os.path.join(base, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current")) as f:
            return max(int(limit) - int(f.read().strip()), 0)
    except (OSError, ValueError, StopIteration):
        return None


def _address_space_room() -> int | None:
    """RLIMIT_AS (soft) less the address space this process maps already, or None when unlimited."""
    if resource is None:  # pragma: no cover
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    mapped = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(soft - mapped, 0)


def available_memory() -> int:
    """Bytes this process can still allocate: the least of MemAvailable, the cgroup's room and the
    address-space limit's room (physical memory where /proc is absent).

    Returns
    -------
    int
        Bytes available now.
    """
    room = [r for r in (_meminfo("MemAvailable"), _cgroup_room(), _address_space_room()) if r is not None]
    if not room:
        room = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    return min(room)


def format_bytes(n: float) -> str:
    """A size in the largest binary unit that keeps it >= 1 (``1.5 GiB``)."""
    n = float(n)
    if not math.isfinite(n):
        return "an unbounded amount"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def largest_fitting(cost: Callable[[int], float], lo: int, hi: int, budget: float) -> int:
    """The largest v in [lo, hi] with cost(v) <= budget (cost non-decreasing), or lo - 1 when none fits.

    Parameters
    ----------
    cost : callable
        Bytes needed at value v; non-decreasing in v.
    lo, hi : int
        The range searched.
    budget : float
        Bytes allowed.

    Returns
    -------
    int
        The largest value that fits, or ``lo - 1``.
    """
    if cost(lo) > budget:
        return lo - 1
    while lo < hi:  # invariant: cost(lo) <= budget
        mid = hi - (hi - lo) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def require(name: str, value: int, cost: Callable[[int], float], *, what: str, minimum: int = 1,
            hint: str = "") -> None:
    """Refuse ``value`` of parameter ``name`` when ``cost(value)`` bytes exceed the usable memory.

    The message names ``name``, the memory needed and available, and the largest value that fits.

    Parameters
    ----------
    name : str
        The parameter as the caller knows it (``replicates``, ``P``, ``k``).
    value : int
        Its value.
    cost : callable
        Bytes needed as a function of the value (non-decreasing), the other parameters fixed.
    what : str
        The computation, for the message (``a frontier of dirichlet:alpha=0.5,k=8``).
    minimum : int
        The smallest value the parameter may take.
    hint : str
        Appended when not even ``minimum`` fits (another parameter is to blame).

    Raises
    ------
    BrwError
        When the value does not fit.
    """
    have = available_memory()
    budget = USABLE * have
    need = cost(value)
    if need <= budget:
        return
    best = largest_fitting(cost, minimum, max(int(value) - 1, minimum), budget)
    fit = (f"at most {name}={best} fits" if best >= minimum
           else f"not even {name}={minimum} fits" + (f" ({hint})" if hint else ""))
    raise BrwError(f"{what} with {name}={value} needs about {format_bytes(need)} of memory but "
                   f"{format_bytes(have)} is available; {fit}")


def check_numba_environment() -> None:
    """Refuse a ``NUMBA_NUM_THREADS`` that Numba cannot use, before Numba reads it: 0 or a negative count
    makes ``import numba`` raise, and text makes it warn and ignore the setting.

    Raises
    ------
    BrwError
        When ``NUMBA_NUM_THREADS`` is set to anything but a whole number >= 1.
    """
    value = os.environ.get("NUMBA_NUM_THREADS")
    if value is None:
        return
    try:
        ok = int(value) >= 1
    except ValueError:
        ok = False
    if not ok:
        raise BrwError(f"the environment variable NUMBA_NUM_THREADS={clip(value, 40)!r} must be a whole number "
                       f">= 1 (or unset)")
