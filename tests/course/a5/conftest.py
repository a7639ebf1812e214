"""Assignment 5's graded tests run PyTorch on one CPU thread.

Their tensors are tiny: a second thread costs more in start-up than it gives, and on a shared
or busy machine it can make a test many times slower. The previous setting is restored after
each test. When graded, the learner's process (a process of its own, with its own setting) is
set to one thread too, before each test.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Imported here, not above: pytest imports this conftest before the grader puts the
    # learner's modules' stand-ins (and its dlcc.course.remote) in place.
    from a5_helpers import on_one_thread_there

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    on_one_thread_there()
    yield
    torch.set_num_threads(previous)
