"""Mutation testing of the core modules with cosmic-ray (not part of CI: slow). See docs/testing.md.

For each module: copy the working tree to a scratch directory, let cosmic-ray list every mutant of the module,
keep the mutants of a fixed set of operators (below), optionally a seeded random sample of them, run the
module's fast tests against each mutant in turn (cosmic-ray rewrites the copied source file per mutant; the
checkout is never touched), and write the counts and every survivor (with its diff) to a JSON file.

Usage (from the repository root; needs ``pip install cosmic-ray``):

    python sims/mutation.py                                   # every module, every mutant of the set
    python sims/mutation.py --modules kernels,frontier --sample 60 --seed 1 --out out/mutation.json
    python sims/mutation.py --sample kernels=20,laws=12 --modules kernels,laws
    python sims/mutation.py --recheck out/mutation.json --out out/recheck.json   # do the survivors die now?

The Numba kernels run interpreted (``NUMBA_DISABLE_JIT=1``): a mutated ``brw/_kernels.py`` would otherwise
be compiled afresh for every mutant (half a minute of CPU), while the interpreted kernels take the same
branches on the small trees of their tests. The other modules keep the compiled kernels, cached once in the
scratch copy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Operators: a counterpart per arithmetic operator, the boundary and the negation of every comparison,
# deleted negations, and the logical, constant, loop and exception operators. Left out: replacements that
# only make a type error (Add -> BitXor ...), identity comparisons against order (Lt -> Is ...),
# RemoveDecorator (removing @njit gives the same function interpreted; removing @dataclass fails at import),
# and VariableReplacer/VariableInserter (random names).
_BINARY = ["Add_Sub", "Sub_Add", "Mul_Div", "Div_Mul", "FloorDiv_Div", "Mod_FloorDiv", "Pow_Mul", "RShift_LShift",
           "LShift_RShift", "BitAnd_BitOr", "BitOr_BitAnd", "BitXor_BitOr"]
_COMPARE = ["Lt_LtE", "LtE_Lt", "Gt_GtE", "GtE_Gt", "Lt_GtE", "LtE_Gt", "Gt_LtE", "GtE_Lt", "Eq_NotEq", "NotEq_Eq",
            "Is_IsNot", "IsNot_Is"]
OPERATORS = frozenset(
    [f"core/ReplaceBinaryOperator_{b}" for b in _BINARY]
    + [f"core/ReplaceComparisonOperator_{c}" for c in _COMPARE]
    + ["core/ReplaceUnaryOperator_Delete_Not", "core/ReplaceUnaryOperator_Delete_USub", "core/AddNot",
       "core/ReplaceTrueWithFalse", "core/ReplaceFalseWithTrue", "core/ReplaceAndWithOr", "core/ReplaceOrWithAnd",
       "core/ReplaceBreakWithContinue", "core/ReplaceContinueWithBreak", "core/NumberReplacer",
       "core/ZeroIterationForLoop", "core/ExceptionReplacer"])

_PYTEST = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly"

#: module -> (source file, its fast tests, extra environment, timeout in seconds per mutant). Tests listed first
#: run first (pytest -x stops at the first failure): the quickest discriminating ones lead.
MODULES = {
    "kernel_law": ("brw/kernel_law.py",
                   ["tests/test_kernel_parts.py", "tests/test_limits_fitted.py", "tests/test_reference_paths.py"],
                   {}, 300),
    "laws": ("brw/laws/", ["tests/test_limits_laws.py", "tests/test_limits_fitted.py", "tests/test_laws.py",
                           "tests/test_reference_paths.py", "tests/test_theory.py"], {}, 400),
    "fitted": ("brw/laws/fitted.py",
               ["tests/test_limits_fitted.py", "tests/test_fitted.py", "tests/test_reference_paths.py"], {}, 300),
    "frontier": ("brw/solver.py", ["tests/test_limits_solver.py", "tests/test_reference_paths.py",
                                     "tests/test_results.py", "tests/test_frontier.py", "-k", "'not accepted_1'"],
                 {}, 400),
    "theory": ("brw/theory.py", ["tests/test_limits_theory.py", "tests/test_theory.py"], {}, 400),
    "traces": ("brw/traces.py", ["tests/test_limits_traces.py", "tests/test_traces.py", "tests/test_importers.py"],
               {}, 300),
    # Last: a kernels session rewrites brw/_kernels.py, so the modules after it compile the kernels once more.
    "kernels": ("brw/_kernels.py",
                ["tests/test_kernel_parts.py", "tests/test_reference_paths.py",
                 "tests/test_frontier.py::test_compiled_streams_equal_their_plain_python_transcription",
                 "tests/test_policies.py", "-k", "'not (any_start and (gem or dirichlet)) and not larger_P'"],
                {"NUMBA_DISABLE_JIT": "1"}, 400),
}


def _copy_tree(dest: Path) -> None:
    """The working tree's tracked and untracked (not ignored) files, as they are now."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _command(work: Path, tests: list[str], env: dict) -> str:
    # The copy's brw must win over an installed (editable) one.
    prefix = " ".join(f"{k}={v}" for k, v in {"PYTHONPATH": str(work), **env}.items())
    return f"env {prefix} {_PYTEST} {' '.join(tests)}"


