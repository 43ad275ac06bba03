"""Using a fitted model: regimens, virtual populations and steady-state exposure.

>>> from poppk.simulate import parse_regimen
>>> parse_regimen("200 mg qd x 28 d").n_doses
28
"""

from ..errors import RegimenError
from ._exposure import (METRICS, before_steady_state, exposure_metrics, metric_name, metric_unit, regimen_times,
                        simulation_devices)
from ._large import population_summary
from ._patients import patient_exposure, patient_metrics, patient_regimens
from ._population import VirtualPopulation, residual_draws, virtual_population
from ._regimen import Regimen, Segment, parse_regimen
from ._simulation import RegimenSimulation, Target, simulate_regimen

__all__ = [
    "METRICS", "Regimen", "RegimenError", "RegimenSimulation", "Segment", "Target", "VirtualPopulation",
    "before_steady_state", "exposure_metrics", "metric_name", "metric_unit", "parse_regimen", "patient_exposure", "patient_metrics",
    "patient_regimens", "population_summary", "regimen_times", "residual_draws", "simulate_regimen", "simulation_devices",
    "virtual_population",
]
