"""NONMEM-style records -> validated, padded :class:`PKDataset`."""

from ._dataset import DatasetWarning as DatasetWarning
from ._dataset import PKDataset as PKDataset
from ._dataset import from_frame as from_frame
from ._dataset import read_nonmem as read_nonmem
from ._dataset import read_records as read_records

__all__ = ["DatasetWarning", "PKDataset", "from_frame", "read_nonmem", "read_records"]
