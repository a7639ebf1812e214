"""What the server serves: a model with a name, a version, an input spec and a way to answer.

Sources (`load_models({name: source})`):
- an ONNX file written by `dlcc export` (ONNX Runtime; no unpickling: ONNX is protobuf);
- a TorchScript file written by `dlcc export` (`torch.jit`, the PyTorch fallback);
- a run directory of `dlcc train`: exported to ONNX at startup into a temporary folder
  (its checkpoint is read with ``torch.load(weights_only=True)``, so no code in it runs),
  then served like an ONNX file; if ONNX cannot hold the model, to TorchScript instead;
- ``ecg``: the ECG beat detector (`dlcc.ecg`, torch; its file is also read weights-only),
  or a beats run directory / detector file.
- ``models:/NAME/VERSION`` (or ``models:/NAME/latest``): a model registered with
  `dlcc track register`, found in the MLflow store (`registry_uri`: $MLFLOW_TRACKING_URI,
  else runs/mlflow.db); its weights-only run files are served like a run directory.

Image models take one sample per request, so concurrent requests can be micro-batched.
The ECG detector takes a whole record of any length: its requests run one at a time.
"""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path

import numpy as np

from dlcc.deploy.errors import InputError
from dlcc.deploy.inputs import (
    MAX_ECG_SAMPLES,
    check_fs,
    decode_image,
    numeric_array,
    read_ecg_csv,
    read_wfdb_upload,
    resize,
)
from dlcc.errors import DlccError

DEFAULT_MODELS = Path(__file__).with_name("default_models")
DIGITS_MODEL = DEFAULT_MODELS / "digits.onnx"
MAX_DISPLAY_POINTS = 5000  # the ECG signal returned for plotting is decimated to this


class ServeError(DlccError):
    """A model cannot be served; the message says why and what to do."""


def file_version(path: Path) -> str:
    """A model file's version: the first 12 hex digits of its sha256."""
    from dlcc.runs.provenance import file_sha256

    return "sha256:" + file_sha256(path)[:12]


class ServedModel:
    """The interface of a served model (see ImageModel, EcgModel)."""

    name: str
    kind: str
    batchable: bool = False
    registered: dict | None = None  # {"name", "version", "run_id"} of a models:/ source

    def describe(self) -> dict:
        raise NotImplementedError

    def _registered(self) -> dict:
        return {"registered": self.registered} if self.registered else {}

    def from_json(self, payload: dict):
        raise NotImplementedError

    def from_upload(self, files: list[tuple[str, bytes]], fields: dict, max_side: int):
        raise NotImplementedError

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def answer(self, output, request) -> dict:
        raise NotImplementedError

    def warm_up(self) -> None:
        pass


