"""What an exported file says about itself reads back the same from the file, from its
sidecar and through `load_exported`."""

from __future__ import annotations

import json
import zipfile

import onnx
import pytest
from export_cases import build_case

from dlcc.export import load_exported
from dlcc.export.exporter import export_model, sidecar_path
from dlcc.export.metadata import TORCHSCRIPT_EXTRA

RUN_FIGURES = {"task": "classification", "test_accuracy": 0.93, "best_epoch": 4}


def _export(tmp_path, file_format, case="small_cnn"):
    model, name, in_shape, classes = build_case(case)
    out = tmp_path / f"model.{file_format}"
    sidecar = export_model(
        model, name, in_shape, file_format, out, classes=classes,
        model_options={"widths": [8, 16]}, task="classification", activation="softmax",
        mean=[0.1307], std=[0.3081], metrics=RUN_FIGURES,
        source={"run_dir": "runs/x", "checkpoint": "best"},
    )  # fmt: skip
    return out, sidecar


@pytest.mark.parametrize("file_format", ["onnx", "torchscript"])
def test_metadata_round_trips_through_the_file_the_sidecar_and_the_loader(tmp_path, file_format):
    out, sidecar = _export(tmp_path, file_format)
    loaded = load_exported(out)
    embedded = {key: value for key, value in sidecar.items() if key != "verification"}
    assert loaded.metadata == embedded
    assert json.loads(sidecar_path(out).read_text()) == sidecar
    assert loaded.task == "classification"
    assert loaded.classes == [f"c{i}" for i in range(10)]
    assert loaded.mean == [0.1307] and loaded.std == [0.3081]
    assert loaded.input_shape == ["batch", 1, 28, 28]
    assert loaded.metadata["metrics"] == RUN_FIGURES
    assert loaded.metadata["model"] == {"name": "small_cnn", "options": {"widths": [8, 16]}}
    assert loaded.metadata["file_format"] == file_format
    versions = loaded.metadata["versions"]
    assert set(versions) >= {"dlcc", "torch"}
    assert ("onnx_opset" in versions) == (file_format == "onnx")


def test_onnx_metadata_props_are_one_json_string_per_key(tmp_path):
    out, sidecar = _export(tmp_path, "onnx")
    props = {entry.key: entry.value for entry in onnx.load(str(out)).metadata_props}
    assert set(props) == set(sidecar) - {"verification"}
    assert json.loads(props["classes"]) == sidecar["classes"]
    assert json.loads(props["normalisation"]) == {"mean": [0.1307], "std": [0.3081]}


def test_torchscript_carries_dlcc_json_inside_its_archive(tmp_path):
    out, sidecar = _export(tmp_path, "torchscript")
    with zipfile.ZipFile(out) as archive:
        names = [name for name in archive.namelist() if name.endswith(TORCHSCRIPT_EXTRA)]
        assert len(names) == 1
        inside = json.loads(archive.read(names[0]))
    assert inside["input"] == sidecar["input"]


def test_the_token_models_metadata_names_the_vocabulary_and_the_length_limit(tmp_path):
    _, sidecar = _export(tmp_path, "onnx", case="char_gpt")
    assert sidecar["input"]["dtype"] == "int64" and sidecar["input"]["vocab_size"] == 12
    length = sidecar["input"]["dynamic"][1]
    assert length == {"name": "length", "axis": 1, "min": 1, "max": 16}
    assert sidecar["input"]["shape"] == ["batch", "length"]


def test_the_loader_tells_the_formats_apart_by_their_bytes_not_their_names(tmp_path):
    out, _ = _export(tmp_path, "torchscript")
    misnamed = out.rename(tmp_path / "really_torchscript.onnx")
    assert load_exported(misnamed).file_format == "torchscript"
