"""Translate raw text with a trained model: encode, batch by length, search, detokenize.

:class:`Translator` loads a model directory (config.yaml, spm/, checkpoints/) for use from Python and the
CLI; :func:`translate_texts` is the shared path that training also uses for validation BLEU. Every search setting
travels in one :class:`~seq2seq.decoding.search_types.SearchOptions` (:meth:`Translator.search_options` makes the
model's own, with overrides); constraints belong to each text and travel beside it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import torch

from seq2seq.common.device import pick_device
from seq2seq.common.model_dir import BEST, ModelDir
from seq2seq.config import Config, load_config
from seq2seq.data.tokenizer import Tokenizer, load_tokenizers
from seq2seq.decoding.constraints import Constraints
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.paragraphs import DocumentStream, Segmenter
from seq2seq.decoding.precision import with_precision
from seq2seq.decoding.search_types import SearchOptions, Translation
from seq2seq.decoding.shortlist import Shortlist, load_shortlist
from seq2seq.decoding.translation_stream import TranslationStream
from seq2seq.decoding.window import attention_window
from seq2seq.errors import UserError
from seq2seq.model.checkpoint import load_checkpoint, model_weights
from seq2seq.model.network import Seq2Seq, build_model, count_parameters

log = logging.getLogger(__name__)


def translate_texts(model: Seq2Seq | Ensemble, src_tok: Tokenizer, trg_tok: Tokenizer, texts: list[str], *,
                    options: SearchOptions, device: torch.device, max_source_pieces: int,
                    first_line: int = 1, shortlist: Shortlist | None = None,
                    constraints: Sequence[Constraints | None] | None = None,
                    segmenter: Segmenter | None = None) -> list[list[Translation]]:
    """The ``options.n_best`` best translations of each text, in input order (see
    :class:`~seq2seq.decoding.translation_stream.TranslationStream`).

    ``segmenter`` says how texts are cut (:mod:`seq2seq.decoding.paragraphs`); by default each is one segment, with
    a part too long for the model cut at safe places, as validation and ``evaluate`` translate lines.
    """
    stream = DocumentStream(TranslationStream(model, src_tok, trg_tok, options=options, device=device,
                                              max_source_pieces=max_source_pieces, shortlist=shortlist),
                            segmenter or Segmenter(src_tok, max_source_pieces))
    results: list[list[Translation]] = [[] for _ in texts]
    finished = stream.add(list(enumerate(texts)), first_line=first_line, constraints=constraints)
    while not stream.idle:
        finished += stream.step()
    for index, translations in finished:
        results[index] = translations
    return results


ConstraintsArg = Sequence[Constraints | dict[str, list[str]] | list[str] | None] | None


def as_constraints(given: ConstraintsArg, texts: int) -> list[Constraints | None] | None:
    """The Python API's ``constraints`` argument as one Constraints (or None) per text."""
    if given is None:
        return None
    if len(given) != texts:
        raise UserError(f"{len(given)} constraint sets for {texts} texts; give one per text (None for none).")
    return [c if isinstance(c, Constraints) or c is None else Constraints.of(c, where=f"constraints of text {i + 1}")
            for i, c in enumerate(given)]


def require_model_dir(model_dir: str | Path) -> Path:
    """``model_dir`` as a Path; a UserError when it is not a model directory (it has no config.yaml)."""
    model_dir = Path(model_dir)
    if not ModelDir(model_dir).config.is_file():
        raise UserError(f"{model_dir} is not a model directory: it has no config.yaml. "
                        "Pass the training.model_dir of a trained model.")
    return model_dir


def load_model(model_dir: Path, checkpoint: str, *, config: Config, src_tok: Tokenizer, trg_tok: Tokenizer,
               training_weights: bool = False) -> Seq2Seq:
    """The model of ``model_dir/config.yaml`` with the weights of ``model_dir/checkpoints/<checkpoint>``.

    ``training_weights`` takes the weights that trained instead of their moving average (``training.ema_decay``).
    """
    path = ModelDir(model_dir).checkpoint(checkpoint)
    weights = model_weights(load_checkpoint(path), path, training=training_weights)
    model = build_model(config.model, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size,
                        max_source_positions=config.data.max_length + 1)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise UserError(f"{path} does not fit the model described by {ModelDir(model_dir).config} (was the config "
                        f"edited after training?): {str(error).splitlines()[0]}") from None
    return model


