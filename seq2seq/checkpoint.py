"""Atomic files and checkpoints: a crash or kill during a save never leaves a half-written file behind.

Every write goes to a temporary file in the destination's directory, is flushed and fsync'ed, then renamed
over the destination (rename is atomic on POSIX within one file system).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from seq2seq.errors import UserError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialize ``state`` with torch.save and write it atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; a missing or corrupt file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist. Train a model first (seq2seq train CONFIG).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise UserError(f"checkpoint {path} is truncated or corrupt and cannot be loaded ({error}).") from None


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (the directory entry), where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
