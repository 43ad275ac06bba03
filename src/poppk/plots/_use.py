"""Drawings for using a model: regimen bands, exposure by regimen, exposure-response, dose choice."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._gof import _ax

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def plot_regimen_bands(sim, *, ax=None, days: bool = True, log: bool = False):
    """Median and 5-95% / 25-75% concentration bands of each regimen over time."""
    ax = _ax(ax)
    scale = 24.0 if days else 1.0
    for k, (label, g) in enumerate(sim.bands.groupby("regimen", sort=False)):
        c = _COLOURS[k % len(_COLOURS)]
        t = g["TIME"].to_numpy() / scale
        ax.fill_between(t, g["q5"], g["q95"], color=c, alpha=0.15, lw=0)
        ax.fill_between(t, g["q25"], g["q75"], color=c, alpha=0.3, lw=0)
        ax.plot(t, g["q50"], color=c, lw=1.5, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("time (days)" if days else "time (h)")
    ax.set_ylabel(f"concentration ({sim.conc_unit})" + (" with residual error" if sim.residual else ""))
    ax.set_title("virtual patients: median, 50% and 90% ranges")
    ax.legend(fontsize=8)
    return ax


def plot_exposure_by_regimen(sim, metric: str = "AUCtau_ss", *, target=None, ax=None, log: bool = True):
    """Box plots of one exposure metric by regimen, with the target window shaded."""
    from ..simulate import metric_unit

    ax = _ax(ax)
    groups = [(label, g[metric].dropna().to_numpy()) for label, g in sim.exposures.groupby("regimen", sort=False)]
    ax.boxplot([g for _, g in groups], whis=(5, 95), showfliers=False)
    ax.set_xticks(range(1, len(groups) + 1), [label for label, _ in groups], rotation=20, fontsize=8)
    if target is not None and target.metric == metric:
        lo = target.low if np.isfinite(target.low) else ax.get_ylim()[0]
        hi = target.high if np.isfinite(target.high) else ax.get_ylim()[1]
        ax.axhspan(lo, hi, color="tab:green", alpha=0.15, label="target")
        ax.legend(fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(f"{metric} ({metric_unit(metric, sim.conc_unit)})")
    ax.set_title("exposure by regimen (box 25-75%, whiskers 5-95%)")
    return ax


def plot_exposure_response(result, *, ax=None):
    """Probability of the event against exposure: posterior median and 90% band, with each
    patient's event (0/1 at their posterior median exposure, horizontal bar: 90% interval)."""
    ax = _ax(ax)
    curve = result.curve
    ax.fill_between(curve["exposure"], curve["p_lo"], curve["p_hi"], color="tab:blue", alpha=0.2, lw=0,
                    label="90% credible band")
    ax.plot(curve["exposure"], curve["p_median"], color="tab:blue", label="posterior median")
    pts = result.patients
    y = np.where(pts["event"] > 0, 1.0, 0.0)
    jitter = (np.random.default_rng(0).random(len(y)) - 0.5) * 0.04
    ax.errorbar(pts["exposure_median"], y + jitter,
                xerr=[pts["exposure_median"] - pts["exposure_lo"], pts["exposure_hi"] - pts["exposure_median"]],
                fmt="o", ms=4, color="k", alpha=0.6, elinewidth=0.7, label="patients (event 1 / 0)")
    if result.truth is not None:
        ax.plot(curve["exposure"], result.truth(curve["exposure"].to_numpy()), "r--", lw=1, label="generating curve")
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel(f"{result.metric} ({result.unit})")
    ax.set_ylabel(f"P({result.event})")
    ax.set_title(f"{result.event} against {result.metric}")
    ax.legend(fontsize=8)
    return ax


def plot_dose_options(table: pd.DataFrame, *, ax=None):
    """P(target) and P(toxicity) for each candidate regimen, the recommendation marked."""
    ax = _ax(ax)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["p_target"], width=0.4, color="tab:green", label="P(in target)")
    if "p_tox" in table and table["p_tox"].notna().any():
        ax.bar(x + 0.2, table["p_tox"], width=0.4, color="tab:red", label="P(toxicity)")
    if "recommended" in table:
        for i in np.flatnonzero(table["recommended"].to_numpy()):
            ax.annotate("recommended", (x[i], 1.0), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, table["regimen"], rotation=30, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)
    return ax


__all__ = ["plot_dose_options", "plot_exposure_by_regimen", "plot_exposure_response", "plot_regimen_bands"]


def figure_regimens(sim, target=None):
    """The regimen figure ``poppk simulate`` saves: concentration bands beside the exposure metric by
    regimen (``target.metric`` with its window, else AUCtau_ss). Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_regimen_bands(sim, ax=axes[0])
    plot_exposure_by_regimen(sim, target.metric if target else "AUCtau_ss", target=target, ax=axes[1])
    fig.tight_layout()
    return fig


def figure_exposure_response(res):
    """The figure ``poppk tox`` saves: P(event) against exposure with the patients. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    plot_exposure_response(res, ax=ax)
    fig.tight_layout()
    return fig


def save_figure(fig, path, dpi: int = 120):
    """Write ``fig`` to ``path`` (PNG by its suffix) and close it; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
