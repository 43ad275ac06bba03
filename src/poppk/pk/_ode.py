"""Event-driven integration of compartment ODEs: any number of states, the doses added by the engine.

A kernel gives the right-hand side of its compartments' amounts, without dosing terms (as in Torsten
and rxode2); the engine adds every dose: a bolus into its compartment (CMT), an infusion as a constant
input rate between its start and end events, NONMEM's way (:func:`poppk.pk.input_rates`). Every dose,
infusion end, steady-state start and sample is an event; between events the ODE is integrated, on a
fixed graded grid (the default) or adaptively (diffrax, the reference). Events are sorted inside JAX
where lag times or modelled durations move them, then a ``lax.scan`` walks through them, so the kernel
is ``jit``/``vmap``/``grad``-able. A reset (a new epoch) empties every compartment and ends running
infusions.

Steady state (SS=1, and SS=2 added to the amounts already there) is the fixed point of "dose, then
integrate one interval", found by iteration (optimistix) to ``ss_rtol`` relative change of the pre-dose
amounts, and differentiated implicitly.

Parameters that change within a subject (time-varying covariates): ``prepare(..., changes=)`` gives the
times at which they change; each parameter is then ``(K,)`` per subject, one value per segment
(segment 0 before the first change), and the engine stops at every change. Over each interval between
events it integrates with the parameters in force at the interval's start; a dose takes those at its
record's time (its bioavailability, lag, modelled rate or duration), an SS record those at its time
(steady state under them), and a sample's observation those at the sample's time.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..errors import EventError
from ._base import AbstractPKModel, Params, input_rates, lagged_times
from ._events import ADDL_ORDER, DOSE_ARRAYS, Doses, Sampling, any_changes, expand_trains


class ODEDoses(eqx.Module):
    """Doses for an ODE kernel: every dose expanded, and the SS records apart."""

    each: Doses
    steady: Doses
    #: Extra event times (no dose, no sample) that cut long gaps for the fixed-grid solver.
    fill: Sampling | None = None
    #: The event order (doses, SS records, samples, fillers) when there is no lag time, sorted once in
    #: numpy. Sorting inside the model instead, with every input a constant, made XLA constant-fold the
    #: sort at each compile: 6 s -> 50 s to compile a gradient from 24 to 1,536 patients.
    order: np.ndarray | None = None
    #: Where parameters change within a subject: the start time of each segment (h), ``(..., K)``, the
    #: first ``-inf``, padding ``+inf``; ``None`` when they do not (one value per subject).
    starts: np.ndarray | None = None


def segment_starts(changes: Sampling) -> np.ndarray:
    """The segment start times ``(N, K + 1)`` of change events ``changes`` ``(N, K)`` (padding: epoch
    -1): ``-inf`` first, then each subject's change times in order, ``+inf`` for padding."""
    t = np.where(np.asarray(changes.epoch) >= 0, np.asarray(changes.time, float), np.inf)
    return np.concatenate([np.full((t.shape[0], 1), -np.inf), np.sort(t, axis=1)], axis=1)


def segment_of(starts, t):
    """The index of the segment in force at each time ``t`` (any shape) from ``starts`` ``(K,)``: the last
    start at or before ``t`` (a change acts from its own time on)."""
    t = jnp.asarray(t)
    starts = jnp.reshape(starts, (1,) * t.ndim + (-1,))
    return jnp.maximum(jnp.sum(starts <= t[..., None], axis=-1) - 1, 0)


def params_at(params: Params, starts, t) -> Params:
    """``params`` in force at ``t``: each ``(K,)`` value taken at its segment (:func:`segment_of`), scalars
    as they are; ``params`` itself where nothing changes (``starts`` None)."""
    if starts is None:
        return params
    k = segment_of(starts, t)
    return {n: (v[k] if jnp.ndim(v) >= 1 else v) for n, v in params.items()}


def _join(fill: Sampling | None, changes: Sampling | None) -> Sampling | None:
    """Filler and change events (numpy) as one set of events that are neither doses nor samples."""
    if changes is None or fill is None:
        return fill if changes is None else changes
    return Sampling(**{k: np.concatenate([getattr(fill, k), getattr(changes, k)], axis=1) for k in ("time", "order", "epoch")})


