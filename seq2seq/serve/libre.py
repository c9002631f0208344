"""LibreTranslate's API, so that its clients (its Python client, editor and browser plugins) work unchanged.

``POST /translate`` takes ``q`` (a string or a list of strings), ``source``, ``target``, ``format`` and
``alternatives``, as JSON or as a form, and answers ``{"translatedText": ...}`` (a list for a list);
``GET /languages`` lists the languages with their targets. Errors are ``{"error": "..."}`` with
LibreTranslate's status codes and messages (400 for a bad request or an unsupported language), except that
a request over this server's size limits gets 413.

Where we differ, on purpose: an empty ``q`` translates to an empty string; ``source: "auto"`` resolves only
when a single source language is served into the target (there is no language identifier), and reports it
as ``detectedLanguage``; ``format: "html"`` is refused. The model translates one sentence per line, so a text
with line breaks is translated line by line and joined again (each line counts against ``max_texts``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile

from seq2seq.serve.limits import ApiError, check_text
from seq2seq.serve.models import LANGUAGE_NAMES, ServedModel, languages, model_for_pair
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
    detected = source == "auto"
    model = pick_model(state, source, target)
    state.limits.check_texts(texts)
    state.access.limit(key, client_address(request), sum(len(text) for text in texts))
    translations, others = await translate_lines(state, model, texts, alternatives)
    result: dict[str, Any] = {"translatedText": translations if is_list else translations[0]}
    if detected:
        found = {"confidence": 100.0, "language": model.source}
        result["detectedLanguage"] = [found] * len(texts) if is_list else found
    if alternatives:
        result["alternatives"] = others if is_list else others[0]
    return result


@router.get("/frontend/settings", summary="What a front end needs to know (LibreTranslate)")
async def frontend_settings(state: State) -> dict[str, Any]:
    """Whether translating needs an API key, and the character limit per request (-1: none)."""
    char_limit = state.access.char_limit
    return {"apiKeys": state.access.key_required, "keyRequired": state.access.key_required,
            "charLimit": char_limit if char_limit is not None else -1, "suggestions": False,
            "filesTranslation": False, "supportedFilesFormat": []}


async def request_params(request: Request) -> dict[str, Any]:
    """The request's parameters: its JSON object, or its form fields and query string (as LibreTranslate)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):  # not JSON, not UTF-8, too deeply nested, an integer too long
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON format")
        return body
    params: dict[str, Any] = dict(request.query_params)
    try:
        form = await request.form()
    except Exception as error:  # noqa: BLE001 - multipart's parser raises several kinds
        raise ApiError(400, f"Invalid request: the body is neither JSON nor a form ({error})") from None
    for key in form:
        values = form.getlist(key)
        if any(isinstance(value, UploadFile) for value in values):
            raise ApiError(400, f"Invalid request: {key} must be text, not a file")
        params[key] = values[0] if len(values) == 1 else list(values)
    return params


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


def pick_model(state: ServeState, source: str, target: str) -> ServedModel:
    """The model for a language pair, with LibreTranslate's messages for what is not served."""
    if source == "auto":
        sources = sorted({m.source for m in state.models.values() if m.target == target})
        if len(sources) != 1:
            choices = f"one of {', '.join(sources)}" if sources else "a served source language"
            raise ApiError(400, f"Invalid request: source 'auto' needs a language identifier, which this server "
                                f"does not have; pass {choices}")
        source = sources[0]
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


async def translate_lines(state: ServeState, model: ServedModel, texts: list[str],
                          alternatives: int) -> tuple[list[str], list[list[str]]]:
    """Each text translated line by line: the best translation and up to ``alternatives`` others."""
    lines = [text.splitlines() or [""] for text in texts]
    flat = [line for text_lines in lines for line in text_lines]
    state.limits.check_texts(flat, unit="lines")  # each line is a sentence to decode
    n_best = alternatives + 1
    beam = max(state.default_beam(model), n_best)
    results = await state.translate(model, flat, beam=beam, n_best=n_best)
    best, others, start = [], [], 0
    for text_lines in lines:
        chunk = results[start:start + len(text_lines)]
        start += len(text_lines)
        best.append("\n".join(n_best_list[0].text for n_best_list in chunk))
        if len(chunk) == 1:  # alternatives of a one-line text: the other hypotheses, without repeats
            others.append(list(dict.fromkeys(t.text for t in chunk[0][1:] if t.text != best[-1])))
        else:
            others.append([])
    return best, others
