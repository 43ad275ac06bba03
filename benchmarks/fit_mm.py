"""The bundled trial's Michaelis-Menten fit, timed as a user runs it: ``poppk.fit``, 4 x (500 + 500).

Run: POPPK_CACHE_DIR=off .venv/bin/python benchmarks/fit_mm.py   (about 7 minutes on 2 cores; not part of CI)

Prints the whole time (imports, pilot, warm start, compilation, sampling, the fit object), the warm
start's and sampling's share, the minimum bulk ESS over population parameters, leapfrog steps per
iteration, divergences, and whether each generating parameter (``lxi15029_truth``) lies in its 90%
interval -- the same check as the slow recovery test. ``POPPK_CACHE_DIR=off``: everything compiled, as
on a first run.
"""
import time

t0 = time.perf_counter()
import poppk  # noqa: E402

poppk.set_host_devices(4)
data = poppk.datasets.load("lxi15029")
f = poppk.fit(data, "oral1cmt_mm", chains=4, warmup=500, samples=500, progress=False)
whole = time.perf_counter() - t0
d = f.diagnostics()
s = f.summary().set_index("parameter")
truth = poppk.datasets.load("lxi15029_truth")
expected = dict(truth["typical"])
expected.update({f"omega_{k}": v for k, v in truth["omega"].items()})
expected["sigma_log"] = truth["sigma"]["sigma_log"]
missed = {k: v for k, v in expected.items() if not s.loc[k, "q5"] <= v <= s.loc[k, "q95"]}
print(f"whole {whole:.0f} s (warm start {f.info.get('warm_start_seconds')} s, sampling "
      f"{f.info.get('sampling_seconds')} s); warm start: {f.info.get('warm_start')}")
print(f"min bulk ESS {s.ess_bulk.min():.0f} ({s.ess_bulk.idxmin()}), {s.ess_bulk.min() / whole:.2f} ESS/s; "
      f"steps/iteration {d['mean_num_steps']:.1f}; divergences {d['divergences']}; max R-hat {d['max_r_hat']:.3f}")
print("generating values outside the 90% intervals:", missed or "none")
print(s[["q5", "q50", "q95", "ess_bulk"]].to_string())
