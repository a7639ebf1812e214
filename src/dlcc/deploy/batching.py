"""Micro-batching: concurrent requests to one model share one inference call.

    batcher = MicroBatcher(run_batch, max_batch=64, max_wait_ms=2.0, executor=pool)
    output = await batcher.submit(sample)      # sample (C, H, W) -> its row of the output

One worker task per model takes the first waiting sample, then gathers more until it has
`max_batch` or `max_wait_ms` has passed since that first one; samples already queued are
taken without waiting. Samples of different shapes (a fully convolutional model) are run
in one call per shape. The stacked batch runs in a worker thread (`executor`), so the event
loop keeps accepting requests meanwhile, and those become the next batch. Each caller gets
its own row, or the exception the call raised. `batches` and `samples` count what was run.
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
        queue = self._queue
        while True:
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
            items = [(sample, future) for sample, future in items if not future.cancelled()]
            groups: dict[tuple, list] = {}
            for sample, future in items:
                groups.setdefault(sample.shape, []).append((sample, future))
            for group in groups.values():
                await self._run(loop, group)

    async def _run(self, loop, group: list) -> None:
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
