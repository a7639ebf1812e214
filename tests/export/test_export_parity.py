"""Every registry model exports to both formats, matches eager PyTorch, and takes other
batch sizes (and lengths / image sizes where those axes are dynamic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_cases import CASES, build_case

from dlcc.export import load_exported
from dlcc.export.exporter import export_model
from dlcc.models.registry import MODELS

FORMATS = ("onnx", "torchscript")


def test_every_registry_model_has_an_export_case():
    covered = {name for name, *_ in CASES.values()}
    assert covered == set(MODELS), f"add export cases for {sorted(set(MODELS) - covered)}"


def _eager(model, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out = model(torch.from_numpy(x))
    return (out[0] if isinstance(out, tuple) else out).numpy()


@pytest.mark.parametrize("file_format", FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_export_matches_eager_and_takes_any_batch(case, file_format, tmp_path):
    model, name, in_shape, classes = build_case(case)
    out = tmp_path / f"model.{file_format}"
    sidecar = export_model(model, name, in_shape, file_format, out, classes=classes)
    check = sidecar["verification"]
    assert 0.0 <= check["max_abs_diff"] <= 1e-4
    other = check["checked_shapes"][2]  # the check ran on other sizes of every dynamic axis
    assert other[0] == 5
    for axis in sidecar["input"]["dynamic"][1:]:
        assert other[axis["axis"]] != in_shape[axis["axis"] - 1]

    loaded = load_exported(out)
    assert loaded.file_format == file_format
    generator = np.random.default_rng(7)
    for batch in (1, 5):
        shape = (batch, *in_shape)
        if sidecar["input"]["kind"] == "tokens":
            x = generator.integers(0, len(classes), shape).astype(np.int64)
        else:
            x = generator.standard_normal(shape).astype(np.float32)
        got, want = loaded(x), _eager(model, x)
        assert got.shape == want.shape and got.shape[0] == batch
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    ("case", "sizes"),
    [
        ("unet", (1, 1, 37, 50)),  # not multiples of 2**depth: padded inside the graph
        ("small_fcn", (2, 1, 9, 31)),
        ("beatnet_conv", (2, 1, 161)),  # not a multiple of the front end's stride 4
        ("beatnet_gru", (3, 1, 403)),
        ("beatnet_transformer", (1, 1, 97)),
        ("char_rnn_gru", (2, 40)),
        ("char_gpt", (3, 7)),
    ],
)
def test_dynamic_lengths_and_sizes_match_eager_in_onnx(case, sizes, tmp_path):
    model, name, in_shape, classes = build_case(case)
    out = tmp_path / "model.onnx"
    export_model(model, name, in_shape, "onnx", out, classes=classes)
    if case.startswith("char"):
        x = np.random.default_rng(1).integers(0, len(classes), sizes).astype(np.int64)
    else:
        x = np.random.default_rng(1).standard_normal(sizes).astype(np.float32)
    got, want = load_exported(out)(x), _eager(model, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_classifiers_keep_their_trained_image_size(tmp_path):
    model, name, in_shape, classes = build_case("small_cnn")
    sidecar = export_model(model, name, in_shape, "onnx", tmp_path / "m.onnx", classes=classes)
    assert sidecar["input"]["shape"] == ["batch", 1, 28, 28]
    assert [axis["name"] for axis in sidecar["input"]["dynamic"]] == ["batch"]
