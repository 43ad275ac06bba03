"""From NUTS to a fit's DataTree: the flat potential the sampler differentiates, the draws named and
constrained, the pointwise log likelihood and predictive draws, and the DataTree itself.

:mod:`poppk.fit._sampler` runs the pilot, the warm start and NUTS; this module turns what NUTS returns
into the fit's DataTree. ``benchmarks/floor.py`` samples through :func:`flat_potential` as ``fit`` does.
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from ..data import PKDataset
from ..model import observation, occasion_labels
from ..pk import predict_subjects

#: Draws per batch where draws are evaluated together (constraining, pointwise log likelihood).
CHUNK = 250


def flat_potential(built, init, chains: int):
    """``built``'s potential energy as a function of one flat unconstrained vector, the function that names
    such a vector's parts (``unravel``), and ``init`` (a dict of sites, with a chain axis unless ``chains``
    is 1) as flat vectors. The order is ``jax.flatten_util.ravel_pytree``'s, as inside NumPyro, so a dense
    inverse mass matrix estimated on the dict of sites applies unchanged."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy

    unravel = ravel_pytree(init if chains == 1 else jax.tree_util.tree_map(lambda x: x[0], init))[1]
    flat_init = ravel_pytree(init)[0] if chains == 1 else jax.vmap(lambda z: ravel_pytree(z)[0])(init)
    model_kwargs = built.kwargs
    return (lambda x: potential_energy(built.fn, (), model_kwargs, unravel(x))), unravel, flat_init


def constrain_draws(built, unravel, flat: np.ndarray, *, parallel: bool) -> dict:
    """The model's sites ``{name: (chain, draw, ...)}`` -- constrained latent values and deterministic
    sites (``eta``, the individual parameters ``*_i``) -- from unconstrained flat draws ``(chain, draw, dim)``.

    Why NUTS runs on a flat vector and not on NumPyro's dict of sites: the sampler's program is smaller
    and its leapfrog steps cheaper (the benchmarks page of the docs has the figures). It is
    what NumPyro does to every kept draw inside its loop (``constrain_fn`` with deterministic sites),
    done once afterwards: chains in parallel where they sampled in parallel, draws in batches.
    """
    from numpyro.infer.util import constrain_fn

    model_kwargs = built.kwargs

    def one(x):
        return constrain_fn(built.fn, (), model_kwargs, unravel(x), return_deterministic=True)

    def chain(xs):
        return jax.lax.map(one, xs, batch_size=min(CHUNK, xs.shape[0]))

    if parallel:
        out = jax.device_get(jax.pmap(chain)(flat))
    else:
        compiled = jax.jit(chain)
        per_chain = [jax.device_get(compiled(x)) for x in flat]
        out = {k: np.stack([c[k] for c in per_chain]) for k in per_chain[0]}
    return {k: np.asarray(v) for k, v in out.items()}


def _pointwise(built, samples: dict, n: int):
    """Log likelihood and posterior predictive DV per draw, in chunks: (S, N, O) each.

    Computed from each draw's individual parameters (the ``*_i`` sites) and residual SDs through the
    dosing engine and the model's own observation model (:func:`poppk.model.observation`),
    not by running the whole model again per draw (NumPyro's ``log_likelihood``/``Predictive``, about
    twice as costly). Every chunk
    has the same shape (the last is padded by repeating a draw), so this compiles once.
    """
    kw = {k: built.kwargs[k] for k in ("doses", "sampling", "dv", "mask", "censored", "lloq")}
    names = [k for k in samples if k.endswith("_i")]
    sigmas = list(built.spec.error.sigmas)
    kind = built.spec.error.model

    @jax.jit
    def both(key, ind, sig, kw):
        def one(key, p, s):
            pred = predict_subjects(built.kernel, p, kw["doses"], kw["sampling"])
            residual, obs = observation(kind, pred, s, kw["dv"], kw["mask"], kw["censored"], kw["lloq"],
                                        built.censored_at)
            return residual.log_prob(obs), residual.sample(key)

        keys = jax.random.split(key, next(iter(sig.values())).shape[0])
        return jax.vmap(one)(keys, ind, sig)

    total = next(iter(samples.values())).shape[0]
    size = min(CHUNK, total)
    lls, pps = [], []
    key = jax.random.PRNGKey(n)
    for i in range(0, total, size):
        idx = np.minimum(np.arange(i, i + size), total - 1)
        key, sub = jax.random.split(key)
        ll, pp = both(sub, {k[:-2]: samples[k][idx] for k in names}, {s: samples[s][idx] for s in sigmas}, kw)
        keep = min(size, total - i)
        lls.append(np.asarray(ll)[:keep])
        pps.append(np.asarray(pp)[:keep])
    return np.concatenate(lls), np.concatenate(pps)


