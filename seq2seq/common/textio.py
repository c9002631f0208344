"""Reading text to translate: line by line from a file or stdin, never dropping a line.

Unlike training data (which must be valid, see corpus.py), text to translate is decoded leniently: invalid
UTF-8 bytes and NUL characters become U+FFFD with a warning naming the line, so the output keeps exactly
one line per input line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from itertools import islice
from typing import BinaryIO, NamedTuple, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
REPLACEMENT = "\ufffd"
PROGRESS_MIN_LINES = 300  # smaller inputs finish before a progress bar would help


def decode_line(raw: bytes, *, line: int, source: str) -> str:
    """One line of bytes → text without its line ending; bad bytes and NULs replaced, with a warning."""
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if line == 1:
        raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        log.warning("%s, line %d: invalid UTF-8 replaced by %s", source, line, REPLACEMENT)
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
        log.warning("%s, line %d: NUL character replaced by %s", source, line, REPLACEMENT)
    return text


def decode_argument(text: str, *, line: int) -> str:
    """A command-line sentence: bytes that were not UTF-8 arrive as surrogates and become U+FFFD."""
    return decode_line(text.encode("utf-8", errors="surrogateescape"), line=line, source="arguments")


def read_input(stream: BinaryIO, source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) pairs, read lazily so a long input never has to fit in memory."""
    for number, raw in enumerate(stream, start=1):
        yield number, decode_line(raw, line=number, source=source)


class InputLines(NamedTuple):
    """Where ``seq2seq translate`` reads: numbered lines, how many there are (None when unknown in advance), and
    whether a person types them (then each line is answered at once)."""

    lines: Iterator[tuple[int, str]]
    total: int | None
    interactive: bool


def open_input(stack: ExitStack, sentences: list[str], path: str | None) -> InputLines:
    """Sentences given as arguments, else the lines of the file at ``path`` (closed with ``stack``), else stdin."""
    if sentences:
        numbered = enumerate(sentences, start=1)
        return InputLines(((n, decode_argument(text, line=n)) for n, text in numbered), None, False)
    if path:
        return InputLines(read_input(stack.enter_context(open(path, "rb")), path), count_lines(path), False)
    return InputLines(read_input(sys.stdin.buffer, "stdin"), None, sys.stdin.isatty())


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive groups of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def count_lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)
