"""Sweeps: the grid, its table, seeds that do not depend on where or with what a point runs, resuming, failures."""

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import brw
from brw import theory
from brw.cli import main
from brw.errors import BrwError
from brw.sweeps import Point, expand_spec, load_config, point_seed, sweep

ROOT = Path(brw.__file__).resolve().parent.parent
LAWS = ["dirichlet:alpha={0.5,1},k={4,8}", "gem:theta=2", "fixed:p=0.7/0.3"]
GRID = dict(laws=LAWS, P=[4, 32, 100], replicates=3, seed=11)


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


@pytest.fixture(scope="module")
def table():
    return sweep(**GRID, workers=1)


# --------------------------------------------------------------------------------------------------------
# The grid.


def test_braces_expand_to_the_product_first_group_slowest():
    specs = expand_spec("dirichlet:alpha={0.1,0.5,1},k={8,64}")
    assert specs == [f"dirichlet:alpha={a},k={k}" for a in ("0.1", "0.5", "1") for k in ("8", "64")]
    assert expand_spec("trace:{code,math}") == ["trace:code", "trace:math"]
    assert expand_spec("uniform:k=8") == ["uniform:k=8"]
    for bad in ("uniform:k={2,}", "uniform:k={{2}}", "uniform:k={2"):
        with pytest.raises(BrwError):
            expand_spec(bad)


def test_one_row_per_point_and_P_with_the_law_and_its_parameters(table):
    assert len(table) == 6 * 3 and table.attrs["sweep"]["points"] == 6
    assert list(table.columns[:8]) == ["kind", "law", "law_name", "alpha", "k", "theta", "p", "P"]
    for col in ("replicates", "seed", "sweep_seed", "mu", "mu2", "accepted", "stderr", "tokens_per_step",
                "error", "version"):
        assert col in table.columns
    row = table[(table.law == "dirichlet:alpha=0.5,k=8") & (table.P == 32)].iloc[0]
    assert row.law_name == "dirichlet" and row.alpha == 0.5 and row.k == 8 and pd.isna(row.theta)
    assert table["k"].dtype == table["alpha"].dtype == np.float64 and table.p.iloc[-1] == "0.7/0.3"
    assert (table.tokens_per_step == table.accepted + 1).all()
    assert (table.version == brw.__version__).all() and table.error.isna().all()
    assert (table.sweep_seed == 11).all()
    assert table.P.tolist()[:3] == [4, 32, 100]


def test_a_row_replays_with_brw_frontier(table):
    for _, row in table[table.P == 32].iterrows():
        res = brw.frontier(row.law, 100, int(row.replicates), int(row.seed))
        acc, se = res.at([32])
        assert acc[0] == row.accepted and (se[0] == row.stderr or np.isnan(se[0]) and np.isnan(row.stderr))


def test_theory_points_equal_the_theory_at_their_P():
    df = sweep(laws=["fixed:p=0.5/0.25/0.25", "uniform:k=4"], P=[16, 1024], kind="theory", seed=0, workers=1)
    assert len(df) == 4 and df.seed.isna().all() and df.replicates.isna().all() and "accepted" not in df
    assert set(theory.BOUND_KEYS) <= set(df.columns)
    for _, row in df.iterrows():
        assert row.renewal_bound == theory.renewal_bound(row.law, [row.P])[0]
        assert row.asymptotic == theory.asymptotic(row.law, [row.P])[0]
        assert row.paper_bound == theory.paper_bound(row.law, [row.P])[0]


def test_policy_points_have_a_row_per_P_and_policy_that_replays_with_brw_policies():
    from brw.drafting import policies

    df = sweep(laws="dirichlet:alpha=0.5,k=8", P=[8, 32], kind=["policies", "frontier"],
               policies=["chain", "specexec:T=2"], replicates=4, seed=1, workers=1)
    pol = df[df.kind == "policies"]
    assert pol.policy.tolist() == ["chain", "specexec:T=2"] * 2 and pol.P.tolist() == [8, 8, 32, 32]
    assert (pol.gap >= 0).all() and df[df.kind == "frontier"].policy.isna().all()
    res = policies("dirichlet:alpha=0.5,k=8", 32, ["chain", "specexec:T=2"], 4, int(pol.seed.iloc[0]), at=[8, 32])
    for _, row in pol.iterrows():
        i = res.policies.index(row.policy)
        assert row.accepted == res.accepted[i, row.P - 1] and row.gap == res.gap[i, row.P - 1]


