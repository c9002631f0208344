"""The native API: everything the model knows about a translation (n-best, scores, pieces, attention, alignment).

``POST /v1/translate`` ``{"texts": [...], "beam": 5, "n_best": 1, "attention": true, "align": true}`` answers
one result per text; ``GET /v1/models`` describes the served models. The web page uses both.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from seq2seq.decoding.alignment import align_words, pharaoh
from seq2seq.decoding.translator import Translation
from seq2seq.serve.state import State, client_address

router = APIRouter(prefix="/v1", tags=["native"])

EOS_LABEL = "</s>"  # the label of the end-of-sentence row and column of an attention matrix
WEIGHT_DECIMALS = 4  # attention weights are rounded to this many decimals in responses


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[str] = Field(description="Sentences to translate, one translation result each",
                             examples=[["Ein Mann fährt Fahrrad."]])
    model: str | None = Field(None, description="A name from GET /v1/models (default: the first served model)")
    beam: int | None = Field(None, description="Beam size; 1 is greedy search (default: the server's)")
    n_best: int = Field(1, description="Translations per text, best first (at most the beam size)")
    attention: bool = Field(False, description="Add each translation's attention matrix [target, source]")
    align: bool = Field(False, description="Add each translation's word alignment (Pharaoh format)")
    api_key: str | None = Field(None, description="The API key, where the server requires one (else ignored)")


class Window(BaseModel):
    """Local attention's window on each attention row: [centre - radius, centre + radius]."""

    centres: list[float] = Field(description="p_t of each row, in source positions")
    radius: int = Field(description="D, the window's half-width")


class TranslationResult(BaseModel):
    text: str
    score: float = Field(description="Sum of the token log-probabilities")
    trg_pieces: list[str] = Field(description="Output subword pieces; the attention rows, then </s> if produced")
    attention: list[list[float]] | None = Field(
        None, description="[target pieces (+ </s>), source pieces + </s>]: each row sums to 1")
    alignment: str | None = Field(None, description="source-target word index pairs, e.g. '0-0 1-2'")
    window: Window | None = Field(None, description="local attention only: each attention row's centre p_t (in "
                                                    "source positions) and the window's half-width D")


class TextResult(BaseModel):
    source: str
    src_pieces: list[str] = Field(description="Source subword pieces; the attention columns, then </s>")
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
    beam = request.beam if request.beam is not None else max(state.default_beam(model), request.n_best)
    results = await state.translate(model, request.texts, beam=beam, n_best=request.n_best)
    if request.attention:  # local attention's windows, replayed off the event loop
        results = await asyncio.to_thread(lambda: [[model.translator.with_window(t) for t in n_best]
                                                   for n_best in results])
    return TranslateResponse(model=model.name, beam=beam, results=[
        TextResult(source=text, src_pieces=n_best[0].src_pieces,
                   translations=[translation_result(t, attention=request.attention, align=request.align)
                                 for t in n_best])
        for text, n_best in zip(request.texts, results)])


def translation_result(translation: Translation, *, attention: bool, align: bool) -> TranslationResult:
    weights, window = translation.attention, translation.window
    return TranslationResult(
        text=translation.text, score=round(translation.score, 6), trg_pieces=translation.trg_pieces,
        attention=weights.double().round(decimals=WEIGHT_DECIMALS).tolist() if attention else None,
        alignment=pharaoh(align_words(weights, translation.src_pieces, translation.trg_pieces)) if align else None,
        window=Window(centres=window.centres, radius=window.radius) if attention and window else None)


@router.get("/models", summary="Served models")
async def models(state: State) -> list[dict[str, Any]]:
    """Languages, sizes, checkpoint, default beam and the valid/test BLEU measured at the end of training."""
    return [model.describe(beam_size=state.default_beam(model)) for model in state.models.values()]
