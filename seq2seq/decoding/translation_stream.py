"""Texts in, translations out as they finish: tokenize, decode through one decoding engine, detokenize.

:func:`~seq2seq.decoding.translator.translate_texts`, the CLI's ``translate`` and the server all decode through a
:class:`TranslationStream`; :class:`~seq2seq.decoding.paragraphs.DocumentStream` sends it a text's sentences.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.constraints import Constraints, constraint_spans, encode_constraints
from seq2seq.decoding.engine import DecodingEngine
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.policies import search_policy
from seq2seq.decoding.search import max_output_lengths
from seq2seq.decoding.search_types import (
    Hypothesis,
    SearchOptions,
    Sentence,
    SentenceRequest,
    TokenConstraints,
    Translation,
)
from seq2seq.decoding.shortlist import Shortlist
from seq2seq.model.network import Seq2Seq

log = logging.getLogger(__name__)


class SentenceTag(NamedTuple):
    """What the stream gives the engine as a sentence's tag, to make its translations when it comes back."""

    tag: Any  # the caller's tag of the text
    src_ids: list[int]  # its source pieces as decoded (truncated to the model's limit)
    constraints: TokenConstraints | None  # its constraints, to say where each phrase landed


class TranslationStream:
    """Texts in, translations out as they finish: tokenize, decode through one
    :class:`~seq2seq.decoding.engine.DecodingEngine` (continuous batching of ``options.batch_size`` sentences, with
    the policy ``options`` name), detokenize.

    Each text comes with a tag, and its translations come back with it. A ``shortlist`` limits each step's output
    layer to the target pieces its sentences may need.
    """

    def __init__(self, model: Seq2Seq | Ensemble, src_tok: Tokenizer, trg_tok: Tokenizer, *, options: SearchOptions,
                 device: torch.device, max_source_pieces: int, shortlist: Shortlist | None = None):
        options.check(trg_tok.vocab_size)
        model.eval()
        self.src_tok, self.trg_tok = src_tok, trg_tok
        self.options = options
        self.max_source_pieces = max_source_pieces
        self.numbered = 0  # texts taken so far, which number each text's random stream
        self.policy = search_policy(options, trg_tok)
        self.engine: DecodingEngine[Any, Any] = DecodingEngine(
            model, self.policy, device=device, max_sentences=options.batch_size, shortlist=shortlist)

    @property
    def idle(self) -> bool:
        return self.engine.idle

    @property
    def decoding(self) -> int:
        """Texts in the decoding batch now."""
        return self.engine.decoding

    def add(self, items: Sequence[tuple[Any, str]], *, n_best: int | None = None, first_line: int | None = None,
            constraints: Sequence[Constraints | None] | None = None, seed: int | None = None,
            first_number: int | None = None,
            labels: Sequence[str] | None = None) -> list[tuple[Any, list[Translation]]]:
        """Queue (tag, text) pairs for their ``n_best`` (default ``options.n_best``) best translations.

        The texts of one call decode longest first, which keeps the batch's padding low. Empty (or blank) texts
        give one empty translation at once, returned here. Sources longer than ``max_source_pieces`` are
        truncated with a warning that names the line, when ``first_line`` numbers the first text. ``constraints``
        (one per text, None for none) are phrases each translation must include or avoid. A policy that draws takes
        text i from the random stream of ``seed`` (default ``options.seed``) and its number ``first_number`` + i
        (default: its place among all the texts this stream has taken, so a file samples the same whatever the
        batch size; see :func:`~seq2seq.decoding.sampling.sentence_seed`). ``labels`` name the texts in messages
        instead (a sentence of a paragraph: "line 3, sentence 2").
        """
        n_best = self.options.n_best if n_best is None else n_best
        dataclasses.replace(self.options, n_best=n_best).check(self.trg_tok.vocab_size)
        if constraints is not None and len(constraints) != len(items):
            raise ValueError(f"{len(constraints)} constraint sets for {len(items)} texts")
        if constraints is not None and any(constraints):
            self.options.refuse_constraints()
        src_ids = self.src_tok.encode([text for _, text in items])
        seed = self.options.seed if seed is None else seed
        first_number = self.numbered if first_number is None else first_number
        self.numbered += len(items)
        done, sentences = [], []
        for i, ((tag, text), ids) in enumerate(zip(items, src_ids)):
            if not text.strip():
                done.append((tag, [Translation("", [], [], 0.0, torch.zeros(0, 0))]))
                continue
            where = labels[i] if labels is not None else f"line {first_line + i}" if first_line is not None \
                else f"text {i + 1}"
            wanted = constraints[i] if constraints is not None else None
            pieces = encode_constraints(wanted, self.trg_tok, where=f"constraints of {where}") if wanted else None
            ids = self._truncated(ids, where)
            limit = int(max_output_lengths(torch.tensor([len(ids) + 1]), ratio=self.options.max_length_ratio,
                                           extra=self.options.max_length_extra)) + (pieces.tokens if pieces else 0)
            request = SentenceRequest(pieces, seed, first_number + i)
            sentences.append(Sentence(ids, limit, n_best, SentenceTag(tag, ids, pieces), self.policy.prepare(request)))
        self.engine.add(sorted(sentences, key=lambda sentence: -len(sentence.src)))
        return done

    def step(self) -> list[tuple[Any, list[Translation]]]:
        """One decoding step; the (tag, translations) of the texts that finished with it."""
        return [(sentence.tag, [self._translation(h, sentence) for h in hypotheses])
                for sentence, hypotheses in self.engine.step()]

    def discard(self, unwanted: Callable[[Any], bool]) -> list[Any]:
        """Drop the waiting texts whose tag is ``unwanted``; returns their tags."""
        return [sentence.tag for sentence in self.engine.discard(lambda sentence: unwanted(sentence.tag))]

    def _truncated(self, ids: list[int], where: str) -> list[int]:
        if len(ids) > self.max_source_pieces:
            log.warning("%s has %d subword pieces; translating only the first %d (the model's data.max_length)",
                        where, len(ids), self.max_source_pieces)
            return ids[:self.max_source_pieces]
        return ids

    def _translation(self, hypothesis: Hypothesis, sentence: SentenceTag) -> Translation:
        constraints = sentence.constraints
        return Translation(text=self.trg_tok.decode([hypothesis.tokens])[0],
                           src_pieces=self.src_tok.id_to_piece(sentence.src_ids),
                           trg_pieces=self.trg_tok.id_to_piece(hypothesis.tokens), score=hypothesis.score,
                           attention=hypothesis.attention,
                           placed=constraint_spans(hypothesis.tokens, constraints.include) if constraints else None)
