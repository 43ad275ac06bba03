"""Stepwise covariate model search (forward addition, then backward elimination) ranked by PSIS-LOO.

The analogue of PsN's SCM with the expected log predictive density in place of the objective function:

* **Forward**: from the base model, each candidate effect (every covariate on every parameter asked
  for, not yet in the model) is added alone and fitted, all candidates of a step at once as Dask tasks;
  the candidate with the largest ``elpd_loo`` is kept if it improves on the current model by more than
  ``forward`` (default 2: a difference of about two points is where LOO differences start to be read as
  real, cf. ``dse`` in :func:`poppk.compare_fits`; NONMEM's usual p < 0.05 forward step is a drop in OFV
  of 3.84, i.e. 1.9 in log likelihood). Repeat until no candidate passes.
* **Backward**: each effect of the forward model is removed alone; the removal that costs least is made
  if it costs less than ``backward`` (default 4, stricter, as SCM's backward p < 0.01); repeat.

Every step's table is kept (``OUT/steps/forward-1.csv``, ...: model, effects, elpd_loo, se, p_loo,
difference from the step's current model and its SE from the pointwise differences, decision), and
every model fitted is a task folder (``OUT/tasks/MODEL/``: its summary and pointwise elpd), so a
model met twice (as a backward step returns to a forward one) is fitted once, and a stopped search
resumes.

Effects: a continuous covariate enters as a power model centred on the subjects' median,
``theta * (cov / median)^beta`` with ``beta ~ Normal(0, 1)``; a categorical one (whole numbers with at
most ``MAX_LEVELS`` levels, or named ``COV:cat``) as a factor per level against the most common level,
log-factor ``~ Normal(0, 1)``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BatchError
from ._engine import digest, spec_from, spec_payload

#: A whole-number covariate with at most this many distinct values is taken as categorical.
MAX_LEVELS = 5


@dataclass(frozen=True)
class Effect:
    parameter: str
    covariate: str
    kind: str  # power | categorical
    reference: float

    @property
    def label(self) -> str:
        return f"{self.parameter}-{self.covariate}"

    def toml(self) -> str:
        return (f'\n[[covariates]]\nparameter = "{self.parameter}"\ncovariate = "{self.covariate}"\n'
                f'kind = "{self.kind}"\nreference = {self.reference!r}\neffect = {{ mean = 0.0, sd = 1.0 }}\n')


def candidate_effects(data, covariates: list[str], parameters: list[str]) -> list[Effect]:
    """The effects to try: every covariate (``NAME``, ``NAME:cat`` or ``NAME:cont``) on every parameter.
    BatchError naming the covariate when it is missing from the data, has missing values, or is not
    positive where a power model needs it."""
    frame = data.to_frame().groupby("ID", sort=False).first()
    out = []
    for item in covariates:
        name, _, kind = item.partition(":")
        name = name.strip()
        if name not in data.covariate_names:
            raise BatchError(f"--covariates {name}: not a covariate column of the data "
                             f"({', '.join(data.covariate_names) or 'none'})")
        values = frame[name].to_numpy(float)
        if np.isnan(values).any():
            missing = [str(i) for i in frame.index[np.isnan(values)][:5]]
            raise BatchError(f"--covariates {name}: missing for subject(s) {', '.join(missing)}; impute it or leave it out")
        levels = np.unique(values)
        if kind not in ("", "cat", "cont"):
            raise BatchError(f"--covariates {item}: write NAME, NAME:cat or NAME:cont")
        categorical = kind == "cat" or (kind == "" and np.all(values == np.round(values)) and levels.size <= MAX_LEVELS)
        if categorical:
            if levels.size < 2:
                raise BatchError(f"--covariates {name}: one level only ({levels[0]:g}); nothing to estimate")
            counts = pd.Series(values).value_counts()
            ref, kind = float(counts.index[0]), "categorical"
        else:
            if (values <= 0).any():
                raise BatchError(f"--covariates {name}: a power model needs positive values; subject "
                                 f"{frame.index[np.argmax(values <= 0)]} has {values[values <= 0][0]:g} (write {name}:cat "
                                 "for a category)")
            ref, kind = float(np.median(values)), "power"
        out += [Effect(p, name, kind, ref) for p in parameters]
    return out


def model_key(effects) -> str:
    return "base" if not effects else "+".join(sorted(e.label for e in effects))


def fit_candidate(params: dict) -> dict:
    """Fit the base spec with ``params["effects"]`` added; its PSIS-LOO, pointwise, as the task's result."""
    from ..compare import loo_fit
    from ..data import from_frame
    from ..fit import fit

    t0 = time.perf_counter()
    effects = [Effect(**e) for e in params["effects"]]
    added = "".join(e.toml() for e in effects)
    spec = spec_from(params, added)
    data = from_frame(pd.DataFrame(params["data"]), dose_unit=params["dose_unit"], conc_unit=params["conc_unit"],
                      warn=False)
    f = fit(data, spec, chains=params["chains"], warmup=params["warmup"], samples=params["samples"],
            seed=params["seed"], progress=False, command="poppk covsearch")
    elpd, k, p_loo = loo_fit(f)
    diag = f.diagnostics()
    row = {"model": model_key(effects), "effects": len(effects), "elpd_loo": float(elpd.sum()),
           "se": float(np.sqrt(elpd.size * elpd.var())), "p_loo": p_loo, "pareto_k_over_0.7": int((k > 0.7).sum()),
           "divergences": diag["divergences"], "max_r_hat": diag["max_r_hat"],
           "seconds": round(time.perf_counter() - t0, 1)}
    summary = f.summary()
    by_name = summary.set_index("parameter")
    for e in effects:
        for name in by_name.index:
            if name.startswith(f"{e.parameter}_{e.covariate}"):
                s = by_name.loc[name]
                row[f"{name}_q50"], row[f"{name}_q5"], row[f"{name}_q95"] = float(s.q50), float(s.q5), float(s.q95)
    return {"row": row, "files": {"summary.csv": summary.to_csv(index=False), "spec.toml": spec.text,
                                  "elpd.csv": pd.DataFrame({"elpd_i": elpd, "pareto_k": k}).to_csv(index=False)}}


