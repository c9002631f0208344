"""How the weights move: the optimizer, and the learning-rate schedules with the moment each one steps."""

from __future__ import annotations

import enum
import math
from typing import Any

import torch

from seq2seq.config import Config


class StepAt(enum.StrEnum):
    """When the training loop steps a schedule."""

    BEFORE_UPDATE = "before_update"  # set from the step and the training clock before every update
    UPDATE = "update"  # stepped after every update
    VALIDATION = "validation"  # stepped after every validation, with the validation metric


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


def make_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    """Adam or AdamW in its fused form: one kernel updates every parameter, where the default form runs some
    ten operations per parameter tensor (on two CPU cores, 70 ms instead of 10 ms per update for 12M weights)."""
    cls = torch.optim.AdamW if config.training.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=config.training.learning_rate, weight_decay=config.training.weight_decay,
               fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, config: Config) -> tuple[Scheduler | None, StepAt | None]:
    """The configured schedule, and when the training loop steps it:

    - ``plateau``: after every validation, with the validation metric (``StepAt.VALIDATION``);
    - ``warmup_decay``: after every update (``StepAt.UPDATE``);
    - ``budget``: set before every update from the step and the training clock (``StepAt.BEFORE_UPDATE``);
    - ``none``: a constant rate, (None, None).
    """
    settings = config.training
    if settings.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if settings.early_stopping_metric.higher_is_better else "min",
            factor=settings.plateau_factor, patience=settings.plateau_patience,
            min_lr=settings.min_learning_rate), StepAt.VALIDATION
    if settings.scheduler == "warmup_decay":
        warmup = max(settings.warmup_steps, 1)
        # Linear warm-up to the peak rate, then decay with the inverse square root of the step (Vaswani et al.).
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))), StepAt.UPDATE
    if settings.scheduler == "budget":
        return BudgetSchedule(optimizer, peak=settings.learning_rate, warmup_steps=settings.warmup_steps,
                              max_steps=settings.max_steps, max_seconds=settings.max_minutes * 60,
                              decay_fraction=settings.decay_fraction), StepAt.BEFORE_UPDATE
    return None, None
