"""The pieces of training: one update (``train_step``), validation (``evaluate_loss``, ``validate``), and the
optimizer and learning-rate schedule. :mod:`seq2seq.trainer` runs them in order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import torch

from seq2seq.batching import Batch
from seq2seq.config import Config
from seq2seq.dataset import Split
from seq2seq.loss import output_loss
from seq2seq.metrics import bleu
from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import Tokenizer
from seq2seq.translator import SearchOptions, translate_texts

Scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau | torch.optim.lr_scheduler.LambdaLR
AUTOCAST_TYPES = {"none": None, "bf16": torch.bfloat16}


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
