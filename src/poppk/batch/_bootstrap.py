"""Nonparametric bootstrap of a fit: subjects resampled with replacement, the model refitted to each.

Replicate ``b`` draws ``N`` subjects with replacement from the fit's ``N`` (within each stratum of
``strata``, keeping the strata's sizes, when given), renumbers them 1..N in the order drawn, and fits
the fit's own spec with its sampler settings (or those given), seeded by ``[seed, b]``. Each
replicate's estimate of a parameter is its posterior median, as a NONMEM bootstrap takes each
replicate's final estimate; :func:`bootstrap_summary` gives their percentiles beside the original fit's
median. For a Bayesian fit the posterior interval is itself the uncertainty statement; the bootstrap
answers the question reviewers ask of a population model -- how much the estimates move when the
trial's subjects are redrawn -- and shows estimates that depend on a few subjects.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..errors import BatchError
from ._engine import diagnostics_file, digest, spec_from, spec_payload


def resample_subjects(frame: pd.DataFrame, rng: np.random.Generator, strata: str | None = None) -> pd.DataFrame:
    """A bootstrap sample of the subjects of NONMEM-style ``frame``: IDs drawn with replacement (per
    stratum of the baseline value of column ``strata``), renumbered 1..N, each subject's records kept in
    their order.

    >>> f = pd.DataFrame({"ID": [7, 7, 9], "TIME": [0, 1, 0], "AMT": [1, 0, 1], "DV": [0, 2, 0]})
    >>> b = resample_subjects(f, np.random.default_rng(1))
    >>> sorted(b.ID.unique().tolist())
    [1, 2]
    """
    groups = {sid: g for sid, g in frame.groupby("ID", sort=False)}
    ids = list(groups)
    if strata is None:
        chosen = list(rng.choice(len(ids), size=len(ids), replace=True))
        drawn = [ids[i] for i in chosen]
    else:
        if strata not in frame.columns:
            raise BatchError(f"--strata {strata}: no such column; the data have {', '.join(frame.columns)}")
        level = {sid: g[strata].iloc[0] for sid, g in groups.items()}
        drawn = []
        for value in pd.unique(pd.Series(list(level.values()))):
            members = [sid for sid in ids if level[sid] == value or (pd.isna(value) and pd.isna(level[sid]))]
            drawn += [members[i] for i in rng.choice(len(members), size=len(members), replace=True)]
    parts = []
    for new_id, sid in enumerate(drawn, start=1):
        g = groups[sid].copy()
        g["ID"] = new_id
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


def bootstrap_replicate(params: dict) -> dict:
    """One replicate (a task of :func:`bootstrap`): resample, refit, keep each parameter's median."""
    from ..data import from_frame
    from ..fit import fit

    t0 = time.perf_counter()
    spec = spec_from(params)
    frame = pd.DataFrame(params["data"])
    sample = resample_subjects(frame, np.random.default_rng([params["seed"], params["replicate"]]), params.get("strata"))
    data = from_frame(sample, dose_unit=params["dose_unit"], conc_unit=params["conc_unit"], warn=False)
    f = fit(data, spec, chains=params["chains"], warmup=params["warmup"], samples=params["samples"],
            seed=params["seed"] + params["replicate"], progress=False, command="poppk bootstrap")
    diag = f.diagnostics()
    summary = f.summary()
    row = {"replicate": params["replicate"], "seconds": round(time.perf_counter() - t0, 1),
           "subjects": int(sample.ID.nunique()), "divergences": diag["divergences"], "max_r_hat": diag["max_r_hat"],
           "min_ess_bulk": diag["min_ess_bulk"], "converged": bool(diag["converged"])}
    row.update({str(p): float(q) for p, q in zip(summary.parameter, summary.q50)})
    return {"row": row, "files": {"summary.csv": summary.to_csv(index=False), "diagnostics.json": diagnostics_file(diag)}}


