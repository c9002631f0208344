"""The training loop: epochs of token batches, validation, early stopping, checkpoints and stop signals.

:func:`seq2seq.training.fit.fit` sets a run up and :class:`Trainer` runs it from its :class:`Progress`. SIGINT and
SIGTERM stop after the current update and save first (:mod:`seq2seq.common.stop_signals`). Under torchrun every
process runs this loop on its share of each batch, and every decision to validate, save or stop is taken
from values all processes share.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
from typing import Any, NamedTuple

import torch
from torch.nn.parallel import DistributedDataParallel

from seq2seq.common.atomic import atomic_copy
from seq2seq.common.stop_signals import Interrupted, StopSignals
from seq2seq.config import TrainingConfig, config_to_dict
from seq2seq.data.batching import Batch
from seq2seq.data.bpe_dropout import Resegmenter
from seq2seq.data.loader import Prefetcher, epoch_plan, evaluation_batches, training_batches
from seq2seq.errors import UserError
from seq2seq.model.checkpoint import prune_step_checkpoints, save_checkpoint, step_checkpoint_path
from seq2seq.model.network import Seq2Seq
from seq2seq.training.context import RunContext
from seq2seq.training.distributed import Distributed
from seq2seq.training.moving_average import MovingAverage
from seq2seq.training.optimization import BudgetSchedule, Scheduler, StepAt
from seq2seq.training.run_state import rng_state
from seq2seq.training.update import AUTOCAST_TYPES, autocast_supported, train_step
from seq2seq.training.validation import attention_sample, validate

log = logging.getLogger(__name__)


class TrainingDiverged(UserError):
    """Too many updates in a row had a non-finite loss or gradient."""


class StopReason(enum.Enum):
    """Why training stopped (a stop signal raises :class:`~seq2seq.common.stop_signals.Interrupted` instead)."""

    EPOCH_LIMIT = "epoch limit"
    TIME_LIMIT = "time limit"
    STEP_LIMIT = "step limit"
    NO_IMPROVEMENT = "early stopping"

    def describe(self, settings: TrainingConfig) -> str:
        """The log's words for it, with the configured limit."""
        return {StopReason.EPOCH_LIMIT: f"epoch limit of {settings.max_epochs} reached",
                StopReason.TIME_LIMIT: f"time limit of {settings.max_minutes} minutes reached",
                StopReason.STEP_LIMIT: f"step limit of {settings.max_steps} reached",
                StopReason.NO_IMPROVEMENT: f"no improvement of valid {settings.early_stopping_metric} in "
                                           f"{settings.patience} validations"}[self]


class Agreed(NamedTuple):
    """What every process sums after an update (one collective): the loss for the log, and the flags all of
    them must act on alike."""

    loss_sum: float  # the batch's loss times its target tokens
    tokens: float  # target tokens
    late: float  # > 0: the time budget is spent
    save_by_time: float  # > 0: training.save_every_minutes has passed
    stop: float  # > 0: a stop signal arrived
    clock_sum: float  # the processes' training clocks (divided by the world size: the shared clock)


