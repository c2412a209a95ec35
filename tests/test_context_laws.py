"""Held-out fitting and the laws with context structure (``ctx:``, ``path:``, ``edge:``, ``run:``, ``prefix:``).

Specs print back, parse back and pickle as their specs; ``holdout=j/K`` really removes fold j's rows and the
fitted numbers move with it; the kernels draw rows as the laws say (a tree keeps its root's context; a path
follows the recorded text); a ``ctx:`` tree is a mixture of single-context trees (simulated both ways, within
standard errors) and its theory, the mixture of the contexts' renewal predictions, follows the simulation.
The kernels' walks on these laws are checked against the reference in ``test_reference_paths.py``.
"""

import pickle

import numpy as np
import pytest

from brw import frontier, parse_law, theory
from brw import _kernels as K
from brw.laws.context import ContextTrace, PathTrace, recorded_contexts
from brw.errors import BrwError
from brw.laws.fitted import MarkovTrace, fit_gemmix
from brw.kernel_law import kernel_args
from brw.laws.trace import TraceLaw
from brw.traces import load_trace, make_trace, save_trace

SPECS = ["trace:chat,holdout=1/4", "markov:trace=code,regimes=4,holdout=3/5", "ctx:trace=chat",
         "ctx:trace=math,holdout=0/4", "ctx:trace=chat,context=7", "ctx:trace=code,holdout=2/4,context=7",
         "path:trace=chat", "path:trace=code,holdout=1/2", "edge:trace=math", "edge:trace=chat,holdout=2/4",
         "edge:trace=code,regimes=4,holdout=1/3", "run:trace=code,cap=8", "run:trace=chat,cap=3,holdout=1/4",
         "run:trace=code,greedy=code-greedy,cap=8", "prefix:trace=chat,cap=8",
         "prefix:trace=code,greedy=code-greedy,cap=4,holdout=1/4"]


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_specs_print_parse_and_pickle_back(spec):
    law = parse_law(spec)
    assert str(law) == spec and parse_law(str(law)) == law and hash(parse_law(spec)) == hash(law)
    assert pickle.loads(pickle.dumps(law)) == law
    assert pickle.dumps(law).count(b"top_logp") == 0  # the spec crosses, not the arrays


def test_specs_print_back_in_canonical_form():
    assert str(parse_law("ctx:holdout=01/4,trace=chat")) == "ctx:trace=chat,holdout=1/4"
    assert str(parse_law("ctx:context=7,trace=chat")) == "ctx:trace=chat,context=7"
    assert str(parse_law("markov:holdout=1/4,regimes=2,trace=chat")) == "markov:trace=chat,regimes=2,holdout=1/4"
    assert str(parse_law("path: trace=chat , holdout=1/4")) == "path:trace=chat,holdout=1/4"
    assert str(TraceLaw("chat")) == "trace:chat" and str(MarkovTrace("chat", 2)) == "markov:trace=chat,regimes=2"
    assert parse_law("ctx:trace=chat,holdout=1/4") != parse_law("ctx:trace=chat,holdout=2/4")
    assert parse_law("ctx:trace=chat") != parse_law("path:trace=chat")
    assert str(parse_law("edge:holdout=1/4,regimes=3,trace=chat")) == "edge:trace=chat,regimes=3,holdout=1/4"
    assert parse_law("edge:trace=chat") != parse_law("edge:trace=chat,regimes=2")
    assert str(parse_law("run:holdout=1/4,trace=chat")) == "run:trace=chat,cap=8,holdout=1/4"
    assert parse_law("run:trace=chat") != parse_law("run:trace=chat,cap=4")


