"""Structural models: every closed form (1-3 compartments, IV and oral) against independent references.

References, none of them written from the kernels' formulas:

* ``_expm_reference``: the compartment ODEs as a matrix ``M`` (amounts; NONMEM's ADVAN numbering) solved
  event by event with ``scipy.linalg.expm`` -- boluses added to their compartment, infusions as constant
  inputs (Van Loan's augmented matrix for the integral), steady state as 2,000 earlier intervals of doses;
* hand-derived formulas, each with its derivation cited at the test;
* the general ODE engine (a linear two-compartment model written as a user would, solved adaptively).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import poppk
from poppk.pk import AbstractODEModel, Doses, Sampling, concentrations, get_kernel

CL, V1, Q, V2, Q3, V3, KA = 3.0, 20.0, 5.0, 40.0, 2.0, 100.0, 1.3
PARAMS = {
    "iv1cmt": {"CL": CL, "V": V1},
    "iv2cmt": {"CL": CL, "V1": V1, "Q": Q, "V2": V2},
    "iv3cmt": {"CL": CL, "V1": V1, "Q": Q, "V2": V2, "Q3": Q3, "V3": V3},
    "oral1cmt": {"CL": CL, "V": V1, "KA": KA},
    "oral2cmt": {"CL": CL, "V1": V1, "Q": Q, "V2": V2, "KA": KA},
    "oral3cmt": {"CL": CL, "V1": V1, "Q": Q, "V2": V2, "Q3": Q3, "V3": V3, "KA": KA},
}


def _matrix(name: str, p: dict) -> tuple[np.ndarray, int]:
    """The kernel's ODE system on amounts, ``dA/dt = M A``, and the index of the central compartment."""
    v1 = p.get("V1", p.get("V"))
    rates = [(p["Q"] / v1, p["Q"] / p["V2"])] if "Q" in p else []
    if "Q3" in p:
        rates.append((p["Q3"] / v1, p["Q3"] / p["V3"]))
    n = 1 + len(rates)
    m = np.zeros((n, n))
    m[0, 0] = -p["CL"] / v1
    for j, (out, back) in enumerate(rates, start=1):
        m[0, 0] -= out
        m[j, 0], m[0, j], m[j, j] = out, back, -back
    if name.startswith("oral"):
        full = np.zeros((n + 1, n + 1))
        full[1:, 1:] = m
        full[0, 0], full[1, 0] = -p["KA"], p["KA"]
        return full, 1
    return m, 0


def _expm_reference(name: str, p: dict, records: list[dict], times) -> np.ndarray:
    """Concentrations at ``times`` (samples after the records at the same time, but before additional
    doses: NONMEM's order) by matrix exponentials between events, record by record (the models are
    linear, so contributions add); a steady-state record's 2,000 earlier intervals act from its time on."""
    times = np.asarray(times, dtype=float)
    total = np.zeros(times.size)
    for r in records:
        part = _expm_one(name, p, r, times)
        if r.get("ss"):
            part = np.where(times >= r["time"], part, 0.0)
        total += part
    return total


def _expm_one(name: str, p: dict, r: dict, times) -> np.ndarray:
    m, central = _matrix(name, p)
    n = m.shape[0]
    amount = r["amt"] * (p.get("F1", 1.0) if r.get("cmt", 1) == 1 else 1.0)
    events = []  # (time, priority, kind, cmt, value): kind 0 bolus, 1 rate change, 2 sample
    for k in range(-2000 if r.get("ss") else 0, r.get("addl", 0) + 1):
        t0 = r["time"] + k * r.get("ii", 0.0)
        prio = -1 if k <= 0 else 1  # the record's own dose before samples at its time; ADDL doses after
        if r.get("rate", 0.0) > 0:
            dur = amount / r["rate"]
            events += [(t0, prio, 1, r.get("cmt", 1), r["rate"]), (t0 + dur, prio, 1, r.get("cmt", 1), -r["rate"])]
        else:
            events.append((t0, prio, 0, r.get("cmt", 1), amount))
    events += [(t, 0, 2, 0, 0.0) for t in times]
    events.sort(key=lambda e: (e[0], e[1]))
    y, u, t_now, out = np.zeros(n), np.zeros(n), events[0][0], []
    for t, _, kind, cmt, value in events:
        h = t - t_now
        if h > 0:
            aug = np.zeros((n + 1, n + 1))
            aug[:n, :n], aug[:n, n] = m * h, u * h
            e = scipy.linalg.expm(aug)
            y = e[:n, :n] @ y + e[:n, n]
            t_now = t
        if kind == 0:
            y[cmt - 1] += value
        elif kind == 1:
            u[cmt - 1] += value
        else:
            out.append(y[central] / p.get("V1", p.get("V")))
    return np.asarray(out)


