"""Replicates of the fitted design: new subjects drawn from the population posterior.

Each replicate takes one posterior draw of the population parameters (typical
values, covariate effects, omegas, residual SDs), draws *new* random effects
for every subject (with that subject's covariates and dose history), and adds
residual error. This is the predictive distribution VPCs and NPDEs compare
the observations with; it integrates over parameter uncertainty as well as
between-subject variability.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd

from .._runtime import configure_jax
from ..model import build_model
from ..pk import time_after_dose


@dataclass(frozen=True)
class DesignSimulation:
    """Observed records beside their simulated replicates.

    Attributes
    ----------
    records : DataFrame
        One row per fitted observation record: ID, TIME (h), TAD (h since the
        last dose), DOSE_N (doses given before it; ``inf`` at steady state), PERIOD
        (``"first dose"`` or ``"repeated dosing"``), by :func:`poppk.pk.time_after_dose`, DV, BLQ, LLOQ, PRED (typical subject: posterior
        median of the prediction with random effects at 0), IPRED (posterior
        median of the subject's own prediction), the covariates.
    sims : ndarray, shape (S, R)
        Simulated DV with residual error for the R records, uncensored.
    conc_unit : str
    """

    records: pd.DataFrame
    sims: np.ndarray
    conc_unit: str


def simulate_design(fit, n_sims: int = 500, *, seed: int = 0, ipred_draws: int = 200) -> DesignSimulation:
    """Simulate ``n_sims`` replicates of the fitted design (see module docstring).

    Parameters
    ----------
    fit : Fit
    n_sims : int
        Replicates; each uses one posterior draw of the population parameters.
    seed : int
    ipred_draws : int
        Posterior draws used for the IPRED medians.
    """
    from numpyro.infer import Predictive

    configure_jax()
    data = fit.data
    built = build_model(fit.spec, data, parameterization="noncentered", record_pred=True)
    post = fit.population_draws(n_sims, seed)
    kw = {**built.kwargs, "dv": None}
    # eta_z of the non-centred model: every IIV parameter, then each occasion's IOV
    n_z = len(fit.spec.iiv.parameters) + len(built.occasion_levels) * len(fit.spec.iov.parameters)

    @jax.jit
    def run(key, samples):
        return Predictive(built.fn, posterior_samples=samples, return_sites=["DV", "CONC"])(key, **kw)

    key = jax.random.PRNGKey(seed)
    new = run(key, post)
    typical = dict(post)
    if n_z:
        typical["eta_z"] = np.zeros((n_sims, data.n_subjects, n_z))
    pred = np.median(np.asarray(run(key, typical)["CONC"]), axis=0)
    ipred = np.median(fit.concentration_draws(data.doses, data.sampling, n_draws=ipred_draws, seed=seed), axis=0)

    sel = np.asarray(data.fit_mask)
    sub, col = np.nonzero(sel)
    tad, n_before = time_after_dose(data.doses, data.sampling)
    ids = np.asarray(data.ids, dtype=object)
    records = pd.DataFrame({
        "ID": ids[sub], "subject_index": sub, "TIME": np.asarray(data.sampling.time)[sub, col],
        "TAD": tad[sub, col], "DOSE_N": n_before[sub, col],
        "DV": np.asarray(data.dv)[sub, col], "BLQ": np.asarray(data.blq)[sub, col],
        "LLOQ": np.asarray(data.lloq)[sub, col], "PRED": pred[sub, col], "IPRED": ipred[sub, col],
    })
    records["PERIOD"] = np.where(records["DOSE_N"] <= 1, "first dose", "repeated dosing")
    for name in data.covariate_names:
        records[name] = data.covariate_values(name)[sub]
    sims = np.asarray(new["DV"])[:, sub, col]
    return DesignSimulation(records, sims, data.conc_unit)

