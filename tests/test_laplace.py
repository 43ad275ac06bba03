"""``fit(method="laplace")`` and ``poppk fit --method laplace``.

References, none written by poppk:
- nlmixr2 FOCEi on theophylline (DESIGN.md): ka 1.59 1/h, CL/F 2.75 L/h, V/F 31.8 L, residual SD 0.69 mg/L;
- the marginal likelihood computed here independently in numpy from the Bateman function
  ``C = D ka / (V (ka - k)) (exp(-k t) - exp(-ka t))``: each subject's Laplace approximation (mode by
  scipy, Hessian by differences) and adaptive Gauss-Hermite quadrature (Pinheiro and Bates 1995,
  J Comput Graph Stat 4:12), which is exact to the quadrature's order;
- the NUTS posterior of the same model and data (the fit's own sampler, a different method).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk import ModelSpecError
from poppk.fit import folder as fit_folder
from poppk.model import parse_spec

NLMIXR2_FOCEI = {"KA": 1.59, "CL": 2.75, "V": 31.8, "sigma_add": 0.69}


@pytest.fixture(scope="module")
def laplace_dir(tmp_path_factory):
    from .conftest import run_cli

    out = tmp_path_factory.mktemp("laplace") / "theo"
    res = run_cli("fit", str(poppk.datasets.path("theophylline")), "--model", "oral1cmt_additive", "--method",
                  "laplace", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res.stdout


def test_cli_laplace_matches_nlmixr2_focei_and_writes_a_fit_folder(laplace_dir):
    out, stdout = laplace_dir
    est = pd.read_csv(out / "estimates.csv").set_index("parameter")
    assert list(est.columns) == ["estimate", "se", "rse_pct", "se_log", "q5", "q95"]
    for name, ref in NLMIXR2_FOCEI.items():  # the mode, not a posterior median: FOCEi's analogue
        assert est.loc[name, "estimate"] == pytest.approx(ref, rel=0.05), name
    # RSE% is 100 SE / estimate, the SE of a positive parameter by the delta method (estimate x SE on the log scale)
    np.testing.assert_allclose(est["rse_pct"], 100 * est["se"] / est["estimate"].abs(), rtol=1e-9)
    np.testing.assert_allclose(est["se"], est["estimate"] * est["se_log"], rtol=1e-9)
    assert (est["q5"] < est["estimate"]).all() and (est["estimate"] < est["q95"]).all()
    corr = pd.read_csv(out / "correlation.csv", index_col=0)
    assert list(corr.index) == list(corr.columns) and set(NLMIXR2_FOCEI) <= set(corr.index)
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-9)
    np.testing.assert_allclose(corr.to_numpy(), corr.to_numpy().T, atol=1e-9)
    assert (np.linalg.eigvalsh(corr.to_numpy()) > 0).all()
    ebe = pd.read_csv(out / "ebe.csv")
    assert len(ebe) == 12 and {"ID", "CL", "V", "KA", "eta_CL", "eta_V", "eta_KA"} <= set(ebe.columns)
    np.testing.assert_allclose(ebe["CL"], est.loc["CL", "estimate"] * np.exp(ebe["eta_CL"]), rtol=1e-9)
    for name in fit_folder.FILES + fit_folder.LAPLACE_FILES:
        assert (out / name).exists(), name
    record = json.loads((out / "fit.json").read_text())
    assert record["method"] == "laplace" and record["laplace"]["optimizer"]["converged"]
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["method"] == "laplace" and diag["converged"] and diag["warnings"] == []
    assert "-2 log likelihood" in stdout and "OFV" in stdout and "converged" in stdout


def _subjects():
    frame = pd.read_csv(poppk.datasets.path("theophylline"), na_values=".")
    out = []
    for _, g in frame.groupby("ID", sort=False):
        dose = float(g.loc[g.EVID == 1, "AMT"].iloc[0])
        obs = g[(g.EVID == 0) & (g.MDV == 0)]
        out.append((dose, obs.TIME.to_numpy(float), obs.DV.to_numpy(float)))
    return out


def _bateman(dose, t, cl, v, ka):
    k = cl / v
    return dose * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))


def test_laplace_objective_against_an_independent_laplace_and_quadrature(laplace_dir):
    """-2 log likelihood at the estimates: poppk's value equals a numpy Laplace approximation of each
    subject's integral over its three etas, and is within 1 of adaptive Gauss-Hermite quadrature."""
    from scipy.optimize import minimize

    out, _ = laplace_dir
    est = pd.read_csv(out / "estimates.csv").set_index("parameter")["estimate"]
    objective = json.loads((out / "fit.json").read_text())["laplace"]["objective"]
    theta = np.array([est.CL, est.V, est.KA])
    omega = np.array([est.omega_CL, est.omega_V, est.omega_KA])
    sigma = est.sigma_add

    def minus_log_joint(eta, dose, t, y):  # -log p(y | eta) - log N(eta; 0, diag omega^2)
        cl, v, ka = theta * np.exp(eta)
        r = y - _bateman(dose, t, cl, v, ka)
        return (0.5 * np.sum((r / sigma) ** 2) + y.size * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
                + 0.5 * np.sum((eta / omega) ** 2) + np.sum(np.log(omega)) + 1.5 * math.log(2 * math.pi))

    nodes, weights = np.polynomial.hermite_e.hermegauss(12)  # probabilists' Hermite: weight exp(-x^2/2)
    grid = np.stack(np.meshgrid(nodes, nodes, nodes, indexing="ij"), -1).reshape(-1, 3)
    wgrid = np.prod(np.stack(np.meshgrid(weights, weights, weights, indexing="ij"), -1).reshape(-1, 3), axis=1)
    laplace, quadrature = 0.0, 0.0
    for dose, t, y in _subjects():
        f = lambda e: minus_log_joint(e, dose, t, y)  # noqa: E731
        mode = minimize(f, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
        h = 1e-4
        hess = np.array([[(f(mode + h * (np.eye(3)[i] + np.eye(3)[j])) - f(mode + h * (np.eye(3)[i] - np.eye(3)[j]))
                           - f(mode - h * (np.eye(3)[i] - np.eye(3)[j])) + f(mode - h * (np.eye(3)[i] + np.eye(3)[j])))
                          / (4 * h * h) for j in range(3)] for i in range(3)])
        laplace += -f(mode) + 1.5 * math.log(2 * math.pi) - 0.5 * np.linalg.slogdet(hess)[1]
        # adaptive Gauss-Hermite: eta = mode + L x, L L^T = hess^-1, x on the standard normal nodes
        chol = np.linalg.cholesky(np.linalg.inv(hess))
        etas = mode + grid @ chol.T
        logf = np.array([-f(e) for e in etas]) + 0.5 * np.sum(grid**2, axis=1)
        top = logf.max()
        quadrature += top + math.log(np.sum(wgrid * np.exp(logf - top))) + np.linalg.slogdet(chol)[1]
    assert objective["minus2_log_likelihood"] == pytest.approx(-2 * laplace, abs=1e-3)
    assert abs(objective["minus2_log_likelihood"] - (-2 * quadrature)) < 1.0
    # NONMEM's OFV leaves out n log(2 pi) for the 132 observations
    assert objective["ofv"] == pytest.approx(objective["minus2_log_likelihood"] - 132 * math.log(2 * math.pi),
                                             abs=1e-3)


def test_laplace_agrees_with_nuts_and_feeds_the_downstream_commands(laplace_dir, theo_quick_fit, cli):
    """Typical values and residual SD within 5% of the NUTS posterior medians, log-scale SEs within 30% of
    the posterior SDs (a near-Gaussian posterior: 12 rich profiles); report, export and simulate read the folder."""
    out, _ = laplace_dir
    est = pd.read_csv(out / "estimates.csv").set_index("parameter")
    nuts = poppk.load_fit(theo_quick_fit)
    for name in ("CL", "V", "KA", "sigma_add"):
        assert est.loc[name, "estimate"] == pytest.approx(np.median(nuts.draws(name)), rel=0.05), name
        assert est.loc[name, "se_log"] == pytest.approx(np.log(nuts.draws(name)).std(), rel=0.3), name
    for name in ("omega_CL", "omega_V", "omega_KA"):  # the mode of a right-skewed posterior sits below its median
        assert est.loc[name, "estimate"] == pytest.approx(np.median(nuts.draws(name)), rel=0.25), name

    lap = poppk.load_fit(out)
    assert lap.n_draws == 1000 and lap.ebes().shape[0] == 12
    np.testing.assert_allclose(lap.estimates().set_index("parameter").loc["CL", "estimate"], est.loc["CL", "estimate"])
    res = cli("export", str(out), "--format", "csv")
    assert res.returncode == 0, res.stderr[-2000:]
    table = pd.read_csv(out / "export" / "parameters.csv").set_index("parameter")
    assert {"estimate", "rse_pct"} <= set(table.columns) and "median" not in table.columns
    assert table.loc["CL", "estimate"] == pytest.approx(est.loc["CL", "estimate"])
    res = cli("report", str(out), "--n-sims", "50")
    assert res.returncode == 0, res.stderr[-2000:]
    html = (out / "report.html").read_text()
    assert "Laplace approximation at the posterior mode" in html and "OFV" in html
    assert (out / "plots" / "vpc.png").exists() and not (out / "plots" / "trace_rank.png").exists()  # no chains
    sims = poppk.simulate_regimen(lap, "320 mg q12h x 5 d", n=200, seed=0)
    assert np.isfinite(sims.summary()["median"].to_numpy(float)).all()


def test_laplace_without_random_effects_is_the_pooled_fit():
    """No IIV: the objective is the plain -2 log likelihood at the mode (numpy, Bateman function)."""
    spec = parse_spec("""
[model]
name = "pooled"
kernel = "oral1cmt"
[parameters]
CL = { median = 10.0, sd_log = 1.5 }
V = { median = 70.0, sd_log = 1.5 }
KA = { median = 1.0, sd_log = 1.0 }
[iiv]
parameters = []
[error]
model = "additive"
sigma_add = 1.0
""")
    f = poppk.fit(poppk.datasets.load("theophylline"), spec, method="laplace", samples=200, progress=False)
    est = f.estimates().set_index("parameter")["estimate"]
    ll = 0.0
    for dose, t, y in _subjects():
        r = y - _bateman(dose, t, est.CL, est.V, est.KA)
        ll += np.sum(-0.5 * (r / est.sigma_add) ** 2 - math.log(est.sigma_add) - 0.5 * math.log(2 * math.pi))
    obj = f.info["laplace"]["objective"]
    assert obj["minus2_log_likelihood"] == pytest.approx(-2 * ll, abs=1e-3)
    assert f.diagnostics()["converged"]


def test_laplace_refuses_a_centred_parameterisation():
    with pytest.raises(ModelSpecError, match="non-centred"):
        poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", method="laplace",
                  parameterization="centered")
    with pytest.raises(ModelSpecError, match="'nuts' or 'laplace'"):
        poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", method="foce")


def test_laplace_with_a_block_of_random_effects():
    """A full IIV block (LKJ correlation factor): converges, the typical values stay within 5% of nlmixr2's
    FOCEi (fitted with a diagonal block; the data barely inform the correlations), and the correlation
    matrix lists the parameter table's order first, then the correlation factor's entries."""
    from poppk.model import load_spec

    text = load_spec("oral1cmt_additive").text.replace('structure = "diagonal"', 'structure = "block"')
    f = poppk.fit(poppk.datasets.load("theophylline"), parse_spec(text.replace('parameterization = "auto"', "")),
                  method="laplace", samples=200, progress=False)
    assert f.diagnostics()["converged"]
    est = f.estimates().set_index("parameter")["estimate"]
    for name, ref in NLMIXR2_FOCEI.items():
        assert est[name] == pytest.approx(ref, rel=0.05), name
    names = list(f.correlation().index)
    assert names[:7] == list(f.info["population"]) and all(n.startswith("L_corr[") for n in names[7:])
