"""``poppk demo``: the workflow on the bundled LXI-15029 reconstruction.

It runs NCA (beside the paper's Tables 3-4), fits the linear model (and,
without ``--quick``, the Michaelis-Menten model, then compares them by
PSIS-LOO), writes the HTML report of the preferred fit, then uses that model: regimens simulated for virtual
patients, ALT increase against steady-state AUC, and the paper's closing
question -- would PK-guided dosing beat a fixed 110 mg twice daily? -- as a
virtual trial, answered on both sides: exposure and ALT increase, and disease control and PFS against the
trough (the paper's Ctrough), with a benefit-risk table of the fixed doses under a stated utility and the
power of a 20-patient trial to see an exposure-efficacy effect at all. The target window is an assumption stated in the output: the
typical patient's average steady-state concentration (Cav,ss = AUCtau/tau, so
once- and twice-daily regimens compare) at the MTD (110 mg BID) +-40% (the
paper found no exposure-efficacy relationship to set one from).
"""

from __future__ import annotations

import time
from pathlib import Path


def run_demo(out: str | Path = "demo-out", quick: bool = False, force: bool = False) -> dict:
    from . import datasets
    from .compare import compare_fits
    from .fit import fit
    from .nca import compute_nca

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    entry = datasets.CATALOG["lxi15029"]
    print(f"poppk demo on the bundled trial: {entry.description}\n")

    step = _Steps()
    print(f"{step()}. NCA (linear-up/log-down, BLQ before Tmax = 0) ...")
    nca = compute_nca(datasets.path("lxi15029"), dose_unit=entry.dose_unit, conc_unit=entry.conc_unit, lloq=entry.lloq)
    nca.table().to_csv(out / "nca_profiles.csv", index=False)
    nca.summary().to_csv(out / "nca_summary.csv", index=False)
    table, dp = datasets.compare_with_paper()
    table.to_csv(out / "nca_vs_paper.csv", index=False)
    ok, counts, slopes = datasets.paper_acceptance(table, dp)
    print(f"   cohorts within 1.5x of the paper (Cmax, AUC day 1 / day 28): {counts}")
    print(f"   power-model slope of AUC on dose: day 1 {slopes[0]:.2f}, day 28 {slopes[1]:.2f} "
          "(> 1: more than dose-proportional, as the paper found)")
    written["nca"] = [out / "nca_profiles.csv", out / "nca_summary.csv", out / "nca_vs_paper.csv"]

    data = datasets.load("lxi15029")
    settings = {"oral1cmt": dict(chains=4, warmup=300, samples=300) if quick else
                dict(chains=4, warmup=1000, samples=1000),
                # The ODE model (warm start, dense metric) takes the longest; the benchmarks page times it.
                "oral1cmt_mm": dict(chains=4, warmup=500, samples=500)}
    models = ["oral1cmt"] if quick else ["oral1cmt", "oral1cmt_mm"]
    fits = []
    for name in models:
        draws = settings[name]
        print(f"\n{step()}. Bayesian fit, model {name}: {draws['chains']} chains x "
              f"({draws['warmup']} warmup + {draws['samples']} draws) ...")
        t0 = time.perf_counter()
        result = fit(data, name, progress=False, command="poppk demo", **draws)
        folder = result.save(out / "fits" / name, force=True)
        fits.append(folder)
        s = result.summary()
        diag = result.diagnostics()
        line = ", ".join(f"{r.parameter} {r.q50:.3g} [{r.q5:.3g}, {r.q95:.3g}]" for r in s.itertuples())
        print(f"   {line}")
        print(f"   {'converged' if diag['converged'] else 'NOT converged: ' + '; '.join(diag['warnings'])} "
              f"({time.perf_counter() - t0:.0f} s, {diag['mean_num_steps']:.0f} leapfrog steps/iteration)")
        written[f"fit_{name}"] = folder
    if len(fits) > 1:
        print(f"\n{step()}. PSIS-LOO comparison ...")
        cmp, notes = compare_fits(fits)
        cmp.to_csv(out / "model_comparison.csv", index=False)
        for r in cmp.itertuples():
            print(f"   {r.model:<14} elpd_loo {r.elpd_loo:9.1f}  (diff {r.elpd_diff:6.1f} +- {r.dse:.1f})")
        for n in notes:
            print(f"   ! {n}")
        written["comparison"] = out / "model_comparison.csv"
        best = next((f for f in fits if Path(f).name == cmp.iloc[0]["model"]), fits[-1])
    else:
        print("\n(--quick: the Michaelis-Menten fit and the LOO comparison run without --quick)")
        best = fits[-1]
    print(f"\n{step()}. HTML report of the {Path(best).name} fit (diagnostic plots, VPC, NPDE) ...")
    from .report import write_report

    written["report"] = write_report(best, n_sims=200 if quick else 500)
    print(f"   {written['report']}")
    written.update(_use_the_model(best, out, quick, step))
    print(f"\nwrote, in {time.perf_counter() - start:.0f} s:")
    for key, value in written.items():
        for v in value if isinstance(value, list) else [value]:
            print(f"   {v}")
    return written


