"""The linear one-compartment oral model as an ODE (reference for the closed form)."""

from __future__ import annotations

from typing import ClassVar

from ._ode import AbstractODEModel


class Oral1CmtODE(AbstractODEModel):
    """``Oral1Cmt`` integrated numerically: d depot = -KA depot, d central = KA depot - CL/V central."""

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V", "KA")
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V": "L", "KA": "1/h", "TLAG": "h", "F1": ""}

    def elimination(self, central, p):
        return p["CL"] / p["V"] * central

