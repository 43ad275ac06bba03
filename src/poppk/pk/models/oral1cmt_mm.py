"""One compartment, first-order absorption, Michaelis-Menten elimination (ODE)."""

from __future__ import annotations

from typing import ClassVar

from .._base import Params
from .._ode import AbstractOralODEModel
from .._registry import register_kernel


@register_kernel("oral1cmt_mm")
class Oral1CmtMM(AbstractOralODEModel):
    """Saturable elimination ``VMAX C / (KM + C)``.

    VMAX is in dose units per hour, KM in the observation's concentration
    unit, V in L, KA in 1/h. For concentrations far below KM the model is
    linear with ``CL = VMAX / KM`` (KM converted to dose unit per litre, i.e.
    ``CL = VMAX * scale / KM``); exposure rises more than dose-proportionally
    as concentrations approach KM.
    """

    parameters: ClassVar[tuple[str, ...]] = ("VMAX", "KM", "V", "KA")
    units: ClassVar[dict[str, str]] = {"VMAX": "amount/h", "KM": "conc", "V": "L", "KA": "1/h", "TLAG": "h", "F1": ""}

    descriptions: ClassVar[dict[str, str]] = {
        **AbstractOralODEModel.descriptions, "VMAX": "maximum elimination rate", "KM": "concentration at half VMAX",
        "V": "volume of distribution", "KA": "first-order absorption rate constant"}

    def elimination_rate(self, params: Params):
        """``VMAX / (KM V)`` (1/h, KM converted to dose unit per litre): the rate far below KM."""
        return params["VMAX"] * self.scale / (params["KM"] * params["V"])

    def elimination(self, central, p):
        conc = self.scale * central / p["V"]
        return p["VMAX"] * conc / (p["KM"] + conc)
