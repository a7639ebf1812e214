"""Shared fixtures of the GAN tests: one thread, and a small classifier run on digits."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits_classifier(tmp_path_factory):
    """A `dlcc train mnist_cnn_smoke` run on the embedded digits, 2 epochs (seconds)."""
    from dlcc.training import loop
    from dlcc.training.config import load_recipe

    config = load_recipe(
        "mnist_cnn_smoke",
        ["train.epochs=2", "train.threads=1", "train.device=cpu", "train.progress=false"],
    )
    out = tmp_path_factory.mktemp("classifier") / "run"
    loop.train(config, out)
    return out
