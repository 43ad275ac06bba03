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
    "07_efficacy_and_benefit_risk.ipynb": [
        MD("# 7. Exposure-efficacy and benefit-risk\n\n"
        "The paper's second exposure question: does more drug mean longer progression-free survival or more "
        "disease control? PFS against each patient's posterior trough (the paper's Ctrough), with progression "
        "interval-censored between scans; disease control with the toxicity model's machinery; how much 20 "
        "patients can tell (power); then the doses weighed on both sides, and the virtual trial of fixed "
        "against PK-guided dosing with efficacy beside exposure and toxicity."),
        SETUP,
        TRIAL_FITS,
        '''from poppk.efficacy import fit_survival, kaplan_meier, median_with_ci, logrank

fit = trial_fit("oral1cmt")
events = poppk.datasets.load("lxi15029_efficacy")
x = poppk.simulate.patient_exposure(fit, "Cmin_ss")  # every patient's trough draws, used by both models
draws = dict(chains=2, warmup=200, samples=200) if QUICK else dict(chains=4, warmup=1000, samples=1000)
pfs = fit_survival(fit, events, time="PFS_DAYS", event="PFS_EVENT", time_lo="PFS_LO_DAYS", metric="Cmin_ss",
                   exposure=x, **draws)
p = pfs.patients
print("Kaplan-Meier median PFS (95% CI):", median_with_ci(p.time, p.event), "-- the paper: 29 (29-141)")
print("log-rank across exposure tertiles: p =", round(logrank(p.time, p.event, p.tertile), 3))
print(pfs.ratio_per_doubling())
pfs.summary()''',
        '''km = kaplan_meier(p.time, p.event, p.tertile)
vpc = poppk.efficacy.survival_vpc(pfs, n_sims=50 if QUICK else 200)
poppk.plots.figure_efficacy(km, vpc, time_unit="days");''',
        MD("## Disease control, and how much 20 patients can tell\n\n"
        "Disease control (SD or better) is a logistic model in log exposure, fitted to the evaluable patients "
        "(`subset=True`). The power: simulated trials of this design with a hazard halved between the 5th and "
        "95th percentile of exposure, each refitted."),
        '''import numpy as np

dc = poppk.tox.fit_exposure_response(fit, events.dropna(subset=["DC"]), "DC", metric="Cmin_ss", subset=True,
                                     exposure=x, **draws)
odds = np.exp(dc.draws["slope"] * np.log(2))
print(f"disease control {int(dc.patients.event.sum())}/{len(dc.patients)}; odds ratio per doubling "
      f"{np.median(odds):.2f} ({np.quantile(odds, 0.05):.2f}-{np.quantile(odds, 0.95):.2f})")
spread = np.log2(np.quantile(p.exposure_median, 0.95) / np.quantile(p.exposure_median, 0.05))
power = poppk.efficacy.detection_power(pfs, 0.5 ** (1 / spread), n_trials=10 if QUICK else 200)
{k: power[k] for k in ("power", "lo", "hi", "n_trials", "n_patients", "ratio")}''',
        MD("## Benefit-risk of the fixed doses\n\n"
        "Each regimen's P(target), P(ALT increased), P(disease control) and median PFS, each a posterior over "
        "the PK, exposure-toxicity and exposure-efficacy models together; the utility is ours to state (here "
        "equal weights and a limit on toxicity)."),
        '''from poppk.efficacy import Utility, benefit_risk

tox_folder = OUT / "tox" / "ALT_increased"  # notebook 05's model when it ran here, otherwise fitted now
if tox_folder.exists():
    tox = poppk.tox.ExposureResponse.load(tox_folder)
else:
    tox = poppk.tox.fit_exposure_response(fit, poppk.datasets.load("lxi15029_ae"), "ALT_increased", **draws)
target = poppk.simulate.Target.parse("Cav_ss=150:450")
doses = [20, 40, 60, 80, 110, 150]
br = benefit_risk(fit, [f"{d} mg q12h x 28 d" for d in doses], target=target, tox=tox, response=dc, survival=pfs,
                  utility=Utility.parse("target=1,response=1,tox=-1", max_tox=0.5), n=300 if QUICK else 2000)
print(br.recommended, "--", br.reason)
br.table[["regimen", "p_target", "p_tox", "p_tox_lo", "p_tox_hi", "p_response", "pfs_median", "pfs_lo", "pfs_hi",
          "utility", "p_best", "feasible"]]''',
        MD("## The virtual trial with efficacy"),
        '''trial = poppk.dosing.virtual_trial(fit, target, doses=doses, start_dose=110, n=60 if QUICK else 500, tox=tox,
                                   response=dc, survival=pfs)
trial[["arm", "in_target", "tox_rate", "response_rate", "response_lo", "response_hi", "pfs_median", "pfs_lo",
       "pfs_hi"]]''',
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
