"""Linear mammillary models in closed form: one to three compartments, IV bolus, zero-order infusion
and first-order absorption, by superposition of every dose train.

The central amount after a unit input into disposition compartment ``j`` is a sum of exponentials
``sum_i a_ij exp(-lambda_i t)``: the ``lambda_i`` are the eigenvalues of the disposition (the roots of
its characteristic polynomial, in closed form for up to three compartments) and ``a_ij`` the partial
fractions of its Laplace transform at ``s = -lambda_i``::

    into the central compartment:   a_ic = prod_p (k_p1 - lambda_i) / prod_{l != i} (lambda_l - lambda_i)
    into peripheral p:              a_ip = k_p1 prod_{q != p} (k_q1 - lambda_i) / prod_{l != i} (lambda_l - lambda_i)

with ``k_p1`` the rate constant from peripheral ``p`` back to the central compartment (Gibaldi and
Perrier, *Pharmacokinetics*, 2nd ed., 1982, ch. 2 and appendix B; the same expressions as Bertrand and
Mentre, *Mathematical expressions of the pharmacokinetic and pharmacodynamic models implemented in the
Monolix software*, 2008, sections 1-3). Every dose shape is then one function ``h(x)`` of a single
exponential rate ``x`` (:func:`_shape`): a bolus train, or an infusion train with its running and
ended infusions; a dose into a depot passes through one more exponential, ``KA``, and contributes
``KA sum_i a_ic (h(lambda_i) - h(KA)) / (KA - lambda_i)``, the divided difference evaluated at the
midpoint's derivative where ``KA`` is within ``_CLOSE`` of ``lambda_i`` (the ``KA == lambda`` limit).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import AbstractPKModel, Params, input_rates, lagged_times
from ._events import Doses, Sampling, any_changes, as_row, merge_regular, train_position
from ._ode import AbstractODEModel, ODEDoses

#: |KA - lambda| below this fraction of lambda uses the derivative at the midpoint (the limit).
_CLOSE = 1e-5
#: Below this, (1 - exp(-u)) / u is evaluated by its Taylor series (truncation error u^3 / 24 < 1e-16).
_SERIES_BELOW = 1e-5


def _phi(u):
    """``(1 - exp(-u)) / u`` for ``u >= 0`` (1 at 0), to rounding error everywhere."""
    small = u < _SERIES_BELOW
    safe = jnp.where(small, 1.0, u)
    return jnp.where(small, 1.0 - u * (0.5 - u / 6.0), -jnp.expm1(-safe) / safe)


def geometric(x, m, ii, ss):
    """``sum_{k=0}^{m-1} exp(-x k ii)``; the infinite sum where ``ss``; ``m`` where ``ii == 0``."""
    has_ii = ii > 0
    ii_s = jnp.where(has_ii, ii, 1.0)
    denom = -jnp.expm1(-x * ii_s)
    finite = -jnp.expm1(-x * jnp.where(ss, 1.0, m) * ii_s) / denom  # no inf*0 in gradients
    return jnp.where(ss, 1.0 / denom, jnp.where(has_ii, finite, m))


def eigenvalues(k10, kout, kin) -> list:
    """The disposition's rate constants ``lambda_i`` (1/h, positive, largest first).

    ``kout``/``kin``: the rate constants from the central compartment to each peripheral and back.
    One compartment: ``k10``. Two: the roots of ``s^2 - (k10 + k12 + k21) s + k10 k21``, the smaller
    one as the product over the larger (no cancellation). Three: the trigonometric solution of the
    cubic ``s^3 - a2 s^2 + a1 s - a0`` (Bertrand and Mentre 2008, section 3.1), whose roots are real.
    """
    if not kout:
        return [k10]
    if len(kout) == 1:
        (k12,), (k21,) = kout, kin
        total = k10 + k12 + k21
        root = jnp.sqrt((k10 + k12 - k21) ** 2 + 4.0 * k12 * k21)
        alpha = 0.5 * (total + root)
        return [alpha, k10 * k21 / alpha]
    (k12, k13), (k21, k31) = kout, kin
    a0 = k10 * k21 * k31
    a1 = k10 * k31 + k21 * k31 + k21 * k13 + k10 * k21 + k31 * k12
    a2 = k10 + k12 + k13 + k21 + k31
    p = a1 - a2 * a2 / 3.0
    q = 2.0 * a2**3 / 27.0 - a1 * a2 / 3.0 + a0
    r1 = jnp.sqrt(jnp.maximum(-(p**3) / 27.0, 1e-300))
    angle = jnp.arccos(jnp.clip(-q / (2.0 * r1), -1.0, 1.0)) / 3.0
    r2 = 2.0 * jnp.cbrt(r1)
    return [a2 / 3.0 - r2 * jnp.cos(angle + shift) for shift in (4.0 * jnp.pi / 3.0, 2.0 * jnp.pi / 3.0, 0.0)][::-1]


def central_coefficients(lams, kin) -> Float[Array, "n m"]:
    """``a[i, j]``: the weight of ``exp(-lambda_i t)`` in the central amount after a unit bolus into
    disposition compartment ``j`` (0 the central, ``1..`` the peripherals); partial fractions (module
    docstring)."""
    n = len(lams)
    rows = []
    for i, lam in enumerate(lams):
        denom = 1.0
        for lam_l in (lams[:i] + lams[i + 1:]):
            denom = denom * (lam_l - lam)
        into = [1.0]  # the central compartment: prod_p (k_p1 - lambda)
        for k in kin:
            into[0] = into[0] * (k - lam)
        for p, k in enumerate(kin):  # peripheral p: k_p1 prod_{q != p} (k_q1 - lambda)
            w = k
            for q, kq in enumerate(kin):
                if q != p:
                    w = w * (kq - lam)
            into.append(w)
        rows.append(jnp.stack([jnp.asarray(v, dtype=float) * jnp.ones_like(lam) / denom for v in into]))
    return jnp.stack(rows) if n > 1 else rows[0][None, :]


class _Positions:
    """Where every sample stands in every dose train, computed once for all rates ``x``."""

    def __init__(self, doses: Doses, t_start, duration, is_infusion, sampling: Sampling):
        args = (sampling.time, sampling.order, sampling.epoch)
        self.ii, self.ss, self.trains = doses.ii, doses.ss, doses.trains
        self.is_infusion = is_infusion
        self.count, self.dt, self.active = train_position(doses, t_start, *args)
        self.duration = duration
        if is_infusion is not None:
            c_e, dt_e, act_e = train_position(doses, t_start + duration, *args, t_anchor=doses.time)
            self.count_end, self.dt_end, self.active_end = c_e, dt_e, act_e
            ii_s = jnp.where(doses.ii > 0, doses.ii, 1.0)
            steady_running = jax.lax.stop_gradient(jnp.round((duration + jnp.where(act_e, dt_e, 0.0) - self.dt) / ii_s))
            started = jnp.where(doses.ss, 0.0, self.count)
            running = jnp.where(doses.ss, steady_running, started - jnp.where(act_e & ~doses.ss, c_e, 0.0))
            self.running = jnp.where(self.active, running, 0.0)

    def _g(self, x, m, ss):
        return geometric(x, m, self.ii, ss) if self.trains else jnp.ones_like(x * self.dt)

    def bolus(self, x):
        """``h(x)`` for unit boluses: ``exp(-x dt) G(x)``, ``(O, D)`` for ``x`` broadcasting against it."""
        return jnp.where(self.active, jnp.exp(-x * self.dt) * self._g(x, self.count, self.ss), 0.0)

    def bolus_through(self, lam, ka):
        """``(h(lam) - h(ka)) / (ka - lam)`` for unit boluses into a depot, split as ``exp(-lam dt)
        (G(lam) - G(ka)) / (ka - lam) + G(ka) (exp(-lam dt) - exp(-ka dt)) / (ka - lam)``: the second
        divided difference without cancellation (exact for single doses, G = 1, and at ``ka == lam``),
        the first, of the smooth G, by its derivative at the midpoint within ``_CLOSE``."""
        dt = self.dt
        e_lam, e_ka = jnp.exp(-lam * dt), jnp.exp(-ka * dt)
        direct = dt * jnp.where(lam <= ka, e_lam, e_ka) * _phi(jnp.abs(ka - lam) * dt)
        if not self.trains:
            return jnp.where(self.active, direct, 0.0)
        dg = _divided_difference(lambda x: self._g(x, self.count, self.ss), lam, ka)
        return jnp.where(self.active, e_lam * dg + self._g(ka, self.count, self.ss) * direct, 0.0)

    def infusion(self, x):
        """``h(x)`` for unit-rate infusions: the ended ones' geometric sum and the running ones."""
        T, dt, r = self.duration, self.dt, self.running
        ended = jnp.where(self.active_end, T * _phi(x * T) * jnp.exp(-x * self.dt_end) * self._g(x, self.count_end, self.ss), 0.0)
        # Running infusions: sum_{j<r} (1 - exp(-x (dt + j ii))) / x, split so that one running infusion
        # is exact (its second term is 0): r dt phi(x dt) + exp(-x dt) (r - G(x; r)) / x.
        overlap = (r - geometric(x, r, self.ii, jnp.zeros_like(self.ss))) / x if self.trains else 0.0
        running = r * dt * _phi(x * dt) + jnp.exp(-x * dt) * overlap
        return ended + jnp.where(self.active, running, 0.0)


