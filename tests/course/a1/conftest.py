"""Assignment 1 tests: PyTorch, the oracle, runs on one thread.

Its tensors here are tiny, and a gradient check calls it hundreds of times: with several
threads on a busy machine each call pays for thread hand-offs (about 100x slower
measured on 2 shared cores). NumPy's own threads are left alone.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
