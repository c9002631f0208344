"""Run records: ``train.log`` (human-readable) and ``metrics.jsonl`` (one JSON object per event)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm


class _TqdmHandler(logging.StreamHandler):
    """Log to stderr without breaking an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


def setup_logging(model_dir: Path | None = None, *, level: int = logging.INFO) -> None:
    """Messages to stderr and, when given a model directory, appended to its train.log."""
    root = logging.getLogger("seq2seq")
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = _TqdmHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    if model_dir is not None:
        file_handler = logging.FileHandler(model_dir / "train.log", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(file_handler)


class MetricsWriter:
    """Append one JSON object per event, each flushed at once so that a crash loses no finished event.

    ``time`` is seconds since the run started; ``elapsed`` carries it over from the sessions before a resume.
    """

    def __init__(self, path: Path, *, elapsed: float = 0.0, enabled: bool = True):
        self.path = path
        self.start = time.monotonic() - elapsed
        self.enabled = enabled  # in data-parallel training only rank 0 writes

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": round(time.monotonic() - self.start, 3), **fields}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
