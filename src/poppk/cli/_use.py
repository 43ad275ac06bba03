"""Commands that use a fitted model: ``poppk simulate``, ``poppk tox``, ``poppk dose``."""

from __future__ import annotations

from pathlib import Path

from poppk import PoppkError, load_fit, set_host_devices

from ._common import files_only, number_list, positive_int, read_table, set_chain_devices
from ._common import fmt_table as _fmt
from ._batch import add_cluster_args, cmd_clinic
from ._efficacy import add_outcome_args, outcome_models



def _doses(text: str | None, fit) -> list[float]:
    if text:
        return number_list(text, "--doses", "10,20,40,80")
    import numpy as np

    amt = np.asarray(fit.data.doses.amt)[np.asarray(fit.data.doses.mask)]
    return sorted({float(a) for a in amt})  # the strengths given in the trial


def cmd_simulate(args) -> int:
    files_only()
    from poppk.plots import figure_regimens, save_figure
    from poppk.simulate import Target, simulate_regimen

    fit = load_fit(args.dir)
    target = Target.parse(args.target) if args.target else None
    if args.stream:
        return _simulate_streamed(args, fit, target)
    sim = simulate_regimen(fit, args.regimen, n=positive_int(args.n, "--n"), seed=args.seed, residual=args.residual)
    out = Path(args.out or Path(args.dir) / "simulations")
    sim.save(out, target)
    save_figure(figure_regimens(sim, target), out / "regimens.png")
    summary = sim.summary(target)
    keep = summary["metric"].isin(["AUCtau_ss", "Cmax_ss", "Cmin_ss", "t_ss_h"]) | summary["metric"].str.startswith("P(")
    print(_fmt(summary[keep]))
    from poppk.simulate import before_steady_state

    for label, g in sim.exposures.groupby("regimen", sort=False):
        share = before_steady_state(g)
        if share > 0:
            print(f"\nnote: {label} ends before steady state for {100 * share:.0f}% of patients (troughs below 90% "
                  "of steady state); *_ss metrics are at the true steady state, AUCtau_last and Cmin_last at "
                  "the regimen's end")
    print(f"\nwrote {out}/exposures.csv, summary.csv, bands.csv, regimens.png")
    return 0


def _simulation_devices(args) -> None:
    if args.devices:
        set_host_devices(positive_int(args.devices, "--devices"))


def _simulate_streamed(args, fit, target) -> int:
    """``poppk simulate --stream``: exposure summaries of any number of patients in bounded memory."""
    import pandas as pd

    from poppk.simulate import population_summary, simulation_devices

    n = positive_int(args.n, "--n")
    print(f"{n:,} virtual patients per regimen, {positive_int(args.chunk, '--chunk'):,} at a time on "
          f"{simulation_devices(args.devices)} device(s)")
    tables = [population_summary(fit, r, n, target=target, chunk=args.chunk, seed=args.seed, devices=args.devices)
              for r in args.regimen]
    table = pd.concat(tables, ignore_index=True)
    out = Path(args.out or Path(args.dir) / "simulations")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "summary_streamed.csv", index=False)
    print(_fmt(table))
    print(f"\nwrote {out}/summary_streamed.csv (quantiles within 0.23%: histogram bins of 1/1000 decade)")
    return 0


def cmd_tox(args) -> int:
    files_only()
    from poppk.plots import figure_exposure_response, save_figure
    from poppk.simulate import simulate_regimen
    from poppk.tox import fit_exposure_response

    fit = load_fit(args.dir)
    ae = read_table(args.ae, "adverse-event table")
    res = fit_exposure_response(fit, ae, args.event, metric=args.metric, grade=args.grade,
                                model="ordinal" if args.ordinal else "logistic", seed=args.seed,
                                chains=args.chains, interval=args.interval)
    out = Path(args.out or Path(args.dir) / "tox" / args.event)
    res.save(out)
    save_figure(figure_exposure_response(res), out / "exposure_response.png")
    d = res.diagnostics
    print(f"{args.event} (grade >= {res.grade}) against {res.metric} ({res.unit}), {res.model} model; "
          f"reference exposure {res.reference:.4g}")
    for k, v in res.draws.items():
        import numpy as np

        v = np.asarray(v)
        cols = [v] if v.ndim == 1 else [v[:, j] for j in range(v.shape[1])]
        for j, c in enumerate(cols):
            name = k if v.ndim == 1 else f"{k}[{j + 1}]"
            print(f"  {name}: median {np.median(c):.3f}, 90% interval [{np.quantile(c, .05):.3f}, "
                  f"{np.quantile(c, .95):.3f}]")
    warn = []
    if d.get("divergences"):
        warn.append(f"{d['divergences']} divergences")
    if d.get("max_r_hat", 1.0) > 1.01:
        warn.append(f"r_hat {d['max_r_hat']:.3f}")
    if warn:
        print("WARNING: " + ", ".join(warn))
    tau = args.interval or _interval(fit)
    regimens = args.regimen or [f"{d:g} {fit.data.dose_unit} q{tau:g}h x 28 d" for d in _doses(None, fit)]
    sim = simulate_regimen(fit, regimens, n=args.n, seed=args.seed)
    risk = res.regimen_risk(sim)
    risk.to_csv(out / "regimens.csv", index=False)
    print("\nexpected event rate by regimen (90% interval):")
    print(_fmt(risk))
    print(f"\nwrote {out}/exposure_response.png, curve.csv, patients.csv, regimens.csv, draws.csv, tox.json")
    return 0


