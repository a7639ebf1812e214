"""Is a dataset present, where, and what to tell a person when it is not."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from dlcc.data.cifar import present_train_batches
from dlcc.data.paths import fetch_folder, find_dataset_folder, missing_files, resolve_data_dir
from dlcc.data.registry import CIFAR10_TRAIN_BATCHES, DatasetSpec, get_spec
from dlcc.errors import DataError


@dataclass(frozen=True)
class DatasetStatus:
    """Where a dataset is, without reading its contents.

    Attributes:
        name: registry name.
        present: True when the loader would find every file it needs.
        location: the folder holding it, or (when absent) the folder ``fetch`` would fill;
            None for the embedded ``digits`` when scikit-learn is missing.
        detail: one human-readable phrase: ``complete``, ``subset: ...``, ``missing: ...``.
        missing: filenames the loader needs and cannot find.
    """

    name: str
    present: bool
    location: Path | None
    detail: str
    missing: tuple[str, ...] = ()


def dataset_status(name: str, data_dir: str | os.PathLike[str] | None = None) -> DatasetStatus:
    """Presence of dataset `name` in the data directory (see `resolve_data_dir`)."""
    spec = get_spec(name)
    if spec.file_format == "embedded":
        sklearn_spec = importlib.util.find_spec("sklearn")
        if sklearn_spec is None:
            return DatasetStatus(name, False, None, "needs scikit-learn (not installed)")
        location = Path(next(iter(sklearn_spec.submodule_search_locations or ["."])))
        return DatasetStatus(name, True, location, "embedded in scikit-learn, no download")
    data_root = resolve_data_dir(data_dir)
    folder = find_dataset_folder(spec, data_root)
    if folder is None:
        target = fetch_folder(spec, data_root)
        missing = tuple(missing_files(spec, target))
        return DatasetStatus(name, False, target, f"missing: {name_list(missing)}", missing)
    detail = "complete"
    if spec.name == "cifar10":
        present = present_train_batches(folder)
        if len(present) < len(CIFAR10_TRAIN_BATCHES):
            detail = f"subset: training batches {', '.join(present)} only"
    return DatasetStatus(name, True, folder, detail)


def name_list(names, shown: int = 6) -> str:
    """``a, b, c`` for a few names; the first `shown` and ``and N more`` for many (the
    50 files of isbi2012_em)."""
    names = list(names)
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def placement_hint(spec: DatasetSpec, data_root: Path) -> str:
    """A clause saying exactly which files to put in which folder, by hand.

    Lower-case and without a full stop, so callers can embed it: "..., or {hint}."
    """
    folder = fetch_folder(spec, data_root)
    if spec.manual_download_hint:
        return spec.manual_download_hint.format(folder=folder)
    filenames = ", ".join(file.filename for file in spec.files)
    source = f" (from {spec.homepage} or a mirror)" if spec.homepage else ""
    return f"put {filenames}{source} in {folder}/"


def missing_dataset_error(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> DataError:
    """The DataError for "dataset not found": where we looked and what to do next."""
    data_root = resolve_data_dir(data_dir)
    target = fetch_folder(spec, data_root)
    missing = name_list(missing_files(spec, target))
    looked_in = ", ".join(str(data_root / relative) for relative in spec.folders)
    hint = placement_hint(spec, data_root)
    if spec.downloadable:
        how = f"Run `dlcc data fetch {spec.name}`, or {hint}"
    else:
        how = f"It has no public download: {hint}"
    return DataError(
        f"dataset {spec.name} is not in {data_root} (looked in {looked_in}; missing {missing}). "
        f"{how}. Or point --data-dir or DLCC_DATA_DIR at a folder that has it."
    )


def damaged_file_remedy(spec: DatasetSpec) -> str:
    """What to do about a damaged file of `spec`; ends a DataError that names the file."""
    if spec.downloadable:
        return f"delete it and run `dlcc data fetch {spec.name}`"
    return "replace it with a good copy (this dataset has no public download)"
