"""Two compartments, intravenous input, linear elimination: closed form (NONMEM ADVAN3 TRANS4)."""

from __future__ import annotations

from typing import ClassVar

from .._base import Params
from .._linear import AbstractLinearModel
from .._registry import register_kernel


@register_kernel("iv2cmt")
class IV2Cmt(AbstractLinearModel):
    """Linear two-compartment model for intravenous doses: CMT 1 central (``V1``), 2 peripheral (``V2``).

    ``k10 = CL/V1``, ``k12 = Q/V1``, ``k21 = Q/V2``; bi-exponential, closed form by superposition
    (:mod:`poppk.pk._linear`).

    Parameters: CL, Q (L/h), V1, V2 (L); optional F1.
    """

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V1", "Q", "V2")
    optional: ClassVar[dict[str, float]] = {"F1": 1.0}
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {"CL": "clearance", "V1": "central volume", "Q": "intercompartmental clearance",
                                              "V2": "peripheral volume", "F1": "fraction of the dose reaching the circulation"}
    compartments: ClassVar[tuple[str, ...]] = ("central", "peripheral")
    central_cmt: ClassVar[int] = 1
    depot_cmt: ClassVar[int | None] = None
    peripherals: ClassVar[int] = 1

    def micro(self, p: Params):
        v1 = p["V1"]
        return p["CL"] / v1, (p["Q"] / v1,), (p["Q"] / p["V2"],), v1
