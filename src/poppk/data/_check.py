"""Validation of NONMEM-style records: every violation, with row and column.

Rules are collected, not raised one by one (as Pharmpy's ``check_dataset``):
the user sees every problem of the file at once. Rows are numbered from 1 for
the first data row after the header (spreadsheet row = row + 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import DatasetError, Violation
from ._read import REQUIRED, STANDARD, to_numeric_column

#: Report at most this many rows per rule, then a count of the rest.
MAX_ROWS_PER_RULE = 25
KNOWN_EVID = (0, 1, 2, 3, 4)


class _Collector:
    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self._counts: dict[tuple[str | None, str], int] = {}

    def add(self, rows: np.ndarray | list[int] | None, column: str | None, message: str) -> None:
        """Record a rule broken on ``rows`` (0-based positions; reported 1-based)."""
        if rows is None:
            self.violations.append(Violation(None, column, message))
            return
        rows = [int(r) for r in np.atleast_1d(rows)]
        for r in rows[:MAX_ROWS_PER_RULE]:
            self.violations.append(Violation(r + 1, column, message))
        if len(rows) > MAX_ROWS_PER_RULE:
            more = len(rows) - MAX_ROWS_PER_RULE
            self.violations.append(Violation(None, column, f"... and {more} more rows: {message}"))

    def where(self, mask: np.ndarray, column: str | None, message: str | Callable[[int], str]) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        if callable(message):
            shown = idx[:MAX_ROWS_PER_RULE]
            for r in shown:
                self.violations.append(Violation(int(r) + 1, column, message(int(r))))
            if idx.size > MAX_ROWS_PER_RULE:
                self.violations.append(Violation(None, column, f"... and {idx.size - shown.size} more rows like these"))
        else:
            self.add(idx, column, message)


def _parse_ids(raw: pd.Series) -> np.ndarray:
    text = raw.astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce")
    if num.notna().all():
        values = num.to_numpy(dtype=float)
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    return text.to_numpy(dtype=object)


def check_records(
    frame: pd.DataFrame, *, lloq: float | None = None, source: str | None = None, sorted_times: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """Validate records and return them numeric, with every standard column filled.

    Parameters
    ----------
    frame : DataFrame
        Records with normalised column names (strings or numbers).
    lloq : float, optional
        Lower limit of quantification for every BLQ record (concentration
        unit), used where the data have no LLOQ column.
    source : str, optional
        File name for messages.
    sorted_times : bool
        Whether TIME going backwards within an ID is a violation (NCA checks
        it per subject instead, so one bad subject does not stop the rest).

    Returns
    -------
    records : DataFrame
        ID (int or str), the standard columns as floats, and every other
        column (numeric ones parsed, the rest as text), in the input order.
    warnings : list of str
        What is legal but worth a look.

    Raises
    ------
    DatasetError
        With every violation found, each naming its row and column.
    """
    v = _Collector()
    warnings: list[str] = []
    n = len(frame)
    missing_required = [c for c in (*REQUIRED, "AMT") if c not in frame.columns]
    for col in missing_required:
        v.add(None, col, "required column is missing")
    if missing_required:
        raise DatasetError(v.violations, source=source)

    out = pd.DataFrame(index=pd.RangeIndex(n))
    ids_raw = frame["ID"].astype(str).str.strip()
    id_missing = ids_raw.str.upper().isin({"", ".", "NA", "NAN"}).to_numpy()
    v.where(id_missing, "ID", "ID is missing")

    num: dict[str, np.ndarray] = {}
    unparsable: dict[str, np.ndarray] = {}
    present = {c for c in STANDARD if c in frame.columns}
    for col in STANDARD:
        if col == "ID" or col not in present:
            continue
        values, bad = to_numeric_column(frame[col])
        v.where(bad, col, lambda r, col=col, values=values: (
            f"not a finite number: {frame[col].iloc[r]!r}" if np.isinf(values[r]) else
            f"not a number: {frame[col].iloc[r]!r}"))
        num[col] = values
        unparsable[col] = bad

    time = num["TIME"]
    v.where(np.isnan(time) & ~unparsable["TIME"], "TIME", "TIME is missing")
    v.where(time < 0, "TIME", "TIME is negative")

    amt = num["AMT"]
    v.where(amt < 0, "AMT", "AMT is negative")
    amt0 = np.nan_to_num(amt, nan=0.0)

    if "EVID" in num:
        evid = num["EVID"]
        v.where(np.isnan(evid) & ~unparsable["EVID"], "EVID", "EVID is missing")
        v.where(~np.isnan(evid) & ~np.isin(evid, KNOWN_EVID), "EVID",
                lambda r: f"unknown EVID {evid[r]:g} (use 0 observation, 1 dose, 2 other, 3 reset, 4 reset and dose)")
        evid = np.nan_to_num(evid, nan=0.0)
    else:
        evid = np.where(amt0 > 0, 1.0, 0.0)
    is_dose = np.isin(evid, (1, 4))
    is_obs = evid == 0

    dv = num["DV"]
    if "MDV" in num:
        mdv = num["MDV"]
        v.where(np.isnan(mdv) & ~unparsable["MDV"], "MDV", "MDV is missing")
        v.where(~np.isnan(mdv) & ~np.isin(mdv, (0, 1)), "MDV", lambda r: f"MDV must be 0 or 1, not {mdv[r]:g}")
        mdv = np.nan_to_num(mdv, nan=1.0)
        v.where(is_dose & (mdv == 0), "MDV", "dose record (EVID 1 or 4) must have MDV=1")
    else:
        mdv = np.where(is_obs & ~np.isnan(dv), 0.0, 1.0)
        derived = is_obs & np.isnan(dv)
        if derived.any():
            warnings.append(
                f"no MDV column: {int(derived.sum())} observation row(s) with missing DV set to MDV=1 (not fitted)"
            )

    v.where(is_dose & (amt0 <= 0), "AMT", "dose record (EVID 1 or 4) without a positive AMT")
    v.where(is_obs & (amt0 > 0), "AMT", "observation record (EVID 0) with AMT > 0; set EVID=1 for a dose")

    if "CMT" in num:
        # Compartment numbers are the model's (NONMEM's ADVAN numbering): which ones exist is checked
        # against the structural model when one is used (poppk.pk.dose_problems), not here.
        cmt = num["CMT"]
        whole = ~np.isnan(cmt) & (cmt == np.round(cmt))
        v.where(is_dose & ~np.isnan(cmt) & ~(whole & (cmt >= 1)), "CMT",
                lambda r: f"dose compartment CMT must be a whole number >= 1, not {cmt[r]:g}")
        v.where(is_obs & ~np.isnan(cmt) & ~(whole & (cmt >= 0)), "CMT",
                lambda r: f"observation compartment CMT must be a whole number >= 0, not {cmt[r]:g}")
        cmt = np.where(is_dose, np.nan_to_num(cmt, nan=1.0), np.nan_to_num(cmt, nan=0.0))
    else:
        cmt = np.where(is_dose, 1.0, 0.0)

    ii = np.nan_to_num(num.get("II", np.zeros(n)), nan=0.0)
    v.where(ii < 0, "II", "II is negative")
    addl = np.nan_to_num(num.get("ADDL", np.zeros(n)), nan=0.0)
    v.where((addl < 0) | (addl != np.round(addl)), "ADDL", lambda r: f"ADDL must be a whole number >= 0, not {addl[r]:g}")
    v.where((addl > 0) & ~is_dose, "ADDL", "ADDL on a record that is not a dose")
    v.where(is_dose & (addl > 0) & (ii <= 0), "II", "II is missing or 0 where ADDL > 0 needs a dosing interval")
    ss = np.nan_to_num(num.get("SS", np.zeros(n)), nan=0.0)
    v.where(~np.isin(ss, (0, 1, 2)), "SS", lambda r: f"SS must be 0, 1 or 2 (SS=3 is not supported), not {ss[r]:g}")
    v.where((ss > 0) & ~is_dose, "SS", lambda r: f"SS={ss[r]:g} on a record that is not a dose")
    v.where(is_dose & (ss > 0) & (ii <= 0), "II",
            "II is missing or 0 where SS needs a dosing interval (a constant infusion at steady state, "
            "SS with II=0, is not supported)")
    rate = np.nan_to_num(num.get("RATE", np.zeros(n)), nan=0.0)
    v.where(is_dose & ~((rate >= 0) | np.isin(rate, (-1, -2))), "RATE",
            lambda r: f"RATE must be 0 (bolus), > 0 (infusion rate), -1 (modelled rate R) or -2 (modelled duration D), "
                      f"not {rate[r]:g}")
    v.where(~is_dose & (rate != 0), "RATE", lambda r: f"RATE={rate[r]:g} on a record that is not a dose")

    blq_col = num.get("BLQ")
    lloq_col = num.get("LLOQ")
    if blq_col is not None:
        v.where(~np.isnan(blq_col) & ~np.isin(blq_col, (0, 1)), "BLQ", lambda r: f"BLQ must be 0 or 1, not {blq_col[r]:g}")
        blq = np.nan_to_num(blq_col, nan=0.0) == 1
    elif lloq_col is not None:
        blq = is_obs & ~np.isnan(lloq_col) & (np.isnan(dv) | (dv < lloq_col))
        if blq.any():
            warnings.append(f"no BLQ column: {int(blq.sum())} observation(s) with DV < LLOQ (or missing) flagged BLQ")
    else:
        blq = np.zeros(n, dtype=bool)
    blq = blq & is_obs
    lloq_v = lloq_col.copy() if lloq_col is not None else np.full(n, np.nan)
    if lloq is not None:
        lloq_v = np.where(np.isnan(lloq_v), float(lloq), lloq_v)
    v.where(blq & (np.isnan(lloq_v) | (lloq_v <= 0)), "LLOQ",
            "BLQ record without a positive LLOQ (add an LLOQ column, or give the file's LLOQ: lloq=)")
    fitted = is_obs & (mdv == 0)
    v.where(fitted & ~blq & np.isnan(dv), "DV", "observation with MDV=0 has no DV")

    # Order within subjects: contiguous blocks, time never going backwards.
    ids = _parse_ids(frame["ID"])
    id_key = pd.Series(ids_raw.to_numpy())
    block_start = np.r_[True, id_key.to_numpy()[1:] != id_key.to_numpy()[:-1]]
    first_block: dict[str, int] = {}
    for r in np.flatnonzero(block_start):
        key = id_key.iloc[r]
        if key in first_block and not id_missing[r]:
            v.add([r], "ID", f"ID {key} appears again after other IDs (first block starts at row {first_block[key] + 1}); "
                             "sort the records by ID then TIME")
        first_block.setdefault(key, r)
    same_id = ~block_start
    back = np.r_[False, same_id[1:] & (time[1:] < time[:-1])] & sorted_times
    v.where(back, "TIME", lambda r: f"TIME goes backwards within ID {id_key.iloc[r]} ({time[r - 1]:g} -> {time[r]:g})")

    dup_cols = [c for c in frame.columns]
    dup = frame.duplicated(subset=dup_cols, keep="first").to_numpy()
    if dup.any():
        firsts = frame.duplicated(subset=dup_cols, keep=False).to_numpy()
        keyed = frame[dup_cols].astype(str).agg("\x1f".join, axis=1)
        first_of = {k: i for i, k in reversed(list(enumerate(keyed))) if firsts[i]}
        v.where(dup, None, lambda r: f"duplicated record (same as row {first_of[keyed.iloc[r]] + 1})")

    if v.violations:
        raise DatasetError(v.violations, source=source)

    out["ID"] = ids
    out["TIME"] = time
    out["AMT"] = amt0
    out["DV"] = dv
    out["EVID"] = evid.astype(np.int64)
    out["MDV"] = mdv.astype(np.int64)
    out["CMT"] = cmt.astype(np.int64)
    out["II"] = ii
    out["ADDL"] = addl.astype(np.int64)
    out["SS"] = ss.astype(np.int64)
    out["RATE"] = rate
    out["BLQ"] = blq.astype(np.int64)
    out["LLOQ"] = lloq_v
    for col in frame.columns:
        if col in STANDARD:
            continue
        values, bad = to_numeric_column(frame[col])
        out[col] = values if not bad.any() else frame[col].to_numpy()

    for key, sub in out.groupby("ID", sort=False):
        obs = sub[(sub["EVID"] == 0) & (sub["MDV"] == 0)]
        doses = sub[sub["EVID"].isin((1, 4))]
        if obs.empty:
            warnings.append(f"ID {key}: no fitted observations (kept)")
        if not doses.empty and not obs.empty and obs["TIME"].min() < doses["TIME"].min():
            k = int((obs["TIME"] < doses["TIME"].min()).sum())
            warnings.append(f"ID {key}: {k} observation(s) before the first dose (kept)")
        if doses.empty:
            warnings.append(f"ID {key}: no dose records")
    return out, warnings
