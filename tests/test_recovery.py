"""Recovery on the bundled trial (slow: about 15 minutes on 2 cores; run with -m slow).

Truth: ``lxi15029_truth.json``, the parameters and the adverse-event model that generated the data.
Settings: 4 chains x (500 warmup + 500 draws), poppk's defaults otherwise (the Michaelis-Menten fit
with its warm start: Laplace approximation at the mode, dense metric; see poppk/fit/_warmstart.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import poppk
from poppk.compare import compare_fits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    data = poppk.datasets.load("lxi15029")
    out = tmp_path_factory.mktemp("recovery")
    folders = []
    for name in ("oral1cmt", "oral1cmt_mm"):
        f = poppk.fit(data, name, chains=4, warmup=500, samples=500, progress=False)
        assert f.diagnostics()["divergences"] == 0
        folders.append(f.save(out / name))
    return folders


def test_mm_model_recovers_the_generating_parameters(fits):
    truth = poppk.datasets.load("lxi15029_truth")
    summary = poppk.load_fit(fits[1]).summary().set_index("parameter")
    expected = dict(truth["typical"])
    expected.update({f"omega_{k}": v for k, v in truth["omega"].items()})
    expected["sigma_log"] = truth["sigma"]["sigma_log"]
    missed = {k: (v, summary.loc[k, "q5"], summary.loc[k, "q95"]) for k, v in expected.items()
              if not summary.loc[k, "q5"] <= v <= summary.loc[k, "q95"]}
    assert not missed, f"truth outside the 90% interval: {missed}"


def test_linear_model_is_clearly_worse_by_loo(fits):
    table, _ = compare_fits(fits)
    assert table.iloc[0]["model"] == "oral1cmt_mm"
    worse = table.set_index("model").loc["oral1cmt"]
    assert worse["elpd_diff"] > 4 * worse["dse"]


def test_exposure_toxicity_recovers_the_generating_coefficients(fits):
    """The generating logistic model of ALT increase (truth: intercept and slope in log AUCss/5000)
    lies inside the 90% credible intervals of the fitted one (intercept compared at the fitted
    reference exposure). Not the whole curve: the bundled AE draw has 9 events where the generating
    curve expects 5.3 (P(>= 9) = 0.055), so at high exposure the fitted curve is above the truth's."""
    from poppk.tox import fit_exposure_response

    truth = poppk.datasets.load("lxi15029_truth")["adverse_events"]
    coef = truth["logistic"]["ALT_increased"]
    fit = poppk.load_fit(fits[1])
    res = fit_exposure_response(fit, poppk.datasets.load("lxi15029_ae"), "ALT_increased", chains=2)
    lo, hi = np.quantile(res.draws["slope"], [0.05, 0.95])
    assert lo <= coef["slope_log_auc"] <= hi
    true_intercept = coef["intercept"] + coef["slope_log_auc"] * np.log(res.reference / truth["reference"])
    lo, hi = np.quantile(res.draws["intercept"], [0.05, 0.95])
    assert lo <= true_intercept <= hi
