"""`dlcc export` on run directories that the smoke recipes train (one epoch each)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlcc.cli import main
from dlcc.export import load_exported
from dlcc.segmentation.predictor import load_predictor
from dlcc.training.checkpoint import load_checkpoint


def _train(tmp_path_factory, recipe: str):
    run = tmp_path_factory.mktemp(recipe) / "run"
    status = main(["train", recipe, "--set", "train.epochs=1", "--out", str(run), "--no-progress"])
    assert status == 0
    return run


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    return _train(tmp_path_factory, "mnist_cnn_smoke")


@pytest.mark.parametrize(("file_format", "checkpoint"), [("onnx", "best"), ("torchscript", "last")])
def test_export_writes_a_checked_file_that_runs_like_the_run(
    mnist_run, tmp_path, capsys, file_format, checkpoint
):
    out = tmp_path / "digits.model"
    argv = ["export", str(mnist_run), "--format", file_format, "--out", str(out)]
    assert main([*argv, "--checkpoint", checkpoint]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} ({file_format}; input (batch, 1, 8, 8), dynamic: batch)" in printed

    sidecar = json.loads(out.with_name("digits.model.json").read_text())
    assert sidecar["verification"]["max_abs_diff"] <= 1e-4
    assert sidecar["source"]["checkpoint"] == checkpoint
    assert sidecar["metrics"] == json.loads((mnist_run / "metrics.json").read_text())
    summary = load_checkpoint(mnist_run / "checkpoints" / f"{checkpoint}.pt")["data"]
    assert sidecar["normalisation"] == {"mean": summary["mean"], "std": summary["std"]}
    assert sidecar["classes"] == summary["classes"] == [str(digit) for digit in range(10)]
    assert sidecar["task"] == "classification"
    assert sidecar["model"] == {
        "name": "small_cnn",
        "options": {"widths": [16, 32], "dropout": 0.1},
    }

    loaded = load_exported(out)
    model = load_predictor(mnist_run, checkpoint, device="cpu").model
    images = np.random.default_rng(0).standard_normal((7, 1, 8, 8)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(loaded(images), expected, rtol=0, atol=1e-4)


def test_the_command_refuses_an_unknown_format_in_one_line(mnist_run, tmp_path, capsys):
    out = tmp_path / "x.onnx"
    assert main(["export", str(mnist_run), "--format", "tflite", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("dlcc: error: unknown export format 'tflite'")
    assert len(error.strip().splitlines()) == 1 and not out.exists()


def test_a_recurrent_language_model_run_exports_its_logits(tmp_path_factory, tmp_path):
    run = _train(tmp_path_factory, "shakespeare_gru_smoke")
    out = tmp_path / "gru.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    loaded = load_exported(out)
    vocabulary = json.loads((run / "vocab.json").read_text())["vocab"]
    assert loaded.task == "language_model"
    assert len(loaded.classes) == loaded.metadata["input"]["vocab_size"] > 1
    assert loaded.classes == vocabulary
    tokens = np.random.default_rng(0).integers(0, len(loaded.classes), (3, 50))
    net = load_predictor(run, device="cpu").model.net
    with torch.inference_mode():
        expected = net(torch.from_numpy(tokens))[0].numpy()
    np.testing.assert_allclose(loaded(tokens), expected, rtol=0, atol=1e-4)
