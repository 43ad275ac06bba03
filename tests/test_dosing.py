"""PK-guided dosing.

Expected values: a subject of the fitted data has a posterior in the population
fit itself (NUTS, all subjects jointly); the patient-posterior machinery,
given that subject's records, must agree with it. Dose individualisation is
judged on virtual patients whose true parameters are known (drawn from the
fit), against fixed dosing at every strength.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk.dosing import choose, patient_posterior, recommend_dose, virtual_trial
from poppk.errors import PoppkError
from poppk.simulate import Target


def _subject(fit, sid):
    frame = fit.data.to_frame()
    return poppk.from_frame(frame[frame.ID == sid], dose_unit=fit.data.dose_unit, conc_unit=fit.data.conc_unit,
                            warn=False)


@pytest.mark.parametrize("method", ["full", "map"])
def test_patient_posterior_agrees_with_the_population_fit(theo_quick_fit, method):
    fit = poppk.load_fit(theo_quick_fit)
    ind = fit.individual().set_index("ID")
    for sid in (1, 7):
        post = patient_posterior(fit, _subject(fit, sid), method=method, n_draws=2000)
        for p in ("CL", "V", "KA"):
            assert np.median(post.params[p]) == pytest.approx(ind.loc[sid, p], rel=0.15), (sid, p)
        if method == "full":
            assert post.ess > 100
            lo, hi = np.quantile(post.params["CL"], [0.05, 0.95])
            # Same width of the 90% interval as NUTS within 40% (importance sampling, 2,000 draws).
            assert (hi - lo) == pytest.approx(ind.loc[sid, "CL_q95"] - ind.loc[sid, "CL_q5"], rel=0.4)


def test_choose_rules():
    table = pd.DataFrame({"regimen": ["a", "b", "c"], "dose": [100.0, 200.0, 300.0], "interval_h": 12.0,
                          "p_target": [0.5, 0.8, 0.8], "p_tox": [0.1, 0.3, 0.5]})
    assert choose(table)[0] == 1  # tie on P(target): the lower dose
    assert choose(table, max_tox_prob=0.2)[0] == 0
    best, why = choose(table, max_tox_prob=0.05)
    assert best is None and "no candidate" in why
    with pytest.raises(PoppkError, match="exposure-toxicity model"):
        choose(table.assign(p_tox=np.nan), max_tox_prob=0.2)


def test_recommendation_follows_the_patients_clearance(theo_quick_fit):
    """The subject with the highest posterior CL gets at least the dose of the one with the lowest."""
    fit = poppk.load_fit(theo_quick_fit)
    ind = fit.individual().set_index("ID")
    target = Target.parse("AUCss=90:140")
    doses = [100, 200, 300, 400, 500, 600, 800]
    lo_id, hi_id = ind["CL"].idxmin(), ind["CL"].idxmax()
    recs = {sid: recommend_dose(fit, patient_posterior(fit, _subject(fit, sid), method="map"), target, doses=doses)
            for sid in (lo_id, hi_id)}
    dose = {sid: float(r.table.loc[r.table.recommended, "dose"].iloc[0]) for sid, r in recs.items()}
    assert dose[hi_id] > dose[lo_id]
    for r in recs.values():
        assert r.table["p_target"].max() == r.table.loc[r.table.recommended, "p_target"].iloc[0]


def test_guided_dosing_beats_every_fixed_dose_on_virtual_patients(theo_quick_fit):
    fit = poppk.load_fit(theo_quick_fit)
    target = Target.parse("AUCss=90:140")
    table = virtual_trial(fit, target, doses=[100, 200, 300, 400, 500, 600, 800], start_dose=300, interval=12,
                          n=300, trough_day=2, seed=5).set_index("arm")
    guided = table.loc["PK-guided", "in_target"]
    best_fixed = table.drop(index="PK-guided")["in_target"].max()
    assert guided > best_fixed + 0.05, table


def test_dose_cli(theo_quick_fit, tmp_path, cli):
    fit = poppk.load_fit(theo_quick_fit)
    patient = tmp_path / "patient.csv"
    fit.data.to_frame().query("ID == 3").to_csv(patient, index=False)
    out = tmp_path / "dosing"
    res = cli("dose", str(theo_quick_fit), "--patient", str(patient), "--target", "AUCss=90:140",
              "--doses", "100,200,300,400,600", "--method", "map", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "recommended:" in res.stdout
    table = pd.read_csv(out / "dose_options.csv")
    assert table["recommended"].sum() == 1 and (out / "dose_options.png").stat().st_size > 0
    both = tmp_path / "two.csv"
    fit.data.to_frame().query("ID in (3, 4)").to_csv(both, index=False)
    for args, words in (
        (["--patient", str(both), "--target", "AUCss=90:140"], "one subject"),
        (["--patient", str(patient), "--target", "AUCss=140:90"], "lower bound"),
        (["--patient", str(patient), "--target", "AUCss=90:140", "--max-tox-prob", "0.3"], "--tox"),
        (["--patient", str(patient), "--target", "AUCss=90:140", "--doses", "100,abc"], "--doses"),
        (["--target", "AUCss=90:140"], "--patient"),
    ):
        bad = cli("dose", str(theo_quick_fit), *args)
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
