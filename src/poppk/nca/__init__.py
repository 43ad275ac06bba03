"""Non-compartmental analysis (NCA) in the conventions of WinNonlin and PKNCA.

Profiles are found in the records themselves: each dose opens an interval
that ends at the next dose; an interval with at least ``min_points``
samples after the dose is a profile. The first dose of a subject is a
*single-dose* profile; the 5th or later dose of a regular train (or an SS=1
dose) is a *steady-state* profile with ``tau = II``; others are *multiple*.

* AUC: linear-up/log-down by default (``method="linear"`` for the linear
  trapezoid); AUClast to the last measurable concentration; AUCinf =
  AUClast + Clast/lambda_z; AUCtau over [0, tau], interpolated or
  extrapolated with lambda_z.
* lambda_z: best adjusted R² over the last >= 3 points after Cmax, preferring
  more points within 1e-4 (:func:`select_lambda_z`); override per subject
  with ``lambda_z_points={ID: n}``.
* BLQ (``blq=``): ``"zero-before-tmax"`` (default; BLQ before the first
  measurable sample is 0, later BLQ samples are dropped), ``"zero"`` or
  ``"drop"``. BLQ values themselves are never used.
* Pre-dose: a sample at the dose time (the first, if several) is C0; without
  one, C0 is 0 after a first dose and the interval's minimum at steady state.
* Route (``route=``, :func:`dose_route`): ``"auto"`` (default) reads it from the records: RATE > 0 is an
  IV infusion (duration AMT/RATE), a bolus into the compartment the samples name (CMT) an IV bolus, any
  other dose extravascular; ``"intravascular"`` or ``"extravascular"`` state it (IV bolus data without a
  CMT column need ``"intravascular"``). An IV bolus's C0 is back-extrapolated from the first two samples
  (log-linear; the first sample if they do not decline) and starts the AUC; intravascular profiles give
  CL, Vz, MRT and Vss (MRT less half the infusion's duration), extravascular ones CL/F and Vz/F.
* Times are actual times after dose (after the start of an infusion); units follow the data (L/h, L).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._auc import LambdaZ as LambdaZ
from ._auc import auc as auc
from ._auc import auc_to as auc_to
from ._auc import aumc as aumc
from ._auc import select_lambda_z as select_lambda_z
from ._profiles import BLQ_RULES, subject_profiles

from ._profiles import ROUTES, back_extrapolate_c0, dose_route

# Summary rows: (column, label). A row whose column has no value in any profile of its kind is left out
# (CL and Vz for oral data, CL/F and Vz/F for IV data, C0 without IV boluses).
GEOMETRIC = {"single": [("C0", "C0"), ("Cmax", "Cmax"), ("AUClast", "AUC0-t"), ("AUCinf", "AUC0-inf")],
             "ss": [("Cmax", "Cmax_ss"), ("Cmin", "Cmin_ss"), ("Cav", "Cav_ss"), ("AUCtau", "AUC_ss")]}
MEDIAN = {"single": [("Tmax", "Tmax")], "ss": [("Tmax", "Tmax_ss")]}
ARITHMETIC = {"single": [("t_half", "t1/2"), ("Vz_F", "V/F"), ("CL_F", "CL/F"), ("Vz", "Vz"), ("CL", "CL"),
                         ("MRT", "MRT"), ("Vss", "Vss")],
              "ss": [("t_half", "t1/2_ss"), ("CL", "CL_ss"), ("Rac_Cmax", "Rac_Cmax"), ("Rac_AUC", "Rac_AUC")]}


def geometric_cv(x: np.ndarray) -> float:
    """Geometric CV% = 100 sqrt(exp(s²) - 1), s the SD of log values."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x) & (x > 0)]
    return float(100 * np.sqrt(np.expm1(np.var(np.log(x), ddof=1)))) if x.size > 1 else np.nan


def geometric_mean(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.mean(np.log(x)))) if x.size else np.nan