class Trainer:
    """Runs the updates, validations and saves of one run from its current :class:`Progress`.

    ``settings`` is the config's training section; ``job`` is this process's place in a torchrun job.
    ``average`` (``training.ema_decay``, rank 0 only) is the moving average of the weights: when given, it is
    the model that validates and that checkpoints hold as ``model``.
    """

    def __init__(self, run: RunContext, job: Distributed, model: Seq2Seq, optimizer: torch.optim.Optimizer,
                 scheduler: Scheduler | None, step_at: StepAt | None, *, average: MovingAverage | None = None):
        config, splits = run.config, run.splits
        self.context = run
        self.config, self.settings = config, config.training
        self.model, self.optimizer, self.scheduler, self.step_at = model, optimizer, scheduler, step_at
        self.average = average
        self.net: torch.nn.Module = model  # the module that trains
        if job.enabled:  # under torchrun, DDP averages the gradients across processes during backward
            self.net = DistributedDataParallel(model, device_ids=[job.device] if job.device.type == "cuda" else None)
        self.splits, self.src_tok, self.trg_tok = splits, run.src_tok, run.trg_tok
        self.job, self.device, self.reporter, self.progress = job, run.device, run.reporter, run.progress
        self.layout = run.layout
        self.checkpoints, self.metrics_path = self.layout.checkpoints, self.layout.metrics
        self.train_sizes, self.valid_sizes = splits["train"].sizes(), splits["valid"].sizes()
        self.autocast = self.autocast_type()
        self.resegmenter = None  # BPE-dropout
        if self.settings.bpe_dropout:
            self.resegmenter = Resegmenter(run.src_tok, run.trg_tok, p=self.settings.bpe_dropout,
                                           max_length=config.data.max_length, seed=self.settings.seed)
        self.signals = StopSignals()
        self.session_start = time.monotonic()
        self.elapsed_before = self.clock = run.progress.elapsed
        self.last_save, self.saved_step = self.session_start, run.progress.step
        self.window_tokens, self.window_start = 0, self.session_start
        self.window_loss: list[float] = []  # each update's mean loss per token since the last report

    @property
    def scored(self) -> Seq2Seq:
        """The model that validation scores and checkpoints hold as ``model``: the average, if there is one."""
        return self.average.model if self.average else self.model

    def close(self) -> None:
        """Drop the DDP wrapper, which holds the process group, so that closing the job frees the group."""
        self.net = self.model

    def autocast_type(self) -> torch.dtype | None:
        """The configured autocast type, or None (float32) where this machine cannot run it."""
        dtype = AUTOCAST_TYPES[self.settings.autocast]
        if dtype is not None and not autocast_supported(self.device.type, dtype):
            log.warning("training.autocast = %s is not supported on this %s (oneDNN has no bfloat16 LSTM kernel "
                        "without AVX-512): training in float32 instead", self.settings.autocast, self.device.type)
            return None
        return dtype

    def elapsed(self) -> float:
        """Seconds of training in this run, earlier sessions included."""
        return self.elapsed_before + time.monotonic() - self.session_start

    def run(self) -> StopReason:
        """Train until a limit, early stopping or a stop signal; returns why training stopped."""
        settings, progress = self.settings, self.progress
        with self.signals:
            while progress.epoch < settings.max_epochs:
                reason = self.run_epoch()
                if reason:
                    return reason
                progress.epoch += 1
                progress.batch_in_epoch = 0
                if progress.step % settings.validate_every != 0 and self.validate():
                    return StopReason.NO_IMPROVEMENT
                if self.job.any([self.signals.received is not None])[0]:
                    self.stop()
        return StopReason.EPOCH_LIMIT

    def run_epoch(self) -> StopReason | None:
        """The rest of the current epoch; returns a stop reason, or None when the epoch is done."""
        progress, job = self.progress, self.job
        plan = epoch_plan(self.train_sizes, batch_tokens=self.settings.batch_tokens, seed=self.settings.seed,
                          epoch=progress.epoch, world_size=job.world_size)
        resegment = functools.partial(self.resegmenter, epoch=progress.epoch) if self.resegmenter else None
        batches = training_batches(self.splits["train"], plan[progress.batch_in_epoch:], rank=job.rank,
                                   world_size=job.world_size, resegment=resegment, first=progress.batch_in_epoch)
        self.reporter.epoch_started(progress.epoch, batches=len(plan), done=progress.batch_in_epoch)
        try:
            with Prefetcher(batches) as prefetched:
                for batch, global_tokens in prefetched:
                    reason = self.train_on(batch, global_tokens)
                    self.reporter.batch_done()
                    if reason:
                        return reason
        finally:
            self.reporter.epoch_ended()
        return None

    def train_on(self, batch: Batch, global_tokens: int) -> StopReason | None:
        """One update, then whatever is due after it (log, validation, save, stop); returns a stop reason."""
        settings, progress, job = self.settings, self.progress, self.job
        normalizer = global_tokens / job.world_size if job.enabled else None
        if self.step_at is StepAt.BEFORE_UPDATE:
            assert isinstance(self.scheduler, BudgetSchedule)  # make_scheduler pairs each schedule with its moment
            self.scheduler.set(step=progress.step, elapsed=self.clock)
        loss = train_step(self.net, batch.to(self.device), self.optimizer, label_smoothing=settings.label_smoothing,
                          clip_grad_norm=settings.clip_grad_norm, autocast=self.autocast, normalizer=normalizer)
        progress.batch_in_epoch += 1
        local_tokens = batch.num_target_tokens
        # one collective per update: the loss for the log, and the flags every process must agree on
        agreed = Agreed(*job.sum(list(Agreed(
            loss_sum=(loss or 0.0) * local_tokens, tokens=local_tokens, late=self.out_of_time(),
            save_by_time=self.save_by_time(), stop=self.signals.received is not None, clock_sum=self.elapsed()))))
        self.clock = agreed.clock_sum / job.world_size  # the training clock, alike in every process
        if loss is None:
            self.skipped()
        else:
            reason = self.after_update(agreed.loss_sum / agreed.tokens, int(agreed.tokens), late=agreed.late > 0,
                                       save=agreed.save_by_time > 0)
            if reason:
                return reason
        if agreed.stop > 0:
            self.stop()
        return None

    def after_update(self, loss: float, tokens: int, *, late: bool, save: bool) -> StopReason | None:
        settings, progress = self.settings, self.progress
        progress.consecutive_skips = 0
        progress.step += 1
        if self.average:
            self.average.update(self.model, progress.step)
        if self.step_at is StepAt.UPDATE:
            assert isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR)
            self.scheduler.step()
        self.window_tokens += tokens
        self.window_loss.append(loss)
        if progress.step % settings.log_every == 0:
            self.report_window()
        out_of_steps = 0 < settings.max_steps <= progress.step
        if progress.step % settings.validate_every == 0 or late or out_of_steps:
            if self.validate():
                return StopReason.NO_IMPROVEMENT
            if late:
                return StopReason.TIME_LIMIT
            if out_of_steps:
                return StopReason.STEP_LIMIT
            self.window_start = time.monotonic()  # validation time is not training speed
        elif save or (settings.save_every_steps and progress.step % settings.save_every_steps == 0):
            self.save()
        return None

    def out_of_time(self) -> bool:
        return bool(self.settings.max_minutes) and self.elapsed() >= self.settings.max_minutes * 60

    def save_by_time(self) -> bool:
        minutes = self.settings.save_every_minutes
        return bool(minutes) and time.monotonic() - self.last_save >= minutes * 60

    def skipped(self) -> None:
        """Count an update skipped for a non-finite loss or gradient; give up after too many in a row."""
        progress, settings = self.progress, self.settings
        progress.skipped_updates += 1
        progress.consecutive_skips += 1
        self.reporter.skip(progress.step, progress.epoch, skipped_updates=progress.skipped_updates)
        log.warning("update %d skipped: the loss or the gradient is not finite (%d in a row, %d in total)",
                    progress.step + 1, progress.consecutive_skips, progress.skipped_updates)
        if progress.consecutive_skips >= settings.max_skipped_updates:
            raise TrainingDiverged(
                f"training stopped at update {progress.step}: {progress.consecutive_skips} updates in a row had a "
                "non-finite loss or gradient (NaN or infinity). Likely causes: a learning rate that is too high "
                f"(training.learning_rate = {settings.learning_rate}), gradient clipping that is off or loose "
                f"(training.clip_grad_norm = {settings.clip_grad_norm}), or broken lines in the training data "
                f"({self.config.data.train}). The weights were never updated with a non-finite value; the last "
                f"saved state is {self.layout.last}.")

    def report_window(self) -> None:
        """Report the mean loss and the speed of the updates since the last report."""
        speed = self.window_tokens / max(time.monotonic() - self.window_start, 1e-9)
        self.reporter.train(self.progress.step, self.progress.epoch, loss=sum(self.window_loss) / len(self.window_loss),
                            lr=self.optimizer.param_groups[0]["lr"], tokens_per_second=speed,
                            skipped_updates=self.progress.skipped_updates)
        self.window_tokens, self.window_start, self.window_loss = 0, time.monotonic(), []

    def validate(self) -> bool:
        """Validate (rank 0), save checkpoints, step the plateau schedule; True when early stopping says stop.

        Every process receives rank 0's validation metric, so schedules and early stopping agree.
        """
        settings, progress = self.settings, self.progress
        figures = self.validation_figures() if self.job.is_main else {}
        value = self.job.broadcast(figures.get(settings.early_stopping_metric, 0.0))
        is_best = settings.early_stopping_metric.improved(value, progress.best)
        progress.best = value if is_best else progress.best
        progress.bad_validations = 0 if is_best else progress.bad_validations + 1
        progress.scores[progress.step] = value
        if self.job.is_main:
            self.report_validation(figures, is_best)
        if self.step_at is StepAt.VALIDATION:
            assert isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            self.scheduler.step(value)
        self.save(snapshot=settings.keep_last > 0 or settings.keep_best > 0, best=is_best)
        return 0 < settings.patience <= progress.bad_validations

    def validation_figures(self) -> dict[str, float]:
        valid = self.splits["valid"]
        batches = evaluation_batches(valid, self.valid_sizes, batch_tokens=self.settings.batch_tokens)
        return validate(self.scored, self.context, batches)

    def report_validation(self, figures: dict[str, float], is_best: bool) -> None:
        progress = self.progress
        sample = None
        if self.reporter.wants_sample:
            sample = attention_sample(self.scored, self.context)
        self.reporter.valid(progress.step, progress.epoch, lr=self.optimizer.param_groups[0]["lr"], best=is_best,
                            figures=figures, sample=sample)
        log.info("valid step %d: loss %.3f, ppl %.2f, BLEU %.2f%s", progress.step, figures["loss"],
                 figures["ppl"], figures["bleu"], " (best)" if is_best else "")

    def save(self, *, snapshot: bool = False, best: bool = False) -> None:
        """Write last.pt (and a step checkpoint, best.pt) atomically, then prune old step checkpoints.

        Collective under torchrun: every process contributes its RNG state; rank 0 writes.
        """
        rng_per_process = self.job.gather(rng_state())
        if self.job.is_main:
            self.write_checkpoints(rng_per_process, snapshot=snapshot, best=best)
        self.last_save, self.saved_step = time.monotonic(), self.progress.step

    def write_checkpoints(self, rng_per_process: list[dict[str, Any]], *, snapshot: bool, best: bool) -> None:
        progress = self.progress
        progress.elapsed = self.elapsed()
        progress.metrics_bytes = self.metrics_path.stat().st_size if self.metrics_path.exists() else 0
        last = self.layout.last
        state = {"model": self.scored.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler else None, "progress": vars(progress),
                 "rng": rng_per_process, "config": config_to_dict(self.config)}
        if self.average:
            state["training_model"] = self.model.state_dict()
        save_checkpoint(last, state)
        if snapshot:
            atomic_copy(last, step_checkpoint_path(self.checkpoints, progress.step))
            prune_step_checkpoints(self.checkpoints, keep_last=self.settings.keep_last,
                                   keep_best=self.settings.keep_best, scores=progress.scores,
                                   higher_is_better=self.settings.early_stopping_metric.higher_is_better)
        if best:
            atomic_copy(last, self.layout.best)

    def stop(self) -> None:
        """Save unless the current update is already saved, then raise :class:`Interrupted` (all processes)."""
        if self.saved_step != self.progress.step or not self.layout.last.exists():
            self.save()
        name = self.signals.received or "a signal to another process"
        raise Interrupted(name, self.progress.step, self.layout.last, is_main=self.job.is_main)
