"""Cost of one gradient of the model's log density on each design, with and without the engine's two
cost cuts: the subjects in vmapped pieces of at most ``PIECE_SIZE`` subject-samples
(``poppk.pk._base``: the XLA CPU jump that ``gradient_cliff.py`` measures), and single doses apart from
dose trains (``Doses.singles``: the train path costs about 4 times as much per dose).

The log density is NumPyro's potential of the default ``oral1cmt`` model as ``poppk fit`` builds it,
at NumPyro's initial point; one gradient is timed inside a compiled loop of 100 (best of 3), each measurement in its own process
(compilation cache off). That loop
does not show the jump on the rich study that NUTS's own loop shows, so ``--nuts`` also times a short
NUTS fit (1 chain, 150 + 150, seed 1) of the rich study with and without pieces: sampling seconds and
leapfrog steps per iteration (``results/gradient_cost_nuts.csv``).

Run: .venv/bin/python benchmarks/designs.py  (once)
     .venv/bin/python benchmarks/gradient_cost.py [--nuts]  (minutes; writes results/gradient_cost.csv)
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pandas as pd
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model

import poppk
from poppk.model import build_model, load_spec
from poppk.pk import _base

from gradient_cliff import loop_cost

HERE = Path(__file__).parent
DESIGNS = {
    "bundled trial (24 x 54 doses)": poppk.datasets.path("lxi15029"),
    "rich study (120 x 39 samples)": HERE / "data" / "rich_study.csv",
    "routine monitoring (130 x 1-10 samples)": HERE / "data" / "sparse_monitoring.csv",
}


def cost(path, *, pieces: bool, singles: bool) -> dict:
    data = poppk.read_nonmem(path, warn=False)
    built = build_model(load_spec("oral1cmt"), data)
    kwargs = dict(built.kwargs)
    if not singles:
        kwargs["doses"] = dataclasses.replace(kwargs["doses"], singles=0)
    info = initialize_model(jax.random.PRNGKey(0), built.fn, model_kwargs=kwargs)
    flat, unravel = ravel_pytree(info.param_info.z)
    potential = info.potential_fn
    saved = _base.PIECE_SIZE
    _base.PIECE_SIZE = saved if pieces else 10**12
    try:
        ms, compile_s = loop_cost(lambda x: potential(unravel(x)), flat, grad=True)
    finally:
        _base.PIECE_SIZE = saved
    doses = kwargs["doses"]
    return {"pieces": pieces, "singles_apart": singles, "dose_columns": int(doses.time.shape[-1]),
            "single_columns": int(doses.singles), "grad_ms": ms, "grad_compile_s": compile_s}


def nuts(path, *, pieces: bool) -> dict:
    saved = _base.PIECE_SIZE
    _base.PIECE_SIZE = saved if pieces else 10**12
    try:
        f = poppk.fit(poppk.read_nonmem(path, warn=False), "oral1cmt", chains=1, warmup=150, samples=150,
                      progress=False, seed=1)
    finally:
        _base.PIECE_SIZE = saved
    return {"pieces": pieces, "sampling_s": f.info["sampling_seconds"],
            "steps_per_iteration": f.diagnostics()["mean_num_steps"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nuts", action="store_true")
    parser.add_argument("--one", nargs=4, metavar=("KIND", "DESIGN", "PIECES", "SINGLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # one measurement in this process: JAX keeps a traced program, whatever the switches say
        kind, design, pieces, singles = args.one
        poppk.configure_jax()
        path = DESIGNS[design]
        row = nuts(path, pieces=pieces == "1") if kind == "nuts" else cost(path, pieces=pieces == "1",
                                                                              singles=singles == "1")
        print(json.dumps(row))
        return
    today = datetime.date.today().isoformat()

    def measure(kind, design, pieces, singles):
        cmd = [sys.executable, __file__, "--one", kind, design, str(int(pieces)), str(int(singles))]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True,
                             env={**os.environ, "POPPK_CACHE_DIR": "off"})
        row = {"design": design, **json.loads(res.stdout.strip().splitlines()[-1])}
        print(row, flush=True)
        return row

    if args.nuts:
        rich = "rich study (120 x 39 samples)"
        fits = pd.DataFrame([measure("nuts", rich, p, True) for p in (False, True)]).assign(measured=today)
        fits.to_csv(HERE / "results" / "gradient_cost_nuts.csv", index=False)
        print(fits.to_string(index=False))
    rows = [measure("grad", name, pieces, singles) for name in DESIGNS
            for pieces, singles in ((False, False), (True, False), (True, True))]
    out = pd.DataFrame(rows).assign(measured=today)
    out.to_csv(HERE / "results" / "gradient_cost.csv", index=False)
    print(out.to_string(index=False))


if __name__ == "__main__":
    main()
