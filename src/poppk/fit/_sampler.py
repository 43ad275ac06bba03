"""``fit(data, spec) -> Fit``: the pilot, the warm start and NUTS, and the fit's record."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._runtime import chain_method, check_interrupted, configure_jax
from ..data import PKDataset
from ..errors import ModelSpecError
from ..model import ModelSpec, build_model, load_spec
from ..pk import AbstractODEModel
from ._draws import SAMPLE_STATS, constrain_draws, flat_potential, to_tree
from ._init import initial_params
from ._laplace import laplace_fit
from ._pilot import choose_parameterization
from ._result import Fit
from ._warmstart import STAGE1, laplace_start, refine_metric
from .folder import FORMAT_VERSION, FitRecord

#: A warm start needs at least twice this many warmup iterations (stage 1 and stage 2 each get half).
WARM_STAGE_MIN = 50


def fit(
    data: PKDataset,
    spec: ModelSpec | str,
    *,
    chains: int = 4,
    warmup: int = 1000,
    samples: int = 1000,
    seed: int = 0,
    target_accept: float = 0.8,
    max_tree_depth: int | tuple[int, int] = 10,
    parameterization: str | None = None,
    dense_mass: bool = False,
    warm_start: bool | None = None,
    progress: bool = True,
    command: str | None = None,
    method: str = "nuts",
) -> Fit:
    """Fit ``spec`` to ``data`` by NUTS (NumPyro) with several chains, or by the Laplace approximation.

    Parameters
    ----------
    data : PKDataset
    spec : ModelSpec or str
        A spec, a bundled model name (``"oral1cmt"``) or a TOML path.
    chains, warmup, samples : int
        Chains run in parallel when JAX has as many devices (on CPU call
        :func:`poppk.set_host_devices` before anything else; the CLI does),
        batched into one program on a single GPU, otherwise one after the other.
    seed : int
        Same data, spec and seed give the same draws on the same machine.
    target_accept : float
        NUTS target acceptance probability (raise towards 0.95 on divergences).
    max_tree_depth : int or (int, int)
        NUTS tree depth; a pair caps warmup and sampling separately (``(6, 10)`` makes the early
        warmup of ODE models far cheaper: trees of at most 63 steps while the mass matrix adapts).
    parameterization : {"centered", "noncentered"}, optional
        Overrides the spec's ``iiv.parameterization``. Where that is ``"auto"`` (the bundled
        specs), a pilot decides per parameter before sampling: centred where the expected
        eta-shrinkage is below 0.05, non-centred otherwise (and for KA, TLAG, and designs with
        fewer than two samples per subject and random effect); see :mod:`poppk._pilot`.
        ``info["pilot"]`` keeps its reasons and its time.
    dense_mass : bool
        Adapt a dense mass matrix (captures linear correlations such as VMAX with KM; costs
        more warmup draws to estimate). A warm start always uses one.
    warm_start : bool, optional
        Default: on for ODE kernels, off for closed forms. Start the chains from the Laplace
        approximation at the posterior mode and adapt a dense metric in two stages (see
        :mod:`poppk.fit._warmstart`): the first ``min(150, warmup / 2)`` warmup iterations use the
        Laplace covariance, the rest and the sampling a covariance re-estimated from those draws
        (step size adapted throughout). Falls back to NumPyro's ordinary warmup, saying why in
        ``info["warm_start"]``, when the mode is degenerate or ``warmup < 100``. The validation and
        benchmark pages of the docs give what it gains on which models.
    progress : bool
        Show NumPyro's progress bar.
    command : str, optional
        Recorded in ``fit.json`` (default: the process's command line).
    method : {"nuts", "laplace"}
        ``"laplace"``: the posterior mode of the population parameters with the random effects
        integrated out by Laplace's method, its curvature as their covariance (the Bayesian
        analogue of NONMEM's ``LAPLACIAN INTER`` with ``$COV``; :mod:`poppk.fit._laplace`), and
        ``samples`` independent draws from that normal approximation (one chain; ``chains``,
        ``warmup`` and the NUTS settings do not apply). ``info["laplace"]`` holds the estimates
        with standard errors and RSE%, the correlation matrix, the objective (-2 log posterior,
        -2 log likelihood, NONMEM's OFV) and the EBEs; :meth:`Fit.estimates` gives the table.
        An approximation: the docs' fitting guide compares it with NUTS.

    Returns
    -------
    Fit
        Draws as an ArviZ DataTree; ``info`` is the :class:`~poppk.fit.folder.FitRecord` as a dict.

    Raises
    ------
    ModelSpecError
        The spec does not fit the data (unknown covariate, records an error model cannot score, ...).

    Examples
    --------
    >>> import poppk
    >>> data = poppk.datasets.load("theophylline")
    >>> f = poppk.fit(data, "oral1cmt_additive", chains=1, warmup=50, samples=50, progress=False)
    >>> sorted(f.summary().parameter)[:3]
    ['CL', 'KA', 'V']
    """
    from numpyro.infer import MCMC, NUTS

    configure_jax()
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    if not isinstance(data, PKDataset):
        raise ModelSpecError("fit() needs a PKDataset (see poppk.read_nonmem)")
    if method not in ("nuts", "laplace"):
        raise ModelSpecError(f"method {method!r}: choose 'nuts' or 'laplace'")
    start = time.perf_counter()
    if method == "laplace":
        return _fit_laplace(data, spec, samples=samples, seed=seed, parameterization=parameterization,
                            command=command, start=start)
    pilot = None
    if parameterization is None:
        pilot = choose_parameterization(spec, data)
    check_interrupted()
    built = build_model(spec, data, parameterization=pilot.choice if pilot else parameterization)
    rng = np.random.default_rng(seed)
    init = initial_params(built, chains, rng)
    method = chain_method(chains)
    options = dict(target_accept_prob=target_accept, max_tree_depth=max_tree_depth)
    warm, metric = None, {"dense_mass": dense_mass}
    stage1, warm_seconds = 0, 0.0
    if warm_start is None:
        warm_start = isinstance(built.kernel, AbstractODEModel)
    if warm_start and warmup >= 2 * WARM_STAGE_MIN:
        first = init if chains == 1 else jax.tree_util.tree_map(lambda x: x[0], init)
        warm = laplace_start(built, first, chains, rng)
        if warm.init is not None:
            stage1 = min(STAGE1, warmup // 2)
            stage_start = time.perf_counter()
            init, cov = refine_metric(built, warm, chains=chains, method=method, seed=seed, iterations=stage1,
                                      nuts_options=options)
            warm_seconds = warm.seconds + time.perf_counter() - stage_start
            metric = {"dense_mass": True, "inverse_mass_matrix": jnp.asarray(cov), "adapt_mass_matrix": False}
    # NUTS on one flat vector of the unconstrained parameters, the draws named and constrained afterwards
    # (_constrain_draws says why).
    potential, unravel, flat_init = flat_potential(built, init, chains)
    nuts = NUTS(potential_fn=potential, **options, **metric)
    mcmc = MCMC(nuts, num_warmup=warmup - stage1, num_samples=samples, num_chains=chains, chain_method=method,
                progress_bar=progress)
    sample_start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), init_params=flat_init, extra_fields=SAMPLE_STATS)
    # Fetched to numpy once (dispatch is asynchronous, so this also times the work, not its launch):
    # slicing the device arrays of parallel chains again and again dispatched an op each time.
    flat = jax.device_get(mcmc.get_samples(group_by_chain=True))
    stats = jax.device_get(mcmc.get_extra_fields(group_by_chain=True))
    sampled = time.perf_counter() - sample_start
    grouped = constrain_draws(built, unravel, flat, parallel=method == "parallel")
    check_interrupted()
    tree = to_tree(grouped, stats, built, data, max_tree_depth)
    info = {
        **_record(built, grouped, data, command), "method": "nuts", "chains": chains, "warmup": warmup, "samples": samples, "seed": seed, "target_accept": target_accept,
        "max_tree_depth": max_tree_depth, "dense_mass": metric["dense_mass"],
        "warm_start": warm.reason if warm else "off", "warm_start_stage1": stage1,
        "warm_start_seconds": round(warm.seconds if warm and not stage1 else warm_seconds, 2),  # mode + stage 1
        "chain_method": method, "devices": jax.local_device_count(),
        "pilot": None if pilot is None else {"reason": pilot.reason, "expected_shrinkage": pilot.shrinkage,
                                             "seconds": round(pilot.seconds, 2)},
        "sampling_seconds": round(sampled, 2), "total_seconds": round(time.perf_counter() - start, 2),
    }
    return Fit(tree, spec, data, FitRecord.from_info(info).to_info())


def _record(built, grouped: dict, data: PKDataset, command: str | None) -> dict:
    """The part of a fit's record that does not depend on the method."""
    import numpyro

    spec = built.spec
    return {
        "population": list(built.population), "prior_sd": built.prior_sd,
        "log_scale": [p.name for p in spec.parameters if p.prior is not None]
                     + [s for s in spec.error.sigmas if spec.error.sd_log(s) is not None],
        "kernel_params": [k[:-2] for k in grouped if k.endswith("_i")],
        "format_version": FORMAT_VERSION, "parameterization": built.parameterization, "centered": list(built.centred),
        "blq_method": built.blq_method, "sigma_scales": built.sigma_scales,
        "sigma_sd_log": {s: spec.error.sd_log(s) for s in spec.error.sigmas if spec.error.sd_log(s) is not None},
        "dose_unit": data.dose_unit, "conc_unit": data.conc_unit, "device": jax.devices()[0].device_kind,
        "versions": _versions(numpyro), "command": command or " ".join(sys.argv),
        "compilation_cache": jax.config.jax_compilation_cache_dir,
    }


def _fit_laplace(data: PKDataset, spec: ModelSpec, *, samples: int, seed: int, parameterization: str | None,
                 command: str | None, start: float) -> Fit:
    """``fit(..., method="laplace")``: see :mod:`poppk.fit._laplace`."""
    if parameterization not in (None, "noncentered"):
        raise ModelSpecError(f"method 'laplace' integrates the random effects on the non-centred scale; "
                             f"parameterization={parameterization!r} does not apply (leave it unset)")
    built = build_model(spec, data, parameterization="noncentered")
    check_interrupted()
    grouped, stats, laplace = laplace_fit(built, data, samples=samples, rng=np.random.default_rng(seed))
    check_interrupted()
    tree = to_tree(grouped, stats, built, data)
    info = {
        **_record(built, grouped, data, command), "method": "laplace", "chains": 1, "warmup": 0,
        "samples": samples, "seed": seed, "laplace": laplace, "laplace_seconds": laplace["seconds"],
        "total_seconds": round(time.perf_counter() - start, 2),
    }
    return Fit(tree, spec, data, FitRecord.from_info(info).to_info())


def _versions(numpyro) -> dict:
    from importlib.metadata import version

    return {"poppk": version("poppk"), "jax": jax.__version__, "numpyro": numpyro.__version__, "arviz": version("arviz"),
            "python": sys.version.split()[0]}



__all__ = ["fit"]
