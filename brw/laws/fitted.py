"""Laws fitted to a trace: a parametric mixture and a context-correlated (Markov-modulated) law.

- ``gemmix:s=S1/S2/...,theta=T1/T2/...,w=W1/W2/...``: a mixture of "spike + GEM" vectors. Component c, chosen
  with probability w_c at every node, puts mass s_c on one token and spreads 1 - s_c as GEM(theta_c)
  stick-breaking (theory.md section 2 for GEM). mu, mu2, psi and the spine step are exact closed forms.
  :func:`fit_gemmix` fits it to the joint law of (top-1 probability, entropy) of a trace: components are
  quantile bins of the recorded top-1 probability, s_c is the bin's mean top-1 probability and theta_c makes
  the component's expected entropy equal the bin's mean recorded entropy, so mu equals the trace's.
- ``markov:trace=NAME,regimes=G[,holdout=j/K]``: theory.md section 7(a). Rows of the trace are split into G regimes by
  quantiles of their recorded entropy; every node carries a regime, its children draw theirs from the
  transition matrix fitted to consecutive positions along the recorded text, and a node's vector is a
  uniformly drawn row of its regime. The root's regime follows the regimes' frequencies in the trace, so
  every node's marginal law is the trace's empirical law; only the correlation along paths is added. With
  one regime it is the ``trace:`` law exactly (the same tree for the same seed). ``holdout=j/K`` fits it to
  the trace less fold j of K of its recorded contexts (``trace:NAME,holdout=j/K``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import special

from brw.checks import whole_number
from brw.errors import BrwError, clip
from brw.kernel_law import KIND_GEM, KIND_TABLE, KernelLaw
from brw.laws.base import Law, register_law
from brw.spec import check_holdout, fmt, holdout_text, parse_fields, parse_float, parse_holdout, parse_int
from brw.laws.rows import STICKS_ABOVE_ONE, SampledRows, sampled_sticks
from brw.limits import require
from brw.stats import binned_means, regime_of_rows

__all__ = ["GEMMix", "MarkovTrace", "entropy_autocorrelation", "entropy_after_surprisal", "entropy_after_run",
           "fit_gemmix", "fit_markov",
           "gem_entropy"]


def gem_entropy(theta):
    """The expected entropy of GEM(theta).

    Parameters
    ----------
    theta : float or array_like
        GEM parameters, > 0.

    Returns
    -------
    numpy.ndarray
        E[H] = E[-log B] with B ~ Beta(1, theta) (the size-biased pick): digamma(theta + 1) - digamma(1).
    """
    return special.digamma(np.asarray(theta, dtype=np.float64) + 1.0) - special.digamma(1.0)


def _theta_for_entropy(h: float) -> float:
    """The theta with gem_entropy(theta) = h (gem_entropy increases from 0 to infinity), within [1e-9, 1e12].

    Past theta = 1e12 (an entropy of 28.2 nats, more than a vocabulary of 2^31 tokens holds) the largest is
    returned: such an h comes only from a spike clipped to 1 - 1e-9 whose row recorded a little more entropy than
    its top-1 allows (within the trace's tolerance), and the GEM part of that spike carries 1e-9 of the mass."""
    from scipy import optimize  # here, not at import: it costs every start-up a fifth of a second

    if h <= 1e-9:
        return 1e-9
    if h >= gem_entropy(1e12):
        return 1e12
    return float(optimize.brentq(lambda t: gem_entropy(t) - h, 1e-12, 1e12, xtol=1e-14, rtol=1e-14))


def _binary_entropy(s):
    s = np.asarray(s, dtype=np.float64)
    return -special.xlogy(s, s) - special.xlogy(1 - s, 1 - s)


@register_law
@dataclass(frozen=True, eq=False)
class GEMMix(Law):
    """Mixture over components c (weight w_c) of: one atom s_c, and 1 - s_c spread as GEM(theta_c).

    At T < 1 (T > 1 is refused: the tempered mass of infinitely many unbroken sticks has no bound there) the
    kernels temper every node's vector on the fly, and mu, mu2, psi and the spine step are Monte Carlo estimates
    from a fixed sample of tempered vectors (:func:`brw.laws.rows.stick_rows`; ``moment_stderr``)."""

    s: tuple[float, ...]
    theta: tuple[float, ...]
    w: tuple[float, ...]
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "gemmix"
    _arr: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._check_temperature(1.0, STICKS_ABOVE_ONE)
        try:
            s, th, w = (np.asarray(v, dtype=np.float64) for v in (self.s, self.theta, self.w))
            where = f"gemmix law {clip(self.spec)}"
        except (TypeError, ValueError):
            raise BrwError(f"gemmix law needs vectors of numbers s, theta and w, got "
                           f"{clip(repr((self.s, self.theta, self.w)), 80)}") from None
        if not (s.ndim == th.ndim == w.ndim == 1 and s.size == th.size == w.size >= 1):
            raise BrwError(f"{where}: s, theta and w need the same number (>= 1) of entries")
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(th)) and np.all(np.isfinite(w))):
            raise BrwError(f"{where}: entries must be finite numbers")
        if np.any(s < 0) or np.any(s >= 1):
            raise BrwError(f"{where}: every s must lie in [0, 1)")
        if np.any(th <= 0):
            raise BrwError(f"{where}: every theta must be > 0")
        if np.any(w < 0) or abs(math.fsum(w) - 1) > 1e-9:
            raise BrwError(f"{where}: weights w must be >= 0 and sum to 1 within 1e-9")
        object.__setattr__(self, "_arr", (s, th, w))

    def __eq__(self, other):
        return isinstance(other, GEMMix) and (self.s, self.theta, self.w, self.T) == (
            other.s, other.theta, other.w, other.T)

    def __hash__(self):
        return hash((self.s, self.theta, self.w, self.T))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("s", "theta", "w"))
        vals = {k: tuple(parse_float(v, k, spec) for v in f[k].split("/")) for k in ("s", "theta", "w")}
        return cls(vals["s"], vals["theta"], vals["w"])

    @property
    def base_spec(self):
        return "gemmix:" + ",".join(f"{k}=" + "/".join(fmt(v) for v in getattr(self, k)) for k in ("s", "theta", "w"))

    @property
    def _sampled(self) -> SampledRows:
        """The Monte Carlo sample of tempered vectors (T != 1 only)."""
        return sampled_sticks(self.s, self.theta, self.w, self.T)

    @property
    def moment_stderr(self) -> tuple[float, float]:
        """Standard errors of ``mu`` and ``mu2``: 0 at T = 1 (closed forms), else the Monte Carlo sample's."""
        return (0.0, 0.0) if self.T == 1.0 else self._sampled.stderr

    def _components(self):
        s, th, w = self._arr
        ls = np.log(np.where(s > 0, s, 1.0))
        l1s = np.log1p(-s)
        m = gem_entropy(th)  # E[-log B], B ~ Beta(1, theta)
        m2 = m**2 + special.polygamma(1, 1) - special.polygamma(1, th + 1)  # E[log^2 B]
        return s, th, w, ls, l1s, m, m2

    @property
    def mu(self):
        if self.T != 1.0:
            return self._sampled.mu
        s, th, w, ls, l1s, m, m2 = self._components()
        return float(np.sum(w * (_binary_entropy(s) + (1 - s) * m)))

    @property
    def mu2(self):
        if self.T != 1.0:
            return self._sampled.mu2
        s, th, w, ls, l1s, m, m2 = self._components()
        # Spike: s (log s)^2. Rest: (1 - s) E[(log(1 - s) + log B)^2].
        comp = s * ls**2 + (1 - s) * (l1s**2 - 2 * l1s * m + m2)
        return float(np.sum(w * comp))

    def psi(self, theta):
        if self.T != 1.0:
            return self._sampled.psi(theta)
        t = np.asarray(theta, dtype=np.float64)
        s, th, w, ls, l1s, m, m2 = self._components()
        tt = t[..., None]
        # E[sum p^t] = s^t + (1 - s)^t E[sum GEM^t], E[sum GEM^t] = theta Gamma(t) Gamma(theta) / Gamma(t + theta)
        gem = np.log(th) + special.gammaln(tt) + special.gammaln(th) - special.gammaln(tt + th)
        spike = np.where(s > 0, tt * ls, -np.inf)
        comp = np.logaddexp(spike, tt * l1s + gem)
        return special.logsumexp(comp, b=w, axis=-1)

    def spine_atoms(self):
        return self._sampled.spine_atoms() if self.T != 1.0 else None

    def spine_cdf(self, x, *, strict=False):
        if self.T != 1.0:
            return super().spine_cdf(x, strict=strict)
        x = np.asarray(x, dtype=np.float64)
        s, th, w, ls, l1s, m, m2 = self._components()
        xx = x[..., None]
        at = -ls  # the spike's step
        spike = np.where(xx > at, 1.0, np.where(xx == at, 0.0 if strict else 1.0, 0.0)) * np.where(s > 0, s, 0.0)
        y = xx + l1s  # -log B <= x + log(1 - s)
        rest = (1 - s) * np.where(y > 0, (-np.expm1(-np.maximum(y, 0))) ** th, 0.0)
        return np.sum(w * (spike + rest), axis=-1)

    def spine_sample(self, rng, n):
        if self.T != 1.0:
            return super().spine_sample(rng, n)
        s, th, w, *_ = self._components()
        c = rng.choice(s.size, size=n, p=w / w.sum())
        spike = rng.random(n) < s[c]
        rest = -np.log1p(-s[c]) - np.log(rng.beta(1.0, th[c]))
        return np.where(spike, -np.log(np.where(s[c] > 0, s[c], 1.0)), rest)

    @property
    def lattice_span(self):
        return 0.0

    def kernel_law(self):
        s, th, w = self._arr
        tempered = [] if self.T == 1.0 else [1.0 / self.T]  # KIND_GEM's optional last parameter: 1 / T
        params = np.concatenate([[float(s.size)], s, th, np.cumsum(w), tempered])
        return KernelLaw(KIND_GEM, np.zeros((1, 1)), params, 0)



