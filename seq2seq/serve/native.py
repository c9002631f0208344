"""The native API: everything the model knows about a translation (n-best, scores, pieces, attention, alignment).

``POST /v1/translate`` ``{"texts": [...], "beam": 5, "n_best": 1, "attention": true, "align": true}`` answers
one result per text, each text cut into sentences (``"split_sentences": false`` takes it whole) whose
translations, pieces, attention and alignment each result lists in ``sentences``; ``GET /v1/models``
describes the served models. The web page uses both. A request may constrain each text
(``"constraints": [{"include": [...], "avoid": [...]}, ...]``, one per text), sample instead of searching
(``"sample": true`` with ``temperature``, ``top_k``, ``top_p``, ``seed``), or ask for a diverse n-best list
(``"diverse_groups": G`` with ``diversity_strength``). Every search setting of a request becomes one
:class:`~seq2seq.decoding.search_types.SearchOptions`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from seq2seq.decoding.constraints import Constraints
from seq2seq.decoding.diverse import Diversity
from seq2seq.decoding.paragraphs import text_alignment
from seq2seq.decoding.sampling import Sampling
from seq2seq.decoding.search_types import PolicySettings, SearchOptions, SentencePart, Translation
from seq2seq.decoding.word_alignment import align_words, pharaoh
from seq2seq.errors import UserError
from seq2seq.serve.limits import ApiError
from seq2seq.serve.models import ServedModel
from seq2seq.serve.state import ServeState, State, client_address

router = APIRouter(prefix="/v1", tags=["native"])

EOS_LABEL = "</s>"  # the label of the end-of-sentence row and column of an attention matrix
WEIGHT_DECIMALS = 4  # attention weights are rounded to this many decimals in responses


class TextConstraints(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    include: list[str] = Field([], description="Phrases the translation must contain", examples=[["bicycle"]])
    avoid: list[str] = Field([], description="Phrases the translation must not contain", examples=[["bike"]])


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[str] = Field(description="Sentences to translate, one translation result each",
                             examples=[["Ein Mann fährt Fahrrad."]])
    model: str | None = Field(None, description="A name from GET /v1/models (default: the first served model)")
    beam: int | None = Field(None, description="Beam size; 1 is greedy search (default: the server's)")
    n_best: int = Field(1, description="Translations per text, best first (at most the beam size)")
    attention: bool = Field(False, description="Add each translation's attention matrix [target, source]")
    align: bool = Field(False, description="Add each translation's word alignment (Pharaoh format)")
    constraints: list[TextConstraints | None] | None = Field(
        None, description="One per text (null for none): phrases its translations must include and must avoid")
    sample: bool = Field(False, description="Draw n_best translations from the model instead of searching (beam "
                                            "is not used)")
    temperature: float = Field(1.0, ge=0, allow_inf_nan=False,
                               description="Sampling: divide the log-probabilities by this (0: greedy)")
    top_k: int = Field(0, ge=0, description="Sampling: only from the k most probable pieces (0: all)")
    top_p: float = Field(1.0, gt=0, le=1, description="Sampling: only from the nucleus of probability p (1: all)")
    seed: int | None = Field(None, ge=0, description="Sampling: the same seed draws the same translations "
                                                     "(default: a new draw each request)")
    diverse_groups: int | None = Field(None, ge=1, description="Diverse beam search (Vijayakumar et al. 2016): split "
                                       "the beam into this many groups, each pushed away from the pieces the groups "
                                       "before it chose, for n_best translations that differ in more than their last "
                                       "words; must divide the beam size (null: plain beam search)")
    diversity_strength: float = Field(0.5, ge=0, allow_inf_nan=False, description="Diverse beam search: how much a "
                                      "piece's log-probability drops for each earlier group that chose it (0: each "
                                      "group is plain beam search)")
    split_sentences: bool = Field(True, description="Cut each text into sentences and translate each as its own "
                                                    "(false: each text is one sentence)")
    api_key: str | None = Field(None, description="The API key, where the server requires one (else ignored)")


class Window(BaseModel):
    """Local attention's window on each attention row: [centre - radius, centre + radius]."""

    centres: list[float] = Field(description="p_t of each row, in source positions")
    radius: int = Field(description="D, the window's half-width")


