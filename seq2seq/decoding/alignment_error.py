"""How well word alignments agree with gold ones: Och & Ney's alignment error rate (AER), precision and recall.

Gold alignments mark each link sure (S) or possible (P, with S ⊆ P): annotators link what is clearly a translation
as sure, and what only may be (function words, idioms) as possible. For predicted links A (Och & Ney 2003, Eq. 31):

    precision = |A ∩ P| / |A|        recall = |A ∩ S| / |S|        AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)

Files are in Pharaoh format, one sentence pair per line: ``i-j`` links source word i to target word j (0-based);
in a gold file ``i-j`` is sure and ``ipj`` possible, as in the gold sets of the alignment literature. Counts are
summed over the corpus before dividing, as every aligner's evaluation does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from seq2seq.errors import UserError

Link = tuple[int, int]  # (source word, target word)
_LINK = re.compile(r"^(\d+)([-p])(\d+)$")


@dataclass(frozen=True)
class GoldLinks:
    """A sentence pair's gold links: ``sure`` ⊆ ``possible``."""

    sure: frozenset[Link]
    possible: frozenset[Link]


def parse_links(line: str, *, where: str) -> GoldLinks:
    """One Pharaoh line: ``i-j`` sure, ``ipj`` possible (a sure link is possible too). ``where`` names the file
    and line for the error a malformed link raises."""
    sure, possible = set(), set()
    for token in line.split():
        match = _LINK.match(token)
        if match is None:
            raise UserError(f"{where}: {token!r} is not a link; expected i-j (sure) or ipj (possible), with word "
                            "numbers counted from 0.")
        link = (int(match.group(1)), int(match.group(3)))
        possible.add(link)
        if match.group(2) == "-":
            sure.add(link)
    return GoldLinks(frozenset(sure), frozenset(possible))


@dataclass(frozen=True)
class AlignmentScores:
    """Corpus counts of predicted links against gold, and the figures they give."""

    predicted: int  # |A|
    sure: int  # |S|
    hit_sure: int  # |A ∩ S|
    hit_possible: int  # |A ∩ P|

    @property
    def precision(self) -> float:
        return self.hit_possible / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.hit_sure / self.sure if self.sure else 0.0

    @property
    def aer(self) -> float:
        total = self.predicted + self.sure
        return 1.0 - (self.hit_sure + self.hit_possible) / total if total else 0.0


def alignment_scores(predicted: Iterable[Iterable[Link]], gold: Iterable[GoldLinks]) -> AlignmentScores:
    """Precision, recall and AER of the predicted links of each sentence pair against its gold links (the two in
    the same order; a UserError when their counts differ)."""
    counts = [0, 0, 0, 0]
    for links, reference in _zip_pairs(predicted, gold):
        found = set(links)
        counts[0] += len(found)
        counts[1] += len(reference.sure)
        counts[2] += len(found & reference.sure)
        counts[3] += len(found & reference.possible)
    return AlignmentScores(*counts)


def _zip_pairs(predicted: Iterable[Iterable[Link]],
               gold: Iterable[GoldLinks]) -> Iterable[tuple[Iterable[Link], GoldLinks]]:
    predicted, gold = list(predicted), list(gold)
    if len(predicted) != len(gold):
        raise UserError(f"{len(predicted)} predicted alignments for {len(gold)} gold ones: the files must hold the "
                        "same sentence pairs, one per line, in the same order.")
    return zip(predicted, gold, strict=True)
