"""Three compartments, first-order absorption, linear elimination: closed form (NONMEM ADVAN12 TRANS4)."""

from __future__ import annotations

from typing import ClassVar

from .._base import AbstractPKModel, Params
from .._linear import AbstractLinearModel
from .._registry import register_kernel


@register_kernel("oral3cmt")
class Oral3Cmt(AbstractLinearModel):
    """Linear three-compartment model with first-order absorption.

    CMT 1 depot, 2 central (``V1``), 3 and 4 peripherals (``V2``, ``V3``); ``k10 = CL/V1``,
    ``k12 = Q/V1``, ``k21 = Q/V2``, ``k13 = Q3/V1``, ``k31 = Q3/V3``. Closed form by superposition
    (:mod:`poppk.pk._linear`).

    Parameters: CL, Q, Q3 (L/h), V1, V2, V3 (L), KA (1/h); optional TLAG (h), F1.
    """

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V1", "Q", "V2", "Q3", "V3", "KA")
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "Q3": "L/h", "V3": "L",
                                       "KA": "1/h", "TLAG": "h", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {
        **AbstractPKModel.descriptions, "CL": "clearance", "V1": "central volume", "Q": "intercompartmental clearance",
        "V2": "first peripheral volume", "Q3": "second intercompartmental clearance", "V3": "second peripheral volume",
        "KA": "first-order absorption rate constant"}
    compartments: ClassVar[tuple[str, ...]] = ("depot", "central", "peripheral1", "peripheral2")
    absorption: ClassVar[tuple[str, ...]] = ("KA", "TLAG")
    absorption_rate: ClassVar[str | None] = "KA"
    oral: ClassVar[bool] = True
    peripherals: ClassVar[int] = 2

    def micro(self, p: Params):
        v1 = p["V1"]
        return p["CL"] / v1, (p["Q"] / v1, p["Q3"] / v1), (p["Q"] / p["V2"], p["Q3"] / p["V3"]), v1
