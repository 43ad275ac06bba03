"""Run one Stan model with PyStan 3 and write draws and timings as JSON (called by stan_vs_poppk.py).

Run with a Python that has pystan (``python3 -m venv .stanvenv && .stanvenv/bin/pip install pystan``):
    .stanvenv/bin/python benchmarks/_stan_run.py MODEL.stan DATA.json OUT.json CHAINS WARMUP SAMPLES SEED

SAMPLES = 0: no sampling; the seconds of one log-density gradient at the initial values (median of WARMUP calls).
"""

import json
import sys
import time

import stan

model_path, data_path, out_path = sys.argv[1:4]
chains, warmup, samples, seed = (int(x) for x in sys.argv[4:8])
payload = json.load(open(data_path))
data, init, keep = payload["data"], payload["init"], payload["keep"]
t0 = time.perf_counter()
posterior = stan.build(open(model_path).read(), data=data, random_seed=seed)
compiled = time.perf_counter() - t0
if samples == 0:
    x = posterior.unconstrain_pars(init)
    times = []
    for _ in range(max(warmup, 1)):
        t = time.perf_counter()
        posterior.grad_log_prob(x)
        times.append(time.perf_counter() - t)
    times.sort()
    json.dump({"compile_s": compiled, "grad_s": times[len(times) // 2]}, open(out_path, "w"))
    print(f"stan: compile {compiled:.0f} s, one gradient {1e3 * times[len(times) // 2]:.2f} ms")
    sys.exit(0)
t1 = time.perf_counter()
fit = posterior.sample(num_chains=chains, num_warmup=warmup, num_samples=samples, init=[init] * chains)
sampled = time.perf_counter() - t1
out = {"compile_s": compiled, "sampling_s": sampled, "chains": chains, "samples": samples,
       "n_leapfrog": fit["n_leapfrog__"].reshape(samples, chains).T.tolist(),
       "divergent": int(fit["divergent__"].sum()), "draws": {}}
for name, expr in keep.items():
    values = eval(expr, {"fit": fit, "__builtins__": {}})  # noqa: S307 - our own expressions
    out["draws"][name] = values.reshape(samples, chains).T.tolist()
json.dump(out, open(out_path, "w"))
print(f"stan: compile {compiled:.0f} s, sampling {sampled:.0f} s")