def _steady_records(doses: Doses) -> Doses:
    ss = np.asarray(doses.ss) & np.asarray(doses.mask)
    width = int(ss.sum(axis=1).max()) if ss.size else 0
    n = ss.shape[0]
    out = {}
    for name in DOSE_ARRAYS:
        src = np.asarray(getattr(doses, name))
        arr = np.zeros((n, width), dtype=src.dtype)
        for i in range(n):
            sel = src[i][ss[i]]
            arr[i, : sel.size] = sel
        out[name] = arr
    out["mask"] = np.zeros((n, width), bool)
    for i in range(n):
        out["mask"][i, : ss[i].sum()] = True
    return Doses(**out)


def _fillers(each: Doses, sampling: Sampling | None, max_gap: float) -> Sampling:
    """Times that split every gap between events longer than ``max_gap`` h (numpy, outside jit)."""
    # Whole arrays to numpy first: slicing a (constant) jax array while a function is traced gives a tracer.
    each = jax.tree_util.tree_map(np.asarray, each)
    sampling = None if sampling is None else jax.tree_util.tree_map(np.asarray, sampling)
    n = np.asarray(each.time).shape[0]
    rows = []
    for i in range(n):
        dm = np.asarray(each.mask[i])
        t = [np.asarray(each.time[i])[dm]]
        ep = [np.asarray(each.epoch[i])[dm]]
        if sampling is not None:
            sm = np.asarray(sampling.epoch[i]) >= 0
            t.append(np.asarray(sampling.time[i])[sm])
            ep.append(np.asarray(sampling.epoch[i])[sm])
        t, ep = np.concatenate(t), np.concatenate(ep)
        order = np.argsort(t, kind="stable")
        t, ep = t[order], ep[order]
        times, epochs = [], []
        for a, b, e in zip(t[:-1], t[1:], ep[:-1], strict=True):
            k = int(np.ceil((b - a) / max_gap)) - 1
            if k > 0:
                times.extend(a + (b - a) * np.arange(1, k + 1) / (k + 1))
                epochs.extend([e] * k)
        rows.append((times, epochs))
    width = max([len(r[0]) for r in rows] + [1])
    time = np.zeros((n, width))
    epoch = np.full((n, width), -1, dtype=np.int64)
    for i, (times, epochs) in enumerate(rows):
        time[i, : len(times)] = times
        epoch[i, : len(epochs)] = epochs
    return Sampling(time=time, order=np.zeros((n, width)), epoch=epoch)


def _tsit5_step(f, t, h, y, args):
    """One explicit Tsitouras 5(4) step (diffrax's tableau) without error estimate.

    Written out (a Python loop over the stages) rather than through
    ``diffrax.Tsit5().step``, whose stage loop is not forward-differentiable
    (the steady-state fixed point needs that) and fails under the ``pmap`` of
    NumPyro's parallel chains.
    """
    import diffrax  # imported only where an ODE runs (it takes a while)

    tab = diffrax.Tsit5.tableau  # the public tableau, as STYLE.md asks

    ks = [f(t, y, args)]
    for a_row, c in zip(tab.a_lower, tab.c, strict=True):  # c: nodes of stages 2..
        yi = y + h * sum(float(a) * k for a, k in zip(a_row, ks, strict=False))
        ks.append(f(t + float(c) * h, yi, args))
    return y + h * sum(float(b) * k for b, k in zip(tab.b_sol, ks, strict=False) if b != 0.0)


def _event_keys(xp, dose_time, end_time, each: Doses, steady: Doses, sampling: Sampling, fill: Sampling, n_end=None):
    """(time, order, valid) of every event -- doses, infusion ends, SS records, samples, fillers, in the
    layout of :meth:`AbstractODEModel.concentrations` -- for ``xp`` numpy (all subjects, 2-D) or
    jax.numpy (one subject, 1-D). Sorting by (time where valid, else inf; order) gives the order events
    are visited in. An infusion's end sorts after its start (and its contribution is continuous there)."""
    def cat(*parts):
        return xp.concatenate(parts, axis=-1)

    ends = slice(None, n_end)  # the first n_end doses (all, or none where no dose is an infusion)
    time = cat(dose_time, end_time, steady.time, sampling.time, fill.time)
    order = cat(each.order, (each.order + 0.25)[..., ends], steady.order - 0.5, sampling.order, fill.order)
    valid = cat(each.mask, (each.mask & (each.rate != 0))[..., ends], steady.mask, sampling.epoch >= 0, fill.epoch >= 0)
    return time, order, valid


