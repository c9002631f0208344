"""From the config's file prefixes to tokenized examples: read, train/load sentencepiece, encode, filter."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from seq2seq.batching import Example
from seq2seq.config import Config
from seq2seq.corpus import DataError, read_parallel, split_paths
from seq2seq.tokenizer import Tokenizer, load_or_train

log = logging.getLogger(__name__)


@dataclass
class Split:
    """One split: raw text (for BLEU) and its encoded examples (for the loss)."""

    sources: list[str]
    references: list[str]
    examples: list[Example]


def read_split(config: Config, prefix: str) -> list[tuple[str, str]]:
    return read_parallel(*split_paths(prefix, config.data.src_lang, config.data.trg_lang))


def prepare_data(config: Config, model_dir: Path) -> tuple[Tokenizer, Tokenizer, dict[str, Split]]:
    """Tokenizers (trained on the first run, reused afterwards) and the encoded splits.

    Training pairs that are empty on either side, or longer than ``data.max_length`` pieces, are dropped
    and counted in the log; validation and test pairs are all kept, so their BLEU is comparable.
    """
    raw = {"train": read_split(config, config.data.train), "valid": read_split(config, config.data.valid)}
    if not any(s.strip() and t.strip() for s, t in raw["train"]):
        raise DataError(f"the training split {config.data.train}.{{{config.data.src_lang},{config.data.trg_lang}}} "
                        "has no pair with text on both sides; nothing to train on.")
    if config.data.test:
        raw["test"] = read_split(config, config.data.test)
    for name in ("valid", "test"):
        if name in raw and not raw[name]:
            prefix = getattr(config.data, name)
            raise DataError(f"the {name} split {prefix}.{{{config.data.src_lang},{config.data.trg_lang}}} is empty; "
                            f"it needs at least one sentence pair to score (data.{name}).")
    tok = config.tokenizer
    src_tok, trg_tok = load_or_train(model_dir / "spm", raw["train"], vocab_sizes=(tok.src_vocab_size,
                                     tok.trg_vocab_size), model_type=tok.type, joint=tok.joint,
                                     character_coverage=tok.character_coverage)
    splits = {}
    for name, pairs in raw.items():
        sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
        examples = [Example(s, t) for s, t in zip(src_tok.encode(sources), trg_tok.encode(references))]
        if name == "train":
            examples = _filter(examples, pairs, config.data.max_length)
        splits[name] = Split(sources, references, examples)
    return src_tok, trg_tok, splits


def _filter(examples: list[Example], pairs: list[tuple[str, str]], max_length: int) -> list[Example]:
    """Drop empty and over-long training pairs, logging how many of each."""
    empty = [i for i, (s, t) in enumerate(pairs) if not s.strip() or not t.strip()]
    too_long = [i for i, e in enumerate(examples) if len(e.src) > max_length or len(e.trg) > max_length]
    dropped = set(empty) | set(too_long)
    log.info("training pairs: %d read, %d dropped as empty, %d dropped as longer than %d pieces, %d kept",
             len(pairs), len(empty), len(set(too_long) - set(empty)), max_length, len(pairs) - len(dropped))
    kept = [e for i, e in enumerate(examples) if i not in dropped]
    if not kept:
        raise DataError(f"no training pairs are left after dropping those longer than data.max_length = "
                        f"{max_length} pieces; raise data.max_length.")
    return kept
