"""Every kernel path against an independent computation on the same random streams.

The kernels walk a tree three ways: the pruned depth-first walk behind ``frontier()`` (``frontier_select_one``),
best-first with lazy siblings behind ``frontier_tree()`` (``frontier_one``) and the threshold walk behind
``threshold()``/``threshold_tree()``. Each is checked here against the pure-Python reference (``brw.reference``:
a heap that pushes every child, a breadth-first search) on every kind of law: table laws with and without tail
groups, with regimes, mixtures, Dirichlet, GEM and zipf. Where a recorded trace's tails make the reference slow,
a small synthetic table law with tail groups (and regimes, or recorded contexts) stands in. Then the pieces around the kernels that
a result depends on: exact counts at lattice levels, the seed contract (numpy's own SeedSequence, recomputed
here), the standard errors (a plain mean and variance of per-replicate values) and the Markov fit's direction
(an asymmetric chain whose transitions are known).
"""

import math

import numpy as np
import pytest

from brw import frontier, frontier_tree, parse_law, threshold, threshold_tree
from brw import _kernels as K
from brw.laws.fitted import fit_markov, regime_of_rows
from brw.solver import frontier_start
from brw.kernel_law import (KIND_TABLE, ROWS_CONTEXT, ROWS_EDGE, ROWS_PATH, ROWS_PREFIX, ROWS_RUN, KernelLaw,
                            gem_cut, kernel_args)
from brw.laws import Law
from brw.reference import children, reference_frontier, reference_threshold


