"""What the sweep layer costs: overhead per small point, and the share of the kernels' throughput a large sweep keeps.

Beside ``brw.studies.bench`` (the kernels themselves). Each sweep writes its points and results.parquet to a
fresh folder, as a user's would. ``sweep_bench()`` measures, side by side in one run:

- the split of the cores: one process whose Numba threads share the cores against one worker process per core
  with one Numba thread each, on many small points (default: processes) and on large ones (default: threads);
- small points: a sweep of N1 and of N2 points; the marginal wall time per point (slope between the two) times
  the cores, minus the kernels' own core time per point (the same ``compute`` calls in a plain loop on one
  thread), is the layer's overhead per point in core-milliseconds; the intercept is the fixed cost of a sweep
  (starting worker processes, reading the store, writing the table);
- large points: tree nodes per second of the sweep against the same frontier calls in a plain loop in one
  process on every core (the kernels' own throughput), locally and on a Dask LocalCluster of two worker
  processes (cluster start-up reported apart), as ratios.

Each measurement is the fastest of a few interleaved runs (the machine may be shared). The layer is built to
keep (``TARGETS``) at least 90 % of the kernels' throughput on large points and to cost at most a few
milliseconds per small point locally.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass, field

from brw._version import __version__
from brw.results import Result
from brw.sweeps import compute, plan, sweep

__all__ = ["sweep_bench", "SweepBenchmark", "TARGETS"]

#: What the sweep layer is built to reach: the share of the kernels' throughput a sweep of large points keeps
#: (at least), and its overhead per small point in core-milliseconds, locally (at most).
TARGETS = {"large_share_of_kernel": 0.9, "small_overhead_core_ms": 3.0}


@dataclass(frozen=True)
class SweepBenchmark(Result):
    """What ``sweep_bench`` measured: ``small`` (sweeps of many small points, per split of the cores) and
    ``large`` (a sweep of large points against the kernels alone, locally and on Dask), with the machine."""

    cores: int
    python: str
    load_average: list
    small: dict
    large: dict
    targets: dict = field(default_factory=lambda: dict(TARGETS))
    version: str = __version__

    def checks(self) -> list:
        """Each target beside what this run measured.

        Returns
        -------
        list
            ``[what, measured, target, met]`` rows.
        """
        t = self.targets
        out = [[f"large points, share of the kernels' throughput ({name})", self.large[name]["share_of_kernel"],
                t["large_share_of_kernel"], self.large[name]["share_of_kernel"] >= t["large_share_of_kernel"]]
               for name in ("default", "dask_local_2")]
        o = self.small["default"]["overhead_core_ms_per_point"]
        out.append(["small points, overhead core-ms per point (default)", o, t["small_overhead_core_ms"],
                    o <= t["small_overhead_core_ms"]])
        return out

    def to_dict(self) -> dict:
        """The result as a JSON-able dict, with ``checks``.

        Returns
        -------
        dict
            Every field, and ``checks``.
        """
        return {**super().to_dict(), "checks": self.checks()}


def small_grid(n: int) -> dict:
    """n points of 4 replicate trees at P <= 64: each costs the kernels about a millisecond."""
    return dict(laws="dirichlet:alpha=0.5,k=8", P=[16, 64], replicates=4, seed=list(range(n)))


def large_grid(seeds: int) -> dict:
    """Points of 16 replicate trees of 2^18 nodes: each costs the kernels a second or more."""
    return dict(laws=["dirichlet:alpha={0.3,1},k=8", "trace:chat"], P=[2**18], replicates=16,
                seed=list(range(seeds)))


def nodes(grid: dict) -> int:
    return sum(p.replicates * p.P[-1] for p in plan(grid))


def loop(grid: dict, threads: int) -> float:
    """Wall seconds of the grid's points computed one after another in this process (no sweep layer)."""
    points = plan(grid)
    compute(points[0], points[0].P, threads)  # load the kernels and the laws first
    t0 = time.perf_counter()
    for p in points:
        compute(p, p.P, threads)
    return time.perf_counter() - t0


def timed_sweep(grid: dict, **kw) -> float:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        df = sweep(**grid, out=d, **kw)
        seconds = time.perf_counter() - t0
    assert df.attrs["sweep"]["computed"] == len(plan(grid)) and not df.attrs["sweep"]["failed"]
    return seconds


def best(runs: dict, repeats: int) -> dict:
    """Each named run ``repeats`` times, interleaved (a busy moment hits them all alike); the fastest of each."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(run())
    return {name: min(t) for name, t in times.items()}


def small_points(n1: int, n2: int, cores: int, repeats: int) -> dict:
    """Sweeps of n1 and n2 small points, per split of the cores, beside the kernels alone."""
    splits = {"default": {}, "threads": {"workers": 1}}
    runs = {"kernel": lambda: loop(small_grid(n2), threads=1) / n2}  # core-seconds per point
    for name, kw in splits.items():
        for n in (n1, n2):
            runs[(name, n)] = lambda n=n, kw=kw: timed_sweep(small_grid(n), **kw)
    t = best(runs, repeats)
    kernel = t["kernel"]
    out = {"points": [n1, n2], "repeats": repeats, "kernel_ms_per_point_one_thread": 1e3 * kernel}
    for name in splits:
        t1, t2 = t[(name, n1)], t[(name, n2)]
        marginal = (t2 - t1) / (n2 - n1)
        out[name] = {"seconds": [t1, t2], "marginal_ms_per_point": 1e3 * marginal,
                     "fixed_seconds": t1 - n1 * marginal,
                     "overhead_core_ms_per_point": 1e3 * (marginal * cores - kernel),
                     "points_per_second": n2 / t2}
    return out


def large_points(seeds: int, cores: int, repeats: int) -> dict:
    """A sweep of large points against the kernels alone, locally (both splits) and on a Dask LocalCluster."""
    import logging

    from distributed import Client, LocalCluster

    grid = large_grid(seeds)
    n = nodes(grid)
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        client.run(compute, plan(grid)[0], (64,), 1)  # the workers import brw and load the kernels
        start = time.perf_counter() - t0
        t = best({"kernel": lambda: loop(grid, threads=cores),
                  "default": lambda: timed_sweep(grid),
                  "processes": lambda: timed_sweep(grid, workers=cores),
                  "dask_local_2": lambda: timed_sweep(grid, client=client)}, repeats)
    kernel = t.pop("kernel")
    out = {"points": len(plan(grid)), "nodes": n, "repeats": repeats, "kernel_seconds": kernel,
           "kernel_nodes_per_second": n / kernel}
    for name, seconds in t.items():
        out[name] = {"seconds": seconds, "nodes_per_second": n / seconds, "share_of_kernel": kernel / seconds}
    out["dask_local_2"].update(startup_seconds=start, share_with_startup=kernel / (t["dask_local_2"] + start))
    return out


def sweep_bench(*, quick: bool = False) -> SweepBenchmark:
    """Measure the sweep layer's cost (see the module's docstring).

    Parameters
    ----------
    quick : bool, optional
        Fewer and smaller sweeps, one run each (a check that it runs, not a measurement).

    Returns
    -------
    SweepBenchmark
        The measurements, the machine and the targets.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load0 = os.getloadavg()[0]
    n1, n2, seeds, repeats = (50, 200, 1, 1) if quick else (200, 1000, 8, 2)
    small = small_points(n1, n2, cores, repeats + 1)
    large = large_points(seeds, cores, repeats)
    return SweepBenchmark(cores, platform.python_version(), [load0, os.getloadavg()[0]], small, large)
