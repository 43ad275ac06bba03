"""NONMEM-style records -> validated, padded :class:`PKDataset`."""

from ._dataset import DatasetWarning as DatasetWarning
from ._dataset import PKDataset as PKDataset
from ._dataset import check_frame as check_frame
from ._dataset import from_frame as from_frame
from ._dataset import read_nonmem as read_nonmem
from ._dataset import read_records as read_records
from ._read import read_csv_frame as read_csv_frame

__all__ = ["DatasetWarning", "PKDataset", "check_frame", "from_frame", "read_csv_frame", "read_nonmem", "read_records"]
