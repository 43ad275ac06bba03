"""poppk against Stan (PyStan 3) on the same model, priors, parameterisation and data, side by side.

Run (not part of CI; the full set takes hours on 2 cores, mostly Stan):
    python3 -m venv .stanvenv && .stanvenv/bin/pip install pystan scipy  # once: Stan's own build
    .venv/bin/python benchmarks/stan_vs_poppk.py --case theophylline
    .venv/bin/python benchmarks/stan_vs_poppk.py --case trial_linear
    .venv/bin/python benchmarks/stan_vs_poppk.py --case trial_mm --stan-laplace --stan-warmup 100 \
        --stan-samples 100 --warmup 500 --samples 500 --poppk-runs 1       # about 2 hours, mostly Stan
    .venv/bin/python benchmarks/stan_vs_poppk.py --case trial_mm --gradient-only   # cost of one gradient, each

Each case runs Stan (``benchmarks/stan/*.stan``, every observation summing every dose in closed form,
or ``ode_rk45`` between events for Michaelis-Menten) and then poppk as a user runs it (``poppk fit`` in
its own process: start-up, compilation and everything counted), both with 4 chains, and prints:
compile and sampling time, the minimum bulk ESS over the population parameters (computed the same
way, arviz-stats, for both), ESS per second -- Stan's over its sampling time, poppk's over its whole
process -- leapfrog steps per iteration, and the ratio poppk/Stan. poppk runs twice: first with an
empty compilation cache (everything compiled, as on a first run), then again with the programs that
run left in the cache (as on any later run of the same fit; Stan's figure never includes its compile,
which PyStan also caches). ``--stan-laplace`` (the Michaelis-Menten case): Stan from a cold start on a
unit metric spends hours in trees at the depth limit, so it gets the warm start poppk's ODE fits use
(mode, Hessian, whitened coordinates; ``_stan_run.py`` says how), computed with Stan's own log density
and counted in Stan's sampling time. Results are appended to
``benchmarks/results/stan_vs_poppk.csv`` with the command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = {
    # case: (dataset, poppk model, stan file, dose unit, conc unit)
    "theophylline": ("theophylline", "oral1cmt_additive", "oral1cmt.stan", "mg", "mg/L"),
    "trial_linear": ("lxi15029", "oral1cmt", "oral1cmt.stan", "mg", "ng/mL"),
    "trial_mm": ("lxi15029", "oral1cmt_mm", "oral1cmt_mm.stan", "mg", "ng/mL"),
}


def stan_inputs(case: str) -> tuple[dict, dict, dict]:
    """Stan data, initial values (poppk's starting point: prior medians, omega 0.3, sigma half its
    prior scale, random effects at the typical values) and the draws to keep, from poppk's own model."""
    import poppk
    from poppk.model import build_model
    from poppk.pk import expand_trains

    dataset, model, _, _, _ = CASES[case]
    data = poppk.datasets.load(dataset)
    spec = poppk.load_spec(model)
    from poppk.fit._pilot import choose_parameterization

    pilot = choose_parameterization(spec, data)  # the centred/non-centred choice poppk fit makes
    built = build_model(spec, data, parameterization=pilot.choice if pilot else None)
    kw = built.kwargs
    mask, censored = np.asarray(kw["mask"]), np.asarray(kw["censored"])
    dv = np.where(censored, np.asarray(kw["lloq"]), np.asarray(data.dv))
    times = np.asarray(data.sampling.time)
    sub, col = np.nonzero(mask)
    obs_index = -np.ones(mask.shape, int)
    obs_index[sub, col] = np.arange(sub.size)
    each = expand_trains(data.doses)
    dmask = np.asarray(each.mask)
    dsub, dcol = np.nonzero(dmask)
    sigma = spec.error.sigmas[0]
    stan = {"N": data.n_subjects, "M": int(sub.size), "dv": dv[sub, col].tolist(),
            "blq": censored[sub, col].astype(int).tolist(), "scale": float(built.kernel.scale),
            "omega_scale": float(spec.iiv.omega[0]), "sigma_scale": float(built.sigma_scales[sigma]),
            "sigma_sd_log": float(spec.error.sd_log(sigma) or 0.0)}
    params = [p for p in built.kernel.parameters]
    stan["prior_median"] = [float(built.init_values[p]) for p in params]
    stan["prior_sd"] = [float(spec.parameter(p).prior.sd_log) for p in params]
    iiv = list(spec.iiv.parameters)
    stan["centred"] = [int(p in built.centred) for p in iiv]
    if spec.kernel == "oral1cmt":
        counts = np.bincount(dsub, minlength=data.n_subjects)
        stan.update({"D": int(dsub.size), "dose_start": (np.cumsum(counts) - counts + 1).tolist(),
                     "dose_end": np.cumsum(counts).tolist(),
                     "dose_time": np.asarray(each.time)[dsub, dcol].tolist(),
                     "dose_amt": np.asarray(each.amt)[dsub, dcol].tolist(),
                     "obs_id": (sub + 1).tolist(), "obs_time": times[sub, col].tolist(),
                     "additive": int(spec.error.model == "additive")})
    else:  # events sorted by (time, order) within subject, as poppk's engine sorts them
        ev_time, ev_amt, ev_obs, start, end = [], [], [], [], []
        order = np.asarray(data.sampling.order)
        present = np.asarray(data.present)
        for i in range(data.n_subjects):
            events = [(float(t), float(o), float(a), 0) for t, o, a in zip(
                np.asarray(each.time)[i][dmask[i]], np.asarray(each.order)[i][dmask[i]],
                np.asarray(each.amt)[i][dmask[i]])]
            events += [(float(times[i, j]), float(order[i, j]), 0.0, int(obs_index[i, j]) + 1)
                       for j in range(times.shape[1]) if present[i, j]]
            events.sort(key=lambda e: (e[0], e[1]))
            start.append(len(ev_time) + 1)
            for t, _, a, o in events:
                ev_time.append(t)
                ev_amt.append(a)
                ev_obs.append(max(o, 0))
            end.append(len(ev_time))
        stan.update({"E": len(ev_time), "ev_start": start, "ev_end": end, "ev_time": ev_time, "ev_amt": ev_amt,
                     "ev_obs": ev_obs})
    n = data.n_subjects
    log_med = np.log(stan["prior_median"])
    which = [params.index(p) for p in iiv]
    u = np.zeros((n, len(iiv)))
    for k, p in enumerate(iiv):
        if p in built.centred:
            u[:, k] = log_med[which[k]]
    init = {"log_theta": log_med.tolist(), "omega": [0.3] * len(iiv), "u": u.tolist(),
            "sigma": float(built.init_values[sigma])}
    keep = {p: f"fit['log_theta'][{k}]" for k, p in enumerate(params)}  # log scale; exp() taken after
    keep.update({f"omega_{p}": f"fit['omega'][{k}]" for k, p in enumerate(iiv)})
    keep[sigma] = "fit['sigma'][0]"
    return stan, init, keep


