"""Kernels are registered, not listed: a new structural model is one class (here, in this test file)
plus its spec, and nothing else in poppk names its parameters.

References: the toy kernels' closed forms are the one-compartment solutions derived by hand
(Gibaldi & Perrier, *Pharmacokinetics*, 2nd ed., eqs. 1.15 and 2.8): an IV bolus gives
``C = D/V exp(-k t)``, an oral dose ``C = F D ka / (V (ka - k)) (exp(-k t) - exp(-ka t))``. The
oral toy is the bundled ``oral1cmt`` reparameterised (``KE = CL/V``), so the bundled closed form,
itself checked against hand-computed values in ``tests/test_pk.py``, is the reference for it.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers

import poppk
from poppk.errors import ModelSpecError
from poppk.model import build_model, parse_spec
from poppk.pk import KERNELS, AbstractPKModel, register_kernel


@register_kernel("toy_oral_ke")
class ToyOralKE(AbstractPKModel):
    """Oral one-compartment model written with an elimination rate constant: KE (1/h), VD (L), KABS (1/h)."""

    parameters: ClassVar[tuple[str, ...]] = ("KE", "VD", "KABS")
    units: ClassVar[dict[str, str]] = {"KE": "1/h", "VD": "L", "KABS": "1/h", "TLAG": "h", "F1": ""}
    absorption: ClassVar[tuple[str, ...]] = ("KABS",)
    absorption_rate: ClassVar[str | None] = "KABS"

    def elimination_rate(self, params):
        return params["KE"]

    def concentrations(self, params, doses, sampling):
        return self.scale * _oral(params, doses, sampling)


def _oral(params, doses, sampling):
    """Single oral doses into the depot (no lag), summed: the hand-derived closed form."""
    dt = sampling.time[:, None] - doses.time[None, :]
    given = (dt > 0) & doses.mask[None, :] & (doses.epoch[None, :] == sampling.epoch[:, None])
    dt = jnp.where(given, dt, 0.0)
    ke, ka, v = params["KE"], params["KABS"], params["VD"]
    oral = params["F1"] * ka / (v * (ka - ke)) * (jnp.exp(-ke * dt) - jnp.exp(-ka * dt))
    return jnp.where(given, doses.amt[None, :] * oral, 0.0).sum(axis=1)


@register_kernel("toy_oral_silent")
class ToyOralSilent(AbstractPKModel):
    """The same model, but it does not say its elimination rate (the base class's ``None``)."""

    parameters: ClassVar[tuple[str, ...]] = ("KE", "VD", "KABS")
    units: ClassVar[dict[str, str]] = {"KE": "1/h", "VD": "L", "KABS": "1/h", "TLAG": "h", "F1": ""}
    absorption_rate: ClassVar[str | None] = "KABS"

    def concentrations(self, params, doses, sampling):
        return self.scale * _oral(params, doses, sampling)


@register_kernel("toy_iv_bolus")
class ToyIVBolus(AbstractPKModel):
    """IV bolus, one compartment: K (1/h), V (L); no absorption, so no flip-flop to guard against."""

    parameters: ClassVar[tuple[str, ...]] = ("K", "V")
    units: ClassVar[dict[str, str]] = {"K": "1/h", "V": "L"}

    def concentrations(self, params, doses, sampling):
        dt = sampling.time[:, None] - doses.time[None, :]
        given = (dt >= 0) & doses.mask[None, :]
        c = jnp.exp(-params["K"] * jnp.where(given, dt, 0.0)) / params["V"]
        return self.scale * jnp.where(given, doses.amt[None, :] * c, 0.0).sum(axis=1)


def _spec(kernel: str, params: str, flip_flop: str = "exclude", iiv: str = "KE") -> str:
    return f"""
[model]
name = "toy"
kernel = "{kernel}"
flip_flop = "{flip_flop}"

[parameters]
{params}

[iiv]
parameters = ["{iiv}"]
omega = 0.5

[error]
model = "additive"
sigma_add = 0.5
"""


ORAL = 'KE = { median = 0.1, sd_log = 1 }\nVD = { median = 30, sd_log = 1 }\nKABS = { median = 1.5, sd_log = 1 }'


def test_a_kernel_registered_here_is_known_everywhere():
    assert KERNELS["toy_oral_ke"] is ToyOralKE
    spec = parse_spec(_spec("toy_oral_ke", ORAL))
    assert spec.make_kernel().parameters == ("KE", "VD", "KABS")


def test_the_toy_oral_kernel_predicts_as_the_bundled_closed_form():
    data = poppk.datasets.load("theophylline")
    theirs = poppk.predict("oral1cmt", {"CL": 2.75, "V": 31.8, "KA": 1.59}, data)
    ours = poppk.predict("toy_oral_ke", {"KE": 2.75 / 31.8, "VD": 31.8, "KABS": 1.59}, data)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, equal_nan=True)


