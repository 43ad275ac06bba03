"""A fitted model, :class:`Fit`, and reading one back from its folder (:func:`load_fit`).

A :class:`Fit` wraps an ArviZ ``xarray.DataTree`` (posterior, sample stats,
log likelihood, posterior predictive, observed and constant data) with the
spec and the dataset it was fitted to. ``Fit.save(dir)`` writes the fit
folder (:mod:`poppk.fit.folder`); :func:`load_fit` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import xarray as xr

from ..data import PKDataset, read_nonmem
from ..errors import FitError, PoppkError
from ..model import ModelSpec, parse_spec
from ..pk import concentrations
from ._draws import CHUNK
from ._summary import convergence, individual_table, shrinkage, summarise
from .folder import KERNEL_FILE, FitRecord, read_record, read_tree, write_folder


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
            from ..simulate import patient_metrics, patient_regimens  # simulate does not import fit: no cycle

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

    def estimates(self) -> pd.DataFrame:
        """Population parameters as a pharmacometrician tabulates them: parameter, estimate, se, rse_pct,
        q5, q95 (90% interval).

        A Laplace fit (``method="laplace"``): the mode, its standard error from the curvature (delta
        method on the natural scale for positive parameters, whose interval is symmetric on the log
        scale, ``se_log``), as NONMEM's ``$COV`` step. A NUTS fit: the posterior median, the posterior
        SD and the 5% and 95% quantiles.

        Examples
        --------
        >>> import poppk
        >>> quick = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", method="laplace",
        ...                   samples=100, progress=False)
        >>> table = quick.estimates().set_index("parameter")
        >>> round(float(table.loc["CL", "estimate"]), 2), list(quick.ebes().columns[:2])
        (2.76, ['ID', 'CL'])
        """
        lap = self.info.get("laplace")
        if lap:
            return pd.DataFrame(lap["estimates"])
        s = self.summary()
        return pd.DataFrame({"parameter": s.parameter, "estimate": s.q50, "se": s.sd,
                             "rse_pct": 100 * s.sd / s.q50.abs(), "q5": s.q5, "q95": s.q95})

    def correlation(self) -> pd.DataFrame:
        """Correlation matrix of the population parameters on the sampler's scale (log for positive
        ones): the Laplace fit's, from its covariance; a NUTS fit's, from the draws."""
        lap = self.info.get("laplace")
        if lap:
            names = lap["correlation"]["names"]
            return pd.DataFrame(lap["correlation"]["matrix"], index=names, columns=names)
        log_scale = set(self.info["log_scale"]) | {n for n in self.info["population"] if n.startswith(("omega_", "sigma_"))}
        cols = {n: np.log(self.draws(n)) if n in log_scale else self.draws(n) for n in self.info["population"]}
        return pd.DataFrame(cols).corr()

    def ebes(self) -> pd.DataFrame:
        """Empirical Bayes estimates: per ID, each individual parameter and eta at the mode (a Laplace
        fit's; FitError for a NUTS fit, whose per-subject posterior is :meth:`individual`)."""
        lap = self.info.get("laplace")
        if not lap:
            raise FitError("EBEs are the Laplace method's individual estimates; a NUTS fit gives each subject's "
                           "posterior in individual()")
        return pd.DataFrame(lap["ebe"])

    def diagnostics(self) -> dict:
        """Convergence diagnostics and warnings, shrinkage, and how the fit was run."""
        if self.info.get("method") == "laplace":
            return self._laplace_diagnostics()
        out = convergence(self.tree, self.summary())
        out["shrinkage"] = shrinkage(self.tree, list(self.spec.iiv.parameters))
        out["flip_flop_chains"] = self._flip_flop_chains()
        if out["flip_flop_chains"]:
            ka = self.spec.make_kernel(self.data.dose_unit, self.data.conc_unit).absorption_rate
            out["warnings"].append(f"chain(s) {out['flip_flop_chains']} sit in the flip-flop mode (median {ka} below "
                                   "the elimination rate constant)")
            out["converged"] = False
        funnel = self._divergence_advice(out["divergences"], out["shrinkage"])
        if funnel:
            out["warnings"].append(funnel)
        out["run"] = {k: v for k, v in self.info.items() if k not in ("population", "prior_sd", "log_scale")}
        return out

    def _laplace_diagnostics(self) -> dict:
        """A Laplace fit's diagnostics: the optimiser and the covariance step instead of R-hat and ESS
        (its draws are independent, from the normal approximation)."""
        lap = self.info["laplace"]
        opt = lap["optimizer"]
        note = ("Laplace approximation (method='laplace'): estimates are the posterior mode with the random effects "
                "integrated out, intervals from the curvature there; check against NUTS where the posterior may be "
                "skewed (sparse data, omegas with RSE above 50%)")
        warnings = []
        if not opt["converged"]:
            warnings.append(f"the optimiser did not reach a stationary point ({opt['message']}; largest gradient "
                            f"{opt['max_abs_gradient']:.2g}, inner {opt['inner_max_abs_gradient']:.2g}): the "
                            "estimates may not be the mode")
        if not lap["covariance_ok"]:
            warnings.append("covariance step failed: the curvature at the mode is not positive definite (a parameter "
                            "the data do not identify); standard errors and draws use its absolute eigenvalues")
        high = [r["parameter"] for r in lap["estimates"] if r["rse_pct"] > 50]
        if high:
            warnings.append(f"RSE above 50% for {', '.join(high)}: poorly estimated; the normal approximation is "
                            "doubtful there")
        shrink = shrinkage(self.tree, list(self.spec.iiv.parameters))
        return {"method": "laplace", "converged": bool(opt["converged"] and lap["covariance_ok"]), "note": note,
                "warnings": warnings, "objective": lap["objective"], "optimizer": opt,
                "covariance_ok": lap["covariance_ok"], "shrinkage": shrink, "divergences": 0,
                "mean_num_steps": None, "flip_flop_chains": [],
                "run": {k: v for k, v in self.info.items() if k not in ("population", "prior_sd", "log_scale", "laplace")}}

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
        """Chains whose median typical absorption rate is below the typical elimination rate, by the
        kernel's own facts (``absorption_rate``, ``elimination_rate``); none for kernels without
        first-order absorption or when either rate is fixed rather than sampled."""
        kernel = self.spec.make_kernel(self.data.dose_unit, self.data.conc_unit)
        post = self.tree["posterior"]
        if kernel.absorption_rate is None or kernel.absorption_rate not in post.data_vars:
            return []
        theta = {p.name: (post[p.name].values if p.name in post.data_vars else p.fixed) for p in self.spec.parameters}
        k = kernel.elimination_rate(theta)
        if k is None:
            return []
        ka = np.median(post[kernel.absorption_rate].values, axis=1)
        k = np.median(np.broadcast_to(np.asarray(k), ka.shape + (post.sizes["draw"],)), axis=1)
        return [int(c) for c in np.flatnonzero(ka < k)]

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of ``name`` with chains merged: shape ``(S, ...)``."""
        x = np.asarray(self.tree["posterior"][name].values)
        return x.reshape(-1, *x.shape[2:])

    @property
    def n_draws(self) -> int:
        """Posterior draws kept, all chains together."""
        post = self.tree["posterior"]
        return post.sizes["chain"] * post.sizes["draw"]

    def population_draws(self, n: int | None = None, rng: np.random.Generator | int = 0, *,
                         replace: bool | None = None) -> dict[str, np.ndarray]:
        """Posterior draws of the population parameters ``{name: (n, ...)}`` (typical values, effects,
        omegas, residual SDs and, for a block, ``L_corr``): the one way simulations, VPCs and dose
        individualisation draw them. ``n=None``: every draw, in order; else ``n`` at random (with
        replacement when ``n`` exceeds the draws, unless ``replace`` says otherwise)."""
        names = list(self.info["population"])
        if "L_corr" in self.tree["posterior"].data_vars:
            names.append("L_corr")
        draws = {k: self.draws(k) for k in names}
        if n is None:
            return draws
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        idx = rng.choice(self.n_draws, size=n, replace=n > self.n_draws if replace is None else replace)
        return {k: v[idx] for k, v in draws.items()}

    def individual_draws(self, n: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Individual parameter draws ``{name: (S, N)}`` (``n`` draws at random if given); where covariates
        change within subjects, at each subject's baseline (:meth:`segment_draws` has every segment)."""
        out = {p: self.draws(f"{p}_i") for p in self.info["kernel_params"]}
        idx = self._draw_index(n, seed)
        return out if idx is None else {k: v[idx] for k, v in out.items()}

    def _draw_index(self, n, seed):
        total = self.n_draws
        return np.random.default_rng(seed).choice(total, n, replace=False) if n is not None and n < total else None

    def segment_draws(self, n: int | None = None, seed: int = 0):
        """Where covariates change within subjects (:func:`poppk.model.time_varying`) or occasions do
        (``[iov]``), each subject's parameters in each segment ``{name: (S, N, K)}`` and the change times
        (a :class:`~poppk.pk.Sampling` ``(N, K - 1)``), from the posterior draws of the population
        parameters and random effects (IOV included), the same draws as :meth:`individual_draws` for the
        same ``n`` and ``seed``; with one occasion per subject and nothing changing, ``{name: (S, N)}``
        and ``None``; ``None`` without IOV where nothing changes."""
        from ..model import covariate_coding, covariate_inputs, segment_parameters

        key = "segment_inputs"
        if key not in self._cache:
            coding = covariate_coding(self.spec, self.data)
            self._cache[key] = (coding, covariate_inputs(self.spec, coding, self.data))
        coding, found = self._cache[key]
        if not found.segmented:
            return None
        inputs, changes, occasions, _ = found
        idx = self._draw_index(n, seed)
        pick = (lambda v: v) if idx is None else (lambda v: v[idx])
        pop = {k: pick(v) for k, v in self.population_draws().items()}
        n_iiv = len(self.spec.iiv.parameters)
        eta = pick(self.draws("eta")) if n_iiv else np.zeros((len(next(iter(pop.values()))), self.data.n_subjects, 0))
        kappa = pick(self.draws("kappa")) if occasions is not None else np.zeros((len(eta), 0))

        def one(values, e, k):
            return segment_parameters(self.spec, coding.levels, values, inputs, e, self.info["kernel_params"],
                                      kappa=k if occasions is not None else None, occasions=occasions)

        out = {k: np.asarray(v) for k, v in jax.jit(jax.vmap(one))(pop, eta, kappa).items()}
        if changes is None:
            out = {k: v[..., 0] for k, v in out.items()}
        return out, changes

    def concentration_draws(self, doses, sampling, *, n_draws: int = 200, seed: int = 0) -> np.ndarray:
        """Noise-free concentrations of each fitted subject for ``n_draws`` posterior draws, (S, N, O).

        ``doses`` and ``sampling`` are event arrays for the fitted subjects, in their order (a
        dataset's ``doses``/``sampling``, or any sampling grid); units are the fitted data's. Covariates
        that change within subjects act as in the fit (:meth:`segment_draws`).
        """
        kernel = self.spec.make_kernel(self.data.dose_unit, self.data.conc_unit)
        segments = self.segment_draws(n_draws, seed)
        params, changes = segments if segments is not None else (self.individual_draws(n_draws, seed), None)
        run = jax.jit(jax.vmap(lambda p: concentrations(kernel, p, doses, sampling, changes)))  # prepared once, when traced
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

    @property
    def record(self) -> FitRecord:
        """``info`` as the typed record written to ``fit.json``."""
        return FitRecord.from_info(self.info)

    def save(self, folder: str | Path, *, force: bool = False) -> Path:
        """Write the fit folder (:mod:`poppk.fit.folder`), whole or not at all; FitError if ``folder``
        exists and not ``force``."""
        tables = {}
        if self.info.get("laplace"):
            tables = {"estimates.csv": self.estimates(), "correlation.csv": self.correlation().rename_axis("parameter"),
                      "ebe.csv": self.ebes()}
        return write_folder(folder, tree=self.tree, summary=self.summary(), individual=self.individual(),
                            diagnostics=self.diagnostics(), spec_text=self.spec.text, data_frame=self.data.to_frame(),
                            record=self.record, kernel_file=self.spec.kernel_file, tables=tables, force=force)


def load_fit(folder: str | Path) -> Fit:
    """Read a fit folder written by :meth:`Fit.save` (or ``poppk fit``).

    Raises
    ------
    FitError
        Not a fit folder, a file missing or damaged, or a fit-folder format newer than this poppk reads
        (older formats are upgraded with a :class:`~poppk.fit.folder.FitFolderWarning`).

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> import tempfile, pathlib
    >>> folder = fit.save(pathlib.Path(tempfile.mkdtemp()) / "theo")
    >>> again = poppk.load_fit(folder)
    >>> again.info["format_version"], list(again.summary().parameter[:3])
    (1, ['CL', 'V', 'KA'])
    """
    folder = Path(folder)
    record = read_record(folder)
    try:
        copy = folder / KERNEL_FILE
        spec = parse_spec((folder / "spec.toml").read_text(), source=str(folder / "spec.toml"),
                          kernel_file=copy if copy.exists() else None)
    except (PoppkError, UnicodeDecodeError) as exc:
        raise FitError(f"{folder}/spec.toml is damaged: {exc}") from None
    try:
        data = read_nonmem(folder / "data.csv", dose_unit=record.dose_unit, conc_unit=record.conc_unit, warn=False)
    except PoppkError as exc:
        raise FitError(f"{folder}/data.csv is damaged: {exc}") from None
    return Fit(read_tree(folder), spec, data, record.to_info())


#: eta-shrinkage above which a centred IIV parameter is named as the likely funnel after divergences.
FUNNEL_SHRINKAGE = 0.2


__all__ = ["Fit", "load_fit"]


