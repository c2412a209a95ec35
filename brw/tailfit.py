"""Tail-fit numerics: the mass a trace row leaves beyond its top-k, as the kernels' tail groups.

A recorded row keeps its k largest log-probabilities and three statistics of the whole vocabulary (entropy,
second log-moment, mass outside the top k). :func:`tail_bounds` brackets what a tail of that mass can add to
the two moments (used to validate traces and to bracket imported ones); :func:`fit_tails` builds, per row, a
tail of a few groups of equal atoms whose moments match the recorded ones, so the ``trace:`` law represents
the tail instead of dropping it; :func:`tail_moments` gives a fitted tail's contributions back.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TAIL_GROUPS", "tail_bounds", "fit_tails", "tail_moments"]

#: Tail groups per row (see fit_tails).
TAIL_GROUPS = 3

# A fitted tail's integer counts, and which of several exact fits is kept, hang on the last bit of the
# arithmetic; so that a trace's law is the same on every machine, the fit takes exp and log from the C library
# element by element (numpy's vectorised ones differ by CPU: AVX-512 has its own) and solves its 3 x 3 Newton
# systems itself (LAPACK's kernels differ by CPU).
_EXP = np.frompyfunc(math.exp, 1, 1)
_LOG_MAX = math.log(np.finfo(np.float64).max)
_LOG = np.frompyfunc(math.log, 1, 1)


def _exp(x):
    """exp by the C library (math.exp); overflow gives inf, as numpy's does."""
    x = np.asarray(x, dtype=np.float64)
    big = x > _LOG_MAX
    return np.where(big, np.inf, np.asarray(_EXP(np.where(big, 0.0, x)), dtype=np.float64))


def _log(x):
    """log by the C library (math.log); 0 gives -inf, as numpy's does."""
    x = np.asarray(x, dtype=np.float64)
    pos = x > 0
    out = np.where(pos, 0.0, np.where(x == 0, -np.inf, np.nan))
    out[pos] = np.asarray(_LOG(x[pos]), dtype=np.float64)
    return out


def _solve3(a, b):
    """Solve a[i] z = b[i] for every i (a: (R, 3, 3), b: (R, 3)) by Gaussian elimination with partial pivoting;
    a singular system gives non-finite entries."""
    a, b = a.copy(), b.copy()
    r = np.arange(a.shape[0])
    with np.errstate(all="ignore"):
        for k in range(3):
            p = k + np.argmax(np.abs(a[:, k:, k]), axis=1)
            a[r, k], a[r, p] = a[r, p].copy(), a[r, k].copy()
            b[r, k], b[r, p] = b[r, p].copy(), b[r, k].copy()
            for i in range(k + 1, 3):
                f = a[:, i, k] / a[:, k, k]
                a[:, i, k:] -= f[:, None] * a[:, k, k:]
                b[:, i] -= f * b[:, k]
        z = np.empty_like(b)
        for i in (2, 1, 0):
            z[:, i] = (b[:, i] - (a[:, i, i + 1:] * z[:, i + 1:]).sum(axis=1)) / a[:, i, i]
    return z


