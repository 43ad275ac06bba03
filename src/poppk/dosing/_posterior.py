"""One patient's posterior under a fitted population model.

The population model's posterior draws ``theta_s`` (typical values, effects,
omegas, residual SDs) serve as the prior, the patient's records as data. For
each of ``n_pop`` draws, the patient's random effects ``eta`` are found by
damped Newton iterations (the mode of ``p(y | theta_s, eta) p(eta | theta_s)``)
and ``per_draw`` values are drawn from the Laplace (normal) approximation
there; importance weights ``p(y, eta | theta_s) / q_s(eta)`` then correct both
the approximation and the weight each ``theta_s`` deserves given the patient's
data, so that resampling by weight gives draws of ``p(theta, eta | D, y)``
(the patient joins the population as one more subject, ``theta`` keeping its
posterior from the trial). ``method="map"`` is the fast option: ``theta`` at
its posterior median and the Laplace approximation without weights.

Everything runs in one compiled function, ``vmap``-ed over draws and, in the
virtual trial, over patients; BLQ records are censored (M3).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DosingError
from ..model import covariate_coding, covariate_inputs, iiv_cholesky, individual_parameters, observation
from ..pk import predict_subjects, prepare

NEWTON_STEPS = 30


@dataclass(frozen=True)
class PatientPosterior:
    """Posterior draws of one patient's individual parameters ``{name: (S,)}`` and the draws'
    residual-error SDs; ``ess`` is the importance-sampling effective sample size (``None`` for MAP)."""

    params: dict
    method: str
    ess: float | None
    eta_mode: np.ndarray


def population_sample(fit, n_pop: int, seed: int, method: str) -> dict:
    """The population draws a patient's posterior starts from: ``n_pop`` at random (at most all, without
    replacement), or for ``method="map"`` their medians (one 'draw')."""
    if method == "map":
        return {k: np.median(v, axis=0)[None] for k, v in fit.population_draws().items()}
    return fit.population_draws(min(n_pop, fit.n_draws), seed, replace=False)


def make_patient_solver(fit, *, per_draw: int, method: str, occasions: np.ndarray | None = None):
    """A jitted function ``(key, pop, doses, sampling, dv, mask, censored, lloq, covs) -> (params, logw, mode)``
    for one patient (vmap it over patients); ``pop`` holds ``S`` population draws.

    ``covs`` as :func:`patient_arrays` gives them: ``{effect: (1,)}``, or ``{effect: (1, K)}`` per segment
    where the patient's covariates or occasions change (``doses`` then prepared with the change times).
    With inter-occasion variability, ``occasions`` ``(1, K)`` is each segment's occasion (an index into
    the patient's own occasions): their effects are estimated beside the random effects, and the
    returned parameters are those of a *new* occasion (``exp(kappa)`` drawn from ``N(0, omega_iov)``),
    the one a recommended regimen will be given in (the usual MIPD treatment of IOV); covariates that
    change take their last value.
    """
    from ..model import segment_parameters

    spec = fit.spec
    kernel = spec.make_kernel(fit.data.dose_unit, fit.data.conc_unit)
    iiv = list(spec.iiv.parameters)
    k = len(iiv)
    iov = list(spec.iov.parameters)
    n_occ = 0 if occasions is None or not iov else int(np.max(occasions)) + 1
    q = k + n_occ * len(iov)
    occ = None if occasions is None else jnp.asarray(occasions)
    levels = covariate_coding(spec, fit.data).levels
    kinds = spec.error.model
    params_out = list(fit.info["kernel_params"])

    def individual(theta, covs, eta):
        ind = individual_parameters(spec, levels, theta, covs, eta[None], 1, params_out)
        return {n: v[0] for n, v in ind.items()}

    def future(theta, covs, eta, z_new):
        """The parameters for a dose still to come: the last covariates, a new occasion."""
        last = {c: v[..., -1] for c, v in covs.items()}
        p = individual(theta, last, eta)
        for j, name in enumerate(iov):
            if name in p:
                p[name] = p[name] * jnp.exp(theta[f"omega_iov_{name}"] * z_new[j])
        return p

    def log_joint(x, theta, doses, sampling, dv, mask, censored, lloq, covs):
        eta, kappa = x[:k], x[k:].reshape(1, n_occ, len(iov))
        segmented = occ is not None or any(jnp.ndim(v) == 2 for v in covs.values())
        if segmented:
            p = segment_parameters(spec, levels, theta, covs, eta[None], params_out,
                                   kappa=kappa if n_occ else None, occasions=occ)
        else:
            p = {n: v[None] for n, v in individual(theta, covs, eta).items()}
        pred = predict_subjects(kernel, p, doses, sampling)[0]
        res, obs = observation(kinds, pred, theta, dv, mask, censored, lloq)
        ll = jnp.where(mask, res.log_prob(obs), 0.0).sum()
        prior = 0.0
        if k:
            chol = iiv_cholesky(spec, theta)
            z = jax.scipy.linalg.solve_triangular(chol, eta, lower=True)
            prior = -0.5 * z @ z - jnp.log(jnp.diag(chol)).sum() - 0.5 * k * jnp.log(2 * jnp.pi)
        if n_occ:
            sd = jnp.stack([theta[f"omega_iov_{name}"] for name in iov])[None, :]
            prior = prior + jax.scipy.stats.norm.logpdf(kappa[0], 0.0, sd).sum()
        return ll + prior

    def one_draw(key, theta, data):
        key, new_key = jax.random.split(key)
        f = lambda e: log_joint(e, theta, *data)  # noqa: E731
        grad, hess = jax.grad(f), jax.hessian(f)

        def newton(eta, _):
            g, h = grad(eta), hess(eta)
            # Damped Newton on a positive-definite stand-in for -H (Levenberg-style shift).
            neg = -h + (jnp.maximum(0.0, -jnp.linalg.eigvalsh(-h).min()) + 1e-6) * jnp.eye(q)
            step = jnp.linalg.solve(neg, g)
            step = step / jnp.maximum(1.0, jnp.abs(step).max())  # at most 1 unit of log parameter per step
            # Backtracking: halve until the log density does not fall (at most 10 halvings).
            def cond(c):
                s, n = c
                return (f(eta + s) < f(eta) - 1e-12) & (n < 10)

            s, _ = jax.lax.while_loop(cond, lambda c: (c[0] / 2, c[1] + 1), (step, 0))
            new = eta + s
            return jnp.where(jnp.isfinite(f(new)), new, eta), None

        mode, _ = jax.lax.scan(newton, jnp.zeros(q), None, length=NEWTON_STEPS)
        # The normal approximation's precision, each direction at least the prior's smallest (the data add
        # information; where the curvature at the mode says less, or is negative, the approximation would
        # otherwise reach parameters no subject has, KA = inf): its square root from the eigenvectors.
        w, u = jnp.linalg.eigh(0.5 * (-hess(mode) - hess(mode).T))
        spread = jnp.concatenate([jnp.stack([theta[f"omega_{p}"] for p in iiv]) if k else jnp.zeros(0),
                                  jnp.stack([theta[f"omega_iov_{p}"] for p in iov]) if n_occ else jnp.zeros(0)])
        w = jnp.maximum(w, 1.0 / jnp.max(spread) ** 2)
        L = u / jnp.sqrt(w)[None, :]
        z = jax.random.normal(key, (per_draw, q))
        xs = mode[None, :] + z @ L.T
        logq = -0.5 * (z**2).sum(1) + 0.5 * jnp.log(w).sum() - 0.5 * q * jnp.log(2 * jnp.pi)
        logp = jax.vmap(f)(xs)
        z_new = jax.random.normal(new_key, (per_draw, len(iov)))  # a new occasion's effect: its prior exactly
        params = jax.vmap(lambda x, zn: future(theta, data[-1], x[:k], zn))(xs, z_new)
        return params, logp - logq, mode[:k]

    def solve(key, pop, *data):
        S = next(iter(pop.values())).shape[0]
        keys = jax.random.split(key, S)
        return jax.vmap(one_draw, in_axes=(0, 0, None))(keys, pop, data)

    return jax.jit(solve)


def patient_arrays(fit, patient):
    """A one-subject :class:`PKDataset` -> ``(arrays, occasions)``: the arrays :func:`make_patient_solver`'s
    function takes and the patient's occasions per segment (for its ``occasions``; None without IOV)."""
    if patient.n_subjects != 1:
        raise DosingError(f"the patient file must hold one subject; it holds {patient.n_subjects} "
                         f"(IDs {list(patient.ids)[:10]})")
    if patient.dose_unit != fit.data.dose_unit or patient.conc_unit != fit.data.conc_unit:
        raise DosingError(f"the patient's units ({patient.dose_unit}, {patient.conc_unit}) differ from the fit's "
                         f"({fit.data.dose_unit}, {fit.data.conc_unit})")
    if not np.asarray(patient.doses.mask).any():
        raise DosingError("the patient file has no dose records; observations cannot be interpreted without them")
    inputs, changes, occasions, _ = covariate_inputs(fit.spec, covariate_coding(fit.spec, fit.data), patient,
                                                     who=lambda idx: "the patient", error=DosingError)
    covs = {k: jnp.asarray(v) for k, v in inputs.items()}
    kernel = fit.spec.make_kernel(fit.data.dose_unit, fit.data.conc_unit)
    mask = np.asarray(patient.fit_mask)
    censored = np.asarray(patient.blq) & mask
    if censored.any() and np.isnan(np.asarray(patient.lloq)[censored]).any():
        raise DosingError("the patient's BLQ records need an LLOQ")
    arrays = (prepare(kernel, patient.doses, patient.sampling, changes), patient.sampling,
              jnp.asarray(np.nan_to_num(np.asarray(patient.dv)[0])), jnp.asarray(mask[0]), jnp.asarray(censored[0]),
              jnp.asarray(np.nan_to_num(np.asarray(patient.lloq)[0], nan=1.0)), covs)
    return arrays, occasions


