"""poppk: Bayesian population pharmacokinetics in JAX.

The public API. Submodules with their own documented namespaces:
:mod:`poppk.data`, :mod:`poppk.pk`, :mod:`poppk.model`, :mod:`poppk.nca`,
:mod:`poppk.datasets`, :mod:`poppk.units`, :mod:`poppk.simulate`,
:mod:`poppk.exposure`, :mod:`poppk.dosing`, :mod:`poppk.export`.

Nothing here changes JAX's configuration on import; the functions that
compute switch JAX to float64 when they run.
"""

from . import data as data
from . import datasets as datasets
from . import dosing as dosing
from . import export as export
from . import exposure as exposure
from . import model as model
from . import nca as nca
from . import pk as pk
from . import simulate as simulate
from . import units as units
from ._config import set_host_devices as set_host_devices
from .compare import compare_fits as compare_fits
from .data import DatasetWarning as DatasetWarning
from .data import PKDataset as PKDataset
from .data import from_frame as from_frame
from .data import read_nonmem as read_nonmem
from .export import export_tables as export_tables
from .export import parameter_table as parameter_table
from .errors import DatasetError as DatasetError
from .errors import FitError as FitError
from .errors import ModelSpecError as ModelSpecError
from .errors import PoppkError as PoppkError
from .errors import SolverError as SolverError
from .fit import Fit as Fit
from .fit import fit as fit
from .fit import load_fit as load_fit
from .model import ModelSpec as ModelSpec
from .model import load_spec as load_spec
from .nca import compute_nca as compute_nca
from .pk import predict as predict
from .simulate import Regimen as Regimen
from .simulate import parse_regimen as parse_regimen
from .simulate import simulate_regimen as simulate_regimen

__version__ = "0.1.0"

#: Imported on first use (matplotlib and scipy.stats take about a second to import; a fit needs neither).
_LAZY = ("diagnostics", "plots", "report")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'poppk' has no attribute {name!r}")

__all__ = [
    "DatasetError", "DatasetWarning", "Fit", "FitError", "ModelSpec", "ModelSpecError", "PKDataset", "PoppkError",
    "Regimen", "SolverError", "compare_fits", "compute_nca", "data", "datasets", "diagnostics", "dosing", "export",
    "export_tables", "exposure", "fit", "from_frame", "load_fit", "load_spec", "model", "nca", "parameter_table", "parse_regimen",
    "pk", "plots", "predict", "read_nonmem", "report", "set_host_devices", "simulate", "simulate_regimen", "units",
]
