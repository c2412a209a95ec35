"""Every text table of the package: what the command line prints without ``--json``.

Each function takes the JSON-ready dict a command returns (``brw.cli``) and gives the text, so that the numbers
on screen and in ``--json`` are the same numbers.
"""

from __future__ import annotations

import math

__all__ = ["frontier", "theory", "realtree", "record", "trace_info", "import_logprobs", "policies", "sequoia", "speedup",
           "deployment", "costcurve", "specdecode", "sweep", "sweep_bench", "sweep_slopes", "bench", "compare",
           "theory_check", "markdown", "reproduce", "reproduce_summary", "temperature"]


def frontier(d: dict) -> str:
    """accepted(P) with its standard error and tokens per step, and the bounds where ``--bounds`` added them.

    Parameters
    ----------
    d : dict
        ``brw frontier``'s result (``FrontierResult.to_dict`` and the ``BOUND_KEYS`` of ``brw.theory``).

    Returns
    -------
    str
        The table.
    """
    from brw.theory import BOUND_KEYS

    bounds = [b for b in BOUND_KEYS if b in d]
    lines = [f"law {d['law']}   mu = {d['mu']:.4f} nats   mu2 = {d['mu2']:.4f}   "
             f"{d['replicates']} replicates, seed {d['seed']}",
             f"{'P':>10} {'accepted':>10} {'stderr':>8} {'tokens/step':>12}"
             + "".join(f" {b.replace('_bound', '').replace('_', '-'):>12}" for b in bounds)]
    for i, (P, a, s) in enumerate(zip(d["P"], d["accepted"], d["stderr"])):
        se = "-" if s is None or math.isnan(s) else f"{s:.4f}"
        lines.append(f"{P:>10} {a:>10.4f} {se:>8} {a + 1:>12.4f}" + "".join(f" {d[b][i]:>12.4f}" for b in bounds))
    lines.append(f"{d['nodes_per_second']:.3g} nodes/s")
    return "\n".join(lines)


def theory(d: dict) -> str:
    """Every bound of a law at each P, the renewal bound's bracket width and the depth of the P-node tree.

    Parameters
    ----------
    d : dict
        ``brw.theory.bounds(...).to_dict()``.

    Returns
    -------
    str
        The table.
    """
    span = f"   lattice span {d['lattice_span']:.4f}" if d["lattice_span"] else ""
    lines = [f"law {d['law']}   mu = {d['mu']:.4f} nats   mu2 = {d['mu2']:.4f}{span}   "
             f"Biggins gamma = {d['biggins_gamma']:.4f}",
             f"{'P':>10} {'asymptotic':>11} {'renewal':>9} {'+/-':>8} {'Wald-Lorden':>12} {'paper':>9} {'depth':>7}"]
    for i, P in enumerate(d["P"]):
        lines.append(f"{P:>10} {d['asymptotic'][i]:>11.4f} {d['renewal_bound'][i]:>9.4f} "
                     f"{d['renewal_bound_width'][i]:>8.1e} {d['wald_lorden_bound'][i]:>12.4f} "
                     f"{d['paper_bound'][i]:>9.4f} {d['predicted_depth'][i]:>7.2f}")
    lines.append("accepted = E[X], bonus token excluded; renewal = identity 6 (upper end of its bracket, width +/-)")
    return "\n".join(lines)


def realtree(d: dict) -> str:
    """Real accepted(P) per source with standard errors, and the expansion speed.

    Parameters
    ----------
    d : dict
        ``brw.real.realtree.realtrees``'s summary.

    Returns
    -------
    str
        The table.
    """
    names = list(d["by_source"])
    lines = [f"{d['model']}: real optimal trees, {d['contexts']} contexts in {d['file']} "
             f"({d['new_contexts']} new, {d['resumed_contexts']} resumed)",
             f"{'P':>6} " + " ".join(f"{n + ' (' + str(d['by_source'][n]['contexts']) + ')':>22}" for n in names)]
    for j, P in enumerate(d["P"]):
        cells = []
        for n in names:
            a, s = d["by_source"][n]["accepted"][j], d["by_source"][n]["stderr"][j]
            cells.append(f"{'-' if a is None else f'{a:.3f}':>12} +- {'-' if s is None else f'{s:.3f}':<6}")
        lines.append(f"{P:>6} " + " ".join(cells))
    if d["nodes_per_second"]:
        lines.append(f"{d['nodes_per_second']:.3g} tree nodes/s, {d['seconds_per_context']:.2f} s per context on "
                     f"{d['device']} (batch {d['batch']}); {d['evaluated_per_node']:.2f} nodes evaluated per "
                     f"tree node")
    return "\n".join(lines)


def record(d: dict) -> str:
    """What a recording wrote: positions, contexts, mu, mu2 and its speed.

    Parameters
    ----------
    d : dict
        The summary of ``brw.real.recording.record_sampled``, ``record_teacher_forced`` or ``record_branches``.

    Returns
    -------
    str
        Two lines.
    """
    rate = d["positions_per_second"]
    if "branches" in d:  # record_branches: no sampling, so no mode, mu or mu2 of its own to report
        return (f"wrote {d['file']}: {d['positions']} positions on {d['branches']} greedy branches of "
                f"{d['depth']} steps from {d['source']}\n"
                f"{d['seconds']:.1f} s" + (f" ({rate:.1f} positions/s)" if rate else "")
                + (f", {d['resumed_parts']} of {d['parts']} contexts resumed" if d["resumed_parts"] else ""))
    return (f"wrote {d['file']}: {d['positions']} positions in {d['contexts']} contexts ({d['mode']}, "
            f"{d['model']} on {d['device']})\n"
            f"mu = {d['mu']:.4f} nats   mu2 = {d['mu2']:.4f}   "
            f"{d['recorded_now']} positions recorded now in {d['seconds']:.1f} s"
            + (f" ({rate:.1f}/s)" if rate else "")
            + (f", {d['resumed_batches']} of {d['batches']} batches resumed" if d["resumed_batches"] else ""))


