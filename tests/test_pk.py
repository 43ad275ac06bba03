"""The dosing engine: closed form, ODE, Michaelis-Menten.

References: the textbook one-compartment oral solution (Gibaldi & Perrier,
*Pharmacokinetics*, 2nd ed., ch. 1 and 3: single dose, multiple dosing and
steady state by superposition of geometric series), evaluated here with
numpy independently of poppk; and the ODE solved by diffrax, which must
agree with the closed form to 1e-6 relative.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poppk
from poppk.pk import Oral1Cmt, Oral1CmtMM, Oral1CmtODE, predict


def frame(doses, obs_times, ids=1, **extra):
    """NONMEM records: doses = [(time, amt, cmt, ii, addl, ss, evid)], samples at obs_times."""
    rows = []
    for t, amt, cmt, ii, addl, ss, *ev in doses:
        rows.append(dict(ID=ids, TIME=t, AMT=amt, DV=np.nan, EVID=ev[0] if ev else 1, MDV=1, CMT=cmt, II=ii,
                         ADDL=addl, SS=ss))
    for t in obs_times:
        rows.append(dict(ID=ids, TIME=t, AMT=0.0, DV=1.0, EVID=0, MDV=0, CMT=2, II=0, ADDL=0, SS=0))
    df = pd.DataFrame(rows)
    df["_k"] = np.arange(len(df))
    df = df.sort_values(["TIME", "_k"], kind="stable").drop(columns="_k")
    for k, v in extra.items():
        df[k] = v
    return df


def dataset(*frames):
    return poppk.from_frame(pd.concat(frames, ignore_index=True), warn=False)


def hand_oral(t, dose, cl, v, ka, f=1.0):
    k = cl / v
    t = np.asarray(t, float)
    return np.where(t > 0, f * dose * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t)), 0.0)


P = {"CL": 2.0, "V": 20.0, "KA": 1.2}
TIMES = [0.5, 1, 2, 4, 8, 12, 24, 36, 47.9, 48, 49, 60]


def test_single_dose_matches_hand_formula():
    data = dataset(frame([(0, 100, 1, 0, 0, 0)], TIMES))
    got = predict("oral1cmt", P, data)[0]
    np.testing.assert_allclose(got, hand_oral(TIMES, 100, **{k.lower(): v for k, v in P.items()}), rtol=1e-12)


def test_theophylline_subject_1_by_hand():
    data = poppk.read_nonmem(poppk.datasets.path("theophylline"), warn=False)
    got = predict("oral1cmt", {"CL": 2.75, "V": 31.8, "KA": 1.59}, data)[0]
    t = np.asarray(data.sampling.time[0])
    np.testing.assert_allclose(got, hand_oral(t, 319.992, 2.75, 31.8, 1.59), rtol=1e-12)


def test_addl_train_matches_sum_of_single_doses():
    data = dataset(frame([(0, 100, 1, 12, 4, 0)], TIMES))
    expected = sum(hand_oral(np.asarray(TIMES) - 12 * k, 100, 2.0, 20.0, 1.2) for k in range(5))
    np.testing.assert_allclose(predict("oral1cmt", P, data)[0], expected, rtol=1e-12)


def _decimal_oral(t, doses, cl, v, ka):
    """Sum over every dose of F D KA / (V (KA - K)) (exp(-K tau) - exp(-KA tau)), in 60-digit decimal arithmetic:
    the subtraction loses at most 15 of the 60 digits even at KA = K (1 + 1e-15); KA == K exactly takes the limit
    D K tau exp(-K tau) / V. ``doses`` = [(time, amount)]. An independent reference for the closed form near KA == K."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    cl, v, ka = Decimal(repr(cl)), Decimal(repr(v)), Decimal(repr(ka))
    k = cl / v
    out = []
    for ti in t:
        c = Decimal(0)
        for td, amt in doses:
            tau = Decimal(repr(float(ti))) - Decimal(repr(float(td)))
            if tau <= 0:
                continue
            if ka == k:
                c += Decimal(repr(amt)) * k * tau * (-k * tau).exp() / v
            else:
                c += Decimal(repr(amt)) * ka / (v * (ka - k)) * ((-k * tau).exp() - (-ka * tau).exp())
        out.append(float(c))
    return np.array(out)