def _over_rates(fn):
    """``fn`` of ``x`` (broadcasting against ``(O, D)``) mapped over the last axis of ``x`` ``(1, 1, n)``
    (then ``(O, D, n)``); every argument is mapped alike."""
    return jax.vmap(fn, in_axes=-1, out_axes=-1)


def _divided_difference(h, lam, ka):
    """``(h(lam) - h(ka)) / (ka - lam)`` for each ``lam``; by ``-h'`` at the midpoint within ``_CLOSE``."""
    diff = ka - lam
    close = jnp.abs(diff) <= _CLOSE * lam
    mid = jnp.where(close, 0.5 * (ka + lam), lam)
    _, slope = jax.jvp(h, (mid,), (jnp.ones_like(mid),))
    direct = (h(lam) - h(ka)) / jnp.where(close, 1.0, diff)
    return jnp.where(close, -slope, direct)


class AbstractLinearModel(AbstractPKModel):
    """Linear mammillary disposition with ``peripherals`` peripheral compartments; with ``oral``, a
    depot (CMT 1) absorbed first-order (``KA``) into the central compartment (CMT 2), as NONMEM's
    ADVAN2/4/12; without, the central compartment is CMT 1 (ADVAN1/3/11). Peripherals follow the
    central compartment. A concrete kernel gives :meth:`micro` (its parameters as rate constants).
    """

    peripherals: ClassVar[int] = 0
    oral: ClassVar[bool] = False

    def micro(self, p: Params):
        """``(k10, kout, kin, V1)``: elimination rate constant, the rate constants to and from each
        peripheral (tuples) and the central volume (L)."""
        raise NotImplementedError

    def elimination_rate(self, params: Params):
        """The terminal disposition rate constant (1/h), the smallest ``lambda``: absorption slower
        than it (flip-flop) would make the terminal phase absorption's."""
        k10, kout, kin, _ = self.micro(params)
        return eigenvalues(k10, kout, kin)[-1]

    def rate_matrix(self, p: Params) -> Float[Array, "S S"]:
        """``M`` of ``d(amounts)/dt = M amounts`` (1/h), amounts in CMT order (``compartments``): the
        depot emptied at ``KA`` into the central compartment, which loses ``k10`` and exchanges with each
        peripheral at ``kout`` / ``kin`` (:meth:`micro`)."""
        k10, kout, kin, _ = self.micro(p)
        c = self.central_cmt - 1
        m = jnp.zeros((len(self.compartments),) * 2)
        m = m.at[c, c].set(-(k10 + sum(kout)))
        for j, (k_out, k_in) in enumerate(zip(kout, kin, strict=True)):
            q = c + 1 + j
            m = m.at[q, c].set(k_out).at[c, q].set(k_in).at[q, q].set(-k_in)
        if self.oral:
            d = self.depot_cmt - 1
            m = m.at[d, d].set(-p["KA"]).at[c, d].set(p["KA"])
        return m

    def prepare(self, doses: Doses, sampling: Sampling | None = None, changes: Sampling | None = None):
        """Regular single doses become ADDL trains where that is exact (:func:`merge_regular`): the
        cost of a prediction then does not grow with the number of regular doses.

        With parameters that change within a subject (``changes``, see
        :meth:`AbstractPKModel.prepare`), superposition of whole dose trains no longer holds: the
        compartments are then stepped from event to event, exactly (:class:`LinearStates`).
        """
        if any_changes(changes):
            return self.stepped().prepare(doses, sampling, changes)
        return merge_regular(doses, absorbing=(self.depot_cmt,) if self.oral else (), sampling=sampling)

    def stepped(self) -> LinearStates:
        """This kernel as :class:`LinearStates`: the same model stepped from event to event."""
        return LinearStates(scale=self.scale, linear=self)

    def concentrations(self, params: Params, doses: Doses, sampling: Sampling) -> Float[Array, " O"]:
        if isinstance(doses, ODEDoses):  # prepared with parameters that change (see prepare)
            return self.stepped().concentrations(params, doses, sampling)
        k10, kout, kin, v1 = self.micro(params)
        lams = eigenvalues(k10, kout, kin)
        coef = central_coefficients(lams, kin)  # (n, 1 + peripherals)
        doses = as_row(doses)
        if doses.singles and doses.trains:  # the single doses by the cheaper path, the trains by theirs
            cut = doses.singles
            part = lambda sl, trains: dataclasses.replace(  # noqa: E731
                jax.tree_util.tree_map(lambda a: a[..., sl], doses), trains=trains, singles=0)
            total = (self._amounts(params, part(slice(None, cut), False), sampling, lams, coef)
                     + self._amounts(params, part(slice(cut, None), True), sampling, lams, coef))
        else:
            total = self._amounts(params, doses, sampling, lams, coef)
        return self.scale * total / v1

    def _amounts(self, params: Params, doses: Doses, sampling: Sampling, lams, coef) -> Float[Array, " O"]:
        """The central amount at each sample from ``doses`` ``(1, D)``: the sum over dose trains."""
        lam = jnp.stack(lams)[None, None, :]  # (1, 1, n): samples, trains, exponentials
        amount, rate, duration, infusion = input_rates(self, params, doses)
        t_start = lagged_times(doses, params["TLAG"]) if self.oral else doses.time
        pos = _Positions(doses, t_start, duration, infusion if doses.infusions else None, sampling)
        # Into the central compartment or a peripheral: the coefficients of the dose's compartment.
        first = self.central_cmt
        index = jnp.clip(doses.cmt - first, 0, self.peripherals)  # (1, D)
        weights = jnp.take(coef.T, index[0], axis=0)[None, :, :]  # (1, D, n)
        per_dose = (weights * _over_rates(pos.bolus)(lam)).sum(axis=-1)
        if doses.infusions:
            per_rate = (weights * _over_rates(pos.infusion)(lam)).sum(axis=-1)
            per_dose = jnp.where(infusion, rate * per_rate, amount * per_dose)
        else:
            per_dose = amount * per_dose
        if self.oral:
            ka = jnp.reshape(params["KA"], (1, 1, 1))
            ka_n = jnp.broadcast_to(ka, lam.shape)
            a_c = coef[:, 0][None, None, :]
            depot = amount * (a_c * _over_rates(pos.bolus_through)(lam, ka_n)).sum(axis=-1)
            if doses.infusions:
                through = _over_rates(lambda x, k: _divided_difference(pos.infusion, x, k))(lam, ka_n)
                depot = jnp.where(infusion, rate * (a_c * through).sum(axis=-1), depot)
            per_dose = jnp.where(doses.cmt == self.depot_cmt, ka[0] * depot, per_dose)
        known = (doses.cmt >= (self.depot_cmt if self.oral else first)) & (doses.cmt <= first + self.peripherals)
        return jnp.where(known, per_dose, 0.0).sum(axis=1)


