"""Bayesian population fits: ``fit(data, spec) -> Fit``.

A :class:`Fit` wraps an ArviZ ``xarray.DataTree`` (posterior, sample stats,
log likelihood, posterior predictive, observed and constant data) with the
spec and the dataset it was fitted to. ``Fit.save(dir)`` writes the fit
folder of DESIGN.md; :func:`load_fit` reads it back.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from ._config import chain_method, check_interrupted, configure_jax
from ._draws import CHUNK, SAMPLE_STATS, _constrain_draws, _to_tree, flat_potential
from ._fitsummary import convergence, individual_table, shrinkage, summarise
from .data import PKDataset
from .errors import FitError, ModelSpecError
from .model import ModelSpec, build_model, load_spec

#: A warm start needs at least twice this many warmup iterations (stage 1 and stage 2 each get half).
WARM_STAGE_MIN = 50


@dataclass(frozen=True)
class Fit:
    """A fitted model: posterior DataTree, spec, data and run information."""

    tree: xr.DataTree
    spec: ModelSpec
    data: PKDataset
    info: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- tables -------------------------------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """Population parameters: mean, sd, 5/50/95% quantiles, ESS, R-hat, CV%, prior SD ratio."""
        # Computed once per posterior node (ESS and R-hat of every parameter: about 0.5 s); saving a fit
        # and its diagnostics and printing it each asked again.
        key = self.tree["posterior"]
        if self._cache.get("summary_of") is not key:
            self._cache["summary"] = summarise(self.tree, list(self.info["population"]), self.info["prior_sd"],
                                               set(self.info["log_scale"]))
            self._cache["summary_of"] = key
        return self._cache["summary"].copy()

    def individual(self, exposure: bool = True) -> pd.DataFrame:
        """Per subject: posterior median and 90% interval of each individual parameter and, where the
        data give a maintenance regimen (repeated dosing), of steady-state AUCtau, Cmax and Cmin at it."""
        table = individual_table(self.tree, self.data.ids, list(self.info["kernel_params"]))
        if exposure:
            from .errors import PoppkError
            from .exposure import patient_metrics, patient_regimens

            try:
                regimens = patient_regimens(self)
            except PoppkError:  # single doses: no steady state without an assumed interval
                return table
            table["regimen"] = [regimens[i].label for i in self.data.ids]
            metrics = patient_metrics(self)
            for m in ("AUCtau_ss", "Cmax_ss", "Cmin_ss"):
                q = np.quantile(metrics[m], [0.05, 0.5, 0.95], axis=1)
                table[m], table[f"{m}_q5"], table[f"{m}_q95"] = q[1], q[0], q[2]
        return table

    def diagnostics(self) -> dict:
        """Convergence diagnostics and warnings, shrinkage, and how the fit was run."""
        out = convergence(self.tree, self.summary())
        out["shrinkage"] = shrinkage(self.tree, list(self.spec.iiv.parameters))
        out["flip_flop_chains"] = self._flip_flop_chains()
        if out["flip_flop_chains"]:
            out["warnings"].append(f"chain(s) {out['flip_flop_chains']} sit in the flip-flop mode (median KA < CL/V)")
            out["converged"] = False
        funnel = self._divergence_advice(out["divergences"], out["shrinkage"])
        if funnel:
            out["warnings"].append(funnel)
        out["run"] = {k: v for k, v in self.info.items() if k not in ("population", "prior_sd", "log_scale")}
        return out

    def _divergence_advice(self, divergences: int, shrink: dict) -> str | None:
        """After divergences: with centred IIV, which parameters to sample non-centred, and how; with
        non-centred IIV, a higher target acceptance and, for designs too sparse for the pilot, fewer
        random effects.

        A centred individual parameter the data inform weakly (high eta-shrinkage) forms a funnel with
        its omega. In simulation-based calibration of ``oral1cmt`` on a rich design (10 samples per
        subject, residual SD drawn up to 1.3 on the log scale), sampling non-centred cut the replications
        with divergences from 38 to 6 of 50 (``benchmarks/results/sbc_noncentered``).
        """
        centred = list(self.info.get("centered", []))
        if not divergences:
            return None
        if not centred:
            # Non-centred already. In SBC of a 3-sample design (benchmarks/results/sbc_sparse_target095),
            # target_accept 0.95 halved the replications with divergences.
            parts = []
            if self.info.get("target_accept", 0.8) < 0.95:
                parts.append("refit with --target-accept 0.95 (API: target_accept=0.95)")
            reason = (self.info.get("pilot") or {}).get("reason", "")
            if "per random effect" in reason:
                parts.append(f"{reason.removeprefix('non-centred: ')}: IIV on fewer parameters (KA first) may be "
                             "all the design supports")
            return "individual parameters sampled non-centred; " + "; ".join(parts) if parts else None
        weak = [p for p in centred if shrink.get(p, 0.0) > FUNNEL_SHRINKAGE]
        names = weak or centred
        shown = ", ".join(f"{p} ({100 * shrink[p]:.0f}% shrinkage)" if p in shrink else p for p in names)
        table = ('"noncentered"' if self.spec.iiv.structure == "block"
                 else "{ " + ", ".join(f'{p} = "noncentered"' for p in names) + " }")
        how = (f"refit with --parameterization noncentered (API: parameterization='noncentered'), or in the spec: "
               f"[iiv] parameterization = {table}")
        if weak:
            return (f"the divergences are likely the funnel of centred individual parameters the data inform "
                    f"weakly: {shown}; {how}")
        return (f"individual parameters sampled centred: {shown}; with shrinkage this low a funnel is less likely, so "
                f"raise target_accept first, and if divergences remain {how}")

    def _flip_flop_chains(self) -> list[int]:
        post = self.tree["posterior"]
        if not {"KA", "CL", "V"} <= set(post.data_vars):
            return []
        ka = np.median(post["KA"].values, axis=1)
        k = np.median((post["CL"] / post["V"]).values, axis=1)
        return [int(c) for c in np.flatnonzero(ka < k)]

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of ``name`` with chains merged: shape ``(S, ...)``."""
        x = np.asarray(self.tree["posterior"][name].values)
        return x.reshape(-1, *x.shape[2:])

    def individual_draws(self, n: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Individual parameter draws ``{name: (S, N)}`` (``n`` draws at random if given)."""
        out = {p: self.draws(f"{p}_i") for p in self.info["kernel_params"]}
        total = next(iter(out.values())).shape[0]
        if n is not None and n < total:
            idx = np.random.default_rng(seed).choice(total, n, replace=False)
            out = {k: v[idx] for k, v in out.items()}
        return out

    def concentration_draws(self, doses, sampling, *, n_draws: int = 200, seed: int = 0) -> np.ndarray:
        """Noise-free concentrations of each fitted subject for ``n_draws`` posterior draws, (S, N, O).

        ``doses`` and ``sampling`` are event arrays for the fitted subjects, in their order (a
        dataset's ``doses``/``sampling``, or any sampling grid); units are the fitted data's.
        """
        from .pk import predict_subjects

        kernel = self.spec.make_kernel(self.data.dose_unit, self.data.conc_unit)
        params = self.individual_draws(n_draws, seed)
        prepared = kernel.prepare(doses, sampling)
        run = jax.jit(jax.vmap(lambda p: predict_subjects(kernel, p, prepared, sampling)))
        return np.concatenate([np.asarray(run({k: v[i:i + CHUNK] for k, v in params.items()}))
                               for i in range(0, len(next(iter(params.values()))), CHUNK)])

    def predict(self, data: PKDataset | None = None, *, n_draws: int = 200, seed: int = 0,
                quantiles=(0.05, 0.5, 0.95)) -> pd.DataFrame:
        """Individual predictions (posterior quantiles, no residual error) at every record of ``data``.

        ``data`` holds the same subjects with any dose and sampling records
        (default: the fitted data); predictions come from each subject's
        posterior draws through the same dosing engine as the fit.
        """
        data = self.data if data is None else data
        if tuple(data.ids) != tuple(self.data.ids):
            raise FitError("predict needs the fitted subjects, in the same order")
        conc = self.concentration_draws(data.doses, data.sampling, n_draws=n_draws, seed=seed)
        q = np.quantile(conc, quantiles, axis=0)
        present = np.asarray(data.present)
        frame = pd.DataFrame({
            "ID": np.repeat(np.asarray(data.ids, dtype=object), present.shape[1])[present.ravel()],
            "TIME": np.asarray(data.sampling.time)[present],
            "DV": np.asarray(data.dv)[present],
        })
        for qq, arr in zip(quantiles, q):
            frame[f"IPRED_q{round(100 * qq):d}"] = arr[present]
        return frame

    def save(self, folder: str | Path, *, force: bool = False) -> Path:
        from ._fitio import save_fit

        return save_fit(self, folder, force=force)


def _initial_params(built, chains: int, rng: np.random.Generator):
    """Unconstrained starting points per chain: prior medians (typical values), a modest
    omega and sigma, random effects at 0, each jittered by up to +-20%.

    The model is traced once, abstractly (``jax.eval_shape``: no computation), for its latent sites,
    their supports and shapes; each chain's values are then mapped to the unconstrained space by the
    sites' bijections. (NumPyro's ``initialize_model`` per chain evaluated the log density and its
    gradient op by op, eagerly: about 2.5 s per chain on the bundled trial, 10 s of a 43 s fit.)
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
) -> Fit:
    """Fit ``spec`` to ``data`` by NUTS (NumPyro) with several chains.

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
        ``info["pilot"]`` keeps its reasons (about 3 s for a closed form, 30 s for an ODE kernel).
    dense_mass : bool
        Adapt a dense mass matrix (captures linear correlations such as VMAX with KM; costs
        more warmup draws to estimate). A warm start always uses one.
    warm_start : bool, optional
        Default: on for ODE kernels, off for closed forms. Start the chains from the Laplace
        approximation at the posterior mode and adapt a dense metric in two stages (see :mod:`poppk._warmstart`): the first ``min(150, warmup / 2)``
        warmup iterations use the Laplace covariance, the rest and the sampling a covariance
        re-estimated from those draws (step size adapted throughout). Falls back to NumPyro's
        ordinary warmup, saying why in ``info["warm_start"]``, when the mode is degenerate or
        ``warmup < 100``. Measured on the bundled trial (4 chains x (500 + 500), 2 cores): the
        Michaelis-Menten fit takes 414 s with it (18.7 leapfrog steps per iteration, 164 s of them
        the warm start; ``benchmarks/fit_mm.py``, 2026-11-30) and took 1,801 s with NumPyro's own
        dense adaptation from the same start (measured with an older, reverse-mode ODE gradient
        about 1.8 times as costly); the closed-form linear model gains
        nothing (its fixed costs outweigh cheaper trajectories), hence the default.

    Examples
    --------
    >>> import poppk
    >>> data = poppk.datasets.load("theophylline")
    >>> f = poppk.fit(data, "oral1cmt_additive", chains=1, warmup=50, samples=50, progress=False)
    >>> sorted(f.summary().parameter)[:3]
    ['CL', 'KA', 'V']
    """
    import numpyro
    from numpyro.infer import MCMC, NUTS

    configure_jax()
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    if not isinstance(data, PKDataset):
        raise ModelSpecError("fit() needs a PKDataset (see poppk.read_nonmem)")
    start = time.perf_counter()
    pilot = None
    if parameterization is None:
        from ._pilot import choose_parameterization

        pilot = choose_parameterization(spec, data)
    check_interrupted()
    built = build_model(spec, data, parameterization=pilot.choice if pilot else parameterization)
    rng = np.random.default_rng(seed)
    init = _initial_params(built, chains, rng)
    method = chain_method(chains)
    options = dict(target_accept_prob=target_accept, max_tree_depth=max_tree_depth)
    warm, metric = None, {"dense_mass": dense_mass}
    stage1, warm_seconds = 0, 0.0
    if warm_start is None:
        from .pk import AbstractODEModel

        warm_start = isinstance(built.kernel, AbstractODEModel)
    if warm_start and warmup >= 2 * WARM_STAGE_MIN:
        from ._warmstart import STAGE1, laplace_start, refine_metric

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
    grouped = _constrain_draws(built, unravel, flat, parallel=method == "parallel")
    check_interrupted()
    tree = _to_tree(grouped, stats, built, data, max_tree_depth)
    info = {
        "population": list(built.population), "prior_sd": built.prior_sd,
        "log_scale": [p.name for p in spec.parameters if p.prior is not None]
                     + [s for s in spec.error.sigmas if spec.error.sd_log(s) is not None],
        "kernel_params": [k[:-2] for k in grouped if k.endswith("_i")],
        "chains": chains, "warmup": warmup, "samples": samples, "seed": seed, "target_accept": target_accept,
        "max_tree_depth": max_tree_depth, "dense_mass": metric["dense_mass"],
        "warm_start": warm.reason if warm else "off", "warm_start_stage1": stage1,
        "warm_start_seconds": round(warm.seconds if warm and not stage1 else warm_seconds, 2),  # mode + stage 1
        "chain_method": method, "devices": jax.local_device_count(),
        "device": jax.devices()[0].device_kind, "parameterization": built.parameterization,
        "centered": list(built.centred),
        "pilot": None if pilot is None else {"reason": pilot.reason, "expected_shrinkage": pilot.shrinkage,
                                             "seconds": round(pilot.seconds, 2)},
        "blq_method": built.blq_method, "sigma_scales": built.sigma_scales,
        "sigma_sd_log": {s: spec.error.sd_log(s) for s in spec.error.sigmas if spec.error.sd_log(s) is not None},
        "sampling_seconds": round(sampled, 2), "total_seconds": round(time.perf_counter() - start, 2),
        "dose_unit": data.dose_unit, "conc_unit": data.conc_unit,
        "versions": _versions(numpyro), "command": command or " ".join(sys.argv),
        "compilation_cache": jax.config.jax_compilation_cache_dir,
    }
    return Fit(tree, spec, data, info)


#: eta-shrinkage above which a centred IIV parameter is named as the likely funnel after divergences.
FUNNEL_SHRINKAGE = 0.2


def _versions(numpyro) -> dict:
    from importlib.metadata import version

    from . import __version__

    return {"poppk": __version__, "jax": jax.__version__, "numpyro": numpyro.__version__, "arviz": version("arviz"),
            "python": sys.version.split()[0]}


def load_fit(folder: str | Path) -> Fit:
    """Read a fit folder written by :meth:`Fit.save` (or ``poppk fit``)."""
    from ._fitio import load_fit as _load

    return _load(folder)


__all__ = ["Fit", "fit", "load_fit"]


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=_json_default)
