"""poppk: Bayesian population pharmacokinetics in JAX.

The public API. Submodules with their own documented namespaces:
:mod:`poppk.data`, :mod:`poppk.pk`, :mod:`poppk.datasets`, :mod:`poppk.units`.
"""

from . import data as data
from . import datasets as datasets
from . import pk as pk
from . import units as units
from ._config import set_host_devices as set_host_devices
from .data import DatasetWarning as DatasetWarning
from .data import PKDataset as PKDataset
from .data import from_frame as from_frame
from .data import read_nonmem as read_nonmem
from .errors import DatasetError as DatasetError
from .errors import FitError as FitError
from .errors import ModelSpecError as ModelSpecError
from .errors import PoppkError as PoppkError
from .pk import predict as predict

__version__ = "0.1.0"

__all__ = [
    "DatasetError", "DatasetWarning", "FitError", "ModelSpecError", "PKDataset", "PoppkError",
    "data", "datasets", "from_frame", "pk", "predict", "read_nonmem", "set_host_devices", "units",
]
