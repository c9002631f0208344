"""``seq2seq serve``: load the models, bind the port, run uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import errno
import logging
import re
import signal
import socket
from collections.abc import Sequence

from seq2seq.decoding.glossary import Glossary
from seq2seq.errors import UserError
from seq2seq.serve.access import Access
from seq2seq.serve.keys import KeyStore
from seq2seq.serve.limits import ApiError, Limits
from seq2seq.serve.models import load_models
from seq2seq.serve.settings import ServeSettings
from seq2seq.serve.state import ServeState

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 30  # SIGTERM: how long in-flight requests may take to finish before the server exits


def serve(model_dirs: Sequence[str], settings: ServeSettings = ServeSettings(), *, precision: str = "fp32") -> None:
    """Serve until stopped. Loading errors and a port in use raise :class:`UserError` before anything is served,
    and so does a start-up that uvicorn itself gives up on."""
    import uvicorn

    from seq2seq.serve.app import create_app

    limits = Limits(max_texts=settings.max_texts, max_chars=settings.max_chars)
    models = load_models(model_dirs, checkpoint=settings.checkpoint, precision=precision)
    glossary = Glossary.load(settings.glossary) if settings.glossary else None
    state = ServeState(models, limits=limits, beam=settings.beam, max_batch=settings.max_batch,
                       access=access_rules(settings), timeout_s=settings.timeout_s, glossary=glossary)
    if glossary is not None:
        log.info("glossary %s: %d terms", settings.glossary, len(glossary))
    for model in models.values():
        try:
            limits.check_search(state.default_beam(model), 1, model.translator.trg_tok.vocab_size)
        except ApiError as error:
            raise UserError(f"{model.name}'s default beam: {error.message}") from None
    host, port = settings.host, settings.port
    listener = bind(host, port)
    port = listener.getsockname()[1]  # the port the system chose for --port 0
    server = uvicorn.Server(uvicorn.Config(create_app(state), host=host, port=port, log_level="info",
                                           timeout_graceful_shutdown=GRACEFUL_SECONDS,
                                           limit_concurrency=settings.max_connections))
    logging.getLogger("uvicorn.access").addFilter(RedactKeys())  # after uvicorn has set its logging up
    log.info("serving %s on http://%s:%d (web page at /, API docs at /docs)", ", ".join(models), host, port)
    # uvicorn finishes the in-flight requests on SIGTERM or Ctrl-C, then raises the signal again for the handler
    # that was installed before it: ignoring it there makes a requested stop exit with code 0.
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[listener])
        if not server.started:
            raise UserError("the server could not start; its log above says why.")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.close()


def access_rules(settings: ServeSettings) -> Access:
    """The API keys (with ``--api-keys``) and the default limits of a server."""
    keys = None
    if settings.api_keys:
        keys = KeyStore(settings.api_keys_db, create=False, timeout=1.0)
        count = len(keys.list())
        log.info("API keys required: %d key(s) in %s%s", count, settings.api_keys_db,
                 "" if count else "; add one with `seq2seq keys add NAME`")
    return Access(keys, req_limit=settings.req_limit, char_limit=settings.char_limit)


class RedactKeys(logging.Filter):
    """uvicorn's access log prints each request's path with its query string: an ``api_key`` there is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(KEY_IN_QUERY.sub(r"\1***", arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


KEY_IN_QUERY = re.compile(r"([?&]api_key=)[^&\s]*")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a :class:`UserError` that says why not (port in use, unknown host, no permission)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as error:
        raise UserError(f"--host {host}: cannot resolve it ({error.strerror}).") from None
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without it Nagle
    # and delayed ACKs hold every answer on a kept-alive connection for ~40 ms.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is already in use; stop the other server or pass --port.") from None
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror}.") from None
    listener.listen(2048)
    return listener
