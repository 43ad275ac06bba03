"""``PKDataset``: validated records as padded per-subject arrays."""

from __future__ import annotations

import io
import os
import warnings as _warnings

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Bool, Float, Int

from .._runtime import configure_jax
from ..errors import DatasetError
from ..pk import ADDL_ORDER, Doses, Sampling, expand_trains
from ..units import check_conc_unit, check_dose_unit
from ._check import check_records
from ._read import MISSING_MARKERS, normalise_columns, read_csv_frame

STANDARD_OUT = ("ID", "TIME", "AMT", "RATE", "DV", "EVID", "MDV", "CMT", "II", "ADDL", "SS", "BLQ", "LLOQ")


class DatasetWarning(UserWarning):
    """Legal but noteworthy content in a dataset (the data are kept)."""


class PKDataset(eqx.Module):
    """Validated NONMEM-style data as padded arrays, one row per subject.

    Build one with :func:`read_nonmem` (a CSV file) or :func:`from_frame`.

    Attributes
    ----------
    doses : Doses
        Dose trains, shape ``(N, D)``.
    sampling : Sampling
        Observation and other non-dose records, shape ``(N, O)``.
    dv : (N, O) float
        Observed concentration (conc unit); NaN where missing.
    fit_mask : (N, O) bool
        Records that enter a likelihood (EVID 0, MDV 0).
    blq, lloq : (N, O)
        BLQ flag and limit of quantification (conc unit).
    present : (N, O) bool
        Real records (False for padding).
    row : (N, O) int
        0-based row of each record in the source file (-1 for padding).
    dose_row : (N, D) int
        Same for dose records.
    covariates : (N, C) float
        Baseline value of every covariate (first non-missing value); for a text column, the index of the
        value in its levels (:meth:`covariate_values` gives the text).
    obs_covariates, dose_covariates : (N, O, C), (N, D, C) float
        Every covariate on each record as read (NaN where missing, text as level indices): covariates
        that change within a subject (:attr:`varying_covariates`, :meth:`covariate_history`).
    ids : tuple
        Subject IDs in file order.
    covariate_names : tuple of str
    covariate_levels : tuple of (name, levels)
        The text columns among the covariates and their levels (sorted, as read).
    dose_unit, conc_unit : str
    evid, mdv, dose_evid, dose_ss, obs_cmt : int arrays, kept for the round trip to a DataFrame
        (``dose_ss`` the SS column: 1 or 2 where ``doses.ss``; ``obs_cmt`` observations' CMT as read, 0
        where there was none).
    """

    doses: Doses
    sampling: Sampling
    dv: Float[Array, "N O"]
    fit_mask: Bool[Array, "N O"]
    blq: Bool[Array, "N O"]
    lloq: Float[Array, "N O"]
    present: Bool[Array, "N O"]
    row: Int[Array, "N O"]
    evid: Int[Array, "N O"]
    mdv: Int[Array, "N O"]
    dose_row: Int[Array, "N D"]
    dose_evid: Int[Array, "N D"]
    dose_ss: Int[Array, "N D"]
    obs_cmt: Int[Array, "N O"]
    covariates: Float[Array, "N C"]
    obs_covariates: Float[Array, "N O C"]
    dose_covariates: Float[Array, "N D C"]
    ids: tuple = eqx.field(static=True)
    covariate_names: tuple = eqx.field(static=True)
    dose_unit: str = eqx.field(static=True, default="mg")
    conc_unit: str = eqx.field(static=True, default="mg/L")
    covariate_levels: tuple = eqx.field(static=True, default=())

    @property
    def n_subjects(self) -> int:
        return len(self.ids)

    @property
    def n_observations(self) -> int:
        """Number of records that enter the likelihood (BLQ included)."""
        return int(np.asarray(self.fit_mask).sum())

    @property
    def has_blq(self) -> bool:
        return bool(np.asarray(self.blq & self.fit_mask).any())

    def covariate(self, name: str) -> Float[Array, " N"]:
        """Baseline values of covariate ``name`` (case-insensitive), shape ``(N,)``; a text column's
        level indices (see :meth:`covariate_values`)."""
        return self.covariates[:, self._column(name)]

    def levels(self, name: str) -> tuple[str, ...] | None:
        """The levels of text covariate ``name`` (sorted), or None for a numeric one."""
        return next((lv for n, lv in self.covariate_levels if n.upper() == name.upper()), None)

    def covariate_values(self, name: str) -> np.ndarray:
        """Baseline values of covariate ``name`` as read, ``(N,)``: floats (NaN where missing), or for a
        text column an object array of strings (None where missing).

        >>> import pandas as pd, poppk
        >>> frame = pd.DataFrame({"ID": [1, 1, 2, 2], "TIME": [0, 1, 0, 1], "AMT": [100, 0, 100, 0],
        ...                       "DV": [".", 2.0, ".", 3.0], "EVID": [1, 0, 1, 0], "SEX": ["F", "F", "M", "M"]})
        >>> data = poppk.data.from_frame(frame)
        >>> data.covariate_values("SEX").tolist(), data.levels("SEX")
        (['F', 'M'], ('F', 'M'))
        """
        return self._as_read(name, np.asarray(self.covariate(name), dtype=float))

    def _column(self, name: str) -> int:
        for i, cov in enumerate(self.covariate_names):
            if cov.upper() == name.upper():
                return i
        raise DatasetError(f"no covariate {name!r}; the data have {', '.join(self.covariate_names) or 'none'}")

    def _as_read(self, name: str, values: np.ndarray) -> np.ndarray:
        """Stored values of covariate ``name`` (any shape) as read: text for a text column."""
        levels = self.levels(name)
        if levels is None:
            return values
        return np.vectorize(lambda v: None if np.isnan(v) else levels[int(v)], otypes=[object])(values)

    @property
    def varying_covariates(self) -> tuple[str, ...]:
        """The covariates whose (non-missing) value changes within at least one subject."""
        out = []
        for j, name in enumerate(self.covariate_names):
            both = np.concatenate([np.asarray(self.obs_covariates)[..., j], np.asarray(self.dose_covariates)[..., j]], axis=1)
            lo = np.where(np.isnan(both), np.inf, both).min(axis=1)
            hi = np.where(np.isnan(both), -np.inf, both).max(axis=1)
            if (hi > lo).any():
                out.append(name)
        return tuple(out)

    def covariate_history(self, names, interpolation: str = "locf") -> tuple[Sampling, dict[str, np.ndarray]]:
        """Piecewise-constant values of covariates ``names`` within each subject: the times they change
        and their values in each segment.

        Returns ``(changes, values)``: ``changes`` a :class:`~poppk.pk.Sampling` ``(N, K)`` of the times
        at which any of them changes (epoch -1 for padding), for a kernel's ``prepare``; ``values``
        ``{name: (N, K + 1)}`` as read (text as text), segment 0 before the first change (the baseline,
        :meth:`covariate_values`), padding segments repeating the last.

        ``interpolation``: ``"locf"``, a record's value acts from its time until the next change (missing
        values carry the last one forward); ``"nocb"``, over the interval that ends at the record
        (NONMEM's advance from one record to the next). Before a subject's first value, it acts.
        Records at the same time: the last one's value acts from that time (``locf``).

        >>> import pandas as pd, poppk
        >>> frame = pd.DataFrame({"ID": [1, 1, 1, 1], "TIME": [0, 2, 4, 6], "AMT": [100, 0, 0, 0],
        ...                       "DV": [".", 2.0, 1.5, 1.0], "EVID": [1, 0, 0, 0], "CRCL": [90, 90, 45, 45]})
        >>> data = poppk.data.from_frame(frame, warn=False)
        >>> changes, values = data.covariate_history(["CRCL"])
        >>> changes.time.tolist(), values["CRCL"].tolist()
        ([[4.0]], [[90.0, 45.0]])
        >>> data.covariate_history(["CRCL"], "nocb")[0].time.tolist()  # 45 acts from the record before it
        [[2.0]]
        """
        if interpolation not in ("locf", "nocb"):
            raise ValueError(f"interpolation must be 'locf' or 'nocb', got {interpolation!r}")
        cols = [self._column(n) for n in names]
        present, dmask = np.asarray(self.present), np.asarray(self.dose_row) >= 0
        n = self.n_subjects
        rows = []
        for i in range(n):
            o, d = present[i], dmask[i]
            row = np.concatenate([np.asarray(self.row[i])[o], np.asarray(self.dose_row[i])[d]])
            time = np.concatenate([np.asarray(self.sampling.time[i])[o], np.asarray(self.doses.time[i])[d]])
            epoch = np.concatenate([np.asarray(self.sampling.epoch[i])[o], np.asarray(self.doses.epoch[i])[d]])
            vals = np.concatenate([np.asarray(self.obs_covariates[i])[o][:, cols],
                                   np.asarray(self.dose_covariates[i])[d][:, cols]])
            by_row = np.argsort(row, kind="stable")
            row, time, epoch, vals = row[by_row], time[by_row], epoch[by_row], vals[by_row]
            vals = pd.DataFrame(vals).ffill().bfill().to_numpy()  # carried forward; the first value before it
            if vals.shape[0] == 0:
                rows.append(([], [], [], np.full((1, len(cols)), np.nan)))
                continue
            differs = np.zeros(len(row), bool)
            same = (vals[1:] == vals[:-1]) | (np.isnan(vals[1:]) & np.isnan(vals[:-1]))
            differs[1:] = ~same.all(axis=1)
            at = np.flatnonzero(differs)
            if interpolation == "nocb":
                start = at - 1  # the value of record j acts from the record before it
            else:
                start = at
            seg_time, seg_order, seg_epoch = time[start], row[start] - 0.5, epoch[start]
            seg_vals = np.concatenate([vals[:1], vals[at]]) if at.size else vals[:1]
            keep = np.ones(at.size, bool)  # several changes at one time: the last one acts from it
            keep[:-1] = seg_time[1:] > seg_time[:-1]
            seg_vals = np.concatenate([seg_vals[:1], seg_vals[1:][keep]])
            rows.append((seg_time[keep], seg_order[keep], seg_epoch[keep], seg_vals))
        k = max([len(r[0]) for r in rows] + [1])
        time, order, epoch = np.zeros((n, k)), np.zeros((n, k)), np.full((n, k), -1, dtype=np.int64)
        values = np.zeros((n, k + 1, len(cols)))
        for i, (t, o, e, v) in enumerate(rows):
            time[i, : len(t)], order[i, : len(t)], epoch[i, : len(t)] = t, o, e
            values[i, : len(v)] = v
            values[i, len(v):] = v[-1]
        out = {name: self._as_read(self.covariate_names[c], values[..., j]) for j, (name, c) in enumerate(zip(names, cols))}
        return Sampling(time=time, order=order, epoch=epoch), out

    def covariate_frame(self) -> pd.DataFrame:
        """One row per subject (``ID`` then each covariate's baseline value as read, text as text)."""
        out = pd.DataFrame({"ID": list(self.ids)})
        for name in self.covariate_names:
            out[name] = self.covariate_values(name)
        return out

    def expanded_doses(self) -> Doses:
        """One entry per administered dose (ADDL expanded), for the ODE kernels."""
        return expand_trains(self.doses)

    def subset(self, index) -> PKDataset:
        """The subjects at positions ``index`` (a list of ints), as a new dataset.

        Examples
        --------
        >>> import poppk
        >>> one = poppk.datasets.load("theophylline").subset([2])
        >>> one.n_subjects, one.ids
        (1, (3,))
        """
        import dataclasses

        import jax

        idx = np.atleast_1d(np.asarray(index))
        sliced = jax.tree_util.tree_map(lambda a: a[idx], self)
        return dataclasses.replace(sliced, ids=tuple(self.ids[i] for i in idx))

    def to_frame(self) -> pd.DataFrame:
        """The records as a NONMEM-style DataFrame, in their original order.

        Standard columns and covariates are written as read, record by record (text as text).
        """
        parts = []
        obs_cov, dose_cov = np.asarray(self.obs_covariates), np.asarray(self.dose_covariates)
        d = {k: np.asarray(getattr(self.doses, k)) for k in ("time", "amt", "rate", "cmt", "ii", "addl", "mask")}
        for i, sid in enumerate(self.ids):
            m = np.asarray(self.present[i])
            obs = pd.DataFrame({
                "ID": sid, "TIME": np.asarray(self.sampling.time[i])[m], "AMT": 0.0, "RATE": 0.0,
                "DV": np.asarray(self.dv[i])[m], "EVID": np.asarray(self.evid[i])[m],
                "MDV": np.asarray(self.mdv[i])[m], "CMT": np.asarray(self.obs_cmt[i])[m], "II": 0.0, "ADDL": 0, "SS": 0,
                "BLQ": np.asarray(self.blq[i])[m].astype(int), "LLOQ": np.asarray(self.lloq[i])[m],
                "_row": np.asarray(self.row[i])[m],
            })
            dm = d["mask"][i]
            dose = pd.DataFrame({
                "ID": sid, "TIME": d["time"][i][dm], "AMT": d["amt"][i][dm], "RATE": d["rate"][i][dm], "DV": np.nan,
                "EVID": np.asarray(self.dose_evid[i])[dm], "MDV": 1, "CMT": d["cmt"][i][dm],
                "II": d["ii"][i][dm], "ADDL": d["addl"][i][dm], "SS": np.asarray(self.dose_ss[i])[dm],
                "BLQ": 0, "LLOQ": np.nan, "_row": np.asarray(self.dose_row[i])[dm],
            })
            for j, name in enumerate(self.covariate_names):
                obs[name] = self._as_read(name, obs_cov[i][m][:, j])
                dose[name] = self._as_read(name, dose_cov[i][dm][:, j])
            parts.append(pd.concat([obs, dose], ignore_index=True))
        frame = pd.concat(parts, ignore_index=True).sort_values("_row", kind="stable")
        return frame.drop(columns="_row").reset_index(drop=True)


