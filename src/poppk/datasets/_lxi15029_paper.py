"""The bundled LXI-15029 reconstruction's NCA beside the paper's Tables 3 and 4."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._catalog import CATALOG, load, path

# (our summary parameter, paper parameter, paper table, statistic)
ROWS = [
    ("Cmax", "Cmax", 3, "geomean"), ("AUC0-inf", "AUC0-inf", 3, "geomean"), ("AUC0-t", "AUC0-t", 3, "geomean"),
    ("Tmax", "Tmax", 3, "median"), ("t1/2", "t1/2", 3, "mean"), ("CL/F", "CL/F", 3, "mean"), ("V/F", "V/F", 3, "mean"),
    ("Cmax_ss", "Cmax_ss", 4, "geomean"), ("AUC_ss", "AUC_ss", 4, "geomean"), ("Cav_ss", "Cav_ss", 4, "geomean"),
    ("Cmin_ss", "Cmin_ss", 4, "geomean"), ("Tmax_ss", "Tmax_ss", 4, "median"), ("t1/2_ss", "t1/2_ss", 4, "mean"),
    ("Rac_Cmax", "Rac_Cmax", 4, "mean"), ("Rac_AUC", "Rac_AUC", 4, "mean"),
]
CHECKED = ("Cmax", "AUC0-inf", "Cmax_ss", "AUC_ss")


def compare() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table of poppk / paper / ratio rows per parameter, dose-proportionality table)."""
    from ..nca import compute_nca

    entry = CATALOG["lxi15029"]
    res = compute_nca(path("lxi15029"), dose_unit=entry.dose_unit, conc_unit=entry.conc_unit,
                      lloq=entry.lloq)
    ours = res.summary("DOSE")
    paper = {3: load("lxi15029_paper_table3"), 4: load("lxi15029_paper_table4")}
    cohorts = [c for c in paper[3].columns if c.endswith("mg")]
    out = []
    for mine, theirs, table, stat in ROWS:
        o = ours[(ours.parameter == mine) & (ours.statistic == stat)][cohorts].to_numpy(float)[0]
        p = paper[table][(paper[table].parameter == theirs) & (paper[table].statistic == stat)][cohorts]
        p = p.to_numpy(float)[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = o / p
        within = int(np.sum(np.isfinite(ratio) & (ratio <= 1.5) & (ratio >= 1 / 1.5)))
        for source, values in (("poppk", o), ("paper", p), ("ratio", ratio)):
            out.append({"parameter": mine, "statistic": stat, "source": source,
                        **dict(zip(cohorts, values)), "within_1.5x": within if source == "ratio" else np.nan})
    return pd.DataFrame(out), res.dose_proportionality()




def acceptance(table: pd.DataFrame, dp: pd.DataFrame) -> tuple[bool, dict, list]:
    """Cmax and AUC within 1.5x for >= 5 of 7 cohorts on day 1 and day 28, AUC power slopes > 1."""
    checked = table[(table.source == "ratio") & table.parameter.isin(CHECKED)]
    counts = dict(zip(checked.parameter, checked["within_1.5x"].astype(int)))
    slopes = dp[dp.metric.isin(["AUCinf", "AUCtau"])].slope.round(3).tolist()
    return all(v >= 5 for v in counts.values()) and all(s > 1 for s in slopes), counts, slopes