@pytest.mark.parametrize("spec, words", [
    ("trace:chat,holdout=4/4", "holdout"), ("trace:chat,holdout=1", "holdout"), ("trace:chat,holdout=a/4", "holdout"),
    ("markov:trace=chat,regimes=2,holdout=1/1", "holdout"), ("ctx:trace=chat,holdout=-1/4", "holdout"),
    ("path:trace=chat,holdout=1/4,holdout=2/4", "given twice"), ("ctx:trace=chat,regimes=2", "regimes"),
    ("path:trace=chat,context=1", "context"), ("ctx:trace=chat,context=x", "context"),
    ("ctx:trace=chat,context=40", "context=40"), ("ctx:trace=chat,holdout=1/4,context=5", "holdout=1/4"),
    ("ctx:holdout=1/4", "missing trace"), ("path:trace=nowhere.npz", "nowhere.npz"),
    ("edge:trace=chat,regimes=0", "regimes=0"), ("edge:trace=chat,context=1", "context"),
    ("edge:trace=chat,regimes=99999", "regimes=99999 is more than"), ("run:trace=chat,cap=0", "cap"),
    ("run:trace=chat,regimes=2", "regimes"), ("run:trace=chat,cap=1.5", "cap"),
    ("run:trace=chat,greedy=code-greedy", "branches from another trace"),
    ("prefix:trace=code,greedy=chat", "not a trace of greedy branches"),
    ("prefix:trace=code,greedy=nowhere.npz", "nowhere.npz"), ("prefix:trace=code,greedy=", "key=value"),
    ("trace:chat,holdout=1/99999999999999999999", "at most folds=40"),
    ("ctx:trace=chat,context=99999999999999999999", "context=99999999999999999999"),
])
def test_bad_specs_are_one_line_naming_the_field(spec, words):
    with pytest.raises(BrwError, match=words) as e:
        parse_law(spec)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [(4, 4), (1, 1), (1.0, 4), (True, 4), [1, 4], "1/4", (1, 4, 2)])
def test_bad_holdout_arguments_are_refused_by_name(bad):
    for make in (lambda: TraceLaw("chat", bad), lambda: MarkovTrace("chat", 2, bad),
                 lambda: ContextTrace("chat", bad), lambda: PathTrace("chat", bad)):
        with pytest.raises(BrwError, match="holdout"):
            make()


# ---------------------------------------------------------------------------------------------------------
# Folds.


def test_without_fold_removes_exactly_that_folds_contexts(tmp_path):
    trace = load_trace("math")
    seen = np.zeros(trace.positions, dtype=int)
    key = trace.context.astype(np.int64) * 10**6 + trace.offset
    for j in range(4):
        held = trace.without_fold(j, 4)
        assert set(np.unique(held.context % 4)) == {0, 1, 2, 3} - {j}
        kept = np.isin(key, held.context.astype(np.int64) * 10**6 + held.offset)
        assert np.array_equal(kept, trace.context % 4 != j)  # whole contexts, never positions of one
        np.testing.assert_array_equal(held.entropy, trace.entropy[kept])
        np.testing.assert_array_equal(held.top_logp, trace.top_logp[kept])
        assert held.contexts == trace.contexts and held.meta["holdout"] == [f"{j}/4"] and held.path is None
        seen += ~kept
        back = load_trace(save_trace(held, tmp_path / f"held{j}.npz"))  # a valid trace, context ids kept
        np.testing.assert_array_equal(back.context, held.context)
    assert np.all(seen == 1)  # every row is held out by exactly one fold
    assert trace.without_fold(1, 4).without_fold(0, 2).meta["holdout"] == ["1/4", "0/2"]


def test_without_fold_refuses_bad_folds():
    trace = load_trace("chat")
    for fold, folds, words in [(4, 4, "fold must lie in 0..3"), (0, 1, "folds must be"), (-1, 4, "fold must be"),
                               (1.0, 4, "fold must be"), (1, 41, "at most folds=40"), (1, 10**20, "at most folds=40")]:
        with pytest.raises(BrwError, match=words):
            trace.without_fold(fold, folds)
    odd = trace.without_fold(0, 2)  # only the contexts of fold 1 of 2 are left
    with pytest.raises(BrwError, match="fold 1 of 2 holds every row"):
        odd.without_fold(1, 2)


