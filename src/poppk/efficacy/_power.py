"""How often a trial like the fitted one would detect an exposure effect of a given size (power)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._survival import SurvivalResult, assessed, sample_survival_model, schedule_of, simulate_times


def detection_power(result: SurvivalResult, ratio: float, *, n_patients: int | None = None, n_trials: int = 100,
                    level: float = 0.90, seed: int = 0, warmup: int = 300, samples: int = 300) -> dict:
    """The share of simulated trials in which the ``level`` interval of the exposure effect excludes 1.

    Each trial has ``n_patients`` patients (default: as many as ``result``), exposures resampled from the
    fitted patients' (their posterior medians, so the spread of exposure is the trial's), event times from
    the fitted model's posterior median shape and scale with the effect set to ``ratio`` (a hazard ratio
    per doubling, or a time ratio for the log-logistic model), and censoring as the trial had it (the
    fitted trial's censoring times, resampled; the others censored at its last time); in an
    interval-censored trial the events are seen at its assessments and refitted as intervals. Each trial is
    refitted by NUTS (1 chain, ``warmup`` + ``samples``). Returns ``{"power", "lo", "hi"}`` (a 90% Jeffreys
    interval for the share), ``n_trials``, ``n_patients`` and the per-trial intervals (``trials``).
    """
    from scipy import stats

    from ..errors import EfficacyError

    if not ratio > 0 or n_trials < 1:
        raise EfficacyError(f"the ratio per doubling must be positive and n_trials at least 1, got {ratio}, {n_trials}")
    rng = np.random.default_rng(seed)
    p = result.patients
    n = int(n_patients or len(p))
    z_pool = np.log2(p["exposure_median"].to_numpy(float) / result.reference)
    cens_pool = np.where(p["event"].to_numpy() == 0, p["time"].to_numpy(float), p["time"].max())
    log_lam = float(np.median(result.draws["log_scale"]))
    log_k = float(np.median(result.draws["log_shape"]))
    schedule = schedule_of(p)
    rows = []
    for r in range(n_trials):
        z = rng.choice(z_pool, n)
        t = simulate_times(result.model, rng, z, log_lam, log_k, np.log(ratio))
        lo = np.full(n, np.nan)
        if schedule is not None:  # seen at the trial's assessments, as the fitted trial's events were
            t, lo = assessed(t, schedule)
        cens = rng.choice(cens_pool, n)
        time, event = np.minimum(t, cens), (t <= cens).astype(int)
        if event.sum() == 0:
            rows.append({"trial": r, "lo": 0.0, "hi": np.inf, "detected": False})
            continue
        draws, _ = sample_survival_model(time, event, z, model=result.model, chains=1, warmup=warmup,
                                         samples=samples, seed=seed + r, t_lo=np.where(event == 1, lo, np.nan))
        lo, hi = np.exp(np.quantile(draws["beta"], [(1 - level) / 2, (1 + level) / 2]))
        rows.append({"trial": r, "lo": lo, "hi": hi, "detected": bool(hi < 1 or lo > 1)})
    trials = pd.DataFrame(rows)
    k = int(trials["detected"].sum())
    return {"power": k / n_trials, "lo": float(stats.beta.ppf(0.05, k + 0.5, n_trials - k + 0.5)),
            "hi": float(stats.beta.ppf(0.95, k + 0.5, n_trials - k + 0.5)), "n_trials": n_trials,
            "n_patients": n, "ratio": ratio, "trials": trials}


__all__ = ["detection_power"]
