"""ODE models written by the user in their own file, named by a spec, used from the command line.

References: the same model in closed form (``iv1cmt``: a bolus ``D/V exp(-CL/V t)``, an infusion
``R/CL (1 - exp(-CL/V t))``), which the user's ODE must reproduce; the bundled example files.
"""

from __future__ import annotations

import json
import shutil
import textwrap

import numpy as np
import pandas as pd
import pytest

import poppk

from ._sim import simulate_frame

MODEL_FILE = '''
from typing import ClassVar

import jax.numpy as jnp

from poppk.pk import AbstractODEModel, register_kernel


@register_kernel("my_iv_ode")
class MyIV(AbstractODEModel):
    compartments: ClassVar[tuple] = ("central",)
    central_cmt: ClassVar[int] = 1
    depot_cmt: ClassVar = None
    parameters: ClassVar[tuple] = ("CL", "V")
    optional: ClassVar[dict] = {}
    units: ClassVar[dict] = {"CL": "L/h", "V": "L"}

    def rhs(self, t, a, p):
        return jnp.stack([-p["CL"] / p["V"] * a[0]])
'''

SPEC = '''
[model]
name = "my_iv"
file = "{file}"
kernel = "my_iv_ode"

[parameters]
CL = {{ median = 5.0, sd_log = 1.5 }}
V = {{ median = 30.0, sd_log = 1.5 }}

[iiv]
parameters = ["CL", "V"]
omega = 0.5

[error]
model = "exponential"
sigma_log = {{ median = 0.2, sd_log = 0.7 }}
'''


@pytest.fixture
def user_model(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "my_iv.py").write_text(textwrap.dedent(MODEL_FILE))
    (models / "my_iv.toml").write_text(SPEC.format(file="my_iv.py"))
    frame = simulate_frame("iv1cmt", {"CL": 4.0, "V": 25.0}, {"CL": 0.3, "V": 0.2}, 0.1,
                           [dict(TIME=0.0, AMT=500.0, RATE=250.0, II=12.0, ADDL=2)], [0.5, 2.0, 6.0, 11.5, 25.0, 30.0],
                           n_subjects=10, seed=3)
    data = tmp_path / "iv.csv"
    frame.to_csv(data, index=False, na_rep=".")
    return models / "my_iv.toml", data


def test_user_ode_predicts_as_the_closed_form(cli, user_model, tmp_path):
    spec, data = user_model
    res = cli("predict", str(data), "--model", str(spec), "--param", "CL=4", "--param", "V=25", "--out", str(tmp_path / "p.csv"))
    assert res.returncode == 0, res.stderr
    got = pd.read_csv(tmp_path / "p.csv")["PRED"].to_numpy()
    want = poppk.predict("iv1cmt", {"CL": 4.0, "V": 25.0}, poppk.read_nonmem(data, warn=False))
    present = ~np.isnan(got)
    np.testing.assert_allclose(np.sort(got[present]), np.sort(want[~np.isnan(want)]), rtol=1e-4)


@pytest.mark.slow  # a CLI fit, report, simulate and dose (108 s); run in .ci/run's slow step
def test_user_ode_fitted_end_to_end_from_the_cli(cli, user_model, tmp_path):
    spec, data = user_model
    out = tmp_path / "fit"
    res = cli("fit", str(data), "--model", str(spec), "--out", str(out), "--chains", "2", "--warmup", "200",
              "--samples", "200", "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "kernel.py").read_text() == (spec.parent / "my_iv.py").read_text()
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    assert summary.loc["CL", "q5"] < 4.0 < summary.loc["CL", "q95"]
    assert summary.loc["V", "q5"] < 25.0 < summary.loc["V", "q95"]
    # The fit folder carries its model: it loads, and reports, with the user's file gone.
    shutil.rmtree(spec.parent)
    fit = poppk.load_fit(out)
    assert fit.spec.kernel == "my_iv_ode"
    res = cli("report", str(out), "--n-sims", "20")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "report.html").exists()
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["divergences"] == 0
    # simulate and dose take IV regimens for the IV model (and refuse oral ones, which it has no depot for)
    res = cli("simulate", str(out), "--regimen", "500 mg iv over 2 h q12h x 3 d", "--n", "50")
    assert res.returncode == 0, res.stderr[-3000:]
    res = cli("simulate", str(out), "--regimen", "500 mg q12h x 3 d", "--n", "50")
    assert res.returncode == 2 and "no depot" in res.stderr and "Traceback" not in res.stderr
    patient = tmp_path / "patient.csv"
    frame = pd.read_csv(data)
    frame[frame["ID"] == 1].to_csv(patient, index=False)
    res = cli("dose", str(out), "--patient", str(patient), "--target", "Cminss=2:8", "--doses", "250,500,1000",
              "--interval", "12", "--infusion", "2", "--method", "map")
    assert res.returncode == 0, res.stderr[-3000:]
    options = pd.read_csv(out / "dosing" / "dose_options.csv")
    assert list(options["regimen"]) == [f"{d} mg iv over 2 h q12h" for d in (250, 500, 1000)]


