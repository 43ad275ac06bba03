"""Choosing a regimen for one patient, and the virtual trial of fixed against PK-guided dosing."""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import numpy as np
import pandas as pd

from ..errors import DosingError
from ..model import covariate_coding
from ..pk import Sampling, concentrations
from ..simulate import Regimen, Segment, Target, exposure_metrics, residual_draws, virtual_population
from ..tox import floor_exposure
from ._posterior import PatientPosterior, make_patient_solver, population_sample, resample

#: Days of dosing simulated for each candidate regimen (steady state by the last interval).
CANDIDATE_DAYS = 28


def candidate_regimens(doses, intervals, unit: str, days: int = CANDIDATE_DAYS, *, route: str = "oral",
                       duration: float = 0.0) -> list[Regimen]:
    """Every ``dose x interval`` regimen for ``days`` days, given by ``route`` (``oral`` or ``iv``), as a
    bolus or, with ``duration`` > 0 (h), an infusion; labelled as :meth:`Regimen.parse` reads them
    (``"1000 mg iv over 1 h q12h"``)."""
    if route not in ("oral", "iv"):
        raise DosingError(f"route must be 'oral' or 'iv', not {route!r}")
    if duration < 0 or (duration > 0 and route != "iv"):
        raise DosingError(f"an infusion duration ({duration:g} h) needs route 'iv' and a positive number of hours")
    how = "" if route == "oral" else (" iv" + (f" over {duration:g} h" if duration > 0 else ""))
    doses = sorted({float(d) for d in doses})
    intervals = sorted({float(i) for i in intervals})
    if not doses or min(doses) <= 0:
        raise DosingError(f"candidate doses must be positive numbers, got {doses}")
    if not intervals or min(intervals) <= 0:
        raise DosingError(f"dosing intervals must be positive hours, got {intervals}")
    out = []
    for ii in intervals:
        n = int(round(days * 24 / ii))
        for d in doses:
            out.append(Regimen((Segment(d, max(n, 1), ii, route, duration),), unit, f"{d:g} {unit}{how} q{ii:g}h"))
    return out


def default_route(kernel) -> str:
    """``oral`` for a kernel with a depot, ``iv`` for one without (an IV model)."""
    return "oral" if kernel.depot_cmt is not None else "iv"


def _tox_probability(tox, metrics: dict) -> np.ndarray:
    """P(event) per exposure draw, each paired with an exposure-response draw."""
    x = floor_exposure(metrics[tox.metric], tox.patients)
    p = tox.probability(x)  # (S_er, n)
    return p[np.arange(x.size) % p.shape[0], np.arange(x.size)]


def evaluate_regimens(fit, params: dict, regimens, target: Target, tox=None) -> pd.DataFrame:
    """For posterior draws ``params`` of one patient: P(target), P(toxicity) and exposure per regimen."""
    rows = []
    for reg in regimens:
        m, _ = exposure_metrics(fit.spec, params, reg, dose_unit=fit.data.dose_unit,
                                conc_unit=fit.data.conc_unit, band_points=2)
        x = m[target.metric]
        row = {"regimen": reg.label, "dose": reg.first_amount, "interval_h": reg.tau,
               "p_target": float(target.contains(x).mean()), "p_below": float((x < target.low).mean()),
               "p_above": float((x > target.high).mean()), f"{target.metric}_median": float(np.median(x)),
               f"{target.metric}_q5": float(np.quantile(x, 0.05)), f"{target.metric}_q95": float(np.quantile(x, 0.95))}
        row["p_tox"] = float(_tox_probability(tox, m).mean()) if tox is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame, max_tox_prob: float | None = None) -> tuple[int | None, str]:
    """Index of the recommended row and why: the highest P(target) among regimens whose
    P(toxicity) is at most ``max_tox_prob``; ties go to the lower daily dose."""
    ok = np.ones(len(table), bool)
    if max_tox_prob is not None:
        if table["p_tox"].isna().all():
            raise DosingError("max_tox_prob needs an exposure-toxicity model (tox=, from poppk.tox.fit_exposure_response)")
        ok = table["p_tox"].to_numpy() <= max_tox_prob
    if not ok.any():
        return None, (f"no candidate keeps P(toxicity) <= {max_tox_prob:g}; the lowest is "
                      f"{table['p_tox'].min():.2f} ({table.loc[table['p_tox'].idxmin(), 'regimen']})")
    daily = table["dose"] * 24 / table["interval_h"]
    order = sorted(np.flatnonzero(ok), key=lambda i: (-round(table["p_target"].iloc[i], 3), daily.iloc[i]))
    best = order[0]
    r = table.iloc[best]
    why = f"{r['regimen']}: P(target) {r['p_target']:.2f}"
    if not np.isnan(r["p_tox"]):
        why += f", P(toxicity) {r['p_tox']:.2f}"
    if max_tox_prob is not None:
        why += f" (limit {max_tox_prob:g})"
    if len(order) > 1:
        why += f"; next best {table.iloc[order[1]]['regimen']} with P(target) {table.iloc[order[1]]['p_target']:.2f}"
    return int(best), why