class SentenceResult(BaseModel):
    """One sentence of a text and its translation."""

    source: list[int] = Field(description="[start, end) characters of the sentence in the source text")
    target: list[int] = Field(description="[start, end) characters of its translation in the translated text")
    src_pieces: list[str] = Field(description="Source subword pieces; the attention columns, then </s>")
    trg_pieces: list[str] = Field(description="Output subword pieces; the attention rows, then </s> if produced")
    score: float = Field(description="Sum of the token log-probabilities")
    attention: list[list[float]] | None = Field(
        None, description="[target pieces (+ </s>), source pieces + </s>]: each row sums to 1")
    alignment: str | None = Field(None, description="source-target word index pairs within the sentence")
    window: Window | None = Field(None, description="local attention only: each attention row's centre p_t (in "
                                                    "source positions) and the window's half-width D")


class TranslationResult(BaseModel):
    text: str
    score: float = Field(description="Sum of the token log-probabilities (of every sentence)")
    trg_pieces: list[str] = Field(description="Output subword pieces (of every sentence, in order)")
    attention: list[list[float]] | None = Field(
        None, description="A text of one sentence: [target pieces (+ </s>), source pieces + </s>], each row summing "
                          "to 1 (several sentences: see sentences)")
    alignment: str | None = Field(None, description="source-target word index pairs, e.g. '0-0 1-2', words counted "
                                                    "from the text's first")
    window: Window | None = Field(None, description="local attention, a text of one sentence: each attention row's "
                                                    "centre p_t (in source positions) and the window's half-width D")
    placed: list[list[int] | None] | None = Field(
        None, description="Where each phrase to include landed: [start, end) characters of text, null if missing")
    sentences: list[SentenceResult] | None = Field(
        None, description="Each sentence with its translation, where the text was cut into sentences")


class TextResult(BaseModel):
    source: str
    src_pieces: list[str] = Field(description="Source subword pieces (of every sentence, in order); a text of one "
                                              "sentence: the attention columns, then </s>")
    translations: list[TranslationResult]


class TranslateResponse(BaseModel):
    model: str
    beam: int
    results: list[TextResult]


@router.post("/translate", summary="Translate with details", response_model=TranslateResponse,
             response_model_exclude_none=True)
async def translate(request: TranslateRequest, state: State, http: Request) -> TranslateResponse:
    """The n-best translations of each text with scores, pieces and, on request, attention and alignment."""
    api_key = request.api_key if request.api_key is not None else http.query_params.get("api_key")
    key = state.access.identify(api_key, client_address(http))
    model = state.model(request.model)
    state.limits.check_texts(request.texts)
    state.access.limit(key, client_address(http), sum(map(len, request.texts)))
    options = search_options(request, model, state)
    results = await state.translate(model, request.texts, options, constraints=text_constraints(request, options),
                                    seed=request_seed(request, options), split_sentences=request.split_sentences)
    if request.attention:  # local attention's windows, replayed off the event loop
        results = await asyncio.to_thread(lambda: [[model.translator.with_window(t) for t in n_best]
                                                   for n_best in results])
    return TranslateResponse(model=model.name, beam=options.beam_size, results=[
        TextResult(source=text, src_pieces=n_best[0].src_pieces,
                   translations=[translation_result(t, attention=request.attention, align=request.align,
                                                    decode=model.translator.trg_tok.processor.decode_pieces)
                                 for t in n_best])
        for text, n_best in zip(request.texts, results)])


def search_options(request: TranslateRequest, model: ServedModel, state: ServeState) -> SearchOptions:
    """The request's search settings: its beam (default: the server's, at least n_best), n-best and policy."""
    beam = request.beam if request.beam is not None else max(state.default_beam(model), request.n_best)
    return model.translator.search_options(beam_size=beam, n_best=request.n_best, policy=request_policy(request))


