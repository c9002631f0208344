"""Batches of a prepared split, collated lazily: a background thread stays a few batches ahead of training.

Only the plan of an epoch (one int32 per pair) is held; each batch's tensors are made from the memory-mapped
arrays just before they are needed, so memory does not grow with the corpus and the model never waits.

Under torchrun every process plans the same global batches (same seed) and collates only its own share of
each: the global batch is sorted by length and dealt out sentence by sentence, so every share gets similar
lengths. Global batches with fewer sentences than processes cannot be shared and are left out by every
process alike.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

import numpy as np

from seq2seq.data.batching import Batch, Example, collate, plan_batches
from seq2seq.data.dataset import Split

T = TypeVar("T")


def epoch_plan(sizes: np.ndarray, *, batch_tokens: int, seed: int, epoch: int, world_size: int = 1) -> list[np.ndarray]:
    """The global batches of an epoch, in training order (see :func:`seq2seq.data.batching.plan_batches`)."""
    plan = plan_batches(sizes, batch_tokens=batch_tokens, seed=seed, epoch=epoch)
    return [indices for indices in plan if len(indices) >= world_size]


def shard(split: Split, indices: np.ndarray, *, rank: int = 0, world_size: int = 1,
          resegment: Callable[[list[Example]], list[Example]] | None = None) -> tuple[Batch, int]:
    """This process's share of a global batch, collated, and the global batch's target token count.

    ``resegment`` (BPE-dropout) changes the pieces of the whole global batch, alike in every process, before
    the share is taken."""
    examples = split.examples(indices)
    if resegment is not None:
        examples = resegment(examples)
    trg_lengths = np.array([len(e.trg) for e in examples])
    global_tokens = int(trg_lengths.sum()) + len(indices)  # + EOS, as the loss counts them
    if world_size > 1:
        ordered = np.lexsort((np.array([len(e.src) for e in examples]), trg_lengths))
        examples = [examples[k] for k in ordered[rank::world_size]]
    return collate(examples), global_tokens


class Resegment(Protocol):
    """Segments batch ``number`` of an epoch anew (BPE-dropout; see :mod:`seq2seq.data.bpe_dropout`)."""

    def __call__(self, examples: list[Example], *, number: int) -> list[Example]: ...


def training_batches(split: Split, plan: list[np.ndarray], *, rank: int = 0, world_size: int = 1,
                     resegment: Resegment | None = None,
                     first: int = 0) -> Iterator[tuple[Batch, int]]:
    """The batches of ``plan``, which starts at batch number ``first`` of its epoch; ``resegment(examples,
    number)`` re-segments batch ``number`` (BPE-dropout)."""
    for number, indices in enumerate(plan, start=first):
        bound = None if resegment is None else functools.partial(resegment, number=number)
        yield shard(split, indices, rank=rank, world_size=world_size, resegment=bound)


def first_batches(split: Split, *, batch_tokens: int, seed: int, count: int) -> list[Batch]:
    """The first ``count`` batches of epoch 1, collated (benchmarks and profiles train on real batches)."""
    plan = epoch_plan(split.sizes(), batch_tokens=batch_tokens, seed=seed, epoch=0)[:count]
    return [shard(split, indices)[0] for indices in plan]


def evaluation_batches(split: Split, sizes: np.ndarray, *, batch_tokens: int) -> Iterator[Batch]:
    """Batches of a whole split in length order (validation loss)."""
    for indices in plan_batches(sizes, batch_tokens=batch_tokens, shuffle=False):
        yield collate(split.examples(indices))
    split.release()


class Prefetcher(Generic[T]):
    """Iterates ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    An exception in the thread is raised in the consumer; leaving the ``with`` block early stops the thread.
    """

    _DONE = object()

    def __init__(self, items: Iterable[T], depth: int = 4):
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._fill, args=(iter(items),), name="prefetch", daemon=True)

    def __enter__(self) -> Prefetcher[T]:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)  # unblock a put() the thread is waiting in
            except queue.Empty:
                pass
        self.thread.join()

    def __iter__(self) -> Iterator[T]:
        while True:
            item, error = self.queue.get()
            if item is self._DONE:
                if error is not None:
                    raise error
                return
            yield item

    def _fill(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put((item, None)):
                    return
            self._put((self._DONE, None))
        except BaseException as error:  # handed to the consumer, which raises it
            self._put((self._DONE, error))

    def _put(self, entry: tuple[object, BaseException | None]) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False
