"""Virtual patients drawn from a fit's posterior.

Each virtual patient gets one posterior draw of the population parameters
(parameter uncertainty: patients are split into ``n_replicates`` groups that
share a draw, so that summaries can be given with uncertainty intervals),
new random effects (between-subject variability; with ``[iov]`` also a new
occasion's effect, the simulated regimen being a new occasion) and covariates
resampled from the fitted subjects (or given). Individual parameters come from
:func:`poppk.model.individual_parameters`, the function the fitted model itself uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..errors import SimulationError
from ..model import covariate_coding, iiv_cholesky, individual_parameters, observation
from ..units import DOSE_UNITS


@dataclass(frozen=True)
class VirtualPopulation:
    """``n`` virtual patients: population draw, covariates and standardised random effects.

    Attributes
    ----------
    draws : dict of (n,) or (n, k, k) arrays
        Population parameters of each patient's posterior draw.
    replicate : (n,) int
        Which of the ``n_replicates`` draws the patient shares.
    covariates : DataFrame
        One row per patient (the data's covariate columns).
    z : (n, n_iiv) array
        Standard-normal random effects (``eta = omega * z``, or with ``L_corr`` for a block).
    z_iov : (n, n_iov) array
        With inter-occasion variability (``[iov]``), each patient's standard-normal effect of the
        simulated occasion (a new one: ``kappa = omega_iov * z_iov``); ``(n, 0)`` without.
    """

    fit: object
    draws: dict
    replicate: np.ndarray
    covariates: pd.DataFrame
    z: np.ndarray
    z_iov: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.replicate)

    def eta(self) -> np.ndarray:
        if not self.fit.spec.iiv.parameters:
            return np.zeros((self.n, 0))
        return np.einsum("nij,nj->ni", np.asarray(iiv_cholesky(self.fit.spec, self.draws)), self.z)

    def parameters(self, first_dose: float | None = None, dose_unit: str | None = None) -> dict[str, np.ndarray]:
        """Individual structural parameters ``{name: (n,)}``.

        ``first_dose`` (in ``dose_unit``, default the data's) feeds a dose covariate, if the model has one.
        """
        fit = self.fit
        spec = fit.spec
        dose = None
        if first_dose is not None:
            dose = first_dose * DOSE_UNITS[dose_unit or fit.data.dose_unit] / DOSE_UNITS[fit.data.dose_unit]
        elif any(c.kind == "dose" for c in spec.covariates):
            raise SimulationError(f"the model has a dose covariate ({next(c.name for c in spec.covariates if c.kind == 'dose')}): give the regimen")
        coding = covariate_coding(spec, fit.data)
        covs = coding.encode(spec, lambda name: self.covariates[name].to_numpy(), self.n, first_dose=dose,
                                   who=lambda idx: f"virtual patient(s) {idx[:10].tolist()}", error=SimulationError)
        ind = individual_parameters(spec, coding.levels, self.draws, covs, self.eta(), self.n, fit.info["kernel_params"])
        out = {k: np.asarray(v) for k, v in ind.items()}
        for j, p in enumerate(spec.iov.parameters):  # the simulated regimen is a new occasion
            if p in out and self.z_iov is not None:
                out[p] = out[p] * np.exp(np.asarray(self.draws[f"omega_iov_{p}"]) * self.z_iov[:, j])
        return out


def virtual_population(fit, n: int = 1000, *, seed: int | list[int] = 0, n_replicates: int | None = None,
                       covariates: pd.DataFrame | None = None, draws: dict | None = None,
                       first: int = 0) -> VirtualPopulation:
    """Draw ``n`` virtual patients from ``fit`` (see the module docstring).

    Parameters
    ----------
    fit : Fit
    n : int
        Number of virtual patients.
    seed : int
    n_replicates : int, optional
        Posterior draws shared among the patients (default ``n // 50``, at most 200; at least 50 patients
        per draw keep the spread of per-replicate summaries mostly parameter uncertainty); patient ``j``
        uses replicate ``j % n_replicates``.
    covariates : DataFrame, optional
        Covariate values to sample from (default: the fitted subjects' baseline covariates).
    draws : dict, optional
        The ``n_replicates`` population draws to share (:meth:`Fit.population_draws`), for a population
        simulated in chunks that must share them; default drawn here from ``seed``.
    first : int
        The first patient's number: patient ``j`` of this call uses replicate ``(first + j) % n_replicates``.
    """
    if n < 1:
        raise SimulationError(f"the number of virtual patients must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    if draws is not None:
        R = len(next(iter(draws.values())))
    else:
        R = max(1, min(n // 50, 200, fit.n_draws)) if n_replicates is None else int(n_replicates)
    if not 1 <= R:
        raise SimulationError(f"n_replicates must be at least 1, got {R}")
    replicate = (first + np.arange(n)) % R
    shared = fit.population_draws(R, rng) if draws is None else draws
    draws = {k: np.asarray(v)[replicate] for k, v in shared.items()}

    needed = sorted({c.covariate for c in fit.spec.covariates if c.kind != "dose"})
    source = fit.data.to_frame().groupby("ID", sort=False).first() if covariates is None else covariates
    missing = [c for c in needed if c not in source.columns]
    if missing:
        raise SimulationError(f"covariate(s) {', '.join(missing)} needed by the model are not in the covariate table")
    cols = [c for c in source.columns if c in set(fit.data.covariate_names) | set(needed)]
    table = source[cols].reset_index(drop=True)
    imputed = covariate_coding(fit.spec, fit.data).fill if needed else {}
    gaps = [c.covariate for c in fit.spec.covariates if c.kind != "dose" and c.name not in imputed
            and table[c.covariate].isna().any()]
    if gaps:
        raise SimulationError(f"the covariate table has missing values in {sorted(set(gaps))}, which the model "
                              "does not impute (missing = ... in its spec)")
    rows = rng.integers(0, len(table), size=n) if len(table) else np.zeros(n, int)
    cov = table.iloc[rows].reset_index(drop=True) if len(table) else pd.DataFrame(index=range(n))
    z = rng.standard_normal((n, len(fit.spec.iiv.parameters)))
    z_iov = rng.standard_normal((n, len(fit.spec.iov.parameters)))
    return VirtualPopulation(fit, draws, replicate, cov, z, z_iov)


def residual_draws(fit, draws: dict, conc: np.ndarray, seed: int) -> np.ndarray:
    """``conc`` (n, T) with residual error of each patient's draw of the error model (:func:`poppk.model.observation`)."""
    from jax import random

    conc = jnp.asarray(conc)
    sig = {s: jnp.asarray(draws[s])[:, None] for s in fit.spec.error.sigmas}
    nothing = jnp.zeros(conc.shape, bool)
    residual, _ = observation(fit.spec.error.model, conc, sig, None, ~nothing, nothing, 1.0)
    return np.asarray(residual.sample(random.PRNGKey(seed)))


__all__ = ["VirtualPopulation", "virtual_population", "residual_draws"]
