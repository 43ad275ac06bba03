"""The fit folder: the one definition of what ``poppk fit`` (or :meth:`poppk.Fit.save`) writes.

Every reader and writer of a fit folder goes through this module. A folder holds:

============================  ===================================================================
``posterior.nc``              the ArviZ DataTree (posterior, sample_stats, log_likelihood,
                              posterior_predictive, observed_data, constant_data), netCDF4/HDF5
``summary.csv``               population parameters: parameter, mean, sd, q5, q50, q95, ess_bulk,
                              ess_tail, r_hat, cv_pct, prior_sd_ratio
``individual.csv``            per ID: individual parameters (median, q5, q95) and, for repeated
                              dosing, steady-state exposure at the subject's regimen
``diagnostics.json``          divergences, R-hat, ESS, E-BFMI, shrinkage, warnings, the run
``spec.toml``                 the model specification, verbatim
``data.csv``                  the records fitted, as poppk read them
``fit.json``                  the :class:`FitRecord` (format version, how the fit was run)
``kernel.py``                 only for a user's own model (``[model] file``): a copy of its file,
                              which :func:`~poppk.load_fit` imports instead of the original
``estimates.csv``             only for ``method="laplace"``: parameter, estimate (the mode), se,
                              rse_pct, se_log, q5, q95 (the ``$COV`` step)
``correlation.csv``           only for ``method="laplace"``: correlations of the population
                              parameters on the optimiser's scale (log for positive ones)
``ebe.csv``                   only for ``method="laplace"``: per ID, individual parameters and etas
                              at the mode (EBEs)
============================  ===================================================================

Sub-folders written later by other commands: ``plots/`` and ``report.html`` (``poppk report``),
``simulations/`` (``poppk simulate``), ``tox/EVENT/`` (``poppk tox``), ``dosing/`` (``poppk dose``),
``export/`` (``poppk export``).

Versions: :data:`FORMAT_VERSION` is written into ``fit.json``. Folders written before versions
existed (no ``format_version``: format 0, the same files) are read and upgraded in memory with a
:class:`FitFolderWarning`; a folder of a newer format is refused with a :class:`~poppk.errors.FitError`.

Examples
--------
>>> from poppk.fit import folder
>>> folder.FORMAT_VERSION
1
>>> folder.REQUIRED
('posterior.nc', 'spec.toml', 'data.csv', 'fit.json')
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._runtime import check_interrupted
from ..errors import FitError

#: The format written by this poppk; readers accept formats 0 (unversioned) to this.
FORMAT_VERSION = 1
#: Every file of a fit folder, in the order they are written.
FILES = ("posterior.nc", "summary.csv", "individual.csv", "diagnostics.json", "spec.toml", "data.csv", "fit.json")
#: The files a folder must have to be read back.
REQUIRED = ("posterior.nc", "spec.toml", "data.csv", "fit.json")
#: The copy of a user's model file (``[model] file``), present only for fits of such a model.
KERNEL_FILE = "kernel.py"
#: Tables only a Laplace fit (``method="laplace"``) writes.
LAPLACE_FILES = ("estimates.csv", "correlation.csv", "ebe.csv")
#: Folders other commands add inside a fit folder.
SUBFOLDERS = ("plots", "simulations", "tox", "dosing", "export")
#: DataTree groups a fit folder's posterior must hold.
GROUPS = ("posterior", "sample_stats", "log_likelihood")


class FitFolderWarning(UserWarning):
    """A fit folder of an older format was read and upgraded in memory."""


@dataclass(frozen=True)
class FitRecord:
    """``fit.json``: what was fitted and how (typed; unknown keys are kept in ``extra``).

    Attributes
    ----------
    population : list of str
        Population parameters (typical values, covariate effects, omegas, residual SDs), in order.
    prior_sd : dict
        Prior SD of each population parameter (log scale for log-normal priors).
    log_scale : list of str
        Parameters whose prior SD is on the log scale.
    kernel_params : list of str
        Individual structural parameters (sites ``NAME_i``).
    dose_unit, conc_unit : str
        Units of the fitted data.
    format_version : int
        The fit-folder format (:data:`FORMAT_VERSION` when written by this poppk).
    chains, warmup, samples, seed : int
    extra : dict
        Every other run detail (sampler settings, timings, versions, pilot, warm start, command).
    """

    population: list
    prior_sd: dict
    log_scale: list
    kernel_params: list
    dose_unit: str
    conc_unit: str
    format_version: int = FORMAT_VERSION
    chains: int = 0
    warmup: int = 0
    samples: int = 0
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: dict, *, source: str = "fit.json") -> FitRecord:
        """A record from a fit's ``info`` dict (or a parsed ``fit.json``); :class:`FitError` naming the key
        when a required one is missing or has the wrong type."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kinds = {"population": list, "prior_sd": dict, "log_scale": list, "kernel_params": list,
                 "dose_unit": str, "conc_unit": str}
        for key, kind in kinds.items():
            if key not in info:
                raise FitError(f"{source}: missing key {key!r}")
            if not isinstance(info[key], kind):
                raise FitError(f"{source}: key {key!r} should be a {kind.__name__}, got {type(info[key]).__name__}")
        known = {k: info[k] for k in names if k in info}
        known["prior_sd"] = {k: float(v) for k, v in known["prior_sd"].items()}
        return cls(**known, extra={k: v for k, v in info.items() if k not in names})

    def to_info(self) -> dict:
        """The flat dict written as ``fit.json`` (and kept as ``Fit.info``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**out, **self.extra}


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def dumps(obj: Any) -> str:
    """JSON text of ``obj`` as fit folders write it (numpy scalars and arrays converted)."""
    return json.dumps(obj, indent=1, default=_json_default)


def write_folder(folder: str | Path, *, tree, summary, individual, diagnostics: dict, spec_text: str, data_frame,
                 record: FitRecord, kernel_file: str | Path | None = None, tables: dict | None = None,
                 force: bool = False) -> Path:
    """Write every file of :data:`FILES` into ``folder``, whole or not at all (a temporary folder renamed);
    ``tables``, ``{file name: DataFrame}``, adds method-specific tables (:data:`LAPLACE_FILES`).

    Raises
    ------
    FitError
        ``folder`` exists and ``force`` is False.
    """
    check_interrupted()
    folder = Path(folder)
    if folder.exists() and not force:
        raise FitError(f"{folder} already exists; choose another folder or replace it (force=True)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        tree.to_netcdf(tmp / "posterior.nc", engine="h5netcdf")
        summary.to_csv(tmp / "summary.csv", index=False)
        individual.to_csv(tmp / "individual.csv", index=False)
        (tmp / "diagnostics.json").write_text(dumps(diagnostics))
        (tmp / "spec.toml").write_text(spec_text)
        if kernel_file is not None:  # a user's model file travels with the fit (load_fit imports this copy)
            shutil.copyfile(kernel_file, tmp / KERNEL_FILE)
        data_frame.to_csv(tmp / "data.csv", index=False, na_rep=".")
        for name, table in (tables or {}).items():
            table.to_csv(tmp / name, index=name == "correlation.csv")
        (tmp / "fit.json").write_text(dumps(record.to_info()))
        check_interrupted()
        if folder.exists():
            backup = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            folder.rename(backup)
            tmp.rename(folder)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_record(folder: str | Path) -> FitRecord:
    """``folder/fit.json`` as a :class:`FitRecord`, upgraded from older formats.

    Raises
    ------
    FitError
        Not a fit folder, a required file missing, ``fit.json`` damaged, or a format newer than this poppk reads.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FitError(f"{folder} is not a fit folder (no such directory)")
    missing = [f for f in REQUIRED if not (folder / f).exists()]
    if missing:
        raise FitError(f"{folder} is not a complete fit folder: missing {', '.join(missing)}")
    try:
        info = json.loads((folder / "fit.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FitError(f"{folder}/fit.json is damaged: {exc}") from None
    if not isinstance(info, dict):
        raise FitError(f"{folder}/fit.json is damaged: not a JSON object")
    version = info.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise FitError(f"{folder}/fit.json: format_version {version!r} is not a whole number")
    if version > FORMAT_VERSION:
        raise FitError(f"{folder} is a fit folder of format {version}, written by a newer poppk; this poppk reads "
                       f"formats 0 to {FORMAT_VERSION}: upgrade poppk to read it")
    if version < 0:
        raise FitError(f"{folder}/fit.json: format_version {version} is not a fit-folder format")
    if version == 0:
        warnings.warn(f"{folder} was written before fit folders carried a format version (format 0); read as "
                      f"format {FORMAT_VERSION} (the same files). Save it again to upgrade it on disk.",
                      FitFolderWarning, stacklevel=2)
        info["format_version"] = FORMAT_VERSION
    return FitRecord.from_info(info, source=f"{folder}/fit.json")


def read_tree(folder: str | Path):
    """``folder/posterior.nc`` as an ``xarray.DataTree``, loaded into memory; FitError if damaged."""
    import xarray as xr

    folder = Path(folder)
    try:
        tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf").load()
    except Exception as exc:  # noqa: BLE001 - any reader failure means a damaged file
        raise FitError(f"{folder}/posterior.nc is damaged or not a posterior: {exc}") from None
    lacking = set(GROUPS) - set(tree.children)
    if lacking:
        raise FitError(f"{folder}/posterior.nc lacks group(s) {', '.join(sorted(lacking))}")
    return tree


__all__ = ["FILES", "FORMAT_VERSION", "FitFolderWarning", "FitRecord", "GROUPS", "LAPLACE_FILES", "REQUIRED",
           "SUBFOLDERS", "dumps", "read_record", "read_tree", "write_folder"]
