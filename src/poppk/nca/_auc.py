"""NCA numerics on one profile (numpy only): AUC, interpolation, lambda_z."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NCAError

METHODS = ("lin-up/log-down", "linear")


def _segment_auc(t1, t2, c1, c2, method):
    dt = t2 - t1
    lin = 0.5 * (c1 + c2) * dt
    if method == "linear":
        return lin
    use_log = (c2 < c1) & (c2 > 0) & (c1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.where(use_log, (c1 - c2) / np.log(c1 / np.where(use_log, c2, 1.0)) * dt, 0.0)
    return np.where(use_log, log, lin)


def auc(t: np.ndarray, c: np.ndarray, method: str = "lin-up/log-down") -> float:
    """AUC over the sampled points (no extrapolation).

    ``lin-up/log-down``: linear trapezoid where concentrations rise or stay,
    log trapezoid where they fall (both positive), as WinNonlin and PKNCA.

    >>> auc(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 1.0]), "linear")
    2.5
    """
    if method not in METHODS:
        raise NCAError(f"unknown AUC method {method!r}; use one of {METHODS}")
    t, c = np.asarray(t, float), np.asarray(c, float)
    if t.size < 2:
        return 0.0
    return float(np.sum(_segment_auc(t[:-1], t[1:], c[:-1], c[1:], method)))


def interpolate(t: np.ndarray, c: np.ndarray, at: float, method: str, lambda_z: float = np.nan) -> float:
    """Concentration at ``at``: interpolated (log where falling) or extrapolated with lambda_z."""
    if at <= t[-1]:
        i = int(np.searchsorted(t, at, side="right")) - 1
        i = min(max(i, 0), t.size - 2)
        t1, t2, c1, c2 = t[i], t[i + 1], c[i], c[i + 1]
        if t2 == t1:
            return float(c2)
        frac = (at - t1) / (t2 - t1)
        if method != "linear" and c2 < c1 and c2 > 0 and c1 > 0:
            return float(c1 * np.exp(frac * np.log(c2 / c1)))
        return float(c1 + frac * (c2 - c1))
    return float(c[-1] * np.exp(-lambda_z * (at - t[-1])))


def auc_to(t: np.ndarray, c: np.ndarray, end: float, method: str, lambda_z: float = np.nan) -> float:
    """AUC from ``t[0]`` to ``end``, interpolating or extrapolating (lambda_z) the end point."""
    if end <= t[-1]:
        keep = t < end
        tt = np.r_[t[keep], end]
        cc = np.r_[c[keep], interpolate(t, c, end, method)]
        return auc(tt, cc, method)
    if not np.isfinite(lambda_z):
        return np.nan
    tail = c[-1] / lambda_z * (1 - np.exp(-lambda_z * (end - t[-1])))
    return auc(t, c, method) + float(tail)


def aumc(t: np.ndarray, c: np.ndarray, method: str = "lin-up/log-down", lambda_z: float = np.nan) -> tuple[float, float]:
    """AUMC (area under t*C) over the sampled points, and extrapolated to infinity.

    Segments follow the AUC's rule: the linear trapezoid on t*C where concentrations rise, the exact
    integral of t*C under a log-linear decline where they fall, (t1 C1 - t2 C2)/k + (C1 - C2)/k^2 with
    k = ln(C1/C2)/(t2 - t1) (WinNonlin's and PKNCA's lin-up/log-down AUMC). To infinity:
    AUMClast + tlast Clast/lambda_z + Clast/lambda_z^2 (NaN without lambda_z). Returns (last, inf).

    >>> aumc(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 2.0]), "linear")[0]
    4.0
    """
    t, c = np.asarray(t, float), np.asarray(c, float)
    if t.size < 2:
        return 0.0, np.nan
    t1, t2, c1, c2 = t[:-1], t[1:], c[:-1], c[1:]
    lin = 0.5 * (t1 * c1 + t2 * c2) * (t2 - t1)
    use_log = (method != "linear") & (c2 < c1) & (c2 > 0) & (c1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_k = np.where(use_log, (t2 - t1) / np.log(c1 / np.where(use_log, c2, 1.0)), 0.0)
    seg = np.where(use_log, (t1 * c1 - t2 * c2) * inv_k + (c1 - c2) * inv_k**2, lin)
    last_i = np.flatnonzero(c > 0)
    if not last_i.size:
        return 0.0, np.nan
    k = last_i[-1]
    total = float(np.sum(seg[:k]))
    tail = t[k] * c[k] / lambda_z + c[k] / lambda_z**2 if np.isfinite(lambda_z) else np.nan
    return total, total + tail


@dataclass(frozen=True)
class LambdaZ:
    """Terminal elimination rate fitted on the last ``n_points`` points."""

    lambda_z: float = np.nan
    intercept: float = np.nan
    n_points: int = 0
    r2: float = np.nan
    adj_r2: float = np.nan
    t_first: float = np.nan
    t_last: float = np.nan
    note: str = ""


def _loglinear(t, c):
    y = np.log(c)
    n = t.size
    tm, ym = t.mean(), y.mean()
    sxx = np.sum((t - tm) ** 2)
    if sxx == 0:
        return np.nan, np.nan, np.nan, np.nan
    slope = np.sum((t - tm) * (y - ym)) / sxx
    intercept = ym - slope * tm
    ss_res = np.sum((y - intercept - slope * t) ** 2)
    ss_tot = np.sum((y - ym) ** 2)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    adj = 1.0 - (1.0 - r2) * (n - 1) / (n - 2)
    return slope, intercept, r2, adj


def select_lambda_z(
    t: np.ndarray, c: np.ndarray, *, min_points: int = 3, tolerance: float = 1e-4, n_points: int | None = None
) -> LambdaZ:
    """Choose the terminal phase as WinNonlin's "best fit" and PKNCA's default.

    Candidates are the last 3, 4, ... positive points after Cmax (Cmax itself
    excluded). The one with the largest adjusted R² wins; candidates within
    ``tolerance`` of it are equally good and the one with the most points is
    taken. A slope that is not negative gives no lambda_z. ``n_points``
    forces the number of terminal points (a per-subject override).
    """
    t, c = np.asarray(t, float), np.asarray(c, float)
    pos = c > 0
    if not pos.any():
        return LambdaZ(note="no positive concentrations")
    imax = int(np.argmax(c))
    after = (np.arange(t.size) > imax) & pos
    tt, cc = t[after], c[after]
    if n_points is not None:
        if n_points < 2 or n_points > tt.size:
            return LambdaZ(note=f"cannot use {n_points} terminal points: {tt.size} positive points after Cmax")
        sizes = [n_points]
    else:
        sizes = list(range(min_points, tt.size + 1))
    if not sizes:
        return LambdaZ(note=f"fewer than {min_points} positive points after Cmax")
    fits = []
    for n in sizes:
        slope, intercept, r2, adj = _loglinear(tt[-n:], cc[-n:])
        if n == 2:
            adj = r2
        if np.isfinite(slope) and slope < 0:
            fits.append((adj, n, slope, intercept, r2))
    if not fits:
        return LambdaZ(note="terminal slope is not negative")
    best = max(f[0] for f in fits)
    adj, n, slope, intercept, r2 = max((f for f in fits if f[0] >= best - tolerance), key=lambda f: f[1])
    return LambdaZ(-slope, intercept, n, r2, adj, float(tt[-n]), float(tt[-1]))
