"""poppk: Bayesian population pharmacokinetics in JAX.

The public API. Submodules with their own documented namespaces:
:mod:`poppk.data`, :mod:`poppk.pk`, :mod:`poppk.model`, :mod:`poppk.fit`, :mod:`poppk.nca`,
:mod:`poppk.diagnostics`, :mod:`poppk.plots`, :mod:`poppk.simulate`, :mod:`poppk.tox`, :mod:`poppk.efficacy`,
:mod:`poppk.dosing`, :mod:`poppk.batch`, :mod:`poppk.report`, :mod:`poppk.export`, :mod:`poppk.datasets`,
:mod:`poppk.units`, :mod:`poppk.errors`.

Nothing here changes JAX's configuration on import; the functions that
compute switch JAX to float64 when they run (:func:`configure_jax`).

>>> import poppk
>>> data = poppk.datasets.load("theophylline")
>>> data.n_subjects
12
"""

from . import batch as batch
from . import data as data
from . import datasets as datasets
from . import dosing as dosing
from . import efficacy as efficacy
from . import errors as errors
from . import export as export
from . import model as model
from . import nca as nca
from . import pk as pk
from . import simulate as simulate
from . import tox as tox
from . import units as units
from ._runtime import clear_compilation_cache as clear_compilation_cache
from ._runtime import compilation_cache_info as compilation_cache_info
from ._runtime import configure_jax as configure_jax
from ._runtime import guard_interrupts as guard_interrupts
from ._runtime import set_host_devices as set_host_devices
from .compare import compare_fits as compare_fits
from .data import DatasetWarning as DatasetWarning
from .data import PKDataset as PKDataset
from .data import from_frame as from_frame
from .data import read_nonmem as read_nonmem
from .efficacy import benefit_risk as benefit_risk
from .errors import BatchError as BatchError
from .errors import DatasetError as DatasetError
from .errors import DosingError as DosingError
from .errors import EfficacyError as EfficacyError
from .errors import FitError as FitError
from .errors import ModelSpecError as ModelSpecError
from .errors import PoppkError as PoppkError
from .errors import RegimenError as RegimenError
from .errors import SimulationError as SimulationError
from .errors import SolverError as SolverError
from .errors import ToxicityModelError as ToxicityModelError
from .export import export_tables as export_tables
from .export import parameter_table as parameter_table
from .fit import Fit as Fit
from .fit import load_fit as load_fit
from .fit import fit as fit  # the function; the package stays importable as ``poppk.fit.folder`` etc.
from .model import ModelSpec as ModelSpec
from .model import load_spec as load_spec
from .nca import compute_nca as compute_nca
from .pk import predict as predict
from .pk import register_kernel as register_kernel
from .simulate import Regimen as Regimen
from .simulate import parse_regimen as parse_regimen
from .simulate import simulate_regimen as simulate_regimen

__version__ = "0.1.0"

#: Imported on first use (matplotlib and scipy.stats take about a second to import; a fit needs neither).
_LAZY = ("diagnostics", "plots", "report", "demo")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'poppk' has no attribute {name!r}")


__all__ = [
    "BatchError", "DatasetError", "DatasetWarning", "DosingError", "EfficacyError", "Fit", "FitError", "ModelSpec", "ModelSpecError", "PKDataset",
    "PoppkError", "Regimen", "RegimenError", "SimulationError", "SolverError", "ToxicityModelError",
    "batch", "benefit_risk", "clear_compilation_cache", "compare_fits", "compilation_cache_info", "compute_nca", "configure_jax", "data",
    "datasets", "demo", "diagnostics", "dosing", "efficacy", "errors", "export", "export_tables", "fit", "from_frame",
    "guard_interrupts", "load_fit", "load_spec", "model", "nca", "parameter_table", "parse_regimen", "pk", "plots",
    "predict", "read_nonmem", "register_kernel", "report", "set_host_devices", "simulate", "simulate_regimen", "tox",
    "units",
]
