"""Real-tree results files (brw/real/realtree.py), without torch: the bundled results (brw/data/realtrees-smollm2.npz,
from sims/realtrees.py) belong to the bundled traces (same trace files by sha256, the seeded choice of positions,
accepted(1) equal to each position's recorded top-1 probability), and a damaged file is refused in one line."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from brw.errors import BrwError
from brw.real.realtree import (BUNDLED, RealTrees, load_realtrees, node_statistics, pick_rows, save_realtrees,
                          summarize)
from brw.traces import load_trace, resolve_trace


#: What each model's bundled P = 256 results must say of their model (name, weights' SHA-256, terms).
MODELS = {"smollm2": ("SmolLM2-135M-Instruct (Q4_1 GGUF", None, None),
          "gemma3": ("Gemma 3 270M base (Q4_K_M GGUF",
                     "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
                     "Gemma Terms of Use (https://ai.google.dev/gemma/terms)")}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bundled_results_match_bundled_traces(name):
    if not BUNDLED[name].is_file():
        pytest.skip(f"no bundled real-tree results {BUNDLED[name].name} yet (sims/realtrees.py --model {name})")
    res = load_realtrees(name)
    model, sha, terms = MODELS[name]
    assert res.meta["model"].startswith(model)
    if sha:
        assert res.meta["model_sha256"] == sha and res.meta["model_terms"] == terms
    assert res.pmax >= 256
    a = res.arrays
    for j, src in enumerate(res.meta["sources"]):
        sel = a["source"] == j
        n = int(sel.sum())
        assert n >= 128, f"{src['name']}: {n} contexts"
        path = resolve_trace(src["name"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == src["sha256"], (
            f"bundled trace {src['name']} changed since the real trees were expanded: rerun sims/realtrees.py")
        tr = load_trace(src["name"])
        rows = pick_rows(tr, n, res.meta["seed"])
        np.testing.assert_array_equal(np.sort(a["row"][sel]), rows)
        np.testing.assert_array_equal(a["context"][sel], tr.context[a["row"][sel]])
        np.testing.assert_array_equal(a["offset"][sel], tr.offset[a["row"][sel]])
        np.testing.assert_allclose(a["accepted"][sel][:, 0], np.exp(tr.top_logp[a["row"][sel], 0]), atol=1e-5)
    acc = res.accepted()
    assert np.all(np.diff(acc, axis=1) >= 0) and np.all(acc[:, -1] <= res.pmax)
    if name == "smollm2":
        assert np.all(np.isnan(a["entropy"])), "schema 1: the per-node statistics were not recorded"
    else:  # every node whose next-token distribution was computed has its statistics, and they are feasible
        known = np.isfinite(a["entropy"])
        assert known.mean() > 0.95 and np.array_equal(known, np.isfinite(a["moment2"]))
        h, m2, top = a["entropy"][known], a["moment2"][known], a["top1"][known]
        assert np.all(h >= -1e-5) and np.all(m2 >= h**2 - 1e-3) and np.all((top > 0) & (top <= 1 + 1e-6))
        assert np.all(h <= np.log(262144) + 1e-3)
    s = summarize(res)
    assert set(s["by_source"]) == {*res.sources, "all"}


def test_results_file_is_checked(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BrwError, match="not a readable"):
        load_realtrees(bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(BrwError, match="not a brw real-tree"):
        load_realtrees(tmp_path / "other.npz")
    with pytest.raises(BrwError, match="do not exist"):
        load_realtrees(tmp_path / "missing.npz")


def test_save_load_round_trip(tmp_path):
    meta = {"P": 3, "seed": 0, "sources": [{"name": "a"}, {"name": "b"}], "model": "m"}
    res = RealTrees.empty(meta, np.float32)
    for source, acc in [(0, [0.5, 0.7, 0.8]), (1, [0.9, 1.0, 1.05]), (1, [0.3, 0.5, 0.6])]:
        res = res.with_context({"source": source, "row": 7, "context": 1, "offset": 2, "trace_top1": acc[0],
                                "seconds": 0.1, "evaluated": 3, "passes": 2, "accepted": acc,
                                "parent": [-1, 0, 1], "depth": [1, 2, 3], "token": [5, 6, 7]})
    save_realtrees(res, tmp_path / "r.npz")
    back = load_realtrees(tmp_path / "r.npz")
    assert back.meta == meta and back.arrays["accepted"].dtype == np.float32 and back.sources == ["a", "b"]
    for key, a in res.arrays.items():
        np.testing.assert_array_equal(back.arrays[key], a)
        assert back.arrays[key].dtype == a.dtype, key
    np.testing.assert_allclose(back.accepted("b"), [[0.9, 1.0, 1.05], [0.3, 0.5, 0.6]], rtol=1e-7)
    assert np.all(np.isnan(back.arrays["top1"])), "statistics left out are NaN: not known"
    s = summarize(back, at=[1, 3])
    assert s["by_source"]["all"]["contexts"] == 3 and s["top1_max_abs_diff"] < 1e-7
    assert s["by_source"]["b"]["accepted"] == pytest.approx([0.6, 0.825])
    df = back.to_pandas(at=[1, 3])
    assert list(df["source"]) == ["a", "a", "b", "b", "all", "all"] and list(df["P"]) == [1, 3] * 3
    np.testing.assert_allclose(df["accepted"][2:4], s["by_source"]["b"]["accepted"], rtol=1e-12)
    np.testing.assert_allclose(df["stderr"][4:], s["by_source"]["all"]["stderr"], rtol=1e-12)
    assert np.isnan(df["stderr"][0]) and list(df["contexts"]) == [1, 1, 2, 2, 3, 3]
    per = back.to_pandas(per_context=True)
    assert len(per) == 9 and list(per["source"][:4]) == ["a", "a", "a", "b"]
    np.testing.assert_allclose(per["accepted"], back.accepted().ravel())
    assert back.to_dict()["arrays"]["token"] == res.arrays["token"].tolist()
    with pytest.raises(BrwError, match="at must hold P"):
        back.to_pandas(at=[4])
    with pytest.raises(BrwError, match="no source 'c'"):
        back.accepted("c")
    # a curve that decreases is refused
    arrays = dict(res.arrays, accepted=res.arrays["accepted"][:, ::-1].copy())
    save_realtrees(RealTrees(meta, arrays), tmp_path / "bad.npz")
    with pytest.raises(BrwError, match="row 0 is not a positive, finite, non-decreasing curve"):
        load_realtrees(tmp_path / "bad.npz")


def test_node_statistics_are_checked(tmp_path):
    meta = {"P": 2, "seed": 0, "sources": [{"name": "a"}], "model": "m"}
    row = {"source": 0, "row": 1, "context": 0, "offset": 1, "trace_top1": 0.5, "seconds": 0.1, "evaluated": 1,
           "passes": 2, "accepted": [0.5, 0.7], "parent": [-1, 0], "depth": [1, 2], "token": [5, 6],
           "entropy": [1.5, np.nan], "moment2": [3.0, np.nan], "top1": [0.4, np.nan]}
    save_realtrees(RealTrees.empty(meta).with_context(row), tmp_path / "ok.npz")
    np.testing.assert_array_equal(load_realtrees(tmp_path / "ok.npz").arrays["top1"], np.float32([[0.4, np.nan]]))
    for key, value in [("entropy", -0.5), ("top1", 1.5), ("moment2", -2.0)]:
        save_realtrees(RealTrees.empty(meta).with_context({**row, key: [value, np.nan]}), tmp_path / "bad.npz")
        with pytest.raises(BrwError, match=f"field '{key}' row 0 node 0"):
            load_realtrees(tmp_path / "bad.npz")


def test_node_statistics_on_a_hand_made_pair_of_trees():
    meta = {"P": 4, "seed": 0, "sources": [{"name": "a"}], "model": "m"}
    res = RealTrees.empty(meta)
    ents = ([1.0, 2.0, 3.0, 4.0], [5.0, 5.5, 5.0, np.nan])  # a chain, and a root's two children, one with a child
    parents = ([-1, 0, 1, 2], [-1, -1, 0, 1])
    for e, par in zip(ents, parents):
        res = res.with_context({"source": 0, "row": 1, "context": 0, "offset": 1, "trace_top1": 0.5, "seconds": 0.1,
                                "evaluated": 3, "passes": 2, "accepted": [0.5, 0.7, 0.8, 0.9], "parent": par,
                                "depth": [1, 2, 3, 4] if par[1] == 0 else [1, 1, 2, 2], "token": [5, 6, 7, 8],
                                "entropy": e, "moment2": np.square(e) + 1, "top1": [0.5] * 4})
    s = node_statistics(res)["a"]
    # pairs (parent, child): (1, 2), (2, 3), (3, 4) in the chain; (5, 5) and (5.5, nan: left out) in the other
    parent, child = np.array([1, 2, 3, 5.0]), np.array([2, 3, 4, 5.0])
    assert s["pairs"] == 4 and s["nodes"] == 7 and s["trees"] == 2
    assert s["parent_child_entropy_correlation"] == pytest.approx(np.corrcoef(parent, child)[0, 1], abs=1e-12)
    mean = np.array([2.5, 2.5, 2.5, 31 / 6])  # each tree's mean node entropy
    assert s["within_tree_correlation"] == pytest.approx(np.corrcoef(parent - mean, child - mean)[0, 1], abs=1e-12)
    every = np.array([1, 2, 3, 4, 5, 5.5, 5])
    means = np.array([2.5] * 4 + [31 / 6] * 3)
    assert s["between_tree_share"] == pytest.approx(means.var() / every.var(), abs=1e-12)
    assert s["mean_entropy"] == pytest.approx(every.mean()) and s["mean_moment2"] == pytest.approx((every**2 + 1).mean())
    assert s["entropy_by_depth"] == []  # fewer than 20 nodes at depth 1
    from brw.tables import node_statistics as table

    # edges (path probabilities 0.5, 0.2, 0.1, 0.1): the chain's -log 0.5, log 2.5, log 2, 0; the other tree's
    # -log 0.5, -log 0.2, log 5 (and a leaf without statistics)
    by = s["entropy_by_edge_surprisal"]
    assert [n for _, n in by] == [1, 0, 4, 2, 0, 0] and np.isnan(by[1][0])
    assert by[0][0] == pytest.approx(4) and by[2][0] == pytest.approx(2.75) and by[3][0] == pytest.approx(5.25)
    text = table(node_statistics(res)).splitlines()
    assert text[-1] == "a       [0, 0.05) 4.00, [0.05, 0.3) -, [0.3, 1) 2.75, [1, 2) 5.25, [2, 4) -, [4, inf) -"
    row = text[2].split()
    assert row[:3] == ["a", "2", "7"] and float(row[5]) == pytest.approx(s["parent_child_entropy_correlation"], abs=5e-4)


@pytest.mark.skipif(not BUNDLED["smollm2-p1024"].is_file(), reason="no bundled P = 1024 real trees")
def _near_tie_swap(deep_nodes, deep_p, base_nodes, base_p, atol=1e-5) -> bool:
    """Whether two trees' first 256 nodes differ only by nodes whose path probabilities tie the 256th node's
    within atol (float32 weights batched differently order such near-ties either way)."""
    a, b = set(deep_nodes), set(base_nodes)
    if len(a - b) > 2 or len(a - b) != len(b - a):
        return False
    edge = deep_p[255]
    return all(abs(deep_p[deep_nodes.index(n)] - edge) < atol for n in a - b) and all(
        abs(base_p[base_nodes.index(n)] - edge) < atol for n in b - a)


def test_deep_bundled_trees_extend_the_default_ones():
    """The P = 1024 trees are the first contexts (at least 96) per genre of the same seeded choice as the P = 256 ones
    (more of it in a genre that needed more trees), the first 256 nodes of those they share are those trees' nodes
    (but for a swap of near-tied nodes at the 256th place), and every node's statistics are recorded (all nodes are
    evaluated or are leaves)."""
    deep, base = load_realtrees("smollm2-p1024"), load_realtrees("smollm2")
    assert deep.pmax == 1024 and deep.meta["seed"] == base.meta["seed"] and deep.sources == base.sources
    for j, name in enumerate(deep.sources):
        sel = deep.arrays["source"] == j
        assert sel.sum() >= 96
        rows = pick_rows(load_trace(name), int(sel.sum()), deep.meta["seed"])
        np.testing.assert_array_equal(np.sort(deep.arrays["row"][sel]), rows)
        key = {r: i for i, r in enumerate(base.arrays["row"][base.arrays["source"] == j])}
        b = {k: base.arrays[k][base.arrays["source"] == j] for k in ("accepted", "token", "depth")}
        shared = [i for i, r in enumerate(deep.arrays["row"][sel]) if r in key]
        assert len(shared) == min(sel.sum(), len(key))  # the first contexts of the same choice
        for i in shared:
            r = deep.arrays["row"][sel][i]
            d = {k: deep.arrays[k][sel][i, :256] for k in ("accepted", "token", "depth")}
            # float32 weights: rounds batched differently differ by ~1e-6 per probability, ~1e-4 over 256 nodes
            np.testing.assert_allclose(d["accepted"], b["accepted"][key[r]], rtol=0, atol=3e-4)
            # the same nodes (ties in path probability aside: compare the sets of (token, depth))
            dn = list(zip(d["token"].tolist(), d["depth"].tolist()))
            bn = list(zip(b["token"][key[r]].tolist(), b["depth"][key[r]].tolist()))
            if sorted(dn) != sorted(bn):
                step = np.diff(deep.arrays["accepted"][sel][i].astype(np.float64), prepend=0.0)
                assert _near_tie_swap(dn, step, bn, np.diff(b["accepted"][key[r]].astype(np.float64), prepend=0.0)), (
                    f"{name} context {i}: the first 256 nodes differ beyond a near-tie at the boundary")
    e = deep.arrays["entropy"]
    assert np.mean(~np.isnan(e)) > 0.9 and np.all(~np.isnan(e[:, 0]))


def _population(seed=0, contexts=40, per=100):
    """A trace-like population of answer positions whose accepted(P) leans on the root's statistics."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    n = contexts * per
    top = np.sort(rng.dirichlet(np.full(8, 0.4), size=n), axis=1)[:, ::-1]
    ent = -(top * np.log(top + 1e-300)).sum(1)
    tr = SimpleNamespace(top_logp=np.log(top), entropy=ent, context=np.repeat(np.arange(contexts), per),
                         offset=np.tile(np.arange(per) + 5, contexts), prompt_lengths=np.full(contexts, 5))
    steps = np.cumsum(rng.gamma(8.0, 0.125, size=(n, 5)), axis=1)  # accepted(P) for P = 1..6 rises with top1
    acc = np.column_stack([top[:, 0], top[:, :1] + top[:, :1] * steps + 0.3 * rng.standard_normal((n, 5))])
    return tr, acc


