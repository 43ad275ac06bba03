"""The abstract structural model every kernel implements."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..errors import ModelSpecError
from ._events import CENTRAL, DEPOT, Doses, Sampling, any_changes
from ._registry import kernel_name

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
    #: Units of each parameter: ``L``, ``L/h``, ``1/h``, ``h``, ``""`` (a fraction), or ``amount/h`` and
    #: ``conc`` for the data's dose-per-hour and concentration units.
    units: ClassVar[dict[str, str]] = {}
    #: One line per parameter, for tables and the docs.
    descriptions: ClassVar[dict[str, str]] = {"TLAG": "absorption lag time", "F1": "bioavailability of depot doses"}
    #: Absorption parameters: weakly informed by a few points on the rising limb, so ``auto`` samples
    #: their random effects non-centred.
    absorption: ClassVar[tuple[str, ...]] = ()
    #: The first-order absorption rate constant (1/h) that flip-flop kinetics can swap with elimination;
    #: ``None`` for kernels without first-order absorption (no flip-flop to guard against).
    absorption_rate: ClassVar[str | None] = None
    #: Compartment names in NONMEM CMT order (CMT 1 first): which compartment a dose record's CMT fills.
    compartments: ClassVar[tuple[str, ...]] = ("depot", "central")
    #: The CMT of the central (observed) compartment.
    central_cmt: ClassVar[int] = CENTRAL
    #: The CMT of the depot (absorbed first-order), or ``None`` for a kernel without one.
    depot_cmt: ClassVar[int | None] = DEPOT
    #: Whether a fitted model differentiates this kernel by forward sensitivities
    #: (``predict_subjects(..., forward=True)``): worth it where reverse mode is costly (fixed-step ODE
    #: solvers), not for closed forms.
    forward_sensitivities: ClassVar[bool] = False

    def elimination_rate(self, params: Params):
        """The first-order elimination rate constant (1/h) at low concentration, from ``params`` (any
        shape), or ``None`` when the kernel does not say. The flip-flop wall of a fit (``[model]
        flip_flop = "exclude"``) keeps ``params[absorption_rate]`` above it; a kernel with an
        ``absorption_rate`` must define this (fits refuse it otherwise)."""
        return None

    def prepare(self, doses: Doses, sampling: Sampling | None = None, changes: Sampling | None = None) -> Any:
        """Dose records (N, D) -> what :meth:`concentrations` consumes (outside jit).

        ``sampling`` lets a kernel choose a faster path the data allow. ``changes`` (N, K): the times at
        which parameters change within a subject (time-varying covariates; padding has epoch -1); with
        any, :meth:`concentrations` takes each parameter as ``(K + 1,)`` per subject, one value per
        segment (the engine of :mod:`poppk.pk._ode`). A kernel that cannot take changing parameters
        raises :class:`~poppk.errors.ModelSpecError` here.
        """
        if any_changes(changes):
            raise ModelSpecError(f"{kernel_name(type(self))} cannot take parameters that change within a subject "
                                 "(time-varying covariates)")
        return doses

    @abc.abstractmethod
    def concentrations(self, params: Params, doses: Any, sampling: Sampling) -> Float[Array, " O"]:
        """Concentrations (observation unit) of one subject at ``sampling.time``."""

    def complete(self, params: Params) -> Params:
        """Fill optional parameters with their defaults; check required ones."""
        missing = [p for p in self.parameters if p not in params]
        if missing:
            raise ModelSpecError(f"{type(self).__name__} needs parameter(s) {', '.join(missing)}")
        full = dict(self.optional)
        full.update(params)
        return full


def lagged_times(doses: Doses, tlag, depot: int = DEPOT) -> Float[Array, "... D"]:
    """Dose times with the absorption lag applied to depot doses."""
    return doses.time + jnp.where(doses.cmt == depot, tlag, 0.0)


def accepted_parameters(kernel) -> tuple[str, ...]:
    """Every parameter name ``kernel`` (class or instance) takes: its required and optional ones, and
    the modelled infusion rate ``R<cmt>`` and duration ``D<cmt>`` of each of its compartments (used
    by doses with ``RATE = -1`` / ``-2``)."""
    modelled = tuple(f"{kind}{c}" for c in range(1, len(kernel.compartments) + 1) for kind in ("D", "R"))
    return tuple(kernel.parameters) + tuple(kernel.optional) + tuple(m for m in modelled if m not in kernel.optional)


def parameter_unit(kernel, name: str) -> str:
    """The unit of parameter ``name`` of ``kernel`` (see ``AbstractPKModel.units``), modelled infusion
    durations and rates included."""
    if name in kernel.units:
        return kernel.units[name]
    if name[:1] in "DR" and name[1:].isdigit():
        return "h" if name[0] == "D" else "amount/h"
    if name[:1] == "F" and name[1:].isdigit():
        return ""
    raise ModelSpecError(f"{getattr(kernel, '__name__', type(kernel).__name__)} has no parameter {name}")


def dose_problems(kernel, doses: Doses, names) -> list[tuple[int, int, str, str]]:
    """Dose records ``kernel`` cannot take with parameters ``names``: ``(subject, dose, column, message)``
    for each, in numpy (outside jit). A compartment it does not have (``CMT``); ``RATE = -1`` / ``-2``
    without the model's ``R<cmt>`` / ``D<cmt>`` (``RATE``)."""
    cmt, code, mask = (np.asarray(getattr(doses, k)) for k in ("cmt", "rate", "mask"))
    n_cmt = len(kernel.compartments)
    listing = ", ".join(f"{i} {c}" for i, c in enumerate(kernel.compartments, start=1))
    out = []
    for i, d in zip(*np.nonzero(mask), strict=True):
        c = int(cmt[i, d])
        if not 1 <= c <= n_cmt:
            out.append((i, d, "CMT", f"dose into CMT {c}, which {kernel_name(kernel)} does not have ({listing})"))
            continue
        need = {-1.0: f"R{c}", -2.0: f"D{c}"}.get(float(code[i, d]))
        if need is not None and need not in names:
            what = "rate" if need[0] == "R" else "duration"
            out.append((i, d, "RATE", f"RATE={code[i, d]:g} makes the infusion {what} the model parameter {need}, "
                                      f"which the model does not estimate or fix; add {need} to [parameters]"))
    return out


