"""The proof on a real decoder: which k is fastest, predicted from one log and the cost curve, against measurement.

A real speculative decoder (:mod:`brw.real.specdecode`) runs on SmolLM2-135M-Instruct on the CPU for every drafter
and every k = 0 (plain decoding), 1, ..., kmax, on the project's prompts, timed; the verifier's cost curve
(:func:`brw.real.costcurve.cost_curve`) and each early-exit drafter's cost per drafted token are measured in the
same process, between the same blocks. The runs are interleaved: a block is one prompt and one repeat, and within a
block every configuration runs once, in a seeded random order, followed by one pass of the cost curve, so drift in
the machine's speed spreads over all k alike and shows up as spread.

The stated model (what a reader of one deployment's log can compute, with the machine's costs): from the run at one
k0, the per-position acceptance s_j = drafts accepting at least j tokens / drafts (vLLM's per-position rate),
j = 1..k0, and the draft share f = drafts / rounds (rounds = generated tokens - accepted tokens, which vLLM's two log
lines give); beyond k0 the conditional acceptance stays at its last measured value, s_j = s_k0 rho^(j - k0) with
rho = s_k0 / s_(k0 - 1) (s_0 = 1). Then E[accepted | k] = s_1 + ... + s_k = A_k and

    tokens/s(k) = (1 + f A_k) / (g + f (F(k) + k h_q + V(k + 1)) + (1 - f) V(1) + h (1 + f A_k)),
    tokens/s(0) = 1 / (V(1) + h),

each round's costs as the decoder spends them (``as spent``), all medians of the cost passes: V(n) the verifier's
forward over n new tokens after the mean context, timed as the decoder runs it (a chain under the causal mask,
``cost_curve(..., chain=True)``); F(k) a drafting round's forwards, for an early exit k D(1) + s_k (D(2) - D(1)),
D(n) its forward over n tokens with the logits of the last only (it feeds every draft it sampled but the last, so
after a round that kept all k its first forward takes two tokens); h the host's work per token (a float64 softmax
over the vocabulary and a draw: once per emitted token for the verifier, and h_q = h per drafted token for a
drafter with a distribution); g prompt lookup's search, every round. For prompt lookup F = h_q = 0; for an early
exit f = 1 and g = 0. ``forwards_only`` is the model of the forward passes alone (F(k) = k D(1), h = g = 0), which
the first full run used. It assumes drafts of full length k whenever a draft is made and f independent of k, and it
leaves out the rest of a round (the residual on a rejection, the KV caches' bookkeeping, Python), which the measured
rounds include. The same prediction with ``brw costcurve``'s tree-masked curve is reported beside it.
Beside it (``with_overhead``), the same model with a round overhead o added to every round, plain decoding's
included: the k0 run's measured seconds per round less the model's (:func:`round_overhead`), what a deployment's
own throughput at k0 gives; it reproduces the k0 run exactly and predicts every other k.

Uncertainty: block bootstrap (blocks resampled with replacement, the cost curve's passes resampled beside them; within
each run when several runs are pooled), 95% percentile intervals. The bootstrap gives a count it never saw move (none
of 1201 rounds) no width, so a per-position share's interval holds at least the Wilson score interval of its count,
and a prediction minus the share at least the hits' own noise given the drafted tokens (:func:`hit_noise`).
"""

from __future__ import annotations

import math
import time

import numpy as np

from brw.engines import Z95, wilson
from brw.errors import BrwError

__all__ = ["record_of", "generation_of", "run_block", "hit_noise", "host_seconds", "search_seconds", "cost_pass",
           "extrapolate_survival", "predict", "round_overhead", "analyse", "markdown"]


# --------------------------------------------------------------------------------------------------------
# Measuring.


def record_of(g, drafter, k: int, prompt: int, repeat: int, request: int) -> dict:
    """A generation as a JSON-able record (what the study keeps between its resumable chunks).

    Parameters
    ----------
    g : brw.real.specdecode.Generation
    drafter : str or None
    k, prompt, repeat, request : int

    Returns
    -------
    dict
    """
    def rows(a):
        return [[None if not math.isfinite(x) else round(float(x), 7) for x in row] for row in a]

    return {"drafter": drafter, "k": k, "prompt": prompt, "repeat": repeat, "request": request,
            "prompt_ids": g.prompt.tolist(), "token_ids": g.tokens.tolist(), "drafted": g.drafted.tolist(),
            "accepted": g.accepted.tolist(), "emitted": g.emitted.tolist(), "seconds": g.seconds.tolist(),
            "draft_seconds": g.draft_seconds.tolist(),
            "context": g.context.tolist(), "accept_probability": rows(g.accept_probability),
            "overlap": rows(g.overlap), "prefill_seconds": g.prefill_seconds, "finish_reason": g.finish_reason}


def _rows(a, k: int) -> np.ndarray:
    """A record's per-round, per-position values (None past a round's draft) as a (rounds, k) array, NaN for None."""
    return np.array([[np.nan if x is None else x for x in row] for row in a], dtype=np.float64).reshape(len(a), k)


def generation_of(rec: dict):
    """The generation a record holds.

    Parameters
    ----------
    rec : dict
        From :func:`record_of`.

    Returns
    -------
    brw.real.specdecode.Generation
    """
    from brw.real.specdecode import Generation

    k = int(rec["k"])
    ints = {key: np.asarray(rec[key], dtype=np.int64) for key in ("prompt_ids", "token_ids", "drafted", "accepted",
                                                                  "emitted", "context")}
    return Generation(ints["prompt_ids"], ints["token_ids"], k, ints["drafted"], ints["accepted"], ints["emitted"],
                      np.asarray(rec["seconds"], dtype=np.float64),
                      np.asarray(rec.get("draft_seconds", [0.0] * len(rec["seconds"])), dtype=np.float64),
                      ints["context"], _rows(rec["accept_probability"], k),
                      _rows(rec["overlap"], k), float(rec["prefill_seconds"]), rec["finish_reason"])


