"""The speed benchmark: the frontier kernels beside the reference and the floor, in one process.

``bench()`` runs, on the same law and sizes and interleaved in every repeat (so that load from other
processes on a shared machine hits all of them alike):

- ``reference``: the pure-Python best-first frontier (``brw.reference.reference_frontier``, heapq);
- ``frontier``: the exact frontier kernel (``brw._kernels.frontier_batch``), one heap per replicate;
- ``threshold``: the depth-first threshold kernel on {V <= x}, x chosen so that a tree holds about as many
  nodes as a frontier replicate;
- ``floor``: what any simulation of such a tree must do per node and nothing more: draw the node's
  randomness and write a position (``brw._kernels.floor_batch``).

It reports nodes per second (the best of the repeats) on 1 and 2 threads, the ratios between the kernels, the
1 -> 2 thread scaling, the bytes per node of one large frontier tree (peak resident memory over the nodes),
and the start-up time of a fresh process with an empty and with a filled Numba cache.

The kernels are built to reach, on a 2-core machine (``TARGETS``; ``Benchmark.checks`` sets each measurement
beside its target):

- the frontier kernel at least 100 times the pure-Python reference (one thread), every law;
- at least 1.5e7 frontier nodes per second on 2 threads for laws whose node randomness is one index or none
  (fixed vectors, trace laws);
- the floor at most 3 times the frontier for a Dirichlet law, and at most 2 times the threshold kernel;
- a speed-up of at least 1.8 from 1 to 2 threads (frontier and threshold);
- at most 32 bytes of peak memory per node, and under 2 seconds for one trace-law tree of 10^7 nodes;
- under 1 second from a fresh process (filled kernel cache) to a first frontier result.

Numbers from a 2-core machine shared with other work are noisy: compare ratios measured in one run, and
repeat. Nothing here is a test; the tests only check that the command runs.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from brw.limits import check_numba_environment, require
from brw.progress import Progress

check_numba_environment()  # before Numba reads it: a bad NUMBA_NUM_THREADS makes `import numba` raise

import numba  # noqa: E402
import numpy as np  # noqa: E402

from brw import _kernels as K  # noqa: E402
from brw._version import __version__  # noqa: E402
from brw.errors import BrwError  # noqa: E402
from brw.checks import check_count  # noqa: E402
from brw.solver import FRONTIER_BYTES_PER_NODE, frontier_start, root_keys, run_replicates, thread_count  # noqa: E402
from brw.kernel_law import KernelLaw, gem_cut, kernel_args  # noqa: E402
from brw.laws import Law, parse_law  # noqa: E402
from brw.reference import reference_frontier  # noqa: E402
from brw.results import Result  # noqa: E402

__all__ = ["bench", "Benchmark", "default_laws", "SyntheticTable", "TARGETS"]

#: What the kernels are built to reach on a 2-core machine; ``checks`` sets each measurement beside its target.
TARGETS = {
    "frontier_over_reference": 100.0,  # exact frontier / pure-Python reference, 1 thread, every law: at least
    "frontier_nodes_per_second": 15e6,  # on 2 threads, laws whose node randomness is one index or none: at least
    "floor_over_frontier_dirichlet": 3.0,  # floor / frontier, Dirichlet: at most
    "floor_over_threshold": 2.0,  # floor / threshold, every law: at most
    "thread_scaling": 1.8,  # rate on 2 threads / rate on 1 thread: at least
    "bytes_per_node": 32.0,  # peak memory of a tree of >= 10^6 nodes: at most
    "big_tree_seconds": 2.0,  # one trace-law tree of 10^7 nodes: under
    "cached_startup_seconds": 1.0,  # fresh process to a first result, filled kernel cache: under
}


@dataclass(frozen=True, eq=False)
class SyntheticTable(Law):
    """An empirical (trace-like) law built in memory: ``rows`` Dirichlet(alpha, k) vectors, each node draws a
    row with one hash. Stands in for a recorded trace law when none is bundled. Not a registered spec."""

    rows: int = 4096
    k: int = 64
    alpha: float = 0.1
    seed: int = 0

    @property
    def spec(self):
        return f"synthetic-table:rows={self.rows},k={self.k},alpha={self.alpha:g},seed={self.seed}"

    def _table(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        g = rng.standard_gamma(self.alpha, size=(self.rows, self.k))
        g = np.maximum(g, 1e-300)
        p = np.sort(g / g.sum(axis=1, keepdims=True), axis=1)[:, ::-1]
        with np.errstate(divide="ignore"):
            return np.ascontiguousarray(np.log(p))

    @property
    def mu(self):
        lp = self._table()
        p = np.exp(lp)
        return float(np.mean(-np.sum(np.where(p > 0, p * lp, 0.0), axis=1)))

    @property
    def mu2(self):
        lp = self._table()
        p = np.exp(lp)
        return float(np.mean(np.sum(np.where(p > 0, p * lp * lp, 0.0), axis=1)))

    def kernel_law(self):
        return KernelLaw(K.KIND_TABLE, self._table(), np.zeros(4), self.k, np.zeros((self.rows, 0, 2)))


def _trace_law():
    """The first bundled trace law, else the synthetic stand-in."""
    for name in ("trace:chat", "trace:code", "trace:math"):
        try:
            return parse_law(name)
        except BrwError:  # that trace is not bundled here
            continue
    return SyntheticTable()


def default_laws() -> list:
    """A fixed vector, a Dirichlet law and a trace law, and the synthetic table law: an empirical law without
    tails, so that the reference (which pushes every child) can run on one."""
    laws = [parse_law("fixed:p=0.7/0.3"), parse_law("dirichlet:alpha=0.5,k=8"), _trace_law()]
    if not isinstance(laws[-1], SyntheticTable):
        laws.append(SyntheticTable())
    return laws


# --------------------------------------------------------------------------------------------------------
# One timed call of each kernel.


class _Runner:
    def __init__(self, law: Law, pmax: int, replicates: int, seed: int):
        self.law = law
        self.pmax = pmax
        self.replicates = replicates
        self.seed = seed
        self.kind, self.table, self.tails, self.params, self.cut, self.width = kernel_args(law, gem_cut(law, pmax))
        self.keys = root_keys(seed, replicates)
        self.x0 = frontier_start(law, pmax)
        self.acc = np.empty((replicates, pmax))
        self.deepest = np.empty(replicates, dtype=np.int64)
        self.last = np.empty(replicates)
        # Threshold level with about pmax nodes per tree (key renewal: N(x) ~ e^x / mu).
        self.xs = np.array([math.log(max(law.mu, 1e-3) * pmax)])
        self.count = np.zeros((replicates, 1), dtype=np.int64)
        self.mass = np.zeros((replicates, 1))
        self.visited = np.zeros(replicates, dtype=np.int64)
        self.tdeep = np.zeros(replicates, dtype=np.int64)
        self.out = np.empty((replicates, 1024))
        self.reference_nodes = 0

    def frontier(self, threads=1):
        t0 = time.perf_counter()
        run_replicates(K.frontier_batch, self.replicates, threads, self.kind, self.table, self.tails, self.params,
                       self.cut, self.keys, self.pmax, self.width, self.x0, self.acc, self.deepest, self.last)
        return time.perf_counter() - t0, self.replicates * self.pmax

    def best_first(self):
        """The best-first heap kernel (what frontier_tree runs), on replicate 0 alone."""
        n = self.pmax
        t0 = time.perf_counter()
        K.frontier_one(self.kind, self.table, self.tails, self.params, self.cut, self.keys[0], n, self.acc[0],
                       np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n), np.empty(max(self.width, 1)))
        return time.perf_counter() - t0, n

    def threshold(self, threads=1):
        self.count[:] = 0
        self.mass[:] = 0
        t0 = time.perf_counter()
        run_replicates(K.threshold_batch, self.replicates, threads, self.kind, self.table, self.tails, self.params,
                       self.cut, self.keys, self.xs, 10**12, self.width, self.count, self.mass, self.visited,
                       self.tdeep)
        return time.perf_counter() - t0, int(self.visited.sum())

    def floor(self, threads=1):
        t0 = time.perf_counter()
        run_replicates(K.floor_batch, self.replicates, threads, self.kind, self.table, self.params, self.cut,
                       self.keys, self.pmax, self.width, self.out)
        return time.perf_counter() - t0, self.replicates * self.pmax

    def warm_up(self):
        for name in ("frontier", "threshold", "floor", "best_first"):
            getattr(self, name)()


def _rate(best):
    seconds, nodes = best[0], best[1]
    return nodes / seconds if seconds > 0 else math.inf


def _timed(fn, *args):
    """(wall seconds, nodes, CPU seconds of the whole process: every thread)."""
    c0 = time.process_time()
    t, n = fn(*args)
    return t, n, time.process_time() - c0


def _bench_law(law, pmax, replicates, ref_nodes, repeats, threads, seed):
    run = _Runner(law, pmax, replicates, seed)
    run.warm_up()
    best: dict = {}
    best_cpu: dict = {}
    reference_note = None

    def keep(name, t, nodes, cpu=None):
        if name not in best or t < best[name][0]:
            best[name] = (t, nodes)
        if cpu is not None and (name not in best_cpu or cpu < best_cpu[name][0]):
            best_cpu[name] = (cpu, nodes)

    for _ in range(repeats):  # as brw.frontier runs them: replicates handed out one by one
        for nt in threads:
            n = thread_count(nt)
            for name in ("frontier", "threshold", "floor"):
                keep(f"{name}@{nt}", *_timed(getattr(run, name), n))
        keep("best_first@1", *_timed(run.best_first))
        if reference_note is None:
            t0 = time.perf_counter()
            try:
                reference_frontier(law, ref_nodes, seed, 0)
            except MemoryError:  # it pushes every child: a trace row's tail of ~10^5 atoms is beyond it
                reference_note = "the reference expands every child of a node; this law's tails exhaust memory"
                continue
            keep("reference", time.perf_counter() - t0, ref_nodes)

    rates = {k: _rate(v) for k, v in best.items()}
    cpu_rates = {k: _rate(v) for k, v in best_cpu.items()}
    row = {"law": str(law), "P": pmax, "replicates": replicates, "threshold_x": float(run.xs[0]),
           "threshold_nodes_per_tree": float(run.visited.mean()), "reference_P": ref_nodes,
           "nodes_per_second": rates, "nodes_per_cpu_second": cpu_rates, "reference_note": reference_note}
    top = max(threads)
    r = rates
    row["ratios"] = {
        "frontier_over_reference": r[f"frontier@{top}"] / r["reference"] * 1.0 if "reference" in r else None,
        "frontier_over_reference_1thread": r["frontier@1"] / r["reference"] if "reference" in r and 1 in threads
        else None,
        "floor_over_frontier": r[f"floor@{top}"] / r[f"frontier@{top}"],
        "floor_over_threshold": r[f"floor@{top}"] / r[f"threshold@{top}"],
        "frontier_over_best_first_1thread": r["frontier@1"] / r["best_first@1"],
    }
    if 1 in threads and top > 1:
        # Wall-clock speed-up (needs idle cores), and CPU work per node on 2 threads against 1 (1.0: threads
        # add no work; what the speed-up would be, times the thread count, on an idle machine).
        row["thread_scaling"] = {name: r[f"{name}@{top}"] / r[f"{name}@1"]
                                 for name in ("frontier", "threshold", "floor")}
        row["thread_work_efficiency"] = {name: cpu_rates[f"{name}@{top}"] / cpu_rates[f"{name}@1"]
                                         for name in ("frontier", "threshold", "floor")}
    return row


# --------------------------------------------------------------------------------------------------------
# Memory and start-up.


def _vm(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def big_tree(law: Law, nodes: int, seed: int = 0) -> dict:
    """One frontier tree of ``nodes`` nodes on one thread, as ``brw.frontier`` runs it: seconds and
    the peak resident memory it adds, per node (heap and accepted curve; /proc peak after a reset).

    Parameters
    ----------
    law : Law
        The law of the tree.
    nodes : int
        Nodes of the tree.
    seed : int, optional
        Seed of the tree.

    Returns
    -------
    dict
        Seconds, kernel seconds, nodes per second and bytes per node (measured, by layout, promised).
    """
    from brw.solver import frontier

    frontier(law, 2, 1, seed, threads=1)  # compile / load outside the measurement
    rss0 = _vm("VmRSS")
    exact = _reset_peak()
    t0 = time.perf_counter()
    res = frontier(law, nodes, 1, seed, threads=1)
    seconds = time.perf_counter() - t0
    peak = _vm("VmHWM")
    measured = (peak - rss0) / nodes if exact and peak is not None and rss0 is not None else None
    return {"law": str(law), "nodes": nodes, "seconds": seconds, "kernel_seconds": res.seconds,
            "nodes_per_second": nodes / res.seconds if res.seconds > 0 else math.inf,
            "bytes_per_node_measured": measured,
            # buffer of 1.25 P + 64 slots (position 8, depth 4) and the accepted curve (8)
            "bytes_per_node_layout": 8 + 1.25 * 12, "bytes_per_node_promised": FRONTIER_BYTES_PER_NODE}


_STARTUP = """
import time
t0 = time.perf_counter()
from brw.solver import frontier
frontier({law!r}, 1000, 2, 0)
print(time.perf_counter() - t0)
"""


_NUMBA_FLOOR = """
import time
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
from numba import njit

