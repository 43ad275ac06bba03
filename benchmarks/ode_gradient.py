"""Cost of one log-density-like gradient of the MM kernel on the bundled trial: adaptive vs fixed grid,
reverse mode through the solver vs forward sensitivities (``predict_subjects(..., forward=True)``).

Run: .venv/bin/python benchmarks/ode_gradient.py  (seconds per gradient and to compile; not part of CI)
"""
import time

import jax
import jax.numpy as jnp
import numpy as np

import poppk
from poppk.pk import Oral1CmtMM
from poppk.pk import predict_subjects

poppk._runtime.configure_jax()
data = poppk.datasets.load("lxi15029")
tr = poppk.datasets.load("lxi15029_truth")["individual"]
params = {k: np.asarray(tr[k], float) for k in ("VMAX", "KM", "V", "KA")}
lp = {k: jnp.log(v) for k, v in params.items()}
for m in (Oral1CmtMM(scale=1000.0, grid=0), Oral1CmtMM(scale=1000.0), Oral1CmtMM(scale=1000.0, grid=8)):
    prep = m.prepare(data.doses, data.sampling)
    for forward in (False, True):
        def f(lp, m=m, prep=prep, forward=forward):
            c = predict_subjects(m, {k: jnp.exp(v) for k, v in lp.items()}, prep, data.sampling, forward=forward)
            return jnp.sum(jnp.where(data.present, jnp.log(c + 1e-9), 0.0))

        t = time.perf_counter()
        g = jax.jit(jax.grad(f))
        jax.block_until_ready(g(lp))
        compile_s = time.perf_counter() - t
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(10):
                jax.block_until_ready(g(lp))
            best = min(best, (time.perf_counter() - t) / 10)
        print(f"grid {m.grid:2d} ({'adaptive' if m.grid == 0 else 'fixed'}), "
              f"{'forward sensitivities' if forward else 'reverse mode'}: {best:.4f} s per gradient, "
              f"compiled in {compile_s:.1f} s", flush=True)
