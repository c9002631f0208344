"""What every endpoint shares: the models, the batcher that decodes for them, the request limits and the access
rules."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from seq2seq.decoding.constraints import Constraints, encode_constraints
from seq2seq.decoding.glossary import Glossary
from seq2seq.decoding.paragraphs import assemble, sentence_constraints
from seq2seq.decoding.search_types import SearchOptions, Translation
from seq2seq.decoding.translation_stream import TranslationStream
from seq2seq.documents.language import LanguageIdentifier
from seq2seq.documents.segmentation import Segmented
from seq2seq.errors import UserError
from seq2seq.serve.access import Access
from seq2seq.serve.batcher import Batcher, DecodeKey
from seq2seq.serve.limits import ApiError, Limits
from seq2seq.serve.models import ServedModel
from seq2seq.serve.settings import ServeSettings


@dataclass
class ServeState:
    models: dict[str, ServedModel]
    limits: Limits = field(default_factory=Limits)
    beam: int | None = None  # the server's --beam; None: each model's decoding.beam_size
    max_batch: int = ServeSettings.max_batch  # sentences decoding together in each stream (model, search settings)
    batcher: Batcher | None = None  # made when the server starts (it needs the running event loop)
    access: Access = field(default_factory=Access)  # API keys and per-client limits
    timeout_s: float | None = ServeSettings.timeout_s  # how long a request may wait for its translations
    glossary: Glossary | None = None  # terms every translation must honour (``--glossary``)
    _identifier: LanguageIdentifier | None = None

    @property
    def identifier(self) -> LanguageIdentifier:
        """Language identification among every language served (made on first use: it loads Lingua's models)."""
        if self._identifier is None:
            self._identifier = LanguageIdentifier({code for model in self.models.values()
                                                   for code in (model.source, model.target)})
        return self._identifier

    def model(self, name: str | None) -> ServedModel:
        """The named model (the first served one for None); 404 naming the served models otherwise."""
        if name is None:
            return next(iter(self.models.values()))
        if name not in self.models:
            raise ApiError(404, f"unknown model {name!r}; this server has: {', '.join(self.models)}.")
        return self.models[name]

    def default_beam(self, model: ServedModel) -> int:
        return self.beam if self.beam is not None else model.default_beam

    def open_stream(self, key: DecodeKey) -> TranslationStream:
        """A decoding stream for a model and search settings (the batcher opens one for each it meets)."""
        return self.models[key.model].translator.stream(key.options)

    async def translate(self, model: ServedModel, texts: list[str], options: SearchOptions, *,
                        constraints: list[Constraints | None] | None = None, seed: int | None = None,
                        split_sentences: bool = True) -> list[list[Translation]]:
        """Check the search settings, cut each text into sentences (``split_sentences``; else each text is one
        segment), then decode every sentence together with other requests' and put each text back together
        (:mod:`seq2seq.decoding.paragraphs` says what n-best, scores and constraints mean for several sentences).

        Each sentence honours its text's ``constraints`` and the glossary's terms found in it, where the policy of
        ``options`` honours constraints (beam search; sampling and diverse beam search honour neither). A policy
        that draws takes sentence i of the request from the stream of ``seed`` and i, as ``translate --sample
        --seed`` draws line i + 1. The caller has checked the request's texts against ``limits.check_texts``.
        """
        vocab_size = model.translator.trg_tok.vocab_size
        sampled = options.draws  # the samples are the policy's rows; a search's n-best is per sentence
        self.limits.check_search(options.n_best if sampled else options.beam_size, options.n_best, vocab_size)
        try:
            options.check(vocab_size)
        except UserError as error:
            raise ApiError(400, f"Invalid request: {error}") from None
        segmenter = model.segmenter(split_sentences)
        documents = [segmenter(text, f"text {i}") for i, text in enumerate(texts)]
        sentences = [sentence for document in documents for sentence in document.sentences]
        streamed = dataclasses.replace(options, batch_size=self.max_batch, seed=0,  # each request brings its seed
                                       n_best=options.n_best if sampled else 1)
        each = self.text_constraints(model, sentences, self.split_constraints(documents, constraints)) \
            if options.honours_constraints else None
        results = await self._decode(DecodeKey(model.name, streamed), sentences, options.n_best, each, seed)
        translated, start = [], 0
        for document in documents:
            end = start + len(document.spans)
            translated.append(assemble(document, results[start:end], options.n_best, sampled=sampled,
                                       parts=split_sentences))
            start = end
        return translated

    @staticmethod
    def split_constraints(documents: list[Segmented],
                          given: list[Constraints | None] | None) -> list[Constraints | None] | None:
        """Each text's constraints as its sentences' (400 for phrases to include in a text of several)."""
        if given is None:
            return None
        try:
            return [c for i, (document, wanted) in enumerate(zip(documents, given, strict=True))
                    for c in sentence_constraints(wanted, document, f"text {i}")]
        except UserError as error:
            raise ApiError(400, f"Invalid request: {error}") from None

    async def _decode(self, key: DecodeKey, sentences: list[str], n_best: int,
                      constraints: list[Constraints | None] | None, seed: int | None) -> list[list[Translation]]:
        """The sentences decoded by the batcher, within the server's queue limit and timeout."""
        if self.batcher is None or not self.batcher.alive:
            raise ApiError(503, "the server is not decoding (it is starting, stopping, or its batcher failed; "
                                "see its log)")
        if self.batcher.queued + len(sentences) > self.limits.max_queued:
            raise ApiError(503, f"the server is overloaded: {self.batcher.queued} sentences are waiting to be "
                                "decoded; retry later")
        try:
            async with asyncio.timeout(self.timeout_s):  # cancelling drops the request's waiting sentences
                return await self.batcher.translate(key, sentences, n_best, constraints, seed)
        except TimeoutError:
            raise ApiError(503, f"the server could not translate the request within {self.timeout_s:g} seconds "
                                "(timeout_s) and dropped it; retry later, or send fewer texts") from None

    def text_constraints(self, model: ServedModel, texts: list[str],
                         given: list[Constraints | None] | None) -> list[Constraints | None] | None:
        """Each sentence's constraints with the glossary's terms found in it (those it does not ask for already,
        as many as the limit leaves room for); 400 for a set the server or the model cannot honour."""
        if given is None and self.glossary is None:
            return None
        each: list[Constraints | None] = []
        for i, text in enumerate(texts):
            wanted = (given[i] if given is not None else None) or Constraints()
            self.limits.check_constraints(wanted, i)
            if self.glossary is not None:
                room = self.limits.max_phrases - len(wanted.include) - len(wanted.avoid)
                terms = [t for t in self.glossary.constraints(text).include if t not in wanted.include][:room]
                wanted = wanted + Constraints(include=tuple(terms))
            try:
                pieces = encode_constraints(wanted, model.translator.trg_tok, where=f"text {i}")
            except UserError as error:
                raise ApiError(400, f"Invalid request: {error}") from None
            self.limits.check_constraint_pieces(pieces, i)
            each.append(wanted or None)
        return each


def client_address(request: Request) -> str:
    """The address a request came from: what limits count without API keys."""
    return request.client.host if request.client else "unknown"


def serve_state(request: Request) -> ServeState:
    """FastAPI dependency: the app's :class:`ServeState`."""
    return request.app.state.serve


State = Annotated[ServeState, Depends(serve_state)]  # an endpoint parameter of this type receives the state
