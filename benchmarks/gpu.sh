#!/usr/bin/env bash
# The GPU rows of the benchmarks, in one short run on a machine with a CUDA GPU and JAX's CUDA plugin.
#
# Usage: benchmarks/gpu.sh OUTDIR FITDIR_CLOSED FITDIR_ODE
#   FITDIR_*: fit folders of the bundled trial (oral1cmt, oral1cmt_mm) whose posteriors the simulation
#   benchmark draws virtual patients from (made on any machine with `poppk fit`; copied along).
# Each step has its own time limit, cut to what is left of $BUDGET_S (default 900) for the whole run, so
# one that fails or overruns leaves the others' results; every step's output goes to OUTDIR/gpu.log and
# after each step the benchmark CSVs (rows labelled with the GPU's name beside the CPU's) are copied to
# OUTDIR. Not part of CI. Python: $PYTHON (default python3); poppk from src/.
set -u
out=${1:?OUTDIR}; fit_cf=${2:?FITDIR_CLOSED}; fit_ode=${3:?FITDIR_ODE}
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$out"
log="$out/gpu.log"

budget=${BUDGET_S:-900}
step() {  # step SECONDS LABEL COMMAND...
    local limit=$1 label=$2; shift 2
    local left=$((budget - SECONDS))
    if ((left < 15)); then echo "=== $label: skipped, no time left" | tee -a "$log"; return; fi
    ((limit > left)) && limit=$left
    echo "=== $label ($(date +%T), limit ${limit} s): $*" | tee -a "$log"
    local t0=$SECONDS
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "=== $label: exit $? after $((SECONDS - t0)) s" | tee -a "$log"
    cp "$here"/results/{scaling.csv,scaling.png,scaling_fits.csv,simulate_population.csv,stan_vs_poppk.csv} "$out"/ 2>/dev/null
}

step 60 environment "$py" -c "
import jax, numpyro, diffrax, arviz, xarray, pandas, poppk
print('jax', jax.__version__, 'numpyro', numpyro.__version__, 'diffrax', diffrax.__version__,
      'arviz', arviz.__version__, 'xarray', xarray.__version__, 'pandas', pandas.__version__)
print(jax.devices(), jax.default_backend())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1
# 100,000 virtual patients x 28 days twice daily; cost of one gradient against patients and doses.
step 60 "simulate closed form" "$py" "$here/simulate_population.py" "$fit_cf" 100000
step 90 "scaling closed form" "$py" "$here/scaling.py" --repeats 5 --models oral1cmt
step 100 "simulate ODE" "$py" "$here/simulate_population.py" "$fit_ode" 100000
step 200 "scaling ODE" "$py" "$here/scaling.py" --repeats 3 --models oral1cmt_mm
# Fits on the GPU (four chains batched, chain_method 'vectorized'): theophylline with an empty cache and
# again warm; the bundled trial's linear model as in the CPU's Stan comparison (4 x (1000 + 1000)).
step 120 "fit theophylline" "$py" "$here/stan_vs_poppk.py" --case theophylline --skip-stan
step 120 "fit trial linear" "$py" "$here/stan_vs_poppk.py" --case trial_linear --skip-stan --poppk-runs 1
# Whole fits at 24 ... 1,536 patients: seconds per effective sample against size.
step 300 "fits against patients" "$py" "$here/scaling.py" --fits --sizes 1 4 16 64
echo "=== done $(date +%T)" | tee -a "$log"
