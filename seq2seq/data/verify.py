"""Prepared data that verifies itself: what each output file of ``prepare`` must be, and whether it still is.

The manifest's ``files`` section records every file ``prepare`` wrote (token arrays, offsets, sentencepiece
models): its size and SHA-256, computed while it was written, and for an array its dtype and length. A
truncated copy, a file replaced by another split's or a full disk then shows up before anything reads the
arrays, instead of as a NumPy traceback in the middle of training.

Two depths of checking:

- :func:`check_prepared` with ``hashes=False``, at every start: each file exists with its recorded size, each
  array's header gives the recorded dtype and length, offsets start at 0, never decrease and end at the length
  of their token array, and every piece id lies inside its vocabulary. This reads the arrays once, sequentially
  (0.14 s for a split side of 5 million sentences and 50 million ids on a 2-core machine), which is what makes a
  damaged array an error here rather than an index error in the embedding layer later;
- with ``hashes=True`` (``seq2seq prepare CONFIG --verify``) each file's SHA-256 as well, which also catches
  bytes changed in place that stay valid ids.
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from seq2seq.data.arrays import OFFSET_DTYPE

CHUNK = 1 << 24  # array elements checked at a time


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """What the manifest keeps of a written file: its size and SHA-256 (hashed here when not given)."""
    return {"bytes": path.stat().st_size, "sha256": sha256 or file_sha256(path)}


def array_record(path: Path, sha256: str, dtype: np.dtype, length: int, vocab_size: int | None) -> dict[str, Any]:
    """A token or offsets array's record: the file's, plus its dtype and length and, for token ids, the size of
    the vocabulary they index."""
    record = {**file_record(path, sha256), "dtype": np.dtype(dtype).str, "length": length}
    return record if vocab_size is None else {**record, "vocab_size": vocab_size}


def check_prepared(directory: Path, files: dict[str, dict[str, Any]], *, hashes: bool = False,
                   required: Iterable[str] = ()) -> list[str]:
    """What is wrong with the files of a prepared ``directory`` against their manifest ``files`` records, each
    naming its file; empty when everything fits. ``required``: names the manifest must list."""
    if not isinstance(files, dict) or not files:
        return [f"{directory}: its manifest lists no files"]
    problems = [f"{directory / name}: not recorded in the manifest" for name in required if name not in files]
    for name, record in files.items():
        path = directory / name
        try:
            problem = _check_size(path, record)
            if problem is None and "length" in record:
                problem = _check_array(path, record, files.get(name.replace(".offsets.", ".tokens.")))
            if problem is None and hashes and file_sha256(path) != record["sha256"]:
                problem = "its content changed since prepare wrote it (the SHA-256 differs from the manifest's)"
        except (KeyError, TypeError, ValueError):
            problem = "its record in the manifest is damaged"
        except OSError as error:
            problem = f"cannot be read ({error.strerror})"
        if problem is not None:
            problems.append(f"{path}: {problem}")
    return problems


def _check_size(path: Path, record: dict[str, Any]) -> str | None:
    """Missing, or not the size prepare wrote: the cheap check that catches truncation and swapped files."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != record["bytes"]:
        return f"{size:,} bytes where prepare wrote {record['bytes']:,} (cut short, or replaced by another file)"
    return None


def _check_array(path: Path, record: dict[str, Any], tokens: dict[str, Any] | None) -> str | None:
    """The header, and the values that would break training: offsets out of order, ids outside the vocabulary."""
    try:
        array = np.load(path, mmap_mode="r") if record["length"] else np.load(path)  # empty: cannot be mapped
    except (OSError, ValueError, EOFError) as error:
        return f"not a readable .npy array ({error})"
    if not isinstance(array, np.ndarray):  # an .npz archive under an .npy name
        return "not a single .npy array"
    expected = np.dtype(record["dtype"])
    if array.dtype != expected or array.shape != (record["length"],):
        return (f"holds {array.dtype} × {array.shape}, where prepare wrote {expected} × ({record['length']},)")
    try:
        if array.dtype == OFFSET_DTYPE and tokens is not None:
            return _check_offsets(array, tokens["length"])
        if "vocab_size" in record:
            return _check_ids(array, record["vocab_size"])
        return None
    finally:
        _release(array)


def _check_offsets(offsets: np.ndarray, tokens: int) -> str | None:
    """Offsets from 0 to the token array's end, never decreasing (a sentence of negative length breaks batching)."""
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != tokens:
        return f"offsets must run from 0 to the {tokens:,} ids of the token array"
    for start in range(0, len(offsets) - 1, CHUNK):
        steps = np.diff(offsets[start:start + CHUNK + 1])
        if (steps < 0).any():
            return f"offsets decrease at sentence {start + int(np.argmax(steps < 0)):,}"
    return None


def _check_ids(ids: np.ndarray, vocab_size: int) -> str | None:
    """Every id an index of the vocabulary (one outside it would fail in the embedding layer, mid-training)."""
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        if len(chunk) and (int(chunk.max()) >= vocab_size or int(chunk.min()) < 0):
            position = start + int(np.argmax((chunk >= vocab_size) | (chunk < 0)))
            return f"piece id {int(ids[position])} at position {position:,} is outside the vocabulary of {vocab_size}"
    return None


def _release(array: np.ndarray) -> None:
    """Drop this process's mapping of the pages read (they stay in the page cache for training)."""
    mapping = getattr(array, "_mmap", None)
    if mapping is not None:
        mapping.madvise(mmap.MADV_DONTNEED)
