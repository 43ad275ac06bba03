"""Exposure-toxicity: Bayesian logistic or ordinal models of an adverse event against each patient's
posterior exposure (see :func:`fit_exposure_response`)."""

from ._model import CURVE_POINTS as CURVE_POINTS
from ._model import ExposureResponse as ExposureResponse
from ._model import fit_exposure_response as fit_exposure_response
from ._model import floor_exposure as floor_exposure
from ._model import mcmc_diagnostics as mcmc_diagnostics
from ._model import sample_event_model as sample_event_model

__all__ = ["CURVE_POINTS", "ExposureResponse", "fit_exposure_response", "floor_exposure", "mcmc_diagnostics", "sample_event_model"]
