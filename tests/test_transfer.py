"""brw.studies.transfer: every law fitted to another genre's trace scored on a genre's real trees, and the
predictors built from the target's own trace; each number is the simulation it names (replayed alone from its
spawned seed), every error the prediction against the adjusted real mean with its interval."""

import numpy as np
import pytest

from brw import frontier
from brw.studies.compare import fit_laws, relative_errors, simulate, spawn_seed
from brw.studies.transfer import OWN_TRACE, transfer


@pytest.fixture(scope="module")
def small():
    return transfer(("gemma3",), replicates=4, seed=3, folds=2)


@pytest.mark.slow
def test_every_number_is_the_simulation_it_names(small):
    from brw.real.realtree import load_realtrees

    d = small.to_dict()
    assert small.sources == ["gemma3-code", "gemma3-math", "gemma3-chat"]
    trees = load_realtrees("gemma3")
    for j, (t, x) in enumerate(d["targets"].items()):
        idx = np.array(x["P"]) - 1
        assert x["P"] == [1, 4, 16, 64, 256] and set(x["laws"]) == set(small.sources) - {t}
        i = small.sources.index("gemma3-chat" if t != "gemma3-chat" else "gemma3-code")
        s = small.sources[i]
        law = fit_laws(s, folds=1)[None]["prefix"]
        r = frontier(law, 256, 4, spawn_seed(3, 0, i, 7))  # prefix is the eighth simulator
        got = x["laws"][s]["prefix"]
        assert got["accepted"] == pytest.approx(r.accepted[idx].tolist(), rel=1e-12)
        want = relative_errors(r.accepted[idx], r.stderr[idx], np.array(x["real_adjusted"]),
                               np.array(x["real_adjusted_stderr"]))
        assert got["relative_error_low"] == pytest.approx(want["relative_error_low"], rel=1e-12)
        # the own-trace predictors are compare's, fold by fold
        sel = trees.arrays["source"] == j
        own, _, _ = simulate(fit_laws(t, folds=2), trees.arrays["context"][sel], 256, 4, 3, j, 2, models=OWN_TRACE)
        for m in OWN_TRACE:
            assert x["own"][m]["accepted"] == pytest.approx(own[m][0][idx].tolist(), rel=1e-12)
        # transfer from s: the target's own text-only prefix times s's prefix with branches over without
        ratio = np.array(x["laws"][s]["prefix"]["accepted"]) / np.array(x["laws"][s]["prefix_text"]["accepted"])
        assert x["transfer"][s]["accepted"] == pytest.approx(
            (np.array(x["own"]["prefix_text"]["accepted"]) * ratio).tolist(), rel=1e-12)
        rel = np.sqrt(sum((np.array(e["stderr"]) / np.array(e["accepted"])) ** 2
                          for e in (x["own"]["prefix_text"], x["laws"][s]["prefix"], x["laws"][s]["prefix_text"])))
        assert x["transfer"][s]["stderr"] == pytest.approx((np.array(x["transfer"][s]["accepted"]) * rel).tolist())
        w = x["worst"][f"transfer:{s}"]
        assert w["max_abs_error"] == pytest.approx(max(abs(e) for e in x["transfer"][s]["relative_error"]))
    assert len(small.to_pandas()) == sum(len(x["P"]) * (len(x["laws"]) * 9 + 2 + len(x["transfer"]))
                                         for x in d["targets"].values())


@pytest.mark.slow
def test_table_names_every_source(small):
    from brw import tables

    text = tables.transfer(small.to_dict())
    assert all(s in text for s in small.sources) and "transfer from gemma3-math" in text