class ImageModel(ServedModel):
    """An exported image model: a classifier, or a dense (segmentation/detection) model.

    Requests carry pixels in [0, 1] (JSON) or a PNG/JPEG (upload). A classifier's input
    size is fixed: an upload of another size is resized to it (box filter), a JSON array
    must have it exactly. A one-channel classifier inverts an upload that is mostly light
    (mean > 0.5), since it was trained on light strokes on dark (MNIST). Dense models are
    fully convolutional: they take any size within the file's axis limits, unchanged.
    """

    batchable = True

    def __init__(self, name: str, exported, source: str):
        self.name = name
        self.exported = exported
        self.source = source
        self.version = file_version(exported.path)
        metadata = exported.metadata
        self.task = metadata["task"]
        self.layout = metadata["output"]["layout"]
        if metadata["input"]["kind"] != "images" or self.layout not in ("classes", "dense"):
            raise ServeError(
                f"{source}: a {metadata['input']['kind']} model with {self.layout} outputs; "
                "the server serves image classifiers and image segmentation/detection models"
            )
        self.kind = "image_classifier" if self.layout == "classes" else "image_dense"
        shape = metadata["input"]["shape"]
        self.channels = int(shape[1])
        self.fixed = [s if isinstance(s, int) else None for s in shape[2:]]
        self.dynamic = {a["axis"]: a for a in metadata["input"]["dynamic"]}
        self.mean = np.asarray(exported.mean, dtype=np.float32)[:, None, None]
        self.std = np.asarray(exported.std, dtype=np.float32)[:, None, None]
        self.activation = metadata["output"]["activation"]
        self.labels = list(exported.classes)

    def describe(self) -> dict:
        metadata = self.exported.metadata
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "task": self.task,
            "runtime": self.exported.file_format,
            "input": {
                "kind": "images",
                "shape": metadata["input"]["shape"],
                "channels": self.channels,
                "pixels": "[0, 1]; JSON arrays (H, W) for one channel or (C, H, W)",
                "uploads": ["image/png", "image/jpeg"],
                "resize": "uploads are resized to the input size"
                if self.kind == "image_classifier"
                else "none: any size within the axis limits",
            },
            "labels": self.labels,
            "metrics": _test_metrics(metadata.get("metrics")),
            **self._registered(),
        }

    # ---- inputs ---------------------------------------------------------------------

    def _expected(self) -> str:
        sizes = zip(self.fixed, "HW", strict=True)
        size = ", ".join(name if s is None else str(s) for s, name in sizes)
        return f"({size})" if self.channels == 1 else f"({self.channels}, {size})"

    def from_json(self, payload: dict):
        if "input" not in payload:
            raise InputError(
                422, "invalid_input",
                f"the JSON body needs the key 'input': pixels in [0, 1] shaped {self._expected()}",
            )  # fmt: skip
        array = numeric_array(payload["input"], "'input'", self._expected())
        if array.ndim == 2 and self.channels == 1:
            array = array[None]
        if array.ndim != 3 or array.shape[0] != self.channels:
            raise InputError(
                422, "bad_shape",
                f"'input' must be shaped {self._expected()}; received {array.shape}",
            )  # fmt: skip
        self._check_size(array.shape[1:], f"'input' shaped {array.shape}")
        if array.min() < 0.0 or array.max() > 1.0:
            raise InputError(
                422, "out_of_range",
                f"pixels must lie in [0, 1]; received {array.min():g}..{array.max():g} (divide "
                "8-bit values by 255)",
            )  # fmt: skip
        return self._prepare(array), _top_k(payload.get("top_k"), len(self.labels))

    def from_upload(self, files, fields: dict, max_side: int):
        if len(files) != 1:
            raise InputError(422, "invalid_input", "upload exactly one image in the field 'file'")
        pixels = decode_image(files[0][1], channels=self.channels, max_side=max_side)
        array = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
        if self.kind == "image_classifier":
            height, width = self.fixed
            if array.shape[1:] != (height, width):
                array = resize(pixels, height, width)
                array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
            if self.channels == 1 and array.mean() > 0.5:
                array = 1.0 - array  # dark strokes on light paper -> as trained
        else:
            self._check_size(array.shape[1:], f"the image ({array.shape[2]}x{array.shape[1]})")
        return self._prepare(array), _top_k(fields.get("top_k"), len(self.labels))

    def _check_size(self, size: tuple, what: str) -> None:
        for offset, (got, want) in enumerate(zip(size, self.fixed, strict=True)):
            axis = self.dynamic.get(offset + 2)
            if want is not None and got != want:
                raise InputError(
                    422, "bad_shape",
                    f"{what}: the model takes {self._expected()}; resize the image to "
                    f"{self.fixed[1]}x{self.fixed[0]} or upload it as a file (uploads are resized)",
                )  # fmt: skip
            if axis is not None and (
                got < axis["min"] or (axis["max"] is not None and got > axis["max"])
            ):
                raise InputError(
                    422, "bad_shape",
                    f"{what}: its {axis['name']} must lie in {axis['min']}..{axis['max'] or ''}",
                )  # fmt: skip

    def _prepare(self, array: np.ndarray) -> np.ndarray:
        return ((array.astype(np.float32) - self.mean) / self.std).astype(np.float32)

    # ---- running and answering ----------------------------------------------------------

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.exported.run(batch)

    def warm_up(self) -> None:
        size = [s if s is not None else max(32, self.dynamic[i + 2]["min"]) for i, s in
                enumerate(self.fixed)]  # fmt: skip
        self.run_batch(np.zeros((1, self.channels, *size), dtype=np.float32))

    def answer(self, output: np.ndarray, top_k: int) -> dict:
        output = np.asarray(output, dtype=np.float64)
        if self.kind == "image_classifier":
            ranked = ranked_classes(activate(output, self.activation), self.labels, top_k)
            return {
                "model": self.name,
                "version": self.version,
                "label": ranked[0]["label"],
                "index": ranked[0]["index"],
                "probabilities": [
                    {"label": row["label"], "probability": row["probability"]} for row in ranked
                ],
            }
        return self._mask_answer(output)

    def _mask_answer(self, output: np.ndarray) -> dict:
        from PIL import Image

        if output.shape[0] == 1:
            mask = (output[0] > 0).astype(np.uint8)  # sigmoid(x) > 0.5
            labels = ["background", self.labels[-1] if self.labels else "foreground"]
        else:
            mask = output.argmax(axis=0).astype(np.uint8)
            labels = self.labels
        buffer = io.BytesIO()
        Image.fromarray(mask).save(buffer, format="PNG")
        counts = np.bincount(mask.ravel(), minlength=len(labels))
        return {
            "model": self.name,
            "version": self.version,
            "mask_png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "mask_encoding": "PNG, base64; pixel value = class index",
            "labels": labels,
            "shape": list(mask.shape),
            "pixel_counts": {label: int(c) for label, c in zip(labels, counts, strict=False)},
        }


