"""The splits a run trains and validates on: prepared token arrays (memory-mapped) plus, for scoring, raw text.

:func:`prepare_data` prepares the corpus when needed (:mod:`seq2seq.data.prepare`), installs the sentencepiece
models in the model directory (so ``translate`` needs nothing else) and opens the arrays.
"""

from __future__ import annotations

import filecmp
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seq2seq.common.atomic import atomic_write_bytes
from seq2seq.common.model_dir import ModelDir
from seq2seq.config import Config
from seq2seq.data.arrays import TokenArray
from seq2seq.data.batching import Example, padded_sizes
from seq2seq.data.corpus import read_parallel, split_paths
from seq2seq.data.prepare import ensure_prepared, prepared_dir, split_prefixes
from seq2seq.data.tokenizer import Tokenizer, load_tokenizers
from seq2seq.errors import UserError


@dataclass
class Split:
    """One split: memory-mapped piece ids (for the loss) and, for valid and test, raw text (for BLEU)."""

    src: TokenArray
    trg: TokenArray
    sources: list[str] | None = None
    references: list[str] | None = None

    def __len__(self) -> int:
        return len(self.src)

    def text(self) -> tuple[list[str], list[str]]:
        """The raw sources and references, which valid and test keep for BLEU."""
        if self.sources is None or self.references is None:
            raise ValueError("this split keeps no raw text: only valid and test do")
        return self.sources, self.references

    def sizes(self) -> np.ndarray:
        """[N] each pair's padded size, the one number per pair that batch planning needs."""
        return padded_sizes(self.src.lengths(), self.trg.lengths())

    def examples(self, indices: np.ndarray) -> list[Example]:
        """The given pairs, read from the arrays without mapping them (see :meth:`TokenArray.take`)."""
        return [Example(src, trg) for src, trg in zip(self.src.take(indices), self.trg.take(indices))]

    def release(self) -> None:
        self.src.release()
        self.trg.release()


def prepare_data(config: Config, model_dir: Path, *, prepare: bool = True) -> tuple[Tokenizer, Tokenizer,
                                                                                    dict[str, Split]]:
    """Tokenizers and splits of a run: prepared (or reused), installed in ``model_dir/spm``, opened.

    ``prepare=False`` opens what another process prepared (under torchrun, rank 0 prepares).
    """
    directory = ensure_prepared(config) if prepare else prepared_dir(config)  # the process that prepares checks
    if prepare:
        install_tokenizers(directory / "spm", ModelDir(model_dir).spm)
    src_tok, trg_tok = load_tokenizers(ModelDir(model_dir).spm)
    return src_tok, trg_tok, open_splits(config, directory)


def install_tokenizers(prepared: Path, installed: Path) -> None:
    """Copy the prepared sentencepiece models into the model directory; refuse to swap those of a run.

    Models are compared by their ``.vocab`` files (pieces and scores): the ``.model`` files also record the
    temporary path they were trained in, so equal vocabularies can differ in bytes.
    """
    for vocab in sorted(prepared.glob("*.vocab")):
        model = vocab.with_suffix(".model")
        if not (installed / model.name).exists():
            atomic_write_bytes(installed / vocab.name, vocab.read_bytes())
            atomic_write_bytes(installed / model.name, model.read_bytes())  # last: its presence means done
        elif not filecmp.cmp(vocab, installed / vocab.name, shallow=False):
            target = installed / model.name
            raise UserError(f"{target} differs from the sentencepiece model prepared from the current data "
                            f"({model}): the corpus or tokenizer changed since this run started, and the run's "
                            "vocabulary cannot change. Restore the data, or start a new run (--overwrite or "
                            "another training.model_dir).")


def open_splits(config: Config, directory: Path) -> dict[str, Split]:
    splits = {}
    for name, prefix in split_prefixes(config).items():
        split = Split(TokenArray(directory / f"{name}.src"), TokenArray(directory / f"{name}.trg"))
        if name != "train":  # small: kept as text for BLEU against the raw references
            pairs = read_parallel(*split_paths(prefix, config.data.src_lang, config.data.trg_lang))
            split.sources, split.references = [s for s, _ in pairs], [t for _, t in pairs]
        splits[name] = split
    return splits