@dataclass(frozen=True)
class DoseRecommendation:
    table: pd.DataFrame
    recommended: str | None
    reason: str
    posterior: PatientPosterior
    target: Target


def recommend_dose(fit, posterior: PatientPosterior, target: Target, *, doses, intervals=(12.0,), tox=None,
                   max_tox_prob: float | None = None, unit: str | None = None, route: str | None = None,
                   duration: float = 0.0) -> DoseRecommendation:
    """Score candidate regimens (every dose x interval) for one patient's posterior; pick one (see :func:`choose`).

    ``route`` and ``duration`` as :func:`candidate_regimens` (``route`` None: :func:`default_route` of the
    fit's kernel, so an IV model's candidates are IV boluses unless a duration is given).

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> from poppk.dosing import patient_posterior
    >>> from poppk.simulate import Target
    >>> post = patient_posterior(fit, fit.data.subset([0]), method="map", n_draws=200)
    >>> rec = recommend_dose(fit, post, Target.parse("Cminss=3:"), doses=[160, 320, 640], intervals=[12])
    >>> rec.recommended in set(rec.table.regimen)
    True
    """
    kernel = fit.spec.make_kernel(fit.data.dose_unit, fit.data.conc_unit)
    regs = candidate_regimens(doses, intervals, unit or fit.data.dose_unit, route=route or default_route(kernel),
                              duration=duration)
    table = evaluate_regimens(fit, posterior.params, regs, target, tox)
    best, why = choose(table, max_tox_prob)
    table["recommended"] = np.arange(len(table)) == (best if best is not None else -1)
    return DoseRecommendation(table, None if best is None else table["regimen"].iloc[best], why, posterior, target)


def _interval_share(x: np.ndarray) -> tuple[float, float, float]:
    """Share of True and its 90% Jeffreys interval."""
    from scipy import stats

    k, n = int(np.sum(x)), int(np.size(x))
    return k / n, float(stats.beta.ppf(0.05, k + 0.5, n - k + 0.5)), float(stats.beta.ppf(0.95, k + 0.5, n - k + 0.5))