@dataclass(frozen=True)
class NCAResult:
    """Per-profile NCA parameters, messages, and the units they are in."""

    profiles: pd.DataFrame
    messages: tuple[str, ...]
    dose_unit: str
    conc_unit: str
    covariates: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def table(self) -> pd.DataFrame:
        """The per-profile table without the internal time/concentration arrays."""
        return self.profiles.drop(columns=["_t", "_c"], errors="ignore")

    def _units(self) -> dict[str, str]:
        c, d = self.conc_unit, self.dose_unit
        return {"Cmax": c, "Cmin": c, "Cav": c, "AUClast": f"h*{c}", "AUCinf": f"h*{c}", "AUCtau": f"h*{c}",
                "Tmax": "h", "t_half": "h", "Vz_F": "L", "CL_F": "L/h", "Rac_Cmax": "", "Rac_AUC": "", "DOSE": d,
                "C0": c, "Vz": "L", "CL": "L/h", "Vss": "L", "MRT": "h", "AUMClast": f"h2*{c}", "AUMCinf": f"h2*{c}",
                "duration": "h"}

    def summary(self, group: str = "DOSE") -> pd.DataFrame:
        """Summaries by group in the style of a clinical paper (one column per group).

        Exposures: geometric mean and geometric CV%; Tmax: median, min, max;
        t1/2, V/F, CL/F and accumulation ratios: mean and SD.
        """
        prof = self.profiles
        if prof.empty:
            return pd.DataFrame(columns=["parameter", "statistic", "unit"])
        if group not in prof.columns:
            if group not in self.covariates.columns:
                from ..errors import NCAError

                raise NCAError(f"no column {group!r} to group by; use DOSE or one of "
                                 f"{', '.join(self.covariates.columns.drop('ID', errors='ignore'))}")
            prof = prof.merge(self.covariates[["ID", group]], on="ID", how="left")
        units = self._units()
        rows = []
        levels = sorted(prof[group].dropna().unique())
        label = {lv: (f"{lv:g}{self.dose_unit}" if group == "DOSE" else str(lv)) for lv in levels}

        def add(name, statistic, unit, fn, kind, col):
            if col not in prof or not np.isfinite(prof.loc[prof["profile"] == kind, col].to_numpy(float)).any():
                return
            row = {"parameter": name, "statistic": statistic, "unit": unit}
            for lv in levels:
                sel = prof[(prof["profile"] == kind) & (prof[group] == lv)]
                row[label[lv]] = fn(sel[col].to_numpy(float)) if col in sel and len(sel) else np.nan
            rows.append(row)

        for kind in ("single", "ss"):
            if not (prof["profile"] == kind).any():
                continue
            n_row = {"parameter": "n" if kind == "single" else "n_ss", "statistic": "count", "unit": ""}
            for lv in levels:
                n_row[label[lv]] = int(((prof["profile"] == kind) & (prof[group] == lv)).sum())
            rows.append(n_row)
            for col, name in GEOMETRIC[kind]:
                add(name, "geomean", units[col], geometric_mean, kind, col)
                add(name, "geocv_pct", "%", geometric_cv, kind, col)
            for col, name in MEDIAN[kind]:
                add(name, "median", "h", lambda x: float(np.nanmedian(x)) if x.size else np.nan, kind, col)
                add(name, "min", "h", lambda x: float(np.nanmin(x)) if x.size else np.nan, kind, col)
                add(name, "max", "h", lambda x: float(np.nanmax(x)) if x.size else np.nan, kind, col)
            for col, name in ARITHMETIC[kind]:
                add(name, "mean", units[col], lambda x: float(np.nanmean(x)) if np.isfinite(x).any() else np.nan, kind, col)
                add(name, "sd", units[col], lambda x: float(np.nanstd(x, ddof=1)) if np.isfinite(x).sum() > 1 else np.nan,
                    kind, col)
        return pd.DataFrame(rows)

    def dose_proportionality(self, level: float = 0.90) -> pd.DataFrame:
        """Power model ln(metric) = a + b ln(dose) per profile type; b with its CI.

        b = 1 is dose-proportional; b > 1 more than proportional.
        """
        rows = []
        for kind, metrics in (("single", ("Cmax", "AUCinf")), ("ss", ("Cmax", "AUCtau"))):
            sel = self.profiles[self.profiles["profile"] == kind]
            for m in metrics:
                if m not in sel:
                    continue
                ok = np.isfinite(sel[m].to_numpy(float)) & (sel[m].to_numpy(float) > 0)
                x = np.log(sel["DOSE"].to_numpy(float)[ok])
                y = np.log(sel[m].to_numpy(float)[ok])
                if x.size < 3 or np.ptp(x) == 0:
                    continue
                from scipy import stats

                fit = stats.linregress(x, y)
                q = stats.t.ppf(0.5 + level / 2, x.size - 2)
                rows.append({"profile": kind, "metric": m, "n": int(x.size), "slope": fit.slope,
                             "lower": fit.slope - q * fit.stderr, "upper": fit.slope + q * fit.stderr,
                             "level": level, "intercept": fit.intercept})
        return pd.DataFrame(rows)


