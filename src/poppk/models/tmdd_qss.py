"""Target-mediated drug disposition, quasi-steady-state approximation (Gibiansky et al., J Pharmacokinet
Pharmacodyn 2008;35:573-591, eqs. 7-9): intravenous doses into the central compartment (CMT 1), total
drug ``A1`` and total target ``RTOT`` as states, free concentration from the QSS constant ``KSS``.

A model written as a user would, named by a spec (``tmdd_qss.toml``: ``[model] file``). CMT 1 central
(total drug amount), 2 peripheral, 3 total target (concentration, not dosed).
"""

from typing import ClassVar

import jax.numpy as jnp

from poppk.pk import AbstractODEModel, register_kernel


def free_concentration(ctot, rtot, kss):
    """Free drug from total drug and target (QSS): the positive root of
    ``C^2 + (RTOT + KSS - CTOT) C - KSS CTOT = 0`` (Gibiansky 2008, eq. 8), written without cancellation."""
    b = ctot - rtot - kss
    root = jnp.sqrt(b * b + 4.0 * kss * ctot)
    return jnp.where(b > 0, 0.5 * (b + root), 2.0 * kss * ctot / (root - b))


@register_kernel("tmdd_qss")
class TMDDQSS(AbstractODEModel):
    """Two-compartment disposition with target binding, QSS approximation; the observation is the free
    drug concentration; ``KSS``, ``R0`` and the target state in the data's concentration unit."""

    compartments: ClassVar[tuple[str, ...]] = ("central", "peripheral", "target")
    central_cmt: ClassVar[int] = 1
    depot_cmt: ClassVar[int | None] = None
    parameters: ClassVar[tuple[str, ...]] = ("CL", "V1", "Q", "V2", "KINT", "KSS", "KDEG", "R0")
    optional: ClassVar[dict[str, float]] = {}
    units: ClassVar[dict[str, str]] = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "KINT": "1/h",
                                       "KSS": "conc", "KDEG": "1/h", "R0": "conc"}
    descriptions: ClassVar[dict[str, str]] = {
        "CL": "linear clearance", "V1": "central volume", "Q": "intercompartmental clearance", "V2": "peripheral volume",
        "KINT": "internalisation rate of the complex", "KSS": "quasi-steady-state constant",
        "KDEG": "target degradation rate", "R0": "baseline target concentration"}

    def rhs(self, t, a, p):
        s = self.scale  # dose unit per L -> the data's concentration unit, that of KSS and R0
        a1, a2, excess = a[0], a[1], a[2]
        rtot = p["R0"] + excess  # the state is RTOT - R0 (conc unit), so that it starts at 0 like every amount
        c = free_concentration(s * a1 / p["V1"], rtot, p["KSS"])
        complex_ = rtot * c / (p["KSS"] + c)
        k10, k12, k21 = p["CL"] / p["V1"], p["Q"] / p["V1"], p["Q"] / p["V2"]
        free_amount, complex_amount = c / s * p["V1"], complex_ / s * p["V1"]
        d_a1 = -(k10 + k12) * free_amount + k21 * a2 - p["KINT"] * complex_amount
        d_a2 = k12 * free_amount - k21 * a2
        # d RTOT/dt = KSYN - KDEG RTOT - (KINT - KDEG) RC with KSYN = KDEG R0 (the baseline at steady state)
        d_r = -p["KDEG"] * excess - (p["KINT"] - p["KDEG"]) * complex_
        return jnp.stack([d_a1, d_a2, d_r])

    def observe(self, a, p):
        """The free concentration, in dose unit per L (the engine converts it to the data's unit)."""
        return free_concentration(self.scale * a[0] / p["V1"], p["R0"] + a[2], p["KSS"]) / self.scale