def virtual_trial(fit, target: Target, *, doses, start_dose: float, interval: float = 12.0, n: int = 500,
                  trough_day: float = 8.0, tox=None, max_tox_prob: float | None = None, method: str = "map",
                  n_pop: int = 50, per_draw: int = 40, seed: int = 0, route: str | None = None,
                  duration: float = 0.0, response=None, survival=None) -> pd.DataFrame:
    """Fixed dosing at each level against PK-guided dosing, on virtual patients with known parameters.

    Every virtual patient (drawn from ``fit``, so their true parameters are known) is given
    each fixed regimen ``dose q{interval}h``; in the guided arm they start at ``start_dose``,
    have one trough measured (with residual error; BLQ censored at the data's LLOQ) just
    before the dose on day ``trough_day``, and continue on the regimen :func:`choose` picks
    from their posterior (``method``: ``map`` or ``full``); every regimen is given by ``route`` and
    ``duration`` as in :func:`recommend_dose`. Reported per arm: the share of
    patients whose true steady-state exposure is in the target window (90% Jeffreys
    interval) and, with a toxicity model, the expected event rate (90% interval over the
    exposure-response posterior). With inter-occasion variability (``[iov]``) the trough is measured on
    one occasion and every arm's regimen given on the next: the patients' true parameters there carry a
    new occasion effect, which the guided arm's posterior knows only by its distribution.

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> from poppk.simulate import Target
    >>> table = virtual_trial(fit, Target.parse("Cminss=3:8"), doses=[160, 320, 640], start_dose=320,
    ...                       interval=12, n=20, trough_day=3, n_pop=10, per_draw=10)
    >>> list(table.arm)
    ['160 mg q12h', '320 mg q12h', '640 mg q12h', 'PK-guided']
    """
    from .._runtime import configure_jax

    configure_jax()
    pop = virtual_population(fit, n, seed=seed)
    # With IOV the trough is measured on one occasion and the regimens given on the next: the same patients
    # (random effects) with a new occasion effect; every arm's outcome is the next occasion's.
    iov = bool(fit.spec.iov.parameters)
    treated = (replace(pop, z_iov=np.random.default_rng([seed, 1]).standard_normal(pop.z_iov.shape))
               if iov else pop)
    unit = fit.data.dose_unit
    kernel = fit.spec.make_kernel(unit, fit.data.conc_unit)
    route = route or default_route(kernel)
    regs = candidate_regimens(doses, [interval], unit, route=route, duration=duration)
    true_metrics = []
    for reg in regs:
        m, _ = exposure_metrics(fit.spec, treated.parameters(reg.first_amount, unit), reg, dose_unit=unit,
                                conc_unit=fit.data.conc_unit, band_points=2)
        true_metrics.append(m)

    # Guided arm: the day-`trough_day` trough on the starting regimen.
    t_obs = trough_day * 24.0
    start = Regimen((Segment(float(start_dose), int(np.ceil(t_obs / interval)) + 1, interval, route, duration),), unit)
    params0 = pop.parameters(start.first_amount, unit)

    def at_trough(k: int) -> Sampling:
        return Sampling(time=np.full((k, 1), t_obs), order=np.full((k, 1), -1.0), epoch=np.zeros((k, 1), np.int64))

    true_trough = np.asarray(concentrations(kernel, params0, start.to_doses(n, unit, kernel), at_trough(n)))[:, 0]
    # The patients' posterior solver takes one patient's records (vmapped over patients): one set of doses.
    s1 = at_trough(1)
    prepared = kernel.prepare(start.to_doses(1, unit, kernel), s1)
    observed = residual_draws(fit, pop.draws, true_trough[:, None], seed + 7)[:, 0]
    lloq = float(np.nanmedian(np.asarray(fit.data.lloq))) if np.isfinite(np.asarray(fit.data.lloq)).any() else 0.0
    censored = observed < lloq

    # the observed occasion is the patient's only one (index 0); the solver recommends for a new one
    solver = make_patient_solver(fit, per_draw=per_draw, method=method, occasions=np.zeros((1, 1), int) if iov else None)
    popdraws = {k: np.asarray(v) for k, v in population_sample(fit, n_pop, seed, method).items()}
    covs = {k: v[:, None, None] if iov else v[:, None] for k, v in covariate_coding(fit.spec, fit.data).encode(
        fit.spec, lambda name: pop.covariates[name].to_numpy(), n, first_dose=float(start_dose),
        who=lambda idx: f"virtual patient(s) {idx[:10].tolist()}", error=DosingError).items()}
    batched = jax.jit(jax.vmap(solver, in_axes=(0, None, None, None, 0, None, 0, None, 0)))
    keys = jax.random.split(jax.random.PRNGKey(seed + 11), n)
    params, logw, _ = batched(keys, popdraws, prepared, s1, observed[:, None], np.ones(1, bool), censored[:, None],
                              np.full(1, max(lloq, 1e-12)), covs)
    rng = np.random.default_rng(seed)
    if method == "full":  # resample each patient's draws by weight, then score every regimen at once
        per = [resample({k: np.asarray(v[j]) for k, v in params.items()}, np.asarray(logw[j]), 200, rng)[0]
               for j in range(n)]
        flat = {k: np.stack([d[k] for d in per]) for k in per[0]}
    else:
        flat = {k: np.asarray(v).reshape(n, -1) for k, v in params.items()}
    m_draws = next(iter(flat.values())).shape[1]
    score = np.empty((n, len(regs)))
    tox_p = np.full((n, len(regs)), np.nan)
    for k, reg in enumerate(regs):
        m, _ = exposure_metrics(fit.spec, {q: v.ravel() for q, v in flat.items()}, reg, dose_unit=unit,
                                conc_unit=fit.data.conc_unit, band_points=2)
        score[:, k] = target.contains(m[target.metric]).reshape(n, m_draws).mean(1)
        if tox is not None:
            tox_p[:, k] = _tox_probability(tox, m).reshape(n, m_draws).mean(1)
    chosen = np.empty(n, int)
    base = pd.DataFrame({"regimen": [r.label for r in regs], "dose": [r.first_amount for r in regs],
                         "interval_h": [r.tau for r in regs]})
    for j in range(n):
        best, _ = choose(base.assign(p_target=score[j], p_tox=tox_p[j]), max_tox_prob)
        chosen[j] = best if best is not None else 0  # nothing safe enough: the lowest dose

    rows = []
    arms = [(reg.label, np.full(n, k)) for k, reg in enumerate(regs)] + [("PK-guided", chosen)]
    for label, pick in arms:
        x = np.array([true_metrics[k][target.metric][j] for j, k in enumerate(pick)])
        share, lo, hi = _interval_share(target.contains(x))
        row = {"arm": label, "in_target": share, "in_target_lo": lo, "in_target_hi": hi,
               "below": float((x < target.low).mean()), "above": float((x > target.high).mean()),
               f"{target.metric}_median": float(np.median(x))}
        if tox is not None:
            xt = np.array([true_metrics[k][tox.metric][j] for j, k in enumerate(pick)])
            rate = tox.rate(xt)  # per exposure-response draw
            row.update({"tox_rate": float(np.median(rate)), "tox_lo": float(np.quantile(rate, 0.05)),
                        "tox_hi": float(np.quantile(rate, 0.95))})
        if response is not None:
            xr = np.array([true_metrics[k][response.metric][j] for j, k in enumerate(pick)])
            rate = response.rate(xr)
            row.update({"response_rate": float(np.median(rate)), "response_lo": float(np.quantile(rate, 0.05)),
                        "response_hi": float(np.quantile(rate, 0.95))})
        if survival is not None:
            xs = np.array([true_metrics[k][survival.metric][j] for j, k in enumerate(pick)])
            med = survival.population_median(xs, max_draws=1000)
            row.update({"pfs_median": float(np.median(med)), "pfs_lo": float(np.quantile(med, 0.05)),
                        "pfs_hi": float(np.quantile(med, 0.95))})
        if label == "PK-guided":
            row["doses_chosen"] = ", ".join(f"{regs[k].first_amount:g}:{int((chosen == k).sum())}"
                                            for k in range(len(regs)) if (chosen == k).any())
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["DoseRecommendation", "candidate_regimens", "choose", "default_route", "evaluate_regimens", "recommend_dose",
           "virtual_trial"]
