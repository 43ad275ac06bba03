"""Exposure-efficacy: survival likelihoods, Kaplan-Meier, the bundled efficacy table, recovery.

References: scipy.stats' Weibull, exponential and log-logistic (``fisk``) densities and survival functions
for the likelihood with censoring; R's ``survival::survfit`` on ``aml`` (maintained arm), whose product-limit
estimates are quoted below (and follow by hand: 10/11, x 9/10, x 7/8, ...); the LXI-15029 paper's efficacy
summaries (DCR 8/20, median PFS 29 days, 95% CI 29-141); and survival times simulated here from a stated
Weibull model with a known hazard ratio per doubling of exposure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import poppk
from poppk.efficacy import (event_table, kaplan_meier, log_likelihood, logrank, median_with_ci,
                            sample_survival_model, simulate_times)
from poppk.errors import EfficacyError


@pytest.mark.parametrize("model", ["exponential", "weibull", "loglogistic"])
def test_log_likelihood_with_censoring_against_scipy(model):
    t = np.array([5.0, 12.0, 30.0, 7.5])
    event = np.array([1, 0, 1, 0])
    z = np.array([0.0, 1.0, -0.5, 2.0])
    log_lam, log_k, beta = np.log(20.0), np.log(1.7), -0.4
    got = log_likelihood(model, t, event, z, log_lam, log_k, beta)
    k = 1.0 if model == "exponential" else 1.7
    if model == "loglogistic":  # AFT: scale 20 * exp(beta z)
        dist = stats.fisk(c=k, scale=20.0 * np.exp(beta * z))
    else:  # PH: H = (t/lam)^k e^{beta z} is a Weibull with scale lam e^{-beta z / k}
        dist = stats.weibull_min(c=k, scale=20.0 * np.exp(-beta * z / k))
    want = np.where(event == 1, dist.logpdf(t), dist.logsf(t))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("model", ["exponential", "weibull", "loglogistic"])
def test_interval_censored_likelihood_against_scipy(model):
    """An event in (lo, hi]: log(S(lo) - S(hi)) with scipy's survival functions (lo = 0: log F(hi)); a
    record without lo, or censored, keeps the exact or right-censored term."""
    from poppk.efficacy import log_interval_likelihood, record_log_likelihood

    lo, hi = np.array([0.0, 5.0, 29.0, 85.0]), np.array([29.0, 12.0, 85.0, 141.0])
    z = np.array([0.0, 1.0, -0.5, 2.0])
    log_lam, log_k, beta = np.log(40.0), np.log(0.8), 0.3
    k = 1.0 if model == "exponential" else 0.8
    if model == "loglogistic":
        dist = stats.fisk(c=k, scale=40.0 * np.exp(beta * z))
    else:
        dist = stats.weibull_min(c=k, scale=40.0 * np.exp(-beta * z / k))
    want = np.log(dist.sf(lo) - dist.sf(hi))
    np.testing.assert_allclose(log_interval_likelihood(model, lo, hi, z, log_lam, log_k, beta), want, rtol=1e-12)
    event = np.array([1, 1, 0, 1])
    t_lo = np.array([0.0, np.nan, 29.0, 85.0])
    got = record_log_likelihood(model, hi, event, t_lo, z, log_lam, log_k, beta)
    exact = log_likelihood(model, hi, event, z, log_lam, log_k, beta)
    np.testing.assert_allclose(got, [want[0], exact[1], exact[2], want[3]], rtol=1e-12)


def test_assessments_and_interval_columns_are_checked():
    """Simulated times seen at a schedule; the interval column's errors name the rows."""
    from poppk.efficacy import assessed

    hi, lo = assessed([3.0, 29.0, 30.0, 500.0], [29.0, 85.0, 141.0])
    assert hi.tolist() == [29.0, 29.0, 85.0, 500.0] and lo.tolist() == [0.0, 0.0, 29.0, 141.0]
    ids = [1, 2, 3]
    good = pd.DataFrame({"ID": [1, 2, 3], "T": [29.0, 85.0, 40.0], "E": [1, 1, 0], "L": [0.0, 29.0, 10.0]})
    _, _, _, t_lo = event_table(good, ids, time="T", event="E", time_lo="L")
    np.testing.assert_array_equal(t_lo, [0.0, 29.0, np.nan])  # not used for the censored patient
    for table, text in ((good.assign(L=[0.0, 85.0, 1.0]), "column L: rows [3] are not between 0"),
                        (good.assign(L=[-1.0, 29.0, 1.0]), "column L: rows [2] are not between 0"),
                        (good.assign(L=["0", "x", ""]), "column L: rows [3] are not numbers"),
                        (good.drop(columns="L"), "no column 'L'")):
        with pytest.raises(EfficacyError, match=text.replace("[", r"\[").replace("]", r"\]")):
            event_table(table, ids, time="T", event="E", time_lo="L")


