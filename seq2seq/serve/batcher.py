"""Continuous batching across requests: every request's sentences go straight into a running decoding engine.

A model decodes 32 sentences in little more time than one (the matrix products just get wider), so a server
that decodes each request alone wastes most of the CPU under load. One decoding task keeps a
:class:`~seq2seq.decoding.translation_stream.TranslationStream` per model and search settings and steps them in
turn; a request's sentences join their stream at the next step, whatever else is decoding, and each sentence's
translation goes back to its request the step it finishes. There is no batching window to wait for and no batch
that runs until its longest sentence ends.

The task runs on the event loop's own thread and yields to it after every step (a few milliseconds), so
requests are read and answered between steps. A worker thread would let the loop run during a step, but on
CPUs PyTorch runs small operators in a thread that is not the one that loaded it up to twice as slowly (its
OpenMP team), which cost a lone client half its speed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from seq2seq.decoding.constraints import Constraints
from seq2seq.decoding.search_types import SearchOptions, Translation

log = logging.getLogger(__name__)

# Turns of the event loop between two decoding steps. A request takes several turns to travel from its socket
# through the ASGI app into the batcher, and one turn per step (a step takes ~5-15 ms) left a third of the
# clients' sentences outside the batch; an idle turn costs ~20 µs.
LOOP_TURNS_PER_STEP = 16


class DecodeKey(NamedTuple):
    """Sentences decode in one stream only when these agree (constraints, and n-best and the seed where they are not
    part of the policy, travel with each sentence)."""

    model: str
    options: SearchOptions  # the stream's search settings


class Stream(Protocol):
    """What the batcher needs of a :class:`~seq2seq.decoding.translation_stream.TranslationStream`."""

    @property
    def idle(self) -> bool: ...

    def add(self, items: list[tuple[Any, str]], *, n_best: int | None = None,
            constraints: list[Constraints | None] | None = None, seed: int | None = None,
            first_number: int | None = None) -> list[tuple[Any, list[Translation]]]:
        ...

    def step(self) -> list[tuple[Any, list[Translation]]]: ...

    @property
    def decoding(self) -> int: ...

    def discard(self, unwanted: Callable[[Any], bool]) -> list[Any]: ...


OpenStream = Callable[[DecodeKey], Stream]  # a new stream for a model and search settings


@dataclass(eq=False)
class _Job:
    """One sentence of a request."""

    key: DecodeKey
    text: str
    n_best: int
    future: asyncio.Future
    constraints: Constraints | None = None
    seed: int | None = None  # the request's seed, for a policy that draws (None: the stream's own)
    number: int = 0  # the sentence's place in its request, which with the seed picks its random stream

    def add_to(self, stream: Stream) -> list[tuple[Any, list[Translation]]]:
        return stream.add([(self, self.text)], n_best=self.n_best, constraints=[self.constraints], seed=self.seed,
                          first_number=self.number)


@dataclass
class BatchStats:
    steps: int = 0  # decoding steps (model calls)
    sentences: int = 0  # sentences translated
    rows: int = 0  # sentences decoding, summed over the steps (rows / steps: the mean batch)


@dataclass
class _Open:
    """A stream and the jobs in it."""

    stream: Stream
    jobs: set[_Job] = field(default_factory=set)


class Batcher:
    """Decode the sentences of any number of requests together, as they arrive, between the event loop's work."""

    def __init__(self, open_stream: OpenStream):
        self.open_stream = open_stream
        self.stats = BatchStats()
        self._incoming: list[_Job] = []
        self._streams: dict[DecodeKey, _Open] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._unfinished = 0  # sentences taken and not yet answered

    @property
    def queued(self) -> int:
        """Sentences taken and not yet answered (waiting or decoding)."""
        return self._unfinished

    @property
    def alive(self) -> bool:
        """False once the decoding task has ended (stopped, or failed: the log says why)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work(), name="seq2seq-decode")
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Finish what is decoding, then end the task (the server has answered its requests)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def translate(self, key: DecodeKey, texts: list[str], n_best: int = 1,
                        constraints: Sequence[Constraints | None] | None = None,
                        seed: int | None = None) -> list[list[Translation]]:
        """The n-best translations of each text, in order, decoded together with other requests' texts; each text
        with its ``constraints`` and (a policy that draws) its own random stream, that of ``seed`` and its number in
        the request, as the CLI numbers lines."""
        loop = asyncio.get_running_loop()
        constraints = constraints if constraints is not None else [None] * len(texts)
        jobs = [_Job(key, text, n_best, loop.create_future(), wanted, seed, number)
                for number, (text, wanted) in enumerate(zip(texts, constraints, strict=True))]
        self._incoming += jobs
        self._unfinished += len(jobs)
        self._wake.set()
        try:
            return list(await asyncio.gather(*(job.future for job in jobs)))
        except BaseException:  # a sentence of ours failed, or the request was cancelled: decode no more of it
            for job in jobs:
                job.future.cancel()
            raise

    def _ended(self, task: asyncio.Task) -> None:
        """If the decoding task died, fail the waiting requests instead of leaving them to hang."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error("the decoding task stopped: %r; waiting requests fail", error, exc_info=error)
        for job in self._incoming + [job for open_ in self._streams.values() for job in open_.jobs]:
            self._settle(job, error=RuntimeError(f"the decoding task stopped: {error!r}"))

    async def _work(self) -> None:
        while True:
            if not self._incoming and self._all_idle():
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            self._take_incoming()
            for key, open_ in list(self._streams.items()):
                if not open_.stream.idle:
                    self._step(key, open_)
                elif key.options.policy is not None:  # a policy's settings vary freely: keep no idle stream of them
                    del self._streams[key]
            for _ in range(LOOP_TURNS_PER_STEP):  # let the event loop read and answer requests between steps
                await asyncio.sleep(0)

    def _take_incoming(self) -> None:
        """Hand the new sentences to their streams."""
        incoming, self._incoming = self._incoming, []
        for job in incoming:
            if job.future.done():  # cancelled while it waited
                self._settle(job)
                continue
            open_ = self._streams.get(job.key)
            if open_ is None:
                open_ = self._streams[job.key] = _Open(self.open_stream(job.key))
            try:
                done = job.add_to(open_.stream)
            except Exception as error:  # noqa: BLE001 - the request fails with it, the others go on
                self._settle(job, error=error)
                continue
            open_.jobs.add(job)
            self._deliver(open_, done)

    def _all_idle(self) -> bool:
        return all(open_.stream.idle for open_ in self._streams.values())

    def _step(self, key: DecodeKey, open_: _Open) -> None:
        """One decoding step of a stream; a step that fails is retried sentence by sentence, so that only the
        request whose sentence cannot be decoded fails."""
        if any(job.future.done() for job in open_.jobs):  # requests that were cancelled: decode no more of them
            for job in open_.stream.discard(lambda job: job.future.done()):
                open_.jobs.discard(job)
                self._settle(job)
        try:
            done = open_.stream.step()
        except Exception as error:  # noqa: BLE001
            log.warning("a decoding step failed (%r); decoding its %d sentences one at a time", error,
                        len(open_.jobs))
            del self._streams[key]
            for job in list(open_.jobs):
                self._decode_alone(job)
            return
        self.stats.steps += 1
        self.stats.rows += open_.stream.decoding + len(done)
        self._deliver(open_, done)

    def _decode_alone(self, job: _Job) -> None:
        alone = _Open(self.open_stream(job.key), {job})
        try:
            self._deliver(alone, job.add_to(alone.stream))
            while not alone.stream.idle:
                self._deliver(alone, alone.stream.step())
        except Exception as error:  # noqa: BLE001
            self._settle(job, error=error)

    def _deliver(self, open_: _Open, done: list[tuple[_Job, list[Translation]]]) -> None:
        for job, translations in done:
            open_.jobs.discard(job)
            self.stats.sentences += 1
            self._settle(job, result=translations)

    def _settle(self, job: _Job, *, result: list[Translation] | None = None, error: Exception | None = None) -> None:
        """Answer a sentence (once; a cancelled request's sentence only counts as done)."""
        self._unfinished -= 1
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