def test_slope_rows_are_the_mean_of_one_line_per_replicate_and_do_not_depend_on_the_grid():
    df = sweep(laws=["dirichlet:alpha=0.5,k=8", "fixed:p=0.7/0.3"], P=[16, 32, 50, 64, 128], replicates=5,
               seed=2, slope_from=16, workers=1)
    rand = df[df.law == "dirichlet:alpha=0.5,k=8"].set_index("P")
    assert rand.slope.loc[[16, 50]].isna().all() and rand.slope_stderr.loc[[16, 50]].isna().all()
    res = brw.frontier("dirichlet:alpha=0.5,k=8", 128, 5, int(rand.seed.iloc[0]), keep=[16, 32, 64, 128])
    for n, p in ((2, 32), (3, 64), (4, 128)):  # the ladder 16, 32, ..., P
        b = np.polyfit(np.log([16, 32, 64, 128][:n]), res.replicate_values[:, :n].T, 1)[0]
        assert rand.slope[p] == pytest.approx(b.mean(), abs=1e-12)
        assert rand.slope_stderr[p] == pytest.approx(b.std(ddof=1) / np.sqrt(5), abs=1e-12)
    fixed = df[df.law == "fixed:p=0.7/0.3"].set_index("P")  # one tree: its replicates are all that tree
    assert (fixed.stderr == 0).all() and (fixed.slope_stderr.loc[[32, 64, 128]] == 0).all()
    acc = brw.frontier("fixed:p=0.7/0.3", 128, 1, 0).accepted
    b = np.polyfit(np.log([16, 32, 64, 128]), acc[[15, 31, 63, 127]], 1)[0]
    assert fixed.slope[128] == pytest.approx(b, abs=1e-12) and (fixed.accepted == acc[fixed.index - 1]).all()
    other = sweep(laws="dirichlet:alpha=0.5,k=8", P=[128, 64], replicates=5, seed=2, slope_from=16, workers=1)
    same(other, df[df.law == "dirichlet:alpha=0.5,k=8"].iloc[3:][other.columns])


def test_a_stored_point_without_a_column_of_its_kind_is_computed_again(tmp_path, table):
    sweep(**GRID, out=tmp_path, workers=1)
    f = sorted((tmp_path / "points").iterdir())[0]
    d = json.loads(f.read_text())
    f.write_text(json.dumps(d | {"rows": [{k: v for k, v in r.items() if k != "slope"} for r in d["rows"]]}))
    df = sweep(**GRID, out=tmp_path, workers=1)
    assert df.attrs["sweep"]["computed"] == 1 and all("slope" in r for r in json.loads(f.read_text())["rows"])
    same(df, table)


# --------------------------------------------------------------------------------------------------------
# Seeds: the same bits alone, in a larger grid, in another order, in worker processes, on a Dask cluster.


def test_a_point_seed_is_the_hash_of_its_description():
    p = Point("frontier", "uniform:k=2", (4, 8), 5, 7)
    assert p.description == '{"kind":"frontier","law":"uniform:k=2","replicates":5,"seed":7}'
    assert p.seed == point_seed(p.description) < 2**63
    assert Point("frontier", "uniform:k=2", (16,), 5, 7).seed == p.seed  # not its P values
    assert Point("frontier", "uniform:k=2", (4, 8), 5, 8).seed != p.seed


