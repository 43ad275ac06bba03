"""Population predictions for a dataset (no variability)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._runtime import configure_jax
from ..errors import ModelSpecError, SolverError
from ..units import concentration_scale
from ._base import AbstractPKModel, concentrations
from ._registry import kernel_class

if TYPE_CHECKING:
    from ..data import PKDataset


def get_kernel(name: str, dose_unit: str = "mg", conc_unit: str = "mg/L", **options) -> AbstractPKModel:
    """The kernel called ``name`` for data in the given units.

    Examples
    --------
    >>> get_kernel("oral1cmt", "mg", "ng/mL").scale
    1000.0
    """
    return kernel_class(name)(scale=concentration_scale(dose_unit, conc_unit), **options)


def predict(model: AbstractPKModel | str, params: dict, data: PKDataset) -> np.ndarray:
    """Concentrations at every non-dose record of ``data``, shape ``(N, O)``.

    Parameters
    ----------
    model : AbstractPKModel or str
        A kernel, or its name (then built for the data's units).
    params : dict
        Parameter name -> scalar (everyone) or array of shape ``(N,)``.
    data : PKDataset

    Examples
    --------
    >>> import poppk
    >>> data = poppk.read_nonmem(poppk.datasets.path("theophylline"), warn=False)
    >>> c = predict("oral1cmt", {"CL": 2.75, "V": 31.8, "KA": 1.59}, data)
    >>> c.shape
    (12, 11)
    """
    configure_jax()
    if isinstance(model, str):
        model = get_kernel(model, data.dose_unit, data.conc_unit)
    unknown = set(params) - set(model.parameters) - set(model.optional)
    if unknown:
        raise ModelSpecError(
            f"{type(model).__name__} has no parameter(s) {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(model.parameters + tuple(model.optional))}"
        )
    missing = set(model.parameters) - set(params)
    if missing:
        raise ModelSpecError(f"{type(model).__name__} needs parameter(s) {', '.join(sorted(missing))}")
    out = concentrations(model, dict(params), data.doses, data.sampling)
    present = np.asarray(data.present)
    failed = present & ~np.isfinite(np.asarray(out))
    if failed.any():
        ids = [data.ids[i] for i in np.flatnonzero(failed.any(axis=1))]
        raise SolverError(
            f"{type(model).__name__}: the prediction is not finite for ID(s) {ids[:10]} "
            f"({int(failed.sum())} record(s)): the ODE solver or the steady-state iteration failed. Check the "
            "parameters (positive, finite, plausible units); for an adaptive solver raise max_steps")
    return np.where(present, np.asarray(out), np.nan)
