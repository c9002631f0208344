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
