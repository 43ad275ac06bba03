"""Benefit-risk dose selection and efficacy in the virtual trial.

References: scipy.stats' Weibull (``weibull_min``) and log-logistic (``fisk``) survival functions with
scipy's ``brentq`` for the population median (the time at which the mean survival of the patients is 0.5);
hand-computed expit(a + b log(x / ref)) event rates and window shares for the benefit-risk table on a
simulation written out by hand; and the exposure-response models' own definitions (an exposure effect of
0 gives every arm the same response rate, a positive one a higher rate at higher doses).
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import poppk
from poppk.efficacy import BenefitRisk, SurvivalResult, Utility, benefit_risk
from poppk.errors import EfficacyError
from poppk.simulate import RegimenSimulation, Target, parse_regimen
from poppk.tox import ExposureResponse, floor_exposure


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _er(event, intercept, slope, reference=4.0, floor=0.5, metric="Cav_ss"):
    return ExposureResponse(event, metric, "mg/L", reference, 1, "logistic",
                            {"intercept": np.asarray(intercept, float), "slope": np.asarray(slope, float)},
                            pd.DataFrame({"exposure_lo": [floor, 2 * floor]}),
                            pd.DataFrame({"exposure": [reference], "p_median": [0.5], "p_lo": [0.4], "p_hi": [0.6]}))


@pytest.mark.parametrize("model", ["weibull", "loglogistic"])
def test_population_median_against_scipy(model):
    """Each draw's population median solves mean_i S(t | x_i) = 0.5 with S from scipy.stats (PH Weibull:
    scale lam exp(-b z / k); AFT log-logistic: scale lam exp(b z)), found by brentq; draw s uses the
    patients of replicate s % R."""
    rng = np.random.default_rng(3)
    S = 12
    draws = {"log_scale": rng.normal(np.log(60), 0.3, S), "log_shape": rng.normal(0, 0.3, S),
             "beta": rng.normal(-0.2, 0.2, S)}
    res = SurvivalResult("PFS", model, "Cmin_ss", "ng/mL", 10.0, "days", draws, pd.DataFrame())
    x = 10.0 * 2.0 ** rng.uniform(-3, 3, 9)
    reps = np.arange(9) % 3
    got = res.population_median(x, reps)
    for s in range(S):
        xs = x[reps == s % 3]
        z = np.log2(xs / 10.0)
        lam, k, b = np.exp(draws["log_scale"][s]), np.exp(draws["log_shape"][s]), draws["beta"][s]
        if model == "weibull":
            def surv(t):
                return stats.weibull_min.sf(t, k, scale=lam * np.exp(-b * z / k)).mean()
        else:
            def surv(t):
                return stats.fisk.sf(t, k, scale=lam * np.exp(b * z)).mean()
        want = optimize.brentq(lambda t: surv(t) - 0.5, 1e-6, 1e6, xtol=1e-12)
        assert got[s] == pytest.approx(want, rel=1e-9)


def test_exposures_below_the_fitted_range_are_floored():
    """A trough that underflowed to 0 would have log exposure -inf: the rate and the median stay finite and
    equal those at the floor (the smallest patient 5th percentile)."""
    er = _er("TOX", [0.0, 0.5], [1.0, -1.0], floor=0.5)
    np.testing.assert_array_equal(floor_exposure([0.0, 0.2, 3.0], er.patients), [0.5, 0.5, 3.0])
    np.testing.assert_allclose(er.rate([0.0]), er.rate([0.5]))
    surv = SurvivalResult("PFS", "weibull", "Cav_ss", "mg/L", 4.0, "days",
                          {"log_scale": np.log([50.0]), "log_shape": [0.0], "beta": [-0.5]},
                          pd.DataFrame({"exposure_lo": [0.5], "exposure_median": [1.0]}))
    assert np.isfinite(surv.population_median([0.0, 1.0])).all()
    assert surv.population_median([0.0])[0] == pytest.approx(surv.median_time(0.5)[0], rel=1e-10)


def _hand_simulation():
    regs = (parse_regimen("10 mg q12h x 28 d"), parse_regimen("20 mg q12h x 28 d"))
    x = {regs[0].label: [1.0, 3.0, 5.0, 1.5], regs[1].label: [2.0, 6.0, 10.0, 3.0]}
    rows = [{"regimen": label, "patient": i, "replicate": i % 2, "Cav_ss": v}
            for label, vals in x.items() for i, v in enumerate(vals)]
    return RegimenSimulation(pd.DataFrame(rows), pd.DataFrame(), regs, "mg/L"), x, regs


def test_benefit_risk_table_by_hand():
    """Two regimens, four patients in two PK replicates, two draws of each model: P(target) per replicate,
    the rates expit(a_s + b_s log(x / 4)) over replicate s % 2, the utility draw by draw and its choice."""
    sim, x, regs = _hand_simulation()
    target = Target.parse("Cav_ss=2:6")
    tox = _er("ALT", [-1.0, -0.5], [1.0, 1.5])
    resp = _er("DC", [0.0, 0.2], [0.5, 0.0])
    u = Utility.parse("target=1,response=1,tox=-1")
    br = benefit_risk(None, sim=sim, target=target, tox=tox, response=resp, utility=u)
    assert isinstance(br, BenefitRisk)
    t = br.table.set_index("regimen")
    for reg in regs:
        v = np.asarray(x[reg.label])
        reps = np.arange(4) % 2
        in_t = [((v[reps == r] >= 2) & (v[reps == r] <= 6)).mean() for r in (0, 1)]
        p_tox = [_expit(a + b * np.log(v[reps == s] / 4.0)).mean() for s, (a, b) in enumerate(zip([-1.0, -0.5], [1.0, 1.5]))]
        p_dc = [_expit(a + b * np.log(v[reps == s] / 4.0)).mean() for s, (a, b) in enumerate(zip([0.0, 0.2], [0.5, 0.0]))]
        util = np.array(in_t) + np.array(p_dc) - np.array(p_tox)
        row = t.loc[reg.label]
        assert row["p_target"] == pytest.approx(np.median(in_t))
        assert row["p_tox"] == pytest.approx(np.median(p_tox))
        assert row["p_response"] == pytest.approx(np.median(p_dc))
        assert row["utility"] == pytest.approx(np.median(util))
        assert row["daily_dose"] == pytest.approx(reg.first_amount * 2)
    best = t["utility"].idxmax()
    assert br.recommended == best and t.loc[best, "recommended"]
    assert t["p_best"].sum() == pytest.approx(1.0)

    # A limit no regimen meets: no recommendation, and the reason says which limit.
    none = benefit_risk(None, sim=sim, tox=tox, utility=Utility.parse("tox=-1", max_tox=0.01))
    assert none.recommended is None and "P(tox) <= 0.01" in none.reason and not none.table["feasible"].any()
    # Without weights: the table, unranked.
    plain = benefit_risk(None, sim=sim, target=target)
    assert plain.recommended is None and not plain.table["recommended"].any()


def test_utility_and_benefit_risk_refuse_what_they_cannot_use():
    sim, _, _ = _hand_simulation()
    for text, msg in (("efficacy=1", "NAME=WEIGHT"), ("tox", "NAME=WEIGHT"), ("tox=-1,tox=-2", "given twice"),
                      ("tox=lots", "not a number")):
        with pytest.raises(EfficacyError, match=msg):
            Utility.parse(text)
    with pytest.raises(EfficacyError, match="between 0 and 1"):
        Utility.parse("tox=-1", max_tox=30)
    with pytest.raises(EfficacyError, match="weighs response"):
        benefit_risk(None, sim=sim, target=Target.parse("Cav_ss=2:6"), utility=Utility.parse("response=1"))
    with pytest.raises(EfficacyError, match="at least one"):
        benefit_risk(None, sim=sim)
    with pytest.raises(EfficacyError, match="'AUCtau_ss' is not among"):
        benefit_risk(None, sim=sim.__class__(sim.exposures.drop(columns="Cav_ss").assign(Cmax_ss=1.0), sim.bands,
                                             sim.regimens, "mg/L"), tox=_er("ALT", [0.0], [1.0], metric="AUCtau_ss"))


def test_virtual_trial_reports_efficacy_beside_exposure(theo_quick_fit):
    """With a null response model every arm has the same response rate; with a positive exposure effect the
    highest fixed dose has the highest rate; the survival model adds each arm's median time."""
    fit = poppk.load_fit(theo_quick_fit)
    from poppk.dosing import virtual_trial

    kw = dict(doses=[160, 320, 640], start_dose=320, interval=12, n=20, trough_day=3, n_pop=10, per_draw=10)
    surv = SurvivalResult("PFS", "exponential", "AUCtau_ss", "h*mg/L", 100.0, "days",
                          {"log_scale": np.log([60.0, 70.0]), "log_shape": [0.0, 0.0], "beta": [-0.3, -0.2]},
                          pd.DataFrame({"exposure_lo": [1.0]}))
    null = _er("DC", [0.0, 0.1], [0.0, 0.0], reference=100.0, floor=1.0, metric="AUCtau_ss")
    trial = virtual_trial(fit, Target.parse("Cminss=3:8"), response=null, survival=surv, **kw)
    assert np.ptp(trial["response_rate"]) == pytest.approx(0.0, abs=1e-12)
    fixed = trial.set_index("arm")
    assert fixed.loc["640 mg q12h", "pfs_median"] > fixed.loc["160 mg q12h", "pfs_median"]  # HR < 1
    rising = _er("DC", [0.0, 0.1], [1.0, 0.8], reference=100.0, floor=1.0, metric="AUCtau_ss")
    t2 = virtual_trial(fit, Target.parse("Cminss=3:8"), response=rising, **kw).set_index("arm")
    assert t2.loc["640 mg q12h", "response_rate"] > t2.loc["320 mg q12h", "response_rate"] > \
        t2.loc["160 mg q12h", "response_rate"]
    assert "pfs_median" not in t2.columns


