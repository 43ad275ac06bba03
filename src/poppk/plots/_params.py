"""Parameter and convergence drawings, and individual fits (matplotlib only)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from ._gof import BLQ, OBS, _ax


def plot_individual(curves: pd.DataFrame, records: pd.DataFrame, subject, *, dose_times=(), infusions=(),
                    window=None, log: bool = True, conc_unit: str = "", ax=None):
    """One subject: observations, posterior median and 90% band of the prediction, dosing times marked
    (dotted lines) and infusions as bars from start to end (``infusions``: ``(start, end)`` pairs, h).

    ``curves`` from :func:`poppk.diagnostics.individual_curves`; ``records`` from a design simulation.
    ``window``: ``(start, end)`` in h (one of :func:`poppk.diagnostics.observation_windows`) draws that
    stretch only, its span in the title.
    """
    ax = _ax(ax)
    c = curves[curves["ID"].astype(str) == str(subject)]
    r = records[records["ID"].astype(str) == str(subject)]
    dose_times, infusions = np.asarray(dose_times, float), np.asarray(infusions, float).reshape(-1, 2)
    if window is not None:
        lo, hi = window
        c = c[(c["TIME"] >= lo) & (c["TIME"] <= hi)]
        r = r[(r["TIME"] >= lo) & (r["TIME"] <= hi)]
        dose_times = dose_times[(dose_times >= lo) & (dose_times <= hi)]
        infusions = infusions[(infusions[:, 1] >= lo) & (infusions[:, 0] <= hi)]
    pos = c["q50"] > 0 if log else np.ones(len(c), bool)
    ax.fill_between(c["TIME"][pos], c["q5"][pos], c["q95"][pos], color="tab:blue", alpha=0.25, label="90% interval")
    ax.plot(c["TIME"][pos], c["q50"][pos], color="tab:blue", lw=1.2, label="posterior median")
    blq = r["BLQ"].to_numpy(bool)
    ok = ~blq & ((r["DV"] > 0).to_numpy() if log else True)
    ax.scatter(r["TIME"][ok], r["DV"][ok], zorder=3, label="observed", **OBS)
    if blq.any():
        ax.scatter(r["TIME"][blq], r["LLOQ"][blq], zorder=3, label="BLQ (at LLOQ)", **BLQ)
    for k, t in enumerate(dose_times):
        ax.axvline(t, color="0.6", lw=0.5, ls=":", label="dose" if k == 0 else None)
    for k, (start, end) in enumerate(infusions):
        ax.axvspan(start, end, color="tab:orange", alpha=0.2, lw=0, label="infusion" if k == 0 else None)
    if log:
        ax.set_yscale("log")
    if window is not None:
        pad = 0.02 * (window[1] - window[0])
        ax.set_xlim(window[0] - pad, window[1] + pad)
    span = "" if window is None else f", {window[0]:.4g}-{window[1]:.4g} h"
    ax.set_title(f"ID {subject}{span}", fontsize=9)
    ax.set_xlabel("time (h)")
    ax.set_ylabel(f"concentration ({conc_unit})" if conc_unit else "concentration")
    return ax


def plot_individual_pages(curves, records, doses: dict, *, per_page: int = 12, conc_unit: str = "", log=True,
                          infusions: dict | None = None, windows: dict | None = None):
    """All subjects, ``per_page`` panels to a figure; returns the list of figures. ``doses``,
    ``infusions`` and ``windows`` by subject ID (str): :func:`poppk.diagnostics.dose_times`,
    :func:`poppk.diagnostics.infusion_spans`, :func:`poppk.diagnostics.observation_windows`. With
    ``windows``, a subject sampled on separate occasions gets a panel per window."""
    ids = list(dict.fromkeys(records["ID"].astype(str)))
    panels = [(sid, None) for sid in ids] if windows is None else [
        (sid, (float(lo), float(hi)) if len(windows[sid]) > 1 else None) for sid in ids for lo, hi in windows[sid]]
    figs = []
    for start in range(0, len(panels), per_page):
        page = panels[start:start + per_page]
        ncol = min(4, len(page))
        nrow = math.ceil(len(page) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False, layout="constrained")
        for ax, (sid, window) in zip(axes.ravel(), page, strict=False):
            plot_individual(curves, records, sid, dose_times=doses.get(sid, ()), infusions=(infusions or {}).get(sid, ()),
                            window=window, log=log, conc_unit=conc_unit, ax=ax)
        for ax in axes.ravel()[len(page):]:
            ax.set_visible(False)
        axes.ravel()[0].legend(fontsize=6)
        figs.append(fig)
    return figs


#: A numeric covariate with at most this many whole-number values is drawn as categories (box plots).
CATEGORY_LEVELS = 5


def plot_eta_covariate(etas: pd.DataFrame, parameter: str, covariate: str, *, ax=None):
    """Posterior mean random effect of ``parameter`` per subject against a covariate: for a continuous
    one a scatter with a least-squares line (a trend suggests a missing covariate effect); for a
    categorical one (text, or at most ``CATEGORY_LEVELS`` whole numbers) a box plot per level with the
    subjects over it and each level's count."""
    ax = _ax(ax)
    raw, y = etas[covariate], etas[f"eta_{parameter}"].to_numpy(float)
    numeric = pd.to_numeric(raw, errors="coerce") if raw.dtype == object else raw.astype(float)
    x = numeric.to_numpy(float)
    have = np.isfinite(x)
    categorical = raw.dtype == object or (have.any() and np.all(x[have] == np.round(x[have]))
                                          and np.unique(x[have]).size <= CATEGORY_LEVELS)
    if categorical:
        labels = raw.map(lambda v: None if pd.isna(v) else f"{v:g}" if isinstance(v, (int, float)) else str(v))
        def order(v):  # numbers by value, then text alphabetically
            num = pd.to_numeric(v, errors="coerce")
            return (0, float(num), "") if np.isfinite(num) else (1, 0.0, v)

        levels = sorted(labels.dropna().unique(), key=order)
        groups = [y[(labels == lv).to_numpy() & np.isfinite(y)] for lv in levels]
        ax.boxplot(groups, positions=range(len(levels)), widths=0.5, showfliers=False)
        for k, g in enumerate(groups):
            ax.scatter(np.full(g.size, k) + np.linspace(-0.12, 0.12, max(g.size, 1))[:g.size], g, **OBS)
        ax.set_xticks(range(len(levels)), [f"{lv}\n(n={g.size})" for lv, g in zip(levels, groups)], fontsize=7)
    else:
        ax.scatter(x, y, **OBS)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() > 2 and np.ptp(x[ok]) > 0:
            slope, icpt = np.polyfit(x[ok], y[ok], 1)
            xs = np.linspace(x[ok].min(), x[ok].max(), 20)
            ax.plot(xs, icpt + slope * xs, color="tab:red", lw=1, label="least squares")
            ax.legend(fontsize=7)
    ax.axhline(0, color="0.5", lw=1)
    ax.set_xlabel(covariate)
    ax.set_ylabel(f"eta {parameter} (log scale)")
    return ax


