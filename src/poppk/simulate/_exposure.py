"""Steady-state exposure of virtual patients under a regimen, through the one dosing engine.

Per patient, concentrations come from :func:`poppk.pk.predict_subjects` at the true steady state
(the regimen's last repeated dose as an SS=1 record: the kernel's exact steady state, the infinite
series of a closed form or the fixed point of an ODE, however long the regimen) and on the regimen
itself: at every dose time (troughs, sampled just before the dose), Gauss-Legendre nodes over the last
dosing interval and an even grid over the whole regimen (percentile bands).

* ``AUCtau_ss`` over one interval at steady state by Gauss-Legendre quadrature (``PANELS`` panels of
  ``NODES`` nodes, graded quadratically from the dose, where absorption is fastest); against F*Dose/CL
  for the linear model the relative error is below 1e-9 (``tests/test_simulate.py``);
* ``Cav_ss = AUCtau_ss / tau``; ``Cmax_ss``, ``Tmax_ss`` (h after the dose) and ``Cmin_ss`` over the
  nodes and the interval's ends;
* ``AUCtau_last``, ``Cmin_last``: the same over the regimen's *last* interval, which equal the
  steady-state ones only when the regimen is long enough;
* ``t_ss_h``: the first dose time at which the trough reaches 90% of the steady-state trough
  (``Cmin_ss``); NaN when the regimen ends before that (:func:`before_steady_state` counts them).

Where an ODE kernel finds no steady state (its fixed point not reached within ``ss_max_intervals``
intervals, as for saturable elimination dosed near or above VMAX, where none may exist), the ``_ss``
metrics are those of the regimen's last interval and ``t_ss_h`` is NaN.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import SimulationError, SolverError
from ..pk import Sampling, get_kernel, predict_subjects
from ._regimen import Regimen, Segment

#: Quadrature over the last dosing interval: panels, and Gauss-Legendre nodes per panel.
PANELS, NODES = 24, 8
#: Exposure metrics and the names a command line accepts for them.
METRICS = ("AUCtau_ss", "Cav_ss", "Cmax_ss", "Cmin_ss", "Tmax_ss", "t_ss_h", "AUCtau_last", "Cmin_last")
ALIASES = {"aucss": "AUCtau_ss", "auctau": "AUCtau_ss", "auctau_ss": "AUCtau_ss", "auc": "AUCtau_ss",
           "cavss": "Cav_ss", "cav": "Cav_ss", "cav_ss": "Cav_ss", "cmaxss": "Cmax_ss", "cmax": "Cmax_ss",
           "cmax_ss": "Cmax_ss", "cminss": "Cmin_ss", "cmin": "Cmin_ss", "cmin_ss": "Cmin_ss", "trough": "Cmin_ss",
           "ctrough": "Cmin_ss", "tmaxss": "Tmax_ss", "tmax_ss": "Tmax_ss"}


def metric_name(name: str) -> str:
    """The canonical metric for ``name`` (``AUCss`` -> ``AUCtau_ss``); SimulationError if unknown."""
    if name in METRICS:
        return name
    key = name.strip().lower().replace(",", "").replace(" ", "")
    if key in ALIASES:
        return ALIASES[key]
    raise SimulationError(f"unknown exposure metric {name!r}; use one of AUCss, Cavss, Cmaxss, Cminss, Tmaxss")


def metric_unit(metric: str, conc_unit: str) -> str:
    return {"AUCtau_ss": f"{conc_unit}*h", "AUCtau_last": f"{conc_unit}*h", "Tmax_ss": "h", "t_ss_h": "h"}.get(metric, conc_unit)


def before_steady_state(metrics: dict) -> float:
    """The fraction of patients whose regimen ends before its troughs reach 90% of steady state."""
    t_ss = np.asarray(metrics["t_ss_h"], dtype=float)
    return float(np.isnan(t_ss).mean()) if t_ss.size else 0.0


def regimen_times(regimen: Regimen, band_points: int = 200) -> dict[str, np.ndarray]:
    """The sampling times of :func:`exposure_metrics`: ``trough``, ``fine`` and ``band`` (h)."""
    times, _ = regimen.dose_times()
    tau = regimen.tau
    t_last = float(times[-1])
    nodes, _ = _quadrature(tau)
    return {"trough": times.astype(float), "fine": t_last + np.concatenate([[0.0], nodes, [tau]]),
            "band": np.linspace(0.0, t_last + tau, max(int(band_points), 2))}


def _quadrature(tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in (0, tau) and weights of the graded composite Gauss-Legendre rule."""
    x, w = np.polynomial.legendre.leggauss(NODES)
    edges = tau * (np.arange(PANELS + 1) / PANELS) ** 2
    a, b = edges[:-1, None], edges[1:, None]
    return ((a + b) / 2 + (b - a) / 2 * x).ravel(), ((b - a) / 2 * w).ravel()