def _config(path: Path, module: str, tests: list[str], env: dict, timeout: int) -> None:
    command = _command(path.parent, tests, env)
    path.write_text(f'[cosmic-ray]\nmodule-path = "{module}"\ntimeout = {float(timeout)}\nexcluded-modules = []\n'
                    f'test-command = "{command}"\n\n[cosmic-ray.distributor]\nname = "local"\n')


def _select(db_path: Path, sample: int | None, seed: int) -> tuple[int, int, int]:
    """Skip the mutants outside OPERATORS and, with a sample size, all but a seeded sample of the rest.
    Returns (all mutants, mutants of the operator set, mutants to run)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkResult, WorkerOutcome

    with use_db(str(db_path), WorkDB.Mode.open) as db:
        items = sorted(db.work_items, key=lambda w: (str(w.mutations[0].module_path), w.mutations[0].start_pos,
                                                       w.mutations[0].operator_name, w.mutations[0].occurrence))
        inside = [w for w in items if w.mutations[0].operator_name in OPERATORS]
        run = inside if sample is None or sample >= len(inside) else random.Random(seed).sample(inside, sample)
        keep = {w.job_id for w in run}
        skip = [w.job_id for w in items if w.job_id not in keep]
        db.set_multiple_results(skip, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not selected"))
    return len(items), len(inside), len(run)


def _results(db_path: Path) -> dict:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    out = {"killed": 0, "timeout": 0, "survived": 0, "incompetent": 0, "error": 0, "survivors": []}
    with use_db(str(db_path), WorkDB.Mode.open) as db:
        for item, res in db.completed_work_items:
            if res.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            m = item.mutations[0]
            if res.worker_outcome != WorkerOutcome.NORMAL:
                out["error"] += 1
            elif res.test_outcome == TestOutcome.SURVIVED:
                out["survived"] += 1
                out["survivors"].append({"line": m.start_pos[0], "operator": m.operator_name.split("/")[1],
                                         "occurrence": m.occurrence, "definition": m.definition_name,
                                         "start": list(m.start_pos), "end": list(m.end_pos), "diff": res.diff})
            elif res.test_outcome == TestOutcome.INCOMPETENT:
                out["incompetent"] += 1
            elif (res.output or "").strip() == "timeout":
                out["timeout"] += 1
            else:
                out["killed"] += 1
    out["survivors"].sort(key=lambda s: (s["line"], s["operator"]))
    return out


def run_module(work: Path, name: str, sample: int | None, seed: int) -> dict:
    module, tests, env, timeout = MODULES[name]
    cfg, db = work / f"mutation-{name}.toml", work / f"mutation-{name}.sqlite"
    _config(cfg, module, tests, env, timeout)
    cr = [sys.executable, "-m", "cosmic_ray.cli"]
    subprocess.run(cr + ["init", str(cfg), str(db)], cwd=work, check=True)
    total, inside, run = _select(db, sample, seed)
    print(f"{name}: {total} mutants, {inside} of the operator set, running {run}", flush=True)
    t0 = time.monotonic()
    subprocess.run(cr + ["exec", str(cfg), str(db)], cwd=work, check=True)
    res = _results(db)
    res.update(module=module, tests=tests, env=env, mutants=total, of_operator_set=inside, run=run,
               seconds=round(time.monotonic() - t0))
    print(f"{name}: killed {res['killed']} + timeouts {res['timeout']}, survived {res['survived']}, "
          f"incompetent {res['incompetent']}, errors {res['error']} ({res['seconds']} s)", flush=True)
    return res


#: The README's test command (what CI runs: every test, slow ones included, on two pytest-xdist workers), for
#: ``--recheck --suite``; -x (in _PYTEST) stops it at the first failure.
SUITE = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]
SUITE_TIMEOUT = 1200


def recheck(work: Path, previous: dict, suite: bool = False) -> dict:
    """Run every survivor of a previous report again, against the tests as they are now: which ones die. With
    ``suite``, against the whole suite (``SUITE``) instead of the module's fast tests, the kernels compiled."""
    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_item import MutationSpec, TestOutcome

    out = {}
    cwd = os.getcwd()
    os.chdir(work)  # cosmic-ray mutates the module path relative to the working directory
    try:
        for name, res in previous["modules"].items():
            module, tests, env, timeout = MODULES[name]
            if suite:
                tests, env, timeout = SUITE, {}, SUITE_TIMEOUT
            command = _command(work, tests, env)
            rows = []
            for sv in res["survivors"]:
                spec = MutationSpec(module, "core/" + sv["operator"], sv["occurrence"], tuple(sv["start"]),
                                    tuple(sv["end"]))
                r = mutate_and_test([spec], command, timeout)
                dead = r.test_outcome not in (TestOutcome.SURVIVED, None)
                rows.append({**sv, "killed_now": dead, "output": (r.output or "")[-2000:]})
                failed = [ln for ln in (r.output or "").splitlines() if ln.startswith(("FAILED", "ERROR"))]
                print(f"{name}:{sv['line']} {sv['operator']}: {'killed' if dead else 'survives'}"
                      + (f" ({failed[0]})" if failed else ""), flush=True)
            out[name] = rows
    finally:
        os.chdir(cwd)
    return out


