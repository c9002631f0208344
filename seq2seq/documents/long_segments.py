"""Cutting a segment longer than the model was trained for into parts it can translate, losing nothing.

A model trained on sentences of at most ``data.max_length`` pieces translates a longer one badly, and the search
would otherwise truncate it. A segment with no sentence end inside (a list, a log line, a text without
punctuation) is cut at the safe boundary nearest its middle, then each half again until every part fits:
after clause punctuation (``,;:`` and dashes) where there is one, else between words, else (a single "word" of
thousands of characters) between two characters that do not belong to one grapheme.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from seq2seq.documents.segmentation import Segmented, Span, stripped

CLAUSE_END = re.compile(r"[,;:\u2013\u2014](?=\s)")  # a comma, semicolon, colon or dash before whitespace
WORD_GAP = re.compile(r"\s+")
JOINERS = {"\u200c", "\u200d"}  # zero-width non-joiner and joiner: they bind the characters either side


def split_long(segmented: Segmented, too_long: Callable[[str], bool]) -> Segmented:
    """Each sentence that is ``too_long`` cut at safe boundaries until every part fits."""
    text = segmented.text
    return Segmented(text, [part for start, end in segmented.spans for part in cut(text, start, end, too_long)])


def cut(text: str, start: int, end: int, too_long: Callable[[str], bool]) -> list[Span]:
    """The span [start, end) of ``text`` as parts that are not ``too_long`` (a part of one character always fits,
    whatever it costs), in order, without whitespace at their ends."""
    if end - start <= 1 or not too_long(text[start:end]):
        return [(start, end)]
    middle = boundary(text, start, end)
    parts = []
    for part_start, part_end in ((start, middle), (middle, end)):
        part_start, part_end = stripped(text, part_start, part_end)
        if part_start < part_end:
            parts += cut(text, part_start, part_end, too_long)
    return parts


def boundary(text: str, start: int, end: int) -> int:
    """The safe place nearest the middle of [start, end) to cut: after clause punctuation, else at whitespace,
    else between graphemes. Always strictly inside the span, so that both parts are shorter."""
    middle = (start + end) // 2
    for pattern in (CLAUSE_END, WORD_GAP):
        cuts = [match.end() for match in pattern.finditer(text, start, end) if start < match.end() < end]
        cuts = [at for at in cuts if text[start:at].strip() and text[at:end].strip()]
        if cuts:
            return min(cuts, key=lambda at: abs(at - middle))
    return grapheme_boundary(text, start, end, middle)


def grapheme_boundary(text: str, start: int, end: int, near: int) -> int:
    """A place inside (start, end) near ``near`` that splits no combining mark, joiner or variation selector from
    its base character (or the middle, if every place inside would)."""
    for distance in range(end - start):
        for at in (near - distance, near + distance):
            if start < at < end and not _binds(text[at - 1], text[at]):
                return at
    return near if start < near < end else start + 1


def _binds(before: str, after: str) -> bool:
    """Whether a cut between these two characters would break a grapheme."""
    return (unicodedata.combining(after) > 0 or after in JOINERS or before in JOINERS
            or unicodedata.category(after) in ("Mn", "Me") or "\ufe00" <= after <= "\ufe0f"
            or "\U0001f3fb" <= after <= "\U0001f3ff" or "\udc00" <= after <= "\udfff")