def tail_bounds(top_logp: np.ndarray, vocab_size: int | None = None):
    """Per row, the range of the tail's contributions to the entropy and the second log-moment.

    The tail carries m = 1 - sum(top-k) in tokens each at most as probable as the k-th (q <= p_k), at most
    ``vocab_size - k`` of them (unbounded when None).

    - h = -sum q log q. Concave, so its minimum is at a vertex of {0 <= q <= p_k, sum q = m}: floor(m/p_k)
      tokens at p_k and one remainder; its maximum is m spread evenly over vocab_size - k tokens.
    - s = sum q (log q)^2. q (log q)^2 is concave on [0, 1/e], so when p_k <= 1/e (always when k >= 3) the
      same two configurations bound it exactly. When p_k > 1/e the lower bound is Cauchy-Schwarz, s >= h^2/m
      >= h_lo^2/m, and the even spread still bounds it above (the concave envelope of q (log q)^2 agrees with it
      near 0, where m/(V - k) lies).

    Parameters
    ----------
    top_logp : array of shape (N, k)
        Each row's top-k log-probabilities, sorted decreasing.
    vocab_size : int or None
        The vocabulary size V; None leaves the tail's spread, and so the upper bounds, unbounded.

    Returns
    -------
    h_lo, h_hi, s_lo, s_hi : arrays of shape (N,)
        Bounds on the tail's contributions to the entropy (h) and the second log-moment (s); an upper bound
        of -inf marks a row whose tail cannot fit in the vocabulary.
    """
    top = np.asarray(top_logp, dtype=np.float64)
    n = top.shape[0]
    lpk = top[:, -1]
    pk = np.exp(lpk)
    m = np.clip(1.0 - np.exp(top).sum(axis=1), 0.0, None)
    full = np.floor(m / pk)
    rem = np.clip(m - full * pk, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        lrem = np.where(rem > 0, np.log(np.where(rem > 0, rem, 1.0)), 0.0)
        h_lo = full * pk * (-lpk) - rem * lrem
        s_conc = full * pk * lpk**2 + rem * lrem**2
        cs = np.where(m > 0, h_lo**2 / np.where(m > 0, m, 1.0), 0.0)
    s_lo = np.where(pk <= math.exp(-1), s_conc, cs)
    if vocab_size is None:
        h_hi = np.full(n, np.inf)
        s_hi = np.full(n, np.inf)
    else:
        nt = max(vocab_size - top.shape[1], 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lq = np.where(m > 0, np.log(np.where(m > 0, m, 1.0) / max(nt, 1)), 0.0)
        # No room for a tail (V = k): its contributions are 0, and the mass check bounds what rounding left.
        h_hi = np.where(m > 0, -m * lq, 0.0) if nt > 0 else np.zeros(n)
        s_hi = np.where(m > 0, m * lq**2, 0.0) if nt > 0 else np.zeros(n)
        # A tail spread evenly cannot put more than p_k on a token: a row whose m/(V-k) > p_k has no room.
        h_hi = np.where((m > 0) & (np.exp(lq) > pk * (1 + 1e-9)), -np.inf, h_hi)
        s_hi = np.where((m > 0) & (np.exp(lq) > pk * (1 + 1e-9)), -np.inf, s_hi)
    return h_lo, h_hi, s_lo, s_hi


def fit_tails(top_logp: np.ndarray, entropy: np.ndarray, log_moment2: np.ndarray):
    """Tail groups that give each row its recorded entropy and second log-moment.

    A row's top-k leaves mass m = 1 - sum exp(top_logp) (computed from the stored top-k, so every law vector
    sums to 1) whose contributions to H and to sum p (log p)^2 must be h = H - H_top and s = M2 - M2_top. The
    tail is ``TAIL_GROUPS`` = 3 groups of n_g equal atoms of probability q_g = e^{-x_g}, with integer counts
    n_g and every q_g <= p_k (x_g >= -log p_k). Matching (m, h, s) exactly takes three continuous unknowns once
    the counts are integers (two groups would leave only two), so: a three-point law of surprisal with mean
    h/m and variance s/m - (h/m)^2 is laid out, its counts m pi_g e^{x_g} rounded to integers, and Newton's
    method (on log(x_g + log p_k), so no atom can rise above p_k) moves the three positions back onto the three
    equations, to round-off (|error| <= 1e-12 relative, flagged in ``exact``). Counts off by a few atoms are
    retried (a narrow tail pins its total count), and a single block of equal atoms is tried as one group.

    How exact, measured: on the bundled traces 11,310 of 11,323 rows are exact; the 13 others have tails below
    ~2.4e-6, the size of the float32 rounding of their stored top-k (about p |log p| 6e-8 per entry), which
    leaves the stored mass inconsistent with the recorded moments: 11 admit no tail at all (variance < 0 or
    mean surprisal below the bound), 2 none that this search finds. There the nearest fit is off by at most
    1.0e-7 nats (entropy) and 1.5e-5 (second moment) on the row, and the law's mu and mu2 differ from the
    recorded means by at most 3e-11 and 1.7e-9. The fit's arithmetic is the same on every machine (exp and log
    of the C library, its own 3 x 3 solves), so a trace's law is too. Synthetic tails whose mass is spread over >= 1000 atoms
    (m^2 / sum n q^2) with a surprisal spread > 0.1 nats are matched exactly (tests/test_tailfit.py); tails of a
    handful of tokens or of nearly equal atoms may only be matched approximately (flagged; ``brw trace-info``
    reports the share and the error).

    Parameters
    ----------
    top_logp : array of shape (N, k)
        Each row's top-k log-probabilities, sorted decreasing.
    entropy, log_moment2 : arrays of shape (N,)
        Each row's full-vocabulary entropy and second log-moment.

    Returns
    -------
    tails : array of shape (N, 3, 2)
        Per row and group, (log q, n), groups sorted by decreasing q (count 0 for an empty group).
    exact : bool array of shape (N,)
        Rows matched to round-off.
    err_h, err_s : arrays of shape (N,)
        The law's row value minus the recorded one, for the tail's entropy and second log-moment.
    """
    top = np.asarray(top_logp, dtype=np.float64)
    H = np.asarray(entropy, dtype=np.float64)
    M2 = np.asarray(log_moment2, dtype=np.float64)
    n = top.shape[0]
    p = _exp(top)
    m = 1.0 - p.sum(axis=1)
    h = H + (p * top).sum(axis=1)
    s = M2 - (p * top**2).sum(axis=1)
    xk = -top[:, -1]

    tails = np.zeros((n, TAIL_GROUPS, 2))
    tails[:, :, 0] = -np.inf
    has = m > 1e-300
    idx = np.flatnonzero(has)
    if idx.size:
        x, cnt = _fit_rows(m[idx], h[idx], s[idx], xk[idx])
        order = np.argsort(x, axis=1)
        x = np.take_along_axis(x, order, axis=1)
        cnt = np.take_along_axis(cnt, order, axis=1)
        tails[idx, :, 0] = np.where(cnt > 0, -x, -np.inf)
        tails[idx, :, 1] = cnt
    lh, ls = tail_moments(tails)
    err_h = lh - h
    err_s = ls - s
    exact = (np.abs(err_h) <= 1e-12 * np.maximum(1.0, np.abs(H))) & \
            (np.abs(err_s) <= 1e-12 * np.maximum(1.0, np.abs(M2)))
    return tails, exact, err_h, err_s


def tail_moments(tails: np.ndarray):
    """Per row, the tail groups' contributions to the entropy and the second log-moment.

    Parameters
    ----------
    tails : array of shape (N, G, 2)
        Tail groups as :func:`fit_tails` returns them: (log q, count) per group.

    Returns
    -------
    h, s : arrays of shape (N,)
        sum over groups of n q (-log q) and of n q (log q)^2.
    """
    lq = tails[:, :, 0]
    cnt = tails[:, :, 1]
    w = np.where(cnt > 0, cnt * _exp(np.where(cnt > 0, lq, 0.0)), 0.0)
    x = np.where(cnt > 0, -lq, 0.0)
    return (w * x).sum(axis=1), (w * x * x).sum(axis=1)


def _fit_rows(m, h, s, xk):
    """Positions x (R, 3) and integer counts (R, 3) for tails of mass m, surprisal mass h, second moment s,
    every position >= xk. See fit_tails."""
    a = h / m
    # Each atom has q <= p_k and, its count being >= 1, q <= m: positions start at xlo.
    xlo = np.maximum(xk, -_log(m))
    # Targets no tail can reach (float32 rounding of the stored top-k can exceed a tail below ~1e-7): only the
    # nearest point is sought for them.
    feasible = (a > xlo) & (s / m - a * a > 0)
    a = np.maximum(a, xlo)
    v = np.maximum(s / m - a * a, 0.0)
    fit = _RowFit(m, h, s, xk)
    x_first, c_first = fit.try_layouts(a, v, a - xlo)
    fit.nudge_counts(x_first, c_first, feasible)
    fit.try_single_block(a)
    return fit.x, fit.cnt


class _RowFit:
    """The best tail found so far for each row (positions ``x``, counts ``cnt``, relative error ``err``) and
    the attempts that improve it, tried in turn by :func:`_fit_rows`."""

    def __init__(self, m, h, s, xk):
        self.m, self.h, self.s, self.xk = m, h, s, xk
        self.x = self.cnt = None
        self.err = np.full(m.shape[0], np.inf)

    def attempt(self, x_start, cnt, rows, iters=80):
        """Newton from x_start with counts cnt on the given rows: (x, relative error)."""
        m, h, s = self.m[rows], self.h[rows], self.s[rows]
        x = _newton(x_start.copy(), cnt, m, h, s, self.xk[rows], iters)
        w = cnt * _exp(-x)
        err = (np.abs((w.sum(1) - m) / m)
               + np.abs(((w * x).sum(1) - h) / np.maximum(h, 1e-300))
               + np.abs(((w * x * x).sum(1) - s) / np.maximum(s, 1e-300)))
        return x, np.where(np.isfinite(err), err, np.inf)

    def try_layouts(self, a, v, d):
        """Newton from three start layouts (mean a, variance v, room d below the mean) on every row; returns
        the first layout, the base of the count nudges."""
        first = None
        for frac, pi1 in ((0.9, 0.25), (0.5, 0.1), (0.99, 0.45)):
            x, cnt = _start_layout(self.m, a, v, d, frac, pi1)
            if first is None:
                first = (x.copy(), cnt.copy())
            x, err = self.attempt(x, cnt, np.arange(self.m.shape[0]))
            if self.x is None:
                self.x, self.cnt, self.err = x, cnt, err
            else:
                better = err < self.err
                self.x = np.where(better[:, None], x, self.x)
                self.cnt = np.where(better[:, None], cnt, self.cnt)
                self.err = np.where(better, err, self.err)
            if (self.err < 1e-13).all():
                break
        return first

    def nudge_counts(self, x_first, c_first, feasible):
        """A tail of narrow spread pins its total count to within a few atoms (sum n_g e^{-x_g} = m with every
        x_g near the mean): when the rounded counts miss that window, nudge them by a few atoms."""
        nudges = [(d1, d2, d3) for d2 in (1, -1, 2, -2, 3, -3, 5, -5, 8, -8)
                  for d1, d3 in ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1))]
        for nudge in nudges:
            rows = np.flatnonzero((self.err >= 1e-13) & feasible)
            if rows.size == 0:
                break
            cnt = np.maximum(c_first[rows] + np.array(nudge, dtype=np.float64), 1.0)
            x, err = self.attempt(x_first[rows], cnt, rows, iters=30)
            better = err < self.err[rows]
            self.x[rows[better]] = x[better]
            self.cnt[rows[better]] = cnt[better]
            self.err[rows[better]] = err[better]

    def try_single_block(self, a):
        """One group of n = round(m e^a) atoms at q = m / n: exact for a tail that is one block of equal atoms
        (zero variance, where three distinct positions cannot be found), and the fallback when nothing else
        fits."""
        m, h, s, r = self.m, self.h, self.s, self.m.shape[0]
        with np.errstate(over="ignore"):
            n1 = np.clip(np.rint(m * _exp(a)), 1.0, 2.0**62)
        x1 = _log(n1 / m)
        x = np.stack([x1, x1, x1], axis=1)
        cnt = np.stack([n1, np.zeros(r), np.zeros(r)], axis=1)
        err = (np.abs(m * x1 - h) / np.maximum(h, 1e-300) + np.abs(m * x1 * x1 - s) / np.maximum(s, 1e-300))
        better = (x1 >= self.xk) & (err < self.err)
        self.x = np.where(better[:, None], x, self.x)
        self.cnt = np.where(better[:, None], cnt, self.cnt)
        self.err = np.where(better, err, self.err)