def test_holdout_laws_are_fitted_without_the_fold():
    trace = load_trace("chat")
    held = trace.without_fold(1, 4)
    law = parse_law("trace:chat,holdout=1/4")
    assert law.rows == held.positions < trace.positions
    assert law.mu == pytest.approx(held.mu, rel=1e-9) and law.mu != pytest.approx(trace.mu, rel=1e-4)
    markov, full = parse_law("markov:trace=chat,regimes=4,holdout=1/4"), parse_law("markov:trace=chat,regimes=4")
    assert markov.base == law and not np.allclose(markov.transitions, full.transitions)
    assert markov.row_regime.size == held.positions
    assert fit_gemmix(held) != fit_gemmix(trace)
    for spec in ("ctx:trace=chat,holdout=1/4", "path:trace=chat,holdout=1/4"):
        c = parse_law(spec)
        assert c.rows == held.positions and set(c.contexts % 4) == {0, 2, 3}
        assert c.mu == pytest.approx(held.mu, rel=1e-9)
    # No simulated root (hence, for ctx, no node) ever draws a row of the held-out contexts.
    c = parse_law("ctx:trace=chat,holdout=1/4")
    args = kernel_args(c, 50.0)
    ctx_of_row = np.repeat(c.contexts, np.diff(c._offsets))
    keys = np.random.SeedSequence(3).generate_state(2000, np.uint64)
    rows = np.array([K.table_row(args.table, args.params, k, -1, 0.0) for k in keys])
    assert np.all(ctx_of_row[rows] % 4 != 1)


# ---------------------------------------------------------------------------------------------------------
# The laws' rows and their draws in the kernels.


def test_rows_are_sorted_along_the_recorded_texts():
    """Recorders interleave contexts, so the laws sort: context, then offset; follows marks the next position."""
    trace = load_trace("chat")
    c0 = trace.context.astype(np.int64)
    assert np.any(np.diff(c0) < 0)  # the recorded order is not the texts' order
    order, contexts, offsets, follows = recorded_contexts(trace)
    c, o = c0[order], trace.offset.astype(np.int64)[order]
    assert np.all(np.diff(c) >= 0) and np.all((np.diff(o) > 0) | (np.diff(c) > 0))
    assert np.array_equal(contexts, np.unique(c0)) and offsets[0] == 0 and offsets[-1] == trace.positions
    for i, ctx in enumerate(contexts):
        assert np.all(c[offsets[i]:offsets[i + 1]] == ctx)
    assert np.array_equal(follows[:-1], (c[1:] == c[:-1]) & (o[1:] == o[:-1] + 1)) and not follows[-1]


def test_ctx_and_path_share_the_trace_laws_one_node_quantities():
    base = parse_law("trace:code")
    for spec in ("ctx:trace=code", "path:trace=code"):
        law = parse_law(spec)
        assert law.mu == pytest.approx(base.mu, rel=1e-12) and law.mu2 == pytest.approx(base.mu2, rel=1e-12)
        np.testing.assert_allclose(law.psi(np.array([0.5, 1.0, 2.0])), base.psi(np.array([0.5, 1.0, 2.0])),
                                   rtol=1e-12, atol=1e-12)
    law = parse_law("ctx:trace=code")
    trace = base.trace
    rows = np.bincount(trace.context)
    np.testing.assert_allclose(law.weights, rows[law.contexts] / rows.sum(), rtol=1e-15)
    one = parse_law("ctx:trace=code,context=5")
    assert one.rows == rows[5] and one.mu == pytest.approx(trace.entropy[trace.context == 5].mean(), rel=1e-6)
    assert [str(x) for x in law.context_laws()[:2]] == ["ctx:trace=code,context=0", "ctx:trace=code,context=1"]


def _bounds(law):
    """The context of each sorted row and each context's (first, end) rows."""
    ctx = np.repeat(np.arange(law.contexts.size), np.diff(law._offsets))
    return ctx, law._offsets[ctx], law._offsets[ctx + 1]


def test_kernel_rows_of_a_ctx_tree_stay_in_the_roots_context():
    """Random walks down ctx trees: every row drawn lies in the root's context, and within a context the rows
    are uniform (chi-square-like check on a 16-row context)."""
    law = parse_law("ctx:trace=chat")
    args = kernel_args(law, 50.0)
    ctx, lo, hi = _bounds(law)
    rng = np.random.default_rng(1)
    hits = np.zeros(law.rows)
    for key in np.random.SeedSequence(2).generate_state(400, np.uint64):
        row = K.table_row(args.table, args.params, key, -1, 0.0)
        for _ in range(8):
            key = np.uint64(K.child_key(np.uint64(key), int(rng.integers(0, 4))))
            child = K.table_row(args.table, args.params, key, row, 0.0)
            assert lo[row] <= child < hi[row]
            hits[child] += 1
            row = child
    small = int(np.argmin(np.diff(law._offsets)))
    keys = np.random.SeedSequence(4).generate_state(16000, np.uint64)
    r0 = law._offsets[small]
    draws = np.array([K.table_row(args.table, args.params, k, r0, 0.0) for k in keys]) - r0
    n = law._offsets[small + 1] - r0
    counts = np.bincount(draws, minlength=n)
    assert counts.size == n and np.all(np.abs(counts - keys.size / n) < 4.5 * np.sqrt(keys.size / n))