def _exp_divided_differences(z, h) -> list:
    """The divided-difference table of ``f(x) = exp(x h)`` on points ``z`` (a list, monotone):
    ``table[k][i] = f[z_i, ..., z_{i+k}]``. First differences without cancellation,
    ``h exp(max(a, b) h) phi(|a - b| h)`` (exact where ``a == b``, the confluent limit); higher ones by the
    recursion, whose denominators ``z_{i+k} - z_i`` are the widest gaps of monotone points."""
    table = [[jnp.exp(zi * h) for zi in z]]
    table.append([h * jnp.exp(jnp.maximum(a, b) * h) * _phi(jnp.abs(a - b) * h) for a, b in zip(z[:-1], z[1:])])
    for k in range(2, len(z)):
        prev = table[-1]
        table.append([(prev[i + 1] - prev[i]) / (z[i + k] - z[i]) for i in range(len(z) - k)])
    return table


class LinearStates(AbstractODEModel):
    """A linear kernel (``linear``) stepped from event to event by the event engine of
    :class:`AbstractODEModel`, with each step exact: the amounts after ``h`` hours under a constant input
    rate ``u`` are ``exp(M h) y0 + F(M) u`` with ``F(x) = (exp(x h) - 1) / x`` (the integral of
    ``exp(M s)`` over the step), ``M`` the kernel's :meth:`AbstractLinearModel.rate_matrix`. Both
    matrix functions are the Newton interpolation polynomial on the eigenvalues ``x_j`` of ``M`` (minus the
    kernel's :func:`eigenvalues`, and ``-KA``; real and negative), ``g(M) = sum_k g[x_0..x_k] prod_{j<k}
    (M - x_j I)``, exact by Cayley-Hamilton (Higham, *Functions of Matrices*, 2008, section 1.2.2), with
    ``F[x_0..x_k] = f[0, x_0..x_k]``: one divided-difference table of ``exp(x h)`` on ``0 > x_0 >= x_1 ...``
    (:func:`_exp_divided_differences`) and a few matrix-vector products. Steady state is the fixed point of
    the affine map "dose, then one interval", ``y = Phi y + c`` with ``Phi = exp(M ii)``, solved directly:
    ``(I - Phi)^-1 c``.

    This is how linear kernels take parameters that change within a subject (time-varying covariates),
    where superposition of whole dose trains no longer holds; the same values as the closed forms where
    the parameters do not change (``tests/test_pk.py``).
    """

    linear: Any = None
    grid: int = eqx.field(static=True, default=0)

    @property
    def compartments(self) -> tuple[str, ...]:
        return self.linear.compartments

    @property
    def central_cmt(self) -> int:
        return self.linear.central_cmt

    @property
    def depot_cmt(self) -> int | None:
        return self.linear.depot_cmt

    def rhs(self, t, y, p: Params):
        return self.linear.rate_matrix(p) @ y

    def observe(self, y, p: Params):
        return y[self.central_cmt - 1] / self.linear.micro(p)[3]

    def _nodes(self, p):
        """The eigenvalues of the rate matrix, ``0 > x_0 >= x_1 >= ...`` (the slowest first)."""
        k10, kout, kin, _ = self.linear.micro(p)
        rates = eigenvalues(k10, kout, kin) + ([p["KA"]] if self.linear.oral else [])
        return list(-jnp.sort(jnp.stack([jnp.asarray(r, dtype=float) for r in rates])))

    def _solve(self, y0, t0, t1, p, u_in, grid=None):
        m, x = self.linear.rate_matrix(p), self._nodes(p)
        table = _exp_divided_differences([jnp.zeros_like(x[0])] + x, t1 - t0)
        out, vy, vu = 0.0, y0, u_in
        for k, xk in enumerate(x):  # f[x_0..x_k] = table[k][1], F[x_0..x_k] = f[0, x_0..x_k] = table[k + 1][0]
            out = out + table[k][1] * vy + table[k + 1][0] * vu
            vy, vu = m @ vy - xk * vy, m @ vu - xk * vu
        return out

    def _periodic(self, interval, p, ii, amount):
        m, x = self.linear.rate_matrix(p), self._nodes(p)
        table = _exp_divided_differences(x, ii)
        eye = jnp.eye(self.n_states)
        phi, basis = 0.0, eye
        for k, xk in enumerate(x):
            phi, basis = phi + table[k][0] * basis, (m - xk * eye) @ basis
        trough = jnp.linalg.solve(eye - phi, interval(jnp.zeros(self.n_states)))
        return trough, jnp.all(jnp.isfinite(trough))


__all__ = ["AbstractLinearModel", "LinearStates", "central_coefficients", "eigenvalues", "geometric"]