def run_block(lm, prompt_ids, prompt: int, repeat: int, request: int, configs, *, tokens: int, seed: int,
              eos=()) -> list[dict]:
    """One block: every configuration once on one prompt, in a random order seeded by (seed, prompt, repeat).

    Parameters
    ----------
    lm : brw.real.models.LoadedModel
    prompt_ids : list of int
    prompt, repeat : int
        The block's prompt number and repeat.
    request : int
        The request number: every configuration of the block draws from ``request_rng(seed, request)``.
    configs : sequence of (str or None, int)
        (drafter spec, k) pairs; (None, 0) is plain decoding.
    tokens : int
        Tokens per request at most.
    seed : int
    eos : collection of int

    Returns
    -------
    list of dict
        One record per configuration (:func:`record_of`), in the order they ran.
    """
    from brw.real.specdecode import generate, request_rng

    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1 << 20, prompt, repeat))).permutation(
        len(configs))
    out = []
    for i in order:
        drafter, k = configs[int(i)]
        g = generate(lm.model, prompt_ids, drafter=drafter, k=k, max_tokens=tokens, rng=request_rng(seed, request),
                     eos=eos)
        out.append(record_of(g, drafter, k, prompt, repeat, request))
    return out


def host_seconds(vocab: int, repeats: int = 25, seed: int = 0, temperature: float = 1.0) -> float:
    """h: the host's work for one emitted or drafted token as the decoder does it, timed: a row of float32 logits
    over the vocabulary to float64 probabilities (``softmax(logits / T)``) and one draw from them.

    Parameters
    ----------
    vocab : int
        Vocabulary size.
    repeats : int
        Timed repeats (median kept), after one untimed.
    seed : int
    temperature : float

    Returns
    -------
    float
        Seconds.
    """
    from brw.real.specdecode import sample_token, softmax

    rng = np.random.default_rng(seed)
    row = rng.normal(0.0, 3.0, size=int(vocab)).astype(np.float32)
    return _median_seconds(lambda: sample_token(softmax(row, temperature), rng), repeats)


def search_seconds(context: int, k: int, repeats: int = 25, seed: int = 0, nmin: int = 1, nmax: int = 3) -> float:
    """g: prompt lookup's search for a draft of k tokens in ``context`` pseudo-random tokens, timed (median).

    Parameters
    ----------
    context, k : int
    repeats, seed : int
    nmin, nmax : int
        The n-gram lengths.

    Returns
    -------
    float
        Seconds.
    """
    from brw.real.specdecode import ngram_proposal

    tokens = np.random.default_rng(seed).integers(0, 2000, size=int(context)).tolist()
    return _median_seconds(lambda: ngram_proposal(tokens, k, nmin, nmax), repeats)


def _median_seconds(work, repeats: int) -> float:
    """The median seconds of ``work()`` over ``repeats`` timed calls, after one untimed."""
    work()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def cost_pass(lm, context: int, kmax: int, drafters, repeats: int = 3) -> dict:
    """One pass of the cost curves: the verifier over 1..kmax + 1 new tokens, each drafter's work, and the host's.

    Each forward is timed as the decoder runs it, a chain under the causal mask (``cost_curve(..., chain=True)``),
    and, for comparison, as ``brw costcurve`` times a tree, under a tree mask.

    Parameters
    ----------
    lm : brw.real.models.LoadedModel
    context : int
        Cached context tokens.
    kmax : int
    drafters : sequence of str
        Drafter specs. An early exit's forward is timed over one and two tokens with the logits of the last only (as
        it drafts); prompt lookup's search is timed (:func:`search_seconds`).
    repeats : int
        Timed passes of the chain curves per call (median kept); the tree curves take one fewer, at least one.

    Returns
    -------
    dict
        ``verify`` (chain: seconds for 1..kmax + 1 tokens), ``verify_tree``, ``draft`` (spec -> seconds of a drafter's
        one-token forward, chain; 0 for prompt lookup), ``draft_tree``, ``draft_curve`` (spec -> the drafter's
        forward over 1 and 2 tokens, or None for prompt lookup), ``draft_search`` (spec -> seconds of one
        search, 0 for an early exit), ``host`` (:func:`host_seconds`), ``time``.
    """
    from brw.real import models
    from brw.real.costcurve import cost_curve
    from brw.real.specdecode import parse_drafter

    tree_repeats = max(1, repeats - 1)
    out = {"verify": cost_curve(lm, context=context, pmax=kmax, repeats=repeats, chain=True).seconds.tolist(),
           "verify_tree": cost_curve(lm, context=context, pmax=kmax, repeats=tree_repeats).seconds.tolist(),
           "draft": {}, "draft_tree": {}, "draft_curve": {}, "draft_search": {}}
    for spec in drafters:
        d = parse_drafter(spec)
        if d.name == "early-exit":
            cut = models.LoadedModel(models.early_exit(lm.model, d.layers), lm.tokenizer, lm.device, lm.dtype,
                                     {**lm.meta, "model": f"{lm.meta.get('model')} early exit {d.layers}"}, 0.0)
            curve = cost_curve(cut, context=context, pmax=1, repeats=repeats, chain=True, keep=1).seconds
            out["draft"][d.spec] = float(curve[0])
            out["draft_curve"][d.spec] = curve.tolist()
            out["draft_tree"][d.spec] = float(cost_curve(cut, context=context, pmax=1, repeats=tree_repeats).seconds[0])
            out["draft_search"][d.spec] = 0.0
        else:
            out["draft"][d.spec] = out["draft_tree"][d.spec] = 0.0
            out["draft_curve"][d.spec] = None
            out["draft_search"][d.spec] = search_seconds(context, kmax, nmin=d.nmin, nmax=d.nmax)
    out["host"] = host_seconds(lm.meta["vocab_size"])
    out["time"] = time.time()
    return out


# --------------------------------------------------------------------------------------------------------
# The model.


def extrapolate_survival(measured, kmax: int) -> np.ndarray:
    """s_1..s_kmax from s_1..s_k0: beyond k0, s_j = s_k0 rho^(j - k0) with rho = s_k0 / s_(k0 - 1), s_0 = 1.

    Parameters
    ----------
    measured : sequence of float
        s_1..s_k0 (non-increasing shares in [0, 1]).
    kmax : int

    Returns
    -------
    numpy.ndarray
        kmax values.
    """
    s = np.asarray(measured, dtype=np.float64)
    if s.size == 0:
        raise BrwError("extrapolation needs at least one measured position")
    k0 = s.size
    prev = s[-2] if k0 >= 2 else 1.0
    rho = s[-1] / prev if prev > 0 else 0.0
    out = np.empty(kmax)
    out[:min(k0, kmax)] = s[:kmax]
    for j in range(k0, kmax):
        out[j] = s[-1] * rho ** (j + 1 - k0)
    return out