class TableLaw(Law):
    """A synthetic empirical law: 6 rows of k sorted probabilities holding 0.9 of the mass, each followed by
    two tail groups holding the rest, optionally grouped into three regimes with an asymmetric transition matrix
    (rows 2g and 2g + 1 form regime g), or into three recorded contexts of 2, 3 and 1 rows (``contexts``:
    "ctx", trees in one context, or "path", recorded paths whose second context has a gap after its second
    row), or into edge blocks ("edge"), greedy runs ("run") or greedy runs with recorded prefixes ("prefix"), laid
    out below. The tail atoms sit inside the trees the tests walk."""

    name = "table-test"
    #: Regime g goes to g + 1 (mod 3) with probability 0.8: the chain runs one way round.
    TRANSITIONS = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    INITIAL = np.array([0.2, 0.3, 0.5])
    #: Recorded contexts: rows 0-1, 2-4 and 5; row r + 1 follows row r for r = 0 and 2 only.
    OFFSETS = [0.0, 2.0, 5.0, 6.0]
    FOLLOWS = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    #: Edge-conditioned ("edge"): three groups of two surprisal bins split at 1.5 nats plus a block of rows
    #: with nothing before them: group 0 holds row 0 (bin 0) and row 1 (bin 1); group 1 rows 2-3 (bin 1) and
    #: row 4 (the last block); group 2 row 5 (the last block: both bins empty, the whole group).
    EDGE_BLOCKS = [0.0, 1.0, 2.0, 2.0, 2.0, 4.0, 5.0, 5.0, 5.0, 6.0]
    #: The group each row's children draw from: not the row's own (its block's) group for rows 1, 2 and 5.
    EDGE_GROUPS = [0.0, 2.0, 0.0, 1.0, 1.0, 1.0]
    #: Greedy runs ("run"): three runs of three contexts; run 0 holds row 0 (context 0) and row 1 (context 1),
    #: run 1 row 2 (context 0) and rows 3-4 (context 1), run 2 row 5 (context 2): context 2 has no row at runs
    #: 0 and 1, contexts 0 and 1 none at run 2 (every context's rows at that run instead); roots draw rows 1, 3 or 4.
    RUN_BLOCKS = [0.0, 1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0, 6.0]
    RUN_GROUPS = [0.0, 1.0, 0.0, 1.0, 1.0, 2.0]
    RUN_RUNS = [0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    #: The rows a root draws from (as greedy branches' rows are left out of a root's draw).
    RUN_ROOTS = [1.0, 3.0, 4.0]
    #: Recorded prefixes ("prefix", the greedy-run layout above plus): the row of each row's most probable child
    #: (-1: none recorded), the column of the child the text took (-1: none) and that child's row.
    PREFIX_TOP = [2.0, -1.0, 5.0, -1.0, 0.0, -1.0]
    PREFIX_COL = [-1.0, 1.0, -1.0, 2.0, -1.0, -1.0]
    PREFIX_TAKEN = [-1.0, 4.0, -1.0, 1.0, -1.0, -1.0]

    def __init__(self, regimes=False, k=4, seed=0, contexts=None):
        rng = np.random.default_rng(seed)
        self.regimes = regimes
        self.contexts = contexts
        table, tails = [], []
        for _ in range(6):
            p = np.sort(rng.dirichlet(np.ones(k)))[::-1] * 0.9
            q = p[-1] / 4  # 0.1 of the mass: n1 atoms of q, then n2 atoms of q2 < q (groups in decreasing q)
            n1 = int(0.07 / q)
            n2 = int((0.1 - n1 * q) / q) + 2
            q2 = (0.1 - n1 * q) / n2
            table.append(np.log(p))
            tails.append([(math.log(q), n1), (math.log(q2), n2)])
        self._table = np.array(table)
        self._tails = np.array(tails, dtype=np.float64)
        assert np.allclose(np.exp(self._table).sum(1) + (self._tails[:, :, 1] * np.exp(self._tails[:, :, 0])).sum(1),
                           1.0, atol=1e-12)
        assert np.all(np.diff(self._tails[:, :, 0], axis=1) < 0) and np.all(self._tails[:, 0, 0] < self._table[:, -1])

    @property
    def spec(self):
        return "table-test:regimes" if self.regimes else f"table-test:{self.contexts}" if self.contexts else \
            "table-test"

    @property
    def mu(self):  # the rows' mean entropy: only the walk's starting level uses it
        h = -(np.exp(self._table) * self._table).sum(axis=1)
        h -= (self._tails[:, :, 1] * np.exp(self._tails[:, :, 0]) * self._tails[:, :, 0]).sum(axis=1)
        return float(h.mean())

    mu2 = float("nan")

    def kernel_law(self):
        if self.contexts == "edge":
            params = np.array([ROWS_EDGE, 3.0, 2.0, 1.5, *self.EDGE_BLOCKS, *self.EDGE_GROUPS])
            return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)
        if self.contexts in ("run", "prefix"):
            succ = [*self.PREFIX_TOP, *self.PREFIX_COL, *self.PREFIX_TAKEN] if self.contexts == "prefix" else []
            mode = ROWS_RUN if self.contexts == "run" else ROWS_PREFIX
            params = np.array([mode, 3.0, 3.0, *self.RUN_BLOCKS, *self.RUN_GROUPS, *self.RUN_RUNS, *succ,
                               *self.RUN_ROOTS])
            return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)
        if self.contexts:
            mode, follows = (ROWS_CONTEXT, []) if self.contexts == "ctx" else (ROWS_PATH, self.FOLLOWS)
            params = np.array([mode, 3.0, *self.OFFSETS, *follows])
            return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)
        if not self.regimes:
            return KernelLaw(KIND_TABLE, self._table, np.zeros(4), self._table.shape[1], self._tails)
        params = np.concatenate([[3.0], [0.0, 2.0, 4.0, 6.0], np.cumsum(self.INITIAL),
                                 np.cumsum(self.TRANSITIONS, axis=1).ravel()])
        return KernelLaw(KIND_TABLE, self._table, params, self._table.shape[1], self._tails)