def request_policy(request: TranslateRequest) -> PolicySettings | None:
    """Sampling, diverse beam search or (None) beam search; 400 for a request that asks for two."""
    if request.sample and request.diverse_groups is not None:
        raise ApiError(400, "Invalid request: sample draws translations and diverse_groups searches for them; give "
                            "one of them.")
    if request.sample:
        return Sampling(request.temperature, request.top_k, request.top_p)
    if request.diverse_groups is not None:
        return Diversity(request.diverse_groups, request.diversity_strength)
    return None


def request_seed(request: TranslateRequest, options: SearchOptions) -> int | None:
    """The seed of the random streams of a request that draws (samples): its own, or a new one for each request."""
    if not options.draws:
        return None
    return request.seed if request.seed is not None else random.randrange(2**62)


def text_constraints(request: TranslateRequest, options: SearchOptions) -> list[Constraints | None] | None:
    """The request's constraints, one per text; 400 when they do not pair with the texts or the policy does not
    honour them."""
    given = request.constraints
    if given is None:
        return None
    if len(given) != len(request.texts):
        raise ApiError(400, f"Invalid request: {len(given)} constraint sets for {len(request.texts)} texts; give one "
                            "per text (null for none).")
    try:
        if any(c is not None and (c.include or c.avoid) for c in given):
            options.refuse_constraints()
        return [Constraints.of(c.model_dump(), where=f"text {i}") if c is not None else None
                for i, c in enumerate(given)]
    except UserError as error:
        raise ApiError(400, f"Invalid request: {error}") from None


def character_spans(translation: Translation, decode: Callable[[list[str]], str]) -> list[list[int] | None] | None:
    """Each placed constraint's pieces as [start, end) characters (code points) of the text, sentence by sentence:
    found by detokenizing the sentence's pieces before and up to it (``decode``: sentencepiece's, which also renders
    <unk>), then moved to where the sentence's translation lies in the text."""
    spans: list[list[int] | None] = []
    found = False
    for part in translation.sentences:
        sentence, offset = part.translation, part.target[0]
        if sentence.placed is None:
            continue
        found = True
        for span in sentence.placed:
            if span is None:
                spans.append(None)
                continue
            start, end = (len(decode(sentence.trg_pieces[:at])) for at in span)
            start += len(sentence.text[start:end]) - len(sentence.text[start:end].lstrip(" "))
            spans.append([start + offset, end + offset])
    return spans if found else None


def sentence_result(part: SentencePart, *, attention: bool, align: bool) -> SentenceResult:
    t = part.translation
    return SentenceResult(
        source=list(part.source or (0, 0)), target=list(part.target), src_pieces=t.src_pieces,
        trg_pieces=t.trg_pieces, score=round(t.score, 6), attention=weights(t) if attention else None,
        alignment=pharaoh(align_words(t.attention, t.src_pieces, t.trg_pieces)) if align else None,
        window=Window(centres=t.window.centres, radius=t.window.radius) if attention and t.window else None)


def weights(translation: Translation) -> list[list[float]]:
    return translation.attention.double().round(decimals=WEIGHT_DECIMALS).tolist()


def translation_result(translation: Translation, *, attention: bool, align: bool,
                       decode: Callable[[list[str]], str]) -> TranslationResult:
    parts, sentences = translation.parts, translation.sentences
    single = translation if not sentences else sentences[0].translation if len(sentences) == 1 else None
    window = single.window if single is not None else None
    return TranslationResult(
        text=translation.text, score=round(translation.score, 6), trg_pieces=translation.trg_pieces,
        attention=weights(single) if attention and single is not None else None,
        alignment=pharaoh(text_alignment(translation)) if align else None,
        window=Window(centres=window.centres, radius=window.radius) if attention and window else None,
        placed=character_spans(translation, decode),
        sentences=[sentence_result(part, attention=attention, align=align) for part in parts] if parts else None)


@router.get("/models", summary="Served models")
async def models(state: State) -> list[dict[str, Any]]:
    """Languages, sizes, checkpoint, default beam and the valid/test BLEU measured at the end of training."""
    return [model.describe(beam_size=state.default_beam(model)) for model in state.models.values()]
