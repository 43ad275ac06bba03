"""Cut each subject's records into dosing-interval profiles and analyse each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import NCAError
from ..units import concentration_scale
from ._auc import auc, auc_to, aumc, interpolate, select_lambda_z

BLQ_RULES = ("zero-before-tmax", "zero", "drop")
#: How each dose reached the circulation; ``auto`` reads it from the records (see :func:`dose_route`).
ROUTES = ("auto", "extravascular", "intravascular")
#: A dose is at steady state when it is the 5th or later dose of a regular train (or SS=1).
SS_MIN_DOSES = 5


def _expand_doses(doses: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for train, r in enumerate(doses.itertuples(index=False)):
        for k in range(int(r.ADDL) + 1):
            rows.append({"time": r.TIME + k * r.II, "amt": r.AMT, "ii": r.II, "k": k, "ss": bool(r.SS),
                         "rate": float(getattr(r, "RATE", 0.0)), "cmt": int(getattr(r, "CMT", 1)),
                         "row": r.ROWNUM if k == 0 else np.inf, "train": train})
    return pd.DataFrame(rows).sort_values(["time", "row"], kind="stable").reset_index(drop=True)


def dose_route(rate: float, cmt: int, sample_cmts: set[int], route: str) -> tuple[str, str | None]:
    """``(route, problem)`` of one dose: ``"iv bolus"``, ``"iv infusion"`` or ``"extravascular"``.

    ``auto``: RATE > 0 is an intravenous infusion; a bolus into the compartment the subject's samples
    carry (CMT, when the samples name one) is an intravenous bolus; any other bolus is extravascular.
    ``intravascular`` / ``extravascular`` state it for every dose (an infusion given as
    ``extravascular`` is zero-order absorption). RATE = -1 / -2 (a modelled rate or duration) has no
    duration NCA can use: the problem is returned.
    """
    if rate < 0:
        return "", (f"RATE={rate:g}: the infusion's rate or duration is a model parameter, which NCA "
                    "does not have; give RATE > 0 (AMT/duration) for NCA")
    if route == "extravascular":
        return "extravascular", None
    if rate > 0:
        return "iv infusion", None
    if route == "intravascular" or cmt in sample_cmts:
        return "iv bolus", None
    return "extravascular", None


def back_extrapolate_c0(t: np.ndarray, c: np.ndarray) -> tuple[float, str]:
    """C0 of an IV bolus: the log-linear line through the first two positive samples after the dose,
    back to the dose time (PKNCA's ``logslope``, WinNonlin's C0); if they do not decline, the first
    positive sample (PKNCA's ``c1``), with a note."""
    pos = np.flatnonzero((t > 0) & (np.nan_to_num(c) > 0))
    if pos.size == 0:
        return np.nan, "no positive sample after the dose for C0"
    i = pos[0]
    if pos.size >= 2:
        j = pos[1]
        if c[j] < c[i]:
            return float(c[i] * (c[i] / c[j]) ** (t[i] / (t[j] - t[i]))), ""
    return float(c[i]), "C0 is the first sample (the first two do not decline)"


def _apply_blq(t, c, blq, rule):
    """Returns (t, c, note) after the BLQ rule; BLQ values themselves are never used."""
    if not blq.any():
        return t, c
    if rule == "zero":
        return t, np.where(blq, 0.0, c)
    if rule == "drop":
        return t[~blq], c[~blq]
    measured = np.flatnonzero(~blq & (np.nan_to_num(c) > 0))
    first = measured[0] if measured.size else t.size
    keep = ~blq | (np.arange(t.size) < first)
    c = np.where(blq, 0.0, c)
    return t[keep], c[keep]


def analyse_profile(
    t: np.ndarray, c: np.ndarray, *, dose: float, tau: float | None, kind: str, method: str, scale: float,
    lambda_z_points: int | None = None, route: str = "extravascular", duration: float = 0.0,
) -> tuple[dict, list[str]]:
    """NCA parameters of one profile (times relative to the dose, the pre-dose value first).

    ``route`` (see :func:`dose_route`): an IV bolus's pre-dose value is replaced by C0 back-extrapolated
    (:func:`back_extrapolate_c0`), which then starts the AUC and the lambda_z candidates (WinNonlin's bolus
    rule); Cmax and Tmax are the samples'. Intravascular profiles give CL, Vz (= CL/lambda_z), MRT and Vss
    (= CL MRT, single dose), with MRT = AUMCinf/AUCinf - duration/2 for an infusion; extravascular ones the
    apparent CL/F and Vz/F.
    """
    notes = []
    res: dict = {}
    post = t > 0
    if post.sum() < 2:
        return res, [f"only {int(post.sum())} sample(s) after the dose; no NCA"]
    if not (c[post] > 0).any():
        return res, ["no concentration above LLOQ after the dose; no NCA"]
    intravascular = route in ("iv bolus", "iv infusion")
    if route == "iv bolus":
        c = c.copy()
        c0, note = back_extrapolate_c0(t, c)
        if note:
            notes.append(note)
        c[0] = c0
        res["C0"] = c0
    sampled = post if route == "iv bolus" else np.ones(t.size, bool)
    imax = int(np.flatnonzero(sampled)[np.argmax(c[sampled])])
    res["Cmax"], res["Tmax"] = float(c[imax]), float(t[imax])
    last = np.flatnonzero(c > 0)[-1]
    res["Clast"], res["Tlast"] = float(c[last]), float(t[last])
    tl, cl = t[: last + 1], c[: last + 1]
    res["AUClast"] = auc(tl, cl, method)
    lz = select_lambda_z(t[: last + 1], c[: last + 1], n_points=lambda_z_points)
    res.update(lambda_z=lz.lambda_z, lz_points=lz.n_points, lz_adj_r2=lz.adj_r2,
               t_half=np.log(2) / lz.lambda_z if np.isfinite(lz.lambda_z) else np.nan)
    if lz.note:
        notes.append(f"lambda_z: {lz.note}")
    if tau:
        res["AUCtau"] = auc_to(tl, cl, tau, method, lz.lambda_z)
        if tau > res["Tlast"] and not np.isfinite(lz.lambda_z):
            notes.append("AUCtau needs extrapolation but lambda_z is missing")
    cl_name, vz_name = ("CL", "Vz") if intravascular else ("CL_F", "Vz_F")
    if kind == "ss":
        window = t <= tau
        res["Cmin"] = float(np.min(np.r_[c[window], interpolate(tl, cl, tau, method, lz.lambda_z)]))
        res["Cav"] = res["AUCtau"] / tau
        res[cl_name] = scale * dose / res["AUCtau"]
    else:
        res["AUCinf"] = res["AUClast"] + res["Clast"] / lz.lambda_z if np.isfinite(lz.lambda_z) else np.nan
        res["AUC_pct_extrap"] = 100 * (1 - res["AUClast"] / res["AUCinf"]) if np.isfinite(res["AUCinf"]) else np.nan
        res[cl_name] = scale * dose / res["AUCinf"] if np.isfinite(res["AUCinf"]) else np.nan
        if np.isfinite(res["AUC_pct_extrap"]) and res["AUC_pct_extrap"] > 20:
            notes.append(f"AUCinf extrapolated {res['AUC_pct_extrap']:.0f}% (> 20%)")
        if intravascular:
            res["AUMClast"], res["AUMCinf"] = aumc(tl, cl, method, lz.lambda_z)
            res["MRT"] = res["AUMCinf"] / res["AUCinf"] - duration / 2 if np.isfinite(res["AUCinf"]) else np.nan
            res["Vss"] = res["CL"] * res["MRT"]
    res[vz_name] = res[cl_name] / lz.lambda_z if np.isfinite(lz.lambda_z) else np.nan
    return res, notes


def subject_profiles(
    records: pd.DataFrame, *, dose_unit: str, conc_unit: str, method: str, blq: str, min_points: int,
    lambda_z_points: dict | None = None, route: str = "auto",
) -> tuple[list[dict], list[str]]:
    """Profiles of every subject; a subject with bad records is skipped with a message."""
    if blq not in BLQ_RULES:
        raise NCAError(f"unknown BLQ rule {blq!r}; use one of {BLQ_RULES}")
    if route not in ROUTES:
        raise NCAError(f"unknown route {route!r}; use one of {ROUTES}")
    scale = concentration_scale(dose_unit, conc_unit)
    out, messages = [], []
    records = records.assign(ROWNUM=np.arange(len(records)))
    for sid, g in records.groupby("ID", sort=False):
        if (np.diff(g["TIME"].to_numpy()) < 0).any():
            bad = int(g["ROWNUM"].to_numpy()[1:][np.diff(g["TIME"].to_numpy()) < 0][0]) + 1
            messages.append(f"ID {sid}: times are not sorted (row {bad}); subject skipped")
            continue
        doses = g[g["EVID"].isin((1, 4))]
        if doses.empty:
            messages.append(f"ID {sid}: no dose records; subject skipped")
            continue
        obs = g[(g["EVID"] == 0) & ((g["MDV"] == 0) | (g["BLQ"] == 1))]
        each = _expand_doses(doses)
        sample_cmts = set(obs["CMT"].astype(int)) - {0} if "CMT" in obs else set()
        found = 0
        for i, d in each.iterrows():
            nxt = each["time"].iloc[i + 1] if i + 1 < len(each) else np.inf
            in_win = (obs["TIME"] >= d["time"]) & (obs["TIME"] <= nxt)
            pre = obs["TIME"] == d["time"]
            post = (obs["TIME"] > d["time"]) & in_win
            if post.sum() < min_points:
                continue
            kind = "single" if i == 0 else ("ss" if d["ss"] or d["k"] >= SS_MIN_DOSES - 1 else "multiple")
            how, problem = dose_route(d["rate"], d["cmt"], sample_cmts, route)
            if problem:
                messages.append(f"ID {sid}, {kind} profile at t={d['time']:g} h: {problem}; profile skipped")
                continue
            duration = d["amt"] / d["rate"] if d["rate"] > 0 else 0.0
            tau = float(d["ii"]) if kind == "ss" else None
            sel = pd.concat([obs[pre].iloc[:1], obs[post]])
            t = sel["TIME"].to_numpy() - d["time"]
            c = sel["DV"].to_numpy(dtype=float)
            flag = sel["BLQ"].to_numpy() == 1
            if not pre.any():
                t, c, flag = np.r_[0.0, t], np.r_[np.nan, c], np.r_[False, flag]
                # C0: 0 after a first dose; at steady state the trough, taken as the interval's minimum.
                c[0] = 0.0 if kind == "single" else np.nan
            t, c = _apply_blq(t, c, flag, blq)
            if np.isnan(c[0]):
                c[0] = np.nanmin(c[1:]) if c.size > 1 else 0.0
            n_lz = (lambda_z_points or {}).get(sid)
            res, notes = analyse_profile(t, c, dose=float(d["amt"]), tau=tau, kind=kind, method=method,
                                         scale=scale, lambda_z_points=n_lz, route=how, duration=duration)
            for note in notes:
                messages.append(f"ID {sid}, {kind} profile at t={d['time']:g} h: {note}")
            if not res:
                continue
            found += 1
            out.append({"ID": sid, "profile": kind, "dose_time": float(d["time"]), "DOSE": float(d["amt"]),
                        "tau": tau if tau else np.nan, "route": how, "duration": duration,
                        "n_samples": int(post.sum()), **res,
                        "_t": t, "_c": c})
        if not found:
            messages.append(f"ID {sid}: no profile with at least {min_points} samples after a dose")
    return out, messages
