"""The fitted subjects' own steady-state exposure: each subject's maintenance regimen read from the
data, and posterior draws of every exposure metric at it (the exposure that toxicity and efficacy
models, and the fit folder's ``individual.csv``, relate to)."""

from __future__ import annotations

import numpy as np

from ..errors import SimulationError
from ..pk import expand_trains
from ._exposure import METRICS, exposure_metrics, metric_name
from ._regimen import Regimen, Segment


def patient_regimens(fit, interval: float | None = None) -> dict:
    """Each fitted subject's maintenance regimen, from the data: ``{ID: Regimen}``.

    The last dose amount, repeated every ``interval`` hours (which single-dose studies need) or else
    the subject's last ``II`` (a steady-state or ``ADDL`` record), or else the median gap between
    doses rounded to the half hour (routine data, doses taken off schedule: the nominal interval, not
    one late dose's gap), for as many doses as the subject received rounded up to a multiple of 10,
    at least 20 (steady state for a drug whose half-life is below 3 intervals). The rounding keeps
    the number of distinct schedules, each a compiled program, small on irregular data: on 130
    patients of routine monitoring, each a schedule of its own, the fit folder's exposures took 256 s.
    """
    each = expand_trains(fit.data.doses)
    kernel = fit.spec.make_kernel(fit.data.dose_unit, fit.data.conc_unit)
    out = {}
    for i, sid in enumerate(fit.data.ids):
        m = np.asarray(each.mask[i])
        t, a, ii = np.asarray(each.time[i])[m], np.asarray(each.amt[i])[m], np.asarray(each.ii[i])[m]
        if t.size == 0:
            raise SimulationError(f"subject {sid} has no doses; no exposure can be computed")
        given = ii[ii > 0]
        tau = interval or (float(given[-1]) if given.size else
                           (round(2 * float(np.median(np.diff(t)))) / 2 if t.size > 1 else 0.0))
        if tau <= 0:
            raise SimulationError(f"subject {sid} received a single dose; steady-state exposure needs a dosing "
                                  "interval (give one: interval=12)")
        # The last dose's route (into the depot: oral; any other compartment: IV) and infusion duration.
        cmt, rate = int(np.asarray(each.cmt[i])[m][-1]), float(np.asarray(each.rate[i])[m][-1])
        route = "oral" if cmt == kernel.depot_cmt else "iv"
        duration = float(a[-1]) / rate if rate > 0 else 0.0
        n_doses = max(20, 10 * -(-int(t.size) // 10))
        out[sid] = Regimen((Segment(float(a[-1]), n_doses, float(tau), route, duration),), fit.data.dose_unit)
    return out


def patient_exposure(fit, metric: str = "AUCss", *, n_draws: int = 200, seed: int = 0,
                     interval: float | None = None) -> np.ndarray:
    """Posterior draws of each fitted subject's steady-state exposure at their own regimen, (N, n_draws)."""
    return patient_metrics(fit, n_draws=n_draws, seed=seed, interval=interval)[metric_name(metric)]


def patient_metrics(fit, *, n_draws: int = 200, seed: int = 0, interval: float | None = None) -> dict:
    """Every steady-state metric (:data:`poppk.simulate.METRICS`) of each fitted subject at their own
    regimen: ``{metric: (N, n_draws)}`` posterior draws."""
    draws = fit.individual_draws(n_draws, seed)
    regs = patient_regimens(fit, interval)
    S = next(iter(draws.values())).shape[0]
    out = {m: np.empty((fit.data.n_subjects, S)) for m in METRICS}
    groups: dict = {}
    for i, sid in enumerate(fit.data.ids):
        groups.setdefault(regs[sid], []).append(i)
    for reg, idx in groups.items():
        params = {k: v[:, idx].T.ravel() for k, v in draws.items()}  # (len(idx) * S,)
        # chunks of one subject's draws: every group runs the same compiled size (group sizes differ)
        m, _ = exposure_metrics(fit.spec, params, reg, dose_unit=fit.data.dose_unit,
                                conc_unit=fit.data.conc_unit, band_points=2, chunk=S)
        for name in METRICS:
            out[name][idx] = m[name].reshape(len(idx), S)
    return out


__all__ = ["patient_exposure", "patient_metrics", "patient_regimens"]
