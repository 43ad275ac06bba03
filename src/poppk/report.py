"""One self-contained HTML report of a fit: ``write_report(DIR)`` -> ``DIR/report.html`` and ``DIR/plots/*.png``.

The HTML embeds its images (base64), so it opens in any browser without a server and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import diagnostics as dg
from . import plots
from .errors import DatasetError

DPI = 110
#: Covariates drawn side by side against a random effect; more go to one figure per random effect.
COVARIATE_COLUMNS = 4


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _grid(n, ncol=3, w=4.2, h=3.6):
    ncol = min(ncol, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(w * ncol, h * nrow), squeeze=False, layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def make_figures(fit, out: Path, *, n_sims: int = 500, seed: int = 0, x: str | None = None,
                 by: str | None = None) -> dict:
    """Compute the diagnostics and draw every figure into ``out``; returns the numbers and figure paths."""
    out.mkdir(parents=True, exist_ok=True)
    unit = fit.data.conc_unit
    sim = dg.simulate_design(fit, n_sims, seed=seed)
    rec = sim.records
    for name, value in (("x", x), ("by", by)):
        if value is not None and value not in rec.columns:
            raise DatasetError(f"{name}={value!r}: no such column; choose from {', '.join(map(str, rec.columns))}")
    repeated = bool((rec["DOSE_N"] > 1).any())
    x = x or ("TAD" if repeated else "TIME")
    if by is None and rec["PERIOD"].nunique() > 1:
        by = "PERIOD"
    npde = dg.compute_npde(sim, seed=seed)
    vpc = dg.compute_vpc(sim, x=x, by=by)
    pcvpc = dg.compute_vpc(sim, x=x, by=by, pred_corrected=True)
    figs = {}
    spans_decades = (rec.loc[~rec["BLQ"], "DV"].max() / max(rec.loc[~rec["BLQ"] & (rec["DV"] > 0), "DV"].min(), 1e-300)) > 30

    fig, axes = _grid(4, ncol=2)
    plots.plot_obs_vs_pred(rec, "PRED", conc_unit=unit, ax=axes[0])
    plots.plot_obs_vs_pred(rec, "IPRED", conc_unit=unit, ax=axes[1])
    plots.plot_obs_vs_pred(rec, "PRED", log=True, conc_unit=unit, ax=axes[2])
    plots.plot_obs_vs_pred(rec, "IPRED", log=True, conc_unit=unit, ax=axes[3])
    figs["Goodness of fit"] = _save(fig, out / "gof.png")

    fig, axes = _grid(3)
    plots.plot_npde(npde, "TIME", ax=axes[0])
    plots.plot_npde(npde, x if x != "TIME" else "TAD", ax=axes[1])
    plots.plot_npde(npde, "PRED", conc_unit=unit, ax=axes[2])
    figs["NPDE"] = _save(fig, out / "npde.png")

    groups = [None] if by is None else list(vpc.table["group"].unique())
    for name, v in (("VPC", vpc), ("Prediction-corrected VPC", pcvpc)):
        fig, axes = _grid(len(groups), ncol=2, w=5.5, h=4.4)
        for ax, g in zip(axes, groups, strict=False):
            plots.plot_vpc(v, g, log=spans_decades, observations=rec, ax=ax)
        figs[name] = _save(fig, out / ("vpc.png" if name == "VPC" else "pcvpc.png"))
    if rec["BLQ"].any():
        fig, axes = _grid(len(groups), ncol=2, w=5.5, h=4.0)
        for ax, g in zip(axes, groups, strict=False):
            plots.plot_vpc_blq(vpc, g, ax=ax)
        figs["BLQ VPC"] = _save(fig, out / "vpc_blq.png")

    curves = dg.individual_curves(fit, seed=seed)
    for k, fig in enumerate(plots.plot_individual_pages(curves, rec, dg.dose_times(fit.data), conc_unit=unit,
                                                         log=spans_decades, infusions=dg.infusion_spans(fit.data),
                                                         windows=dg.observation_windows(fit.data))):
        figs[f"Individual fits ({k + 1})"] = _save(fig, out / f"individual_{k + 1}.png")

    etas = dg.eta_table(fit)
    iiv = list(fit.spec.iiv.parameters)
    covs = list(fit.data.covariate_names)
    # A row of covariates per random effect while they fit across a page; beyond that one figure per
    # random effect, covariates wrapped four to a row.
    pages = [(None, iiv)] if len(covs) <= COVARIATE_COLUMNS else [(p, [p]) for p in iiv]
    for name, params in pages if covs and iiv else ():
        ncol = min(len(covs), COVARIATE_COLUMNS)
        per_row = math.ceil(len(covs) / ncol) * ncol
        fig, axes = _grid(len(params) * per_row, ncol=ncol, w=3.4, h=3.0)
        for j, p in enumerate(params):
            for k, c in enumerate(covs):
                plots.plot_eta_covariate(etas, p, c, ax=axes[j * per_row + k])
            for ax in axes[j * per_row + len(covs):(j + 1) * per_row]:
                ax.set_visible(False)
        title = "Random effects vs covariates" + (f" ({name})" if name else "")
        figs[title] = _save(fig, out / (f"eta_covariates_{name}.png" if name else "eta_covariates.png"))
    diag = fit.diagnostics()
    if diag.get("shrinkage"):
        fig, axes = _grid(1, w=4.5, h=3.5)
        plots.plot_shrinkage(diag["shrinkage"], ax=axes[0])
        figs["Shrinkage"] = _save(fig, out / "shrinkage.png")
    priors = dg.prior_distributions(fit)
    fig, axes = _grid(len(priors), ncol=4, w=3.3, h=2.8)
    for ax, (name, (prior, u)) in zip(axes, priors.items(), strict=False):
        plots.plot_prior_posterior(fit.draws(name), prior, name, unit=u, ax=ax)
    figs["Prior and posterior"] = _save(fig, out / "prior_posterior.png")
    if fit.info.get("method") != "laplace":  # independent draws of an approximation: no chains to check
        post = fit.tree["posterior"]
        names = list(fit.info["population"])
        fig, axes = plt.subplots(len(names), 2, figsize=(10, 1.8 * len(names)), squeeze=False, layout="constrained")
        for row, name in zip(axes, names, strict=True):
            plots.plot_trace(post[name].values, name, ax=row[0])
            plots.plot_rank(post[name].values, name, ax=row[1])
        axes[0, 0].legend(fontsize=6, ncol=4)
        figs["Trace and rank plots"] = _save(fig, out / "trace_rank.png")

    return {"figures": figs, "npde": npde, "npde_summary": dg.npde_summary(npde), "vpc": vpc, "pcvpc": pcvpc,
            "records": rec, "x": x, "by": by, "diagnostics": diag}


def _img(path: Path, title: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}</figcaption></figure>'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0, classes="t")


def write_report(folder: str | Path, *, n_sims: int = 500, seed: int = 0, x: str | None = None,
                 by: str | None = None) -> Path:
    """Write ``folder/plots/*.png``, ``folder/vpc.csv``, ``folder/npde.csv`` and ``folder/report.html``.

    Parameters
    ----------
    folder : path
        A fit folder (``poppk fit`` / :meth:`Fit.save`).
    n_sims : int
        Replicates of the design for the VPC and NPDE.
    x : {"TIME", "TAD"}, optional
        VPC x axis; default TAD for repeated dosing, TIME otherwise.
    by : str, optional
        Split the VPC by a column (default: first dose vs repeated dosing when both occur).

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> import tempfile, pathlib
    >>> folder = fit.save(pathlib.Path(tempfile.mkdtemp()) / "theo")
    >>> write_report(folder, n_sims=50).name
    'report.html'
    """
    from .fit import load_fit

    folder = Path(folder)
    fit = load_fit(folder)
    res = make_figures(fit, folder / "plots", n_sims=n_sims, seed=seed, x=x, by=by)
    res["vpc"].table.to_csv(folder / "vpc.csv", index=False)
    res["npde"].to_csv(folder / "npde.csv", index=False)
    diag = res["diagnostics"]
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in diag.get("warnings", []))
    laplace = diag.get("method") == "laplace"
    ok = ("Converged: stationary point found, covariance step positive definite." if laplace
          else "Converged: r_hat, bulk ESS and divergences within limits.")
    status = (f'<p class="ok">{ok}</p>' if diag.get("converged")
              else f'<div class="warn"><b>Convergence warnings</b><ul>{warn}</ul></div>')
    ns = res["npde_summary"]
    data = fit.data
    n_blq = int(res["records"]["BLQ"].sum())
    run = diag.get("run", {})
    covs = ", ".join(data.covariate_names) or "none"
    vpc_cov = res["vpc"].coverage()
    if laplace:
        obj, opt = diag["objective"], diag["optimizer"]
        how = (f"Laplace approximation at the posterior mode ({opt['iterations']} L-BFGS iterations), "
               f"{run.get('samples')} draws from it, seed {run.get('seed')}, BLQ {run.get('blq_method')}; "
               f"{run.get('laplace_seconds')} s")
        numbers = (f"<p>{html.escape(diag['note'])}</p><p>-2 log likelihood {obj['minus2_log_likelihood']:.3f} (NONMEM "
                   f"OFV convention {obj['ofv']:.3f}); -2 log posterior {obj['minus2_log_posterior']:.3f}; largest "
                   f"gradient at the mode {opt['max_abs_gradient']:.2g}</p>")
        params = _table(fit.estimates())
    else:
        how = (f"{run.get('chains')} chains x ({run.get('warmup')} warmup + {run.get('samples')} draws), seed "
               f"{run.get('seed')}, {run.get('parameterization')} IIV, BLQ {run.get('blq_method')}; sampling "
               f"{run.get('sampling_seconds')} s")
        numbers = (f"<p>max r_hat {diag.get('max_r_hat', float('nan')):.4g}; min bulk ESS "
                   f"{diag.get('min_ess_bulk', float('nan')):.0f}; divergences {diag.get('divergences')}; leapfrog "
                   f"steps per iteration {diag.get('mean_num_steps') or float('nan'):.1f}</p>")
        params = _table(fit.summary())
    body = f"""
<h1>poppk report: {html.escape(fit.spec.name)}</h1>
<p>{html.escape(str(folder.resolve()))}<br>command: <code>{html.escape(str(run.get('command', '')))}</code><br>
{how};
poppk {run.get('versions', {}).get('poppk')}, JAX {run.get('versions', {}).get('jax')},
NumPyro {run.get('versions', {}).get('numpyro')}</p>
<h2>Convergence</h2>{status}
{numbers}
<h2>Population parameters</h2>{params}
<h2>Data</h2><p>{data.n_subjects} subjects, {len(res['records'])} observation records ({n_blq} BLQ),
doses in {html.escape(data.dose_unit)}, concentrations in {html.escape(data.conc_unit)}; covariates: {html.escape(covs)}.</p>
<h2>Predictive checks</h2>
<p>NPDE ({ns['n']} records): mean {ns['mean']:.3f} (p = {ns['p_mean']:.3g}), SD {ns['sd']:.3f}
(variance test p = {ns['p_variance']:.3g}), normality p = {ns['p_normal']:.3g}. Under a correct model NPDE are
standard normal. VPC (x = {res['x']}{', by ' + res['by'] if res['by'] else ''}): {100 * vpc_cov:.0f}% of observed
percentiles inside the simulated 90% intervals (expect about 90%).</p>
{''.join(_img(p, t) for t, p in res['figures'].items())}
<h2>Model specification</h2><pre>{html.escape(fit.spec.text)}</pre>
<h2>Diagnostics (diagnostics.json)</h2><pre>{html.escape(json.dumps(diag, indent=1, default=str))}</pre>
"""
    style = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table.t{border-collapse:collapse;font-size:.85em}table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;
text-align:right}.warn{background:#fde8e8;border-left:4px solid #c0392b;padding:.5em 1em}.ok{color:#1e7b34}
figure{margin:1.5em 0}img{max-width:100%}figcaption{font-weight:600}pre{background:#f6f6f6;padding:1em;
overflow:auto;font-size:.8em}"""
    path = folder / "report.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>poppk report</title>"
                    f"<style>{style}</style></head><body>{body}</body></html>")
    return path


__all__ = ["make_figures", "write_report"]