@pytest.mark.parametrize("rel", [0.0, 1e-15, 1e-12, 1e-9, 1e-7, 1e-6, 1e-5, 1e-3, -1e-9, -1e-6, -1e-3, 0.5, -0.5])
@pytest.mark.parametrize("train", [False, True])
def test_near_ka_equal_k_matches_high_precision_reference(rel, train):
    # Reference: _decimal_oral, the textbook sum in 60-digit arithmetic. Single doses take the cancellation-free
    # divided difference (exact everywhere); trains the midpoint derivative within 1e-6 relative of KA == K, and
    # just outside it the plain difference, which loses digits at early times (6e-8 relative at t = 0.01 h, KA = K (1 + 1e-5)).
    cl, v = 2.0, 20.0
    ka = cl / v * (1 + rel)
    t = np.array([0.01, 0.5, 2.0, 10.0, 30.0, 100.0, 300.0])
    if train:
        data = dataset(frame([(0, 100, 1, 12, 3, 0)], t))
        doses = [(12.0 * j, 100.0) for j in range(4)]
    else:
        data = dataset(frame([(0, 100, 1, 0, 0, 0)], t))
        doses = [(0.0, 100.0)]
    got = predict("oral1cmt", {"CL": cl, "V": v, "KA": ka}, data)[0]
    np.testing.assert_allclose(got, _decimal_oral(t, doses, cl, v, ka), rtol=2e-7 if train else 1e-13)


def test_sample_at_dose_time_is_a_trough_and_record_order_decides():
    # Bolus into the central compartment makes the order visible.
    pre = frame([(0, 100, 2, 12, 1, 0)], [12.0])  # additional dose at 12: sample is a trough
    post = pd.DataFrame([dict(ID=1, TIME=0, AMT=100, DV=np.nan, EVID=1, MDV=1, CMT=2, II=0, ADDL=0, SS=0),
                         dict(ID=1, TIME=12, AMT=100, DV=np.nan, EVID=1, MDV=1, CMT=2, II=0, ADDL=0, SS=0),
                         dict(ID=1, TIME=12, AMT=0, DV=1.0, EVID=0, MDV=0, CMT=2, II=0, ADDL=0, SS=0)])
    k = 0.1
    trough = 100 / 20 * np.exp(-k * 12)
    assert predict("oral1cmt", P, dataset(pre))[0, 0] == pytest.approx(trough, rel=1e-12)
    assert predict("oral1cmt", P, dataset(post))[0, 0] == pytest.approx(trough + 100 / 20, rel=1e-12)


def test_steady_state_matches_closed_form():
    tau, dose = 12.0, 100.0
    k, ka, v = 0.1, 1.2, 20.0
    t = np.array([0.0, 0.5, 1, 2, 6, 11.9, 12, 18, 24])
    data = dataset(frame([(0, dose, 1, tau, 0, 1)], t))
    ss_curve = lambda s: dose * ka / (v * (ka - k)) * (  # noqa: E731
        np.exp(-k * s) / (1 - np.exp(-k * tau)) - np.exp(-ka * s) / (1 - np.exp(-ka * tau)))
    # After the SS dose at 0 no more doses: beyond tau the profile keeps decaying from the SS state.
    expected = np.where(t <= tau, ss_curve(np.where(t == 0, tau, t)), ss_curve(t))
    np.testing.assert_allclose(predict("oral1cmt", P, data)[0], expected, rtol=1e-12)


def test_ka_equal_k_uses_the_limit():
    k = 0.1
    t = np.array([0.5, 2.0, 10.0, 30.0])
    data = dataset(frame([(0, 100, 1, 12, 3, 0)], t))
    limit = sum(np.where(t - 12 * j > 0, 100 * k * (t - 12 * j) * np.exp(-k * (t - 12 * j)) / 20, 0) for j in range(4))
    at = predict("oral1cmt", {"CL": 2.0, "V": 20.0, "KA": k}, data)[0]
    np.testing.assert_allclose(at, limit, rtol=1e-10)
    near = predict("oral1cmt", {"CL": 2.0, "V": 20.0, "KA": k * (1 + 1e-5)}, data)[0]
    np.testing.assert_allclose(near, limit, rtol=1e-4)
    grad = jax.grad(lambda ka: Oral1Cmt().concentrations(
        Oral1Cmt().complete({"CL": 2.0, "V": 20.0, "KA": ka}), jax.tree_util.tree_map(lambda a: a[0], data.doses),
        jax.tree_util.tree_map(lambda a: a[0], data.sampling)).sum())(k)
    assert np.isfinite(grad)