def apparent_parameters(kernel, doses: Doses, names) -> tuple[str, ...]:
    """The parameters a fit of ``doses`` estimates only relative to bioavailability (X/F), in numpy.

    Every dose into ``kernel``'s depot and no bioavailability of the depot (``F<depot>``) among ``names``:
    the clearances, volumes and maximal rates (units L/h, L, amount/h) are apparent, CL/F and V/F; any
    intravenous dose (or a modelled F) fixes the scale and none is. ``()`` for kernels without a depot.

    >>> import poppk
    >>> from poppk.pk import get_kernel
    >>> oral = poppk.datasets.load("theophylline").doses
    >>> apparent_parameters(get_kernel("oral1cmt"), oral, ["CL", "V", "KA"])
    ('CL', 'V')
    >>> apparent_parameters(get_kernel("iv1cmt"), oral, ["CL", "V"])
    ()
    """
    depot = kernel.depot_cmt
    if depot is None or f"F{depot}" in set(names):
        return ()
    cmt, mask = np.asarray(doses.cmt), np.asarray(doses.mask)
    if not mask.any() or (cmt[mask] != depot).any():
        return ()
    return tuple(n for n in names if kernel.units.get(n) in ("L", "L/h", "amount/h"))


def _per_compartment(params: Params, prefix: str, cmt, default):
    """``params[prefix + str(c)]`` for each dose's compartment ``c``, ``default`` where it is not a parameter."""
    out = jnp.full(jnp.shape(cmt), default, dtype=float)
    for name, value in params.items():
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            out = jnp.where(cmt == int(name[len(prefix):]), value, out)
    return out


