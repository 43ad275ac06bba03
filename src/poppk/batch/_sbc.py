"""Simulation-based calibration (Talts et al. 2018) of any spec on any design, one task per replication.

A replication draws every population parameter and each subject's random effects from the spec's own
prior -- the fitted model function itself, run forward (:func:`draw_from_prior`), so any kernel,
covariate model, error model and IIV structure is simulated exactly as it is fitted, including the
soft flip-flop wall (a factor of the prior, honoured by rejection) -- draws the observations with
residual error (records below their LLOQ become BLQ, M3), fits them with :func:`poppk.fit` and records
the rank of each true value among ``THIN`` evenly thinned posterior draws. If the inference is
calibrated the ranks are uniform on ``0..THIN`` and the 50% / 90% central intervals cover the truth
50% / 90% of the time (:func:`sbc_summary` tests both, Holm-adjusted over the run's tests).

The design is a NONMEM-style file (its doses, sampling times, covariates and LLOQs; its DV values are
replaced) or a bundled one: ``rich`` (12 subjects, 100 mg oral at 0, samples at 0.25-24 h) or
``sparse`` (1, 6 and 24 h), in mg and mg/L with LLOQ 0.01 mg/L.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BatchError
from ._engine import diagnostics_file, digest, spec_from, spec_payload

#: Posterior draws each replication's rank is taken among (ranks 0..THIN).
THIN = 100
#: Histogram bins of the uniformity test.
BINS = 10
BUILTIN_DESIGNS = {"rich": [0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24], "sparse": [1, 6, 24]}
#: Draws of the prior tried for one replication before the flip-flop wall is declared to reject them all.
MAX_REJECTIONS = 10_000


def builtin_design(name: str, n_subjects: int = 12, dose: float = 100.0, lloq: float = 0.01) -> pd.DataFrame:
    """A bundled SBC design as NONMEM-style records (one oral dose at 0; DV placeholders)."""
    if name not in BUILTIN_DESIGNS:
        raise BatchError(f"unknown design {name!r}; bundled designs are {', '.join(BUILTIN_DESIGNS)}, or give "
                         "a NONMEM-style file whose doses and sampling times are the design")
    rows = []
    for i in range(1, n_subjects + 1):
        rows.append({"ID": i, "TIME": 0.0, "AMT": dose, "DV": np.nan, "EVID": 1, "MDV": 1, "CMT": 1, "LLOQ": np.nan})
        rows += [{"ID": i, "TIME": float(t), "AMT": 0.0, "DV": 1.0, "EVID": 0, "MDV": 0, "CMT": 2, "LLOQ": lloq}
                 for t in BUILTIN_DESIGNS[name]]
    return pd.DataFrame(rows)


def design_data(frame: pd.DataFrame, dose_unit: str, conc_unit: str, lloq: float | None = None):
    """The design's records as a dataset (observation DVs the simulation will replace set to 1)."""
    from ..data import from_frame

    frame = frame.copy()
    obs = _observation_rows(frame)
    frame.loc[obs, "DV"] = 1.0
    for col in ("BLQ", "CENS", "blq", "cens"):
        if col in frame:
            frame[col] = 0
    return from_frame(frame, dose_unit=dose_unit, conc_unit=conc_unit, lloq=lloq, warn=False)


def _observation_rows(frame: pd.DataFrame) -> np.ndarray:
    cols = {c.upper(): c for c in frame.columns}
    evid = frame[cols["EVID"]].to_numpy() if "EVID" in cols else np.where(frame[cols["AMT"]].fillna(0) > 0, 1, 0)
    return np.asarray(evid) == 0