def test_interval_censoring_removes_the_bias_of_scan_days_taken_as_event_times():
    """300 patients, exponential times (scale 40 days, no exposure effect), scans at day 28 and every 56 days
    after, censoring at day 400: with each progression in (previous scan, scan] the 90% interval of the
    scale covers 40; taking the scan day as the event time puts the scale well above it (every event is
    late by up to a scan interval)."""
    from poppk.efficacy import assessed

    rng = np.random.default_rng(8)
    n = 300
    t = simulate_times("exponential", rng, np.zeros(n), np.log(40.0), 0.0, 0.0)
    schedule = np.r_[28.0, 28.0 + 56.0 * np.arange(1, 8)]
    hi, lo = assessed(t, schedule)
    event = (hi <= 400.0).astype(int)
    time = np.minimum(hi, 400.0)
    z = np.zeros((n, 1))
    post, _ = sample_survival_model(time, event, z, model="exponential", chains=2, warmup=300, samples=300, seed=2,
                                    t_lo=np.where(event == 1, lo, np.nan))
    q = np.exp(np.quantile(post["log_scale"], [0.05, 0.95]))
    assert q[0] <= 40.0 <= q[1], q
    naive, _ = sample_survival_model(time, event, z, model="exponential", chains=2, warmup=300, samples=300, seed=2)
    assert np.exp(np.quantile(naive["log_scale"], 0.05)) > 40.0 * 1.2


def test_kaplan_meier_against_r_survival_on_aml():
    """R: ``summary(survfit(Surv(time, status) ~ 1, data = aml[aml$x == "Maintained", ]))``: times 9 13 18 23
    31 34 48, survival 0.909 0.818 0.716 0.614 0.491 0.368 0.184 (n.risk 11 10 8 7 5 4 2)."""
    time = [9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161]
    status = [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0]
    km = kaplan_meier(time, status).set_index("time")
    r_times = [9, 13, 18, 23, 31, 34, 48]
    r_surv = [0.909, 0.818, 0.716, 0.614, 0.491, 0.368, 0.184]
    np.testing.assert_allclose(km.loc[r_times, "survival"], r_surv, atol=5e-4)
    assert km.loc[r_times, "at_risk"].tolist() == [11, 10, 8, 7, 5, 4, 2]
    by_hand = np.cumprod([10 / 11, 9 / 10, 7 / 8, 6 / 7, 4 / 5, 3 / 4, 1 / 2])
    np.testing.assert_allclose(km.loc[r_times, "survival"], by_hand, rtol=1e-12)


def test_bundled_efficacy_table_reproduces_the_paper():
    """20 evaluable of 24, disease control 8/20 (SD only, no CR/PR), KM median PFS 29 days with 95% CI
    29-141 (the paper's Results), the 344-day SD patient with fibrosarcoma at 20 mg BID."""
    eff = pd.read_csv(poppk.datasets.path("lxi15029_efficacy"))
    ev = eff[eff["EVALUABLE"] == 1]
    assert len(eff) == 24 and len(ev) == 20
    assert int(ev["DC"].sum()) == 8 and set(ev["BEST_RESPONSE"]) == {"SD", "PD"}
    assert median_with_ci(ev["PFS_DAYS"], ev["PFS_EVENT"]) == (29.0, 29.0, 141.0)
    long = ev[ev["PFS_DAYS"] == 344].iloc[0]
    assert (long["TUMOR_TYPE"], long["DOSE"], long["BEST_RESPONSE"]) == ("fibrosarcoma", 20.0, "SD")
    assert eff["TUMOR_TYPE"].value_counts()["breast cancer"] == 10