def test_kernel_rows_of_a_path_follow_the_recorded_text():
    """Every parent row r: its children take r + 1 where the text goes on, else rows of r's own context."""
    law = parse_law("path:trace=math")
    args = kernel_args(law, 50.0)
    ctx, lo, hi = _bounds(law)
    keys = np.random.SeedSequence(5).generate_state(law.rows, np.uint64)
    ends = 0
    for r, key in enumerate(keys):
        child = K.table_row(args.table, args.params, key, r, 0.0)
        if law._follows[r]:
            assert child == r + 1
        else:
            ends += 1
            assert lo[r] <= child < hi[r]
    assert ends == law.contexts.size  # the bundled texts have no gaps: one end per context


@pytest.mark.parametrize("spec", ["edge:trace=code", "edge:trace=chat,regimes=3"])
def test_kernel_rows_of_an_edge_law_follow_the_edge_into_the_node(spec):
    """A child reached by an edge of surprisal s draws its row among the rows recorded just after a token of s's
    bin, following a row of its parent's group (its context, or its entropy regime), when there are any; and
    the law's table holds the trace's rows."""
    from brw.laws.fitted import regime_of_rows

    law = parse_law(spec)
    args = kernel_args(law, 50.0)
    base = parse_law(f"trace:{law.trace_source}")
    order, contexts, offsets, follows = recorded_contexts(base.trace)
    assert np.array_equal(np.sort(law._table, axis=0), np.sort(base._table[order], axis=0))
    # each sorted row's (group it belongs to, bin of the token before it), from the trace directly
    taken = -base.trace.taken_logp[order]
    bins = np.full(taken.size, len(law.bins) - 1)
    bins[1:][follows[:-1]] = np.searchsorted(law.bins[1:-1], taken[:-1][follows[:-1]], side="right")
    ctx = np.repeat(np.arange(contexts.size), np.diff(offsets))
    if law.regimes is None:
        member = ctx
    else:
        own = regime_of_rows(base.trace.entropy[order], law.regimes)
        member = np.zeros(taken.size, dtype=np.int64)
        member[1:][follows[:-1]] = own[:-1][follows[:-1]]
    rows = {(g, b): set() for g in range(law.groups) for b in range(len(law.bins))}
    # the law's rows are a permutation of the sorted trace rows: find each law row's (group, bin) by content
    key = {base._table[order][i].tobytes() + base._tails[order][i].tobytes(): (member[i], bins[i])
           for i in range(taken.size)}
    where = [key[law._table[r].tobytes() + law._tails[r].tobytes()] for r in range(law.rows)]
    for r, gb in enumerate(where):
        rows[gb].add(r)
    keys = np.random.SeedSequence(7).generate_state(3000, np.uint64)
    rng = np.random.default_rng(8)
    fallbacks = 0
    for key in keys:
        prow = int(rng.integers(0, law.rows))
        edge = float(rng.choice([0.01, 0.2, 0.6, 1.5, 3.0, 7.0]))
        child = K.table_row(args.table, args.params, key, prow, edge)
        g = int(law._groups[prow])
        b = int(np.searchsorted(law.bins[1:-1], edge, side="right"))
        if rows[(g, b)]:
            assert child in rows[(g, b)]
        else:
            fallbacks += 1
            assert where[child][0] == g
    assert fallbacks < len(keys) // 4


# ---------------------------------------------------------------------------------------------------------
# A ctx tree is a mixture of single-context trees: simulation and theory.


