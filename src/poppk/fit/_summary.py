"""Numbers from a fitted DataTree: parameter summary, individual table, convergence diagnostics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ModelSpecError
from ..pk import parameter_unit
from ._convergence import ess_bulk, ess_tail, rhat_rank

#: Convergence thresholds (Vehtari et al. 2021): reported loudly, never hidden.
RHAT_MAX = 1.01
ESS_MIN = 400
PRIOR_RATIO = 0.7  # posterior SD / prior SD above this: "barely informed by the data"
BFMI_MIN = 0.3  # energy Bayesian fraction of missing information below this: momentum resampling too weak (Stan's rule)


def energy_bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain (Betancourt 2016): sum of squared changes of the Hamiltonian energy between draws over
    the sum of its squared deviations from its mean, i.e. their mean over its variance with ``ddof=1`` (as
    arviz-stats); ``energy`` is (chain, draw)."""
    energy = np.asarray(energy, dtype=float)
    return np.square(np.diff(energy, axis=1)).mean(axis=1) / energy.var(axis=1, ddof=1)


def parameter_units(spec, data, population) -> dict[str, str]:
    """The unit of each population parameter in the data's units (L, L/h, 1/h, h; ``mg/h``, ``ng/mL``...)."""
    kernel = spec.make_kernel(data.dose_unit, data.conc_unit)
    generic = {"amount/h": f"{data.dose_unit}/h", "conc": data.conc_unit}
    out = {}
    for name in population:
        if name.startswith("omega_") or name == "sigma_log":
            out[name] = "log-scale SD"
        elif name == "sigma_prop":
            out[name] = "fraction"
        elif name == "sigma_add":
            out[name] = data.conc_unit
        else:
            try:
                unit = parameter_unit(kernel, name)
            except ModelSpecError:  # not a structural parameter (a covariate effect): no unit
                unit = ""
            out[name] = generic.get(unit, unit)
    return out


def _draws(tree: xr.DataTree, name: str) -> np.ndarray:
    """(chain, draw, ...) numpy array of a posterior variable."""
    return np.asarray(tree["posterior"][name].values)


def ess_rhat(x: np.ndarray) -> tuple[float, float, float]:
    """Bulk ESS, tail ESS (5% and 95% quantiles) and rank-normalised R-hat of (chain, draw) draws."""
    x = np.asarray(x, dtype=float)
    return ess_bulk(x), ess_tail(x, (0.05, 0.95)), rhat_rank(x)


def summarise(tree: xr.DataTree, population: list[str], prior_sd: dict[str, float],
              log_scale: set[str]) -> pd.DataFrame:
    """parameter, mean, sd, q5, q50, q95, ess_bulk, ess_tail, r_hat, cv_pct, prior_sd_ratio."""
    rows = []
    for name in population:
        x = _draws(tree, name)
        flat = x.reshape(-1)
        bulk, tail, rhat = ess_rhat(x)
        q5, q50, q95 = np.quantile(flat, [0.05, 0.5, 0.95])
        row = {"parameter": name, "mean": flat.mean(), "sd": flat.std(ddof=1), "q5": q5, "q50": q50, "q95": q95,
               "ess_bulk": bulk, "ess_tail": tail, "r_hat": rhat}
        row["cv_pct"] = 100 * np.sqrt(np.expm1(q50**2)) if name.startswith("omega_") or name == "sigma_log" else np.nan
        post_sd = np.log(flat).std(ddof=1) if name in log_scale else row["sd"]
        row["prior_sd_ratio"] = post_sd / prior_sd[name] if name in prior_sd else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def individual_table(tree: xr.DataTree, ids, kernel_params: list[str]) -> pd.DataFrame:
    """Per subject: posterior median and 90% interval of each individual parameter."""
    out = pd.DataFrame({"ID": list(ids)})
    for name in kernel_params:
        x = _draws(tree, f"{name}_i").reshape(-1, len(ids))
        q = np.quantile(x, [0.05, 0.5, 0.95], axis=0)
        out[name] = q[1]
        out[f"{name}_q5"] = q[0]
        out[f"{name}_q95"] = q[2]
    return out


