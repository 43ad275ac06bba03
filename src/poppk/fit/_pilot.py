"""Centred or non-centred IIV, chosen per parameter from the data (``parameterization = "auto"``).

A centred individual parameter (``log_ind ~ N(mu, omega)``) suits a parameter the data inform well;
a non-centred one (``eta_z ~ N(0, 1)``, ``log_ind = mu + omega * eta_z``) suits a weakly informed
one, where the centred hierarchy forms a funnel with its omega. How well the data inform a parameter
is what pharmacometricians read as eta-shrinkage, so ``auto`` estimates it before sampling:

1. the posterior mode of the model sampled non-centred, IIV diagonal (its mode exists; a centred
   mode can collapse an omega to 0), by L-BFGS;
2. there, for each subject ``i``, the information its data carry about its random effects, the
   ``P x P`` block ``I_i`` (the curvature of the log likelihood in ``eta_i``: one Hessian-vector
   product per IIV parameter, as subjects are independent);
3. the between-subject variance by moments, ``omega_p^2 = var_i(eta_ip) - mean_i(1 / I_i,pp)``
   (the spread of near-individual estimates less their noise; the joint mode's own omega is
   inflated); ``s_ip = [(diag(1 / omega^2) + I_i)^-1]_pp / omega_p^2`` is the share of subject
   ``i``'s posterior variance in ``eta_ip`` that comes from the population rather than its data --
   the whole block, as a subject's CL and V trade off on trough data and the diagonal alone
   overstates what the data say about each -- and the expected eta-shrinkage, in the usual (NONMEM)
   sense of ``1 - SD(individual estimates) / omega`` that ``Fit.diagnostics`` reports after the fit,
   is ``1 - sqrt(1 - mean_i s_ip)``.

Taking each parameter's own curvature alone (``s_ip = 1 / (1 + omega_p^2 I_i,pp)``, the rule before
the block) overstates what trough data say about V; the validation page compares both rules with the
shrinkage the fits show.

A parameter is sampled centred when its expected eta-shrinkage is below ``CENTRED_SHRINKAGE``.

Why: simulation-based calibration (``benchmarks/sbc.py``) of the previous rule (centred whenever the
median subject had 6 or more samples) on a 10-sample design diverged in 68 of 100 replications,
mostly those where a large residual error left CL or V weakly informed; the bundled trial (26
samples per subject, expected shrinkage of CL 0.001 and V 0.008) samples twice as fast centred.

Two cases skip the pilot: absorption parameters (the kernel's ``absorption``: KA, TLAG) stay non-centred (a few points on the
rising limb rarely pin each subject's absorption down, and with Michaelis-Menten elimination a
centred KA made every NUTS tree hit the depth limit); and when the median subject has fewer than
two fitted observations per random effect, everything is non-centred: the mode's residual error is
then biased low by half or more (each subject's random effects nearly interpolate its data), so its
curvature overstates what the data say. Measured: on the bundled trial thinned to 5 samples per
subject (3 random effects) the pilot expected 0.02 shrinkage of V where the posterior showed 0.48;
in SBC of a 3-sample design with IIV on CL and V, pilot choices diverged in 12 of 21 replications.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..model import build_model, iiv_choices
from ._init import initial_params
from ._warmstart import find_mode

#: Expected eta-shrinkage below which ``auto`` samples an IIV parameter centred: 0.15, where about
#: 28% of each subject's posterior precision comes from the population (its calibration: the
#: validation page, "Centring pilot").
CENTRED_SHRINKAGE = 0.15
#: Fitted observations per subject and random effect below which the pilot is not run (all non-centred).
MIN_OBS_PER_EFFECT = 2
#: Step (in eta_z) of the central differences that give each subject's curvature.
STEP = 1e-4


@dataclass(frozen=True)
class Pilot:
    """What ``auto`` chose: per IIV parameter ``centered`` or ``noncentered``, and why."""

    choice: tuple[tuple[str, str], ...]
    shrinkage: dict[str, float]  # expected eta-shrinkage per parameter the pilot assessed
    seconds: float
    reason: str


def choose_parameterization(spec, data, *, max_iter: int = 1000) -> Pilot | None:
    """The data-informed choice for ``spec``'s ``auto`` IIV parameters on ``data``; ``None`` when
    nothing is left to ``auto``. The result's ``choice`` is an override for ``build_model`` (which
    samples a block of correlated random effects centred only if every parameter in it is)."""
    choice = iiv_choices(spec)
    auto = [p for p, c in choice.items() if c == "auto"]
    if not auto:
        return None
    t0 = time.perf_counter()
    choice.update({p: "noncentered" for p in auto})
    absorption = set(spec.make_kernel(data.dose_unit, data.conc_unit).absorption)
    assess = [p for p in auto if p not in absorption]

    def done(shrinkage, reason):
        return Pilot(tuple(choice.items()), shrinkage, time.perf_counter() - t0, reason)

    if not assess:
        return done({}, "absorption parameters are non-centred")
    pilot_spec = dataclasses.replace(
        spec, iiv=dataclasses.replace(spec.iiv, structure="diagonal", parameterization="noncentered"))
    built = build_model(pilot_spec, data)
    mask = np.asarray(built.kwargs["mask"])
    if np.median(mask.sum(axis=1)) < MIN_OBS_PER_EFFECT * len(spec.iiv.parameters):
        return done({}, f"non-centred: the median subject has fewer than {MIN_OBS_PER_EFFECT} observations "
                        "per random effect")
    shrinkage = _expected_shrinkage(built, assess, max_iter)
    if shrinkage is None:
        return done({}, "non-centred: the pilot's optimiser failed")
    for p, s in shrinkage.items():
        choice[p] = "centered" if s < CENTRED_SHRINKAGE else "noncentered"
    return done(shrinkage, "expected eta-shrinkage " + ", ".join(f"{p} {s:.3f}" for p, s in shrinkage.items()))


def _expected_shrinkage(built, params: list[str], max_iter: int) -> dict[str, float] | None:
    from jax.flatten_util import ravel_pytree


    start = initial_params(built, 1, np.random.default_rng(0))
    start["eta_z"] = jnp.zeros_like(start["eta_z"])
    res, unravel, value_and_grad = find_mode(built, start, max_iter)
    if not np.isfinite(res.fun):
        return None
    x = jnp.asarray(res.x)
    mode = unravel(x)
    iiv = list(built.spec.iiv.parameters)
    grad = lambda y: np.asarray(value_and_grad(y)[1])  # noqa: E731
    # Subjects are independent: one directional difference of the (compiled) gradient per IIV parameter,
    # moving every subject's eta_z for it at once, gives a column of each subject's own curvature block.
    columns = []
    for col in range(len(iiv)):
        v = jax.tree_util.tree_map(jnp.zeros_like, mode)
        v["eta_z"] = v["eta_z"].at[:, col].set(STEP)
        d = ravel_pytree(v)[0]
        columns.append(np.asarray(unravel(jnp.asarray((grad(x + d) - grad(x - d)) / (2 * STEP)))["eta_z"]))
    # (N, P, P): d2/dz_p dz_q of the potential, subject by subject (eta_z's IOV columns, if any, after them)
    hess = np.stack(columns, axis=-1)[:, : len(iiv)]
    hess = 0.5 * (hess + np.swapaxes(hess, 1, 2))
    omega = np.exp(np.asarray([float(mode[f"omega_{p}"]) for p in iiv]))
    # d2/dz2 of the potential = identity (the N(0, 1) prior) + omega omega^T * information about eta.
    info = (hess - np.eye(len(iiv))) / np.outer(omega, omega)
    w, u = np.linalg.eigh(info)
    info = np.einsum("nij,nj,nkj->nik", u, np.maximum(w, 0.0), u)  # positive semi-definite
    eta = np.asarray(mode["eta_z"])[:, : len(iiv)] * omega
    # The between-subject variance by moments: the spread of the near-individual estimates less their
    # noise (each effect's own curvature; the joint mode's omega is inflated).
    own = np.maximum(np.diagonal(info, axis1=1, axis2=2), 1e-12)
    omega2 = np.maximum(np.var(eta, axis=0) - np.mean(1.0 / own, axis=0), 1e-6 * omega**2)
    # Each subject's posterior of its random effects with that spread: the full block, as a subject's CL
    # and V trade off on trough data (the diagonal alone overstates what the data say about each).
    posterior = np.linalg.inv(np.diag(1.0 / omega2)[None] + info)  # each subject's eta covariance
    share = np.diagonal(posterior, axis1=1, axis2=2) / omega2  # its variance from the population
    out = {p: float(1.0 - np.sqrt(max(1.0 - float(np.mean(share[:, iiv.index(p)])), 0.0))) for p in params}
    if not all(np.isfinite(v) for v in out.values()):
        return None
    return out