def trace_info(d: dict) -> str:
    """A trace's size, mu and mu2 with confidence intervals, its tail fit and an entropy histogram.

    Parameters
    ----------
    d : dict
        ``brw.traces.trace_summary``'s result.

    Returns
    -------
    str
        The summary.
    """
    lines = [f"trace {d['file']}",
             f"  model {d['model']}  mode {d['mode']}  temperature {d['temperature']}  vocabulary {d['vocab_size']}"
             f"  top-k {d['k']}",
             f"  {d['positions']} positions in {d['contexts']} contexts",
             f"  mu  = {d['mu']:.4f} nats    95% CI [{d['mu_ci'][0]:.4f}, {d['mu_ci'][1]:.4f}] (bootstrap over "
             f"contexts, {d['bootstrap']} resamples)",
             f"  mu2 = {d['mu2']:.4f} nats^2  95% CI [{d['mu2_ci'][0]:.4f}, {d['mu2_ci'][1]:.4f}]"]
    if "mu_bracket" in d:
        lines.append(f"  bracket from the truncated top-k: mu in [{d['mu_bracket'][0]:.4f}, {d['mu_bracket'][1]:.4f}], "
                     f"mu2 in [{d['mu2_bracket'][0]:.4f}, {d['mu2_bracket'][1]:.4f}]")
    lines += [f"  top-1 probability > 0.9 at {100 * d['top1_above_0_9']:.1f}% of positions; mean tail mass beyond "
              f"the top {d['k']}: {d['mean_tail_mass']:.4f}; mean NLL of the taken token {d['mean_nll_taken']:.4f}",
              f"  trace law: tail as {d['tail_groups']} groups, exact on {100 * d['tail_exact_share']:.2f}% of rows; "
              f"law mu - mu = {d['law_mu_minus_mu']:.2e}, law mu2 - mu2 = {d['law_mu2_minus_mu2']:.2e}",
              "  entropy histogram (nats):"]
    counts = d["entropy_hist_counts"]
    edges = d["entropy_hist_edges"]
    peak = max(max(counts), 1)
    for i, c in enumerate(counts):
        bar = "#" * int(round(50 * c / peak))
        lines.append(f"  {edges[i]:5.1f}-{edges[i + 1]:<5.1f} {c:>7} {bar}")
    return "\n".join(lines)


def import_logprobs(d: dict) -> str:
    """What an import of logprobs JSON wrote, with the brackets of mu and mu2 the top-k leaves open.

    Parameters
    ----------
    d : dict
        The summary of ``brw.real.importers.import_logprobs``.

    Returns
    -------
    str
        Three lines.
    """
    return (f"wrote {d['file']}: {d['positions']} positions in {d['contexts']} contexts, top-{d['k']} of a "
            f"{d['vocab_size']}-token vocabulary, mean tail mass {d['mean_tail_mass']:.4f}\n"
            f"mu  in [{d['mu_bracket'][0]:.4f}, {d['mu_bracket'][1]:.4f}] (width {d['mu_bracket_width']:.4f}); "
            f"trace uses {d['mu']:.4f} ({d['tail_point']})\n"
            f"mu2 in [{d['mu2_bracket'][0]:.4f}, {d['mu2_bracket'][1]:.4f}] (width {d['mu2_bracket_width']:.4f}); "
            f"trace uses {d['mu2']:.4f}")


def policies(d: dict) -> str:
    """Each drafting policy's accepted(P) beside the optimal frontier's, and its paired gap to it.

    Parameters
    ----------
    d : dict
        ``brw policies``'s result (``brw.drafting.policies(...).to_dict()``).

    Returns
    -------
    str
        The two tables.
    """
    def cell(v, se=None):
        if v is None:
            return f"{'-':>16}"
        return f"{v:>9.4f}" + (f" {se:>6.4f}" if se is not None else " " * 7)

    name_w = max(len("frontier"), *(len(p["policy"]) for p in d["policies"]))
    head = f"{'':<{name_w}}" + "".join(f"{'P = ' + str(P):>16}" for P in d["P"])
    lines = [f"law {d['law']}   mu = {d['mu']:.4f} nats   {d['replicates']} replicates, seed {d['seed']}",
             "accepted (standard error)", head,
             f"{'frontier':<{name_w}}" + "".join(cell(a, s) for a, s in zip(d["frontier"], d["frontier_stderr"]))]
    for p in d["policies"]:
        lines.append(f"{p['policy']:<{name_w}}" + "".join(cell(a, s) for a, s in zip(p["accepted"], p["stderr"])))
    lines += ["gap to the frontier on the same trees (paired standard error)", head]
    for p in d["policies"]:
        lines.append(f"{p['policy']:<{name_w}}" + "".join(cell(g, s) for g, s in zip(p["gap"], p["gap_stderr"])))
    lines.append("accepted = E[X], bonus token excluded; '-': not scored at that P")
    return "\n".join(lines)


def sequoia(d: dict) -> str:
    """Sequoia's tree for an acceptance vector beside the best-first tree of the sorted vector.

    Parameters
    ----------
    d : dict
        ``brw sequoia``'s result (``SequoiaTree.to_dict()`` and the best-first keys).

    Returns
    -------
    str
        Four lines.
    """
    limit = "no depth limit" if d["max_depth"] is None else f"depth at most {d['max_depth']}"
    return "\n".join([
        f"Sequoia tree of {d['n']} nodes (root counted), {limit}, {len(d['acceptance'])} ranks",
        f"tokens per step {d['tokens_per_step']:.4f}   depth {d['depth']}",
        "widths " + " ".join(str(w) for w in d["widths"]),
        f"best-first tree of the sorted vector {d['best_first_tokens_per_step']:.4f} (gap {d['gap']:.4f})",
    ])


def speedup(d: dict) -> str:
    """The throughput-optimal P of a law at a verifier cost, and the speed-up over plain decoding.

    Parameters
    ----------
    d : dict
        ``brw speedup``'s result (``brw.speedup.speedup(...).to_dict()``).

    Returns
    -------
    str
        Three lines.
    """
    return "\n".join([
        f"law {d['law']}   cost {d['cost']}   drafting {d['draft_step']:g} s/step + {d['draft_token']:g} s/token   "
        f"{d['replicates']} replicates, seed {d['seed']}",
        f"optimal P = {d['optimal_P']} (of 0..{d['pmax']}): {d['tokens_per_second']:.4g} +- "
        f"{d['tokens_per_second_stderr']:.2g} tokens/s, accepted {d['accepted']:.4f}, {d['step_seconds']:.4g} s "
        "per step",
        f"plain decoding {d['plain_tokens_per_second']:.4g} tokens/s; speed-up {d['speedup']:.3f}x "
        "(the speed of light: no drafter that commits to its tree exceeds it at this cost)",
    ] + [f"  {p['policy']:<30} optimal P = {p['optimal_P']:<6} {p['tokens_per_second']:.4g} tokens/s, speed-up "
         f"{p['speedup']:.3f}x" for p in d.get("policies", [])])