def test_benefit_risk_cli(theo_quick_fit, tmp_path, cli):
    """``poppk benefit-risk`` as a user runs it: saved tox and efficacy models found in the fit folder, the
    table written and a recommendation under the stated utility; a bad utility, a model that was never made
    and no candidates are exit status 2 with the fix named and no traceback."""
    folder = tmp_path / "fit"
    shutil.copytree(theo_quick_fit, folder)
    fit = poppk.load_fit(folder)
    _er("NAUSEA", [-1.0, -0.8], [1.0, 1.2], reference=100.0, metric="AUCtau_ss").save(folder / "tox" / "NAUSEA")
    SurvivalResult("PFS", "weibull", "AUCtau_ss", "h*mg/L", 100.0, "days",
                   {"log_scale": np.log([60.0, 70.0]), "log_shape": [0.1, 0.0], "beta": [-0.1, 0.0]},
                   pd.DataFrame({"ID": fit.data.ids[:2], "time": [1.0, 2.0], "event": [1, 0],
                                 "exposure_median": [90.0, 110.0], "exposure_lo": [80.0, 100.0],
                                 "exposure_hi": [100.0, 120.0], "tertile": ["low", "high"]})).save(
        folder / "efficacy" / "survival")
    res = cli("benefit-risk", str(folder), "--doses", "160,320,640", "--interval", "12", "--days", "7",
              "--target", "Cminss=3:8", "--tox", "NAUSEA", "--survival", "--utility", "target=1,tox=-1,pfs=0.001",
              "--max-tox-prob", "0.9", "--n", "200")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "recommended: " in res.stdout and "utility" in res.stdout
    table = pd.read_csv(folder / "benefit_risk" / "benefit_risk.csv")
    assert list(table["regimen"]) == ["160 mg q12h", "320 mg q12h", "640 mg q12h"]
    assert table["recommended"].sum() == 1 and (table["p_tox_lo"] <= table["p_tox_hi"]).all()
    assert table["p_tox"].is_monotonic_increasing  # positive slopes: more drug, more nausea

    for args, msg in ((["--doses", "160", "--tox", "NAUSEA", "--utility", "tox=-1,benefit=2"], "NAME=WEIGHT"),
                      (["--doses", "160", "--response", "DC", "--utility", "response=1"], "poppk efficacy"),
                      (["--tox", "NAUSEA"], "give the candidates")):
        bad = cli("benefit-risk", str(folder), *args, "--n", "50")
        assert bad.returncode == 2 and msg in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]
