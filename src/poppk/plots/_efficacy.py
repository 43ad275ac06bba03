"""Drawings for efficacy: Kaplan-Meier curves by exposure group, the survival model's VPC."""

from __future__ import annotations

from ._gof import _ax


def plot_km(km, *, time_unit: str = "days", ax=None):
    """Kaplan-Meier step curves with their 95% bands, one per group (:func:`poppk.efficacy.kaplan_meier`);
    censoring marked with ticks where the curve does not step."""
    ax = _ax(ax)
    for k, (group, g) in enumerate(km.groupby("group", sort=False)):
        color = f"C{k}"
        ax.step(g["time"], g["survival"], where="post", color=color, lw=1.4, label=f"{group} (n={int(g['at_risk'].iloc[0])})")
        ax.fill_between(g["time"], g["lo"], g["hi"], step="post", color=color, alpha=0.15, lw=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("progression-free (Kaplan-Meier)")
    ax.legend(fontsize=8, title="exposure", title_fontsize=8)
    return ax


def plot_survival_vpc(vpc, *, time_unit: str = "days", level: float = 0.90, ax=None):
    """The observed Kaplan-Meier curve over the model's replicate trials: median and band at ``level``
    (:func:`poppk.efficacy.survival_vpc`)."""
    ax = _ax(ax)
    ax.fill_between(vpc["time"], vpc["lo"], vpc["hi"], color="tab:blue", alpha=0.25, lw=0,
                    label=f"model, {100 * level:.0f}% of replicate trials")
    ax.plot(vpc["time"], vpc["median"], color="tab:blue", lw=1.2, label="model, median")
    ax.step(vpc["time"], vpc["observed"], where="post", color="black", lw=1.4, label="observed")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("progression-free")
    ax.legend(fontsize=8)
    return ax


def figure_efficacy(km, vpc, *, time_unit: str = "days"):
    """The figure ``poppk efficacy`` saves: KM by exposure tertile beside the survival model's VPC."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_km(km, time_unit=time_unit, ax=axes[0])
    axes[0].set_title("Kaplan-Meier by exposure tertile")
    plot_survival_vpc(vpc, time_unit=time_unit, ax=axes[1])
    axes[1].set_title("visual predictive check")
    fig.tight_layout()
    return fig


__all__ = ["figure_efficacy", "plot_km", "plot_survival_vpc"]
