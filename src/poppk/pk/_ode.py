"""Event-driven integration of compartment ODEs with diffrax.

Every dose, steady-state start and sample is an event; between events the
ODE is integrated with an adaptive Runge-Kutta solver. Events are sorted
inside JAX (lag times move doses), then a ``lax.scan`` walks through them,
so the kernel is ``jit``/``vmap``/``grad``-able.

Steady state (SS=1) is the fixed point of "dose, then integrate one
interval", found by iteration (optimistix) to ``ss_rtol`` relative change of
the pre-dose amounts, and differentiated implicitly.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._base import AbstractPKModel, Params, lagged_times
from ._events import ADDL_ORDER, DEPOT, DOSE_ARRAYS, Doses, Sampling, expand_trains


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


def _event_keys(xp, dose_time, each: Doses, steady: Doses, sampling: Sampling, fill: Sampling):
    """(time, order, valid) of every event -- doses, SS records, samples, fillers, in the layout of
    :meth:`AbstractODEModel.concentrations` -- for ``xp`` numpy (all subjects, 2-D) or jax.numpy (one
    subject, 1-D). Sorting by (time where valid, else inf; order) gives the order events are visited in."""
    def cat(*parts):
        return xp.concatenate(parts, axis=-1)

    time = cat(dose_time, steady.time, sampling.time, fill.time)
    order = cat(each.order, steady.order - 0.5, sampling.order, fill.order)
    valid = cat(each.mask, steady.mask, sampling.epoch >= 0, fill.epoch >= 0)
    return time, order, valid


def _event_order(each: Doses, steady: Doses, sampling: Sampling, fill: Sampling | None) -> np.ndarray:
    """Per subject, the order in which :meth:`AbstractODEModel.concentrations` visits its events when
    there is no lag time: the same keys (:func:`_event_keys`) and the same (stable) sort, in numpy."""
    n = np.shape(sampling.time)[0]
    if fill is None:
        fill = Sampling(time=np.zeros((n, 0)), order=np.zeros((n, 0)), epoch=np.zeros((n, 0), int))
    time, order, valid = _event_keys(np, np.asarray(each.time), each, steady, sampling, fill)
    key = np.where(valid, time, np.inf)
    return np.stack([np.lexsort((order[i], key[i])) for i in range(n)])


class AbstractODEModel(AbstractPKModel):
    """A model given by its right-hand side on (depot, central) amounts, with first-order absorption
    from the depot (``KA``); a concrete kernel gives :meth:`elimination` (and :meth:`elimination_rate`
    for the flip-flop wall)."""

    absorption: ClassVar[tuple[str, ...]] = ("KA", "TLAG")
    absorption_rate: ClassVar[str | None] = "KA"

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

    @property
    def forward_sensitivities(self) -> bool:
        """Fits differentiate the fixed-grid solver by forward sensitivities and the adaptive one in
        reverse mode, whichever is cheaper for it (``benchmarks/ode_gradient.py`` measures both)."""
        return self.grid > 0

    @abc.abstractmethod
    def elimination(self, central, p: Params):
        """Elimination rate (amount per hour) from the central amount."""

    def rhs(self, t, y: Float[Array, " 2"], p: Params) -> Float[Array, " 2"]:
        """d(depot, central)/dt in amount per hour (first-order absorption)."""
        absorbed = p["KA"] * y[0]
        return jnp.stack([-absorbed, absorbed - self.elimination(y[1], p)])

    def prepare(self, doses: Doses, sampling: Sampling | None = None) -> ODEDoses:
        each = expand_trains(doses)
        fill = _fillers(each, sampling, self.max_gap) if self.grid else None
        steady = _steady_records(doses)
        order = None if sampling is None else _event_order(each, steady, sampling, fill)
        return ODEDoses(each=each, steady=steady, fill=fill, order=order)

    def complete(self, params: Params) -> Params:
        full = super().complete(params)
        if "TLAG" not in params:  # no lag time: the event order is known from the data (ODEDoses.order)
            del full["TLAG"]
        return full

    def _solve(self, y0, t0, t1, p, adjoint=None, grid=None):
        if self.grid:
            return self._solve_grid(y0, t0, t1, p, grid or self.grid)
        import diffrax

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, a: self.rhs(t, y, a)),
            diffrax.Tsit5(),
            t0,
            t1,
            None,
            y0,
            args=p,
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol * p["_amount"]),
            max_steps=self.max_steps,
            throw=False,
            # DirectAdjoint: reverse mode through a bounded loop. The default checkpointed adjoint
            # failed inside NumPyro's pmapped NUTS (equinox closure conversion, jax 0.12) and was
            # slower per gradient on the example trial (0.052 s vs 0.042 s).
            adjoint=adjoint or diffrax.DirectAdjoint(),
        )
        ok = sol.result == diffrax.RESULTS.successful
        return jnp.where(ok, sol.ys[-1], jnp.nan)

    def _solve_grid(self, y0, t0, t1, p, n):
        """``n`` Tsit5 steps from t0 to t1 (a Lawson, integrating-factor Runge-Kutta scheme).

        The depot is exact (first-order absorption). Each step integrates the
        central amount as ``w = c exp(k s)``, with ``k`` the slope of the
        elimination rate at the *step's* start and ``s`` the time since it, so
        elimination linearised there is exact and the explicit stages only
        resolve the absorption input and the departure from linearity within
        the step. Steps are graded quadratically from t0, where a dose has just
        entered. Linearising once per segment instead (at the trough before a
        dose) went unstable when a dose carried concentrations from the linear
        range far above KM with fast elimination (k h ~ 8): AUCs of -2e7 for
        virtual patients at 150 mg (VMAX 59 mg/h, V 21 L). On the bundled trial
        the default (16 steps, segments of at most 8 h) agrees with the adaptive
        solver at rtol 1e-11 to 5e-4 relative (``tests/test_pk.py``).
        """
        ka, d0 = p["KA"], y0[0]
        slope = jax.grad(lambda c: self.elimination(c, p))
        h = t1 - t0
        u = jnp.linspace(0.0, 1.0, n + 1)
        ts = t0 + h * u * u

        def step(c, i):
            ta, dt = ts[i], ts[i + 1] - ts[i]
            k = slope(c)
            da = d0 * jnp.exp(-ka * (ta - t0))

            def rhs(s, w, args):
                grow = jnp.exp(jnp.minimum(k * s, 700.0))
                ci = w / grow
                absorbed = ka * da * jnp.exp(jnp.minimum((k - ka) * s, 700.0))
                return absorbed + grow * (k * ci - self.elimination(ci, args))

            w1 = _tsit5_step(rhs, 0.0, dt, c, p)
            return w1 * jnp.exp(-k * dt), None

        c1, _ = jax.lax.scan(step, y0[1], jnp.arange(n))
        y1 = jnp.stack([d0 * jnp.exp(-ka * h), c1])
        return jnp.where(jnp.isfinite(c1), y1, jnp.nan)

    def _dose_vector(self, amt, cmt, f1):
        return jnp.where(cmt == DEPOT, jnp.array([1.0, 0.0]) * f1 * amt, jnp.array([0.0, 1.0]) * amt)

    def _steady_state(self, p, amt, cmt, ii, f1, tlag):
        """Amounts at the SS record's time (before its own, possibly lagged, dose)."""
        dose = self._dose_vector(amt, cmt, f1)

        n = 4 * self.grid  # one dosing interval in one go, without fillers

        def cycle(trough, _):
            return self._solve(trough + dose, 0.0, ii, p, grid=n)

        import optimistix as optx

        solver = optx.FixedPointIteration(rtol=self.ss_rtol, atol=self.ss_rtol * 1e-3 * amt)
        sol = optx.fixed_point(cycle, solver, jnp.zeros(2), max_steps=self.ss_max_intervals, throw=False)
        trough = jnp.where(sol.result == optx.RESULTS.successful, sol.value, jnp.nan)
        lag = jnp.where(cmt == DEPOT, jnp.mod(tlag, ii), 0.0)
        return self._solve(trough + dose, 0.0, ii - lag, p, grid=n)

    def concentrations(self, params: Params, doses: ODEDoses, sampling: Sampling) -> Float[Array, " O"]:
        # Absolute tolerances are relative to the largest dose amount (units of the data).
        params = dict(params, _amount=jnp.maximum(jnp.max(jnp.where(doses.each.mask, doses.each.amt, 0.0)), 1e-300))
        f1 = params["F1"]
        fixed_order = "TLAG" not in params and doses.order is not None
        tlag = params.get("TLAG", 0.0)
        each, steady = doses.each, doses.steady
        fill = doses.fill if doses.fill is not None else Sampling(time=jnp.zeros(0), order=jnp.zeros(0), epoch=jnp.zeros(0, int))
        n_dose, n_ss, n_obs = each.time.shape[0], steady.time.shape[0], sampling.time.shape[0]
        n_fill = fill.time.shape[0]
        if n_ss:
            # Padded SS slots get a dose of 1 every 1 h: with amount 0 the fixed point's tolerance is 0, it
            # fails, and its NaN (unused) still turned reverse-mode derivatives NaN through the selection.
            ss_states = jax.vmap(lambda a, c, i: self._steady_state(params, a, c, i, f1, tlag))(
                jnp.where(steady.mask, steady.amt, 1.0), steady.cmt, jnp.where(steady.mask, steady.ii, 1.0)
            )
        else:
            ss_states = jnp.zeros((1, 2))
        # Event table: doses, steady-state starts, samples.
        dose_time = each.time if "TLAG" not in params else lagged_times(each, tlag)
        time, order, valid = _event_keys(jnp, dose_time, each, steady, sampling, fill)
        epoch = jnp.concatenate([each.epoch, steady.epoch, sampling.epoch, fill.epoch])
        kind = jnp.concatenate([jnp.ones(n_dose, int), jnp.full(n_ss, 2), jnp.zeros(n_obs + n_fill, int)])
        amt = jnp.concatenate([each.amt, jnp.zeros(n_ss + n_obs + n_fill)])
        cmt = jnp.concatenate([each.cmt, jnp.zeros(n_ss + n_obs + n_fill, int)])
        ss_index = jnp.concatenate([jnp.zeros(n_dose, int), jnp.arange(n_ss), jnp.zeros(n_obs + n_fill, int)])
        perm = doses.order if fixed_order else jnp.lexsort((order, jnp.where(valid, time, jnp.inf)))

        def step(carry, i):
            y, t_now, ep = carry
            ok = valid[i] & (epoch[i] >= ep)
            new_epoch = ok & (epoch[i] > ep)
            t_to = jnp.where(ok & ~new_epoch, time[i], t_now)
            y = self._solve(y, t_now, jnp.maximum(t_to, t_now), params)
            y = jnp.where(new_epoch, jnp.zeros(2), y)
            y = jnp.where(ok & (kind[i] == 1), y + self._dose_vector(amt[i], cmt[i], f1), y)
            y = jnp.where(ok & (kind[i] == 2), ss_states[ss_index[i]], y)
            t_now = jnp.where(ok, time[i], t_now)
            ep = jnp.where(ok, epoch[i], ep)
            return (y, t_now, ep), y[1]

        init = (jnp.zeros(2), jnp.asarray(0.0), jnp.asarray(-1))
        _, central = jax.lax.scan(step, init, perm)
        by_event = jnp.zeros_like(central).at[perm].set(central)
        return self.scale * by_event[n_dose + n_ss : n_dose + n_ss + n_obs] / params["V"]


__all__ = ["AbstractODEModel", "ODEDoses", "ADDL_ORDER"]
