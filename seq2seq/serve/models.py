"""The models a server holds: one :class:`Translator` per model directory, named after the directory."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seq.common.model_dir import BEST, ModelDir
from seq2seq.decoding.paragraphs import Segmenter
from seq2seq.decoding.translator import Translator
from seq2seq.errors import UserError

log = logging.getLogger(__name__)

# English names for the language codes LibreTranslate's /languages reports; other codes are shown as-is.
LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "ga": "Irish", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian",
    "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian",
    "vi": "Vietnamese", "zh": "Chinese",
}


@dataclass
class ServedModel:
    name: str  # the model directory's name; the native API's "model"
    directory: Path
    translator: Translator
    checkpoint: str
    precision: str  # fp32, bf16 or int8 (seq2seq/decoding/precision.py)
    bleu: dict[str, float] | None  # the BLEU training measured at its end, from metrics.jsonl
    segmenters: dict[bool, Segmenter] = field(default_factory=dict, repr=False)  # by split_sentences

    def segmenter(self, split_sentences: bool) -> Segmenter:
        """How this model's texts are cut: into sentences, or whole (a server logs no warning for either)."""
        if split_sentences not in self.segmenters:
            self.segmenters[split_sentences] = self.translator.segmenter(split_sentences=split_sentences, warn=False)
        return self.segmenters[split_sentences]

    @property
    def source(self) -> str:
        return self.translator.config.data.src_lang

    @property
    def target(self) -> str:
        return self.translator.config.data.trg_lang

    @property
    def default_beam(self) -> int:
        return self.translator.config.decoding.beam_size

    def describe(self, *, beam_size: int) -> dict[str, Any]:
        """What ``GET /v1/models`` reports: languages, sizes, checkpoint, the served beam, the BLEU of training."""
        translator = self.translator
        return {
            "name": self.name, "source": self.source, "target": self.target,
            "parameters": translator.parameters,
            "src_vocab_size": translator.src_tok.vocab_size, "trg_vocab_size": translator.trg_tok.vocab_size,
            "checkpoint": self.checkpoint, "precision": self.precision,
            "quantize": "int8" if self.precision == "int8" else None, "shortlist": translator.shortlist is not None,
            "beam_size": beam_size,
            "attention": translator.config.model.attention,
            "bleu": self.bleu,
        }


def final_bleu(metrics: Path) -> dict[str, float] | None:
    """The valid/test BLEU (with beam and length penalty) of the run's last ``final`` event in metrics.jsonl, if
    it has one."""
    if not metrics.is_file():
        return None
    final = None
    for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if isinstance(event, dict) and event.get("event") == "final":
            final = event
    if final is None:
        return None
    figures = {split: final[f"{split}_bleu"] for split in ("valid", "test") if f"{split}_bleu" in final}
    return {**figures, "beam_size": final.get("beam_size"), "length_penalty": final.get("length_penalty")}


def load_models(directories: Sequence[str | Path], *, checkpoint: str = BEST,
                precision: str = "fp32") -> dict[str, ServedModel]:
    """Load every model directory; names must be unique. Errors name the directory (exit code 2)."""
    models: dict[str, ServedModel] = {}
    for directory in map(Path, directories):
        name = Path(os.path.abspath(directory)).name  # "runs/toy/" → "toy"; a symbolic link keeps its own name
        if name in models:
            raise UserError(f"two model directories are named {name!r} ({models[name].directory} and {directory}); "
                            "the name is how clients pick a model, so rename one of them.")
        translator = Translator.from_dir(directory, checkpoint=checkpoint, precision=precision)
        models[name] = ServedModel(name, directory, translator, checkpoint, precision,
                                   bleu=final_bleu(ModelDir(directory).metrics))
        log.info("loaded %s: %s → %s from %s", name, models[name].source, models[name].target,
                 ModelDir(directory).checkpoint(checkpoint))
    return models


def languages(models: dict[str, ServedModel]) -> list[dict[str, Any]]:
    """LibreTranslate's ``/languages``: each source or target language with the targets it translates into."""
    targets: dict[str, list[str]] = {}
    for model in models.values():
        targets.setdefault(model.source, [])
        targets.setdefault(model.target, [])
        if model.target not in targets[model.source]:
            targets[model.source].append(model.target)
    return [{"code": code, "name": LANGUAGE_NAMES.get(code, code), "targets": sorted(found)}
            for code, found in sorted(targets.items())]


def model_for_pair(models: dict[str, ServedModel], source: str, target: str) -> ServedModel | None:
    """The first served model (in command-line order) that translates ``source`` into ``target``."""
    return next((m for m in models.values() if m.source == source and m.target == target), None)
