"""Token arrays on disk: every sentence of a split side as one flat ``.npy`` of ids plus an offsets array.

Sentence ``i`` is ``tokens[offsets[i]:offsets[i + 1]]``. Both files are opened with ``mmap_mode="r"``, so a
corpus of millions of sentences costs no memory of its own: pages come from the page cache, and every
process of a torchrun job shares that one copy.

Batches pick sentences at random, and those are read with ``pread`` (:meth:`TokenArray.take`), not through
the map: Linux maps a whole large folio of the page cache (up to 2 MB) into the process on each page fault,
so the 190 random sentences of one training batch made about 200 MB of the corpus resident in the process
(measured on a 5M-pair corpus). Sequential reads (the length arrays) go through the map, in chunks, and
:meth:`TokenArray.release` drops those pages from the process again (they stay in the page cache).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import mmap
import os
from pathlib import Path

import numpy as np

OFFSET_DTYPE = np.int64


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (half the disk and page cache of int32), else int32."""
    return np.dtype(np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32)


def open_array(path: Path) -> np.ndarray:
    """A read-only memory map of an ``.npy`` file (an empty array is read normally: it cannot be mapped)."""
    array = np.load(path, mmap_mode="r")
    return array if array.size else np.load(path)


class TokenArray:
    """The sentences of one split side, memory-mapped: ``len(array)``, ``array[i]`` → ids of sentence i."""

    def __init__(self, prefix: Path):
        self.tokens = open_array(Path(f"{prefix}.tokens.npy"))
        self.offsets = open_array(Path(f"{prefix}.offsets.npy"))
        self._tokens_file = open(f"{prefix}.tokens.npy", "rb")  # noqa: SIM115 - lives as long as the array
        self._offsets_file = open(f"{prefix}.offsets.npy", "rb")  # noqa: SIM115

    def take(self, indices: np.ndarray) -> list[np.ndarray]:
        """The ids of the given sentences, read with ``pread``: nothing of the corpus is mapped into the process."""
        if not isinstance(self.tokens, np.memmap) or not isinstance(self.offsets, np.memmap):
            return [np.asarray(self[int(i)]) for i in indices]  # an empty split, loaded normally
        out = []
        for i in indices:
            start, end = _pread(self._offsets_file, self.offsets, int(i), 2)
            out.append(_pread(self._tokens_file, self.tokens, int(start), int(end - start)))
        return out

    def take_flat(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ids of the given sentences (``indices`` sorted) end to end [L], and each one's length [N]: read
        with ``pread`` as one span from the first sentence to the last, for reading many nearby sentences at once
        (a sample of every k-th sentence reads k times what it keeps)."""
        if len(indices) == 0:
            return np.empty(0, dtype=self.tokens.dtype), np.empty(0, dtype=np.int64)
        first, last = int(indices[0]), int(indices[-1])
        if isinstance(self.offsets, np.memmap) and isinstance(self.tokens, np.memmap):
            offsets = _pread(self._offsets_file, self.offsets, first, last - first + 2)
            span = _pread(self._tokens_file, self.tokens, int(offsets[0]), int(offsets[-1] - offsets[0]))
        else:  # an empty split, loaded normally
            offsets, span = np.asarray(self.offsets[first:last + 2]), np.asarray(self.tokens)[self.offsets[first]:]
        starts = offsets[indices - first] - offsets[0]  # [N] where each sentence begins in the span
        lengths = (offsets[indices - first + 1] - offsets[indices - first]).astype(np.int64)
        return span[_ranges(starts, lengths)], lengths

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index]:self.offsets[index + 1]]

    def lengths(self) -> np.ndarray:
        """[N] number of pieces of each sentence, read in chunks and released, as int32."""
        out = np.empty(len(self), dtype=np.int32)
        chunk = 1 << 20
        for start in range(0, len(self), chunk):
            out[start:start + chunk] = np.diff(self.offsets[start:start + chunk + 1])
        self.release()
        return out

    def release(self) -> None:
        """Drop this process's mapping of the pages read so far (the kernel keeps them cached)."""
        for array in (self.tokens, self.offsets):
            mapping = getattr(array, "_mmap", None)
            if mapping is not None:
                mapping.madvise(mmap.MADV_DONTNEED)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(start, start + length)`` for each pair, without a Python loop."""
    ends = np.cumsum(lengths)
    return np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(starts - (ends - lengths), lengths)


def _pread(file, array: np.memmap, start: int, count: int) -> np.ndarray:
    """``array[start:start + count]`` read from ``file`` at the array's byte offset, without touching the map."""
    itemsize = array.dtype.itemsize
    data = os.pread(file.fileno(), count * itemsize, array.offset + start * itemsize)
    return np.frombuffer(data, dtype=array.dtype)


class TokenArrayWriter:
    """Appends encoded sentences to ``PREFIX.tokens.npy`` / ``PREFIX.offsets.npy`` without holding them.

    Ids stream into raw files as they come; :meth:`close` writes the ``.npy`` files (header, then the raw
    bytes copied over), so no more than one chunk of sentences is ever in memory.
    """

    def __init__(self, prefix: Path, dtype: np.dtype):
        self.prefix, self.dtype = Path(prefix), np.dtype(dtype)
        self.tokens_raw = open(f"{prefix}.tokens.raw", "wb")
        self.offsets_raw = open(f"{prefix}.offsets.raw", "wb")
        self.end = 0  # tokens written so far
        self.count = 0  # sentences written so far
        np.asarray([0], dtype=OFFSET_DTYPE).tofile(self.offsets_raw)

    def append(self, sentences: list[list[int]]) -> None:
        if not sentences:
            return
        lengths = np.fromiter((len(s) for s in sentences), dtype=OFFSET_DTYPE, count=len(sentences))
        flat = np.fromiter((i for s in sentences for i in s), dtype=self.dtype, count=int(lengths.sum()))
        flat.tofile(self.tokens_raw)
        (self.end + np.cumsum(lengths)).tofile(self.offsets_raw)
        self.end += int(lengths.sum())
        self.count += len(sentences)

    def close(self) -> dict[str, str]:
        """Write the ``.npy`` files; returns the SHA-256 of each (by file name), hashed as it was written."""
        digests = {}
        for raw, name, dtype, length in ((self.tokens_raw, "tokens", self.dtype, self.end),
                                         (self.offsets_raw, "offsets", np.dtype(OFFSET_DTYPE), self.count + 1)):
            raw.close()
            npy = Path(f"{self.prefix}.{name}.npy")
            digests[npy.name] = _raw_to_npy(Path(raw.name), npy, dtype, length)
        return digests


def _raw_to_npy(raw: Path, npy: Path, dtype: np.dtype, length: int) -> str:
    """Header, then the raw bytes copied over; returns the SHA-256 of the file, computed while writing it."""
    digest = hashlib.sha256()
    with open(npy, "wb") as out, open(raw, "rb") as data:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                      "fortran_order": False, "shape": (length,)})
        for block in itertools.chain([header.getvalue()], iter(lambda: data.read(1 << 22), b"")):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    raw.unlink()
    return digest.hexdigest()
