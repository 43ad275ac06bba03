"""Run one Stan model with PyStan 3 and write draws and timings as JSON (called by stan_vs_poppk.py).

Run with a Python that has pystan (``python3 -m venv .stanvenv && .stanvenv/bin/pip install pystan scipy``):
    .stanvenv/bin/python benchmarks/_stan_run.py MODEL.stan DATA.json OUT.json CHAINS WARMUP SAMPLES SEED [laplace]

SAMPLES = 0: no sampling; the seconds of one log-density gradient at the initial values (median of WARMUP calls).

``laplace``: Stan gets the warm start poppk gives its ODE fits (``poppk/fit/_warmstart.py``), done in Stan's
own unconstrained space with Stan's own log density and gradient, and its seconds counted in Stan's
sampling time: the mode by L-BFGS from the initial values, the Hessian by central differences of the
gradient, and then NUTS on whitened coordinates ``z`` with ``x = mode + L z`` (``L L^T`` the inverse
Hessian), which is what a dense metric equal to the Laplace covariance does (HMC is affine invariant
when the metric moves with the coordinates; PyStan offers only the diagonal metric, so the program is
rewritten instead: :func:`whiten`). Chains start at ``z ~ N(0, I)``, draws from the Laplace
approximation, as poppk's do; Stan's own warmup then adapts the step size and a diagonal metric on z.
On the bundled trial (Michaelis-Menten) 4 x (100 + 100) took 6,232 s this way on 2 cores (README,
"Against Stan"); 4 x (150 + 150) did not finish in a session.
"""

import json
import re
import sys
import time

import numpy as np
import stan

#: Smallest Hessian eigenvalue kept relative to the largest (as poppk's warm start).
EIG_FLOOR = 1e-10
#: Relative step of the central differences of the gradient: wider than poppk's 1e-5, as Stan's adaptive
#: RK45 (relative tolerance 1e-6) makes its gradient rough at small scales. The whitening it gives on the
#: bundled trial was checked against Stan's own log density (README, "Against Stan").
STEP = 1e-3


def whiten(program: str, n_subjects: int) -> tuple[str, int]:
    """``program`` with its parameters (``log_theta``, ``omega``, ``u``, ``sigma``, declared in that
    order, as in ``benchmarks/stan/*.stan``) replaced by ``z``, ``x = mu + L z`` unpacked in Stan's own
    unconstrained order (log of the positive ones; ``u`` column-major) and the log Jacobian of the
    exp() transforms added to the target. Returns the program and the number of parameters."""
    block = re.search(r"parameters \{\n  vector\[(\d)\] log_theta;.*?\n  vector<lower=0>\[(\d)\] omega;.*?\n"
                      r"  matrix\[N, (\d)\] u;.*?\n  real<lower=0> sigma;\n\}\ntransformed parameters \{\n",
                      program, flags=re.S)
    if block is None:
        raise SystemExit("laplace: the program's parameters block is not the one whiten() knows")
    p, q = int(block[1]), int(block[2])
    k = p + q + q * n_subjects + 1
    new = (f"parameters {{\n  vector[{k}] z;\n}}\ntransformed parameters {{\n"
           f"  vector[{k}] x = mu + L * z;\n"
           f"  vector[{p}] log_theta = x[1:{p}];\n"
           f"  vector[{q}] omega = exp(x[{p + 1}:{p + q}]);\n"
           f"  matrix[N, {q}] u = to_matrix(x[{p + q + 1}:{k - 1}], N, {q});\n"
           f"  real sigma = exp(x[{k}]);\n")
    program = program[: block.start()] + new + program[block.end():]
    program = program.replace("\n}\nparameters {", f"\n  vector[{k}] mu;\n  matrix[{k}, {k}] L;\n}}\nparameters {{", 1)
    program = program.replace("\nmodel {\n", f"\nmodel {{\n  target += sum(x[{p + 1}:{p + q}]) + x[{k}];  // log Jacobian\n", 1)
    return program, k