def test_a_kernel_with_other_names_gets_the_flip_flop_wall():
    """The wall's log density is log_sigmoid(10 log(KABS / KE)) (``model._build.FLIP_FLOP_WALL``) at the
    typical values, and the same for each subject's individual ones (one term per subject, summed in
    the density): computed here by hand."""
    data = poppk.datasets.load("theophylline")
    built = build_model(parse_spec(_spec("toy_oral_ke", ORAL, iiv="KABS")), data)
    values = {"KE": 0.2, "VD": 30.0, "KABS": 0.5, "omega_KABS": 0.3, "sigma_add": 0.2,
              "eta_z": jnp.zeros((data.n_subjects, 1))}
    model = handlers.substitute(handlers.seed(built.fn, jax.random.PRNGKey(0)), data=values)
    trace = handlers.trace(model).get_trace(**built.kwargs)
    expected = float(jax.nn.log_sigmoid(10 * np.log(0.5 / 0.2)))
    assert float(trace["no_flip_flop"]["fn"].log_factor) == pytest.approx(expected, rel=1e-12)
    per_subject = np.asarray(trace["no_flip_flop_i"]["fn"].log_factor)  # one term per subject
    assert per_subject.shape == (data.n_subjects,)
    np.testing.assert_allclose(per_subject, expected, rtol=1e-12)
    assert per_subject.sum() == pytest.approx(data.n_subjects * expected, rel=1e-12)


def test_a_kernel_that_cannot_say_its_elimination_rate_is_refused_not_silently_unguarded():
    data = poppk.datasets.load("theophylline")
    with pytest.raises(ModelSpecError, match="elimination_rate") as err:
        build_model(parse_spec(_spec("toy_oral_silent", ORAL)), data)
    assert "flip_flop" in str(err.value)
    # Asked for no wall, it builds.
    built = build_model(parse_spec(_spec("toy_oral_silent", ORAL, flip_flop="allow")), data)
    trace = handlers.trace(handlers.seed(built.fn, jax.random.PRNGKey(0))).get_trace(**built.kwargs)
    assert "no_flip_flop" not in trace


def test_a_kernel_without_absorption_has_no_wall():
    data = poppk.datasets.load("theophylline")
    spec = parse_spec(_spec("toy_iv_bolus", 'K = { median = 0.1, sd_log = 1 }\nV = { median = 30, sd_log = 1 }',
                            iiv="K"))
    built = build_model(spec, data)
    trace = handlers.trace(handlers.seed(built.fn, jax.random.PRNGKey(0))).get_trace(**built.kwargs)
    assert "no_flip_flop" not in trace and "no_flip_flop_i" not in trace


def test_a_name_taken_by_another_kernel_is_refused():
    with pytest.raises(ModelSpecError, match="taken"):
        register_kernel("oral1cmt")(ToyIVBolus)


def test_bundled_kernels_declare_their_facts():
    """Every bundled kernel states units and descriptions for each parameter, and those with first-order
    absorption give an elimination rate (1/h): CL/V for the linear ones, VMAX/(KM V) at low concentration
    for Michaelis-Menten (KM converted by the kernel's scale, mg and ng/mL here: 1000)."""
    p = {"CL": 2.0, "V": 10.0, "KA": 1.0, "VMAX": 20.0, "KM": 500.0, "TLAG": 0.0, "F1": 1.0}
    for name in ("oral1cmt", "oral1cmt_ode", "oral1cmt_mm"):
        kernel = poppk.pk.get_kernel(name, "mg", "ng/mL")
        assert set(kernel.parameters) <= set(kernel.units) and set(kernel.parameters) <= set(kernel.descriptions)
        assert kernel.absorption_rate == "KA"
    assert poppk.pk.get_kernel("oral1cmt").elimination_rate(p) == pytest.approx(0.2)
    assert poppk.pk.get_kernel("oral1cmt_mm", "mg", "ng/mL").elimination_rate(p) == pytest.approx(20 * 1000 / (500 * 10))