def _event_order(each: Doses, steady: Doses, sampling: Sampling, fill: Sampling | None) -> np.ndarray:
    """Per subject, the order in which :meth:`AbstractODEModel.concentrations` visits its events when
    no event time depends on the parameters (no lag time, no infusion): the same keys
    (:func:`_event_keys`) and the same (stable) sort, in numpy."""
    n = np.shape(sampling.time)[0]
    if fill is None:
        fill = Sampling(time=np.zeros((n, 0)), order=np.zeros((n, 0)), epoch=np.zeros((n, 0), int))
    n_end = np.shape(each.time)[-1] if each.infusions else 0
    time, order, valid = _event_keys(np, np.asarray(each.time), np.asarray(each.time)[..., :n_end], each, steady,
                                     sampling, fill, n_end)
    key = np.where(valid, time, np.inf)
    return np.stack([np.lexsort((order[i], key[i])) for i in range(n)])


def _diagonal_lawson_step(f, t, h, y, f_frozen):
    """One Tsit5 step of ``dy/dt = f(t, y)`` from ``y`` at ``t`` by ``h``, in the variables
    ``w = y exp(k s)`` with ``k = -diag(df/dy)`` at the step's start (a Lawson, integrating-factor
    Runge-Kutta scheme): each state's own linear decay is integrated exactly (a depot's first-order
    absorption, linear elimination), and the explicit stages resolve only the coupling between states
    and the departure from linearity within the step.

    ``k`` is a free choice of the scheme (any ``k`` gives a consistent fifth-order method; this one makes
    it stable), so it is computed from ``f_frozen`` (``f`` with its parameters behind
    ``lax.stop_gradient``) at the stopped ``y``: derivatives of the step hold ``k`` fixed. They then differ
    from the derivative of the discrete map with ``k`` moving by the scheme's own truncation error (1e-7
    relative on the bundled trial), and no derivative of the Jacobian is carried (the MM model as a user
    ODE on the bundled trial: 34 ms per gradient in reverse mode with ``k`` fixed, against 140 ms by
    forward sensitivities with ``k`` moving, ``benchmarks/ode_gradient.py``). NUTS stays exact: its leapfrog needs only a deterministic force of the position
    (reversible, volume-preserving) and weighs trajectories by the exact log density.
    """
    k = -jnp.diagonal(jax.jacfwd(lambda y_: f_frozen(t, y_))(jax.lax.stop_gradient(y)))

    def g(s, w, _):
        grow = jnp.exp(jnp.minimum(k * s, 700.0))
        yi = w / grow
        return grow * (f(t + s, yi) + k * yi)

    w1 = _tsit5_step(g, 0.0, h, y, None)
    return w1 * jnp.exp(-k * h)