class EcgModel(ServedModel):
    """The ECG R-peak detector (`dlcc.ecg`): a record of any length in, beats out."""

    kind = "ecg_beats"

    def __init__(self, name: str, detector, source: str):
        self.name = name
        self.detector = detector
        self.source = source
        path = Path(source)
        self.version = file_version(path) if path.is_file() else "run:" + path.name
        self.labels = ["beat"]

    def describe(self) -> dict:
        card = self.detector.card or {}
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "task": "beats",
            "runtime": "torch",
            "input": {
                "kind": "signal",
                "shape": ["samples"],
                "min_seconds": self.detector.window / 250.0,
                "json": "{'signal': [mV, ...], 'fs': Hz}",
                "uploads": [
                    "text/csv (time_s,signal or signal with the form field fs)",
                    "WFDB: the .hea and its .dat files, each in a field 'file'",
                ],
            },
            "labels": self.labels,
            "metrics": _test_metrics(card.get("metrics")),
            **self._registered(),
        }

    def from_json(self, payload: dict):
        if "signal" not in payload or "fs" not in payload:
            raise InputError(
                422, "invalid_input",
                "the JSON body needs 'signal' (one lead, a list of numbers) and 'fs' (Hz)",
            )  # fmt: skip
        signal = numeric_array(payload["signal"], "'signal'", "(N,)")
        if signal.ndim != 1:
            raise InputError(
                422, "bad_shape", f"'signal' must be one lead, shaped (N,); received {signal.shape}"
            )
        if len(signal) > MAX_ECG_SAMPLES:
            raise InputError(413, "too_large", f"'signal' has over {MAX_ECG_SAMPLES} samples")
        return self._checked(signal, check_fs(payload["fs"])), None

    def from_upload(self, files, fields: dict, max_side: int):
        names = [name for name, _ in files]
        if len(files) == 1 and not names[0].endswith(".hea"):
            fs = fields.get("fs")
            if fs is not None:
                try:
                    fs = float(fs)
                except ValueError:
                    raise InputError(
                        422, "invalid_input", f"fs must be a number of Hz; received {fs!r}"
                    ) from None
            signal, fs = read_ecg_csv(files[0][1], fs)
        else:
            signal, fs = read_wfdb_upload(dict(files))
        return self._checked(signal, fs), None

    def _checked(self, signal: np.ndarray, fs: float):
        from dlcc.ecg.detector import check_ecg

        try:
            check_ecg(signal, fs, self.detector.window)
        except DlccError as error:
            raise InputError(422, "bad_record", str(error)) from None
        return signal, fs

    def run_one(self, record) -> np.ndarray:
        signal, fs = record
        return self.detector.detect(signal, fs)

    def warm_up(self) -> None:
        from dlcc.ecg.synth import synthesize

        record = synthesize(10.0, 250.0, np.random.default_rng(0))
        self.detector.detect(record.signal, 250.0)

    def answer(self, output: np.ndarray, record) -> dict:
        signal, fs = record
        beats = np.asarray(output, dtype=np.int64)
        step = max(1, int(np.ceil(len(signal) / MAX_DISPLAY_POINTS)))
        rr = np.diff(beats) / fs
        return {
            "model": self.name,
            "version": self.version,
            "fs": fs,
            "samples": len(signal),
            "beats": beats.tolist(),
            "beat_times_s": [round(float(b) / fs, 4) for b in beats],
            "heart_rate_bpm": round(60.0 / float(np.median(rr)), 1) if len(rr) else None,
            "display": {"step": step, "signal": [round(float(v), 4) for v in signal[::step]]},
        }


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """A classifier's logits (K,) -> its probabilities (K,), float64.

    "softmax" (one label per image): exp(z_k) / sum_j exp(z_j), computed without overflow
    for any finite logits (z = 1000 is a logit a model can emit). "sigmoid" (independent
    labels): 1 / (1 + exp(-z_k)) for each class.
    """
    logits = np.asarray(logits, dtype=np.float64)
    # BEGIN SOLUTION activate: softmax (stable) or sigmoid of a classifier's logits
    if activation == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * logits))  # = 1 / (1 + exp(-z)), no overflow
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()
    # END SOLUTION
    # BEGIN PROMPT
    # np.exp(1000.0) is inf, and inf / inf is NaN. Softmax does not change when the same
    # number is subtracted from every logit: subtract the largest first. For the sigmoid,
    # 1 / (1 + np.exp(-z)) warns of overflow for z = -1000; 0.5 * (1 + tanh(z / 2)) is the
    # same function and never overflows.
    # END PROMPT