@pytest.mark.slow
def test_root_adjusted_mean_is_unbiased_and_narrower():
    """Drawing 128 of 4000 positions 400 times (seed 0): the root-adjusted mean's error has mean within 3
    standard errors of 0, it spreads less than the plain mean's, its reported standard error matches its
    spread within 15%, and at P = 1 (the root's top probability) it is the folds' exact population mean."""
    from brw.real.realtree import root_adjusted_mean

    tr, acc = _population()
    truth = acc.mean(0)
    rng = np.random.default_rng(1)
    err_adj, err_raw, ses = [], [], []
    for _ in range(400):
        rows = np.sort(rng.choice(acc.shape[0], 128, replace=False))
        m, se = root_adjusted_mean(acc[rows], rows, tr, folds=4)
        fold = tr.context[rows] % 4
        at1 = sum((fold == j).mean() * np.exp(tr.top_logp[tr.context % 4 == j, 0]).mean() for j in range(4))
        assert m[0] == pytest.approx(at1, rel=1e-12) and se[0] == pytest.approx(0, abs=1e-12)
        err_adj.append(m[1:] - truth[1:])
        err_raw.append(acc[rows].mean(0)[1:] - truth[1:])
        ses.append(se[1:])
    err_adj, err_raw, ses = np.array(err_adj), np.array(err_raw), np.array(ses)
    spread = err_adj.std(0, ddof=1)
    assert np.all(np.abs(err_adj.mean(0)) < 3 * spread / np.sqrt(len(err_adj)))
    assert np.all(spread < 0.85 * err_raw.std(0, ddof=1))
    assert np.all(np.abs(ses.mean(0) / spread - 1) < 0.15)


