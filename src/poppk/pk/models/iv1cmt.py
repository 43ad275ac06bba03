"""One compartment, intravenous input, linear elimination: closed form (NONMEM ADVAN1 TRANS2)."""

from __future__ import annotations

from typing import ClassVar

from .._base import Params
from .._linear import AbstractLinearModel
from .._registry import register_kernel


@register_kernel("iv1cmt")
class IV1Cmt(AbstractLinearModel):
    """Linear one-compartment model for intravenous doses: CMT 1 is the central compartment.

    ``C(t) = D/V exp(-CL/V t)`` after a bolus; ``R/CL (1 - exp(-CL/V t))`` during an infusion at rate
    ``R``; trains and steady state summed in closed form (:mod:`poppk.pk._linear`).

    Parameters: CL (L/h), V (L); optional F1.
    """

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V")
    optional: ClassVar[dict[str, float]] = {"F1": 1.0}
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V": "L", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {"CL": "clearance", "V": "volume of distribution",
                                              "F1": "fraction of the dose reaching the circulation"}
    compartments: ClassVar[tuple[str, ...]] = ("central",)
    central_cmt: ClassVar[int] = 1
    depot_cmt: ClassVar[int | None] = None

    def micro(self, p: Params):
        return p["CL"] / p["V"], (), (), p["V"]