def input_rates(model: AbstractPKModel, params: Params, doses: Doses):
    """Each dose's input, NONMEM's way: ``(amount, rate, duration, infusion)``, shapes of ``doses.amt``.

    ``amount = F<cmt> * AMT`` (bioavailability ``F1``, ``F2``, ... by compartment, 1 where the model has
    none). An infusion (``RATE != 0``) runs at ``RATE`` for ``F * AMT / RATE`` hours (F scales the
    amount, so the duration), at the model's ``R<cmt>`` for ``RATE = -1``, or over the model's ``D<cmt>``
    hours (rate ``F * AMT / D``) for ``RATE = -2``. For boluses ``rate`` is 0 and ``duration`` 1 (unused).
    """
    del model
    cmt, code = doses.cmt, doses.rate
    amount = _per_compartment(params, "F", cmt, 1.0) * doses.amt
    infusion = code != 0
    fixed, modelled_rate, modelled_duration = code > 0, code == -1, code == -2
    r = jnp.where(modelled_rate, _per_compartment(params, "R", cmt, 1.0), 1.0)
    d = jnp.where(modelled_duration, _per_compartment(params, "D", cmt, 1.0), 1.0)
    given = jnp.where(fixed, code, 1.0)
    rate = jnp.where(fixed, given, jnp.where(modelled_rate, r, jnp.where(modelled_duration, amount / d, 0.0)))
    duration = jnp.where(fixed, amount / given, jnp.where(modelled_rate, amount / r, jnp.where(modelled_duration, d, 1.0)))
    return amount, rate, duration, infusion


def predict_subjects(model: AbstractPKModel, params: Params, doses: Any, sampling: Sampling, *,
                     forward: bool = False, split: bool = False) -> Float[Array, "N O"]:
    """``vmap`` of ``model.concentrations`` over subjects; scalars broadcast.

    ``split=True`` (a fit's likelihood, differentiated at every leapfrog step): on a CPU the subjects go
    through the kernel in pieces of at most :data:`PIECE_SIZE` subject-samples (see
    :func:`_in_pieces`); the values are the same, the reverse pass cheaper past that size, the
    compilation longer. Not with ``forward=True``.

    ``forward=True``: the same values, but a reverse-mode derivative (``jax.grad``) of them is computed
    from *forward sensitivities* -- the derivatives of every prediction with respect to each parameter,
    one forward-mode pass per parameter for all subjects at once (subjects are independent) -- rather
    than by running the computation backwards. For a fixed-step ODE solver that is much cheaper: reverse
    mode through its nested loops stores and replays every step, while a kernel has only a few
    parameters per subject (``benchmarks/ode_gradient.py`` measures both ways). Stan and NONMEM also
    integrate forward sensitivities for ODEs. Kernels say whether fits should use this
    (``AbstractPKModel.forward_sensitivities``).
    Such a result can be differentiated once, in reverse mode (``jax.grad``, as NUTS and L-BFGS do),
    not in forward mode (``jax.jvp``, ``jax.hessian``).
    """
    params = model.complete(params)
    n = sampling.time.shape[0]
    # scalars broadcast to (n,); (n,) and, for parameters that change within subjects, (n, K) stay; one
    # segment, (n, 1), is (n,)
    params = {k: jnp.broadcast_to(v, (n,)) if v.ndim == 0 else v[:, 0] if v.shape[1:] == (1,) else v
              for k, v in ((k, jnp.asarray(v, dtype=float)) for k, v in params.items())}
    if forward:
        return _forward_sensitivities(model, params, doses, sampling)
    return (_in_pieces if split else _all_subjects)(model, params, doses, sampling)


def concentrations(model: AbstractPKModel, params: Params, doses: Doses, sampling: Sampling,
                   changes: Sampling | None = None) -> Float[Array, "N O"]:
    """Prepare ``doses`` for ``model`` (outside jit) and predict every subject: the one call that
    :func:`predict`, fits' predictions, simulations and dose individualisation share.

    ``params`` as for :func:`predict_subjects` (name -> scalar or ``(N,)``; ``(N, K + 1)`` with
    ``changes``, the times at which they change, see :meth:`AbstractPKModel.prepare`); the result is in
    the observation unit, shape ``(N, O)``. Call it outside ``jit`` (``prepare`` works in numpy); inside
    a compiled function use ``model.prepare`` once and :func:`predict_subjects`.

    Examples
    --------
    >>> import numpy as np
    >>> from poppk.pk import Doses, Sampling, get_kernel, concentrations
    >>> one = lambda v, dtype=float: np.asarray([[v]], dtype=dtype)
    >>> doses = Doses(time=one(0.0), amt=one(100.0), rate=one(0.0), cmt=one(2, int), ii=one(0.0), addl=one(0, int),
    ...               ss=one(False, bool), order=one(0.0), epoch=one(0, int), mask=one(True, bool))
    >>> sampling = Sampling(time=one(5.0), order=one(1.0), epoch=one(0, int))
    >>> c = concentrations(get_kernel("oral1cmt"), {"CL": 2.0, "V": 10.0, "KA": 1.0}, doses, sampling)
    >>> round(float(c[0, 0]), 6)  # 100 / 10 * exp(-0.2 * 5), a bolus into the central compartment
    3.678794
    """
    return _predict_jit(model, params, prepare(model, doses, sampling, changes), sampling)


