"""Compile the kernels into Numba's on-disk cache once, on every core at once.

Every kernel is compiled the first time a process runs it (Numba, ``cache=True``) and loaded from the on-disk cache
after that. On a fresh machine the first commands spend most of their time there: about 80 seconds of one core for
all of them (measured: docs/testing.md). The compiler is single-threaded, so
``compile_kernels`` splits the work into ``JOBS`` (small calls of the public API, each reaching a group of kernels),
runs them in worker processes, and gathers what they compiled into the cache the caller's processes read.

Each worker compiles into a private cache folder of its own: Numba's cache is not safe for two processes compiling
the same function at once (each numbers the data files of its new signatures from 1, so one can overwrite the
other's and the index then names the wrong code). A worker's folder starts as a copy of the cache, so that it loads
what is cached already and compiles only what is missing or stale. What the workers compiled is then moved into the
cache one function at a time (a function's index and the data files it names, from one worker only); whatever a job
did not reach is compiled on first use, as before.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from brw.checks import check_count
from brw.errors import BrwError
from brw.results import Result

__all__ = ["JOBS", "Compiled", "compile_kernels", "run_job", "cache_folders"]


def _frontier():
    import brw
    from brw.drafting import DEFAULT_POLICIES

    for law in ("uniform:k=2", "dirichlet:alpha=0.5,k=8", "trace:code"):
        brw.frontier(law, 8, replicates=2, seed=0)
    brw.policies("dirichlet:alpha=0.5,k=8", 8, DEFAULT_POLICIES, replicates=2, seed=0)
    brw.policies("dirichlet:alpha=0.5,k=8", 8, ("specexec", "eagle2:k=2,d=2"), replicates=2, seed=0)  # q = p
    _floor()


def _tree():
    import brw
    from brw.deployment import best_chain

    brw.frontier_tree("uniform:k=2", 8, seed=0)
    brw.threshold("uniform:k=2", [1.0], replicates=2, seed=0)
    brw.threshold_tree("uniform:k=2", 1.0, seed=0)
    best_chain("dirichlet:alpha=0.5,k=8", 4, replicates=2, seed=0)


def _sampled():
    from brw import sampled
    from brw.drafting import Drafter
    from brw.solver import root_keys

    law, d, keys = "dirichlet:alpha=0.5,k=8", Drafter(sigma=1.0), root_keys(0, 2)
    sampled.drafter_quality(law, d, nodes=8, seed=0)
    sampled.chain_values(law, d, k=4, replicates=2, seed=0)
    for scheme in ("specinfer", "traversal"):
        sampled.tree_values(law, d, keys, scheme, 2, 2, [1, 2])
        sampled.draw_values(law, d, 0, scheme, 2, 2, [1, 2], 1)
    sampled.ratio_steps(law, d, 4, seed=0)
    sampled.node_vectors(law, d)


def _floor():
    """The benchmark's floor loop (brw bench). Its other kernels are the walk of brw.frontier (this job) and the
    best-first and threshold kernels of brw.frontier_tree and brw.threshold (the tree job): calling the benchmark
    here compiled those two a second time, in the job that takes longest."""
    import numpy as np

    from brw import _kernels as K
    from brw.kernel_law import gem_cut, kernel_args
    from brw.laws import parse_law
    from brw.solver import root_keys

    law = parse_law("fixed:p=0.7/0.3")
    a = kernel_args(law, gem_cut(law, 16))
    K.floor_batch(a.kind, a.table, a.params, a.cut, root_keys(0, 2), 16, a.width, np.empty((2, 1024)), 0, 2)


#: name -> (what it reaches, the calls, its compile seconds on a fresh cache, measured on one core here). Jobs that
#: share a kernel are one job: split, two workers would both compile it (the drafting policies and the benchmark
#: both start from the frontier's walk).
JOBS = {
    "frontier": ("the pruned walk behind brw.frontier (table, Dirichlet and trace laws), the drafting policies on "
                 "its trees (brw.policies) and the benchmark's floor loop (brw bench)", _frontier, 48),
    "sampled": ("sampled drafts and their lossless verification (brw.sampled)", _sampled, 18),
    "tree": ("best-first (brw.frontier_tree), the threshold walk (brw.threshold) and the best chain (brw deployment)",
             _tree, 14),
}


@dataclass(frozen=True)
class Compiled(Result):
    """What ``compile_kernels`` did.

    Attributes
    ----------
    jobs : tuple of str
        The jobs run, in the order given.
    processes : int
        Worker processes (1: the jobs ran in this process).
    seconds : dict
        Job -> seconds it took in its worker.
    functions : int
        Functions whose compiled code was moved into the cache.
    kept : int
        Functions the workers found in the cache (and loaded), left as they were.
    cache : tuple of str
        The cache folders written.
    wall : float
        Seconds in all.
    """

    jobs: tuple
    processes: int
    seconds: dict = field(default_factory=dict)
    functions: int = 0
    kept: int = 0
    cache: tuple = ()
    wall: float = 0.0

    def _tidy(self) -> dict:
        return {"job": list(self.jobs), "seconds": [self.seconds.get(j, float("nan")) for j in self.jobs]}


def run_job(name: str) -> float:
    """Run one job of ``JOBS`` in this process; its seconds."""
    if name not in JOBS:
        raise BrwError(f"unknown job {name!r}; known jobs: {', '.join(JOBS)}")
    t0 = time.perf_counter()
    JOBS[name][1]()
    return time.perf_counter() - t0


def cache_folders() -> list[str]:
    """The folders where this process's Numba keeps the kernels' compiled code (one per source folder), as
    Numba's cache locator chooses them (NUMBA_CACHE_DIR, else ``__pycache__`` beside the source, else a folder of
    the user's)."""
    from numba.core.registry import CPUDispatcher

    from brw import _kernels, _sampled_kernels
    from brw.studies import bench

    out = []
    for mod in (_kernels, _sampled_kernels, bench):
        for obj in vars(mod).values():
            cache = getattr(obj, "_cache", None) if isinstance(obj, CPUDispatcher) else None
            path = getattr(cache, "_cache_path", None)
            if path is not None:
                if path not in out:
                    out.append(str(path))
                break
    return out


