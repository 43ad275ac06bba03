"""One compartment, first-order absorption, linear elimination: closed form (NONMEM ADVAN2)."""

from __future__ import annotations

from typing import ClassVar

from .._base import AbstractPKModel, Params
from .._linear import AbstractLinearModel
from .._registry import register_kernel


@register_kernel("oral1cmt")
class Oral1Cmt(AbstractLinearModel):
    """Linear one-compartment model with first-order absorption (ADVAN2).

    For a dose ``D`` into the depot (CMT 1) with bioavailability ``F1`` and lag
    ``TLAG``, ``K = CL/V``::

        C(t) = F1 D KA / (V (KA - K)) (exp(-K t) - exp(-KA t))

    and ``D/V exp(-K t)`` for a bolus into the central compartment (CMT 2);
    infusions (``RATE``) into either compartment, dose trains (ADDL/II) and
    steady state (SS) are summed in closed form (:mod:`poppk.pk._linear`), so
    cost does not grow with the number of regular doses. At ``KA == K`` the
    limit ``F1 D K t exp(-K t) / V`` is used.

    Parameters: CL (L/h), V (L), KA (1/h); optional TLAG (h), F1.
    Flip-flop (KA < K) gives the same curve as KA and K swapped; priors or
    initial values must choose the mode.
    """

    parameters: ClassVar[tuple[str, ...]] = ("CL", "V", "KA")
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V": "L", "KA": "1/h", "TLAG": "h", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {
        **AbstractPKModel.descriptions, "CL": "clearance", "V": "volume of distribution",
        "KA": "first-order absorption rate constant"}
    absorption: ClassVar[tuple[str, ...]] = ("KA", "TLAG")
    absorption_rate: ClassVar[str | None] = "KA"
    oral: ClassVar[bool] = True

    def micro(self, p: Params):
        return p["CL"] / p["V"], (), (), p["V"]
