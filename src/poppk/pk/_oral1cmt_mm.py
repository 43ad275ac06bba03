"""One compartment, first-order absorption, Michaelis-Menten elimination (ODE)."""

from __future__ import annotations

from typing import ClassVar

from ._ode import AbstractODEModel


class Oral1CmtMM(AbstractODEModel):
    """Saturable elimination ``VMAX C / (KM + C)``.

    VMAX is in dose units per hour, KM in the observation's concentration
    unit, V in L, KA in 1/h. For concentrations far below KM the model is
    linear with ``CL = VMAX / KM`` (KM converted to dose unit per litre, i.e.
    ``CL = VMAX * scale / KM``); exposure rises more than dose-proportionally
    as concentrations approach KM.
    """

    parameters: ClassVar[tuple[str, ...]] = ("VMAX", "KM", "V", "KA")
    units: ClassVar[dict[str, str]] = {"VMAX": "amount/h", "KM": "conc", "V": "L", "KA": "1/h", "TLAG": "h", "F1": ""}

    def elimination(self, central, p):
        conc = self.scale * central / p["V"]
        return p["VMAX"] * conc / (p["KM"] + conc)