def _groups(folder: Path) -> dict[str, list[Path]]:
    """A cache folder's files by function: index name -> [index, its data files] (Numba names them
    ``<function>-<line>.pyXY.nbi`` and ``<function>-<line>.pyXY.<n>.nbc``)."""
    out: dict[str, list[Path]] = {}
    for idx in sorted(folder.glob("*.nbi")):
        stem = idx.name[:-len(".nbi")]
        out[idx.name] = [idx] + sorted(p for p in folder.glob(glob.escape(stem) + ".*.nbc"))
    return out


def _move_in(source: Path, target: Path, since: float) -> tuple[int, int]:
    """Each function of ``source`` whose index was written after ``since`` (compiled by the worker, not copied in
    as its seed) into ``target``: (moved, left). Data files first, the index last, each by an atomic rename of a
    copy: a reader sees the old state or the whole new one."""
    target.mkdir(parents=True, exist_ok=True)
    moved = left = 0
    for name, files in _groups(source).items():
        if files[0].stat().st_mtime <= since:
            left += 1
            continue
        for f in files[1:] + files[:1]:
            tmp = target / (f.name + f".tmp.{os.getpid()}")
            shutil.copyfile(f, tmp)
            os.replace(tmp, target / f.name)
        moved += 1
    return moved, left


def _seed(folders, own) -> None:
    """Copy the compiled code of ``folders`` into this worker's own cache folders ``own`` (pairwise), so that a
    worker loads what is cached already instead of compiling it again."""
    for src, dst in zip(folders, own):
        src, dst = Path(src), Path(dst)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
            for f in list(src.glob("*.nbi")) + list(src.glob("*.nbc")):
                shutil.copyfile(f, dst / f.name)


def _worker(jobs) -> dict:
    """A worker's work: seed its private cache, run its jobs, say what it took and where it wrote. The seed is
    ``BRW_COMPILE_SEED`` (folders separated by os.pathsep, in the order of ``cache_folders()``) or
    ``BRW_COMPILE_SEED_ROOT`` (a NUMBA_CACHE_DIR whose layout is the worker's own)."""
    own = cache_folders()
    root, seed = os.environ.get("BRW_COMPILE_SEED_ROOT"), os.environ.get("BRW_COMPILE_SEED")
    if root:
        _seed([os.path.join(root, os.path.relpath(f, os.environ["NUMBA_CACHE_DIR"])) for f in own], own)
    elif seed:
        _seed(seed.split(os.pathsep), own)
    seeded = time.time()
    time.sleep(0.01)  # what the jobs write is newer than every seeded file, whatever the clock's grain
    secs = {j: run_job(j) for j in jobs}
    return {"seconds": secs, "folders": cache_folders(), "seeded": seeded}


