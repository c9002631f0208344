"""What the parts of a training run share, passed as one value instead of the same nine arguments."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.common.model_dir import ModelDir
from seq2seq.config import Config
from seq2seq.data.dataset import Split
from seq2seq.data.tokenizer import Tokenizer
from seq2seq.training.reporters import Reporter
from seq2seq.training.run_state import Progress


@dataclass
class RunContext:
    """A training run as its trainer and its end see it: the config, the model directory, the data and the
    tokenizers, the device this process computes on, the reporters and the progress so far."""

    config: Config
    layout: ModelDir
    splits: dict[str, Split]
    src_tok: Tokenizer
    trg_tok: Tokenizer
    device: torch.device
    reporter: Reporter
    progress: Progress
