"""Diagnostic drawings, matplotlib only: every ``plot_*(..., ax=None)`` returns the Axes it drew on.

The numbers behind them come from :mod:`poppk.diagnostics`.
"""

from ._gof import plot_npde, plot_obs_vs_pred, plot_vpc, plot_vpc_blq
from ._params import (plot_eta_covariate, plot_individual, plot_individual_pages, plot_prior_posterior, plot_rank,
                      plot_shrinkage, plot_trace)

__all__ = ["plot_eta_covariate", "plot_individual", "plot_individual_pages", "plot_npde", "plot_obs_vs_pred",
           "plot_prior_posterior", "plot_rank", "plot_shrinkage", "plot_trace", "plot_vpc", "plot_vpc_blq"]
