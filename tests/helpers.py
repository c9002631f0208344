"""Shared by the tests: the repository's paths, slices of the toy corpus, tiny models trained on them, random
untrained models for the searches, a server.

Fixtures live in conftest.py; these are plain functions and constants (``from tests.helpers import ...``).
"""

import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

from seq2seq.cli import main
from seq2seq.config import ModelConfig
from seq2seq.model.network import Seq2Seq, build_model
from seq2seq.special_ids import EOS_ID

ROOT = Path(__file__).resolve().parent.parent  # the repository
TOY = ROOT / "data" / "toy"
TOY_CONFIG = str(ROOT / "configs" / "toy.yaml")


def random_model(*, input_feeding: bool = False, seed: int = 3, vocab: int = 16, attention: str = "dot",
                 alignment: str = "global") -> Seq2Seq:
    """A tiny untrained model (eval mode) for the search tests: 16 source pieces, ``vocab`` target pieces."""
    torch.manual_seed(seed)
    config = ModelConfig(embedding_dim=8, encoder_hidden=5, decoder_hidden=10, dropout=0.0,
                         input_feeding=input_feeding, attention=attention, alignment=alignment, local_window=2)
    model = build_model(config, src_vocab_size=16, trg_vocab_size=vocab, max_source_positions=32).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] -= 1.5  # an untrained model should not stop at once
    return model


def write_slice(directory: Path, split: str, lines: int) -> str:
    """The first ``lines`` pairs of a toy split as DIRECTORY/SPLIT.{en,de}; returns the prefix."""
    for lang in ("en", "de"):
        text = (TOY / f"{split}.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)[:lines]
        (directory / f"{split}.{lang}").write_text("".join(text), encoding="utf-8")
    return str(directory / split)


def train_tiny(root: Path, overrides: list[str], *, train_lines: int, valid_lines: int) -> Path:
    """Train a model on toy slices written to ``root`` (with ``overrides``); returns its model directory."""
    args = ["train", TOY_CONFIG]
    for override in [f"data.train={write_slice(root, 'train', train_lines)}",
                     f"data.valid={write_slice(root, 'valid', valid_lines)}", "data.test=null",
                     f"training.model_dir={root / 'model'}", *overrides]:
        args += ["--set", override]
    assert main(args) == 0
    return root / "model"


def start_server(*args: str, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """``seq2seq serve ... --port 0``; the process and its base URL, read from the log line.

    Bounded: a server that says nothing, exits, or does not answer within ``timeout`` seconds fails the test and is
    killed (its log's last lines in the message), never left running.
    """
    process = subprocess.Popen([sys.executable, "-m", "seq2seq", "serve", *args, "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True).start()  # keeps the pipe drained
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    try:
        base = _announced_url(lines, seen, deadline)
        while True:  # the log line comes just before uvicorn accepts connections
            try:
                urllib.request.urlopen(base + "/health", timeout=5)
                return process, base
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise AssertionError("the server does not answer") from None
                time.sleep(0.1)
    except BaseException as error:
        process.kill()
        process.wait(timeout=30)
        raise AssertionError(f"the server did not start ({error}); its log ends:\n{''.join(seen[-10:])}") from None


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # the process closed its stderr: it has exited


def _announced_url(lines: queue.Queue, seen: list[str], deadline: float) -> str:
    """The URL of the server's "on http://..." log line, waiting at most until ``deadline``."""
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("the server said nothing within its time") from None
        if line is None:
            raise AssertionError("the server exited")
        seen.append(line)
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
