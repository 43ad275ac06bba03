"""Inter-occasion variability (issue 26): a log-normal effect per subject and occasion beside the IIV,
the occasion read from an OCC column.

Expected values: the one-compartment Bateman function applied piece by piece by hand
(``test_time_varying._bateman_pieces``, Gibaldi and Perrier 1982) with each occasion's clearance
multiplied by ``exp(kappa)`` by hand; recovery by simulation against the simulation's own truth.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

import poppk
from poppk.errors import ModelSpecError
from poppk.model import build_model, parse_spec
from poppk.pk import concentrations, get_kernel

from .test_time_varying import _bateman_pieces, _Clearance

jax.config.update("jax_enable_x64", True)

SPEC = """
[model]
kernel = "oral1cmt"
[parameters]
CL = { median = 5.0, sd_log = 1.0 }
V = { median = 50.0, sd_log = 1.0 }
KA = { median = 1.0, sd_log = 1.0 }
[iiv]
parameters = ["CL", "V", "KA"]
omega = 0.5
[iov]
parameters = ["CL"]
omega = 0.3
[error]
model = "proportional"
"""
TRUTH = {"CL": 5.0, "V": 50.0, "KA": 1.0, "omega_CL": 0.3, "omega_V": 0.25, "omega_KA": 0.3, "omega_iov_CL": 0.2,
         "sigma_prop": 0.1}


def design(n=30, seed=3, occasions=3):
    """``occasions`` single 100 mg oral doses a week apart, 7 samples over 24 h after each, OCC 1, 2, ...;
    CL with IIV 0.3 and IOV 0.2 (log scale), V and KA with IIV; proportional error 0.1. Concentrations by
    the engine (checked against the hand piecewise solution in ``test_time_varying``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, n + 1):
        for occ in range(occasions):
            t0 = 168.0 * occ
            rows.append(dict(ID=i, TIME=t0, AMT=100.0, DV=np.nan, EVID=1, MDV=1, CMT=1, OCC=occ + 1))
            for s in (0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0):
                rows.append(dict(ID=i, TIME=t0 + s, AMT=0.0, DV=1.0, EVID=0, MDV=0, CMT=2, OCC=occ + 1))
    frame = pd.DataFrame(rows)
    data = poppk.data.from_frame(frame, warn=False)
    changes, hist = data.covariate_history(["OCC"])
    eta = rng.normal(0, 1, (n, 3)) * np.asarray([TRUTH["omega_CL"], TRUTH["omega_V"], TRUTH["omega_KA"]])
    kappa = rng.normal(0, TRUTH["omega_iov_CL"], (n, occasions))
    occ = hist["OCC"].astype(int) - 1
    params = {"CL": TRUTH["CL"] * np.exp(eta[:, [0]] + np.take_along_axis(kappa, occ, axis=1)),
              "V": TRUTH["V"] * np.exp(eta[:, 1]), "KA": TRUTH["KA"] * np.exp(eta[:, 2])}
    conc = np.asarray(concentrations(get_kernel("oral1cmt"), params, data.doses, data.sampling, changes))
    dv = conc * np.exp(rng.normal(0, TRUTH["sigma_prop"], conc.shape))
    present = np.asarray(data.present)
    frame.loc[np.asarray(data.row)[present], "DV"] = dv[present]
    frame.loc[frame.EVID == 1, "DV"] = np.nan
    return frame


def test_each_occasion_takes_its_own_effect():
    from numpyro import handlers

    data = poppk.data.from_frame(design(n=2), warn=False)
    built = build_model(parse_spec(SPEC), data, parameterization="noncentered", record_pred=True)
    assert built.occasion_levels == (1.0, 2.0, 3.0)
    # eta_z: CL, V, KA, then CL's standardised IOV at occasions 1, 2, 3; omega_iov 0.2 -> kappa 0.2 z
    z = np.zeros((2, 6))
    z[1, 3:] = [1.0, -2.0, 0.5]
    values = {"CL": 5.0, "V": 50.0, "KA": 1.0, "omega_CL": 0.3, "omega_V": 0.3, "omega_KA": 0.3, "omega_iov_CL": 0.2,
              "sigma_prop": 0.1, "eta_z": z}
    model = handlers.seed(handlers.substitute(built.fn, data=values), rng_seed=0)
    trace = handlers.trace(model).get_trace(**{**built.kwargs, "dv": None})
    np.testing.assert_allclose(np.asarray(trace["kappa"]["value"])[1, :, 0], [0.2, -0.4, 0.1])
    np.testing.assert_allclose(np.asarray(trace["CL_i"]["value"]), [5.0, 5.0])  # the subjects' own, no IOV
    t = list(np.asarray(data.sampling.time)[1])
    cl = _Clearance([5.0 * np.exp(0.2), 5.0 * np.exp(-0.4), 5.0 * np.exp(0.1)], [168.0, 336.0])
    expected = _bateman_pieces([0.0, 168.0, 336.0], 100.0, t, cl, 50.0, 1.0)
    np.testing.assert_allclose(np.asarray(trace["CONC"]["value"])[1], expected, rtol=1e-10)