def test_bad_event_tables_are_clear_errors():
    ids = [1, 2, 3]
    good = pd.DataFrame({"ID": [1, 2, 3], "T": [10.0, 20.0, np.nan], "E": [1, 0, np.nan]})
    idx, t, e, _ = event_table(good, ids, time="T", event="E")
    assert idx.tolist() == [0, 1] and t.tolist() == [10.0, 20.0] and e.tolist() == [1.0, 0.0]
    cases = [
        (good.assign(T=[10.0, -1.0, np.nan]), "rows [3] are not positive"),
        (good.assign(ID=[1, 2, 9]), "IDs not in the fit"),
        (good.assign(E=[1, np.nan, np.nan]), "rows [3] have a time but no 0/1 flag"),
        (good.assign(E=[1, 2, np.nan]), "rows [3] have a time but no 0/1 flag"),
        (good.drop(columns="E"), "no column 'E'"),
        (good.assign(ID=[1, 1, 3]), "repeat an ID"),
    ]
    for table, text in cases:
        with pytest.raises(EfficacyError, match=text.replace("[", r"\[").replace("]", r"\]")):
            event_table(table, ids, time="T", event="E")


def test_weibull_model_recovers_a_known_hazard_ratio():
    """200 patients, exposures log-normal (z = log2 exposure ratio, SD 1), Weibull k = 1.3, scale 100 days,
    HR per doubling 0.6, uniform censoring on [50, 400] days; each exposure known up to a posterior spread
    (30 draws, SD 0.15 in z). The 90% interval of the HR covers 0.6; the shape and scale theirs."""
    rng = np.random.default_rng(3)
    n, k, lam, beta = 200, 1.3, 100.0, np.log(0.6)
    z = rng.normal(0.0, 1.0, n)
    t = simulate_times("weibull", rng, z, np.log(lam), np.log(k), beta)
    cens = rng.uniform(50, 400, n)
    time, event = np.minimum(t, cens), (t <= cens).astype(int)
    draws = z[:, None] + rng.normal(0.0, 0.15, (n, 30))
    post, diag = sample_survival_model(time, event, draws, model="weibull", chains=2, warmup=400, samples=400, seed=1)
    assert diag["divergences"] == 0 and diag["max_r_hat"] < 1.02
    for name, truth in (("beta", beta), ("log_shape", np.log(k)), ("log_scale", np.log(lam))):
        lo, hi = np.quantile(post[name], [0.05, 0.95])
        assert lo <= truth <= hi, (name, lo, hi, truth)


def test_logrank_detects_separated_groups_and_not_identical_ones():
    """Two groups of 60 from exponentials with mean 10 and 30 days: log-rank p < 0.001; two groups from
    the same distribution: p > 0.05 (seeded)."""
    rng = np.random.default_rng(0)
    a, b, c = rng.exponential(10, 60), rng.exponential(30, 60), rng.exponential(10, 60)
    ones = np.ones(120, int)
    assert logrank(np.r_[a, b], ones, ["a"] * 60 + ["b"] * 60) < 1e-3
    assert logrank(np.r_[a, c], ones, ["a"] * 60 + ["c"] * 60) > 0.05


def _theo_events(ids):
    times = [30.0, 60.0, 90.0, 30.0, 45.0, 200.0, 80.0, 20.0, 150.0, 60.0, 40.0, np.nan]
    return pd.DataFrame({"ID": ids, "PFS_DAYS": times, "PFS_EVENT": [1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, np.nan],
                         "DC": [1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, np.nan]})