MIX = "gemmix:s=0.9/0.3/0,theta=0.5/3/8,w=0.5/0.3/0.2"
#: Every kind of law the kernels draw: table laws without tails (fixed, uniform, zipf; 0.999/0.001 walks paths
#: thousands of levels deep, beyond the walks' first stacks), with tail groups and
#: with regimes and recorded contexts (synthetic and recorded), Dirichlet (small alpha: many rejections in the gamma sampler), GEM
#: and the spike-plus-GEM mixture.
LAWS = ["fixed:p=0.7/0.3", "fixed:p=0.999/0.001", "uniform:k=3", "zipf:s=1.2,k=40", "dirichlet:alpha=0.5,k=8",
        "dirichlet:alpha=0.05,k=30", "gem:theta=2", MIX, TableLaw(), TableLaw(regimes=True),
        "markov:trace=chat,regimes=3", "trace:code", TableLaw(contexts="ctx"), TableLaw(contexts="path"),
        TableLaw(contexts="edge"), TableLaw(contexts="run"), "ctx:trace=chat", "path:trace=math,holdout=1/4",
        "edge:trace=code", "edge:trace=chat,holdout=1/4", "run:trace=code", "run:trace=chat,cap=3,holdout=1/4",
        TableLaw(contexts="prefix"), "prefix:trace=chat,cap=3,holdout=1/4",
        "prefix:trace=code,greedy=code-greedy,holdout=2/4"]
#: The quick tier (-m "not slow") keeps the synthetic laws of every kind; the recorded ones run in the full suite.
LAWS = [pytest.param(law, marks=pytest.mark.slow) if isinstance(law, str) and "trace" in law else law for law in LAWS]
#: Laws whose positions never tie (random continuous vectors): the deepest node of a frontier is unique.
CONTINUOUS = {"dirichlet:alpha=0.5,k=8", "dirichlet:alpha=0.05,k=30", "gem:theta=2", MIX}


def _ids(law):
    return str(law)


def _curve(position):
    """accepted(1..P) of a list of positions in increasing order, summed in that order with the kernels' exp."""
    out, total = [], 0.0
    for v in position:
        total += math.exp(-v)
        out.append(total)
    return np.array(out)


def _independent_key(seed, j):
    """Replicate j's root key as the documented contract states it, from numpy alone."""
    return np.random.SeedSequence(seed, spawn_key=(j,)).generate_state(1, np.uint64)[0]


# ---------------------------------------------------------------------------------------------------------
# The three kernel paths against the reference.


@pytest.mark.parametrize("law", LAWS, ids=_ids)
def test_frontier_walk_equals_the_reference(law):
    """frontier() (the pruned walk) keeps, replicate by replicate, the P smallest positions the reference pops:
    the same curve to the last bit (the same positions summed in the same order)."""
    P, seed = 300, 13
    res = frontier(law, P, replicates=3, seed=seed, keep=list(range(1, P + 1)))
    for j in range(3):
        _, dep, pos = reference_frontier(law, P, seed=seed, replicate=j)
        assert np.array_equal(res.replicate_values[j], _curve(pos)), j
        assert res.last_position[j] == pos[-1]
        if str(law) in CONTINUOUS:
            assert res.deepest[j] == max(dep)


def test_frontier_walk_on_a_random_law_deeper_than_its_first_stack():
    """gem:theta=0.01 puts nearly all of a node's mass on its first child, so P = 1000 reaches depths of about
    300-400, beyond the walk's first stack of 256 levels (and its buffer of per-level vectors): the walk grows
    both and resumes, giving the reference's curve replicate by replicate."""
    law, P, seed = "gem:theta=0.01", 1000, 13
    res = frontier(law, P, replicates=3, seed=seed, keep=list(range(1, P + 1)))
    assert res.deepest.min() > 256
    for j in range(3):
        _, dep, pos = reference_frontier(law, P, seed=seed, replicate=j)
        assert np.array_equal(res.replicate_values[j], _curve(pos)), j