def fit_gemmix(trace, components: int = 12) -> GEMMix:
    """Fit ``gemmix`` to the joint law of (top-1 probability, entropy) of a trace (see the module notes).

    Parameters
    ----------
    trace : brw.traces.Trace
        The recorded rows.
    components : int, optional
        Quantile bins of the top-1 probability, one component each (default 12; empty bins are dropped).

    Returns
    -------
    GEMMix
        The fitted law; its mu equals the trace's mean entropy.
    """
    components = whole_number(components, "components")
    n = trace.top_logp.shape[0]
    if components > n:
        raise BrwError(f"components={components} is more than the {n} positions of the trace: at most "
                       f"components={n} fits (each component is a quantile bin of positions)")
    top1 = np.exp(np.asarray(trace.top_logp[:, 0], dtype=np.float64))
    h = np.asarray(trace.entropy, dtype=np.float64)
    edges = np.quantile(top1, np.linspace(0, 1, components + 1))
    bins = np.clip(np.searchsorted(edges, top1, side="right") - 1, 0, components - 1)
    s, th, w = [], [], []
    for c in range(components):
        sel = bins == c
        if not sel.any():
            continue
        sc = float(np.clip(top1[sel].mean(), 0.0, 1.0 - 1e-9))
        hq = max(float(h[sel].mean()) - float(_binary_entropy(sc)), 0.0) / (1.0 - sc)
        s.append(float(f"{sc:.9g}"))
        th.append(float(f"{_theta_for_entropy(hq):.9g}"))
        w.append(int(sel.sum()))
    w = np.asarray(w, dtype=np.float64) / len(top1)
    w[0] += 1.0 - math.fsum(w)
    return GEMMix(tuple(s), tuple(th), tuple(float(v) for v in w))


