"""The FastAPI app: both APIs, the web page, offline API docs, and errors as ``{"error": "..."}``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

import seq2seq
from seq2seq.serve import detect, libre, native
from seq2seq.serve.batcher import Batcher
from seq2seq.serve.limits import ApiError
from seq2seq.serve.state import ServeState

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def create_app(state: ServeState) -> FastAPI:
    """An app serving ``state.models``; its batcher starts and stops with the app (uvicorn's lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.batcher = Batcher(state.open_stream)
        state.batcher.start()
        yield
        await state.batcher.stop()

    app = FastAPI(title="seq2seq", version=seq2seq.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Neural machine translation with an LSTM encoder and a Luong-attention decoder: "
                              "a LibreTranslate-compatible API and a native API with attention and alignments.")
    app.state.serve = state
    app.include_router(libre.router)
    app.include_router(detect.router)
    app.include_router(native.router)
    add_error_handlers(app)
    add_body_limit(app, state.limits.max_body_bytes)
    add_pages(app)
    app.openapi_schema = openapi_schema(app)  # what app.openapi() serves, made once all routes are there
    return app


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with our refusals (400, 404, 413 as ``{"error": ...}``) in place of its 422."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    error = {"content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
    refusals = {"400": "Invalid request (missing or mistyped field, malformed body, unsupported language)",
                "404": "Unknown model", "413": "Too many texts or too long a text for this server's limits"}
    for path in schema["paths"].values():
        for operation in path.values():
            if operation.get("requestBody"):
                operation["responses"].pop("422", None)
                operation["responses"].update({code: {"description": text, **error}
                                               for code, text in refusals.items()})
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal is ``{"error": "..."}``: bad types and malformed bodies are 400 (never 422 or 500)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"Invalid request: {describe_validation(error)}"}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        log.exception("a bug while answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"Cannot translate text: {type(error).__name__}: {error}"}, status_code=500)


def add_body_limit(app: FastAPI, max_bytes: int) -> None:
    """413 before reading a body that declares more bytes than any acceptable request needs."""

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            return JSONResponse({"error": f"Invalid request: the body has {int(declared)} bytes; this server "
                                          f"accepts at most {max_bytes} (max_texts × max_chars)."}, status_code=413)
        return await call_next(request)


def describe_validation(error: RequestValidationError) -> str:
    """``texts.0: Input should be a valid string; beam: ...`` from pydantic's error list."""
    parts = []
    for problem in error.errors()[:5]:
        if problem.get("type") == "json_invalid":
            return f"the body is not valid JSON ({problem.get('ctx', {}).get('error', 'cannot parse it')})"
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "body"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts)


def add_pages(app: FastAPI) -> None:
    """The web page at ``/``, the health check, and Swagger UI at ``/docs`` from files shipped in packages."""
    import swagger_ui_bundle

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="seq2seq API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    @app.get("/health", tags=["native"], summary="Health and batching counters")
    async def health(request: Request) -> JSONResponse:
        """200 while the server decodes (503 if its batcher has stopped), with the queue and batch counters."""
        state: ServeState = request.app.state.serve
        batcher = state.batcher
        alive = batcher is not None and batcher.alive
        counters = {"queued": batcher.queued, "steps": batcher.stats.steps, "sentences": batcher.stats.sentences,
                    "rows": batcher.stats.rows} if batcher else {}
        return JSONResponse({"status": "ok" if alive else "error", "models": list(state.models), **counters},
                            status_code=200 if alive else 503)
