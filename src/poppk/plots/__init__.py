"""Diagnostic drawings, matplotlib only: every ``plot_*(..., ax=None)`` returns the Axes it drew on.

The numbers behind them come from :mod:`poppk.diagnostics`.
"""

from ._efficacy import figure_efficacy, plot_km, plot_survival_vpc
from ._gof import plot_npde, plot_obs_vs_pred, plot_vpc, plot_vpc_blq
from ._params import (plot_eta_covariate, plot_individual, plot_individual_pages, plot_prior_posterior, plot_rank,
                      plot_shrinkage, plot_trace)
from ._use import (figure_exposure_response, figure_regimens, plot_dose_options, plot_exposure_by_regimen,
                   plot_exposure_response, plot_regimen_bands, save_figure)

__all__ = ["figure_efficacy", "plot_km", "plot_survival_vpc", "figure_exposure_response", "figure_regimens", "save_figure", "plot_dose_options", "plot_exposure_by_regimen", "plot_exposure_response", "plot_regimen_bands",
           "plot_eta_covariate", "plot_individual", "plot_individual_pages", "plot_npde", "plot_obs_vs_pred",
           "plot_prior_posterior", "plot_rank", "plot_shrinkage", "plot_trace", "plot_vpc", "plot_vpc_blq"]
