"""Starting points of a fit's chains in NumPyro's unconstrained space (used by the sampler and the pilot)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def initial_params(built, chains: int, rng: np.random.Generator):
    """Unconstrained starting points per chain: prior medians (typical values), a modest
    omega and sigma, random effects at 0, each jittered by up to +-20%.

    The model is traced once, abstractly (``jax.eval_shape``: no computation), for its latent sites,
    their supports and shapes; each chain's values are then mapped to the unconstrained space by the
    sites' bijections, without evaluating the log density (NumPyro's ``initialize_model`` per chain
    evaluates it and its gradient op by op, eagerly, which costs seconds per chain).
    """
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.initialization import init_to_value

    key = jax.random.PRNGKey(int(rng.integers(2**31)))
    model = handlers.substitute(handlers.seed(built.fn, key), substitute_fn=init_to_value(values=built.init_values))
    latent = {}  # site -> (bijection to its support, unconstrained shape)

    def record():
        for name, site in handlers.trace(model).get_trace(**built.kwargs).items():
            if site["type"] == "sample" and not site["is_observed"]:
                to_real = biject_to(site["fn"].support)
                latent[name] = (to_real, np.shape(to_real.inv(site["value"])))

    jax.eval_shape(record)
    per_chain = []
    for _ in range(chains):
        values = {k: float(v) * float(np.exp(rng.uniform(-0.2, 0.2))) for k, v in built.init_values.items()}
        z = {}
        for name, (to_real, shape) in latent.items():
            if name in values:
                z[name] = to_real.inv(jnp.asarray(values[name]))
            elif name == "eta_z":
                z[name] = jnp.asarray(rng.normal(0, 0.1, shape))
            elif name == "log_ind":
                # Centred IIV: each subject starts at the (jittered) typical values, not at NumPyro's default
                # uniform(-2, 2) on the log scale, which put individual V near 1 L beside a typical 70 L and
                # left Michaelis-Menten chains stuck in far-away regions with 1,023-step trees.
                loc = np.log([values.get(p, built.spec.parameter(p).fixed or 1.0) for p in built.centred])
                z[name] = jnp.asarray(loc + rng.normal(0, 0.1, shape))
            else:  # any other site (an LKJ factor, say): NumPyro's default, uniform(-2, 2) unconstrained
                z[name] = jnp.asarray(rng.uniform(-2, 2, shape))
        per_chain.append(z)
    if chains == 1:  # NumPyro takes a single chain's parameters without the chain axis
        return per_chain[0]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_chain)