def prepare(model: AbstractPKModel, doses: Doses, sampling: Sampling | None = None, changes: Sampling | None = None):
    """``model.prepare(doses, sampling, changes)``; without ``changes``, called as before they existed
    (``model.prepare(doses, sampling)``), so a user kernel whose own ``prepare`` predates them still works
    where nothing changes within subjects."""
    return model.prepare(doses, sampling) if changes is None else model.prepare(doses, sampling, changes)


#: Subjects x samples per vmapped piece of :func:`_in_pieces` on a CPU: past it the reverse pass of one
#: vmapped closed form is compiled about 8x slower by XLA's CPU backend (the benchmarks page, "Profile:
#: the rich study's gradient", and ``benchmarks/gradient_cliff.py``).
PIECE_SIZE = 4096
#: Up to this many pieces are traced side by side; more go through ``lax.map``, a loop whose pieces cost
#: more each, because compilation grows faster than the number of pieces traced (same page).
STATIC_PIECES = 8


def _all_subjects(model, params, doses, sampling):
    return jax.vmap(model.concentrations)(params, doses, sampling)


def _in_pieces(model, params, doses, sampling):
    """:func:`_all_subjects` in pieces of at most :data:`PIECE_SIZE` subject-samples on a CPU: up to
    :data:`STATIC_PIECES` traced side by side, beyond that a ``lax.map`` (a loop) over pieces, each
    recomputed in the reverse pass (``jax.checkpoint``) rather than stored. The values are the same."""
    n, o = sampling.time.shape
    pieces = -(-n * o // PIECE_SIZE)
    if pieces <= 1 or jax.default_backend() != "cpu":
        return _all_subjects(model, params, doses, sampling)
    args = (params, doses, sampling)
    if pieces <= STATIC_PIECES:
        bounds = [round(n * k / pieces) for k in range(pieces + 1)]
        return jnp.concatenate([_all_subjects(model, *jax.tree_util.tree_map(lambda a, lo=lo, hi=hi: a[lo:hi], args))
                                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)], axis=0)
    one = jax.checkpoint(lambda a: model.concentrations(*a))
    return jax.lax.map(one, args, batch_size=max(1, PIECE_SIZE // o))


#: ``_all_subjects`` whose reverse-mode derivative comes from forward sensitivities (see predict_subjects).
_forward_sensitivities = jax.custom_vjp(_all_subjects)


def _forward_sensitivities_fwd(model, params, doses, sampling):
    run = lambda p: _all_subjects(model, p, doses, sampling)  # noqa: E731
    names = list(params)
    # Tangent k: parameter k moved by 1 in every subject at once; as each subject's predictions depend on
    # its own parameters only, the JVP gives every subject's derivative in parameter k.
    tangents = {name: jnp.broadcast_to((jnp.arange(len(names)) == k)[:, None].astype(params[name].dtype),
                                       (len(names),) + params[name].shape) for k, name in enumerate(names)}
    pred, jac = jax.vmap(lambda t: jax.jvp(run, (params,), (t,)), out_axes=(None, 0))(tangents)
    return pred, {name: jac[k] for k, name in enumerate(names)}  # each (N, O)


def _forward_sensitivities_bwd(jac, cotangent):
    return None, {name: (j * cotangent).sum(axis=-1) for name, j in jac.items()}, None, None


_forward_sensitivities.defvjp(_forward_sensitivities_fwd, _forward_sensitivities_bwd)

#: :func:`predict_subjects` compiled: running a model eagerly (NumPyro's initialisation, ArviZ's
#: conversion) then compiles the dosing engine once instead of dispatching its scans op by op; inside
#: an outer jit it is inlined.
predict_jit = jax.jit(predict_subjects, static_argnames=("forward", "split"))
_predict_jit = predict_jit
