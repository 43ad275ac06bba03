"""The linear one-compartment oral model as an ODE (reference for the closed form)."""

from __future__ import annotations

from typing import ClassVar

from .._base import Params
from .._ode import AbstractOralODEModel
from .._registry import register_kernel


@register_kernel("oral1cmt_ode")
class Oral1CmtODE(AbstractOralODEModel):
    """``Oral1Cmt`` integrated numerically: d depot = -KA depot, d central = KA depot - CL/V central."""

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V", "KA")
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V": "L", "KA": "1/h", "TLAG": "h", "F1": ""}

    descriptions: ClassVar[dict[str, str]] = {
        **AbstractOralODEModel.descriptions, "CL": "clearance", "V": "volume of distribution",
        "KA": "first-order absorption rate constant"}

    def elimination_rate(self, params: Params):
        """``CL / V`` (1/h)."""
        return params["CL"] / params["V"]

    def elimination(self, central, p):
        return p["CL"] / p["V"] * central
