"""Time-varying covariates (issue 26): values that change at records within a subject act on the
parameters from then on, in closed forms and ODEs alike.

Expected values: the one-compartment Bateman function (Gibaldi and Perrier, *Pharmacokinetics*, 2nd
ed., 1982, ch. 2) applied piece by piece by hand (each piece starts from the amounts the previous one
left, in numpy here); scipy's ``solve_ivp`` (an independent solver) for two compartments; the closed
forms themselves where nothing changes; hand-made records for the LOCF / NOCB rules (NONMEM's advance
from one record to the next uses the later record's values, NONMEM Users Guide VI, "PREDPP").
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

import poppk
from poppk.errors import ModelSpecError
from poppk.model import build_model, parse_spec
from poppk.pk import Doses, Sampling, concentrations, get_kernel

jax.config.update("jax_enable_x64", True)


def _row(v, dtype=float):
    return np.asarray([v], dtype=dtype)


def _doses(times, amt, cmt, rate=None, **extra) -> Doses:
    n = len(times)
    fields = dict(time=_row(times), amt=_row([amt] * n if np.isscalar(amt) else amt), rate=_row(rate or [0.0] * n),
                  cmt=_row([cmt] * n if np.isscalar(cmt) else cmt, int), ii=_row([0.0] * n), addl=_row([0] * n, int),
                  ss=_row([False] * n, bool), order=_row(np.arange(n, dtype=float) * 2), epoch=_row([0] * n, int),
                  mask=_row([True] * n, bool))
    fields.update({k: _row(v, type(v[0])) for k, v in extra.items()})
    return Doses(**fields)


def _sampling(times) -> Sampling:
    return Sampling(time=_row(times), order=_row(np.arange(len(times)) * 2 + 1.0), epoch=_row([0] * len(times), int))


def _changes(times) -> Sampling:
    return Sampling(time=_row(times), order=_row([0.5] * len(times)), epoch=_row([0] * len(times), int))


def _bateman_pieces(dose_times, amount, t, cl_at, v, ka):
    """Depot and central amounts of a one-compartment oral model stepped by hand: between events the
    Bateman solution from the amounts the last event left, ``cl_at(t0)`` the clearance over the step."""
    events = sorted(set(dose_times) | set(t) | set(cl_at.breaks))
    depot = central = 0.0
    now, out = 0.0, {}
    for e in events:
        h, k = e - now, cl_at(now) / v
        d1 = depot * np.exp(-ka * h)
        central = central * np.exp(-k * h) + depot * ka / (ka - k) * (np.exp(-k * h) - np.exp(-ka * h))
        depot, now = d1, e
        if e in dose_times:
            depot += amount
        if e in t:
            out[e] = central / v
    return np.array([out[x] for x in t])


class _Clearance:
    def __init__(self, values, breaks):
        self.values, self.breaks = values, breaks

    def __call__(self, t):
        return self.values[int(np.sum(np.asarray(self.breaks) <= t))]


@pytest.mark.parametrize("kernel", ["oral1cmt", "oral1cmt_ode"])
def test_clearance_halved_mid_treatment_matches_piecewise_bateman(kernel):
    # Daily 100 mg oral for 6 days; CL 2 -> 1 L/h at 60 h (between doses), V 10 L, KA 1.2/h.
    doses = _doses([0.0, 24.0, 48.0, 72.0, 96.0, 120.0], 100.0, 1)
    t = np.array([1.0, 6.0, 23.9, 50.0, 59.0, 61.0, 70.0, 72.0, 73.0, 100.0, 130.0, 160.0])
    clearance = _Clearance([2.0, 1.0], [60.0])
    expected = _bateman_pieces([0.0, 24.0, 48.0, 72.0, 96.0, 120.0], 100.0, t, clearance, 10.0, 1.2)
    got = np.asarray(concentrations(get_kernel(kernel), {"CL": np.array([[2.0, 1.0]]), "V": 10.0, "KA": 1.2},
                                    doses, _sampling(t), _changes([60.0])))[0]
    # the closed form stepped exactly; the ODE kernel's fixed grid to its documented accuracy (5e-4)
    np.testing.assert_allclose(got, expected, rtol=1e-12 if kernel == "oral1cmt" else 5e-4)
    # the change matters: with CL 2 throughout the last troughs are far lower
    constant = np.asarray(concentrations(get_kernel(kernel), {"CL": 2.0, "V": 10.0, "KA": 1.2}, doses, _sampling(t)))[0]
    assert expected[-1] > 1.5 * constant[-1]


def _mixed(kernel):
    """A design with an SS record, an ADDL train, an infusion, a lag and a bolus into the central
    compartment, for kernel ``kernel`` (its depot, if any, CMT 1)."""
    central = kernel.central_cmt
    depot = kernel.depot_cmt or central
    return Doses(time=_row([0.0, 30.0, 50.0, 80.0]), amt=_row([50.0, 80.0, 40.0, 60.0]), rate=_row([0.0, 0.0, 20.0, 0.0]),
                 cmt=_row([depot, depot, central, central], int), ii=_row([12.0, 8.0, 0.0, 0.0]),
                 addl=_row([0, 2, 0, 0], int), ss=_row([True, False, False, False], bool),
                 order=_row([0.0, 2.0, 4.0, 6.0]), epoch=_row([0, 0, 0, 0], int), mask=_row([True] * 4, bool))


@pytest.mark.parametrize("name", ["iv1cmt", "oral1cmt", "iv2cmt", "oral2cmt", "iv3cmt", "oral3cmt"])
def test_stepped_kernels_equal_the_closed_forms_where_nothing_changes(name):
    # Source: the closed forms (validated against hand-derived solutions in test_pk.py); the stepped
    # engine with change events but the same parameters in every segment must give the same values.
    kernel = get_kernel(name)
    params = {"CL": 3.0, "V": 30.0, "V1": 20.0, "V2": 40.0, "V3": 60.0, "Q": 4.0, "Q3": 1.5, "KA": 0.9}
    params = {k: v for k, v in params.items() if k in kernel.parameters}
    if kernel.depot_cmt:
        params.update(TLAG=0.4, F1=0.7)
    doses, t = _mixed(kernel), np.array([0.0, 2.0, 11.0, 31.0, 40.0, 52.0, 60.0, 81.0, 100.0])
    closed = np.asarray(concentrations(kernel, params, doses, _sampling(t)))[0]
    segments = {k: np.full((1, 3), v) for k, v in params.items()}
    stepped = np.asarray(concentrations(kernel, segments, doses, _sampling(t), _changes([35.0, 55.0])))[0]
    np.testing.assert_allclose(stepped, closed, rtol=1e-9, atol=1e-12 * closed.max())


def test_two_compartments_with_changes_match_scipy():
    # oral2cmt: CL 4 -> 2 at 20 h -> 6 at 45 h, V1 also 20 -> 30 L at 45 h; an infusion into the central
    # compartment from 40 h to 50 h runs across the second change. Reference: scipy's LSODA on the ODEs.
    kernel = get_kernel("oral2cmt")
    seg = {"CL": [4.0, 2.0, 6.0], "V1": [20.0, 20.0, 30.0], "V2": [50.0] * 3, "Q": [5.0] * 3, "KA": [1.1] * 3}
    breaks = [20.0, 45.0]
    doses = Doses(time=_row([0.0, 12.0, 40.0]), amt=_row([100.0, 100.0, 50.0]), rate=_row([0.0, 0.0, 5.0]),
                  cmt=_row([1, 1, 2], int), ii=_row([0.0] * 3), addl=_row([0] * 3, int), ss=_row([False] * 3, bool),
                  order=_row([0.0, 2.0, 4.0]), epoch=_row([0] * 3, int), mask=_row([True] * 3, bool))
    t = np.array([1.0, 10.0, 19.0, 21.0, 30.0, 42.0, 46.0, 55.0, 70.0])
    got = np.asarray(concentrations(kernel, {k: np.asarray([v]) for k, v in seg.items()}, doses, _sampling(t),
                                    _changes(breaks)))[0]

    def at(time):
        return int(np.sum(np.asarray(breaks) <= time))

    def rhs(time, y):
        i = at(time)
        cl, v1, v2, q, ka = (seg[k][i] for k in ("CL", "V1", "V2", "Q", "KA"))
        infusion = 5.0 if 40.0 <= time < 50.0 else 0.0
        return [-ka * y[0], ka * y[0] - (cl + q) / v1 * y[1] + q / v2 * y[2] + infusion, q / v1 * y[1] - q / v2 * y[2]]

    cuts = [0.0, 12.0, 20.0, 40.0, 45.0, 50.0, 70.0]
    y, expected = np.zeros(3), {}
    for a, b in zip(cuts[:-1], cuts[1:]):
        if a in (0.0, 12.0):
            y[0] += 100.0
        evals = sorted({x for x in t if a < x <= b} | {b})
        sol = solve_ivp(rhs, (a, b), y, method="LSODA", rtol=1e-11, atol=1e-12, t_eval=evals)
        for x, c in zip(evals, sol.y[1]):
            expected[x] = c / seg["V1"][at(x)]
        y = sol.y[:, -1]
    np.testing.assert_allclose(got, [expected[x] for x in t], rtol=1e-7)


def _records(values, times=(0.0, 2.0, 4.0, 6.0), dose_rows=(0,)):
    rows = []
    for j, (tt, v) in enumerate(zip(times, values)):
        dose = j in dose_rows
        rows.append(dict(ID=1, TIME=tt, AMT=100.0 if dose else 0.0, DV="." if dose else 1.0, EVID=int(dose), CRCL=v))
    return pd.DataFrame(rows)


def test_history_is_carried_forward_or_backward_by_record():
    # Hand-made: CRCL 90 at 0 and 2 h, missing at 4 h, 45 at 6 h.
    data = poppk.data.from_frame(_records([90.0, 90.0, np.nan, 45.0]), warn=False)
    changes, values = data.covariate_history(["CRCL"])
    assert changes.time.tolist() == [[6.0]] and values["CRCL"].tolist() == [[90.0, 45.0]]  # LOCF, gap carried
    changes, values = data.covariate_history(["CRCL"], "nocb")
    assert changes.time.tolist() == [[4.0]] and values["CRCL"].tolist() == [[90.0, 45.0]]  # acts from the record before
    # a value missing at first takes the first recorded one; one that never changes has no change
    data = poppk.data.from_frame(_records([np.nan, 70.0, 70.0, 70.0]), warn=False)
    changes, values = data.covariate_history(["CRCL"])
    assert (changes.epoch < 0).all() and values["CRCL"].tolist() == [[70.0, 70.0]]
    assert data.varying_covariates == ()


def test_record_values_survive_the_round_trip():
    frame = _records([90.0, 80.0, 60.0, 45.0]).assign(SEX=["F", "F", "M", "M"])
    data = poppk.data.from_frame(frame, warn=False)
    again = poppk.data.from_frame(data.to_frame(), warn=False)
    assert set(again.varying_covariates) == {"CRCL", "SEX"}
    for name in ("CRCL", "SEX"):
        assert again.covariate_history([name])[1][name].tolist() == data.covariate_history([name])[1][name].tolist()
    assert data.covariate_history(["SEX"])[1]["SEX"].tolist() == [["F", "M"]]


SPEC = """
[model]
kernel = "oral1cmt"
[parameters]
CL = { median = 5.0, sd_log = 1.0 }
V = { median = 50.0, sd_log = 1.0 }
KA = { median = 1.0, sd_log = 1.0 }
[iiv]
parameters = ["CL", "V", "KA"]
omega = 0.5
[[covariates]]
parameter = "CL"
covariate = "CRCL"
kind = "power"
reference = 90
effect = { mean = 0.5, sd = 0.5 }
{extra}
[error]
model = "proportional"
"""


def _design(n=24, seed=1, cl=5.0, v=50.0, ka=1.0, exponent=0.75, omega=0.25, sigma=0.12):
    """Daily oral dosing for a week; CRCL halves on day 3 in every other subject. Concentrations by the
    stepped engine (checked against the piecewise Bateman function above), proportional error."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, n + 1):
        crcl0 = rng.uniform(70, 120)
        for d in range(7):
            for tt, dose in [(24.0 * d, True)] + [(24.0 * d + s, False) for s in ((1.0, 4.0, 12.0) if d in (0, 6) else (23.0,))]:
                crcl = crcl0 / 2 if (i % 2 == 0 and tt >= 72) else crcl0
                rows.append(dict(ID=i, TIME=tt, AMT=100.0 if dose else 0.0, DV=np.nan if dose else 1.0, EVID=int(dose), MDV=int(dose),
                                 CMT=1 if dose else 2, CRCL=crcl))
    frame = pd.DataFrame(rows)
    data = poppk.data.from_frame(frame, warn=False)
    changes, history = data.covariate_history(["CRCL"])
    eta = rng.normal(0, omega, (n, 3))
    params = {"CL": cl * (history["CRCL"] / 90.0) ** exponent * np.exp(eta[:, [0]]), "V": v * np.exp(eta[:, 1]),
              "KA": ka * np.exp(eta[:, 2])}
    conc = np.asarray(concentrations(get_kernel("oral1cmt"), params, data.doses, data.sampling, changes))
    dv = conc * np.exp(rng.normal(0, sigma, conc.shape))
    present = np.asarray(data.present)
    frame.loc[np.asarray(data.row)[present], "DV"] = dv[present]
    frame.loc[frame.EVID == 1, "DV"] = np.nan
    return frame