def covariate_search(data, spec, out, *, covariates: list[str], parameters: list[str] | None = None,
                     forward: float = 2.0, backward: float = 4.0, seed: int = 0, chains: int = 2, warmup: int = 500,
                     samples: int = 500, workers: int = 1, scheduler: str | None = None, cores_per_worker: int = 1,
                     progress=print):
    """Stepwise covariate search of ``covariates`` on ``parameters`` (default: those with IIV) of
    ``spec`` fitted to ``data`` (see the module docstring).

    Returns ``(selected, steps)``: the labels of the effects in the final model (``CL-WT``) and every
    step's table, concatenated (column ``step``). Writes ``OUT/steps/*.csv``, ``OUT/selected.toml`` (the
    final spec) and ``OUT/results.csv`` (every model fitted).

    Raises
    ------
    BatchError
        A covariate missing from the data or with missing values, a parameter the spec lacks, or a
        threshold that is not positive -- before any fit.
    """
    from pathlib import Path

    from ..data import PKDataset
    from ..model import ModelSpec, load_spec
    from ._engine import Task, cluster_client, collect, read_row, run_tasks, task_folder

    if not isinstance(data, PKDataset):
        raise BatchError("covariate_search needs a PKDataset (see poppk.read_nonmem)")
    spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)
    parameters = list(parameters or spec.iiv.parameters)
    known = {p.name for p in spec.parameters}
    for p in parameters:
        if p not in known:
            raise BatchError(f"--parameters {p}: not a parameter of {spec.name} ({', '.join(sorted(known))})")
    if not covariates:
        raise BatchError("give the covariates to search, e.g. --covariates WT,AGE,SEX")
    if not (forward > 0 and backward > 0):
        raise BatchError(f"the thresholds must be positive, got forward {forward}, backward {backward}")
    present = {(c.parameter, c.covariate) for c in spec.covariates}
    candidates = [c for c in candidate_effects(data, covariates, parameters) if (c.parameter, c.covariate) not in present]
    if not candidates:
        raise BatchError(f"every candidate effect is already in {spec.name}; nothing to search")
    frame = data.to_frame()
    out = Path(out)
    common = {**spec_payload(spec), "data": frame.to_dict("list"), "dose_unit": data.dose_unit, "conc_unit": data.conc_unit, "seed": seed,
              "chains": chains, "warmup": warmup, "samples": samples}
    settings = {"spec_sha": digest(spec.text), "data_sha": digest(frame.to_csv(index=False)), "seed": seed,
                "chains": chains, "warmup": warmup, "samples": samples, "candidates": [c.label for c in candidates],
                "forward": forward, "backward": backward}
    say = progress or (lambda _m: None)
    fitted: list[str] = []

    client = None

    def evaluate(models: list[list[Effect]]) -> dict[str, dict]:
        tasks = [Task(model_key(m), {**common, "effects": [e.__dict__ for e in m]}) for m in models]
        run_tasks("covsearch", tasks, fit_candidate, out, settings=settings, workers=workers, scheduler=scheduler,
                  cores_per_worker=cores_per_worker, progress=progress, client=client,
                  describe=lambda row: f"elpd_loo {row['elpd_loo']:.1f}")
        fitted.extend(t.key for t in tasks if t.key not in fitted)
        return {t.key: read_row(out, t.key) for t in tasks}

    def pointwise(key: str) -> np.ndarray:
        return pd.read_csv(task_folder(out, key) / "elpd.csv")["elpd_i"].to_numpy()

    def step_table(kind: str, number: int, current: list[Effect], options: list[tuple[str, list[Effect]]],
                   rows: dict) -> pd.DataFrame:
        base = pointwise(model_key(current))
        recs = []
        for change, model in options:
            key = model_key(model)
            d = pointwise(key) - base
            recs.append({"step": f"{kind}-{number}", "change": change, "model": key,
                         "elpd_loo": rows[key]["elpd_loo"], "se": rows[key]["se"], "p_loo": rows[key]["p_loo"],
                         "elpd_diff": float(d.sum()), "dse": float(np.sqrt(d.size * d.var())),
                         "divergences": rows[key]["divergences"], "max_r_hat": rows[key]["max_r_hat"]})
        return pd.DataFrame(recs)

    steps_dir = out / "steps"
    tables = []
    current: list[Effect] = []
    with contextlib.ExitStack() as stack:  # one cluster for every step of the search
        client = None if workers == 0 and scheduler is None else stack.enter_context(
            cluster_client(workers, scheduler, cores_per_worker))
        current = _search(evaluate, step_table, candidates, forward, backward, steps_dir, tables, say)
    (out / "selected.toml").write_text(spec.text + "".join(e.toml() for e in current))
    collect(out, fitted).to_csv(out / "results.csv", index=False)
    steps = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return [e.label for e in current], steps