def plot_shrinkage(shrink: dict, *, ax=None):
    """Eta shrinkage (%) per parameter; above 30% individual estimates lean on the population."""
    ax = _ax(ax)
    names = list(shrink)
    vals = [100 * shrink[n] for n in names]
    ax.bar(names, vals, color=["tab:red" if v > 30 else "tab:blue" for v in vals])
    ax.axhline(30, color="0.4", ls="--", lw=1, label="30%")
    ax.set_ylabel("eta shrinkage (%)")
    ax.set_ylim(0, 100)
    ax.set_title("shrinkage")
    ax.legend(fontsize=8)
    return ax


def plot_prior_posterior(draws: np.ndarray, prior: stats.rv_continuous, name: str, *, unit: str = "", ax=None):
    """Posterior histogram of a population parameter over its prior density (a frozen scipy distribution)."""
    ax = _ax(ax)
    draws = np.asarray(draws, float).ravel()
    ax.hist(draws, bins=40, density=True, color="tab:blue", alpha=0.6, label="posterior")
    lo, hi = np.quantile(draws, [0.001, 0.999])
    plo, phi = prior.ppf([0.005, 0.995])
    xs = np.linspace(max(min(lo, plo), prior.support()[0]), max(hi, phi), 400)
    ax.plot(xs, prior.pdf(xs), color="tab:orange", lw=1.5, label="prior")
    if prior.support()[0] >= 0 and xs.max() / max(xs[xs > 0].min(), 1e-300) > 100:
        ax.set_xscale("log")
    ax.set_xlabel(f"{name} ({unit})" if unit else name)
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return ax


def plot_trace(draws: np.ndarray, name: str, *, ax=None):
    """Draws against iteration, one line per chain (``draws`` shape (chains, draws))."""
    ax = _ax(ax)
    for c, row in enumerate(np.atleast_2d(draws)):
        ax.plot(row, lw=0.4, alpha=0.8, label=f"chain {c}")
    ax.set_xlabel("iteration")
    ax.set_ylabel(name)
    return ax


def plot_rank(draws: np.ndarray, name: str, *, bins: int = 20, ax=None):
    """Rank histograms per chain (Vehtari et al. 2021): flat and alike when the chains mix."""
    ax = _ax(ax)
    draws = np.atleast_2d(draws)
    ranks = stats.rankdata(draws.ravel()).reshape(draws.shape)
    edges = np.linspace(0, ranks.size, bins + 1)
    for c, r in enumerate(ranks):
        counts, _ = np.histogram(r, edges)
        ax.step(edges[:-1], counts, where="post", lw=1, label=f"chain {c}")
    ax.axhline(draws.shape[1] / bins, color="0.4", ls="--", lw=1)
    ax.set_xlabel("rank (all chains)")
    ax.set_ylabel(f"{name}: count")
    return ax
