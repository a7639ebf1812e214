"""Assignment 2's graded tests run PyTorch on one CPU thread.

Their tensors are small: a second thread costs more in start-up than it gives, and on a
shared or busy machine it can make a test many times slower. The previous setting is
restored after each test.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
