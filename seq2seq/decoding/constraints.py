"""Lexical constraints of one translation: phrases that must appear in it (include) and phrases that must not (avoid).

Users write constraints as text, one set per input line (``translate --constraints FILE``), per text (the Python and
native APIs) or through a glossary (``serve --glossary``). The target sentencepiece model turns each phrase into the
pieces the search must produce (or never produce) in a row: a phrase is matched as the model segments it on its own,
as a word start. :mod:`seq2seq.decoding.constrained` is the search that honours them.

A constraints file has one line per input line, either a JSON object::

    {"include": ["Hund", "roten Ball"], "avoid": ["Katze"]}

or plain text: the phrases to include, separated by tabs. An empty line constrains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.search_types import TokenConstraints
from seq2seq.errors import UserError


@dataclass(frozen=True)
class Constraints:
    """The phrases (text) one translation must include and must avoid; a phrase may repeat (then it must appear
    that many times)."""

    include: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.include or self.avoid)

    def __add__(self, other: Constraints) -> Constraints:
        return Constraints(self.include + other.include, self.avoid + other.avoid)

    @classmethod
    def of(cls, value: object, *, where: str) -> Constraints:
        """Constraints from a JSON-like value: {"include": [...], "avoid": [...]} (each key optional), a list of
        phrases to include, or None. ``where`` names the value in errors."""
        if value is None:
            return cls()
        if isinstance(value, list):
            value = {"include": value}
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected an object with 'include' and/or 'avoid' lists of phrases, "
                            f"got {type(value).__name__}.")
        unknown = set(value) - {"include", "avoid"}
        if unknown:
            raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r}; the keys are 'include' and 'avoid'.")
        return cls(_phrases(value.get("include", []), where=f"{where}, 'include'"),
                   _phrases(value.get("avoid", []), where=f"{where}, 'avoid'"))

    @classmethod
    def parse_line(cls, line: str, *, where: str) -> Constraints:
        """One line of a constraints file: a JSON object, or tab-separated phrases to include."""
        text = line.strip()
        if not text:
            return cls()
        if text.startswith(("{", "[")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise UserError(f"{where}: not valid JSON ({error.msg} at column {error.colno}); write "
                                '{"include": [...], "avoid": [...]} or tab-separated phrases.') from None
            return cls.of(value, where=where)
        return cls(_phrases([phrase for phrase in line.rstrip("\r\n").split("\t") if phrase.strip()], where=where))


def _phrases(value: object, *, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(phrase, str) for phrase in value):
        raise UserError(f"{where}: expected a list of phrases (strings), got {json.dumps(value)[:80]}.")
    if any(not phrase.strip() for phrase in value):
        raise UserError(f"{where}: a phrase is empty.")
    return tuple(phrase.strip() for phrase in value)


def encode_constraints(constraints: Constraints, trg_tok: Tokenizer, *, where: str = "constraints") -> TokenConstraints:
    """The pieces of each phrase; a UserError when an avoided phrase lies inside a phrase that must be included."""
    include = trg_tok.encode(list(constraints.include)) if constraints.include else []
    avoid = trg_tok.encode(list(constraints.avoid)) if constraints.avoid else []
    for phrase, ids in zip(constraints.include + constraints.avoid, include + avoid):
        if not ids:
            raise UserError(f"{where}: the phrase {phrase!r} has no pieces in the target vocabulary (only characters "
                            "the model drops); give a phrase with text.")
    for phrase, ids in zip(constraints.include, include):
        for avoided, banned in zip(constraints.avoid, avoid):
            if _contains(ids, banned):
                raise UserError(f"{where}: the phrase {phrase!r} must appear but contains {avoided!r}, which must "
                                "not; drop one of them.")
    return TokenConstraints(include, avoid)


def _contains(ids: list[int], part: list[int]) -> bool:
    return any(ids[i:i + len(part)] == part for i in range(len(ids) - len(part) + 1))


SPAN_SEARCH_BUDGET = 10_000  # occurrences tried before settling for the greedy placement


def constraint_spans(tokens: list[int], include: list[list[int]]) -> list[tuple[int, int] | None]:
    """Where each include phrase landed in ``tokens`` (output pieces): (first piece, end piece) of an occurrence of
    its own, no two phrases sharing a piece (a repeated phrase takes another occurrence), or None where it did not.

    A depth-first search over the occurrences finds a placement of every phrase where one exists (a phrase taken
    early never steals the only place of a later one); past a budget of tries, or where none exists, each phrase
    takes its leftmost free occurrence in turn.
    """
    occurrences = [[i for i in range(len(tokens) - len(phrase) + 1) if tokens[i:i + len(phrase)] == phrase]
                   for phrase in include]
    budget = SPAN_SEARCH_BUDGET

    def place(k: int, used: frozenset[int]) -> list[int] | None:
        nonlocal budget
        if k == len(include):
            return []
        for start in occurrences[k]:
            budget -= 1
            if budget < 0:
                return None
            cover = frozenset(range(start, start + len(include[k])))
            if not cover & used and (rest := place(k + 1, used | cover)) is not None:
                return [start, *rest]
        return None

    starts: list[int | None] = list(place(0, frozenset()) or _greedy_starts(occurrences, include))
    return [None if start is None else (start, start + len(phrase)) for start, phrase in zip(starts, include)]


def _greedy_starts(occurrences: list[list[int]], include: list[list[int]]) -> list[int | None]:
    """Each phrase at its leftmost occurrence that shares no piece with the phrases placed before it."""
    used: set[int] = set()
    starts: list[int | None] = []
    for places, phrase in zip(occurrences, include):
        start = next((i for i in places if not used & set(range(i, i + len(phrase)))), None)
        starts.append(start)
        if start is not None:
            used |= set(range(start, start + len(phrase)))
    return starts


def read_constraints(lines: Iterable[str], source: str) -> Iterator[Constraints]:
    """The constraints of each line of a constraints file, lazily, naming the file and line in errors."""
    for number, line in enumerate(lines, start=1):
        yield Constraints.parse_line(line, where=f"{source}, line {number}")
