"""Model specifications (TOML) and the NumPyro models built from them.

One of each, used by every part of poppk: :func:`log_typical` and :func:`individual_parameters`
(typical values, covariate effects and random effects -> each subject's parameters),
:func:`iiv_cholesky` (random effects from standard normals), :func:`observation` (the residual-error
model, BLQ records censored) and :func:`priors` (every population parameter's prior).
"""

from ._build import BuiltModel as BuiltModel
from ._build import CovariateCoding as CovariateCoding
from ._build import CovariateInputs as CovariateInputs
from ._build import build_model as build_model
from ._build import covariate_coding as covariate_coding
from ._build import covariate_inputs as covariate_inputs
from ._build import effect_names as effect_names
from ._build import first_doses as first_doses
from ._build import iiv_choices as iiv_choices
from ._build import iiv_cholesky as iiv_cholesky
from ._build import individual_parameters as individual_parameters
from ._build import log_typical as log_typical
from ._build import observation as observation
from ._build import occasion_labels as occasion_labels
from ._build import prior_median as prior_median
from ._build import priors as priors
from ._build import segment_parameters as segment_parameters
from ._build import sigma_prior as sigma_prior
from ._build import time_varying as time_varying
from ._likelihood import PKResidual as PKResidual
from ._spec import Covariate as Covariate
from ._spec import ModelSpec as ModelSpec
from ._spec import load_spec as load_spec
from ._spec import parse_spec as parse_spec

__all__ = ["BuiltModel", "Covariate", "CovariateCoding", "CovariateInputs", "ModelSpec", "PKResidual", "build_model", "covariate_coding", "covariate_inputs", "effect_names", "first_doses", "iiv_choices", "iiv_cholesky",
           "individual_parameters", "load_spec", "log_typical", "observation", "occasion_labels", "parse_spec", "prior_median", "priors",
           "segment_parameters", "sigma_prior", "time_varying"]
