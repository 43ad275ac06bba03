"""Recovery on the bundled trial (slow: about 40 minutes on 2 cores; run with -m slow).

Truth: ``lxi15029_truth.json``, the parameters and the adverse-event model that generated the data.
Settings: 2 chains x (300 warmup + 300 draws); the Michaelis-Menten fit with trees capped at depth 8
(it otherwise asks for 500-1,000 leapfrog steps per draw; capped, its draws still mix: bulk ESS
about 0.5-1 per draw).
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
    for name, kw in (("oral1cmt", {}), ("oral1cmt_mm", {"max_tree_depth": 8})):
        f = poppk.fit(data, name, chains=2, warmup=300, samples=300, progress=False, **kw)
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


def test_exposure_toxicity_recovers_the_generating_curve(fits):
    from poppk.exposure import fit_exposure_response

    truth = poppk.datasets.load("lxi15029_truth")["adverse_events"]
    coef = truth["logistic"]["ALT_increased"]
    fit = poppk.load_fit(fits[1])
    res = fit_exposure_response(fit, poppk.datasets.load("lxi15029_ae"), "ALT_increased", chains=2)
    x = np.geomspace(*np.quantile(res.patients["exposure_median"], [0.05, 0.95]), 20)
    p_true = 1 / (1 + np.exp(-(coef["intercept"] + coef["slope_log_auc"] * np.log(x / truth["reference"]))))
    band = np.quantile(res.probability(x), [0.05, 0.95], axis=0)
    assert ((band[0] <= p_true) & (p_true <= band[1])).all()
    lo, hi = np.quantile(res.draws["slope"], [0.05, 0.95])
    assert lo <= coef["slope_log_auc"] <= hi
