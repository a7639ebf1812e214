"""`dlcc export RUN_DIR`: a trained torch run as one self-describing ONNX or TorchScript file.

    export_run("runs/mnist", "onnx", "mnist.onnx")   # -> mnist.onnx and mnist.onnx.json

The run's checkpoint is rebuilt with its normalisation, classes and shape
(`dlcc.segmentation.predictor.load_predictor`), wrapped for tracing (`graph.serving_spec`),
written and checked (`formats`), then the metadata with the check's figures is written
beside it as ``FILE.json``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.export.formats import FORMATS, OPSET, ExportError, write_onnx, write_torchscript
from dlcc.export.graph import serving_spec
from dlcc.export.metadata import build_metadata
from dlcc.suggest import did_you_mean

DEFAULT_TOLERANCE = 1e-4


def check_format(file_format: str) -> str:
    if file_format not in FORMATS:
        raise ExportError(
            f"unknown export format {file_format!r}{did_you_mean(str(file_format), FORMATS)}; "
            f"expected one of {', '.join(FORMATS)}"
        )
    return file_format


def sidecar_path(out: str | Path) -> Path:
    """FILE.json beside FILE (``model.onnx`` -> ``model.onnx.json``)."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def export_run(
    run_dir: str | Path,
    file_format: str,
    out: str | Path,
    *,
    checkpoint: str = "best",
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict:
    """Export RUN_DIR's checkpoints/{checkpoint}.pt to `out`; returns the sidecar's dict.

    One-line ExportError (a DlccError) for: an unknown format, a NumPy run, a run without
    that checkpoint, an op the format cannot hold, or a file that fails its check (the
    largest |exported - eager| above `tolerance`). Nothing is left at `out` on failure.
    """
    from dlcc.runs import read_metrics, read_run

    check_format(file_format)
    if checkpoint not in ("best", "last"):
        raise ExportError(f"--checkpoint expected best or last, received {checkpoint!r}")
    saved = read_run(run_dir)
    if saved.kind != "torch":
        raise ExportError(
            f"{run_dir} is a {saved.kind} run; export needs a torch run (`dlcc train`). A "
            "NumPy model has no graph to trace: its weights are in checkpoints/*.npz"
        )
    if not saved.run.checkpoint(checkpoint).is_file():
        other = "last" if checkpoint == "best" else "best"
        hint = f", or pass --checkpoint {other}" if saved.run.checkpoint(other).is_file() else ""
        raise ExportError(
            f"{saved.run.checkpoint(checkpoint)} does not exist: the run has not finished an "
            f"epoch yet; train it first{hint}"
        )
    predictor = _load(run_dir, checkpoint)
    model_settings = saved.settings.get("model", {})
    return export_model(
        predictor.model,
        model_settings.get("name"),
        predictor.in_shape,
        file_format,
        out,
        model_options=model_settings.get("options", {}) or {},
        task=predictor.task,
        activation=predictor.activation,
        mean=predictor.mean,
        std=predictor.std,
        classes=predictor.classes,
        metrics=read_metrics(saved.run) if saved.run.finished else None,
        source={"run_dir": str(run_dir), "checkpoint": checkpoint},
        tolerance=tolerance,
    )


def export_model(
    model,
    model_name: str,
    in_shape: tuple[int, ...],
    file_format: str,
    out: str | Path,
    *,
    classes: list[str],
    model_options: dict | None = None,
    task: str = "",
    activation: str = "softmax",
    mean: list[float] = (),
    std: list[float] = (),
    metrics: dict | None = None,
    source: dict | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict:
    """Export a built registry model (`model_name`, for one sample of `in_shape`) to `out`.

    `classes` are its outputs' names (the vocabulary of a token model). Returns the
    sidecar's dict: the metadata and the check (``verification``: ``max_abs_diff``, ...).
    """
    from dlcc.models.registry import MODELS

    check_format(file_format)
    if model_name not in MODELS:
        raise ExportError(
            f"model {model_name!r} is not in the registry (dlcc.models.MODELS), so its input "
            "kind and axes are unknown; export one of: " + ", ".join(sorted(MODELS))
        )
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"--out {out} is a directory; give a file name, e.g. {out}/model.onnx")
    # A copy: the caller's model stays on its device, in its mode.
    spec = serving_spec(copy.deepcopy(model).cpu(), model_name, in_shape, len(classes))
    metadata = build_metadata(
        file_format=file_format,
        spec=spec,
        task=task,
        model_name=model_name,
        model_options=model_options or {},
        activation=activation,
        mean=list(mean),
        std=list(std),
        classes=classes,
        metrics=metrics,
        source=source or {},
        opset=OPSET if file_format == "onnx" else None,
    )
    writer = write_onnx if file_format == "onnx" else write_torchscript
    verification = writer(spec, metadata, out, float(tolerance))
    sidecar = {**metadata, "verification": verification}
    write_text_atomic(sidecar_path(out), json.dumps(sidecar, indent=2, allow_nan=False) + "\n")
    return sidecar


def _load(run_dir, checkpoint: str):
    """The run's model on the CPU with its normalisation, classes and shape."""
    from dlcc.segmentation.predictor import load_predictor

    return load_predictor(run_dir, checkpoint, device="cpu")
