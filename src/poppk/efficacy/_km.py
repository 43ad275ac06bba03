"""Kaplan-Meier curves by exposure group and the survival model's visual predictive check.

Kaplan-Meier estimates, their pointwise 95% bands (Greenwood, log-log transformed: lifelines' default,
as SAS's PROC LIFETEST) and the log-rank test come from lifelines (Davidson-Pilon, 2019), not from code
of ours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._survival import SurvivalResult, assessed, schedule_of, simulate_times


def kaplan_meier(times, events, groups=None, *, level: float = 0.95) -> pd.DataFrame:
    """The Kaplan-Meier curve of each group: ``group``, ``time``, ``survival``, ``lo``, ``hi`` (a step
    function, its first row at time 0), ``at_risk``; one group ``all`` when ``groups`` is None.

    >>> km = kaplan_meier([9, 13, 13, 18], [1, 1, 0, 1])
    >>> km["survival"].round(3).tolist()
    [1.0, 0.75, 0.5, 0.0]
    """
    from lifelines import KaplanMeierFitter

    times, events = np.asarray(times, float), np.asarray(events, int)
    groups = np.asarray(["all"] * times.size if groups is None else groups, dtype=object)
    out = []
    for g in pd.unique(groups):
        sel = groups == g
        kmf = KaplanMeierFitter(alpha=1 - level).fit(times[sel], events[sel])
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_
        out.append(pd.DataFrame({"group": g, "time": sf.index.to_numpy(float), "survival": sf.to_numpy(),
                                 "lo": ci.iloc[:, 0].to_numpy(), "hi": ci.iloc[:, 1].to_numpy(),
                                 "at_risk": kmf.event_table["at_risk"].reindex(sf.index).to_numpy()}))
    return pd.concat(out, ignore_index=True)


def median_with_ci(times, events, *, level: float = 0.95) -> tuple[float, float, float]:
    """Kaplan-Meier median and its confidence interval (the times where the band crosses 0.5, as
    Brookmeyer-Crowley with the log-log band; lifelines)."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    kmf = KaplanMeierFitter(alpha=1 - level).fit(np.asarray(times, float), np.asarray(events, int))
    ci = median_survival_times(kmf.confidence_interval_)
    return float(kmf.median_survival_time_), float(ci.iloc[0, 0]), float(ci.iloc[0, 1])


def logrank(times, events, groups) -> float:
    """The log-rank test's p-value across ``groups`` (lifelines' ``multivariate_logrank_test``)."""
    from lifelines.statistics import multivariate_logrank_test

    return float(multivariate_logrank_test(np.asarray(times, float), np.asarray(groups), np.asarray(events, int)).p_value)


def survival_vpc(result: SurvivalResult, *, n_sims: int = 200, seed: int = 0, level: float = 0.90,
                 n_points: int = 100) -> pd.DataFrame:
    """Visual predictive check of the survival model: ``n_sims`` replicate trials of the same patients
    (each replicate one posterior draw, each patient one of their exposure draws: ``exposure_median``
    here, as the patients table keeps), censored as the trial was (a censored patient at their own time,
    the others at the last observed time; in an interval-censored trial each simulated event is seen at
    the first of the trial's assessments after it, :func:`~poppk.efficacy.assessed`), their Kaplan-Meier
    curves on a time grid, and the observed curve. Columns: ``time``, ``observed``, ``lo``, ``median``,
    ``hi`` (band at ``level``)."""
    rng = np.random.default_rng(seed)
    p = result.patients
    t_obs, e_obs = p["time"].to_numpy(float), p["event"].to_numpy(int)
    z = np.log2(p["exposure_median"].to_numpy(float) / result.reference)
    cens = np.where(e_obs == 0, t_obs, t_obs.max())
    schedule = schedule_of(p)
    # The recorded times join the grid, so each step of the curves is drawn where it happens.
    grid = np.union1d(np.linspace(0.0, t_obs.max(), n_points), t_obs)
    S = result.draws["beta"].size
    pick = rng.choice(S, size=min(n_sims, S), replace=False)
    curves = np.empty((pick.size, grid.size))
    for r, s in enumerate(pick):
        d = {k: float(np.asarray(v)[s]) for k, v in result.draws.items()}
        t = simulate_times(result.model, rng, z, d["log_scale"], d["log_shape"], d["beta"])
        if schedule is not None:  # an interval-censored trial: events are seen at its assessments
            t = assessed(t, schedule)[0]
        time, event = np.minimum(t, cens), (t <= cens).astype(int)
        curves[r] = _km_on_grid(time, event, grid)
    observed = _km_on_grid(t_obs, e_obs, grid)
    q = np.quantile(curves, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
    return pd.DataFrame({"time": grid, "observed": observed, "lo": q[0], "median": q[1], "hi": q[2]})


def _km_on_grid(time, event, grid) -> np.ndarray:
    """The product-limit estimate at each grid time (numpy; the VPC's hundreds of replicates)."""
    order = np.argsort(time, kind="stable")
    time, event = time[order], event[order]
    uniq = np.unique(time[event == 1])
    at_risk = np.array([(time >= u).sum() for u in uniq])
    deaths = np.array([((time == u) & (event == 1)).sum() for u in uniq])
    surv = np.cumprod(1.0 - deaths / at_risk) if uniq.size else np.zeros(0)
    idx = np.searchsorted(uniq, grid, side="right") - 1
    return np.where(idx >= 0, surv[np.maximum(idx, 0)] if uniq.size else 1.0, 1.0)


__all__ = ["kaplan_meier", "logrank", "median_with_ci", "survival_vpc"]
