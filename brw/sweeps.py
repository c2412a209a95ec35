"""Parameter sweeps: a grid of points, run locally or on a Dask cluster, resumable, the same bits anywhere.

A sweep is a grid over law specs (parameters in braces are grid axes: ``dirichlet:alpha={0.1,0.5},k={8,64}``
is four laws), kinds of point, replicates, seeds and P values, declared in Python (:func:`sweep`) or in a TOML
file (:func:`load_config`, ``brw sweep CONFIG.toml --out DIR``). The answer is a tidy table, one row per point
and P.

Points
    A *point* is one computation: its kind, its law (the canonical spec string) and, for seeded kinds, its
    replicates and the sweep seed. Its canonical description is that, as compact JSON with sorted keys. A
    ``frontier`` point runs once to its largest P and reads accepted(P) at each of its P values: a replicate's
    tree does not depend on where it is read, so accepted at P = 64 has the same bits whether the frontier ran
    to 64 or to 65536 (tested). With ``slope_from`` = P0 its rows at P = 2 P0, 4 P0, ... also hold the slope
    of accepted against log P over P0, 2 P0, ..., P, fitted to each replicate (mean and standard error). A
    deterministic law's replicates are one tree, simulated once. A ``theory`` point is one law at one P (its
    renewal grid depends on P). A ``policies`` point scores drafting policies (the ``policies`` key,
    ``brw.policies``) on its trees: a row per P and policy. ``KINDS`` maps each kind to how it is computed; a
    new kind registers there.

Seeds
    A point's seed is the first 63 bits of the SHA-256 of its canonical description, which holds the sweep
    seed: it depends on nothing else, not the point's place in the grid nor the order points ran in, so a
    point gives the same bits locally, on a cluster, alone or in a larger grid, and ``brw.frontier(law, P,
    replicates, seed)`` with the row's ``seed`` replays it.

Execution
    Locally, small points go to worker processes (one per core, one Numba thread each: several times faster
    than one process whose Numba threads share the cores, ``figures/sweep_bench.md``), and large frontier
    points run one after another in the sweep's own process with a Numba thread per core (no processes to
    start, no core idle while the last point finishes). With a ``dask.distributed.Client`` (or a scheduler
    address, or ``dask_local=N`` worker processes on this machine) the same points run on a Dask cluster. A
    point travels as its description (strings and numbers): laws are parsed on the worker, bundled traces load
    there.

Storage
    With ``out=DIR`` every finished point is written at once to ``DIR/points/HASH.json`` (HASH of its
    description, its P values and the package version), whole or not at all (a temporary file renamed onto its
    name). A rerun reads them back and computes only the rows missing for this version (or stored before their
    kind gained a column): killing a sweep at any moment costs at most the points in flight, and a changed grid
    in the same folder computes only its new points (or P values). The table of the grid is written to
    ``DIR/results.parquet``. A point that fails (a size the machine cannot hold) is recorded with its one-line
    reason and the sweep goes on; it is tried again by the next run. One sweep at a time per folder (a lock says so).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import itertools
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from brw import __version__
from brw.errors import BrwError, clip
from brw.files import atomic_path, read_text
from brw.limits import require

__all__ = ["sweep", "load_config", "expand_spec", "Point", "Kind", "KINDS", "point_seed", "plan"]

#: Keys of a sweep grid (Python keywords and TOML keys); kinds add their own options (``Kind.options``).
GRID_KEYS = ("kind", "laws", "P", "replicates", "seed")
#: Replicates of a seeded point when the grid does not say (as ``brw frontier``).
DEFAULT_REPLICATES = 100
#: Locally, a point of a threaded kind with at least this many tree nodes (replicates x P) and a replicate per
#: core runs in the sweep's own process on every core: Numba's threads share its replicates as well as worker
#: processes would share points, without starting processes or leaving cores idle at the end. Smaller points go
#: to one worker process per core with one thread each, where handing replicates to threads cannot cost more
#: than a small point's work (figures/sweep_bench.md).
THREADED_NODES = 2**20


# --------------------------------------------------------------------------------------------------------
# Kinds of point.


@dataclass(frozen=True)
class Kind:
    """How one kind of point is computed.

    Parameters
    ----------
    run : callable
        ``run(law, point, Ps, threads) -> (rows, seconds)``: ``law`` is the parsed law, ``Ps`` the P values to
        compute (sorted), ``threads`` the Numba threads it may use; ``rows`` is a list of dicts, each with its
        ``P`` and value columns (one row per P, or several: one per policy), ``seconds`` the time spent in the
        kernels. Raises ``BrwError`` when the point cannot be computed (recorded as a failure).
    columns : tuple of str
        The value columns its rows fill (numbers, or text such as a policy's spec).
    seeded : bool
        Whether its points have replicates and a seed (grid axes ``replicates`` and ``seed``).
    one_pass : bool
        Whether one computation gives every P of a point (its P values are rows of one point); otherwise each
        P is a point of its own.
    threaded : bool
        Whether ``run`` shares its work among Numba threads (then a large point may run on every core).
    options : dict
        Extra grid keys the kind reads, each mapped to a validator ``f(value, where)`` that raises ``BrwError``
        (its message starting with ``where(key)``) or returns the value as a hashable JSON value (a string, a
        number, or a tuple of them): it becomes part of the point's description.
    """

    run: Callable
    columns: tuple[str, ...]
    seeded: bool
    one_pass: bool
    threaded: bool
    options: dict = field(default_factory=dict)


def _run_frontier(law, point: Point, Ps: tuple[int, ...], threads: int):
    from brw.solver import frontier

    start = dict(point.options).get("slope_from")
    ladder = [] if start is None else [start << j for j in range((Ps[-1] // start).bit_length())]
    # A deterministic law's replicates are one tree: the mean of identical curves is that curve, bit for bit
    # (Welford in replicate order), and its standard error is exactly 0 (NaN for one replicate, as frontier).
    trees = 1 if law.deterministic else point.replicates
    res = frontier(law, Ps[-1], trees, point.seed, threads=threads, keep=ladder or None)
    acc, se = res.at(list(Ps))
    one_tree = trees < point.replicates
    if one_tree:
        se = np.zeros_like(se)
    x = np.log(np.asarray(ladder, dtype=float))
    rows = []
    for p, a, s in zip(Ps, acc, se):
        row = {"P": p, "accepted": float(a), "stderr": float(s), "tokens_per_step": float(a) + 1.0,
               "slope": None, "slope_stderr": None}
        if p in ladder[1:]:  # one least-squares line per replicate over the ladder up to this P
            n = ladder.index(p) + 1
            b = np.polyfit(x[:n], res.replicate_values[:, :n].T, 1)[0]
            row["slope"] = float(np.mean(b))
            row["slope_stderr"] = (float(np.std(b, ddof=1) / math.sqrt(trees)) if trees > 1
                                   else 0.0 if one_tree else None)
        rows.append(row)
    return rows, res.seconds


def _slope_from(value, where) -> int:
    return _whole(value, "slope_from", None, where, 1)


_THEORY_COLUMNS = ("paper_bound", "wald_lorden_bound", "renewal_bound", "asymptotic")  # theory.BOUND_KEYS


def _run_theory(law, point: Point, Ps: tuple[int, ...], threads: int):
    from brw import theory

    t0 = time.perf_counter()
    b = theory.bounds(law, Ps)
    rows = [{"P": p, **{k: float(getattr(b, k)[i]) for k in _THEORY_COLUMNS}} for i, p in enumerate(Ps)]
    return rows, time.perf_counter() - t0


def _run_policies(law, point: Point, Ps: tuple[int, ...], threads: int):
    from brw.drafting import DEFAULT_POLICIES, policies

    res = policies(law, Ps[-1], dict(point.options).get("policies", DEFAULT_POLICIES), point.replicates,
                   point.seed, at=Ps, threads=threads)
    rows = [{"P": p, "policy": spec, "accepted": float(res.accepted[i, p - 1]),
             "stderr": float(res.stderr[i, p - 1]), "tokens_per_step": float(res.accepted[i, p - 1]) + 1.0,
             "gap": float(res.gap[i, p - 1]), "gap_stderr": float(res.gap_stderr[i, p - 1])}
            for p in Ps for i, spec in enumerate(res.policies)]
    return rows, res.seconds


def _policy_specs(value, where) -> tuple[str, ...]:
    from brw.drafting import parse_policies

    try:
        return tuple(str(p) for p in parse_policies(value))
    except BrwError as e:
        raise BrwError(f"{where('policies')}: {e}") from None


#: Kinds of point by name. A kind defined elsewhere adds itself here (``KINDS[name] = Kind(...)``); its rows'
#: columns join the table.
KINDS: dict[str, Kind] = {
    # With ``slope_from`` = P0, rows at P = 2 P0, 4 P0, ... carry the least-squares slope of accepted against
    # log P over P0, 2 P0, ..., P, fitted per replicate: its mean and standard error over replicates.
    "frontier": Kind(_run_frontier, ("accepted", "stderr", "tokens_per_step", "slope", "slope_stderr"),
                     seeded=True, one_pass=True, threaded=True, options={"slope_from": _slope_from}),
    "theory": Kind(_run_theory, _THEORY_COLUMNS, seeded=False, one_pass=False, threaded=False),
    # Drafting policies on the frontier's own trees (brw.policies): one row per P and policy, with the paired
    # gap to the frontier. The policies (default ``DEFAULT_POLICIES``) are part of the point.
    "policies": Kind(_run_policies, ("policy", "accepted", "stderr", "tokens_per_step", "gap", "gap_stderr"),
                     seeded=True, one_pass=True, threaded=True, options={"policies": _policy_specs}),
}


# --------------------------------------------------------------------------------------------------------
# Points and their seeds.


@dataclass(frozen=True)
class Point:
    """One computation of a sweep; its rows are its P values.

    Parameters
    ----------
    kind : str
        A key of ``KINDS``.
    law : str
        Canonical law spec (``str(parse_law(spec))``).
    P : tuple of int
        Its P values, increasing (one value for kinds that are not ``one_pass``).
    replicates, sweep_seed : int or None
        For seeded kinds; None otherwise.
    options : tuple of (str, value)
        The kind's options, sorted by key.
    """

    kind: str
    law: str
    P: tuple[int, ...]
    replicates: int | None = None
    sweep_seed: int | None = None
    options: tuple = ()

    @property
    def description(self) -> str:
        """Canonical description: compact JSON, sorted keys (P only where each P is a point)."""
        kind = KINDS[self.kind]
        d = {"kind": self.kind, "law": self.law, **dict(self.options)}
        if kind.seeded:
            d["replicates"] = self.replicates
            d["seed"] = self.sweep_seed
        if not kind.one_pass:
            d["P"] = self.P[0]
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def seed(self) -> int | None:
        """The seed its computation uses: :func:`point_seed` of its description (None for unseeded kinds)."""
        return point_seed(self.description) if KINDS[self.kind].seeded else None


def point_seed(description: str) -> int:
    """A point's seed: the first 63 bits of SHA-256 of its canonical description.

    Parameters
    ----------
    description : str
        ``Point.description`` (it holds the sweep seed).

    Returns
    -------
    int
        A whole number in [0, 2**63).
    """
    return int.from_bytes(hashlib.sha256(description.encode()).digest()[:8], "big") >> 1


# --------------------------------------------------------------------------------------------------------
# The grid: validation (before any work) and expansion.


_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_spec(spec: str) -> list[str]:
    """Expand the brace groups of a law spec into the grid of specs they name (a product, first group slowest).

    Parameters
    ----------
    spec : str
        A spec whose values may be ``{a,b,...}``: ``dirichlet:alpha={0.1,0.5,1},k={8,64}``.

    Returns
    -------
    list of str
        ``dirichlet:alpha=0.1,k=8``, ``dirichlet:alpha=0.1,k=64``, ... (6 specs).
    """
    groups = _BRACES.findall(spec)
    rest = _BRACES.sub("\0", spec)
    if "{" in rest or "}" in rest:
        raise BrwError(f"unbalanced or nested braces in {spec!r}: write one level, like alpha={{0.1,0.5}}")
    choices = []
    for g in groups:
        values = [v.strip() for v in g.split(",")]
        if not all(values):
            raise BrwError(f"empty value in {{{g}}} of {spec!r}")
        choices.append(values)
    out = []
    for combo in itertools.product(*choices):
        parts = iter(combo)
        out.append(re.sub("\0", lambda _: next(parts), rest))
    return out


def _where_python(key: str, index: int | None = None) -> str:
    return key if index is None else f"{key}[{index}]"


def _as_list(value, key: str, where) -> list:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise BrwError(f"{where(key)}: empty grid (give at least one value)")
    return items


def _whole(value, key: str, index, where, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise BrwError(f"{where(key, index)}: must be a whole number, got {value!r}")
    if value < minimum:
        raise BrwError(f"{where(key, index)}: must be >= {minimum}, got {value}")
    return int(value)


def _strings(value, key: str, where) -> list[str]:
    items = _as_list(value, key, where)
    for i, v in enumerate(items):
        if not isinstance(v, str) or not v.strip():
            raise BrwError(f"{where(key, i)}: must be a non-empty string, got {v!r}")
    return [v.strip() for v in items]


@dataclass(frozen=True)
class Grid:
    """A validated grid: every value checked, every law parsed (before any work starts)."""

    kinds: tuple[str, ...]
    laws: tuple[str, ...]  # canonical specs, in order, without repeats
    P: tuple[int, ...]
    replicates: tuple[int, ...]
    seeds: tuple[int, ...]
    options: tuple = ()
    law_info: dict = field(default_factory=dict, compare=False)  # spec -> (name, params, mu, mu2)


def _validate(grid: dict, where=_where_python) -> Grid:
    from brw.laws import parse_law

    options = {k for kind in KINDS.values() for k in kind.options}
    for key in grid:
        if key not in GRID_KEYS and key not in options:
            known = ", ".join(list(GRID_KEYS) + sorted(options))
            raise BrwError(f"{where(key)}: unknown key; a sweep takes {known}")
    if grid.get("laws") is None:
        raise BrwError(f"{where('laws')}: missing (the law specs to sweep)")
    if grid.get("P") is None:
        raise BrwError(f"{where('P')}: missing (the P values)")
    kinds = _strings(grid.get("kind", "frontier"), "kind", where)
    for i, k in enumerate(kinds):
        if k not in KINDS:
            raise BrwError(f"{where('kind', i)}: unknown kind {k!r}; known kinds: {', '.join(KINDS)}")
    laws, info = [], {}
    for i, text in enumerate(_strings(grid["laws"], "laws", where)):
        try:
            specs = expand_spec(text)
            parsed = [parse_law(s) for s in specs]
        except BrwError as e:
            raise BrwError(f"{where('laws', i)}: {e}") from None
        for law in parsed:
            spec = str(law)
            if spec not in info:
                laws.append(spec)
                info[spec] = (law.name, _law_params(spec), float(law.mu), float(law.mu2))
    P = sorted({_whole(v, "P", i, where, 1) for i, v in enumerate(_as_list(grid["P"], "P", where))})
    if P[-1] >= 2**31 - 2:
        raise BrwError(f"{where('P')}: P={P[-1]} is too large (at most {2**31 - 3})")
    reps = [_whole(v, "replicates", i, where, 1)
            for i, v in enumerate(_as_list(grid.get("replicates", DEFAULT_REPLICATES), "replicates", where))]
    seed = grid.get("seed")
    if seed is None:  # fresh entropy, recorded in every row
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    seeds = [_whole(v, "seed", i, where, 0) for i, v in enumerate(_as_list(seed, "seed", where))]
    opts = []
    for key in sorted(options & set(grid)):
        users = [k for k in kinds if key in KINDS[k].options]
        if not users:
            raise BrwError(f"{where(key)}: only for kind {' or '.join(k for k in KINDS if key in KINDS[k].options)}")
        opts.append((key, KINDS[users[0]].options[key](grid[key], where)))
    return Grid(tuple(kinds), tuple(laws), tuple(P), tuple(dict.fromkeys(reps)), tuple(dict.fromkeys(seeds)),
                tuple(opts), info)


def _law_params(spec: str) -> dict[str, str]:
    """A canonical spec's parameters as text: ``dirichlet:alpha=0.5,k=8`` -> {alpha: 0.5, k: 8};
    ``trace:code`` -> {trace: code}."""
    name, _, body = spec.partition(":")
    if body and "=" not in body:
        return {name: body}
    return dict(part.split("=", 1) for part in body.split(",") if "=" in part)


#: Memory per planned point (its description, its rows, its place in the table) and per local Dask worker.
POINT_BYTES = 4096
WORKER_BYTES = 400 << 20


def _grid_size(grid) -> int:
    """How many points the grid plans (at most: repeats collapse)."""
    n = 0
    for kname in grid.kinds:
        kind = KINDS[kname]
        per_law = len(grid.replicates) * len(grid.seeds) if kind.seeded else 1
        n += len(grid.laws) * per_law * (1 if kind.one_pass else len(grid.P))
    return n


def plan(grid) -> list[Point]:
    """The grid's points in table order: kind, law, replicates, seed (then P within a point).

    Parameters
    ----------
    grid : Grid or dict
        A validated grid (``load_config``), or the keywords of :func:`sweep`'s grid as a dict.

    Returns
    -------
    list of Point
        Without repeats (unseeded kinds do not multiply by replicates and seeds).
    """
    if not isinstance(grid, Grid):
        grid = _validate(grid)
    points = []
    for kname in grid.kinds:
        kind = KINDS[kname]
        opts = tuple((k, v) for k, v in grid.options if k in kind.options)
        for law in grid.laws:
            pairs = itertools.product(grid.replicates, grid.seeds) if kind.seeded else [(None, None)]
            for reps, seed in pairs:
                Ps = [grid.P] if kind.one_pass else [(p,) for p in grid.P]
                points.extend(Point(kname, law, ps, reps, seed, opts) for ps in Ps)
    return list(dict.fromkeys(points))


# --------------------------------------------------------------------------------------------------------
# Config files (TOML).


def load_config(path) -> Grid:
    """Read and validate a sweep config (TOML): every key, type and law, before any work.

    Parameters
    ----------
    path : str or Path
        A TOML file with the grid keys (``kind``, ``laws``, ``P``, ``replicates``, ``seed``; the seed is 0
        unless given, as in ``brw frontier``) and any kind's options, at the top level. A value may be one item
        or a list.

    Returns
    -------
    Grid
        The validated grid. A mistake raises ``BrwError`` naming the file, the line and the key.
    """
    import tomllib

    path = Path(path)
    text = read_text(path, "sweep config")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BrwError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise BrwError(f"{path}: nests its arrays or tables more deeply than a sweep config does") from None
    lines = text.splitlines()
    data.setdefault("seed", 0)  # as brw frontier: the same command again is the same sweep

    def where(key: str, index: int | None = None) -> str:
        line = _line_of(lines, key, None if index is None else data.get(key), index)
        return f"{path}:{line}: {key}" if line else f"{path}: {key}"

    return _validate(data, where)


def _line_of(lines: list[str], key: str, value, index: int | None) -> int | None:
    """1-based line of ``key = ...`` at the top level, or of its ``index``-th list item when it can be found."""
    pat = re.compile(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")
    start = next((i for i, ln in enumerate(lines) if pat.match(ln)), None)
    if start is None:
        return None
    if index is not None and isinstance(value, list) and index < len(value):
        item = value[index]
        needle = item if isinstance(item, str) else None
        if needle:
            for i in range(start, len(lines)):
                if needle in lines[i]:
                    return i + 1
    return start + 1


# --------------------------------------------------------------------------------------------------------
# Computing a point (in a worker).


@lru_cache(maxsize=64)
def _parsed(spec: str):
    from brw.laws import parse_law

    return parse_law(spec)


def compute(point: Point, Ps: tuple[int, ...], threads: int) -> dict:
    """Compute rows ``Ps`` of ``point`` with ``threads`` Numba threads (this runs on a worker).

    Parameters
    ----------
    point : Point
        The point (its law travels as its spec string).
    Ps : tuple of int
        The P values to compute, increasing.
    threads : int
        Numba threads.

    Returns
    -------
    dict
        ``rows`` (dicts with ``P`` and the kind's columns), ``error`` (None, or the one-line reason it failed),
        ``seconds`` (time in the kernels) and ``version`` (the worker's package version).
    """
    try:
        rows, seconds = KINDS[point.kind].run(_parsed(point.law), point, Ps, threads)
    except BrwError as e:
        return {"rows": [], "error": str(e), "seconds": 0.0, "version": __version__}
    except MemoryError:
        return {"rows": [], "error": "out of memory: lower P or replicates", "seconds": 0.0, "version": __version__}
    return {"rows": rows, "error": None, "seconds": seconds,
            "version": __version__}


def _compute_on_dask(point: Point, Ps: tuple[int, ...], threads: dict) -> dict:
    from distributed import get_worker

    return compute(point, Ps, threads.get(get_worker().address, 1))


# --------------------------------------------------------------------------------------------------------
# Where points are stored.


class _Store:
    """``DIR/points/HASH.json``, one file per finished computation; rows indexed by (description, P)."""

    def __init__(self, out: Path | None):
        self.dir = None if out is None else out / "points"
        self.rows: dict[tuple[str, int], list[dict]] = {}

    def load(self) -> None:
        if self.dir is None or not self.dir.is_dir():
            return
        for f in sorted(self.dir.glob("*.json")):
            try:
                d = json.loads(f.read_text())
                kind = KINDS.get(json.loads(d["point"])["kind"])
                columns = kind.columns if kind is not None else ()
                if d.get("version") != __version__ or any(c not in r for r in d["rows"] for c in columns):
                    continue  # another version's, or stored before its kind gained a column: computed again
                for key, rows in _by_P(d["point"], d["rows"]).items():
                    self.rows.setdefault(key, rows)
            except (OSError, ValueError, KeyError, TypeError):  # torn by a power cut: computed again
                with contextlib.suppress(OSError):
                    f.unlink()

    def missing(self, point: Point) -> tuple[int, ...]:
        desc = point.description
        return tuple(p for p in point.P if (desc, p) not in self.rows)

    def put(self, point: Point, rows: list[dict]) -> None:
        desc = point.description
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
        self.rows.update(_by_P(desc, rows))
        if self.dir is None:
            return
        Ps = sorted({r["P"] for r in rows})
        name = hashlib.sha256(f"{__version__}\n{desc}\n{Ps}".encode()).hexdigest()[:32]
        text = json.dumps({"version": __version__, "point": desc, "rows": rows}, allow_nan=False)
        # No fsync: the rename makes it whole or absent when a process dies; a file torn by a power cut fails
        # to parse on load and is computed again (an fsync costs milliseconds, a small point less).
        with atomic_path(self.dir / f"{name}.json", fsync=False) as tmp:
            tmp.write_text(text)


def _by_P(desc: str, rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    out: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        out.setdefault((desc, int(r["P"])), []).append(r)
    return out


@contextlib.contextmanager
def _folder_lock(out: Path | None):
    if out is None:
        yield
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = open(out / ".lock", "w")
    except OSError as e:
        raise BrwError(f"cannot write to out={str(out)!r}: {e.strerror}") from None
    with lock as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BrwError(f"another sweep is writing to {str(out)!r}; wait for it or choose another out") from None
        for tmp in (out / "points").glob(".*.tmp") if (out / "points").is_dir() else ():
            tmp.unlink()  # left by a killed run (the lock says no other run is writing)
        yield


# --------------------------------------------------------------------------------------------------------
# Engines: each yields (point, Ps, outcome) as points finish.


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _trees(point: Point) -> int:
    """Trees a point simulates: its replicates, one for a deterministic law's frontier (1 for unseeded kinds)."""
    if point.kind == "frontier" and _parsed(point.law).deterministic:
        return 1
    return point.replicates or 1


def _cost(task) -> float:
    point, Ps = task
    return _trees(point) * Ps[-1] if KINDS[point.kind].seeded else 1e6


def _local(tasks, workers: int | None):
    """Large points in this process on every core, then the rest in one worker process per core (default); or
    every point in ``workers`` processes sharing the cores."""
    cores = _cores()
    if workers is not None:
        yield from _pool(tasks, workers, cores)
        return
    large = [t for t in tasks if _threaded(t, cores)]
    yield from _pool(large, 1, cores)
    yield from _pool([t for t in tasks if not _threaded(t, cores)], cores, cores)


def _threaded(task, cores: int) -> bool:
    point, Ps = task
    return KINDS[point.kind].threaded and _trees(point) >= cores and _trees(point) * Ps[-1] >= THREADED_NODES


def _pool(tasks, workers: int, cores: int):
    workers = min(workers, len(tasks))
    threads = max(1, cores // max(workers, 1))
    if workers <= 1:
        for point, Ps in tasks:
            yield point, Ps, compute(point, Ps, threads)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = _process_context()
    lifeline, alive = ctx.Pipe(duplex=False)  # only this process holds ``alive``
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_watch, initargs=(lifeline,))
    try:
        pending = {pool.submit(compute, point, Ps, threads): (point, Ps) for point, Ps in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                point, Ps = pending.pop(fut)
                yield point, Ps, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        alive.close()


def _watch(lifeline) -> None:
    """In a worker: exit as soon as the sweep's process is gone (killed, even by SIGKILL), rather than wait
    forever for work that will never come."""
    import threading

    def wait():
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os._exit(1)

    threading.Thread(target=wait, daemon=True).start()


def _process_context():
    """Workers start from a fork server that has imported the simulator but never run a kernel: a fork of a
    process whose threads have run is unsafe, and spawning each worker afresh costs a second more."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["brw.sweeps", "brw.solver", "brw.laws", "brw.theory"])
    return ctx


def _dask_threads(client) -> dict:
    """Numba threads per worker: the cores of its host shared among the task slots of every worker there."""
    info = client.scheduler_info()["workers"]
    cpus = client.run(_cores)
    slots: dict[str, int] = {}
    for w in info.values():
        slots[w["host"]] = slots.get(w["host"], 0) + w["nthreads"]
    return {addr: max(1, cpus.get(addr, 1) // slots[w["host"]]) for addr, w in info.items()}


def _dask(tasks, client):
    from distributed import as_completed

    threads = _dask_threads(client)
    futures = {}
    for point, Ps in tasks:
        key = "brw-sweep-" + hashlib.sha256(f"{point.description}{Ps}".encode()).hexdigest()[:24]
        futures[client.submit(_compute_on_dask, point, Ps, threads, key=key, priority=_cost((point, Ps)),
                              pure=False)] = (point, Ps)
    try:
        for fut in as_completed(futures):
            point, Ps = futures[fut]
            outcome = fut.result()
            fut.release()
            yield point, Ps, outcome
    finally:
        client.cancel([f for f in futures if not f.done()])


def _check_address(address: str) -> None:
    """Refuse a scheduler address Dask cannot parse (``tcp://host:8786``, ``host:8786``)."""
    try:
        from distributed.comm import parse_address, resolve_address
    except ImportError:
        return  # said where the client is made: the sweep extra is missing
    try:
        parse_address(resolve_address(address))
    except (ValueError, TypeError) as e:
        raise BrwError(f"cannot reach the Dask scheduler at {clip(address, 80)!r}: {clip(str(e), 120)}") from None


@contextlib.contextmanager
def _dask_client(client, dask_local):
    """The Client to use: the one given, one connected to an address, a LocalCluster of ``dask_local``
    worker processes, or None (local processes)."""
    if client is None and dask_local is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BrwError("a Dask sweep needs the sweep extra: pip install 'brw[sweep]'") from None
    if dask_local is not None:
        n = _whole(dask_local, "dask_local", None, _where_python, 1)
        import logging

        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
            yield c
    elif isinstance(client, str):
        try:
            c = Client(client, timeout=10)
        except (OSError, ValueError, TypeError) as e:  # unreachable, or not an address at all
            raise BrwError(f"cannot reach the Dask scheduler at {clip(client, 80)!r}: {clip(str(e), 120)}") from None
        with c:
            yield c
    else:
        yield client


# --------------------------------------------------------------------------------------------------------
# The table.


_ID_COLUMNS = ("kind", "law", "law_name")
_LEAD = ("P", "replicates", "seed", "sweep_seed", "mu", "mu2")


def _table(grid: Grid, points: list[Point], store: _Store, failed: dict):
    import pandas as pd

    params = list(dict.fromkeys(k for spec in grid.laws for k in grid.law_info[spec][1]))
    fixed = set(_ID_COLUMNS) | set(_LEAD) | {"error", "version"}
    pcol = {k: (f"law_{k}" if k in fixed or any(k in KINDS[x].columns for x in KINDS) else k) for k in params}
    values = list(dict.fromkeys(c for k in grid.kinds for c in KINDS[k].columns))
    records = []
    for point in points:
        name, lparams, mu, mu2 = grid.law_info[point.law]
        base = {"kind": point.kind, "law": point.law, "law_name": name,
                **{pcol[k]: lparams.get(k) for k in params},
                "replicates": point.replicates, "seed": point.seed, "sweep_seed": point.sweep_seed,
                "mu": mu, "mu2": mu2}
        desc = point.description
        for p in point.P:
            rows = store.rows.get((desc, p))
            for row in rows or [None]:
                vals = {c: (None if row is None else row.get(c)) for c in values}
                records.append({**base, "P": p, **vals, "error": failed.get(desc) if row is None else None,
                                "version": __version__})
    cols = [*_ID_COLUMNS, *pcol.values(), *_LEAD, *values, "error", "version"]
    text = {c for c in values if any(isinstance(r[c], str) for r in records)}
    types = {"P": "int64", "replicates": "Int64", "seed": "Int64", "sweep_seed": "Int64",
             **{c: "float64" for c in ("mu", "mu2", *values) if c not in text}}
    data = {}
    for c in cols:
        column = [r[c] for r in records]
        if c in pcol.values():
            data[c] = _typed(column)
        else:  # built from the Python values (a 63-bit seed must not pass through a float)
            data[c] = pd.array(column, dtype=types.get(c, "str"))
    return pd.DataFrame(data, columns=cols)


def _typed(values: list):
    """A parameter column as numbers when all its present values are numbers (whole ones too, so that a
    column's type does not depend on the grid), else as text."""
    import pandas as pd

    try:
        return pd.array([math.nan if v is None else float(v) for v in values], dtype="float64")
    except ValueError:
        return pd.array(values, dtype="str")


# --------------------------------------------------------------------------------------------------------
# The sweep.


def sweep(config=None, *, laws=None, P=None, kind=None, replicates=None, seed=None, out=None, client=None,
          dask_local: int | None = None, workers: int | None = None, progress: bool = False, **options):
    """Run a grid of points and return their tidy table (one row per point and P).

    Parameters
    ----------
    config : str or Path, optional
        A TOML sweep config (:func:`load_config`); then the grid keywords below must not be given.
    laws : str or list of str
        Law specs; brace groups are grid axes (``dirichlet:alpha={0.1,0.5},k={8,64}``).
    P : int or list of int
        P values (draft nodes): rows of each point.
    kind : str or list of str, optional
        Kinds of point (``KINDS``): ``frontier`` (default; simulated accepted(P)), ``theory`` (the bounds) or
        ``policies`` (drafting policies on the same kind of trees, with their paired gaps to the frontier).
    replicates : int or list of int, optional
        Replicate trees per frontier point (default 100).
    seed : int or list of int, optional
        The sweep seed (a grid axis when a list); None draws fresh entropy, recorded in ``sweep_seed``.
    out : str or Path, optional
        Folder for the finished points and ``results.parquet``: a rerun with the same folder computes only the
        missing points. None keeps everything in memory.
    client : dask.distributed.Client or str, optional
        Run the points on this Dask cluster (or on the scheduler at this address).
    dask_local : int, optional
        Run them on a Dask LocalCluster of this many worker processes.
    workers : int, optional
        Local worker processes sharing the cores. By default large frontier points (``THREADED_NODES``) run in
        this process on every core and the others in one worker process per core; 1 runs every point in this
        process on every core.
    progress : bool, optional
        Show a progress bar on stderr (only on a terminal).
    **options
        Options of the kinds of point (``Kind.options``): ``policies``, the policies a ``policies`` point
        scores (specs as for ``brw policies``; default ``brw.drafting.DEFAULT_POLICIES``); ``slope_from``, a
        whole number P0: frontier rows at P = 2 P0, 4 P0, ... hold the least-squares slope of accepted against
        log P over P0, 2 P0, ..., P fitted to each replicate, its mean (``slope``) and standard error
        (``slope_stderr``).

    Returns
    -------
    pandas.DataFrame
        Columns ``kind``, ``law`` (canonical spec), ``law_name``, one column per law parameter, ``P``,
        ``replicates``, ``seed`` (the point's own seed: ``brw.frontier(law, P, replicates, seed)`` replays
        it), ``sweep_seed``, ``mu``, ``mu2``, the kinds' value columns (``accepted``, ``stderr``,
        ``tokens_per_step``, ``slope``, ``slope_stderr`` for frontier points; ``paper_bound``,
        ``wald_lorden_bound``, ``renewal_bound``, ``asymptotic`` for theory points; ``policy``, ``accepted``,
        ``stderr``, ``tokens_per_step``, ``gap``, ``gap_stderr`` for policy points), ``error`` (the reason a
        point failed, else missing) and ``version``. ``df.attrs["sweep"]`` holds the summary: ``points``,
        ``computed``, ``reused``, ``failed`` (a list of the failed points with their reasons), ``out``,
        ``seconds``.
    """
    keywords = {"laws": laws, "P": P, "kind": kind, "replicates": replicates, "seed": seed, **options}
    if config is not None:
        given = [k for k, v in keywords.items() if v is not None]
        if given:
            raise BrwError(f"give either config or the grid keywords, not both (got config and {', '.join(given)})")
        grid = load_config(config)
    else:
        grid = _validate({k: v for k, v in keywords.items() if v is not None or k in ("laws", "P", "seed")})
    dask_local, workers, out = _check_runner(client, dask_local, workers, out)
    require("points", _grid_size(grid), lambda n: n * POINT_BYTES, what="a sweep grid",
            hint="fewer laws, seeds or replicates")
    points = plan(grid)
    if isinstance(client, str):
        _check_address(client)  # before the folder is taken: a mistyped address leaves nothing behind
    t0 = time.perf_counter()
    with _folder_lock(out):
        store = _Store(out)
        store.load()
        tasks = [(pt, miss) for pt in points if (miss := store.missing(pt))]
        tasks.sort(key=_cost, reverse=True)  # largest first: the last to finish are small
        failed: dict[str, str] = {}
        computed = 0
        with _dask_client(client, dask_local) as dask:
            engine = _local(tasks, workers) if dask is None else _dask(tasks, dask)
            _run(engine, len(tasks), store, failed, progress)
        computed = len(tasks) - len(failed)
        df = _table(grid, points, store, failed)
        if out is not None:
            with atomic_path(out / "results.parquet") as tmp:
                df.to_parquet(tmp, index=False)
    fails = [{"kind": p.kind, "law": p.law, "P": list(p.P), "replicates": p.replicates, "seed": p.seed,
              "error": failed[p.description]} for p in points if p.description in failed]
    df.attrs["sweep"] = {"points": len(points), "computed": computed, "reused": len(points) - len(tasks),
                         "failed": fails, "out": None if out is None else str(out),
                         "seconds": time.perf_counter() - t0}
    return df


def _check_runner(client, dask_local, workers, out):
    """``(dask_local, workers, out)`` of a sweep, checked: whole numbers, a folder, the packages it needs."""
    if client is not None and dask_local is not None:
        raise BrwError("give client or dask_local, not both")
    if dask_local is not None:
        dask_local = _whole(dask_local, "dask_local", None, _where_python, 1)
        require("dask_local", dask_local, lambda n: n * WORKER_BYTES, what="a Dask LocalCluster")
    if workers is not None:
        workers = _whole(workers, "workers", None, _where_python, 1)
    out = None if out is None else Path(out)
    if out is not None and out.exists() and not out.is_dir():
        raise BrwError(f"out={str(out)!r} is a file; give a folder")
    for module in ("pandas",) + (("pyarrow",) if out is not None else ()):
        try:
            importlib.import_module(module)
        except ImportError:
            raise BrwError(f"a sweep needs {module}: pip install 'brw[sweep]'") from None
    return dask_local, workers, out


def _run(engine, total: int, store: _Store, failed: dict, progress: bool) -> None:
    from brw.progress import Progress

    with Progress(total, "sweep", enabled=progress, unit="points",
                  hint="fewer laws, P or replicates in the config; a rerun computes only what is missing") as bar:
        for point, Ps, outcome in engine:
            if outcome["version"] != __version__:
                raise BrwError(f"a worker runs brw {outcome['version']} and this sweep {__version__}; install the "
                               "same version everywhere")
            if outcome["error"] is not None:
                failed[point.description] = outcome["error"]
            else:
                store.put(point, outcome["rows"])
            bar.update(1)