def _records(source, lloq):
    from ..data import PKDataset, check_frame

    if isinstance(source, PKDataset):
        return source.to_frame(), source.dose_unit, source.conc_unit
    records, _ = check_frame(source, lloq=lloq, sorted_times=False)
    return records, None, None


def compute_nca(
    source: str | os.PathLike | pd.DataFrame,
    *,
    dose_unit: str = "mg",
    conc_unit: str = "mg/L",
    lloq: float | None = None,
    method: str = "lin-up/log-down",
    blq: str = "zero-before-tmax",
    min_points: int = 3,
    lambda_z_points: dict | None = None,
    route: str = "auto",
) -> NCAResult:
    """NCA of every subject and profile in NONMEM-style records.

    Parameters
    ----------
    source : path, DataFrame or PKDataset
    dose_unit, conc_unit : str
        Units of AMT and DV (ignored for a PKDataset, which carries its own).
    method : {"lin-up/log-down", "linear"}
    blq : {"zero-before-tmax", "zero", "drop"}
    min_points : int
        Samples after a dose needed for an interval to be a profile.
    lambda_z_points : dict, optional
        ``{ID: n}`` forces the number of terminal points for a subject.
    route : {"auto", "extravascular", "intravascular"}
        How the doses were given (module docstring); each profile's ``route`` column says what was used.

    Examples
    --------
    >>> import poppk
    >>> res = compute_nca(poppk.datasets.path("theophylline"))
    >>> round(float(res.profiles["Cmax"].max()), 2)
    11.4
    """
    records, du, cu = _records(source, lloq)
    dose_unit, conc_unit = du or dose_unit, cu or conc_unit
    profiles, messages = subject_profiles(records, dose_unit=dose_unit, conc_unit=conc_unit, method=method,
                                          blq=blq, min_points=min_points, lambda_z_points=lambda_z_points,
                                          route=route)
    table = pd.DataFrame(profiles)
    if not table.empty:
        table = _accumulation(table)
    std = {"ID", "TIME", "AMT", "RATE", "DV", "EVID", "MDV", "CMT", "II", "ADDL", "SS", "BLQ", "LLOQ"}
    cov_cols = [c for c in records.columns if c not in std]
    covariates = records.groupby("ID", sort=False)[cov_cols].first().reset_index() if cov_cols else \
        pd.DataFrame({"ID": records["ID"].unique()})
    return NCAResult(table, tuple(messages), dose_unit, conc_unit, covariates)


def _accumulation(table: pd.DataFrame) -> pd.DataFrame:
    """Rac(Cmax) = Cmax,ss / Cmax,1 and Rac(AUC) = AUCtau,ss / AUC0-tau,1 per subject."""
    table = table.copy()
    table["Rac_Cmax"] = np.nan
    table["Rac_AUC"] = np.nan
    for sid, g in table.groupby("ID", sort=False):
        single = g[g["profile"] == "single"]
        if single.empty:
            continue
        s = single.iloc[0]
        for idx, r in g[g["profile"] == "ss"].iterrows():
            last = np.flatnonzero(s["_c"] > 0)[-1] + 1  # up to Clast, then extrapolated with lambda_z
            auc_tau_1 = auc_to(s["_t"][:last], s["_c"][:last], r["tau"], "lin-up/log-down", s["lambda_z"])
            table.loc[idx, "Rac_Cmax"] = r["Cmax"] / s["Cmax"]
            table.loc[idx, "Rac_AUC"] = r["AUCtau"] / auc_tau_1 if auc_tau_1 > 0 else np.nan
    return table


__all__ = ["BLQ_RULES", "ROUTES", "LambdaZ", "NCAResult", "auc", "auc_to", "aumc", "back_extrapolate_c0",
           "compute_nca", "dose_route", "geometric_cv", "geometric_mean", "select_lambda_z"]