def _round_seconds(s, share: float, V, draft_cost: float, k: int, draft_curve, host: float, draft_host: float,
                   search: float) -> float:
    """The model's mean seconds of a round at k >= 1 (no overhead), s = s_1..s_k."""
    s = np.asarray(s, dtype=np.float64)[:k]
    drafting = _drafting_seconds(s, draft_cost, k, draft_curve, draft_host)
    return (search + share * (drafting + V[k]) + (1 - share) * V[0] + host * (1 + share * s.sum()))


def _drafting_seconds(s, draft_cost: float, k: int, draft_curve, draft_host: float) -> float:
    """A drafting round's forwards and the drafter's host work at k (s = s_1..s_k)."""
    if draft_curve is None:
        forwards = k * draft_cost
    else:  # after a round that kept all k drafts (share s_k), the first forward also feeds the last draft
        D = np.asarray(draft_curve, dtype=np.float64)
        forwards = k * D[0] + (s[k - 1] if k <= len(s) else 0.0) * (D[1] - D[0])
    return forwards + k * draft_host


def predict(survival, share: float, verify, draft_cost: float, kmax: int, overhead: float = 0.0, *,
            draft_curve=None, host: float = 0.0, draft_host: float = 0.0, search: float = 0.0) -> np.ndarray:
    """Predicted tokens per second at k = 0..kmax (the module's stated model).

    Parameters
    ----------
    survival : sequence of float
        s_1..s_kmax.
    share : float
        f, the share of rounds that draft.
    verify : sequence of float
        V(1)..V(kmax + 1), seconds.
    draft_cost : float
        c, seconds per drafted token (used when ``draft_curve`` is None).
    kmax : int
    overhead : float
        o, seconds of every round beyond the model (0: the stated model; see :func:`round_overhead`).
    draft_curve : sequence of float, optional
        D(1), D(2): the drafter's forward over one and two tokens (the logits of the last only). With it a drafting
        round's forwards cost k D(1) + s_k (D(2) - D(1)) instead of k c: the drafter feeds each draft it sampled to
        get the next, but not the last, so after a round that kept all k (share s_k; every round drafting) its first
        forward takes two tokens, that draft and the verifier's.
    host : float
        h, the host's seconds per emitted token (a softmax over the vocabulary and a draw: the verifier reads one row
        per emitted token); a round adds h (1 + f E[accepted | k]).
    draft_host : float
        The drafter's host seconds per drafted token (h for a drafter with a distribution; 0 for a point mass).
    search : float
        g, seconds of every round at k >= 1 spent looking for a draft (prompt lookup).

    Returns
    -------
    numpy.ndarray
        kmax + 1 values.
    """
    s = np.asarray(survival, dtype=np.float64)[:kmax]
    V = np.asarray(verify, dtype=np.float64)
    out = np.empty(kmax + 1)
    out[0] = 1.0 / (V[0] + host + overhead)
    for k in range(1, kmax + 1):
        out[k] = (1 + share * s[:k].sum()) / (_round_seconds(s, share, V, draft_cost, k, draft_curve, host,
                                                             draft_host, search) + overhead)
    return out


def round_overhead(round_seconds: float, share: float, verify, draft_cost: float, k0: int, survival=None, *,
                   draft_curve=None, host: float = 0.0, draft_host: float = 0.0, search: float = 0.0) -> float:
    """o, a round's seconds beyond the model, from one run's mean round at k0: its measured seconds per round less
    the model's (:func:`predict`'s round at k0; f (k0 c + V(k0 + 1)) + (1 - f) V(1) with the defaults). With o added
    to every round (plain decoding's included), the model reproduces the k0 run's tokens per second exactly and
    predicts every other k.

    Parameters
    ----------
    round_seconds : float
        The k0 run's seconds per round (decoding rounds, prefill excluded).
    share, verify, draft_cost
        As in :func:`predict`.
    k0 : int
        The run's k (>= 1).
    survival : sequence of float, optional
        s_1..s_k0 (needed with ``draft_curve`` or ``host``).
    draft_curve, host, draft_host, search
        As in :func:`predict`.

    Returns
    -------
    float
    """
    V = np.asarray(verify, dtype=np.float64)
    s = np.zeros(k0) if survival is None else np.asarray(survival, dtype=np.float64)
    return float(round_seconds - _round_seconds(s, share, V, draft_cost, k0, draft_curve, host, draft_host, search))


# --------------------------------------------------------------------------------------------------------
# Analysis.


def _block_sums(records, drafters, kmax: int):
    """Per configuration and block: sums the estimates are ratios of."""
    blocks = sorted({(r["prompt"], r["repeat"]) for r in records})
    index = {b: i for i, b in enumerate(blocks)}
    keys = [(None, 0)] + [(d, k) for d in drafters for k in range(1, kmax + 1)]
    n = len(blocks)
    z = {key: {"tokens": np.zeros(n), "seconds": np.zeros(n), "rounds": np.zeros(n), "drafts": np.zeros(n),
               "draft_tokens": np.zeros(n), "accepted": np.zeros(n), "atleast": np.zeros((kmax, n)),
               "full": np.zeros((kmax, n)), "exact": np.zeros((kmax, n)), "overlap": np.zeros((kmax, n)),
               "plain_seconds": np.zeros(n), "plain_rounds": np.zeros(n), "requests": np.zeros(n),
               "draft_seconds": np.zeros(n)}
         for key in keys}
    for r in records:
        key = (r["drafter"], int(r["k"]))
        if key not in z:
            continue
        c, b = z[key], index[(r["prompt"], r["repeat"])]
        d = np.asarray(r["drafted"])
        a = np.asarray(r["accepted"])
        s = np.asarray(r["seconds"])
        c["tokens"][b] += sum(r["emitted"])
        c["seconds"][b] += s.sum()
        c["rounds"][b] += d.size
        c["requests"][b] += 1
        has = d > 0
        c["drafts"][b] += has.sum()
        c["draft_tokens"][b] += d.sum()
        c["accepted"][b] += a[has].sum()
        c["plain_seconds"][b] += s[~has].sum()
        c["draft_seconds"][b] += np.asarray(r.get("draft_seconds", np.zeros(d.size)))[has].sum()
        c["plain_rounds"][b] += (~has).sum()
        k = key[1]
        if k:
            ratio, over = _rows(r["accept_probability"], k), _rows(r["overlap"], k)
            for j in range(1, k + 1):
                c["atleast"][j - 1, b] += (a[has] >= j).sum()
                full = d >= j
                c["full"][j - 1, b] += full.sum()
                c["exact"][j - 1, b] += np.prod(ratio[full, :j], axis=1).sum()
                c["overlap"][j - 1, b] += np.prod(over[full, :j], axis=1).sum()
    return blocks, keys, z


