"""The server's settings, in one typed place: every default and its description. ``seq2seq serve`` makes its
options from these fields (the flag, the default and the help text), and the server and its state take them
from here, so the command line, :func:`seq2seq.serve.server.serve` and the request limits cannot disagree.

Importing this module is cheap (no FastAPI): the CLI reads it to build its parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from seq2seq.common.model_dir import BEST
from seq2seq.config import doc


@dataclass(frozen=True)
class ServeSettings:
    host: str = doc("address to listen on (127.0.0.1: this machine only; 0.0.0.0 for every interface)",
                    "127.0.0.1")
    port: int = doc("port (5000 is LibreTranslate's; 0 lets the system choose)", 5000)
    beam: int | None = doc("default beam size (unset: each model's decoding.beam_size)", None)
    checkpoint: str = doc("checkpoint file in MODEL_DIR/checkpoints", BEST)
    max_batch: int = doc("sentences decoding together, across requests, per model and beam size; more wait for a "
                         "free place", 64)
    max_texts: int = doc("texts per request (413 above)", 64)
    max_chars: int = doc("characters per text (413 above)", 5000)
    api_keys: bool = doc("require an API key (`seq2seq keys add NAME`) for translating; the page asks for one", False)
    api_keys_db: str = doc("the SQLite database of API keys", "api_keys.db")
    req_limit: int | None = doc("requests per minute per client address, or per key without its own limit "
                                "(429 above; unset: no limit)", None)
    char_limit: int | None = doc("characters per request, all texts together, per client or key without its own "
                                 "limit (400 above; unset: only max_chars per text)", None)
    max_connections: int = doc("open connections at once; past it, 503 at once, so idle or slow clients cannot "
                               "hold every place", 512)
    glossary: str | None = doc("a tab-separated file of 'source term<TAB>target term' lines: where a source term "
                               "occurs in a text, its translation must contain the target term (every model, every "
                               "API)", None)
    timeout_s: float = doc("seconds a request may wait for its translations; past it, 503 and its waiting "
                           "sentences are dropped", 60.0)
