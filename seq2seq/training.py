"""The training loop, as a few functions: ``train_step``, ``evaluate_loss``, ``validate`` and ``fit``.

``fit`` owns the schedule of a run: epochs of token batches, validation every ``validate_every`` updates,
the learning-rate schedule, early stopping, the best/last checkpoints and the final test score.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from seq2seq.batching import Batch, make_batches
from seq2seq.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from seq2seq.config import Config, config_to_dict, save_config
from seq2seq.dataset import Split, prepare_data
from seq2seq.errors import UserError
from seq2seq.logs import MetricsWriter, setup_logging
from seq2seq.metrics import bleu
from seq2seq.model import Seq2Seq, build_model, count_parameters
from seq2seq.tokenizer import PAD_ID, Tokenizer
from seq2seq.translator import SearchOptions, pick_device, translate_texts

log = logging.getLogger(__name__)
Scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau | torch.optim.lr_scheduler.LambdaLR
AUTOCAST_TYPES = {"none": None, "bf16": torch.bfloat16}


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float) -> tuple[torch.Tensor, int]:
    """Summed token cross-entropy (padding ignored) and the number of real tokens: [B, T, V], [B, T]."""
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=PAD_ID,
                           label_smoothing=label_smoothing, reduction="sum")
    return loss, int((targets != PAD_ID).sum())


def train_step(model: Seq2Seq, batch: Batch, optimizer: torch.optim.Optimizer, *, label_smoothing: float,
               clip_grad_norm: float, autocast: torch.dtype | None = None, parallel: bool = True) -> float:
    """One update on one batch; returns the mean loss per target token.

    With ``autocast`` (torch.bfloat16) the forward pass runs matrix products in that type while the
    weights, gradients, optimizer state and the loss stay in float32.
    """
    model.train()
    device_type = batch.src.device.type
    with torch.autocast(device_type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        logits, _ = model(batch.src, batch.src_lengths, batch.trg_in, parallel=parallel)
    loss, num_tokens = sequence_loss(logits, batch.trg_out, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    (loss / num_tokens).backward()
    if clip_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    optimizer.step()
    return loss.item() / num_tokens


@torch.inference_mode()
def evaluate_loss(model: Seq2Seq, batches: list[Batch], device: torch.device) -> float:
    """Mean cross-entropy per target token (no label smoothing), in nats."""
    model.eval()
    total, tokens = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        logits, _ = model(batch.src, batch.src_lengths, batch.trg_in)
        loss, num_tokens = sequence_loss(logits, batch.trg_out, label_smoothing=0.0)
        total, tokens = total + loss.item(), tokens + num_tokens
    return total / max(tokens, 1)


def score_split(model: Seq2Seq, split: Split, src_tok: Tokenizer, trg_tok: Tokenizer, config: Config,
                device: torch.device, *, beam_size: int = 1) -> tuple[float, list[str]]:
    """BLEU of a split (detokenized output vs raw references) and the hypotheses; greedy unless beam_size > 1."""
    options = SearchOptions.from_config(config, beam_size=beam_size)
    translations = translate_texts(model, src_tok, trg_tok, split.sources, options=options, device=device,
                                   max_source_pieces=config.data.max_length)
    hypotheses = [n_best[0].text for n_best in translations]
    return bleu(hypotheses, split.references).score, hypotheses


def validate(model: Seq2Seq, split: Split, batches: list[Batch], src_tok: Tokenizer, trg_tok: Tokenizer,
             config: Config, device: torch.device) -> dict[str, float]:
    loss = evaluate_loss(model, batches, device)
    bleu_score, _ = score_split(model, split, src_tok, trg_tok, config, device)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": bleu_score}


# ---------------------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """Counters of a run, saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    best: float | None = None  # best value of the early-stopping metric so far
    bad_validations: int = 0  # validations since the last improvement
    history: list[dict] = field(default_factory=list)


