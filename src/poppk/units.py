"""Dose, concentration and time units.

Parameters are always reported in L, L/h, 1/h and h. Amounts are in the
dataset's declared dose unit and observations in its declared concentration
unit; a kernel computes ``amount / V`` (dose unit per litre) and multiplies by
:func:`concentration_scale` to land in the observation unit.

Examples
--------
>>> concentration_scale("mg", "ng/mL")
1000.0
>>> concentration_scale("mg", "mg/L")
1.0
"""

from __future__ import annotations

from .errors import UnitError

#: Dose units and their size in milligrams.
DOSE_UNITS: dict[str, float] = {"g": 1e3, "mg": 1.0, "ug": 1e-3, "µg": 1e-3, "mcg": 1e-3, "ng": 1e-6}

#: Concentration units and their size in mg/L.
CONC_UNITS: dict[str, float] = {
    "g/L": 1e3,
    "mg/L": 1.0,
    "ug/mL": 1.0,
    "µg/mL": 1.0,
    "mg/mL": 1e3,
    "ug/L": 1e-3,
    "µg/L": 1e-3,
    "ng/mL": 1e-3,
    "ng/L": 1e-6,
    "pg/mL": 1e-6,
}


def _lookup(table: dict[str, float], unit: str, kind: str) -> float:
    for name, value in table.items():
        if name.lower() == unit.strip().lower():
            return value
    raise UnitError(f"unknown {kind} unit {unit!r}; use one of {', '.join(table)}")


def check_dose_unit(unit: str) -> str:
    """Return ``unit`` if it is a known dose unit, else raise :class:`UnitError`."""
    _lookup(DOSE_UNITS, unit, "dose")
    return unit


def check_conc_unit(unit: str) -> str:
    """Return ``unit`` if it is a known concentration unit, else raise :class:`UnitError`."""
    _lookup(CONC_UNITS, unit, "concentration")
    return unit


def concentration_scale(dose_unit: str, conc_unit: str) -> float:
    """Factor that turns ``dose_unit / L`` into ``conc_unit``.

    Parameters
    ----------
    dose_unit : str
        Unit of AMT, e.g. ``"mg"``.
    conc_unit : str
        Unit of DV, e.g. ``"ng/mL"``.
    """
    return _lookup(DOSE_UNITS, dose_unit, "dose") / _lookup(CONC_UNITS, conc_unit, "concentration")
