"""The theory check (brw.studies.theory_check), its CI slice: its table says what the theory says it must, it
is the sweep's table turned into checks, a rerun reuses the sweep's points, its figures draw, and
sims/verify_theory.py writes what it ran."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from brw import figures, tables, theory
from brw.errors import BrwError
from brw.studies import theory_check as tc

Z = 4.5  # standard errors allowed for a simulated mean


@pytest.fixture(scope="module")
def quick():
    return tc.theory_check(quick=True)


@pytest.mark.slow
def test_quick_rows_hold_the_theory(quick):
    d = quick.to_dict()
    assert d["P_max"] == 2**12 and d["seed"] == tc.SEED and d["replicates"] == tc.QUICK_REPLICATES
    assert [r["law"] for r in d["laws"]] == tc.QUICK
    for r in d["laws"]:
        if r["deterministic"]:  # identity 6 is an equality: the renewal bound is the exact value
            assert abs(r["renewal_bound_at_max"] - r["accepted_at_max"]) <= r["renewal_bound_width_at_max"] + 1e-9
        else:
            assert r["accepted_at_max"] <= r["renewal_bound_at_max"] + Z * r["accepted_se_at_max"]
            assert abs(r["slope"] - r["asymptotic_fit_slope"]) < Z * r["slope_se"] + 0.005
        assert r["renewal_bound_at_max"] <= r["wald_lorden_at_max"] <= r["paper_at_max"]
        assert r["paper_fails_at_P1"] and r["paper_holds_from_P"] is not None and r["paper_holds_from_P"] <= 3
    json.dumps(d)
    df = quick.to_pandas()
    assert list(df["law"]) == [r["law"] for r in d["laws"]] and "asymptotic_error_range_low" in df


@pytest.mark.slow
def test_the_check_is_the_sweeps_table_turned_into_checks(quick):
    df = quick.table
    assert set(df.kind) == {"frontier"} and df.P.max() == 2**12 and df.error.isna().all()
    assert df.P[df.law == tc.QUICK[0]].tolist() == tc.sweep_P(2**12)
    assert tc.sweep_P(2**12)[:64] == list(range(1, 65)) and {2**j for j in range(6, 13)} <= set(tc.sweep_P(2**12))
    for r in quick.laws:
        g = df[df.law == r["law"]].set_index("P")
        assert r["accepted_at_max"] == g.accepted[2**12] and r["slope"] == g.slope[2**12]
        m = quick.measured[r["law"]]
        assert (m.P == g.index).all() and r["replicates"] == (1 if r["deterministic"] else tc.QUICK_REPLICATES)
        fit = 2 ** np.arange(6, 13)
        assert r["renewal_minus_accepted"] == pytest.approx(theory.renewal_bound(r["law"], fit) - g.accepted[fit])
    again = tc.from_table(df)
    assert again.to_dict() == quick.to_dict()


@pytest.mark.slow
def test_a_rerun_reuses_the_sweeps_points(tmp_path):
    tiny = dict(laws=["uniform:k=4", "dirichlet:alpha=1,k=4"], P_max=256, replicates=4, out=tmp_path, workers=1)
    first = tc.theory_check(**tiny)
    assert first.table.attrs["sweep"]["computed"] == 2 and len(list((tmp_path / "points").iterdir())) == 2
    again = tc.theory_check(**tiny)
    assert again.table.attrs["sweep"]["computed"] == 0 and again.table.attrs["sweep"]["reused"] == 2
    assert again.to_dict() == first.to_dict() and [r["law"] for r in first.laws] == tiny["laws"]
    more = tc.theory_check(**tiny | {"laws": tiny["laws"] + ["gem:theta=2"]})
    assert more.table.attrs["sweep"]["computed"] == 1 and more.laws[:2] == first.laws


@pytest.mark.parametrize("kwargs, words", [
    (dict(P_max=100), "P_max must be 64 times a power of two"),
    (dict(P_max=64), "at least 128"),
    (dict(replicates=1), "at least 2"),
])
def test_mistakes_are_one_line(kwargs, words):
    with pytest.raises(BrwError, match=words):
        tc.theory_check(**{"laws": ["gem:theta=2"], "P_max": 128, "workers": 1} | kwargs)


@pytest.mark.slow
def test_quick_table_and_figures(quick, tmp_path):
    md = tables.theory_check(quick.to_dict())
    assert md.startswith("# Theory check") and md.count("\n| ") == len(tc.QUICK) + 1
    for draw in (figures.theory_bounds, figures.theory_residuals):
        path = tmp_path / f"{draw.__name__}.svg"
        assert draw(quick, path) == str(path) and path.stat().st_size > 0


@pytest.mark.slow
def test_sims_wrapper_writes_what_it_ran(quick, tmp_path, monkeypatch):
    path = Path(__file__).resolve().parents[1] / "sims" / "verify_theory.py"
    spec = importlib.util.spec_from_file_location("verify_theory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "theory_check", lambda **kw: quick)
    assert mod.main(["--quick", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "theory_check_quick.json").read_text()) == json.loads(json.dumps(quick.to_dict()))
    assert (tmp_path / "theory_check_quick.md").read_text().startswith("# Theory check")