def ranked_classes(probabilities: np.ndarray, labels: list[str], k: int) -> list[dict]:
    """The `k` most probable classes, most probable first: [{"index", "label", "probability"}].

    `probabilities` (K,) as from `activate`; `labels` the K class names. Ties keep the
    class order (the lower index first), so that an answer never depends on the sort's
    whims. `index` is an int and `probability` a float (JSON, not NumPy, types).
    """
    # BEGIN SOLUTION ranked_classes: the k most probable classes, ties by class index
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
    return [
        {"index": int(i), "label": labels[int(i)], "probability": float(probabilities[i])}
        for i in order
    ]
    # END SOLUTION
    # BEGIN PROMPT
    # np.argsort sorts ascending: sort -probabilities. Only kind="stable" keeps equal values
    # in their original order. Convert NumPy scalars with int() and float().
    # END PROMPT


def _top_k(value, classes: int) -> int | None:
    if value is None or classes == 0:
        return None
    try:
        k = int(value)
    except (TypeError, ValueError):
        k = None
    if k is None or isinstance(value, bool) or isinstance(value, float) or not 1 <= k <= classes:
        raise InputError(
            422, "out_of_range", f"top_k must be an integer in 1..{classes}; received {value!r}"
        )
    return k


def _test_metrics(metrics) -> dict:
    """The figures a client cares about: test_* (and the epoch count) from metrics.json."""
    if not isinstance(metrics, dict):
        return {}
    keep = {k: v for k, v in metrics.items() if k.startswith("test_") or k in ("epochs",)}
    return {k: v for k, v in keep.items() if isinstance(v, int | float | str) or v is None}


def predict_one(model: ServedModel, sample, option, top_k: int) -> dict:
    """The answer for one checked sample (`from_json`/`from_upload`'s result), unbatched:
    what the server answers, for callers without its batcher (the Streamlit app)."""
    if model.kind == "ecg_beats":
        return model.answer(model.run_one(sample), sample)
    return model.answer(model.run_batch(sample[None])[0], option or top_k)


# ---- loading ----------------------------------------------------------------------------


def default_model_sources() -> dict[str, str]:
    """{name: source} of `dlcc serve` without --model: the digits, and the ECG detector."""
    from dlcc.ecg.detector import DEFAULT_MODEL

    sources = {}
    if DIGITS_MODEL.is_file():
        sources["digits"] = str(DIGITS_MODEL)
    if DEFAULT_MODEL.is_file():
        sources["ecg"] = "ecg"
    if not sources:
        raise ServeError(
            f"no default model is installed ({DIGITS_MODEL} is missing); reinstall dlcc or "
            "pass --model NAME=FILE"
        )
    return sources


def parse_model_option(text: str) -> tuple[str, str]:
    """'NAME=SOURCE' -> (NAME, SOURCE); a bare SOURCE is named after its file stem (a bare
    models:/NAME/VERSION after the registered NAME)."""
    name, sep, source = text.partition("=")
    if not sep:
        source, name = text, Path(text.rstrip("/")).stem
        if text.startswith("models:/"):
            name = text[len("models:/") :].split("/")[0]
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ServeError(
            f"--model {text!r}: the name must be letters, digits, _ or - (NAME=FILE_OR_RUN_DIR)"
        )
    if not source:
        raise ServeError(f"--model {text!r}: give a file or run directory after '='")
    return name, source


