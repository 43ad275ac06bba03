"""Cost of one log-density-like gradient of the MM kernel on the bundled trial: adaptive vs fixed grid.

Run: .venv/bin/python benchmarks/ode_gradient.py  (seconds per gradient: adaptive, 16 and 8 fixed steps; not part of CI)
"""
import time, numpy as np, jax, jax.numpy as jnp, poppk
from poppk.pk import Oral1CmtMM
from poppk.pk._base import predict_subjects
poppk._config.configure_jax()
data = poppk.datasets.load("lxi15029")
tr = poppk.datasets.load("lxi15029_truth")["individual"]
params = {k: np.asarray(tr[k], float) for k in ("VMAX", "KM", "V", "KA")}
for m in (Oral1CmtMM(scale=1000.0, grid=0), Oral1CmtMM(scale=1000.0), Oral1CmtMM(scale=1000.0, grid=8)):
    prep = m.prepare(data.doses, data.sampling)
    f = lambda lp: jnp.sum(jnp.where(data.present, jnp.log(predict_subjects(m, {k: jnp.exp(v) for k, v in lp.items()}, prep, data.sampling) + 1e-9), 0.0))
    g = jax.jit(jax.grad(f)); lp = {k: jnp.log(v) for k, v in params.items()}
    jax.block_until_ready(g(lp)); t = time.perf_counter()
    for _ in range(20): jax.block_until_ready(g(lp))
    print("grid", m.grid, "s/grad %.4f" % ((time.perf_counter() - t) / 20))
