"""Small exported models for the server tests: built and exported once per session."""

from __future__ import annotations

import pytest

from dlcc.deploy import ServeSettings, create_app
from dlcc.deploy.models import ImageModel, load_models

MNIST_MEAN, MNIST_STD = [0.1307], [0.3081]


def _export(tmp_path_factory, name, in_shape, classes, options, task):
    import torch

    from dlcc.export import load_exported
    from dlcc.export.exporter import export_model
    from dlcc.models import build_model

    torch.manual_seed(0)
    model = build_model(name, in_shape, len(classes), **options).eval()
    out = tmp_path_factory.mktemp(name) / f"{name}.onnx"
    export_model(
        model, name, in_shape, "onnx", out, classes=classes, task=task,
        mean=MNIST_MEAN * in_shape[0], std=MNIST_STD * in_shape[0],
        activation="softmax", metrics={"test_accuracy": 0.5, "epochs": 1},
    )  # fmt: skip
    return load_exported(out)


@pytest.fixture(scope="session")
def digits_export(tmp_path_factory):
    """A random-weight SmallCNN on (1, 28, 28) with classes 0..9: fast, not accurate."""
    classes = [str(i) for i in range(10)]
    return _export(
        tmp_path_factory, "small_cnn", (1, 28, 28), classes, {"widths": [8, 16]},
        "classification",
    )  # fmt: skip


@pytest.fixture(scope="session")
def unet_export(tmp_path_factory):
    return _export(
        tmp_path_factory, "unet", (1, 32, 32), ["background", "cell"],
        {"depth": 2, "width": 4}, "segmentation",
    )  # fmt: skip


@pytest.fixture(scope="session")
def digits_model(digits_export):
    model = ImageModel("digits", digits_export, str(digits_export.path))
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def ecg_model():
    return load_models({"ecg": "ecg"})["ecg"]


@pytest.fixture
def make_client():
    """make_client(models, **settings) -> a TestClient (lifespan run), closed afterwards."""
    from fastapi.testclient import TestClient

    clients = []

    def make(models, **settings):
        client = TestClient(create_app(models, ServeSettings(**settings)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
