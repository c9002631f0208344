"""A training run: epochs of token batches, validation, early stopping, checkpoints, resume and stop signals.

:func:`fit` sets a run up (a new model directory, or the state of ``--resume``) and :class:`Trainer` runs
it. Everything that decides the next update lives in the checkpoint (see :mod:`seq2seq.resume`), so a run
killed at any point and resumed from ``checkpoints/last.pt`` makes the same updates, bit for bit, as one
that never stopped. SIGINT and SIGTERM stop after the current update and save first.

Under torchrun the same code trains data-parallel (see :mod:`seq2seq.distributed`): every process runs
the loop below on its share of each batch, rank 0 alone validates and writes files, and every decision
to validate, save or stop is taken from values all processes share.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from seq2seq.batching import Batch
from seq2seq.bpe_dropout import Resegmenter
from seq2seq.checkpoint import (atomic_copy, prune_step_checkpoints, remove_stale_temporaries, save_checkpoint,
                                step_checkpoint_path)
from seq2seq.config import Config, config_to_dict, save_config
from seq2seq.dataset import Split, prepare_data
from seq2seq.distributed import Distributed, setup
from seq2seq.errors import UserError
from seq2seq.finish import average_last_checkpoints, final_report
from seq2seq.loader import Prefetcher, epoch_plan, evaluation_batches, training_batches
from seq2seq.logs import MetricsWriter, setup_logging
from seq2seq.model import Seq2Seq, build_model, count_parameters
from seq2seq.prepare import is_prepared_data, prepared_dir
from seq2seq.resume import Progress, check_compatible, load_resume_checkpoint, rng_state, set_rng_state
from seq2seq.tokenizer import Tokenizer
from seq2seq.training import (AUTOCAST_TYPES, BudgetSchedule, Scheduler, autocast_supported, improved,
                              make_optimizer, make_scheduler, train_step)
from seq2seq.training import validate as validate_model

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Training stopped on SIGINT or SIGTERM after saving ``checkpoint``."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path, *, is_main: bool = True):
        super().__init__(f"{signal_name} at update {step}")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint
        self.is_main = is_main  # under torchrun every process stops; rank 0 reports it


class TrainingDiverged(UserError):
    """Too many updates in a row had a non-finite loss or gradient."""


class StopSignals:
    """Turn the first SIGINT or SIGTERM into a request to stop after the current update.

    A second signal gets the default behaviour (stop at once): a user who presses Ctrl-C twice means it.
    Checkpoints are written atomically, so even that loses no saved state.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum).name
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def prepare_model_dir(config: Config, *, overwrite: bool) -> Path:
    """Create the model directory; refuse to mix a new run into a previous one.

    Prepared data inside it (``MODEL_DIR/data``, e.g. from ``seq2seq prepare``) is not part of a run: it
    does not make the directory "not empty", and ``--overwrite`` keeps it (it is checked for staleness).
    """
    model_dir = Path(config.training.model_dir)
    prepared = prepared_dir(config)
    entries = [p for p in model_dir.iterdir() if not is_prepared_data(p, prepared)] if model_dir.exists() else []
    if entries:
        if not overwrite:
            raise UserError(f"model directory {model_dir} is not empty. Pass --resume to continue the run in it, "
                            "--overwrite to delete it and start again, or set training.model_dir to a new "
                            "directory.")
        if not (model_dir / "config.yaml").is_file():
            raise UserError(f"model directory {model_dir} is not empty and holds no config.yaml, so it is not a "
                            "model directory; --overwrite deletes only model directories. Choose another "
                            "training.model_dir.")
        for entry in entries:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    (model_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return model_dir


def fit(config: Config, *, overwrite: bool = False, resume: bool = False, resume_from: str | None = None,
        config_source: str = "the config") -> dict[str, float]:
    """Train a model as configured (or continue a stopped run); returns valid and, if configured, test BLEU.

    Under torchrun this joins the job's process group first; rank 0 returns the figures, the others {}.
    """
    ctx = setup(config.training)
    try:
        return _fit(config, ctx, overwrite=overwrite, resume=resume or resume_from is not None,
                    resume_from=resume_from, config_source=config_source)
    finally:
        ctx.close(wait=False)  # after an error other processes may never arrive; torchrun ends them


def _fit(config: Config, ctx: Distributed, *, overwrite: bool, resume: bool, resume_from: str | None,
         config_source: str) -> dict[str, float]:
    train = config.training
    model_dir = Path(train.model_dir)
    state = None
    if elastic_restart() and (model_dir / "checkpoints" / "last.pt").is_file():
        resume, resume_from, overwrite = True, None, False  # torchrun --max-restarts: continue, never start over
    if resume:
        if overwrite:
            raise UserError("--resume and --overwrite contradict each other: pass one of them.")
        state, checkpoint_path = load_resume_checkpoint(model_dir, resume_from)
        check_compatible(state["config"], config, source=config_source)
    elif ctx.is_main:
        prepare_model_dir(config, overwrite=overwrite)
    ctx.barrier()
    setup_logging(model_dir if ctx.is_main else None, level=logging.INFO if ctx.is_main else logging.ERROR)
    if ctx.is_main:
        for stale in remove_stale_temporaries(model_dir / "checkpoints"):
            log.info("removed %s, left by a save that was interrupted (the checkpoint it was replacing is "
                     "intact)", stale)
        save_config(config, model_dir / "config.yaml")
    seed_everything(train.seed)  # the same initial weights in every process
    if train.num_threads:
        torch.set_num_threads(train.num_threads)

    if ctx.is_main:  # rank 0 prepares the data (or finds it prepared); the others then map the same files
        src_tok, trg_tok, splits = prepare_data(config, model_dir)
    ctx.barrier()
    if not ctx.is_main:
        src_tok, trg_tok, splits = prepare_data(config, model_dir, prepare=False)
    model = build_model(config.model, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size)
    model = model.to(ctx.device)
    log.info("model: %d parameters; vocabularies: source %d, target %d pieces; device %s, %d threads%s",
             count_parameters(model), src_tok.vocab_size, trg_tok.vocab_size, ctx.device, torch.get_num_threads(),
             f"; {ctx.world_size} processes" if ctx.enabled else "")
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    progress = Progress()
    if ctx.enabled:
        torch.manual_seed(train.seed + 1_000_003 * ctx.rank)  # distinct dropout masks in each process
    if state is not None:
        progress = restore(state, model, optimizer, scheduler, model_dir / "metrics.jsonl", ctx)
        log.info("resuming from %s: update %d, epoch %d, batch %d of the epoch", checkpoint_path, progress.step,
                 progress.epoch + 1, progress.batch_in_epoch)
    metrics = MetricsWriter(model_dir / "metrics.jsonl", elapsed=progress.elapsed, enabled=ctx.is_main)
    trainer = Trainer(config, model, optimizer, scheduler, splits, src_tok, trg_tok, ctx, metrics, progress)
    stop_reason = trainer.run()
    log.info("training stopped: %s after %d updates, %.1f minutes", stop_reason, progress.step,
             trainer.elapsed() / 60)
    ctx.close()  # all processes leave together; the final scoring below needs no other process
    if not ctx.is_main:
        return {}
    if train.average_last > 1:
        average_last_checkpoints(model, model_dir / "checkpoints", splits, src_tok, trg_tok, config, ctx.device,
                                 metrics, progress)
    return final_report(model, model_dir, splits, src_tok, trg_tok, config, ctx.device, metrics, progress)


def elastic_restart() -> bool:
    """True when torchrun restarted the job's processes after a failure (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def restore(state: dict[str, Any], model: Seq2Seq, optimizer: torch.optim.Optimizer, scheduler: Scheduler | None,
            metrics_path: Path, ctx: Distributed) -> Progress:
    """Load a training state into fresh objects; cut metrics.jsonl back to what the checkpoint had seen."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    progress = Progress(**state["progress"])
    if ctx.is_main and metrics_path.exists() and metrics_path.stat().st_size > progress.metrics_bytes:
        with open(metrics_path, "r+b") as handle:  # events after the checkpoint will be written again
            handle.truncate(progress.metrics_bytes)
    rng_per_process = state["rng"]  # one state per process of the run that saved it
    if isinstance(rng_per_process, dict):
        rng_per_process = [rng_per_process]
    if len(rng_per_process) == ctx.world_size:
        set_rng_state(rng_per_process[ctx.rank])  # last: nothing after this may draw random numbers
    else:
        log.warning("the checkpoint was written by %d processes and this run has %d: the batches continue "
                    "where they stopped, but dropout draws differ from an uninterrupted run",
                    len(rng_per_process), ctx.world_size)
        torch.manual_seed(progress.step * 1_000_003 + ctx.rank)
    return progress


class Trainer:
    """Runs the updates, validations and saves of one run from its current :class:`Progress`."""

    def __init__(self, config: Config, model: Seq2Seq, optimizer: torch.optim.Optimizer,
                 scheduler: Scheduler | None, splits: dict[str, Split], src_tok: Tokenizer, trg_tok: Tokenizer,
                 ctx: Distributed, metrics: MetricsWriter, progress: Progress):
        self.config, self.train = config, config.training
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.net: torch.nn.Module = model  # the module that trains
        if ctx.enabled:  # under torchrun, DDP averages the gradients across processes during backward
            self.net = DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
        self.splits, self.src_tok, self.trg_tok = splits, src_tok, trg_tok
        self.ctx, self.device, self.metrics, self.progress = ctx, ctx.device, metrics, progress
        self.checkpoints = Path(self.train.model_dir) / "checkpoints"
        self.train_sizes, self.valid_sizes = splits["train"].sizes(), splits["valid"].sizes()
        self.autocast = AUTOCAST_TYPES[self.train.autocast]
        if self.autocast is not None and not autocast_supported(self.device.type, self.autocast):
            log.warning("training.autocast = %s is not supported on this %s (oneDNN has no bfloat16 LSTM kernel "
                        "without AVX-512): training in float32 instead", self.train.autocast, self.device.type)
            self.autocast = None
        self.resegmenter = None  # BPE-dropout
        if self.train.bpe_dropout:
            self.resegmenter = Resegmenter(src_tok, trg_tok, p=self.train.bpe_dropout,
                                           max_length=config.data.max_length, seed=self.train.seed)
        self.signals = StopSignals()
        self.session_start = time.monotonic()
        self.elapsed_before = self.clock = progress.elapsed
        self.last_save, self.saved_step = self.session_start, progress.step
        self.window_tokens, self.window_start, self.window_loss = 0, self.session_start, []

    def elapsed(self) -> float:
        """Seconds of training in this run, earlier sessions included."""
        return self.elapsed_before + time.monotonic() - self.session_start

    def run(self) -> str:
        """Train until a limit, early stopping or a stop signal; returns why training stopped."""
        with self.signals:
            while self.progress.epoch < self.train.max_epochs:
                reason = self.run_epoch()
                if reason:
                    return reason
                self.progress.epoch += 1
                self.progress.batch_in_epoch = 0
                if self.progress.step % self.train.validate_every != 0 and self.validate():
                    return self.early_stop_reason()
                if self.ctx.any([self.signals.received is not None])[0]:
                    self.stop()
        return f"epoch limit of {self.train.max_epochs} reached"

    def run_epoch(self) -> str | None:
        """The rest of the current epoch; returns a stop reason, or None when the epoch is done."""
        progress, ctx = self.progress, self.ctx
        plan = epoch_plan(self.train_sizes, batch_tokens=self.train.batch_tokens, seed=self.train.seed,
                          epoch=progress.epoch, world_size=ctx.world_size)
        resegment = functools.partial(self.resegmenter, epoch=progress.epoch) if self.resegmenter else None
        batches = training_batches(self.splits["train"], plan[progress.batch_in_epoch:], rank=ctx.rank,
                                   world_size=ctx.world_size, resegment=resegment, first=progress.batch_in_epoch)
        with tqdm(total=len(plan), initial=progress.batch_in_epoch, desc=f"epoch {progress.epoch + 1}",
                  leave=False, disable=None if ctx.is_main else True, dynamic_ncols=True) as bar, \
                Prefetcher(batches) as prefetched:
            for batch, global_tokens in prefetched:
                reason = self.train_on(batch, global_tokens, bar)
                bar.update(1)
                if reason:
                    return reason
        return None

    def train_on(self, batch: Batch, global_tokens: int, bar: tqdm) -> str | None:
        """One update, then whatever is due after it (log, validation, save, stop); returns a stop reason."""
        train, progress, ctx = self.train, self.progress, self.ctx
        normalizer = global_tokens / ctx.world_size if ctx.enabled else None
        if isinstance(self.scheduler, BudgetSchedule):
            self.scheduler.set(step=progress.step, elapsed=self.clock)
        loss = train_step(self.net, batch.to(self.device), self.optimizer, label_smoothing=train.label_smoothing,
                          clip_grad_norm=train.clip_grad_norm, autocast=self.autocast,
                          normalizer=normalizer)
        progress.batch_in_epoch += 1
        local_tokens = batch.num_target_tokens
        # one collective per update: the loss for the log, and the flags every process must agree on
        loss_sum, tokens, late, save_by_time, stop, clock_sum = ctx.sum([
            (loss or 0.0) * local_tokens, local_tokens, self.out_of_time(), self.save_by_time(),
            self.signals.received is not None, self.elapsed()])
        self.clock = clock_sum / ctx.world_size  # the training clock, alike in every process
        if loss is None:
            self.skipped()
        else:
            reason = self.after_update(loss_sum / tokens, int(tokens), bar, late=late > 0, save=save_by_time > 0)
            if reason:
                return reason
        if stop > 0:
            self.stop()
        return None

    def after_update(self, loss: float, tokens: int, bar: tqdm, *, late: bool, save: bool) -> str | None:
        train, progress = self.train, self.progress
        progress.consecutive_skips = 0
        progress.step += 1
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            self.scheduler.step()
        self.window_tokens += tokens
        self.window_loss.append(loss)
        if progress.step % train.log_every == 0:
            self.log_window(bar)
        out_of_steps = 0 < train.max_steps <= progress.step
        if progress.step % train.validate_every == 0 or late or out_of_steps:
            if self.validate():
                return self.early_stop_reason()
            if late:
                return f"time limit of {train.max_minutes} minutes reached"
            if out_of_steps:
                return f"step limit of {train.max_steps} reached"
            self.window_start = time.monotonic()  # validation time is not training speed
        elif save or (train.save_every_steps and progress.step % train.save_every_steps == 0):
            self.save()
        return None

    def out_of_time(self) -> bool:
        return bool(self.train.max_minutes) and self.elapsed() >= self.train.max_minutes * 60

    def save_by_time(self) -> bool:
        minutes = self.train.save_every_minutes
        return bool(minutes) and time.monotonic() - self.last_save >= minutes * 60

    def skipped(self) -> None:
        """Count an update skipped for a non-finite loss or gradient; give up after too many in a row."""
        progress, train = self.progress, self.train
        progress.skipped_updates += 1
        progress.consecutive_skips += 1
        self.metrics.write("skip", step=progress.step, epoch=progress.epoch, skipped_updates=progress.skipped_updates)
        log.warning("update %d skipped: the loss or the gradient is not finite (%d in a row, %d in total)",
                    progress.step + 1, progress.consecutive_skips, progress.skipped_updates)
        if progress.consecutive_skips >= train.max_skipped_updates:
            raise TrainingDiverged(
                f"training stopped at update {progress.step}: {progress.consecutive_skips} updates in a row had a "
                "non-finite loss or gradient (NaN or infinity). Likely causes: a learning rate that is too high "
                f"(training.learning_rate = {train.learning_rate}), gradient clipping that is off or loose "
                f"(training.clip_grad_norm = {train.clip_grad_norm}), or broken lines in the training data "
                f"({self.config.data.train}). The weights were never updated with a non-finite value; the last "
                f"saved state is {self.checkpoints / 'last.pt'}.")

    def log_window(self, bar: tqdm) -> None:
        speed = self.window_tokens / max(time.monotonic() - self.window_start, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        mean_loss = sum(self.window_loss) / len(self.window_loss)
        bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{speed:.0f}", lr=f"{lr:.2e}")
        self.metrics.write("train", step=self.progress.step, epoch=self.progress.epoch, loss=mean_loss, lr=lr,
                           tokens_per_second=speed, skipped_updates=self.progress.skipped_updates)
        self.window_tokens, self.window_start, self.window_loss = 0, time.monotonic(), []

    def validate(self) -> bool:
        """Validate (rank 0), save checkpoints, step the plateau schedule; True when early stopping says stop.

        Every process receives rank 0's validation metric, so schedules and early stopping agree.
        """
        train, progress = self.train, self.progress
        figures = {}
        if self.ctx.is_main:
            batches = evaluation_batches(self.splits["valid"], self.valid_sizes, batch_tokens=train.batch_tokens)
            figures = validate_model(self.model, self.splits["valid"], batches, self.src_tok, self.trg_tok,
                                     self.config, self.device)
        value = self.ctx.broadcast(figures.get(train.early_stopping_metric, 0.0))
        is_best = improved(train.early_stopping_metric, value, progress.best)
        progress.best = value if is_best else progress.best
        progress.bad_validations = 0 if is_best else progress.bad_validations + 1
        progress.scores[progress.step] = value
        if self.ctx.is_main:
            lr = self.optimizer.param_groups[0]["lr"]
            self.metrics.write("valid", step=progress.step, epoch=progress.epoch, lr=lr, best=is_best, **figures)
            log.info("valid step %d: loss %.3f, ppl %.2f, BLEU %.2f%s", progress.step, figures["loss"],
                     figures["ppl"], figures["bleu"], " (best)" if is_best else "")
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(value)
        self.save(snapshot=train.keep_last > 0 or train.keep_best > 0, best=is_best)
        return 0 < train.patience <= progress.bad_validations

    def early_stop_reason(self) -> str:
        return f"no improvement of valid {self.train.early_stopping_metric} in {self.train.patience} validations"

    def save(self, *, snapshot: bool = False, best: bool = False) -> None:
        """Write last.pt (and a step checkpoint, best.pt) atomically, then prune old step checkpoints.

        Collective under torchrun: every process contributes its RNG state; rank 0 writes.
        """
        rng_per_process = self.ctx.gather(rng_state())
        if self.ctx.is_main:
            self.write_checkpoints(rng_per_process, snapshot=snapshot, best=best)
        self.last_save, self.saved_step = time.monotonic(), self.progress.step

    def write_checkpoints(self, rng_per_process: list[dict[str, Any]], *, snapshot: bool, best: bool) -> None:
        progress = self.progress
        progress.elapsed = self.elapsed()
        progress.metrics_bytes = self.metrics.path.stat().st_size if self.metrics.path.exists() else 0
        last = self.checkpoints / "last.pt"
        save_checkpoint(last, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None, "progress": vars(progress),
            "rng": rng_per_process, "config": config_to_dict(self.config)})
        if snapshot:
            atomic_copy(last, step_checkpoint_path(self.checkpoints, progress.step))
            prune_step_checkpoints(self.checkpoints, keep_last=self.train.keep_last, keep_best=self.train.keep_best,
                                   scores=progress.scores,
                                   higher_is_better=self.train.early_stopping_metric == "bleu")
        if best:
            atomic_copy(last, self.checkpoints / "best.pt")

    def stop(self) -> None:
        """Save unless the current update is already saved, then raise :class:`Interrupted` (all processes)."""
        if self.saved_step != self.progress.step or not (self.checkpoints / "last.pt").exists():
            self.save()
        name = self.signals.received or "a signal to another process"
        raise Interrupted(name, self.progress.step, self.checkpoints / "last.pt", is_main=self.ctx.is_main)
