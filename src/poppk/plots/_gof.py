"""Goodness-of-fit and VPC drawings (matplotlib only; each returns its Axes)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..diagnostics import PERCENTILES, VPCResult

OBS = dict(color="0.15", s=14, alpha=0.7, lw=0)
BLQ = dict(color="tab:red", marker="v", s=18, alpha=0.8, lw=0)


def _ax(ax):
    return ax if ax is not None else plt.figure(figsize=(5, 4.5)).add_subplot()


def plot_obs_vs_pred(records: pd.DataFrame, pred: str = "PRED", *, log: bool = False, conc_unit: str = "",
                     ax=None):
    """Observations against population (``PRED``) or individual (``IPRED``) predictions, identity line.

    BLQ records are drawn at their LLOQ as red triangles (their value is only known to be below it).
    """
    ax = _ax(ax)
    blq = records["BLQ"].to_numpy(bool)
    x, y = records[pred].to_numpy(float), records["DV"].to_numpy(float)
    ok = ~blq & np.isfinite(y) & np.isfinite(x)
    if log:
        ok &= (x > 0) & (y > 0)
    lloq = records["LLOQ"].to_numpy(float)
    vals = np.concatenate([x[ok], y[ok]])
    if log:
        # Predictions of censored or pre-dose records can be 1e-30: show the range the observations span
        # and draw smaller predictions at the left edge.
        lo = min(y[ok].min(), np.nanmin(lloq[blq]) if blq.any() else np.inf) / 3
        hi = vals.max() * 1.5
        x = np.clip(x, lo, None)
    else:
        lo, hi = 0.0, vals.max()
    ax.scatter(x[ok], y[ok], label="observed", **OBS)
    if blq.any():
        ax.scatter(x[blq], lloq[blq], label="BLQ (at LLOQ)", **BLQ)
    ax.plot([lo, hi], [lo, hi], color="tab:blue", lw=1, label="identity")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    unit = f" ({conc_unit})" if conc_unit else ""
    ax.set_xlabel(f"{pred}{unit}")
    ax.set_ylabel(f"observed{unit}")
    ax.set_title(f"DV vs {pred}" + (", log scale" if log else ""))
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_npde(npde: pd.DataFrame, x: str = "TIME", *, conc_unit: str = "", ax=None):
    """NPDE against time (h), time after dose or PRED, with 0 and +-1.96 reference lines."""
    ax = _ax(ax)
    blq = npde["BLQ"].to_numpy(bool)
    ax.scatter(npde[x][~blq], npde["NPDE"][~blq], label="observed", **OBS)
    if blq.any():
        ax.scatter(npde[x][blq], npde["NPDE"][blq], label="BLQ (imputed)", **BLQ)
    ax.axhline(0, color="tab:blue", lw=1)
    for v in (-1.96, 1.96):
        ax.axhline(v, color="tab:blue", lw=1, ls="--")
    label = {"TIME": "time (h)", "TAD": "time after dose (h)"}.get(x, f"{x} ({conc_unit})" if conc_unit else x)
    ax.set_xlabel(label)
    ax.set_ylabel("NPDE")
    ax.set_title(f"NPDE vs {x}")
    ax.legend(fontsize=8)
    return ax


def plot_vpc(vpc: VPCResult, group=None, *, log: bool = True, observations: pd.DataFrame | None = None, ax=None):
    """Observed 5th/50th/95th percentiles (lines) over the simulated 90% intervals of the same
    percentiles (shaded), one group of a split VPC, each at its bin's median x, with ticks along the
    bottom where bins meet. ``observations`` (records) adds the data as points."""
    ax = _ax(ax)
    t = vpc.table if vpc.by is None else vpc.table[vpc.table["group"] == group]
    t = t.sort_values("x")
    colours = {5: "tab:blue", 50: "tab:red", 95: "tab:blue"}
    if observations is not None and not vpc.pred_corrected:  # raw points would not match corrected percentiles
        obs = observations if vpc.by is None else observations[observations[vpc.by] == group]
        ok = ~obs["BLQ"].to_numpy(bool)
        ax.scatter(obs[vpc.x][ok], obs["DV"][ok], color="0.6", s=6, alpha=0.5, lw=0, label="observations")
    for p in PERCENTILES:
        ax.fill_between(t["x"], t[f"sim_p{p}_lo"], t[f"sim_p{p}_hi"], color=colours[p], alpha=0.2,
                        label="simulated 90% interval" if p == 5 else ("" if p == 95 else "simulated median 90% interval"))
        ax.plot(t["x"], t[f"obs_p{p}"], color=colours[p], lw=1.6, marker="o", ms=3,
                ls="-" if p == 50 else "--", label=f"observed {p}th percentile")
    if len(t) > 1:  # where one bin ends and the next begins: ticks along the bottom
        seps = (t["x_hi"].to_numpy()[:-1] + t["x_lo"].to_numpy()[1:]) / 2
        ax.vlines(seps, 0, 0.04, transform=ax.get_xaxis_transform(), color="0.3", lw=0.8, label="bin edges")
    if log:
        ax.set_yscale("log")
    xlabel = {"TIME": "time (h)", "TAD": "time after dose (h)"}.get(vpc.x, vpc.x)
    ax.set_xlabel(xlabel)
    kind = "prediction-corrected concentration" if vpc.pred_corrected else "concentration"
    ax.set_ylabel(f"{kind} ({vpc.conc_unit})")
    ax.set_title(("pcVPC" if vpc.pred_corrected else "VPC") + (f": {vpc.by} = {group}" if vpc.by else ""))
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True) if lab]
    ax.legend(*zip(*keep, strict=True), fontsize=7, loc="best")
    return ax


def plot_vpc_blq(vpc: VPCResult, group=None, *, ax=None):
    """Observed fraction of BLQ records per bin against the simulated 90% interval."""
    ax = _ax(ax)
    t = vpc.table if vpc.by is None else vpc.table[vpc.table["group"] == group]
    t = t.sort_values("x")
    ax.fill_between(t["x"], t["sim_blq_lo"], t["sim_blq_hi"], color="tab:red", alpha=0.2,
                    label="simulated 90% interval")
    ax.plot(t["x"], t["sim_blq_mid"], color="tab:red", ls="--", lw=1, label="simulated median")
    ax.plot(t["x"], t["obs_blq"], color="0.1", marker="o", ms=3, label="observed")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel({"TIME": "time (h)", "TAD": "time after dose (h)"}.get(vpc.x, vpc.x))
    ax.set_ylabel("fraction below LLOQ")
    ax.set_title("BLQ VPC" + (f": {vpc.by} = {group}" if vpc.by else ""))
    ax.legend(fontsize=8)
    return ax
