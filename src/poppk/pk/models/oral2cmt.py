"""Two compartments, first-order absorption, linear elimination: closed form (NONMEM ADVAN4 TRANS4)."""

from __future__ import annotations

from typing import ClassVar

from .._base import AbstractPKModel, Params
from .._linear import AbstractLinearModel
from .._registry import register_kernel


@register_kernel("oral2cmt")
class Oral2Cmt(AbstractLinearModel):
    """Linear two-compartment model with first-order absorption.

    CMT 1 depot, 2 central (``V1``), 3 peripheral (``V2``); ``k10 = CL/V1``, ``k12 = Q/V1``,
    ``k21 = Q/V2``. Closed form by superposition (:mod:`poppk.pk._linear`): boluses, infusions and
    oral doses, trains and steady state.

    Parameters: CL, Q (L/h), V1, V2 (L), KA (1/h); optional TLAG (h), F1.
    """

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V1", "Q", "V2", "KA")
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "KA": "1/h", "TLAG": "h", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {
        **AbstractPKModel.descriptions, "CL": "clearance", "V1": "central volume", "Q": "intercompartmental clearance",
        "V2": "peripheral volume", "KA": "first-order absorption rate constant"}
    compartments: ClassVar[tuple[str, ...]] = ("depot", "central", "peripheral")
    absorption: ClassVar[tuple[str, ...]] = ("KA", "TLAG")
    absorption_rate: ClassVar[str | None] = "KA"
    oral: ClassVar[bool] = True
    peripherals: ClassVar[int] = 1

    def micro(self, p: Params):
        v1 = p["V1"]
        return p["CL"] / v1, (p["Q"] / v1,), (p["Q"] / p["V2"],), v1
