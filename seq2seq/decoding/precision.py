"""The number format a trained model decodes in: fp32 as trained, bf16, or int8 dynamic quantization.

Training keeps float32 weights (bf16 only under autocast); decoding may trade exactness for speed:

- ``bf16``: every weight and activation in bfloat16 (8 bits of mantissa), on CPUs whose oneDNN has bfloat16
  kernels (AVX-512 BF16 or AMX) and on GPUs. The next-token log-softmax and the search's scores stay float32,
  so ranking and length penalties mean what they mean in float32.
- ``int8``: PyTorch's dynamic quantization of every LSTM and Linear layer (int8 weights, activations quantized
  on the fly per batch), CPU only. A sentence's result can depend slightly on its batchmates, whose values set
  the activation scales.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable

import torch
from torch import nn

from seq2seq.errors import UserError
from seq2seq.model.network import Seq2Seq

log = logging.getLogger(__name__)


def with_precision(model: Seq2Seq, precision: str, device: torch.device, *,
                   float_output: bool = False) -> Seq2Seq:
    """``model`` (in eval mode) converted to ``precision`` (a key of :data:`PRECISIONS`) for decoding on ``device``.

    ``float_output`` keeps int8's output layer in floating point, for a vocabulary shortlist to pick its rows.
    """
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    return PRECISIONS[precision](model.eval(), device, float_output)


def as_trained(model: Seq2Seq, device: torch.device, float_output: bool) -> Seq2Seq:
    """fp32: the weights as trained."""
    return model


def in_bf16(model: Seq2Seq, device: torch.device, float_output: bool) -> Seq2Seq:
    """bf16 where this machine has a bfloat16 LSTM kernel; elsewhere float32, with a warning (as training's
    ``autocast: bf16`` does)."""
    if not bf16_supported(device.type):
        log.warning("bf16 decoding is not supported on this %s (oneDNN has no bfloat16 LSTM kernel without "
                    "AVX-512): decoding in float32 instead", device.type)
        return model
    return model.to(torch.bfloat16)


def in_int8(model: Seq2Seq, device: torch.device, float_output: bool) -> Seq2Seq:
    """int8 dynamic quantization, on the CPU only."""
    if device.type != "cpu":
        raise UserError(f"int8 decoding runs on the CPU only (PyTorch's dynamic quantization), not on "
                        f"{device.type}; use bf16 there.")
    return quantize_int8(model, float_output=float_output)


Conversion = Callable[[Seq2Seq, torch.device, bool], Seq2Seq]  # (model, device, float_output) → the model to decode
PRECISIONS: dict[str, Conversion] = {"fp32": as_trained, "bf16": in_bf16, "int8": in_int8}


@functools.cache
def bf16_supported(device_type: str) -> bool:
    """Whether a bfloat16 LSTM runs here: oneDNN has no bfloat16 LSTM kernel on CPUs without AVX-512 (the
    call fails with "could not create a primitive descriptor"), which a tiny probe finds out."""
    lstm = nn.LSTM(4, 4, batch_first=True).to(device_type, torch.bfloat16)
    try:
        lstm(torch.zeros(1, 2, 4, device=device_type, dtype=torch.bfloat16))
    except RuntimeError:
        return False
    return True


def quantize_int8(model: Seq2Seq, *, float_output: bool = False) -> Seq2Seq:
    """Dynamic int8 quantization of every LSTM and Linear layer (CPU inference only); with ``float_output`` the
    decoder's output layer stays float32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

        layers: dict = {nn.LSTM: default_dynamic_qconfig, nn.Linear: default_dynamic_qconfig}
        if float_output:
            layers["decoder.output"] = None  # a module name outranks its type
        quantized = quantize_dynamic(model, layers, dtype=torch.qint8)  # a copy, with int8 layers swapped in
    assert isinstance(quantized, Seq2Seq)
    quantized.decoder.reads_lstm_weights = False  # the int8 LSTM keeps no float weights to step with
    quantized.decoder.reads_output_weights = float_output
    return quantized
