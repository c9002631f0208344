"""Read line-aligned parallel text files and validate them, streaming: a corpus never has to fit in memory.

Files are UTF-8 with one sentence per line. A UTF-8 byte-order mark and Windows line endings are accepted;
a missing file, invalid UTF-8, a NUL character or differing line counts raise :class:`DataError` naming the
file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from seq2seq.errors import UserError


class DataError(UserError):
    """A corpus file is missing or malformed."""


def iter_lines(path: str | Path) -> Iterator[str]:
    """The lines of a UTF-8 text file, without line endings, one at a time; a leading BOM is dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist.")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            yield _decode(raw.removesuffix(b"\n"), path, number)


def _decode(raw: bytes, path: Path, number: int) -> str:
    try:
        text = raw.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}, line {number}: invalid UTF-8 (byte {error.start + 1} of the line, "
                        f"{raw[error.start:error.start + 1]!r}). Re-encode the file as UTF-8.") from None
    if "\x00" in text:
        raise DataError(f"{path}, line {number}: NUL character (byte {raw.index(0) + 1} of the line); text "
                        "corpora hold none, so the file is probably binary or corrupt.")
    return text


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 text file (see :func:`iter_lines`)."""
    return list(iter_lines(path))


def iter_parallel(src_path: str | Path, trg_path: str | Path) -> Iterator[tuple[str, str]]:
    """Sentence pairs of two line-aligned files, one at a time; their line counts must match."""
    src_lines, trg_lines = iter_lines(src_path), iter_lines(trg_path)
    count = 0
    for src in src_lines:
        trg = next(trg_lines, None)
        if trg is None:
            _mismatch(src_path, count + 1 + sum(1 for _ in src_lines), trg_path, count)
        count += 1
        yield src, trg
    rest = sum(1 for _ in trg_lines)
    if rest:
        _mismatch(src_path, count, trg_path, count + rest)


def _mismatch(src_path: str | Path, src_count: int, trg_path: str | Path, trg_count: int) -> NoReturn:
    raise DataError(f"{src_path} has {src_count} lines but {trg_path} has {trg_count} lines; "
                    "parallel files must have one sentence per line, aligned line by line.")


def read_parallel(src_path: str | Path, trg_path: str | Path) -> list[tuple[str, str]]:
    """All sentence pairs of two line-aligned files (see :func:`iter_parallel`)."""
    return list(iter_parallel(src_path, trg_path))


def split_paths(prefix: str, src_lang: str, trg_lang: str) -> tuple[Path, Path]:
    """``data/toy/train`` → (``data/toy/train.en``, ``data/toy/train.de``)."""
    return Path(f"{prefix}.{src_lang}"), Path(f"{prefix}.{trg_lang}")