def _subject_arrays(records: pd.DataFrame, covariate_names: list[str]):
    groups = list(records.groupby("ID", sort=False))
    n = len(groups)
    is_dose_row = records["EVID"].isin((1, 3, 4)).to_numpy()
    n_obs = max(int((~is_dose_row[g.index]).sum()) for _, g in groups)
    n_dose = max(int(is_dose_row[g.index].sum()) for _, g in groups)
    n_obs, n_dose = max(n_obs, 1), max(n_dose, 1)

    obs = {
        "time": np.zeros((n, n_obs)), "order": np.full((n, n_obs), ADDL_ORDER * 2),
        "epoch": np.full((n, n_obs), -2, dtype=np.int64), "dv": np.full((n, n_obs), np.nan),
        "fit": np.zeros((n, n_obs), bool), "blq": np.zeros((n, n_obs), bool),
        "lloq": np.full((n, n_obs), np.nan), "present": np.zeros((n, n_obs), bool),
        "row": np.full((n, n_obs), -1, dtype=np.int64), "evid": np.zeros((n, n_obs), np.int64),
        "mdv": np.ones((n, n_obs), np.int64), "cmt": np.zeros((n, n_obs), np.int64),
    }
    dose = {
        "time": np.zeros((n, n_dose)), "amt": np.zeros((n, n_dose)), "rate": np.zeros((n, n_dose)),
        "cmt": np.ones((n, n_dose), np.int64), "ss_mode": np.zeros((n, n_dose), np.int64),
        "ii": np.zeros((n, n_dose)), "addl": np.zeros((n, n_dose), np.int64), "ss": np.zeros((n, n_dose), bool),
        "order": np.full((n, n_dose), ADDL_ORDER), "epoch": np.full((n, n_dose), -1, dtype=np.int64),
        "mask": np.zeros((n, n_dose), bool), "row": np.full((n, n_dose), -1, dtype=np.int64),
        "evid": np.ones((n, n_dose), np.int64),
    }
    cov = np.full((n, len(covariate_names)), np.nan)
    obs["cov"] = np.full((n, n_obs, len(covariate_names)), np.nan)
    dose["cov"] = np.full((n, n_dose, len(covariate_names)), np.nan)
    ids = []
    for i, (sid, g) in enumerate(groups):
        ids.append(sid.item() if hasattr(sid, "item") else sid)
        evid = g["EVID"].to_numpy()
        reset = np.isin(evid, (3, 4)) | ((g["SS"].to_numpy() == 1) & np.isin(evid, (1, 4)))
        epoch = np.cumsum(reset)
        rows = g.index.to_numpy()
        dmask = np.isin(evid, (1, 3, 4))
        o, dd = g[~dmask], g[dmask]
        k, kd = len(o), len(dd)
        obs["time"][i, :k] = o["TIME"]
        obs["order"][i, :k] = rows[~dmask]
        obs["epoch"][i, :k] = epoch[~dmask]
        obs["dv"][i, :k] = o["DV"]
        obs["fit"][i, :k] = (o["EVID"] == 0) & (o["MDV"] == 0)
        obs["blq"][i, :k] = o["BLQ"] == 1
        obs["lloq"][i, :k] = o["LLOQ"]
        obs["present"][i, :k] = True
        obs["row"][i, :k] = rows[~dmask]
        obs["evid"][i, :k] = o["EVID"]
        obs["mdv"][i, :k] = o["MDV"]
        obs["cmt"][i, :k] = o["CMT"]
        dose["time"][i, :kd] = dd["TIME"]
        dose["amt"][i, :kd] = dd["AMT"]
        dose["rate"][i, :kd] = dd["RATE"]
        dose["ss_mode"][i, :kd] = dd["SS"]
        dose["cmt"][i, :kd] = dd["CMT"]
        dose["ii"][i, :kd] = dd["II"]
        dose["addl"][i, :kd] = dd["ADDL"]
        dose["ss"][i, :kd] = dd["SS"] > 0  # SS=2 too; only SS=1 resets (a new epoch)
        dose["order"][i, :kd] = rows[dmask]
        dose["epoch"][i, :kd] = epoch[dmask]
        dose["mask"][i, :kd] = dd["EVID"] != 3  # EVID 3 resets only
        dose["row"][i, :kd] = rows[dmask]
        dose["evid"][i, :kd] = dd["EVID"]
        for j, name in enumerate(covariate_names):
            vals = g[name].to_numpy(dtype=float)
            obs["cov"][i, :k, j], dose["cov"][i, :kd, j] = vals[~dmask], vals[dmask]
            ok = vals[~np.isnan(vals)]
            if ok.size:
                cov[i, j] = ok[0]
    return ids, obs, dose, cov


