"""``simulate_regimen``: regimens x virtual patients -> exposures, bands and summaries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SimulationError
from ._exposure import METRICS, exposure_metrics, metric_name, metric_unit, regimen_times
from ._population import VirtualPopulation, residual_draws, virtual_population
from ._regimen import Regimen, parse_regimen

BAND_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Target:
    """A target window for an exposure metric: ``low <= metric <= high``."""

    metric: str
    low: float
    high: float

    @classmethod
    def parse(cls, text: str) -> Target:
        """``"AUCss=3000:6000"`` (either bound may be empty: ``"Cminss=500:"``)."""
        try:
            name, rng = text.split("=")
            lo, hi = rng.split(":")
            low = float(lo) if lo.strip() else -np.inf
            high = float(hi) if hi.strip() else np.inf
        except ValueError:
            raise SimulationError(f"cannot read target {text!r}; write it like AUCss=3000:6000") from None
        if not low < high:
            raise SimulationError(f"target {text!r}: the lower bound must be below the upper bound")
        return cls(metric_name(name), low, high)

    def contains(self, x) -> np.ndarray:
        x = np.asarray(x)
        return (x >= self.low) & (x <= self.high)

    @property
    def label(self) -> str:
        return f"{self.metric} in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class RegimenSimulation:
    """Exposures of the same virtual patients under each regimen.

    Attributes
    ----------
    exposures : DataFrame
        One row per regimen and patient: ``regimen``, ``patient``, ``replicate``, covariates,
        individual parameters and every metric of :data:`METRICS`.
    bands : DataFrame
        ``regimen``, ``TIME`` (h) and concentration quantiles ``q5 ... q95`` across patients.
    regimens : tuple of Regimen
    conc_unit : str
    residual : bool
        Whether the bands include residual error (metrics never do).
    """

    exposures: pd.DataFrame
    bands: pd.DataFrame
    regimens: tuple[Regimen, ...]
    conc_unit: str
    residual: bool = False

    def summary(self, target: Target | None = None) -> pd.DataFrame:
        """Per regimen and metric: patients' median and 5-95% range, and a 90% uncertainty
        interval of the population median (across posterior replicates); with ``target``, the
        share of patients in the window and its 90% uncertainty interval."""
        rows = []
        for label, g in self.exposures.groupby("regimen", sort=False):
            for m in METRICS:
                x = g[m].to_numpy()
                per_rep = g.groupby("replicate")[m].median()
                rows.append({"regimen": label, "metric": m, "unit": metric_unit(m, self.conc_unit),
                             "median": np.nanmedian(x), "q5": np.nanquantile(x, 0.05),
                             "q95": np.nanquantile(x, 0.95), "median_lo": per_rep.quantile(0.05),
                             "median_hi": per_rep.quantile(0.95)})
            if target is not None:
                inside = target.contains(g[target.metric]).astype(float)
                per_rep = pd.Series(inside).groupby(g["replicate"].to_numpy()).mean()
                rows.append({"regimen": label, "metric": f"P({target.label})", "unit": "fraction",
                             "median": inside.mean(), "q5": np.nan, "q95": np.nan,
                             "median_lo": per_rep.quantile(0.05), "median_hi": per_rep.quantile(0.95)})
        return pd.DataFrame(rows)

    def save(self, folder: str | Path, target: Target | None = None) -> Path:
        """``exposures.csv``, ``summary.csv`` and ``bands.csv`` in ``folder`` (numbers only: the figure is
        :func:`poppk.plots.figure_regimens`'s, which ``poppk simulate`` saves as ``regimens.png``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.exposures.to_csv(folder / "exposures.csv", index=False)
        self.summary(target).to_csv(folder / "summary.csv", index=False)
        self.bands.to_csv(folder / "bands.csv", index=False)
        return folder


def simulate_regimen(fit, regimens, n: int = 1000, *, seed: int = 0, residual: bool = False,
                     covariates: pd.DataFrame | None = None, n_replicates: int | None = None,
                     band_points: int = 200, population: VirtualPopulation | None = None,
                     chunk: int = 10_000) -> RegimenSimulation:
    """Simulate ``regimens`` for ``n`` virtual patients drawn from ``fit``'s posterior.

    Parameters
    ----------
    fit : Fit
    regimens : Regimen, str or a list of them
        ``"110 mg q12h x 28 d"``-style text is parsed by :func:`parse_regimen`.
    n : int
        Virtual patients (the same patients receive every regimen).
    residual : bool
        Add residual error to the concentration bands.
    covariates : DataFrame, optional
        Covariates to resample (default: the fitted subjects').
    n_replicates : int, optional
        Posterior draws the patients share (see :func:`virtual_population`).
    population : VirtualPopulation, optional
        Reuse given virtual patients (``n``, ``covariates``, ``n_replicates`` then ignored).

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> sim = simulate_regimen(fit, ["320 mg q12h x 7 d", "640 mg qd x 7 d"], n=200)
    >>> s = sim.summary()
    >>> sorted(set(s.regimen)), "AUCtau_ss" in set(s.metric)
    (['320 mg q12h x 7 d', '640 mg qd x 7 d'], True)
    """
    if isinstance(regimens, (str, Regimen)):
        regimens = [regimens]
    regimens = tuple(r if isinstance(r, Regimen) else parse_regimen(r) for r in regimens)
    if not regimens:
        raise SimulationError("give at least one regimen")
    labels = [r.label for r in regimens]
    if len(set(labels)) != len(labels):
        raise SimulationError(f"regimens must differ; got {labels}")
    pop = population or virtual_population(fit, n, seed=seed, n_replicates=n_replicates, covariates=covariates)
    frames, bands = [], []
    for k, reg in enumerate(regimens):
        reg.tau  # noqa: B018 -- a single dose has no steady state: fail before simulating
        params = pop.parameters(reg.first_amount, reg.unit)
        metrics, conc = exposure_metrics(fit.spec, params, reg, dose_unit=fit.data.dose_unit,
                                         conc_unit=fit.data.conc_unit, band_points=band_points, chunk=chunk)
        frame = pd.DataFrame({"regimen": reg.label, "patient": np.arange(pop.n), "replicate": pop.replicate})
        frame = pd.concat([frame, pop.covariates.reset_index(drop=True)], axis=1)
        for p, v in params.items():
            frame[p] = v
        for m, v in metrics.items():
            frame[m] = v
        frames.append(frame)
        if residual:
            conc = residual_draws(fit, pop.draws, conc, seed + k + 1)
        q = np.quantile(conc, BAND_QUANTILES, axis=0)
        band = pd.DataFrame({"regimen": reg.label, "TIME": regimen_times(reg, band_points)["band"]})
        for qq, row in zip(BAND_QUANTILES, q):
            band[f"q{round(100 * qq)}"] = row
        bands.append(band)
    return RegimenSimulation(pd.concat(frames, ignore_index=True), pd.concat(bands, ignore_index=True), regimens,
                             fit.data.conc_unit, residual)


__all__ = ["RegimenSimulation", "Target", "simulate_regimen"]
