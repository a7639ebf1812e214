"""The `dlcc.data` arrays in PyTorch form: datasets, seeded samplers and loaders.

A dataset yields (inputs, targets), whatever the targets are: class labels (N,), masks
(N, 1, H, W), per-sample heatmaps or token ids. `load_data` is the one loader interface:
it takes the recipe's data section and returns the three splits, from the registry
(`dlcc data list`) or from a user's own files (``dataset: image_masks`` with ``path:``).

The arrays are small and already in memory, so a batch is fetched with one fancy-index
(``__getitems__``) rather than image by image. Augmentation runs on whole batches in the
training loop (see `dlcc.training.transforms`), on the training device.

Order and sharding are a pure function of (seed, epoch, rank, world size): the same seed
gives the same batches after a resume, and under DDP the ranks' batches together are
exactly the single-process global batch (rank r takes positions r, r + W, r + 2W, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from dlcc.data import load_dataset
from dlcc.training.config import ConfigError, DataConfig


class ArrayDataset(torch.utils.data.Dataset):
    """Inputs (N, ...) and targets (N, ...) held as tensors; sample i is (inputs[i], targets[i]).

    Classification: inputs (N, C, H, W) float32, targets (N,) int64.
    Segmentation: inputs (N, C, H, W) float32, targets (N, 1, H, W) float32 masks.
    """

    def __init__(self, inputs: np.ndarray, targets: np.ndarray):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets; they must match")
        self.inputs = torch.from_numpy(np.ascontiguousarray(inputs))
        self.targets = torch.from_numpy(np.ascontiguousarray(targets))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.inputs[index], self.targets[index]

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices)
        return self.inputs[index], self.targets[index]  # (B, ...), (B, ...)


def _pass_through(batch):
    return batch  # __getitems__ already built the batch


def epoch_permutation(size: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch `epoch`: the same for every rank and every resume."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(size, generator=generator)


class ShardedShuffleSampler(Sampler[int]):
    """Shuffles per epoch and hands rank `rank` every `world_size`-th index.

    With `repeat` > 1 an epoch draws every sample `repeat` times (in one shuffled order of
    size * repeat): for a few large images cut into random crops, an epoch of 20 crops
    would be too short to be worth validating after.

    The epoch's order is cut to a whole number of global batches' worth per rank
    (``drop_last``), so every rank takes the same number of steps.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        repeat: int = 1,
    ):
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.shuffle, self.repeat = shuffle, repeat
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        total = self.size * self.repeat
        if self.shuffle:
            order = epoch_permutation(total, self.seed, self.epoch) % self.size
        else:
            order = torch.arange(total) % self.size
        usable = total - total % self.world_size
        return iter(order[self.rank : usable : self.world_size].tolist())

    def __len__(self) -> int:
        return self.size * self.repeat // self.world_size


@dataclass
class DataBundle:
    """The three splits as tensors-in-memory datasets, plus what the model needs to know."""

    train: ArrayDataset  # or, for text, a dlcc.training.sequence dataset of token chunks
    val: ArrayDataset
    test: ArrayDataset
    classes: list[str]  # class names; segmentation: ["background", "foreground"]; text: vocab
    in_shape: tuple[int, ...]  # one input's shape, e.g. (C, H, W); text: (seq_len,)
    mean: list[float]  # per-channel statistics the inputs were standardised with
    std: list[float]
    # What a dataset says beyond the arrays, for its task's report: ecg_beats gives each
    # split's window provenance ({"windows": {split: ...}, "records": {...}}).
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_data(data: DataConfig, seed: int) -> DataBundle:
    """The recipe's data section as three splits, normalised with training statistics.

    A text dataset (tinyshakespeare, copy) gives token chunks instead
    (`dlcc.training.sequence.load_text_data`): classes = the vocabulary, in_shape (seq_len,).
    ecg_beats gives ECG windows with beat heatmaps (`_ecg_beats`).
    """
    from dlcc.training.sequence import is_text_dataset, load_text_data

    if is_text_dataset(data.dataset):
        return load_text_data(data)
    if data.sequential:
        raise ConfigError(
            f"data.sequential is for text datasets (tinyshakespeare, copy); {data.dataset!r} "
            "is not one: remove it"
        )
    if data.dataset == ECG_BEATS:
        return _ecg_beats(data, seed)
    if data.options:
        raise ConfigError(
            f"data.options are for the generated datasets ({ECG_BEATS}); {data.dataset!r} "
            "takes none: remove data.options"
        )
    if data.dataset == "image_masks":
        from dlcc.data.image_masks import load_image_masks

        if data.path is None and (data.images is None) != (data.masks is None):
            raise ConfigError(
                "data.images and data.masks go together: set both (two folders of files "
                "paired by name), or data.path alone (a folder with images/ and masks/)"
            )
        dataset = load_image_masks(
            None if data.images else data.path,
            images=data.images,
            masks=data.masks,
            val_size=data.val_size,
            seed=seed,
        )
    else:
        for key in ("path", "images", "masks"):
            if getattr(data, key) is not None:
                raise ConfigError(
                    f"data.{key} is for your own files (dataset: image_masks); "
                    f"{data.dataset!r} comes from the registry: use data.data_dir for where "
                    "datasets live"
                )
        dataset = load_dataset(data.dataset, data.data_dir, val_size=data.val_size, seed=seed)
    return DataBundle(
        train=ArrayDataset(dataset.x_train, dataset.y_train),
        val=ArrayDataset(dataset.x_val, dataset.y_val),
        test=ArrayDataset(dataset.x_test, dataset.y_test),
        classes=list(dataset.classes),
        in_shape=tuple(int(size) for size in dataset.x_train.shape[1:]),
        mean=[float(value) for value in dataset.mean],
        std=[float(value) for value in dataset.std],
    )