@pytest.mark.slow  # a survival fit, its VPC and a response fit from the CLI (about 90 s); .ci/run's slow step
def test_efficacy_cli_writes_survival_km_vpc_and_response(theo_quick_fit, tmp_path, cli):
    """``poppk efficacy`` as a user runs it: 11 evaluable patients (one without a time is left out), the
    survival model's folder (reloadable), KM by tertile, the VPC and a disease-control model."""
    fit = poppk.load_fit(theo_quick_fit)
    path = tmp_path / "events.csv"
    _theo_events(list(fit.data.ids)).to_csv(path, index=False)
    out = tmp_path / "eff"
    res = cli("efficacy", str(theo_quick_fit), "--events", str(path), "--response", "DC", "--interval", "12",
              "--chains", "2", "--metric", "AUCtau_ss", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "11 evaluable patients" in res.stdout and "hazard ratio per doubling" in res.stdout
    from poppk.efficacy import SurvivalResult

    loaded = SurvivalResult.load(out / "survival")
    assert len(loaded.patients) == 11 and loaded.metric == "AUCtau_ss"
    km = pd.read_csv(out / "km_by_tertile.csv")
    assert set(km["group"]) == {"low", "middle", "high"}
    vpc = pd.read_csv(out / "survival_vpc.csv")
    assert (vpc["lo"] <= vpc["hi"]).all() and vpc["observed"].iloc[0] == 1.0
    assert (out / "efficacy.png").stat().st_size > 10_000 and (out / "DC" / "tox.json").exists()


def test_efficacy_cli_refuses_bad_event_tables(theo_quick_fit, tmp_path, cli):
    """Bad tables give exit status 2 with the row named and no traceback (before any sampling)."""
    fit = poppk.load_fit(theo_quick_fit)
    events = _theo_events(list(fit.data.ids))
    path = tmp_path / "events.csv"
    for change, text in ((dict(PFS_DAYS=-5.0), "column PFS_DAYS: rows [2]"), (dict(PFS_EVENT=np.nan), "rows [2] have a time"),
                         (dict(ID=999), "IDs not in the fit")):
        bad = events.copy()
        for k, v in change.items():
            bad.loc[0, k] = v
        bad.to_csv(path, index=False)
        res = cli("efficacy", str(theo_quick_fit), "--events", str(path), "--chains", "1", "--out", str(tmp_path / "x"))
        assert res.returncode == 2, res.stderr[-2000:]
        assert text in res.stderr and "Traceback" not in res.stderr


def test_survival_result_quantities_are_consistent():
    """Closed-form medians: Weibull PH median = lam (ln 2 e^{-b z})^{1/k}; the numerical median of a population
    of one exposure equals it; S(median) = 0.5."""
    from poppk.efficacy import SurvivalResult

    draws = {"log_scale": np.log([50.0, 80.0]), "log_shape": np.log([1.2, 0.9]), "beta": np.log([0.7, 1.1])}
    res = SurvivalResult("PFS", "weibull", "AUCtau_ss", "h*mg/L", 10.0, "days", draws, pd.DataFrame())
    m = res.median_time(20.0)  # z = 1
    want = np.exp(draws["log_scale"]) * (np.log(2) * np.exp(-draws["beta"])) ** (1 / np.exp(draws["log_shape"]))
    np.testing.assert_allclose(m, want, rtol=1e-12)
    np.testing.assert_allclose(res.median_time(np.array([20.0, 20.0])), want, rtol=1e-8)
    s = res.survival(m, 20.0)
    np.testing.assert_allclose(np.diag(s), 0.5, rtol=1e-10)
    assert res.ratio_per_doubling()["name"] == "hazard ratio"


@pytest.mark.slow  # 60 refitted trials, about 5 minutes; run in .ci/run's slow step
def test_detection_power_grows_with_the_trial_and_holds_its_level_without_an_effect():
    """A Weibull trial (shape 1, scale 60 days, exposures spanning 4 doublings, nearly all patients followed
    to an event): with no effect (ratio 1) the 90% interval excludes 1 in about 10% of trials (its nominal
    false-positive rate: 4 of 40 on 2026-12-02, seed 11); a hazard ratio of 0.8 per doubling is detected in
    nearly every trial of 200 patients (SE of log HR about 0.06: z = 3.6) and in a minority of trials of 20
    (SE about 0.19: z = 1.2), as a normal approximation of the log HR's estimate predicts. Seeded."""
    from poppk.efficacy import SurvivalResult, detection_power

    rng = np.random.default_rng(5)
    patients = pd.DataFrame({"time": rng.uniform(10, 300, 40), "event": np.r_[np.ones(36, int), np.zeros(4, int)],
                             "exposure_median": 2.0 ** rng.uniform(-2, 2, 40)})
    patients.loc[patients["event"] == 0, "time"] = 300.0
    draws = {"log_scale": np.full(10, np.log(60.0)), "log_shape": np.zeros(10), "beta": np.zeros(10)}
    res = SurvivalResult("PFS", "weibull", "AUCtau_ss", "", 1.0, "days", draws, patients)
    null = detection_power(res, 1.0, n_patients=20, n_trials=40, seed=11)
    assert null["power"] <= 0.25 and null["lo"] <= 0.10 <= null["hi"], null
    small = detection_power(res, 0.8, n_patients=20, n_trials=10, seed=1)
    large = detection_power(res, 0.8, n_patients=200, n_trials=10, seed=1)
    assert large["power"] >= 0.8 and small["power"] <= 0.7, (small["power"], large["power"])
