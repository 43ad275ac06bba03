"""Cut each subject's records into dosing-interval profiles and analyse each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import NCAError
from ..units import concentration_scale
from ._auc import auc, auc_to, interpolate, select_lambda_z

BLQ_RULES = ("zero-before-tmax", "zero", "drop")
#: A dose is at steady state when it is the 5th or later dose of a regular train (or SS=1).
SS_MIN_DOSES = 5


def _expand_doses(doses: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for train, r in enumerate(doses.itertuples(index=False)):
        for k in range(int(r.ADDL) + 1):
            rows.append({"time": r.TIME + k * r.II, "amt": r.AMT, "ii": r.II, "k": k, "ss": bool(r.SS),
                         "row": r.ROWNUM if k == 0 else np.inf, "train": train})
    return pd.DataFrame(rows).sort_values(["time", "row"], kind="stable").reset_index(drop=True)


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
    lambda_z_points: int | None = None,
) -> tuple[dict, list[str]]:
    """NCA parameters of one profile (times relative to the dose, C0 first)."""
    notes = []
    res: dict = {}
    post = t > 0
    if post.sum() < 2:
        return res, [f"only {int(post.sum())} sample(s) after the dose; no NCA"]
    if not (c[post] > 0).any():
        return res, ["no concentration above LLOQ after the dose; no NCA"]
    imax = int(np.argmax(c))
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
    if kind == "ss":
        window = t <= tau
        res["Cmin"] = float(np.min(np.r_[c[window], interpolate(tl, cl, tau, method, lz.lambda_z)]))
        res["Cav"] = res["AUCtau"] / tau
        res["CL_F"] = scale * dose / res["AUCtau"]
    else:
        res["AUCinf"] = res["AUClast"] + res["Clast"] / lz.lambda_z if np.isfinite(lz.lambda_z) else np.nan
        res["AUC_pct_extrap"] = 100 * (1 - res["AUClast"] / res["AUCinf"]) if np.isfinite(res["AUCinf"]) else np.nan
        res["CL_F"] = scale * dose / res["AUCinf"] if np.isfinite(res["AUCinf"]) else np.nan
        if np.isfinite(res["AUC_pct_extrap"]) and res["AUC_pct_extrap"] > 20:
            notes.append(f"AUCinf extrapolated {res['AUC_pct_extrap']:.0f}% (> 20%)")
    res["Vz_F"] = res["CL_F"] / lz.lambda_z if np.isfinite(lz.lambda_z) else np.nan
    return res, notes


def subject_profiles(
    records: pd.DataFrame, *, dose_unit: str, conc_unit: str, method: str, blq: str, min_points: int,
    lambda_z_points: dict | None = None,
) -> tuple[list[dict], list[str]]:
    """Profiles of every subject; a subject with bad records is skipped with a message."""
    if blq not in BLQ_RULES:
        raise NCAError(f"unknown BLQ rule {blq!r}; use one of {BLQ_RULES}")
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
        found = 0
        for i, d in each.iterrows():
            nxt = each["time"].iloc[i + 1] if i + 1 < len(each) else np.inf
            in_win = (obs["TIME"] >= d["time"]) & (obs["TIME"] <= nxt)
            pre = obs["TIME"] == d["time"]
            post = (obs["TIME"] > d["time"]) & in_win
            if post.sum() < min_points:
                continue
            kind = "single" if i == 0 else ("ss" if d["ss"] or d["k"] >= SS_MIN_DOSES - 1 else "multiple")
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
                                         scale=scale, lambda_z_points=n_lz)
            for note in notes:
                messages.append(f"ID {sid}, {kind} profile at t={d['time']:g} h: {note}")
            if not res:
                continue
            found += 1
            out.append({"ID": sid, "profile": kind, "dose_time": float(d["time"]), "DOSE": float(d["amt"]),
                        "tau": tau if tau else np.nan, "n_samples": int(post.sum()), **res,
                        "_t": t, "_c": c})
        if not found:
            messages.append(f"ID {sid}: no profile with at least {min_points} samples after a dose")
    return out, messages
