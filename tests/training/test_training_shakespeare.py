"""The shipped tinyshakespeare recipes load their data and take one training step (skips
without the shared text). Their 30-minute trainings are not run here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from dlcc.training.config import load_recipe
from dlcc.training.data import make_loader, train_sampler
from dlcc.training.setup import build_network
from dlcc.training.tasks import load_task_data

SHARED = Path(os.environ.get("DLCC_DATA_DIR") or Path(__file__).parents[3] / "shared/datasets")
pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(
        not (SHARED / "tinyshakespeare/input.txt").is_file(),
        reason=f"tinyshakespeare is not in {SHARED} (set DLCC_DATA_DIR)",
    ),
]


@pytest.fixture(autouse=True)
def shared_data_dir(monkeypatch):
    monkeypatch.setenv("DLCC_DATA_DIR", str(SHARED))


@pytest.mark.parametrize("name", ["shakespeare_lstm", "shakespeare_gru", "shakespeare_gpt"])
def test_a_shakespeare_recipe_builds_and_takes_a_step(name):
    config = load_recipe(name)
    task, data = load_task_data(config)
    assert len(data.classes) == 65 and data.in_shape == (config.data.seq_len,)
    val_characters = sum(task.count(data.val[i][1].unsqueeze(0)) for i in range(len(data.val)))
    assert val_characters == 111_539 - 1  # the whole validation text, each character once
    model = build_network(config, data, task)
    sampler = train_sampler(data.train, config.train.seed)
    inputs, targets = next(iter(make_loader(data.train, config.data.batch_size, sampler)))
    assert inputs.shape == (config.data.batch_size, config.data.seq_len)
    loss = task.loss(model(inputs), targets)
    loss.backward()
    assert abs(loss.item() - torch.log(torch.tensor(65.0)).item()) < 0.5  # untrained: ~ln 65