def _tables(records: list[dict], times, width: int = 4, n_obs: int = 8):
    """One subject's Doses and Sampling, padded to fixed widths (one compiled shape for many tables)."""
    d = len(records)

    def col(key, default=0.0, dtype=float):
        v = np.zeros(width, dtype=dtype)
        v[:d] = [r.get(key, default) for r in records]
        return v[None, :]

    doses = Doses(time=col("time"), amt=col("amt"), rate=col("rate"), cmt=col("cmt", 1, int), ii=col("ii"),
                  addl=col("addl", 0, int), ss=col("ss", False, bool), order=np.arange(width, dtype=float)[None, :],
                  epoch=np.zeros((1, width), int), mask=(np.arange(width) < d)[None, :])
    t = np.zeros(n_obs)
    t[: len(times)] = times
    epoch = np.where(np.arange(n_obs) < len(times), 0, -2)[None, :]
    sampling = Sampling(time=t[None, :], order=(width + np.arange(n_obs, dtype=float))[None, :], epoch=epoch)
    return doses, sampling


def _predict(name, p, records, times, kernel=None):
    doses, sampling = _tables(records, times)
    out = np.asarray(concentrations(kernel or get_kernel(name), p, doses, sampling))[0]
    return out[: len(times)]


TIMES = [0.5, 1.0, 2.0, 5.0, 12.5, 24.0, 30.0, 47.0]
CASES = {
    "bolus": [dict(time=0.0, amt=100.0)],
    "infusion": [dict(time=0.0, amt=100.0, rate=50.0)],
    "infusion train": [dict(time=0.0, amt=100.0, rate=25.0, ii=12.0, addl=3)],
    "overlapping infusions (duration > II)": [dict(time=0.0, amt=100.0, rate=5.0, ii=12.0, addl=3)],
    "steady-state bolus": [dict(time=0.0, amt=100.0, ii=12.0, ss=True, addl=2)],
    "steady-state infusion": [dict(time=0.0, amt=100.0, rate=50.0, ii=12.0, ss=True, addl=2)],
    "steady-state infusion longer than II": [dict(time=0.0, amt=100.0, rate=4.0, ii=12.0, ss=True, addl=2)],
    "bolus and infusion mixed": [dict(time=0.0, amt=100.0), dict(time=3.0, amt=50.0, rate=10.0, ii=24.0, addl=1)],
}
ORAL_CASES = {
    "depot dose train": [dict(time=0.0, amt=100.0, ii=12.0, addl=4)],
    "depot steady state": [dict(time=0.0, amt=100.0, ii=12.0, ss=True, addl=1)],
    "zero-order input into the depot": [dict(time=0.0, amt=100.0, rate=20.0)],
    "central bolus and infusion with depot doses": [dict(time=0.0, amt=100.0), dict(time=3.0, amt=50.0, rate=10.0, cmt=2),
                                                    dict(time=6.0, amt=30.0, cmt=2)],
    "depot infusion at steady state, longer than II": [dict(time=0.0, amt=100.0, rate=5.0, ii=12.0, ss=True, addl=3)],
}


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("case", sorted(CASES) + sorted(ORAL_CASES))
def test_closed_forms_equal_matrix_exponential_reference(name, case):
    oral = name.startswith("oral")
    if case in ORAL_CASES and not oral:
        pytest.skip("oral-only dosing")
    records = CASES.get(case) or ORAL_CASES[case]
    if oral and case in CASES:  # the same IV doses into the central compartment of the oral model
        records = [dict(r, cmt=2) for r in records]
    got = _predict(name, PARAMS[name], records, TIMES)
    want = _expm_reference(name, PARAMS[name], records, TIMES)
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_peripheral_doses_follow_the_compartment_numbering():
    """NONMEM ADVAN3: CMT 2 is the peripheral compartment; a bolus there reaches the central one with
    ``D k21 (exp(-beta t) - exp(-alpha t)) / (alpha - beta)`` (Gibaldi and Perrier 1982, ch. 2, by
    the Laplace transform of the two-compartment model)."""
    p = PARAMS["iv2cmt"]
    k10, k12, k21 = p["CL"] / p["V1"], p["Q"] / p["V1"], p["Q"] / p["V2"]
    s = k10 + k12 + k21
    alpha = 0.5 * (s + np.sqrt(s * s - 4 * k10 * k21))
    beta = k10 * k21 / alpha
    t = np.asarray(TIMES)
    want = 100.0 * k21 * (np.exp(-beta * t) - np.exp(-alpha * t)) / (alpha - beta) / p["V1"]
    np.testing.assert_allclose(_predict("iv2cmt", p, [dict(time=0.0, amt=100.0, cmt=2)], TIMES), want, rtol=1e-12)


