"""Subword tokenization with sentencepiece: train on (a sample of) the training split once, reuse afterwards.

Every model is trained with the special ids of :mod:`seq2seq.special_ids`, so batching and search can use
them as constants.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from seq2seq.common.atomic import atomic_write_bytes
from seq2seq.errors import UserError
from seq2seq.special_ids import BOS_ID, EOS_ID, PAD_ID, UNK_ID


class Tokenizer:
    """A loaded sentencepiece model: text ↔ piece ids (without BOS/EOS)."""

    def __init__(self, model_path: Path):
        self.path = Path(model_path)
        try:
            self.processor = spm.SentencePieceProcessor(model_file=str(self.path))
        except (OSError, RuntimeError) as error:  # sentencepiece raises RuntimeError for a damaged file
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise UserError(f"{self.path.parent} holds no readable sentencepiece models: {self.path.name} does not "
                            f"load ({reason}). In a model directory, delete it and resume training to copy the "
                            "prepared one again, or restore it from a copy.") from None

    @property
    def vocab_size(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, texts: list[str], *, num_threads: int = 1) -> list[list[int]]:
        return self.processor.encode(texts, out_type=int, num_threads=num_threads)

    def sample(self, texts: list[str], *, alpha: float) -> list[list[int]]:
        """Random segmentations of ``texts``: for BPE, each merge is skipped with probability ``alpha``
        (BPE-dropout); for unigram, segmentations are sampled with smoothing ``alpha`` (subword
        regularization). Seeded by ``sentencepiece.set_random_generator_seed``: on one thread, since the
        worker threads of a batch encode draw from generators the seed does not reset (not repeatable)."""
        return self.processor.encode(texts, out_type=int, enable_sampling=True, alpha=alpha, nbest_size=-1,
                                     num_threads=1)

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Detokenized texts, one per id list. Decoded one by one: sentencepiece's batch call starts a thread
        pool each time, which costs ~0.1 ms against ~2 µs a sentence, and decoding calls it per sentence."""
        return [self.processor.decode(sentence) for sentence in ids]

    def id_to_piece(self, ids: Iterable[int]) -> list[str]:
        return [self.processor.id_to_piece(i) for i in ids]


def train_sentencepiece(sentences: list[str], model_path: Path, *, vocab_size: int, model_type: str,
                        character_coverage: float, num_threads: int = 1, user_symbols: Sequence[str] = ()) -> None:
    """Train a model on ``sentences`` and write ``model_path`` (and its .vocab) atomically.

    Training happens in a temporary directory and the files are moved into place at the end, so an
    interrupted run never leaves a half-written model that a later run would reuse. The model is the same
    on every run with the same sentences and ``num_threads`` (other thread counts give a slightly different one).
    """
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {"user_defined_symbols": ",".join(user_symbols)} if user_symbols else {}  # else as before
    with tempfile.TemporaryDirectory(dir=model_path.parent) as tmp:
        prefix = Path(tmp) / model_path.stem
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter([s for s in sentences if s.strip()]),
            model_prefix=str(prefix),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            hard_vocab_limit=False,  # a small corpus may not support the requested size: use what it has
            num_threads=num_threads,
            minloglevel=2,
            **extra,
        )
        atomic_write_bytes(model_path.with_suffix(".vocab"), Path(f"{prefix}.vocab").read_bytes())
        atomic_write_bytes(model_path, Path(f"{prefix}.model").read_bytes())  # last: its presence means done


def load_or_train(spm_dir: Path, pairs: list[tuple[str, str]], *, vocab_sizes: tuple[int, int],
                  model_type: str, joint: bool, character_coverage: float, num_threads: int = 1,
                  user_symbols: Sequence[str] = ()) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers from ``spm_dir``, training them on ``pairs`` if they are not there."""
    spm_dir = Path(spm_dir)
    train = functools.partial(train_sentencepiece, model_type=model_type, character_coverage=character_coverage,
                              num_threads=num_threads, user_symbols=user_symbols)
    if joint:
        path = spm_dir / "joint.model"
        if not path.is_file():
            sentences = [s for pair in pairs for s in pair]
            train(sentences, path, vocab_size=vocab_sizes[0])
        tokenizer = Tokenizer(path)
        return tokenizer, tokenizer
    out = []
    for side, name in enumerate(("src", "trg")):
        path = spm_dir / f"{name}.model"
        if not path.is_file():
            train([pair[side] for pair in pairs], path, vocab_size=vocab_sizes[side])
        out.append(Tokenizer(path))
    return out[0], out[1]


def load_tokenizers(spm_dir: Path) -> tuple[Tokenizer, Tokenizer]:
    """The tokenizers of a trained model directory (joint or separate)."""
    spm_dir = Path(spm_dir)
    if (spm_dir / "joint.model").is_file():
        tokenizer = Tokenizer(spm_dir / "joint.model")
        return tokenizer, tokenizer
    for name in ("src.model", "trg.model"):
        if not (spm_dir / name).is_file():
            raise UserError(f"{spm_dir / name} is missing: the model directory is incomplete (its sentencepiece "
                            "models are written when training starts).")
    return Tokenizer(spm_dir / "src.model"), Tokenizer(spm_dir / "trg.model")
