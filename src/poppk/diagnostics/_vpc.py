"""Visual predictive checks as numbers: binned observed percentiles vs simulated intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._sim import DesignSimulation

PERCENTILES = (5, 50, 95)


@dataclass(frozen=True)
class VPCResult:
    """One row per (group, bin).

    ``table`` columns: group, bin, x (median x of the bin's observations),
    x_lo, x_hi, n_obs; for each percentile P in 5, 50, 95: ``obs_pP`` (NaN
    where it lies below the LLOQ) and ``sim_pP_lo``/``_mid``/``_hi`` (the
    5th/50th/95th percentiles over replicates of the replicate's P-th
    percentile, i.e. its 90% interval); ``obs_blq`` and ``sim_blq_lo``/
    ``_mid``/``_hi``: the fraction below the LLOQ, observed and simulated.
    """

    table: pd.DataFrame
    x: str
    by: str | None
    pred_corrected: bool
    conc_unit: str

    def coverage(self) -> float:
        """Fraction of (bin, percentile) cells whose observed percentile lies in the simulated 90% interval
        (cells where the observed percentile is below the LLOQ are left out)."""
        hits, total = 0, 0
        for p in PERCENTILES:
            obs = self.table[f"obs_p{p}"]
            ok = obs.notna() & self.table[f"sim_p{p}_lo"].notna()
            hits += int(((obs >= self.table[f"sim_p{p}_lo"]) & (obs <= self.table[f"sim_p{p}_hi"]))[ok].sum())
            total += int(ok.sum())
        return hits / total if total else float("nan")


def _clusters(x: np.ndarray, rel: float = 0.1, abs_: float = 0.05) -> list[np.ndarray]:
    """Sorted values grouped where each stays within ``rel`` (relative) + ``abs_`` of its group's first."""
    v = np.unique(x)
    groups, start = [], 0
    for i in range(1, v.size + 1):
        if i == v.size or v[i] > v[start] * (1 + rel) + abs_:
            groups.append(v[start:i])
            start = i
    return groups


#: Bins of the automatic binning hold at least this many records (fewer in designs under 10 x as many).
MIN_PER_BIN = 10
#: Most bins the automatic binning makes for irregular sampling.
MAX_BINS = 12
#: Irregular sampling: the fewest bins whose edges explain this share of the variance of x.
GVF_TARGET = 0.99
#: Candidate edges for irregular sampling lie between at most this many runs of sorted x (its quantiles).
ATOMS = 400


def auto_bins(x: np.ndarray, max_nominal: int = 15, n_bins: int | None = None, *,
              min_count: int | None = None) -> np.ndarray:
    """Bin edges for a VPC (``-inf`` and ``inf`` outermost), each bin holding at least ``min_count``
    values (default ``MIN_PER_BIN``, or a tenth of the values when there are fewer than 100).

    * **Nominal times.** When the values cluster around at most ``max_nominal`` times (each within
      10% + 0.05 h of its cluster's first), edges lie midway between clusters; a cluster with fewer
      than ``min_count`` values joins the neighbour it is closer to.
    * **Irregular sampling** (routine monitoring, time after irregular doses): the edges that minimise
      the spread of x within bins (the sum of squared deviations from each bin's mean), found exactly
      by dynamic programming over sorted x (Fisher 1958, "On grouping for maximum homogeneity",
      JASA 53:789; Jenks' natural breaks; the least-squares binning criterion of Lavielle and
      Bleakley 2011, J Pharmacokinet Pharmacodyn 38:861). With ``n_bins`` that many bins; otherwise
      the fewest (at most ``MAX_BINS``) whose edges explain ``GVF_TARGET`` of x's variance (Jenks'
      goodness of variance fit: 10 bins for evenly spread x). Unlike quantile bins, a sparse tail of
      late records gets bins of its own instead of one wide last bin whose median lies far from its
      end, and no bin is a handful of records where every percentile coincides.

    Raises nothing: empty or all-equal ``x`` gives one bin.
    """
    x = np.sort(x[np.isfinite(x)])
    if x.size == 0:
        return np.array([-np.inf, np.inf])
    m = min_count if min_count is not None else (MIN_PER_BIN if x.size >= 10 * MIN_PER_BIN
                                                 else max(1, x.size // 10))
    groups = _clusters(x)
    if n_bins is None and len(groups) <= max_nominal:
        counts = [int(np.sum((x >= g[0]) & (x <= g[-1]))) for g in groups]
        groups = _merge_small(groups, counts, m)
        mids = np.array([(a[-1] + b[0]) / 2 for a, b in zip(groups[:-1], groups[1:], strict=True)])
        return np.concatenate([[-np.inf], mids, [np.inf]])
    return _least_squares_edges(x, m, n_bins)


def _merge_small(groups: list[np.ndarray], counts: list[int], m: int) -> list[np.ndarray]:
    """Clusters (sorted values) with fewer than ``m`` values merged into their nearer neighbour."""
    groups, counts = list(groups), list(counts)
    while len(groups) > 1 and min(counts) < m:
        k = int(np.argmin(counts))
        left = groups[k][0] - groups[k - 1][-1] if k > 0 else np.inf
        right = groups[k + 1][0] - groups[k][-1] if k + 1 < len(groups) else np.inf
        j = k - 1 if left <= right else k + 1
        a, b = min(k, j), max(k, j)
        groups[a:b + 1] = [np.concatenate([groups[a], groups[b]])]
        counts[a:b + 1] = [counts[a] + counts[b]]
    return groups


def _least_squares_edges(x: np.ndarray, m: int, n_bins: int | None) -> np.ndarray:
    """Edges minimising the within-bin sum of squares of sorted ``x``, every bin holding ``m`` or more
    values (:func:`auto_bins`). Edges fall between runs ("atoms") of equal values, or of the values
    between consecutive quantiles when there are more than ``ATOMS`` distinct ones."""
    values, counts = np.unique(x, return_counts=True)
    if values.size > ATOMS:  # runs of sorted x between its quantiles
        cut = np.unique(np.searchsorted(x, np.quantile(x, np.linspace(0, 1, ATOMS + 1)[1:-1]), side="right"))
        bounds = np.concatenate([[0], cut[(cut > 0) & (cut < x.size)], [x.size]])
    else:
        bounds = np.concatenate([[0], np.cumsum(counts)])
    c = np.concatenate([[0.0], np.cumsum(x)])
    cc = np.concatenate([[0.0], np.cumsum(x * x)])
    n_at, s_at, ss_at = bounds.astype(float), c[bounds], cc[bounds]
    a = bounds.size - 1
    k_max = max(1, min(n_bins or MAX_BINS, x.size // max(m, 1)))
    total = ss_at[-1] - s_at[-1] ** 2 / n_at[-1]

    def cost(i, j):  # within-bin sum of squares of atoms i..j-1 (arrays of i, one j); inf under m values
        n = n_at[j] - n_at[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = ss_at[j] - ss_at[i] - (s_at[j] - s_at[i]) ** 2 / n
        return np.where(n >= m, np.maximum(out, 0.0), np.inf)

    idx = np.arange(a + 1)
    best = cost(np.zeros(a + 1, int), idx)  # one bin: atoms 0..j-1
    best[0] = np.inf
    back = [np.zeros(a + 1, int)]
    sse = [best[a]]
    for _ in range(1, k_max):
        new = np.full(a + 1, np.inf)
        arg = np.zeros(a + 1, int)
        for j in range(2, a + 1):
            cand = best[1:j] + cost(idx[1:j], j)
            k = int(np.argmin(cand))
            new[j], arg[j] = cand[k], k + 1
        best = new
        back.append(arg)
        sse.append(best[a])
    sse = np.asarray(sse)
    feasible = np.isfinite(sse)
    if n_bins is not None:
        k = int(np.flatnonzero(feasible).max()) + 1 if feasible.any() else 1
    else:
        good = feasible & (sse <= (1 - GVF_TARGET) * total) if total > 0 else feasible
        k = int(np.flatnonzero(good)[0]) + 1 if good.any() else int(np.flatnonzero(feasible).max()) + 1
    cuts, j = [], a
    for level in range(k - 1, 0, -1):
        i = back[level][j]
        cuts.append(i)
        j = i
    cuts = sorted(cuts)
    # Edge midway between the last value of one bin and the first of the next.
    mids = [(x[int(bounds[i]) - 1] + x[int(bounds[i])]) / 2 for i in cuts]
    return np.concatenate([[-np.inf], mids, [np.inf]])


def _censored_percentiles(values: np.ndarray, below: np.ndarray, q) -> np.ndarray:
    """Percentiles with values below the LLOQ ranked lowest (set to 0); shape (len(q), ...)."""
    v = np.where(below, 0.0, values)
    return np.quantile(v, np.asarray(q) / 100, axis=-1, method="inverted_cdf")


def compute_vpc(sim: DesignSimulation, *, x: str = "TIME", by: str | None = None, bins=None,
                pred_corrected: bool = False) -> VPCResult:
    """Binned VPC of the fitted observations against the design replicates.

    Parameters
    ----------
    sim : DesignSimulation
        From :func:`simulate_design`.
    x : {"TIME", "TAD"} or a column of ``sim.records``
        Independent variable (hours). ``TAD`` (time after dose) suits designs with repeated dosing.
    by : str, optional
        Split by a column of ``sim.records``: ``"PERIOD"`` (first dose vs repeated dosing), ``"DOSE"``, a
        covariate...
    bins : int, sequence of edges, or None
        None: automatic (:func:`auto_bins`: nominal times, or least-squares bins of at least
        ``MIN_PER_BIN`` records for irregular sampling); an int: that many least-squares bins; edges:
        used as given.
    pred_corrected : bool
        Prediction-corrected VPC (Bergstrand et al. 2011): observed and simulated values are multiplied by
        ``median(PRED in bin) / PRED`` so that designs mixing doses or covariates can share bins.

    Notes
    -----
    BLQ: observed BLQ records and simulated values below the record's LLOQ both
    rank lowest, so percentiles below the LLOQ are reported as NaN and the
    fraction below the LLOQ is compared separately.
    """
    rec = sim.records
    groups = [(None, np.arange(len(rec)))] if by is None else [
        (g, np.asarray(idx)) for g, idx in rec.groupby(by, sort=True).indices.items()]
    rows = []
    for g, idx in groups:
        xv = rec[x].to_numpy(float)[idx]
        if bins is None:
            edges = auto_bins(xv)
        elif np.isscalar(bins):
            edges = auto_bins(xv, n_bins=int(bins))
        else:
            edges = np.asarray(bins, float)
        which = np.digitize(xv, edges[1:-1])
        for b in np.unique(which):
            sel = idx[which == b]
            y = rec["DV"].to_numpy(float)[sel]
            lloq = rec["LLOQ"].to_numpy(float)[sel]
            blq = rec["BLQ"].to_numpy(bool)[sel]
            ys = sim.sims[:, sel]
            below_s = ys < np.where(np.isfinite(lloq), lloq, -np.inf)
            if pred_corrected:
                pred = rec["PRED"].to_numpy(float)[sel]
                factor = np.where(pred > 0, np.median(pred) / np.where(pred > 0, pred, 1.0), 1.0)
                y, ys = y * factor, ys * factor
            row = {"group": g, "bin": int(b), "x": float(np.median(rec[x].to_numpy(float)[sel])),
                   "x_lo": float(rec[x].to_numpy(float)[sel].min()), "x_hi": float(rec[x].to_numpy(float)[sel].max()),
                   "n_obs": int(sel.size)}
            obs_q = _censored_percentiles(y, blq, PERCENTILES)
            sim_q = _censored_percentiles(ys, below_s, PERCENTILES)  # (3, S)
            # Percentiles at or below the LLOQ are not reported (a corrected LLOQ is no longer one number).
            floor = np.nanmax(lloq) if np.isfinite(lloq).any() and not pred_corrected else -np.inf
            for p, oq, sq in zip(PERCENTILES, obs_q, sim_q, strict=True):
                row[f"obs_p{p}"] = float(oq) if oq > floor else np.nan
                lo, mid, hi = np.quantile(sq, [0.05, 0.5, 0.95])
                row[f"sim_p{p}_lo"] = lo if lo > floor else np.nan
                row[f"sim_p{p}_mid"] = mid if mid > floor else np.nan
                row[f"sim_p{p}_hi"] = hi if hi > floor else np.nan
            row["obs_blq"] = float(blq.mean())
            frac = below_s.mean(axis=1)
            row["sim_blq_lo"], row["sim_blq_mid"], row["sim_blq_hi"] = np.quantile(frac, [0.05, 0.5, 0.95])
            rows.append(row)
    return VPCResult(pd.DataFrame(rows), x, by, pred_corrected, sim.conc_unit)
