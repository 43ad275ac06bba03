"""How far a fit is from the cost of its arithmetic: seconds per log-density gradient, the gradients per
second NUTS achieves while drawing, and leapfrog steps per iteration.

Run: .venv/bin/python benchmarks/floor.py                     (about 3 minutes on 2 cores; not part of CI)
     .venv/bin/python benchmarks/floor.py --mm-fit DIR        (adds the Michaelis-Menten row from a fit
                                                              folder, e.g. poppk demo's fits/oral1cmt_mm)

For each case the model is built as ``poppk.fit`` builds it (same spec, data, "auto" choice of centred
or non-centred IIV). Then:

* ``grad_ms``: one gradient of the log density (unconstrained space), timed as 1,000 gradients inside one
  compiled loop (the arithmetic, as inside NUTS); ``grad_dispatched_ms``: one jitted call from Python
  (median of 50), which adds the dispatch of its arguments;
* ``floor_grads_per_s``: what the machine could do if sampling were nothing but gradients, all cores
  busy: cores / grad_ms;
* NUTS with poppk's settings (4 chains in parallel, 1,000 warmup iterations), then 1,000 and 2,000 draws
  from the adapted state; every run compiles its loop again, so the difference of the two is timed:
  ``achieved_grads_per_s`` = the extra leapfrog steps of all chains / the extra seconds, ``draw_seconds``
  = those seconds (1,000 draws, no compilation), ``steps_per_iteration``, and ``efficiency`` = achieved / floor
  (the share of the machine's gradient capacity the sampler turns into gradients; the rest is NUTS's
  own work per leapfrog step -- tree building, the momentum and the U-turn checks -- the parallel-chain
  overhead and the two cores shared by four chains).

The Michaelis-Menten row (``--mm-fit``) is an estimate: a warm-started ODE fit is not re-run here (it
takes 15 minutes); its draws' leapfrog steps are spread over the fit's sampling time after the warm
start, assuming the stage-2 warmup iterations took as many steps as the draws (they took at least as
many, and that time includes compiling the sampler, so the achieved rate is a lower bound). Writes ``benchmarks/results/floor.csv``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import poppk

poppk.set_host_devices(4)

OUT = Path(__file__).parent / "results"
CORES = 2
DRAWS = 1000
CASES = {
    "theophylline": ("theophylline", {}, "oral1cmt_additive"),
    "trial_linear": ("lxi15029", {}, "oral1cmt"),
}


def _start_and_timer(built):
    """The unconstrained starting point of ``built`` and a function timing ``fn(z)`` ``repeats`` times."""
    from poppk.fit._init import initial_params as _initial_params

    z = _initial_params(built, 1, np.random.default_rng(0))

    def timings(fn, repeats: int) -> list[float]:
        jax.block_until_ready(fn(z))  # compile
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            jax.block_until_ready(fn(z))
            times.append(time.perf_counter() - t)
        return times

    return z, timings


def grad_cost(built, repeats: int = 50) -> float:
    """Seconds per gradient called from Python (jitted, dispatch included), median of ``repeats``."""
    from poppk.fit._warmstart import _potential

    _, timings = _start_and_timer(built)
    return float(np.median(timings(jax.jit(jax.grad(_potential(built))), repeats)))


def grad_cost_loop(built, n: int = 1000, repeats: int = 20) -> float:
    """Seconds per gradient when ``n`` of them run inside one compiled loop (each from the last point, moved
    by a negligible step so none can be skipped): the arithmetic alone, as inside NUTS, without the Python
    dispatch that :func:`grad_cost` includes. Best of ``repeats`` (timing noise only adds). The potential is
    the flat-vector one that ``poppk.fit``'s NUTS differentiates (``poppk.fit._draws.flat_potential``)."""
    from poppk.fit._draws import flat_potential

    z, timings = _start_and_timer(built)
    potential, _, x0 = flat_potential(built, z, 1)
    grad = jax.grad(potential)
    loop = jax.jit(lambda x: jax.lax.fori_loop(0, n, lambda i, y: y - 1e-12 * grad(y), x))
    return min(timings(lambda _: loop(x0), repeats)) / n