@njit(cache=True)
def one(x):
    return x + 1

one(1.0)
print(t1 - t0, time.perf_counter() - t1)
"""


def numba_floor() -> dict:
    """What any cached Numba kernel costs a fresh process: importing numba, then the first call of a trivial
    cached function (the CPU target's initialisation), run twice so that the second finds its cache."""
    with tempfile.TemporaryDirectory(prefix="brw-bench-floor-") as tmp:
        path = os.path.join(tmp, "floor_mod.py")
        with open(path, "w") as f:
            f.write(_NUMBA_FLOOR)
        out = None
        for _ in range(2):
            p = subprocess.run([sys.executable, path], capture_output=True, text=True, check=True, cwd=tmp)
            imp, first = (float(v) for v in p.stdout.split())
            out = {"import_numba_seconds": imp, "first_cached_call_seconds": first}
    return out


def startup(law: str = "dirichlet:alpha=0.5,k=8", cold: bool = True) -> dict:
    """Seconds from a fresh interpreter to the first frontier result: with an empty Numba cache (compile)
    and with the cache that run filled (what every later process pays).

    Parameters
    ----------
    law : str, optional
        The law of the first frontier.
    cold : bool, optional
        Also time the start with an empty kernel cache (it compiles every kernel: minutes).

    Returns
    -------
    dict
        Seconds to the first result (and to where computing starts) for each start timed, and
        ``numba_floor()``.
    """
    code = _STARTUP.format(law=law)
    out = {"law": law}
    with tempfile.TemporaryDirectory(prefix="brw-bench-cache-") as cache:
        env = dict(os.environ)
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        for label in (("first_call_seconds", "cached_seconds") if cold else ("cached_seconds",)):
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[label] = time.perf_counter() - t0
            out[label.replace("seconds", "compute_starts_seconds")] = float(p.stdout.strip().splitlines()[-1])
    out["numba_floor"] = numba_floor()
    return out


# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark(Result):
    """What ``bench`` measured: one dict per law (``laws``: nodes per second per kernel and thread count,
    CPU-time rates, ratios, thread scaling), the large tree (``big_tree``) and start-up times (``startup``),
    with the machine they were measured on. ``checks()`` sets them beside ``TARGETS``."""

    machine: str
    cpus: int | None
    numba: str
    threads: list
    load_average: list
    repeats: int
    laws: list
    big_tree: dict | None = None
    startup: dict | None = None
    targets: dict = field(default_factory=lambda: dict(TARGETS))
    version: str = __version__

    def checks(self) -> list:
        """Each target against what this run measured.

        Returns
        -------
        list
            ``[what, measured, target, met]`` rows; ``met`` is None where the sizes were too small to judge.
        """
        t = self.targets
        out = []
        top = max(self.threads)
        for row in self.laws:
            law, r, q = row["law"], row["nodes_per_second"], row["ratios"]
            if q["frontier_over_reference_1thread"] is not None:
                v, goal = q["frontier_over_reference_1thread"], t["frontier_over_reference"]
                out.append([f"{law}: frontier / reference, 1 thread", v, f">= {goal:g}", v >= goal])
            if law.startswith(("fixed:", "trace:", "synthetic-table:")):
                v, goal = r[f"frontier@{top}"], t["frontier_nodes_per_second"]
                out.append([f"{law}: frontier nodes/s on {top} threads", v, f">= {goal:.2g}", v >= goal])
            if law.startswith("dirichlet:"):
                v, goal = q["floor_over_frontier"], t["floor_over_frontier_dirichlet"]
                out.append([f"{law}: floor / frontier", v, f"<= {goal:g}", v <= goal])
            v, goal = q["floor_over_threshold"], t["floor_over_threshold"]
            out.append([f"{law}: floor / threshold", v, f"<= {goal:g}", v <= goal])
            for kern, sc in row.get("thread_scaling", {}).items():
                if kern != "floor":
                    goal = t["thread_scaling"]
                    out.append([f"{law}: {kern} 1 -> {top} threads", sc, f">= {goal:g}", sc >= goal])
        b = self.big_tree
        if b:
            mem, goal = b["bytes_per_node_measured"], t["bytes_per_node"]
            if mem is not None:  # small trees: fixed costs dominate
                out.append([f"frontier peak memory per node ({b['nodes']:.0e}-node tree)", mem, f"<= {goal:g}",
                            mem <= goal if b["nodes"] >= 10**6 else None])
            goal = t["big_tree_seconds"]
            out.append([f"one {b['law']} tree of {b['nodes']:.0e} nodes, seconds", b["seconds"], f"< {goal:g}",
                        b["seconds"] < goal if b["nodes"] >= 10**7 else None])
        s = self.startup
        if s:
            v, goal = s["cached_compute_starts_seconds"], t["cached_startup_seconds"]
            out.append(["cached start-up to a first result, seconds", v, f"< {goal:g}", v < goal])
        return out

    def to_dict(self) -> dict:
        """JSON-ready: what ``brw bench --json`` prints, the checks included."""
        return {"version": self.version, "machine": self.machine, "cpus": self.cpus, "numba": self.numba,
                "threads": list(self.threads), "load_average": list(self.load_average), "repeats": self.repeats,
                "laws": self.laws, "big_tree": self.big_tree, "startup": self.startup, "targets": self.targets,
                "checks": self.checks()}

    def _tidy(self) -> dict:
        """Columns: law, kernel, threads, nodes_per_second, nodes_per_cpu_second (one row per law and timed
        kernel; the reference runs on one thread), version."""
        cols = {k: [] for k in ("law", "kernel", "threads", "nodes_per_second", "nodes_per_cpu_second")}
        for row in self.laws:
            for key, rate in row["nodes_per_second"].items():
                kernel, _, nt = key.partition("@")
                for k, v in zip(cols, (row["law"], kernel, int(nt) if nt else 1, rate,
                                       row["nodes_per_cpu_second"].get(key, math.nan))):
                    cols[k].append(v)
        return {**cols, "version": [self.version] * len(cols["law"])}


def bench(laws=None, pmax: int = 100_000, replicates: int = 8, reference_nodes: int = 5_000, repeats: int = 5,
          big_nodes: int = 10**7, seed: int = 0, cold_start: bool = True, startup_runs: bool = True,
          progress: bool = False) -> Benchmark:
    """Time every kernel side by side on the same laws and sizes (see the module docstring).

    Parameters
    ----------
    laws : sequence of Law or str, optional
        The laws; ``default_laws()`` by default.
    pmax : int, optional
        Nodes per replicate tree.
    replicates : int, optional
        Replicate trees per timed call.
    reference_nodes : int, optional
        Nodes of the pure-Python reference's tree.
    repeats : int, optional
        Interleaved repeats; the best is kept.
    big_nodes : int, optional
        Nodes of the one large tree (memory per node); 0 skips it.
    seed : int, optional
        Seed of the trees.
    cold_start : bool, optional
        Also time a fresh process with an empty kernel cache (it compiles every kernel: minutes).
    startup_runs : bool, optional
        Time fresh processes at all.
    progress : bool, optional
        Show progress on stderr, a law, the big tree and the start-up at a time (``brw.progress``).

    Returns
    -------
    Benchmark
    """
    pmax = check_count(pmax, "pmax")
    replicates = check_count(replicates, "replicates")
    reference_nodes = check_count(reference_nodes, "reference_nodes")
    repeats = check_count(repeats, "repeats")
    big_nodes = check_count(big_nodes, "big_nodes", minimum=0)
    # Sizes before any work: frontier runs on two threads (their heaps, the curves), the reference's Python
    # heap of nodes, the big tree on one thread.
    require("pmax", pmax, lambda n: n * (2.0 * FRONTIER_BYTES_PER_NODE + 40.0), what="the benchmark's trees")
    require("replicates", replicates, lambda n: n * (24.0 + 8.0 * pmax), what=f"the benchmark at pmax={pmax}")
    require("reference_nodes", reference_nodes, lambda n: n * 500.0, what="the pure-Python reference")
    require("big_nodes", big_nodes, lambda n: n * (FRONTIER_BYTES_PER_NODE + 40.0), what="the big tree", minimum=0)
    laws = default_laws() if laws is None else [parse_law(x) for x in laws]
    threads = (1, 2) if numba.config.NUMBA_NUM_THREADS >= 2 else (1,)
    parts = len(laws) + bool(big_nodes) + bool(startup_runs)
    with Progress(parts, "bench", enabled=progress, unit="parts",
                  hint="--no-cold-start (no compiling every kernel afresh), a smaller --P or --big") as bar:
        rows = []
        for law in laws:
            rows.append(_bench_law(law, pmax, replicates, reference_nodes, repeats, threads, seed))
            bar.update(1)
        big_law = next((law for law in laws if str(law).startswith("trace:")),
                       next((law for law in laws if isinstance(law, SyntheticTable)), laws[-1]))
        big = big_tree(big_law, big_nodes, seed) if big_nodes else None
        bar.update(bool(big_nodes))
        start = startup(cold=cold_start) if startup_runs else None
    return Benchmark(machine=platform.machine(), cpus=os.cpu_count(), numba=numba.__version__,
                     threads=list(threads), load_average=list(os.getloadavg()), repeats=repeats, laws=rows,
                     big_tree=big, startup=start)