def _f(x, spec: str = ".4f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def deployment(d: dict) -> str:
    """A deployment's measurement, and with a law and a cost its speed of light and the recommended k.

    Parameters
    ----------
    d : dict
        ``brw deployment``'s result (``brw.deployment.Deployment.to_dict()``).

    Returns
    -------
    str
        The table.
    """
    tokens = "" if d["draft_tokens"] is None else f" ({d['draft_tokens']} draft tokens)"
    model = f", model {d['model']}" if d.get("model") else ""
    lo, hi = d["accepted_per_step_ci"]
    lines = [f"{d['format']}: k = {_f(d['k'], 'd') if d['k'] is not None else '?'}, {d['drafts']} drafts{tokens}, "
             f"{d['accepted_tokens']} tokens accepted{model}",
             f"accepted per step {d['accepted_per_step']:.4f} [{_f(lo)}, {_f(hi)}] (bonus token excluded); "
             f"acceptance length {d['acceptance_length']:.4f} (bonus included, as the engines print it)"]
    if d["survival"] is not None:
        lines.append(f"{'j':>4} {'P(accept >= j)':>15} {'95% interval':>20}")
        for j, (s, (a, b)) in enumerate(zip(d["survival"], d["survival_ci"]), 1):
            lines.append(f"{j:>4} {s:>15.4f}   [{a:.4f}, {b:.4f}]")
    lines.append(f"intervals: {d['interval_method']}")
    if "speed_of_light" in d:
        lines += [f"against {d['law']} (mu = {d['law_mu']:.4f} nats"
                  + (f", bracket [{d['law_mu_bracket'][0]:.4f}, {d['law_mu_bracket'][1]:.4f}]"
                     if d.get("law_mu_bracket") else "") + f"; {d['replicates']} trees, seed {d['seed']}):",
                  f"  {'speed of light (optimal ' + str(d['k']) + '-node tree)':<38} {d['speed_of_light']:.4f} +- "
                  f"{_f(d['speed_of_light_stderr'])}   measured = {_f(d['share_of_speed_of_light'], '.1%')} of it",
                  f"  {'best ' + str(d['k']) + '-token chain':<38} {d['chain_speed_of_light']:.4f} +- "
                  f"{_f(d['chain_speed_of_light_stderr'])}   measured = "
                  f"{_f(d['share_of_chain_speed_of_light'], '.1%')} of it",
                  f"  {'greedy chain':<38} {d['greedy_chain']:.4f} +- {_f(d['greedy_chain_stderr'])}",
                  "  (accepted per step, bonus excluded; these bound deterministic drafting: speed_of_light_scope)"]
        lines += [f"  note: {n}" for n in d.get("limit_notes", [])]
    q = d.get("sequoia")
    if q:
        lines.append(f"Sequoia's tree of {q['n']} nodes on the measured rank-1 acceptance {q['acceptance'][0]:.4f}: "
                     f"{q['tokens_per_step']:.4f} tokens/step against the chain's {q['chain_tokens_per_step']:.4f} "
                     f"(gain {q['gain']:.4f}), widths {' '.join(map(str, q['widths']))}")
    if "tokens_per_second" in d:
        sol = "speed_of_light_tokens_per_second" in d
        lines.append(f"cost {d['cost']}, drafting {d['draft_step']:g} s/step + {d['draft_token']:g} s/token "
                     f"(k > {d['extrapolation']['measured_up_to']}: extrapolated, conditional acceptance "
                     f"{d['extrapolation']['A']:.3f} x {d['extrapolation']['r']:.3f}^(j-1))")
        lines.append(f"{'k':>4} {'accepted':>9} {'tokens/s':>10} {'95% interval':>22}"
                     + (f" {'tree limit':>11} {'chain limit':>12}" if sol else ""))
        for i, k in enumerate(d["k_values"]):
            a, b = d["tokens_per_second_ci"][i]
            mark = " <" if k == d["recommended_k"] else ("  (deployed)" if k == d["k"] else "")
            lines.append(f"{k:>4} {d['accepted_model'][i]:>9.4f} {d['tokens_per_second'][i]:>10.4g}   "
                         f"[{a:.4g}, {b:.4g}]".ljust(48)
                         + (f" {d['speed_of_light_tokens_per_second'][i]:>11.4g} "
                            f"{d['chain_speed_of_light_tokens_per_second'][i]:>12.4g}" if sol else "") + mark)
        lines.append(f"recommended k = {d['recommended_k']} ({d['recommended_k_support']:.0%} of the draws agree): "
                     f"{d['recommended_tokens_per_second']:.4g} tokens/s, {d['speedup_recommended']:.3f}x plain "
                     f"decoding; deployed k = {d['k']}: {d['deployed_tokens_per_second']:.4g} tokens/s "
                     f"({d['speedup_deployed']:.3f}x)")
        if sol:
            lines.append(f"speed of light: {d['speed_of_light_tokens_per_second'][d['speed_of_light_k']]:.4g} tokens/s "
                         f"at k = {d['speed_of_light_k']}; headroom {d['headroom']:.3f}x over the recommended k")
    lines += [f"note: {n}" for n in d["notes"]]
    return "\n".join(lines)


def sweep(d: dict) -> str:
    """What a sweep computed, reused and failed, and where its table lies.

    Parameters
    ----------
    d : dict
        ``brw sweep``'s summary (``brw.sweeps.sweep(...).attrs["sweep"]``).

    Returns
    -------
    str
        A line, and one per failed point.
    """
    lines = [f"{d['points']} points: {d['computed']} computed, {d['reused']} reused, {len(d['failed'])} failed "
             f"({d['seconds']:.1f} s); table {d['out']}/results.parquet"]
    lines += [f"failed: {f['kind']} {f['law']} P={','.join(map(str, f['P']))}: {f['error']}" for f in d["failed"]]
    return "\n".join(lines)


def sweep_bench(d: dict) -> str:
    """The sweep layer's overhead per small point and share of the kernels' throughput, beside the targets.

    Parameters
    ----------
    d : dict
        ``SweepBenchmark.to_dict()`` (``brw.studies.sweep_bench``).

    Returns
    -------
    str
        Two tables (markdown) and the targets.
    """
    s, g = d["small"], d["large"]
    c = d["cores"]
    lines = [
        f"# Sweep layer speed (brw {d['version']}, {c} cores, load average {d['load_average'][0]:.1f} -> "
        f"{d['load_average'][1]:.1f}; fastest of {s['repeats']} (small) and {g['repeats']} (large) interleaved runs)",
        "",
        f"Small points ({s['points'][0]} and {s['points'][1]} points of 4 trees at P <= 64; the kernels alone "
        f"take {s['kernel_ms_per_point_one_thread']:.2f} ms a point on one thread). Overhead = marginal wall time "
        f"per point x {c} cores - the kernels' time:",
        "",
        "| split | sweep of N1 / N2 (s) | points/s | fixed cost (s) | marginal wall ms/point "
        "| overhead core-ms/point |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("default", f"{c} worker processes x 1 thread (default)"),
                        ("threads", f"1 process x {c} threads (workers=1)")):
        r = s[name]
        lines.append(f"| {label} | {r['seconds'][0]:.2f} / {r['seconds'][1]:.2f} | {r['points_per_second']:.0f} | "
                     f"{r['fixed_seconds']:.2f} | {r['marginal_ms_per_point']:.2f} | "
                     f"{r['overhead_core_ms_per_point']:.2f} |")
    lines += [
        "",
        f"Large points ({g['points']} points of 16 trees of 2^18 nodes, {g['nodes'] / 1e6:.0f}M nodes; the kernels "
        f"alone in a plain loop in one process on {c} threads: {g['kernel_seconds']:.1f} s, "
        f"{g['kernel_nodes_per_second'] / 1e6:.2f}M nodes/s):",
        "",
        "| where | seconds | nodes/s | share of the kernels' throughput |",
        "|---|---|---|---|",
    ]
    for name, label in (("default", f"local, 1 process x {c} threads (default for large points)"),
                        ("processes", f"local, {c} worker processes x 1 thread (workers={c})"),
                        ("dask_local_2", "Dask LocalCluster, 2 worker processes")):
        r = g[name]
        extra = (f" ({r['share_with_startup']:.1%} counting the cluster's {r['startup_seconds']:.1f} s start-up)"
                 if "startup_seconds" in r else "")
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['nodes_per_second'] / 1e6:.2f}M | "
                     f"{r['share_of_kernel']:.1%}{extra} |")
    lines += ["", "| target | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {what} | {m:.3g} | {t:g} | {'yes' if ok else 'NO'} |" for what, m, t, ok in d["checks"]]
    return "\n".join(lines)