def draw_from_prior(spec, data, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """One draw of the population parameters and the observations ``(N, O)`` from ``spec``'s prior
    predictive on ``data``'s design: the model function run forward with ``dv=None``; draws the
    flip-flop wall's factors reject are redrawn (accepted with probability ``exp(sum of factors)``).

    Returns ``(truth, dv)``: ``truth`` maps each population parameter (``Fit.info["population"]``) to
    its value, plus ``"_ind"``: each subject's structural parameters."""
    import jax
    from numpyro import handlers

    from ..model import build_model

    built = build_model(spec, data, parameterization="noncentered")  # the prior is the same either way
    kwargs = dict(built.kwargs, dv=None)
    for _ in range(MAX_REJECTIONS):
        key = jax.random.PRNGKey(int(rng.integers(2**31)))
        trace = handlers.trace(handlers.seed(built.fn, key)).get_trace(**kwargs)
        log_factor = sum(float(np.sum(site["fn"].log_factor)) for site in trace.values()
                         if site["type"] == "sample" and hasattr(site["fn"], "log_factor"))
        if np.log(rng.uniform()) < log_factor:
            truth = {name: float(np.asarray(trace[name]["value"])) for name in built.population}
            truth["_ind"] = {p[:-2]: np.asarray(s["value"]) for p, s in trace.items() if p.endswith("_i")}
            return truth, np.asarray(trace["DV"]["value"])
    raise BatchError(f"{spec.source}: {MAX_REJECTIONS} draws of the prior were all rejected by the flip-flop wall; "
                     "the priors of the absorption and elimination rates put almost all mass in the flip-flop mode")


def simulated_frame(frame: pd.DataFrame, data, dv: np.ndarray) -> pd.DataFrame:
    """The design's records with ``dv`` (N, O) in place of the observations; BLQ where below the LLOQ."""
    out = frame.copy()
    present = np.asarray(data.present)
    by_row = np.full(len(frame), np.nan)
    by_row[np.asarray(data.row)[present]] = dv[present]
    lloq = np.full(len(frame), np.nan)
    lloq[np.asarray(data.row)[present]] = np.asarray(data.lloq)[present]
    obs = _observation_rows(frame)
    blq = obs & np.isfinite(lloq) & (by_row < lloq)
    out.loc[obs, "DV"] = by_row[obs]
    out["BLQ"] = blq.astype(int)
    out.loc[blq, "DV"] = np.nan
    if np.isfinite(lloq).any():
        out["LLOQ"] = np.where(obs, lloq, np.nan)
    return out


def sbc_replication(params: dict) -> dict:
    """One replication (a task of :func:`poppk.batch.sbc`): simulate from the prior, fit, rank the truths."""
    import time

    from ..data import from_frame
    from ..fit import fit

    t0 = time.perf_counter()
    spec = spec_from(params)
    frame = pd.DataFrame(params["design"])
    units = dict(dose_unit=params["dose_unit"], conc_unit=params["conc_unit"])
    rng = np.random.default_rng([params["seed"], params["rep"]])  # the replication's own stream: order-free
    design = design_data(frame, **units, lloq=params.get("lloq"))
    truth, dv = draw_from_prior(spec, design, rng)
    simulated = simulated_frame(frame, design, dv)
    data = from_frame(simulated, **units, lloq=params.get("lloq"), warn=False)
    f = fit(data, spec, chains=params["chains"], warmup=params["warmup"], samples=params["samples"],
            seed=params["seed"] + params["rep"], progress=False, parameterization=params.get("parameterization"),
            target_accept=params.get("target_accept", 0.8), command="poppk sbc")
    diag = f.diagnostics()
    obs = _observation_rows(simulated)
    row = {"rep": params["rep"], "seconds": round(time.perf_counter() - t0, 1), "divergences": diag["divergences"],
           "max_r_hat": diag["max_r_hat"], "min_ess_bulk": diag["min_ess_bulk"],
           "chains": params["chains"], "draws": params["samples"],
           "blq_fraction": float(simulated.loc[obs, "BLQ"].mean()) if obs.any() else 0.0,
           "parameterization": f.info["parameterization"]}
    for name in f.info["population"]:
        x = f.draws(name)
        kept = x[np.linspace(0, x.size - 1, THIN).round().astype(int)]
        lo50, hi50, lo90, hi90, med = np.quantile(x, [0.25, 0.75, 0.05, 0.95, 0.5])
        row.update({f"rank_{name}": int((kept < truth[name]).sum()), f"in50_{name}": bool(lo50 <= truth[name] <= hi50),
                    f"in90_{name}": bool(lo90 <= truth[name] <= hi90), f"true_{name}": truth[name],
                    f"q50_{name}": float(med)})
    return {"row": row, "files": {"data.csv": simulated.to_csv(index=False), "summary.csv": f.summary().to_csv(index=False),
                                  "diagnostics.json": diagnostics_file(diag)}}


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of the p-values ``p`` (family-wise error under any dependence).

    >>> holm(np.array([0.01, 0.04, 0.03])).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, float)
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def _rank_counts(ranks: pd.DataFrame, name: str) -> np.ndarray:
    """How many replications' ranks of ``name`` fall in each of ``BINS`` equal bins of ``0..THIN``."""
    return np.histogram(ranks[f"rank_{name}"], bins=BINS, range=(0, THIN + 1))[0]