class Translator:
    """A trained model ready to translate raw text.

    >>> translator = Translator.from_dir("runs/toy")
    >>> translator.translate(["The dog sleeps."], translator.search_options(beam_size=5))
    ['Der Hund schläft.']
    """

    def __init__(self, model: Seq2Seq | Ensemble, src_tok: Tokenizer, trg_tok: Tokenizer, config: Config,
                 device: torch.device, shortlist: Shortlist | None = None, parameters: int | None = None):
        # int8 layers keep their weights outside .parameters(): from_dir counts them before converting
        self.parameters = count_parameters(model) if parameters is None else parameters
        self.model = model.to(device).eval()
        self.src_tok, self.trg_tok = src_tok, trg_tok
        self.config = config
        self.device = device
        self.shortlist = shortlist

    @classmethod
    def from_dir(cls, model_dir: str | Path, *, checkpoint: str | PathLike | Sequence[str] = BEST,
                 device: str = "cpu", precision: str = "fp32", quantize: str | None = None,
                 shortlist: bool | None = None, length_penalty: float | None = None,
                 training_weights: bool = False) -> Translator:
        """Load ``model_dir/config.yaml``, ``spm/`` and ``checkpoints/<checkpoint>``.

        Several checkpoint names (``["step_0004600.pt", "step_0004800.pt", "step_0005000.pt"]``) decode as
        one :class:`~seq2seq.decoding.ensemble.Ensemble`. ``precision`` is ``"fp32"`` (as trained), ``"bf16"`` (on CPUs
        with bfloat16 instructions and on GPUs) or ``"int8"`` (PyTorch's dynamic quantization of the LSTM and
        Linear layers, CPU): see :mod:`seq2seq.decoding.precision`; ``quantize="int8"`` is another way to say
        ``precision="int8"``. ``shortlist`` decodes with the directory's vocabulary shortlist (True) or without
        (False); None follows the model's ``decoding.shortlist``. ``length_penalty`` replaces the model's
        ``decoding.length_penalty`` (the translator's config says which it uses). ``training_weights=True``
        decodes the weights that trained, in a run that kept their moving average (``training.ema_decay``),
        instead of the average.
        """
        model_dir = require_model_dir(model_dir)
        names = [str(checkpoint)] if isinstance(checkpoint, (str, PathLike)) else list(checkpoint)
        layout = ModelDir(model_dir)
        if not names:
            raise UserError("no checkpoint to translate with: name at least one file of "
                            f"{layout.checkpoints}.")
        config = load_config(layout.config)
        if length_penalty is not None:
            config = dataclasses.replace(config, decoding=dataclasses.replace(config.decoding,
                                                                              length_penalty=length_penalty))
        src_tok, trg_tok = load_tokenizers(layout.spm)
        models = [load_model(model_dir, name, config=config, src_tok=src_tok, trg_tok=trg_tok,
                             training_weights=training_weights) for name in names]
        if quantize is not None:
            if quantize != "int8":
                raise UserError(f"unknown quantization {quantize!r}; the supported one is 'int8'.")
            precision = quantize
        chosen = None
        if config.decoding.shortlist if shortlist is None else shortlist:
            chosen = load_shortlist(model_dir, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size)
        torch_device = pick_device(device)
        parameters = sum(count_parameters(model) for model in models)
        models = [with_precision(model, precision, torch_device, float_output=chosen is not None) for model in models]
        return cls(models[0] if len(models) == 1 else Ensemble(models), src_tok, trg_tok, config, torch_device,
                   shortlist=chosen, parameters=parameters)

    def search_options(self, **overrides: object) -> SearchOptions:
        """This model's search settings (its config's decoding section, with ``n_best`` 1 and beam search) with the
        ``overrides`` that are not None: any field of :class:`~seq2seq.decoding.search_types.SearchOptions`, such as
        ``beam_size``, ``n_best``, ``batch_size``, ``policy`` (:class:`~seq2seq.decoding.sampling.Sampling`,
        :class:`~seq2seq.decoding.diverse.Diversity`) and ``seed``."""
        return SearchOptions.from_config(self.config, **overrides)

    def translate(self, texts: list[str], options: SearchOptions | None = None, *,
                  constraints: ConstraintsArg = None, split_sentences: bool = False) -> list[str]:
        """Detokenized translations, one per input, in order, searched as ``options`` say (default: the model's
        :meth:`search_options`).

        ``constraints``: one per text (None for none), each a :class:`~seq2seq.decoding.constraints.Constraints`,
        a dict ``{"include": [...], "avoid": [...]}`` or a list of phrases to include. ``split_sentences``: cut each
        text into sentences, translate each as its own and put the translations back between the text's whitespace
        and line breaks (see :mod:`seq2seq.decoding.paragraphs`); else each text is one segment, as ``translate``
        takes one line.
        """
        return [t.text for t in self.translate_with_details(texts, options, constraints=constraints,
                                                            split_sentences=split_sentences)]

    def translate_with_details(self, texts: list[str], options: SearchOptions | None = None, *,
                               constraints: ConstraintsArg = None, split_sentences: bool = False) -> list[Translation]:
        """The best translation of each text (the first sample, when sampling; ``options.n_best`` is not read),
        with pieces, score and attention matrix (arguments as :meth:`translate`; a text of several sentences has
        them in ``parts``)."""
        one = dataclasses.replace(options or self.search_options(), n_best=1)
        return [n_best[0] for n_best in self.translate_n_best(texts, one, constraints=constraints,
                                                              split_sentences=split_sentences)]

    def translate_n_best(self, texts: list[str], options: SearchOptions | None = None, *, first_line: int = 1,
                         constraints: ConstraintsArg = None, split_sentences: bool = False) -> list[list[Translation]]:
        """The ``options.n_best`` best translations of each text, best first (samples: in the order drawn);
        arguments as :meth:`translate`."""
        return translate_texts(self.model, self.src_tok, self.trg_tok, texts, options=options or self.search_options(),
                               device=self.device, max_source_pieces=self.config.data.max_length, first_line=first_line,
                               shortlist=self.shortlist, constraints=as_constraints(constraints, len(texts)),
                               segmenter=self.segmenter(split_sentences=split_sentences))

    def segmenter(self, *, split_sentences: bool, warn: bool = True) -> Segmenter:
        """How this model's texts are cut: into sentences, or whole; parts too long for the model at safe places."""
        return Segmenter(self.src_tok, self.config.data.max_length, language=self.config.data.src_lang,
                         split_sentences=split_sentences, warn_several=warn, warn_long=warn)

    def with_window(self, translation: Translation) -> Translation:
        """The translation with local attention's window of each row (unchanged for global attention); for a text
        of several sentences, each sentence's."""
        if translation.parts:
            parts = tuple(part._replace(translation=self.with_window(part.translation)) for part in translation.parts)
            return translation._replace(parts=parts, window=parts[0].translation.window if len(parts) == 1 else None)
        window = attention_window(self.model, self.src_tok, self.trg_tok, translation.src_pieces,
                                  translation.trg_pieces, translation.attention.size(0))
        return translation._replace(window=window)

    def stream(self, options: SearchOptions | None = None) -> TranslationStream:
        """A :class:`~seq2seq.decoding.translation_stream.TranslationStream` of this model, searching as ``options``
        say (default: :meth:`search_options`), for texts that arrive over time (a file, a server)."""
        return TranslationStream(self.model, self.src_tok, self.trg_tok, options=options or self.search_options(),
                                 device=self.device, max_source_pieces=self.config.data.max_length,
                                 shortlist=self.shortlist)

    def document_stream(self, options: SearchOptions | None = None, *,
                        split_sentences: bool = False) -> DocumentStream:
        """A stream of texts of any number of sentences (see :mod:`seq2seq.decoding.paragraphs`)."""
        return DocumentStream(self.stream(options), self.segmenter(split_sentences=split_sentences))