def test_a_point_alone_equals_the_same_point_in_a_larger_grid_in_any_order(table):
    alone = sweep(laws="dirichlet:alpha=1,k=4", P=[32], replicates=3, seed=11, workers=1)
    same(alone, table[(table.law == "dirichlet:alpha=1,k=4") & (table.P == 32)][alone.columns])
    shuffled = sweep(laws=list(reversed(["fixed:p=0.7/0.3", "gem:theta=2", "dirichlet:alpha={1,0.5},k={8,4}"])),
                     P=[100, 4, 32], replicates=3, seed=11, workers=1)
    key = ["law", "P"]
    same(shuffled.sort_values(key), table.sort_values(key))


#: Under tests/other_libm.py only this process runs the other libm; worker processes run this machine's, a mix no
#: real CPU makes (a sweep's workers and its caller share one numpy).
ONE_LIBM = pytest.mark.skipif(bool(os.environ.get("BRW_TEST_OTHER_LIBM")),
                              reason="worker processes do not run tests/other_libm.py")


@ONE_LIBM
@pytest.mark.slow
def test_worker_processes_give_the_same_table(table):
    same(sweep(**GRID, workers=2), table)


@pytest.mark.slow
def test_large_points_on_every_thread_and_small_ones_in_processes_give_the_same_table():
    grid = dict(laws=["trace:chat", "uniform:k={2,3}"], P=[64, 2**19], replicates=2, seed=4)
    default = sweep(**grid)  # trace:chat runs here on every core, the two small points in worker processes
    same(default, sweep(**grid, workers=1))


@ONE_LIBM
@pytest.mark.slow
def test_a_dask_local_cluster_of_two_worker_processes_gives_the_same_table(table):
    df = sweep(**GRID, dask_local=2)
    same(df, table)
    assert df.attrs["sweep"]["computed"] == 6


# --------------------------------------------------------------------------------------------------------
# Storage and resuming.


def test_a_rerun_reuses_every_point_and_writes_the_same_parquet(tmp_path, table):
    first = sweep(**GRID, out=tmp_path, workers=1)
    same(first, table)
    same(pd.read_parquet(tmp_path / "results.parquet"), table)
    again = sweep(**GRID, out=tmp_path, workers=1)
    assert again.attrs["sweep"] | {"seconds": 0} == {"points": 6, "computed": 0, "reused": 6, "failed": [],
                                                     "out": str(tmp_path), "seconds": 0}
    same(again, table)
    files = list((tmp_path / "points").iterdir())
    assert len(files) == 6 and all(f.suffix == ".json" for f in files)


def test_a_changed_grid_computes_only_its_new_points_and_P_values(tmp_path, table):
    sweep(**GRID, out=tmp_path, workers=1)
    more = sweep(laws=LAWS + ["uniform:k=3"], P=[4, 32, 100], replicates=3, seed=11, out=tmp_path, workers=1)
    assert more.attrs["sweep"]["computed"] == 1 and more.attrs["sweep"]["reused"] == 6
    wider = sweep(**{**GRID, "P": [4, 32, 64, 100]}, out=tmp_path, workers=1)
    assert wider.attrs["sweep"]["computed"] == 6  # each point computes P = 64 alone
    new = [json.loads(f.read_text()) for f in (tmp_path / "points").iterdir()]
    assert sum(1 for d in new if [r["P"] for r in d["rows"]] == [64]) == 6
    same(wider, sweep(**{**GRID, "P": [4, 32, 64, 100]}, workers=1))


def test_points_of_another_version_or_torn_files_are_computed_again(tmp_path, monkeypatch, table):
    sweep(**GRID, out=tmp_path, workers=1)
    files = sorted((tmp_path / "points").iterdir())
    files[0].write_text('{"version": "0.1.0", "point": "{\\"kind\\"')  # a power cut's torn file
    df = sweep(**GRID, out=tmp_path, workers=1)
    assert df.attrs["sweep"]["computed"] == 1 and json.loads(files[0].read_text())["rows"]  # whole again
    same(df, table)
    monkeypatch.setattr(sys.modules["brw.sweeps"], "__version__", "9.9.9")
    assert sweep(**GRID, out=tmp_path, workers=1).attrs["sweep"]["computed"] == 6


