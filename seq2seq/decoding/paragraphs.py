"""Texts of several sentences: each sentence decoded as a sentence of its own, the translations put back between
the text's gaps (whitespace, line and paragraph breaks) exactly where they were.

A model trained on sentences must be fed sentences. :class:`Segmenter` cuts a text into sentences (or, keeping the
one-line-one-segment contract of ``translate``, takes it whole) and cuts any part longer than the model was trained
for at safe boundaries (:mod:`seq2seq.documents.long_segments`). :class:`DocumentStream` sends every sentence into a
:class:`~seq2seq.decoding.translation_stream.TranslationStream` as its own, so one text's sentences share decoding steps
with everything else being translated, and gives back a text's translations once all its sentences are done.

What a text of several sentences means for each feature:

- **n-best**: the N best combinations of the sentences' hypotheses, each sentence's ranked as its search ranked
  them, scored by the sum of their log-probabilities (the first is every sentence's best); samples combine draw by
  draw (the k-th sample of the text is the k-th sample of each sentence);
- **score**: the sum of the sentences' scores;
- **constraints**: phrases to avoid apply to every sentence; a phrase to include has no place in the source to tie
  it to one sentence, so it is refused for a text of several sentences (a glossary, which knows where its source
  term occurs, constrains the sentence that holds it);
- **attention and alignment**: per sentence (:attr:`Translation.parts`), with the sentence's character spans in
  the source and in the translation.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.constraints import Constraints
from seq2seq.decoding.search_types import SentencePart, Translation
from seq2seq.decoding.translation_stream import TranslationStream
from seq2seq.decoding.word_alignment import align_words, word_ids
from seq2seq.documents.long_segments import split_long
from seq2seq.documents.segmentation import Segmented, SentenceSplitter
from seq2seq.errors import UserError

log = logging.getLogger(__name__)


def whole(text: str) -> Segmented:
    """A text taken as one segment (the one-line-one-segment contract): its whitespace at either end is dropped."""
    kept = text.strip()
    return Segmented(kept, [(0, len(kept))] if kept else [])


class Segmenter:
    """How a translator cuts its texts: into sentences of ``language`` (``split_sentences``), or each text whole;
    either way, a part longer than ``max_pieces`` source pieces is cut at safe boundaries, never truncated.

    ``warn_several``: the first text taken whole in which the splitter finds several sentences gets a warning that
    names the switch, once. ``warn_long``: a text cut for its length gets a warning naming it.
    """

    def __init__(self, src_tok: Tokenizer, max_pieces: int, *, language: str | None = None,
                 split_sentences: bool = False, warn_several: bool = False, warn_long: bool = True):
        if (split_sentences or warn_several) and language is None:
            raise ValueError("cutting texts into sentences needs their language")
        self.src_tok, self.max_pieces = src_tok, max_pieces
        self.splitter = SentenceSplitter(language) if language is not None else None
        self.split_sentences = split_sentences
        self.warn_several = warn_several and not split_sentences
        self.warn_long = warn_long

    def __call__(self, text: str, where: str = "a text") -> Segmented:
        segmented = self.splitter(text) if self.split_sentences and self.splitter else whole(text)
        if self.warn_several and self.splitter and len(self.splitter(text).spans) > 1:
            log.warning("%s holds several sentences; the model translates one sentence at a time, so pass "
                        "--split-sentences (Python: split_sentences=True) to translate them one by one", where)
            self.warn_several = False
        cut = split_long(segmented, self.too_long)
        if self.warn_long and len(cut.spans) > len(segmented.spans):
            log.warning("%s is longer than the model's data.max_length (%d pieces): translated in %d parts cut at "
                        "clause or word boundaries", where, self.max_pieces, len(cut.spans))
        return cut

    def too_long(self, text: str) -> bool:
        """Whether ``text`` has more source pieces than the model was trained on (a piece holds a character or more,
        so a short text needs no tokenizing)."""
        return len(text) + 1 > self.max_pieces and len(self.src_tok.encode([text])[0]) > self.max_pieces


def sentence_constraints(given: Constraints | None, segmented: Segmented, where: str) -> list[Constraints | None]:
    """A text's constraints as each of its sentences': phrases to avoid go to every sentence; phrases to include
    only to a text of one sentence (a UserError otherwise)."""
    count = len(segmented.spans)
    if given is None or not given:
        return [None] * count
    if given.include and count > 1:
        raise UserError(f"{where} has {count} sentences, and a phrase to include cannot be tied to one of them; "
                        "give the text sentence by sentence, or use a glossary, whose source terms say where they "
                        "belong.")
    return [given] * count


def best_combinations(scores: Sequence[Sequence[float]], n: int) -> list[tuple[int, ...]]:
    """The ``n`` best ways to choose one hypothesis per sentence, by the sum of their scores, best first.

    Each sentence's hypotheses are taken in their search's order: a score is never credited above the one ranked
    before it, so the best combination is every sentence's first. A lazy k-best over the product of sorted
    lists (Huang & Chiang 2005, algorithm 1): each combination popped pushes its successors.
    """
    ranked = [list(_running_min(each)) for each in scores]
    first = (0,) * len(ranked)
    heap = [(-sum(each[0] for each in ranked), first)]
    seen, chosen = {first}, list[tuple[int, ...]]()
    while heap and len(chosen) < n:
        negative, combination = heapq.heappop(heap)
        chosen.append(combination)
        for i, j in enumerate(combination):
            if j + 1 < len(ranked[i]):
                successor = combination[:i] + (j + 1,) + combination[i + 1:]
                if successor not in seen:
                    seen.add(successor)
                    heapq.heappush(heap, (negative + ranked[i][j] - ranked[i][j + 1], successor))
    return chosen


def _running_min(scores: Sequence[float]) -> list[float]:
    out: list[float] = []
    for score in scores:
        out.append(min(score, out[-1]) if out else score)
    return out


def assemble(segmented: Segmented, results: Sequence[list[Translation]], n_best: int, *, sampled: bool = False,
             parts: bool = True) -> list[Translation]:
    """The ``n_best`` translations of a text from the n-best lists of its sentences (``sampled``: samples, combined
    draw by draw). ``parts``: record each sentence's translation and spans (texts cut into sentences); else a text
    of one segment gives its translation as it is."""
    if not segmented.spans:
        return [Translation(segmented.join([]), [], [], 0.0, torch.zeros(0, 0))]
    if sampled:
        combinations = [(k,) * len(results) for k in range(min(len(each) for each in results))][:n_best]
    else:
        combinations = best_combinations([[t.score for t in each] for each in results], n_best)
    return [_combined(segmented, [results[i][j] for i, j in enumerate(combination)], parts=parts)
            for combination in combinations]


def _combined(segmented: Segmented, chosen: list[Translation], *, parts: bool) -> Translation:
    text, target_spans = segmented.assemble([t.text for t in chosen])
    if len(chosen) == 1 and not parts:
        return chosen[0]
    sentences = tuple(SentencePart(source, target, translation)
                      for source, target, translation in zip(segmented.spans, target_spans, chosen))
    if len(chosen) == 1:
        return chosen[0]._replace(text=text, parts=sentences)
    return Translation(text=text, src_pieces=[p for t in chosen for p in t.src_pieces],
                       trg_pieces=[p for t in chosen for p in t.trg_pieces], score=sum(t.score for t in chosen),
                       attention=torch.zeros(0, 0), parts=sentences)


def text_alignment(translation: Translation) -> list[tuple[int, int]]:
    """(source word, output word) pairs of a whole text, its sentences' alignments with word indices counted from
    the text's first word (as :func:`~seq2seq.decoding.word_alignment.align_words` counts them in one sentence)."""
    pairs, src_offset, trg_offset = [], 0, 0
    for part in translation.sentences:
        t = part.translation
        pairs += [(s + src_offset, o + trg_offset) for s, o in align_words(t.attention, t.src_pieces, t.trg_pieces)]
        src_offset += _words(t.src_pieces)
        trg_offset += _words(t.trg_pieces)
    return pairs