def test_root_adjusted_mean_refuses_another_trace():
    from brw.real.realtree import root_adjusted_mean

    tr, acc = _population()
    rows = np.arange(0, 3900, 31)
    with pytest.raises(BrwError, match="do not match their trace rows"):
        root_adjusted_mean(acc[rows + 1], rows, tr)


def test_spine_statistics_follow_pop_order_and_the_recorded_text():
    """The spine's node at depth d is the first popped child of the one at d - 1 (best-first pops siblings in
    order of probability), and the text's entropy is the trace's d positions further along the same context."""
    from brw.real.realtree import spine_statistics, trace_name

    res = load_realtrees("gemma3")
    keep = np.flatnonzero(res.arrays["source"] == 0)[:20]
    sub = RealTrees(res.meta, {k: v[keep] for k, v in res.arrays.items()})
    got = spine_statistics(sub, depth=4)
    assert list(got) == [res.sources[0]]
    tr = load_trace(trace_name(res.meta["sources"][0]))
    spine, text = [[] for _ in range(4)], [[] for _ in range(4)]
    for i in range(keep.size):
        par, row = sub.arrays["parent"][i], sub.arrays["row"][i]
        node = -1
        for d in range(4):
            kids = np.flatnonzero(par == node)
            if kids.size == 0:
                break
            node = kids[0]
            spine[d].append(sub.arrays["entropy"][i][node])
            nxt = np.flatnonzero((tr.context == tr.context[row]) & (tr.offset == tr.offset[row] + d + 1))
            if nxt.size:
                text[d].append(tr.entropy[nxt[0]])
    s = got[res.sources[0]]
    assert s["trees"] == [len(x) for x in spine] and s["trees"][0] == keep.size
    np.testing.assert_allclose(s["spine_entropy"], [np.mean(x) for x in spine], rtol=1e-6)
    np.testing.assert_allclose(s["text_entropy"], [np.mean(x) for x in text], rtol=1e-12)
    from brw import tables

    text = tables.spine_statistics(got)
    assert text.count("\n") == 5 and f"{s['spine_entropy'][0]:.2f}" in text.splitlines()[2]


