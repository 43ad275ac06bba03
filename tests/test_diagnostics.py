"""Diagnostics, plots and the report.

Expected values: under the model that generated the data, NPDEs are standard
normal (Brendel et al. 2006, Comets et al. 2008) and each observed percentile
falls inside its simulated 90% interval in about 90% of bins (Holford 2005);
the data here are simulated from a known one-compartment model with poppk's
own kernel (itself checked against hand values and the ODE in test_pk.py),
log-normal IIV and log-normal residual error, with some records censored.
Plots are checked for what they draw: point counts, lines, labels.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import poppk  # noqa: E402
from poppk import diagnostics as dg  # noqa: E402
from poppk import plots  # noqa: E402

TRUE = {"CL": 2.75, "V": 31.8, "KA": 1.59}
OMEGA = {"CL": 0.3, "V": 0.2, "KA": 0.4}
SIGMA_LOG = 0.15
TIMES = [0.25, 0.5, 1, 2, 3.5, 5, 7, 9, 12, 24, 36]
LLOQ = 0.5


def simulated_trial(n=30, seed=1) -> pd.DataFrame:
    """A theophylline-like single-dose design (320 mg), simulated from TRUE; late records fall below LLOQ."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, n + 1):
        dose = 320.0 if i % 2 else 160.0
        rows.append(dict(ID=i, TIME=0.0, AMT=dose, DV=np.nan, EVID=1, MDV=1, CMT=1, DOSE=dose))
        rows += [dict(ID=i, TIME=t, AMT=0.0, DV=np.nan, EVID=0, MDV=0, CMT=2, DOSE=dose) for t in TIMES]
    frame = pd.DataFrame(rows)
    skeleton = poppk.from_frame(frame.assign(DV=1.0), warn=False)
    params = {k: v * np.exp(OMEGA[k] * rng.standard_normal(n)) for k, v in TRUE.items()}
    conc = poppk.predict("oral1cmt", params, skeleton)
    obs = frame["EVID"] == 0
    dv = np.concatenate([c[np.isfinite(c)] for c in conc]) * np.exp(SIGMA_LOG * rng.standard_normal(obs.sum()))
    frame.loc[obs, "DV"] = dv
    frame["LLOQ"] = LLOQ
    frame["BLQ"] = (obs & (frame["DV"] < LLOQ)).astype(int)
    frame.loc[frame["BLQ"] == 1, "DV"] = np.nan
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    data = poppk.from_frame(simulated_trial(), warn=False)
    fit = poppk.fit(data, "oral1cmt", chains=2, warmup=300, samples=300, progress=False)
    folder = fit.save(tmp_path_factory.mktemp("diag") / "fit")
    sim = dg.simulate_design(fit, 400)
    return fit, folder, sim


def test_design_replicates_have_the_records_shape(fitted):
    fit, _, sim = fitted
    assert sim.sims.shape == (400, len(sim.records))
    assert len(sim.records) == 30 * len(TIMES)
    assert sim.records["BLQ"].sum() > 5  # the design has censored records to test
    np.testing.assert_allclose(sim.records["TAD"], sim.records["TIME"])  # single dose at t = 0


def test_npde_are_standard_normal_under_the_true_model(fitted):
    summary = dg.npde_summary(dg.compute_npde(fitted[2]))
    assert abs(summary["mean"]) < 0.2
    assert 0.8 < summary["sd"] < 1.2


def test_vpc_percentiles_fall_in_their_intervals_about_90_percent(fitted):
    vpc = dg.compute_vpc(fitted[2])
    assert len(vpc.table) == len(TIMES)  # nominal times become the bins
    assert 0.75 <= vpc.coverage() <= 1.0
    pc = dg.compute_vpc(fitted[2], pred_corrected=True, by="DOSE")
    assert set(pc.table["group"]) == {160.0, 320.0}
    assert 0.75 <= pc.coverage() <= 1.0
    # BLQ fraction: observed within the simulated interval in most bins
    t = vpc.table
    inside = (t["obs_blq"] >= t["sim_blq_lo"] - 1e-12) & (t["obs_blq"] <= t["sim_blq_hi"] + 1e-12)
    assert inside.mean() >= 0.75