def test_one_sweep_at_a_time_per_folder(tmp_path):
    tmp_path.joinpath(".lock").touch()
    with open(tmp_path / ".lock") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(BrwError, match="another sweep"):
            sweep(**GRID, out=tmp_path, workers=1)


@pytest.mark.slow
def test_a_sweep_killed_at_a_random_moment_resumes_to_the_uninterrupted_table(tmp_path):
    """SIGKILL a real `brw sweep` (worker processes and all) once a random number of its points are stored,
    then run it again: only the missing points are computed, and the table is the uninterrupted run's."""
    n = 24
    config = tmp_path / "grid.toml"
    alphas = ",".join(f"{a / 10:g}" for a in range(1, n + 1))
    config.write_text(f'laws = "dirichlet:alpha={{{alphas}}},k=8"\nP = [8, 20000]\nreplicates = 2\nseed = 5\n')
    out = tmp_path / "out"
    rng = random.Random(2512)
    stop_at, jitter = rng.randrange(1, n - 10), rng.uniform(0, 0.01)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "brw.cli", "sweep", str(config), "--out", str(out), "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (out / "points").is_dir() and len(list((out / "points").glob("*.json"))) >= stop_at:
            time.sleep(jitter)
            break
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)  # the sweep's own process: its workers must notice and go
    proc.communicate()
    stored = len(list((out / "points").glob("*.json")))
    assert proc.returncode == -signal.SIGKILL and 0 < stored < n
    resumed = sweep(config, out=out, workers=1)
    s = resumed.attrs["sweep"]
    assert s["reused"] == stored and s["computed"] == n - stored and not s["failed"]
    same(resumed, sweep(config, workers=1))
    same(pd.read_parquet(out / "results.parquet"), resumed)
    assert not resumed.duplicated(["law", "P"]).any() and len(resumed) == 2 * n
    assert not list((out / "points").glob(".*"))  # no temporary file left behind
    for _ in range(300):  # no worker of the killed sweep is left running
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("processes of the killed sweep were still running 15 s later")


# --------------------------------------------------------------------------------------------------------
# Failures and mistakes.


def test_a_point_the_machine_cannot_hold_is_recorded_and_the_sweep_goes_on(tmp_path):
    df = sweep(laws="uniform:k=2", P=[8, 1_500_000_000], replicates=1, seed=0, kind=["frontier", "theory"],
               out=tmp_path, workers=1)
    s = df.attrs["sweep"]
    assert s["points"] == 3 and s["computed"] == 2 and len(s["failed"]) == 1
    f = s["failed"][0]
    assert f["kind"] == "frontier" and "memory" in f["error"] and "\n" not in f["error"]
    front = df[df.kind == "frontier"]
    assert front.accepted.isna().all() and (front.error == f["error"]).all()
    assert df[df.kind == "theory"].error.isna().all() and df[df.kind == "theory"].renewal_bound.notna().all()
    assert sweep(laws="uniform:k=2", P=[8, 1_500_000_000], replicates=1, seed=0, kind=["frontier", "theory"],
                 out=tmp_path, workers=1).attrs["sweep"]["reused"] == 2  # the failure is tried again