@pytest.mark.parametrize("law", LAWS, ids=_ids)
def test_best_first_equals_the_reference(law):
    """frontier_tree() (lazy siblings on a heap) pops the reference's nodes in the reference's order."""
    P = 300
    for replicate in (0, 5):
        tree = frontier_tree(law, P, seed=17, replicate=replicate)
        par, dep, pos = reference_frontier(law, P, seed=17, replicate=replicate)
        assert np.array_equal(tree.position, pos)
        np.testing.assert_allclose(tree.accepted, _curve(pos), rtol=1e-14)
        a = sorted(zip(tree.position.tolist(), tree.depth.tolist()))
        assert a == sorted(zip(pos, dep))


@pytest.mark.parametrize("law", LAWS, ids=_ids)
def test_threshold_equals_the_reference(law):
    """threshold() counts and masses per level and threshold_tree()'s nodes are the reference's."""
    xs = [1.0, 2.5, 4.0, 5.0]
    res = threshold(law, xs, replicates=3, seed=19)
    for j in range(3):
        _, dep, pos = reference_threshold(law, xs[-1], seed=19, replicate=j)
        pos = np.asarray(pos)
        for b, x in enumerate(xs):
            assert res.count[j, b] == np.count_nonzero(pos <= x)
            assert res.mass[j, b] == pytest.approx(math.fsum(np.exp(-pos[pos <= x])), rel=1e-13)
        tree = threshold_tree(law, xs[-1], seed=19, replicate=j)
        assert sorted(zip(tree.position.tolist(), tree.depth.tolist())) == sorted(zip(pos.tolist(), dep))
        assert res.deepest[j] == (max(dep) if dep else 0)


# The reference cannot expand a recorded row's ~10^9 tail atoms beyond P, so on trace laws the pruned walk is
# compared with best-first (itself checked against the reference above) at a P that reaches deep into the tails.
@pytest.mark.parametrize("law", ["trace:chat", "markov:trace=code,regimes=3", TableLaw(regimes=True),
                                 "ctx:trace=code", "path:trace=chat", "edge:trace=math", "run:trace=code"], ids=_ids)
def test_frontier_walk_equals_best_first_deep_in_the_tails(law):
    P = 4096
    res = frontier(law, P, replicates=3, seed=23, keep=list(range(1, P + 1)))
    for j in range(3):
        tree = frontier_tree(law, P, seed=23, replicate=j)
        np.testing.assert_allclose(res.replicate_values[j], tree.accepted, rtol=1e-14)
        assert res.last_position[j] == tree.position[-1]


def _walk_and_best_first(law, P, keys, shift):
    """accepted curves of the pruned walk started ``shift`` nats above its usual level, and of best-first."""
    law = parse_law(law)
    args = kernel_args(law, gem_cut(law, P))
    x0 = frontier_start(law, P) + shift
    buf = np.empty(max(args.width, 1))
    for key in keys:
        acc = np.empty(P)
        deepest, last = K.frontier_select_one(*args.vector_args, key, P, x0, acc, args.width)
        tacc = np.empty(P)
        tpar, tdep, tpos = np.empty(P, np.int32), np.empty(P, np.int32), np.empty(P)
        tdeep, tlast = K.frontier_one(*args.vector_args, key, P, tacc, tpar, tdep, tpos, buf)
        yield acc, deepest, last, tacc, tdeep, tlast


@pytest.mark.parametrize("law", ["dirichlet:alpha=0.5,k=8", "gem:theta=2", TableLaw(), TableLaw(regimes=True),
                                 TableLaw(contexts="ctx"), TableLaw(contexts="path"), "fixed:p=0.6/0.3/0.1", MIX],
                         ids=_ids)
