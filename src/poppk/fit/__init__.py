"""Bayesian population fits: ``fit(data, spec) -> Fit``, and the fit folder on disk.

* :func:`fit` runs the pilot (centred or non-centred IIV per parameter), the warm start (Laplace
  approximation and a dense metric) and NUTS; :class:`Fit` keeps the DataTree, the spec, the data
  and the run's record;
* :mod:`poppk.fit.folder` is the one definition of the fit folder (format version, files, the
  typed ``fit.json``); :meth:`Fit.save` and :func:`load_fit` go through it.
"""

from . import folder as folder
from ._result import FUNNEL_SHRINKAGE as FUNNEL_SHRINKAGE
from ._result import Fit as Fit
from ._result import load_fit as load_fit
from ._sampler import fit as fit
from ._summary import energy_bfmi as energy_bfmi
from ._summary import ess_rhat as ess_rhat
from ._summary import parameter_units as parameter_units
from ._summary import shrinkage as shrinkage
from .folder import FitFolderWarning as FitFolderWarning
from .folder import FitRecord as FitRecord

__all__ = ["FUNNEL_SHRINKAGE", "Fit", "FitFolderWarning", "FitRecord", "energy_bfmi", "ess_rhat", "fit", "folder",
           "load_fit", "parameter_units", "shrinkage"]
