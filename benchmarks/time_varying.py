"""Cost of a covariate that changes within subjects: one gradient of the model's log density with a
power effect of a time-varying covariate on CL, stepped from event to event (``interpolation =
"locf"``, :class:`poppk.pk.LinearStates`) against the same model using each subject's baseline value
(``"baseline"``, the closed form), on two designs:

- routine monitoring (``designs.py``'s 130 patients, 1 to 10 samples, irregular dosing with an SS
  record), with an acute-phase protein (``AAG``, as in the routine-monitoring datasets the issue
  describes) measured at every sample and drifting from one sample to the next in two thirds of the
  patients;
- a rich daily-dosing week (40 subjects, 11 samples each), creatinine clearance halving on day 3 in
  half of them.

The log density is NumPyro's potential of the model as ``poppk fit`` builds it, at NumPyro's initial
point; one gradient is timed inside a compiled loop of 100 (best of 3, ``gradient_cliff.loop_cost``),
each case in its own process (in-process switches reuse traced programs).

Run: .venv/bin/python benchmarks/designs.py  (once)
     .venv/bin/python benchmarks/time_varying.py  (a minute; writes results/time_varying.csv)
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model

import poppk
from poppk.model import build_model, parse_spec

from gradient_cliff import loop_cost

HERE = Path(__file__).parent
SPEC = """
[model]
kernel = "oral1cmt"
[parameters]
CL = {{ median = 5.0, sd_log = 1.0 }}
V = {{ median = 50.0, sd_log = 1.0 }}
KA = {{ median = 1.0, sd_log = 1.0 }}
[iiv]
parameters = ["CL", "V", "KA"]
[[covariates]]
parameter = "CL"
covariate = "{cov}"
kind = "power"
reference = {ref}
interpolation = "{how}"
[error]
model = "exponential"
"""


def monitoring() -> pd.DataFrame:
    frame = pd.read_csv(HERE / "data" / "sparse_monitoring.csv")
    rng = np.random.default_rng(7)
    out = []
    for _, g in frame.groupby("ID", sort=False):
        g = g.copy()
        level = 0.8 * np.exp(rng.normal(0, 0.3))
        drift = rng.uniform() < 2 / 3
        values, now = [], level
        for evid in g["EVID"]:
            if evid == 0 and drift:
                now = now * np.exp(rng.normal(0, 0.25))
            values.append(round(now, 3))
        g["AAG"] = values
        out.append(g)
    return pd.concat(out, ignore_index=True)


def daily() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(1, 41):
        crcl0 = rng.uniform(70, 120)
        for d in range(7):
            for tt, dose in [(24.0 * d, True)] + [(24.0 * d + s, False) for s in ((1.0, 4.0, 12.0) if d in (0, 6) else (23.0,))]:
                crcl = crcl0 / 2 if (i % 2 == 0 and tt >= 72) else crcl0
                rows.append(dict(ID=i, TIME=tt, AMT=100.0 if dose else 0.0, DV="." if dose else 1.0, EVID=int(dose),
                                 MDV=int(dose), CMT=1 if dose else 2, CRCL=crcl))
    return pd.DataFrame(rows)


DESIGNS = {"routine monitoring (130 x 1-10 samples, AAG)": (monitoring, "AAG", 0.8),
           "daily dosing (40 x 11 samples, CRCL)": (daily, "CRCL", 90)}


def one(design: str, how: str) -> dict:
    make, cov, ref = DESIGNS[design]
    data = poppk.from_frame(make(), warn=False)
    built = build_model(parse_spec(SPEC.format(cov=cov, ref=ref, how=how)), data)
    info = initialize_model(jax.random.PRNGKey(0), built.fn, model_kwargs=built.kwargs)
    flat, unravel = ravel_pytree(info.param_info.z)
    ms, compile_s = loop_cost(lambda x: info.potential_fn(unravel(x)), flat, grad=True)
    changes = built.changes
    n_changes = 0 if changes is None else int((np.asarray(changes.epoch) >= 0).sum())
    varying = int(((np.asarray(changes.epoch) >= 0).sum(axis=1) > 0).sum()) if changes is not None else 0
    return {"design": design, "interpolation": how, "grad_ms": round(ms, 4), "compile_s": round(compile_s, 2),
            "changes": n_changes, "subjects_changing": varying, "subjects": data.n_subjects}


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], sys.argv[3])))
        return 0
    rows = []
    for design in DESIGNS:
        for how in ("baseline", "locf"):
            run = subprocess.run([sys.executable, __file__, "--one", design, how], capture_output=True, text=True,
                                 check=True, env={"POPPK_CACHE_DIR": "off", **__import__("os").environ})
            rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    base = table[table.interpolation == "baseline"].set_index("design")["grad_ms"]
    table["ratio_to_closed_form"] = [round(r.grad_ms / base[r.design], 2) for r in table.itertuples()]
    table["date"] = datetime.date.today().isoformat()
    table["command"] = "benchmarks/time_varying.py"
    out = HERE / "results" / "time_varying.csv"
    table.to_csv(out, index=False)
    print(table.to_string(index=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