def test_two_compartment_bolus_macro_constants():
    """IV bolus, two compartments: ``C = A exp(-alpha t) + B exp(-beta t)`` with ``A = D/V1 (alpha - k21) /
    (alpha - beta)``, ``B = D/V1 (k21 - beta) / (alpha - beta)`` (Gibaldi and Perrier 1982, eqs. 2.9-2.12)."""
    p = PARAMS["iv2cmt"]
    k10, k12, k21 = p["CL"] / p["V1"], p["Q"] / p["V1"], p["Q"] / p["V2"]
    s = k10 + k12 + k21
    alpha = 0.5 * (s + np.sqrt(s * s - 4 * k10 * k21))
    beta = 0.5 * (s - np.sqrt(s * s - 4 * k10 * k21))
    t = np.asarray(TIMES)
    a, b = 100 / p["V1"] * (alpha - k21) / (alpha - beta), 100 / p["V1"] * (k21 - beta) / (alpha - beta)
    np.testing.assert_allclose(_predict("iv2cmt", p, [dict(time=0.0, amt=100.0)], TIMES),
                               a * np.exp(-alpha * t) + b * np.exp(-beta * t), rtol=1e-12)


def test_one_compartment_infusion_by_hand():
    """Zero-order infusion at rate R for T hours: ``C = R/CL (1 - exp(-k t))`` while it runs and
    ``C(T) exp(-k (t - T))`` after (Gibaldi and Perrier 1982, eqs. 1.124 and 1.127)."""
    cl, v, r, dur = 3.0, 20.0, 50.0, 2.0
    k = cl / v
    t = np.asarray(TIMES)
    during = r / cl * (1 - np.exp(-k * np.minimum(t, dur)))
    want = np.where(t <= dur, during, r / cl * (1 - np.exp(-k * dur)) * np.exp(-k * (t - dur)))
    got = _predict("iv1cmt", {"CL": cl, "V": v}, [dict(time=0.0, amt=r * dur, rate=r)], TIMES)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_steady_state_intermittent_infusion_by_hand():
    """Intermittent infusion (T hours every tau) at steady state, one compartment: the trough is
    ``R/CL (1 - exp(-k T)) exp(-k (tau - T)) / (1 - exp(-k tau))`` and the profile in an interval is the
    trough decaying plus a new infusion (superposition; Gibaldi and Perrier 1982, section 1.8, eq. 1.143)."""
    cl, v, r, dur, tau = 3.0, 20.0, 50.0, 2.0, 12.0
    k = cl / v
    trough = r / cl * (1 - np.exp(-k * dur)) * np.exp(-k * (tau - dur)) / (1 - np.exp(-k * tau))
    s = np.asarray([0.5, 1.0, 2.0, 5.0, 11.9])  # time since the SS record's dose
    peak = trough * np.exp(-k * dur) + r / cl * (1 - np.exp(-k * dur))
    want = np.where(s <= dur, trough * np.exp(-k * s) + r / cl * (1 - np.exp(-k * s)), peak * np.exp(-k * (s - dur)))
    got = _predict("iv1cmt", {"CL": cl, "V": v}, [dict(time=10.0, amt=r * dur, rate=r, ii=tau, ss=True)], list(10.0 + s))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_steady_state_equals_a_long_run_of_doses(name):
    """SS=1 is the limit of repeated dosing: 400 earlier doses of the same train (a geometric series summed
    to convergence) give the same concentrations to 1e-8."""
    p = PARAMS[name]
    records_ss = [dict(time=4800.0, amt=100.0, rate=30.0, ii=12.0, ss=True, addl=1, cmt=2 if name.startswith("oral") else 1)]
    records_long = [dict(records_ss[0], time=0.0, ss=False, addl=401)]
    times = [4800.5, 4801.0, 4803.0, 4806.0, 4811.9, 4812.0, 4820.0]
    np.testing.assert_allclose(_predict(name, p, records_ss, times), _predict(name, p, records_long, times), rtol=1e-8)


