"""Cost of one gradient of the closed-form predictions (sum of log C over the fitted records) as the rich
study grows subject by subject, and with the subjects split into two vmapped pieces.

Finding (2026-12-03, this 2-core CPU): the reverse pass jumps about 8x once subjects x samples exceeds
4,096 (between 105 and 106 subjects of 39 samples); the forward pass does not. Splitting the subjects
into pieces under that size restores the small-size cost but multiplies compile time (the numbers are
in the CSV). The XLA CPU flags tried (multi_thread_eigen, ftz, fast_math, xnnpack, thunk runtime,
parallel_codegen_split_count, concurrency-optimised scheduler) do not move the jump.

Run: .venv/bin/python benchmarks/gradient_cliff.py   (about 2 minutes; writes results/gradient_cliff.csv)
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import poppk
from poppk.model import build_model, load_spec

HERE = Path(__file__).parent
CALLS = 100


def loop_cost(f, x, grad: bool) -> tuple[float, float]:
    """(ms per call inside one compiled loop of CALLS, compile seconds); best of 3."""
    g = jax.grad(f) if grad else (lambda y: f(y) * jnp.ones_like(y))
    loop = jax.jit(lambda x: jax.lax.fori_loop(0, CALLS, lambda i, y: y - 1e-12 * g(y), x))
    t = time.perf_counter()
    jax.block_until_ready(loop(x))
    compile_s = time.perf_counter() - t
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        jax.block_until_ready(loop(x))
        best = min(best, time.perf_counter() - t)
    return 1e3 * best / CALLS, compile_s


def case(frame: pd.DataFrame, pieces: int) -> dict:
    data = poppk.from_frame(frame, warn=False)
    built = build_model(load_spec("oral1cmt"), data, parameterization="noncentered")
    kw, kern, n = built.kwargs, built.kernel, data.n_subjects
    bounds = np.linspace(0, n, pieces + 1).round().astype(int)

    def loglik(x):
        ind = {"CL": 5 * jnp.exp(x[:n]), "V": 50 * jnp.exp(x[n:2 * n]), "KA": 1.2 * jnp.exp(x[2 * n:])}
        ind = {k: jnp.broadcast_to(jnp.asarray(v, dtype=float), (n,)) for k, v in kern.complete(ind).items()}
        args = (ind, kw["doses"], kw["sampling"])
        pred = jnp.concatenate([jax.vmap(kern.concentrations)(*jax.tree_util.tree_map(lambda a: a[lo:hi], args))
                                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)], axis=0)
        return jnp.sum(jnp.where(kw["mask"], jnp.log(jnp.maximum(pred, 1e-30)), 0.0))

    x = jnp.full(3 * n, 0.01)
    grad_ms, grad_compile = loop_cost(loglik, x, grad=True)
    value_ms, _ = loop_cost(loglik, x, grad=False)
    return {"subjects": n, "samples": int(kw["sampling"].time.shape[1]), "pieces": pieces,
            "subjects_x_samples": n * int(kw["sampling"].time.shape[1]), "value_ms": value_ms,
            "grad_ms": grad_ms, "grad_compile_s": grad_compile}


def main() -> None:
    poppk.configure_jax()
    rich = pd.read_csv(HERE / "data" / "rich_study.csv")
    rows = [case(rich[rich["ID"] <= n], 1) for n in (60, 104, 105, 106, 120)]
    rows.append(case(rich, 2))
    rows.append(case(rich, 3))
    out = pd.DataFrame(rows).assign(measured=datetime.date.today().isoformat())
    out.to_csv(HERE / "results" / "gradient_cliff.csv", index=False)
    print(out.to_string(index=False))


if __name__ == "__main__":
    main()
