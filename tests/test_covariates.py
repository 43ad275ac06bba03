"""Covariate models as written in the literature (issue 26, first part).

Expected values are computed by hand from each effect's formula (``poppk.model.Covariate``'s
docstring, the usual NONMEM ``$PK`` forms), never by poppk's own code.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk.errors import ModelSpecError, SimulationError
from poppk.model import build_model, individual_parameters, parse_spec

# The phenobarbital neonatal model (Grasela and Donn, Dev Pharmacol Ther 1985; the NONMEM example
# "pheno" that Pharmpy ships as pheno_real.mod): TVCL = THETA1 * WT, TVV = THETA2 * WT,
# IF (APGR < 5) TVV = TVV * (1 + THETA3). In poppk's form: a power effect of WT with reference 1 and
# exponent fixed at 1, and a threshold category whose ratio exp(beta) is 1 + THETA3.
PHENO = """
[model]
kernel = "iv1cmt"
[parameters]
CL = { median = 0.0047, sd_log = 1 }
V = { median = 1.0, sd_log = 1 }
[iiv]
parameters = ["CL", "V"]
[[covariates]]
parameter = "CL"
covariate = "WT"
kind = "power"
reference = 1
fixed = 1.0
[[covariates]]
parameter = "V"
covariate = "WT"
kind = "power"
reference = 1
fixed = 1.0
name = "V_WT"
[[covariates]]
parameter = "V"
covariate = "APGR < 5"
kind = "categorical"
effect = { mean = 0.0, sd = 0.5 }
[error]
model = "proportional"
"""


def _frame(cov: dict[str, list], n_obs: int = 2) -> pd.DataFrame:
    """One bolus of 10 mg at 0 and observations at 1, 2, ... h per subject, with per-subject covariates."""
    rows = []
    for i in range(len(next(iter(cov.values())))):
        extra = {k: v[i] for k, v in cov.items()}
        rows.append({"ID": i + 1, "TIME": 0.0, "AMT": 10.0, "DV": ".", "EVID": 1, "CMT": 1, **extra})
        for t in range(1, n_obs + 1):
            rows.append({"ID": i + 1, "TIME": float(t), "AMT": 0.0, "DV": 1.0, "EVID": 0, "CMT": 1, **extra})
    return pd.DataFrame(rows)


def _typical(spec, data, values):
    built = build_model(spec, data)
    n = data.n_subjects
    eta = np.zeros((n, len(spec.iiv.parameters)))
    ind = individual_parameters(spec, built.levels, values, built.kwargs["covariates"], eta, n)
    return {k: np.asarray(v) for k, v in ind.items()}, built


def test_pheno_allometric_and_threshold_category_match_hand_computed_parameters():
    """TVCL = 0.0047 WT; TVV = 0.96 WT (1 + 0.16 if APGR < 5), for weights 0.9-3.2 kg and Apgar 1-9."""
    spec = parse_spec(PHENO)
    wt, apgr = [0.9, 1.4, 3.2, 2.0], [1, 5, 9, 4]
    data = poppk.from_frame(_frame({"WT": wt, "APGR": apgr}), warn=False)
    theta3 = 0.16
    ind, built = _typical(spec, data, {"CL": 0.0047, "V": 0.96, "V_APGR_lt5": np.log1p(theta3)})
    assert built.levels["V_APGR_lt5"] == (1.0,)
    np.testing.assert_allclose(ind["CL"], 0.0047 * np.array(wt), rtol=1e-12)
    low = np.array(apgr) < 5
    np.testing.assert_allclose(ind["V"], 0.96 * np.array(wt) * np.where(low, 1 + theta3, 1.0), rtol=1e-12)
    # and the predicted concentration of the first subject, 10 mg bolus, C(t) = D/V exp(-CL/V t):
    pred = np.asarray(poppk.pk.concentrations(spec.make_kernel(), {k: v for k, v in ind.items()},
                                              data.doses, data.sampling))
    v0, cl0 = 0.96 * 0.9 * 1.16, 0.0047 * 0.9
    np.testing.assert_allclose(pred[0, :2], 10 / v0 * np.exp(-cl0 / v0 * np.array([1.0, 2.0])), rtol=1e-10)


def test_linear_exponential_and_text_categorical_effects_match_hand_computed_parameters():
    """CL = 5 (1 + 0.01 (CRCL - 100)) (WT/70)^0.75; V = 40 exp(0.02 (AGE - 50)), times 1.3 for SEX "M"
    against the reference "F"; KA = 1.2 times exp(-0.4) for FORM "tablet" and exp(0.2) for "syrup"
    against "capsule" (the most frequent level, the default reference)."""
    spec = parse_spec("""