def sweep_slopes(d: dict) -> str:
    """The slope of accepted(P) against log P per law beside 1/mu, the renewal bound's slope and the paper's.

    Parameters
    ----------
    d : dict
        ``SweepSlopes.to_dict()`` (``brw.studies.sweep_slopes``).

    Returns
    -------
    str
        A markdown table.
    """
    rows = d["laws"]
    lo, hi = rows[0]["P"]
    lines = [f"# Slope of accepted(P) against log P, P = {lo} .. {hi} ({rows[0]['trees']} trees per law in "
             f"{rows[0]['batches']} batches)", "",
             "| law | mu | slope (+- se) | 1/mu | slope x mu | renewal bound's slope | (slope - renewal) / se "
             "| paper's (mu+mu2)/mu^2 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['law']}` | {r['mu']:.3f} | {r['slope']:.5f} +- {r['stderr']:.5f} | "
                     f"{r['inverse_mu']:.5f} | {r['slope_times_mu']:.4f} | {r['renewal_slope']:.5f} | "
                     f"{(r['slope'] - r['renewal_slope']) / r['stderr']:+.1f} | {r['paper_slope']:.3f} |")
    return "\n".join(lines)


def _m(x):
    """A rate in millions, or "-"."""
    return "-" if x is None else f"{x / 1e6:.3g}M"


def bench(d: dict) -> str:
    """Nodes per second of every kernel on 1 and 2 threads, their ratios, memory, start-up and the targets.

    Parameters
    ----------
    d : dict
        ``Benchmark.to_dict()`` (``brw.studies.bench``).

    Returns
    -------
    str
        The table.
    """
    th = d["threads"]
    load = ", ".join(f"{x:.1f}" for x in d["load_average"])
    lines = [f"brw bench {d['version']} ({d['cpus']} cpus, load average {load}): nodes per second, best of "
             f"{d['repeats']} interleaved repeats",
             f"{'kernel':<12}" + "".join(f"{f'{t} thread':>12}" for t in th)
             + (f"{'speed-up':>10}{'work eff.':>10}" if len(th) > 1 else "")]
    for row in d["laws"]:
        r = row["nodes_per_second"]
        lines.append(f"{row['law']}   (P = {row['P']}, {row['replicates']} replicates; threshold at x = "
                     f"{row['threshold_x']:.2f}, {row['threshold_nodes_per_tree']:.3g} nodes per tree)")
        if "reference" in r:
            lines.append(f"{'reference':<12}{_m(r['reference']):>12}   (pure Python, P = {row['reference_P']})")
        else:
            lines.append(f"{'reference':<12}{'-':>12}   ({row['reference_note']})")
        for kern in ("frontier", "threshold", "floor"):
            line = f"{kern:<12}" + "".join(f"{_m(r[f'{kern}@{t}']):>12}" for t in th)
            if "thread_scaling" in row:
                line += f"{row['thread_scaling'][kern]:>10.2f}{row['thread_work_efficiency'][kern]:>10.2f}"
            lines.append(line)
        lines.append(f"{'best-first':<12}{_m(r['best_first@1']):>12}   (heap kernel of frontier_tree, one tree)")
        q = row["ratios"]
        ref = q["frontier_over_reference"]
        lines.append("  ratios: " + (f"frontier/reference {ref:.0f}x, " if ref is not None else "")
                     + f"floor/frontier {q['floor_over_frontier']:.2f}, floor/threshold "
                     f"{q['floor_over_threshold']:.2f}, "
                     f"frontier/best-first {q['frontier_over_best_first_1thread']:.2f}")
    b = d.get("big_tree")
    if b:
        mem = b["bytes_per_node_measured"]
        lines.append(f"one tree of {b['nodes']:.3g} nodes ({b['law']}), brw.frontier on 1 thread: {b['seconds']:.2f} s "
                     f"({_m(b['nodes_per_second'])} nodes/s in the kernel); peak memory "
                     + (f"{mem:.1f}" if mem is not None else "?") + " bytes per node")
    s = d.get("startup")
    if s:
        first = s.get("first_call_seconds")
        lines.append("start-up, fresh process to first frontier result: "
                     + (f"empty kernel cache {first:.1f} s, " if first is not None else "")
                     + f"filled cache {s['cached_seconds']:.2f} s (first result after "
                     f"{s['cached_compute_starts_seconds']:.2f} s of it); numba alone: import "
                     f"{s['numba_floor']['import_numba_seconds']:.2f} s + first cached call "
                     f"{s['numba_floor']['first_cached_call_seconds']:.2f} s")
    lines.append("speed-up: wall-clock rate on 2 threads over 1 (needs idle cores); work eff.: CPU time per node "
                 "on 1 thread over 2 (1.00 = threads add no work)")
    lines.append("targets:")
    for what, val, target, met in d.get("checks", []):
        mark = "n/a" if met is None else ("met" if met else "MISSED")
        lines.append(f"  {mark:<7}{what}: {val:.3g} (target {target})")
    return "\n".join(lines)


