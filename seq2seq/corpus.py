"""Read line-aligned parallel text files and validate them.

Files are UTF-8 with one sentence per line. A UTF-8 byte-order mark and Windows line endings are accepted;
a missing file, invalid UTF-8, a NUL character or differing line counts raise :class:`DataError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.errors import UserError


class DataError(UserError):
    """A corpus file is missing or malformed."""


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 text file, without line endings; a leading BOM is dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist.")
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    out = []
    for number, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode("utf-8").removesuffix("\r"))
        except UnicodeDecodeError as error:
            raise DataError(f"{path}, line {number}: invalid UTF-8 (byte {error.start + 1} of the line, "
                            f"{raw[error.start:error.start + 1]!r}). Re-encode the file as UTF-8.") from None
        if "\x00" in out[-1]:
            raise DataError(f"{path}, line {number}: NUL character (byte {raw.index(0) + 1} of the line); text "
                            "corpora hold none, so the file is probably binary or corrupt.")
    return out


def read_parallel(src_path: str | Path, trg_path: str | Path) -> list[tuple[str, str]]:
    """Sentence pairs of two line-aligned files; their line counts must match."""
    src, trg = read_lines(src_path), read_lines(trg_path)
    if len(src) != len(trg):
        raise DataError(f"{src_path} has {len(src)} lines but {trg_path} has {len(trg)} lines; "
                        "parallel files must have one sentence per line, aligned line by line.")
    return list(zip(src, trg))


def split_paths(prefix: str, src_lang: str, trg_lang: str) -> tuple[Path, Path]:
    """``data/toy/train`` → (``data/toy/train.en``, ``data/toy/train.de``)."""
    return Path(f"{prefix}.{src_lang}"), Path(f"{prefix}.{trg_lang}")