def _schedule(regimen: Regimen) -> Regimen:
    """``regimen`` with every amount set to 1: what the compiled function depends on (times, counts)."""
    return Regimen(tuple(Segment(1.0, s.n_doses, s.interval, s.route, s.duration) for s in regimen.segments), regimen.unit)


def simulation_devices(devices: int | None = None) -> int:
    """How many of JAX's local devices a simulation splits its patients across: ``devices`` (at most the
    number there are), or by default every accelerator (several GPUs) and one device on CPU. CPU host
    devices (:func:`poppk.set_host_devices`) exist for a fit's chains; splitting small simulations across
    them cost more in compilation than it saved (the default test run slowed by minutes), so on CPU
    sharding is asked for with ``devices``."""
    n = jax.local_device_count()
    if devices is None:
        return n if jax.default_backend() != "cpu" else 1
    if devices < 1:
        raise SimulationError(f"devices must be at least 1, got {devices}")
    return min(int(devices), n)


def _placer(n_devices: int, size: int):
    """Put a chunk's arrays on the devices: patients (the leading axis of length ``size``) split across
    ``n_devices`` devices with ``jax.sharding`` (each device computes its patients; nothing is exchanged
    until the results are gathered), everything else replicated. One device: arrays as they are."""
    if n_devices == 1:
        return lambda tree: tree
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.local_devices()[:n_devices]), ("patients",))
    split, whole = NamedSharding(mesh, PartitionSpec("patients")), NamedSharding(mesh, PartitionSpec())

    def put(x):
        x = jnp.asarray(x)
        return jax.device_put(x, split if x.ndim and x.shape[0] == size else whole)

    return lambda tree: jax.tree_util.tree_map(put, tree)


@functools.lru_cache(maxsize=64)
def _runner(kernel_name: str, options: tuple, dose_unit: str, conc_unit: str, schedule: Regimen, band_points: int,
            size: int, n_devices: int = 1):
    """The compiled per-chunk function of :func:`exposure_metrics` for a dosing *schedule*: dose
    amounts are an argument, so candidate strengths and the cohorts of a trial share one compilation.
    With ``n_devices > 1`` the chunk's patients are sharded across that many devices (:func:`_placer`)."""
    kernel = get_kernel(kernel_name, dose_unit, conc_unit, **dict(options))
    place = _placer(n_devices, size)
    grid = regimen_times(schedule, band_points)
    t = np.concatenate([grid["trough"], grid["fine"], grid["band"]])
    sampling = Sampling(time=np.broadcast_to(t, (size, t.size)).copy(), order=np.full((size, t.size), -1.0),
                        epoch=np.zeros((size, t.size), np.int64))
    n_tr, tau = grid["trough"].size, schedule.tau
    n_fine = grid["fine"].size
    weights = jnp.asarray(_quadrature(tau)[1])
    troughs = jnp.asarray(grid["trough"])

    after = np.asarray(grid["fine"] - grid["fine"][0])
    steady_sampling = Sampling(time=np.broadcast_to(after, (size, after.size)).copy(),
                               order=np.ones((size, after.size)), epoch=np.zeros((size, after.size), np.int64))

    @jax.jit
    def run(p, prepared, steady):
        c = predict_subjects(kernel, p, prepared, sampling)
        trough, fine, band = c[:, :n_tr], c[:, n_tr:n_tr + n_fine], c[:, n_tr + n_fine:]
        ss = predict_subjects(kernel, p, steady, steady_sampling)  # one interval after an SS=1 dose
        # No steady state found (an ODE's fixed point not reached in ss_max_intervals: saturable elimination
        # dosed near or above VMAX, where none may exist): the regimen's last interval stands in, t_ss_h NaN.
        found = jnp.isfinite(ss).all(axis=1)
        ss = jnp.where(found[:, None], ss, fine)
        auc, auc_last = ss[:, 1:-1] @ weights, fine[:, 1:-1] @ weights
        c_min = ss.min(1)
        reached = trough >= 0.9 * c_min[:, None]
        t_ss = jnp.where(reached.any(axis=1) & found, troughs[jnp.argmax(reached, axis=1)], jnp.nan)
        metrics = {"AUCtau_ss": auc, "Cav_ss": auc / tau, "Cmax_ss": ss.max(1),
                   "Tmax_ss": jnp.asarray(after)[jnp.argmax(ss, axis=1)], "Cmin_ss": c_min, "t_ss_h": t_ss,
                   # (t_last, t_last + tau]: the grid's first point is the trough before the last dose
                   "AUCtau_last": auc_last, "Cmin_last": fine[:, 1:].min(1)}
        return metrics, band

    @functools.lru_cache(maxsize=16)
    def prepared(regimen: Regimen):
        return place((kernel.prepare(regimen.to_doses(size, dose_unit, kernel), sampling),
                      kernel.prepare(regimen.steady_doses(size, dose_unit, kernel), steady_sampling)))

    def call(p, regimen: Regimen):
        return run(place(p), *prepared(regimen))

    return call


