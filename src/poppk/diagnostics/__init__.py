"""Model diagnostics as numbers: design replicates, NPDE, VPC percentiles, convergence.

The drawings are in :mod:`poppk.plots`; :mod:`poppk.report` gathers both.

Examples
--------
>>> import poppk
>>> from poppk import diagnostics
>>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
...                 samples=100, progress=False)
>>> sim = diagnostics.simulate_design(fit, 100)
>>> npde = diagnostics.compute_npde(sim)
>>> vpc = diagnostics.compute_vpc(sim)
>>> 0 <= vpc.coverage() <= 1
True
"""

from ._params import (dose_times, eta_table, individual_curves, infusion_spans, observation_windows,
                      prior_distributions)
from ._residuals import compute_npde, npde_summary
from ._sim import DesignSimulation, simulate_design, time_after_dose
from ._vpc import PERCENTILES, VPCResult, auto_bins, compute_vpc

__all__ = ["DesignSimulation", "PERCENTILES", "VPCResult", "auto_bins", "compute_npde", "compute_vpc", "dose_times",
           "eta_table", "individual_curves", "infusion_spans", "npde_summary", "observation_windows", "prior_distributions", "simulate_design",
           "time_after_dose"]
