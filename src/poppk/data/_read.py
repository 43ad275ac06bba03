"""Reading NONMEM-style CSV files into a normalised DataFrame (the edge)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError, Violation

#: Standard columns, their defaults when absent, and accepted aliases.
STANDARD = ("ID", "TIME", "AMT", "DV", "EVID", "MDV", "CMT", "II", "ADDL", "SS", "RATE", "BLQ", "LLOQ")
ALIASES = {"CENS": "BLQ", "LOQ": "LLOQ"}
REQUIRED = ("ID", "TIME", "DV")
MISSING_MARKERS = {"", ".", "NA", "NAN", "NULL", "NONE"}


def _read_text(source: str | os.PathLike | io.IOBase) -> tuple[pd.DataFrame, str]:
    name = str(source) if isinstance(source, (str, os.PathLike)) else "<stream>"
    try:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise DatasetError(f"no such file: {path}", source=name)
            if path.is_dir():
                raise DatasetError(f"{path} is a folder, not a CSV file", source=name)
            raw = path.read_bytes()
        else:
            raw = source.read()
            raw = raw.encode() if isinstance(raw, str) else raw
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV", source=name
            ) from None
        if not text.strip():
            raise DatasetError("the file is empty", source=name)
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True, comment=None
        )
    except DatasetError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DatasetError(f"cannot parse the file as CSV: {exc}".strip(), source=name) from None
    return frame, name


def normalise_columns(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Upper-case standard column names (and aliases); keep other names as written."""
    rename: dict[str, str] = {}
    seen: dict[str, str] = {}
    problems = []
    for col in frame.columns:
        key = str(col).strip()
        upper = key.upper()
        upper = ALIASES.get(upper, upper)
        new = upper if upper in STANDARD else key
        if new.upper() in seen:
            problems.append(
                Violation(None, str(col), f"column name repeats {seen[new.upper()]!r} (names are case-insensitive)")
            )
        seen[new.upper()] = str(col)
        rename[col] = new
    if problems:
        raise DatasetError(problems, source=source)
    return frame.rename(columns=rename)


def to_numeric_column(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse strings to float; return (values, bad) where ``bad`` marks unparsable text.

    NONMEM's ``.`` and empty cells are missing (NaN), not errors; text that parses to an infinity
    (``inf``, ``1e400``) is an error: no PK quantity is infinite.
    """
    if values.dtype.kind in "fiub":
        arr = values.to_numpy(dtype=float)
        return arr, np.isinf(arr)
    text = values.astype(str).str.strip()
    missing = text.str.upper().isin(MISSING_MARKERS).to_numpy()
    parsed = pd.to_numeric(text.where(~missing, None), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(parsed) & ~missing
    return parsed, bad


def read_csv_frame(source: str | os.PathLike | io.IOBase) -> tuple[pd.DataFrame, str]:
    """Read a CSV as strings with normalised column names; returns (frame, source name)."""
    frame, name = _read_text(source)
    if frame.shape[0] == 0:
        raise DatasetError("the file has a header but no data rows", source=name)
    return normalise_columns(frame, name), name
