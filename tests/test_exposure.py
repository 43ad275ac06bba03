"""Exposure-toxicity models.

Expected values: adverse events simulated here from a stated logistic /
ordered-logistic model (the truth is the generating coefficients), and the
bundled trial's generating relationship in ``lxi15029_truth.json`` (slow test in
``test_recovery.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk.errors import PoppkError
from poppk.simulate import patient_exposure
from poppk.tox import ExposureResponse, fit_exposure_response, sample_event_model


def _expit(x):
    return 1 / (1 + np.exp(-x))


def test_logistic_model_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    n, a, b = 400, -1.0, 1.2
    true_logx = rng.normal(0, 1, n)
    y = rng.random(n) < _expit(a + b * true_logx)
    # Each patient's exposure known up to a small posterior spread (K = 50 draws).
    draws = true_logx[:, None] + rng.normal(0, 0.1, (n, 50))
    post, diag = sample_event_model(draws, y.astype(int), chains=2, warmup=400, samples=400, seed=1)
    assert diag["divergences"] == 0 and diag["max_r_hat"] < 1.02
    for name, truth in (("intercept", a), ("slope", b)):
        lo, hi = np.quantile(post[name], [0.05, 0.95])
        assert lo <= truth <= hi, (name, lo, hi)


def test_ordinal_model_recovers_known_coefficients():
    rng = np.random.default_rng(2)
    n, b, cut = 600, 1.0, np.array([-0.5, 1.5])
    logx = rng.normal(0, 1, n)
    u = rng.random(n)
    p_ge1, p_ge2 = _expit(b * logx - cut[0]), _expit(b * logx - cut[1])
    grade = (u < p_ge1).astype(int) + (u < p_ge2).astype(int)
    post, _ = sample_event_model(logx[:, None], grade, model="ordinal", chains=2, warmup=400, samples=400, seed=3)
    lo, hi = np.quantile(post["slope"], [0.05, 0.95])
    assert lo <= b <= hi
    for j in range(2):
        lo, hi = np.quantile(post["cutpoints"][:, j], [0.05, 0.95])
        assert lo <= cut[j] <= hi


def _ae_table(fit, seed=0):
    """Events generated from each subject's posterior median AUC: more events at higher exposure."""
    x = np.median(patient_exposure(fit, "AUCss", n_draws=50, interval=12), axis=1)
    rng = np.random.default_rng(seed)
    y = rng.random(x.size) < _expit(-0.5 + 3.0 * np.log(x / np.median(x)))
    grade = np.where(y, rng.choice([1, 2], size=x.size), 0)
    return pd.DataFrame({"ID": list(fit.data.ids), "NAUSEA": grade, "OTHER": 0})


def test_exposure_response_on_a_fit(theo_quick_fit, tmp_path):
    fit = poppk.load_fit(theo_quick_fit)
    with pytest.raises(PoppkError, match="single dose"):
        patient_exposure(fit, "AUCss", n_draws=10)
    x = patient_exposure(fit, "AUCss", n_draws=100, interval=12)
    # Each subject's dose every 12 h at steady state: AUCtau,ss = F D / CL (linear kinetics), per posterior draw.
    d = {k: v.T for k, v in fit.individual_draws(100, 0).items()}
    amt = np.asarray(fit.data.doses.amt)[:, :1]
    np.testing.assert_allclose(x, amt / d["CL"], rtol=1e-8)
    ae = _ae_table(fit)
    res = fit_exposure_response(fit, ae, "NAUSEA", chains=2, warmup=300, samples=300, interval=12)
    assert set(res.curve.columns) == {"exposure", "p_median", "p_lo", "p_hi"}
    assert (np.diff(res.curve.p_median) >= -1e-12).all() or (np.diff(res.curve.p_median) <= 1e-12).all()
    assert list(res.patients.ID) == list(fit.data.ids)
    folder = res.save(tmp_path / "tox")
    from poppk.plots import figure_exposure_response, save_figure

    save_figure(figure_exposure_response(res), folder / "exposure_response.png")  # drawing is plots' job
    again = ExposureResponse.load(folder)
    np.testing.assert_allclose(again.probability([50.0, 150.0]), res.probability([50.0, 150.0]))
    assert (folder / "exposure_response.png").stat().st_size > 0


def test_bad_adverse_event_tables_are_named(theo_quick_fit):
    fit = poppk.load_fit(theo_quick_fit)
    ae = _ae_table(fit)
    with pytest.raises(PoppkError, match="no column 'RASH'"):
        fit_exposure_response(fit, ae, "RASH", interval=12)
    with pytest.raises(PoppkError, match="lacks fitted subject"):
        fit_exposure_response(fit, ae.iloc[1:], "NAUSEA", interval=12)
    bad = ae.copy()
    bad = bad.astype({"NAUSEA": float})
    bad.loc[3, "NAUSEA"] = 1.5
    with pytest.raises(PoppkError, match=r"rows \[5\] are not grades"):
        fit_exposure_response(fit, bad, "NAUSEA", interval=12)
    with pytest.raises(PoppkError, match="ordinal model needs at least two grades"):
        fit_exposure_response(fit, ae.assign(NAUSEA=(ae.NAUSEA > 0).astype(int)), "NAUSEA", model="ordinal", interval=12)
    with pytest.raises(PoppkError, match="unknown exposure metric"):
        fit_exposure_response(fit, ae, "NAUSEA", metric="AUMC", interval=12)


def test_tox_cli(theo_quick_fit, tmp_path, cli):
    fit = poppk.load_fit(theo_quick_fit)
    ae_file = tmp_path / "ae.csv"
    _ae_table(fit).to_csv(ae_file, index=False)
    out = tmp_path / "tox"
    res = cli("tox", str(theo_quick_fit), "--ae", str(ae_file), "--event", "NAUSEA", "--chains", "2", "--interval", "12",
              "--regimen", "160 mg q12h x 7 d", "--regimen", "320 mg q12h x 7 d", "--n", "400", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    risk = pd.read_csv(out / "regimens.csv")
    assert list(risk.regimen) == ["160 mg q12h x 7 d", "320 mg q12h x 7 d"]
    assert (risk.p_lo <= risk.p_event).all() and (risk.p_event <= risk.p_hi).all()
    bad = cli("tox", str(theo_quick_fit), "--ae", str(ae_file), "--event", "RASH")
    assert bad.returncode == 2 and "no column 'RASH'" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("tox", str(theo_quick_fit), "--ae", str(tmp_path / "missing.csv"), "--event", "NAUSEA")
    assert bad.returncode == 2 and "cannot read" in bad.stderr
