"""One update: forward pass (optionally under bf16 autocast), loss, backward, clipping, optimizer step."""

from __future__ import annotations

import functools
import math

import torch

from seq2seq.data.batching import Batch
from seq2seq.model.loss import output_loss
from seq2seq.model.network import Seq2Seq

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
    inner = getattr(model, "module", model)
    if not isinstance(inner, Seq2Seq):
        raise TypeError(f"train_step trains a Seq2Seq, alone or in DistributedDataParallel, not {type(inner).__name__}")
    return inner