@pytest.mark.parametrize("shift", [-30.0, 0.0, 3.0])
def test_frontier_walk_from_any_start_equals_best_first(law, shift):
    """Started high (e^3 ~ 20 times too many nodes below x: the buffer fills and shrinks again and again),
    at its usual level, or far too low (it must raise x and walk again), the pruned walk keeps exactly
    best-first's P smallest positions, on every one of many trees: a wrong shrink rank or a lost node at a
    restart changes a few replicates in a hundred."""
    P = 64
    keys = np.random.SeedSequence(29).generate_state(200, np.uint64)
    for acc, deepest, last, tacc, tdeep, tlast in _walk_and_best_first(law, P, keys, shift):
        assert np.array_equal(acc, tacc)
        assert last == tlast
        if str(law) in CONTINUOUS:
            assert deepest == tdeep


def test_frontier_walk_at_larger_P_from_a_high_start():
    """The same at P = 2000 and 20000 (above 20000 slots the buffer's selection runs its sampled-pivot branch)."""
    for P, shift in [(2000, 2.0), (20000, 0.5)]:
        keys = np.random.SeedSequence(31).generate_state(3, np.uint64)
        for acc, _, last, tacc, _, tlast in _walk_and_best_first("dirichlet:alpha=0.3,k=16", P, keys, shift):
            assert np.array_equal(acc, tacc) and last == tlast


# ---------------------------------------------------------------------------------------------------------
# Lattice levels: a node exactly at a level counts there, not at the next one.


def test_threshold_counts_at_exact_lattice_levels():
    """uniform:k=2: the 2^d nodes of depth d sit exactly at d log 2 (the position is the sum of d steps
    log 2, computed the same way here), so N(d log 2) = 2^(d+1) - 2 and the mass there is d."""
    step = math.log(2)
    levels = [step]
    for _ in range(7):
        levels.append(levels[-1] + step)
    assert levels[1] == 2 * step and levels[2] == 3 * step  # the fold is the plain product up to 3 steps
    res = threshold("uniform:k=2", levels, replicates=2, seed=1)
    for j in range(2):
        assert res.count[j].tolist() == [2 ** (d + 1) - 2 for d in range(1, 9)]
        np.testing.assert_allclose(res.mass[j], np.arange(1, 9), rtol=1e-13)
    # Between levels nothing changes; just below a level its nodes are absent.
    below = threshold("uniform:k=2", [math.nextafter(v, 0) for v in levels[:3]], seed=1)
    assert below.count[0].tolist() == [0, 2, 6]
    for d, x in enumerate(levels[:3], start=1):
        tree = threshold_tree("uniform:k=2", x, seed=1)
        assert len(tree) == 2 ** (d + 1) - 2 and tree.depth.max() == d
        assert len(reference_threshold("uniform:k=2", x, seed=1)[2]) == 2 ** (d + 1) - 2


def test_threshold_counts_at_exact_levels_of_a_two_step_lattice():
    """fixed:p=0.5/0.25/0.25 (steps log 2 and 2 log 2): the nodes at exactly n log 2 number f(n), f(0) = 1,
    f(1) = 1, f(n) = f(n - 1) + 2 f(n - 2); levels 1..3 log 2 are exact sums of the steps."""
    law = parse_law("fixed:p=0.5/0.25/0.25")
    l1, l2 = -law.kernel_law().table[0, 0], -law.kernel_law().table[0, 1]
    levels = [l1, l1 + l1, l1 + l1 + l1]
    res = threshold(law, levels, seed=1)
    # The reference's positions, summed as the kernels sum them: the counts at each level on any CPU.
    pos = np.asarray(reference_threshold(law, levels[-1], seed=1)[2])
    assert res.count[0].tolist() == [int(np.count_nonzero(pos <= x)) for x in levels]
    if l2 == 2 * l1 and l1 + l2 == levels[2] and l2 + l1 == levels[2]:  # numpy's log exact here: the lattice
        f = [1, 1, 3, 5]
        assert res.count[0].tolist() == [f[1], f[1] + f[2], f[1] + f[2] + f[3]]
        np.testing.assert_allclose(res.mass[0], [0.5, 0.5 + 3 / 4, 0.5 + 3 / 4 + 5 / 8], rtol=1e-13)


