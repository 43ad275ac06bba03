"""Cost of one gradient of sum(log C) for every bundled kernel, on one design: 24 subjects, doses every
12 h for 7 days (an IV 1-h infusion for IV kernels, oral doses otherwise), 12 samples each.

Run: .venv/bin/python benchmarks/kernel_cost.py  (prints a Markdown table; best of 5 x 10 calls)
"""
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import poppk
from poppk.pk import get_kernel, predict_subjects

sys.path.insert(0, str(Path(__file__).parent))
from _timing import compile_and_time  # noqa: E402

poppk.configure_jax()
PARAMS = {
    "iv1cmt": {"CL": 3.0, "V": 20.0}, "iv2cmt": {"CL": 3.0, "V1": 20.0, "Q": 5.0, "V2": 40.0},
    "iv3cmt": {"CL": 3.0, "V1": 20.0, "Q": 5.0, "V2": 40.0, "Q3": 2.0, "V3": 100.0},
    "oral1cmt": {"CL": 3.0, "V": 20.0, "KA": 1.3}, "oral2cmt": {"CL": 3.0, "V1": 20.0, "Q": 5.0, "V2": 40.0, "KA": 1.3},
    "oral3cmt": {"CL": 3.0, "V1": 20.0, "Q": 5.0, "V2": 40.0, "Q3": 2.0, "V3": 100.0, "KA": 1.3},
    "oral1cmt_ode": {"CL": 3.0, "V": 20.0, "KA": 1.3}, "oral1cmt_mm": {"VMAX": 30.0, "KM": 2.0, "V": 20.0, "KA": 1.3},
    "mm2cmt": {"VMAX": 30.0, "KM": 2.0, "V1": 20.0, "Q": 5.0, "V2": 40.0, "KA": 1.3},
}


def design(iv: bool) -> poppk.PKDataset:
    rows = []
    for i in range(1, 25):
        for d in range(14):
            rows.append(dict(ID=i, TIME=12.0 * d, AMT=100.0, RATE=100.0 if iv else 0.0, DV=np.nan, EVID=1, MDV=1, CMT=1))
        for t in (0.5, 1, 2, 4, 8, 11.9, 72, 156, 156.5, 157, 160, 168):
            rows.append(dict(ID=i, TIME=float(t), AMT=0.0, RATE=0.0, DV=1.0, EVID=0, MDV=0, CMT=0))
    frame = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable")
    return poppk.data.from_frame(frame.reset_index(drop=True), warn=False)


def kernel(name):
    if name in poppk.pk.KERNELS:
        return get_kernel(name)
    return poppk.load_spec(name).make_kernel()


print("| kernel | states | ms per gradient (24 subjects) | compile s |")
print("|---|---|---|---|")
for name, p in PARAMS.items():
    data = design(name.startswith("iv"))
    k = kernel(name)
    prep = k.prepare(data.doses, data.sampling)
    present = np.asarray(data.present)
    n = data.n_subjects

    def f(lp, k=k, prep=prep):
        c = predict_subjects(k, {q: jnp.exp(v) * jnp.ones(n) for q, v in lp.items()}, prep, data.sampling,
                             forward=k.forward_sensitivities)
        return jnp.sum(jnp.where(present, jnp.log(jnp.where(present, c, 1.0)), 0.0))

    lp = {q: jnp.log(v) for q, v in p.items()}
    best, compile_s = compile_and_time(jax.grad(f), lp, repeats=5)
    print(f"| {name} | {len(k.compartments)} | {1000 * best:.2f} | {compile_s:.1f} |", flush=True)
