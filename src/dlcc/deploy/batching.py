"""Micro-batching: concurrent requests to one model share one inference call.

    batcher = MicroBatcher(run_batch, max_batch=64, max_wait_ms=2.0, executor=pool)
    output = await batcher.submit(sample)      # sample (C, H, W) -> its row of the output

One worker task per model takes the first waiting sample, then gathers more until it has
`max_batch` or `max_wait_ms` has passed since that first one; samples already queued are
taken without waiting. Samples of different shapes (a fully convolutional model) are run
in one call per shape. The stacked batch runs in a worker thread (`executor`), so the event
loop keeps accepting requests meanwhile, and those become the next batch. Each caller gets
its own row, or the exception the call raised. `batches` and `samples` count what was run.
If the worker itself fails, every waiting caller gets its exception (none is left hanging),
and the next `submit` starts a new worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np


class MicroBatcher:
    def __init__(
        self,
        run_batch: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int,
        max_wait_ms: float,
        executor: Executor,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.executor = executor
        self.on_batch = on_batch  # (batch size, seconds) after each call
        self.batches = 0
        self.samples = 0
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_hand: list = []  # the batch being run: failed with the worker, if it dies

    async def submit(self, sample: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            # First use, or a new event loop (a test client's): start a worker on this one.
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._work())
        future = loop.create_future()
        self._queue.put_nowait((sample, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._worker = None

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._in_hand = await self._collect(loop)
                live = [
                    (sample, future) for sample, future in self._in_hand if not future.cancelled()
                ]
                for group in group_by_shape(live):
                    await self._run(loop, group)
                self._in_hand = []
        except Exception as error:
            # A fault in the batcher itself (not in the model: `_run` hands those to its
            # callers): fail every caller waiting on it, rather than leave them hanging. The
            # next `submit` starts a new worker.
            self._fail_waiting(error)

    def _fail_waiting(self, error: Exception) -> None:
        waiting = list(self._in_hand)
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        self._in_hand = []
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list:
        """The next batch: [(sample, future), ...], 1 to `max_batch` of them, in arrival order.

        Waits (without a deadline) for the first sample; then takes what is already queued
        without waiting, and waits for more only until `max_wait` seconds after the first
        one arrived, or until it has `max_batch`.
        """
        queue = self._queue
        # BEGIN SOLUTION MicroBatcher._collect: gather up to max_batch, until max_wait
        items = [await queue.get()]
        deadline = loop.time() + self.max_wait
        while len(items) < self.max_batch:
            if not queue.empty():
                items.append(queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                items.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return items
        # END SOLUTION
        # BEGIN PROMPT
        # `queue` is an asyncio.Queue of (sample, future) pairs; `loop.time()` is the loop's
        # clock in seconds, and self.max_wait is in seconds too. In order:
        # 1. wait for the first item: `await queue.get()` (no deadline: the server is idle);
        # 2. the deadline is max_wait after that moment;
        # 3. while you hold fewer than self.max_batch items: take a queued item at once if
        #    there is one (queue.empty(), queue.get_nowait()), else wait for the next one
        #    for the time left before the deadline (asyncio.wait_for(queue.get(), seconds)
        #    raises TimeoutError when it runs out); stop at the deadline.
        # Return the items in the order they arrived.
        # END PROMPT

    async def _run(self, loop: asyncio.AbstractEventLoop, group: list) -> None:
        """Run one group (samples of one shape) as one batch; each caller gets its own row.

        The batch runs in `self.executor` (a thread), so the event loop goes on accepting
        requests. If the call raises, every caller of the group gets that exception.
        """
        # BEGIN SOLUTION MicroBatcher._run: run the group as one batch, a row to each caller
        batch = np.stack([sample for sample, _ in group])
        started = loop.time()
        try:
            outputs = await loop.run_in_executor(self.executor, self.run_batch, batch)
        except Exception as error:  # every caller of the batch gets the error
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
            return
        self.batches += 1
        self.samples += len(group)
        if self.on_batch is not None:
            self.on_batch(len(group), loop.time() - started)
        for row, (_, future) in zip(outputs, group, strict=True):
            if not future.done():
                future.set_result(row)
        # END SOLUTION
        # BEGIN PROMPT
        # group: [(sample, future), ...], samples of one shape (C, H, W).
        # 1. Stack the samples into one batch (N, C, H, W) (np.stack).
        # 2. Run self.run_batch on it in a worker thread, without blocking the event loop:
        #    `await loop.run_in_executor(self.executor, self.run_batch, batch)`. Note the
        #    time before (loop.time()).
        # 3. If that raises an Exception, set it on every caller's future
        #    (future.set_exception) and return: one bad batch must not stop the batcher.
        # 4. Otherwise count the call (self.batches += 1, self.samples += its size), call
        #    self.on_batch(size, seconds) if it is set, and give caller i row i of the
        #    output (future.set_result). A caller may have given up meanwhile: set nothing
        #    on a future that is already done (future.done()).
        # END PROMPT


def group_by_shape(items: list) -> list[list]:
    """[(sample, future), ...] -> groups of the same sample shape, [[(sample, future), ...], ...].

    Groups come in the order their first member arrived; inside a group, arrival order is
    kept. A fully convolutional model takes images of any size, but one batch holds one size.
    """
    # BEGIN SOLUTION group_by_shape: group the pairs by sample shape, in arrival order
    groups: dict[tuple, list] = {}
    for sample, future in items:
        groups.setdefault(sample.shape, []).append((sample, future))
    return list(groups.values())
    # END SOLUTION
    # BEGIN PROMPT
    # A dict keyed by sample.shape keeps its keys in insertion order (first arrival), and
    # each list keeps its members in arrival order. Return a list of lists.
    # END PROMPT
