"""dlcc.data: datasets as NumPy arrays, from a checksummed registry.

Quick start::

    from dlcc.data import load_dataset
    data = load_dataset("digits")          # embedded, no download
    data.x_train.shape                      # (1257, 1, 8, 8), float32, normalised
    data = load_dataset("mnist")            # from $DLCC_DATA_DIR or ~/.cache/dlcc

Modules, one idea each: `registry` (names, files, checksums, URLs), `paths` (which data
directory, which files are there), `download` (checksums, atomic writes, downloads),
`fetch`, `verify`, `status`, the formats `idx`, `cifar`, `csv_format`, `digits`, and
`splits` (validation split, normalisation), `dataset` (`load_dataset`), `commands` (CLI).
"""

from dlcc.data.dataset import Dataset, load_dataset
from dlcc.data.fetch import FetchResult, fetch_dataset
from dlcc.data.paths import resolve_data_dir
from dlcc.data.registry import DATASETS, DatasetFile, DatasetSpec, dataset_names, get_spec
from dlcc.data.status import DatasetStatus, dataset_status
from dlcc.data.verify import VerifyReport, verify_dataset

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetFile",
    "DatasetSpec",
    "DatasetStatus",
    "FetchResult",
    "VerifyReport",
    "dataset_names",
    "dataset_status",
    "fetch_dataset",
    "get_spec",
    "load_dataset",
    "resolve_data_dir",
    "verify_dataset",
]