@pytest.mark.slow
def test_ctx_accepted_is_the_row_weighted_mixture_of_its_contexts():
    """accepted(P) of ctx:trace=chat against sum_c w_c accepted(P) of each context simulated alone (other
    seeds: independent runs), within 4 standard errors of the difference, at P = 1, 8 and 64. The pooled
    trace:chat law is more than 5 standard errors below at P = 64 (about 10 expected: Jensen)."""
    P = [1, 8, 64]
    law = parse_law("ctx:trace=chat")
    mix, var = np.zeros(3), np.zeros(3)
    for w, one in zip(law.weights, law.context_laws()):
        r = frontier(one, 64, replicates=200, seed=11)
        mix += w * r.accepted[np.array(P) - 1]
        var += (w * r.stderr[np.array(P) - 1]) ** 2
    r = frontier(law, 64, replicates=4000, seed=12)
    a, se = r.accepted[np.array(P) - 1], r.stderr[np.array(P) - 1]
    assert np.all(np.abs(a - mix) < 4 * np.sqrt(se**2 + var)), (a, mix)
    pooled = frontier("trace:chat", 64, replicates=3000, seed=12)
    assert mix[2] - pooled.accepted[63] > 5 * np.sqrt(var[2] + pooled.stderr[63] ** 2)


@pytest.mark.slow
def test_context_mixture_theory_follows_the_simulation():
    """theory.context_mixture (each context's renewal prediction, mixed) within 3% of the ctx simulation at P =
    16..256 for code, whose contexts run from mu = 0.38 to 3.6 nats; it exceeds the pooled law's renewal
    prediction, and a one-context law's mixture is that context's renewal prediction."""
    P = np.array([16, 64, 256])
    law = parse_law("ctx:trace=code")
    pred = theory.context_mixture(law, P, points=2**14)
    r = frontier(law, 256, replicates=4000, seed=3)
    sim, se = r.accepted[P - 1], r.stderr[P - 1]
    assert np.all(np.abs(pred - sim) < 0.03 * sim + 3 * se), (pred, sim)
    assert np.all(pred > theory.renewal_bound("trace:code", P, points=2**14) * 1.1)
    one = parse_law("ctx:trace=code,context=3")
    np.testing.assert_allclose(theory.context_mixture(one, P, points=2**14),
                               theory.renewal_bound(one, P, points=2**14), rtol=1e-12)
    asym = theory.context_mixture(law, P, prediction="asymptotic")
    assert np.all(np.abs(asym - pred) < 0.05 * pred)
    with pytest.raises(BrwError, match="ctx: law"):
        theory.context_mixture("trace:code", P)
    with pytest.raises(BrwError, match="prediction"):
        theory.context_mixture(law, P, prediction="sharp")


@pytest.mark.slow
def test_bounds_report_the_context_mixture_for_ctx_laws_only():
    b = theory.bounds("ctx:trace=chat", [16, 256], points=2**14)
    np.testing.assert_allclose(b.context_mixture, theory.context_mixture("ctx:trace=chat", [16, 256],
                                                                          points=2**14), rtol=1e-12)
    assert "context_mixture" in b.to_dict() and "context_mixture" in b.to_pandas()
    plain = theory.bounds("trace:chat", [16], points=2**14)
    assert plain.context_mixture is None and "context_mixture" not in plain.to_dict()
    assert "context_mixture" not in plain.to_pandas()


def test_a_one_context_trace_is_the_ctx_law_of_that_context(tmp_path):
    """ctx:trace=FILE,context=c draws the same vectors as trace: of a file holding context c alone."""
    trace = load_trace("math")
    keep = trace.context == 9
    one = make_trace(meta=trace.meta, top_logp=trace.top_logp[keep], top_ids=trace.top_ids[keep],
                     entropy=trace.entropy[keep], log_moment2=trace.log_moment2[keep],
                     tail_mass=trace.tail_mass[keep], taken=trace.taken[keep], taken_logp=trace.taken_logp[keep],
                     context=trace.context[keep], offset=trace.offset[keep], context_tokens=trace.context_tokens,
                     context_offsets=trace.context_offsets, prompt_lengths=trace.prompt_lengths)
    path = save_trace(one, tmp_path / "one.npz")
    a, b = parse_law(f"trace:{path}"), parse_law("ctx:trace=math,context=9")
    # The file keeps the recorded order; ctx sorts along the text: the same rows, so the same law (tails are
    # fitted numerically, to about 1e-7).
    assert sorted(map(tuple, a._table.tolist())) == sorted(map(tuple, b._table.tolist()))
    assert a.mu == pytest.approx(b.mu, rel=1e-12) and a.psi(2.0) == pytest.approx(b.psi(2.0), rel=1e-5)


