"""Simulated NONMEM-style datasets for tests: log-normal IIV and exponential residual error on a kernel's
predictions (the generating truth is then known exactly)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import poppk


def simulate_frame(kernel: str, typical: dict, omega: dict, sigma_log: float, doses: list[dict], times, *,
                   n_subjects: int, seed: int = 0, dose_cmt: int = 1) -> pd.DataFrame:
    """Records of ``n_subjects`` subjects given ``doses`` (dicts of TIME, AMT, RATE, II, ADDL, SS) and
    sampled at ``times`` (h); DV from ``kernel`` with ``exp(eta)`` on the ``omega`` parameters and
    ``exp(eps)`` error. Observations in CMT 0 (the model's central compartment)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, n_subjects + 1):
        for d in doses:
            rows.append(dict(ID=i, TIME=d["TIME"], AMT=d["AMT"], RATE=d.get("RATE", 0.0), DV=np.nan, EVID=1, MDV=1,
                             CMT=d.get("CMT", dose_cmt), II=d.get("II", 0.0), ADDL=d.get("ADDL", 0), SS=d.get("SS", 0)))
        for t in times:
            rows.append(dict(ID=i, TIME=t, AMT=0.0, RATE=0.0, DV=1.0, EVID=0, MDV=0, CMT=0, II=0.0, ADDL=0, SS=0))
    frame = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable")
    frame = frame.reset_index(drop=True)
    data = poppk.data.from_frame(frame, warn=False)
    eta = {k: rng.normal(0.0, w, n_subjects) for k, w in omega.items()}
    params = {k: v * np.exp(eta.get(k, 0.0)) for k, v in typical.items()}
    pred = poppk.predict(kernel, params, data)
    dv = pred * np.exp(rng.normal(0.0, sigma_log, pred.shape))
    present = np.asarray(data.present)
    out = frame.copy()
    out.loc[np.asarray(data.row)[present], "DV"] = dv[present]
    return out
