"""Virtual-population simulation speed: N patients (default 100,000), 28 days of twice-daily dosing.

Run: .venv/bin/python benchmarks/simulate_population.py FITDIR [N]
(FITDIR: a fit folder, e.g. ``demo-out/fits/oral1cmt`` (closed form) or ``demo-out/fits/oral1cmt_mm``
(ODE) from ``poppk demo``). Prints seconds for the first call (compilation included) and a second
call (compiled), and patients per second; appends both to ``benchmarks/results/simulate_population.csv``.
Not part of CI; no peer here: mrgsolve/Pumas are not installable on this machine.
"""

import datetime
import os
import sys
import time
from pathlib import Path

import jax
import pandas as pd

import poppk
from poppk.simulate import simulate_regimen, virtual_population

fit = poppk.load_fit(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
pop = virtual_population(fit, n, seed=0)
rows = []
for label in ("first (compiles)", "second"):
    t = time.perf_counter()
    sim = simulate_regimen(fit, "110 mg q12h x 28 d", population=pop)
    dt = time.perf_counter() - t
    print(f"{fit.spec.name}: {n} patients x 56 doses, {label}: {dt:.2f} s ({n / dt:,.0f} patients/s)")
    rows.append({"model": fit.spec.name, "kernel": fit.spec.kernel, "patients": n, "doses": 56, "call": label,
                 "seconds": round(dt, 3), "patients_per_s": round(n / dt), "device": jax.devices()[0].device_kind,
                 "cpus": os.cpu_count(), "command": " ".join(["benchmarks/simulate_population.py", *sys.argv[1:]]),
                 "date": datetime.date.today().isoformat()})
print(sim.summary().query("metric == 'AUCtau_ss'").to_string())
out = Path(__file__).parent / "results" / "simulate_population.csv"
pd.DataFrame(rows).to_csv(out, mode="a", header=not out.exists(), index=False)
