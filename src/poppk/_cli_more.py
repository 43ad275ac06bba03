"""Commands beyond predict/datasets: NCA (and, as they land, fit, report, ...)."""

from __future__ import annotations

import sys
from pathlib import Path


def _fmt_table(frame, floatfmt: str = "{:.4g}") -> str:
    import pandas as pd

    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else floatfmt.format(v)
        return str(v)

    cols = [str(c) for c in frame.columns]
    rows = [[fmt(v) for v in r] for r in frame.itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) if i >= 1 else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths)))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def cmd_nca(args) -> int:
    from .errors import PoppkError
    from .nca import compute_nca

    res = compute_nca(args.data, dose_unit=args.dose_unit, conc_unit=args.conc_unit, lloq=args.lloq,
                      method=args.method, blq=args.blq, min_points=args.min_points)
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
    print(_fmt_table(summary))
    dp = res.dose_proportionality()
    if not dp.empty:
        print("\nDose proportionality (power model ln y = a + b ln dose, 90% CI of b):")
        print(_fmt_table(dp[["profile", "metric", "n", "slope", "lower", "upper"]], "{:.3f}"))
    for m in res.messages:
        print(f"note: {m}")
    for target in (args.out, args.summary):
        if target:
            print(f"wrote {target}")
    return 0


def add_commands(sub) -> None:
    from .cli import _data_args

    p = sub.add_parser("nca", help="non-compartmental analysis per subject and profile, summaries by group")
    _data_args(p)
    p.add_argument("--out", help="per-profile CSV")
    p.add_argument("--summary", help="summary-by-group CSV")
    p.add_argument("--group", default="DOSE", help="column to summarise by (default DOSE, the profile's dose)")
    p.add_argument("--method", default="lin-up/log-down", choices=["lin-up/log-down", "linear"])
    p.add_argument("--blq", default="zero-before-tmax", choices=["zero-before-tmax", "zero", "drop"])
    p.add_argument("--min-points", type=int, default=3, help="samples after a dose needed for a profile")
    p.set_defaults(func=cmd_nca)
