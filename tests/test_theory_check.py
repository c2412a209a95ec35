"""The theory check (brw.studies.theory_check), its CI slice: its table says what the theory says it must, its
figures draw, and sims/verify_theory.py writes what it ran."""

import importlib.util
import json
from pathlib import Path

import pytest

from brw import figures, tables
from brw.studies import theory_check as tc

Z = 4.5  # standard errors allowed for a simulated mean


@pytest.fixture(scope="module")
def quick():
    return tc.theory_check(quick=True)


def test_quick_rows_hold_the_theory(quick):
    d = quick.to_dict()
    assert d["P_max"] == 2**12 and d["seed"] == tc.SEED
    assert [r["law"] for r in d["laws"]] == [spec for spec, _ in tc.QUICK]
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


def test_quick_table_and_figures(quick, tmp_path):
    md = tables.theory_check(quick.to_dict())
    assert md.startswith("# Theory check") and md.count("\n| ") == len(tc.QUICK) + 1
    for draw in (figures.theory_bounds, figures.theory_residuals):
        path = tmp_path / f"{draw.__name__}.svg"
        assert draw(quick, path) == str(path) and path.stat().st_size > 0


def test_sims_wrapper_writes_what_it_ran(quick, tmp_path, monkeypatch):
    path = Path(__file__).resolve().parents[1] / "sims" / "verify_theory.py"
    spec = importlib.util.spec_from_file_location("verify_theory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "theory_check", lambda **kw: quick)
    assert mod.main(["--quick", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "theory_check_quick.json").read_text()) == json.loads(json.dumps(quick.to_dict()))
    assert (tmp_path / "theory_check_quick.md").read_text().startswith("# Theory check")