def test_bioavailability_scales_an_infusion_duration_as_nonmem_does():
    """NONMEM: with RATE > 0, F scales the amount, so the infusion runs F*AMT/RATE hours at RATE. 100 mg at
    50 mg/h with F1 = 0.5 is the same as 50 mg at 50 mg/h (one hour), not 50 mg over two hours."""
    p = dict(PARAMS["iv1cmt"], F1=0.5)
    got = _predict("iv1cmt", p, [dict(time=0.0, amt=100.0, rate=50.0)], TIMES)
    want = _predict("iv1cmt", PARAMS["iv1cmt"], [dict(time=0.0, amt=50.0, rate=50.0)], TIMES)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_modelled_duration_and_rate():
    """RATE = -2: the duration is the parameter D1 (rate F*AMT/D1); RATE = -1: the rate is R1 (duration
    F*AMT/R1). Both equal the same infusion given with its RATE in the data."""
    base = _predict("iv2cmt", PARAMS["iv2cmt"], [dict(time=0.0, amt=100.0, rate=25.0)], TIMES)
    d = _predict("iv2cmt", dict(PARAMS["iv2cmt"], D1=4.0), [dict(time=0.0, amt=100.0, rate=-2.0)], TIMES)
    r = _predict("iv2cmt", dict(PARAMS["iv2cmt"], R1=25.0), [dict(time=0.0, amt=100.0, rate=-1.0)], TIMES)
    np.testing.assert_allclose(d, base, rtol=1e-12)
    np.testing.assert_allclose(r, base, rtol=1e-12)


def _frame_data(rows: str, **kw):
    import io

    import pandas as pd

    return poppk.data.from_frame(pd.read_csv(io.StringIO(rows)), warn=False, **kw)


def test_reset_ends_a_running_infusion():
    """EVID 3 empties every compartment and ends infusions still running (NONMEM): after a reset in the
    middle of a 10-h infusion nothing is left; EVID 4 (reset and dose) starts afresh."""
    data = _frame_data("ID,TIME,AMT,RATE,DV,EVID,MDV,CMT\n"
                       "1,0,100,10,.,1,1,1\n1,4,0,0,1,0,0,0\n1,5,0,0,.,3,1,1\n1,7,0,0,1,0,0,0\n"
                       "1,8,50,0,.,4,1,1\n1,9,0,0,1,0,0,0\n")
    got = poppk.predict("iv1cmt", PARAMS["iv1cmt"], data)[0]
    k = CL / V1
    np.testing.assert_allclose(got[0], 10 / CL * (1 - np.exp(-4 * k)), rtol=1e-12)
    assert got[1] == 0.0  # t=7: the reset at t=5 ended the infusion
    np.testing.assert_allclose(got[2], 50 / V1 * np.exp(-k), rtol=1e-12)  # t=9: only the EVID 4 dose at t=8