def test_spec_predictions_follow_the_covariate_in_time():
    # The typical subject of the spec (random effects 0) through build_model: CL = 5 (CRCL/90)^0.75 with
    # CRCL 100 -> 50 at 72 h, against the hand piecewise Bateman function.
    from numpyro import handlers

    frame = _design(n=2)
    frame["CRCL"] = np.where(frame.ID == 2, np.where(frame.TIME >= 72, 50.0, 100.0), 100.0)
    data = poppk.data.from_frame(frame, warn=False)
    for extra, changing in (("", True), ('interpolation = "baseline"', False)):
        built = build_model(parse_spec(SPEC.replace("{extra}", extra)), data, parameterization="noncentered",
                            record_pred=True)
        assert (built.changes is not None) is changing
        values = {"CL": 5.0, "V": 50.0, "KA": 1.0, "CL_CRCL": 0.75, "omega_CL": 0.3, "omega_V": 0.3, "omega_KA": 0.3,
                  "sigma_prop": 0.1, "eta_z": np.zeros((2, 3))}
        model = handlers.seed(handlers.substitute(built.fn, data=values), rng_seed=0)
        trace = handlers.trace(model).get_trace(**{**built.kwargs, "dv": None})
        conc = np.asarray(trace["CONC"]["value"])[1]
        t = np.asarray(data.sampling.time)[1]
        doses = sorted(set(frame.TIME[(frame.ID == 2) & (frame.EVID == 1)]))
        cl = _Clearance([5.0 * (100 / 90) ** 0.75, 5.0 * (50 / 90) ** 0.75], [72.0] if changing else [])
        np.testing.assert_allclose(conc, _bateman_pieces(doses, 100.0, list(t), cl, 50.0, 1.0), rtol=1e-10)


