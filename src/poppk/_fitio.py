"""Fit folders on disk: written whole or not at all, read back with clear errors."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import xarray as xr

from .errors import FitError, PoppkError

FILES = ("posterior.nc", "summary.csv", "individual.csv", "diagnostics.json", "spec.toml", "data.csv", "fit.json")


def save_fit(fit, folder: str | Path, *, force: bool = False) -> Path:
    """Write the fit folder; refuse to overwrite unless ``force``; atomic (temp folder + rename)."""
    from ._config import check_interrupted
    from .fit import dumps

    check_interrupted()
    folder = Path(folder)
    if folder.exists() and not force:
        raise FitError(f"{folder} already exists; choose another --out or pass --force to replace it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        fit.tree.to_netcdf(tmp / "posterior.nc", engine="h5netcdf")
        summary = fit.summary()
        summary.to_csv(tmp / "summary.csv", index=False)
        fit.individual().to_csv(tmp / "individual.csv", index=False)
        (tmp / "diagnostics.json").write_text(dumps(fit.diagnostics()))
        (tmp / "spec.toml").write_text(fit.spec.text)
        fit.data.to_frame().to_csv(tmp / "data.csv", index=False, na_rep=".")
        (tmp / "fit.json").write_text(dumps(fit.info))
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


def load_fit(folder: str | Path):
    """Read a fit folder back into a :class:`~poppk.fit.Fit`."""
    from .data import read_nonmem
    from .fit import Fit
    from .model import parse_spec

    folder = Path(folder)
    if not folder.is_dir():
        raise FitError(f"{folder} is not a fit folder (no such directory)")
    missing = [f for f in ("posterior.nc", "spec.toml", "data.csv", "fit.json") if not (folder / f).exists()]
    if missing:
        raise FitError(f"{folder} is not a complete fit folder: missing {', '.join(missing)}")
    try:
        info = json.loads((folder / "fit.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FitError(f"{folder}/fit.json is damaged: {exc}") from None
    try:
        spec = parse_spec((folder / "spec.toml").read_text(), source=str(folder / "spec.toml"))
    except (PoppkError, UnicodeDecodeError) as exc:
        raise FitError(f"{folder}/spec.toml is damaged: {exc}") from None
    try:
        data = read_nonmem(folder / "data.csv", dose_unit=info["dose_unit"], conc_unit=info["conc_unit"], warn=False)
    except PoppkError as exc:
        raise FitError(f"{folder}/data.csv is damaged: {exc}") from None
    try:
        tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf").load()
    except Exception as exc:  # noqa: BLE001 - any reader failure means a damaged file
        raise FitError(f"{folder}/posterior.nc is damaged or not a posterior: {exc}") from None
    needed = {"posterior", "sample_stats", "log_likelihood"}
    if not needed <= set(tree.children):
        raise FitError(f"{folder}/posterior.nc lacks group(s) {', '.join(sorted(needed - set(tree.children)))}")
    info["prior_sd"] = {k: float(v) for k, v in info.get("prior_sd", {}).items()}
    return Fit(tree, spec, data, info)
