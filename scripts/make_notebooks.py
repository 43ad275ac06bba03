"""Write notebooks/*.ipynb from the cells below (the notebooks are committed without outputs).

Run: .venv/bin/python scripts/make_notebooks.py

Each notebook reads two environment variables in its first cell: ``POPPK_NOTEBOOK_QUICK=1`` (tiny
sampler settings: the test suite executes every notebook this way, tests/test_notebooks.py) and
``POPPK_NOTEBOOK_OUT`` (where results go; default ``notebook-out/``). Notebooks that need a fit
reuse the fit folders an earlier notebook wrote into the same output folder, or fit them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


class MD(str):
    """A markdown cell (every other cell is code)."""

SETUP = '''import os
from pathlib import Path

import poppk

poppk.set_host_devices(4)  # before JAX starts: 4 chains in parallel on a multi-core CPU
QUICK = os.environ.get("POPPK_NOTEBOOK_QUICK") == "1"  # the test suite's tiny settings
OUT = Path(os.environ.get("POPPK_NOTEBOOK_OUT", "notebook-out"))
OUT.mkdir(parents=True, exist_ok=True)'''

TRIAL_FITS = '''# The trial's fits: reuse the folders of notebook 02/03 when they exist, otherwise fit here.
SETTINGS = {"oral1cmt": dict(chains=2, warmup=100, samples=100) if QUICK else dict(chains=4, warmup=1000, samples=1000),
            "oral1cmt_mm": dict(chains=1, warmup=40, samples=40, max_tree_depth=5) if QUICK else
                           dict(chains=4, warmup=500, samples=500)}
data = poppk.datasets.load("lxi15029")


def trial_fit(model):
    folder = OUT / "fits" / model
    if not folder.exists():
        poppk.fit(data, model, progress=not QUICK, **SETTINGS[model]).save(folder)
    return poppk.load_fit(folder)'''

NOTEBOOKS = {
    "01_nca.ipynb": [
        MD("# 1. Non-compartmental analysis of the LXI-15029 phase I trial\n\n"
        "The bundled dataset is a reconstruction of the LXI-15029 trial (24 patients, 7 cohorts of 10-150 mg "
        "twice daily, rich sampling on day 1 and day 28). NCA follows Phoenix WinNonlin / PKNCA conventions: "
        "linear-up/log-down AUC, BLQ before Tmax as 0, lambda_z by best adjusted R-squared."),
        SETUP,
        '''data = poppk.datasets.load("lxi15029")
print(data.n_subjects, "subjects,", data.n_observations, "observations; doses in", data.dose_unit,
      "concentrations in", data.conc_unit)
data.to_frame().head()''',
        MD("## Per-profile NCA\n\nOne row per subject and profile (`single`: the first dose; `ss`: the last dosing "
        "interval at steady state)."),
        '''nca = poppk.compute_nca(poppk.datasets.path("lxi15029"), dose_unit="mg", conc_unit="ng/mL", lloq=1.0)
profiles = nca.table()
profiles.to_csv(OUT / "nca_profiles.csv", index=False)
profiles[["ID", "profile", "DOSE", "Cmax", "Tmax", "AUClast", "AUCinf", "lambda_z", "t_half"]].head(8)''',
        MD("## Summary by dose cohort, beside the paper's Tables 3 and 4"),
        '''summary = nca.summary("DOSE")
paper3 = poppk.datasets.load("lxi15029_paper_table3")
paper4 = poppk.datasets.load("lxi15029_paper_table4")
cohorts = [c for c in paper3.columns if c.endswith("mg")]
rows = []
for ours, paper, table in (("Cmax", "Cmax", paper3), ("AUC0-inf", "AUC0-inf", paper3),
                           ("Cmax_ss", "Cmax_ss", paper4), ("AUC_ss", "AUC_ss", paper4)):
    mine = summary.query("parameter == @ours and statistic == 'geomean'")[cohorts].iloc[0].astype(float)
    theirs = table.query("parameter == @paper and statistic == 'geomean'")[cohorts].iloc[0].astype(float)
    rows.append({"parameter": ours, **(mine / theirs).round(2).to_dict()})
import pandas as pd

pd.DataFrame(rows).set_index("parameter")  # poppk / paper, geometric means by cohort''',
        MD("## Dose proportionality\n\nPower model ln(AUC) = a + b ln(dose): b = 1 is dose-proportional. The paper "
        "reports exposure rising more than dose-proportionally; the 90% interval of b says so here too."),
        "nca.dose_proportionality()",
        '''import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 4))
for kind, metric, marker in (("single", "AUCinf", "o"), ("ss", "AUCtau", "s")):
    sel = profiles[profiles.profile == kind]
    ax.loglog(sel.DOSE, sel[metric], marker, alpha=0.7, label=f"{metric} ({kind})")
ax.set_xlabel("dose (mg)"); ax.set_ylabel("AUC (ng/mL*h)"); ax.legend();''',
    ],
    "02_fit_and_diagnostics.ipynb": [
        MD("# 2. A Bayesian population fit and its diagnostics\n\n"
        "The linear one-compartment model (`models/oral1cmt.toml`: log-normal IIV on CL, V and KA, exponential "
        "error, BLQ records as M3 censoring) fitted to the trial by NUTS. The diagnostics show what the model "
        "misses: this drug's elimination saturates."),
        SETUP,
        '''spec = poppk.load_spec("oral1cmt")
print(spec.text)''',
        '''data = poppk.datasets.load("lxi15029")
settings = dict(chains=2, warmup=100, samples=100) if QUICK else dict(chains=4, warmup=1000, samples=1000)
fit = poppk.fit(data, spec, progress=not QUICK, **settings)
folder = fit.save(OUT / "fits" / "oral1cmt", force=True)
fit.summary()''',
        MD("## Convergence\n\nDivergences, R-hat, bulk ESS and barely-informed parameters are reported, never hidden."),
        '''diag = fit.diagnostics()
print("converged:", diag["converged"], "| leapfrog steps per iteration:", round(diag["mean_num_steps"]))
for w in diag["warnings"]:
    print("!", w)''',
        MD("## Goodness of fit, NPDE and VPC\n\nThe design is simulated again with new subjects (population draws, "
        "new random effects, residual error)."),
        '''import matplotlib.pyplot as plt

sim = poppk.diagnostics.simulate_design(fit, 50 if QUICK else 500)
records = sim.records
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
poppk.plots.plot_obs_vs_pred(records, "PRED", log=True, conc_unit="ng/mL", ax=axes[0])
poppk.plots.plot_obs_vs_pred(records, "IPRED", log=True, conc_unit="ng/mL", ax=axes[1]);''',
        '''npde = poppk.diagnostics.compute_npde(sim)
print(poppk.diagnostics.npde_summary(npde))
vpc = poppk.diagnostics.compute_vpc(sim, x="TAD", by="PERIOD", pred_corrected=True)
groups = list(vpc.table["group"].unique())
fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
for ax, g in zip(axes[0], groups):
    poppk.plots.plot_vpc(vpc, g, log=True, observations=records, ax=ax)''',
        MD("## Random effects against covariates\n\nWith saturable elimination, a linear model's clearance "
        "random effects fall with dose."),
        '''etas = poppk.diagnostics.eta_table(fit)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
poppk.plots.plot_eta_covariate(etas, "CL", "DOSE", ax=axes[0])
poppk.plots.plot_eta_covariate(etas, "KA", "DOSE", ax=axes[1]);''',
        MD("## The whole report\n\nOne self-contained HTML file (images inside) and the figures as PNG."),
        '''report = poppk.report.write_report(folder, n_sims=50 if QUICK else 500)
print(report)''',
    ],
    "03_model_comparison.ipynb": [
        MD("# 3. Model comparison: linear against Michaelis-Menten elimination\n\n"
        "Two explanations of more-than-proportional exposure: saturable elimination (`oral1cmt_mm`, an ODE) "
        "or a dose effect on clearance (`oral1cmt` with a dose covariate). PSIS-LOO ranks them; Pareto k "
        "values flag observations whose LOO estimate is unreliable."),
        SETUP,
        TRIAL_FITS,
        '''linear = trial_fit("oral1cmt")
mm = trial_fit("oral1cmt_mm")
mm.summary()''',
        MD("A third model, written here as a user would: the linear model with dose as a covariate on CL "
        "(power model around 60 mg)."),
        '''text = poppk.load_spec("oral1cmt").text.replace("[error]", """[[covariates]]