# ---------------------------------------------------------------------------------------------------------
# The seed contract and the standard error, against independent computations.


def test_seed_contract_root_keys_come_from_numpy_seed_sequence():
    """Replicate j of seed s is the tree below SeedSequence(s, spawn_key=(j,)).generate_state(1, uint64)[0],
    computed here with numpy alone; the kernels run from that key agree with frontier() and threshold()."""
    from brw.solver import root_keys

    seed = 2**40 + 7
    assert root_keys(seed, 4, first=3).tolist() == [int(_independent_key(seed, j)) for j in range(3, 7)]
    law = parse_law("dirichlet:alpha=0.5,k=8")
    P, xs = 100, np.array([1.5, 3.0])
    res = frontier(law, P, replicates=3, seed=seed, first_replicate=2, keep=list(range(1, P + 1)))
    thr = threshold(law, xs, replicates=3, seed=seed, first_replicate=2)
    args = kernel_args(law, gem_cut(law, P))
    targs = kernel_args(law, float(xs[-1]))
    for i, j in enumerate(range(2, 5)):
        key = _independent_key(seed, j)
        acc, tpar, tdep, tpos = np.empty(P), np.empty(P, np.int32), np.empty(P, np.int32), np.empty(P)
        K.frontier_one(*args.vector_args, key, P, acc, tpar, tdep, tpos, np.empty(args.width))
        assert np.array_equal(res.replicate_values[i], acc)
        count, mass = np.zeros(2, np.int64), np.zeros(2)
        e = np.empty(0, np.int32)
        K.threshold_one(*targs.vector_args, key, xs, count, mass, False, e, e, np.empty(0), 10**9, targs.width)
        assert np.array_equal(thr.count[i], np.cumsum(count))
        # The reference's vector for that key puts the root's best child where best-first popped first.
        assert 0.0 - children(args, int(key))[0][0] == tpos[0]


def test_standard_errors_are_plain_sample_statistics():
    """The mean is the plain mean of per-replicate values and the standard error is their sample standard
    deviation (ddof = 1) over sqrt(R), for the frontier and for the threshold tree."""
    R, P = 7, 50
    res = frontier("dirichlet:alpha=0.5,k=8", P, replicates=R, seed=3, keep=list(range(1, P + 1)))
    v = res.replicate_values
    mean = v.sum(axis=0) / R
    var = ((v - mean) ** 2).sum(axis=0) / (R - 1)
    np.testing.assert_allclose(res.accepted, mean, rtol=1e-13)
    np.testing.assert_allclose(res.stderr, np.sqrt(var / R), rtol=1e-9)
    thr = threshold("dirichlet:alpha=0.5,k=8", [1.0, 3.0], replicates=R, seed=3)
    for (m, se), a in [(thr.mean_count(), thr.count.astype(float)), (thr.mean_mass(), thr.mass)]:
        am = a.sum(axis=0) / R
        np.testing.assert_allclose(m, am, rtol=1e-13)
        np.testing.assert_allclose(se, np.sqrt(((a - am) ** 2).sum(axis=0) / (R - 1) / R), rtol=1e-9)
    one = frontier("dirichlet:alpha=0.5,k=8", P, replicates=1, seed=3)
    assert np.all(np.isnan(one.stderr)) and np.array_equal(one.accepted, v[0])


# ---------------------------------------------------------------------------------------------------------
# The Markov law: fit and simulation on a chain that runs one way round.


def _cyclic_trace(path, contexts=6, length=30):
    """A valid trace whose rows cycle low -> middle -> high entropy along every text (offset t -> t + 1), so
    the regime chain is 0 -> 1 -> 2 -> 0 with probability 1; its reverse would be 0 -> 2 -> 1 -> 0."""
    from trace_data import synthetic

    from brw.traces import make_trace, save_trace

    arrays, meta = synthetic(seed=3, contexts=contexts, lengths=length, kinds=("peaked", "middle", "flat"))
    save_trace(make_trace(meta=meta, **arrays), path)
    return path, arrays


