"""A glossary: source terms and the target terms they must be translated as (terminology).

The file is tab-separated, one entry per line: ``source term<TAB>target term``; empty lines and lines starting with
``#`` are skipped. Where a source term occurs in a text (as whole words, ignoring case; the longest term wins where
two overlap), its target term becomes a phrase the translation must include (:mod:`seq2seq.decoding.constraints`).
"""

from __future__ import annotations

import re
from pathlib import Path

from seq2seq.decoding.constraints import Constraints
from seq2seq.errors import UserError


class Glossary:
    """Source term → target term, and the constraints it puts on a text."""

    def __init__(self, entries: dict[str, str]):
        self.entries = {source.lower(): target for source, target in entries.items()}
        self._terms = sorted(self.entries, key=len, reverse=True)  # the longest first: it wins an overlap
        # one group per term: a match names its term even where case folding changes the text (İ, ſ)
        self._pattern = re.compile("|".join(rf"(?<!\w)({re.escape(term)})(?!\w)" for term in self._terms),
                                   re.IGNORECASE) if self._terms else None

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def load(cls, path: str | Path) -> Glossary:
        """Read a glossary file; a UserError naming the file and line for a line that is not an entry."""
        entries: dict[str, str] = {}
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read the glossary {path}: {error}.") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise UserError(f"{path}, line {number}: expected 'source term<TAB>target term', got {line[:80]!r}.")
            source, target = fields[0].strip(), fields[1].strip()
            if entries.get(source.lower(), target) != target:
                raise UserError(f"{path}, line {number}: {source!r} already has the target term "
                                f"{entries[source.lower()]!r}.")
            entries[source.lower()] = target
        return cls(entries)

    def constraints(self, text: str) -> Constraints:
        """The target term of each glossary term that occurs in ``text`` (once per term), to include."""
        if self._pattern is None:
            return Constraints()
        found = dict.fromkeys(self.entries[self._terms[match.lastindex - 1]] for match in self._pattern.finditer(text)
                              if match.lastindex is not None)
        return Constraints(include=tuple(found))