def test_ss2_adds_steady_state_to_earlier_doses():
    """SS=2 (NONMEM): steady state of its train *added* to what earlier doses left, no reset; for a
    linear model the superposition of an SS=1 train started afresh and the earlier dose."""
    rows = "ID,TIME,AMT,RATE,DV,EVID,MDV,CMT,II,SS\n1,0,500,0,.,1,1,1,0,0\n1,10,100,20,.,1,1,1,12,{ss}\n" \
           "1,12,0,0,1,0,0,0,0,0\n1,20,0,0,1,0,0,0,0,0\n"
    ss2 = poppk.predict("iv2cmt", PARAMS["iv2cmt"], _frame_data(rows.format(ss=2)))[0]
    ss1 = poppk.predict("iv2cmt", PARAMS["iv2cmt"], _frame_data(rows.format(ss=1)))[0]
    first = _predict("iv2cmt", PARAMS["iv2cmt"], [dict(time=0.0, amt=500.0)], [12.0, 20.0])
    np.testing.assert_allclose(ss2, ss1 + first, rtol=1e-12)


@pytest.mark.slow  # about a minute: .ci/run's slow step
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(PARAMS)),
    records=st.lists(st.fixed_dictionaries({
        "time": st.sampled_from([0.0, 1.5, 6.0, 13.0]), "amt": st.sampled_from([10.0, 100.0, 250.0]),
        "rate": st.sampled_from([0.0, 0.0, 5.0, 40.0]), "cmt": st.integers(1, 4),
        "ii": st.sampled_from([6.0, 12.0]), "addl": st.integers(0, 3), "ss": st.booleans(),
    }), min_size=1, max_size=3),
    p_scale=st.sampled_from([0.3, 1.0, 3.0]),
)
def test_random_event_tables_match_the_reference(name, records, p_scale):
    """Bolus, infusion and oral doses, ADDL trains, steady state (only on the first record, which starts
    the subject's history), any compartment the model has, against the matrix-exponential reference."""
    n_cmt = len(get_kernel(name).compartments)
    records = sorted((dict(r, cmt=min(r["cmt"], n_cmt)) for r in records), key=lambda r: r["time"])
    records = [dict(r, ss=r["ss"] and i == 0) for i, r in enumerate(records)]
    p = {k: (v * p_scale if k in ("CL", "KA") else v) for k, v in PARAMS[name].items()}
    times = [0.7, 3.0, 8.0, 14.0, 20.0, 33.0]
    got = _predict(name, p, records, times)
    want = _expm_reference(name, p, records, times)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12 * max(abs(want).max(), 1e-300))


class _Linear2CmtODE(AbstractODEModel):
    """The two-compartment IV model written as a user writes an ODE model: no dosing terms."""

    compartments = ("central", "peripheral")
    central_cmt = 1
    depot_cmt = None
    parameters = ("CL", "V1", "Q", "V2")
    optional = {"F1": 1.0}
    units = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "F1": ""}

    def rhs(self, t, a, p):
        import jax.numpy as jnp

        flow = p["Q"] * (a[0] / p["V1"] - a[1] / p["V2"])
        return jnp.stack([-p["CL"] / p["V1"] * a[0] - flow, flow])


@pytest.mark.parametrize("case", ["bolus", "infusion train", "steady-state infusion", "bolus and infusion mixed"])
def test_general_ode_engine_equals_the_closed_form(case):
    """The ODE engine (doses, infusion starts and ends, SS fixed point) on a user-style linear model
    equals the two-compartment closed form: adaptively to 1e-6, on the default fixed grid to 1e-4."""
    records = CASES[case]
    want = _predict("iv2cmt", PARAMS["iv2cmt"], records, TIMES)
    adaptive = _predict(None, PARAMS["iv2cmt"], records, TIMES, kernel=_Linear2CmtODE(grid=0, rtol=1e-10, max_steps=4096))
    np.testing.assert_allclose(adaptive, want, rtol=1e-6)
    fixed = _predict(None, PARAMS["iv2cmt"], records, TIMES, kernel=_Linear2CmtODE())
    np.testing.assert_allclose(fixed, want, rtol=1e-4)


