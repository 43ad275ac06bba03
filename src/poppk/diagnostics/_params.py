"""Per-subject tables for diagnostics: prediction curves, random effects, priors."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._runtime import configure_jax
from ..fit import parameter_units
from ..model import build_model
from ..pk import Sampling, expand_trains

#: Hours after each dose added to the plotting grid, so peaks are drawn whatever the span.
_AFTER_DOSE = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 9.0)


def dose_times(data) -> dict[str, np.ndarray]:
    """Every administered dose time (ADDL expanded) per subject ID (as str)."""
    doses = expand_trains(data.doses)
    t, m = np.asarray(doses.time), np.asarray(doses.mask)
    return {str(sid): t[i][m[i]] for i, sid in enumerate(data.ids)}


def infusion_spans(data) -> dict[str, np.ndarray]:
    """Every infusion with a rate in the data (``RATE > 0``, ADDL expanded) per subject ID (as str): an
    ``(k, 2)`` array of start and end times (h), the end ``AMT/RATE`` after the start (before any
    bioavailability, which the model estimates). Modelled rates or durations (``RATE = -1/-2``) have no
    end the data state and are left out (their start is among :func:`dose_times`)."""
    doses = expand_trains(data.doses)
    t, a, r, m = (np.asarray(getattr(doses, k)) for k in ("time", "amt", "rate", "mask"))
    out = {}
    for i, sid in enumerate(data.ids):
        sel = m[i] & (r[i] > 0)
        out[str(sid)] = np.stack([t[i][sel], t[i][sel] + a[i][sel] / r[i][sel]], axis=-1) if sel.any() else np.zeros((0, 2))
    return out


#: Observations further apart than this (h), and than two dosing intervals, go to separate windows.
WINDOW_GAP = 48.0
#: Fewest grid points per window of an individual curve.
_MIN_WINDOW_POINTS = 40


def observation_windows(data) -> dict[str, np.ndarray]:
    """The stretches of time each subject's individual plot shows: a ``(k, 2)`` array of start and end
    times (h) per subject ID (str), in time order.

    A subject's observations (BLQ records included) are split where two consecutive ones lie more than
    ``max(WINDOW_GAP, 2 x the subject's median dose interval)`` apart, so that a patient sampled at
    day 3 and day 300 is drawn as two readable windows, not one 0-7,200 h axis. A window runs from the
    last dose at or before its first observation (the observation itself when none precedes it) to its
    last observation; one without any span gets an hour either side. A subject without observations
    gets one window over its doses.

    Examples
    --------
    >>> import poppk
    >>> w = poppk.diagnostics.observation_windows(poppk.datasets.load("theophylline"))
    >>> w["1"].tolist()   # one dose at 0 h, sampled to 24.4 h
    [[0.0, 24.37]]
    """
    doses = dose_times(data)
    tobs, present = np.asarray(data.sampling.time), np.asarray(data.present)
    out = {}
    for i, sid in enumerate(data.ids):
        d = np.sort(doses[str(sid)])
        t = np.sort(tobs[i][present[i]])
        if t.size == 0:
            out[str(sid)] = np.array([[d.min(), d.max()]]) if d.size else np.zeros((1, 2))
            continue
        gap = max(WINDOW_GAP, 2 * float(np.median(np.diff(d)))) if d.size > 1 else WINDOW_GAP
        breaks = np.flatnonzero(np.diff(t) > gap) + 1
        rows = []
        for chunk in np.split(t, breaks):
            before = d[d <= chunk[0]]
            lo, hi = (before.max() if before.size else chunk[0]), chunk[-1]
            rows.append((lo - 1.0, hi + 1.0) if hi <= lo else (lo, hi))
        out[str(sid)] = np.asarray(rows, float)
    return out


def individual_curves(fit, *, n_points: int = 200, n_draws: int = 100, seed: int = 0) -> pd.DataFrame:
    """Posterior median and 90% interval of each subject's concentration on a dense time grid over its
    :func:`observation_windows`.

    The grid spreads ``n_points`` evenly over each subject's windows (at least 40 to a window), plus
    the records' own times and a few times after every dose inside them. Columns: ID, WINDOW (the
    window's index), TIME (h), q5, q50, q95 (observation unit).
    """
    configure_jax()
    data = fit.data
    doses_by_id = dose_times(data)
    windows = observation_windows(data)
    tobs = np.asarray(data.sampling.time)
    present = np.asarray(data.present)
    grids = []
    for i, sid in enumerate(data.ids):
        d, w = doses_by_id[str(sid)], windows[str(sid)]
        per = max(_MIN_WINDOW_POINTS, n_points // len(w))
        extra = np.concatenate([tobs[i][present[i]], (d[:, None] + np.asarray(_AFTER_DOSE)).ravel()])
        g = np.concatenate([np.linspace(lo, hi, per) for lo, hi in w]
                           + [extra[(extra >= lo) & (extra <= hi)] for lo, hi in w])
        grids.append(np.unique(g))
    width = max(len(g) for g in grids)
    time = np.zeros((len(grids), width))
    epoch = np.full((len(grids), width), -1, dtype=np.int64)
    dtime, depoch, dmask = (np.asarray(data.doses.time), np.asarray(data.doses.epoch), np.asarray(data.doses.mask))
    for i, g in enumerate(grids):
        time[i, :len(g)] = g
        started = dmask[i][None, :] & (dtime[i][None, :] <= g[:, None])
        epoch[i, :len(g)] = np.where(started.any(axis=1), np.where(started, depoch[i], -1).max(axis=1), 0)
    sampling = Sampling(time=jnp.asarray(time), order=jnp.zeros_like(jnp.asarray(time)), epoch=jnp.asarray(epoch))
    conc = fit.concentration_draws(data.doses, sampling, n_draws=n_draws, seed=seed)
    q = np.quantile(conc, [0.05, 0.5, 0.95], axis=0)
    rows = []
    for i, (sid, g) in enumerate(zip(data.ids, grids, strict=True)):
        n = len(g)
        w = windows[str(sid)]
        # Window of each grid time (windows do not overlap; a time on a shared edge goes to the first).
        which = np.argmax((g[:, None] >= w[None, :, 0]) & (g[:, None] <= w[None, :, 1]), axis=1)
        rows.append(pd.DataFrame({"ID": str(sid), "WINDOW": which, "TIME": g, "q5": q[0, i, :n],
                                  "q50": q[1, i, :n], "q95": q[2, i, :n]}))
    return pd.concat(rows, ignore_index=True)


def eta_table(fit) -> pd.DataFrame:
    """Posterior mean random effect (log scale) per subject and IIV parameter, beside the covariates
    (baseline values as read: text covariates as text)."""
    post = fit.tree["posterior"]
    out = pd.DataFrame({"ID": [str(i) for i in fit.data.ids]})
    if "eta" in post.data_vars:
        eta = post["eta"].mean(("chain", "draw")).values  # (subject, iiv_param)
        for k, p in enumerate(fit.spec.iiv.parameters):
            out[f"eta_{p}"] = eta[:, k]
    for name in fit.data.covariate_names:
        out[name] = fit.data.covariate_values(name)  # text covariates as text
    return out


def prior_distributions(fit) -> dict[str, tuple]:
    """Each population parameter's prior as ``(frozen scipy distribution, unit)``, in the data's units:
    the model's own priors (:func:`poppk.model.priors`), as scipy distributions for drawing."""
    from scipy import stats

    import numpyro.distributions as dist

    units = parameter_units(fit.spec, fit.data, fit.info["population"])
    out = {}
    for name, d in build_model(fit.spec, fit.data).priors.items():
        if isinstance(d, dist.LogNormal):
            frozen = stats.lognorm(s=float(d.scale), scale=float(np.exp(d.loc)))
        elif isinstance(d, dist.HalfNormal):
            frozen = stats.halfnorm(scale=float(d.scale))
        else:
            frozen = stats.norm(float(d.loc), float(d.scale))
        out[name] = (frozen, units.get(name, ""))
    return {k: v for k, v in out.items() if k in fit.info["population"]}


__all__ = ["dose_times", "eta_table", "individual_curves", "prior_distributions"]
