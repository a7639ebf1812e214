"""An exported file, loaded to run: what a server uses instead of the run directory.

    model = load_exported("mnist.onnx")           # or a TorchScript file
    model.metadata["classes"], model.mean, model.std, model.task
    logits = model(batch)                         # (N, 1, 28, 28) float32 -> (N, 10)

ONNX files run on ONNX Runtime (CPU), TorchScript files on `torch.jit`; which one a file
is comes from its bytes (a TorchScript file is a zip archive: `ZIP_MAGIC`), not its name.
Inputs are checked against the metadata first (dtype, rank, fixed sizes, each dynamic
axis's range), so a wrong shape is a one-line error, not a runtime's traceback.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlcc.export.formats import ExportError
from dlcc.export.metadata import FORMAT, TORCHSCRIPT_EXTRA, from_properties

ZIP_MAGIC = b"PK\x03\x04"  # a TorchScript file is a zip archive; ONNX is a protobuf


@dataclass
class ExportedModel:
    """A loaded export: `run(inputs) -> logits` and the file's metadata."""

    path: Path
    file_format: str  # onnx | torchscript
    metadata: dict
    runner: Any  # an onnxruntime.InferenceSession or a torch.jit.ScriptModule

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def classes(self) -> list[str]:
        return self.metadata["classes"]

    @property
    def mean(self) -> list[float]:
        return self.metadata["normalisation"]["mean"]

    @property
    def std(self) -> list[float]:
        return self.metadata["normalisation"]["std"]

    @property
    def input_shape(self) -> list:
        """e.g. ["batch", 1, 28, 28]: ints are fixed, names are dynamic."""
        return self.metadata["input"]["shape"]

    def check_input(self, inputs) -> np.ndarray:
        """`inputs` as a contiguous array of the file's dtype; ExportError if it cannot run."""
        spec = self.metadata["input"]
        array = np.asarray(inputs)
        dtype = np.dtype(spec["dtype"])
        if spec["kind"] == "tokens" and not np.issubdtype(array.dtype, np.integer):
            raise ExportError(
                f"{self.path.name}: expected token ids (int64), received {array.dtype}"
            )
        if spec["kind"] != "tokens" and not np.issubdtype(array.dtype, np.number):
            raise ExportError(f"{self.path.name}: expected float32 inputs, received {array.dtype}")
        shape = spec["shape"]
        if array.ndim != len(shape):
            raise ExportError(
                f"{self.path.name}: expected an input of shape {_shown(shape)}, received "
                f"{array.shape}; add the batch axis for one sample (x[None])"
            )
        dynamic = {axis["axis"]: axis for axis in spec["dynamic"]}
        for index, (want, got) in enumerate(zip(shape, array.shape, strict=True)):
            axis = dynamic.get(index)
            if axis is None and got != want:
                raise ExportError(
                    f"{self.path.name}: expected an input of shape {_shown(shape)}, received "
                    f"{array.shape}: axis {index} must be {want}"
                )
            if axis is not None and not (
                got >= axis["min"] and (axis["max"] is None or got <= axis["max"])
            ):
                limit = f"{axis['min']}..{axis['max'] if axis['max'] is not None else ''}"
                raise ExportError(
                    f"{self.path.name}: the {axis['name']} axis (axis {index}) takes sizes "
                    f"{limit}, received {got} in {array.shape}"
                )
        if spec["kind"] == "tokens" and array.size:
            vocab = spec["vocab_size"]
            if array.min() < 0 or array.max() >= vocab:
                raise ExportError(
                    f"{self.path.name}: token ids must lie in 0..{vocab - 1}, received "
                    f"{array.min()}..{array.max()}"
                )
        return np.ascontiguousarray(array, dtype=dtype)

    def run(self, inputs) -> np.ndarray:
        """Inputs shaped as `input_shape` (already normalised) -> logits, float32."""
        array = self.check_input(inputs)
        if self.file_format == "onnx":
            return self.runner.run(None, {self.metadata["input"]["name"]: array})[0]
        import torch

        with torch.inference_mode():
            return self.runner(torch.from_numpy(array)).float().numpy()

    __call__ = run


def load_exported(path: str | Path) -> ExportedModel:
    """An ONNX or TorchScript file written by `dlcc export`, ready to run (CPU)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist: write one with `dlcc export RUN_DIR`")
    with path.open("rb") as handle:
        is_zip = handle.read(4) == ZIP_MAGIC
    if is_zip:
        return _torchscript(path)
    return _onnx(path)


def _torchscript(path: Path) -> ExportedModel:
    import torch

    extra = {TORCHSCRIPT_EXTRA: ""}
    try:
        with warnings.catch_warnings():  # torch.jit's deprecation notice: it still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as error:
        raise ExportError(
            f"{path} is not a readable TorchScript file ({type(error).__name__}); export it "
            "again with `dlcc export`"
        ) from None
    try:
        metadata = json.loads(extra[TORCHSCRIPT_EXTRA])
    except ValueError:
        metadata = None
    return ExportedModel(path, "torchscript", _checked(metadata, path), module.eval())


def _onnx(path: Path) -> ExportedModel:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise ExportError(
            f"{path} is neither a TorchScript file nor a readable ONNX model "
            f"({type(error).__name__}); export it again with `dlcc export`"
        ) from None
    properties = session.get_modelmeta().custom_metadata_map
    return ExportedModel(path, "onnx", _checked(from_properties(properties), path), session)


def _checked(metadata, path: Path) -> dict:
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ExportError(f"{path} holds no {FORMAT} metadata: it was not written by `dlcc export`")
    return metadata


def _shown(shape: list) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ")"
