"""Exposure-efficacy: Bayesian parametric time-to-event models with each patient's posterior exposure.

As for toxicity (:mod:`poppk.tox`), a fitted patient's exposure is a posterior: ``n_draws`` draws of their
individual parameters pushed through the dosing engine to a steady-state metric ``x``. With
``z = log2(x / ref)`` (``ref`` the median exposure, so a unit of ``z`` is a doubling), the models are

    exponential (PH):  S(t | z) = exp(-(t / lam) exp(b z))
    weibull (PH):      S(t | z) = exp(-(t / lam)^k exp(b z))
    loglogistic (AFT): S(t | z) = 1 / (1 + (t / (lam exp(g z)))^k)

Each patient contributes ``log h(t) + log S(t)`` if the event was observed at ``t``, ``log S(t)`` if
censored at ``t``, and ``log(S(l) - S(t))`` if it is **interval-censored**: known only to have happened
after the last assessment without it, ``l``, and by the assessment ``t`` that found it (progression seen
at a scheduled scan; ``l`` = 0 for progression at the first scan). Tumour assessments are periodic, so
PFS is interval-censored by design; treating the scan day as the event time biases a parametric model
towards later events (every progression at the first scan "happens" on its day). The likelihood is
averaged over their exposure draws, ``p(y_i | theta) = mean_j p(y_i | theta,
z_ij)``, so the exposure uncertainty is integrated out and the outcome does not feed back into the PK (a
"cut", as in sequential PK-PD). ``exp(b)`` is the **hazard ratio per doubling of exposure** (below 1:
longer survival at higher exposure); for the log-logistic model ``exp(g)`` is the **time ratio per
doubling** (above 1: longer survival). Priors: ``log lam ~ Normal(log(median observed time), 2)`` (weakly
informative on the data's own time scale), ``log k ~ Normal(0, 1)`` (shapes 0.14-7 at 95%),
``b, g ~ Normal(0, 1)`` per doubling (ratios 0.14-7 at 95%).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._runtime import chain_method, configure_jax
from ..errors import EfficacyError

MODELS = ("exponential", "weibull", "loglogistic")


def log_likelihood(model: str, t, event, z, log_lam, log_k, beta):
    """Log-likelihood of each record: ``event`` 1 observed at ``t``, 0 right-censored at ``t``; ``z`` the
    log2 exposure ratio. Broadcasts over its arguments (JAX or numpy). ``log_k`` is ignored for the
    exponential model; ``beta`` is the log hazard ratio per doubling (PH models) or the log time ratio
    per doubling (log-logistic).

    >>> float(log_likelihood("exponential", 2.0, 1, 0.0, np.log(4.0), 0.0, 0.0))  # log(1/4) - 2/4
    -1.8862943611198906
    """
    xp = jnp if any(isinstance(a, jax.Array) for a in (t, z, log_lam, log_k, beta)) else np
    t = xp.asarray(t, dtype=float)
    if model == "loglogistic":
        k = xp.exp(log_k)
        log_u = k * (xp.log(t) - log_lam - beta * z)  # log (t/s)^k
        log_s = -xp.logaddexp(0.0, log_u)
        log_h = log_k - xp.log(t) + log_u - xp.logaddexp(0.0, log_u)
        return event * log_h + log_s
    if model == "exponential":
        log_k = 0.0 * log_k
    k = xp.exp(log_k)
    log_cum = k * (xp.log(t) - log_lam) + beta * z  # log H(t)
    log_h = log_k - xp.log(t) + log_cum
    return event * log_h - xp.exp(log_cum)


def _population_median(model: str, lam, k, b, z) -> np.ndarray:
    """For each draw ``s``: the time at which ``mean_i S(t | z[s, i])`` is 0.5, by bisection on log t (S
    decreases in t, so 60 halvings of a bracket 100 wide in log t leave an error below 1e-16)."""
    lo = np.full(lam.size, float(np.min(lam)) - 50.0)
    hi = np.full(lam.size, float(np.max(lam)) + 50.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        with np.errstate(over="ignore", under="ignore"):
            surv = np.exp(log_likelihood(model, np.exp(mid)[:, None], 0.0, z, lam[:, None], k[:, None],
                                         b[:, None])).mean(axis=1)
        above = surv > 0.5
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.exp(0.5 * (lo + hi))


def log_interval_likelihood(model: str, lo, hi, z, log_lam, log_k, beta):
    """``log(S(lo) - S(hi))``: the event happened in ``(lo, hi]`` (``lo`` 0: by ``hi``). Broadcasts as
    :func:`log_likelihood` (JAX or numpy); ``lo < hi``.

    >>> round(float(log_interval_likelihood("exponential", 1.0, 2.0, 0.0, 0.0, 0.0, 0.0)), 12)  # e^-1 - e^-2
    -1.458675145387
    """
    xp = jnp if any(isinstance(a, jax.Array) for a in (lo, hi, z, log_lam, log_k, beta)) else np
    lo = xp.asarray(lo, dtype=float)
    positive = lo > 0
    log_s_lo = xp.where(positive, log_likelihood(model, xp.where(positive, lo, 1.0), 0.0, z, log_lam, log_k, beta),
                        0.0)
    log_s_hi = log_likelihood(model, hi, 0.0, z, log_lam, log_k, beta)
    return log_s_lo + xp.log(-xp.expm1(xp.minimum(log_s_hi - log_s_lo, -1e-300)))


def record_log_likelihood(model: str, t, event, t_lo, z, log_lam, log_k, beta):
    """Each record's log-likelihood: interval-censored where ``event`` is 1 and ``t_lo`` is a number
    (``(t_lo, t]``, :func:`log_interval_likelihood`), otherwise exact or right-censored at ``t``
    (:func:`log_likelihood`)."""
    xp = jnp if any(isinstance(a, jax.Array) for a in (t, t_lo, z, log_lam, log_k, beta)) else np
    t_lo = xp.asarray(t_lo, dtype=float)
    interval = (event == 1) & ~xp.isnan(t_lo)
    exact = log_likelihood(model, t, event, z, log_lam, log_k, beta)
    both = log_interval_likelihood(model, xp.where(interval, t_lo, 0.0), t, z, log_lam, log_k, beta)
    return xp.where(interval, both, exact)


def _survival_model(log_t, t, event, t_lo, z, *, model: str, log_scale0: float):
    import numpyro
    import numpyro.distributions as dist

    log_lam = numpyro.sample("log_scale", dist.Normal(log_scale0, 2.0))
    log_k = numpyro.sample("log_shape", dist.Normal(0.0, 1.0)) if model != "exponential" else jnp.asarray(0.0)
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    ll = record_log_likelihood(model, t[:, None], event[:, None], t_lo[:, None], z, log_lam, log_k, beta)  # (N, K)
    numpyro.factor("events", (jax.scipy.special.logsumexp(ll, axis=1) - jnp.log(z.shape[1])).sum())


def simulate_times(model: str, rng: np.random.Generator, z, log_lam, log_k, beta) -> np.ndarray:
    """Event times drawn from the model (inverse of S): ``z``, ``log_lam``, ``log_k``, ``beta`` broadcast."""
    u = rng.uniform(size=np.broadcast(z, log_lam, log_k, beta).shape)
    k = np.exp(log_k) if model != "exponential" else 1.0
    if model == "loglogistic":
        return np.exp(log_lam + beta * z) * (1.0 / u - 1.0) ** (1.0 / k)
    return np.exp(log_lam) * (-np.log(u) * np.exp(-beta * z)) ** (1.0 / k)


def assessed(times, schedule) -> tuple[np.ndarray, np.ndarray]:
    """Event times as periodic assessments see them: each time moved up to the first ``schedule`` time at or
    after it (``hi``), with the assessment before that (``lo``; 0 before the first). A time after the last
    assessment keeps itself as ``hi`` (it is censored there in practice).

    >>> hi, lo = assessed([10.0, 29.0, 40.0], [29.0, 85.0])
    >>> hi.tolist(), lo.tolist()
    ([29.0, 29.0, 85.0], [0.0, 0.0, 29.0])
    """
    t = np.asarray(times, float)
    grid = np.unique(np.asarray(schedule, float))
    k = np.searchsorted(grid, t, side="left")
    inside = k < grid.size
    hi = np.where(inside, grid[np.minimum(k, grid.size - 1)], t)
    lo = np.where(k > 0, grid[np.maximum(k - 1, 0)], 0.0)
    return hi, lo


def schedule_of(patients: pd.DataFrame) -> np.ndarray | None:
    """The assessment times of an interval-censored trial (every recorded time and last time without the
    event), or None when its times are exact."""
    if "time_lo" not in patients.columns or patients["time_lo"].isna().all():
        return None
    times = np.r_[patients["time"].to_numpy(float), patients["time_lo"].dropna().to_numpy(float)]
    return np.unique(times[times > 0])


def sample_survival_model(t, event, z, *, model: str = "weibull", chains: int = 4, warmup: int = 1000,
                          samples: int = 1000, seed: int = 0, progress: bool = False,
                          t_lo=None) -> tuple[dict, dict]:
    """NUTS for the survival model given times ``t`` (N,), event flags (N,), exposure draws ``z`` (N, K)
    (log2 of exposure / reference) and, optionally, each event's last time without it ``t_lo`` (N,; NaN
    for an exact time): posterior draws ``{log_scale, log_shape, beta}`` and diagnostics."""
    from numpyro.infer import MCMC, NUTS

    from ..tox import mcmc_diagnostics

    configure_jax()
    t, event, z = np.asarray(t, float), np.asarray(event, float), np.asarray(z, float)
    if z.ndim == 1:
        z = z[:, None]
    fn = functools.partial(_survival_model, model=model, log_scale0=float(np.log(np.median(t))))
    mcmc = MCMC(NUTS(fn), num_warmup=warmup, num_samples=samples, num_chains=chains,
                chain_method=chain_method(chains), progress_bar=progress)
    t_lo = np.full(t.shape, np.nan) if t_lo is None else np.asarray(t_lo, float)
    mcmc.run(jax.random.PRNGKey(seed), jnp.log(t), jnp.asarray(t), jnp.asarray(event), jnp.asarray(t_lo),
             jnp.asarray(z), extra_fields=("diverging",))
    draws = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    if model == "exponential":
        draws["log_shape"] = np.zeros_like(draws["beta"])
    return draws, mcmc_diagnostics(mcmc)


@dataclass(frozen=True)
class SurvivalResult:
    """A fitted exposure-survival model.

    ``draws``: posterior ``log_scale``, ``log_shape``, ``beta`` (S,); ``patients``: each evaluable
    patient's time, event and exposure (median, 5%, 95%, and the tertile they fall in); ``time_unit`` the
    unit of the event table's times; ``reference`` the exposure whose ``z`` is 0.
    """

    endpoint: str
    model: str
    metric: str
    unit: str
    reference: float
    time_unit: str
    draws: dict
    patients: pd.DataFrame
    diagnostics: dict = field(default_factory=dict)

    @property
    def ratio_name(self) -> str:
        return "time ratio" if self.model == "loglogistic" else "hazard ratio"

    def ratio_per_doubling(self, level: float = 0.90) -> dict:
        """The hazard ratio (or, log-logistic, time ratio) per doubling of exposure: median, interval at
        ``level`` and the posterior probability that higher exposure means longer survival."""
        r = np.exp(self.draws["beta"])
        lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
        better = np.mean(r > 1) if self.model == "loglogistic" else np.mean(r < 1)
        return {"name": self.ratio_name, "median": float(np.median(r)), "lo": float(lo), "hi": float(hi),
                "level": level, "p_benefit": float(better)}

    def survival(self, times, exposure) -> np.ndarray:
        """Posterior draws of S(t) for a patient with ``exposure`` (a number, or an array of exposure
        draws averaged over, as for a population), ``(S, T)``."""
        t = np.asarray(times, float)[None, :, None]
        z = np.log2(np.atleast_1d(np.asarray(exposure, float)) / self.reference)[None, None, :]
        d = {k: np.asarray(v)[:, None, None] for k, v in self.draws.items()}
        with np.errstate(divide="ignore"):
            ll_s = log_likelihood(self.model, np.maximum(t, 1e-300), 0.0, z, d["log_scale"], d["log_shape"], d["beta"])
        return np.exp(ll_s).mean(axis=-1)

    def median_time(self, exposure) -> np.ndarray:
        """Posterior draws of the median event time (the time at which the population's survival curve
        crosses 0.5) for ``exposure`` (a number or exposure draws), ``(S,)``, in ``time_unit``."""
        z = np.log2(np.atleast_1d(np.asarray(exposure, float)) / self.reference)
        lam, k, b = (np.asarray(self.draws[n]) for n in ("log_scale", "log_shape", "beta"))
        if z.size == 1:  # closed form
            if self.model == "loglogistic":
                return np.exp(lam + b * z[0])
            return np.exp(lam + (np.log(np.log(2.0)) - b * z[0]) / np.exp(k))
        return _population_median(self.model, lam, k, b, np.broadcast_to(z, (lam.size, z.size)))

    def population_median(self, exposure, replicate=None, max_draws: int | None = None) -> np.ndarray:
        """Posterior draws of the median time of a population with ``exposure`` (one value per patient),
        ``(S,)`` in ``time_unit``. With ``replicate`` (each patient's PK posterior replicate, 0..R-1), draw
        ``s`` uses the patients of replicate ``s % R`` only, carrying the PK uncertainty as
        :meth:`poppk.tox.ExposureResponse.rate` does; ``max_draws`` keeps the first draws only. Exposures below
        the fitted range are raised to its floor (:func:`poppk.tox.floor_exposure`)."""
        from ..tox import floor_exposure

        x = floor_exposure(exposure, self.patients)
        lam, k, b = (np.asarray(self.draws[n])[:max_draws] for n in ("log_scale", "log_shape", "beta"))
        z = np.log2(x / self.reference)
        if replicate is None:
            return _population_median(self.model, lam, k, b, np.broadcast_to(z, (lam.size, z.size)))
        reps = np.asarray(replicate)
        R = int(reps.max()) + 1
        out = np.empty(lam.size)
        for r in range(R):
            sel = np.arange(r, lam.size, R)
            if sel.size:
                out[sel] = _population_median(self.model, lam[sel], k[sel], b[sel],
                                              np.broadcast_to(z[reps == r], (sel.size, int((reps == r).sum()))))
        return out

    def summary(self) -> pd.DataFrame:
        """One row per quantity: the ratio per doubling, the model's median time at the reference exposure
        and at the 5th and 95th percentiles of the patients' exposures, each with a 90% interval."""
        rows = []
        r = self.ratio_per_doubling()
        rows.append({"quantity": f"{r['name']} per doubling of {self.metric}", "median": r["median"], "q5": r["lo"],
                     "q95": r["hi"], "unit": ""})
        x = self.patients["exposure_median"].to_numpy()
        for label, value in (("reference (median patient)", self.reference),
                             ("5th percentile of patients", float(np.quantile(x, 0.05))),
                             ("95th percentile of patients", float(np.quantile(x, 0.95)))):
            m = self.median_time(value)
            rows.append({"quantity": f"median {self.endpoint} at {value:.4g} {self.unit} ({label})",
                         "median": float(np.median(m)), "q5": float(np.quantile(m, 0.05)),
                         "q95": float(np.quantile(m, 0.95)), "unit": self.time_unit})
        return pd.DataFrame(rows)

    def save(self, folder: str | Path) -> Path:
        """``patients.csv``, ``draws.csv``, ``summary.csv`` and ``survival.json`` in ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.patients.to_csv(folder / "patients.csv", index=False)
        pd.DataFrame(self.draws).to_csv(folder / "draws.csv", index=False)
        self.summary().to_csv(folder / "summary.csv", index=False)
        meta = {"endpoint": self.endpoint, "model": self.model, "metric": self.metric, "unit": self.unit,
                "reference": self.reference, "time_unit": self.time_unit, "diagnostics": self.diagnostics,
                "ratio_per_doubling": self.ratio_per_doubling()}
        (folder / "survival.json").write_text(json.dumps(meta, indent=1, default=float))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SurvivalResult:
        folder = Path(folder)
        if not (folder / "survival.json").exists():
            raise EfficacyError(f"{folder} is not an exposure-survival folder (no survival.json); make one with "
                                "poppk efficacy")
        meta = json.loads((folder / "survival.json").read_text())
        draws = {k: v.to_numpy() for k, v in pd.read_csv(folder / "draws.csv").items()}
        return cls(meta["endpoint"], meta["model"], meta["metric"], meta["unit"], meta["reference"],
                   meta["time_unit"], draws, pd.read_csv(folder / "patients.csv"), meta.get("diagnostics", {}))


def _numbers(table: pd.DataFrame, column: str, row: np.ndarray) -> np.ndarray:
    """``column`` as floats, NaN where empty (``""``, ``.``, ``NA``); any other text is an error naming rows."""
    x = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
    text = table[column].astype(str).str.strip()
    bad = np.isnan(x) & table[column].notna().to_numpy() & ~text.isin(["", ".", "nan", "NA"]).to_numpy()
    if bad.any():
        raise EfficacyError(f"event table, column {column}: rows {row[bad][:10].tolist()} are not numbers")
    return x


def event_table(table: pd.DataFrame, ids, *, time: str, event: str,
                time_lo: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(index into ids, times, event flags, last times without the event)`` of the evaluable patients in
    ``table``, checked; the last array is NaN where ``time_lo`` is not given or empty (an exact time, or a
    censored patient, for whom it is not used).

    With ``time_lo``, an event row's value there is the last assessment without the event (0: none before
    the one that found it), so the event happened in ``(time_lo, time]``; it must be a number at least 0 and
    below the row's ``time``.

    A row with an empty ``time`` is a patient without the endpoint (not evaluable) and is left out; an ID
    not in the fit, a duplicated ID, a negative or zero time, or a time without a 0/1 ``event`` flag is an
    :class:`~poppk.errors.EfficacyError` naming the rows (numbered as a spreadsheet shows them, the header
    row 1).
    """
    for col in ("ID", time, event):
        if col not in table.columns:
            raise EfficacyError(f"the event table has no column {col!r}; it has {', '.join(map(str, table.columns))}")
    row = np.arange(len(table)) + 2
    sid = table["ID"].astype(str).to_numpy()
    known = {str(s): i for i, s in enumerate(ids)}
    unknown = ~np.isin(sid, list(known))
    if unknown.any():
        raise EfficacyError(f"event table: rows {row[unknown][:10].tolist()} have IDs not in the fit "
                            f"({sorted(set(sid[unknown]))[:10]})")
    dup = pd.Series(sid).duplicated().to_numpy()
    if dup.any():
        raise EfficacyError(f"event table: rows {row[dup][:10].tolist()} repeat an ID ({sorted(set(sid[dup]))[:10]})")
    t = _numbers(table, time, row)
    has = ~np.isnan(t)
    if (has & (t <= 0)).any():
        raise EfficacyError(f"event table, column {time}: rows {row[has & (t <= 0)][:10].tolist()} are not positive "
                            "times (a time is counted from the first dose)")
    e = pd.to_numeric(table[event], errors="coerce").to_numpy(float)
    bad = has & ~np.isin(e, (0.0, 1.0))
    if bad.any():
        raise EfficacyError(f"event table, column {event}: rows {row[bad][:10].tolist()} have a time but no 0/1 "
                            "flag (1: the event was observed; 0: censored at that time)")
    if not has.any():
        raise EfficacyError(f"event table: no patient has a {time}")
    lo = np.full(t.shape, np.nan)
    if time_lo is not None:
        if time_lo not in table.columns:
            raise EfficacyError(f"the event table has no column {time_lo!r}; it has {', '.join(map(str, table.columns))}")
        lo = _numbers(table, time_lo, row)
        wrong = has & (e == 1) & ~np.isnan(lo) & ((lo < 0) | (lo >= t))
        if wrong.any():
            raise EfficacyError(f"event table, column {time_lo}: rows {row[wrong][:10].tolist()} are not between 0 "
                                f"and the row's {time} (the last assessment without the event comes before the one "
                                "that found it)")
        lo = np.where(e == 1, lo, np.nan)
    return np.asarray([known[s] for s in sid[has]]), t[has], e[has], lo[has]


def fit_survival(fit, table: pd.DataFrame, *, time: str = "PFS_DAYS", event: str = "PFS_EVENT",
                 metric: str = "Cmin_ss", model: str = "weibull", time_unit: str = "days", n_draws: int = 200,
                 chains: int = 4, warmup: int = 1000, samples: int = 1000, seed: int = 0, progress: bool = False,
                 interval: float | None = None, endpoint: str | None = None, exposure=None,
                 time_lo: str | None = None) -> SurvivalResult:
    """Fit the time to ``event`` against each patient's posterior exposure (module docstring).

    Parameters
    ----------
    fit : Fit
        The PK fit whose subjects the event table describes.
    table : DataFrame
        One row per subject: ``ID``, the time (``time``, from the first dose, in ``time_unit``; empty for a
        patient not evaluable) and ``event`` (1 observed, 0 censored).
    metric : str
        A steady-state exposure: ``Cmin_ss`` (the trough, as the paper's Ctrough), ``AUCtau_ss``,
        ``Cav_ss``, ``Cmax_ss``.
    model : {"weibull", "exponential", "loglogistic"}
    endpoint : str, optional
        The endpoint's name in tables (default: ``time`` without a ``_DAYS``/``_TIME`` suffix: ``PFS``).
    exposure : array, optional
        Every fitted subject's ``metric`` draws, ``(n_subjects, n_draws)``, from
        :func:`poppk.simulate.patient_exposure` (computed here when not given).
    time_lo : str, optional
        Column of each event's last assessment without it (0 for an event found at the first one): the
        event is then interval-censored in ``(time_lo, time]`` (module docstring). Without it, event times
        are exact.

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> import pandas as pd
    >>> events = pd.DataFrame({"ID": fit.data.ids, "T": [30, 60, 90, 30, 45, 200, 80, 20, 150, 60, 40, 100],
    ...                        "E": [1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0]})
    >>> res = fit_survival(fit, events, time="T", event="E", interval=12, n_draws=20, chains=1, warmup=200,
    ...                    samples=200)
    >>> res.ratio_per_doubling()["name"]
    'hazard ratio'
    """
    from ..simulate import metric_name, metric_unit, patient_exposure

    if model not in MODELS:
        raise EfficacyError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    metric = metric_name(metric)
    idx, t, e, lo = event_table(table, fit.data.ids, time=time, event=event, time_lo=time_lo)
    if exposure is None:
        exposure = patient_exposure(fit, metric, n_draws=n_draws, seed=seed, interval=interval)
    exposure = np.asarray(exposure, float)
    if exposure.ndim != 2 or exposure.shape[0] != fit.data.n_subjects:
        raise EfficacyError(f"exposure= must be (n_subjects={fit.data.n_subjects}, n_draws) draws of {metric}, got "
                            f"shape {exposure.shape}")
    x = exposure[idx]
    if not (np.isfinite(x) & (x > 0)).all():
        raise EfficacyError(f"some patients' {metric} draws are not positive; cannot take logs (choose another metric)")
    ref = float(np.median(x))
    draws, diag = sample_survival_model(t, e, np.log2(x / ref), model=model, chains=chains, warmup=warmup,
                                        samples=samples, seed=seed, progress=progress, t_lo=lo)
    med = np.median(x, 1)
    # Tertiles by rank (ties broken by order), so that equal exposures cannot collapse a tertile's edges.
    tertile = (pd.qcut(pd.Series(med).rank(method="first"), 3, labels=["low", "middle", "high"]) if med.size >= 3
               else ["all"] * med.size)
    patients = pd.DataFrame({"ID": [fit.data.ids[i] for i in idx], "time": t, "time_lo": lo, "event": e.astype(int),
                             "exposure_median": med, "exposure_lo": np.quantile(x, 0.05, 1),
                             "exposure_hi": np.quantile(x, 0.95, 1), "tertile": list(tertile)})
    endpoint = endpoint or time.removesuffix("_DAYS").removesuffix("_TIME")
    return SurvivalResult(endpoint, model, metric, metric_unit(metric, fit.data.conc_unit), ref, time_unit, draws,
                          patients, diag)


__all__ = ["MODELS", "SurvivalResult", "assessed", "event_table", "fit_survival", "log_interval_likelihood",
           "log_likelihood", "record_log_likelihood", "sample_survival_model", "schedule_of", "simulate_times"]
