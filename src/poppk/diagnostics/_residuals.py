"""Normalised prediction distribution errors (NPDE) from design replicates."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ._sim import DesignSimulation


def compute_npde(sim: DesignSimulation, *, decorrelate: bool = True, seed: int = 0) -> pd.DataFrame:
    """NPDE of every observation (Brendel et al. 2006; BLQ records as in Nguyen et al. 2012).

    For a Bayesian fit the reference distribution is the posterior predictive
    distribution of a *new* subject with the same covariates and doses
    (:func:`simulate_design`): population parameters from the posterior, new
    random effects, residual error. Within each subject the observations and
    the replicates are decorrelated with the replicates' mean and covariance
    (Cholesky), then ``pde`` is the fraction of replicates below the
    observation and ``npde = Phi^-1(pde)`` (``pde`` kept within
    ``[1/(2S), 1 - 1/(2S)]``). A BLQ record gets a ``pde`` drawn uniformly
    between 0 and the simulated probability of being below its LLOQ, and is
    not decorrelated. Under a correct model NPDE are standard normal.

    Returns ``sim.records`` with columns ``PDE`` and ``NPDE`` added.
    """
    rec = sim.records
    y = rec["DV"].to_numpy(float)
    blq = rec["BLQ"].to_numpy(bool)
    s = sim.sims.shape[0]
    pde = np.full(len(rec), np.nan)
    rng = np.random.default_rng(seed)
    for _, idx in rec.groupby("subject_index", sort=False).indices.items():
        idx = np.asarray(idx)
        ok = idx[~blq[idx]]
        if ok.size:
            ys, ss = y[ok], sim.sims[:, ok]
            if decorrelate and ok.size > 1:
                mean = ss.mean(axis=0)
                cov = np.cov(ss, rowvar=False)
                cov += 1e-12 * np.trace(cov) * np.eye(ok.size)
                chol = np.linalg.cholesky(cov)
                ys = np.linalg.solve(chol, ys - mean)
                ss = np.linalg.solve(chol, (ss - mean).T).T
            pde[ok] = (ss < ys).mean(axis=0)
        cens = idx[blq[idx]]
        if cens.size:
            p_blq = (sim.sims[:, cens] < rec["LLOQ"].to_numpy(float)[cens]).mean(axis=0)
            pde[cens] = rng.uniform(0, 1, cens.size) * p_blq
    pde = np.clip(pde, 1 / (2 * s), 1 - 1 / (2 * s))
    out = rec.copy()
    out["PDE"] = pde
    out["NPDE"] = stats.norm.ppf(pde)
    return out


def npde_summary(npde: pd.DataFrame) -> dict:
    """Mean, SD, and the p-values of the tests the npde package reports (t, Fisher variance, Shapiro-Wilk)."""
    x = npde["NPDE"].to_numpy(float)
    x = x[np.isfinite(x)]
    n = x.size
    var_p = 2 * min(stats.chi2.cdf((n - 1) * x.var(ddof=1), n - 1), stats.chi2.sf((n - 1) * x.var(ddof=1), n - 1))
    return {
        "n": int(n), "mean": float(x.mean()), "sd": float(x.std(ddof=1)),
        "p_mean": float(stats.ttest_1samp(x, 0.0).pvalue), "p_variance": float(var_p),
        "p_normal": float(stats.shapiro(x[:5000]).pvalue),
    }