def _interval(e: float, lo: float, hi: float) -> str:
    """A relative error with its 95% interval, in percent: ``-2.8% [-6, +1]``."""
    return f"{e:+.1%} [{lo * 100:+.0f}, {hi * 100:+.0f}]"


def compare(d: dict) -> str:
    """Real accepted(P) per genre beside each model's prediction, and each relative error with its 95% interval
    against the plain and the adjusted real mean.

    Parameters
    ----------
    d : dict
        ``Comparison.to_dict()`` (``brw.studies.compare``; whole curves may be absent).

    Returns
    -------
    str
        The table.
    """
    from brw.studies.compare import MODELS, SIMULATORS

    folds = d.get("folds", 1)
    lines = [f"real optimal trees of {d['model']} (P <= {d['pmax']}) against every model, "
             + (f"out of sample ({folds}-fold over recorded generations)" if folds > 1 else "in sample")
             + f"; simulations: {d['replicates']} trees per law and fold, seed {d['seed']} (each fold its own "
             f"spawned stream), {d['regimes']} Markov regimes, {d['components']} gemmix components; errors "
             f"(prediction - real) / real with 95% intervals from both standard errors"]
    width = 20
    for name, g in d["genres"].items():
        lines.append("")
        head = f"{name}: {g['contexts']} contexts"
        if isinstance(g["mu"], float) and math.isfinite(g["mu"]):
            head += f", mu = {g['mu']:.3f}, mu2 = {g['mu2']:.3f}"
        if g.get("entropy_autocorrelation"):
            head += ", entropy autocorrelation along the text " + ", ".join(
                f"lag {k}: {v:.2f}" for k, v in g["entropy_autocorrelation"].items())
        lines.append(head)
        lines.append(f"{'accepted':34}" + "".join(f"{'P=' + str(p):>{width}}" for p in d["P"]))
        lines.append(f"{'real (mean +- standard error)':34}" + "".join(
            f"{f'{m:.3f} +-{s:.3f}':>{width}}" for m, s in zip(g["real"], g["real_stderr"])))
        adjusted = "real_adjusted" in g
        if adjusted:
            lines.append(f"{'real, adjusted':34}" + "".join(
                f"{f'{m:.3f} +-{s:.3f}':>{width}}" for m, s in zip(g["real_adjusted"], g["real_adjusted_stderr"]))
                + ("  (covariates: " + ", ".join(g["adjustment"]) + ")" if g.get("adjustment") else ""))
        for m, label in MODELS.items():
            r = g["models"][m]
            lines.append(f"{label:34}" + "".join(
                f"{f'{a:.3f} +-{s:.3f}' if s > 0 else f'{a:.3f}':>{width}}" for a, s in zip(r["accepted"], r["stderr"])))
        blocks = [("against the real mean", MODELS, lambda r: r)]
        if adjusted:
            blocks.append(("against the adjusted real mean", SIMULATORS, lambda r: r["adjusted"]))
        for title, models, pick in blocks:
            lines.append(f"{'error ' + title:34}" + "".join(f"{'P=' + str(p):>{width}}" for p in d["P"])
                         + f"{'mean |err|':>11}{'max |err|':>10}{'max |end|':>10}")
            for m in models:
                r = pick(g["models"][m])
                lines.append(f"{MODELS[m]:34}" + "".join(
                    f"{_interval(e, lo, hi):>{width}}" for e, lo, hi in zip(
                        r["relative_error"], r["relative_error_low"], r["relative_error_high"]))
                    + f"{r['mean_abs_relative_error']:>11.1%}{r['max_abs_relative_error']:>10.1%}"
                    + f"{r['max_abs_interval_end']:>10.1%}")
        lines.append(f"best simulator: {g['best_simulator']}"
                     + (f" ({g['best_simulator_adjusted']} against the adjusted real)"
                        if "best_simulator_adjusted" in g else "")
                     + (f"; the gemmix fit's mu2 is {g['gemmix_mu2']:.3f}" if math.isfinite(g["gemmix_mu2"]) else ""))
        dec = g.get("decomposition")
        if dec and math.isfinite(dec["contexts_share"][-1]):
            lines.append(f"gap over the i.i.d. walk at P={d['P'][-1]}: {dec['gap'][-1]:+.3f}; contexts explain "
                         f"{dec['contexts_share'][-1]:.0%}, greedy runs {dec['runs_share'][-1]:.0%}, unexplained "
                         f"{dec['unexplained_share'][-1]:.0%} (instead of runs: paths {dec['paths_share'][-1]:.0%}, "
                         f"edges {dec['edges_share'][-1]:.0%}, recorded prefixes {dec['prefixes_share'][-1]:.0%})")
        sl = g.get("slope_per_doubling")
        if sl:
            lines.append(f"per doubling of P ({sl['from_P']} -> {sl['to_P']}): real {sl['real']:.3f} +- "
                         f"{sl['real_stderr']:.3f}" + (f", ln2/mu {sl['ln2_over_mu']:.3f}"
                                                     if math.isfinite(sl["ln2_over_mu"]) else "")
                         + "".join(f", {m} {sl[m]:.3f}"
                                   for m in ("empirical", "markov", "ctx", "path", "edge", "run", "prefix")))
        if g.get("entropy_after_surprisal"):
            lines.append("mean entropy after a token of surprisal " + _by_surprisal(g["entropy_after_surprisal"])
                         + " (the recorded text)")
        if g.get("fold_seeds"):
            lines.append("fold seeds (brw frontier --seed): " + ", ".join(
                f"{k}: {v}" for k, v in g["fold_seeds"].items()))
    return "\n".join(lines)