def _words(pieces: list[str]) -> int:
    return word_ids(pieces)[-1] + 1 if pieces else 0


class DocumentStream:
    """A :class:`~seq2seq.decoding.translation_stream.TranslationStream` that takes texts of any number of sentences:
    each sentence decodes as its own, and a text's translations come back when its last sentence is done."""

    def __init__(self, stream: TranslationStream, segmenter: Segmenter):
        self.stream, self.segmenter = stream, segmenter
        self.sampled = stream.options.draws  # n-best lists drawn, not ranked
        self._open: dict[Any, _OpenText] = {}

    @property
    def idle(self) -> bool:
        return self.stream.idle

    @property
    def engine(self) -> Any:
        return self.stream.engine

    @property
    def decoding(self) -> int:
        return self.stream.decoding

    def add(self, items: Sequence[tuple[Any, str]], *, n_best: int | None = None, first_line: int | None = None,
            constraints: Sequence[Constraints | None] | None = None) -> list[tuple[Any, list[Translation]]]:
        """Queue (tag, text) pairs (arguments as ``TranslationStream.add``); returns the texts already done (those
        with no sentence)."""
        n_best = self.stream.options.n_best if n_best is None else n_best
        sentences: list[tuple[Any, str]] = []
        labels: list[str] = []
        each: list[Constraints | None] = []
        done = []
        for i, (tag, text) in enumerate(items):
            where = f"line {first_line + i}" if first_line is not None else f"text {i + 1}"
            segmented = self.segmenter(text, where)
            wanted = constraints[i] if constraints is not None else None
            each += sentence_constraints(wanted, segmented, where)
            self._open[tag] = _OpenText(segmented, n_best, [None] * len(segmented.spans))
            sentences += [((tag, k), sentence) for k, sentence in enumerate(segmented.sentences)]
            labels += [where if len(segmented.spans) == 1 else f"{where}, sentence {k + 1}"
                       for k in range(len(segmented.spans))]
            if not segmented.spans:
                done.append((tag, self._finish(tag)))
        finished = self.stream.add(sentences, n_best=n_best, constraints=each if constraints is not None else None,
                                   labels=labels)
        return done + self._collect(finished)

    def step(self) -> list[tuple[Any, list[Translation]]]:
        return self._collect(self.stream.step())

    def _collect(self, finished: list[tuple[Any, list[Translation]]]) -> list[tuple[Any, list[Translation]]]:
        done = []
        for (tag, k), translations in finished:
            text = self._open[tag]
            text.results[k] = translations
            if all(result is not None for result in text.results):
                done.append((tag, self._finish(tag)))
        return done

    def _finish(self, tag: Any) -> list[Translation]:
        text = self._open.pop(tag)
        return assemble(text.segmented, [r for r in text.results if r is not None], text.n_best,
                        sampled=self.sampled, parts=self.segmenter.split_sentences)


@dataclass
class _OpenText:
    """A text whose sentences are decoding: its segments, and each one's translations once done."""

    segmented: Segmented
    n_best: int
    results: list[list[Translation] | None]
