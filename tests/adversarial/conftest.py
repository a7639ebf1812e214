"""These tests run PyTorch on one CPU thread: their tensors are tiny, and the machine is
shared (see tests/course/a4/conftest.py). The previous setting is restored after each."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