# --------------------------------------------------------------------------------------------------------
# The Markov-modulated law.


def _consecutive(trace):
    """(order, next): rows sorted along their texts, and whether row i + 1 follows row i in the same text."""
    order = np.lexsort((trace.offset, trace.context))
    c, o = trace.context[order], trace.offset[order]
    return order, (c[1:] == c[:-1]) & (o[1:] == o[:-1] + 1)


def entropy_autocorrelation(trace, lags=(1, 2)) -> dict:
    """Correlation of the recorded entropy at positions t and t + lag of the same text.

    An i.i.d. law sets it to zero; a one-step Markov law makes it decay geometrically.

    Parameters
    ----------
    trace : brw.traces.Trace
        The recorded rows.
    lags : sequence of int, optional
        Lags in positions (default 1 and 2).

    Returns
    -------
    dict
        Lag -> Pearson correlation (NaN with fewer than three pairs).
    """
    n = trace.top_logp.shape[0]
    lags = [whole_number(lag, "lag") for lag in np.atleast_1d(np.asarray(lags, dtype=object))]
    if any(lag >= n for lag in lags):
        raise BrwError(f"lags must be below the {n} positions of the trace, got {max(lags)}")
    order, nxt = _consecutive(trace)
    h = np.asarray(trace.entropy, dtype=np.float64)[order]
    out = {}
    for lag in lags:
        ok = np.ones(h.size - lag, dtype=bool)
        for j in range(lag):
            ok &= nxt[j:j + h.size - lag]
        out[int(lag)] = float(np.corrcoef(h[:-lag][ok], h[lag:][ok])[0, 1]) if ok.sum() > 2 else float("nan")
    return out