_WORKER = "import json, sys\nfrom brw.studies.warmup import _worker\nprint(json.dumps(_worker(sys.argv[1:])))\n"


def _assign(jobs: list[str], processes: int) -> list[list[str]]:
    """Jobs dealt to workers, heaviest first, each to the least loaded (longest-processing-time first)."""
    loads = [0.0] * processes
    out: list[list[str]] = [[] for _ in range(processes)]
    for j in sorted(jobs, key=lambda j: -JOBS[j][2]):
        w = loads.index(min(loads))
        out[w].append(j)
        loads[w] += JOBS[j][2]
    return [o for o in out if o]


def compile_kernels(jobs=None, processes: int | None = None, targets=None, progress: bool = False) -> Compiled:
    """Compile the kernels that ``jobs`` reach into Numba's cache, in ``processes`` worker processes at once.

    Parameters
    ----------
    jobs : sequence of str, optional
        Names of ``JOBS`` (default: all).
    processes : int, optional
        Worker processes (default: the cores this process may use, at most the number of jobs). With 1 the jobs run
        in this process and Numba writes its cache as usual.
    targets : sequence of path, optional
        Cache folders (``NUMBA_CACHE_DIR`` values) to fill, for processes that will run with such a setting (the
        test suite gives each pytest-xdist worker its own); default: the cache this process reads. The workers
        start from a copy of the first; every target receives what the workers compiled.
    progress : bool
        A line on stderr per job.

    Returns
    -------
    Compiled
    """
    names = list(JOBS) if jobs is None else [str(j) for j in jobs]
    for j in names:
        if j not in JOBS:
            raise BrwError(f"unknown job {j!r}; known jobs: {', '.join(JOBS)}")
    if not names:
        raise BrwError("no jobs to run")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = min(len(names), cores) if processes is None else check_count(processes, "processes")
    n = min(n, len(names))
    t0 = time.perf_counter()
    if n == 1 and targets is None:
        secs = {j: run_job(j) for j in names}
        return Compiled(tuple(names), 1, secs, 0, 0, tuple(cache_folders()), time.perf_counter() - t0)
    mine = cache_folders() if targets is None else None
    with tempfile.TemporaryDirectory(prefix="brw-compile-") as scratch:
        reports, procs, failed = [], [], []
        seed = {"BRW_COMPILE_SEED": os.pathsep.join(mine)} if targets is None else \
            {"BRW_COMPILE_SEED_ROOT": str(targets[0])}
        try:
            for w, part in enumerate(_assign(names, n)):
                env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(scratch, f"w{w}"), **seed}
                procs.append((part, subprocess.Popen([sys.executable, "-c", _WORKER, *part], env=env,
                                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
            for part, p in procs:
                out, err = p.communicate()
                if p.returncode != 0:
                    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                    failed.append(f"{'+'.join(part)}: {lines[-1] if lines else f'exit status {p.returncode}'}")
                    continue
                reports.append(json.loads(out.strip().splitlines()[-1]))
                if progress:
                    print(f"brw compile: {', '.join(f'{j} {s:.1f} s' for j, s in reports[-1]['seconds'].items())}",
                          file=sys.stderr, flush=True)
        finally:  # an interrupt or an error here leaves no worker behind
            for _, p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        if failed:
            raise BrwError("compiling failed in a worker: " + "; ".join(failed))
        secs = {j: s for r in reports for j, s in r["seconds"].items()}
        moved = kept = 0
        if targets is None:  # where this process's Numba reads: its locator's folder for each source folder
            pairs = [(Path(src), Path(dst), r["seeded"]) for r in reports for src, dst in zip(r["folders"], mine)]
        else:  # NUMBA_CACHE_DIR values: the same layout below each
            pairs = []
            for w in range(len(reports)):
                root = Path(scratch) / f"w{w}"
                for folder in sorted({f.parent for f in root.rglob("*.nbi")}):
                    pairs += [(folder, Path(t) / folder.relative_to(root), reports[w]["seeded"]) for t in targets]
        for src, dst, since in pairs:
            if src.is_dir():
                m, k = _move_in(src, dst, since)
                moved, kept = moved + m, kept + k
        written = tuple(sorted({str(d) for _, d, _ in pairs}))
    return Compiled(tuple(names), len(procs), secs, moved, kept, written, time.perf_counter() - t0)
