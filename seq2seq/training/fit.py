"""Setting a training run up: a new model directory or the state of ``--resume``, the data, the model, the
optimizer and the reporters; then :class:`seq2seq.training.trainer.Trainer` runs it and
:mod:`seq2seq.training.finish` scores it.

Everything that decides the next update lives in the checkpoint (see :mod:`seq2seq.training.run_state`), so a run
killed at any point and resumed from ``checkpoints/last.pt`` makes the same updates, bit for bit, as one
that never stopped.

Under torchrun the same code trains data-parallel (see :mod:`seq2seq.training.distributed`): every process runs the
loop on its share of each batch, and rank 0 alone validates, reports and writes files.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from seq2seq.common.atomic import remove_stale_temporaries
from seq2seq.common.log_setup import setup_logging, stop_logging_to_file
from seq2seq.common.model_dir import ModelDir
from seq2seq.config import Config, save_config
from seq2seq.data.dataset import prepare_data
from seq2seq.data.prepare import is_prepared_data, prepared_dir
from seq2seq.errors import UserError
from seq2seq.model.network import Seq2Seq, build_model, count_parameters
from seq2seq.training.context import RunContext
from seq2seq.training.distributed import Distributed, mixed_seed, setup
from seq2seq.training.finish import finish_run
from seq2seq.training.moving_average import MovingAverage
from seq2seq.training.optimization import Scheduler, make_optimizer, make_scheduler
from seq2seq.training.reporters import MetricsFile, ProgressBar, Reporter, Reporters, drop_torn_tail
from seq2seq.training.run_state import Progress, check_compatible, load_resume_checkpoint, set_rng_state
from seq2seq.training.trainer import Trainer

log = logging.getLogger(__name__)


def fit(config: Config, *, overwrite: bool = False, resume: bool = False, resume_from: str | None = None,
        config_source: str = "the config") -> dict[str, float]:
    """Train a model as configured (or continue a stopped run); returns valid and, if configured, test BLEU.

    Under torchrun this joins the job's process group first; rank 0 returns the figures, the others {}.
    """
    job = setup(config.training)
    try:
        return _fit(config, job, overwrite=overwrite, resume=resume or resume_from is not None,
                    resume_from=resume_from, config_source=config_source)
    finally:
        job.close(wait=False)  # after an error other processes may never arrive; torchrun ends them
        stop_logging_to_file()


def _fit(config: Config, job: Distributed, *, overwrite: bool, resume: bool, resume_from: str | None,
         config_source: str) -> dict[str, float]:
    settings = config.training
    model_dir = Path(settings.model_dir)
    if settings.tensorboard:  # every process finds out, before any work (only rank 0 would write events)
        from seq2seq.training.tensorboard_log import require_tensorboard

        require_tensorboard()
    state, checkpoint_path = open_model_dir(config, job, overwrite=overwrite, resume=resume,
                                            resume_from=resume_from, config_source=config_source)
    seed_everything(settings.seed)  # the same initial weights in every process
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    if job.is_main:  # rank 0 prepares the data (or finds it prepared); the others then map the same files
        src_tok, trg_tok, splits = prepare_data(config, model_dir)
    job.barrier()
    if not job.is_main:
        src_tok, trg_tok, splits = prepare_data(config, model_dir, prepare=False)
    model = build_model(config.model, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size,
                        max_source_positions=config.data.max_length + 1)
    model = model.to(job.device)
    log.info("model: %d parameters; vocabularies: source %d, target %d pieces; device %s, %d threads%s",
             count_parameters(model), src_tok.vocab_size, trg_tok.vocab_size, job.device, torch.get_num_threads(),
             f"; {job.world_size} processes" if job.enabled else "")
    optimizer = make_optimizer(model, config)
    scheduler, step_at = make_scheduler(optimizer, config)
    average = MovingAverage(model, settings.ema_decay) if settings.ema_decay and job.is_main else None
    progress = Progress()
    if job.enabled:
        torch.manual_seed(mixed_seed(job.rank, settings.seed))  # distinct dropout masks in each process
    if state is not None:
        progress = restore(state, model, average, optimizer, scheduler, ModelDir(model_dir).metrics, job)
        log.info("resuming from %s: update %d, epoch %d, batch %d of the epoch", checkpoint_path, progress.step,
                 progress.epoch + 1, progress.batch_in_epoch)
    reporter = make_reporters(config, job, progress, resumed=state is not None)
    run = RunContext(config, ModelDir(model_dir), splits, src_tok, trg_tok, job.device, reporter, progress)
    trainer = Trainer(run, job, model, optimizer, scheduler, step_at, average=average)
    try:
        stop_reason = trainer.run()
        log.info("training stopped: %s after %d updates, %.1f minutes", stop_reason.describe(config.training),
                 progress.step, trainer.elapsed() / 60)
        trainer.close()
        job.close()  # all processes leave together; the final scoring below needs no other process
        if not job.is_main:
            return {}
        return finish_run(model, run)
    finally:
        reporter.close()


def open_model_dir(config: Config, job: Distributed, *, overwrite: bool, resume: bool, resume_from: str | None,
                   config_source: str) -> tuple[dict[str, Any] | None, Path | None]:
    """Start a run in a new model directory, or load the checkpoint to resume from; start the logs.

    Returns the training state to resume from and its path, or (None, None) for a new run.
    """
    model_dir = Path(config.training.model_dir)
    state, checkpoint_path = None, None
    if elastic_restart() and ModelDir(model_dir).last.is_file():
        resume, resume_from, overwrite = True, None, False  # torchrun --max-restarts: continue, never start over
    if resume:
        if overwrite:
            raise UserError("--resume and --overwrite contradict each other: pass one of them.")
        state, checkpoint_path = load_resume_checkpoint(model_dir, resume_from)
        check_compatible(state["config"], config, source=config_source)
    elif job.is_main:
        prepare_model_dir(config, overwrite=overwrite)
    job.barrier()
    setup_logging(model_dir if job.is_main else None, level=logging.INFO if job.is_main else logging.ERROR)
    if job.is_main:
        for stale in remove_stale_temporaries(ModelDir(model_dir).checkpoints):
            log.info("removed %s, left by a save that was interrupted (the checkpoint it was replacing is "
                     "intact)", stale)
        save_config(config, ModelDir(model_dir).config)
    return state, checkpoint_path


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
        if not ModelDir(model_dir).config.is_file():
            raise UserError(f"model directory {model_dir} is not empty and holds no config.yaml, so it is not a "
                            "model directory; --overwrite deletes only model directories. Choose another "
                            "training.model_dir.")
        for entry in entries:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    ModelDir(model_dir).checkpoints.mkdir(parents=True, exist_ok=True)
    return model_dir


def elastic_restart() -> bool:
    """True when torchrun restarted the job's processes after a failure (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def restore(state: dict[str, Any], model: Seq2Seq, average: MovingAverage | None, optimizer: torch.optim.Optimizer,
            scheduler: Scheduler | None, metrics_path: Path, job: Distributed) -> Progress:
    """Load a training state into fresh objects; cut metrics.jsonl back to what the checkpoint had seen.

    A run with a moving average saved the average as ``model`` and the weights that train as
    ``training_model``; a run that turns the average on at a resume starts it from the weights.
    """
    model.load_state_dict(state.get("training_model", state["model"]))
    if average is not None:
        average.model.load_state_dict(state["model"] if "training_model" in state else model.state_dict())
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    progress = Progress(**state["progress"])
    if job.is_main and metrics_path.exists():
        if metrics_path.stat().st_size > progress.metrics_bytes:
            with open(metrics_path, "r+b") as handle:  # events after the checkpoint will be written again
                handle.truncate(progress.metrics_bytes)
        if torn := drop_torn_tail(metrics_path):
            log.warning("%s ended in a damaged line (%d bytes, as a power loss leaves it); dropped it",
                        metrics_path, torn)
    rng_per_process = state["rng"]  # one state per process of the run that saved it
    if isinstance(rng_per_process, dict):
        rng_per_process = [rng_per_process]
    if len(rng_per_process) == job.world_size:
        set_rng_state(rng_per_process[job.rank])  # last: nothing after this may draw random numbers
    else:
        log.warning("the checkpoint was written by %d processes and this run has %d: the batches continue "
                    "where they stopped, but dropout draws differ from an uninterrupted run",
                    len(rng_per_process), job.world_size)
        torch.manual_seed(mixed_seed(progress.step, job.rank))
    return progress


def make_reporters(config: Config, job: Distributed, progress: Progress, *, resumed: bool) -> Reporter:
    """metrics.jsonl, the progress bar and, if configured, TensorBoard; under torchrun, rank 0 alone reports."""
    if not job.is_main:
        return Reporters([])
    layout = ModelDir(config.training.model_dir)
    reporters: list[Reporter] = [MetricsFile(layout.metrics, elapsed=progress.elapsed), ProgressBar()]
    if config.training.tensorboard:
        from seq2seq.training.tensorboard_log import TensorBoard  # an optional extra: imported only when asked for

        # after a resume, the events of updates after the checkpoint are written again: purge the old ones
        reporters.append(TensorBoard(layout.tensorboard, purge_step=progress.step + 1 if resumed else None))
    return Reporters(reporters)
