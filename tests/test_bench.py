"""brw bench runs end to end on tiny sizes and says what it measured (no timing is asserted: speed is the
benchmark's business, never a unit test's)."""

import json

import numpy as np
import pytest

from brw import cli, tables
from brw.errors import BrwError
from brw.solver import frontier
from brw.studies.bench import TARGETS, SyntheticTable, bench


@pytest.mark.slow
def test_bench_command_json(capsys):
    code = cli.main(["bench", "--law", "fixed:p=0.7/0.3", "--law", "dirichlet:alpha=0.5,k=3", "--P", "300",
                     "--replicates", "2", "--reference-P", "50", "--repeats", "1", "--big", "2000", "--no-startup",
                     "--json"])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert [row["law"] for row in d["laws"]] == ["fixed:p=0.7/0.3", "dirichlet:alpha=0.5,k=3"]
    for row in d["laws"]:
        r = row["nodes_per_second"]
        for kern in ("reference", "frontier@1", "threshold@1", "floor@1", "best_first@1"):
            assert r[kern] > 0
        assert row["ratios"]["frontier_over_reference"] > 0
    assert d["big_tree"]["nodes"] == 2000 and d["big_tree"]["seconds"] > 0
    assert d["startup"] is None
    assert "frontier" in tables.bench(d)


def test_bench_rejects_bad_sizes(capsys):
    assert cli.main(["bench", "--P", "0", "--no-startup"]) == 2
    assert "pmax must be >= 1" in capsys.readouterr().err
    for kw, words in [({"replicates": 0}, "replicates must be >= 1"), ({"big_nodes": -1}, "big_nodes must be >= 0"),
                      ({"reference_nodes": 1.5}, "reference_nodes must be a whole number")]:
        with pytest.raises(BrwError, match=words):
            bench(["fixed:p=0.7/0.3"], **kw)


def test_benchmark_result_tidy_rows_and_checks():
    res = bench(["fixed:p=0.7/0.3"], pmax=200, replicates=2, reference_nodes=20, repeats=1, big_nodes=0,
                startup_runs=False)
    df = res.to_pandas()
    assert set(df["kernel"]) == {"reference", "frontier", "threshold", "floor", "best_first"}
    assert (df["nodes_per_second"] > 0).all() and set(df["law"]) == {"fixed:p=0.7/0.3"}
    d = res.to_dict()
    assert d["checks"] == res.checks() and d["targets"] == TARGETS
    assert any(what.endswith("frontier / reference, 1 thread") for what, *_ in d["checks"])
    json.dumps(d)


def test_synthetic_table_law_runs_in_the_frontier():
    law = SyntheticTable(rows=50, k=8, alpha=0.3)
    res = frontier(law, 200, replicates=2, seed=1)
    assert np.all(np.diff(res.accepted) > 0)
    assert 0 < law.mu < np.log(8)


def test_bench_default_laws_include_a_table_law():
    from brw.studies.bench import default_laws

    names = [str(x) for x in default_laws()]
    assert names[0] == "fixed:p=0.7/0.3" and names[1] == "dirichlet:alpha=0.5,k=8"
    assert names[2].startswith(("trace:", "synthetic-table:"))
