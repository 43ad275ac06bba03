"""Exposure-toxicity: Bayesian logistic (or ordinal) models of an adverse event against exposure.

Each fitted patient's exposure (a steady-state metric at the regimen they
received) is not a number but a posterior: ``n_draws`` draws of their
individual parameters, each pushed through the dosing engine. The event model

    P(grade >= G | x) = expit(a + b log(x / ref))          (logistic)
    P(grade >= g | x) = expit(b log(x / ref) - c_g)        (ordinal, ordered cutpoints c)

is fitted by NUTS with each patient's likelihood averaged over their exposure
draws, ``p(y_i | a, b) = mean_k p(y_i | a, b, x_ik)``: the exposure uncertainty
is integrated out and the adverse events do not feed back into the PK (a "cut",
as in sequential PK-PD modelling). ``ref`` is the median exposure, so ``a`` is
the log-odds at a typical exposure. Priors: ``a ~ Normal(0, 2.5)``,
``b ~ Normal(0, 2.5)`` per unit log exposure, cutpoints ``Normal(0, 2.5)``
(weakly informative, Gelman et al. 2008 for logistic regression).
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
from ..errors import ToxicityModelError
from ..fit import ess_rhat
from ..simulate import metric_name, metric_unit, patient_exposure

#: Exposure values at which the curve is tabulated.
CURVE_POINTS = 100


def floor_exposure(exposure, patients: pd.DataFrame) -> np.ndarray:
    """``exposure`` raised to the lowest exposure the model was fitted to (the smallest of the patients'
    5th percentiles, ``patients["exposure_lo"]``), for predictions in a population.

    A model linear in log exposure would otherwise extrapolate without bound towards zero: a trough that
    underflows to 0 (a short half-life, a long interval) has log exposure -inf, and an effect of any sign
    then decides the prediction alone. Above the fitted range nothing is changed (the log-linear model
    extrapolates there, which for toxicity errs on the side of more risk). Without a patients table the
    exposure is returned as given.

    >>> floor_exposure([0.0, 5.0], pd.DataFrame({"exposure_lo": [2.0, 3.0]})).tolist()
    [2.0, 5.0]
    """
    x = np.asarray(exposure, float)
    if patients is None or "exposure_lo" not in getattr(patients, "columns", ()) or patients.empty:
        return x
    return np.maximum(x, float(patients["exposure_lo"].min()))


def _er_model(logx, y, n_levels: int, ordinal: bool):
    import numpyro
    import numpyro.distributions as dist

    slope = numpyro.sample("slope", dist.Normal(0.0, 2.5))
    if ordinal:
        cut = numpyro.sample("cutpoints", dist.TransformedDistribution(
            dist.Normal(0.0, 2.5).expand([n_levels - 1]), dist.transforms.OrderedTransform()))
        lp = dist.OrderedLogistic(slope * logx, cut).log_prob(y[:, None])  # (N, K)
    else:
        a = numpyro.sample("intercept", dist.Normal(0.0, 2.5))
        lp = dist.Bernoulli(logits=a + slope * logx).log_prob(y[:, None])
    numpyro.factor("events", (jax.scipy.special.logsumexp(lp, axis=1) - jnp.log(logx.shape[1])).sum())


@dataclass(frozen=True)
class ExposureResponse:
    """A fitted exposure-response model for one event.

    ``draws`` holds the posterior (``slope``; ``intercept`` or ``cutpoints``), ``patients``
    each patient's event and exposure (median, 5%, 95%), ``curve`` P(event) against exposure
    (median and 90% band). ``grade``: the event is grade >= ``grade``.
    """

    event: str
    metric: str
    unit: str
    reference: float
    grade: int
    model: str
    draws: dict
    patients: pd.DataFrame
    curve: pd.DataFrame
    diagnostics: dict = field(default_factory=dict)
    truth: object = None

    def probability(self, exposure) -> np.ndarray:
        """Posterior draws of P(grade >= ``grade``) at each exposure, (S, M)."""
        logx = np.log(np.asarray(exposure, float) / self.reference)
        eta = self.draws["slope"][:, None] * logx[None, :]
        if self.model == "ordinal":
            eta = eta - self.draws["cutpoints"][:, self.grade - 1][:, None]
        else:
            eta = eta + self.draws["intercept"][:, None]
        return 1.0 / (1.0 + np.exp(-eta))

    def rate(self, exposure, replicate=None) -> np.ndarray:
        """Expected event rate in a population with ``exposure`` (one value per patient), one per posterior
        draw, (S,). With ``replicate`` (each patient's PK posterior replicate, 0..R-1), draw ``s`` averages
        over the patients of replicate ``s % R`` only, so the PK and the exposure-response uncertainty are
        both carried (each exposure-response draw meets one population-parameter draw). Exposures below
        the fitted range are raised to its floor (:func:`floor_exposure`)."""
        p = self.probability(floor_exposure(exposure, self.patients))  # (S, n)
        if replicate is None:
            return p.mean(axis=1)
        reps = np.asarray(replicate)
        R = int(reps.max()) + 1
        return np.array([p[s, reps == s % R].mean() for s in range(p.shape[0])])

    def regimen_risk(self, sim) -> pd.DataFrame:
        """Expected event rate under each simulated regimen: median and 90% interval, carrying
        the uncertainty of both models (see :meth:`rate`)."""
        rows = []
        for label, g in sim.exposures.groupby("regimen", sort=False):
            rate = self.rate(g[self.metric].to_numpy(), g["replicate"].to_numpy())
            rows.append({"regimen": label, "event": self.event, "p_event": np.median(rate),
                         "p_lo": np.quantile(rate, 0.05), "p_hi": np.quantile(rate, 0.95),
                         f"{self.metric}_median": g[self.metric].median()})
        return pd.DataFrame(rows)

    def save(self, folder: str | Path) -> Path:
        """``patients.csv``, ``curve.csv``, ``draws.csv`` and ``tox.json`` in ``folder`` (numbers only: the
        figure is :func:`poppk.plots.plot_exposure_response`'s, which ``poppk tox`` saves beside them)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.patients.to_csv(folder / "patients.csv", index=False)
        self.curve.to_csv(folder / "curve.csv", index=False)
        flat = {k: np.asarray(v) for k, v in self.draws.items()}
        cols = {}
        for k, v in flat.items():
            if v.ndim == 1:
                cols[k] = v
            else:
                cols.update({f"{k}_{j + 1}": v[:, j] for j in range(v.shape[1])})
        pd.DataFrame(cols).to_csv(folder / "draws.csv", index=False)
        meta = {"event": self.event, "metric": self.metric, "unit": self.unit, "reference": self.reference,
                "grade": self.grade, "model": self.model, "diagnostics": self.diagnostics}
        (folder / "tox.json").write_text(json.dumps(meta, indent=1, default=float))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ExposureResponse:
        folder = Path(folder)
        if not (folder / "tox.json").exists():
            raise ToxicityModelError(f"{folder} is not an exposure-response folder (no tox.json); fit one with fit_exposure_response and save it")
        meta = json.loads((folder / "tox.json").read_text())
        frame = pd.read_csv(folder / "draws.csv")
        draws = {"slope": frame["slope"].to_numpy()}
        if meta["model"] == "ordinal":
            draws["cutpoints"] = frame[[c for c in frame if c.startswith("cutpoints_")]].to_numpy()
        else:
            draws["intercept"] = frame["intercept"].to_numpy()
        return cls(meta["event"], meta["metric"], meta["unit"], meta["reference"], meta["grade"], meta["model"],
                   draws, pd.read_csv(folder / "patients.csv"), pd.read_csv(folder / "curve.csv"),
                   meta.get("diagnostics", {}))


def _event_values(ae: pd.DataFrame, event: str, ids) -> np.ndarray:
    if "ID" not in ae.columns:
        raise ToxicityModelError("the adverse-event table needs an ID column")
    if event not in ae.columns:
        cols = [c for c in ae.columns if c not in ("ID", "DOSE")]
        raise ToxicityModelError(f"no column {event!r} in the adverse-event table; it has {', '.join(cols)}")
    col = pd.to_numeric(ae[event], errors="coerce")
    bad = ae.index[col.isna() | (col < 0) | (col != np.round(col))].tolist()
    if bad:
        raise ToxicityModelError(f"adverse-event table, column {event}: rows {[b + 2 for b in bad[:10]]} are not grades "
                         "(whole numbers >= 0); row numbers count the header as row 1")
    by_id = dict(zip(ae["ID"].astype(str), col.astype(int)))
    dup = ae["ID"].astype(str).duplicated()
    if dup.any():
        raise ToxicityModelError(f"adverse-event table: ID(s) {ae['ID'][dup].tolist()[:10]} appear more than once")
    missing = [sid for sid in ids if str(sid) not in by_id]
    if missing:
        raise ToxicityModelError(f"adverse-event table lacks fitted subject(s) {missing[:10]}")
    return np.asarray([by_id[str(sid)] for sid in ids])


def fit_exposure_response(fit, ae: pd.DataFrame, event: str, *, metric: str = "AUCss", grade: int = 1,
                          model: str = "logistic", n_draws: int = 200, chains: int = 4, warmup: int = 1000,
                          samples: int = 1000, seed: int = 0, progress: bool = False,
                          interval: float | None = None, subset: bool = False, exposure=None) -> ExposureResponse:
    """Fit P(``event`` grade >= ``grade``) against each patient's posterior exposure (module docstring).

    Parameters
    ----------
    fit : Fit
        The PK fit whose subjects the adverse-event table describes.
    ae : DataFrame
        One row per subject: ``ID`` and the maximum grade (0 = none) of each event.
    event : str
        The column to model.
    metric : str
        ``AUCss`` (AUC over a dosing interval at steady state), ``Cmaxss``, ``Cminss`` or ``Cavss``.
    model : {"logistic", "ordinal"}
        Ordinal needs at least two grades above 0 in the data.
    interval : float, optional
        Dosing interval (h) of every subject's maintenance regimen (default: from the data).
    subset : bool
        False (default): ``ae`` must describe every fitted subject. True: only the fitted subjects it has
        (a response assessed in evaluable patients only); its IDs must still all be fitted subjects.
    exposure : array, optional
        Every fitted subject's ``metric`` draws, ``(n_subjects, n_draws)``, as
        :func:`poppk.simulate.patient_exposure` returns them (computed here when not given; pass them to
        fit several outcomes against the same exposure without recomputing it).

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> import pandas as pd
    >>> ae = pd.DataFrame({"ID": fit.data.ids, "NAUSEA": [0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0]})
    >>> res = fit_exposure_response(fit, ae, "NAUSEA", interval=12, n_draws=20, chains=1, warmup=100,
    ...                             samples=100)
    >>> res.metric, list(res.curve.columns)
    ('AUCtau_ss', ['exposure', 'p_median', 'p_lo', 'p_hi'])
    """
    metric = metric_name(metric)
    if model not in ("logistic", "ordinal"):
        raise ToxicityModelError(f"model must be 'logistic' or 'ordinal', got {model!r}")
    rows = list(range(fit.data.n_subjects))
    if subset and "ID" in ae.columns:  # without an ID column, _event_values says so
        present = set(ae["ID"].astype(str))
        unknown = sorted(present - {str(i) for i in fit.data.ids})
        if unknown:
            raise ToxicityModelError(f"the {event} table has IDs that are not fitted subjects: {unknown[:10]}")
        rows = [r for r, sid in enumerate(fit.data.ids) if str(sid) in present]
    ids = [fit.data.ids[r] for r in rows]
    y = _event_values(ae, event, ids)
    n_levels = int(y.max()) + 1
    if model == "ordinal" and n_levels < 3:
        raise ToxicityModelError(f"{event}: an ordinal model needs at least two grades above 0; the data have max grade "
                         f"{n_levels - 1} (use the logistic model)")
    if not 1 <= grade <= max(n_levels - 1, 1):
        raise ToxicityModelError(f"{event}: grade {grade} is outside the grades observed (1 to {max(n_levels - 1, 1)})")
    if model == "logistic":
        y = (y >= grade).astype(int)
    x = _given_exposure(fit, exposure, metric, n_draws, seed, interval, ToxicityModelError)[rows]
    if not (np.isfinite(x) & (x > 0)).all():
        raise ToxicityModelError(f"some patients' {metric} draws are not positive; cannot take logs")
    ref = float(np.median(x))
    draws, diag = sample_event_model(np.log(x / ref), y, model=model, chains=chains, warmup=warmup,
                                     samples=samples, seed=seed, progress=progress)
    lo, hi = np.quantile(x, 0.01) / 2, np.quantile(x, 0.99) * 2
    grid = np.geomspace(lo, hi, CURVE_POINTS)
    res = ExposureResponse(event, metric, metric_unit(metric, fit.data.conc_unit), ref, grade, model, draws,
                           pd.DataFrame(), pd.DataFrame(), diag)
    p = res.probability(grid)
    curve = pd.DataFrame({"exposure": grid, "p_median": np.median(p, 0), "p_lo": np.quantile(p, 0.05, 0),
                          "p_hi": np.quantile(p, 0.95, 0)})
    patients = pd.DataFrame({"ID": ids, "event": y if model == "logistic" else (y >= grade).astype(int),
                             "grade": _event_values(ae, event, ids),
                             "exposure_median": np.median(x, 1), "exposure_lo": np.quantile(x, 0.05, 1),
                             "exposure_hi": np.quantile(x, 0.95, 1)})
    return ExposureResponse(event, metric, res.unit, ref, grade, model, draws, patients, curve, diag)


def _given_exposure(fit, exposure, metric: str, n_draws: int, seed: int, interval, error) -> np.ndarray:
    """``exposure`` checked against the fit's subjects, or computed by :func:`patient_exposure`."""
    if exposure is None:
        return patient_exposure(fit, metric, n_draws=n_draws, seed=seed, interval=interval)
    x = np.asarray(exposure, float)
    if x.ndim != 2 or x.shape[0] != fit.data.n_subjects:
        raise error(f"exposure= must be (n_subjects={fit.data.n_subjects}, n_draws) draws of {metric}, got shape "
                    f"{x.shape}")
    return x


def sample_event_model(logx: np.ndarray, y: np.ndarray, *, model: str = "logistic", chains: int = 4,
                       warmup: int = 1000, samples: int = 1000, seed: int = 0, progress: bool = False):
    """NUTS for the event model given exposure draws ``logx`` (N, K) (log of exposure / reference)
    and outcomes ``y`` (0/1, or grades for ``ordinal``): posterior draws and diagnostics."""
    from numpyro.infer import MCMC, NUTS

    configure_jax()
    logx = np.asarray(logx, float)
    if logx.ndim == 1:
        logx = logx[:, None]
    n_levels = int(np.max(y)) + 1
    method = chain_method(chains)
    model_fn = functools.partial(_er_model, n_levels=n_levels, ordinal=model == "ordinal")
    mcmc = MCMC(NUTS(model_fn), num_warmup=warmup, num_samples=samples, num_chains=chains, chain_method=method,
                progress_bar=progress)
    mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(logx), jnp.asarray(y), extra_fields=("diverging",))
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}, mcmc_diagnostics(mcmc)


def mcmc_diagnostics(mcmc) -> dict:
    """Divergences and, with several chains, the largest R-hat and smallest bulk ESS over every element of
    a NumPyro MCMC run's draws."""
    grouped = mcmc.get_samples(group_by_chain=True)
    out = {"divergences": int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())}
    if next(iter(grouped.values())).shape[0] > 1:
        columns = [np.asarray(v)[..., None] if np.ndim(v) == 2 else np.asarray(v) for v in grouped.values()]
        stats = [ess_rhat(c[..., j]) for c in columns for j in range(c.shape[-1])]
        out["max_r_hat"] = max(s[2] for s in stats)
        out["min_ess_bulk"] = min(s[0] for s in stats)
    return out


__all__ = ["ExposureResponse", "fit_exposure_response", "mcmc_diagnostics", "sample_event_model"]