def test_a_broken_model_file_is_a_clear_error(cli, tmp_path):
    (tmp_path / "bad.py").write_text("raise RuntimeError('my typo')\n")
    (tmp_path / "bad.toml").write_text(SPEC.format(file="bad.py"))
    (tmp_path / "none.toml").write_text(SPEC.format(file="missing.py"))
    data = poppk.datasets.path("theophylline")
    for spec, text in (("bad.toml", "my typo"), ("none.toml", "no such model file")):
        res = cli("predict", str(data), "--model", str(tmp_path / spec), "--param", "CL=1", "--param", "V=1")
        assert res.returncode == 2
        assert "Traceback" not in res.stderr and text in res.stderr and "model.file" in res.stderr


@pytest.mark.parametrize("name, params", [
    ("mm2cmt", "VMAX=50 KM=1 V1=15 Q=5 V2=30 KA=1"),
    ("transit", "CL=10 V=70 MTT=1"),
])
def test_bundled_example_models_predict(cli, name, params, tmp_path):
    """Theophylline's doses and times; observations in CMT 0 (the model's central compartment), as the
    transit model numbers its compartments differently from ADVAN2."""
    frame = pd.read_csv(poppk.datasets.path("theophylline"))
    frame.loc[frame["EVID"] == 0, "CMT"] = 0
    frame.to_csv(tmp_path / "theo.csv", index=False)
    args = [a for p in params.split() for a in ("--param", p)]
    res = cli("predict", str(tmp_path / "theo.csv"), "--model", name, *args, "--out", str(tmp_path / "p.csv"))
    assert res.returncode == 0, res.stderr
    pred = pd.read_csv(tmp_path / "p.csv")["PRED"].dropna()
    assert (pred >= 0).all() and pred.max() > 0


def test_transit_chain_delays_absorption():
    """Savic 2007: with MTT -> small the transit model approaches a bolus into the central compartment;
    the peak comes later as MTT grows."""
    spec = poppk.load_spec("transit")
    frame = pd.read_csv(poppk.datasets.path("theophylline"))
    frame.loc[frame["EVID"] == 0, "CMT"] = 0
    data = poppk.data.from_frame(frame, warn=False).subset([0])
    kernel = spec.make_kernel(data.dose_unit, data.conc_unit)
    t = np.asarray(data.sampling.time)[0]
    early = poppk.predict(kernel, {"CL": 3.0, "V": 30.0, "MTT": 0.5}, data)[0]
    late = poppk.predict(kernel, {"CL": 3.0, "V": 30.0, "MTT": 4.0}, data)[0]
    assert t[np.nanargmax(late)] > t[np.nanargmax(early)]


def test_tmdd_qss_is_linear_without_target():
    """With no target (R0 -> 0) the QSS model is the linear two-compartment model (Gibiansky 2008)."""
    spec = poppk.load_spec("tmdd_qss")
    data = poppk.data.from_frame(pd.DataFrame({
        "ID": 1, "TIME": [0.0, 1.0, 24.0, 100.0], "AMT": [100.0, 0, 0, 0], "DV": [np.nan, 1, 1, 1],
        "EVID": [1, 0, 0, 0], "MDV": [1, 0, 0, 0], "CMT": [1, 0, 0, 0]}), warn=False)
    kernel = spec.make_kernel(data.dose_unit, data.conc_unit)
    p = {"CL": 0.01, "V1": 3.0, "Q": 0.02, "V2": 3.0, "KINT": 0.05, "KSS": 0.1, "KDEG": 0.05, "R0": 1e-9}
    got = poppk.predict(kernel, p, data)[0]
    want = poppk.predict("iv2cmt", {"CL": 0.01, "V1": 3.0, "Q": 0.02, "V2": 3.0}, data)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4)
