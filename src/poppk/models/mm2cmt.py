"""Two compartments, first-order absorption, Michaelis-Menten elimination: a model written as a user
would write their own, in a file of their own, and named by a spec (``mm2cmt.toml``: ``[model] file``).

The right-hand side has no dosing terms: poppk adds every dose (bolus, infusion, steady state) into the
compartment its CMT names: 1 depot, 2 central, 3 peripheral.
"""

from typing import ClassVar

import jax.numpy as jnp

from poppk.pk import AbstractODEModel, register_kernel


@register_kernel("mm2cmt")
class MM2Cmt(AbstractODEModel):
    """``dC/dt`` with saturable elimination ``VMAX C / (KM + C)`` from the central compartment."""

    compartments: ClassVar[tuple[str, ...]] = ("depot", "central", "peripheral")
    parameters: ClassVar[tuple[str, ...]] = ("VMAX", "KM", "V1", "Q", "V2", "KA")
    units: ClassVar[dict[str, str]] = {"VMAX": "amount/h", "KM": "conc", "V1": "L", "Q": "L/h", "V2": "L",
                                       "KA": "1/h", "TLAG": "h", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {
        "VMAX": "maximum elimination rate", "KM": "concentration at half VMAX", "V1": "central volume",
        "Q": "intercompartmental clearance", "V2": "peripheral volume", "KA": "first-order absorption rate constant",
        "TLAG": "absorption lag time", "F1": "bioavailability of depot doses"}
    absorption: ClassVar[tuple[str, ...]] = ("KA", "TLAG")
    absorption_rate: ClassVar[str | None] = "KA"

    def elimination_rate(self, p):
        """``VMAX / (KM V1)`` (1/h): the central elimination rate far below KM (KM in dose unit per L)."""
        return p["VMAX"] * self.scale / (p["KM"] * p["V1"])

    def rhs(self, t, a, p):
        depot, central, peripheral = a[0], a[1], a[2]
        conc = self.scale * central / p["V1"]  # in the observation's unit, as KM
        absorbed = p["KA"] * depot
        distribution = p["Q"] * (central / p["V1"] - peripheral / p["V2"])
        return jnp.stack([-absorbed, absorbed - p["VMAX"] * conc / (p["KM"] + conc) - distribution, distribution])

    def observe(self, a, p):
        return a[1] / p["V1"]
