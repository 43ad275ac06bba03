"""``fit(..., method="laplace")``: the posterior mode of the population parameters with the random
effects integrated out by Laplace's method, and the normal approximation around it.

This is the Bayesian analogue of NONMEM's ``METHOD=COND LAPLACIAN INTER`` with its ``$COV`` step
(Wang 2007, *J Pharmacokinet Pharmacodyn* 34:575, sets out the approximation; Pinheiro and Bates
1995, *J Comput Graph Stat* 4:12, compare it with first-order and adaptive quadrature):

1. for population parameters ``theta`` (NumPyro's unconstrained coordinates: log typical values,
   log omegas, log sigmas, covariate effects) each subject's standardised random effects ``z_i``
   (``eta_i = Omega^(1/2) z_i``, the non-centred model) go to the mode of
   ``-log p(y_i, z_i | theta)`` by damped Newton steps (subjects together: the Hessian in ``z`` is
   block diagonal, one ``q x q`` block per subject, from ``q`` Hessian-vector products);
2. the marginal ``-log p(theta | y)`` is approximated by
   ``U(theta, z_hat) + 1/2 sum_i log det H_i(theta) - (N q / 2) log 2 pi`` (Laplace), where
   ``U = -log p(theta) - sum_i log p(y_i, z_i | theta)`` is the sampler's potential and ``H_i`` the
   Hessian of ``U`` in ``z_i`` at ``z_hat_i``. L-BFGS minimises it, its gradient in ``theta`` by
   central differences (:func:`_evaluator` says why not automatic differentiation);
3. the Hessian of the marginal at the mode (forward differences of that gradient, each with its own
   inner solves) is the inverse covariance of ``theta`` (the ``$COV`` step: standard errors, RSE%,
   correlations);
4. draws for the fit folder: ``theta_s ~ N(theta_hat, H^-1)`` and, given ``theta_s``,
   ``z_i ~ N(z_hat_i + J_i (theta_s - theta_hat), H_i^-1)`` with ``J_i = dz_hat_i/dtheta`` (from the
   same central differences), so every downstream command (report, simulate, dose, export) reads the
   fit as it reads a NUTS fit.

The Laplace approximation is invariant to the linear change from ``eta`` to ``z``, so the
objective is the same as with the random effects on their own scale.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

#: Newton iterations per inner solve at most, and the gradient (max abs, ``z`` units) counted as converged.
INNER_MAX = 60
INNER_TOL = 1e-8
#: Newton iterations for the neighbours of a central difference, started from the centre's mode.
NEIGHBOUR_STEPS = 2
#: Largest Newton step per subject (``z`` units: standard deviations of the random effects).
MAX_STEP = 3.0
#: Smallest curvature kept per direction in a subject's Newton step (the ``N(0, 1)`` prior alone gives 1).
CURVATURE_FLOOR = 1e-2
#: Step fractions tried in turn per Newton iteration (the first that lowers the potential is taken; none: stop).
ALPHAS = (1.0, 0.5, 0.25, 0.1)
#: L-BFGS iterations at most, and the gradient norm of the marginal counted as a stationary point.
OUTER_MAX = 2000
OUTER_GTOL = 1e-4
#: Relative step of the central differences of the marginal (its gradient; ten times it for the Hessian).
FD_STEP = 1e-4
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class LaplaceResult:
    """What the optimiser found: the unconstrained mode and covariance of the population parameters,
    the random effects at the mode and their conditional covariances, and how it went.

    ``theta`` (P,), ``cov`` (P, P), ``z`` (N, q), ``z_cov`` (N, q, q), ``jacobian`` (N, q, P);
    ``names`` labels ``theta``'s entries (``L_corr[k]`` for the elements of a correlation factor);
    ``objective`` holds ``-2 log posterior``, ``-2 log likelihood`` and NONMEM's OFV convention.
    """

    theta: np.ndarray
    cov: np.ndarray
    names: tuple[str, ...]
    z: np.ndarray
    z_cov: np.ndarray
    jacobian: np.ndarray
    objective: dict
    optimizer: dict
    covariance_ok: bool
    seconds: float


def _names(unravel, size: int) -> tuple[str, ...]:
    """A name per entry of the flat vector: the site, or ``site[k]`` for a site with several entries."""
    out = [""] * size
    for k in range(size):
        e = np.zeros(size)
        e[k] = 1.0
        parts = unravel(jnp.asarray(e))
        for site, v in parts.items():
            v = np.asarray(v).ravel()
            if v.size and v.any():
                out[k] = site if v.size == 1 else f"{site}[{int(np.flatnonzero(v)[0])}]"
    return tuple(out)


def _population_sites(start: dict) -> dict:
    """``start``'s sites without the standardised random effects (``eta_z``): the population parameters."""
    return {k: v for k, v in start.items() if k != "eta_z"}


