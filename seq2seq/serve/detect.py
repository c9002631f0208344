"""Language identification for LibreTranslate's API: ``POST /detect`` and ``source: "auto"``.

``/detect`` takes ``q`` (a string) and answers LibreTranslate's ``[{"language": "de", "confidence": 97.3}, ...]``:
the served source languages, most likely first, each with the identifier's probability (0–100) that the text is in
it, computed among every language the server knows (sources and targets), so that English text sent to a server
that translates only from German says so with a low confidence rather than a certain "de".
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from seq2seq.serve.limits import ApiError, check_text
from seq2seq.serve.params import request_params
from seq2seq.serve.state import ServeState, State, client_address

router = APIRouter(tags=["LibreTranslate"])

DETECT_SCHEMA = {
    "type": "object", "required": ["q"],
    "properties": {
        "q": {"type": "string", "description": "Text whose language to detect", "example": "Ein Mann fährt Fahrrad."},
        "api_key": {"type": "string", "description": "The API key, where the server requires one (else ignored)"},
    },
}


@router.post("/detect", summary="Detect the language of a text (LibreTranslate)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": DETECT_SCHEMA},
                 "application/x-www-form-urlencoded": {"schema": DETECT_SCHEMA}}}})
async def detect(request: Request, state: State) -> list[dict[str, Any]]:
    """``{"q": "Hallo Welt!"}`` → ``[{"confidence": 97.0, "language": "de"}]``."""
    params = await request_params(request)
    key = state.access.identify(params.get("api_key", request.query_params.get("api_key")), client_address(request))
    text = params.get("q")
    if text is None:
        raise ApiError(400, "Invalid request: missing q parameter")
    if not isinstance(text, str):
        raise ApiError(400, "Invalid request: q must be a string")
    check_text(text, "q")
    state.limits.check_texts([text])
    state.access.limit(key, client_address(request), len(text))
    sources = {model.source for model in state.models.values()}
    return ranked(state, text, sources)


def ranked(state: ServeState, text: str, candidates: set[str]) -> list[dict[str, Any]]:
    """The ``candidates`` most likely first, with their confidence (0–100, one decimal)."""
    confidences = state.identifier.confidences(text)
    order = sorted(candidates, key=lambda code: (-confidences.get(code, 0.0), code))
    return [{"confidence": round(100 * confidences.get(code, 0.0), 1), "language": code} for code in order]


def detect_source(state: ServeState, text: str, target: str) -> dict[str, Any]:
    """``source: "auto"``: the most likely of the source languages served into ``target``, with its confidence
    (LibreTranslate's ``detectedLanguage``); 400 when none is."""
    sources = {model.source for model in state.models.values() if model.target == target}
    if not sources:
        raise ApiError(400, f"{target} is not available as a target language")
    return ranked(state, text, sources)[0]
