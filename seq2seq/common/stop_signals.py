"""Stopping a run on request: the first SIGINT or SIGTERM asks training to stop after the current update.

The trainer then saves ``checkpoints/last.pt`` and raises :class:`Interrupted`; ``seq2seq train --resume``
continues from it.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any


class Interrupted(Exception):
    """Training stopped on SIGINT or SIGTERM after saving ``checkpoint``."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path, *, is_main: bool = True):
        super().__init__(f"{signal_name} at update {step}")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint
        self.is_main = is_main  # under torchrun every process stops; rank 0 reports it


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