class AbstractODEModel(AbstractPKModel):
    """A model given by the right-hand side of its compartments' amounts; the engine adds the doses.

    A concrete kernel (bundled, or written by a user in their own file, see ``docs/guide/models.md``)
    declares its ``compartments`` (names in CMT order: the compartment a dose with CMT ``c`` fills is
    ``compartments[c - 1]``), ``parameters`` and their ``units``, ``central_cmt`` and ``depot_cmt`` (or
    None), and defines :meth:`rhs` (amount per hour, no dosing terms) and, unless the observed quantity
    is the central amount over ``V`` (or ``V1``), :meth:`observe`. With a depot absorbed first-order,
    ``absorption_rate = "KA"`` and :meth:`elimination_rate` keep fits out of the flip-flop mode.

    Example: :class:`poppk.pk.models.oral1cmt_mm.Oral1CmtMM`, or ``models/mm2cmt.py``.
    """

    rtol: float = eqx.field(static=True, default=1e-7)
    #: Absolute tolerance as a fraction of the largest dose amount.
    atol: float = eqx.field(static=True, default=1e-8)
    max_steps: int = eqx.field(static=True, default=256)
    ss_rtol: float = eqx.field(static=True, default=1e-10)
    ss_max_intervals: int = eqx.field(static=True, default=5000)
    #: n > 0: exactly n Tsit5 steps between consecutive events (see :meth:`_solve_grid`), cheaper
    #: under ``vmap`` and reverse mode than adaptive stepping (``benchmarks/ode_gradient.py``).
    #: 0: adaptive steps (diffrax PID controller to ``rtol``/``atol``), the reference.
    grid: int = eqx.field(static=True, default=16)
    #: With ``grid``: the longest segment (h) integrated in one go; longer gaps get extra events.
    max_gap: float = eqx.field(static=True, default=8.0)
    #: True: an implicit solver (diffrax's Kvaerno5, L-stable, adaptive steps to ``rtol``/``atol``) for
    #: stiff systems (rate constants many orders apart); ``grid`` is then not used.
    stiff: bool = eqx.field(static=True, default=False)

    @property
    def forward_sensitivities(self) -> bool:
        """Fits differentiate the general ODE engine in reverse mode, adaptive or on the fixed grid: for the
        diagonal Lawson scheme reverse mode is the cheaper (the Michaelis-Menten model written as a user ODE
        on the bundled trial: 34 ms per gradient against 107 ms by forward sensitivities,
        ``benchmarks/ode_gradient.py``)."""
        return False

    @property
    def n_states(self) -> int:
        return len(self.compartments)

    @abc.abstractmethod
    def rhs(self, t, y: Float[Array, " S"], p: Params) -> Float[Array, " S"]:
        """d(amounts)/dt in amount per hour, in the order of ``compartments``, without doses."""

    def observe(self, y: Float[Array, " S"], p: Params):
        """The observed concentration (dose unit per L) from the amounts: by default the central amount
        over the central volume (``V`` or ``V1``)."""
        volume = p["V"] if "V" in p else p["V1"]
        return y[self.central_cmt - 1] / volume

    def prepare(self, doses: Doses, sampling: Sampling | None = None, changes: Sampling | None = None) -> ODEDoses:
        # numpy first: under a trace (prepare may run inside jit) an operation on a jax array is staged
        sampling, changes = jax.tree_util.tree_map(np.asarray, (sampling, changes))
        each = expand_trains(doses)
        fill = _fillers(each, sampling, self.max_gap) if self.grid else None
        varying = any_changes(changes)
        fill = _join(fill, changes if varying else None)
        steady = _steady_records(doses)
        infusions = bool((np.asarray(each.rate) != 0)[np.asarray(each.mask)].any())
        each = Doses(**{k: getattr(each, k) for k in DOSE_ARRAYS}, trains=False, infusions=infusions)
        if steady.time.size:
            fixed = (np.asarray(steady.rate) > 0) & np.asarray(steady.mask)
            too_long = fixed & (np.asarray(steady.amt) / np.where(fixed, np.asarray(steady.rate), 1.0) > np.asarray(steady.ii))
            if too_long.any():
                raise EventError(
                    f"{type(self).__name__}: steady state (SS) with an infusion longer than the dosing interval II "
                    "(AMT/RATE > II) is solved by the closed-form kernels (iv1cmt ... oral3cmt), not by ODE kernels")
        order = None if sampling is None or infusions else _event_order(each, steady, sampling, fill)
        return ODEDoses(each=each, steady=steady, fill=fill, order=order, starts=segment_starts(changes) if varying else None)

    def complete(self, params: Params) -> Params:
        full = super().complete(params)
        if "TLAG" not in params and "TLAG" in full:  # no lag: the event order may be known from the data
            del full["TLAG"]
        return full

    def _input_vector(self, cmt, value):
        """``value`` into compartment ``cmt`` (1-based) as a state vector."""
        return jnp.where(jnp.arange(1, self.n_states + 1) == cmt, value, 0.0)

    def _solve(self, y0, t0, t1, p, u_in, grid=None):
        """Amounts at ``t1`` from ``y0`` at ``t0`` under constant input rates ``u_in`` (amount/h)."""
        if self.grid and not self.stiff:
            return self._solve_grid(y0, t0, t1, p, u_in, grid or self.grid)
        import diffrax

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, a: self.rhs(t, y, a[0]) + a[1]),
            diffrax.Kvaerno5() if self.stiff else diffrax.Tsit5(),
            t0,
            t1,
            None,
            y0,
            args=(p, u_in),
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol * p["_amount"]),
            max_steps=self.max_steps,
            throw=False,
            # DirectAdjoint: reverse mode through a bounded loop. The default checkpointed adjoint
            # failed inside NumPyro's pmapped NUTS (equinox closure conversion, jax 0.12) and was
            # slower per gradient on the example trial (0.052 s vs 0.042 s).
            adjoint=diffrax.DirectAdjoint(),
        )
        ok = sol.result == diffrax.RESULTS.successful
        return jnp.where(ok, sol.ys[-1], jnp.nan)

    def _solve_grid(self, y0, t0, t1, p, u_in, n):
        """``n`` Tsit5 steps from t0 to t1 in the diagonal Lawson scheme (:func:`_diagonal_lawson_step`).

        Steps are graded quadratically from t0, where a dose has just entered. Each step linearises
        every state's own decay at the *step's* start; linearising once per segment instead (at the
        trough before a dose) went unstable when a dose carried concentrations from the linear range
        far above KM with fast elimination (k h ~ 8): AUCs of -2e7 for virtual patients at 150 mg
        (VMAX 59 mg/h, V 21 L). On the bundled trial the default (16 steps, segments of at most 8 h)
        agrees with the adaptive solver at rtol 1e-11 to 5e-4 relative (``tests/test_pk.py``).
        """
        h = t1 - t0
        u = jnp.linspace(0.0, 1.0, n + 1)
        ts = t0 + h * u * u

        p_frozen, u_frozen = jax.lax.stop_gradient((p, u_in))

        def f(t, y):
            return self.rhs(t, y, p) + u_in

        def f_frozen(t, y):
            return self.rhs(t, y, p_frozen) + u_frozen

        def step(y, i):
            return _diagonal_lawson_step(f, ts[i], ts[i + 1] - ts[i], y, f_frozen), None

        y1, _ = jax.lax.scan(step, y0, jnp.arange(n))
        return jnp.where(jnp.isfinite(y1), y1, jnp.nan)

    def _steady_state(self, p, amount, rate, duration, infusion, cmt, ii, tlag):
        """Amounts at the SS record's time (before its own, possibly lagged, dose): the fixed point of
        one dosing interval (dose, infuse for ``duration`` if an infusion, integrate to ``ii``)."""
        bolus = self._input_vector(cmt, jnp.where(infusion, 0.0, amount))
        u = self._input_vector(cmt, jnp.where(infusion, rate, 0.0))
        t_on = jnp.where(infusion, jnp.minimum(duration, ii), 0.0)
        n = 2 * self.grid

        def interval(start, t_end):  # from a dose at 0 to t_end (<= ii), the infusion running to t_on
            y = self._solve(start + bolus, 0.0, jnp.minimum(t_on, t_end), p, u, grid=n)
            return self._solve(y, jnp.minimum(t_on, t_end), t_end, p, jnp.zeros_like(u), grid=n)

        trough, ok = self._periodic(lambda y: interval(y, ii), p, ii, amount)
        ok = ok & ~(infusion & (duration > ii))
        trough = jnp.where(ok, trough, jnp.nan)
        lag = jnp.where(cmt == self.depot_cmt, jnp.mod(tlag, ii), 0.0)
        # With a lag, the last dose arrived ``ii - lag`` before the record (an infusion of it has ended
        # unless it is longer than ``ii - lag``: then it is refused, as a NaN).
        ok_lag = ~(infusion & (lag > 0) & (duration > ii - lag))
        return jnp.where(lag > 0, jnp.where(ok_lag, interval(trough, ii - lag), jnp.nan), trough)

    def _periodic(self, interval, p, ii, amount):
        """The pre-dose amounts that one dosing interval (``interval``: amounts before a dose -> amounts
        ``ii`` later) leaves unchanged, and whether they were found: by fixed-point iteration to
        ``ss_rtol``, differentiated implicitly (optimistix)."""
        import optimistix as optx

        solver = optx.FixedPointIteration(rtol=self.ss_rtol, atol=self.ss_rtol * 1e-3 * amount)
        sol = optx.fixed_point(lambda y, _: interval(y), solver, jnp.zeros(self.n_states),
                               max_steps=self.ss_max_intervals, throw=False)
        return sol.value, sol.result == optx.RESULTS.successful

    def concentrations(self, params: Params, doses: ODEDoses, sampling: Sampling) -> Float[Array, " O"]:
        # Absolute tolerances are relative to the largest dose amount (units of the data).
        params = dict(params, _amount=jnp.maximum(jnp.max(jnp.where(doses.each.mask, doses.each.amt, 0.0)), 1e-300))
        fixed_order = "TLAG" not in params and doses.order is not None
        each, steady = doses.each, doses.steady
        at = lambda t: params_at(params, doses.starts, t)  # noqa: E731 - the parameters in force at t
        dose_params = at(each.time)  # each dose's own (bioavailability, lag, modelled rate or duration)
        tlag = dose_params.get("TLAG", 0.0)
        fill = doses.fill if doses.fill is not None else Sampling(time=jnp.zeros(0), order=jnp.zeros(0), epoch=jnp.zeros(0, int))
        n_dose, n_ss, n_obs = each.time.shape[0], steady.time.shape[0], sampling.time.shape[0]
        n_fill, S = fill.time.shape[0], self.n_states
        amount, rate, duration, infusion = input_rates(self, dose_params, each)
        if n_ss:
            # Padded SS slots get a dose of 1 every 1 h: with amount 0 the fixed point's tolerance is 0, it
            # fails, and its NaN (unused) still turned reverse-mode derivatives NaN through the selection.
            ss_params = {k: jnp.broadcast_to(v, (n_ss,)) for k, v in at(steady.time).items()}
            s_amount, s_rate, s_duration, s_infusion = input_rates(self, ss_params, steady)
            ss_states = jax.vmap(lambda p, a, r, d, inf, c, i: self._steady_state(p, a, r, d, inf, c, i, p.get("TLAG", 0.0)))(
                ss_params, jnp.where(steady.mask, s_amount, 1.0), s_rate, s_duration, s_infusion & steady.mask,
                steady.cmt, jnp.where(steady.mask, steady.ii, 1.0))
        else:
            ss_states = jnp.zeros((1, S))
        # Event table: dose starts, infusion ends, steady-state starts, samples, fillers.
        dose_time = each.time if "TLAG" not in params else lagged_times(each, tlag, self.depot_cmt or 0)
        # Infusion ends only where the data have infusions (each.infusions, static): boluses-only data
        # keep the event table, and the cost, of doses, SS records, samples and fillers.
        n_end = n_dose if each.infusions else 0
        end_time = (dose_time + jnp.where(infusion, duration, 0.0))[:n_end]
        time, order, valid = _event_keys(jnp, dose_time, end_time, each, steady, sampling, fill, n_end)
        epoch = jnp.concatenate([each.epoch, each.epoch[:n_end], steady.epoch, sampling.epoch, fill.epoch])
        n_rest = n_ss + n_obs + n_fill
        bolus = jnp.concatenate([jnp.where(infusion, 0.0, amount), jnp.zeros(n_end + n_rest)])
        rate_change = jnp.concatenate([jnp.where(infusion, rate, 0.0), -jnp.where(infusion, rate, 0.0)[:n_end], jnp.zeros(n_rest)])
        cmt = jnp.concatenate([each.cmt, each.cmt[:n_end], jnp.zeros(n_rest, int)])
        is_ss = jnp.concatenate([jnp.zeros(n_dose + n_end, bool), jnp.ones(n_ss, bool), jnp.zeros(n_obs + n_fill, bool)])
        ss_index = jnp.concatenate([jnp.zeros(n_dose + n_end, int), jnp.arange(n_ss), jnp.zeros(n_obs + n_fill, int)])
        perm = doses.order if fixed_order else jnp.lexsort((order, jnp.where(valid, time, jnp.inf)))

        def step(carry, i):
            y, u, t_now, ep = carry
            ok = valid[i] & (epoch[i] >= ep)
            new_epoch = ok & (epoch[i] > ep)
            t_to = jnp.where(ok & ~new_epoch, time[i], t_now)
            y = self._solve(y, t_now, jnp.maximum(t_to, t_now), at(t_now), u)
            y = jnp.where(new_epoch, jnp.zeros(S), y)  # a reset empties the compartments...
            u = jnp.where(new_epoch, jnp.zeros(S), u)  # ...and ends running infusions
            y = jnp.where(ok, y + self._input_vector(cmt[i], bolus[i]), y)
            u = jnp.where(ok, u + self._input_vector(cmt[i], rate_change[i]), u)
            y = jnp.where(ok & is_ss[i], y + ss_states[ss_index[i]], y)  # SS=1 after a reset; SS=2 added
            t_now = jnp.where(ok, time[i], t_now)
            ep = jnp.where(ok, epoch[i], ep)
            return (y, u, t_now, ep), self.observe(y, at(t_now))

        init = (jnp.zeros(S), jnp.zeros(S), jnp.asarray(0.0), jnp.asarray(-1))
        _, observed = jax.lax.scan(step, init, perm)
        by_event = jnp.zeros_like(observed).at[perm].set(observed)
        first = n_dose + n_end + n_ss
        return self.scale * by_event[first : first + n_obs]


