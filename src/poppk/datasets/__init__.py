"""Bundled datasets: list them, find their files, load them, export them; the example trial's NCA beside
the paper's tables (:func:`compare_with_paper`, :func:`paper_acceptance`).

>>> from poppk import datasets
>>> "lxi15029" in datasets.names()
True
"""

from ._catalog import CATALOG as CATALOG
from ._catalog import Entry as Entry
from ._catalog import export as export
from ._catalog import load as load
from ._catalog import names as names
from ._catalog import path as path
from ._lxi15029_paper import acceptance as paper_acceptance
from ._lxi15029_paper import compare as compare_with_paper

__all__ = ["CATALOG", "Entry", "compare_with_paper", "export", "load", "names", "paper_acceptance", "path"]