def test_a_wrong_model_shows_in_the_npde():
    # Additive error on data with log-normal error and concentrations spanning a decade:
    # the late, low concentrations are over-dispersed in the predictive distribution.
    frame = simulated_trial()
    frame["DV"] = frame["DV"].fillna(0.0)
    frame["BLQ"] = 0
    data = poppk.from_frame(frame.drop(columns=["LLOQ"]), warn=False)
    wrong = poppk.fit(data, "oral1cmt_additive", chains=1, warmup=200, samples=200, progress=False)
    npde = dg.compute_npde(dg.simulate_design(wrong, 300))
    late = npde[npde["TIME"] >= 24]
    assert late["NPDE"].std() < 0.7  # squeezed: the model expects far more spread than the data have


def test_auto_bins():
    edges = dg.auto_bins(np.array([0.5, 0.52, 1, 1.01, 2, 2, 4]))
    assert len(edges) - 1 == 4  # nominal times 0.5, 1, 2, 4 (2 significant digits)
    edges = dg.auto_bins(np.linspace(0, 100, 500), n_bins=8)
    assert len(edges) - 1 == 8
    # Evenly spread x: k equal bins leave 1/k^2 of the variance, so 10 bins reach the 0.99 target.
    assert len(dg.auto_bins(np.linspace(0, 100, 500))) - 1 == 10
    # Nominal times, one of them sampled 3 times among 600 records: it joins its nearer neighbour.
    x = np.concatenate([np.repeat([1.0, 2.0, 4.0, 8.0], 150), [4.6, 4.6, 4.6]])
    np.testing.assert_allclose(dg.auto_bins(x), [-np.inf, 1.5, 3.0, 6.3, np.inf])


def _brute_force_sse(x, k, m):
    """Smallest within-bin sum of squares over every split of sorted x into k bins of >= m values."""
    from itertools import combinations

    best = np.inf
    for cuts in combinations(range(m, x.size - m + 1), k - 1):
        parts = np.split(x, cuts)
        if min(p.size for p in parts) >= m:
            best = min(best, sum(((p - p.mean()) ** 2).sum() for p in parts))
    return best


def test_irregular_bins_are_the_least_squares_optimum_with_a_floor_on_counts():
    """Irregular sampling: the edges minimise the within-bin sum of squares (Fisher 1958) among splits
    with at least min_count records per bin; the reference is an exhaustive search over every split."""
    rng = np.random.default_rng(3)
    x = np.sort(np.concatenate([rng.uniform(0, 3, 14), rng.uniform(8, 12, 9), rng.exponential(20, 7) + 20]))
    for k, m in ((3, 4), (4, 5), (5, 3)):
        edges = dg.auto_bins(x, n_bins=k, min_count=m)
        counts = np.histogram(x, edges)[0]
        assert len(counts) == k and counts.min() >= m
        which = np.digitize(x, edges[1:-1])
        sse = sum(((x[which == b] - x[which == b].mean()) ** 2).sum() for b in range(k))
        np.testing.assert_allclose(sse, _brute_force_sse(x, k, m), rtol=1e-12)
    # Routine monitoring: most records within 24 h of a dose, a sparse tail to 128 h. The tail gets bins
    # of its own (quantile bins gave one 12-128 h bin), every bin holds 10 or more records.
    tad = np.concatenate([rng.uniform(0, 24, 400), rng.uniform(24, 128, 60)])
    edges = dg.auto_bins(tad)
    counts = np.histogram(tad, edges)[0]
    assert counts.min() >= dg._vpc.MIN_PER_BIN and len(counts) <= dg._vpc.MAX_BINS
    assert (edges[1:-1] > 24).sum() >= 2 and (edges[1:-1] < 24).sum() >= 3


# Plots: what they draw ------------------------------------------------------------------------------------

def test_plot_obs_vs_pred_draws_every_record(fitted):
    rec = fitted[2].records
    ax = plots.plot_obs_vs_pred(rec, "IPRED", log=True, conc_unit="mg/L")
    obs, blq = ax.collections[0], ax.collections[1]
    assert len(obs.get_offsets()) == int((~rec["BLQ"]).sum())
    assert len(blq.get_offsets()) == int(rec["BLQ"].sum())
    assert ax.get_xlabel() == "IPRED (mg/L)" and ax.get_ylabel() == "observed (mg/L)"
    assert ax.get_xscale() == "log" and len(ax.lines) == 1  # the identity line
    plt.close("all")