parameter = "CL"
covariate = "DOSE"
kind = "dose"
reference = 60
effect = { mean = 0.0, sd = 1.0 }

[error]""").replace('name = "oral1cmt"', 'name = "oral1cmt_dose_cl"')
spec_path = OUT / "oral1cmt_dose_cl.toml"
spec_path.write_text(text)
folder = OUT / "fits" / "oral1cmt_dose_cl"
if not folder.exists():
    poppk.fit(data, str(spec_path), progress=not QUICK, **SETTINGS["oral1cmt"]).save(folder)
dose_cl = poppk.load_fit(folder)
dose_cl.summary().query("parameter == 'CL_DOSE'")''',
        '''table, notes = poppk.compare_fits([OUT / "fits" / m for m in ("oral1cmt", "oral1cmt_dose_cl", "oral1cmt_mm")])
for n in notes:
    print("!", n)
table''',
        MD("`elpd_diff` is each model's expected log predictive density below the best one, `dse` its standard "
        "error: a difference of several `dse` is clear evidence."),
    ],
    "04_regimen_simulation.ipynb": [
        MD("# 4. Simulating regimens for virtual patients\n\n"
        "Virtual patients carry parameter uncertainty (posterior draws) and between-subject variability (new "
        "random effects), with covariates resampled from the trial. Exposure metrics are computed over the "
        "last dosing interval through the same dosing engine as the fit."),
        SETUP,
        TRIAL_FITS,
        '''fit = trial_fit("oral1cmt_mm")
regimens = ["110 mg q12h x 28 d", "80 mg q12h x 28 d", "220 mg qd x 28 d", "loading 220 mg then 110 mg q12h x 28 d"]
sim = poppk.simulate_regimen(fit, regimens, n=500 if QUICK else 5000)
summary = sim.summary()
summary[summary.metric.isin(["AUCtau_ss", "Cmax_ss", "Cmin_ss"])]''',
        '''target = poppk.simulate.Target.parse("AUCss=3000:9000")
sim.save(OUT / "simulations", target)
sim.summary(target).query("metric.str.startswith('P(')", engine="python")''',
        '''import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
poppk.plots.plot_regimen_bands(sim, ax=axes[0])
poppk.plots.plot_exposure_by_regimen(sim, "AUCtau_ss", target=target, ax=axes[1]);''',
    ],
    "05_toxicity_and_dosing.ipynb": [
        MD("# 5. Exposure-toxicity and PK-guided dosing\n\n"
        "ALT increase against each patient's steady-state AUC (from their posterior, uncertainty carried "
        "along), then a dose recommendation for one patient from a day-1 profile, and the paper's open "
        "question as a virtual trial: fixed 110 mg twice daily against PK-guided dosing."),
        SETUP,
        TRIAL_FITS,
        '''fit = trial_fit("oral1cmt_mm")
ae = poppk.datasets.load("lxi15029_ae")
tox = poppk.tox.fit_exposure_response(fit, ae, "ALT_increased", chains=2,
                                           warmup=200 if QUICK else 1000, samples=200 if QUICK else 1000)
tox.save(OUT / "tox" / "ALT_increased")
tox.curve.iloc[::20]''',
        '''import matplotlib.pyplot as plt

poppk.plots.plot_exposure_response(tox);''',
        MD("## One patient: the day-1 profile of subject 18 (110 mg)\n\nThe patient's posterior given the "
        "population posterior, then P(target) and P(toxicity) for each strength."),
        '''records = fit.data.to_frame()
day1 = records[(records.ID == 18) & (records.TIME <= 24)]
patient = poppk.from_frame(day1, dose_unit="mg", conc_unit="ng/mL")
post = poppk.dosing.patient_posterior(fit, patient, method="map" if QUICK else "full")
target = poppk.simulate.Target.parse("AUCss=3000:9000")
rec = poppk.dosing.recommend_dose(fit, post, target, doses=[20, 40, 60, 80, 110, 150], tox=tox, max_tox_prob=0.5)
print(rec.recommended, "--", rec.reason)
rec.table''',
        MD("## Virtual trial: fixed doses against one adjustment after a day-8 trough"),
        '''trial = poppk.dosing.virtual_trial(fit, target, doses=[20, 40, 60, 80, 110, 150], start_dose=110,
                                   n=100 if QUICK else 500, tox=tox)
trial''',
    ],
    "06_theophylline_your_own_data.ipynb": [
        MD("# 6. Bring your own data: theophylline\n\n"
        "The classic single-dose theophylline study (R `datasets::Theoph`) as a user's own NONMEM-style CSV: "
        "read and validated, NCA, a fit with the model of the nlmixr2 reference analysis, diagnostics, and "
        "the tables a report needs. Replace the CSV path and units with yours."),
        SETUP,
        '''csv = poppk.datasets.export("theophylline", OUT / "theo.csv")  # stands in for your file
print(csv.read_text().splitlines()[:4])
data = poppk.read_nonmem(csv, dose_unit="mg", conc_unit="mg/L")
print(data.n_subjects, "subjects,", data.n_observations, "observations, covariates:", data.covariate_names)''',
        MD("Bad records are reported all at once, with row and column:"),
        '''bad = OUT / "bad.csv"
bad.write_text("ID,TIME,AMT,DV,EVID\\n1,0,320,.,1\\n1,-1,0,abc,0\\n")
try:
    poppk.read_nonmem(bad)
except poppk.DatasetError as exc:
    print(exc)''',
        '''nca = poppk.compute_nca(csv, dose_unit="mg", conc_unit="mg/L")
nca.table()[["ID", "Cmax", "Tmax", "AUCinf", "t_half", "CL_F"]].head()''',
        MD("## Fit: IIV on KA, CL and V, additive error\n\nnlmixr2 FOCEi on the same model: KA 1.59 1/h, CL 2.75 L/h, "
        "V 31.8 L, residual SD 0.69 mg/L."),
        '''settings = dict(chains=2, warmup=150, samples=150) if QUICK else dict(chains=4, warmup=1000, samples=1000)
fit = poppk.fit(data, "oral1cmt_additive", progress=not QUICK, **settings)
folder = fit.save(OUT / "fits" / "theophylline", force=True)
reference = {"KA": 1.59, "CL": 2.75, "V": 31.8, "sigma_add": 0.69}
s = fit.summary().set_index("parameter")
s.loc[list(reference), ["q50", "q5", "q95", "r_hat", "ess_bulk"]].assign(nlmixr2=list(reference.values()))''',
        '''poppk.report.write_report(folder, n_sims=50 if QUICK else 500)
paths = poppk.export_tables(folder, "xlsx") + poppk.export_tables(folder, "md")
print(paths)
print((folder / "export" / "tables.md").read_text()[:1200])''',
    ],
}


def main() -> None:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [new_markdown_cell(c) if isinstance(c, MD) else new_code_cell(c) for c in cells]
        for k, cell in enumerate(nb.cells):
            cell.id = f"c{k:02d}"
        nbformat.write(nb, out / name)
        print(f"wrote notebooks/{name}")


if __name__ == "__main__":
    main()