def entropy_after_surprisal(trace) -> list:
    """Mean recorded entropy at position t + 1 of a text by the surprisal -log p of the token taken at t.

    A law that draws the next row without looking at the token taken (i.i.d., regimes, recorded paths) makes
    these means equal; a real text makes the entropy fall after a likely token, and a best-first tree, which
    grows its likely edges first, inherits that (``brw.real.realtree.node_statistics``: the same bins over tree
    edges).

    Parameters
    ----------
    trace : brw.traces.Trace
        The recorded rows.

    Returns
    -------
    list of [mean entropy (nats) or NaN, count], one per bin of ``brw.real.realtree.SURPRISAL_BINS``
    """

    order, nxt = _consecutive(trace)
    s = -np.asarray(trace.taken_logp, dtype=np.float64)[order]
    h = np.asarray(trace.entropy, dtype=np.float64)[order]
    return binned_means(s[:-1][nxt], h[1:][nxt])


def entropy_after_run(trace, cap: int = 8) -> list:
    """Mean recorded entropy by the greedy run before a position: 0, 1, ..., ``cap`` or more top tokens taken
    in a row right before it (``brw.laws.context.greedy_runs``; what ``run:`` conditions on).

    Parameters
    ----------
    trace : brw.traces.Trace
    cap : int, optional
        Runs from cap on are one.

    Returns
    -------
    list of [mean entropy (nats) or NaN, count], one per run 0..cap
    """
    from brw.laws.context import greedy_runs

    cap = whole_number(cap, "cap")
    run = np.minimum(greedy_runs(trace), cap)
    h = np.asarray(trace.entropy, dtype=np.float64)
    return [[float(h[run == k].mean()) if np.any(run == k) else math.nan, int(np.sum(run == k))]
            for k in range(cap + 1)]


def _check_regimes(regimes, rows: int) -> int:
    """Regimes are entropy-quantile bins of rows (at most one per row), and cost a regimes x regimes matrix."""
    regimes = whole_number(regimes, "regimes")
    if regimes > rows:
        raise BrwError(f"regimes={regimes} is more than the {rows} positions of the trace: at most regimes={rows} "
                       f"fits (each regime is an entropy-quantile bin of positions)")
    # The counts, the transitions and their cumulative form in the kernels' parameters, with temporaries.
    require("regimes", regimes, lambda g: 40.0 * g * g, what="a Markov-modulated law")
    return regimes


