"""Writing and checking the two formats: ONNX and TorchScript.

Each writer traces the `ServingSpec`'s module, writes the file to a temporary name beside
`out` (`dlcc.atomic.atomic_write`), checks that temporary file, and only then renames it:
a file that fails a check is deleted, never left behind. The checks:

- ONNX: `onnx.checker.check_model`, the metadata read back, then ONNX Runtime against eager
  PyTorch on the parity inputs;
- TorchScript: `torch.jit.load` with its ``dlcc.json`` read back, then the same comparison.

The parity inputs (`parity_inputs`) are the traced shape at batch 2 and 1, and batch 5 at
other sizes of every dynamic axis, so a frozen size in the graph fails the export. The
largest absolute difference over all of them must not pass `tolerance` (1e-4 by default).
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from dlcc.atomic import atomic_write
from dlcc.errors import DlccError
from dlcc.export.graph import INPUT_NAME, OUTPUT_NAME, ServingSpec
from dlcc.export.metadata import TORCHSCRIPT_EXTRA, from_properties, to_properties

OPSET = 17  # ONNX Runtime 1.17+ and every recent runtime read it; LayerNormalization is 17
FORMATS = ("onnx", "torchscript")


class ExportError(DlccError):
    """A run cannot be exported, or its export failed a check; the message says why."""


def parity_inputs(spec: ServingSpec) -> list[torch.Tensor]:
    """The inputs the export is checked on: traced shape (batch 2, 1), other sizes (batch 5)."""
    return [
        spec.sample(2, seed=1),
        spec.sample(1, seed=2),
        spec.sample(5, spec.other_sizes(), seed=3),
    ]


def eager_outputs(spec: ServingSpec, inputs: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.inference_mode():
        return [spec.module(x).float().numpy() for x in inputs]


def largest_difference(
    expected: list[np.ndarray], received: list[np.ndarray], inputs: list[torch.Tensor]
) -> float:
    """max |expected - received| over every pair; ExportError when a shape differs."""
    largest = 0.0
    for want, got, x in zip(expected, received, inputs, strict=True):
        if want.shape != got.shape:
            raise ExportError(
                f"the exported model gives shape {got.shape} for input {tuple(x.shape)}, eager "
                f"PyTorch {want.shape}: an axis did not export as dynamic"
            )
        largest = max(largest, float(np.max(np.abs(want.astype(np.float64) - got))))
    return largest


def check_parity(difference: float, tolerance: float, file_format: str) -> None:
    if not difference <= tolerance:  # NaN fails too
        raise ExportError(
            f"the {file_format} export differs from eager PyTorch by up to {difference:.3g} "
            f"(tolerance {tolerance:g}); nothing was written. Check for ops whose export "
            "changes numerics, or pass a larger --tolerance if the difference is acceptable"
        )


def unsupported_operator(error: BaseException) -> str | None:
    """The op an exporter error names (``aten::fft_fft``), or None."""
    text = str(error)
    for pattern in (r"operator '([\w:.]+)'", r"operator ([\w]+::[\w.]+)", r"([a-z]+::\w+)"):
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return None


@contextmanager
def _quiet() -> Iterator[None]:
    """Tracing warns at every Python-side shape check of the models; they are expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---- ONNX --------------------------------------------------------------------------------


def onnx_bytes(spec: ServingSpec) -> bytes:
    """The spec's module as an ONNX model (opset OPSET), dynamic axes named; ExportError
    naming the op when the exporter has no translation for one."""
    buffer = io.BytesIO()
    sample = spec.sample(2)
    dynamic = {a.index: a.name for a in spec.axes}
    try:
        with _quiet():
            torch.onnx.export(
                spec.module,
                (sample,),
                buffer,
                dynamo=False,  # the TorchScript-based exporter: needs no onnxscript
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: spec.output_axes()},
                do_constant_folding=True,
            )
    except Exception as error:
        op = unsupported_operator(error)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if op is not None:
            raise ExportError(
                f"ONNX cannot export the operator {op!r} used by this model (opset {OPSET}): "
                f"{first[:200]}. Export with --format torchscript instead, or replace that "
                "op in the model"
            ) from None
        raise ExportError(
            f"the ONNX exporter failed ({type(error).__name__}: {first[:200]}); "
            "try --format torchscript"
        ) from None
    return buffer.getvalue()


def write_onnx(spec: ServingSpec, metadata: dict, out: Path, tolerance: float) -> dict:
    """Export, embed `metadata`, write `out` atomically once checked; returns the check."""
    import onnx

    model = onnx.load_from_string(onnx_bytes(spec))
    del model.metadata_props[:]
    for key, value in to_properties(metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    inputs = parity_inputs(spec)
    expected = eager_outputs(spec, inputs)
    result: dict = {}

    def verify(path: Path) -> None:
        import onnxruntime

        saved = onnx.load(str(path))
        try:
            onnx.checker.check_model(saved)
        except onnx.checker.ValidationError as error:
            raise ExportError(f"the ONNX file fails onnx.checker: {error}") from None
        props = {entry.key: entry.value for entry in saved.metadata_props}
        if from_properties(props) != metadata:
            raise ExportError("the ONNX file's metadata did not read back as written")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        received = [session.run(None, {INPUT_NAME: x.numpy()})[0] for x in inputs]
        result["max_abs_diff"] = largest_difference(expected, received, inputs)
        check_parity(result["max_abs_diff"], tolerance, "ONNX")

    with atomic_write(out, verify=verify) as handle:
        handle.write(model.SerializeToString())
    return _verification(result, tolerance, inputs, "onnxruntime")


# ---- TorchScript -------------------------------------------------------------------------


def write_torchscript(spec: ServingSpec, metadata: dict, out: Path, tolerance: float) -> dict:
    """Trace, save with ``dlcc.json`` inside, write `out` atomically once checked."""
    try:
        with _quiet():
            traced = torch.jit.trace(spec.module, (spec.sample(2),), check_trace=False)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ExportError(
            f"torch.jit.trace failed on this model ({type(error).__name__}: {first[:200]})"
        ) from None
    text = json.dumps(metadata, allow_nan=False)
    inputs = parity_inputs(spec)
    expected = eager_outputs(spec, inputs)
    result: dict = {}

    def verify(path: Path) -> None:
        extra = {TORCHSCRIPT_EXTRA: ""}
        with _quiet():  # torch.jit's deprecation notice: the format still loads
            loaded = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        if json.loads(extra[TORCHSCRIPT_EXTRA]) != metadata:
            raise ExportError("the TorchScript file's dlcc.json did not read back as written")
        with torch.inference_mode():
            received = [loaded(x).float().numpy() for x in inputs]
        result["max_abs_diff"] = largest_difference(expected, received, inputs)
        check_parity(result["max_abs_diff"], tolerance, "TorchScript")

    with atomic_write(out, verify=verify) as handle, _quiet():
        torch.jit.save(traced, handle, _extra_files={TORCHSCRIPT_EXTRA: text})
    return _verification(result, tolerance, inputs, "torch.jit")


def _verification(result: dict, tolerance: float, inputs, runtime: str) -> dict:
    return {
        "max_abs_diff": result["max_abs_diff"],
        "tolerance": tolerance,
        "runtime": runtime,
        "checked_shapes": [list(x.shape) for x in inputs],
    }
