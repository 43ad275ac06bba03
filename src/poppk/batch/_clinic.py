"""PK-guided dose recommendations for a whole clinic: one task per patient file.

Each file in the folder holds one patient's NONMEM-style records (doses and measured concentrations,
units as the fit's data). Each task computes the patient's posterior (:func:`poppk.dosing.patient_posterior`)
and scores every candidate regimen against the target (:func:`poppk.dosing.recommend_dose`), as
``poppk dose --patient`` does for one patient. The table has one row per patient: the recommended
regimen, its probability of reaching the target (and of toxicity, given a ``poppk tox`` model), the
reason, and the posterior's effective sample size; each task folder keeps the patient's whole
``dose_options.csv``. Workers read the fit folder and the patient files, so on a cluster they must see
the same paths (a shared file system).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BatchError


@functools.lru_cache(maxsize=4)
def _load(fit_dir: str, tox_dir: str | None):
    """A worker's fit (and toxicity model), loaded once per process and reused for its patients."""
    from ..fit import load_fit
    from ..tox import ExposureResponse

    return load_fit(fit_dir), (ExposureResponse.load(tox_dir) if tox_dir else None)


def dose_patient(params: dict) -> dict:
    """One patient's recommendation (a task of :func:`clinic_doses`)."""
    from ..data import read_nonmem
    from ..dosing import patient_posterior, recommend_dose
    from ..simulate import Target

    t0 = time.perf_counter()
    fit, tox = _load(params["fit_dir"], params.get("tox_dir"))
    patient = read_nonmem(params["file"], dose_unit=fit.data.dose_unit, conc_unit=fit.data.conc_unit,
                          lloq=params.get("lloq"), warn=False)
    if patient.n_subjects != 1:
        raise BatchError(f"{params['file']}: {patient.n_subjects} patients; each file holds one patient's records")
    post = patient_posterior(fit, patient, method=params["method"], seed=params["seed"])
    rec = recommend_dose(fit, post, Target.parse(params["target"]), doses=params["doses"],
                         intervals=params["intervals"], tox=tox, max_tox_prob=params.get("max_tox_prob"),
                         route=params.get("route"), duration=params.get("duration", 0.0))
    chosen = rec.table[rec.table["recommended"]]
    row = {"file": Path(params["file"]).name, "ID": patient.ids[0], "recommended": rec.recommended or "",
           "reason": rec.reason, "method": post.method, "ess": np.nan if post.ess is None else round(float(post.ess), 1),
           "seconds": round(time.perf_counter() - t0, 2)}
    for col in chosen.columns.drop(["regimen", "recommended"]):
        row[col] = chosen[col].iloc[0] if len(chosen) else np.nan
    return {"row": row, "files": {"dose_options.csv": rec.table.to_csv(index=False)}}


def clinic_doses(fit_dir, patients, out, *, target: str, doses, intervals=(12.0,), method: str = "full",
                 tox: str | None = None, max_tox_prob: float | None = None, lloq: float | None = None,
                 route: str | None = None, duration: float = 0.0, seed: int = 0, workers: int = 1,
                 scheduler: str | None = None, cores_per_worker: int = 1, progress=print) -> pd.DataFrame:
    """Dose recommendations for every ``*.csv`` in the folder ``patients`` (see the module docstring).

    ``tox`` names a ``poppk tox`` model of the fit (``FIT/tox/EVENT``) for ``max_tox_prob``. Writes
    ``OUT/tasks/FILE/dose_options.csv`` and ``OUT/results.csv``; returns the table (one row per patient).

    Raises
    ------
    BatchError
        No patient files, a target that cannot be read, or a toxicity model that is not there -- before
        any patient is dosed; patients whose files fail are reported after the others are done.
    """
    from ..simulate import Target
    from ._engine import Task, run_tasks

    Target.parse(target)  # a bad target fails here, not in every task
    folder = Path(patients)
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        raise BatchError(f"{folder}: no patient files (*.csv, one patient's records each)")
    tox_dir = None
    if tox:
        tox_dir = Path(fit_dir) / "tox" / tox
        if not (tox_dir / "tox.json").exists():
            raise BatchError(f"no exposure-toxicity model {tox!r} in {Path(fit_dir) / 'tox'}; make it with "
                             f"poppk tox {fit_dir} --ae FILE --event {tox}")
    if max_tox_prob is not None and tox is None:
        raise BatchError("--max-tox-prob needs --tox EVENT (an exposure-toxicity model made by poppk tox)")
    common = {"fit_dir": str(Path(fit_dir).resolve()), "tox_dir": None if tox_dir is None else str(tox_dir.resolve()),
              "target": target, "doses": [float(d) for d in doses], "intervals": [float(i) for i in intervals],
              "method": method, "max_tox_prob": max_tox_prob, "lloq": lloq, "route": route, "duration": duration,
              "seed": seed}
    tasks = [Task(f.stem, {**common, "file": str(f.resolve())}) for f in files]
    settings = common | {"patients": str(folder.resolve())}
    result = run_tasks("clinic", tasks, dose_patient, out, settings=settings, workers=workers, scheduler=scheduler,
                       cores_per_worker=cores_per_worker, progress=progress,
                       describe=lambda row: row["recommended"] or "no regimen")
    return result.table


__all__ = ["clinic_doses", "dose_patient"]
