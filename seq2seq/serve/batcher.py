"""Cross-request batching: the sentences of concurrent requests are decoded together.

A model decodes a batch of 32 sentences in little more time than one (the matrix products just get
wider), so a server that decodes each request alone wastes most of the CPU under load. Every request
puts its sentences in one queue and awaits them. A single background task takes the oldest sentence, waits
up to ``max_wait_ms`` for more sentences with the same decoding settings (model, beam, n-best), up to
``max_batch`` of them, and decodes them in one model call on a worker thread, so the event loop never
blocks on the model and keeps accepting requests meanwhile. Results go back to each caller in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from seq2seq.translator import Translation

log = logging.getLogger(__name__)

class DecodeKey(NamedTuple):
    """Sentences decode together only when all of these agree."""

    model: str
    beam: int
    n_best: int


# decode(key, texts) -> the n-best translations of each text; runs on the worker thread.
Decode = Callable[[DecodeKey, list[str]], list[list[Translation]]]


@dataclass
class _Job:
    key: DecodeKey
    text: str
    future: asyncio.Future
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    batches: int = 0  # model calls
    sentences: int = 0  # sentences decoded in them
    largest: int = 0  # the largest batch so far


class Batcher:
    """Queue sentences from any number of requests; decode them in batches on one worker thread."""

    def __init__(self, decode: Decode, *, max_batch: int = 32, max_wait_ms: float = 10.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be ≥ 1 and max_wait_ms ≥ 0, got {max_batch} and {max_wait_ms}")
        self.decode = decode
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.stats = BatchStats()
        self._pending: deque[_Job] = deque()
        self._arrived = asyncio.Event()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seq2seq-decode")
        self._task: asyncio.Task | None = None
        self._last_done = 0.0  # when the last model call ended (time.monotonic)

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def alive(self) -> bool:
        """False once the batching task has ended (stopped, or failed: the log says why)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="seq2seq-batcher")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        """If the batching task died, fail the waiting requests instead of leaving them to hang."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("the batcher stopped: %r; waiting requests fail", error, exc_info=error)
            for job in self._pending:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(f"the batcher stopped: {error!r}"))
            self._pending.clear()

    async def stop(self) -> None:
        """Stop taking batches (the server has finished its requests) and release the worker thread."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._worker.shutdown(wait=True)

    async def translate(self, key: DecodeKey, texts: list[str]) -> list[list[Translation]]:
        """The n-best translations of each text, in order, decoded together with other requests' texts."""
        loop = asyncio.get_running_loop()
        jobs = [_Job(key, text, loop.create_future()) for text in texts]
        self._pending.extend(jobs)
        self._arrived.set()
        try:
            return list(await asyncio.gather(*(job.future for job in jobs)))
        except BaseException:  # a batch of ours failed, or the request was cancelled: decode no more of it
            for job in jobs:
                job.future.cancel()
            raise

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:  # every waiting sentence was cancelled meanwhile
                continue
            try:
                await self._decode(loop, batch)
            except Exception as error:  # noqa: BLE001 - handed to the callers, whose requests fail with it
                if len(batch) == 1:
                    _fail(batch[0], error)
                    continue
                for job in batch:  # decode each sentence alone, so that only the culprit's request fails
                    try:
                        await self._decode(loop, [job])
                    except Exception as alone:  # noqa: BLE001
                        _fail(job, alone)

    async def _decode(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        """One model call on the worker thread; each job's future gets its result."""
        try:
            results = await loop.run_in_executor(self._worker, self.decode, batch[0].key, [job.text for job in batch])
        finally:
            self._last_done = time.monotonic()
        if len(results) != len(batch):
            raise RuntimeError(f"decode returned {len(results)} results for {len(batch)} sentences")
        self.stats.batches += 1
        self.stats.sentences += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        for job, result in zip(batch, results):
            if not job.future.done():
                job.future.set_result(result)

    async def _next_batch(self) -> list[_Job]:
        """Wait for a sentence, then up to max_wait for more with its key; take ≤ max_batch.

        The wait counts from when the sentence was queued or, if it came in while the model was busy, from
        when the model became free: the clients whose answers just went out need a moment to send their next
        sentences, and without it the batches of 32 clients settle into two alternating halves of 16.
        """
        while True:
            self._drop_cancelled()
            if self._pending:
                break
            self._arrived.clear()
            await self._arrived.wait()
        first = self._pending[0]
        deadline = max(first.queued_at, self._last_done) + self.max_wait
        while self._count(first.key) < self.max_batch and (remaining := deadline - time.monotonic()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=remaining)
            except TimeoutError:
                break
        return self._take(first.key)

    def _count(self, key: DecodeKey) -> int:
        return sum(1 for job in self._pending if job.key == key and not job.future.done())

    def _take(self, key: DecodeKey) -> list[_Job]:
        """Remove and return the oldest ≤ max_batch live jobs with ``key``; the others keep their places."""
        taken, kept = [], deque()
        for job in self._pending:
            if job.future.done():
                continue
            if job.key == key and len(taken) < self.max_batch:
                taken.append(job)
            else:
                kept.append(job)
        self._pending = kept
        return taken

    def _drop_cancelled(self) -> None:
        if any(job.future.done() for job in self._pending):
            self._pending = deque(job for job in self._pending if not job.future.done())


def _fail(job: _Job, error: Exception) -> None:
    if not job.future.done():
        job.future.set_exception(error)
