"""Translate raw text with a trained model: batching by length, search, detokenization.

:class:`Translator` loads a model directory (config.yaml, spm/, checkpoints/) for use from Python; the
function :func:`translate_batch` is what training uses for validation BLEU.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from seq2seq.batching import source_tensor
from seq2seq.checkpoint import load_checkpoint
from seq2seq.config import Config, load_config
from seq2seq.errors import UserError
from seq2seq.model import Seq2Seq, build_model
from seq2seq.search import Hypothesis, greedy_search, max_output_lengths
from seq2seq.tokenizer import Tokenizer, load_tokenizers


class Translation(NamedTuple):
    text: str  # detokenized output
    src_pieces: list[str]  # source subword pieces (EOS excluded)
    trg_pieces: list[str]  # output subword pieces (EOS excluded)
    score: float  # sum of token log-probabilities
    attention: torch.Tensor  # [T, S]: rows are output pieces plus EOS, columns source pieces plus EOS


def translate_batch(model: Seq2Seq, src_tok: Tokenizer, trg_tok: Tokenizer, texts: list[str], *,
                    config: Config, device: torch.device, max_source_pieces: int | None = None) -> list[Translation]:
    """Translate ``texts`` in batches of similar length; results come back in input order."""
    model.eval()
    src_ids = src_tok.encode(texts)
    if max_source_pieces is not None:
        src_ids = [ids[:max_source_pieces] for ids in src_ids]
    results: list[Translation | None] = [None] * len(texts)
    for i, text in enumerate(texts):
        if not text.strip():  # nothing to translate: an empty line stays empty
            results[i] = Translation("", [], [], 0.0, torch.zeros(0, 0))
    order = sorted((i for i in range(len(texts)) if results[i] is None), key=lambda i: len(src_ids[i]))
    size = config.decoding.batch_size
    for start in range(0, len(order), size):
        chunk = order[start:start + size]
        src, lengths = source_tensor([src_ids[i] for i in chunk])
        limits = max_output_lengths(lengths, ratio=config.decoding.max_length_ratio,
                                    extra=config.decoding.max_length_extra)
        hypotheses = greedy_search(model, src.to(device), lengths, max_lengths=limits)
        for i, hypothesis in zip(chunk, hypotheses):
            results[i] = _translation(hypothesis, src_ids[i], src_tok, trg_tok)
    return results  # type: ignore[return-value]


def _translation(hypothesis: Hypothesis, src_ids: list[int], src_tok: Tokenizer, trg_tok: Tokenizer) -> Translation:
    return Translation(text=trg_tok.decode([hypothesis.tokens])[0], src_pieces=src_tok.id_to_piece(src_ids),
                       trg_pieces=trg_tok.id_to_piece(hypothesis.tokens), score=hypothesis.score,
                       attention=hypothesis.attention)


def pick_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was requested but PyTorch sees no CUDA device; use device: cpu or auto.")
    return torch.device(name)


class Translator:
    """A trained model ready to translate raw text: ``Translator.from_dir("runs/toy").translate([...])``."""

    def __init__(self, model: Seq2Seq, src_tok: Tokenizer, trg_tok: Tokenizer, config: Config,
                 device: torch.device):
        self.model = model.to(device).eval()
        self.src_tok, self.trg_tok = src_tok, trg_tok
        self.config = config
        self.device = device

    @classmethod
    def from_dir(cls, model_dir: str | Path, *, checkpoint: str = "best.pt", device: str = "cpu") -> Translator:
        model_dir = Path(model_dir)
        if not (model_dir / "config.yaml").is_file():
            raise UserError(f"{model_dir} is not a model directory: it has no config.yaml. "
                            "Pass the training.model_dir of a trained model.")
        config = load_config(model_dir / "config.yaml")
        src_tok, trg_tok = load_tokenizers(model_dir / "spm")
        state = load_checkpoint(model_dir / "checkpoints" / checkpoint)
        model = build_model(config.model, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size)
        model.load_state_dict(state["model"])
        return cls(model, src_tok, trg_tok, config, pick_device(device))

    def translate(self, texts: list[str]) -> list[str]:
        """Detokenized translations, one per input, in order."""
        return [t.text for t in self.translate_with_details(texts)]

    def translate_with_details(self, texts: list[str]) -> list[Translation]:
        """Translations with pieces, score and attention matrix."""
        return translate_batch(self.model, self.src_tok, self.trg_tok, texts, config=self.config,
                               device=self.device, max_source_pieces=self.config.data.max_length)