class AbstractOralODEModel(AbstractODEModel):
    """A one-compartment model with a depot absorbed first-order (``KA``) and an elimination rate
    given by :meth:`elimination` (amount per hour from the central amount): CMT 1 depot, 2 central.

    Its fixed-grid solver is specialised (:meth:`_solve_grid`): the depot is solved exactly and only
    the central amount is integrated, several times cheaper per gradient than the general diagonal
    scheme on two states (``benchmarks/ode_gradient.py``).
    """

    compartments: ClassVar[tuple[str, ...]] = ("depot", "central")
    absorption: ClassVar[tuple[str, ...]] = ("KA", "TLAG")
    absorption_rate: ClassVar[str | None] = "KA"

    @property
    def forward_sensitivities(self) -> bool:
        """The specialised fixed grid by forward sensitivities (18.7 ms per gradient on the bundled trial
        against 77 ms in reverse mode), the adaptive solver in reverse mode (``benchmarks/ode_gradient.py``)."""
        return self.grid > 0 and not self.stiff

    @abc.abstractmethod
    def elimination(self, central, p: Params):
        """Elimination rate (amount per hour) from the central amount."""

    def rhs(self, t, y, p: Params):
        """d(depot, central)/dt in amount per hour (first-order absorption)."""
        absorbed = p["KA"] * y[0]
        return jnp.stack([-absorbed, absorbed - self.elimination(y[1], p)])

    def _solve_grid(self, y0, t0, t1, p, u_in, n):
        """The diagonal Lawson scheme of :meth:`AbstractODEModel._solve_grid` on the central amount
        alone, the depot exact: ``d(s) = d0 exp(-KA s) + u_d (1 - exp(-KA s)) / KA`` under a depot
        infusion ``u_d``; ``k`` is the slope of the elimination rate at each step's start."""
        ka, d0, u_d, u_c = p["KA"], y0[0], u_in[0], u_in[1]
        slope = jax.grad(lambda c: self.elimination(c, p))
        h = t1 - t0
        u = jnp.linspace(0.0, 1.0, n + 1)
        ts = t0 + h * u * u
        d_inf = u_d / ka  # the depot's level under its infusion

        def step(c, i):
            ta, dt = ts[i], ts[i + 1] - ts[i]
            k = slope(c)
            da = d_inf + (d0 - d_inf) * jnp.exp(-ka * (ta - t0))

            def rhs(s, w, args):
                grow = jnp.exp(jnp.minimum(k * s, 700.0))
                ci = w / grow
                absorbed = ka * ((da - d_inf) * jnp.exp(jnp.minimum((k - ka) * s, 700.0)) + d_inf * grow)
                return absorbed + grow * (u_c + k * ci - self.elimination(ci, args))

            w1 = _tsit5_step(rhs, 0.0, dt, c, p)
            return w1 * jnp.exp(-k * dt), None

        c1, _ = jax.lax.scan(step, y0[1], jnp.arange(n))
        y1 = jnp.stack([d_inf + (d0 - d_inf) * jnp.exp(-ka * h), c1])
        return jnp.where(jnp.isfinite(c1), y1, jnp.nan)


__all__ = ["AbstractODEModel", "AbstractOralODEModel", "ODEDoses", "ADDL_ORDER"]