def _problem(built, start: dict):
    """The potential split into population parameters (a flat vector) and standardised random effects."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy

    theta0 = _population_sites(start)
    z0 = start.get("eta_z")
    flat0, unravel = ravel_pytree(theta0)

    def potential(tf, z):
        sites = unravel(tf)
        if z is not None:
            sites = {**sites, "eta_z": z}
        return potential_energy(built.fn, (), built.kwargs, sites)

    def per_subject(tf, z):
        """Each subject's part of the potential, ``-log p(y_i | theta, z_i) - log N(z_i; 0, I)`` and the
        subject's flip-flop wall: ``(N,)``; the potential is their sum plus terms of ``theta`` alone."""
        from numpyro import handlers
        from numpyro.infer.util import constrain_fn

        params = constrain_fn(built.fn, (), built.kwargs, {**unravel(tf), "eta_z": z})
        trace = handlers.trace(handlers.substitute(built.fn, data=params)).get_trace(**built.kwargs)
        dv, eta = trace["DV"], trace["eta_z"]
        lp = dv["fn"].log_prob(dv["value"])
        if dv.get("mask") is not None:
            lp = jnp.where(dv["mask"], lp, 0.0)
        lp = lp.sum(axis=-1) + eta["fn"].log_prob(eta["value"])
        if "no_flip_flop_i" in trace:  # the flip-flop wall on each subject's KA
            lp = lp + trace["no_flip_flop_i"]["fn"].log_factor
        return -lp

    return flat0, unravel, z0, potential, per_subject