def _wilson(hits: float, n: float) -> list:
    """The 95% Wilson interval of hits / n (no ends for no rounds): it treats rounds as independent, so it understates
    the clustering the block bootstrap sees, but unlike the bootstrap it gives a count of 0 a width."""
    return list(wilson(hits, n)) if n > 0 else [None, None]


def _union(a: list, b: list) -> list:
    """The smallest interval holding both (an interval with no ends leaves the other as it is)."""
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    return [min(a[0], b[0]), max(a[1], b[1])]


def _around(x: float, half: float) -> list:
    return [float(x - half), float(x + half)]


def _interval(samples) -> list:
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    return [float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))] if s.size else [None, None]


def _cost_medians(costs, drafters, ci, boot: int):
    """Medians of the cost passes, for the data (row 0) and per resample of the passes (``ci``): the verifier's and
    the drafters' curves (chain, and tree where recorded), :func:`predict`'s keywords per drafter and resample
    (``spend``; none for passes of the forward passes only), and the report's entries for them."""
    from brw.real.specdecode import parse_drafter

    def medians(rows):  # the median over cost passes, then per resample of the passes
        rows = np.asarray(rows, dtype=np.float64)
        return np.concatenate([np.median(rows, axis=0)[None], np.median(rows[ci], axis=1)])

    curves = {"chain": ("verify", "draft"), "tree": ("verify_tree", "draft_tree")}
    curves = {name: keys for name, keys in curves.items() if all(keys[0] in c for c in costs)}
    Vset = {name: medians([c[v] for c in costs]) for name, (v, _) in curves.items()}  # (boot + 1, kmax + 1)
    Dset = {name: {d: medians([c[dk][d] for c in costs]) for d in drafters} for name, (_, dk) in curves.items()}
    spent = all("host" in c and "draft_curve" in c and "draft_search" in c for c in costs)
    zero = np.zeros(boot + 1)
    Hb = medians([[c["host"]] for c in costs])[:, 0] if spent else zero
    Cb = {d: medians([c["draft_curve"][d] for c in costs]) if spent and costs[0]["draft_curve"].get(d) is not None
          else None for d in drafters}
    Sb = {d: medians([[c["draft_search"][d]] for c in costs])[:, 0] if spent else zero for d in drafters}
    own_q = {d: parse_drafter(d).name == "early-exit" for d in drafters}  # a drafter with a distribution

    def spend(d, b: int) -> dict:  # predict()'s keywords for drafter d, resample b
        if not spent:
            return {}
        return {"draft_curve": None if Cb[d] is None else Cb[d][b], "host": Hb[b],
                "draft_host": Hb[b] if own_q[d] else 0.0, "search": Sb[d][b]}

    extra = {"model": "as spent" if spent else "forwards only",
             "host": float(Hb[0]) if spent else None, "host_ci": _interval(Hb[1:]) if spent else None,
             "draft_curve": {d: None if Cb[d] is None else Cb[d][0].tolist() for d in drafters},
             "draft_search": {d: float(Sb[d][0]) for d in drafters} if spent else None}
    return Vset, Dset, spend, extra


def _stratified(rng, blocks, costs, strata, boot: int):
    """Block weights (boot, blocks) and cost-pass indices (boot, passes) of a bootstrap within strata."""
    try:
        lab = np.array([strata[b] for b in blocks])
        clab = np.array([strata[tuple(c["block"])] for c in costs])
    except KeyError as e:
        raise BrwError(f"strata names no stratum for block {e.args[0]}") from None
    W = np.zeros((boot, len(blocks)))
    ci = np.zeros((boot, len(costs)), dtype=np.int64)
    for s in np.unique(lab):
        at, cat = np.flatnonzero(lab == s), np.flatnonzero(clab == s)
        if cat.size == 0:
            raise BrwError(f"stratum {s!r} has blocks but no cost pass")
        W[:, at] = rng.multinomial(at.size, np.full(at.size, 1.0 / at.size), size=boot)
        ci[:, cat] = cat[rng.integers(0, cat.size, size=(boot, cat.size))]
    return W, ci


