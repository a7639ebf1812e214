"""`dlcc serve --model NAME=models:/REGISTERED/VERSION`: a trained, tracked, registered run.

One smoke classifier is trained with tracking on into a real SQLite store in tmp_path,
registered twice (versions 1 and 2), and served through FastAPI's TestClient. The oracle
for a prediction is the run directory's own eager PyTorch model (`load_predictor`), not the
server: the registry, the weights-only copy and the ONNX export must not change it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlcc.cli import main

pytest.importorskip("mlflow")

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """(run dir, store URI): mnist_cnn_smoke trained (tracked) and registered twice."""
    root = tmp_path_factory.mktemp("registered")
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("DLCC_TRACK", "1")
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    try:
        recipe = yaml.safe_load((RECIPES / "mnist_cnn_smoke.yaml").read_text())
        recipe["model"]["options"]["widths"] = [8, 16]  # smaller and faster; same code path
        recipe["train"].update(epochs=1, progress=False)
        (root / "digits.yaml").write_text(yaml.safe_dump(recipe))
        run = root / "runs" / "digits"
        assert main(["train", str(root / "digits.yaml"), "--out", str(run)]) == 0
        assert main(["track", "register", str(run), "--name", "digits-cnn"]) == 0
        assert main(["track", "register", str(run), "--name", "digits-cnn"]) == 0
        yield run, uri
    finally:
        patch.undo()


def _serve_args(*models: str, runs: str = "runs") -> argparse.Namespace:
    from dlcc.cli import build_parser

    argv = ["serve", "--runs", runs]
    for model in models:
        argv += ["--model", model]
    return build_parser().parse_args(argv)


def test_a_registered_model_is_served_by_name_and_version(registered, monkeypatch):
    from fastapi.testclient import TestClient

    from dlcc.deploy.commands import build_app
    from dlcc.segmentation.predictor import load_predictor

    run, uri = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    rng = np.random.default_rng(0)
    pixels = rng.random((8, 8))

    import torch

    predictor = load_predictor(run, device="cpu")
    mean, std = np.asarray(predictor.mean), np.asarray(predictor.std)
    standard = ((pixels - mean[0]) / std[0]).astype(np.float32)[None, None]
    with torch.no_grad():
        expected = torch.softmax(predictor.model(torch.from_numpy(standard)), 1)[0].numpy()
    # The run directory is moved away: the registry alone must hold what is served.
    moved = run.rename(run.with_name("moved"))
    try:
        app, _ = build_app(_serve_args("v1=models:/digits-cnn/1", "models:/digits-cnn/latest"))
    finally:
        moved.rename(run)

    with TestClient(app) as client:
        described = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert set(described) == {"v1", "digits-cnn"}
        assert described["v1"]["registered"]["name"] == "digits-cnn"
        assert described["v1"]["registered"]["version"] == 1
        assert described["v1"]["version"] == "models:/digits-cnn/1"
        assert described["digits-cnn"]["registered"]["version"] == 2  # latest
        assert described["digits-cnn"]["version"] == "models:/digits-cnn/2"
        assert described["v1"]["kind"] == "image_classifier"
        assert described["v1"]["input"]["shape"] == ["batch", 1, 8, 8]

        answer = client.post(
            "/models/v1/predict", json={"input": pixels.tolist(), "top_k": 10}
        ).json()
        assert answer["version"] == "models:/digits-cnn/1"
        served = {p["label"]: p["probability"] for p in answer["probabilities"]}
        labels = predictor.classes
        assert answer["label"] == labels[int(expected.argmax())]
        assert max(abs(served[label] - float(expected[i])) for i, label in
                   enumerate(labels)) < 1e-4  # fmt: skip


def test_an_unknown_registered_name_or_version_is_one_clear_line(registered, capsys, monkeypatch):
    _, uri = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["serve", "--model", "m=models:/nope/1"]) == 2
    error = capsys.readouterr().err
    assert "no registered model named 'nope'" in error
    assert "registered models: digits-cnn" in error

    assert main(["serve", "--model", "m=models:/digits-cnn/7"]) == 2
    error = capsys.readouterr().err
    assert "has no version 7" in error and "versions: 1, 2" in error

    assert main(["serve", "--model", "m=models:/digits-cnn"]) == 2
    assert "expected models:/NAME/VERSION" in capsys.readouterr().err


def test_without_the_variable_the_store_is_that_of_runs(registered, tmp_path, monkeypatch):
    """--runs DIR reads DIR/mlflow.db, as `dlcc track ui --runs` does."""
    from dlcc.deploy.models import registry_store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert registry_store(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    _, uri = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert registry_store(tmp_path) == uri