def _greedy_population(seed=0, contexts=5, per=30, depth=3):
    """A small trace with contexts of recorded text and, from every position where the text left its top token,
    a greedy branch of ``depth`` steps (a few cut short), in the layout record_branches writes."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    n = contexts * per
    ctx, off = np.repeat(np.arange(contexts), per), np.tile(np.arange(per) + 3, contexts)
    perm = rng.permutation(n)  # recorders interleave contexts: rows in no particular order
    top_ids = np.tile(np.arange(4), (n, 1))
    taken = np.where(rng.random(n) < 0.6, 0, 1 + rng.integers(0, 3, n))
    logp = np.log(np.sort(rng.dirichlet(np.ones(4), n), axis=1)[:, ::-1])
    tr = SimpleNamespace(context=ctx[perm], offset=off[perm], taken=taken[perm], top_ids=top_ids,
                         top_logp=logp[perm], entropy=rng.random(n) * 3)
    departs = [(c, o) for c, o, t in zip(tr.context, tr.offset, tr.taken) if t != 0]
    bctx, boff, src, start = [], [], [], []
    for b, (c, o) in enumerate(departs):
        src.append(int(c))
        start.append(int(o))
        for s in range(1, depth + 1 - (b % 5 == 0)):  # every fifth branch one step short
            bctx.append(b)
            boff.append(o + s)
    m = len(bctx)
    g = SimpleNamespace(context=np.array(bctx), offset=np.array(boff), contexts=len(departs),
                        top_logp=np.log(np.sort(rng.dirichlet(np.ones(4), m), axis=1)[:, ::-1]),
                        entropy=rng.random(m) * 3,
                        meta={"mode": "greedy-branches", "branch_source_context": src, "branch_offset": start})
    return tr, g


def test_greedy_continuation_follows_the_text_then_its_branch():
    """Against a plain walk: from each row, the text while it took its top token, then the branch from the first
    row where it did not, step by step; NaN past a text's end or a branch's last step."""
    from brw.real.realtree import greedy_continuation, greedy_covariates

    tr, g = _greedy_population()
    depth = 6
    top1, ent = greedy_continuation(tr, g, depth)
    text = {(int(c), int(o)): r for r, (c, o) in enumerate(zip(tr.context, tr.offset))}
    branch = {}
    for i, (b, o) in enumerate(zip(g.context, g.offset)):
        branch[(int(b), int(o) - g.meta["branch_offset"][b])] = i
    leaves = {(c, o): b for b, (c, o) in enumerate(zip(g.meta["branch_source_context"], g.meta["branch_offset"]))}
    for r in range(tr.context.size):
        want_t, want_h = [np.exp(tr.top_logp[r, 0])], [tr.entropy[r]]
        c, o, b, s = int(tr.context[r]), int(tr.offset[r]), None, 0
        while len(want_t) <= depth:
            if b is None and tr.taken[text[(c, o)]] == 0 and (c, o + 1) in text:
                o += 1
                want_t.append(np.exp(tr.top_logp[text[(c, o)], 0]))
                want_h.append(tr.entropy[text[(c, o)]])
                continue
            if b is None:
                if tr.taken[text[(c, o)]] == 0:
                    break  # the text ends on a top token: nothing recorded beyond
                b = leaves[(c, o)]
            s += 1
            if (b, s) not in branch:
                break
            want_t.append(np.exp(g.top_logp[branch[(b, s)], 0]))
            want_h.append(g.entropy[branch[(b, s)]])
        k = len(want_t)
        np.testing.assert_allclose(top1[r, :k], want_t, rtol=1e-12)
        np.testing.assert_allclose(ent[r, :k], want_h, rtol=1e-12)
        assert np.all(np.isnan(top1[r, k:])) and np.all(np.isnan(ent[r, k:]))
    cov = greedy_covariates(tr, g, depth)
    path = np.cumprod(np.nan_to_num(top1[:, :-1]), axis=1).sum(1)
    np.testing.assert_allclose(cov[:, 0], path, rtol=1e-12)
    known = ~np.isnan(ent[:, 1:]).all(1)
    np.testing.assert_allclose(cov[known, 1], np.nanmean(ent[known, 1:], axis=1), rtol=1e-12)
    np.testing.assert_allclose(cov[~known, 1], ent[~known, 0], rtol=1e-12)
    with pytest.raises(BrwError, match="greedy branches"):
        greedy_continuation(tr, _replaced(g, meta={"mode": "sampled"}), depth)


def _replaced(ns, **changes):
    from types import SimpleNamespace

    return SimpleNamespace(**{**vars(ns), **changes})


@pytest.mark.slow
def test_greedy_adjusted_mean_is_unbiased_and_its_error_right():
    """With covariates of every position beyond the root's (as the greedy continuation's are), drawing 800 of
    2000 positions 400 times (seed 2): the adjusted mean's error has mean within 3 standard errors of 0, it
    spreads less than the root-only adjustment's, and its reported standard error, with the finite-population
    correction (here 0.78 of the uncorrected), matches its spread within 10%."""
    from brw.real.realtree import root_adjusted_mean

    tr, acc = _population(seed=2, contexts=20, per=100)
    rng = np.random.default_rng(3)
    n = acc.shape[0]
    chain = rng.gamma(2.0, 1.0, n)  # a per-position covariate the real curve leans on beyond the root
    extra = np.column_stack([chain, np.sqrt(chain)])
    acc = acc + np.outer(chain, np.linspace(0.2, 2.0, acc.shape[1])) * (np.arange(acc.shape[1]) > 0)
    truth = acc.mean(0)
    err, err_root, ses = [], [], []
    for _ in range(400):
        rows = np.sort(rng.choice(n, 800, replace=False))
        m, se = root_adjusted_mean(acc[rows], rows, tr, folds=4, extra=extra)
        err.append(m[1:] - truth[1:])
        ses.append(se[1:])
        err_root.append(root_adjusted_mean(acc[rows], rows, tr, folds=4)[0][1:] - truth[1:])
    err, err_root, ses = np.array(err), np.array(err_root), np.array(ses)
    spread = err.std(0, ddof=1)
    assert np.all(np.abs(err.mean(0)) < 3 * spread / np.sqrt(len(err)))
    assert np.all(spread < 0.7 * err_root.std(0, ddof=1))
    assert np.all(np.abs(ses.mean(0) / spread - 1) < 0.10)
    with pytest.raises(BrwError, match="one finite row per trace row"):
        root_adjusted_mean(acc[:10], np.arange(10), tr, extra=extra[:-1])


@pytest.mark.slow
def test_greedy_adjusted_mean_on_a_recorded_trace():
    """On Gemma 3's math trace and its greedy branches, with outcomes known at every answer position that lean
    on the covariates without being linear in them (the greedy chain's path probability after 8 tokens, what
    its first 4 accept, its entropy 8 steps on): drawing 256 positions 300 times (seed 4), the adjusted mean's
    error has mean within 3 standard errors of 0 and its reported standard error matches its spread within 15%
    (heavy-tailed outcomes, as real trees are)."""
    from brw.real.realtree import greedy_continuation, greedy_covariates, root_adjusted_mean

    tr, g = load_trace("gemma3-math"), load_trace("gemma3-math-greedy")
    extra = greedy_covariates(tr, g)
    top1, ent = greedy_continuation(tr, g, 8)
    top = np.nan_to_num(top1)
    y = np.column_stack([top[:, 0], np.prod(top, 1), np.cumprod(top[:, :4], 1).sum(1), np.nan_to_num(ent[:, 8])])
    answer = np.flatnonzero(tr.offset >= tr.prompt_lengths[tr.context])
    fold = tr.context % 4
    rng = np.random.default_rng(4)
    err, ses = [], []
    for _ in range(300):
        rows = np.sort(rng.choice(answer, 256, replace=False))
        m, se = root_adjusted_mean(y[rows], rows, tr, folds=4, extra=extra)
        share = np.bincount(fold[rows], minlength=4) / rows.size
        truth = sum(share[j] * y[answer[fold[answer] == j]].mean(0) for j in range(4))
        err.append(m[1:] - truth[1:])
        ses.append(se[1:])
    err, ses = np.array(err), np.array(ses)
    spread = err.std(0, ddof=1)
    assert np.all(np.abs(err.mean(0)) < 3 * spread / np.sqrt(len(err)))
    assert np.all(np.abs(ses.mean(0) / spread - 1) < 0.15), ses.mean(0) / spread
