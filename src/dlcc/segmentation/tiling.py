"""A dense model's prediction on an image of any size: overlapping tiles, smoothly blended.

A fully convolutional model can take a whole image, but a 4096 x 4096 micrograph does not
fit in a GPU's memory (its activations do not), and a U-Net wants sides that are multiples
of 16. So the image is cut into tiles of ``tile x tile`` pixels that overlap by
``overlap``; the last tile of a row or column is aligned to the image's border. Each
tile's output (after its activation: probabilities blend, logits do not) is weighted by a
smooth window that is high in the tile's centre and low, but never zero, at its edges,
where a convolution's zero padding makes outputs less reliable (an edge on the image's own
border keeps full weight: no neighbour covers it). Weighted sums and the
weights are accumulated in two full-size float32 arrays, (K, H, W) and (H, W), and
divided at the end: those are the only full-size arrays besides the image itself.

    probabilities = predict_tiled(model, image, tile=256, overlap=64)  # (K, H, W)

An image smaller than a tile is padded by reflection up to the next multiple of 16
(at most the tile) and the padding is cropped off the output.
"""

from __future__ import annotations

import numpy as np
import torch

ACTIVATIONS = ("sigmoid", "softmax", None)
# Every tile side is a multiple of this, so a U-Net's poolings divide it evenly.
SIDE_MULTIPLE = 16
# The blending window's lowest value (at a tile's edge inside the image), relative to its
# centre's 1.0: a neighbour's centre wins there. Edges on the image's border keep weight 1
# (see blend_window); the floor only keeps every weight > 0 (tiles that abut, overlap 0).
WINDOW_FLOOR = 1e-3
# The four flips of test-time augmentation, as the tensor dims to flip: none, h, v, hv.
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """First pixels of the tiles covering ``range(size)``, the last one ending at `size`.

    Tiles step by ``tile - overlap``; ``size <= tile`` gives one tile at 0.
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)  # aligned to the border, overlapping its neighbour more
    return starts


def blend_window(
    height: int,
    width: int,
    floor: float = WINDOW_FLOOR,
    borders: tuple[bool, bool, bool, bool] = (False, False, False, False),
) -> np.ndarray:
    """(height, width) float32: a separable raised cosine from `floor` (edges) to 1 (centre).

    `borders` (top, bottom, left, right) flattens that side to 1 from the centre out: a
    tile's edge on the image's border has no neighbour to hand over to, so it keeps full
    weight there instead of being divided by a small number.
    """
    top, bottom, left, right = borders

    def one_axis(length: int, flat_start: bool, flat_end: bool) -> np.ndarray:
        positions = (np.arange(length, dtype=np.float64) + 0.5) / length  # (length,) in (0, 1)
        window = floor + (1.0 - floor) * np.sin(np.pi * positions) ** 2
        if flat_start:
            window[: length // 2] = 1.0
        if flat_end:
            window[length // 2 :] = 1.0
        return window

    rows, columns = one_axis(height, top, bottom), one_axis(width, left, right)
    return np.outer(rows, columns).astype(np.float32)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _check_arguments(image, tile: int, overlap: int, batch_size: int, activation) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(
            f"predict_tiled: expected an image array (C, H, W), received {shape}; "
            "add a channel axis to a greyscale image (image[None])"
        )
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError(f"predict_tiled: the image is empty, shape {image.shape}")
    if tile < SIDE_MULTIPLE or tile % SIDE_MULTIPLE:
        raise ValueError(
            f"predict_tiled: tile must be a multiple of {SIDE_MULTIPLE} (>= {SIDE_MULTIPLE}), "
            f"received {tile}; try 256"
        )
    if not 0 <= overlap < tile:
        raise ValueError(
            f"predict_tiled: overlap must be in [0, tile={tile}), received {overlap}; try tile/4"
        )
    if batch_size < 1:
        raise ValueError(f"predict_tiled: batch_size must be >= 1, received {batch_size}")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"predict_tiled: activation must be sigmoid, softmax or None, received {activation!r}"
        )


def _activate(logits: torch.Tensor, activation: str | None) -> torch.Tensor:
    """(B, K, h, w) logits -> (B, K, h, w) float32 probabilities (or the logits as they are)."""
    logits = logits.float()
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    if activation == "softmax":
        return torch.softmax(logits, dim=1)
    return logits


def _run_batch(model, batch: torch.Tensor, tta: bool, activation) -> torch.Tensor:
    """(B, C, h, w) tiles -> (B, K, h, w) activated outputs, averaged over flips with `tta`."""
    if not tta:
        return _activate(model(batch), activation)
    total = None
    for dims in FLIPS:
        flipped = batch.flip(dims) if dims else batch
        output = _activate(model(flipped), activation)
        output = output.flip(dims) if dims else output  # back into the tile's own frame
        total = output if total is None else total + output
    return total / len(FLIPS)


def _model_device(model: torch.nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def predict_tiled(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    tile: int = 256,
    overlap: int = 64,
    batch_size: int = 4,
    tta: bool = False,
    device: str | torch.device | None = None,
    activation: str | None = "sigmoid",
) -> np.ndarray:
    """A dense model's output on a whole image of any size, from overlapping tiles.

    Args:
        model: maps (B, C, h, w) float32 to (B, K, h, w) logits for any h, w that are
            multiples of 16; it is put in eval mode (and back to train mode after, if it
            was) and must already be on `device`.
        image: (C, H, W) float32, already standardised like the training data; any H, W.
        tile: the side of a square tile in pixels, a multiple of 16.
        overlap: pixels shared by neighbouring tiles, 0 <= overlap < tile.
        batch_size: tiles per forward pass; only this many tiles exist at once.
        tta: average over the four flips (none, horizontal, vertical, both), each output
            flipped back before averaging: 4x the compute.
        device: where the tiles go; None: the device of the model's parameters.
        activation: "sigmoid" (K = 1, or independent channels), "softmax" (over K) or None
            (blend the raw logits), applied to each tile before blending.

    Returns:
        (K, H, W) float32: the blended (probabilities or logits) output.
    """
    _check_arguments(image, tile, overlap, batch_size, activation)
    device = _model_device(model) if device is None else torch.device(device)
    _, height, width = image.shape
    # A side shorter than a tile gets one tile, as short as the next multiple of 16.
    tile_height = min(tile, round_up(height, SIDE_MULTIPLE))
    tile_width = min(tile, round_up(width, SIDE_MULTIPLE))
    padded_height, padded_width = max(height, tile_height), max(width, tile_width)
    if (padded_height, padded_width) != (height, width):  # only ever for small images
        image = np.pad(
            image, ((0, 0), (0, padded_height - height), (0, padded_width - width)), "reflect"
        )
    image = np.asarray(image, dtype=np.float32)
    corners = [
        (row, column)
        for row in tile_starts(padded_height, tile_height, overlap)
        for column in tile_starts(padded_width, tile_width, overlap)
    ]
    windows: dict[tuple[bool, ...], tuple[np.ndarray, torch.Tensor]] = {}

    def window_of(row: int, column: int) -> tuple[np.ndarray, torch.Tensor]:
        """The (th, tw) window of the tile at (row, column), as an array and on `device`."""
        borders = (
            row == 0,
            row + tile_height == padded_height,
            column == 0,
            column + tile_width == padded_width,
        )
        if borders not in windows:  # at most 16 kinds of tile
            window = blend_window(tile_height, tile_width, borders=borders)
            windows[borders] = (window, torch.from_numpy(window).to(device))
        return windows[borders]

    weights = np.zeros((padded_height, padded_width), dtype=np.float32)  # (H', W')
    sums: np.ndarray | None = None  # (K, H', W'), allocated once K is known

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for first in range(0, len(corners), batch_size):
                batch_corners = corners[first : first + batch_size]
                tiles = np.stack(
                    [
                        image[:, row : row + tile_height, column : column + tile_width]
                        for row, column in batch_corners
                    ]
                )  # (B, C, th, tw)
                batch = torch.from_numpy(tiles).to(device)
                outputs = _run_batch(model, batch, tta, activation)  # (B, K, th, tw)
                if outputs.ndim != 4 or tuple(outputs.shape[2:]) != (tile_height, tile_width):
                    raise ValueError(
                        f"predict_tiled: a dense model must keep a tile's size: input "
                        f"{tuple(batch.shape)} gave output {tuple(outputs.shape)}"
                    )
                tile_windows = [window_of(row, column) for row, column in batch_corners]
                on_device = torch.stack([tensor for _, tensor in tile_windows])  # (B, th, tw)
                weighted = (outputs * on_device[:, None]).cpu().numpy()  # (B, K, th, tw)
                if sums is None:
                    sums = np.zeros((outputs.shape[1], padded_height, padded_width), np.float32)
                for (row, column), tile_output, (window, _) in zip(
                    batch_corners, weighted, tile_windows, strict=True
                ):
                    sums[:, row : row + tile_height, column : column + tile_width] += tile_output
                    weights[row : row + tile_height, column : column + tile_width] += window
    finally:
        model.train(was_training)
    sums /= weights  # every pixel is covered by at least one window >= WINDOW_FLOOR**2 > 0
    if sums.shape[1:] != (height, width):
        return np.ascontiguousarray(sums[:, :height, :width])  # the padding cropped off
    return sums