ECG_BEATS = "ecg_beats"  # windows of synthetic ECG and MIT-BIH record 100 (dlcc.ecg)


def _ecg_beats(data: DataConfig, seed: int) -> DataBundle:
    """ECG windows with beat heatmaps (`dlcc.ecg.dataset.build_windows`), as a DataBundle.

    data.options are build_windows' keyword arguments (n_train_records, window_s, ...);
    the seed is the run's. `extra` carries each split's window provenance, so the task's
    report can stitch the windows back into records and score those.
    """
    import inspect

    from dlcc.ecg.dataset import build_windows

    allowed = set(inspect.signature(build_windows).parameters) - {"seed", "data_dir"}
    unknown = sorted(set(data.options) - allowed)
    if unknown:
        raise ConfigError(
            f"data.options for {ECG_BEATS}: unknown {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(allowed))}"
        )
    built = build_windows(seed=seed, data_dir=data.data_dir, **data.options)
    hops = {"train": built.train_hop, "val": built.eval_hop, "test": built.eval_hop}
    windows = {
        split: {
            "record": getattr(built, split).record.tolist(),
            "start": getattr(built, split).start.tolist(),
            "hop": hops[split],
        }
        for split in ("train", "val", "test")
    }
    records = {
        key: {
            "length": info.length,
            "beats": info.beats.tolist(),
            "source": info.source,
            "fs_native": info.fs_native,
            "split": info.split,
        }
        for key, info in built.records.items()
    }
    return DataBundle(
        train=ArrayDataset(built.train.x, built.train.y),
        val=ArrayDataset(built.val.x, built.val.y),
        test=ArrayDataset(built.test.x, built.test.y),
        classes=["beat"],
        in_shape=tuple(int(size) for size in built.train.x.shape[1:]),
        mean=[0.0],  # every window is normalised on its own (dlcc.ecg.preprocess.normalise)
        std=[1.0],
        extra={"windows": windows, "records": records, "note": built.note},
    )


def train_sampler(dataset, seed: int, rank: int = 0, world_size: int = 1, repeat: int = 1):
    """The training order: shuffled per epoch, or in order for a dataset that declares
    ``sequential = True`` (streams whose batches follow one another, see
    `dlcc.training.sequence`)."""
    sequential = getattr(dataset, "sequential", False)
    if sequential and (world_size > 1 or repeat > 1):
        raise ConfigError(
            "sequential data (data.sequential: true) trains on one process with data.repeat 1: "
            "its streams are not sharded across ranks; run without torchrun, or set "
            "data.sequential: false"
        )
    return ShardedShuffleSampler(
        len(dataset), seed, rank, world_size, shuffle=not sequential, repeat=repeat
    )


def make_loader(
    dataset: ArrayDataset,
    batch_size: int,
    sampler: Sampler,
    *,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader that fetches whole batches; `batch_size` is per process."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        collate_fn=_pass_through,
    )


class EvalSampler(Sampler[int]):
    """Unshuffled and not padded: each sample is evaluated by exactly one rank."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, size, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
