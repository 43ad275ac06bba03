"""Three compartments, intravenous input, linear elimination: closed form (NONMEM ADVAN11 TRANS4)."""

from __future__ import annotations

from typing import ClassVar

from .._base import Params
from .._linear import AbstractLinearModel
from .._registry import register_kernel


@register_kernel("iv3cmt")
class IV3Cmt(AbstractLinearModel):
    """Linear three-compartment model for intravenous doses: CMT 1 central (``V1``), 2 and 3 peripherals.

    ``k10 = CL/V1``, ``k12 = Q/V1``, ``k21 = Q/V2``, ``k13 = Q3/V1``, ``k31 = Q3/V3``; tri-exponential,
    closed form by superposition (:mod:`poppk.pk._linear`).

    Parameters: CL, Q, Q3 (L/h), V1, V2, V3 (L); optional F1.
    """

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V1", "Q", "V2", "Q3", "V3")
    optional: ClassVar[dict[str, float]] = {"F1": 1.0}
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "Q3": "L/h", "V3": "L", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {
        "CL": "clearance", "V1": "central volume", "Q": "intercompartmental clearance", "V2": "first peripheral volume",
        "Q3": "second intercompartmental clearance", "V3": "second peripheral volume",
        "F1": "fraction of the dose reaching the circulation"}
    compartments: ClassVar[tuple[str, ...]] = ("central", "peripheral1", "peripheral2")
    central_cmt: ClassVar[int] = 1
    depot_cmt: ClassVar[int | None] = None
    peripherals: ClassVar[int] = 2

    def micro(self, p: Params):
        v1 = p["V1"]
        return p["CL"] / v1, (p["Q"] / v1, p["Q3"] / v1), (p["Q"] / p["V2"], p["Q3"] / p["V3"]), v1