def improved(metric: str, value: float, best: float | None) -> bool:
    """BLEU is better when higher; loss and perplexity when lower."""
    if best is None:
        return True
    return value > best if metric == "bleu" else value < best


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Seq2Seq, config: Config) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if config.training.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=config.training.learning_rate, weight_decay=config.training.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: Config) -> Scheduler | None:
    """The per-validation plateau scheduler or the per-step warm-up/decay scheduler (or None)."""
    train = config.training
    if train.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if train.early_stopping_metric == "bleu" else "min", factor=train.plateau_factor,
            patience=train.plateau_patience, min_lr=train.min_learning_rate)
    if train.scheduler == "warmup_decay":
        warmup = max(train.warmup_steps, 1)
        # Linear warm-up to the peak rate, then decay with the inverse square root of the step (Vaswani et al.).
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1))))
    return None


def prepare_model_dir(config: Config, *, overwrite: bool) -> Path:
    """Create the model directory; refuse to mix a new run into a previous one."""
    model_dir = Path(config.training.model_dir)
    if model_dir.exists() and any(model_dir.iterdir()):
        if not overwrite:
            raise UserError(f"model directory {model_dir} is not empty. Pass --overwrite to delete it and start "
                            "again, or set training.model_dir to a new directory.")
        if not (model_dir / "config.yaml").is_file():
            raise UserError(f"model directory {model_dir} is not empty and holds no config.yaml, so it is not a "
                            "model directory; --overwrite deletes only model directories. Choose another "
                            "training.model_dir.")
        shutil.rmtree(model_dir)
    (model_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return model_dir


def fit(config: Config, *, overwrite: bool = False) -> dict[str, float]:
    """Train a model as configured; returns the final figures (valid and, if configured, test BLEU)."""
    model_dir = prepare_model_dir(config, overwrite=overwrite)
    setup_logging(model_dir)
    save_config(config, model_dir / "config.yaml")
    train = config.training
    seed_everything(train.seed)
    if train.num_threads:
        torch.set_num_threads(train.num_threads)
    device = pick_device(train.device)
    metrics = MetricsWriter(model_dir / "metrics.jsonl")

    src_tok, trg_tok, splits = prepare_data(config, model_dir)
    model = build_model(config.model, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size).to(device)
    log.info("model: %d parameters; vocabularies: source %d, target %d pieces; device %s, %d threads",
             count_parameters(model), src_tok.vocab_size, trg_tok.vocab_size, device, torch.get_num_threads())
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    valid_batches = make_batches(splits["valid"].examples, batch_tokens=train.batch_tokens, shuffle=False)
    progress = Progress()

    def checkpoint_state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler else None, "progress": progress.__dict__,
                "config": config_to_dict(config)}

    def run_validation() -> bool:
        """Validate, save checkpoints, step the plateau schedule; True when early stopping says stop."""
        figures = validate(model, splits["valid"], valid_batches, src_tok, trg_tok, config, device)
        value = figures[train.early_stopping_metric]
        is_best = improved(train.early_stopping_metric, value, progress.best)
        progress.best = value if is_best else progress.best
        progress.bad_validations = 0 if is_best else progress.bad_validations + 1
        lr = optimizer.param_groups[0]["lr"]
        metrics.write("valid", step=progress.step, epoch=progress.epoch, lr=lr, best=is_best, **figures)
        log.info("valid step %d: loss %.3f, ppl %.2f, BLEU %.2f%s", progress.step, figures["loss"],
                 figures["ppl"], figures["bleu"], " (best)" if is_best else "")
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(value)
        save_checkpoint(model_dir / "checkpoints" / "last.pt", checkpoint_state())
        if is_best:
            save_checkpoint(model_dir / "checkpoints" / "best.pt", checkpoint_state())
        return 0 < train.patience <= progress.bad_validations

    start = time.monotonic()
    stop_reason = _train_epochs(model, optimizer, scheduler, splits["train"], config, device, progress, metrics,
                                run_validation, start)
    log.info("training stopped: %s after %d steps, %.1f minutes", stop_reason, progress.step,
             (time.monotonic() - start) / 60)
    return _final_report(model, model_dir, splits, src_tok, trg_tok, config, device, metrics, progress)


