"""Commands on data and the installation: ``predict``, ``datasets``, ``nca``, ``cache``."""

from __future__ import annotations

import sys
from pathlib import Path

from poppk import PoppkError
from poppk.pk import KERNELS

from ._common import add_data_args, fmt_table, parse_params, write_table


def cmd_predict(args) -> int:
    import numpy as np

    from poppk.data import from_frame, read_csv_frame
    from poppk import load_spec
    from poppk.pk import KERNELS, get_kernel, predict

    original, name = read_csv_frame(args.data)
    data = from_frame(original, dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq, source=name)
    if args.model in KERNELS:
        kernel = get_kernel(args.model, data.dose_unit, data.conc_unit)
    else:  # a spec, bundled or a TOML file (which may name the user's own model file)
        kernel = load_spec(args.model).make_kernel(data.dose_unit, data.conc_unit)
    pred = predict(kernel, parse_params(args.param), data)
    present = np.asarray(data.present)
    pred_col = np.full(len(original), np.nan)
    pred_col[np.asarray(data.row)[present]] = pred[present]
    original["PRED"] = pred_col
    write_table(original, args.out)
    return 0


def cmd_datasets(args) -> int:
    from poppk import datasets

    if args.action is None:
        for name in datasets.names():
            print(f"{name:<24} {datasets.CATALOG[name].description}")
        return 0
    if args.action != "export" or len(args.rest) != 2:
        raise PoppkError("usage: poppk datasets [export NAME FILE]")
    name, target = args.rest
    out = datasets.export(name, target)
    print(f"wrote {out}")
    return 0


def cmd_cache(args) -> int:
    from poppk import clear_compilation_cache, compilation_cache_info

    path, n, size = (clear_compilation_cache if args.clear else compilation_cache_info)()
    if path is None:  # the cache is set by configure_jax, or is the user's own JAX setting
        print("the compilation cache is off (POPPK_CACHE_DIR=off, or its folder cannot be written)")
    elif args.clear:
        print(f"cleared {path}: {n} compiled programs, {size / 2**20:.1f} MiB")
    else:
        print(f"{path}: {n} compiled programs, {size / 2**20:.1f} MiB (pruned to 1 GiB daily; POPPK_CACHE_DIR=DIR "
              "moves it, POPPK_CACHE_DIR=off turns it off, --clear empties it)")
    return 0


def cmd_nca(args) -> int:
    from poppk import compute_nca

    res = compute_nca(args.data, dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq,
                      method=args.method, blq=args.blq, min_points=args.min_points, route=args.route)
    if res.profiles.empty:
        for m in res.messages:
            print(f"note: {m}", file=sys.stderr)
        raise PoppkError("no subject has a profile NCA can analyse (see the notes above)")
    table = res.table()
    summary = res.summary(args.group)
    for target, frame in ((args.out, table), (args.summary, summary)):
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(target, index=False)
    n_sub = table["ID"].nunique()
    print(f"NCA of {n_sub} subject(s), {len(table)} profile(s); AUC {args.method}, BLQ rule {args.blq}; "
          f"dose {res.dose_unit}, concentration {res.conc_unit}\n")
    print(fmt_table(summary))
    dp = res.dose_proportionality()
    if not dp.empty:
        print("\nDose proportionality (power model ln y = a + b ln dose, 90% CI of b):")
        print(fmt_table(dp[["profile", "metric", "n", "slope", "lower", "upper"]], "{:.3f}"))
    for m in res.messages:
        print(f"note: {m}")
    for target in (args.out, args.summary):
        if target:
            print(f"wrote {target}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("predict", help="population predictions (no variability) at every record")
    add_data_args(p)
    p.add_argument("--model", required=True, help=f"structural model: {', '.join(sorted(KERNELS))}, or a model spec "
                                                  "(bundled name or TOML file, e.g. one naming your own model file)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="parameter value (repeat)")
    p.add_argument("--out", help="output CSV (default: standard output)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("datasets", help="list bundled datasets, or export one: datasets export NAME FILE")
    p.add_argument("action", nargs="?", choices=["export"])
    p.add_argument("rest", nargs="*")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("cache", help="where compiled programs are kept between runs, and their size; --clear empties it")
    p.add_argument("--clear", action="store_true", help="delete every compiled program in the cache")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("nca", help="non-compartmental analysis per subject and profile, summaries by group")
    add_data_args(p)
    p.add_argument("--out", help="per-profile CSV")
    p.add_argument("--summary", help="summary-by-group CSV")
    p.add_argument("--group", default="DOSE", help="column to summarise by (default DOSE, the profile's dose)")
    p.add_argument("--method", default="lin-up/log-down", choices=["lin-up/log-down", "linear"])
    p.add_argument("--blq", default="zero-before-tmax", choices=["zero-before-tmax", "zero", "drop"])
    p.add_argument("--min-points", type=int, default=3, help="samples after a dose needed for a profile")
    p.add_argument("--route", default="auto", choices=["auto", "extravascular", "intravascular"],
                   help="how doses were given; auto: RATE > 0 is an IV infusion, a bolus into the samples' CMT "
                        "an IV bolus, anything else extravascular (IV bolus data without CMT: intravascular)")
    p.set_defaults(func=cmd_nca)
