"""The ``efficacy`` and ``benefit-risk`` commands: time to event and response against posterior exposure,
and candidate regimens weighed on both sides."""

from __future__ import annotations

from pathlib import Path

from poppk import PoppkError, load_fit

from ._common import files_only, number_list, positive_int, read_table
from ._common import fmt_table as _fmt


def cmd_efficacy(args) -> int:
    files_only()
    import numpy as np
    import pandas as pd

    from poppk.efficacy import event_table, fit_survival, kaplan_meier, logrank, median_with_ci, survival_vpc
    from poppk.plots import figure_efficacy, save_figure

    from poppk.simulate import metric_name, patient_exposure

    fit = load_fit(args.dir)
    table = read_table(args.events, "event table")
    event_table(table, fit.data.ids, time=args.time, event=args.event, time_lo=args.time_lo)  # bad rows: fail first
    exposure = patient_exposure(fit, metric_name(args.metric), seed=args.seed, interval=args.interval)
    res = fit_survival(fit, table, time=args.time, event=args.event, metric=args.metric, model=args.model,
                       time_unit=args.time_unit, chains=args.chains, seed=args.seed, interval=args.interval,
                       exposure=exposure, time_lo=args.time_lo)
    out = Path(args.out or Path(args.dir) / "efficacy")
    res.save(out / "survival")
    p = res.patients
    km = kaplan_meier(p["time"], p["event"], p["tertile"])
    km.to_csv(out / "km_by_tertile.csv", index=False)
    vpc = survival_vpc(res, seed=args.seed)
    vpc.to_csv(out / "survival_vpc.csv", index=False)
    save_figure(figure_efficacy(km, vpc, time_unit=res.time_unit), out / "efficacy.png")
    med, lo, hi = median_with_ci(p["time"], p["event"])
    if args.time_lo:
        print(f"{res.endpoint}: events interval-censored between {args.time_lo} and {args.time} (the Kaplan-Meier "
              f"curves below use the assessment times, {args.time})")
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
                                     seed=args.seed, chains=args.chains, interval=args.interval, subset=True,
                                     exposure=exposure)
        resp.save(out / args.response)
        orr = np.exp(np.asarray(resp.draws["slope"]) * np.log(2.0))
        print(f"{args.response} against {resp.metric}: {int(resp.patients['event'].sum())}/{len(resp.patients)} "
              f"patients; odds ratio per doubling of exposure {np.median(orr):.2f} (90% interval "
              f"{np.quantile(orr, 0.05):.2f}-{np.quantile(orr, 0.95):.2f})")
    print(f"\nwrote {out}/ (survival/, km_by_tertile.csv, survival_vpc.csv, efficacy.png"
          f"{', ' + args.response + '/' if args.response else ''})")
    return 0


def outcome_models(fit_dir, *, tox: str | None, response: str | None, efficacy: str | None, survival: bool):
    """The saved models a benefit-risk table or a virtual trial uses: ``(tox, response, survival)``, each
    None when not asked for; a folder that is not there is a clear error naming the command that makes it."""
    from poppk.efficacy import SurvivalResult
    from poppk.tox import ExposureResponse

    eff = Path(efficacy) if efficacy else Path(fit_dir) / "efficacy"
    tox_model = resp_model = surv_model = None
    if tox:
        if not (Path(fit_dir) / "tox" / tox / "tox.json").exists():
            raise PoppkError(f"no exposure-toxicity model {tox!r} in {Path(fit_dir) / 'tox'}; make it with "
                             f"poppk tox {fit_dir} --ae FILE --event {tox}")
        tox_model = ExposureResponse.load(Path(fit_dir) / "tox" / tox)
    if response:
        if not (eff / response / "tox.json").exists():
            raise PoppkError(f"no exposure-response model {response!r} in {eff}; make it with poppk efficacy "
                             f"{fit_dir} --events FILE --response {response}")
        resp_model = ExposureResponse.load(eff / response)
    if survival:
        if not (eff / "survival" / "survival.json").exists():
            raise PoppkError(f"no exposure-survival model in {eff}; make it with poppk efficacy {fit_dir} --events FILE")
        surv_model = SurvivalResult.load(eff / "survival")
    return tox_model, resp_model, surv_model