def run_case(name: str) -> dict:
    from numpyro.infer import MCMC, NUTS

    from poppk.fit._pilot import choose_parameterization
    from poppk.fit._draws import flat_potential
    from poppk.fit._init import initial_params as _initial_params
    from poppk.model import build_model

    dataset, kwargs, model = CASES[name]
    data = poppk.datasets.load(dataset, **kwargs)
    spec = poppk.load_spec(model)
    pilot = choose_parameterization(spec, data)
    built = build_model(spec, data, parameterization=pilot.choice if pilot else None)
    dispatched = grad_cost(built)
    cost = grad_cost_loop(built)
    # NUTS on the flat vector, as poppk.fit runs it
    potential, _, init = flat_potential(built, _initial_params(built, 4, np.random.default_rng(0)), 4)
    # Every MCMC.run of parallel chains compiles its loop again (about 3 s here), so the rate is taken from the
    # difference of two runs from the adapted state, of DRAWS and 2 x DRAWS draws: the compilation cancels.
    timed = {}
    for n in (DRAWS, 2 * DRAWS):
        mcmc = MCMC(NUTS(potential_fn=potential, target_accept_prob=0.8, max_tree_depth=10), num_warmup=1000,
                    num_samples=n, num_chains=4, chain_method="parallel", progress_bar=False)
        mcmc.warmup(jax.random.PRNGKey(0), init_params=init)
        mcmc.post_warmup_state = mcmc.last_state
        t = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(n), extra_fields=("num_steps",))
        jax.block_until_ready(mcmc.get_samples())
        timed[n] = (time.perf_counter() - t, np.asarray(mcmc.get_extra_fields()["num_steps"], dtype=float))
    seconds = timed[2 * DRAWS][0] - timed[DRAWS][0]
    steps = timed[2 * DRAWS][1]
    achieved = (steps.sum() - timed[DRAWS][1].sum()) / seconds
    return {"case": name, "model": model, "parameterization": built.parameterization, "grad_ms": 1e3 * cost,
            "grad_dispatched_ms": 1e3 * dispatched, "floor_grads_per_s": CORES / cost, "steps_per_iteration": steps.mean(), "draw_seconds": seconds,
            "achieved_grads_per_s": achieved, "efficiency": achieved * cost / CORES, "estimate": False}


def mm_row(folder: Path) -> dict:
    import xarray as xr

    from poppk.model import build_model

    info = json.loads((folder / "fit.json").read_text())
    fit = poppk.load_fit(folder)
    centred = info.get("centered")
    if centred is None:  # fit folders written before fit.json listed them: "centered (VMAX, V), noncentered (KA)"
        text = info["parameterization"]
        centred = text.split("(")[1].split(")")[0].split(", ") if text.startswith("centered (") else (
            list(fit.spec.iiv.parameters) if text == "centered" else [])
    built = build_model(fit.spec, fit.data, parameterization=tuple(
        (p, "centered" if p in centred else "noncentered") for p in fit.spec.iiv.parameters))
    dispatched = grad_cost(built, repeats=20)
    cost = grad_cost_loop(built, n=20, repeats=5)
    tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf")
    steps = np.asarray(tree["sample_stats"]["n_steps"].values, dtype=float)
    per_iter = steps.mean()
    stage2 = info["warmup"] - info.get("warm_start_stage1", 0)
    total_steps = per_iter * info["chains"] * (stage2 + info["samples"])
    seconds = info["sampling_seconds"]  # from the end of the warm start: stage-2 warmup, draws (and compiling them)
    achieved = total_steps / seconds
    return {"case": "trial_mm", "model": fit.spec.name, "parameterization": info["parameterization"],
            "grad_ms": 1e3 * cost, "grad_dispatched_ms": 1e3 * dispatched, "floor_grads_per_s": CORES / cost,
            "steps_per_iteration": per_iter,
            "draw_seconds": seconds, "achieved_grads_per_s": achieved, "efficiency": achieved * cost / CORES,
            "estimate": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--mm-fit", type=Path, help="a fit folder of oral1cmt_mm on the bundled trial")
    args = parser.parse_args()
    rows = [run_case(c) for c in args.cases]
    if args.mm_fit:
        rows.append(mm_row(args.mm_fit))
    table = pd.DataFrame(rows)
    table["measured"] = datetime.date.today().isoformat()
    previous = OUT / "floor.csv"
    if previous.exists():  # rows of cases not run this time (the Michaelis-Menten estimate needs a fit folder) stay
        old = pd.read_csv(previous)
        table = pd.concat([table, old[~old["case"].isin(table["case"])]], ignore_index=True)
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / "floor.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