#: NUTS statistics kept per draw (NumPyro's names), and their names in ``sample_stats`` (ArviZ's).
SAMPLE_STATS = ("num_steps", "diverging", "energy", "potential_energy", "accept_prob", "adapt_state.step_size")
_STAT_NAMES = {"num_steps": "n_steps", "potential_energy": "lp", "accept_prob": "acceptance_rate",
               "adapt_state.step_size": "step_size"}


def to_tree(grouped: dict, stats: dict, built, data: PKDataset, max_tree_depth=10) -> xr.DataTree:
    """The fit's DataTree from the draws ``{site: (chain, draw, ...)}`` and NUTS statistics.

    Built directly with ``arviz_base.from_dict`` (ArviZ's conventions and names, e.g. ``lp``,
    ``n_steps``, ``tree_depth``); ``from_numpyro`` would run the model eagerly to learn the sites'
    shapes (about a hundred small compilations).
    """
    from importlib.metadata import version

    from arviz_base import from_dict  # arviz itself would import arviz_plots (matplotlib), about 1.5 s

    ids = list(data.ids)
    iiv = list(built.spec.iiv.parameters)
    centred = list(built.centred)
    iov, occasions = list(built.spec.iov.parameters), list(occasion_labels(built.occasion_levels))
    standardised = [p for p in iiv if p not in centred] + [f"{p}_occ{o}" for o in occasions for p in iov]
    coords = {"subject": ids, "iiv_param": iiv, "iiv_centred": centred, "iiv_noncentred": standardised}
    dims = {"eta": ["subject", "iiv_param"], "log_ind": ["subject", "iiv_centred"],
            "eta_z": ["subject", "iiv_noncentred"]}
    if iov:
        coords.update(occasion=occasions, iov_param=iov)
        dims["kappa"] = ["subject", "occasion", "iov_param"]
    for name in grouped:
        if name.endswith("_i"):
            dims[name] = ["subject"]
    if "L_corr" in grouped:
        coords["iiv_param_b"] = iiv
        dims["L_corr"] = ["iiv_param", "iiv_param_b"]
    sample_stats = {}
    for stat, value in stats.items():
        name = _STAT_NAMES.get(stat, stat)
        sample_stats[name] = -value if stat == "potential_energy" else value
        if stat == "num_steps":
            depth = np.log2(value).astype(int) + 1
            sample_stats["tree_depth"] = depth
            cap = max_tree_depth[-1] if isinstance(max_tree_depth, tuple) else max_tree_depth
            sample_stats["reached_max_tree_depth"] = depth >= cap
    attrs = {"inference_library": "numpyro", "inference_library_version": version("numpyro")}
    tree = from_dict({"posterior": grouped, "sample_stats": sample_stats}, coords=coords, dims=dims,
                     attrs={"posterior": attrs, "sample_stats": attrs})
    chains, draws = next(iter(grouped.values())).shape[:2]
    flat = {k: v.reshape(chains * draws, *v.shape[2:]) for k, v in grouped.items()}
    ll, pp = _pointwise(built, flat, chains * draws)
    mask = np.asarray(built.kwargs["mask"])
    sub, col = np.nonzero(mask)
    obs = np.arange(sub.size)
    sel = lambda a: a[:, sub, col].reshape(chains, draws, sub.size)  # noqa: E731
    obs_coords = {"obs": obs}
    tree["log_likelihood"] = xr.DataTree(xr.Dataset({"DV": (("chain", "draw", "obs"), sel(ll))}, coords=obs_coords))
    tree["posterior_predictive"] = xr.DataTree(
        xr.Dataset({"DV": (("chain", "draw", "obs"), sel(pp))}, coords=obs_coords))
    dv = np.asarray(data.dv)[sub, col]
    tree["observed_data"] = xr.DataTree(xr.Dataset({"DV": (("obs",), dv)}, coords=obs_coords))
    const = {
        "ID": (("obs",), np.asarray([str(ids[s]) for s in sub])),
        "subject_index": (("obs",), sub),
        "TIME": (("obs",), np.asarray(data.sampling.time)[sub, col]),
        "BLQ": (("obs",), np.asarray(built.kwargs["censored"])[sub, col]),
        "LLOQ": (("obs",), np.asarray(data.lloq)[sub, col]),
        "ROW": (("obs",), np.asarray(data.row)[sub, col]),
    }
    for k, name in enumerate(data.covariate_names):
        const[name] = (("subject",), np.asarray(data.covariates)[:, k])
    tree["constant_data"] = xr.DataTree(xr.Dataset(const, coords={**obs_coords, "subject": [str(i) for i in ids]}))
    return tree
