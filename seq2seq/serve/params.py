"""The parameters of a LibreTranslate request: its JSON object, or its form fields and query string, as
LibreTranslate accepts both (``/translate`` and ``/detect`` read them the same way)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from seq2seq.serve.limits import ApiError


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