def _start_layout(m, a, v, d, frac, pi1):
    """A three-point start (positions x, integer counts) of surprisal mean a and variance v: weights
    (pi1, pi2, pi3) at a - dl, a, a + up with dl <= frac d, the room below the mean; the counts m pi_g e^{x_g}
    rounded, each position shifted by log(n / c) so the group keeps its weight (exact mass from the start)."""
    r = m.shape[0]
    t = np.sqrt(v / (2 * pi1))  # pi1 t^2 * 2 = v for the symmetric layout
    dl = np.minimum(t, frac * d)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(dl > 0, v / (pi1 * np.where(dl > 0, dl, 1.0)) - dl, t)  # pi1 dl (dl + up) = v
        pi3 = np.where(up > 0, pi1 * dl / np.where(up > 0, up, 1.0), 0.0)
    pi3 = np.clip(pi3, 0.0, 1.0 - pi1 - 1e-6)
    pi2 = 1.0 - pi1 - pi3
    x0 = np.stack([a - dl, a, a + up], axis=1)
    w0 = m[:, None] * np.stack([np.full(r, pi1), pi2, pi3], axis=1)
    with np.errstate(over="ignore"):
        c0 = w0 * _exp(x0)
    cnt = np.maximum(np.rint(c0), 1.0)
    cnt = np.minimum(cnt, 2.0**62)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = x0 + _log(cnt / np.where(c0 > 0, c0, 1.0))
    return np.where(np.isfinite(x), x, x0), cnt


