"""Shared by the training tests: tiny runs of the toy config on a slice of the toy corpus (the ``corpus`` fixture
of conftest.py), and what they logged."""

import json
from pathlib import Path

from tests.helpers import ROOT

CONFIG = str(ROOT / "configs" / "toy.yaml")
TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "training.num_threads=1",
        "training.batch_tokens=300", "training.log_every=1", "training.save_every_minutes=0",
        "training.shortlist=false"]


def train_args(model_dir: Path, corpus: list[str], *extra: str) -> list[str]:
    args = ["train", CONFIG]
    for override in [*corpus, *TINY, f"training.model_dir={model_dir}", *extra]:
        args += ["--set", override]
    return args


def events(model_dir: Path, kind: str) -> list[dict]:
    lines = (model_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def validation_figures(model_dir: Path) -> list[tuple]:
    return [(e["step"], e["epoch"], e["lr"], e["loss"], e["ppl"], e["bleu"], e["best"])
            for e in events(model_dir, "valid")]
