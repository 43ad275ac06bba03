"""Regimens, virtual populations and steady-state exposure.

Expected values: the regimen texts' dose times are counted by hand; steady-state
exposure of the linear one-compartment oral model comes from its closed form
(Gibaldi & Perrier, Pharmacokinetics, 2nd ed., ch. 3): a single dose gives
c1(t) = F D KA / (V (KA - k)) (exp(-k t) - exp(-KA t)), k = CL/V; after n doses every
tau, superposition gives the last interval's concentrations sum_j c1(t + j tau) and

    AUC over the last interval = integral of c1 over [0, n tau]
                               = F D / CL [1 - (KA exp(-k n tau) - k exp(-KA n tau)) / (KA - k)],

which tends to the steady-state AUCtau,ss = F D / CL.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk.simulate import Regimen, RegimenError, Target, exposure_metrics, parse_regimen, simulate_regimen


@pytest.mark.parametrize("text, n, tau, first_times, amounts", [
    ("110 mg q12h x 28 d", 56, 12.0, [0, 12, 24], {110.0}),
    ("200 mg qd x 28 d", 28, 24.0, [0, 24, 48], {200.0}),
    ("50 mg bid x 3 doses", 3, 12.0, [0, 12, 24], {50.0}),
    ("loading 400 mg then 200 mg qd x 14 d", 15, 24.0, [0, 24, 48], {400.0, 200.0}),
    ("110 mg bid x 7 d then 150 mg bid x 21 d", 56, 12.0, [0, 12, 24], {110.0, 150.0}),
    ("10 mg every 8 h x 2 d", 6, 8.0, [0, 8, 16], {10.0}),
    ("1 g Q6H x 1 d", 4, 6.0, [0, 6, 12], {1.0}),
])
def test_regimen_text(text, n, tau, first_times, amounts):
    r = parse_regimen(text)
    times, amt = r.dose_times()
    assert r.n_doses == n and len(times) == n and r.tau == tau
    assert list(times[:3]) == first_times and set(amt) == amounts
    assert np.all(np.diff(times) > 0)


def test_regimen_segments_follow_each_other():
    times, amt = parse_regimen("110 mg bid x 7 d then 150 mg bid x 21 d").dose_times()
    assert times[13] == 156 and amt[13] == 110 and times[14] == 168 and amt[14] == 150
    assert times[-1] == 27 * 24 + 12


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("110 mg", None),  # a single dose is valid: checked below
    ("110 q12h x 28 d", "cannot read"),
    ("110 kg q12h x 28 d", "unknown dose unit"),
    ("110 mg q12h", "without a duration"),
    ("110 mg q5h x 1 d", "whole number"),
    ("110 mg q12h x 28 fortnights", "unknown duration unit"),
    ("0 mg q12h x 2 d", "positive"),
    ("110 mg q12h x 2 d then 5 g qd x 2 d", "mixed dose units"),
    ("twice a day", "cannot read"),
])
def test_malformed_regimens_say_what_is_wrong(text, words):
    if words is None:
        assert parse_regimen(text).n_doses == 1
        with pytest.raises(RegimenError, match="single dose"):
            _ = parse_regimen(text).tau
        return
    with pytest.raises(RegimenError, match=words):
        parse_regimen(text)


def test_target_text():
    t = Target.parse("AUCss=3000:6000")
    assert (t.metric, t.low, t.high) == ("AUCtau_ss", 3000.0, 6000.0)
    assert Target.parse("Cminss=500:").high == np.inf
    for bad in ("AUCss", "AUCss=6000:3000", "Foo=1:2", "AUCss=a:b"):
        with pytest.raises(poppk.PoppkError):
            Target.parse(bad)


def _c1(t, dose, cl, v, ka):
    k = cl / v
    return dose * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))


def _last_interval(t, n, tau, dose, cl, v, ka):
    return sum(_c1(t + j * tau, dose, cl, v, ka) for j in range(n))


def test_exposure_metrics_equal_the_closed_form():
    rng = np.random.default_rng(0)
    n = 400
    p = {"CL": rng.lognormal(np.log(3), 0.4, n), "V": rng.lognormal(np.log(30), 0.3, n),
         "KA": rng.lognormal(np.log(1.5), 0.5, n)}
    cl, v, ka = p["CL"], p["V"], p["KA"]
    k = cl / v
    for text, dose, tau, n_doses in (("320 mg q12h x 14 d", 320.0, 12.0, 28), ("500 mg qd x 21 d", 500.0, 24.0, 21)):
        m, _ = exposure_metrics("oral1cmt", p, parse_regimen(text), dose_unit="mg", conc_unit="mg/L")
        T = n_doses * tau
        # The regimen's last interval: the AUC of n doses' sum over it (integrated by hand).
        auc_last = dose / cl * (1 - (ka * np.exp(-k * T) - k * np.exp(-ka * T)) / (ka - k))
        np.testing.assert_allclose(m["AUCtau_last"], auc_last, rtol=1e-9)
        # True steady state, whatever the regimen's length: AUCtau,ss = F Dose / CL (linear kinetics).
        np.testing.assert_allclose(m["AUCtau_ss"], dose / cl, rtol=1e-9)
        np.testing.assert_allclose(m["Cav_ss"], dose / cl / tau, rtol=1e-9)
        grid = np.linspace(0, tau, 4001)[:, None]
        # At steady state: each exponential's infinite geometric series (Gibaldi and Perrier 1982, eq. 3.37).
        exact = dose * ka / (v * (ka - k)) * (np.exp(-k * grid) / (1 - np.exp(-k * tau)) - np.exp(-ka * grid) / (1 - np.exp(-ka * tau)))
        # Extremes over the interval's ends and quadrature nodes (exact at the ends, where Cmin usually is).
        np.testing.assert_allclose(m["Cmax_ss"], exact.max(axis=0), rtol=2e-3)
        np.testing.assert_allclose(m["Cmin_ss"], exact.min(axis=0), rtol=2e-3)
        at_end = np.isclose(exact.argmin(axis=0), 4000)
        np.testing.assert_allclose(m["Cmin_ss"][at_end], exact[-1, at_end], rtol=1e-8)


def test_steady_state_is_reported_even_when_the_regimen_ends_before_it():
    """A 150-h half-life drug over 5 days (issue 25): the end-of-regimen trough is far below the steady
    state, which is computed at the true steady state (the SS fixed point), and t_ss_h says the regimen
    ends before it. Reference: 1-compartment trough at steady state, F D exp(-k tau) / (V (1 - exp(-k tau)))
    for an IV bolus (Gibaldi and Perrier 1982, eq. 3.9)."""
    from poppk.simulate import before_steady_state

    v, t_half, dose, tau = 50.0, 150.0, 100.0, 24.0
    k = np.log(2) / t_half
    p = {"CL": np.array([k * v]), "V": np.array([v])}
    m, _ = exposure_metrics("iv1cmt", p, parse_regimen("100 mg iv qd x 5 d"), dose_unit="mg", conc_unit="mg/L")
    want = dose * np.exp(-k * tau) / (v * (1 - np.exp(-k * tau)))
    np.testing.assert_allclose(m["Cmin_ss"], want, rtol=1e-9)
    last = sum(dose / v * np.exp(-k * (5 * tau - j * tau)) for j in range(5))
    np.testing.assert_allclose(m["Cmin_last"], last, rtol=1e-9)
    assert m["Cmin_last"][0] < 0.5 * m["Cmin_ss"][0]
    assert np.isnan(m["t_ss_h"][0]) and before_steady_state(m) == 1.0


def test_a_failed_solve_is_an_error_not_a_nan_exposure():
    # A patient whose parameters make the solution non-finite (here KA = inf) must stop the simulation
    # with a SolverError naming the patient, rather than put NaN into regimen summaries and risks.
    p = {"VMAX": np.array([20.0, 20.0]), "KM": np.array([500.0, 500.0]), "V": np.array([40.0, 40.0]),
         "KA": np.array([1.0, np.inf])}
    with pytest.raises(poppk.SolverError, match=r"1 of 2 virtual patients.*KA=inf.*adaptive solver"):
        exposure_metrics("oral1cmt_mm", p, parse_regimen("100 mg q12h x 3 d"), dose_unit="mg", conc_unit="ng/mL")


def test_a_stiff_patient_falls_back_to_the_adaptive_solver():
    # The one virtual patient in 100,000 from the bundled trial's MM fit (110 mg q12h, mg and ng/mL) for which
    # the shipped spec's 8 fixed steps fail (V 4.8 L: VMAX/(KM V) = 11.7 /h); a typical patient beside it.
    # Reference: the same spec solved by diffrax's adaptive Tsit5 (ode_steps 0, set past the spec parser).
    import dataclasses

    spec = poppk.load_spec("oral1cmt_mm")
    p = {"VMAX": np.array([33.39, 24.0]), "KM": np.array([593.9, 600.0]), "V": np.array([4.803, 40.0]),
         "KA": np.array([6.546, 3.0])}
    reg = parse_regimen("110 mg q12h x 28 d")
    got, _ = exposure_metrics(spec, p, reg, dose_unit="mg", conc_unit="ng/mL")
    ref, _ = exposure_metrics(dataclasses.replace(spec, ode_steps=0), p, reg, dose_unit="mg", conc_unit="ng/mL")
    for k in ("AUCtau_ss", "Cmax_ss", "Cmin_ss"):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-6)


def test_units_and_f1_follow_the_engine():
    """ng/mL from mg doses: AUC x 1000; the ODE kernel gives the same numbers as the closed form."""
    p = {"CL": np.array([5.0, 12.0]), "V": np.array([40.0, 60.0]), "KA": np.array([2.0, 0.8])}
    reg = parse_regimen("100 mg q12h x 10 d")
    lin, _ = exposure_metrics("oral1cmt", p, reg, dose_unit="mg", conc_unit="ng/mL")
    ode, _ = exposure_metrics("oral1cmt_ode", p, reg, dose_unit="mg", conc_unit="ng/mL")
    np.testing.assert_allclose(lin["AUCtau_ss"], 100 / p["CL"] * 1000, rtol=1e-9)
    np.testing.assert_allclose(ode["AUCtau_ss"], lin["AUCtau_ss"], rtol=1e-4)
    np.testing.assert_allclose(ode["Cmax_ss"], lin["Cmax_ss"], rtol=1e-4)
    ug, _ = exposure_metrics("oral1cmt", p, Regimen.parse("100000 ug q12h x 10 d"), dose_unit="mg",
                             conc_unit="ng/mL")
    np.testing.assert_allclose(ug["AUCtau_ss"], lin["AUCtau_ss"], rtol=1e-12)


def test_virtual_patients_follow_the_posterior(theo_quick_fit):
    fit = poppk.load_fit(theo_quick_fit)
    sim = simulate_regimen(fit, ["320 mg q12h x 7 d", "640 mg qd x 7 d"], n=4000, seed=3)
    e = sim.exposures
    q12 = e[e.regimen == "320 mg q12h x 7 d"]
    # Same patients in both arms; AUC over 24 h is the same for a linear model.
    np.testing.assert_allclose(2 * q12.AUCtau_ss.to_numpy(), e[e.regimen == "640 mg qd x 7 d"].AUCtau_ss.to_numpy(),
                               rtol=1e-9)
    k, ka, T = (q12.CL / q12.V).to_numpy(), q12.KA.to_numpy(), 14 * 12.0
    auc = 320 / q12.CL.to_numpy() * (1 - (ka * np.exp(-k * T) - k * np.exp(-ka * T)) / (ka - k))
    np.testing.assert_allclose(q12.AUCtau_last, auc, rtol=1e-9)  # the regimen's last interval, by hand
    np.testing.assert_allclose(q12.AUCtau_ss, 320 / q12.CL.to_numpy(), rtol=1e-9)  # steady state: F Dose / CL
    # Typical CL and between-subject SD of log CL agree with the posterior (sampling error of 4,000 patients).
    typical = np.median(fit.draws("CL"))
    assert np.median(q12.CL) == pytest.approx(typical, rel=0.08)
    sd = np.sqrt(np.mean(fit.draws("omega_CL") ** 2))
    assert np.std(np.log(q12.CL)) == pytest.approx(sd, rel=0.15)
    s = sim.summary(Target.parse("AUCss=80:160"))
    row = s[(s.regimen == "320 mg q12h x 7 d") & (s.metric == "AUCtau_ss")].iloc[0]
    assert row.q5 < row.median_lo <= row["median"] <= row.median_hi < row.q95
    share = s[s.metric.str.startswith("P(")]
    assert ((share["median"] >= 0) & (share["median"] <= 1)).all()
    band = sim.bands[sim.bands.regimen == "320 mg q12h x 7 d"]
    assert (band.q5 <= band.q50).all() and (band.q50 <= band.q95).all()


def test_residual_error_widens_the_bands_only(theo_quick_fit):
    fit = poppk.load_fit(theo_quick_fit)
    a = simulate_regimen(fit, "320 mg q12h x 3 d", n=2000, seed=4)
    b = simulate_regimen(fit, "320 mg q12h x 3 d", n=2000, seed=4, residual=True)
    pd.testing.assert_frame_equal(a.exposures, b.exposures)
    late = a.bands.TIME > 24
    assert ((b.bands.q95 - b.bands.q5)[late] > (a.bands.q95 - a.bands.q5)[late]).mean() > 0.9


def test_simulate_cli(theo_quick_fit, tmp_path, cli):
    out = tmp_path / "sim"
    res = cli("simulate", str(theo_quick_fit), "--regimen", "320 mg q12h x 7 d", "--regimen", "640 mg qd x 7 d",
              "--n", "500", "--target", "AUCss=80:160", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    for f in ("exposures.csv", "summary.csv", "bands.csv", "regimens.png"):
        assert (out / f).stat().st_size > 0
    assert len(pd.read_csv(out / "exposures.csv")) == 1000
    assert "P(AUCtau_ss in [80, 160])" in res.stdout
    bad = cli("simulate", str(theo_quick_fit), "--regimen", "320 mg q12h for a while")
    assert bad.returncode == 2 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("simulate", str(theo_quick_fit), "--regimen", "320 mg q12h x 7 d", "--target", "AUC=1")
    assert bad.returncode == 2 and "target" in bad.stderr and "Traceback" not in bad.stderr