def test_greedy_runs_count_the_top_tokens_taken_in_a_row():
    """Each row's run, counted afresh context by context in recorded order: +1 after a position whose taken
    token was its top one, 0 after any other and at a context's first recorded position (or after a gap); the
    run law's rows keep the trace's rows, grouped by (run, context); ``entropy_after_run`` means them."""
    from brw.laws.context import RunTrace, greedy_runs
    from brw.laws.fitted import entropy_after_run

    tr = load_trace("math")
    runs = greedy_runs(tr)
    want = np.zeros(runs.size, dtype=np.int64)
    for c in np.unique(tr.context):
        rows = np.flatnonzero(tr.context == c)
        rows = rows[np.argsort(tr.offset[rows])]
        for a, b in zip(rows[:-1], rows[1:]):
            if tr.offset[b] == tr.offset[a] + 1:
                want[b] = want[a] + 1 if tr.taken[a] == tr.top_ids[a, 0] else 0
    np.testing.assert_array_equal(runs, want)
    assert runs.max() > 8 and np.mean(runs == 0) < 0.5
    law = RunTrace("math", cap=5)
    np.testing.assert_array_equal(np.sort(law._runs), np.sort(np.minimum(runs, 5)))
    assert law._blocks[-1] == runs.size and np.all(np.diff(law._blocks) >= 0)
    by = entropy_after_run(tr, 5)
    assert [n for _, n in by] == np.bincount(np.minimum(runs, 5), minlength=6).tolist()
    assert by[0][0] == pytest.approx(tr.entropy[runs == 0].mean())


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["prefix:trace=code,greedy=code-greedy", "prefix:trace=chat",
                                  "prefix:trace=math,greedy=math-greedy,holdout=2/4",
                                  "run:trace=code,greedy=code-greedy,holdout=1/4"])
def test_recorded_successors_are_the_rows_of_their_own_prefixes(spec):
    """Every successor a prefix (or run) law lists is the recorded row of its parent's prefix plus the child's
    token (the top one, or the one the text took, whose column is listed); roots draw only the trace's own rows;
    branch rows of a held-out fold are gone with it; mu and mu2 are the trace's rows' (those of ``trace:``)."""
    law = parse_law(spec)
    t = law.base.trace
    g = load_trace(law.greedy) if law.greedy else None

    def prefix(origin):
        tr = t if origin[0] == 0 else g
        r = int(origin[1])
        return tuple(tr.context_ids(int(tr.context[r]))[:int(tr.offset[r])].tolist()), tr, r

    top_next, col, taken_next = law._successors
    checked = {"top": 0, "taken": 0}
    for i in range(law._table.shape[0]):
        p, tr, r = prefix(law._origin[i])
        np.testing.assert_array_equal(law._table[i, :tr.k], tr.top_logp[r])
        if top_next[i] >= 0:
            assert prefix(law._origin[top_next[i]])[0] == p + (int(tr.top_ids[r, 0]),)
            checked["top"] += 1
        if taken_next[i] >= 0:
            assert col[i] > 0 and prefix(law._origin[taken_next[i]])[0] == p + (int(tr.top_ids[r, col[i]]),)
            checked["taken"] += 1
    assert min(checked.values()) > 500
    assert np.all(law._origin[law._roots, 0] == 0) and law._roots.size == t.positions
    if g is not None:
        src = np.asarray(g.meta["branch_source_context"])[g.context[law._origin[law._origin[:, 0] == 1, 1]]]
        assert np.isin(src, law.contexts).all() and (law._origin[:, 0] == 1).sum() > 2 * t.positions
        # every branch point (a text row whose taken token is not its top one) goes on into its branch
        text = np.flatnonzero(law._origin[:, 0] == 0)
        leaves = text[t.taken[law._origin[text, 1]] != t.top_ids[law._origin[text, 1], 0]]
        assert np.all(top_next[leaves] >= 0) and np.all(law._origin[top_next[leaves], 0] == 1)
    base = TraceLaw(law.trace_source, law.holdout)
    assert law.mu == pytest.approx(base.mu, rel=1e-12) and law.mu2 == pytest.approx(base.mu2, rel=1e-12)
    # every row, widened to the table's width where it had fewer entries, keeps its recorded entropy and mass
    from brw.tailfit import tail_moments

    p = np.exp(law._table)
    h = -(p * np.where(p > 0, law._table, 0)).sum(1) + tail_moments(law._tails)[0]
    mass = p.sum(1) + (law._tails[:, :, 1] * np.exp(law._tails[:, :, 0])).sum(1)
    want = np.array([(t if o[0] == 0 else g).entropy[o[1]] for o in law._origin])
    np.testing.assert_allclose(h, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mass, 1.0, atol=1e-6)


