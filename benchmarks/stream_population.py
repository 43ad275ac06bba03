"""Streamed virtual-population summaries (``poppk.simulate.population_summary``): seconds and peak memory for N
patients (default 1,000,000), split across 1 and 2 devices.

Run:  .venv/bin/python benchmarks/stream_population.py [N] [FITDIR]
(FITDIR default: a short theophylline fit made here). On CPU the devices are XLA host devices
(``poppk.set_host_devices(2)``); on a GPU machine, the GPUs. Prints seconds, patients per second and the
process's peak resident memory after each run; appends them to ``benchmarks/results/stream_population.csv``.
Not part of CI.
"""

import datetime
import resource
import sys
import tempfile
import time
from pathlib import Path

import jax
import pandas as pd

import poppk

poppk.set_host_devices(2)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    if len(sys.argv) > 2:
        fit = poppk.load_fit(sys.argv[2])
    else:
        fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=2, warmup=300, samples=300,
                        progress=False)
        fit = poppk.load_fit(fit.save(Path(tempfile.mkdtemp()) / "fit"))
    from poppk.simulate import Target, population_summary

    target = Target.parse("Cminss=3:")
    rows = []
    for devices in sorted({1, min(2, jax.local_device_count())}):
        population_summary(fit, "320 mg q12h x 7 d", 20_000, target=target, devices=devices)  # compile
        t0 = time.perf_counter()
        table = population_summary(fit, "320 mg q12h x 7 d", n, target=target, devices=devices)
        dt = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append({"patients": n, "devices": devices, "device": jax.devices()[0].device_kind, "seconds": round(dt, 1),
                     "patients_per_s": round(n / dt), "peak_rss_mb": round(peak),
                     "command": "benchmarks/stream_population.py " + " ".join(sys.argv[1:]),
                     "date": datetime.date.today().isoformat()})
        print(rows[-1], flush=True)
    print(table.to_string(index=False))
    path = Path(__file__).parent / "results" / "stream_population.csv"
    pd.DataFrame(rows).to_csv(path, mode="a", header=not path.exists(), index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
