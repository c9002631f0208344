"""Shared by the tests: the repository's paths, slices of the toy corpus, tiny models trained on them, random
untrained models for the searches, a server.

Fixtures live in conftest.py; these are plain functions and constants (``from tests.helpers import ...``).
"""

import os
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


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    """``seq2seq serve ... --port 0``; the process and its base URL, read from the log line."""
    process = subprocess.Popen([sys.executable, "-m", "seq2seq", "serve", *args, "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    for line in process.stderr:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if found:
            base = found.group(1)
            break
        assert time.monotonic() < deadline, "the server did not start"
    else:
        raise AssertionError(f"the server exited with {process.wait()}")
    while True:  # the log line comes just before uvicorn accepts connections
        try:
            urllib.request.urlopen(base + "/health", timeout=5)
            break
        except urllib.error.URLError:
            assert time.monotonic() < deadline, "the server does not answer"
            time.sleep(0.1)
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
    return process, base