def _newton(x, cnt, m, h, s, xk, iters: int = 80):
    """Solve sum_g n_g e^{-x_g} x_g^j = (m, h, s)_j, j = 0, 1, 2, for x (R, 3) with every x_g > xk, batched
    over rows. Newton runs on y_g = log(x_g - xk), so no step can carry an atom above p_k; damped."""
    target = np.stack([m, h, s], axis=1)
    scale = np.stack([m, np.maximum(h, 1e-300), np.maximum(s, 1e-300)], axis=1)
    xk = xk[:, None]
    y = _log(np.maximum(x - xk, 1e-12 * np.maximum(1.0, np.abs(xk))))
    active = np.ones(x.shape[0], dtype=bool)
    for _ in range(iters):
        if not active.any():
            break
        ya = y[active]
        xka = xk[active]
        d = _exp(ya)
        xa = xka + d
        ca = cnt[active]
        w = ca * _exp(-xa)
        F = np.stack([w.sum(1), (w * xa).sum(1), (w * xa * xa).sum(1)], axis=1) - target[active]
        Fs = F / scale[active]
        res = np.abs(Fs).max(axis=1)
        done = res < 1e-15
        # d/dx_g of w_g x_g^j = w_g (j x_g^(j-1) - x_g^j); times dx_g/dy_g = x_g - xk.
        J = np.stack([-w, w * (1 - xa), w * (2 * xa - xa * xa)], axis=1) * d[:, None, :] / scale[active][:, :, None]
        step = _solve3(J, -Fs)
        step = np.where(np.isfinite(step), step, 0.0)
        big = np.abs(step).max(axis=1, keepdims=True)
        step = step * np.minimum(1.0, 2.0 / np.maximum(big, 1e-300))
        step[done] = 0.0
        y[active] = ya + step
        ai = np.flatnonzero(active)
        active[ai[done | (np.abs(step).max(axis=1) < 1e-15)]] = False
    return xk + _exp(y)