def fit_markov(trace, regimes: int):
    """Fit the regimes of the ``markov`` law to a trace.

    Parameters
    ----------
    trace : brw.traces.Trace
        The recorded rows.
    regimes : int
        Number of entropy-quantile regimes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(regime per row, transition matrix, regime frequencies)``: transitions are counted between
        consecutive positions of the same context (offset t -> t + 1); a regime with no recorded successor
        keeps the frequencies as its row.
    """
    regimes = _check_regimes(regimes, trace.top_logp.shape[0])
    reg = regime_of_rows(np.asarray(trace.entropy), regimes)
    freq = np.bincount(reg, minlength=regimes) / reg.size
    order, nxt = _consecutive(trace)
    r = reg[order]
    counts = np.zeros((regimes, regimes))
    np.add.at(counts, (r[:-1][nxt], r[1:][nxt]), 1.0)
    tot = counts.sum(axis=1, keepdims=True)
    trans = np.where(tot > 0, counts / np.where(tot > 0, tot, 1.0), freq[None, :])
    return reg, trans, freq


@register_law
@dataclass(frozen=True, eq=False)
class MarkovTrace(Law):
    """theory.md section 7(a) on a trace: regimes by entropy quantiles, inherited along the tree; ``holdout``
    (j, K) fits it to the trace less fold j of K of its recorded contexts."""

    trace_source: str
    regimes: int
    holdout: tuple[int, int] | None = None
    T: float = field(default=1.0, kw_only=True)
    name: ClassVar[str] = "markov"

    def __post_init__(self):
        self._check_temperature()
        whole_number(self.regimes, "regimes")
        object.__setattr__(self, "holdout", check_holdout(self.holdout, "markov"))
        from brw.laws.trace import TraceLaw  # here: parsing gemmix needs no trace machinery

        base = TraceLaw(self.trace_source, self.holdout, T=self.T)  # regimes from the tempered rows' entropy
        reg, trans, freq = fit_markov(base.trace, self.regimes)
        order = np.argsort(reg, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(reg, minlength=self.regimes))]).astype(np.int64)
        if np.any(np.diff(offsets) == 0):
            raise BrwError(f"markov law: trace {self.trace_source!r} has too few distinct entropies for "
                           f"{self.regimes} regimes; use fewer")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "row_regime", reg)
        object.__setattr__(self, "transitions", trans)
        object.__setattr__(self, "frequencies", freq)
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_offsets", offsets)

    def __eq__(self, other):
        return isinstance(other, MarkovTrace) and (self.trace_source, self.regimes, self.holdout, self.T) == (
            other.trace_source, other.regimes, other.holdout, other.T)

    def __hash__(self):
        return hash(("markov", self.trace_source, self.regimes, self.holdout, self.T))

    @classmethod
    def from_spec_body(cls, body, spec):
        f = parse_fields(body, spec, ("trace", "regimes"), ("holdout",))
        holdout = parse_holdout(f["holdout"], spec) if "holdout" in f else None
        return cls(f["trace"], parse_int(f["regimes"], "regimes", spec, minimum=1), holdout)

    @property
    def base_spec(self):
        return f"markov:trace={self.trace_source},regimes={self.regimes}{holdout_text(self.holdout)}"

    # A node's marginal law is the trace's: the same exact quantities.
    @property
    def mu(self):
        return self.base.mu

    @property
    def mu2(self):
        return self.base.mu2

    def psi(self, theta):
        return self.base.psi(theta)

    def spine_atoms(self):
        return self.base.spine_atoms()

    @property
    def lattice_span(self):
        return 0.0

    def kernel_law(self):
        kl = self.base.kernel_law()
        g = self.regimes
        params = np.concatenate([[float(g)], self._offsets.astype(np.float64), np.cumsum(self.frequencies),
                                 np.cumsum(self.transitions, axis=1).ravel()])
        return KernelLaw(KIND_TABLE, np.ascontiguousarray(kl.table[self._order]), params, kl.width,
                         np.ascontiguousarray(kl.tails[self._order]))