@pytest.mark.slow
def test_bundled_greedy_branches_belong_to_their_traces():
    """Each bundled branch trace leaves from every departure of its bundled source trace (same file hash), eight
    greedy steps each, recorded by the same model; its rows' tails fit as the sampled traces' do."""
    from brw.files import sha256
    from brw.real.recording import BRANCH_MODE, branch_points
    from brw.traces import BUNDLED, resolve_trace

    names = [n for n in BUNDLED if n.endswith("-greedy")]
    assert len(names) == 9  # SmolLM2's at T = 1 and 0.7, Gemma 3's
    for name in names:
        g = load_trace(name)
        src_name = name[:-len("-greedy")]
        src = load_trace(src_name)
        rows, ctx = branch_points(src)
        assert g.meta["mode"] == BRANCH_MODE and g.meta["depth"] == 8, name
        assert g.meta["source_sha256"] == sha256(resolve_trace(src_name)), name
        assert g.meta["model_sha256"] == src.meta["model_sha256"], name
        assert g.meta["branch_source_context"] == ctx.tolist() and g.meta["branch_offset"] == src.offset[rows].tolist()
        assert g.positions == 8 * rows.size and np.all(g.taken == g.top_ids[:, 0]), name
        law = TraceLaw(name)  # the tail fit of their rows, as for the sampled traces
        # at T = 0.7 a row's tail is often at the float32 rounding of its top-k (< 3e-6): 88% to 99% of the
        # rows are matched exactly, the rest to < 1e-6 nats, the law's mu to < 1e-8 of the recorded one
        exact = 0.85 if "-t07" in name else 0.995
        assert law.tail_exact.mean() > exact and np.abs(law.tail_error[0]).max() < 1e-6, name
        assert abs(law.mu - g.mu) < 1e-8, name
        assert resolve_trace(name).stat().st_size < 4_000_000, name


@pytest.mark.parametrize("change, words", [
    (lambda m, n: {"branch_source_context": [10**30] * n}, "one source context and offset per branch"),
    (lambda m, n: {"branch_offset": m["branch_offset"][:-1]}, "one source context and offset per branch"),
    (lambda m, n: {"branch_offset": [float(v) for v in m["branch_offset"]]}, "one source context and offset"),
    (lambda m, n: {"source_sha256": "0" * 64}, "branches from another trace"),
    (lambda m, n: {"mode": "sampled"}, "not a trace of greedy branches"),
    (lambda m, n: {"branch_source_context": [(v + 1) % 40 for v in m["branch_source_context"]]},
     "does not leave from a recorded position"),
    (lambda m, n: {"branch_offset": [v + 1 for v in m["branch_offset"]]}, "not its contexts' prompt lengths"),
])
@pytest.mark.slow
def test_greedy_branches_that_do_not_fit_their_trace_are_refused(tmp_path, change, words):
    """A branch file whose metadata do not tie it to the trace is refused in one line, whatever its rows."""
    from dataclasses import replace

    g = load_trace("code-greedy")
    path = tmp_path / "g.npz"
    save_trace(replace(g, meta={**g.meta, **change(g.meta, g.contexts)}, path=None), path)
    with pytest.raises(BrwError, match=words) as e:
        parse_law(f"prefix:trace=code,greedy={path}")
    assert "\n" not in str(e.value)