[model]
kernel = "oral1cmt"
[parameters]
CL = { median = 5, sd_log = 1 }
V = { median = 40, sd_log = 1 }
KA = { median = 1.2, sd_log = 1 }
[[covariates]]
parameter = "CL"
covariate = "CRCL"
kind = "linear"
reference = 100
[[covariates]]
parameter = "CL"
covariate = "WT"
kind = "power"
reference = 70
fixed = 0.75
[[covariates]]
parameter = "V"
covariate = "AGE"
kind = "exponential"
reference = 50
[[covariates]]
parameter = "V"
covariate = "SEX"
kind = "categorical"
reference = "F"
[[covariates]]
parameter = "KA"
covariate = "FORM"
kind = "categorical"
""")
    cov = {"CRCL": [60.0, 100.0, 140.0, 80.0], "WT": [50.0, 70.0, 90.0, 70.0], "AGE": [30.0, 50.0, 70.0, 50.0],
           "SEX": ["F", "M", "M", "F"], "FORM": ["capsule", "tablet", "capsule", "syrup"]}
    frame = _frame(cov)
    frame["CMT"] = np.where(frame["EVID"] == 1, 1, 2)
    data = poppk.from_frame(frame, warn=False)
    assert data.levels("FORM") == ("capsule", "syrup", "tablet")
    values = {"CL": 5.0, "V": 40.0, "KA": 1.2, "CL_CRCL": 0.01, "V_AGE": 0.02, "V_SEX_M": np.log(1.3),
              "KA_FORM_syrup": 0.2, "KA_FORM_tablet": -0.4}
    ind, built = _typical(spec, data, values)
    assert built.coding.references == {"V_SEX": "F", "KA_FORM": "capsule"}
    c = {k: np.array(v) for k, v in cov.items()}
    np.testing.assert_allclose(ind["CL"], 5 * (1 + 0.01 * (c["CRCL"] - 100)) * (c["WT"] / 70) ** 0.75, rtol=1e-12)
    np.testing.assert_allclose(ind["V"], 40 * np.exp(0.02 * (c["AGE"] - 50)) * np.where(c["SEX"] == "M", 1.3, 1.0),
                               rtol=1e-12)
    np.testing.assert_allclose(ind["KA"], 1.2 * np.array([1.0, np.exp(-0.4), 1.0, np.exp(0.2)]), rtol=1e-12)


def test_missing_covariate_names_the_rows_or_is_imputed_as_the_spec_says():
    """A subject without a WT value: the error names its ID and rows; missing = "median" takes the
    median of the others (70, from 50, 70, 90) and says so."""
    text = PHENO.replace("fixed = 1.0\n", "fixed = 1.0\nmissing = \"median\"\n")
    frame = _frame({"WT": [50.0, np.nan, 70.0, 90.0], "APGR": [1, 5, 9, 4]})
    frame["WT"] = frame["WT"].astype(object).where(frame["WT"].notna(), ".")
    data = poppk.from_frame(frame, warn=False)
    with pytest.raises(ModelSpecError, match=r"CL_WT.*WT is missing for 1 subject\(s\): ID 2 \(rows 4-6\)"):
        build_model(parse_spec(PHENO), data)
    with pytest.warns(poppk.data.DatasetWarning, match="WT is missing for 1 subject.*CL_WT takes 70"):
        built = build_model(parse_spec(text), data)
    assert built.kwargs["covariates"]["CL_WT"].tolist() == [50.0, 70.0, 70.0, 90.0]


@pytest.mark.parametrize("change, key", [
    (("parameter = \"V\"\ncovariate = \"APGR < 5\"", "parameter = \"Q\"\ncovariate = \"APGR < 5\""),
     r"\[covariates\[2\]\.parameter\] iv1cmt has no parameter Q"),
    (("covariate = \"APGR < 5\"", "covariate = \"APGR <> 5\""), r"\[covariates\[2\]\.covariate\]"),
    (("kind = \"categorical\"", "kind = \"categorical\"\nreference = 1"), r"\[covariates\[2\]\.reference\]"),
    (("name = \"V_WT\"", "name = \"CL_WT\""), r"\[covariates\[1\]\] repeats effect CL_WT"),
    (("name = \"V_WT\"", "missing = \"sometimes\""), r"\[covariates\[1\]\.missing\]"),
    (("name = \"V_WT\"", "colour = 1"), r"\[covariates\[1\]\] unknown key\(s\) colour"),
])
def test_bad_covariate_specs_name_the_key(change, key):
    with pytest.raises(ModelSpecError, match=key):
        parse_spec(PHENO.replace(*change, 1), source="pheno.toml")


def test_reference_level_the_data_lack_and_text_for_a_power_effect_fail_before_sampling():
    spec = parse_spec(PHENO.replace("kind = \"categorical\"\n", "kind = \"categorical\"\n", 1)
                      .replace("covariate = \"APGR < 5\"", "covariate = \"SEX\"").replace(
                          "effect = { mean = 0.0, sd = 0.5 }", "reference = \"X\""), source="pheno.toml")
    data = poppk.from_frame(_frame({"WT": [1.0, 2.0], "APGR": [1, 9], "SEX": ["F", "M"]}), warn=False)
    with pytest.raises(ModelSpecError, match=r"covariates\[2\]\]\.reference: 'X' is not a level of SEX; the data have F, M"):
        build_model(spec, data)
    bad = poppk.from_frame(_frame({"WT": ["1.0", "<2"], "APGR": [1, 9]}), warn=False)
    with pytest.raises(ModelSpecError, match=r"WT holds text"):
        build_model(parse_spec(PHENO), bad)


def test_text_categories_survive_the_fit_folder_and_simulation_encodes_by_level(tmp_path):
    """A fit with a text covariate is written and read back with its levels, the parameter table gives
    the categorical effect as a ratio (exp of the log-scale draws' quantiles) and lists the fixed
    allometric exponent; a virtual population with an unseen level is refused by name."""
    frame = poppk.datasets.load("theophylline").to_frame()
    frame["SEX"] = np.where(frame["ID"] % 2 == 0, "female", "male")
    data = poppk.from_frame(frame, warn=False)
    spec = parse_spec(poppk.model.load_spec("oral1cmt_additive").text + """
[[covariates]]
parameter = "V"
covariate = "SEX"
kind = "categorical"
effect = { mean = 0.0, sd = 0.3 }
[[covariates]]
parameter = "CL"
covariate = "WT"
kind = "power"
reference = 70
fixed = 0.75
""")
    fit = poppk.fit(data, spec, chains=1, warmup=60, samples=60, progress=False)
    folder = fit.save(tmp_path / "fit")
    again = poppk.load_fit(folder)
    assert again.data.levels("SEX") == ("female", "male")
    table = poppk.export.parameter_table(again)
    row = table.set_index("parameter").loc["V_SEX_male"]
    draws = np.asarray(again.draws("V_SEX_male")).ravel()
    assert row["description"].startswith("ratio of V against SEX = female for SEX = male")
    assert row["unit"] == "ratio" and np.isclose(row["median"], np.exp(np.quantile(draws, 0.5)), rtol=1e-6)
    fixed = table.set_index("parameter").loc["CL_WT"]
    assert fixed["median"] == 0.75 and "(fixed)" in fixed["description"]
    etas = poppk.diagnostics.eta_table(again)
    assert set(etas["SEX"]) == {"female", "male"}
    ax = poppk.plots.plot_eta_covariate(etas, "CL", "SEX")  # a box per level, counted
    assert [t.get_text() for t in ax.get_xticklabels()] == ["female\n(n=6)", "male\n(n=6)"]
    cov = pd.DataFrame({"WT": [70.0, 60.0], "SEX": ["female", "other"]})
    pop = poppk.simulate.virtual_population(again, 2, covariates=cov)
    with pytest.raises(SimulationError, match=r"level\(s\) \['other'\] of SEX were not in the fitted data"):
        pop.parameters()


def test_cli_fit_with_a_missing_covariate_exits_2_naming_rows(tmp_path):
    frame = _frame({"WT": [1.0, np.nan, 2.0], "APGR": [1, 5, 9]})
    frame["WT"] = frame["WT"].astype(object).where(frame["WT"].notna(), ".")
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "pheno.toml").write_text(PHENO)
    with warnings.catch_warnings():
        res = subprocess.run([sys.executable, "-m", "poppk", "fit", str(tmp_path / "d.csv"), "--model",
                              str(tmp_path / "pheno.toml"), "--out", str(tmp_path / "fit")],
                             capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "WT is missing for 1 subject(s): ID 2 (rows 4-6)" in res.stderr and "Traceback" not in res.stderr
