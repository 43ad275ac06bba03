"""Many-fit commands on a Dask cluster: ``sbc``, ``bootstrap``, ``covsearch`` (and ``dose --patients``)."""

from __future__ import annotations

import os
from pathlib import Path

from poppk import set_host_devices

from ._common import add_data_args, fmt_table, positive_int, read_data


def _cores() -> int:
    """The cores this process may use (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def add_cluster_args(p) -> None:
    """``--workers``, ``--scheduler``, ``--cores-per-worker``: where a command's tasks run."""
    cores = _cores()
    p.add_argument("--workers", type=int, default=None,
                   help=f"worker processes of a local Dask cluster (default: one per core, {cores} here); "
                        "0 runs the tasks one after the other in this process")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (then --workers is ignored)")
    p.add_argument("--cores-per-worker", type=int, default=1, help="cores (and XLA devices) each worker's fits use")


def cluster_kwargs(args) -> dict:
    cores = positive_int(args.cores_per_worker, "--cores-per-worker")
    workers = args.workers
    if workers is None:
        workers = max(1, _cores() // cores)
    elif workers < 0:
        from poppk import PoppkError

        raise PoppkError(f"--workers must be 0 (this process) or more, got {workers}")
    return {"workers": workers, "scheduler": args.scheduler, "cores_per_worker": cores}


def _in_process_devices(args) -> None:
    """Tasks run in this process (``--workers 0``): one XLA device per chain, as ``poppk fit``."""
    if args.workers == 0 and args.scheduler is None:
        set_host_devices(max(1, args.chains or 1))


def cmd_sbc(args) -> int:
    from poppk.batch import sbc

    name = Path(args.model).stem
    out = Path(args.out or Path("sbc") / f"{name}_{Path(args.design).stem}")
    ranks, summary = sbc(args.model, out, design=args.design, reps=positive_int(args.reps, "--reps"),
                         dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq, seed=args.seed,
                         chains=args.chains, warmup=args.warmup, samples=args.samples,
                         parameterization=args.parameterization, target_accept=args.target_accept,
                         **cluster_kwargs(args))
    cols = ["parameter", "replications", "chi2_p", "coverage50", "coverage90", "chi2_p_holm", "coverage90_p_holm"]
    print("\n" + fmt_table(summary[cols], "{:.3f}"))
    print(f"\n{int((ranks['divergences'] > 0).sum())} of {len(ranks)} replications had divergences; "
          f"largest R-hat {ranks['max_r_hat'].max():.3f}")
    print(f"wrote {out}/results.csv, sbc_summary.csv, ranks.png and tasks/")
    return 0


def cmd_bootstrap(args) -> int:
    from poppk.batch import bootstrap

    out = Path(args.out or Path(args.dir) / "bootstrap")
    reps, summary = bootstrap(args.dir, out, n=positive_int(args.n, "--n"), seed=args.seed, strata=args.strata,
                              chains=args.chains, warmup=args.warmup, samples=args.samples, **cluster_kwargs(args))
    print("\n" + fmt_table(summary[["parameter", "original_q50", "boot_q50", "boot_q2.5", "boot_q97.5", "boot_rse_pct"]]))
    print(f"\n{int(reps['converged'].sum())} of {len(reps)} replicates converged (R-hat, ESS, no divergences)")
    print(f"wrote {out}/results.csv, bootstrap_summary.csv and tasks/")
    return 0


def cmd_covsearch(args) -> int:
    from poppk import load_spec
    from poppk.batch import covariate_search

    spec = load_spec(args.model)
    data = read_data(args)
    out = Path(args.out or Path("covsearch") / f"{Path(args.data).stem}_{spec.name}")
    covariates = [c for c in args.covariates.split(",") if c.strip()]
    parameters = [p.strip() for p in args.parameters.split(",") if p.strip()] if args.parameters else None
    selected, steps = covariate_search(data, spec, out, covariates=covariates, parameters=parameters,
                                       forward=args.forward, backward=args.backward, seed=args.seed,
                                       chains=args.chains, warmup=args.warmup, samples=args.samples,
                                       **cluster_kwargs(args))
    print("\n" + fmt_table(steps[["step", "change", "elpd_diff", "dse", "p_loo", "decision"]], "{:.2f}"))
    print(f"\nselected: {', '.join(selected) or 'no covariate effect'} (forward > {args.forward:g}, "
          f"backward < {args.backward:g} in elpd_loo)")
    print(f"wrote {out}/steps/*.csv, selected.toml, results.csv and tasks/")
    return 0


def cmd_clinic(args, target, doses, intervals) -> int:
    """``poppk dose DIR --patients FOLDER``: one recommendation per patient file."""
    from poppk.batch import clinic_doses

    out = Path(args.out or Path(args.dir) / "dosing" / "clinic")
    table = clinic_doses(args.dir, args.patients, out, target=target, doses=doses, intervals=intervals,
                         method=args.method, tox=args.tox, max_tox_prob=args.max_tox_prob, lloq=args.lloq,
                         route=args.route, duration=args.infusion, seed=args.seed, **cluster_kwargs(args))
    cols = [c for c in ("file", "ID", "recommended", "p_target", "p_tox", "ess") if c in table]
    print("\n" + fmt_table(table[cols], "{:.3g}"))
    print(f"\nwrote {out}/results.csv and tasks/FILE/dose_options.csv")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("sbc", help="simulation-based calibration of a model spec on a design, on a Dask cluster")
    p.add_argument("model", help="bundled model name or a TOML spec")
    p.add_argument("--design", default="rich",
                   help="rich or sparse (bundled single-dose designs, mg and mg/L), or a NONMEM-style file whose "
                        "doses, sampling times, covariates and LLOQs are the design (its DVs are replaced)")
    p.add_argument("--dose-unit", default="mg", help="unit of AMT in a design file")
    p.add_argument("--conc-unit", default="mg/L", help="unit of DV in a design file")
    p.add_argument("--lloq", type=float, help="LLOQ of a design file without an LLOQ column")
    p.add_argument("--reps", type=int, default=100, help="replications (default 100); more extend an earlier run")
    _fit_args(p, chains=2, warmup=500, samples=500)
    p.add_argument("--seed", type=int, default=20181103)
    p.add_argument("--parameterization", choices=["centered", "noncentered"], help="force the IIV parameterisation")
    p.add_argument("--target-accept", type=float, default=0.8)
    p.add_argument("--out", help="run folder (default sbc/MODEL_DESIGN); rerun to resume")
    add_cluster_args(p)
    p.set_defaults(func=cmd_sbc, before_jax=_in_process_devices)

    p = sub.add_parser("bootstrap", help="nonparametric bootstrap of a fit (subjects resampled), on a Dask cluster")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--n", type=int, default=200, help="replicates (default 200)")
    p.add_argument("--strata", help="resample within the levels of this column (e.g. a study or dose group)")
    _fit_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default DIR/bootstrap); rerun to resume")
    add_cluster_args(p)
    p.set_defaults(func=cmd_bootstrap, before_jax=_in_process_devices)

    p = sub.add_parser("covsearch", help="stepwise covariate search (forward, then backward) ranked by PSIS-LOO")
    add_data_args(p)
    p.add_argument("--model", required=True, help="the base model: bundled name or TOML spec")
    p.add_argument("--covariates", required=True, help="columns to try, e.g. WT,AGE,SEX (NAME:cat forces a category)")
    p.add_argument("--parameters", help="parameters to try them on, e.g. CL,V (default: those with IIV)")
    p.add_argument("--forward", type=float, default=2.0, help="add an effect if elpd_loo improves by more (default 2)")
    p.add_argument("--backward", type=float, default=4.0,
                   help="remove an effect if removing it costs less elpd_loo than this (default 4)")
    _fit_args(p, chains=2, warmup=500, samples=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default covsearch/DATA_MODEL); rerun to resume")
    add_cluster_args(p)
    p.set_defaults(func=cmd_covsearch, before_jax=_in_process_devices)


def _fit_args(p, chains=None, warmup=None, samples=None) -> None:
    same = " (default: the original fit's)"
    p.add_argument("--chains", type=int, default=chains, help=f"chains per fit{'' if chains else same}")
    p.add_argument("--warmup", type=int, default=warmup, help=f"warmup iterations per fit{'' if warmup else same}")
    p.add_argument("--samples", type=int, default=samples, help=f"draws per chain{'' if samples else same}")


__all__ = ["add_cluster_args", "add_commands", "cluster_kwargs", "cmd_clinic"]
