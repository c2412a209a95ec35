"""brw bench runs end to end on tiny sizes and says what it measured (no timing is asserted: speed is the
benchmark's business, never a unit test's)."""

import json

import numpy as np

from brw import cli, tables
from brw.bench import SyntheticTable, bench
from brw.frontier import frontier


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
    assert "--P must be >= 1" in capsys.readouterr().err


def test_synthetic_table_law_runs_in_the_frontier():
    law = SyntheticTable(rows=50, k=8, alpha=0.3)
    res = frontier(law, 200, replicates=2, seed=1)
    assert np.all(np.diff(res.accepted) > 0)
    assert 0 < law.mu < np.log(8)


def test_bench_default_laws_include_a_table_law():
    from brw.bench import default_laws

    names = [str(x) for x in default_laws()]
    assert names[0] == "fixed:p=0.7/0.3" and names[1] == "dirichlet:alpha=0.5,k=8"
    assert names[2].startswith(("trace:", "synthetic-table:"))