def _evaluator(potential, per_subject, q: int):
    """A function of population points ``(B, P)`` and a starting ``z`` ``(N, q)``: each point's inner
    Newton solve and Laplace marginal, returning (numpy) the marginals ``(B,)``, the modes ``z_hat``
    ``(B, N, q)``, their Hessian blocks ``(B, N, q, q)``, the largest remaining inner gradient ``(B,)``
    and the Newton iterations ``(B,)``.

    Why finite differences, not automatic differentiation of the marginal: its gradient needs third
    derivatives of the potential (through the log determinant), whose compilation took 17 s on
    theophylline's one-compartment model against about 4 s for this solve. Why one point per call
    and not ``vmap`` over the points: on the bundled trial (2-core CPU) the batched program took 7.5 s
    to compile against 5.6 s, and ran no faster (0.17 s against 0.15 s for 15 points).
    """
    basis = jnp.eye(q)

    def grad_and_blocks(tf, z):
        g_of = lambda zz: jax.grad(potential, argnums=1)(tf, zz)  # noqa: E731
        # The Hessian in z is block diagonal (subjects are independent given theta): a product with the
        # direction "k-th random effect of every subject" gives column k of every subject's block.
        g, cols = jax.vmap(lambda v: jax.jvp(g_of, (z,), (jnp.broadcast_to(v, z.shape),)))(basis)
        h = jnp.moveaxis(cols, 0, -1)  # (N, q, q) with H[i, :, k]
        return g[0], 0.5 * (h + jnp.swapaxes(h, -1, -2))

    def newton_step(h, g):
        w, v = jnp.linalg.eigh(h)
        w = jnp.maximum(w, CURVATURE_FLOOR)
        step = -jnp.einsum("nij,nj,nkj,nk->ni", v, 1.0 / w, v, g)
        norm = jnp.linalg.norm(step, axis=-1, keepdims=True)
        return step * jnp.minimum(1.0, MAX_STEP / jnp.maximum(norm, 1e-300))

    alphas = jnp.asarray(ALPHAS)

    def line_search(tf, z, step, value, skip):
        """The first step fraction (of ``ALPHAS``) that lowers the potential below ``value``: (found, z, value)."""
        def cond(s):
            j, found, _ = s
            return (j < alphas.size) & ~found & ~skip

        def body(s):
            j, _, _ = s
            trial = potential(tf, z + alphas[j] * step)
            found = jnp.isfinite(trial) & (trial < value)
            return jnp.where(found, j, j + 1), found, jnp.where(found, trial, value)

        j, found, new = jax.lax.while_loop(cond, body, (0, False, value))
        return found, jnp.where(found, z + alphas[jnp.minimum(j, alphas.size - 1)] * step, z), new

    def one(tf, z, cap):
        # One derivative evaluation per iteration (gradient and Hessian blocks at z, then a step), so the
        # program holds a single copy of it: the loop stops at the iteration that finds the gradient small
        # (its blocks are then those at the final z) or where no step fraction lowers the potential.
        def cond(state):
            k, _, _, _, _, done = state
            return (k < cap) & ~done

        def body(state):
            k, z, value, _, _, _ = state
            g, h = grad_and_blocks(tf, z)
            gmax = jnp.max(jnp.abs(g))
            converged = gmax <= INNER_TOL
            moved, z_new, value_new = line_search(tf, z, newton_step(h, g), value, converged)
            return k + 1, z_new, value_new, h, gmax, ~moved

        n, q_ = z.shape
        state = (0, z, potential(tf, z), jnp.zeros((n, q_, q_)), jnp.inf, False)
        k, z, value, h, gmax, _ = jax.lax.while_loop(cond, body, state)
        sign, logdet = jnp.linalg.slogdet(h)
        marginal = value + 0.5 * logdet.sum() - 0.5 * z.size * _LOG_2PI
        return jnp.where(jnp.all(sign > 0) & jnp.isfinite(marginal), marginal, jnp.inf), z, h, gmax, k

    single = jax.jit(one)

    parts = jax.jit(per_subject)

    def centre(x, z):
        # A subject's joint density can have several modes (the flip-flop pair of an oral model; the
        # VMAX-KM ridge of saturable elimination): solved from the warm start and from 0, each subject keeps
        # the lower of its two modes (subjects are independent given theta), and one more solve from that
        # mixture gives its Hessian blocks. From the warm start alone, the optimiser settled on the bundled
        # trial's Michaelis-Menten model where the truth's marginal was lower by 66.
        warm = single(x, z, INNER_MAX)
        if not np.any(np.asarray(z)):
            return warm
        cold = single(x, jnp.zeros_like(z), INNER_MAX)
        better = np.asarray(parts(x, cold[1])) < np.asarray(parts(x, warm[1]))
        if not better.any():
            return warm
        return single(x, jnp.where(jnp.asarray(better)[:, None], cold[1], warm[1]), INNER_MAX)

    def evaluate(points, z):
        # The first point is solved in full; the others, the neighbours of a central difference, start from
        # its mode and take one Newton step (then stop at the next): from a distance O(h) that leaves an
        # error O(h^2) in z_hat, of the same sign on both sides, so it cancels in the difference.
        out = [centre(jnp.asarray(points[0]), z)]
        out += [single(jnp.asarray(x), out[0][1], NEIGHBOUR_STEPS) for x in points[1:]]
        return tuple(np.stack([np.asarray(o[k]) for o in out]) for k in range(5))

    return evaluate


def _difference_steps(x: np.ndarray) -> np.ndarray:
    return FD_STEP * np.maximum(1.0, np.abs(x))