def analyse(records, costs, *, drafters, kmax: int = 8, k0s=None, headline_k0: int = 4, boot: int = 1000,
            seed: int = 0, strata=None) -> dict:
    """Measured tokens per second, per-position acceptance against the theory, and the two proof targets.

    Parameters
    ----------
    records : list of dict
        :func:`record_of` records of every configuration.
    costs : list of dict
        :func:`cost_pass` results.
    drafters : sequence of str
        Drafter specs (in the order to report).
    kmax : int
    k0s : sequence of int, optional
        The k whose single run predicts every k (default 1..kmax).
    headline_k0 : int
        The k0 reported first.
    boot : int
        Bootstrap resamples.
    seed : int
        The bootstrap's seed.
    strata : mapping, optional
        Block ``(prompt, repeat)`` -> stratum (for instance the run it came from, when several runs are pooled): the
        bootstrap then resamples blocks, and cost passes (by their ``block``), within each stratum, so that every
        resample keeps each stratum's share. Default: one stratum.

    Returns
    -------
    dict
        ``blocks``, ``cost`` (median verifier and drafter costs with intervals), ``plain`` (k = 0 measured), and
        per drafter (``drafters``): ``measured`` (tokens/s per k with intervals), ``survival`` (per position:
        measured, the exact prediction E[prod min(1, p/q)] and the overlap product E[prod sum min(p, q)], with the
        differences' intervals), ``draft_share``, ``mean_draft_length`` and ``predictions`` (per k0: predicted
        tokens/s per k, predicted / measured with intervals, the recommended k, target (i) and target (ii)).
    """
    drafters = list(drafters)
    k0s = list(range(1, kmax + 1)) if k0s is None else [int(x) for x in k0s]
    blocks, keys, z = _block_sums(records, drafters, kmax)
    n = len(blocks)
    if n == 0 or not costs:
        raise BrwError("analyse needs records and cost passes")
    rng = np.random.default_rng(seed)
    if strata is None:
        W = rng.multinomial(n, np.full(n, 1.0 / n), size=boot).astype(np.float64)  # block weights per resample
        ci = rng.integers(0, len(costs), size=(boot, len(costs)))
    else:
        W, ci = _stratified(rng, blocks, costs, strata, boot)
    W = np.vstack([np.ones(n), W])  # row 0: the data themselves

    Vset, Dset, spend, extra = _cost_medians(costs, drafters, ci, boot)
    Vb, Db = Vset["chain"], Dset["chain"]

    def tot(key, name):
        a = z[key][name]
        return W @ a.T if a.ndim == 2 else W @ a  # (boot + 1,) or (boot + 1, kmax)

    def tps(key):
        return tot(key, "tokens") / tot(key, "seconds")

    plain = tps((None, 0))
    out = {"blocks": n, "kmax": kmax, "boot": boot, "seed": seed,
           "cost": {"passes": len(costs), "verify": Vb[0].tolist(),
                    "verify_ci": [_interval(Vb[1:, i]) for i in range(kmax + 1)],
                    "draft": {d: float(Db[d][0]) for d in drafters},
                    "draft_ci": {d: _interval(Db[d][1:]) for d in drafters},
                    "verify_tree": Vset["tree"][0].tolist() if "tree" in Vset else None,
                    "draft_tree": {d: float(Dset["tree"][d][0]) for d in drafters} if "tree" in Dset else None,
                    **extra},
           "plain": {"tokens_per_second": float(plain[0]), "ci": _interval(plain[1:]),
                     "round_seconds": float(z[(None, 0)]["seconds"].sum() / z[(None, 0)]["rounds"].sum()),
                     "requests": int(z[(None, 0)]["requests"].sum())},
           "drafters": []}
    out["plain"]["overhead"] = out["plain"]["round_seconds"] / out["cost"]["verify"][0] - 1.0
    for d in drafters:
        meas = np.stack([plain] + [tps((d, k)) for k in range(1, kmax + 1)], axis=1)  # (boot + 1, kmax + 1)
        surv, rounds_cost = _positions(d, tot, Vb, Db, kmax, spend(d, 0), hit_noise(records, d, kmax))
        shares = [float(tot((d, k), "drafts")[0] / tot((d, k), "rounds")[0]) for k in range(1, kmax + 1)]
        lengths = [float(tot((d, k), "draft_tokens")[0] / max(tot((d, k), "drafts")[0], 1)) for k in range(1, kmax + 1)]
        measured = _measured(d, tot, meas, z, kmax)
        entry = {"drafter": d, "draft_cost": float(Db[d][0]), "measured": measured,
                 "best_measured_k": int(np.argmax(meas[0])), "survival": surv, "round_cost": rounds_cost,
                 "draft_share": shares,
                 "mean_draft_length": lengths, "predictions": []}
        entry["predictions"] = _predictions(d, tot, meas, Vb, Db, k0s, kmax, boot, spend)
        entry["headline"] = next((p for p in entry["predictions"] if p["k0"] == headline_k0), entry["predictions"][0])
        if "tree" in Vset:  # the same prediction with brw costcurve's tree-masked curve instead of the chain's
            h = entry["headline"]
            key = (d, h["k0"])
            drafts, rounds = tot(key, "drafts")[0], tot(key, "rounds")[0]
            s0 = tot(key, "atleast")[0, :h["k0"]] / max(drafts, 1)
            pred = predict(extrapolate_survival(s0, kmax), drafts / rounds, Vset["tree"][0], Dset["tree"][d][0], kmax,
                           **spend(d, 0))
            entry["tree_curve"] = {"k0": h["k0"], "predicted": pred.tolist(), "ratio": (pred / meas[0]).tolist(),
                                   "recommended_k": int(np.argmax(pred)),
                                   "max_error": float(np.abs(pred / meas[0] - 1).max())}
        out["drafters"].append(entry)
    return out


def hit_noise(records, drafter, kmax: int) -> np.ndarray:
    """Per position j = 1..kmax, the standard deviation of the number of drafting rounds (of every k >= j) that
    accept at least j tokens, given the drafted tokens.

    Given its drafts, a round accepts at least j with probability a = prod_{i <= j} min(1, p_i / q_i), on coins of
    its own. The runs at each k of a block draw from the same request streams, so the same situation (the same
    drafts after the same text, the same coins) recurs at several k: rounds of one block with the same a are taken
    as one trial repeated m times, and distinct ones as independent, which gives sqrt(sum m^2 a (1 - a)).

    Parameters
    ----------
    records : list of dict
        :func:`record_of` records.
    drafter : str
    kmax : int

    Returns
    -------
    numpy.ndarray
        kmax values.
    """
    seen = [dict() for _ in range(kmax)]
    for r in records:
        k = int(r["k"])
        if r["drafter"] != drafter or not 1 <= k <= kmax:
            continue
        ratio = _rows(r["accept_probability"], k)
        d = np.asarray(r["drafted"])
        for j in range(1, k + 1):
            for a in np.prod(ratio[d >= j, :j], axis=1):
                key = (r["prompt"], r["repeat"], round(float(a), 12))
                seen[j - 1][key] = seen[j - 1].get(key, 0) + 1
    return np.array([math.sqrt(sum(m * m * a * (1 - a) for (_, _, a), m in by.items())) for by in seen])