def min_bulk_ess(draws: dict[str, np.ndarray]) -> tuple[float, str]:
    from arviz_stats.base import array_stats

    ess = {k: float(array_stats.ess(np.asarray(v, float), chain_axis=0, draw_axis=1, method="bulk"))
           for k, v in draws.items()}
    name = min(ess, key=ess.get)
    return ess[name], name


def run_stan(case: str, python: str, chains: int, warmup: int, samples: int, seed: int, work: Path,
             laplace: bool = False) -> dict:
    stan, init, keep = stan_inputs(case)
    (work / "stan.json").write_text(json.dumps({"data": stan, "init": init, "keep": keep}))
    model = HERE / "stan" / CASES[case][2]
    subprocess.run([python, str(HERE / "_stan_run.py"), str(model), str(work / "stan.json"), str(work / "out.json"),
                    str(chains), str(warmup), str(samples), str(seed)] + (["laplace"] if laplace else []), check=True)
    out = json.loads((work / "out.json").read_text())
    draws = {}
    for k, v in out["draws"].items():
        draws[k] = np.exp(np.asarray(v)) if not (k.startswith("omega_") or k.startswith("sigma")) else np.asarray(v)
    ess, worst = min_bulk_ess(draws)
    tool = "Stan (PyStan 3)" + (", Laplace warm start" if laplace else "")
    return {"tool": tool, "compile_s": out["compile_s"], "run_s": out["sampling_s"],
            "ess_time_s": out["sampling_s"], "min_ess_bulk": ess, "worst": worst,
            "steps_per_iter": float(np.mean(out["n_leapfrog"])), "divergences": out["divergent"],
            "medians": {k: float(np.median(v)) for k, v in draws.items()}}


