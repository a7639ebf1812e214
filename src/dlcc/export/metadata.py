"""What an exported file says about itself: everything a server needs, no run directory.

One JSON object (`build_metadata`), stored inside the file (ONNX: one ``metadata_props``
entry per top-level key, its value a JSON string; TorchScript: the extra file ``dlcc.json``)
and beside it as ``FILE.json`` (the same object plus the export's ``verification``):

    format         "dlcc-export/1"
    file_format    onnx | torchscript
    task           classification, segmentation, detection, beats, language_model
    model          {"name": "small_cnn", "options": {...}}
    input          {"name", "kind" (images | signal | tokens), "dtype",
                    "shape": ["batch", 1, 28, 28] (dynamic axes named), "trained_shape",
                    "dynamic": [{"name", "axis", "min", "max"}], "vocab_size" (tokens)}
    output         {"name": "logits", "layout" (classes | dense | signal | sequence),
                    "activation": softmax | sigmoid (how logits become probabilities)}
    normalisation  {"mean": [C], "std": [C]}: inputs are (x - mean) / std per channel
                   (pixels scaled to [0, 1] first); empty for tokens; 0 and 1 for ECG
                   signals, which are standardised window by window before this
    classes        class names (the vocabulary for a language model)
    metrics        the run's metrics.json (null for an unfinished run)
    source         {"run_dir", "checkpoint", "epoch"}
    versions       {"dlcc", "torch", "onnx_opset" (ONNX only)}
    exported       UTC time, ISO 8601
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

FORMAT = "dlcc-export/1"
TORCHSCRIPT_EXTRA = "dlcc.json"  # the name of the metadata inside a TorchScript file


def build_metadata(
    *,
    file_format: str,
    spec,
    task: str,
    model_name: str,
    model_options: dict,
    activation: str,
    mean: list[float],
    std: list[float],
    classes: list[str],
    metrics: dict | None,
    source: dict,
    opset: int | None = None,
) -> dict:
    """The metadata object of one export (see the module docstring); `spec` a ServingSpec."""
    import torch

    import dlcc

    versions = {"dlcc": dlcc.__version__, "torch": torch.__version__}
    if opset is not None:
        versions["onnx_opset"] = opset
    metadata_input = {
        "name": "input",
        "kind": spec.kind,
        "dtype": spec.dtype,
        "shape": spec.input_shape(),
        "trained_shape": list(spec.in_shape),
        "dynamic": [axis.to_dict() for axis in spec.axes],
    }
    if spec.vocab_size is not None:
        metadata_input["vocab_size"] = spec.vocab_size
    return {
        "format": FORMAT,
        "file_format": file_format,
        "task": task,
        "model": {"name": model_name, "options": dict(model_options)},
        "input": metadata_input,
        "output": {"name": "logits", "layout": spec.output, "activation": activation},
        "normalisation": {"mean": [float(m) for m in mean], "std": [float(s) for s in std]},
        "classes": [str(name) for name in classes],
        "metrics": metrics,
        "source": source,
        "versions": versions,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def to_properties(metadata: dict) -> dict[str, str]:
    """{key: JSON string} for ONNX's metadata_props (string to string)."""
    return {key: json.dumps(value, allow_nan=False) for key, value in metadata.items()}


def from_properties(properties: dict[str, str]) -> dict:
    """The inverse of `to_properties`; keys that are not JSON are kept as strings."""
    metadata = {}
    for key, text in properties.items():
        try:
            metadata[key] = json.loads(text)
        except ValueError:
            metadata[key] = text
    return metadata
