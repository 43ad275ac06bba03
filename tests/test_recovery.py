"""Recovery on the bundled trial (slow: about 20-30 minutes on 2 cores; run with -m slow).

Truth: ``lxi15029_truth.json``, the parameters that generated the data.
"""

from __future__ import annotations

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
