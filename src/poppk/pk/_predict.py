"""Population predictions for a dataset (no variability)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._runtime import configure_jax
from ..errors import DatasetError, ModelSpecError, SolverError, Violation
from ..units import concentration_scale
from ._base import AbstractPKModel, accepted_parameters, concentrations, dose_problems
from ._registry import kernel_class, kernel_name

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


def check_data(kernel: AbstractPKModel, data: PKDataset, names) -> None:
    """Records of ``data`` that ``kernel`` with parameters ``names`` cannot take, as one
    :class:`~poppk.DatasetError` naming each row (1-based) and column: doses into a compartment the
    kernel does not have, ``RATE = -1``/``-2`` without the model's ``R<cmt>``/``D<cmt>``, observations
    of a compartment other than the central one (CMT 0 or missing means the central)."""
    rows = np.asarray(data.dose_row)
    violations = [Violation(int(rows[i, d]) + 1, column, message)
                  for i, d, column, message in dose_problems(kernel, data.doses, set(names))]
    cmt, present = np.asarray(data.obs_cmt), np.asarray(data.present) & (np.asarray(data.evid) == 0)
    central = kernel.central_cmt
    bad = present & (cmt != 0) & (cmt != central)
    if bad.any():
        named = dict(enumerate(kernel.compartments, start=1))
        for r, c in zip(np.asarray(data.row)[bad], cmt[bad], strict=True):
            what = named.get(int(c), "no compartment of this model")
            violations.append(Violation(int(r) + 1, "CMT", f"observation of CMT {c} ({what}); {kernel_name(kernel)} "
                                                           f"predicts the central compartment, CMT {central} (or 0)"))
    if violations:
        raise DatasetError(violations)


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
    unknown = set(params) - set(accepted_parameters(model))
    if unknown:
        raise ModelSpecError(
            f"{type(model).__name__} has no parameter(s) {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(accepted_parameters(model))}"
        )
    missing = set(model.parameters) - set(params)
    if missing:
        raise ModelSpecError(f"{type(model).__name__} needs parameter(s) {', '.join(sorted(missing))}")
    check_data(model, data, params)
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