def real_summary(runs: dict, law: str = "prefix", tolerance: float = 0.05, interval: float = 0.08) -> str:
    """Where the real-tree comparisons stand, per model and genre: the adjusted real mean's precision and each
    simulated law's worst error over P against it, out of sample, read from ``brw compare`` results.

    Parameters
    ----------
    runs : dict
        Label (for instance ``SmolLM2, P <= 1024``) -> ``Comparison.to_dict()``.
    law : str
        The law the first table holds to the targets (a key of ``brw.studies.compare.SIMULATORS``), named
        beforehand: choosing per row the law with the least worst error would favour the luckiest.
    tolerance, interval : float
        The targets the table marks: the worst |error| within ``tolerance`` ("resolved" where its whole 95%
        interval is inside, or outside, +-``tolerance``) and that interval inside +-``interval``.

    Returns
    -------
    str
        Two Markdown tables: the law's standing, and every simulated law's worst |error|.
    """
    from brw.studies.compare import MODELS, SIMULATORS

    rows, law_rows = [], []
    for label, d in runs.items():
        P = d["P"]
        for name, g in d["genres"].items():
            rel_se = [s / m for p, m, s in zip(P, g["real_adjusted"], g["real_adjusted_stderr"]) if p >= 4]
            r = g["models"][law]["adjusted"]
            i = max(range(len(P)), key=lambda j: abs(r["relative_error"][j]))  # the worst P
            e, lo, hi = r["relative_error"][i], r["relative_error_low"][i], r["relative_error_high"][i]
            within = "yes" if abs(e) <= tolerance else "no"
            if max(abs(lo), abs(hi)) <= tolerance or lo > tolerance or hi < -tolerance:
                within += ", resolved"
            rows.append([label, name, g["contexts"], max(rel_se), P[i], _interval(e, lo, hi), within,
                         "yes" if max(abs(lo), abs(hi)) <= interval else "no"])
            law_rows.append([label, name] + [g["models"][m]["adjusted"]["max_abs_relative_error"] for m in SIMULATORS])
    head = markdown(["model", "genre", "trees", "adjusted real SE, worst at P >= 4",
                     f"{MODELS[law].split(': ')[-1]}: worst at P", "error [95% interval]", f"within {tolerance:.0%}",
                     f"interval inside +-{interval:.0%}"],
                    ["s", "s", "d", ".2%", "d", "s", "s", "s"], rows)
    laws = markdown(["model", "genre"] + [MODELS[m].split(": ")[-1] for m in SIMULATORS],
                    ["s", "s"] + [".1%"] * len(SIMULATORS), law_rows)
    return (head + "\n\nEvery simulated law's worst |error| over P against the adjusted real mean:\n\n" + laws)


def transfer(d: dict) -> str:
    """Laws off their own genre and model (``brw.studies.transfer``): per law, the worst |error| over P <= 256
    of the law fitted to each source trace on each target's trees; then, per target, the predictors a user can
    build from the target's own sampled trace (and another genre's greedy branches), every error with its 95%
    interval.

    Parameters
    ----------
    d : dict
        ``Transfer.to_dict()``.

    Returns
    -------
    str
        The table.
    """
    from brw.studies.compare import MODELS, SIMULATORS
    from brw.studies.transfer import TARGET_P

    sources, targets = d["sources"], d["targets"]
    lines = [f"laws off their own genre and model: each law fitted to a source trace (columns) predicts a target "
             f"genre's real trees (rows); worst |error| over P <= {TARGET_P} against the target's adjusted real "
             f"mean ({d['replicates']} trees per law, seed {d['seed']}; own genre: see brw compare)"]
    width = max(len(s) for s in sources) + 2
    for m in SIMULATORS:
        lines += ["", f"{MODELS[m]:36}" + "".join(f"{s:>{width}}" for s in sources)]
        for t, x in targets.items():
            lines.append(f"{'  on ' + t:36}" + "".join(
                f"{'-' if s == t else format(x['worst'][f'{m}:{s}']['max_abs_error'], '.0%'):>{width}}"
                for s in sources))
    lines += ["", f"what a user can build (the target's own sampled trace, {d['folds']}-fold out of sample; transfer: "
              f"times the source's prefix with branches / without): error at each P [95% interval]; worst |error| "
              f"and worst |interval end| over P <= {TARGET_P}"]
    for t, x in targets.items():
        lines += ["", f"{t} ({x['contexts']} contexts; adjusted real " + ", ".join(
            f"P={p}: {a:.3f} +-{s:.3f}" for p, a, s in zip(x["P"], x["real_adjusted"], x["real_adjusted_stderr"])) + ")"]
        rows = [(f"own trace: {MODELS[m].split(': ')[-1]}", x["own"][m], x["worst"][f"own:{m}"]) for m in x["own"]]
        rows += [(f"transfer from {s}", r, x["worst"][f"transfer:{s}"]) for s, r in x["transfer"].items()]
        for label, r, w in rows:
            lines.append(f"  {label:40}" + "".join(
                f"{_interval(e, lo, hi):>20}" for e, lo, hi in zip(r["relative_error"], r["relative_error_low"],
                                                                   r["relative_error_high"]))
                + f"{w['max_abs_error']:>8.1%}{w['max_abs_interval_end']:>8.1%}")
    return "\n".join(lines)


def _by_surprisal(bins) -> str:
    """Means per bin of ``brw.real.realtree.SURPRISAL_BINS``: ``[0, 0.05) 0.90, ...``."""
    from brw.real.realtree import SURPRISAL_BINS

    return ", ".join(f"[{lo:g}, {hi:g}) {m:.2f}" if n else f"[{lo:g}, {hi:g}) -"
                     for (lo, hi), (m, n) in zip(zip(SURPRISAL_BINS[:-1], SURPRISAL_BINS[1:]), bins))


def node_statistics(d: dict) -> str:
    """Next-token distributions inside real trees: per source, their spread and correlation along paths.

    Parameters
    ----------
    d : dict
        ``brw.real.realtree.node_statistics``'s result.

    Returns
    -------
    str
        The table.
    """
    w = max(8, *(len(name) + 1 for name in d))
    lines = ["next-token distributions of real tree nodes (each node's own; leaves never evaluated left out)",
             f"{'':{w}}{'trees':>7}{'nodes':>9}{'mean H':>9}{'mean top1':>11}{'parent-child corr':>19}"
             f"{'within trees':>14}{'between-tree share':>20}  mean H at depth 1, 2, 4, 8, 16"]
    for name, s in d.items():
        by = s["entropy_by_depth"]
        depths = " ".join(f"{by[k - 1]:.2f}" if k <= len(by) else "-" for k in (1, 2, 4, 8, 16))
        lines.append(f"{name:{w}}{s['trees']:>7}{s['nodes']:>9}{s['mean_entropy']:>9.3f}{s['mean_top1']:>11.3f}"
                     f"{s['parent_child_entropy_correlation']:>19.3f}{s['within_tree_correlation']:>14.3f}"
                     f"{s['between_tree_share']:>20.3f}  {depths}")
    lines.append("mean H of nodes by the surprisal of the edge into them (nats)")
    lines += [f"{name:{w}}{_by_surprisal(s['entropy_by_edge_surprisal'])}" for name, s in d.items()
              if s.get("entropy_by_edge_surprisal")]
    return "\n".join(lines)


