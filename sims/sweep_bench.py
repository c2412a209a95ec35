"""What the sweep layer costs: overhead per small point, and the share of the kernels' throughput a large sweep keeps.

Beside ``brw bench`` (the kernels themselves). Each sweep writes its points and results.parquet to a fresh
folder, as a user's would. Measured side by side in one run:

- the split of the cores: one process whose Numba threads share the cores against one worker process per core
  with one Numba thread each, on many small points (default: processes) and on large ones (default: threads);
- small points: a sweep of N1 and of N2 points; the marginal wall time per point (slope between the two) times
  the cores, minus the kernels' own core time per point (the same ``compute`` calls in a plain loop on one
  thread), is the layer's overhead per point in core-milliseconds; the intercept is the fixed cost of a sweep
  (starting worker processes, reading the store, writing the table);
- large points: tree nodes per second of the sweep against the same frontier calls in a plain loop in one
  process on every core (the kernels' own throughput), locally and on a Dask LocalCluster of two worker
  processes (cluster start-up reported apart), as ratios.

Each measurement is the fastest of a few interleaved runs (the machine is shared).
Writes figures/sweep_bench.{json,md}.

    python sims/sweep_bench.py            # about 8 minutes on 2 quiet cores
    python sims/sweep_bench.py --quick    # a smaller run, to check the script
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from brw import __version__
from brw.files import write_text
from brw.sweep import compute, plan, sweep

FIGURES = Path(__file__).resolve().parent.parent / "figures"


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


def markdown(d: dict) -> str:
    s, g = d["small"], d["large"]
    c = d["cores"]
    lines = [
        f"# Sweep layer speed (brw {d['version']}, {c} cores, load average {d['load'][0]:.1f} -> "
        f"{d['load'][1]:.1f}; fastest of {s['repeats']} (small) and {g['repeats']} (large) interleaved runs)",
        "",
        f"Small points ({s['points'][0]} and {s['points'][1]} points of 4 trees at P <= 64; the kernels alone "
        f"take {s['kernel_ms_per_point_one_thread']:.2f} ms a point on one thread). Overhead = marginal wall time "
        f"per point x {c} cores - the kernels' time:",
        "",
        "| split | sweep of N1 / N2 (s) | points/s | fixed cost (s) | marginal wall ms/point | overhead core-ms/point |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("default", f"{c} worker processes x 1 thread (default)"),
                        ("threads", f"1 process x {c} threads (workers=1)")):
        r = s[name]
        lines.append(f"| {label} | {r['seconds'][0]:.2f} / {r['seconds'][1]:.2f} | {r['points_per_second']:.0f} | "
                     f"{r['fixed_seconds']:.2f} | {r['marginal_ms_per_point']:.2f} | "
                     f"{r['overhead_core_ms_per_point']:.2f} |")
    lines += [
        "",
        f"Large points ({g['points']} points of 16 trees of 2^18 nodes, {g['nodes'] / 1e6:.0f}M nodes; the kernels "
        f"alone in a plain loop in one process on {c} threads: {g['kernel_seconds']:.1f} s, "
        f"{g['kernel_nodes_per_second'] / 1e6:.2f}M nodes/s):",
        "",
        "| where | seconds | nodes/s | share of the kernels' throughput |",
        "|---|---|---|---|",
    ]
    for name, label in (("default", f"local, 1 process x {c} threads (default for large points)"),
                        ("processes", f"local, {c} worker processes x 1 thread (workers={c})"),
                        ("dask_local_2", "Dask LocalCluster, 2 worker processes")):
        r = g[name]
        extra = (f" ({r['share_with_startup']:.1%} counting the cluster's {r['startup_seconds']:.1f} s start-up)"
                 if "startup_seconds" in r else "")
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['nodes_per_second'] / 1e6:.2f}M | "
                     f"{r['share_of_kernel']:.1%}{extra} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run, to check the script")
    ap.add_argument("--out", default=str(FIGURES / "sweep_bench"), help="path without suffix (.json, .md added)")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    load0 = os.getloadavg()[0]
    n1, n2, seeds, repeats = (50, 200, 1, 1) if args.quick else (200, 1000, 8, 2)
    d = {"version": __version__, "cores": cores, "python": platform.python_version(),
         "small": small_points(n1, n2, cores, repeats + 1), "large": large_points(seeds, cores, repeats)}
    d["load"] = [load0, os.getloadavg()[0]]
    write_text(args.out + ".json", json.dumps(d, indent=1) + "\n")
    write_text(args.out + ".md", markdown(d))
    print(markdown(d))


if __name__ == "__main__":
    main()