def resample(params: dict, logw: np.ndarray, n: int, rng: np.random.Generator) -> tuple[dict, float]:
    """Resample flattened (S*M,) draws by importance weight; returns draws and the ESS."""
    lw = np.asarray(logw).ravel()
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    w = np.exp(lw - lw.max())
    w /= w.sum()
    ess = float(1.0 / (w**2).sum())
    idx = rng.choice(w.size, size=n, p=w)
    return {k: np.asarray(v).ravel()[idx] for k, v in params.items()}, ess


def patient_posterior(fit, patient, *, method: str = "full", n_draws: int = 1000, n_pop: int = 200,
                      per_draw: int = 50, seed: int = 0) -> PatientPosterior:
    """The posterior of one patient's individual parameters given their records (module docstring).

    Parameters
    ----------
    fit : Fit
    patient : PKDataset
        One subject: their doses and observations (units as the fit's data).
    method : {"full", "map"}
    n_draws : int
        Draws returned (resampled by importance weight for ``full``).

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> patient = fit.data.subset([0])          # one subject's doses and samples
    >>> post = patient_posterior(fit, patient, method="map", n_draws=200)
    >>> sorted(post.params), post.params["CL"].shape
    (['CL', 'KA', 'V'], (200,))
    """
    from .._runtime import configure_jax

    configure_jax()
    if method not in ("full", "map"):
        raise DosingError(f"method must be 'full' or 'map', got {method!r}")
    arrays, occasions = patient_arrays(fit, patient)
    if not np.asarray(arrays[3]).any():
        raise DosingError("the patient file has no usable observations (EVID 0, MDV 0)")
    pop = {k: jnp.asarray(v) for k, v in population_sample(fit, n_pop, seed, method).items()}
    m = n_draws if method == "map" else per_draw
    solver = make_patient_solver(fit, per_draw=m, method=method, occasions=occasions)
    params, logw, mode = solver(jax.random.PRNGKey(seed), pop, *arrays)
    rng = np.random.default_rng(seed)
    if method == "map":
        return PatientPosterior({k: np.asarray(v).ravel() for k, v in params.items()}, method, None,
                                np.asarray(mode)[0])
    draws, ess = resample(params, logw, n_draws, rng)
    return PatientPosterior(draws, method, ess, np.median(np.asarray(mode), axis=0))


__all__ = ["PatientPosterior", "make_patient_solver", "patient_arrays", "patient_posterior", "resample"]