def spine_statistics(d: dict) -> str:
    """Real trees' greedy spines against the sampled text they branch from, per source.

    Parameters
    ----------
    d : dict
        ``brw.real.realtree.spine_statistics``'s result.

    Returns
    -------
    str
        The table.
    """
    if not d:
        return ""
    depth = len(next(iter(d.values()))["trees"])
    w = max(8, *(len(name) + 1 for name in d))
    lines = ["the greedy spine of real trees (chain of most probable children) against the recorded sampled text: "
             "mean next-token entropy (nats) at depth d",
             f"{'':{w}}{'':>22}" + "".join(f"{'d=' + str(k):>7}" for k in range(1, depth + 1))]
    for name, s in d.items():
        for key, label, fmt in (("spine_entropy", "spine", ".2f"), ("text_entropy", "text, d tokens on", ".2f"),
                                ("text_took_top", "text took its top", ".2f"), ("trees", "trees reaching d", "d")):
            lines.append(f"{name if key == 'spine_entropy' else '':{w}}{label:>22}"
                         + "".join(f"{v:>7{fmt}}" if fmt == "d" or math.isfinite(v) else f"{'-':>7}" for v in s[key]))
    return "\n".join(lines)


def theory_check(d: dict) -> str:
    """The theory check as a Markdown table: slopes and offsets at P_max beside every bound, per law.

    Parameters
    ----------
    d : dict
        ``TheoryCheck.to_dict()`` (``brw.studies.theory_check``).

    Returns
    -------
    str
        Markdown.
    """
    rows, e = d["laws"], int(math.log2(d["P_max"]))
    lines = [
        f"# Theory check: slope and offset of accepted(P), P = 2^6 .. 2^{e}",
        "",
        f"`python sims/verify_theory.py` (brw {d['version']}, seed {d['seed']}): one sweep, {d['replicates']} "
        "trees per random law (one for a deterministic law), accepted(P) read at every P to 2^6 and 64 P per "
        f"doubling above. slope: least squares of accepted(P) on log P over the powers of two 2^6..2^{e} (mean "
        "of the replicates' fits; +- one standard error; deterministic laws are exact). asym slope: the same fit "
        "applied to the sharp asymptotic (it differs from 1/mu by the curvature of log(P + 1) and, for lattice "
        "laws, their log-periodic wiggle); renewal slope: the same fit applied to the renewal bound (exact "
        f"numerics, no o(1) dropped). Offsets at P = 2^{e}: accepted, the sharp asymptotic (lattice form where "
        "h > 0), the renewal bound (identity 6, upper end of its bracket), Wald-Lorden, the paper's bound without "
        f"O(1). asym - acc range: over the grid's P from 2^6 to 2^{e}.",
        "",
        "| law | mu | mu2 | h | slope | 1/mu | asym slope | renewal slope | paper slope | accepted | asymptotic "
        "| renewal | Wald-Lorden | paper | asym - acc range |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        se = "" if r["deterministic"] else f" +- {r['slope_se']:.4f}"
        ase = "" if r["deterministic"] else f" +- {r['accepted_se_at_max']:.3f}"
        lo, hi = r["asymptotic_error_range"]
        lines.append(
            f"| {r['law']} | {r['mu']:.3f} | {r['mu2']:.3f} | {r['lattice_span']:.3f} | {r['slope']:.4f}{se} | "
            f"{r['inv_mu']:.4f} | {r['asymptotic_fit_slope']:.4f} | {r['renewal_fit_slope']:.4f} | "
            f"{r['paper_slope']:.3f} | "
            f"{r['accepted_at_max']:.3f}{ase} | {r['asymptotic_at_max']:.3f} | {r['renewal_bound_at_max']:.3f} | "
            f"{r['wald_lorden_at_max']:.3f} | {r['paper_at_max']:.3f} | {lo:+.3f} .. {hi:+.3f} |")
    lat = [r for r in rows if r["smooth_plus_h_error_range"]]
    if lat:
        lines += ["", "Lattice laws: error of the 'smooth formula + h/(2 mu)' over the same P "
                      "(the lattice form's error is in the table):", ""]
        for r in lat:
            a, b = r["smooth_plus_h_error_range"]
            lines.append(f"- {r['law']} (h = {r['lattice_span']:.3f}): {a:+.3f} .. {b:+.3f}")
    lines += ["", "Where accepted(P) <= paper bound (no O(1)) holds from, measured on the grid: "
              + ", ".join(f"{r['law']}: P >= {r['paper_holds_from_P']}" for r in rows), "", ""]
    return "\n".join(lines)


def costcurve(d: dict) -> str:
    """A measured verifier cost curve: seconds of one forward against the number of new tokens.

    Parameters
    ----------
    d : dict
        ``brw costcurve``'s result (``brw.real.costcurve.cost_curve(...).to_dict()`` and the ``out`` path).

    Returns
    -------
    str
        A header, one row per token count, and where the table was written.
    """
    shape = "in a chain" if d.get("mask") == "chain" else "in a tree"
    lines = [f"{d['model']} on {d['device']} ({d['dtype']}, {d['threads']} threads): one forward over k new tokens "
             f"{shape} after {d['context']} cached, median of {d['repeats']}",
             f"{'tokens':>7} {'seconds':>11} {'x 1 token':>10}"]
    for k, s in zip(d["tokens"], d["seconds"]):
        lines.append(f"{k:>7} {s:>11.4g} {s / d['seconds'][0]:>10.2f}")
    lines.append(f"wrote {d['out']}")
    return "\n".join(lines)


def temperature(d: dict, tolerance: float = 0.05) -> str:
    """accepted(P) against T per genre: the simulations, the theory's relative errors and the tempered law's
    summaries, then where the theory stops following the simulated i.i.d. walk.

    Parameters
    ----------
    d : dict
        ``TemperatureSweep.to_dict()`` with ``breakdown`` (``TemperatureSweep.breakdown(tolerance)``) added.
    tolerance : float, optional
        The tolerance the breakdown used (for the header).

    Returns
    -------
    str
        The table.
    """
    lines = [f"accepted(P) against the temperature T: {d['replicates']} simulated trees per law and T, seed "
             f"{d['seed']}; theory of the tempered i.i.d. law (relative error against the simulated i.i.d. walk)"]
    for g in d["genres"]:
        c, st = d["curves"][g], d["stats"][g]
        lines += ["", f"{g}:", f"{'T':>5} {'mu':>6} {'top1':>5} {'p<=.05':>6}  " + "".join(
            f"{'P=' + str(p) + ' iid':>17}{'prefix':>15}{'asym':>7}{'renew':>7}" for p in d["P"])]
        for i, t in enumerate(d["temperatures"]):
            row = f"{t:>5g} {st['mu'][i]:>6.3f} {st['top1'][i]:>5.3f} {st['near_deterministic'][i]:>6.3f}  "
            for j in range(len(d["P"])):
                iid = c["iid"][i][j]
                row += f"{iid:>9.3f} +-{c['iid_stderr'][i][j]:<5.3f}"
                row += f"{c['prefix'][i][j]:>9.3f} +-{c['prefix_stderr'][i][j]:<3.2f}"
                row += f"{(c['asymptotic'][i][j] - iid) / iid:>+7.1%}{(c['renewal_bound'][i][j] - iid) / iid:>+7.1%}"
            lines.append(row)
        for r in d["real"].get(g, []):
            lines.append(f"real trees ({r['results']}, T = {r['T']:g}, {r['contexts']} contexts): " + ", ".join(
                f"P={p} {a:.3f} +- {s:.3f}" for p, a, s in zip(d["P"], r["accepted"], r["stderr"]) if a is not None))
        f = d.get("fitted_07", {}).get(g)
        if f:
            lines.append("prefix: fitted to the traces sampled at T = 0.7, at 0.7: " + ", ".join(
                f"P={p} {a:.3f} +- {s:.3f}" for p, a, s in zip(d["P"], f["accepted"], f["stderr"])))
        b = d.get("breakdown", {}).get(g)
        if b:
            for m in ("asymptotic", "renewal_bound"):
                stops = b[m]["stops_at"]
                lines.append(f"{m} off the simulated i.i.d. walk by more than {tolerance:.0%} at T <= (highest such "
                             f"T): " + ", ".join(f"P={p}: {'-' if t is None else format(t, 'g')}"
                                                 for p, t in stops.items()))
    return "\n".join(lines)


def specdecode(d: dict) -> str:
    """A speculative decoding run: throughput, acceptance and the files written.

    Parameters
    ----------
    d : dict
        ``brw specdecode``'s result (``brw.real.specdecode.run_requests(...).to_dict()``).

    Returns
    -------
    str
        A header, the run's totals, its per-position acceptance and where the logs went.
    """
    lines = [f"{d['model']}: {d['requests']} requests, k = {d['k']}" + (f", drafter {d['drafter']}" if d['drafter']
                                                                         else " (plain decoding)"),
             f"{d['tokens']} tokens in {d['rounds']} rounds, {d['decode_seconds']:.2f} s decoding "
             f"({d['tokens_per_second']:.2f} tokens/s; prefill {d['prefill_seconds']:.2f} s not counted)"]
    if d["drafts"]:
        lines.append(f"{d['drafts']} drafts, {d['draft_tokens']} tokens drafted, {d['accepted_tokens']} accepted: "
                     f"{d['accepted_per_draft']:.3f} accepted per draft (bonus excluded), mean acceptance length "
                     f"{d['mean_acceptance_length']:.3f} (bonus included)")
        lines.append("share of drafts accepting at least j tokens: "
                     + ", ".join(f"{j}: {s:.3f}" for j, s in enumerate(d["survival"], 1)))
    lines.append(f"warm-up: {d['warmup']}")
    lines += [f"wrote {f}" for f in d["files"]]
    return "\n".join(lines)


def _cell(value, spec: str) -> str:
    """One table cell: None (or NaN) as a dash, text as code when it is a spec, numbers in ``spec``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if spec == "s":
        text = str(value)
        return f"`{text}`" if ":" in text and " " not in text else text
    return format(value, spec)


def markdown(columns, formats, rows) -> str:
    """A Markdown table.

    Parameters
    ----------
    columns : list of str
        Headers.
    formats : list of str, or list of such lists
        Each column's ``format`` spec (``s``: text; specs written ``a:b`` show as code); or one list per row.
    rows : list of list
        Raw values; None prints as a dash.

    Returns
    -------
    str
        The table.
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    per_row = bool(formats) and isinstance(formats[0], list)
    lines += ["| " + " | ".join(_cell(v, f) for v, f in zip(row, formats[i] if per_row else formats)) + " |"
              for i, row in enumerate(rows)]
    return "\n".join(lines)


def reproduce(d: dict) -> str:
    """The report of ``brw reproduce``: each figure with its caption and the table behind it.

    Parameters
    ----------
    d : dict
        ``brw.studies.reproduce.Reproduction.to_dict()`` (what ``results.json`` holds).

    Returns
    -------
    str
        ``REPORT.md``, Markdown.
    """
    mode = "`--quick` (small sizes: a check, not a measurement)" if d["quick"] else "the default sizes"
    lines = [f"# brw {d['version']}: every figure of the findings", "",
             f"Written by `brw reproduce` with {mode} from brw's bundled traces, real trees and real-drafter "
             f"results, the measured cost curve and the simulator, in {d['seconds']:.0f} s. Every number below "
             "comes from this run (`results.json` holds them); nothing here is written by hand.", ""]
    if d.get("sweeps"):
        lines += ["Simulations through the sweep layer (points kept in `.sweep/`, reused by the next run): "
                  + "; ".join(f"{name} {c['points']} points ({c['computed']} computed, {c['reused']} reused)"
                              for name, c in d["sweeps"].items()) + ".", ""]
    for s in d["steps"]:
        pngs = [f for f in s["figures"] if f.endswith(".png")]  # shown; the rest (SVG) linked
        others = ", ".join(f"[{f.rsplit('.', 1)[-1].upper()}]({f})" for f in s["figures"] if f not in pngs)
        lines += [f"## {s['number']}. {s['title']}", ""]
        for png in pngs:
            lines += [f"![{s['title']}]({png})", ""]
        lines += [s["caption"], ""]
        lines += [f"*{n}*" for n in s["notes"]] + ([""] if s["notes"] else [])
        lines += [markdown(s["columns"], s["formats"], s["rows"]), ""]
        lines += [f"Figure: {others}; {s['seconds']:.0f} s." if others else f"{s['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def reproduce_summary(d: dict) -> str:
    """What ``brw reproduce`` wrote: each figure, its time, and the report.

    Parameters
    ----------
    d : dict
        ``brw.studies.reproduce.Reproduction.to_dict()``.

    Returns
    -------
    str
        One line per figure and one for the report.
    """
    lines = [f"{s['number']}. {s['title']}: {', '.join(s['figures'])} ({s['seconds']:.1f} s)" for s in d["steps"]]
    lines.append(f"report: {d['report']} ({d['seconds']:.1f} s in all)")
    return "\n".join(lines)


def compiled(d: dict) -> str:
    """What ``brw compile`` did: each job's seconds, the functions moved into the cache, the wall time.

    Parameters
    ----------
    d : dict
        ``brw.studies.warmup.Compiled.to_dict()``.

    Returns
    -------
    str
    """
    jobs = ", ".join(f"{j} {d['seconds'][j]:.1f} s" for j in d["jobs"] if j in d["seconds"])
    lines = [f"compiled in {d['processes']} process{'es' if d['processes'] > 1 else ''}: {jobs}"]
    if d["processes"] > 1:
        lines.append(f"{d['functions']} functions moved into the cache, {d['kept']} already there (kept)")
    lines += [f"cache: {c}" for c in d["cache"]]
    lines.append(f"{d['wall']:.1f} s in all")
    return "\n".join(lines)