def cmd_benefit_risk(args) -> int:
    files_only()
    from poppk.dosing import candidate_regimens
    from poppk.efficacy import Utility, benefit_risk
    from poppk.simulate import Target, parse_regimen

    fit = load_fit(args.dir)
    utility = Utility.parse(args.utility, max_tox=args.max_tox_prob, min_response=args.min_response,
                            min_target=args.min_target)
    tox, response, survival = outcome_models(args.dir, tox=args.tox, response=args.response, efficacy=args.efficacy,
                                             survival=args.survival)
    target = Target.parse(args.target) if args.target else None
    if args.regimen:
        regimens = [parse_regimen(r) for r in args.regimen]
    else:
        if not args.doses:
            raise PoppkError("give the candidates: --regimen \"110 mg q12h x 28 d\" (repeat) or --doses 40,80,110")
        regimens = candidate_regimens(number_list(args.doses, "--doses", "40,80,110"),
                                      number_list(args.interval, "--interval", "12 or 12,24"), fit.data.dose_unit,
                                      days=args.days)
    br = benefit_risk(fit, regimens, target=target, tox=tox, response=response, survival=survival, utility=utility,
                      n=positive_int(args.n, "--n"), seed=args.seed)
    out = Path(args.out or Path(args.dir) / "benefit_risk")
    out.mkdir(parents=True, exist_ok=True)
    br.table.to_csv(out / "benefit_risk.csv", index=False)
    used = ", ".join(f"{k}: {v}" for k, v in br.names.items() if v)
    print(f"benefit-risk of {len(regimens)} regimens for {args.n} virtual patients ({used}); medians and 90% intervals")
    print(_fmt(br.table))
    print(f"\nrecommended: {br.recommended or 'none'} -- {br.reason}")
    print(f"wrote {out}/benefit_risk.csv")
    return 0


def add_outcome_args(p) -> None:
    """``--tox``, ``--response``, ``--survival`` and ``--efficacy``: the saved outcome models to use."""
    p.add_argument("--tox", help="event whose exposure-toxicity model (poppk tox, in DIR/tox/EVENT) gives P(toxicity)")
    p.add_argument("--response", help="response whose exposure-response model (poppk efficacy --response NAME) gives "
                   "P(response), e.g. DC")
    p.add_argument("--survival", action="store_true", help="add the median time to event from the exposure-survival "
                   "model (poppk efficacy)")
    p.add_argument("--efficacy", help="folder of poppk efficacy's output (default DIR/efficacy)")


def add_commands(sub) -> None:
    p = sub.add_parser("efficacy", help="time to event (PFS) and response (disease control) against posterior exposure")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--events", required=True, help="CSV, one row per patient: ID, the time, the event flag (and responses)")
    p.add_argument("--time", default="PFS_DAYS", help="column of the time from the first dose (empty: not evaluable)")
    p.add_argument("--event", default="PFS_EVENT", help="column of the event flag (1 observed, 0 censored)")
    p.add_argument("--time-lo", metavar="COLUMN", help="column of each event's last assessment without it (0: none "
                   "before): the event is interval-censored between the two (e.g. PFS_LO_DAYS); default exact times")
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

    p = sub.add_parser("benefit-risk", help="candidate regimens scored on P(target), P(toxicity), P(response), "
                       "median PFS and a stated utility")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--regimen", action="append", help='a candidate, e.g. "110 mg q12h x 28 d" (repeat)')
    p.add_argument("--doses", help="or candidate doses, e.g. 40,80,110 (with --interval and --days)")
    p.add_argument("--interval", default="12", help="dosing interval(s) in h for --doses (default 12)")
    p.add_argument("--days", type=int, default=28, help="days of dosing for --doses (default 28)")
    p.add_argument("--target", help="target window, e.g. Cav_ss=100:300 (adds P(target))")
    add_outcome_args(p)
    p.add_argument("--utility", help="weights, e.g. response=1,tox=-2 (terms target, tox, response, pfs; pfs per "
                   "unit of time); without it the table is not ranked")
    p.add_argument("--max-tox-prob", type=float, help="only regimens whose median P(toxicity) is at most this")
    p.add_argument("--min-response", type=float, help="only regimens whose median P(response) is at least this")
    p.add_argument("--min-target", type=float, help="only regimens whose median P(target) is at least this")
    p.add_argument("--n", type=int, default=1000, help="virtual patients (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default DIR/benefit_risk)")
    p.set_defaults(func=cmd_benefit_risk)