ODE_CASES = {
    "single": [(0, 320, 1, 0, 0, 0)],
    "train": [(0, 100, 1, 12, 9, 0)],
    "steady_state": [(0, 100, 1, 12, 3, 1)],
    "bolus_and_oral": [(0, 50, 2, 0, 0, 0), (6, 100, 1, 8, 2, 0)],
    "reset": [(0, 100, 1, 12, 2, 0), (30, 80, 1, 0, 0, 0, 4)],
}


@pytest.mark.parametrize("case", list(ODE_CASES), ids=list(ODE_CASES))
@pytest.mark.parametrize("tlag", [0.0, 0.7])
def test_closed_form_matches_ode(case, tlag):
    t = np.array([0.25, 0.5, 1, 2, 3, 6, 6.5, 9, 12, 13, 20, 29, 30, 30.5, 31, 36, 40, 48])
    data = dataset(frame(ODE_CASES[case], t))
    params = {"CL": 3.0, "V": 25.0, "KA": 0.9, "TLAG": tlag, "F1": 0.8}
    closed = predict("oral1cmt", params, data)[0]
    ode = predict(Oral1CmtODE(rtol=1e-11, atol=1e-14, max_steps=4096, grid=0), params, data)[0]
    assert (closed > 0).sum() > 5
    np.testing.assert_allclose(ode, closed, rtol=1e-6, atol=1e-12 * closed.max())


