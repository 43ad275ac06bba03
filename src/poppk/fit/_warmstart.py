"""A warm start for NUTS: the posterior mode and the curvature there (Laplace approximation).

Hierarchical PK posteriors are badly conditioned for a diagonal mass matrix: with saturable
elimination, KM moves with every subject's VMAX along a ridge (on the bundled trial the correlation
matrix at the mode has a condition number near 4,000, so a diagonal metric needs trajectories about
60 times longer than a well-scaled one), and NUTS's warmup, starting from a unit diagonal metric, spends
most of its time in trees of 500-1,000 leapfrog steps. Instead:

1. the mode of the log density (in NumPyro's unconstrained space) is found by L-BFGS from the usual
   starting point (typical values at their prior medians, random effects at 0);
2. the Hessian there is computed by central differences of the (already compiled) gradient;
3. chains start at draws from the normal approximation ``N(mode, H^-1)``; a first stage of NUTS
   warmup keeps ``H^-1`` as its dense inverse mass matrix (step size adapted), and the rest of warmup
   and the sampling use a metric re-estimated from those draws (:func:`refine_metric` says why not
   NumPyro's own windowed adaptation).

The mode of a *centred* hierarchical model can sit at an omega collapsed to 0 (the density grows
without bound as every individual parameter approaches its typical value); the warm start notices
(an omega below ``COLLAPSED`` at the mode, a Hessian that is not positive definite, or an optimiser
failure) and gives up, and the fit falls back to the ordinary start, saying why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

#: An omega (log-scale SD) below this at the mode counts as collapsed: no warm start.
COLLAPSED = 1e-3
#: Smallest eigenvalue kept in the Hessian relative to the largest (guards against near-singular curvature).
EIG_FLOOR = 1e-10


@dataclass(frozen=True)
class WarmStart:
    """Per-chain starting points (unconstrained, stacked on a chain axis) and a dense inverse mass matrix."""

    init: dict | None
    inverse_mass_matrix: np.ndarray | None
    seconds: float
    reason: str  # what happened: "laplace" or why it fell back


def _potential(built):
    """``built``'s potential energy (minus the log density) in NumPyro's unconstrained space."""
    from numpyro.infer.util import potential_energy

    return lambda z: potential_energy(built.fn, (), built.kwargs, z)


def find_mode(built, start: dict, max_iter: int):
    """L-BFGS-B on ``built``'s potential from the unconstrained point ``start`` (one chain's values).

    A non-finite value or gradient counts as +inf, so the optimiser backs off from it. Returns the
    scipy result (``res.fun`` is inf when the optimiser left the support), the function that unflattens
    ``res.x`` and the jitted value-and-gradient of the flat vector.
    """
    from jax.flatten_util import ravel_pytree
    from scipy.optimize import minimize

    flat0, unravel = ravel_pytree(start)
    potential_fn = _potential(built)
    value_and_grad = jax.jit(jax.value_and_grad(lambda x: potential_fn(unravel(x))))

    def fun(x):
        v, g = value_and_grad(jnp.asarray(x))
        v, g = float(v), np.asarray(g, dtype=float)
        if not (np.isfinite(v) and np.isfinite(g).all()):
            return np.inf, np.zeros_like(g)
        return v, g

    res = minimize(fun, np.asarray(flat0, dtype=float), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "maxfun": 2 * max_iter})
    return res, unravel, value_and_grad


def laplace_start(built, start: dict, chains: int, rng: np.random.Generator, *, max_iter: int = 3000) -> WarmStart:
    """Mode and Hessian of ``built``'s log density from the unconstrained point ``start`` (one chain's
    values, no chain axis); see the module docstring. Never raises on numerical failure: it returns
    ``init=None`` with the reason."""
    t0 = time.perf_counter()
    res, unravel, value_and_grad = find_mode(built, start, max_iter)
    mode = res.x
    if not np.isfinite(res.fun):
        return WarmStart(None, None, time.perf_counter() - t0, "no warm start: the optimiser left the support")
    values = unravel(jnp.asarray(mode))
    collapsed = [k for k, v in values.items() if k.startswith("omega_") and float(np.exp(v)) < COLLAPSED]
    if collapsed:
        return WarmStart(None, None, time.perf_counter() - t0,
                         f"no warm start: {', '.join(collapsed)} collapse(s) to 0 at the mode (centred IIV)")
    grad = lambda x: np.asarray(value_and_grad(jnp.asarray(x))[1], dtype=float)  # noqa: E731
    n = mode.size
    h = 1e-5 * np.maximum(1.0, np.abs(mode))
    hess = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h[i]
        hess[:, i] = (grad(mode + e) - grad(mode - e)) / (2 * h[i])
    hess = 0.5 * (hess + hess.T)
    if not np.isfinite(hess).all():
        return WarmStart(None, None, time.perf_counter() - t0, "no warm start: the curvature at the mode is not finite")
    w, vecs = np.linalg.eigh(hess)
    if w[0] <= 0:
        return WarmStart(None, None, time.perf_counter() - t0,
                         "no warm start: the mode found is not a maximum (Hessian not positive definite)")
    w = np.maximum(w, EIG_FLOOR * w[-1])
    cov = (vecs / w) @ vecs.T
    chol = vecs / np.sqrt(w)  # cov = chol chol^T
    draws = mode + rng.standard_normal((chains, n)) @ chol.T
    per_chain = [unravel(jnp.asarray(d)) for d in draws]
    init = per_chain[0] if chains == 1 else jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_chain)
    return WarmStart(init, cov, time.perf_counter() - t0, f"laplace ({res.nit} L-BFGS iterations)")


#: Stage-1 iterations (Laplace metric, step size adapted) before the metric is re-estimated.
STAGE1 = 150
#: Weight, in draws, of the Laplace covariance when it is blended with the stage-1 draws' covariance.
PRIOR_DRAWS = 50


def refine_metric(built, warm: WarmStart, *, chains: int, method: str, seed: int, iterations: int,
                  nuts_options: dict) -> tuple[dict, np.ndarray]:
    """Stage 1 of a warm-started fit: NUTS with the Laplace metric for ``iterations`` warmup
    iterations (step size adapted, metric fixed), then the metric re-estimated from the second half
    of those draws, pooled over chains and shrunk towards the Laplace covariance (``PRIOR_DRAWS``).

    Why not NumPyro's own windowed adaptation: its first window replaces the given metric by the
    covariance of 25 draws, which in 80-odd dimensions is poor enough that the next 50 iterations
    ran trees of about 500 leapfrog steps on the bundled trial (the Michaelis-Menten model); the
    re-estimate here has a few hundred draws and the Laplace covariance to lean on.
    Returns (last state of each chain, stacked as ``init``; the new dense inverse mass matrix).
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer import MCMC, NUTS

    kernel = NUTS(built.fn, dense_mass=True, inverse_mass_matrix=jnp.asarray(warm.inverse_mass_matrix),
                  adapt_mass_matrix=False, **nuts_options)
    mcmc = MCMC(kernel, num_warmup=iterations, num_samples=1, num_chains=chains, chain_method=method,
                progress_bar=False, postprocess_fn=lambda z: z)  # keep the unconstrained draws
    mcmc.warmup(jax.random.PRNGKey(seed + 7919), init_params=warm.init, collect_warmup=True, **built.kwargs)
    z = mcmc.get_samples(group_by_chain=True)  # {site: (chains, iterations, ...)}
    half = iterations // 2
    flat = jax.vmap(jax.vmap(lambda d: ravel_pytree(d)[0]))({k: v[:, half:] for k, v in z.items()})
    flat = np.asarray(flat).reshape(-1, np.asarray(flat).shape[-1])
    n = flat.shape[0]
    cov = (n * np.cov(flat, rowvar=False) + PRIOR_DRAWS * warm.inverse_mass_matrix) / (n + PRIOR_DRAWS)
    last = mcmc.last_state.z
    return last, cov
