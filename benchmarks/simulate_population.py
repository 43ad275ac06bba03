"""Virtual-population simulation speed: 100,000 patients, 28 days of twice-daily dosing.

Run: .venv/bin/python benchmarks/simulate_population.py FITDIR [N]
(FITDIR: a fit folder, e.g. from `poppk fit` on the bundled trial). Prints seconds for the
first call (compilation included) and a second call (compiled), and patients per second.
Not part of CI; no peer here: mrgsolve/Pumas are not installable on this machine.
"""

import sys
import time

import poppk
from poppk.simulate import simulate_regimen, virtual_population

fit = poppk.load_fit(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
pop = virtual_population(fit, n, seed=0)
for label in ("first (compiles)", "second"):
    t = time.perf_counter()
    sim = simulate_regimen(fit, "110 mg q12h x 28 d", population=pop)
    dt = time.perf_counter() - t
    print(f"{fit.spec.name}: {n} patients x 56 doses, {label}: {dt:.2f} s ({n / dt:,.0f} patients/s)")
print(sim.summary().query("metric == 'AUCtau_ss'").to_string())