def laplace(posterior, init: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """Mode of ``posterior``'s log density (unconstrained, Jacobian included) from ``init`` and the
    Cholesky factor of the inverse Hessian there. Stan's compiled log density and gradient are called
    directly (httpstan's extension module, no HTTP)."""
    import httpstan.models
    from scipy.optimize import minimize

    module = httpstan.models.import_services_extension_module(posterior.model_name)
    data = posterior.data

    def grad(x):  # of minus the log density
        return -np.asarray(module.log_prob_grad(data, list(map(float, x)), True))

    def fun(x):
        try:
            value, g = module.log_prob(data, list(map(float, x)), True), grad(x)
        except RuntimeError:
            return np.inf, np.zeros(len(x))
        if not (np.isfinite(value) and np.isfinite(g).all()):
            return np.inf, np.zeros(len(x))
        return -value, g

    x0 = np.asarray(posterior.unconstrain_pars(init), float)
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": 3000, "maxfun": 6000})
    mode, n = res.x, res.x.size
    h = STEP * np.maximum(1.0, np.abs(mode))
    hess = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h[i]
        hess[:, i] = (grad(mode + e) - grad(mode - e)) / (2 * h[i])  # the gradient only: no log density
    asym = np.abs(hess - hess.T).max() / np.abs(hess).max()
    print(f"stan: Hessian asymmetry (a measure of its noise) {asym:.2g}", flush=True)
    w, vecs = np.linalg.eigh(0.5 * (hess + hess.T))
    if w[0] <= 0:
        raise SystemExit("laplace: the Hessian at the mode is not positive definite")
    w = np.maximum(w, EIG_FLOOR * w[-1])
    return mode, np.linalg.cholesky((vecs / w) @ vecs.T), int(res.nit)


def main() -> None:
    model_path, data_path, out_path = sys.argv[1:4]
    chains, warmup, samples, seed = (int(x) for x in sys.argv[4:8])
    warm = sys.argv[8:] == ["laplace"]
    payload = json.load(open(data_path))
    data, init, keep = payload["data"], payload["init"], payload["keep"]
    program = open(model_path).read()
    t0 = time.perf_counter()
    posterior = stan.build(program, data=data, random_seed=seed)
    if warm:
        whitened, k = whiten(program, data["N"])
        stan.build(whitened, data={**data, "mu": [0.0] * k, "L": np.eye(k).tolist()}, random_seed=seed)
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
        return
    t1 = time.perf_counter()
    extra = {}
    if warm:
        mode, chol, nit = laplace(posterior, init)
        extra = {"laplace_s": time.perf_counter() - t1, "laplace_iterations": nit}
        print(f"stan: Laplace warm start {extra['laplace_s']:.0f} s ({nit} L-BFGS iterations)", flush=True)
        posterior = stan.build(whitened, data={**data, "mu": mode.tolist(), "L": chol.tolist()}, random_seed=seed)
        rng = np.random.default_rng(seed)
        init = [{"z": rng.standard_normal(k).tolist()} for _ in range(chains)]
    else:
        init = [init] * chains
    fit = posterior.sample(num_chains=chains, num_warmup=warmup, num_samples=samples, init=init)
    sampled = time.perf_counter() - t1
    out = {"compile_s": compiled, "sampling_s": sampled, "chains": chains, "samples": samples, **extra,
           "n_leapfrog": fit["n_leapfrog__"].reshape(samples, chains).T.tolist(),
           "divergent": int(fit["divergent__"].sum()), "draws": {}}
    for name, expr in keep.items():
        values = eval(expr, {"fit": fit, "__builtins__": {}})  # noqa: S307 - our own expressions
        out["draws"][name] = values.reshape(samples, chains).T.tolist()
    json.dump(out, open(out_path, "w"))
    print(f"stan: compile {compiled:.0f} s, sampling {sampled:.0f} s (warm start included)")


if __name__ == "__main__":
    main()
