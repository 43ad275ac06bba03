"""Structural kernels: the one dosing engine every part of poppk uses.

>>> from poppk import pk
>>> sorted(pk.KERNELS)
['oral1cmt', 'oral1cmt_mm', 'oral1cmt_ode']
"""

from __future__ import annotations

from ._base import AbstractPKModel as AbstractPKModel
from ._base import predict_subjects as predict_subjects
from ._events import Doses as Doses
from ._events import Sampling as Sampling
from ._events import expand_trains as expand_trains
from ._events import merge_regular as merge_regular
from ._ode import AbstractODEModel as AbstractODEModel
from ._oral1cmt import Oral1Cmt as Oral1Cmt
from ._oral1cmt_mm import Oral1CmtMM as Oral1CmtMM
from ._oral1cmt_ode import Oral1CmtODE as Oral1CmtODE
from ._predict import get_kernel as get_kernel
from ._predict import predict as predict

#: Kernels by the name a model specification or ``--model`` uses.
KERNELS: dict[str, type[AbstractPKModel]] = {
    "oral1cmt": Oral1Cmt,
    "oral1cmt_ode": Oral1CmtODE,
    "oral1cmt_mm": Oral1CmtMM,
}

__all__ = [
    "AbstractODEModel", "AbstractPKModel", "Doses", "KERNELS", "Oral1Cmt", "Oral1CmtMM", "Oral1CmtODE",
    "Sampling", "expand_trains", "get_kernel", "merge_regular", "predict", "predict_subjects",
]