def sbc_summary(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: chi-square uniformity p-value of the ranks (``BINS`` bins), 50% and 90% coverage with
    Monte Carlo SE and exact binomial p-value, and every p-value of the run adjusted together by Holm
    (``*_holm``); replications with divergences and the largest R-hat."""
    from scipy import stats

    names = [c[5:] for c in ranks.columns if c.startswith("rank_")]
    n = len(ranks)
    expected = n / BINS
    rows = []
    for name in names:
        counts = _rank_counts(ranks, name)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        row = {"parameter": name, "replications": n, "chi2_p": float(stats.chi2.sf(chi2, BINS - 1))}
        for level in (50, 90):
            hits = int(ranks[f"in{level}_{name}"].sum())
            row.update({f"coverage{level}": hits / n, f"coverage{level}_mcse": np.sqrt(level / 100 * (1 - level / 100) / n),
                        f"coverage{level}_p": stats.binomtest(hits, n, level / 100).pvalue})
        row.update({"divergent_reps": int((ranks["divergences"] > 0).sum()), "max_r_hat": float(ranks["max_r_hat"].max())})
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        tests = ["chi2_p", "coverage50_p", "coverage90_p"]
        adjusted = holm(table[tests].to_numpy().ravel()).reshape(len(table), len(tests))
        for k, name in enumerate(tests):
            table[f"{name}_holm"] = adjusted[:, k]
    return table


def plot_ranks(ranks: pd.DataFrame, path, title: str) -> None:
    """Rank histograms with the 99% band of a uniform histogram (grey), one panel per parameter."""
    import matplotlib.pyplot as plt
    from scipy import stats

    names = [c[5:] for c in ranks.columns if c.startswith("rank_")]
    n = len(ranks)
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(2.6 * max(1, len(names)), 2.6), squeeze=False)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / BINS)
    for ax, name in zip(axes[0], names):
        counts = _rank_counts(ranks, name)
        ax.axhspan(lo, hi, color="0.85")
        ax.axhline(n / BINS, color="0.5", lw=0.8)
        ax.bar(np.arange(BINS), counts, width=0.9, color="C0")
        ax.set_title(f"{name}\n50%: {ranks[f'in50_{name}'].mean():.2f}, 90%: {ranks[f'in90_{name}'].mean():.2f}",
                     fontsize=8)
        ax.set_xticks([])
    fig.suptitle(f"SBC rank histograms: {title} ({n} replications; grey: 99% band of uniform ranks)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sbc(spec, out, *, design="rich", reps: int = 100, dose_unit: str = "mg", conc_unit: str = "mg/L",
        lloq: float | None = None, seed: int = 20181103, chains: int = 2, warmup: int = 500, samples: int = 500,
        parameterization: str | None = None, target_accept: float = 0.8, workers: int = 1,
        scheduler: str | None = None, cores_per_worker: int = 1, progress=print):
    """Simulation-based calibration of ``spec`` on ``design``: ``reps`` replications as Dask tasks.

    Parameters
    ----------
    spec : ModelSpec or str
        A spec, a bundled model's name or a TOML path.
    out : path
        The run's folder: ``tasks/rep-NNNN/`` (simulated data, fit summary, diagnostics), ``results.csv``
        (one row per replication: ranks, coverage flags, truths, posterior medians, diagnostics),
        ``sbc_summary.csv`` (:func:`sbc_summary`) and ``ranks.png``. Rerunning resumes; more ``reps``
        extend the run (replication ``r`` always draws from seed ``[seed, r]``).
    design : "rich", "sparse", a NONMEM-style file or DataFrame
        Doses, sampling times, covariates and LLOQs of each simulated trial (bundled designs in mg and
        mg/L; a file's in ``dose_unit`` and ``conc_unit``).
    chains, warmup, samples, parameterization, target_accept
        The fit of each replication (:func:`poppk.fit`).
    workers, scheduler, cores_per_worker
        Where the replications run (:func:`run_tasks`; ``workers=0``: in this process).

    Returns
    -------
    (ranks, summary) : tuple of DataFrame

    Examples
    --------
    >>> import tempfile, poppk
    >>> ranks, summary = poppk.batch.sbc("oral1cmt_additive", tempfile.mkdtemp(), design="sparse", reps=2,
    ...                                  chains=1, warmup=100, samples=100, workers=0, progress=None)
    >>> len(ranks), sorted(summary.parameter)[:2]
    (2, ['CL', 'KA'])
    """
    from pathlib import Path

    from ..model import ModelSpec, load_spec
    from ._engine import Task, run_tasks

    if reps < 1:
        raise BatchError(f"--reps must be at least 1, got {reps}")
    spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)
    if isinstance(design, str) and design in BUILTIN_DESIGNS:
        frame, design_name = builtin_design(design), design
        dose_unit, conc_unit = "mg", "mg/L"
    elif isinstance(design, pd.DataFrame):
        frame, design_name = design, "<frame>"
    else:
        from ..data import read_nonmem

        path = Path(design)
        read_nonmem(path, dose_unit=dose_unit, conc_unit=conc_unit, lloq=lloq, warn=False)  # a bad file fails here
        frame, design_name = pd.read_csv(path), str(path)
    design_data(frame, dose_unit, conc_unit, lloq)  # and a design the spec cannot use, before any task runs
    records = frame.to_dict("list")
    common = {**spec_payload(spec), "design": records,
              "dose_unit": dose_unit, "conc_unit": conc_unit, "lloq": lloq, "seed": seed, "chains": chains,
              "warmup": warmup, "samples": samples, "parameterization": parameterization,
              "target_accept": target_accept}
    settings = {"spec": spec.name, "spec_sha": digest(spec.text), "design": design_name,
                "design_sha": digest(frame.to_csv(index=False)), "dose_unit": dose_unit, "conc_unit": conc_unit,
                "lloq": lloq, "seed": seed, "chains": chains, "warmup": warmup, "samples": samples,
                "parameterization": parameterization, "target_accept": target_accept}
    tasks = [Task(f"rep-{r:04d}", {**common, "rep": r}) for r in range(reps)]
    result = run_tasks("sbc", tasks, sbc_replication, out, settings=settings, workers=workers, scheduler=scheduler,
                       cores_per_worker=cores_per_worker, progress=progress,
                       describe=lambda row: f"divergences {row['divergences']}, r_hat {row['max_r_hat']:.3f}")
    summary = sbc_summary(result.table)
    summary.to_csv(Path(out) / "sbc_summary.csv", index=False)
    plot_ranks(result.table, Path(out) / "ranks.png", f"{spec.name}, {design_name}")
    return result.table, summary


__all__ = ["BINS", "BUILTIN_DESIGNS", "THIN", "builtin_design", "design_data", "draw_from_prior", "holm", "plot_ranks",
           "sbc", "sbc_replication", "sbc_summary", "simulated_frame"]
