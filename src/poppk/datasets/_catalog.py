"""The catalogue of bundled files and the functions that find, load and export them."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).parent


@dataclass(frozen=True)
class Entry:
    """A bundled file: ``kind`` is ``records`` (NONMEM), ``table`` or ``json``."""

    file: str
    description: str
    kind: str = "table"
    dose_unit: str | None = None
    conc_unit: str | None = None
    lloq: float | None = None


CATALOG: dict[str, Entry] = {
    "lxi15029": Entry(
        "lxi15029.csv",
        "LXI-15029 phase I, reconstructed: 24 patients, 7 cohorts 10-150 mg BID (AMT mg, DV ng/mL, LLOQ 1)",
        "records", "mg", "ng/mL", 1.0),
    "lxi15029_ae": Entry("lxi15029_ae.csv", "LXI-15029 reconstructed: max CTCAE grade per adverse event and DLT"),
    "lxi15029_efficacy": Entry("lxi15029_efficacy.csv",
                               "LXI-15029 reconstructed: best response, disease control, PFS (days; the scan "
                               "before progression in PFS_LO_DAYS) and tumour type"),
    "lxi15029_truth": Entry("lxi15029_truth.json", "LXI-15029 reconstructed: generating model and true parameters",
                            "json"),
    "lxi15029_paper_table2": Entry("lxi15029_paper_table2.csv", "LXI-15029 paper, Table 2: adverse events by cohort"),
    "lxi15029_paper_table3": Entry("lxi15029_paper_table3.csv", "LXI-15029 paper, Table 3: single-dose NCA by cohort"),
    "lxi15029_paper_table4": Entry("lxi15029_paper_table4.csv",
                                   "LXI-15029 paper, Table 4: steady-state NCA by cohort"),
    "theophylline": Entry(
        "theophylline.csv",
        "Theophylline, single oral dose, 12 subjects (R datasets::Theoph; AMT = Dose x Wt in mg, DV mg/L)",
        "records", "mg", "mg/L"),
}


def names() -> list[str]:
    """Names of the bundled datasets."""
    return list(CATALOG)


def _entry(name: str) -> Entry:
    from ..errors import DatasetError

    try:
        return CATALOG[name]
    except KeyError:
        raise DatasetError(f"no bundled dataset {name!r}; choose one of {', '.join(CATALOG)}") from None


def path(name: str) -> Path:
    """Path of a bundled dataset's file."""
    return _HERE / _entry(name).file


def load(name: str, **kwargs):
    """Load a bundled dataset: a :class:`~poppk.PKDataset` for NONMEM records
    (in their declared units), a DataFrame for tables, a dict for JSON.

    >>> load("theophylline").n_subjects
    12
    """
    entry = _entry(name)
    if entry.kind == "records":
        from ..data import read_nonmem

        kwargs.setdefault("warn", False)
        return read_nonmem(path(name), dose_unit=entry.dose_unit, conc_unit=entry.conc_unit, lloq=entry.lloq,
                           **kwargs)
    if entry.kind == "json":
        return json.loads(path(name).read_text())
    import pandas as pd

    return pd.read_csv(path(name))


def export(name: str, target: str | Path) -> Path:
    """Copy a bundled dataset's file to ``target`` (a file, or a folder to put it in)."""
    src = path(name)
    target = Path(target)
    if target.is_dir():
        target = target / src.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target
