"""A trained dense run loaded for prediction on new images.

    predictor = load_predictor("runs/isbi_unet")          # checkpoints/best.pt
    probabilities = predictor.predict(image)               # (K, H, W) float32

`image` is what an image file holds: (H, W) grey or (H, W, C), uint8, uint16 or float.
It is prepared exactly like the training loader prepared its inputs
(`dlcc.data.image_masks`): uint8 / 255, uint16 / 65535 (floats as they are), then
standardised per channel with the training split's mean and std, which the checkpoint
carries (``"data"``, see `dlcc.training.state.data_summary`). A checkpoint written before
that was added has them recomputed from the run's own training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from dlcc.errors import DlccError
from dlcc.segmentation.tiling import predict_tiled


class PredictError(DlccError):
    """An image or a run cannot be used for prediction; the message says why and what to do."""


def scale_to_unit(array: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) of any dtype -> float32: uint8 / 255, uint16 / 65535, else as is.

    The training loader's rule (`dlcc.data.image_masks`), so a file predicts as it trained.
    """
    from dlcc.data.image_masks import dtype_scale

    return array.astype(np.float32) / np.float32(dtype_scale(array.dtype))


def image_channels(array: np.ndarray, where: str = "the image") -> int:
    """1 for (H, W) or (H, W, 1); 3 for RGB (H, W, 3) or RGBA (H, W, 4, alpha dropped)."""
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 1):
        return 1
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return 3
    raise PredictError(
        f"{where}: expected a greyscale (H, W) or RGB (H, W, 3) image, received shape "
        f"{array.shape}; save it as a grey or RGB image"
    )


def check_channels(array: np.ndarray, expected: int, where: str = "the image") -> int:
    """The image's channels (see `image_channels`); PredictError unless they are `expected`."""
    channels = image_channels(array, where)
    if channels != expected:
        names = {1: "greyscale (1 channel)", 3: "RGB (3 channels)"}
        raise PredictError(
            f"{where}: the model was trained on {names.get(expected, f'{expected} channels')} "
            f"images, received {names[channels]} of shape {array.shape}; convert it to "
            f"{'greyscale' if expected == 1 else 'RGB'} first"
        )
    return channels


def to_model_input(array: np.ndarray, mean, std, where: str = "the image") -> np.ndarray:
    """(H, W) / (H, W, C) pixels -> (C, H, W) float32, scaled and standardised.

    Raises PredictError when the channels differ from the model's (len(mean)).
    """
    channels = check_channels(array, len(mean), where)
    pixels = scale_to_unit(array)
    if pixels.ndim == 2:
        chw = pixels[None]  # (1, H, W)
    else:
        chw = np.moveaxis(pixels[..., :channels], -1, 0)  # (C, H, W)
    chw = np.ascontiguousarray(chw, dtype=np.float32)  # its own copy: standardised in place
    chw -= np.asarray(mean, dtype=np.float32)[:, None, None]
    chw /= np.asarray(std, dtype=np.float32)[:, None, None]
    return chw


@dataclass
class Predictor:
    """A trained model with what it needs to predict: normalisation, classes, task.

    `activation` is "sigmoid" for one output channel (binary mask, heatmap) and "softmax"
    for two or more (one channel per class).
    """

    model: torch.nn.Module
    mean: list[float]  # per input channel
    std: list[float]
    classes: list[str]
    task: str  # the run's task name: segmentation, detection, ...
    device: torch.device
    checkpoint: Path
    activation: str
    in_shape: tuple[int, ...] = ()  # what it trained on: (C, H, W), (C, T) or (T,)

    @property
    def in_channels(self) -> int:
        return len(self.mean)

    def prepare(self, image: np.ndarray, where: str = "the image") -> np.ndarray:
        """Pixels (H, W) / (H, W, C) -> the model's input (C, H, W), float32 standardised."""
        return to_model_input(image, self.mean, self.std, where)

    def predict(
        self,
        image: np.ndarray,
        *,
        tile: int = 256,
        overlap: int = 64,
        batch_size: int = 4,
        tta: bool = False,
        where: str = "the image",
    ) -> np.ndarray:
        """Pixels (H, W) / (H, W, C), uint8 / uint16 / float -> (K, H, W) float32 probabilities."""
        return predict_tiled(
            self.model,
            self.prepare(image, where),
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            tta=tta,
            device=self.device,
            activation=self.activation,
        )


def _data_summary(state: dict, config, path: Path) -> dict:
    """The checkpoint's ``data`` entry, or, for an older checkpoint, one from its data."""
    if isinstance(state.get("data"), dict):
        return state["data"]
    from dlcc.training.data import load_data
    from dlcc.training.state import data_summary

    try:
        return data_summary(load_data(config.data, config.train.seed))
    except DlccError as error:
        raise PredictError(
            f"{path} predates the normalisation statistics that checkpoints now carry, and "
            f"the run's training data to recompute them could not be loaded ({error}); "
            "make that data available again (data.path / --data-dir), or train the run again"
        ) from None


def load_predictor(
    run_dir: str | Path,
    checkpoint: str = "best",
    device: str = "auto",
    data_dir: str | None = None,
) -> Predictor:
    """RUN_DIR's checkpoints/{checkpoint}.pt as a `Predictor` on `device`, in eval mode.

    One-line DlccError for a folder that is not a torch run, a missing or unreadable
    checkpoint, or an old checkpoint whose training data are gone. `data_dir` is where the
    registry's datasets live, needed only for that fallback.
    """
    from dlcc.runs import read_run
    from dlcc.training.checkpoint import load_model_weights
    from dlcc.training.evaluation import read_saved_checkpoint
    from dlcc.training.setup import build_network, pick_device
    from dlcc.training.tasks import build_task

    saved = read_run(run_dir)
    if saved.kind != "torch":
        raise PredictError(
            f"{run_dir} is a {saved.kind} run; prediction needs a run of `dlcc train` (torch)"
        )
    config, path, state = read_saved_checkpoint(saved, checkpoint, data_dir)
    summary = _data_summary(state, config, path)
    # build_task and build_network read only these fields of a DataBundle.
    data = SimpleNamespace(
        classes=list(summary["classes"]),
        in_shape=tuple(summary["in_shape"]),
        mean=list(summary["mean"]),
        std=list(summary["std"]),
        train=None,  # not sequential: a stateful model starts every call from zeros
    )
    task = build_task(config, data)
    model = build_network(config, data, task)
    load_model_weights(model, state, path, config.model.name)
    torch_device = pick_device(device)
    model.to(torch_device).eval()
    return Predictor(
        model=model,
        mean=data.mean,
        std=data.std,
        classes=data.classes,
        task=saved.task,
        device=torch_device,
        checkpoint=path,
        activation="sigmoid" if task.num_outputs == 1 else "softmax",
        in_shape=data.in_shape,
    )
