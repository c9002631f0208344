"""An exponential moving average of the weights (Polyak averaging), kept beside the weights that train.

After every update ``average = decay * average + (1 - decay) * weights``. The average is a smoother model
than the last update's weights, which still jitter with the noise of the last batches: OpenNMT-py
(``average_decay``), fairseq (``--ema``) and Marian (``exponential-smoothing``) offer it for that reason.
Here it is what validation scores, what selects ``best.pt`` and what every checkpoint's ``model`` holds, so
translating, averaging and serving use it unchanged; the weights that train are saved beside it (the
checkpoint's ``training_model``) for resuming.
"""

from __future__ import annotations

import copy
from typing import Generic, TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)


def decay_at(decay: float, step: int) -> float:
    """The decay for update ``step`` (1 for the first update): ``decay``, but lower for the first updates.

    The average starts at the initial weights, and with a decay of 0.999 these would still weigh e^-1 after
    a thousand updates. So, as TensorFlow's ExponentialMovingAverage with ``num_updates`` does, the decay is
    at most (1 + n) / (10 + n) after n earlier updates: 0.1 for the first, 0.5 after 8, 0.99 after 890.
    """
    return min(decay, step / (step + 9))


class MovingAverage(Generic[M]):
    """The moving average of ``model``'s weights, held as a second model of the same shape (``self.model``)."""

    def __init__(self, model: M, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the decay of a moving average is in (0, 1), not {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Move the average towards ``model``'s weights after update ``step`` (counting from 1)."""
        averaged: list[torch.Tensor] = list(self.model.parameters())
        current = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(averaged, current, 1.0 - decay_at(self.decay, step))  # a + w (b - a)
