"""Transit-compartment absorption (Savic et al., J Pharmacokinet Pharmacodyn 2007;34:711-726, with a
fixed number of transit compartments): the dose passes through ``N_TRANSIT`` compartments, each emptied
at ``KTR = (N_TRANSIT + 1) / MTT``, before the central one; one-compartment linear disposition.

A model written as a user would, named by a spec (``transit.toml``: ``[model] file``). CMT 1 is the
dosing compartment (the first transit), the central compartment is the last.
"""

from typing import ClassVar

import jax.numpy as jnp

from poppk.pk import AbstractODEModel, register_kernel

N_TRANSIT = 4


@register_kernel("transit")
class Transit(AbstractODEModel):
    """Absorption delayed through a chain of transit compartments (mean transit time ``MTT``)."""

    compartments: ClassVar[tuple[str, ...]] = tuple(f"transit{i}" for i in range(1, N_TRANSIT + 1)) + ("central",)
    central_cmt: ClassVar[int] = N_TRANSIT + 1
    depot_cmt: ClassVar[int | None] = 1
    parameters: ClassVar[tuple[str, ...]] = ("CL", "V", "MTT")
    optional: ClassVar[dict[str, float]] = {"F1": 1.0}
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V": "L", "MTT": "h", "F1": ""}
    descriptions: ClassVar[dict[str, str]] = {"CL": "clearance", "V": "volume of distribution",
                                              "MTT": "mean transit time", "F1": "bioavailability"}
    absorption: ClassVar[tuple[str, ...]] = ("MTT",)

    def rhs(self, t, a, p):
        ktr = (N_TRANSIT + 1) / p["MTT"]
        outflow = ktr * a[:N_TRANSIT]
        inflow = jnp.concatenate([jnp.zeros(1), outflow[:-1]])
        d_transit = inflow - outflow
        d_central = outflow[-1] - p["CL"] / p["V"] * a[N_TRANSIT]
        return jnp.concatenate([d_transit, d_central[None]])