def gradient_only(case: str, python: str, work: Path) -> None:
    """Seconds per log-density gradient, Stan and poppk, at the same initial values; appended to
    ``benchmarks/results/stan_gradient.csv`` (for a case whose full Stan run would take hours)."""
    import jax

    sys.path.insert(0, str(HERE))
    from floor import grad_cost

    import poppk
    from poppk.fit._pilot import choose_parameterization
    from poppk.model import build_model

    stan, init, keep = stan_inputs(case)
    (work / "stan.json").write_text(json.dumps({"data": stan, "init": init, "keep": keep}))
    subprocess.run([python, str(HERE / "_stan_run.py"), str(HERE / "stan" / CASES[case][2]), str(work / "stan.json"),
                    str(work / "out.json"), "1", "20", "0", "1"], check=True)
    out = json.loads((work / "out.json").read_text())
    dataset, model, _, _, _ = CASES[case]
    data, spec = poppk.datasets.load(dataset), poppk.load_spec(model)
    pilot = choose_parameterization(spec, data)
    poppk_s = grad_cost(build_model(spec, data, parameterization=pilot.choice if pilot else None), repeats=20)
    row = pd.DataFrame([{"case": case, "stan_compile_s": out["compile_s"], "stan_grad_ms": 1e3 * out["grad_s"],
                         "poppk_grad_ms": 1e3 * poppk_s, "ratio": out["grad_s"] / poppk_s,
                         "jax": jax.__version__, "date": time.strftime("%Y-%m-%d")}])
    print(row.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    path = HERE / "results" / "stan_gradient.csv"
    row.to_csv(path, mode="a", header=not path.exists(), index=False)


def run_poppk(case: str, chains: int, warmup: int, samples: int, seed: int, work: Path, label: str) -> dict:
    """``poppk fit`` in its own process with the compilation cache in ``work/xla`` (empty for the first
    run -- everything compiled -- and holding that run's programs for the second)."""
    import poppk

    dataset, model, _, dose_unit, conc_unit = CASES[case]
    csv = poppk.datasets.path(dataset)
    out = work / f"fit_{label}"
    script = Path(sys.executable).parent / "poppk"  # the console script; else the module (same entry point)
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "poppk"]
    cmd += ["fit", str(csv), "--model", model, "--out", str(out),
           "--chains", str(chains), "--warmup", str(warmup), "--samples", str(samples), "--seed", str(seed),
           "--dose-unit", dose_unit, "--conc-unit", conc_unit, "--no-progress"]
    env = {**os.environ, "POPPK_CACHE_DIR": str(work / "xla")}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    whole = time.perf_counter() - t0
    info = json.loads((out / "fit.json").read_text())
    diag = json.loads((out / "diagnostics.json").read_text())
    summary = pd.read_csv(out / "summary.csv").set_index("parameter")
    return {"tool": f"poppk ({label})", "compile_s": whole - info["sampling_seconds"], "run_s": whole,
            "ess_time_s": whole, "min_ess_bulk": float(summary["ess_bulk"].min()),
            "worst": str(summary["ess_bulk"].idxmin()), "steps_per_iter": diag["mean_num_steps"],
            "divergences": diag["divergences"], "device": info.get("device", "cpu"),
            "chain_method": info["chain_method"], "medians": summary["q50"].to_dict()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=list(CASES), required=True)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000, help="poppk warmup (and Stan's unless --stan-warmup)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--stan-warmup", type=int)
    parser.add_argument("--stan-samples", type=int)
    parser.add_argument("--stan-python", default=os.environ.get("STAN_PYTHON", str(ROOT / ".stanvenv/bin/python")))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stan-laplace", action="store_true",
                        help="give Stan poppk's warm start for ODE fits, in Stan's own space and time (_stan_run.py)")
    parser.add_argument("--skip-stan", action="store_true", help="poppk only (reuse nothing: no ratio)")
    parser.add_argument("--poppk-runs", type=int, choices=[1, 2], default=2,
                        help="1: poppk with an empty cache only; 2: then again with the cache it filled")
    parser.add_argument("--gradient-only", action="store_true", help="only the cost of one gradient, each tool")
    args = parser.parse_args()
    if args.gradient_only:
        with tempfile.TemporaryDirectory() as tmp:
            gradient_only(args.case, args.stan_python, Path(tmp))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_stan:
            rows.append(run_stan(args.case, args.stan_python, args.chains, args.stan_warmup or args.warmup,
                                 args.stan_samples or args.samples, args.seed, work, args.stan_laplace))
        for label in ("cold cache", "warm cache")[: args.poppk_runs]:
            rows.append(run_poppk(args.case, args.chains, args.warmup, args.samples, args.seed, work, label))
    table = pd.DataFrame(rows)
    table["ess_per_s"] = table["min_ess_bulk"] / table["ess_time_s"]
    table.insert(0, "case", args.case)
    if not args.skip_stan:
        table["ratio_vs_stan"] = table["ess_per_s"] / table["ess_per_s"].iloc[0]
    table["command"] = "benchmarks/stan_vs_poppk.py " + " ".join(sys.argv[1:])
    table["date"] = time.strftime("%Y-%m-%d")
    table["device"] = table["device"].fillna("cpu")  # Stan's row: always the CPU
    cols = ["case", "tool", "device", "compile_s", "run_s", "min_ess_bulk", "worst", "ess_per_s", "steps_per_iter",
            "divergences"] + ([] if args.skip_stan else ["ratio_vs_stan"])
    with pd.option_context("display.width", 200):
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(pd.DataFrame({r["tool"]: r["medians"] for r in rows}).to_string(float_format=lambda v: f"{v:.4g}"))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / "stan_vs_poppk.csv"
    table = table.drop(columns=["medians"])
    if path.exists():  # earlier rows kept; rows from before the device column was added all ran on the CPU
        table = pd.concat([pd.read_csv(path), table], ignore_index=True)
        table["device"] = table["device"].fillna("cpu")
    table.to_csv(path, index=False)
    print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
