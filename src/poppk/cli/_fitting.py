"""Commands on fits: ``fit``, ``compare``, ``export``, ``report``."""

from __future__ import annotations

import sys
from pathlib import Path

from poppk import PoppkError

from ._common import add_data_args, files_only, fmt_table, set_chain_devices


def cmd_fit(args) -> int:
    import json
    import time

    from poppk import fit, load_spec, read_nonmem
    from poppk.fit import folder as fit_folder

    start = time.perf_counter()
    out = Path(args.out) if args.out else Path("fits") / f"{Path(args.data).stem}_{Path(args.model).stem}"
    if out.exists() and not args.force:
        raise PoppkError(f"{out} already exists; choose another --out or pass --force to replace it")
    spec = load_spec(args.model)
    data = read_nonmem(args.data, dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq)
    how = (f"Laplace approximation at the mode, {args.samples} draws from it" if args.method == "laplace" else
           f"{args.chains} chains x ({args.warmup} warmup + {args.samples} draws)")
    print(f"fitting {spec.name} ({spec.kernel}) to {data.n_subjects} subjects, {data.n_observations} observations; "
          f"{how}, seed {args.seed}", flush=True)
    result = fit(data, spec, chains=args.chains, warmup=args.warmup, samples=args.samples, seed=args.seed,
                 target_accept=args.target_accept, parameterization=args.parameterization,
                 max_tree_depth=_tree_depth(args.max_tree_depth),
                 warm_start={"auto": None, "on": True, "off": False}[args.warm_start],
                 progress=not args.no_progress, command="poppk " + " ".join(sys.argv[1:]), method=args.method)
    result.info["total_seconds"] = round(time.perf_counter() - start, 2)
    folder = result.save(out, force=args.force)
    if args.method == "laplace":
        return _print_laplace(result, folder, spec.name)
    summary = result.summary()
    diag = json.loads((folder / "diagnostics.json").read_text())
    pilot = result.info.get("pilot")
    why = f" ({pilot['reason']})" if pilot else ""
    print(f"\n{spec.name}: {result.info['parameterization']} IIV{why}, {result.info['chain_method']} chains, "
          f"BLQ {result.info['blq_method']}, warm start: {result.info['warm_start']}, "
          f"{diag['mean_num_steps']:.0f} leapfrog steps per iteration\n")
    cols = ["parameter", "q50", "q5", "q95", "cv_pct", "ess_bulk", "r_hat"]
    print(fmt_table(summary[cols]))
    if diag["warnings"]:
        print("\nWARNINGS")
        for w in diag["warnings"]:
            print(f"  ! {w}")
    else:
        print("\nconverged: no divergences, r_hat <= 1.01, bulk ESS >= 400")
    print(f"\nwrote {folder}/ ({', '.join(fit_folder.FILES)}) in {result.info['total_seconds']:.0f} s")
    return 0


def _print_laplace(result, folder: Path, name: str) -> int:
    import json

    from poppk.fit import folder as fit_folder

    diag = json.loads((folder / "diagnostics.json").read_text())  # computed once, by save
    obj = diag["objective"]
    print(f"\n{name}: posterior mode, random effects integrated out by Laplace's method "
          f"({diag['optimizer']['iterations']} L-BFGS iterations), BLQ {result.info['blq_method']}\n")
    print(fmt_table(result.estimates()[["parameter", "estimate", "se", "rse_pct", "q5", "q95"]]))
    print(f"\n-2 log likelihood {obj['minus2_log_likelihood']:.3f} (NONMEM OFV convention {obj['ofv']:.3f}); "
          f"-2 log posterior {obj['minus2_log_posterior']:.3f}")
    print(f"\n{diag['note']}")
    if diag["warnings"]:
        print("\nWARNINGS")
        for w in diag["warnings"]:
            print(f"  ! {w}")
    if diag["converged"]:
        print("\nconverged: stationary point found, covariance step positive definite")
    files = fit_folder.FILES + fit_folder.LAPLACE_FILES
    print(f"\nwrote {folder}/ ({', '.join(files)}) in {result.info['total_seconds']:.0f} s")
    return 0


def _tree_depth(text: str):
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) not in (1, 2) or not all(1 <= p <= 15 for p in parts):
        raise PoppkError(f"--max-tree-depth {text!r}: give D or WARMUP_D,SAMPLING_D (integers 1-15)")
    return parts[0] if len(parts) == 1 else parts


def cmd_compare(args) -> int:
    from poppk import compare_fits

    table, notes = compare_fits(args.fits)
    print(fmt_table(table, "{:.2f}"))
    for n in notes:
        print(f"! {n}")
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


def cmd_report(args) -> int:
    files_only()
    from poppk.report import write_report

    path = write_report(args.dir, n_sims=args.n_sims, seed=args.seed, x=args.x, by=args.by)
    print(f"wrote {path} and {Path(args.dir) / 'plots'}/*.png (vpc.csv, npde.csv beside them)")
    return 0


def cmd_export(args) -> int:
    from poppk import load_fit
    from poppk.export import export_tables, parameter_table, to_markdown

    paths = export_tables(args.dir, args.format, args.out)
    table = parameter_table(load_fit(args.dir))
    value = "estimate" if "estimate" in table else "median"
    extra = ["rse_pct"] if "rse_pct" in table else []
    print(to_markdown(table[["parameter", "unit", value, "q5", "q95", *extra, "shrinkage_pct"]]))
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("fit", help="Bayesian population fit (NUTS, or the Laplace approximation); writes a fit folder")
    add_data_args(p)
    p.add_argument("--model", required=True, help="bundled model name (oral1cmt, oral1cmt_mm, ...) or a TOML file")
    p.add_argument("--out", help="fit folder (default fits/DATA_MODEL)")
    p.add_argument("--method", choices=["nuts", "laplace"], default="nuts",
                   help="nuts: full posterior by MCMC; laplace: posterior mode with the random effects integrated "
                        "out, standard errors from its curvature (like FOCE-I/LAPLACIAN with $COV), in seconds")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-accept", type=float, default=0.8)
    p.add_argument("--max-tree-depth", default="10",
                   help="NUTS tree depth, or WARMUP,SAMPLING (e.g. 6,10: cheaper early warmup for ODE models)")
    p.add_argument("--parameterization", choices=["centered", "noncentered"],
                   help="override the spec's IIV choice (default: the spec's; 'auto' decides per parameter "
                        "from the data)")
    p.add_argument("--warm-start", choices=["auto", "on", "off"], default="auto",
                   help="start from the Laplace approximation at the mode with a dense metric (auto: ODE models)")
    p.add_argument("--force", action="store_true", help="replace an existing fit folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fit, before_jax=set_chain_devices)

    p = sub.add_parser("compare", help="PSIS-LOO comparison of fit folders")
    p.add_argument("fits", nargs="+", help="fit folders")
    p.add_argument("--out", help="CSV of the comparison")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="report tables of a fit folder (parameters, individuals, regimens)")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--format", default="csv", choices=["csv", "xlsx", "md", "tex"])
    p.add_argument("--out", help="output folder (default DIR/export)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="diagnostic plots and one self-contained HTML report of a fit folder")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--n-sims", type=int, default=500, help="replicates of the design for VPC and NPDE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--x", choices=["TIME", "TAD"], help="VPC x axis (default TAD for repeated dosing)")
    p.add_argument("--by", help="split the VPC by a column (PERIOD, DOSE, a covariate)")
    p.set_defaults(func=cmd_report)