@pytest.mark.slow  # the implicit solver compiles for 35 s; run in .ci/run's slow step
def test_stiff_systems_solve_with_the_implicit_solver():
    """A stiff system: the two-compartment model with a distribution clearance of 1e5 L/h (exchange rate
    constants near 1e4/h, five orders above elimination). The implicit solver (``stiff=True``, ``[model]
    solver = "stiff"``) equals the closed form (reference: ``iv2cmt``, itself checked against the matrix
    exponential above) to 1e-5, with a finite gradient."""
    import jax
    import jax.numpy as jnp

    p = dict(PARAMS["iv2cmt"], Q=1e5)
    records = CASES["bolus and infusion mixed"]
    want = _predict("iv2cmt", p, records, TIMES)
    kernel = _Linear2CmtODE(stiff=True, rtol=1e-9, max_steps=4096)
    got = _predict(None, p, records, TIMES, kernel=kernel)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    doses, sampling = _tables(records, TIMES)
    prepared = kernel.prepare(doses, sampling)
    present = np.asarray(sampling.order) >= 0

    def f(lp):
        c = poppk.pk.predict_subjects(kernel, {k: jnp.exp(v) for k, v in lp.items()}, prepared, sampling)
        return jnp.sum(jnp.where(present, jnp.log(jnp.where(present, c, 1.0)), 0.0))

    grad = jax.grad(f)({k: jnp.log(v) for k, v in p.items()})
    assert all(np.isfinite(float(g)) for g in grad.values())
    spec = poppk.model.parse_spec(
        '[model]\nkernel = "oral1cmt_mm"\nsolver = "stiff"\n[parameters]\nVMAX = { median = 30, sd_log = 1 }\n'
        'KM = { median = 2, sd_log = 1 }\nV = { median = 20, sd_log = 1 }\nKA = { median = 1, sd_log = 1 }\n'
        '[iiv]\nV = 0.3\n', "stiff.toml")
    assert spec.make_kernel().stiff and not spec.make_kernel().forward_sensitivities
    with pytest.raises(poppk.PoppkError, match="model.solver"):
        poppk.model.parse_spec('[model]\nkernel = "iv1cmt"\nsolver = "stiff"\n[parameters]\nCL = 1\nV = 1\n', "x.toml")


@pytest.mark.parametrize("name", sorted(PARAMS) + ["oral1cmt_mm"])
def test_gradients_equal_finite_differences(name):
    """d(sum of log concentrations)/d(log parameter) by JAX against central differences (step 1e-5)."""
    import jax
    import jax.numpy as jnp

    if name == "oral1cmt_mm":
        p, kernel = {"VMAX": 30.0, "KM": 2.0, "V": 20.0, "KA": 1.3}, get_kernel(name)
    else:
        p, kernel = dict(PARAMS[name]), get_kernel(name)
    cmt_iv = 2 if name.startswith("oral") else 1
    records = [dict(time=0.0, amt=100.0, ii=12.0, ss=True), dict(time=3.0, amt=50.0, rate=20.0, cmt=cmt_iv, ii=24.0, addl=1)]
    if name == "oral1cmt_mm":  # the ODE's steady state is differentiated in tests/test_pk.py; here the infusions
        records = [dict(time=0.0, amt=100.0, ii=12.0, addl=2), records[1]]
    doses, sampling = _tables(records, TIMES)
    prepared = kernel.prepare(doses, sampling)
    present = np.arange(8) < len(TIMES)

    def f(logp):
        c = poppk.pk.predict_subjects(kernel, {k: jnp.exp(v) for k, v in logp.items()}, prepared, sampling)
        return jnp.sum(jnp.where(present, jnp.log(jnp.where(present, c, 1.0)), 0.0))

    logp = {k: jnp.log(v) for k, v in p.items()}
    grad = jax.grad(f)(logp)
    for k in p:
        h = 1e-5
        up, down = dict(logp, **{k: logp[k] + h}), dict(logp, **{k: logp[k] - h})
        fd = (f(up) - f(down)) / (2 * h)
        assert np.isfinite(float(grad[k]))
        np.testing.assert_allclose(float(grad[k]), float(fd), rtol=1e-5, atol=1e-7, err_msg=k)