def _regime_walks(law, seed, walkers=300, steps=6):
    """(parent regime, child regime) pairs along random root-to-leaf walks, rows drawn by the kernel."""
    kind, table, tails, params, cut, width = kernel_args(law, 50.0)
    offsets = params[1:2 + int(params[0])]
    regime = lambda row: int(np.searchsorted(offsets, row, side="right") - 1)  # noqa: E731
    rng = np.random.default_rng(seed)
    pairs, roots = [], []
    for key in np.random.SeedSequence(seed).generate_state(walkers, np.uint64):
        row = K.table_row(table, params, key, -1, 0.0)
        roots.append(regime(row))
        for _ in range(steps):
            key = np.uint64(K.child_key(np.uint64(key), int(rng.integers(0, 3))))
            crow = K.table_row(table, params, key, row, 0.0)
            pairs.append((regime(row), regime(crow)))
            row = crow
    return np.array(pairs), np.array(roots)


def test_markov_fit_and_simulation_follow_the_chain_forwards(tmp_path):
    path, arrays = _cyclic_trace(tmp_path / "cyclic.npz")
    reg = regime_of_rows(arrays["entropy"], 3)
    position = arrays["offset"] - arrays["prompt_lengths"][arrays["context"]]
    assert np.array_equal(reg, position % 3)  # the entropies separate the three kinds: regime = position mod 3
    law = parse_law(f"markov:trace={path},regimes=3")
    _, trans, freq = fit_markov(law.base.trace, 3)
    cycle = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert np.array_equal(trans, cycle) and np.array_equal(law.transitions, cycle)
    assert np.array_equal(freq, np.bincount(reg) / reg.size)
    # Simulated trees: every child of a regime-g node has regime g + 1 (mod 3), down every path.
    pairs, _ = _regime_walks(law, seed=4)
    assert np.array_equal(pairs[:, 1], (pairs[:, 0] + 1) % 3)


def test_regime_transitions_of_simulated_trees_are_the_given_ones():
    """An asymmetric chain (0.8 one way round, 0.1 each other way) given to the kernels directly: parent ->
    child regime frequencies and the root's regime law match it within 4.5 standard errors (a reversed or
    shifted chain is off by 0.7 in some entry, hundreds of standard errors)."""
    law = TableLaw(regimes=True)
    pairs, roots = _regime_walks(law, seed=5, walkers=1500)
    counts = np.zeros((3, 3))
    np.add.at(counts, (pairs[:, 0], pairs[:, 1]), 1)
    n = counts.sum(axis=1, keepdims=True)
    se = np.sqrt(law.TRANSITIONS * (1 - law.TRANSITIONS) / n)
    assert np.all(np.abs(counts / n - law.TRANSITIONS) < 4.5 * se)
    root = np.bincount(roots, minlength=3) / roots.size
    assert np.all(np.abs(root - law.INITIAL) < 4.5 * np.sqrt(law.INITIAL * (1 - law.INITIAL) / roots.size))


@pytest.mark.parametrize("law", [TableLaw(regimes=True), "markov:trace=code,regimes=3"], ids=_ids)
def test_drafted_best_first_with_the_verifier_as_drafter_is_the_frontier_on_regime_laws(law):
    """The policies' best-first kernel (specexec, the verifier drafting for itself) walks the frontier's own
    trees, the root's regime drawn from the initial law like every other walk's: equal curves on 40 trees."""
    from brw.drafting import policies

    res = policies(law, 60, ["specexec"], replicates=40, seed=6)
    ref = frontier(law, 60, replicates=40, seed=6)
    np.testing.assert_allclose(res.accepted[0], ref.accepted, rtol=1e-13)
