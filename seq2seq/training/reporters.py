"""What a training run reports while it runs: one interface, :class:`Reporter`, with one method per event.

Implementations: :class:`MetricsFile` (``metrics.jsonl``, one JSON object per event), :class:`ProgressBar`
(the tqdm bar of an epoch) and, with ``training.tensorboard``, :class:`seq2seq.training.tensorboard_log.TensorBoard`.
:class:`Reporters` hands every event to several. Under torchrun only rank 0 reports.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from seq2seq.decoding.search_types import Translation


class Reporter:
    """Receives the events of a run. Every method does nothing here: a reporter overrides what it shows."""

    wants_sample = False  # True: valid() also gets the translation of a fixed valid sentence (with attention)

    def epoch_started(self, epoch: int, *, batches: int, done: int) -> None:
        """Epoch ``epoch`` (from 0) of ``batches`` batches begins, ``done`` of them already trained on."""

    def batch_done(self) -> None:
        """One more batch of the epoch was trained on (or skipped)."""

    def epoch_ended(self) -> None:
        """The epoch's batches are used up, or training stops in the middle of it."""

    def train(self, step: int, epoch: int, *, loss: float, lr: float, tokens_per_second: float,
              skipped_updates: int) -> None:
        """The mean training loss and the speed of the updates since the last ``train`` event."""

    def skip(self, step: int, epoch: int, *, skipped_updates: int) -> None:
        """An update was skipped for a non-finite loss or gradient."""

    def valid(self, step: int, epoch: int, *, lr: float, best: bool, figures: dict[str, float],
              sample: Translation | None = None) -> None:
        """A validation: ``figures`` holds loss, ppl and bleu; ``best`` is whether it improved on the best."""

    def average(self, step: int, *, checkpoints: list[str], best: bool, figures: dict[str, float]) -> None:
        """The validation of the average of the last step checkpoints, at the end of training."""

    def length_penalty(self, step: int, *, beam_size: int, bleu: dict[float, float], chosen: float) -> None:
        """Valid BLEU at each candidate length penalty (``training.tune_length_penalty``), and the one chosen."""

    def shortlist(self, step: int, *, bleu: float, shortlist_bleu: float, share: float, used: bool) -> None:
        """Valid BLEU without and with the vocabulary shortlist, the share of the target pieces a batch scored
        with it, and whether decoding uses it."""

    def final(self, step: int, *, beam_size: int, length_penalty: float, scores: dict[str, float]) -> None:
        """The final scores of the best checkpoint (``valid_bleu``, and ``test_bleu`` when configured), with the
        search's beam size and length penalty."""

    def close(self) -> None:
        """Nothing more will be reported."""


class Reporters(Reporter):
    """Several reporters as one: each event goes to every one, in order."""

    def __init__(self, reporters: list[Reporter]):
        self.reporters = reporters
        self.wants_sample = any(reporter.wants_sample for reporter in reporters)

    def epoch_started(self, epoch: int, *, batches: int, done: int) -> None:
        for reporter in self.reporters:
            reporter.epoch_started(epoch, batches=batches, done=done)

    def batch_done(self) -> None:
        for reporter in self.reporters:
            reporter.batch_done()

    def epoch_ended(self) -> None:
        for reporter in self.reporters:
            reporter.epoch_ended()

    def train(self, step: int, epoch: int, **figures: Any) -> None:
        for reporter in self.reporters:
            reporter.train(step, epoch, **figures)

    def skip(self, step: int, epoch: int, *, skipped_updates: int) -> None:
        for reporter in self.reporters:
            reporter.skip(step, epoch, skipped_updates=skipped_updates)

    def valid(self, step: int, epoch: int, **fields: Any) -> None:
        for reporter in self.reporters:
            reporter.valid(step, epoch, **fields)

    def average(self, step: int, **fields: Any) -> None:
        for reporter in self.reporters:
            reporter.average(step, **fields)

    def length_penalty(self, step: int, **fields: Any) -> None:
        for reporter in self.reporters:
            reporter.length_penalty(step, **fields)

    def shortlist(self, step: int, **fields: Any) -> None:
        for reporter in self.reporters:
            reporter.shortlist(step, **fields)

    def final(self, step: int, **fields: Any) -> None:
        for reporter in self.reporters:
            reporter.final(step, **fields)

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()


def drop_torn_tail(path: Path) -> int:
    """Cut a JSON-lines file back to its last complete record; returns the bytes dropped.

    Each event is flushed as it is written, but a power loss can still leave the last line cut short, or filled
    with NUL bytes by a file system that had sized the file before writing it; events appended after such a line
    would make it a damaged record in the middle of the file.
    """
    data = path.read_bytes()
    keep = len(data)
    while keep:
        start = data.rfind(b"\n", 0, keep - 1) + 1  # where the last line of data[:keep] begins
        if data[keep - 1:keep] == b"\n" and _is_record(data[start:keep]):
            break
        keep = start
    if keep < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(keep)
    return len(data) - keep


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class MetricsFile(Reporter):
    """``metrics.jsonl``: one JSON object per event, each flushed at once so that a crash loses no event.

    ``time`` is seconds since the run started; ``elapsed`` carries it over from the sessions before a resume.
    """

    def __init__(self, path: Path, *, elapsed: float = 0.0):
        self.path = path
        self.start = time.monotonic() - elapsed

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.monotonic() - self.start, 3), **fields}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def train(self, step: int, epoch: int, *, loss: float, lr: float, tokens_per_second: float,
              skipped_updates: int) -> None:
        self.write("train", step=step, epoch=epoch, loss=loss, lr=lr, tokens_per_second=tokens_per_second,
                   skipped_updates=skipped_updates)

    def skip(self, step: int, epoch: int, *, skipped_updates: int) -> None:
        self.write("skip", step=step, epoch=epoch, skipped_updates=skipped_updates)

    def valid(self, step: int, epoch: int, *, lr: float, best: bool, figures: dict[str, float],
              sample: Translation | None = None) -> None:
        self.write("valid", step=step, epoch=epoch, lr=lr, best=best, **figures)

    def average(self, step: int, *, checkpoints: list[str], best: bool, figures: dict[str, float]) -> None:
        self.write("average", step=step, checkpoints=checkpoints, best=best, **figures)

    def length_penalty(self, step: int, *, beam_size: int, bleu: dict[float, float], chosen: float) -> None:
        self.write("length_penalty", step=step, beam_size=beam_size, length_penalties=list(bleu),
                   bleu=list(bleu.values()), chosen=chosen)

    def shortlist(self, step: int, *, bleu: float, shortlist_bleu: float, share: float, used: bool) -> None:
        self.write("shortlist", step=step, bleu=bleu, shortlist_bleu=shortlist_bleu, share=share, used=used)

    def final(self, step: int, *, beam_size: int, length_penalty: float, scores: dict[str, float]) -> None:
        self.write("final", step=step, beam_size=beam_size, length_penalty=length_penalty, **scores)


class ProgressBar(Reporter):
    """A tqdm bar per epoch on stderr (only on a terminal), showing the loss, tokens/s and the rate."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def epoch_started(self, epoch: int, *, batches: int, done: int) -> None:
        self.bar = tqdm(total=batches, initial=done, desc=f"epoch {epoch + 1}", leave=False, disable=None,
                        dynamic_ncols=True)

    def batch_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def train(self, step: int, epoch: int, *, loss: float, lr: float, tokens_per_second: float,
              skipped_updates: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_second:.0f}", lr=f"{lr:.2e}")

    def epoch_ended(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    close = epoch_ended