def _train_epochs(model: Seq2Seq, optimizer: torch.optim.Optimizer, scheduler: Scheduler | None, split: Split,
                  config: Config, device: torch.device, progress: Progress, metrics: MetricsWriter,
                  run_validation: Callable[[], bool], start: float) -> str:
    """Run epochs until a limit or early stopping; returns why training stopped."""
    train = config.training
    per_step_scheduler = isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    deadline = start + train.max_minutes * 60 if train.max_minutes else math.inf
    while progress.epoch < train.max_epochs:
        batches = make_batches(split.examples, batch_tokens=train.batch_tokens, seed=train.seed,
                               epoch=progress.epoch)
        bar = tqdm(batches, desc=f"epoch {progress.epoch + 1}", leave=False, disable=None, dynamic_ncols=True)
        window_tokens, window_start, window_loss = 0, time.monotonic(), []
        for batch in bar:
            loss = train_step(model, batch.to(device), optimizer, label_smoothing=train.label_smoothing,
                              clip_grad_norm=train.clip_grad_norm, autocast=AUTOCAST_TYPES[train.autocast])
            if per_step_scheduler:
                scheduler.step()
            progress.step += 1
            window_tokens += batch.num_target_tokens
            window_loss.append(loss)
            if progress.step % train.log_every == 0:
                speed = window_tokens / max(time.monotonic() - window_start, 1e-9)
                lr = optimizer.param_groups[0]["lr"]
                mean_loss = sum(window_loss) / len(window_loss)
                bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{speed:.0f}", lr=f"{lr:.2e}")
                metrics.write("train", step=progress.step, epoch=progress.epoch, loss=mean_loss, lr=lr,
                              tokens_per_second=speed)
                window_tokens, window_start, window_loss = 0, time.monotonic(), []
            out_of_time = time.monotonic() >= deadline
            out_of_steps = 0 < train.max_steps <= progress.step
            if progress.step % train.validate_every == 0 or out_of_time or out_of_steps:
                if run_validation():
                    return f"no improvement of valid {train.early_stopping_metric} in {train.patience} validations"
                if out_of_time:
                    return f"time limit of {train.max_minutes} minutes reached"
                if out_of_steps:
                    return f"step limit of {train.max_steps} reached"
                window_start = time.monotonic()  # do not count validation time as training speed
        bar.close()
        progress.epoch += 1
        if progress.step % train.validate_every != 0 and run_validation():
            return f"no improvement of valid {train.early_stopping_metric} in {train.patience} validations"
    return f"epoch limit of {train.max_epochs} reached"


def _final_report(model: Seq2Seq, model_dir: Path, splits: dict[str, Split], src_tok: Tokenizer, trg_tok: Tokenizer,
                  config: Config, device: torch.device, metrics: MetricsWriter, progress: Progress) -> dict[str, float]:
    """Reload the best checkpoint; score valid and test (if configured) with the configured beam size."""
    model.load_state_dict(load_checkpoint(model_dir / "checkpoints" / "best.pt")["model"])
    beam = config.decoding.beam_size
    report = {}
    for name in ("valid", "test"):
        if name in splits:
            report[f"{name}_bleu"], hypotheses = score_split(model, splits[name], src_tok, trg_tok, config, device,
                                                             beam_size=beam)
            atomic_write_text(model_dir / f"{name}.hyp", "".join(h + "\n" for h in hypotheses))
    metrics.write("final", step=progress.step, beam_size=beam, **report)
    search_name = "greedy" if beam == 1 else f"beam {beam}"
    for key, value in report.items():
        log.info("%s (%s, best checkpoint): %.2f", key.replace("_bleu", " BLEU"), search_name, value)
    return report
