"""LibreTranslate's API, so that its clients (its Python client, editor and browser plugins) work unchanged.

``POST /translate`` takes ``q`` (a string or a list of strings), ``source``, ``target``, ``format`` and
``alternatives``, as JSON or as a form, and answers ``{"translatedText": ...}`` (a list for a list);
``GET /languages`` lists the languages with their targets. Errors are ``{"error": "..."}`` with
LibreTranslate's status codes and messages (400 for a bad request or an unsupported language), except that
a request over this server's size limits gets 413.

Each text is cut into sentences, as LibreTranslate does, and every sentence decodes as its own; the
translations come back between the text's whitespace, line and paragraph breaks. ``max_texts`` counts texts,
``max_chars`` characters per text and ``char_limit`` (API keys) characters per request, as LibreTranslate's
limits do; the decoding queue counts sentences.

``source: "auto"`` detects each text's language among the source languages served into the target
(:mod:`seq2seq.serve.detect`) and reports it as ``detectedLanguage``.

Where we differ, on purpose: an empty ``q`` translates to an empty string; ``format: "html"`` is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from seq2seq.serve.detect import detect_source
from seq2seq.serve.limits import ApiError, check_text
from seq2seq.serve.models import LANGUAGE_NAMES, ServedModel, languages, model_for_pair
from seq2seq.serve.params import request_params
from seq2seq.serve.state import ServeState, State, client_address

router = APIRouter(tags=["LibreTranslate"])


@router.get("/languages", summary="Supported languages (LibreTranslate)")
async def get_languages(state: State) -> list[dict[str, Any]]:
    """Each language code with its English name and the codes it can be translated into."""
    return languages(state.models)


# The body is read by hand (JSON or form, as LibreTranslate accepts both), so its schema is spelled out here.
REQUEST_SCHEMA = {
    "type": "object", "required": ["q", "source", "target"],
    "properties": {
        "q": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
              "description": "Text to translate, or a list of texts", "example": "Ein Mann fährt Fahrrad."},
        "source": {"type": "string", "description": "Source language code, or auto", "example": "de"},
        "target": {"type": "string", "description": "Target language code", "example": "en"},
        "format": {"type": "string", "enum": ["text"], "description": "Only text is supported"},
        "alternatives": {"type": "integer", "description": "How many alternative translations to add"},
        "api_key": {"type": "string", "description": "The API key, where the server requires one (else ignored)"},
    },
}


@router.post("/translate", summary="Translate text (LibreTranslate)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": REQUEST_SCHEMA},
                 "application/x-www-form-urlencoded": {"schema": REQUEST_SCHEMA}}}})
async def translate(request: Request, state: State) -> dict[str, Any]:
    """``{"q": "Hallo Welt!", "source": "de", "target": "en"}`` → ``{"translatedText": "Hello world!"}``."""
    params = await request_params(request)
    key = state.access.identify(params.get("api_key", request.query_params.get("api_key")), client_address(request))
    texts, is_list = parse_q(params.get("q"))
    source, target = language_param(params, "source"), language_param(params, "target")
    text_format = params.get("format") or "text"
    if text_format != "text":
        raise ApiError(400, f"{text_format} format is not supported")
    alternatives = parse_alternatives(params.get("alternatives", 0), state.limits.max_alternatives)
    check_pair(state, source, target)
    state.limits.check_texts(texts)
    state.access.limit(key, client_address(request), sum(len(text) for text in texts))
    detected = [detect_source(state, text, target) for text in texts] if source == "auto" else None
    sources = [found["language"] for found in detected] if detected is not None else [source] * len(texts)
    translations, others = await translate_by_source(state, texts, sources, target, alternatives)
    result: dict[str, Any] = {"translatedText": translations if is_list else translations[0]}
    if detected is not None:
        result["detectedLanguage"] = detected if is_list else detected[0]
    if alternatives:
        result["alternatives"] = others if is_list else others[0]
    return result


async def translate_by_source(state: ServeState, texts: list[str], sources: list[str], target: str,
                              alternatives: int) -> tuple[list[str], list[list[str]]]:
    """Each text translated from its source language (texts of one language decode in one call, all at once)."""
    best: list[str] = [""] * len(texts)
    others: list[list[str]] = [[] for _ in texts]
    groups = {source: [i for i, s in enumerate(sources) if s == source] for source in dict.fromkeys(sources)}
    calls = [translate_texts(state, pick_model(state, source, target), [texts[i] for i in indices], alternatives)
             for source, indices in groups.items()]
    for indices, (group_best, group_others) in zip(groups.values(), await asyncio.gather(*calls)):
        for i, text, alternative in zip(indices, group_best, group_others):
            best[i], others[i] = text, alternative
    return best, others


@router.get("/frontend/settings", summary="What a front end needs to know (LibreTranslate)")
async def frontend_settings(state: State) -> dict[str, Any]:
    """Whether translating needs an API key, and the character limit per request (-1: none)."""
    char_limit = state.access.char_limit
    return {"apiKeys": state.access.key_required, "keyRequired": state.access.key_required,
            "charLimit": char_limit if char_limit is not None else -1, "suggestions": False,
            "filesTranslation": False, "supportedFilesFormat": []}


def parse_q(q: Any) -> tuple[list[str], bool]:
    """The texts to translate, and whether ``q`` was a list."""
    if q is None:
        raise ApiError(400, "Invalid request: missing q parameter")
    if isinstance(q, str):
        return [q], False
    if isinstance(q, list) and all(isinstance(text, str) for text in q):
        return list(q), True
    raise ApiError(400, "Invalid request: q must be a string or a list of strings")


def language_param(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not value:
        raise ApiError(400, f"Invalid request: missing {name} parameter")
    if not isinstance(value, str):
        raise ApiError(400, f"Invalid request: {name} must be a language code such as 'en'")
    check_text(value, name)
    return value.lower()


def parse_alternatives(value: Any, limit: int) -> int:
    """A whole number of alternatives, read as LibreTranslate reads it (``int()`` of the number or string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ApiError(400, "Invalid request: alternatives parameter is not a number")
    try:
        count = max(0, int(value))
    except (ValueError, OverflowError):
        raise ApiError(400, "Invalid request: alternatives parameter is not a number") from None
    if count > limit:
        raise ApiError(400, f"Invalid request: alternatives parameter must be <= {limit}")
    return count


def check_pair(state: ServeState, source: str, target: str) -> None:
    """400 for a language, or a pair, that is not served (``source`` may be auto)."""
    if source == "auto":
        if not any(m.target == target for m in state.models.values()):
            raise ApiError(400, f"{target} is not supported")
        return
    pick_model(state, source, target)


def pick_model(state: ServeState, source: str, target: str) -> ServedModel:
    """The model for a language pair, with LibreTranslate's messages for what is not served."""
    served = {m.source for m in state.models.values()} | {m.target for m in state.models.values()}
    for code in (source, target):
        if code not in served:
            raise ApiError(400, f"{code} is not supported")
    model = model_for_pair(state.models, source, target)
    if model is None:
        raise ApiError(400, f"{name(target)} ({target}) is not available as a target language from "
                            f"{name(source)} ({source})")
    return model


def name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


async def translate_texts(state: ServeState, model: ServedModel, texts: list[str],
                          alternatives: int) -> tuple[list[str], list[list[str]]]:
    """Each text translated sentence by sentence: the best translation and up to ``alternatives`` others (the next
    best combinations of its sentences' hypotheses, without repeats)."""
    n_best = alternatives + 1
    options = model.translator.search_options(beam_size=max(state.default_beam(model), n_best), n_best=n_best)
    results = await state.translate(model, texts, options)
    best = [n_best_list[0].text for n_best_list in results]
    others = [list(dict.fromkeys(t.text for t in n_best_list[1:] if t.text != first))
              for first, n_best_list in zip(best, results)]
    return best, others
