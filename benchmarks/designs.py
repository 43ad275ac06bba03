"""Datasets shaped like what users bring, simulated with known parameters (not part of the package).

Run: .venv/bin/python benchmarks/designs.py   (a few seconds; writes benchmarks/data/*.csv and *_truth.json)

* ``sparse_monitoring``: routine therapeutic drug monitoring. 130 patients on oral doses of 100-400 mg
  every 12 or 24 h, each history opened by a steady-state record (``SS=1``, ``II``) and continued by 3
  to 15 doses taken up to 2 h off schedule; 1 to 10 samples per patient at random times in the last
  doses' intervals (mostly troughs); weight (WT) acts on CL allometrically, ``(WT/70)^0.75``, in the
  truth and is left to the IIV by the bundled ``oral1cmt`` a user first fits.
* ``rich_study``: a rich multiple-dose study. 120 subjects, 100 mg once daily for 7 days, 39 samples
  each (dense after the first and the last dose, troughs between): 4,680 observations.

The observations are drawn from the bundled ``oral1cmt`` model itself (NumPyro's forward model
conditioned on the true population parameters, random effects and residuals drawn), so the fitted
model is right and a fit can be checked against the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).parent / "data"
TRUTH = {"CL": 5.0, "V": 50.0, "KA": 1.2, "omega_CL": 0.3, "omega_V": 0.25, "omega_KA": 0.4, "sigma_log": 0.2}


def sparse_monitoring_design(n: int = 130, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """The records (DV placeholders) and each patient's weight."""
    rng = np.random.default_rng(seed)
    rows, weights = [], np.round(70 * np.exp(rng.normal(0, 0.2, n)), 1)
    for i in range(n):
        tau = float(rng.choice([12.0, 24.0]))
        amt = float(rng.choice([100, 200, 300, 400]))
        n_doses = int(rng.integers(3, 16))
        times = np.cumsum(np.r_[0.0, tau + rng.uniform(-2, 2, n_doses - 1)])
        for k, t in enumerate(times):
            rows.append(dict(ID=i + 1, TIME=round(t, 2), AMT=amt, DV=np.nan, EVID=1, MDV=1, CMT=1,
                             SS=1 if k == 0 else 0, II=tau if k == 0 else 0.0, WT=weights[i]))
        n_obs = int(rng.integers(1, 11))
        last = times[-min(4, n_doses):]
        for _ in range(n_obs):
            start = float(rng.choice(last))
            # mostly troughs: three in four samples in the last quarter of the interval
            frac = rng.uniform(0.75, 0.99) if rng.uniform() < 0.75 else rng.uniform(0.05, 0.75)
            rows.append(dict(ID=i + 1, TIME=round(start + frac * tau, 2), AMT=0.0, DV=1.0, EVID=0, MDV=0, CMT=2,
                             SS=0, II=0.0, WT=weights[i]))
    frame = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable")
    return frame.reset_index(drop=True), weights


def rich_study_design(n: int = 120) -> pd.DataFrame:
    first = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 23.9]
    troughs = [24 * d - 0.1 for d in range(2, 7)]
    last = [144 + t for t in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 36, 48)]
    samples = first + troughs + last
    assert len(samples) == 39
    rows = []
    for i in range(n):
        for d in range(7):
            rows.append(dict(ID=i + 1, TIME=24.0 * d, AMT=100.0, DV=np.nan, EVID=1, MDV=1, CMT=1))
        for t in samples:
            rows.append(dict(ID=i + 1, TIME=round(t, 2), AMT=0.0, DV=1.0, EVID=0, MDV=0, CMT=2))
    frame = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable")
    return frame.reset_index(drop=True)


#: The sparse design's truth adds allometric weight on CL (fixed exponent) to ``oral1cmt``.
ALLOMETRY = """
[[covariates]]
parameter = "CL"
covariate = "WT"
kind = "power"
reference = 70
fixed = 0.75
"""


def simulate(frame: pd.DataFrame, seed: int, allometric_wt: bool = False) -> pd.DataFrame:
    """``frame`` with DV drawn from ``oral1cmt`` at :data:`TRUTH` (with :data:`ALLOMETRY` if asked)."""
    import jax
    from numpyro import handlers

    import poppk
    from poppk._runtime import configure_jax
    from poppk.batch._sbc import simulated_frame
    from poppk.model import build_model, load_spec, parse_spec

    configure_jax()
    data = poppk.from_frame(frame, dose_unit="mg", conc_unit="mg/L", warn=False)
    spec = load_spec("oral1cmt")
    if allometric_wt:
        spec = parse_spec(spec.text + ALLOMETRY, source="oral1cmt + allometric WT")
    built = build_model(spec, data, parameterization="noncentered")
    model = handlers.condition(built.fn, {k: np.asarray(v) for k, v in TRUTH.items()})
    trace = handlers.trace(handlers.seed(model, jax.random.PRNGKey(seed))).get_trace(**dict(built.kwargs, dv=None))
    out = simulated_frame(frame, data, np.asarray(trace["DV"]["value"])).drop(columns="BLQ")  # no LLOQ: none BLQ
    out["DV"] = out["DV"].round(5)
    return out


def main() -> int:
    DATA.mkdir(exist_ok=True)
    sparse, _ = sparse_monitoring_design()
    rich = rich_study_design()
    for name, frame, wt in (("sparse_monitoring", sparse, True), ("rich_study", rich, False)):
        sim = simulate(frame, seed=3, allometric_wt=wt)
        sim.to_csv(DATA / f"{name}.csv", index=False, na_rep=".")
        (DATA / f"{name}_truth.json").write_text(json.dumps(TRUTH, indent=1))
        print(f"wrote {DATA / name}.csv: {sim.ID.nunique()} subjects, {(sim.EVID == 0).sum()} observations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