class _Steps:
    """Numbers the demo's steps as they run, so a shorter run has no gaps."""

    def __init__(self):
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def _use_the_model(folder: Path, out: Path, quick: bool, step) -> dict:
    """Simulation, exposure-toxicity and the virtual dosing trial on the preferred fit."""

    from . import datasets
    from .dosing import virtual_trial
    from .efficacy import Utility, benefit_risk
    from .plots import figure_exposure_response, figure_regimens, save_figure
    from .tox import fit_exposure_response
    from .fit import load_fit
    from .simulate import Target, simulate_regimen

    fit = load_fit(folder)
    n = 1000 if quick else 5000
    print(f"\n{step()}. Regimens for {n} virtual patients ({fit.spec.name}) ...")
    regimens = ["110 mg q12h x 28 d", "80 mg q12h x 28 d", "220 mg qd x 28 d"]
    sim = simulate_regimen(fit, regimens, n=n)
    # Average steady-state concentration (AUCtau/tau), so that once- and twice-daily regimens meet the
    # same window (AUCtau of a 24-h interval is twice that of a 12-h one at the same daily exposure).
    cav110 = float(sim.exposures.query("regimen == '110 mg q12h x 28 d'")["Cav_ss"].median())
    target = Target("Cav_ss", float(f"{0.6 * cav110:.3g}"), float(f"{1.4 * cav110:.3g}"))
    print(f"   target (assumed): the typical Cav,ss at the MTD 110 mg BID +-40% = {target.low:g}-{target.high:g} "
          f"{fit.data.conc_unit} (= AUC24,ss {24 * target.low:.4g}-{24 * target.high:.4g} {fit.data.conc_unit}*h)")
    sim.save(out / "simulations", target)
    save_figure(figure_regimens(sim, target), out / "simulations" / "regimens.png")
    s = sim.summary(target)
    for r in s[s.metric.isin(["Cav_ss"]) | s.metric.str.startswith("P(")].itertuples():
        print(f"   {r.regimen:<20} {r.metric:<34} median {r.median:.3g} (90% of median: {r.median_lo:.3g}-{r.median_hi:.3g})")

    print(f"\n{step()}. Exposure-toxicity: ALT increased against steady-state AUC ...")
    tox = fit_exposure_response(fit, datasets.load("lxi15029_ae"), "ALT_increased", chains=2,
                                warmup=500, samples=500)
    tox.save(out / "tox" / "ALT_increased")
    save_figure(figure_exposure_response(tox), out / "tox" / "ALT_increased" / "exposure_response.png")
    doses = [10, 20, 40, 60, 80, 110, 150]
    risk = tox.regimen_risk(simulate_regimen(fit, [f"{d} mg q12h x 28 d" for d in doses], n=n // 2))
    risk.to_csv(out / "tox" / "ALT_increased" / "regimens.csv", index=False)
    for r in risk.itertuples():
        print(f"   {r.regimen:<20} P(ALT increased) {r.p_event:.2f} [{r.p_lo:.2f}, {r.p_hi:.2f}]")

    eff = _efficacy(fit, out, quick, step)

    print(f"\n{step()}. Benefit-risk of the fixed doses: P(target), P(ALT increased), P(disease control), median PFS ...")
    utility = Utility.parse("target=1,response=1,tox=-1", max_tox=0.5)
    br = benefit_risk(fit, [f"{d} mg q12h x 28 d" for d in doses], target=target, tox=tox, response=eff["dc"],
                      survival=eff["pfs"], utility=utility, n=n // 2)
    br.table.to_csv(out / "benefit_risk.csv", index=False)
    print(f"   utility (assumed, stated): {utility.label}")
    for r in br.table.itertuples():
        print(f"   {r.regimen:<20} P(target) {r.p_target:.2f}  P(ALT) {r.p_tox:.2f}  P(DC) {r.p_response:.2f} "
              f"[{r.p_response_lo:.2f}, {r.p_response_hi:.2f}]  PFS {r.pfs_median:.0f} d [{r.pfs_lo:.0f}, {r.pfs_hi:.0f}]"
              f"  utility {r.utility:+.2f}{'  <- chosen' if r.recommended else ''}")
    print(f"   {br.reason}")

    n_trial = 200 if quick else 500
    print(f"\n{step()}. Virtual trial, {n_trial} patients: fixed doses vs PK-guided (start 110 mg BID, day-8 trough) ...")
    trial = virtual_trial(fit, target, doses=doses, start_dose=110, interval=12, n=n_trial, tox=tox,
                          response=eff["dc"], survival=eff["pfs"])
    trial.to_csv(out / "virtual_trial.csv", index=False)
    for r in trial.itertuples():
        print(f"   {r.arm:<14} in target {r.in_target:.2f} [{r.in_target_lo:.2f}, {r.in_target_hi:.2f}]   "
              f"P(ALT increased) {r.tox_rate:.2f} [{r.tox_lo:.2f}, {r.tox_hi:.2f}]   P(DC) {r.response_rate:.2f}   "
              f"median PFS {r.pfs_median:.0f} d")
    fixed = trial[trial.arm == "110 mg q12h"].iloc[0]
    guided = trial[trial.arm == "PK-guided"].iloc[0]
    hr, orr, pw = eff["hr"], eff["or"], eff["power"]
    print("\nThe paper's question -- would PK-guided dosing beat a fixed 110 mg BID? -- on both sides:")
    print(f"   safety:   in target {guided.in_target:.2f} vs {fixed.in_target:.2f}; ALT increased {guided.tox_rate:.2f} "
          f"vs {fixed.tox_rate:.2f} (PK-guided vs fixed)")
    print(f"   efficacy: disease control {guided.response_rate:.2f} vs {fixed.response_rate:.2f}; median PFS "
          f"{guided.pfs_median:.0f} vs {fixed.pfs_median:.0f} days"
          + (" -- no difference to find, as the fitted exposure-efficacy effects are null" if eff["null"] else "")
          + f": {hr['name']} per doubling of Cmin,ss {hr['median']:.2f} ({hr['lo']:.2f}-{hr['hi']:.2f}), odds ratio "
          f"of disease control {orr[0]:.2f} ({orr[1]:.2f}-{orr[2]:.2f}), 90% intervals")
    print(f"   how much 20 patients can tell: a hazard halved from the 5th to the 95th percentile of exposure would be "
          f"detected in {100 * pw['power']:.0f}% (90% interval {100 * pw['lo']:.0f}-{100 * pw['hi']:.0f}%) of "
          f"{pw['n_trials']} simulated trials of this design"
          + ("; so the trial cannot show whether guided dosing changes efficacy, only how it moves exposure and "
             "toxicity" if pw["power"] < 0.8 else ""))
    return {"simulations": out / "simulations", "tox": out / "tox" / "ALT_increased", "efficacy": out / "efficacy",
            "benefit_risk": out / "benefit_risk.csv", "virtual_trial": out / "virtual_trial.csv"}


def _efficacy(fit, out: Path, quick: bool, step) -> dict:
    """PFS and disease control against the trough (the paper's Ctrough), the KM by tertile and the power."""
    import numpy as np

    from . import datasets
    from .efficacy import detection_power, fit_survival, kaplan_meier, median_with_ci, survival_vpc
    from .plots import figure_efficacy, save_figure
    from .simulate import patient_exposure
    from .tox import fit_exposure_response

    events = datasets.load("lxi15029_efficacy")
    print(f"\n{step()}. Exposure-efficacy: PFS and disease control against the trough Cmin,ss (the paper's Ctrough) ...")
    x = patient_exposure(fit, "Cmin_ss", seed=0)
    # Progression is seen at scheduled scans: each event lies between the previous scan and the one that found it.
    pfs = fit_survival(fit, events, metric="Cmin_ss", chains=2, warmup=500, samples=500, exposure=x,
                       time_lo="PFS_LO_DAYS")
    pfs.save(out / "efficacy" / "survival")
    evaluable = events.dropna(subset=["DC"])
    dc = fit_exposure_response(fit, evaluable, "DC", metric="Cmin_ss", chains=2, warmup=500, samples=500,
                               subset=True, exposure=x)
    dc.save(out / "efficacy" / "DC")
    p = pfs.patients
    km = kaplan_meier(p["time"], p["event"], p["tertile"])
    km.to_csv(out / "efficacy" / "km_by_tertile.csv", index=False)
    save_figure(figure_efficacy(km, survival_vpc(pfs), time_unit=pfs.time_unit), out / "efficacy" / "efficacy.png")
    med, lo, hi = median_with_ci(p["time"], p["event"])
    print(f"   {len(p)} evaluable patients: disease control {int(evaluable['DC'].sum())}/{len(evaluable)}; "
          f"Kaplan-Meier median PFS {med:g} days (95% CI {lo:g}-{hi:g}) -- the paper: DCR 8/20, median 29 (29-141)")
    for g, sel in p.groupby("tertile", sort=False):
        m, a, b = median_with_ci(sel["time"], sel["event"])
        print(f"   {g:<7} tertile of Cmin,ss ({sel['exposure_median'].min():.3g}-{sel['exposure_median'].max():.3g} "
              f"{pfs.unit}): n {len(sel)}, KM median PFS {m:g} days (95% CI {a:g}-{b:g})")
    hr = pfs.ratio_per_doubling()
    o = np.exp(np.asarray(dc.draws["slope"]) * np.log(2.0))
    orr = (float(np.median(o)), float(np.quantile(o, 0.05)), float(np.quantile(o, 0.95)))
    null = hr["lo"] <= 1.0 <= hr["hi"] and orr[1] <= 1.0 <= orr[2]
    print(f"   {pfs.model} PFS model (progression interval-censored between scans): {hr['name']} per doubling of "
          f"exposure {hr['median']:.2f} (90% interval {hr['lo']:.2f}-{hr['hi']:.2f}); disease control: odds ratio per "
          f"doubling {orr[0]:.2f} ({orr[1]:.2f}-{orr[2]:.2f}) -- "
          + ("neither distinguishable from no effect (the paper: no relationship)" if null else
             "an interval excludes 1 (the paper found no relationship)"))
    # The effect size for the power: the hazard halved between the 5th and 95th percentile patients' exposures.
    spread = np.log2(np.quantile(p["exposure_median"], 0.95) / np.quantile(p["exposure_median"], 0.05))
    ratio = float(0.5 ** (1.0 / max(spread, 1e-9)))
    power = detection_power(pfs, ratio, n_trials=40 if quick else 200, warmup=200, samples=200)
    print(f"   power: a hazard ratio of 0.5 from the 5th to the 95th percentile of exposure ({ratio:.3f} per doubling, "
          f"{spread:.1f} doublings apart) is detected in {100 * power['power']:.0f}% of {power['n_trials']} simulated "
          f"trials of {power['n_patients']} patients")
    power["trials"].to_csv(out / "efficacy" / "power_trials.csv", index=False)
    return {"pfs": pfs, "dc": dc, "hr": hr, "or": orr, "power": power, "null": null}