def from_frame(
    frame: pd.DataFrame,
    *,
    dose_unit: str = "mg",
    conc_unit: str = "mg/L",
    lloq: float | None = None,
    source: str | None = None,
    warn: bool = True,
) -> PKDataset:
    """Validate NONMEM-style records in a DataFrame and build a :class:`PKDataset`.

    Parameters
    ----------
    frame : DataFrame
        Records with columns ID, TIME, AMT, DV and optionally EVID, MDV, CMT,
        II, ADDL, SS, RATE, BLQ (or CENS), LLOQ (or LOQ) and covariates;
        names are case-insensitive. Rows must be grouped by ID with TIME
        non-decreasing within each ID (nothing is reordered).
    dose_unit, conc_unit : str
        Units of AMT and DV (declared, never guessed).
    lloq : float, optional
        LLOQ (conc unit) for BLQ records where there is no LLOQ column.
    warn : bool
        Emit :class:`DatasetWarning` for legal but noteworthy content.

    Raises
    ------
    DatasetError
        Listing every violated rule with its row (1-based, after the header)
        and column.
    """
    configure_jax()
    check_dose_unit(dose_unit)
    check_conc_unit(conc_unit)
    frame = normalise_columns(frame.reset_index(drop=True), source)
    records, notes = check_records(frame, lloq=lloq, source=source)
    covariate_names = [c for c in records.columns if c not in STANDARD_OUT]
    levels = []
    for name in covariate_names:
        if records[name].dtype.kind not in "fiub":  # text: categories, coded by their sorted levels
            text = records[name].astype(str).str.strip()
            text = text.where(~text.str.upper().isin(MISSING_MARKERS))
            found = tuple(sorted(text.dropna().unique()))
            levels.append((name, found))
            records[name] = text.map({lv: float(k) for k, lv in enumerate(found)}).astype(float)
    for name in covariate_names:
        varies = records.groupby("ID", sort=False)[name].nunique(dropna=True)
        if (varies > 1).any():
            notes.append(f"covariate {name} changes within {int((varies > 1).sum())} subject(s) "
                         f"(IDs {list(varies[varies > 1].index)[:5]}): covariate effects on it act from each record "
                         "on (last observation carried forward) unless the model says otherwise (interpolation)")
    if warn:
        for note in notes:
            _warnings.warn(note, DatasetWarning, stacklevel=2)
    ids, obs, dose, cov = _subject_arrays(records, covariate_names)
    j = jnp.asarray
    return PKDataset(
        doses=Doses(time=j(dose["time"]), amt=j(dose["amt"]), rate=j(dose["rate"]), cmt=j(dose["cmt"]), ii=j(dose["ii"]),
                    addl=j(dose["addl"]), ss=j(dose["ss"]), order=j(dose["order"]), epoch=j(dose["epoch"]),
                    mask=j(dose["mask"])),
        sampling=Sampling(time=j(obs["time"]), order=j(obs["order"]), epoch=j(obs["epoch"])),
        dv=j(obs["dv"]), fit_mask=j(obs["fit"]), blq=j(obs["blq"]), lloq=j(obs["lloq"]),
        present=j(obs["present"]), row=j(obs["row"]), evid=j(obs["evid"]), mdv=j(obs["mdv"]),
        dose_row=j(dose["row"]), dose_evid=j(dose["evid"]), dose_ss=j(dose["ss_mode"]), obs_cmt=j(obs["cmt"]),
        covariates=j(cov), obs_covariates=j(obs["cov"]), dose_covariates=j(dose["cov"]),
        ids=tuple(ids), covariate_names=tuple(covariate_names), dose_unit=dose_unit, conc_unit=conc_unit,
        covariate_levels=tuple(levels),
    )