def _interval(fit) -> float:
    import numpy as np

    from poppk.simulate import patient_regimens

    return float(np.median([r.tau for r in patient_regimens(fit).values()]))


def cmd_dose(args) -> int:
    files_only()
    import matplotlib.pyplot as plt

    from poppk.dosing import patient_posterior, recommend_dose, virtual_trial
    from poppk.plots import plot_dose_options
    from poppk.simulate import Target

    fit = load_fit(args.dir)
    if args.target is None:
        raise PoppkError("--target is required, e.g. --target AUCss=3000:6000")
    target = Target.parse(args.target)
    if args.max_tox_prob is not None and not 0 < args.max_tox_prob < 1:
        raise PoppkError(f"--max-tox-prob must be between 0 and 1, got {args.max_tox_prob}")
    tox, response, survival = outcome_models(args.dir, tox=args.tox, response=args.response, efficacy=args.efficacy,
                                             survival=args.survival)
    if (response or survival) and not args.virtual_trial:
        raise PoppkError("--response and --survival report efficacy in the virtual trial (--virtual-trial); for one "
                         "patient's dose they are not used")
    if args.max_tox_prob is not None and tox is None:
        raise PoppkError("--max-tox-prob needs --tox EVENT (an exposure-toxicity model made by poppk tox)")
    doses = _doses(args.doses, fit)
    intervals = number_list(args.interval, "--interval", "12 or 12,24")
    out = Path(args.out or Path(args.dir) / "dosing")
    out.mkdir(parents=True, exist_ok=True)
    if args.virtual_trial:
        if len(intervals) != 1:
            raise PoppkError("the virtual trial uses one dosing interval")
        start = args.start_dose or max(d for d in doses if d <= sorted(doses)[len(doses) // 2])
        table = virtual_trial(fit, target, doses=doses, start_dose=start, interval=intervals[0], n=args.n,
                              trough_day=args.trough_day, tox=tox, max_tox_prob=args.max_tox_prob,
                              method=args.method, seed=args.seed, route=args.route, duration=args.infusion,
                              response=response, survival=survival)
        table.to_csv(out / "virtual_trial.csv", index=False)
        print(f"virtual trial, {args.n} patients: fixed dosing vs PK-guided (start {start:g} "
              f"{fit.data.dose_unit}, trough on day {args.trough_day:g}); target {target.label}")
        print(_fmt(table))
        print(f"\nwrote {out}/virtual_trial.csv")
        return 0
    if args.patients:
        if args.patient:
            raise PoppkError("give --patient FILE (one patient) or --patients FOLDER (a clinic), not both")
        return cmd_clinic(args, args.target, doses, intervals)
    if not args.patient:
        raise PoppkError("give --patient FILE (one patient's records), --patients FOLDER or --virtual-trial")
    from poppk import read_nonmem

    patient = read_nonmem(args.patient, dose_unit=fit.data.dose_unit, conc_unit=fit.data.conc_unit, lloq=args.lloq,
                          warn=False)
    post = patient_posterior(fit, patient, method=args.method, seed=args.seed)
    rec = recommend_dose(fit, post, target, doses=doses, intervals=intervals, tox=tox, max_tox_prob=args.max_tox_prob,
                         route=args.route, duration=args.infusion)
    rec.table.to_csv(out / "dose_options.csv", index=False)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    plot_dose_options(rec.table, ax=ax)
    ax.set_title(f"patient {patient.ids[0]}: {target.label}")
    fig.tight_layout()
    fig.savefig(out / "dose_options.png", dpi=120)
    plt.close(fig)
    ess = f", importance-sampling ESS {post.ess:.0f}" if post.ess is not None else ""
    print(f"patient {patient.ids[0]}: {post.method} posterior{ess}")
    if post.ess is not None and post.ess < 100:
        print("WARNING: few effective draws; the posterior is approximate (try --method map to compare)")
    print(_fmt(rec.table.drop(columns=["recommended"])))
    print(f"\nrecommended: {rec.recommended or 'none'} -- {rec.reason}")
    print(f"wrote {out}/dose_options.csv, dose_options.png")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("simulate", help="simulate regimens for virtual patients from a fit's posterior")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--regimen", action="append", required=True,
                   help='e.g. "110 mg q12h x 28 d" (repeat to compare regimens)')
    p.add_argument("--n", type=int, default=1000, help="virtual patients (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--residual", action="store_true", help="add residual error to the concentration bands")
    p.add_argument("--target", help="target window, e.g. AUCss=3000:6000 (adds P(target) to the summary)")
    p.add_argument("--stream", action="store_true",
                   help="millions of patients: summaries only (no per-patient rows, no bands), memory bounded")
    p.add_argument("--chunk", type=int, default=10_000, help="--stream: patients computed at a time")
    p.add_argument("--devices", type=int, help="--stream: split each chunk across N devices (on CPU, N host "
                                               "devices, e.g. the cores; default: every GPU, one CPU device)")
    p.add_argument("--out", help="output folder (default DIR/simulations)")
    p.set_defaults(func=cmd_simulate, before_jax=_simulation_devices)

    p = sub.add_parser("tox", help="exposure-toxicity model of an adverse event against posterior exposure")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--ae", required=True, help="CSV: ID and the maximum grade of each event (0 = none)")
    p.add_argument("--event", required=True, help="column of the event to model")
    p.add_argument("--metric", default="AUCss", help="AUCss (default), Cmaxss, Cminss or Cavss")
    p.add_argument("--grade", type=int, default=1, help="event = grade >= G (default 1)")
    p.add_argument("--interval", type=float, help="dosing interval (h) of the patients' regimen (default: the data's)")
    p.add_argument("--ordinal", action="store_true", help="ordinal model over grades instead of logistic")
    p.add_argument("--regimen", action="append", help="regimens for the event-rate table (default: the trial's doses)")
    p.add_argument("--n", type=int, default=1000, help="virtual patients per regimen")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default DIR/tox/EVENT)")
    p.set_defaults(func=cmd_tox, before_jax=set_chain_devices)

    p = sub.add_parser("dose", help="PK-guided dose for one patient, or a virtual trial of guided vs fixed dosing")
    p.add_argument("dir", help="fit folder")
    p.add_argument("--patient", help="one patient's NONMEM-style records (doses and observations)")
    p.add_argument("--patients", metavar="FOLDER",
                   help="a folder of patient files (*.csv, one patient each): one recommendation per patient, as "
                        "Dask tasks (--workers, --scheduler); table in OUT/results.csv")
    p.add_argument("--target", help="target window, e.g. AUCss=3000:6000")
    p.add_argument("--doses", help="available strengths, e.g. 10,20,40,80 (default: the trial's doses)")
    p.add_argument("--interval", default="12", help="dosing interval(s) in h, e.g. 12 or 12,24")
    add_outcome_args(p)
    p.add_argument("--max-tox-prob", type=float, help="only regimens with P(toxicity) at most this")
    p.add_argument("--method", choices=["full", "map"], default="full",
                   help="full Bayesian (default) or MAP (fast) patient posterior")
    p.add_argument("--lloq", type=float, help="LLOQ of the patient's BLQ records when the file has no LLOQ column")
    p.add_argument("--virtual-trial", action="store_true", help="fixed vs PK-guided dosing on virtual patients")
    p.add_argument("--route", choices=["oral", "iv"],
                   help="route of the candidate regimens (default: oral for a model with a depot, iv otherwise)")
    p.add_argument("--infusion", type=float, default=0.0, metavar="HOURS",
                   help="give the candidate IV doses as infusions over HOURS (default 0: boluses)")
    p.add_argument("--start-dose", type=float, help="virtual trial: starting dose (default: the middle strength)")
    p.add_argument("--trough-day", type=float, default=8.0, help="virtual trial: day of the measured trough")
    p.add_argument("--n", type=int, default=500, help="virtual trial: patients")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default DIR/dosing; DIR/dosing/clinic with --patients)")
    add_cluster_args(p)
    p.set_defaults(func=cmd_dose)
