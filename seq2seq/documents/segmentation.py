"""A text cut into sentences, keeping everything that lies between them, so nothing of the input is ever lost.

A model trained on sentences must be fed sentences: a paragraph given to it whole comes back as one garbled
sentence. :class:`SentenceSplitter` finds the sentences of a text with ``sentencex`` (rule-based, about 300
languages, nothing downloaded; ``scripts/compare_segmenters.py`` compares it with the Moses splitter and pysbd on
``data/segmentation/gold.json``), with two rules of our own on top:

- a line break always ends a sentence (line and paragraph breaks come back exactly where they were);
- a sentence never starts or ends with whitespace: whitespace belongs to the gaps between sentences.

A :class:`Segmented` text is the sentences' spans; its gaps are the rest. ``gaps[0] + sentences[0] + gaps[1] + …
+ sentences[-1] + gaps[-1]`` is the text, character for character (a hypothesis test checks it for any text).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from sentencex import segment

Span = tuple[int, int]  # [start, end) in code points

# str.splitlines' line boundaries: \n, \r, \v, \f, the file/group/record separators, NEL, LS and PS
LINE = re.compile(r"[^\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


class Segmented(NamedTuple):
    """A text and the spans of its sentences, in order, each non-empty and free of whitespace at its ends."""

    text: str
    spans: list[Span]

    @property
    def sentences(self) -> list[str]:
        return [self.text[start:end] for start, end in self.spans]

    @property
    def gaps(self) -> list[str]:
        """What lies before, between and after the sentences: one more than there are sentences."""
        ends = [0] + [end for _, end in self.spans]
        starts = [start for start, _ in self.spans] + [len(self.text)]
        return [self.text[end:start] for end, start in zip(ends, starts)]

    def join(self, translations: Sequence[str]) -> str:
        """The text with each sentence replaced by its translation (see :meth:`assemble`)."""
        return self.assemble(translations)[0]

    def assemble(self, translations: Sequence[str]) -> tuple[str, list[Span]]:
        """The text with each sentence replaced by its translation, and where each translation lies in it. A
        sentence that ran on into the next without a gap (a segment cut inside a long word) is separated from it
        by a space, where both translations have words."""
        if len(translations) != len(self.spans):
            raise ValueError(f"{len(translations)} translations for {len(self.spans)} sentences")
        gaps = self.gaps
        parts, spans, at = [gaps[0]], [], len(gaps[0])
        for i, translation in enumerate(translations):
            if i and not gaps[i] and translations[i - 1] and translation:
                parts.append(" ")
                at += 1
            spans.append((at, at + len(translation)))
            parts += [translation, gaps[i + 1]]
            at += len(translation) + len(gaps[i + 1])
        return "".join(parts), spans


class SentenceSplitter:
    """The sentences of a text in one language (an ISO 639-1 code such as ``de``; sentencex falls back to related
    languages' rules, and to generic ones, for a language it has no rules for)."""

    def __init__(self, language: str):
        self.language = language

    def __call__(self, text: str) -> Segmented:
        return Segmented(text, [span for line in LINE.finditer(text)
                                for span in self._sentences(line.group(), line.start())])

    def _sentences(self, line: str, offset: int) -> Iterator[Span]:
        """The spans of the sentences of one line (``offset``: where the line starts in the text)."""
        for start, end in aligned_spans(line, segment(self.language, line)):
            start, end = stripped(line, start, end)
            if start < end:
                yield start + offset, end + offset


def aligned_spans(text: str, pieces: Sequence[str] | Iterator[str]) -> Iterator[Span]:
    """The span of each of a segmenter's ``pieces`` in ``text``, found by their characters other than whitespace
    (a segmenter may change whitespace). Where a piece does not match the text, the rest of the text is one span:
    a segmenter's slip never loses characters."""
    at = 0
    for piece in pieces:
        end = _walk(text, at, piece)
        if end is None:
            break
        if end > at:
            yield at, end
        at = end
    if text[at:].strip():
        yield at, len(text)


def _walk(text: str, at: int, piece: str) -> int | None:
    """Where ``piece`` ends when matched from ``at`` (whitespace skipped on both sides), None if it does not match."""
    for char in piece:
        if char.isspace():
            continue
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text) or text[at] != char:
            return None
        at += 1
    return at


def stripped(text: str, start: int, end: int) -> Span:
    """The span without whitespace at its ends."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
