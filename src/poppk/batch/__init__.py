"""Many fits at once on a Dask cluster: simulation-based calibration, bootstrap, covariate search and a
clinic's dose recommendations, each a set of independent tasks run by :func:`run_tasks`.

Every workload takes ``workers`` (a local cluster of that many processes), or ``scheduler`` (the address
of a running ``dask scheduler``), writes each task's result once, atomically, as it completes, and
resumes a stopped run from its folder. See the docs' "Scaling out" page for the cost model.
"""

from ._bootstrap import bootstrap as bootstrap
from ._bootstrap import bootstrap_summary as bootstrap_summary
from ._bootstrap import resample_subjects as resample_subjects
from ._clinic import clinic_doses as clinic_doses
from ._covsearch import candidate_effects as candidate_effects
from ._covsearch import covariate_search as covariate_search
from ._engine import BatchResult as BatchResult
from ._engine import Task as Task
from ._engine import cluster_client as cluster_client
from ._engine import run_tasks as run_tasks
from ._sbc import draw_from_prior as draw_from_prior
from ._sbc import holm as holm
from ._sbc import sbc as sbc
from ._sbc import sbc_summary as sbc_summary

__all__ = ["BatchResult", "CoreBudget", "Task", "bootstrap", "bootstrap_summary", "candidate_effects", "clinic_doses",
           "cluster_client", "covariate_search", "draw_from_prior", "holm", "resample_subjects", "run_tasks", "sbc",
           "sbc_summary"]


def __getattr__(name: str):
    if name == "CoreBudget":  # imports Dask (about a second): only when asked for
        from ._plugin import CoreBudget

        return CoreBudget
    raise AttributeError(f"module 'poppk.batch' has no attribute {name!r}")