def convergence(tree: xr.DataTree, summary: pd.DataFrame) -> dict:
    """Divergences, R-hat, ESS, tree depth; the warnings a user must see."""
    stats = tree["sample_stats"]
    div = np.asarray(stats["diverging"].values)
    steps = np.asarray(stats["n_steps"].values) if "n_steps" in stats else None
    warnings = []
    n_div = int(div.sum())
    if n_div:
        warnings.append(f"{n_div} divergent transition(s) after warmup: the posterior has regions the sampler "
                        "cannot explore; raise target_accept (e.g. 0.95), use the other IIV parameterisation, or "
                        "tighten priors on poorly identified parameters")
    worst_rhat = float(summary["r_hat"].max())
    if worst_rhat > RHAT_MAX:
        bad = summary.loc[summary["r_hat"] > RHAT_MAX, "parameter"].tolist()
        warnings.append(f"r_hat up to {worst_rhat:.3f} (> {RHAT_MAX}) for {', '.join(bad)}: chains disagree; "
                        "run longer or check for multiple modes (e.g. flip-flop KA < K)")
    min_bulk = float(summary["ess_bulk"].min())
    if min_bulk < ESS_MIN:
        bad = summary.loc[summary["ess_bulk"] < ESS_MIN, "parameter"].tolist()
        warnings.append(f"bulk ESS down to {min_bulk:.0f} (< {ESS_MIN}) for {', '.join(bad)}: draw more samples")
    bfmi = energy_bfmi(stats["energy"].values) if "energy" in stats else None  # fits before sample stats had it
    if bfmi is not None and (bfmi < BFMI_MIN).any():
        low = ", ".join(f"{c} ({b:.2f})" for c, b in enumerate(bfmi) if b < BFMI_MIN)
        warnings.append(f"E-BFMI below {BFMI_MIN} in chain(s) {low}: the sampler explores the energy levels of the "
                        "posterior poorly (heavy tails or a funnel); reparameterise (IIV centring) or tighten priors")
    weak = summary.loc[summary["prior_sd_ratio"] > PRIOR_RATIO]
    for r in weak.itertuples():
        warnings.append(f"{r.parameter} is barely informed by the data: posterior SD is {100 * r.prior_sd_ratio:.0f}% "
                        "of the prior SD (the estimate mostly reflects the prior)")
    out = {
        "divergences": n_div,
        "divergences_per_chain": div.sum(axis=1).astype(int).tolist(),
        "max_r_hat": worst_rhat,
        "min_ess_bulk": min_bulk,
        "min_ess_tail": float(summary["ess_tail"].min()),
        "mean_num_steps": float(steps.mean()) if steps is not None else None,
        "mean_num_steps_per_chain": steps.mean(axis=1).tolist() if steps is not None else None,
        "e_bfmi_per_chain": None if bfmi is None else [round(float(b), 3) for b in bfmi],
        "barely_informed": weak["parameter"].tolist(),
        "warnings": warnings,
        "converged": n_div == 0 and worst_rhat <= RHAT_MAX and min_bulk >= ESS_MIN,
    }
    return out


def shrinkage(tree: xr.DataTree, iiv: list[str]) -> dict[str, float]:
    """eta-shrinkage per parameter: 1 - SD(posterior mean eta_i) / posterior median omega."""
    if not iiv:
        return {}
    eta = _draws(tree, "eta")  # chain, draw, subject, param
    mean_eta = eta.reshape(-1, *eta.shape[2:]).mean(axis=0)
    out = {}
    for k, p in enumerate(iiv):
        omega = np.median(_draws(tree, f"omega_{p}"))
        out[p] = float(1 - mean_eta[:, k].std(ddof=1) / omega)
    return out