def _central_points(x: np.ndarray) -> np.ndarray:
    """``x`` and ``x +- h_k e_k`` for every coordinate: ``(2P + 1, P)``."""
    h = np.diag(_difference_steps(x))
    return np.concatenate([x[None], x + h, x - h])


def laplace_mode(built, start: dict, *, max_iter: int = OUTER_MAX) -> LaplaceResult:
    """The Laplace approximation of ``built``'s posterior from the unconstrained point ``start``
    (one chain's sites; the random effects non-centred, site ``eta_z``). See the module docstring.

    Raises :class:`~poppk.errors.FitError` when no finite starting value exists or the optimiser
    leaves the support for good; a mode whose curvature is not positive definite is returned with
    ``covariance_ok=False`` and a floored covariance (NONMEM's "covariance step failed").
    """
    from scipy.optimize import minimize

    from ..errors import FitError

    t0 = time.perf_counter()
    flat0, unravel, z0, potential, per_subject = _problem(built, start)
    p = int(flat0.size)
    if z0 is None:  # no random effects: the mode of the posterior itself
        batch = jax.jit(jax.vmap(lambda tf: potential(tf, None)))
        z0 = jnp.zeros((0, 0))

        def evaluate(points, z):
            v = batch(jnp.asarray(points))
            n = points.shape[0]
            return v, jnp.zeros((n, 0, 0)), jnp.zeros((n, 0, 0, 0)), jnp.zeros(n), jnp.zeros(n, int)
    else:
        batch = _evaluator(potential, per_subject, z0.shape[1])

        def evaluate(points, z):
            return batch(jnp.asarray(points), z)

    n, q = z0.shape
    state = {"z": jnp.zeros_like(z0), "best": np.inf}
    calls = {"n": 0, "inner_iterations": 0, "inner_gmax": 0.0}

    def at(x):
        """The marginal, its central-difference gradient and the pieces at ``x`` (and at the points around it)."""
        v, z, hz, gmax, k = jax.device_get(evaluate(_central_points(x), state["z"]))
        calls["n"] += 1
        calls["inner_iterations"] += int(k[0])
        h = _difference_steps(x)
        grad = (v[1:p + 1] - v[p + 1:]) / (2 * h)
        return v, grad, z, hz, gmax

    def fun(x):
        v, grad, z, _, gmax = at(np.asarray(x, dtype=float))
        if not (np.isfinite(v).all()):
            return np.inf, np.zeros(p)
        # Solves start from the modes of the best point so far (the optimiser's current iterate): a subject's
        # joint density can have several modes (the flip-flop pair of an oral model), and a solve started from
        # a rejected trial point's modes could land in another, making the marginal jump between nearby points.
        if v[0] < state["best"]:
            state["best"], state["z"] = float(v[0]), jnp.asarray(z[0])
        calls["inner_gmax"] = float(gmax[0])
        return float(v[0]), grad

    x0 = np.asarray(flat0, dtype=float)
    if not np.isfinite(fun(x0)[0]):
        raise FitError("Laplace: the log posterior is not finite at the starting point (prior medians, random "
                       "effects 0); check the priors' medians and units against the data")
    res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "maxfun": 2 * max_iter, "gtol": OUTER_GTOL * 1e-2})
    if not np.isfinite(res.fun):
        raise FitError("Laplace: the optimiser left the support of the posterior (no finite mode found)")
    mode = np.asarray(res.x, dtype=float)
    v, grad, zs, hzs, gmax = at(mode)
    value, z_hat, hz = float(v[0]), zs[0], hzs[0]
    state["z"] = jnp.asarray(z_hat)
    gnorm = float(np.max(np.abs(grad)))
    h = _difference_steps(mode)
    jac = np.moveaxis((zs[1:p + 1] - zs[p + 1:]) / (2 * h[:, None, None]), 0, -1)  # dz_hat/dtheta: (N, q, P)

    # $COV: the Hessian of the marginal by forward differences of its gradient (an error of order the step,
    # 1e-3 relative: a thousandth of a standard error; central differences would cost p more evaluations).
    step = 10 * h
    hess = np.empty((p, p))
    for i in range(p):
        e = np.zeros(p)
        e[i] = step[i]
        hess[:, i] = (at(mode + e)[1] - grad) / step[i]
    hess = 0.5 * (hess + hess.T)
    w, vecs = np.linalg.eigh(hess) if np.isfinite(hess).all() else (np.full(p, -1.0), np.eye(p))
    covariance_ok = bool(w[0] > 0)
    w = np.maximum(np.abs(w), 1e-8 * max(1.0, float(np.abs(w).max())))
    cov = (vecs / w) @ vecs.T
    z_cov = np.linalg.inv(hz) if q else np.zeros((0, 0, 0))
    logdet = float(np.linalg.slogdet(hz)[1].sum()) if q else 0.0
    optimizer = {
        "converged": bool(res.success) and gnorm < OUTER_GTOL * max(1.0, abs(value)) and float(gmax[0]) < 1e-5,
        "message": str(res.message), "iterations": int(res.nit), "evaluations": calls["n"],
        "max_abs_gradient": gnorm, "inner_max_abs_gradient": float(gmax[0]),
        "inner_newton_iterations": calls["inner_iterations"],
    }
    objective = {"minus2_log_posterior": 2.0 * value, "random_effects_logdet": logdet, "n_random_effects": n * q}
    return LaplaceResult(mode, cov, _names(unravel, p), np.asarray(z_hat), z_cov, jac, objective, optimizer,
                         covariance_ok, time.perf_counter() - t0)


