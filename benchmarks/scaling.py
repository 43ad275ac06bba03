"""How the cost of one log-density gradient grows with patients and with doses, closed form and ODE.

Run: .venv/bin/python benchmarks/scaling.py [--repeats 10] [--models oral1cmt]   (about 10 minutes on 2 cores,
     1 for the closed form alone; not part of CI)
     .venv/bin/python benchmarks/scaling.py --fits [--sizes 1 4 16]   (whole fits; 8 minutes on 2 cores)

* Patients: the bundled trial (24 patients, 54 doses and 26 samples each) replicated 1, 4, 16 and 64
  times (24 ... 1,536 patients; each copy a new ID).
* Doses: 24 patients of 100 mg q12h with 56, 224 or 896 doses and the same 22 samples each (the first
  dose's profile, ten troughs spread over the regimen, the last dose's profile); the doses given either as
  one ADDL train per patient (what the closed form sums as a geometric series) or as one record per dose.

For each: the log density of the shipped spec (``oral1cmt``: closed form; ``oral1cmt_mm``: ODE, 8 fixed
steps between events) built by poppk as ``poppk.fit`` builds it (IIV centring by ``build_model``'s
sample-count rule: the fit's pilot is not run here), its gradient jitted with ``jax.grad``;
seconds to compile and seconds per gradient (median of ``--repeats`` calls). Writes
``benchmarks/results/scaling.csv`` and ``benchmarks/results/scaling.png``. With ``--fits``: whole
``poppk.fit`` calls of the linear model at ``--sizes`` copies of the trial (4 x (500 + 500) by default),
seconds per effective sample (minimum bulk ESS over population parameters), appended to
``benchmarks/results/scaling_fits.csv`` -- on 2 CPU cores a fit of 384 patients took 400 s, on an
H200 70 s (``benchmarks/gpu.sh``). Rows are labelled with the device (JAX's device kind), so a
GPU's rows sit beside the CPU's.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import poppk
from poppk.fit._warmstart import _potential
from poppk.fit._init import initial_params as _initial_params
from poppk.model import build_model

OUT = Path(__file__).parent / "results"


MODELS = ("oral1cmt", "oral1cmt_mm")


def replicated_trial(k: int) -> pd.DataFrame:
    df = pd.read_csv(poppk.datasets.path("lxi15029"))
    ids = df["ID"].unique()
    parts = []
    for r in range(k):
        part = df.copy()
        part["ID"] = part["ID"].map({old: r * len(ids) + i + 1 for i, old in enumerate(ids)})
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def dosing_history(n_doses: int, trains: bool, n_subjects: int = 24) -> pd.DataFrame:
    tau, last = 12.0, 12.0 * (n_doses - 1)
    profile = np.array([0.5, 1, 2, 4, 6, 8, 12.0]) - 1e-6
    troughs = tau * np.unique(np.linspace(1, n_doses - 1, 10).round()) - 1e-6
    samples = np.unique(np.concatenate([profile, troughs, last + profile[:5]]))
    rng = np.random.default_rng(1)
    rows = []
    for i in range(1, n_subjects + 1):
        doses = [(0.0, n_doses - 1)] if trains else [(tau * j, 0) for j in range(n_doses)]
        recs = [dict(ID=i, TIME=t, AMT=100.0, DV=np.nan, EVID=1, MDV=1, CMT=1, II=tau if addl else 0.0, ADDL=addl)
                for t, addl in doses]
        recs += [dict(ID=i, TIME=t, AMT=0.0, DV=float(rng.lognormal(6, 0.5)), EVID=0, MDV=0, CMT=2, II=0.0, ADDL=0)
                 for t in samples]
        rows += sorted(recs, key=lambda r: (r["TIME"], r["EVID"] == 0))
    return pd.DataFrame(rows)


def time_gradient(frame: pd.DataFrame, model: str, repeats: int) -> dict:
    data = poppk.from_frame(frame, dose_unit="mg", conc_unit="ng/mL")
    built = build_model(poppk.load_spec(model), data)
    potential_fn = _potential(built)  # the log density the warm start optimises
    z = _initial_params(built, 1, np.random.default_rng(0))
    grad = jax.jit(jax.grad(potential_fn))
    t = time.perf_counter()
    jax.block_until_ready(grad(z))
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(grad(z))
        times.append(time.perf_counter() - t)
    return {"patients": data.n_subjects, "observations": data.n_observations,
            "compile_s": round(compile_s, 2), "s_per_gradient": float(np.median(times))}


def time_fit(k: int, chains: int, warmup: int, samples: int) -> dict:
    """One whole ``poppk.fit`` of the linear model on ``k`` copies of the trial."""
    data = poppk.from_frame(replicated_trial(k), dose_unit="mg", conc_unit="ng/mL")
    t = time.perf_counter()
    f = poppk.fit(data, "oral1cmt", chains=chains, warmup=warmup, samples=samples, seed=1, progress=False)
    seconds = time.perf_counter() - t
    d = f.diagnostics()
    return {"model": "oral1cmt", "patients": data.n_subjects, "observations": data.n_observations,
            "chains": chains, "warmup": warmup, "samples": samples, "chain_method": f.info["chain_method"],
            "seconds": round(seconds, 1), "sampling_seconds": f.info["sampling_seconds"],
            "min_ess_bulk": round(d["min_ess_bulk"]), "s_per_ess": seconds / d["min_ess_bulk"],
            "steps_per_iter": round(d["mean_num_steps"], 1), "divergences": d["divergences"],
            "max_r_hat": round(d["max_r_hat"], 3)}


def main_fits(args) -> int:
    """Seconds per effective sample against patients; the CSV is rewritten after every fit."""
    device = jax.devices()[0].device_kind
    command = (f"benchmarks/scaling.py --fits --sizes {' '.join(map(str, args.sizes))} --chains {args.chains} "
               f"--warmup {args.warmup} --samples {args.samples}")
    path = OUT / "scaling_fits.csv"
    kept = pd.read_csv(path) if path.exists() else pd.DataFrame()
    rows = []
    for k in args.sizes:
        rows.append({**time_fit(k, args.chains, args.warmup, args.samples), "device": device, "command": command,
                     "date": datetime.date.today().isoformat()})
        print(rows[-1], flush=True)
        pd.concat([kept, pd.DataFrame(rows)], ignore_index=True).to_csv(path, index=False)
        jax.clear_caches()
    with pd.option_context("display.width", 200):
        print(pd.DataFrame(rows).drop(columns=["command", "date"]).to_string(index=False))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS),
                        help="re-measure only these; the other models' rows, and rows from other devices (a GPU's "
                             "beside the CPU's), stay in the CSV with their dates")
    parser.add_argument("--fits", action="store_true",
                        help="instead: whole fits of the linear model at --sizes copies of the trial, seconds per "
                             "effective sample (appended to results/scaling_fits.csv)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 4, 16], help="with --fits: copies of the trial")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    if args.fits:  # chains in parallel on CPU cores, as the poppk command runs them (no effect on a GPU)
        poppk.set_host_devices(args.chains)
    poppk._runtime.configure_jax()
    if args.fits:
        return main_fits(args)
    rows = []
    for model in args.models:
        for k in (1, 4, 16, 64):
            r = time_gradient(replicated_trial(k), model, args.repeats)
            rows.append({"axis": "patients", "model": model, "doses": 54, "dose_records": "as in the data", **r})
            print(rows[-1], flush=True)
        for trains in (True, False):
            for n in (56, 224, 896):
                r = time_gradient(dosing_history(n, trains), model, args.repeats)
                rows.append({"axis": "doses", "model": model, "doses": n,
                             "dose_records": "ADDL train" if trains else "one per dose", **r})
                print(rows[-1], flush=True)
                jax.clear_caches()
    table = pd.DataFrame(rows)
    table["command"] = "benchmarks/scaling.py"
    device = jax.devices()[0].device_kind
    table["device"] = device
    table["date"] = datetime.date.today().isoformat()
    if (OUT / "scaling.csv").exists():
        kept = pd.read_csv(OUT / "scaling.csv")
        table = pd.concat([kept[~(kept.model.isin(args.models) & (kept.device == device))], table], ignore_index=True)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "scaling.csv", index=False)
    plot(table)
    with pd.option_context("display.width", 200):
        print(table[table.device == device].drop(columns=["command", "device", "date"]).to_string(index=False))
    return 0


def plot(table: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for (model, device), g in table[table.axis == "patients"].groupby(["model", "device"]):
        a.loglog(g.patients, g.s_per_gradient, "o-" if device == "cpu" else "s--", label=f"{model}, {device}")
    x = np.array([24, 1536])
    ref = table[(table.axis == "patients") & (table.device == "cpu")].s_per_gradient.min()
    a.loglog(x, ref * x / 24, "k:", label="linear in patients")
    a.set(xlabel="patients", ylabel="seconds per gradient", title="patients (54 doses each)")
    a.legend(fontsize=7)
    for (model, rec, device), g in table[table.axis == "doses"].groupby(["model", "dose_records", "device"]):
        b.loglog(g.doses, g.s_per_gradient, "o-" if device == "cpu" else "s--", label=f"{model}, {rec}, {device}")
    b.set(xlabel="doses per patient", ylabel="seconds per gradient", title="doses (24 patients, 22 samples each)")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "scaling.png", dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