@pytest.mark.parametrize("kwargs, words", [
    (dict(laws=["uniform:k=2", "nolaw:x=1"], P=4), "laws[1]: unknown law 'nolaw'"),
    (dict(laws=[], P=4), "laws: empty grid"),
    (dict(laws="uniform:k=2", P=[4, 0]), "P[1]: must be >= 1"),
    (dict(laws="uniform:k=2", P=4, replicates=2.5), "replicates[0]: must be a whole number"),
    (dict(laws="uniform:k=2", P=4, kind="policy"), "kind[0]: unknown kind 'policy'"),
    (dict(laws="dirichlet:alpha={1,-1},k=8", P=4), "laws[0]: alpha=-1"),
    (dict(laws="uniform:k=2", P=4, seed=-1), "seed[0]: must be >= 0"),
    (dict(P=4), "laws: missing"),
    (dict(laws="uniform:k=2", P=4, colour="red"), "colour: unknown key"),
    (dict(laws="uniform:k=2", P=4, policies=["chain"]), "policies: only for kind policies"),
    (dict(laws="uniform:k=2", P=4, kind="policies", policies=["chain", "nope"]), "policies: unknown policy"),
    (dict(laws="uniform:k=2", P=4, slope_from=0), "slope_from: must be >= 1"),
    (dict(laws="uniform:k=2", P=4, kind="theory", slope_from=2), "slope_from: only for kind frontier"),
])
def test_python_mistakes_name_the_parameter(kwargs, words, tmp_path):
    with pytest.raises(BrwError) as e:
        sweep(**kwargs, out=tmp_path / "never")
    assert words in str(e.value)
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("text, words", [
    ('laws = [\n  "uniform:k=2",\n  "dirichlt:alpha=1,k=8",\n]\nP = 4\n', "grid.toml:3: laws: unknown law 'dirichlt'"),
    ('laws = "uniform:k=2"\nP = []\n', "grid.toml:2: P: empty grid"),
    ('laws = "uniform:k=2"\nP = [4, "x"]\n', "grid.toml:2: P: must be a whole number"),
    ('laws = "uniform:k=2"\nP = 4\nreplicate = 3\n', "grid.toml:3: replicate: unknown key"),
    ('laws = "uniform:k=2"\nP = 4\nseed = 1.5\n', "grid.toml:3: seed: must be a whole number"),
    ('laws = "uniform:k=2\nP = 4\n', "not valid TOML"),
    ('P = 4\n', "laws: missing"),
])
def test_a_bad_config_fails_before_any_work_naming_key_and_line(tmp_path, capsys, text, words):
    config = tmp_path / "grid.toml"
    config.write_text(text)
    code = main(["sweep", str(config), "--out", str(tmp_path / "out"), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err
    assert not (tmp_path / "out").exists()


def test_config_and_keywords_do_not_mix(tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text('laws = "uniform:k=2"\nP = 4\n')
    assert load_config(config).laws == ("uniform:k=2",)
    with pytest.raises(BrwError, match="either config or the grid keywords"):
        sweep(config, P=8)


@pytest.mark.slow
def test_cli_json_summary(tmp_path, capsys):
    config = tmp_path / "grid.toml"
    config.write_text('kind = ["frontier", "theory"]\nlaws = "uniform:k={2,3}"\nP = [4, 16]\nreplicates = 2\n'
                      'seed = 0\n')
    assert main(["sweep", str(config), "--out", str(tmp_path / "o"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {k: d[k] for k in ("points", "computed", "reused", "failed", "out")} == {
        "points": 6, "computed": 6, "reused": 0, "failed": [], "out": str(tmp_path / "o")}
    df = pd.read_parquet(tmp_path / "o" / "results.parquet")
    assert len(df) == 8 and set(df.kind) == {"frontier", "theory"}
    assert main(["sweep", str(config), "--out", str(tmp_path / "o")]) == 0
    assert "6 points: 0 computed, 6 reused, 0 failed" in capsys.readouterr().out


def test_the_slope_study_fits_one_line_per_batch():
    from brw.studies.sweep_slopes import sweep_slopes

    df = sweep(laws="fixed:p=0.7/0.3", P=[64, 256, 1024], kind=["frontier", "theory"], replicates=1, seed=[1, 2],
               workers=1)
    (row,) = sweep_slopes(df).laws
    b = np.polyfit(np.log([64, 256, 1024]), df[df.kind == "frontier"].accepted[:3], 1)[0]
    assert row["batches"] == 2 and row["stderr"] == 0.0 and row["slope"] == pytest.approx(b, abs=1e-12)
    assert abs(row["slope"] - row["renewal_slope"]) < 0.01 and row["inverse_mu"] == 1 / row["mu"]
