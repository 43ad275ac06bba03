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


def auto_bins(x: np.ndarray, max_nominal: int = 15, n_bins: int = 8) -> np.ndarray:
    """Bin edges: between nominal times when the records cluster around at most ``max_nominal`` of them
    (times within 10% + 0.05 h of each other), otherwise at quantiles (``n_bins`` bins)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.array([-np.inf, np.inf])
    groups = _clusters(x)
    if len(groups) <= max_nominal:
        mids = np.array([(a[-1] + b[0]) / 2 for a, b in zip(groups[:-1], groups[1:], strict=True)])
        return np.concatenate([[-np.inf], mids, [np.inf]])
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


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
        None: automatic (:func:`auto_bins`); an int: that many quantile bins; edges: used as given.
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
            edges = auto_bins(xv, max_nominal=0, n_bins=int(bins))
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