def _search(evaluate, step_table, candidates, forward, backward, steps_dir, tables, say) -> list[Effect]:
    """Forward addition, then backward elimination (the module docstring); each step's table appended to
    ``tables`` and written to ``steps_dir``. Returns the final model's effects."""
    steps_dir.mkdir(parents=True, exist_ok=True)

    def step(kind: str, number: int, current, options, passes, verb: str, threshold: float):
        """Fit a step's options; the best (largest elpd_diff) is taken if ``passes(elpd_diff)``."""
        rows = evaluate([m for _, m in options])
        table = step_table(kind, number, current, options, rows).sort_values("elpd_diff", ascending=False)
        best = table.iloc[0]
        take = bool(passes(best["elpd_diff"]))
        table["decision"] = [verb if take and i == 0 else "" for i in range(len(table))]
        table.to_csv(steps_dir / f"{kind}-{number}.csv", index=False)
        tables.append(table)
        say(f"{kind} step {number}: best {best['change']} (elpd_diff {best['elpd_diff']:.1f} +- {best['dse']:.1f}) "
            f"{verb if take else f'not {verb} (threshold {threshold:g})'}")
        return take, best["change"]

    current: list[Effect] = []
    evaluate([current])
    number = 0
    while True:  # forward
        remaining = [c for c in candidates if c.label not in {e.label for e in current}]
        if not remaining:
            break
        number += 1
        take, change = step("forward", number, current, [(f"+{c.label}", current + [c]) for c in remaining],
                            lambda d: d > forward, "added", forward)
        if not take:
            break
        current = current + [next(c for c in remaining if f"+{c.label}" == change)]
    number = 0
    while current:  # backward
        number += 1
        take, change = step("backward", number, current,
                            [(f"-{e.label}", [x for x in current if x is not e]) for e in current],
                            lambda d: -d < backward, "removed", backward)
        if not take:
            break
        current = [e for e in current if f"-{e.label}" != change]
    return current


__all__ = ["Effect", "candidate_effects", "covariate_search", "fit_candidate", "model_key"]