def load_models(
    sources: dict[str, str], *, registry_uri: str | None = None, skip_unwritten: bool = False
) -> dict[str, ServedModel]:
    """{name: source} -> {name: ServedModel}, each loaded and run once (warm).

    `registry_uri`: the MLflow store of ``models:/`` sources (default: $MLFLOW_TRACKING_URI,
    else sqlite:///runs/mlflow.db, the store of `dlcc train --out runs/...`).
    `skip_unwritten` (the default models, in a course starter): a model whose code is an
    assignment's stub still (NotImplementedError on its warm-up run) is left out with a
    warning on stderr, so that the others are served; a model asked for by name is not."""
    import sys

    models = {}
    for name, source in sources.items():
        model = load_model(name, source, registry_uri=registry_uri)
        try:
            model.warm_up()
        except NotImplementedError as error:
            if not skip_unwritten:
                raise
            print(
                f"warning: not serving {name}: its code is not written yet ({error})",
                file=sys.stderr, flush=True,
            )  # fmt: skip
            continue
        models[name] = model
    if sources and not models:
        raise ServeError(
            f"none of the models {sorted(sources)} could be served: their code is not "
            "written yet (a course starter); finish the assignment, or pass --model"
        )
    return models


def registry_store(runs: str | Path = "runs") -> str:
    """The store ``models:/`` sources are read from: $MLFLOW_TRACKING_URI, else the
    default store of run directories under `runs` (as `dlcc track ui --runs`)."""
    from dlcc.tracking import store

    return store.resolve_uri(Path(runs) / "x")


def load_model(name: str, source: str, *, registry_uri: str | None = None) -> ServedModel:
    from dlcc.export import load_exported

    if source.startswith("models:/"):
        return _load_registered(name, source, registry_uri or registry_store())
    if source == "ecg":
        from dlcc.ecg.detector import DEFAULT_MODEL, load_detector

        return EcgModel(name, load_detector(None), str(DEFAULT_MODEL))
    path = Path(source)
    if path.is_dir():
        from dlcc.runs import read_run

        if read_run(path).task == "beats":
            from dlcc.ecg.detector import load_detector

            return EcgModel(name, load_detector(path), str(path))
        return ImageModel(name, load_exported(_export_run(path)), str(path))
    if not path.is_file():
        raise ServeError(
            f"{path} does not exist: --model takes an ONNX/TorchScript file of `dlcc export`, "
            "a run directory of `dlcc train`, models:/NAME/VERSION (registered), or 'ecg'"
        )
    if _is_detector_file(path):
        from dlcc.ecg.detector import load_detector

        return EcgModel(name, load_detector(path), str(path))
    return ImageModel(name, load_exported(path), str(path))


def _load_registered(name: str, source: str, uri: str) -> ServedModel:
    """A ``models:/NAME/VERSION`` source: its weights-only run files, served like a run
    directory (exported to ONNX at startup; a beats run becomes the ECG detector)."""
    from dlcc.tracking.registry import parse_model_uri, registered_run

    registered, version = parse_model_uri(source)
    run_dir, facts = registered_run(registered, version, uri=uri)
    model = load_model(name, str(run_dir))
    model.source = source
    model.version = f"models:/{facts['name']}/{facts['version']}"
    model.registered = {k: facts[k] for k in ("name", "version", "run_id")}
    return model


def _is_detector_file(path: Path) -> bool:
    """A torch.save zip without TorchScript's code: a dlcc.ecg detector file (weights only)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return not any("/code/" in n or n.endswith("/extra/dlcc.json") for n in names)


def _export_run(run_dir: Path) -> Path:
    """Export a run directory at startup (ONNX, else TorchScript) into a temporary folder."""
    from dlcc.export import ExportError, export_run

    folder = Path(tempfile.mkdtemp(prefix="dlcc-serve-export-"))
    try:
        out = folder / "model.onnx"
        export_run(run_dir, "onnx", out)
    except ExportError as error:
        out = folder / "model.ts"
        try:
            export_run(run_dir, "torchscript", out)
        except ExportError:
            raise ServeError(f"{run_dir} cannot be served: {error}") from None
    return out