def bootstrap_summary(table: pd.DataFrame, original: pd.DataFrame, converged_only: bool = False) -> pd.DataFrame:
    """Per parameter: the original fit's median and 90% interval, and the replicates' median, 2.5/5/95/97.5%
    percentiles, their relative SE (SD / median) and how many replicates went in."""
    use = table[table["converged"]] if converged_only else table
    rows = []
    for _, o in original.iterrows():
        name = o["parameter"]
        if name not in use:
            continue
        x = use[name].to_numpy(float)
        q = np.quantile(x, [0.025, 0.05, 0.5, 0.95, 0.975]) if x.size else [np.nan] * 5
        rows.append({"parameter": name, "original_q50": o["q50"], "original_q5": o["q5"], "original_q95": o["q95"],
                     "boot_q50": q[2], "boot_q2.5": q[0], "boot_q5": q[1], "boot_q95": q[3], "boot_q97.5": q[4],
                     "boot_rse_pct": 100 * float(np.std(x, ddof=1) / abs(q[2])) if x.size > 1 and q[2] else np.nan,
                     "replicates": int(x.size)})
    return pd.DataFrame(rows)


def bootstrap(fit_dir, out, *, n: int = 200, seed: int = 0, strata: str | None = None, chains: int | None = None,
              warmup: int | None = None, samples: int | None = None, workers: int = 1, scheduler: str | None = None,
              cores_per_worker: int = 1, progress=print):
    """Nonparametric bootstrap of the fit in ``fit_dir`` (see the module docstring): ``n`` replicates as
    Dask tasks.

    ``chains``, ``warmup``, ``samples`` default to the original fit's. Writes ``OUT/tasks/boot-NNNN/``
    (each replicate's summary and diagnostics), ``OUT/results.csv`` (one row per replicate: each
    population parameter's median, diagnostics) and ``OUT/bootstrap_summary.csv``
    (:func:`bootstrap_summary`). Returns ``(replicates, summary)``.

    Examples
    --------
    >>> import tempfile, poppk
    >>> f = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...               samples=100, progress=False)
    >>> folder = f.save(tempfile.mkdtemp() + "/fit")
    >>> reps, summary = poppk.batch.bootstrap(folder, tempfile.mkdtemp(), n=2, workers=0, progress=None)
    >>> len(reps), "boot_q50" in summary
    (2, True)
    """
    from pathlib import Path

    from ..fit import load_fit
    from ._engine import Task, run_tasks

    if n < 1:
        raise BatchError(f"--n must be at least 1, got {n}")
    f = load_fit(fit_dir)
    frame = f.data.to_frame()
    if strata is not None and strata not in frame.columns:
        raise BatchError(f"--strata {strata}: not a column of the fitted data ({', '.join(frame.columns)})")
    chains = chains or int(f.info["chains"])
    warmup = warmup or int(f.info["warmup"])
    samples = samples or int(f.info["samples"])
    common = {**spec_payload(f.spec), "data": frame.to_dict("list"), "dose_unit": f.data.dose_unit, "conc_unit": f.data.conc_unit,
              "seed": seed, "strata": strata, "chains": chains, "warmup": warmup, "samples": samples}
    settings = {"fit": str(Path(fit_dir).resolve()), "spec_sha": digest(f.spec.text),
                "data_sha": digest(frame.to_csv(index=False)), "seed": seed, "strata": strata, "chains": chains,
                "warmup": warmup, "samples": samples}
    tasks = [Task(f"boot-{b:04d}", {**common, "replicate": b}) for b in range(n)]
    result = run_tasks("bootstrap", tasks, bootstrap_replicate, out, settings=settings, workers=workers,
                       scheduler=scheduler, cores_per_worker=cores_per_worker, progress=progress,
                       describe=lambda row: f"divergences {row['divergences']}, r_hat {row['max_r_hat']:.3f}")
    summary = bootstrap_summary(result.table, f.summary())
    summary.to_csv(Path(out) / "bootstrap_summary.csv", index=False)
    return result.table, summary


__all__ = ["bootstrap", "bootstrap_replicate", "bootstrap_summary", "resample_subjects"]