def _positions(d, tot, Vb, Db, kmax: int, spent: dict, noise) -> tuple[list, list]:
    """Per position, the measured acceptance pooled over every k >= j against the theory; per k, where a round's
    seconds go against the model's drafting and verifying seconds (``spent``: :func:`predict`'s keywords)."""
    # Per-position acceptance, pooled over every k >= j, against the theory.
    surv = []
    for j in range(1, kmax + 1):
        full = sum(tot((d, k), "full")[:, j - 1] for k in range(j, kmax + 1))
        hit = sum(tot((d, k), "atleast")[:, j - 1] for k in range(j, kmax + 1))
        exact = sum(tot((d, k), "exact")[:, j - 1] for k in range(j, kmax + 1))
        over = sum(tot((d, k), "overlap")[:, j - 1] for k in range(j, kmax + 1))
        m, e, o = hit / full, exact / full, over / full
        # Floors under the bootstrap, which cannot see the noise of a count it never saw move (none of 1201 rounds):
        # the Wilson interval of the share, and for a prediction minus the share the hits' own noise given the drafts
        # (hit_noise): +- z sd / rounds about the difference.
        half = Z95 * noise[j - 1] / full[0] if full[0] > 0 else 0.0
        surv.append({"position": j, "rounds": int(full[0]), "measured": float(m[0]),
                     "measured_ci": _union(_interval(m[1:]), _wilson(hit[0], full[0])),
                     "exact": float(e[0]),
                     "exact_minus_measured_ci": _union(_interval((e - m)[1:]), _around(e[0] - m[0], half)),
                     "overlap_product": float(o[0]),
                     "overlap_minus_measured_ci": _union(_interval((o - m)[1:]), _around(o[0] - m[0], half))})
    # Where a round's seconds go, against the model's k c and V(k + 1).
    rounds_cost = []
    for k in range(1, kmax + 1):
        r = tot((d, k), "rounds")[0]
        dr = tot((d, k), "drafts")[0]
        ds = tot((d, k), "draft_seconds")[0]
        sk = tot((d, k), "atleast")[0, :k] / max(dr, 1)  # this run's own survival
        host = spent.get("host", 0.0) * (1 + sk.sum())
        drafting = _drafting_seconds(sk, Db[d][0], k, spent.get("draft_curve"),
                                     spent.get("draft_host", 0.0)) + spent.get("search", 0.0)
        rounds_cost.append({"k": k, "draft_seconds_per_draft": float(ds / max(dr, 1)),
                            "model_draft_seconds": float(drafting),
                            "verify_seconds_per_draft": float((tot((d, k), "seconds")[0]
                                                               - tot((d, k), "plain_seconds")[0] - ds) / max(dr, 1)),
                            "model_verify_seconds": float(Vb[0, k] + host),
                            "plain_round_seconds": float(tot((d, k), "plain_seconds")[0]
                                                         / max(tot((d, k), "plain_rounds")[0], 1)),
                            "rounds": int(r)})
    return surv, rounds_cost


def _measured(d, tot, meas, z, kmax: int) -> list:
    """Per k, what the run measured: tokens per second, and what its vLLM log says (mean acceptance length and
    per-position rates), with intervals."""
    measured = []
    for k in range(kmax + 1):
        key = (None, 0) if k == 0 else (d, k)
        m = {"k": k, "tokens_per_second": float(meas[0, k]), "ci": _interval(meas[1:, k]),
             "requests": int(z[key]["requests"].sum()), "tokens": int(z[key]["tokens"].sum()),
             "rounds": int(z[key]["rounds"].sum())}
        if k:
            drafts = tot(key, "drafts")
            mal = 1 + tot(key, "accepted") / np.maximum(drafts, 1)
            rates = tot(key, "atleast")[:, :k] / np.maximum(drafts, 1)[:, None]
            m.update(drafts=int(drafts[0]), mean_acceptance_length=float(mal[0]), mal_ci=_interval(mal[1:]),
                     per_position=rates[0].tolist(), per_position_ci=[_interval(rates[1:, j]) for j in range(k)])
        measured.append(m)
    return measured


def _scored(pred, meas, boot: int) -> dict:
    """A prediction per resample (boot + 1, kmax + 1) against the measurement: ratio, recommended k, targets."""
    ratio = pred / meas
    rec = np.argmax(pred, axis=1)  # the recommended k, per resample
    best = meas.max(axis=1)
    gain = meas[np.arange(boot + 1), rec] / best
    worst = np.abs(ratio - 1).max(axis=1)
    return {"predicted": pred[0].tolist(), "predicted_ci": [_interval(pred[1:, k]) for k in range(pred.shape[1])],
            "ratio": ratio[0].tolist(), "ratio_ci": [_interval(ratio[1:, k]) for k in range(pred.shape[1])],
            "recommended_k": int(rec[0]), "recommended_share": float(np.mean(rec[1:] == rec[0])),
            "recommended_over_best": float(gain[0]), "recommended_over_best_ci": _interval(gain[1:]),
            "target_i": bool(gain[0] >= 0.95), "max_error": float(worst[0]), "max_error_ci": _interval(worst[1:]),
            "target_ii": bool(worst[0] <= 0.10)}


def _predictions(d, tot, meas, Vb, Db, k0s, kmax: int, boot: int, spend) -> list:
    """Per k0, the stated model's prediction of tokens per second at every k from the run at k0 alone; the same
    with the forward passes only (``forwards_only``: k c for the drafter, nothing for the host); with every cost
    scaled by one factor so that plain decoding's prediction is its measured rate (``plain_scaled``: what a
    deployment's own speed without speculation gives); and with the k0 run's round overhead o carried to every k
    (``with_overhead``)."""
    out = []
    for k0 in k0s:
        key = (d, k0)
        drafts, rounds = tot(key, "drafts"), tot(key, "rounds")
        s0 = tot(key, "atleast")[:, :k0] / np.maximum(drafts, 1)[:, None]
        f = drafts / rounds
        per_round = tot(key, "seconds") / rounds
        surv = [extrapolate_survival(s0[b], kmax) for b in range(boot + 1)]
        pred = np.array([predict(surv[b], f[b], Vb[b], Db[d][b], kmax, **spend(d, b)) for b in range(boot + 1)])
        bare = np.array([predict(surv[b], f[b], Vb[b], Db[d][b], kmax) for b in range(boot + 1)])
        o = np.array([round_overhead(per_round[b], f[b], Vb[b], Db[d][b], k0, surv[b][:k0], **spend(d, b))
                      for b in range(boot + 1)])
        pred_o = np.array([predict(surv[b], f[b], Vb[b], Db[d][b], kmax, o[b], **spend(d, b))
                           for b in range(boot + 1)])
        scaled = pred * (meas[:, :1] / pred[:, :1])  # every cost scaled so that plain decoding is as measured
        out.append({"k0": k0, "survival_k0": s0[0].tolist(), "draft_share": float(f[0]),
                    "survival_used": surv[0].tolist(), **_scored(pred, meas, boot),
                    "forwards_only": _scored(bare, meas, boot),
                    "plain_scaled": {"scale": float(pred[0, 0] / meas[0, 0]),
                                     "scale_ci": _interval(pred[1:, 0] / meas[1:, 0]),
                                     **_scored(scaled, meas, boot)},
                    "with_overhead": {"overhead": float(o[0]), "overhead_ci": _interval(o[1:]),
                                      **_scored(pred_o, meas, boot)}})
    return out