@pytest.mark.parametrize("case", list(ODE_CASES), ids=list(ODE_CASES))
def test_event_order_sorted_once_in_numpy_matches_the_sort_in_the_model(case):
    # Without a lag time an ODE kernel visits its events in an order sorted once when the data are prepared
    # (ODEDoses.order); given TLAG (here 0) it sorts them in the model. Same events, same keys: the same
    # predictions, with SS records, trains, boluses, resets and the fixed grid's filler times.
    t = np.array([0.25, 0.5, 1, 2, 3, 6, 6.5, 9, 12, 13, 20, 29, 30, 30.5, 31, 36, 40, 48])
    data = dataset(frame(ODE_CASES[case], t))
    params = {"VMAX": 20.0, "KM": 2.0, "V": 20.0, "KA": 4.0}
    presorted = predict(Oral1CmtMM(), params, data)
    sorted_in_model = predict(Oral1CmtMM(), {**params, "TLAG": 0.0}, data)
    assert np.isfinite(presorted).all() and (presorted > 0).sum() > 5
    np.testing.assert_allclose(presorted, sorted_in_model, rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", list(ODE_CASES), ids=list(ODE_CASES))
@pytest.mark.parametrize("kernel,params", [
    (Oral1CmtODE, {"CL": 3.0, "V": 25.0, "KA": 0.9, "TLAG": 0.7, "F1": 0.8}),
    (Oral1CmtMM, {"VMAX": 20.0, "KM": 2.0, "V": 20.0, "KA": 4.0, "TLAG": 0.7}),
], ids=["linear", "mm"])
def test_fixed_grid_solver_matches_adaptive_reference(case, kernel, params):
    # Reference: the same ODE by diffrax's adaptive Tsit5 at rtol 1e-11 (itself checked against the closed form).
    t = np.array([0.25, 0.5, 1, 2, 3, 6, 6.5, 9, 12, 13, 20, 29, 30, 30.5, 31, 36, 40, 48])
    data = dataset(frame(ODE_CASES[case], t))
    ref = predict(kernel(rtol=1e-11, atol=1e-14, max_steps=4096, grid=0), params, data)[0]
    grid = predict(kernel(), params, data)[0]
    np.testing.assert_allclose(grid, ref, rtol=5e-4, atol=1e-9 * ref.max())


def test_fixed_grid_solver_on_the_bundled_trial():
    # The generating model's own individual parameters (lxi15029_truth.json), adaptive reference as above.
    data = poppk.datasets.load("lxi15029")
    truth = poppk.datasets.load("lxi15029_truth")["individual"]
    p = {k: np.asarray(truth[k]) for k in ("VMAX", "KM", "V", "KA")}
    ref = predict(Oral1CmtMM(scale=1000.0, rtol=1e-11, atol=1e-14, max_steps=4096, grid=0), p, data)
    grid = predict(Oral1CmtMM(scale=1000.0), p, data)
    ok = np.isfinite(ref) & (ref > 0.01)  # 1% of the LLOQ
    np.testing.assert_allclose(grid[ok], ref[ok], rtol=5e-4)


@pytest.mark.parametrize("params", [
    {"VMAX": 58.90, "KM": 633.5, "V": 20.67, "KA": 2.326},
    {"VMAX": 86.09, "KM": 548.3, "V": 37.68, "KA": 2.932},
], ids=["fast-small-V", "fast"])
@pytest.mark.parametrize("steps", [8, 16])
def test_fixed_grid_solver_when_doses_cross_km(params, steps):
    # Regression: virtual patients of the bundled trial's MM fit at 150 mg q12h x 28 d (mg, ng/mL), whose
    # troughs sit far below KM and peaks far above it, with fast elimination (CL/V ~ 4.5 /h). Linearising
    # the elimination once per 8-h segment gave AUCs of -2e7; the reference is the adaptive solver.
    # Samples where poppk.simulate takes them (troughs, quadrature nodes of the last interval, band grid).
    times = poppk.simulate.regimen_times(poppk.parse_regimen("150 mg q12h x 28 d"))
    t = np.unique(np.concatenate(list(times.values())))
    data = dataset(frame([(0.0, 150.0, 1, 12.0, 55, 0)], t))
    ref = predict(Oral1CmtMM(scale=1000.0, rtol=1e-11, atol=1e-14, max_steps=4096, grid=0), params, data)[0]
    grid = predict(Oral1CmtMM(scale=1000.0, grid=steps), params, data)[0]
    assert np.all(grid >= 0)
    # 8 steps (the shipped MM spec, for fitting against 20% residual error): within 0.2% of the peak,
    # up to 2% at points on the rising limb far below it; 16 steps (the kernel's default): 5e-4 everywhere.
    tol = dict(rtol=2e-3, atol=2e-3 * ref.max()) if steps == 8 else dict(rtol=5e-4, atol=1e-6 * ref.max())
    np.testing.assert_allclose(grid, ref, **tol)


def test_theophylline_closed_form_matches_ode():
    data = poppk.read_nonmem(poppk.datasets.path("theophylline"), warn=False)
    p = {"CL": 2.75, "V": 31.8, "KA": 1.59}
    closed = predict("oral1cmt", p, data)
    ode = predict(Oral1CmtODE(rtol=1e-11, atol=1e-14, max_steps=4096, grid=0), p, data)
    ok = np.asarray(data.present)
    np.testing.assert_allclose(ode[ok], closed[ok], rtol=1e-6, atol=1e-12)


# Property tests -------------------------------------------------------------------------------------------

params_st = st.fixed_dictionaries({
    "CL": st.floats(0.2, 50.0), "V": st.floats(2.0, 300.0), "KA": st.floats(0.05, 8.0), "F1": st.floats(0.1, 1.0),
})


@settings(max_examples=30, deadline=None)
@given(params_st, st.floats(1.0, 1000.0), st.floats(0.1, 10.0))
def test_dose_linearity(p, dose, factor):
    t = [0.5, 1, 3, 8, 24]
    a = predict("oral1cmt", p, dataset(frame([(0, dose, 1, 12, 2, 0)], t)))[0]
    b = predict("oral1cmt", p, dataset(frame([(0, dose * factor, 1, 12, 2, 0)], t)))[0]
    np.testing.assert_allclose(b, a * factor, rtol=1e-10, atol=1e-300)


@settings(max_examples=30, deadline=None)
@given(params_st, st.floats(0.0, 20.0), st.sampled_from([1, 2]))
def test_superposition(p, t2, cmt2):
    t = [0.5, 2, 5, 10, 21, 30]
    first = [(0, 100, 1, 0, 0, 0)]
    second = [(t2, 60, cmt2, 0, 0, 0)]
    both = predict("oral1cmt", p, dataset(frame(first + second, t)))[0]
    apart = predict("oral1cmt", p, dataset(frame(first, t)))[0] + predict("oral1cmt", p, dataset(frame(second, t)))[0]
    np.testing.assert_allclose(both, apart, rtol=1e-9, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(params_st.filter(lambda p: 0.02 < p["CL"] / p["V"] < 2.0))
def test_auc_to_infinity_is_f_dose_over_cl(p):
    k = p["CL"] / p["V"]
    horizon = 40.0 / min(k, p["KA"])
    t = np.concatenate([np.linspace(0, 5 / p["KA"], 4001), np.linspace(5 / p["KA"], horizon, 20001)[1:]])
    c = predict("oral1cmt", p, dataset(frame([(0, 100.0, 1, 0, 0, 0)], t)))[0]
    auc = np.trapezoid(c, t) + c[-1] / k
    assert auc == pytest.approx(p["F1"] * 100.0 / p["CL"], rel=2e-3)  # trapezoid on a fine grid


@settings(max_examples=20, deadline=None)
@given(params_st.filter(lambda p: p["CL"] / p["V"] > 0.03), st.sampled_from([8.0, 12.0, 24.0]))
def test_long_dosing_converges_to_steady_state(p, tau):
    n = int(np.ceil(60 / min(p["CL"] / p["V"], p["KA"]) / tau)) + 1
    s = np.array([0.3, 1.0, 3.0, tau * 0.9])
    long = predict("oral1cmt", p, dataset(frame([(0, 100, 1, tau, n, 0)], n * tau + s)))[0]
    ss = predict("oral1cmt", p, dataset(frame([(0, 100, 1, tau, 0, 1)], s)))[0]
    np.testing.assert_allclose(long, ss, rtol=1e-9, atol=1e-14)


@settings(max_examples=15, deadline=None)
@given(params_st, st.integers(1, 30))
def test_padding_leaves_predictions_unchanged(p, extra):
    small = frame([(0, 100, 1, 0, 0, 0)], [1.0, 4.0], ids=1)
    big = frame([(0, 50, 1, 6, extra, 0), (3, 20, 2, 0, 0, 0)], np.linspace(0.5, 100, 5 + extra), ids=2)
    alone = predict("oral1cmt", p, dataset(small))[0, :2]
    padded = predict("oral1cmt", p, dataset(small, big))[0, :2]
    np.testing.assert_allclose(alone, padded, rtol=1e-14)  # summation order may differ by one ulp


# Michaelis-Menten ------------------------------------------------------------------------------------------

def test_mm_with_large_km_is_linear():
    t = np.array([0.5, 1, 2, 4, 8, 12, 24, 30])
    data = dataset(frame([(0, 100, 1, 12, 2, 0)], t))
    km = 1e7  # concentrations are ~1 mg/L
    mm = predict(Oral1CmtMM(rtol=1e-11, atol=1e-14, max_steps=4096, grid=0), {"VMAX": 2.0 * km, "KM": km, "V": 20.0, "KA": 1.2}, data)[0]
    lin = predict("oral1cmt", P, data)[0]
    np.testing.assert_allclose(mm, lin, rtol=1e-6)


def test_mm_exposure_more_than_dose_proportional():
    t = np.linspace(0.25, 48, 200)
    p = {"VMAX": 20.0, "KM": 2.0, "V": 20.0, "KA": 1.2}
    aucs = []
    for dose in (10.0, 100.0, 1000.0):
        c = predict("oral1cmt_mm", p, dataset(frame([(0, dose, 1, 0, 0, 0)], t)))[0]
        aucs.append(np.trapezoid(c, t) / dose)
    assert aucs[0] < aucs[1] < aucs[2]
    assert aucs[2] / aucs[0] > 2


def test_mm_steady_state_matches_long_dosing():
    p = {"VMAX": 20.0, "KM": 2.0, "V": 20.0, "KA": 1.2, "TLAG": 0.4}
    s = np.array([0.2, 0.5, 1.0, 3.0, 11.0])
    ss = predict("oral1cmt_mm", p, dataset(frame([(0, 100, 1, 12, 0, 1)], s)))[0]
    long = predict("oral1cmt_mm", p, dataset(frame([(0, 100, 1, 12, 40, 0)], 40 * 12 + s)))[0]
    np.testing.assert_allclose(ss, long, rtol=1e-6)


# Gradients --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel,params", [
    (Oral1Cmt(), {"CL": 3.0, "V": 25.0, "KA": 0.9, "TLAG": 0.3, "F1": 0.8}),
    # The adaptive solvers' cases take 1-3 minutes each: run with -m slow (.ci/run's slow step).
    pytest.param(Oral1CmtODE(rtol=1e-10, atol=1e-13, max_steps=1024, grid=0),
                 {"CL": 3.0, "V": 25.0, "KA": 0.9, "TLAG": 0.3, "F1": 0.8}, marks=pytest.mark.slow),
    pytest.param(Oral1CmtMM(rtol=1e-10, atol=1e-13, max_steps=1024, grid=0),
                 {"VMAX": 20.0, "KM": 2.0, "V": 20.0, "KA": 1.2, "TLAG": 0.3, "F1": 0.8}, marks=pytest.mark.slow),
    (Oral1CmtMM(), {"VMAX": 20.0, "KM": 2.0, "V": 20.0, "KA": 1.2, "TLAG": 0.3, "F1": 0.8}),
], ids=["closed", "ode_adaptive", "mm_adaptive", "mm_grid"])
def test_gradients_are_finite_and_match_finite_differences(kernel, params):
    data = dataset(frame([(0, 100, 1, 12, 3, 1), (50, 40, 1, 0, 0, 0)], [0.5, 1, 2, 6, 13, 30, 51, 55]))
    doses = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[0], kernel.prepare(data.doses))
    sampling = jax.tree_util.tree_map(lambda a: a[0], data.sampling)
    names = list(params)

    def f(x):
        p = dict(zip(names, x))
        return jnp.log(kernel.concentrations(kernel.complete(p), doses, sampling)).sum()

    x0 = jnp.asarray([params[n] for n in names])
    f = jax.jit(f)
    g = jax.jit(jax.grad(f))(x0)
    assert np.isfinite(np.asarray(g)).all()
    h = 1e-5 * np.asarray(x0)
    fd = [(f(x0.at[i].add(h[i])) - f(x0.at[i].add(-h[i]))) / (2 * h[i]) for i in range(len(names))]
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kernel,params", [
    (Oral1Cmt(), {"CL": [3.0, 1.5], "V": [25.0, 40.0], "KA": [0.9, 2.0], "TLAG": 0.3, "F1": 0.8}),
    pytest.param(Oral1CmtMM(rtol=1e-10, atol=1e-13, max_steps=1024, grid=0),
                 {"VMAX": [20.0, 35.0], "KM": 2.0, "V": [20.0, 30.0], "KA": [1.2, 0.7], "TLAG": 0.3, "F1": 0.8},
                 marks=pytest.mark.slow),
    (Oral1CmtMM(), {"VMAX": [20.0, 35.0], "KM": 2.0, "V": [20.0, 30.0], "KA": [1.2, 0.7], "F1": [0.8, 0.9]}),
], ids=["closed", "mm_adaptive", "mm_grid"])
def test_forward_sensitivities_give_the_reverse_mode_gradient(kernel, params):
    # Reference: JAX's own reverse-mode derivative of the same predictions (and finite differences), for
    # two subjects with different histories (a steady-state train, a later dose) and a shared KM. The
    # second subject has no SS record: its padded SS slot once made the reverse-mode derivative NaN.
    data = dataset(frame([(0, 100, 1, 12, 3, 1), (50, 40, 1, 0, 0, 0)], [0.5, 1, 2, 6, 13, 30, 51, 55]),
                   frame([(0, 60, 1, 0, 0, 0), (24, 60, 2, 0, 0, 0)], [1, 3, 12, 24.5, 30], ids=2))
    doses = kernel.prepare(data.doses, data.sampling)
    names = list(params)
    x0 = {n: jnp.asarray(params[n], float) for n in names}

    def f(x, forward):
        c = poppk.pk.predict_subjects(kernel, x, doses, data.sampling, forward=forward)
        return jnp.where(data.present, jnp.log(jnp.where(data.present, c, 1.0)) * jnp.arange(1.0, 9.0)[None, :], 0.0).sum()

    fwd = jax.jit(jax.grad(lambda x: f(x, True)))(x0)
    rev = jax.jit(jax.grad(lambda x: f(x, False)))(x0)
    assert float(jax.jit(lambda x: f(x, True))(x0)) == float(jax.jit(lambda x: f(x, False))(x0))
    for n in names:  # the same discrete solution differentiated both ways (adaptive steps: 4e-9 apart)
        np.testing.assert_allclose(fwd[n], rev[n], rtol=1e-7, atol=1e-12, err_msg=n)
    step = jnp.asarray([0.0, 1e-6 * float(x0["KA"][1])])  # the second subject's KA
    fd = (f({**x0, "KA": x0["KA"] + step}, True) - f({**x0, "KA": x0["KA"] - step}, True)) / (2 * step[1])
    np.testing.assert_allclose(fwd["KA"][1], fd, rtol=1e-4)
    # Fits use them for the fixed-step ODE solver only (where they are cheaper; benchmarks/ode_gradient.py).
    assert kernel.forward_sensitivities == (isinstance(kernel, poppk.pk.AbstractODEModel) and kernel.grid > 0)