def _samples(text: str | None, names: list[str]) -> dict:
    if text is None:
        return dict.fromkeys(names)
    if "=" not in text:
        return dict.fromkeys(names, int(text))
    given = {k.strip(): int(v) for k, v in (part.split("=") for part in text.split(","))}
    return {n: given.get(n) for n in names}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", default=",".join(MODULES), help="comma-separated: " + ", ".join(MODULES))
    ap.add_argument("--sample", default=None,
                    help="mutants per module, a seeded random sample: N for every module, or NAME=N,NAME=N,...")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample")
    ap.add_argument("--out", default="out/mutation.json", help="where the counts and survivors go")
    ap.add_argument("--workdir", default=None, help="scratch copy of the tree (default: a temporary directory)")
    ap.add_argument("--recheck", default=None, metavar="REPORT",
                    help="instead of a run: mutate-and-test again every survivor listed in REPORT (a previous --out)")
    ap.add_argument("--suite", action="store_true",
                    help="with --recheck: test each survivor against the whole suite (the README's test command, -x) "
                         "instead of its module's fast tests")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.modules.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        ap.error(f"unknown modules {unknown}; choose from {', '.join(MODULES)}")
    samples = _samples(args.sample, names)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="brw-mutation-"))
    work.mkdir(parents=True, exist_ok=True)
    _copy_tree(work)
    os.environ["NUMBA_CACHE_DIR"] = str(work / ".numba-cache")  # the copy's own compiled kernels
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.recheck:
        previous = json.loads(Path(args.recheck).read_text())
        out.write_text(json.dumps({"recheck_of": args.recheck, "suite": args.suite,
                                   "modules": recheck(work, previous, args.suite)}, indent=1) + "\n")
        print(f"wrote {out}")
        return 0
    report = {"seed": args.seed, "sample": samples, "operators": sorted(OPERATORS), "modules": {}}
    for name in names:
        report["modules"][name] = run_module(work, name, samples[name], args.seed)
        out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