def test_bad_specs_and_data_fail_before_sampling():
    with pytest.raises(ModelSpecError, match=r"covariates\[0\]\.interpolation"):
        parse_spec(SPEC.replace("{extra}", 'interpolation = "linear"'))
    mixed = SPEC.replace("{extra}", 'interpolation = "locf"') + """
[[covariates]]
parameter = "V"
covariate = "CRCL"
kind = "power"
reference = 90
interpolation = "nocb"
"""
    mixed = mixed.replace("[error]\nmodel = \"proportional\"\n", "") + "[error]\nmodel = \"proportional\"\n"
    with pytest.raises(ModelSpecError, match=r"covariates\[1\]\.interpolation"):
        parse_spec(mixed)
    frame = _design(n=4)
    frame.loc[frame.ID == 3, "CRCL"] = np.nan  # no value at all for subject 3
    data = poppk.data.from_frame(frame, warn=False)
    with pytest.raises(ModelSpecError, match=r"CRCL is missing for 1 subject\(s\): ID 3 \(rows"):
        build_model(parse_spec(SPEC.replace("{extra}", "")), data)


def test_laplace_fit_recovers_a_time_varying_effect(tmp_path):
    # Recovery by simulation (truth: exponent 0.75, CL 5 L/h) through the CLI, as a user runs it.
    frame = _design(n=30, seed=4)
    frame.to_csv(tmp_path / "tv.csv", index=False)
    (tmp_path / "tv.toml").write_text(SPEC.replace("{extra}", ""))
    run = subprocess.run([sys.executable, "-m", "poppk", "fit", str(tmp_path / "tv.csv"), "--model", str(tmp_path / "tv.toml"),
                          "--method", "laplace", "--out", str(tmp_path / "fit"), "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "changes within 15 subject(s)" in run.stderr
    est = pd.read_csv(tmp_path / "fit" / "estimates.csv").set_index("parameter")
    for name, truth in (("CL_CRCL", 0.75), ("CL", 5.0)):
        lo, hi = est.loc[name, [c for c in est.columns if c.endswith("5") or c.endswith("95")][:2]]
        assert lo < truth < hi, (name, est.loc[name].to_dict())
    assert json.loads((tmp_path / "fit" / "fit.json").read_text())["method"] == "laplace"
    # the fit folder keeps the records' own values: read back, CRCL still changes in time
    fit = poppk.load_fit(tmp_path / "fit")
    assert fit.data.varying_covariates == ("CRCL",) and fit.segment_draws(5) is not None
