"""One compartment, first-order absorption, linear elimination: closed form."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._base import AbstractPKModel, Params, lagged_times
from .._events import CENTRAL, DEPOT, Doses, Sampling, as_row, merge_regular, train_position
from .._registry import register_kernel

#: |KA - K| below this fraction of K uses the KA == K limit (dose trains).
_CLOSE = 1e-6
#: Below this, (1 - exp(-u)) / u is evaluated by its Taylor series (truncation error u^3 / 24 < 1e-16).
_SERIES_BELOW = 1e-5


def _geometric(x, m, ii, ss):
    """sum_{k=0}^{m-1} exp(-x k ii); the infinite sum where ``ss``."""
    has_ii = ii > 0
    ii_s = jnp.where(has_ii, ii, 1.0)
    denom = -jnp.expm1(-x * ii_s)
    finite = -jnp.expm1(-x * jnp.where(ss, 1.0, m) * ii_s) / denom  # no inf*0 in gradients
    return jnp.where(ss, 1.0 / denom, jnp.where(has_ii, finite, m))


def _phi(u):
    """``(1 - exp(-u)) / u`` for ``u >= 0`` (1 at 0), to rounding error everywhere."""
    small = u < _SERIES_BELOW
    safe = jnp.where(small, 1.0, u)
    return jnp.where(small, 1.0 - u * (0.5 - u / 6.0), -jnp.expm1(-safe) / safe)


def _exp_difference(tau, k, ka, e_k, e_ka):
    """``(exp(-k tau) - exp(-ka tau)) / (ka - k)`` for ``tau >= 0``, given ``e_k = exp(-k tau)`` and
    ``e_ka = exp(-ka tau)``: ``tau exp(-min(k, ka) tau) phi(|ka - k| tau)``. Exact for any ``k, ka > 0``,
    the limit ``tau exp(-k tau)`` at ``ka == k`` included: no cancellation, no overflow."""
    return tau * jnp.where(k <= ka, e_k, e_ka) * _phi(jnp.abs(ka - k) * tau)


@register_kernel("oral1cmt")
class Oral1Cmt(AbstractPKModel):
    """Linear one-compartment model with first-order absorption (ADVAN2).

    For a dose ``D`` into the depot (CMT 1) with bioavailability ``F1`` and lag
    ``TLAG``, ``K = CL/V``::

        C(t) = F1 D KA / (V (KA - K)) (exp(-K t) - exp(-KA t))

    and ``D/V exp(-K t)`` for a bolus into the central compartment (CMT 2).
    Dose trains (ADDL/II) and steady state (SS=1) are summed as geometric
    series, so cost does not grow with the number of regular doses. At
    ``KA == K`` the limit ``F1 D K t exp(-K t) / V`` is used: the divided
    difference ``(exp(-K t) - exp(-KA t)) / (KA - K)`` is evaluated without
    cancellation, and for trains the divided difference of the geometric sum,
    within 1e-6 relative of ``KA == K``, as its derivative at the midpoint.

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

    def elimination_rate(self, params: Params):
        """``CL / V`` (1/h)."""
        return params["CL"] / params["V"]

    def prepare(self, doses: Doses, sampling: Sampling | None = None) -> Doses:
        """Regular single oral doses become ADDL trains (:func:`merge_regular`): the cost of a
        prediction then does not grow with the number of regular doses (``benchmarks/scaling.py``)."""
        return merge_regular(doses)

    def concentrations(self, params: Params, doses: Doses, sampling: Sampling) -> Float[Array, " O"]:
        cl, v, ka = params["CL"], params["V"], params["KA"]
        f1, tlag = params["F1"], params["TLAG"]
        k = cl / v
        doses = as_row(doses)  # (1, D): trains along axis 1, samples along axis 0
        t_first = lagged_times(doses, tlag)
        count, dt, active = train_position(doses, t_first, sampling.time, sampling.order, sampling.epoch)
        if not doses.trains:
            # Single doses (prepare() knows): S(x) = exp(-x dt), and the divided difference is evaluated
            # without cancellation, exact at and near KA == K; cheaper than the general path below.
            e_k = jnp.exp(-k * dt)
            depot, bolus = ka * _exp_difference(dt, k, ka, e_k, jnp.exp(-ka * dt)), e_k
        else:
            # Trains: S(x) = exp(-x dt) G(x), G the geometric sum over the doses given. The depot term
            # KA (S(K) - S(KA)) / (KA - K) is split as KA [exp(-K dt) (G(K) - G(KA)) / (KA - K)
            # + G(KA) (exp(-K dt) - exp(-KA dt)) / (KA - K)]: the second divided difference is evaluated
            # without cancellation (as for single doses, which it then equals exactly, G = 1), the
            # first, of the smooth G, by its derivative at the midpoint within _CLOSE of KA == K.
            def geometric(x):
                return _geometric(x, count, doses.ii, doses.ss)

            e_k, e_ka = jnp.exp(-k * dt), jnp.exp(-ka * dt)
            g_k, g_ka = geometric(k), geometric(ka)
            diff = ka - k
            close = jnp.abs(diff) <= _CLOSE * k
            mid = jnp.where(close, 0.5 * (ka + k), k)
            _, slope = jax.jvp(geometric, (mid,), (jnp.ones_like(mid),))
            dg = jnp.where(close, -slope, (g_k - g_ka) / jnp.where(close, 1.0, diff))
            bolus = e_k * g_k
            depot = ka * (e_k * dg + g_ka * _exp_difference(dt, k, ka, e_k, e_ka))
        amounts = jnp.where(doses.cmt == DEPOT, f1 * depot, jnp.where(doses.cmt == CENTRAL, bolus, 0.0))
        amounts = jnp.where(active, doses.amt * amounts, 0.0)
        return self.scale * amounts.sum(axis=1) / v