def _f(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def _drafter_lines(d: dict, res: dict) -> list:
    """One drafter's section of :func:`markdown`."""
    lines: list = []
    h = d["headline"]
    lines += [f"## Drafter `{d['drafter']}`", "",
              f"Draft share f by k: {', '.join(f'{x:.3f}' for x in d['draft_share'])}; mean draft length by k: "
              f"{', '.join(f'{x:.2f}' for x in d['mean_draft_length'])}.", "",
              "Per-position acceptance, pooled over every run with k >= j (rounds that drafted at least j): "
              "measured share accepting at least j, the exact prediction E[prod_{i<=j} min(1, p_i(x_i)/q_i(x_i))] "
              "along the drafted path, and the product of overlaps E[prod_{i<=j} sum_x min(p_i, q_i)]:", "",
              "| j | rounds | measured | exact prediction | exact - measured (95%) | overlap product "
              "| overlap - measured (95%) |", "|---|---|---|---|---|---|---|"]
    for s in d["survival"]:
        e, o = s["exact_minus_measured_ci"], s["overlap_minus_measured_ci"]
        lines.append(f"| {s['position']} | {s['rounds']} | {s['measured']:.3f} [{_f(s['measured_ci'][0])}, "
                     f"{_f(s['measured_ci'][1])}] | {s['exact']:.3f} | [{_f(e[0])}, {_f(e[1])}] | "
                     f"{s['overlap_product']:.3f} | [{_f(o[0])}, {_f(o[1])}] |")
    lines += ["", "Each run on its own (what its vLLM log says): mean acceptance length (1 + accepted / drafts, the "
                  "bonus token included) and per-position acceptance rate (drafts accepting at least j / drafts):",
              "", "| k | requests | tokens | drafts | mean acceptance length (95%) | per-position acceptance rate |",
              "|---|---|---|---|---|---|"]
    for m in d["measured"][1:]:
        lines.append(f"| {m['k']} | {m['requests']} | {m['tokens']} | {m['drafts']} | "
                     f"{m['mean_acceptance_length']:.3f} [{_f(m['mal_ci'][0])}, {_f(m['mal_ci'][1])}] | "
                     + ", ".join(f"{x:.3f}" for x in m["per_position"]) + " |")
    lines += ["", f"Predicted from the run at k0 = {h['k0']} alone (s_1..s_{h['k0']} = "
                  f"{', '.join(f'{x:.3f}' for x in h['survival_k0'])}, f = {h['draft_share']:.3f}; extrapolated "
                  f"s = {', '.join(f'{x:.3f}' for x in h['survival_used'])}):", "",
              "| k | measured tokens/s (95%) | predicted (95%) | predicted / measured (95%) "
              "| forwards only: predicted / measured (95%) |", "|---|---|---|---|---|"]
    b = h["forwards_only"]
    for m, p, pc, r, rc, r0, rc0 in zip(d["measured"], h["predicted"], h["predicted_ci"], h["ratio"], h["ratio_ci"],
                                        b["ratio"], b["ratio_ci"]):
        lines.append(f"| {m['k']} | {m['tokens_per_second']:.3f} [{_f(m['ci'][0])}, {_f(m['ci'][1])}] | "
                     f"{p:.3f} [{_f(pc[0])}, {_f(pc[1])}] | {r:.3f} [{_f(rc[0])}, {_f(rc[1])}] | "
                     f"{r0:.3f} [{_f(rc0[0])}, {_f(rc0[1])}] |")
    lines += ["", f"The model is `{res['cost']['model']}`; the last column is the forward passes alone (k c and "
                  f"V(k + 1), no host work, no catching up): largest error {b['max_error']:.3f} "
                  f"[{_f(b['max_error_ci'][0])}, {_f(b['max_error_ci'][1])}], recommended k = {b['recommended_k']}.",
              "", f"Scaled by plain decoding (every cost times {h['plain_scaled']['scale']:.3f} "
                  f"[{_f(h['plain_scaled']['scale_ci'][0])}, {_f(h['plain_scaled']['scale_ci'][1])}], the model's "
                  "plain rate over the measured one, so that k = 0 is as measured): predicted / measured "
                  + ", ".join(f"{x:.3f}" for x in h["plain_scaled"]["ratio"]) + f" (k = 0..{res['kmax']}); largest "
                  f"error {h['plain_scaled']['max_error']:.3f} [{_f(h['plain_scaled']['max_error_ci'][0])}, "
                  f"{_f(h['plain_scaled']['max_error_ci'][1])}], recommended k = {h['plain_scaled']['recommended_k']}.",
              "", "Where a drafting round's seconds went (means per round that drafted), beside the model's, with "
                  "this run's own acceptance:", "",
              "| k | rounds | drafting s | model drafting s | verifying and the rest s | model verifying s |",
              "|---|---|---|---|---|---|"]
    for rc in d["round_cost"]:
        lines.append(f"| {rc['k']} | {rc['rounds']} | {rc['draft_seconds_per_draft']:.4f} | "
                     f"{rc['model_draft_seconds']:.4f} | {rc['verify_seconds_per_draft']:.4f} | "
                     f"{rc['model_verify_seconds']:.4f} |")
    w = h["with_overhead"]
    lines += ["", f"With the k0 = {h['k0']} run's round overhead carried to every k (o = {w['overhead']:.4f} s "
                  f"[{_f(w['overhead_ci'][0], '.4f')}, {_f(w['overhead_ci'][1], '.4f')}] per round: its measured "
                  "seconds per round less the model's, added to every round, plain decoding's included):", "",
              "| k | measured tokens/s (95%) | predicted with o (95%) | predicted / measured (95%) |",
              "|---|---|---|---|"]
    for m, p, pc, r, rc in zip(d["measured"], w["predicted"], w["predicted_ci"], w["ratio"], w["ratio_ci"]):
        lines.append(f"| {m['k']} | {m['tokens_per_second']:.3f} [{_f(m['ci'][0])}, {_f(m['ci'][1])}] | "
                     f"{p:.3f} [{_f(pc[0])}, {_f(pc[1])}] | {r:.3f} [{_f(rc[0])}, {_f(rc[1])}] |")
    if d.get("tree_curve"):
        t = d["tree_curve"]
        lines += ["", f"With `brw costcurve`'s tree-masked curve instead (k0 = {t['k0']}): predicted / measured "
                      f"{', '.join(f'{x:.3f}' for x in t['ratio'])} (k = 0..{res['kmax']}); largest error "
                      f"{t['max_error']:.3f}; recommended k = {t['recommended_k']}."]
    lines += ["", f"Recommended k = {h['recommended_k']} (the same k in {100 * h['recommended_share']:.0f}% of "
                  f"resamples); best measured k = {d['best_measured_k']}. Target (i), measured tokens/s at the "
                  f"recommended k over the best measured: {h['recommended_over_best']:.3f} "
                  f"[{_f(h['recommended_over_best_ci'][0])}, {_f(h['recommended_over_best_ci'][1])}] "
                  f"({'met' if h['target_i'] else 'missed'}: >= 0.95). Target (ii), the largest |predicted / "
                  f"measured - 1| over k = 0..{res['kmax']}: {h['max_error']:.3f} [{_f(h['max_error_ci'][0])}, "
                  f"{_f(h['max_error_ci'][1])}] ({'met' if h['target_ii'] else 'missed'}: <= 0.10). With the "
                  f"round overhead: recommended k = {w['recommended_k']}, target (i) {w['recommended_over_best']:.3f} "
                  f"({'met' if w['target_i'] else 'missed'}), target (ii) {w['max_error']:.3f} "
                  f"[{_f(w['max_error_ci'][0])}, {_f(w['max_error_ci'][1])}] "
                  f"({'met' if w['target_ii'] else 'missed'}).", "",
              "Every k0 (a log at k0 predicting every k):", "",
              "| k0 | recommended k | recommended / best measured (95%) | target (i) | max error (95%) "
              "| target (ii) | scaled by plain: max error (95%) | with o: recommended k | max error (95%) "
              "| target (ii) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in d["predictions"]:
        g, e, o, ps = p["recommended_over_best_ci"], p["max_error_ci"], p["with_overhead"], p["plain_scaled"]
        lines.append(f"| {p['k0']} | {p['recommended_k']} | {p['recommended_over_best']:.3f} [{_f(g[0])}, "
                     f"{_f(g[1])}] | {'met' if p['target_i'] else 'missed'} | {p['max_error']:.3f} [{_f(e[0])}, "
                     f"{_f(e[1])}] | {'met' if p['target_ii'] else 'missed'} | {ps['max_error']:.3f} "
                     f"[{_f(ps['max_error_ci'][0])}, {_f(ps['max_error_ci'][1])}] | {o['recommended_k']} | "
                     f"{o['max_error']:.3f} [{_f(o['max_error_ci'][0])}, {_f(o['max_error_ci'][1])}] | "
                     f"{'met' if o['target_ii'] else 'missed'} |")
    lines.append("")
    return lines


def markdown(res: dict, meta: dict) -> str:
    """The study as a page of tables (figures/specdecode.md).

    Parameters
    ----------
    res : dict
        :func:`analyse`'s result.
    meta : dict
        What ran: ``command``, ``model``, ``prompts``, ``tokens``, ``repeats``, ``context``, ``threads``,
        ``warmup``, ``load``, ``seconds``.

    Returns
    -------
    str
    """
    c = res["cost"]
    lines = [f"# A real speculative decoder on {meta['model']}, CPU: measured against the stated model", "",
             f"`{meta['command']}`", "",
             f"{res['blocks']} blocks ({meta['prompts']} prompts x {meta['repeats']} repeats), up to {meta['tokens']} "
             f"tokens per request, temperature 1, {meta['threads']} torch thread; in every block each configuration "
             f"runs once in a seeded random order, then one pass of the cost curve at context {meta['context']}. "
             f"Warm-up: {meta['warmup']}. Tokens per second = tokens emitted / seconds of the decoding rounds "
             "(prefill excluded), pooled over requests. Intervals: 95% block bootstrap "
             f"({res['boot']} resamples; cost passes resampled beside the blocks). Load average while it ran: "
             f"{meta['load']}." + (f" **Partial run: {meta['blocks_done']} of the {meta['blocks']} planned blocks** "
                                   "(the first repeat of the first prompts; the rest were not run)."
                                   if meta.get("blocks_done", 0) < meta.get("blocks", 0) else ""), "",
             f"## Cost curves (median of {c['passes']} passes)", "",
             "| tokens | verifier seconds, chain (causal mask) | 95% interval | tree mask (`brw costcurve`) |",
             "|---|---|---|---|"]
    tree = c.get("verify_tree") or [None] * len(c["verify"])
    for i, (v, iv, t) in enumerate(zip(c["verify"], c["verify_ci"], tree)):
        lines.append(f"| {i + 1} | {v:.4f} | [{iv[0]:.4f}, {iv[1]:.4f}] | {_f(t, '.4f')} |")
    lines += ["", "Drafter cost of a one-token forward (chain; tree mask in parentheses): " + ", ".join(
        f"`{d}` {v:.4f} s ({_f((c.get('draft_tree') or {}).get(d), '.4f')})" for d, v in c["draft"].items()) + "."]
    for d, curve in (c.get("draft_curve") or {}).items():
        if curve is not None:
            lines += ["", f"`{d}`'s forward over 1 and 2 tokens (logits of the last only, as it drafts; after a round "
                          "that kept every draft its first forward takes two): "
                          + ", ".join(f"{x:.4f}" for x in curve) + " s."]
    if c.get("host") is not None:
        lines += ["", f"Host work per token (a float64 softmax over the vocabulary and one draw), h = {c['host']:.5f} s "
                      f"[{_f(c['host_ci'][0], '.5f')}, {_f(c['host_ci'][1], '.5f')}]; prompt lookup's search per "
                      "round: " + ", ".join(f"`{d}` {v:.5f} s" for d, v in c["draft_search"].items() if v) + "."]
    lines += ["",
              f"Plain decoding: {res['plain']['tokens_per_second']:.3f} tokens/s [{res['plain']['ci'][0]:.3f}, "
              f"{res['plain']['ci'][1]:.3f}]; its mean round {res['plain']['round_seconds']:.4f} s is "
              f"{100 * res['plain']['overhead']:+.1f}% off the chain curve's V(1) (the round also samples, takes a "
              "softmax over the vocabulary and runs Python).", ""]
    for d in res["drafters"]:
        lines += _drafter_lines(d, res)
    return "\n".join(lines)
