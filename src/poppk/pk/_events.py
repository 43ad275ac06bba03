"""The event arrays every kernel consumes: dose records and sampling times.

A dose record is a *train*: ``addl + 1`` doses of ``amt`` every ``ii`` hours
from ``time`` (NONMEM ADDL/II), optionally preceded by steady state (SS=1, or
SS=2: steady state added to what earlier doses left). A dose is a bolus
(``rate == 0``) or a zero-order infusion (``rate != 0``; see :class:`Doses`).
Kernels sum trains in closed form where they can; the ODE kernels use
:func:`expand_trains` to get one record per dose.

Ordering rule (shared by every kernel): a dose given at ``t_d`` acts on a
sample at ``t_o`` when ``t_d < t_o``, or when ``t_d == t_o`` and the dose
record comes first in the file (``order``). Additional (ADDL) doses sort after
every record at the same time, so a sample at a dosing time is a trough.
A record only sees doses of its own *epoch*; a new epoch starts at every
reset (EVID 3 or 4, or SS=1), which also ends any infusion still running.
An infusion's end is not an ordering question: its contribution is continuous
there.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ..errors import EventError

#: Relative tolerance when counting doses given before a sampling time.
_TIME_TOL = 1e-9
#: ``order`` of additional (ADDL) doses: after every record at the same time.
ADDL_ORDER = 1e15

DEPOT = 1
CENTRAL = 2


class Doses(eqx.Module):
    """Dose trains, shape ``(..., D)``; padded entries have ``mask`` False.

    ``trains`` and ``infusions`` (static) are False only when every record is known to be one dose (no
    ADDL, no SS), or a bolus, as :func:`merge_regular` finds; kernels may then take a cheaper path.
    """

    time: Float[Array, "... D"]
    amt: Float[Array, "... D"]
    #: NONMEM RATE: 0 a bolus; > 0 an infusion at that rate (amount/h, duration F*AMT/RATE); -1 the rate is
    #: the model parameter ``R<cmt>``; -2 the duration is the model parameter ``D<cmt>``.
    rate: Float[Array, "... D"]
    cmt: Int[Array, "... D"]
    ii: Float[Array, "... D"]
    addl: Int[Array, "... D"]
    ss: Bool[Array, "... D"]
    order: Float[Array, "... D"]
    epoch: Int[Array, "... D"]
    mask: Bool[Array, "... D"]
    trains: bool = eqx.field(static=True, default=True)
    #: False only when no record is known to be an infusion (``rate == 0`` everywhere), as
    #: :func:`merge_regular` finds.
    infusions: bool = eqx.field(static=True, default=True)
    #: The first ``singles`` columns are single doses (no ADDL, no SS) in every subject, as
    #: :func:`merge_regular` lays them out; a kernel may give them its single-dose path.
    singles: int = eqx.field(static=True, default=0)


#: The per-dose array fields of :class:`Doses` (``trains`` is a static flag about all of them).
DOSE_ARRAYS = ("time", "amt", "rate", "cmt", "ii", "addl", "ss", "order", "epoch", "mask")


class Sampling(eqx.Module):
    """Times at which concentrations are wanted, shape ``(..., O)``."""

    time: Float[Array, "... O"]
    order: Float[Array, "... O"]
    epoch: Int[Array, "... O"]


def any_changes(changes: Sampling | None) -> bool:
    """Whether change events ``changes`` (a kernel's ``prepare(..., changes)``; padding has epoch -1)
    hold any change, in numpy (outside jit)."""
    return changes is not None and bool((np.asarray(changes.epoch) >= 0).any())


def as_row(doses: Doses) -> Doses:
    """One subject's dose trains ``(D,)`` as a row ``(1, D)``, to broadcast against samples ``(O, 1)``
    without implicit rank promotion (JAX strict mode); arrays already 2-D are left as they are."""
    return jax.tree_util.tree_map(lambda x: x[None, :] if jnp.ndim(x) == 1 else x, doses)


def train_position(doses: Doses, t_first, sampling_time, sampling_order, sampling_epoch, t_anchor=None):
    """The engine's one rule for where a sample stands in each dose train (module docstring).

    For each (sample, dose train): the doses given so far, the time since the last one and whether
    the train acts on the sample. ``t_first`` is each train's first event time (lag applied where a
    kernel has one; for the ends of an infusion train, its first end). A steady-state train acts from
    its record on: from ``t_anchor`` (default the record's time), with its infinitely many earlier
    events then all in the past. Shapes broadcast: samples along axis 0, trains along axis 1. Returns
    ``(count, dt, active)``; ``count`` is ``inf`` for steady-state trains. Works on numpy and traced
    arrays alike (jax.numpy).
    """
    doses = as_row(doses)
    t_first = jnp.reshape(t_first, (1, -1))
    anchor = doses.time if t_anchor is None else jnp.reshape(t_anchor, (1, -1))
    t = sampling_time[:, None]
    sampling_order, sampling_epoch = sampling_order[:, None], sampling_epoch[:, None]
    has_ii = doses.ii > 0
    ii_s = jnp.where(has_ii, doses.ii, 1.0)
    u = (t - t_first) / ii_s
    at_first = jnp.abs(t - t_first) <= _TIME_TOL * jnp.maximum(1.0, jnp.abs(t))
    first_counts = at_first & (doses.order < sampling_order)
    # k_last: index of the last dose given strictly before t (ties: first dose by record order).
    k_last = jnp.where(has_ii, jnp.ceil(u - _TIME_TOL) - 1.0, jnp.where(t > t_first, 0.0, -1.0))
    k_last = jnp.where(first_counts, jnp.maximum(k_last, 0.0), k_last)
    k_last = jnp.minimum(k_last, doses.addl.astype(float))
    same = (doses.epoch == sampling_epoch) & doses.mask
    at_anchor = jnp.abs(t - anchor) <= _TIME_TOL * jnp.maximum(1.0, jnp.abs(t))
    after_anchor = (t > anchor) & ~at_anchor | (at_anchor & (doses.order < sampling_order))
    active = same & jnp.where(doses.ss, after_anchor, k_last >= 0)
    count = jnp.where(doses.ss, jnp.inf, k_last + 1.0)
    dt = jnp.where(active, t - (t_first + k_last * jnp.where(has_ii, doses.ii, 0.0)), 0.0)
    count = jnp.where(active, count, 0.0)
    return count, dt, active


def time_after_dose(doses: Doses, sampling: Sampling) -> tuple[np.ndarray, np.ndarray]:
    """Hours since the latest dose acting on each sample, and the doses given before it, ``(N, O)`` each.

    The same rule as every kernel (:func:`train_position`, nominal dose times, no lag): a dose counts
    when it comes before the sample (at the same time, when its record comes first), within the
    sample's epoch (resets and SS records start one); a sample at a dosing time is the trough before
    that dose. ``NaN`` time after dose (and 0 doses) for a sample no dose acts on; a steady-state train
    counts as infinitely many doses (``inf``).

    Examples
    --------
    >>> import numpy as np
    >>> row = lambda *v, dtype=float: np.asarray([v], dtype=dtype)
    >>> doses = Doses(time=row(0.0), amt=row(100.0), rate=row(0.0), cmt=row(1, dtype=int), ii=row(12.0), addl=row(3, dtype=int),
    ...               ss=row(False, dtype=bool), order=row(0.0), epoch=row(0, dtype=int), mask=row(True, dtype=bool))
    >>> sampling = Sampling(time=row(6.0, 24.0, 50.0), order=row(1.0, 2.0, 3.0), epoch=row(0, 0, 0, dtype=int))
    >>> tad, n = time_after_dose(doses, sampling)
    >>> tad.tolist(), n.tolist()
    ([[6.0, 12.0, 14.0]], [[1.0, 2.0, 4.0]])
    """
    t = np.asarray(sampling.time, dtype=float)
    n_sub = t.shape[0]
    tad = np.full(t.shape, np.nan)
    count = np.zeros(t.shape)
    for i in range(n_sub):
        d = Doses(**{name: np.asarray(getattr(doses, name))[i] for name in DOSE_ARRAYS})
        c, dt, active = (np.asarray(x) for x in train_position(
            d, np.asarray(d.time, dtype=float), t[i], np.asarray(sampling.order)[i], np.asarray(sampling.epoch)[i]))
        count[i] = np.where(active, c, 0.0).sum(axis=1)
        gaps = np.where(active, dt, np.inf).min(axis=1, initial=np.inf)
        tad[i] = np.where(np.isfinite(gaps), gaps, np.nan)
    return tad, count


def expand_trains(doses: Doses) -> Doses:
    """One entry per administered dose (``addl`` becomes 0), padded, in numpy.

    The first dose of an SS=1 train keeps ``ss`` (with its ``ii``) so that an
    ODE kernel can set the steady state before it; additional doses get
    ``order = ADDL_ORDER``.
    """
    t = np.asarray(doses.time)
    if t.ndim != 2:
        raise EventError(f"expand_trains expects doses of shape (N, D), got {t.shape}")
    addl = np.where(np.asarray(doses.mask), np.asarray(doses.addl), -1)
    counts = (addl + 1).sum(axis=1)
    width = max(int(counts.max()) if counts.size else 0, 1)
    n = t.shape[0]
    out = {
        "time": np.zeros((n, width)),
        "amt": np.zeros((n, width)),
        "rate": np.zeros((n, width)),
        "cmt": np.full((n, width), DEPOT, dtype=np.int64),
        "ii": np.zeros((n, width)),
        "addl": np.zeros((n, width), dtype=np.int64),
        "ss": np.zeros((n, width), dtype=bool),
        "order": np.full((n, width), ADDL_ORDER),
        "epoch": np.full((n, width), -1, dtype=np.int64),
        "mask": np.zeros((n, width), dtype=bool),
    }
    src = {name: np.asarray(getattr(doses, name)) for name in out}
    for i in range(n):
        j = 0
        for d in range(t.shape[1]):
            if addl[i, d] < 0:
                continue
            k = np.arange(addl[i, d] + 1)
            sl = slice(j, j + k.size)
            out["time"][i, sl] = src["time"][i, d] + k * src["ii"][i, d]
            for name in ("amt", "rate", "cmt", "ii", "epoch", "mask"):
                out[name][i, sl] = src[name][i, d]
            out["order"][i, sl] = np.where(k == 0, src["order"][i, d], ADDL_ORDER)
            out["ss"][i, sl] = (k == 0) & src["ss"][i, d]
            j += k.size
    return Doses(**{name: np.asarray(v) for name, v in out.items()})


def merge_regular(doses: Doses, tol: float = 1e-9, *, absorbing=(DEPOT,), sampling: Sampling | None = None) -> Doses:
    """Runs of single doses at a regular interval merged into ADDL trains, in numpy.

    A run is two or more records without SS or ADDL, of the same amount, rate, compartment and epoch,
    each ``ii`` after the last (to ``tol`` relative). A closed form then sums the run as a geometric
    series instead of dose by dose. That is exact when whether a sample at a dose time counts the dose
    (record order) cannot change the concentration: for doses into an ``absorbing`` compartment (a
    depot) and infusions, which contribute nothing at their own instant, and, given ``sampling``, for
    bolus doses none of whose times is a sampling time of the same subject. Other runs, SS and ADDL
    records are left as they are.

    Examples
    --------
    >>> import numpy as np
    >>> row = lambda *v, dtype=float: np.asarray([v], dtype=dtype)
    >>> doses = Doses(time=row(0.0, 12.0, 24.0), amt=row(5.0, 5.0, 5.0), rate=row(0.0, 0.0, 0.0),
    ...               cmt=row(1, 1, 1, dtype=int), ii=row(0.0, 0.0, 0.0), addl=row(0, 0, 0, dtype=int),
    ...               ss=row(False, False, False, dtype=bool), order=row(0.0, 1.0, 2.0),
    ...               epoch=row(0, 0, 0, dtype=int), mask=row(True, True, True, dtype=bool))
    >>> merged = merge_regular(doses)
    >>> merged.addl.tolist(), merged.ii.tolist()
    ([[2]], [[12.0]])
    """
    try:
        src = {name: np.asarray(getattr(doses, name)) for name in DOSE_ARRAYS}
    except Exception:  # traced arrays (inside jit): nothing to merge here
        return doses
    if src["time"].ndim != 2:
        return doses
    n = src["time"].shape[0]
    rows = []
    for i in range(n):
        sample_times = None
        if sampling is not None:
            st = np.asarray(sampling.time)[i]
            sample_times = st[np.asarray(sampling.epoch)[i] >= 0]

        def mergeable(d, i=i, sample_times=sample_times):
            if src["ss"][i, d] or src["addl"][i, d] != 0:
                return False
            if src["cmt"][i, d] in absorbing or src["rate"][i, d] != 0:
                return True
            if sample_times is None:
                return False
            scale = max(1.0, abs(float(src["time"][i, d])))
            return not (np.abs(sample_times - src["time"][i, d]) <= tol * scale).any()

        idx = [d for d in np.lexsort((src["order"][i], src["time"][i], src["epoch"][i])) if src["mask"][i, d]]
        entries, j = [], 0
        while j < len(idx):
            d = idx[j]
            entry = {name: src[name][i, d] for name in src}
            run = 1
            if mergeable(d):
                gap = None
                while j + run < len(idx):
                    e, prev = idx[j + run], idx[j + run - 1]
                    if not (mergeable(e) and all(src[k][i, e] == src[k][i, d] for k in ("amt", "rate", "cmt", "epoch"))):
                        break
                    step = src["time"][i, e] - src["time"][i, prev]
                    scale = max(1.0, abs(float(src["time"][i, e])))
                    if step <= tol * scale or (gap is not None and abs(step - gap) > tol * scale):
                        break
                    gap = step if gap is None else gap
                    run += 1
                if run > 1:
                    entry["ii"], entry["addl"] = (src["time"][i, idx[j + run - 1]] - src["time"][i, d]) / (run - 1), run - 1
            entries.append(entry)
            j += run
        rows.append(entries)
    # Single doses first, in the same columns for every subject, then the trains: a kernel can give the
    # single doses the cheaper path (``Doses.singles``).
    is_train = lambda e: bool(e["ss"]) or e["addl"] != 0  # noqa: E731
    rows = [([e for e in r if not is_train(e)], [e for e in r if is_train(e)]) for r in rows]
    n_single = max([len(s) for s, _ in rows] + [0])
    n_train = max([len(t) for _, t in rows] + [0])
    width = max(n_single + n_train, 1)
    out = {name: np.zeros((n, width), dtype=src[name].dtype) for name in src}
    out["epoch"][:] = -1
    for i, (single, train) in enumerate(rows):
        for k, entry in [*enumerate(single), *((n_single + k, e) for k, e in enumerate(train))]:
            for name, value in entry.items():
                out[name][i, k] = value
    trains = n_train > 0
    return Doses(**out, trains=trains, infusions=bool((out["rate"] != 0)[out["mask"]].any()),
                 singles=n_single if trains else 0)