def test_plot_vpc_draws_three_percentiles_over_three_bands(fitted):
    vpc = dg.compute_vpc(fitted[2])
    ax = plots.plot_vpc(vpc)
    assert len(ax.lines) == 3 and all(len(line.get_xdata()) == len(vpc.table) for line in ax.lines)
    assert len(ax.collections) == 4  # fill_between per percentile, and the ticks where bins meet
    assert len(ax.collections[-1].get_segments()) == len(vpc.table) - 1
    assert ax.get_ylabel() == "concentration (mg/L)" and ax.get_yscale() == "log"
    ax = plots.plot_vpc_blq(vpc)
    assert ax.get_ylabel() == "fraction below LLOQ" and len(ax.lines) == 2
    plt.close("all")


def test_plot_npde_and_parameters(fitted):
    fit, _, sim = fitted
    npde = dg.compute_npde(sim)
    ax = plots.plot_npde(npde, "TIME")
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(npde)
    assert len(ax.lines) == 3 and ax.get_xlabel() == "time (h)"
    ax = plots.plot_shrinkage(fit.diagnostics()["shrinkage"])
    assert len(ax.patches) == 3
    priors = dg.prior_distributions(fit)
    assert set(priors) == set(fit.info["population"])
    ax = plots.plot_prior_posterior(fit.draws("CL"), priors["CL"][0], "CL", unit=priors["CL"][1])
    assert ax.get_xlabel() == "CL (L/h)" and len(ax.lines) == 1 and len(ax.patches) == 40
    ax = plots.plot_rank(fit.tree["posterior"]["CL"].values, "CL")
    assert len(ax.lines) == 3  # two chains and the uniform reference
    figs = plots.plot_individual_pages(dg.individual_curves(fit, n_draws=50), sim.records,
                                       dg.dose_times(fit.data), per_page=12, conc_unit="mg/L")
    assert len(figs) == 3 and sum(ax.get_visible() for ax in figs[-1].axes) == 6
    plt.close("all")


def test_report_cli_writes_a_self_contained_html(fitted, cli):
    _, folder, _ = fitted
    res = cli("report", str(folder), "--n-sims", "200")
    assert res.returncode == 0, res.stderr
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 8
    assert "Population parameters" in html and "NPDE" in html
    for png in ("gof.png", "npde.png", "vpc.png", "pcvpc.png", "vpc_blq.png", "individual_1.png",
                "prior_posterior.png", "trace_rank.png", "shrinkage.png"):
        assert (folder / "plots" / png).stat().st_size > 5000, png
    assert not (folder / "plots" / "eta_covariates_CL.png").exists()  # one covariate: one figure
    bad = cli("report", str(folder), "--by", "NOPE")
    assert bad.returncode == 2 and "NOPE" in bad.stderr and "Traceback" not in bad.stderr


def test_infusion_spans_for_the_individual_plots():
    """Infusion bars: start and start + AMT/RATE for every RATE > 0 dose, ADDL expanded (a 2-h infusion of
    500 at rate 250 every 12 h, 3 doses); boluses and RATE=-2 doses have no bar (hand-listed)."""
    from poppk.diagnostics import infusion_spans
    from poppk.plots import _params

    frame = pd.DataFrame([
        dict(ID=1, TIME=0.0, AMT=500.0, RATE=250.0, II=12.0, ADDL=2, DV=None, EVID=1, MDV=1, CMT=1),
        dict(ID=1, TIME=1.0, AMT=0.0, RATE=0.0, II=0.0, ADDL=0, DV=3.0, EVID=0, MDV=0, CMT=1),
        dict(ID=2, TIME=0.0, AMT=100.0, RATE=0.0, II=0.0, ADDL=0, DV=None, EVID=1, MDV=1, CMT=1),
        dict(ID=2, TIME=1.0, AMT=0.0, RATE=0.0, II=0.0, ADDL=0, DV=3.0, EVID=0, MDV=0, CMT=1),
    ])
    spans = infusion_spans(poppk.data.from_frame(frame, warn=False))
    np.testing.assert_allclose(spans["1"], [[0.0, 2.0], [12.0, 14.0], [24.0, 26.0]])
    assert spans["2"].shape == (0, 2)
    curves = pd.DataFrame({"ID": 1, "TIME": [0.0, 30.0], "q5": 1.0, "q50": 2.0, "q95": 3.0})
    records = pd.DataFrame({"ID": [1], "TIME": [1.0], "DV": [3.0], "BLQ": [0], "LLOQ": [np.nan]})
    ax = _params.plot_individual(curves, records, 1, dose_times=[0.0, 12.0, 24.0], infusions=spans["1"])
    assert "infusion" in ax.get_legend_handles_labels()[1]
    plt.close(ax.figure)


