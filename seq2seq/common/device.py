"""Where a model computes: the one place that turns a configured device name into a ``torch.device``."""

from __future__ import annotations

import torch

from seq2seq.errors import UserError


def pick_device(name: str, *, local_rank: int | None = None, key: str = "device") -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cpu`` and ``cuda`` as named.

    Under torchrun ``local_rank`` picks this process's GPU (``cuda:LOCAL_RANK``). ``key`` names the setting
    in the error raised when CUDA is asked for and absent (``training.device``, or ``device`` of
    ``Translator.from_dir``).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{key} is 'cuda' but PyTorch sees no CUDA device; use cpu or auto.")
    if name == "cuda" and local_rank is not None:
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)
