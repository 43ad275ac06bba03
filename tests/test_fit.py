"""Fitting: theophylline against published estimates, fit folders, reproducibility, comparison.

Reference (DESIGN.md): nlmixr2 FOCEi on theophylline (IIV on ka, CL, V, additive
error): ka 1.59 1/h, CL/F 2.75 L/h, V/F 31.8 L, residual SD 0.69 mg/L.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk import FitError
from poppk.fit import fit, load_fit

NLMIXR2_FOCEI = {"KA": 1.59, "CL": 2.75, "V": 31.8, "sigma_add": 0.69}


@pytest.fixture(scope="module")
def theo_fit_dir(tmp_path_factory):
    from .conftest import run_cli

    out = tmp_path_factory.mktemp("fits") / "theo"
    res = run_cli("fit", str(poppk.datasets.path("theophylline")), "--model", "oral1cmt_additive", "--out", str(out),
                  "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res.stdout


def test_theophylline_matches_nlmixr2_with_default_settings(theo_fit_dir):
    out, stdout = theo_fit_dir
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    assert list(summary.columns[:8]) == ["mean", "sd", "q5", "q50", "q95", "ess_bulk", "ess_tail", "r_hat"]
    for name, ref in NLMIXR2_FOCEI.items():
        assert summary.loc[name, "q50"] == pytest.approx(ref, rel=0.10), name
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["divergences"] == 0
    assert diag["max_r_hat"] <= 1.01
    assert diag["min_ess_bulk"] >= 400
    assert diag["flip_flop_chains"] == []
    # "auto" IIV: the pilot's expected eta-shrinkage (before sampling, from the mode's curvature) predicts
    # the shrinkage the posterior shows (1 - SD of the subjects' posterior mean etas / median omega).
    # Tolerance: with 12 subjects the SD of their etas alone varies by about 20% between datasets.
    pilot = diag["run"]["pilot"]["expected_shrinkage"]
    assert set(pilot) == {"CL", "V"}  # KA is non-centred without a pilot
    for p, s in pilot.items():
        assert abs(s - diag["shrinkage"][p]) < 0.15, (p, s, diag["shrinkage"][p])
    assert diag["run"]["chains"] == 4 and diag["run"]["chain_method"] == "parallel"
    assert "poppk" in diag["run"]["versions"] and diag["run"]["command"].startswith("poppk fit")
    assert "converged" in stdout


def test_fit_folder_contents_and_reload(theo_fit_dir):
    out, _ = theo_fit_dir
    for name in ("posterior.nc", "summary.csv", "individual.csv", "diagnostics.json", "spec.toml", "data.csv"):
        assert (out / name).exists(), name
    f = load_fit(out)
    assert {"posterior", "sample_stats", "log_likelihood", "posterior_predictive", "observed_data",
            "constant_data"} <= set(f.tree.children)
    assert f.tree["log_likelihood"]["DV"].sizes["obs"] == 132
    ind = pd.read_csv(out / "individual.csv")
    assert len(ind) == 12 and {"CL", "CL_q5", "CL_q95", "V", "KA"} <= set(ind.columns)
    # NUTS statistics under ArviZ's names; E-BFMI as arviz-stats computes it (an independent implementation)
    stats = f.tree["sample_stats"]
    assert {"lp", "energy", "acceptance_rate", "step_size", "n_steps", "tree_depth", "diverging"} <= set(stats)
    from arviz_stats.base import array_stats

    diag = json.loads((out / "diagnostics.json").read_text())
    from poppk.fit._summary import energy_bfmi

    reference = array_stats.bfmi(stats["energy"].values)
    np.testing.assert_allclose(energy_bfmi(stats["energy"].values), reference, rtol=1e-12)
    np.testing.assert_allclose(diag["e_bfmi_per_chain"], reference, atol=5e-4 + 1e-12)  # rounded to 3 decimals
    pred = f.predict(n_draws=50)
    assert {"IPRED_q5", "IPRED_q50", "IPRED_q95"} <= set(pred.columns)
    # individual predictions follow the data: median absolute error well under the observed spread
    assert np.nanmedian(np.abs(pred["IPRED_q50"] - pred["DV"])) < 0.8


def test_pointwise_log_likelihood_equals_numpyros(theo_fit_dir):
    # Reference: NumPyro's own log_likelihood, running the whole model function on the posterior draws; the fit
    # computes the same numbers from the individual parameters and the observation model alone (cheaper).
    from numpyro.infer.util import log_likelihood

    from poppk.model import build_model

    f = load_fit(theo_fit_dir[0])
    choice = tuple((p, "centered" if p in f.info["centered"] else "noncentered") for p in f.spec.iiv.parameters)
    built = build_model(f.spec, f.data, parameterization=choice)
    post = f.tree["posterior"]
    draws = {k: np.asarray(post[k].values)[0, :20] for k in post.data_vars}
    ref = np.asarray(log_likelihood(built.fn, draws, **built.kwargs)["DV"])
    sub, col = np.nonzero(np.asarray(built.kwargs["mask"]))
    np.testing.assert_allclose(f.tree["log_likelihood"]["DV"].values[0, :20], ref[:, sub, col], rtol=1e-10)


def test_existing_folder_is_not_overwritten_and_damage_is_named(theo_fit_dir, tmp_path, cli):
    out, _ = theo_fit_dir
    res = cli("fit", str(poppk.datasets.path("theophylline")), "--model", "oral1cmt_additive", "--out", str(out))
    assert res.returncode == 2 and "--force" in res.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "spec.toml").write_text((out / "spec.toml").read_text())
    with pytest.raises(FitError, match="missing posterior.nc"):
        load_fit(broken)


def test_same_seed_same_summary():
    data = poppk.datasets.load("theophylline")
    a = fit(data, "oral1cmt_additive", chains=1, warmup=60, samples=60, seed=3, progress=False).summary()
    b = fit(data, "oral1cmt_additive", chains=1, warmup=60, samples=60, seed=3, progress=False).summary()
    pd.testing.assert_frame_equal(a, b)


def test_compare_ranks_models(theo_fit_dir, tmp_path, cli):
    out, _ = theo_fit_dir
    spec = poppk.model.load_spec("oral1cmt_additive").text.replace('parameters = ["CL", "V", "KA"]',
                                                                   'parameters = ["CL"]')
    (tmp_path / "cl_only.toml").write_text(spec)
    res = cli("fit", str(poppk.datasets.path("theophylline")), "--model", str(tmp_path / "cl_only.toml"),
              "--out", str(tmp_path / "cl_only"), "--chains", "2", "--warmup", "300", "--samples", "300",
              "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    res = cli("compare", str(out), str(tmp_path / "cl_only"), "--out", str(tmp_path / "cmp.csv"))
    assert res.returncode == 0, res.stderr[-2000:]
    table = pd.read_csv(tmp_path / "cmp.csv")
    assert table.iloc[0]["model"] == "theo"  # IIV on V and KA is needed: the full model wins


def test_sparse_design_fits_and_flags_weakly_informed_parameters():
    """Troughs and two post-dose samples per subject: KA is barely informed."""
    frame = poppk.datasets.load("lxi15029").to_frame()
    obs = frame["EVID"] == 0
    keep_times = {216.0, 384.0, 696.0}
    t_after = frame["TIME"] - 696.0
    sparse = frame[~obs | frame["TIME"].isin(keep_times) | ((t_after > 1.8) & (t_after < 2.2))
                   | ((t_after > 5.5) & (t_after < 6.5))]
    data = poppk.from_frame(sparse, dose_unit="mg", conc_unit="ng/mL", warn=False)
    assert data.n_observations <= 5 * data.n_subjects
    f = fit(data, "oral1cmt", chains=2, warmup=300, samples=300, progress=False)
    diag = f.diagnostics()
    # Five samples per subject for three random effects: too few for the pilot's mode (its residual error
    # would collapse; on these data it expected V's shrinkage at 0.02 where the posterior shows ~0.5), so
    # "auto" samples everything non-centred.
    assert f.info["parameterization"] == "noncentered"
    assert "per random effect" in f.info["pilot"]["reason"]
    assert "KA" in diag["barely_informed"] or "omega_KA" in diag["barely_informed"]
    assert any("barely informed" in w for w in diag["warnings"])

    # individual.csv carries each subject's steady-state exposure at their maintenance regimen; for the
    # linear model AUCtau,ss = F Dose / CL (closed form), so its median is Dose / median CL_i (mg/L -> ng/mL).
    table = f.individual().set_index("ID")
    dose = frame.groupby("ID")["DOSE"].first()
    assert table["regimen"].str.contains("q12h").all()
    assert (table["AUCtau_ss_q5"] <= table["AUCtau_ss"]).all() and (table["AUCtau_ss"] <= table["AUCtau_ss_q95"]).all()
    np.testing.assert_allclose(table["AUCtau_ss"], 1000 * dose[table.index] / table["CL"], rtol=0.1)
    assert (table["Cmin_ss"] < table["Cmax_ss"]).all()


def test_blq_without_lloq_fails_clearly(tmp_path, cli):
    path = tmp_path / "blq.csv"
    path.write_text("ID,TIME,AMT,DV,BLQ\n1,0,100,.,0\n1,1,0,3,0\n1,30,0,.,1\n")
    res = cli("fit", str(path), "--model", "oral1cmt", "--out", str(tmp_path / "f"))
    assert res.returncode == 2 and "LLOQ" in res.stderr and "Traceback" not in res.stderr


def test_bad_tree_depth_fails_before_sampling(tmp_path, cli):
    data = poppk.datasets.path("theophylline")
    res = cli("fit", str(data), "--model", "oral1cmt", "--out", str(tmp_path / "f"), "--max-tree-depth", "6,x")
    assert res.returncode == 2 and "--max-tree-depth" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "f").exists()


def test_loo_handles_records_with_constant_likelihood(theo_fit_dir):
    """ArviZ's PSIS is the reference where it applies; a record whose log likelihood is the same
    in every draw (a BLQ record far below the LLOQ) gets that value, exactly."""
    import arviz as az
    import xarray as xr

    from poppk.compare import loo_fit

    f = load_fit(theo_fit_dir[0])
    elpd, k, _ = loo_fit(f)
    ref = az.loo(f.tree, pointwise=True)
    np.testing.assert_allclose(elpd, np.asarray(ref.elpd_i), rtol=1e-10)
    tree = f.tree.copy()
    ds = tree["log_likelihood"].to_dataset().copy(deep=True)
    ds["DV"][:, :, 0] = 0.0  # log P(below LLOQ) = log 1
    tree["log_likelihood"] = xr.DataTree(ds)
    elpd2, k2, _ = loo_fit(type(f)(tree, f.spec, f.data, f.info))
    assert elpd2[0] == 0.0 and k2[0] == 0.0
    np.testing.assert_allclose(elpd2[1:], elpd[1:], rtol=1e-6)


def test_divergences_with_centred_iiv_get_concrete_advice(theo_quick_fit):
    # A fit's own diagnostics after divergences (marked here in its sample stats): the warning names the
    # centred parameters and the option that samples them non-centred.
    import dataclasses

    fit = poppk.load_fit(theo_quick_fit)
    centred = fit.info["centered"]
    assert centred  # theophylline, 11 samples per subject: "auto" centres V at least (its pilot shrinkage ~0.10)
    assert not any("funnel" in w for w in fit.diagnostics()["warnings"])
    tree = fit.tree.copy(deep=True)
    div = tree["sample_stats"]["diverging"]
    tree["sample_stats"]["diverging"] = div.copy(data=np.arange(div.size).reshape(div.shape) % 50 == 0)
    warnings = dataclasses.replace(fit, tree=tree).diagnostics()["warnings"]
    advice = [w for w in warnings if "funnel" in w]
    assert len(advice) == 1 and "--parameterization noncentered" in advice[0]
    assert all(f"{p} (" in advice[0] for p in centred)
    assert "shrinkage" in advice[0] and "parameterization = {" in advice[0]
    # Sampled non-centred (as "auto" does on sparse designs): the advice is a higher target acceptance and,
    # where the pilot found too few samples per random effect, fewer random effects.
    info = {**fit.info, "centered": [], "pilot": {"reason": "non-centred: the median subject has fewer than 2 "
                                                            "observations per random effect"}}
    warnings = dataclasses.replace(fit, tree=tree, info=info).diagnostics()["warnings"]
    advice = [w for w in warnings if "non-centred" in w]
    assert len(advice) == 1 and "--target-accept 0.95" in advice[0] and "KA first" in advice[0]
    info["target_accept"] = 0.95
    advice = [w for w in dataclasses.replace(fit, tree=tree, info=info).diagnostics()["warnings"] if "non-centred" in w]
    assert len(advice) == 1 and "--target-accept" not in advice[0]


@pytest.mark.parametrize("sigma, omega_cl, expect", [(0.05, 0.4, "centered"), (1.0, 0.05, "noncentered")])
def test_pilot_centres_only_what_the_data_inform(sigma, omega_cl, expect):
    """The "auto" pilot on simulated data where the answer is plain: 12 subjects x 10 samples with a 5%
    residual error and 40% IIV on CL inform each subject's CL almost perfectly (shrinkage near 0:
    centred); a 100% residual error against 5% IIV leaves CL to the population (shrinkage near 1)."""
    from poppk.fit._pilot import choose_parameterization

    rng = np.random.default_rng(3)
    times = [0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24]
    cl = 5.0 * np.exp(omega_cl * rng.standard_normal(12))
    v = 50.0 * np.exp(0.2 * rng.standard_normal(12))
    rows = []
    for i in range(12):
        k, ka = cl[i] / v[i], 1.5
        rows.append({"ID": i + 1, "TIME": 0.0, "AMT": 100.0, "DV": np.nan, "EVID": 1, "MDV": 1, "CMT": 1})
        for t in times:  # one-compartment oral closed form (Gibaldi & Perrier), times the residual error
            c = 100.0 * ka / (v[i] * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))
            rows.append({"ID": i + 1, "TIME": t, "AMT": 0.0, "DV": c * np.exp(sigma * rng.standard_normal()),
                         "EVID": 0, "MDV": 0, "CMT": 2})
    data = poppk.from_frame(pd.DataFrame(rows), dose_unit="mg", conc_unit="mg/L")
    pilot = choose_parameterization(poppk.load_spec("oral1cmt"), data)
    assert dict(pilot.choice)["CL"] == expect and dict(pilot.choice)["KA"] == "noncentered"
    assert pilot.shrinkage["CL"] < 0.05 if expect == "centered" else pilot.shrinkage["CL"] > 0.5


def test_warm_start_runs_on_a_closed_form():
    """The warm start (posterior mode by L-BFGS, Laplace metric, two-stage warmup; on by default only for ODE
    kernels) also works on a closed form: it reaches the mode and the fit agrees with nlmixr2's estimates
    (DESIGN.md) as loosely as a short run allows."""
    data = poppk.datasets.load("theophylline")
    f = fit(data, "oral1cmt_additive", chains=2, warmup=200, samples=200, progress=False, warm_start=True)
    assert f.info["warm_start"].startswith("laplace") and f.info["warm_start_stage1"] == 100
    summary = f.summary().set_index("parameter")
    for name in ("CL", "V"):
        assert summary.loc[name, "q50"] == pytest.approx(NLMIXR2_FOCEI[name], rel=0.15), name
