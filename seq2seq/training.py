"""The pieces of training: one update (``train_step``), validation (``evaluate_loss``, ``validate``), and the
optimizer and learning-rate schedule. :mod:`seq2seq.trainer` runs them in order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Any

import torch

from seq2seq.batching import Batch
from seq2seq.config import Config
from seq2seq.dataset import Split
from seq2seq.loss import output_loss
from seq2seq.metrics import bleu
from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import Tokenizer
from seq2seq.translator import SearchOptions, translate_texts

AUTOCAST_TYPES = {"none": None, "bf16": torch.bfloat16}


class BudgetSchedule:
    """Linear warm-up, a constant rate, then linear decay to zero at the end of the training budget.

    ``decay_fraction`` is the share of the budget the decay takes: 1.0 decays from the start (Li, Yumer &
    Ramanan, "Budgeted Training", ICLR 2020: under a fixed budget this beats step and plateau schedules);
    smaller values hold the peak rate first and cool down at the end ("warmup-stable-decay"; Hägele et al.
    2024 find a cool-down over the last 20% as good as a cosine schedule). The budget is ``max_steps``
    updates and/or ``max_minutes`` of training time (validation included), and the rate follows whichever
    is used up faster, so a time-limited run spends its last updates at small rates instead of being cut
    off at the peak. The rate is a function of the step and the training clock
    alone: the schedule keeps no state, and a resumed run continues it from the saved clock. With a time
    budget the rate depends on how fast updates run, so resuming repeats an uninterrupted run only up to
    that timing; with ``max_steps`` alone it is exact.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, peak: float, warmup_steps: int, max_steps: int,
                 max_seconds: float, decay_fraction: float = 1.0):
        self.optimizer, self.peak, self.warmup_steps = optimizer, peak, warmup_steps
        self.decay_fraction = decay_fraction
        self.max_steps, self.max_seconds = max_steps, max_seconds
        self.set(step=0, elapsed=0.0)

    def rate(self, step: int, elapsed: float) -> float:
        """The rate of update ``step + 1``, after ``step`` updates and ``elapsed`` seconds of training."""
        used = max(step / self.max_steps if self.max_steps else 0.0,
                   elapsed / self.max_seconds if self.max_seconds else 0.0)
        warm = min((step + 1) / self.warmup_steps, 1.0) if self.warmup_steps else 1.0
        return self.peak * max(min(warm, 1.0, (1.0 - used) / self.decay_fraction), 0.0)

    def set(self, *, step: int, elapsed: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate(step, elapsed)

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing to save: the rate follows from Progress (step, elapsed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


Scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau | torch.optim.lr_scheduler.LambdaLR | BudgetSchedule


@functools.cache
def autocast_supported(device_type: str, dtype: torch.dtype) -> bool:
    """Whether this machine runs our layers under autocast to ``dtype``.

    On CPUs without AVX-512 (e.g. AVX2-only ones) oneDNN has no bfloat16 LSTM kernel and an unpacked LSTM
    call fails with "could not create a primitive descriptor"; a tiny probe finds out before training does.
    """
    lstm = torch.nn.LSTM(4, 4, batch_first=True).to(device_type)
    try:
        with torch.autocast(device_type, dtype=dtype):
            lstm(torch.zeros(1, 2, 4, device=device_type))
    except RuntimeError:
        return False
    return True


def train_step(model: torch.nn.Module, batch: Batch, optimizer: torch.optim.Optimizer, *, label_smoothing: float,
               clip_grad_norm: float, autocast: torch.dtype | None = None, step_loop: bool = False,
               normalizer: float | None = None) -> float | None:
    """One update on one batch; returns the batch's mean loss per target token, or None if the update was skipped.

    The gradient is that of the summed loss divided by ``normalizer`` (default: the batch's token count;
    data-parallel training passes the global batch's count over the number of processes).
    An update is skipped, leaving the weights as they were, when the gradient is not finite (a NaN or
    infinite loss makes it so): one bad batch or an overflow must not turn every weight into NaN. The
    decision depends only on the gradient, which data-parallel processes share, so they all decide alike.
    With ``autocast`` (torch.bfloat16) the forward pass runs matrix products in that type while the
    weights, gradients, optimizer state and the loss stay in float32.
    """
    model.train()
    device_type = batch.src.device.type
    with torch.autocast(device_type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        features, _ = model(batch.src, batch.src_lengths, batch.trg_in, step_loop=step_loop,
                            project=False)
        loss, num_tokens = output_loss(features, unwrap(model).decoder.output, batch.trg_out,
                                       label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    (loss / (normalizer or num_tokens)).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm if clip_grad_norm > 0 else math.inf)
    if not torch.isfinite(grad_norm):
        optimizer.zero_grad(set_to_none=True)
        return None
    optimizer.step()
    return loss.item() / num_tokens


def unwrap(model: torch.nn.Module) -> Seq2Seq:
    """The Seq2Seq inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


@torch.inference_mode()
def evaluate_loss(model: Seq2Seq, batches: Iterable[Batch], device: torch.device) -> float:
    """Mean cross-entropy per target token (no label smoothing), in nats."""
    model.eval()
    total, tokens = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        features, _ = model(batch.src, batch.src_lengths, batch.trg_in, project=False)
        loss, num_tokens = output_loss(features, model.decoder.output, batch.trg_out, label_smoothing=0.0)
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


def improved(metric: str, value: float, best: float | None) -> bool:
    """BLEU is better when higher; loss and perplexity when lower."""
    if best is None:
        return True
    return value > best if metric == "bleu" else value < best


def validate(model: Seq2Seq, split: Split, batches: Iterable[Batch], src_tok: Tokenizer, trg_tok: Tokenizer,
             config: Config, device: torch.device) -> dict[str, float]:
    loss = evaluate_loss(model, batches, device)
    bleu_score, _ = score_split(model, split, src_tok, trg_tok, config, device)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": bleu_score}


def make_optimizer(model: Seq2Seq, config: Config) -> torch.optim.Optimizer:
    """Adam or AdamW in its fused form: one kernel updates every parameter, where the default form runs some
    ten operations per parameter tensor (on two CPU cores, 70 ms instead of 10 ms per update for 12M weights)."""
    cls = torch.optim.AdamW if config.training.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=config.training.learning_rate, weight_decay=config.training.weight_decay,
               fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, config: Config) -> Scheduler | None:
    """The per-validation plateau scheduler, the per-step warm-up/decay scheduler, the budget schedule (set
    before every update from the step and the clock), or None."""
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
    if train.scheduler == "budget":
        return BudgetSchedule(optimizer, peak=train.learning_rate, warmup_steps=train.warmup_steps,
                              max_steps=train.max_steps, max_seconds=train.max_minutes * 60,
                              decay_fraction=train.decay_fraction)
    return None
