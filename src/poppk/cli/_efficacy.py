"""The ``efficacy`` command: time to event and response against posterior exposure."""

from __future__ import annotations

from pathlib import Path

from poppk import load_fit

from ._common import files_only, read_table
from ._common import fmt_table as _fmt


def cmd_efficacy(args) -> int:
    files_only()
    import numpy as np
    import pandas as pd

    from poppk.efficacy import fit_survival, kaplan_meier, logrank, median_with_ci, survival_vpc
    from poppk.plots import figure_efficacy, save_figure

    fit = load_fit(args.dir)
    table = read_table(args.events, "event table")
    res = fit_survival(fit, table, time=args.time, event=args.event, metric=args.metric, model=args.model,
                       time_unit=args.time_unit, chains=args.chains, seed=args.seed, interval=args.interval)
    out = Path(args.out or Path(args.dir) / "efficacy")
    res.save(out / "survival")
    p = res.patients
    km = kaplan_meier(p["time"], p["event"], p["tertile"])
    km.to_csv(out / "km_by_tertile.csv", index=False)
    vpc = survival_vpc(res, seed=args.seed)
    vpc.to_csv(out / "survival_vpc.csv", index=False)
    save_figure(figure_efficacy(km, vpc, time_unit=res.time_unit), out / "efficacy.png")
    med, lo, hi = median_with_ci(p["time"], p["event"])
    print(f"{res.endpoint}: {len(p)} evaluable patients, {int(p['event'].sum())} events; Kaplan-Meier median "
          f"{med:g} {res.time_unit} (95% CI {lo:g}-{hi:g})")
    r = res.ratio_per_doubling()
    print(f"{res.model} model against {res.metric} ({res.unit}), reference {res.reference:.4g}: {r['name']} per "
          f"doubling of exposure {r['median']:.2f} (90% interval {r['lo']:.2f}-{r['hi']:.2f}); "
          f"P(longer {res.endpoint} at higher exposure) {r['p_benefit']:.2f}")
    print(_fmt(res.summary()))
    rows = []
    for g, sel in p.groupby("tertile", sort=False):
        m, a, b = median_with_ci(sel["time"], sel["event"])
        rows.append({"tertile": g, "n": len(sel), f"{res.metric} range": f"{sel['exposure_median'].min():.3g}-"
                     f"{sel['exposure_median'].max():.3g}", "KM median": m, "95% CI": f"{a:g}-{b:g}"})
    print(_fmt(pd.DataFrame(rows)))
    print(f"log-rank across tertiles: p = {logrank(p['time'], p['event'], p['tertile']):.3f}")
    d = res.diagnostics
    if d.get("divergences") or d.get("max_r_hat", 1.0) > 1.01:
        print(f"WARNING: {d.get('divergences', 0)} divergences, r_hat {d.get('max_r_hat', np.nan):.3f}")
    if args.power:
        from poppk.efficacy import detection_power

        pw = detection_power(res, args.power, n_trials=args.power_trials, seed=args.seed)
        print(f"power: a true {r['name']} of {args.power:g} per doubling would be detected (90% interval excluding 1) "
              f"in {100 * pw['power']:.0f}% of {pw['n_trials']} simulated trials of {pw['n_patients']} patients "
              f"(90% interval {100 * pw['lo']:.0f}-{100 * pw['hi']:.0f}%)")
        pw["trials"].to_csv(out / "power_trials.csv", index=False)
    if args.response:
        from poppk.tox import fit_exposure_response

        resp = fit_exposure_response(fit, table.dropna(subset=[args.response]), args.response, metric=args.metric,
                                     seed=args.seed, chains=args.chains, interval=args.interval, subset=True)
        resp.save(out / args.response)
        orr = np.exp(np.asarray(resp.draws["slope"]) * np.log(2.0))
        print(f"{args.response} against {resp.metric}: {int(resp.patients['event'].sum())}/{len(resp.patients)} "
              f"patients; odds ratio per doubling of exposure {np.median(orr):.2f} (90% interval "
              f"{np.quantile(orr, 0.05):.2f}-{np.quantile(orr, 0.95):.2f})")
    print(f"\nwrote {out}/ (survival/, km_by_tertile.csv, survival_vpc.csv, efficacy.png"
          f"{', ' + args.response + '/' if args.response else ''})")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("efficacy", help="time to event (PFS) and response (disease control) against posterior exposure")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--events", required=True, help="CSV, one row per patient: ID, the time, the event flag (and responses)")
    p.add_argument("--time", default="PFS_DAYS", help="column of the time from the first dose (empty: not evaluable)")
    p.add_argument("--event", default="PFS_EVENT", help="column of the event flag (1 observed, 0 censored)")
    p.add_argument("--time-unit", default="days", help="unit of the times (default days)")
    p.add_argument("--model", default="weibull", choices=["weibull", "exponential", "loglogistic"])
    p.add_argument("--metric", default="Cmin_ss", help="exposure: Cmin_ss (trough, default), AUCtau_ss, Cav_ss, Cmax_ss")
    p.add_argument("--response", help="a 0/1 response column (e.g. DC, disease control) to model against exposure too")
    p.add_argument("--interval", type=float, help="dosing interval (h) of the patients' regimen (default: the data's)")
    p.add_argument("--power", type=float, metavar="RATIO",
                   help="also report how often a trial of this design detects a true ratio per doubling of RATIO")
    p.add_argument("--power-trials", type=int, default=100, help="simulated trials for --power (default 100)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default DIR/efficacy)")
    p.set_defaults(func=cmd_efficacy)
