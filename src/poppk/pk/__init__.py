"""Structural kernels and the one dosing engine every part of poppk uses.

Event arrays (:class:`Doses`, :class:`Sampling`), the rule for where a sample stands in each dose
train (:func:`train_position`, :func:`time_after_dose`), the ODE integrator
(:class:`AbstractODEModel`), the kernel registry (:func:`register_kernel`, :data:`KERNELS`) and the
bundled models in :mod:`poppk.pk.models`, one file each.

>>> from poppk import pk
>>> {"iv1cmt", "iv2cmt", "iv3cmt", "oral1cmt", "oral2cmt", "oral3cmt", "oral1cmt_mm"} <= set(pk.KERNELS)   # the bundled ones, and any you register
True
"""

from __future__ import annotations

from ._base import AbstractPKModel as AbstractPKModel
from ._base import accepted_parameters as accepted_parameters
from ._base import apparent_parameters as apparent_parameters
from ._base import dose_problems as dose_problems
from ._base import input_rates as input_rates
from ._base import parameter_unit as parameter_unit
from ._base import concentrations as concentrations
from ._base import predict_jit as predict_jit
from ._base import predict_subjects as predict_subjects
from ._base import prepare as prepare
from ._events import ADDL_ORDER as ADDL_ORDER
from ._events import CENTRAL as CENTRAL
from ._events import DEPOT as DEPOT
from ._events import DOSE_ARRAYS as DOSE_ARRAYS
from ._events import Doses as Doses
from ._events import Sampling as Sampling
from ._events import expand_trains as expand_trains
from ._events import merge_regular as merge_regular
from ._events import time_after_dose as time_after_dose
from ._events import train_position as train_position
from ._linear import AbstractLinearModel as AbstractLinearModel
from ._ode import AbstractODEModel as AbstractODEModel
from ._ode import AbstractOralODEModel as AbstractOralODEModel
from ._predict import check_data as check_data
from ._predict import get_kernel as get_kernel
from ._predict import predict as predict
from ._registry import KERNELS as KERNELS
from ._registry import kernel_class as kernel_class
from ._registry import kernel_name as kernel_name
from ._registry import load_kernel_file as load_kernel_file
from ._registry import register_kernel as register_kernel
from . import models as models  # noqa: E402 - registers the bundled kernels
from .models.iv1cmt import IV1Cmt as IV1Cmt
from .models.iv2cmt import IV2Cmt as IV2Cmt
from .models.iv3cmt import IV3Cmt as IV3Cmt
from .models.oral1cmt import Oral1Cmt as Oral1Cmt
from .models.oral2cmt import Oral2Cmt as Oral2Cmt
from .models.oral3cmt import Oral3Cmt as Oral3Cmt
from .models.oral1cmt_mm import Oral1CmtMM as Oral1CmtMM
from .models.oral1cmt_ode import Oral1CmtODE as Oral1CmtODE

__all__ = [
    "ADDL_ORDER", "AbstractLinearModel", "AbstractODEModel", "AbstractOralODEModel", "AbstractPKModel", "CENTRAL", "DEPOT",
    "DOSE_ARRAYS", "Doses", "IV1Cmt", "IV2Cmt", "IV3Cmt", "KERNELS", "Oral1Cmt", "Oral1CmtMM", "Oral1CmtODE", "Oral2Cmt",
    "Oral3Cmt", "Sampling", "accepted_parameters", "apparent_parameters", "check_data", "concentrations", "dose_problems", "expand_trains", "get_kernel",
    "input_rates", "kernel_class", "kernel_name", "load_kernel_file", "merge_regular", "models", "parameter_unit", "predict",
    "predict_jit", "predict_subjects", "prepare", "register_kernel", "time_after_dose", "train_position",
]