def read_nonmem(
    source: str | os.PathLike | io.IOBase,
    *,
    dose_unit: str = "mg",
    conc_unit: str = "mg/L",
    lloq: float | None = None,
    warn: bool = True,
) -> PKDataset:
    """Read a NONMEM-style CSV file into a validated :class:`PKDataset`.

    Examples
    --------
    >>> import poppk
    >>> data = poppk.read_nonmem(poppk.datasets.path("theophylline"), dose_unit="mg", conc_unit="mg/L")
    >>> data.n_subjects, data.n_observations
    (12, 132)
    """
    frame, name = read_csv_frame(source)
    return from_frame(frame, dose_unit=dose_unit, conc_unit=conc_unit, lloq=lloq, source=name, warn=warn)


def check_frame(source, *, lloq: float | None = None, sorted_times: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Validate NONMEM-style records from a CSV (path or file) or a DataFrame, without building arrays.

    Returns the numeric records (one row per input row, columns normalised) and the notes a reader
    would warn about. ``sorted_times=False`` accepts records out of time order within a subject (NCA).

    Raises
    ------
    DatasetError
        Every violated rule, with its row and column.

    Examples
    --------
    >>> import poppk
    >>> records, notes = poppk.data.check_frame(poppk.datasets.path("theophylline"))
    >>> len(records), [int(i) for i in sorted(records.ID.unique())[:3]]
    (144, [1, 2, 3])
    """
    if isinstance(source, pd.DataFrame):
        frame, name = normalise_columns(source.reset_index(drop=True)), None
    else:
        frame, name = read_csv_frame(source)
    return check_records(frame, lloq=lloq, source=name, sorted_times=sorted_times)


def read_records(source: str | os.PathLike | io.IOBase, *, lloq: float | None = None) -> pd.DataFrame:
    """Read and validate a CSV, returning the numeric records as a DataFrame (no arrays)."""
    frame, name = read_csv_frame(source)
    records, notes = check_records(frame, lloq=lloq, source=name)
    for note in notes:
        _warnings.warn(note, DatasetWarning, stacklevel=2)
    return records


__all__ = ["PKDataset", "DatasetWarning", "check_frame", "from_frame", "read_nonmem", "read_records", "DatasetError"]
