"""What a translation is: its text, pieces, score and attention, and, for a text of several sentences, its parts.

Its own module so that everything that reads translations (output formats, training's reporters, the server)
imports the type without the search stack.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from seq2seq.decoding.window import Window

Span = tuple[int, int]  # [start, end) in code points


class Translation(NamedTuple):
    text: str  # detokenized output
    src_pieces: list[str]  # source subword pieces as translated, EOS excluded
    trg_pieces: list[str]  # output subword pieces, EOS excluded
    score: float  # sum of the token log-probabilities (EOS included when produced)
    attention: torch.Tensor  # [T, S]: rows are output pieces (+ EOS), columns source pieces + EOS
    window: Window | None = None  # local attention's window of each row, where a picture asked for it
    placed: list[tuple[int, int] | None] | None = None  # each include constraint's pieces [start, end) in trg_pieces
    parts: tuple[SentencePart, ...] = ()  # a text translated sentence by sentence: each sentence's translation

    def attention_labels(self) -> tuple[list[str], list[str]]:
        """Names of the attention's columns (source pieces + EOS) and rows (output pieces, + EOS if produced)."""
        return self.src_pieces + ["</s>"], (self.trg_pieces + ["</s>"])[:self.attention.size(0)]

    @property
    def sentences(self) -> tuple[SentencePart, ...]:
        """The sentences of the text with their translations: its parts, or the translation itself as one part."""
        if self.parts:
            return self.parts
        return (SentencePart(None, (0, len(self.text)), self),) if self.src_pieces else ()


class SentencePart(NamedTuple):
    """One sentence of a text translated sentence by sentence."""

    source: Span | None  # where the sentence lies in the source text (None: the whole text, not segmented)
    target: Span  # where its translation lies in the translated text
    translation: Translation  # the sentence's own translation (pieces, score, attention)
