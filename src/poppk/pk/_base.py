"""The abstract structural model every kernel implements."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._events import DEPOT, Doses, Sampling

Params = dict[str, Any]


class AbstractPKModel(eqx.Module):
    """A structural PK model: parameters and a dose history -> concentrations.

    Concrete kernels are final (never subclassed further). They compute, for
    one subject, the concentration at each sampling time; :func:`predict`
    ``vmap``s them over subjects.

    Attributes
    ----------
    scale : float
        ``dose unit / L`` -> observation unit (see :mod:`poppk.units`).
    """

    scale: float = eqx.field(static=True, default=1.0)

    #: Required structural parameters, in reporting order.
    parameters: ClassVar[tuple[str, ...]] = ()
    #: Optional parameters and the values they take when absent.
    optional: ClassVar[dict[str, float]] = {"TLAG": 0.0, "F1": 1.0}
    #: Units of each parameter (amount and concentration units are the data's).
    units: ClassVar[dict[str, str]] = {}

    def prepare(self, doses: Doses, sampling: Sampling | None = None) -> Any:
        """Dose records (N, D) -> what :meth:`concentrations` consumes (outside jit).

        ``sampling`` lets a kernel choose a faster path the data allow.
        """
        return doses

    @abc.abstractmethod
    def concentrations(self, params: Params, doses: Any, sampling: Sampling) -> Float[Array, " O"]:
        """Concentrations (observation unit) of one subject at ``sampling.time``."""

    def complete(self, params: Params) -> Params:
        """Fill optional parameters with their defaults; check required ones."""
        missing = [p for p in self.parameters if p not in params]
        if missing:
            raise KeyError(f"{type(self).__name__} needs parameter(s) {', '.join(missing)}")
        full = dict(self.optional)
        full.update(params)
        return full


def lagged_times(doses: Doses, tlag) -> Float[Array, "... D"]:
    """Dose times with the absorption lag applied to depot doses."""
    return doses.time + jnp.where(doses.cmt == DEPOT, tlag, 0.0)


def predict_subjects(model: AbstractPKModel, params: Params, doses: Any, sampling: Sampling) -> Float[Array, "N O"]:
    """``vmap`` of ``model.concentrations`` over subjects; scalars broadcast."""
    params = model.complete(params)
    n = sampling.time.shape[0]
    params = {k: jnp.broadcast_to(jnp.asarray(v, dtype=float), (n,)) for k, v in params.items()}
    return jax.vmap(model.concentrations)(params, doses, sampling)
