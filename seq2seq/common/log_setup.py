"""Log messages: to stderr (without breaking a progress bar) and, during training, to ``train.log``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm import tqdm

from seq2seq.common.model_dir import ModelDir


class _TqdmHandler(logging.StreamHandler):
    """Log to stderr without breaking an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


class _ConsoleFormatter(logging.Formatter):
    """The message alone, with "warning: " or "error: " in front where the level is not plain information
    (train.log writes the level name in its own column, so the messages themselves never carry it)."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING else message


def setup_logging(model_dir: Path | None = None, *, level: int = logging.INFO) -> None:
    """Messages to stderr and, when given a model directory, appended to its train.log."""
    root = logging.getLogger("seq2seq")
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = _TqdmHandler()
    console.setFormatter(_ConsoleFormatter("%(message)s"))
    root.addHandler(console)
    if model_dir is not None:
        file_handler = logging.FileHandler(ModelDir(model_dir).log, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(file_handler)


def stop_logging_to_file() -> None:
    """Close train.log's handler, so that what a process logs after training (a translator, a server started in
    the same process) does not end up in the run's log."""
    root = logging.getLogger("seq2seq")
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