def test_observation_windows_split_distant_occasions():
    """Hand-listed: doses every 24 h for 30 days, samples on day 1 and around day 29 give two windows, each
    from the dose before its first sample to its last sample; a single dose gives one; a lone pre-dose
    sample an hour either side of it; weekly doses sampled weekly stay one window (gaps of one interval)."""
    rows = [dict(ID=1, TIME=0.0, AMT=100.0, II=24.0, ADDL=29, DV=None, EVID=1, MDV=1, CMT=1)]
    rows += [dict(ID=1, TIME=t, AMT=0.0, II=0.0, ADDL=0, DV=2.0, EVID=0, MDV=0, CMT=2) for t in (2, 6, 23, 698, 702)]
    rows += [dict(ID=2, TIME=0.0, AMT=100.0, II=0.0, ADDL=0, DV=None, EVID=1, MDV=1, CMT=1)]
    rows += [dict(ID=2, TIME=t, AMT=0.0, II=0.0, ADDL=0, DV=2.0, EVID=0, MDV=0, CMT=2) for t in (1, 2, 4)]
    rows += [dict(ID=3, TIME=0.0, AMT=0.0, II=0.0, ADDL=0, DV=2.0, EVID=0, MDV=0, CMT=2),
             dict(ID=3, TIME=0.0, AMT=100.0, II=0.0, ADDL=0, DV=None, EVID=1, MDV=1, CMT=1)]
    rows += [dict(ID=4, TIME=0.0, AMT=100.0, II=168.0, ADDL=5, DV=None, EVID=1, MDV=1, CMT=1)]
    rows += [dict(ID=4, TIME=t, AMT=0.0, II=0.0, ADDL=0, DV=2.0, EVID=0, MDV=0, CMT=2) for t in (160, 328, 496)]
    data = poppk.from_frame(pd.DataFrame(rows), warn=False)
    w = dg.observation_windows(data)
    np.testing.assert_allclose(w["1"], [[0.0, 23.0], [696.0, 702.0]])
    np.testing.assert_allclose(w["2"], [[0.0, 4.0]])
    np.testing.assert_allclose(w["3"], [[-1.0, 1.0]])
    np.testing.assert_allclose(w["4"], [[0.0, 496.0]])


def test_individual_plots_draw_a_panel_per_window(tmp_path):
    """A subject sampled on two occasions a month apart gets two panels, each zoomed to its window (the
    curve computed there only); a subject sampled once gets one panel over its own span."""
    rows = []
    for i in (1, 2):
        rows.append(dict(ID=i, TIME=0.0, AMT=300.0, II=24.0, ADDL=29, DV=None, EVID=1, MDV=1, CMT=1))
        times = (1, 3, 8, 23, 697, 700, 710) if i == 1 else (1, 3, 8, 23)
        rows += [dict(ID=i, TIME=float(t), AMT=0.0, II=0.0, ADDL=0, DV=5.0, EVID=0, MDV=0, CMT=2) for t in times]
    frame = pd.DataFrame(rows).assign(WT=lambda f: 60.0 + 10 * f["ID"], AGE=lambda f: 30 + f["ID"], CRCL=90.0,
                                      ALB=40.0, SEX=lambda f: np.where(f["ID"] == 1, "F", "M"))
    data = poppk.from_frame(frame, warn=False)
    fit = poppk.fit(data, "oral1cmt", method="laplace", samples=100, progress=False)
    curves = dg.individual_curves(fit, n_draws=20)
    one = curves[curves["ID"] == "1"]
    assert set(one["WINDOW"]) == {0, 1}
    assert one["TIME"].between(0, 23).sum() + one["TIME"].between(696, 710).sum() == len(one)
    records = dg.simulate_design(fit, 20).records
    figs = plots.plot_individual_pages(curves, records, dg.dose_times(data), windows=dg.observation_windows(data))
    axes = [ax for ax in figs[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["ID 1, 0-23 h", "ID 1, 696-710 h", "ID 2"]
    lo, hi = axes[1].get_xlim()
    assert 690 < lo < 696 and 710 < hi < 716
    plt.close("all")
    # Five covariates: one figure per random effect, covariates four to a row (a 2 x 4 grid, 5 drawn).
    figures = poppk.report.make_figures(fit, tmp_path, n_sims=20)["figures"]
    assert [k for k in figures if k.startswith("Random effects")] == [
        f"Random effects vs covariates ({p})" for p in fit.spec.iiv.parameters]
    assert sum(k.startswith("Individual fits") for k in figures) == 1
