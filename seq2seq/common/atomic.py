"""Atomic file writes: a crash or kill during a write never leaves a half-written file behind.

Every write goes to a temporary file in the destination's directory, is flushed and fsync'ed, then renamed
over the destination (rename is atomic on POSIX within one file system). Config, tokenizer, prepared-data
and plotting code write through here, without importing torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file handle whose contents replace ``path`` atomically when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(source: Path, path: Path) -> None:
    """Replace ``path`` with a copy of ``source`` atomically."""
    with atomic_file(path) as handle, open(source, "rb") as original:
        shutil.copyfileobj(original, handle, 1 << 22)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files left by a save that was killed before its rename (the target is intact)."""
    stale = [path for path in Path(directory).glob(".*.tmp") if path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


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