def laplace_draws(result: LaplaceResult, start: dict, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Flat unconstrained draws ``(1, draws, D)`` of every site, in ``ravel_pytree(start)``'s order:
    population parameters from ``N(theta_hat, cov)``, random effects from their conditional normal
    approximation given each draw (see the module docstring)."""
    from jax.flatten_util import ravel_pytree

    unravel_theta = ravel_pytree(_population_sites(start))[1]
    w, vecs = np.linalg.eigh(result.cov)
    chol = vecs * np.sqrt(np.maximum(w, 0.0))
    theta = result.theta + rng.standard_normal((draws, result.theta.size)) @ chol.T
    sites = jax.vmap(unravel_theta)(jnp.asarray(theta))
    if "eta_z" in start:
        shift = np.einsum("nqp,sp->snq", result.jacobian, theta - result.theta)
        lz = np.linalg.cholesky(result.z_cov)  # (N, q, q)
        noise = np.einsum("nij,snj->sni", lz, rng.standard_normal((draws,) + result.z.shape))
        sites = {**sites, "eta_z": jnp.asarray(result.z[None] + shift + noise)}
    flat = jax.vmap(lambda s: ravel_pytree(s)[0])(sites)
    return np.asarray(flat)[None]


def laplace_log_likelihood(result: LaplaceResult, pointwise_at_mode: np.ndarray, n_uncensored: int) -> dict:
    """``-2 log likelihood`` at the mode, the random effects integrated out by Laplace's method, from the
    pointwise log densities ``(N, O)`` at the mode (masked records 0):
    ``sum_i [log p(y_i | theta, z_hat_i) - |z_hat_i|^2 / 2 - log det H_i / 2]`` (the ``2 pi`` of the
    ``N(0, I)`` prior and of the Laplace integral cancel). NONMEM's OFV leaves out ``n log 2 pi`` of
    the ``n`` uncensored observations; ``ofv`` is that value."""
    ll = float(np.sum(pointwise_at_mode)) - 0.5 * float(np.sum(result.z ** 2)) - 0.5 * result.objective[
        "random_effects_logdet"]
    return {"minus2_log_likelihood": -2.0 * ll, "ofv": -2.0 * ll - n_uncensored * _LOG_2PI}



def laplace_fit(built, data, *, samples: int, rng: np.random.Generator):
    """Run :func:`laplace_mode` on ``built`` (non-centred) and return what :func:`poppk.fit` stores:
    the draws by site ``{name: (1, samples, ...)}``, sample statistics, and the ``info["laplace"]``
    record (estimates with standard errors, correlation matrix, objective, EBEs, optimiser)."""
    from jax.flatten_util import ravel_pytree
    from numpyro.distributions import constraints
    from numpyro.infer.util import constrain_fn

    from ..model import occasion_labels
    from ._draws import _pointwise, constrain_draws, flat_potential
    from ._init import initial_params

    start = initial_params(built, 1, rng)
    if "eta_z" in start:
        start = {**start, "eta_z": jnp.zeros_like(start["eta_z"])}
    result = laplace_mode(built, start)
    _, unravel_full, _ = flat_potential(built, start, 1)
    flat = laplace_draws(result, start, samples, rng)
    grouped = constrain_draws(built, unravel_full, flat, parallel=False)
    stats = {"diverging": np.zeros((1, samples), bool)}

    # The mode itself: population estimates and the individual parameters at the EBEs.
    unravel_theta = ravel_pytree(_population_sites(start))[1]
    at_mode = dict(unravel_theta(jnp.asarray(result.theta)))
    if "eta_z" in start:
        at_mode["eta_z"] = jnp.asarray(result.z)
    mode = {k: np.asarray(v) for k, v in constrain_fn(built.fn, (), built.kwargs, at_mode,
                                                        return_deterministic=True).items()}
    ll, _ = _pointwise(built, {k: v[None] for k, v in mode.items()}, 0)
    mask = np.asarray(built.kwargs["mask"])
    censored = np.asarray(built.kwargs["censored"])
    objective = {**result.objective,
                 **laplace_log_likelihood(result, np.where(mask, ll[0], 0.0), int((mask & ~censored).sum()))}

    rows = []
    index = {name: k for k, name in enumerate(result.names)}
    for name in built.population:
        if name not in index:
            continue
        k = index[name]
        est, se_z = float(mode[name]), float(np.sqrt(result.cov[k, k]))
        positive = built.priors[name].support is constraints.positive
        lo, hi = result.theta[k] - 1.6449 * se_z, result.theta[k] + 1.6449 * se_z
        se = est * se_z if positive else se_z  # delta method on the natural scale
        rows.append({"parameter": name, "estimate": est, "se": se,
                     "rse_pct": 100 * se / abs(est) if est else float("nan"),
                     "se_log": se_z if positive else float("nan"),
                     "q5": float(np.exp(lo)) if positive else float(lo),
                     "q95": float(np.exp(hi)) if positive else float(hi)})
    sd = np.sqrt(np.diag(result.cov))
    # in the order of the parameter table (typical values, effects, omegas, sigmas), then the rest (L_corr)
    order = [index[n] for n in built.population if n in index]
    order += [k for k in range(len(result.names)) if k not in order]
    corr = (result.cov / np.outer(sd, sd))[np.ix_(order, order)]
    ebe = {"ID": [str(i) for i in data.ids]}
    for key, v in mode.items():
        if key.endswith("_i"):
            ebe[key[:-2]] = v.tolist()
    if "eta" in mode:
        for k, p in enumerate(built.spec.iiv.parameters):
            ebe[f"eta_{p}"] = mode["eta"][:, k].tolist()
    if "kappa" in mode:  # each occasion's effect (IOV), (N, occasions, IOV parameters)
        for o, occ in enumerate(occasion_labels(built.occasion_levels)):
            for k, p in enumerate(built.spec.iov.parameters):
                ebe[f"kappa_{p}_occ{occ}"] = mode["kappa"][:, o, k].tolist()
    record = {"estimates": rows, "correlation": {"names": [result.names[k] for k in order], "matrix": corr.round(6).tolist()},
              "objective": {k: round(float(v), 4) for k, v in objective.items()}, "optimizer": result.optimizer,
              "covariance_ok": result.covariance_ok, "seconds": round(result.seconds, 2), "ebe": ebe}
    return grouped, stats, record


__all__ = ["LaplaceResult", "laplace_draws", "laplace_fit", "laplace_log_likelihood", "laplace_mode"]