def exposure_metrics(kernel, params: dict[str, np.ndarray], regimen: Regimen, *, dose_unit: str,
                     conc_unit: str, band_points: int = 200, chunk: int = 10_000,
                     devices: int | None = None) -> tuple[dict, np.ndarray]:
    """Metrics ``{name: (n,)}`` and band concentrations ``(n, band_points)`` for ``n`` patients.

    ``kernel`` is a kernel name or a :class:`ModelSpec` (whose solver options then apply).
    ``params`` are individual structural parameters in the fitted data's units (as
    :meth:`VirtualPopulation.parameters` returns them); doses go in ``dose_unit``.
    Patients are processed ``chunk`` at a time by one compiled function, each chunk split across
    ``devices`` devices (default every GPU, one CPU device: :func:`simulation_devices`); every patient's
    computation is the same on any device, so the result does not depend on how many
    (``tests/test_batch.py`` checks two host devices against one).
    """
    from .._runtime import configure_jax

    configure_jax()
    n = len(next(iter(params.values())))
    if n == 0:
        raise SimulationError("no virtual patients to simulate")
    name, options = (kernel, ()) if isinstance(kernel, str) else (kernel.kernel, tuple(kernel.kernel_options.items()))
    n_dev = simulation_devices(devices)
    metrics, bands = _run_chunks(name, options, params, regimen, dose_unit, conc_unit, band_points, min(chunk, n), n_dev)
    bad = _failed(metrics)
    if bad.any() and _fixed_step_ode(name, options, dose_unit, conc_unit):
        # The fixed-step solver can fail for a stiff patient (seen on the bundled trial's MM fit for about 1
        # virtual patient in 100,000, with a small V and fast elimination). Those patients are recomputed
        # with the adaptive solver, the reference.
        idx = np.flatnonzero(bad)
        sub = {k: np.asarray(v)[idx] for k, v in params.items()}
        adaptive = tuple((k, v) for k, v in options if k != "grid") + (("grid", 0),)
        m, b = _run_chunks(name, adaptive, sub, regimen, dose_unit, conc_unit, band_points, idx.size, n_dev)
        for k in METRICS:
            metrics[k][idx] = m[k]
        bands[idx] = b
        bad = _failed(metrics)
    if bad.any():
        _raise_failed(bad, params, regimen)
    return metrics, bands


def _run_chunks(name, options, params, regimen, dose_unit, conc_unit, band_points, size, n_devices=1):
    n = len(next(iter(params.values())))
    if size < n_devices:
        n_devices = 1  # fewer patients than devices: not worth splitting
    size = -(-size // n_devices) * n_devices  # a whole number of patients per device
    run = _runner(name, options, dose_unit, conc_unit, _schedule(regimen), int(band_points), size, n_devices)
    out, bands = [], []
    for i in range(0, n, size):
        idx = np.minimum(np.arange(i, i + size), n - 1)  # pad the last chunk: one compilation
        m, b = run({k: jnp.asarray(np.asarray(v, float)[idx]) for k, v in params.items()}, regimen)
        keep = min(size, n - i)
        out.append({k: np.asarray(v)[:keep] for k, v in m.items()})
        bands.append(np.asarray(b)[:keep])
    return {k: np.concatenate([o[k] for o in out]) for k in METRICS}, np.concatenate(bands)


def _fixed_step_ode(name, options, dose_unit, conc_unit) -> bool:
    from ..pk import AbstractODEModel

    kernel = get_kernel(name, dose_unit, conc_unit, **dict(options))
    return isinstance(kernel, AbstractODEModel) and kernel.grid > 0


def _failed(metrics: dict) -> np.ndarray:
    """Patients whose exposure is not finite or negative: a failed solve."""
    bad = np.zeros(len(metrics["AUCtau_ss"]), bool)
    for k in ("AUCtau_ss", "Cmax_ss", "Cmin_ss"):
        x = metrics[k]
        bad |= ~np.isfinite(x) | (x < -1e-9 * np.nanmax(np.abs(x), initial=1.0))
    return bad


def _raise_failed(bad: np.ndarray, params: dict, regimen: Regimen) -> None:
    """SolverError naming the first patient whose exposure is not finite or negative (a solver failure)."""
    i = int(np.argmax(bad))
    who = ", ".join(f"{k}={float(np.asarray(v)[i]):.4g}" for k, v in params.items())
    raise SolverError(
        f"{int(bad.sum())} of {bad.size} virtual patients under {regimen.label} got a non-finite or negative "
        f"exposure (the first: {who}): the prediction failed for them (for an ODE kernel: its fixed steps, "
        f"then its adaptive solver). Check that the parameters are positive, finite and in the data's units.")


__all__ = ["NODES", "PANELS", "METRICS", "exposure_metrics", "metric_name", "metric_unit", "regimen_times",
           "simulation_devices"]