def test_bad_iov_specs_and_data_fail_before_sampling():
    with pytest.raises(ModelSpecError, match=r"iov\.parameters.*Q is not a parameter"):
        parse_spec(SPEC.replace('parameters = ["CL"]\nomega = 0.3', 'parameters = ["Q"]\nomega = 0.3'))
    with pytest.raises(ModelSpecError, match=r"\biov\b.*unknown key"):
        parse_spec(SPEC.replace("omega = 0.3\n[error]", "omega = 0.3\noccasion = 1\n[error]"))
    frame = design(n=3)
    with pytest.raises(ModelSpecError, match=r"\[iov\] column OCC is not in the data"):
        build_model(parse_spec(SPEC), poppk.data.from_frame(frame.drop(columns="OCC"), warn=False))
    frame.loc[frame.ID == 2, "OCC"] = np.nan
    with pytest.raises(ModelSpecError, match=r"OCC is missing for 1 subject\(s\): ID 2 \(rows"):
        build_model(parse_spec(SPEC), poppk.data.from_frame(frame, warn=False))


def _fit_cli(tmp_path, *extra):
    design().to_csv(tmp_path / "iov.csv", index=False)
    (tmp_path / "iov.toml").write_text(SPEC)
    run = subprocess.run([sys.executable, "-m", "poppk", "fit", str(tmp_path / "iov.csv"), "--model",
                          str(tmp_path / "iov.toml"), "--out", str(tmp_path / "fit"), "--no-progress", *extra],
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr
    return pd.read_csv(tmp_path / "fit" / "summary.csv").set_index("parameter")


def _recovered(fit):
    """Every truth inside the simultaneous 90% set (each parameter's central interval at 1 - 0.10/m,
    Bonferroni over the m parameters, as ``test_recovery_structural``); the marginal 90% misses printed."""
    level = 1 - 0.10 / len(TRUTH)
    missed, marginal = {}, {}
    for name, truth in TRUTH.items():
        draws = fit.draws(name).ravel()
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
        q5, q95 = np.quantile(draws, [0.05, 0.95])
        if not lo < truth < hi:
            missed[name] = (truth, lo, hi)
        if not q5 < truth < q95:
            marginal[name] = (truth, round(float(q5), 4), round(float(q95), 4))
    print(f"marginal 90% intervals missing the truth: {marginal or 'none'}")
    assert not missed, f"truth outside the simultaneous 90% set: {missed}"


def test_laplace_recovers_iiv_and_iov(tmp_path):
    # One replicate (seed 3) of 30 subjects x 3 occasions (its realised SD of eta_CL is 0.39, of kappa 0.199).
    _fit_cli(tmp_path, "--method", "laplace")
    fit = poppk.load_fit(tmp_path / "fit")
    _recovered(fit)
    ebe = pd.read_csv(tmp_path / "fit" / "ebe.csv")  # the occasions' EBEs beside the subjects'
    assert {"eta_CL", "kappa_CL_occ1", "kappa_CL_occ3"} <= set(ebe.columns)
    params, changes = fit.segment_draws(4)
    assert params["CL"].shape == (4, 30, 3) and (np.asarray(changes.time)[:, :2] == [168.0, 336.0]).all()
    # the report's predictions follow each occasion: individual predictions track the data
    pred = fit.predict(n_draws=20)
    assert np.median(np.abs(np.log(pred.DV / pred.IPRED_q50))) < 0.12


@pytest.mark.slow
def test_nuts_with_defaults_recovers_iiv_and_iov(tmp_path):
    # The same replicate by the default NUTS fit (4 x (1000 + 1000)): converged, the truths in the
    # simultaneous 90% set.
    summary = _fit_cli(tmp_path)
    assert summary["r_hat"].max() <= 1.01 and summary["ess_bulk"].min() >= 400, summary.to_string()
    print(summary[["q5", "q50", "q95", "ess_bulk", "r_hat"]].to_string())
    _recovered(poppk.load_fit(tmp_path / "fit"))


@pytest.mark.slow
def test_a_new_occasion_keeps_the_recommendation_honest():
    # Dose individualisation: virtual patients with known parameters are observed on one occasion (a dose,
    # samples at 2, 8 and 24 h) and their clearance predicted for the next occasion, whose true clearance
    # differs by a new kappa. From the IOV model the new occasion's effect is drawn from N(0, omega_iov);
    # the same data fitted without [iov] attribute the observed occasion's effect to the patient, and their
    # 90% intervals cover the next occasion's clearance far less often (overstated certainty).
    from poppk.dosing import patient_posterior

    data = poppk.data.from_frame(design(), warn=False)
    with_iov = poppk.fit(data, parse_spec(SPEC), method="laplace", progress=False)
    no_iov = SPEC[: SPEC.index("[iov]")] + SPEC[SPEC.index("[error]"):]
    without = poppk.fit(data, parse_spec(no_iov), method="laplace", progress=False)
    rng = np.random.default_rng(11)
    hits = {"iov": [], "no_iov": []}
    width = {"iov": [], "no_iov": []}
    for j in range(40):
        eta = rng.normal(0, 1, 3) * [TRUTH["omega_CL"], TRUTH["omega_V"], TRUTH["omega_KA"]]
        kappa_now, kappa_next = rng.normal(0, TRUTH["omega_iov_CL"], 2)
        cl, v, ka = TRUTH["CL"] * np.exp(eta[0] + kappa_now), TRUTH["V"] * np.exp(eta[1]), TRUTH["KA"] * np.exp(eta[2])
        t = np.array([2.0, 8.0, 24.0])
        k = cl / v
        conc = 100 * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))  # Bateman, one oral dose
        dv = conc * np.exp(rng.normal(0, TRUTH["sigma_prop"], 3))
        rows = [dict(ID=1, TIME=0.0, AMT=100.0, DV=np.nan, EVID=1, MDV=1, CMT=1, OCC=1)]
        rows += [dict(ID=1, TIME=x, AMT=0.0, DV=y, EVID=0, MDV=0, CMT=2, OCC=1) for x, y in zip(t, dv)]
        patient = poppk.data.from_frame(pd.DataFrame(rows), warn=False)
        truth_next = TRUTH["CL"] * np.exp(eta[0] + kappa_next)
        for name, fit in (("iov", with_iov), ("no_iov", without)):
            post = patient_posterior(fit, patient, method="map", n_draws=400, seed=j)
            lo, hi = np.quantile(post.params["CL"], [0.05, 0.95])
            hits[name].append(lo < truth_next < hi)
            width[name].append(np.log(hi / lo))
    coverage = {k: float(np.mean(v)) for k, v in hits.items()}
    print("coverage of the next occasion's CL by 90% intervals:", coverage,
          "median log-width:", {k: round(float(np.median(v)), 3) for k, v in width.items()})
    assert coverage["iov"] >= 0.75, coverage
    assert coverage["no_iov"] <= coverage["iov"] - 0.25, coverage
    assert np.median(width["no_iov"]) < 0.6 * np.median(width["iov"]), width


def test_guided_dosing_still_beats_fixed_dosing_across_occasions():
    # The virtual trial (poppk.dosing.virtual_trial): one trough on the starting occasion, the regimens on
    # the next, whose true clearance carries a new occasion effect (truth: the IOV fit's own population).
    # Target AUCss 16-26 mg h/L; the fixed arms' best and the guided arm, with their 90% Jeffreys intervals.
    from poppk.dosing import virtual_trial
    from poppk.simulate import Target

    fit = poppk.fit(poppk.data.from_frame(design(), warn=False), parse_spec(SPEC), method="laplace", progress=False)
    table = virtual_trial(fit, Target.parse("AUCss=16:26"), doses=[50, 75, 100, 125, 150, 200], start_dose=100,
                          interval=24, n=300, trough_day=5, seed=1).set_index("arm")
    print(table[["in_target", "in_target_lo", "in_target_hi"]].to_string())
    guided, fixed = table.loc["PK-guided"], table.drop(index="PK-guided")
    best = fixed["in_target"].idxmax()
    assert guided["in_target_lo"] > fixed.loc[best, "in_target_hi"], table.to_string()