@st.composite
def listed_doses(draw):
    """One subject's dose records, one per dose: regular runs, broken runs, amount changes, boluses,
    an EVID 4 reset; samples at dose times on both sides of the dose record, and between doses."""
    tau = draw(st.sampled_from([8.0, 12.0, 24.0]))
    n = draw(st.integers(2, 30))
    amts = draw(st.lists(st.sampled_from([50.0, 100.0]), min_size=n, max_size=n))
    jitter = draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.5]), min_size=n, max_size=n))
    cmts = draw(st.lists(st.sampled_from([1, 1, 1, 1, 2]), min_size=n, max_size=n))
    reset = draw(st.one_of(st.none(), st.integers(1, n - 1)))
    doses = []
    for j in range(n):
        evid = 4 if reset == j else 1
        doses.append((j * tau + jitter[j], amts[j], cmts[j], 0.0, 0, 0, evid))
    t_end = n * tau + 24
    # Samples between doses stay clear of the engine's time tolerance (1e-9, relative to the dosing
    # interval for a train, to the time for a single dose): inside that band the two paths may disagree on
    # whether a dose 1e-9 h earlier has been given (hypothesis found a sample 1.8e-9 h after a dose).
    times = [d[0] for d in doses]
    between = [t for t in draw(st.lists(st.floats(0.0, t_end), min_size=3, max_size=12))
               if min(abs(t - d) for d in times) > 1e-6]
    samples = sorted(set(between) | {d[0] for d in doses[:: max(1, n // 4)]})
    return doses, samples


@pytest.mark.slow  # 3 minutes (40 examples, each compiled afresh): .ci/run's slow step
@settings(max_examples=40, deadline=None)
@given(listed_doses(), params_st, st.sampled_from([0.0, 0.7]), st.booleans())
def test_merging_regular_doses_into_trains_changes_nothing(case, params, tlag, sample_first):
    # Reference: the same closed form summing every listed dose one by one (no merging); samples at a dose's
    # own time listed before it (troughs) or after it (record order).
    doses, samples = case
    df = frame(doses, samples)
    if sample_first:  # frame() lists a dose before a sample at the same time; here the sample goes first
        df = df.assign(_k=np.where(df.EVID == 0, 0, 1)).sort_values(["TIME", "_k"], kind="stable").drop(columns="_k")
    data = dataset(df)
    p = dict(params, TLAG=tlag)
    model = Oral1Cmt()
    merged = model.prepare(data.doses, data.sampling)
    assert np.asarray(merged.mask).sum() <= np.asarray(data.doses.mask).sum()
    got = np.asarray(poppk.pk.predict_subjects(model, p, merged, data.sampling))
    ref = np.asarray(poppk.pk.predict_subjects(model, p, data.doses, data.sampling))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12 * max(ref.max(), 1e-300))


def test_regular_listed_doses_become_one_train():
    # 14 days of 100 mg q12h listed one record each, then 50 mg q12h x 3, then a bolus: three entries
    # after merging (two trains and the bolus), and the same predictions as the equivalent ADDL records.
    listed = [(12.0 * j, 100.0, 1, 0.0, 0, 0) for j in range(28)] + [(12.0 * j, 50.0, 1, 0.0, 0, 0)
                                                                       for j in range(28, 31)]
    listed.append((372.5, 30.0, 2, 0.0, 0, 0))
    t = np.arange(0.5, 400, 7.3)
    data = dataset(frame(listed, t))
    merged = Oral1Cmt().prepare(data.doses, data.sampling)
    assert int(np.asarray(merged.mask).sum()) == 3
    # Laid out single doses first (the bolus), then the trains, in time order.
    np.testing.assert_array_equal(np.asarray(merged.addl)[0, :3], [0, 27, 2])
    assert merged.singles == 1 and merged.trains
    trains = dataset(frame([(0.0, 100.0, 1, 12.0, 27, 0), (336.0, 50.0, 1, 12.0, 2, 0), (372.5, 30.0, 2, 0.0, 0, 0)], t))
    np.testing.assert_allclose(predict("oral1cmt", P, data), predict("oral1cmt", P, trains), rtol=1e-12)


def _mixed_design():
    """Four subjects whose dose columns mix single doses and trains: an SS record then irregular doses,
    an ADDL train between single doses, single doses only, and a 1-h infusion train with a bolus."""
    rows = []
    def dose(i, t, amt, cmt=1, ii=0.0, addl=0, ss=0, rate=0.0):
        rows.append(dict(ID=i, TIME=t, AMT=amt, DV=np.nan, EVID=1, MDV=1, CMT=cmt, II=ii, ADDL=addl, SS=ss, RATE=rate))
    dose(1, 0.0, 100.0, ii=24.0, ss=1); dose(1, 25.1, 100.0); dose(1, 50.3, 150.0)
    dose(2, 0.0, 50.0); dose(2, 12.0, 80.0, ii=12.0, addl=4); dose(2, 73.0, 60.0)
    dose(3, 0.0, 40.0); dose(3, 7.5, 45.0); dose(3, 31.0, 90.0)
    dose(4, 0.0, 100.0, cmt=2, ii=12.0, addl=3, rate=100.0); dose(4, 30.0, 20.0, cmt=2)
    for i in range(1, 5):
        for t in (0.5, 3.0, 11.0, 24.0, 26.0, 49.0, 52.0, 75.0, 90.0):
            rows.append(dict(ID=i, TIME=t, AMT=0.0, DV=1.0, EVID=0, MDV=0, CMT=2, II=0.0, ADDL=0, SS=0, RATE=0.0))
    return poppk.from_frame(pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False],
                                                           kind="stable"), warn=False)


@pytest.mark.parametrize("name, params", [("oral1cmt", P), ("oral2cmt", {"CL": 2.0, "V1": 20.0, "Q": 3.0, "V2": 40.0, "KA": 1.2})])
def test_single_doses_apart_from_trains_change_nothing(name, params):
    # merge_regular lays single doses out first (Doses.singles) so that the closed form sums them by its
    # single-dose path and only the trains by the geometric series. Reference: the same columns all by
    # the train path (singles=0, validated against hand formulas above), and for the subject with single
    # doses only the superposition of the hand Bateman function (Gibaldi & Perrier, ch. 1).
    import dataclasses

    from poppk.pk import get_kernel, predict_subjects

    data = _mixed_design()
    kernel = get_kernel(name)
    prepared = kernel.prepare(data.doses, data.sampling)
    assert prepared.singles == 3 and prepared.trains  # subject 3's three single doses set the width
    split = np.asarray(predict_subjects(kernel, params, prepared, data.sampling))
    whole = np.asarray(predict_subjects(kernel, params, dataclasses.replace(prepared, singles=0), data.sampling))
    np.testing.assert_allclose(split, whole, rtol=1e-12, atol=1e-15)
    if name == "oral1cmt":
        t = np.asarray(data.sampling.time)[2]
        hand = sum(hand_oral(t - td, amt, P["CL"], P["V"], P["KA"]) for td, amt in ((0.0, 40.0), (7.5, 45.0), (31.0, 90.0)))
        np.testing.assert_allclose(split[2], hand, rtol=1e-10)


@pytest.mark.parametrize("piece_size", [120, 40])  # 3 pieces traced side by side; 9, through lax.map
def test_subjects_in_pieces_change_nothing(monkeypatch, piece_size):
    # In a fit's likelihood (split=True), on a CPU, the subjects go through the kernel in pieces of at most
    # PIECE_SIZE subject-samples (the XLA CPU slowdown past 4,096 that benchmarks/gradient_cliff.py
    # measures). Reference: one vmap over every subject (the path below the size), values and gradients.
    from poppk.pk import _base, get_kernel

    data = dataset(*[frame([(0.0, 100.0, 1, 12.0, 3, 0)], TIMES, ids=i) for i in range(1, 31)])  # 30 x 12
    kernel = get_kernel("oral1cmt")
    doses = kernel.prepare(data.doses, data.sampling)
    rng = np.random.default_rng(0)
    params = {k: v * np.exp(0.3 * rng.standard_normal(30)) for k, v in P.items()}

    def total(p):
        return jnp.sum(jnp.log(_base.predict_subjects(kernel, p, doses, data.sampling, split=True)))

    ref_value, ref_grad = jax.value_and_grad(total)(params)
    monkeypatch.setattr(_base, "PIECE_SIZE", piece_size)
    value, grad = jax.value_and_grad(total)(params)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(grad[k], ref_grad[k], rtol=1e-10)
