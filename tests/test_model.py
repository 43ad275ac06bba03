"""Model specifications and the likelihood.

The log density is checked against a hand computation with scipy.stats
(log-normal priors, half-normal SDs, normal/log-normal residuals, and the
M3 censored term log Phi((LLOQ - pred)/sd) of Beal 2001).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import poppk
from poppk import ModelSpecError
from poppk.model import build_model, load_spec, parse_spec

BASE = """
[model]
kernel = "oral1cmt"
flip_flop = "allow"
[parameters]
CL = { median = 5.0, sd_log = 1.0 }
V = { median = 50.0, sd_log = 1.0 }
KA = { median = 1.0, sd_log = 1.0 }
[error]
model = "%s"
%s
"""


@pytest.mark.parametrize("text,key", [
    ("[model]\nkernel = 'nope'", "model.kernel"),
    (BASE.replace("KA = { median = 1.0, sd_log = 1.0 }", "") % ("additive", ""), "parameters.KA"),
    (BASE.replace("KA = {", "Q = {") % ("additive", ""), "parameters.Q"),
    (BASE % ("additive", "sigma_add = -1"), "error.sigma_add"),
    (BASE % ("exponential", "sigma_log = { median = 0.2 }"), "error.sigma_log"),
    (BASE % ("exponential", "sigma_log = { median = -0.2, sd_log = 0.7 }"), "error.sigma_log.median"),
    (BASE % ("exponential", "sigma_log = { median = 0.2, sd = 0.7 }"), "error.sigma_log"),
    (BASE % ("weird", ""), "error.model"),
    (BASE.replace("median = 5.0, sd_log = 1.0", "median = 5.0") % ("additive", ""), "parameters.CL"),
    (BASE % ("additive", "") + "[iiv]\nparameters = ['CL', 'Q']\n", "iiv.parameters"),
    (BASE % ("additive", "") + "[[covariates]]\nparameter = 'CL'\ncovariate = 'WT'\nkind = 'power'\n", "covariates[0]"),
    ("[model\nkernel=", "TOML"),
])
def test_bad_specs_name_the_key(text, key):
    with pytest.raises(ModelSpecError) as info:
        parse_spec(text, source="my.toml")
    assert "my.toml" in str(info.value) and key in str(info.value)


def test_bundled_specs_parse():
    for name in ("oral1cmt", "oral1cmt_additive", "oral1cmt_mm"):
        spec = load_spec(name)
        assert spec.kernel in poppk.pk.KERNELS
    with pytest.raises(ModelSpecError):
        load_spec("no_such_model")


def test_covariate_missing_from_data_fails_before_sampling():
    spec = parse_spec(BASE % ("additive", "") + "[[covariates]]\nparameter = 'CL'\ncovariate = 'CRCL'\nkind = 'power'\n"
                      "reference = 100\n")
    with pytest.raises(ModelSpecError, match="CRCL.*not in the data"):
        build_model(spec, poppk.datasets.load("theophylline"))


def test_exponential_error_with_predose_zero_records_fails_before_sampling():
    with pytest.raises(ModelSpecError, match="before any dose"):
        build_model(load_spec("oral1cmt"), poppk.datasets.load("theophylline"))


def _tiny():
    rows = [dict(ID=1, TIME=0, AMT=100, DV=np.nan, EVID=1, MDV=1, BLQ=0, LLOQ=np.nan),
            dict(ID=1, TIME=1, AMT=0, DV=1.5, EVID=0, MDV=0, BLQ=0, LLOQ=0.1),
            dict(ID=1, TIME=4, AMT=0, DV=1.1, EVID=0, MDV=0, BLQ=0, LLOQ=0.1),
            dict(ID=1, TIME=48, AMT=0, DV=np.nan, EVID=0, MDV=0, BLQ=1, LLOQ=0.1)]
    return poppk.from_frame(pd.DataFrame(rows), warn=False)


@pytest.mark.parametrize("error,sig", [("additive", "sigma_add = 0.5"), ("exponential", "sigma_log = 0.5"),
                                       ("exponential", "sigma_log = { median = 0.2, sd_log = 0.7 }")])
def test_log_density_equals_hand_computation(error, sig):
    from numpyro.infer.util import log_density

    spec = parse_spec(BASE % (error, sig))
    data = _tiny()
    built = build_model(spec, data)
    assert built.blq_method == "M3"
    cl, v, ka, s = 4.0, 40.0, 1.5, 0.3
    sname = "sigma_add" if error == "additive" else "sigma_log"
    params = {"CL": cl, "V": v, "KA": ka, sname: s}
    got, _ = log_density(built.fn, (), built.kwargs, params)

    k = cl / v
    t = np.array([1.0, 4.0, 48.0])
    pred = 100 * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))
    prior = (stats.lognorm(1.0, scale=5.0).logpdf(cl) + stats.lognorm(1.0, scale=50.0).logpdf(v)
             + stats.lognorm(1.0, scale=1.0).logpdf(ka))
    prior += stats.lognorm(0.7, scale=0.2).logpdf(s) if "median" in sig else stats.halfnorm(scale=0.5).logpdf(s)
    y = np.array([1.5, 1.1])
    if error == "additive":
        lik = stats.norm(pred[:2], s).logpdf(y).sum() + stats.norm(pred[2], s).logcdf(0.1)
    else:
        lik = stats.lognorm(s, scale=pred[:2]).logpdf(y).sum() + stats.norm(np.log(pred[2]), s).logcdf(np.log(0.1))
    assert float(got) == pytest.approx(prior + lik, rel=1e-10)


def test_block_iiv_and_covariates_build_and_sample():
    """Block (LKJ) IIV, a power covariate and a categorical one run end to end (smoke, few draws)."""
    text = load_spec("oral1cmt_additive").text.replace('structure = "diagonal"', 'structure = "block"')
    text += ("\n[[covariates]]\nparameter = 'CL'\ncovariate = 'WT'\nkind = 'power'\nreference = 70\n"
             "effect = { mean = 0.75, sd = 0.25 }\n"
             "\n[[covariates]]\nparameter = 'V'\ncovariate = 'HEAVY'\nkind = 'categorical'\nreference = 0\n"
             "effect = { mean = 0.0, sd = 0.5 }\n")
    spec = parse_spec(text, source="block.toml")
    frame = poppk.datasets.load("theophylline").to_frame()
    frame["HEAVY"] = (frame["WT"] > 70).astype(int)
    data = poppk.from_frame(frame, warn=False)
    f = poppk.fit(data, spec, chains=1, warmup=40, samples=40, progress=False)
    names = set(f.summary().parameter)
    assert {"CL_WT", "V_HEAVY_1", "omega_CL"} <= names
    assert "L_corr" in f.tree["posterior"]


def test_ode_model_gradient_by_forward_sensitivities_is_the_reverse_mode_one_and_batches_over_chains(monkeypatch):
    """The fitted Michaelis-Menten model differentiates its ODE by forward sensitivities (``pk._base``).
    Reference: JAX's reverse mode through the same solver. Batched over chains (``vmap``, how chains run
    on a GPU) each chain's gradient is its own."""
    import jax
    import jax.numpy as jnp

    from poppk.fit._warmstart import _potential
    from poppk.fit._init import initial_params as _initial_params
    from poppk.pk import AbstractODEModel

    data = poppk.datasets.load("lxi15029")
    built = build_model(load_spec("oral1cmt_mm"), data, parameterization="noncentered")
    assert built.kernel.forward_sensitivities
    z = _initial_params(built, 2, np.random.default_rng(0))
    z = jax.tree_util.tree_map(lambda v: v + 0.05 * jnp.arange(2.0).reshape((2,) + (1,) * (v.ndim - 1)), z)
    pot = _potential(built)
    batched = jax.jit(jax.vmap(jax.grad(pot)))(z)
    second = jax.tree_util.tree_map(lambda v: v[1], z)
    one = jax.jit(jax.grad(pot))(second)
    monkeypatch.setattr(AbstractODEModel, "forward_sensitivities", False)
    reverse = jax.jit(jax.grad(pot))(second)  # traced afresh: reverse mode
    for k in one:
        assert np.isfinite(np.asarray(one[k])).all()
        np.testing.assert_allclose(np.asarray(batched[k][1]), np.asarray(one[k]), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(one[k]), np.asarray(reverse[k]), rtol=1e-9, atol=1e-9)
