"""Rank-normalised split R-hat and bulk / tail effective sample sizes (Vehtari et al. 2021).

The same estimators as ArviZ (arviz-stats' ``ess(method="bulk" | "tail")`` and ``rhat(method="rank")``,
which ``tests/test_convergence.py`` checks these against to 1e-10), written with numpy and
``scipy.special.ndtri`` alone. Why not call arviz-stats: importing it loads ``scipy.stats`` and
``xarray_einstats``, the largest single cost of writing a short fit's summary, for a handful of numbers.

Arrays are ``(chain, draw)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as separate chains (the middle draw of an odd count dropped)."""
    half = x.shape[1] // 2
    return np.vstack((x[:, :half], x[:, -half:]))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the flattened ``x``, ties given their average rank (scipy's ``rankdata`` "average")."""
    flat = x.ravel()
    order = np.argsort(flat, kind="mergesort")
    sorted_x = flat[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], flat.size] - 1
    ranks = np.empty(flat.size)
    ranks[order] = (first[group] + last[group]) / 2.0 + 1.0
    return ranks.reshape(x.shape)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalised values: normal quantiles of the Blom-offset ranks (c = 3/8)."""
    return ndtri((_average_ranks(x) - 0.375) / (x.size + 0.25))


def _rhat(x: np.ndarray) -> float:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    return float(np.sqrt((between / within + n - 1) / n))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain at every lag (FFT, biased 1/n estimator)."""
    n = x.shape[1]
    m = 1 << int(np.ceil(np.log2(2 * n)))  # a power of two >= 2n: no wrap-around
    f = np.fft.rfft(x - x.mean(axis=1, keepdims=True), n=m, axis=1)
    return np.fft.irfft(f * np.conjugate(f), n=m, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    """ESS of ``x`` (chain, draw): Geyer's initial positive then monotone sequence of autocorrelations."""
    x = np.asarray(x, dtype=float)
    if np.max(x) - np.min(x) < np.finfo(float).resolution:
        return float(x.size)
    chains, n = x.shape
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = np.zeros(n)
    rho_even, rho_odd = 1.0, 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    rho[0], rho[1] = rho_even, rho_odd
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - np.mean(acov[:, t + 1])) / var_plus
        rho_odd = 1.0 - (mean_var - np.mean(acov[:, t + 2])) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    total = chains * n
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1 / np.log10(total))
    return float(np.nan if np.isnan(rho).any() else total / tau)


def ess_bulk(x: np.ndarray) -> float:
    """Bulk ESS: the ESS of the rank-normalised split chains."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4 or np.isnan(x).any():
        return float("nan")
    return _ess(_z_scale(_split(x)))


def ess_tail(x: np.ndarray, prob: tuple[float, float] = (0.05, 0.95)) -> float:
    """Tail ESS: the smaller ESS of the indicators of the draws below the ``prob`` quantiles."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4 or np.isnan(x).any():
        return float("nan")
    return min(_ess(_split(x <= np.quantile(x, p))) for p in prob)


def rhat_rank(x: np.ndarray) -> float:
    """Rank-normalised split R-hat: the larger of the bulk and the folded (tail) R-hat."""
    x = np.asarray(x, dtype=float)
    if x.shape[0] < 2 or x.shape[1] < 4 or np.isnan(x).any():
        return float("nan")
    split = _split(x)
    return max(_rhat(_z_scale(split)), _rhat(_z_scale(np.abs(split - np.median(split)))))
