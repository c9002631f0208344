"""Translate raw text with a trained model: encode, batch by length, search, detokenize.

:class:`Translator` loads a model directory (config.yaml, spm/, checkpoints/) for use from Python and the
CLI; :func:`translate_texts` is the shared path that training also uses for validation BLEU.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from seq2seq.common.device import pick_device
from seq2seq.common.model_dir import BEST, ModelDir
from seq2seq.config import Config, DecodingConfig, load_config
from seq2seq.data.tokenizer import Tokenizer, load_tokenizers
from seq2seq.decoding.constrained import Constrained
from seq2seq.decoding.constraints import Constraints, TokenConstraints, constraint_spans, encode_constraints
from seq2seq.decoding.engine import DecodingEngine, Hypothesis, Sentence
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.paragraphs import DocumentStream, Segmenter
from seq2seq.decoding.precision import with_precision
from seq2seq.decoding.sampling import Sample, Sampling, sentence_seed
from seq2seq.decoding.search import Beam, Greedy, max_output_lengths
from seq2seq.decoding.shortlist import Shortlist, load_shortlist
from seq2seq.decoding.translation import Translation
from seq2seq.decoding.window import attention_window
from seq2seq.errors import UserError
from seq2seq.model.checkpoint import load_checkpoint, model_weights
from seq2seq.model.network import Seq2Seq, build_model, count_parameters

log = logging.getLogger(__name__)


@dataclass
class SearchOptions(DecodingConfig):
    """The decoding settings of a search (every default lives in :class:`DecodingConfig`), ``n_best``, how many
    hypotheses to return per sentence, and ``sampling`` instead of search: then ``n_best`` samples per sentence."""

    n_best: int = 1
    sampling: Sampling | None = None

    def seed(self) -> int:
        return self.sampling.seed if self.sampling is not None else Sampling.seed

    @classmethod
    def from_config(cls, config: Config, **overrides: int | float | Sampling | None) -> SearchOptions:
        """The config's decoding section, with the ``overrides`` that are not None."""
        return cls.of(config.decoding, **overrides)

    @classmethod
    def of(cls, decoding: DecodingConfig, **overrides: int | float | Sampling | None) -> SearchOptions:
        """A decoding section, with the ``overrides`` that are not None."""
        values = dataclasses.asdict(decoding)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def check(self, vocab_size: int) -> None:
        """Refuse a search that cannot run: more hypotheses than beams, more beams than target pieces, or
        sampling settings out of range."""
        if self.sampling is not None:
            self.sampling.check()
            return
        if self.n_best > self.beam_size:
            raise UserError(f"n-best {self.n_best} is larger than the beam size {self.beam_size}; "
                            "a beam keeps only beam-size hypotheses.")
        if self.beam_size > vocab_size:
            raise UserError(f"beam size {self.beam_size} exceeds the target vocabulary ({vocab_size} pieces).")


def search_policy(options: SearchOptions, trg_tok: Tokenizer | None = None) -> Constrained | Sample:
    """Sampling when asked for; else greedy search for beam size 1, beam search with the options' length penalty
    otherwise, each honouring the constraints a sentence comes with (and exactly itself for one without; with
    ``trg_tok``, constraints are met as whole words)."""
    if options.sampling is not None:
        return Sample(options.n_best, options.sampling)
    inner = Greedy() if options.beam_size == 1 else Beam(options.beam_size, alpha=options.length_penalty)
    return Constrained(inner, word_continuations(trg_tok) if trg_tok is not None else None)


@functools.lru_cache(maxsize=8)  # once per tokenizer, not at every stream (validation opens one each time)
def word_continuations(trg_tok: Tokenizer) -> torch.Tensor:
    """[V] bool: the target pieces that go on with the word before them (no word start, a letter or digit first)."""
    pieces = trg_tok.id_to_piece(range(trg_tok.vocab_size))
    special = {trg_tok.processor.piece_to_id(p) for p in ("<unk>", "<s>", "</s>", "<pad>")}
    return torch.tensor([i not in special and not p.startswith("\u2581") and p[:1].isalnum()
                         for i, p in enumerate(pieces)])


class TranslationStream:
    """Texts in, translations out as they finish: tokenize, decode through one
    :class:`~seq2seq.decoding.engine.DecodingEngine` (continuous batching of ``options.batch_size`` sentences),
    detokenize.

    Each text comes with a tag, and its translations come back with it. :func:`translate_texts`, the CLI's
    ``translate`` and the server all decode through a stream. A ``shortlist`` limits each step's output layer to
    the target pieces its sentences may need.
    """

    def __init__(self, model: Seq2Seq | Ensemble, src_tok: Tokenizer, trg_tok: Tokenizer, *, options: SearchOptions,
                 device: torch.device, max_source_pieces: int, shortlist: Shortlist | None = None):
        options.check(trg_tok.vocab_size)
        model.eval()
        self.src_tok, self.trg_tok = src_tok, trg_tok
        self.options = options
        self.max_source_pieces = max_source_pieces
        self.numbered = 0  # texts taken so far, which number each text's random stream
        self.engine: DecodingEngine[Any, Any] = DecodingEngine(
            model, search_policy(options, trg_tok), device=device, max_sentences=options.batch_size,
            shortlist=shortlist)

    @property
    def idle(self) -> bool:
        return self.engine.idle

    @property
    def decoding(self) -> int:
        """Texts in the decoding batch now."""
        return self.engine.decoding

    def add(self, items: Sequence[tuple[Any, str]], *, n_best: int | None = None, first_line: int | None = None,
            constraints: Sequence[Constraints | None] | None = None, seeds: Sequence[int] | None = None,
            labels: Sequence[str] | None = None) -> list[tuple[Any, list[Translation]]]:
        """Queue (tag, text) pairs for their ``n_best`` (default ``options.n_best``) best translations.

        The texts of one call decode longest first, which keeps the batch's padding low. Empty (or blank) texts
        give one empty translation at once, returned here. Sources longer than ``max_source_pieces`` are
        truncated with a warning that names the line, when ``first_line`` numbers the first text. ``constraints``
        (one per text, None for none) are phrases each translation must include or avoid. Sampling draws each text
        from the random stream ``seeds`` gives it (see :func:`~seq2seq.decoding.sampling.sentence_seed`); without
        ``seeds``, from the stream of ``options``' seed and the text's place among all the texts this stream has
        taken (so a file samples the same whatever the batch size). ``labels`` name the texts in messages instead
        (a sentence of a paragraph: "line 3, sentence 2").
        """
        n_best = self.options.n_best if n_best is None else n_best
        dataclasses.replace(self.options, n_best=n_best).check(self.trg_tok.vocab_size)
        if constraints is not None and len(constraints) != len(items):
            raise ValueError(f"{len(constraints)} constraint sets for {len(items)} texts")
        if constraints is not None and self.options.sampling is not None and any(constraints):
            raise UserError("constraints need beam or greedy search; sampling does not honour them.")
        src_ids = self.src_tok.encode([text for _, text in items])
        first_number = self.numbered
        self.numbered += len(items)
        done, sentences = [], []
        for i, ((tag, text), ids) in enumerate(zip(items, src_ids)):
            if not text.strip():
                done.append((tag, [Translation("", [], [], 0.0, torch.zeros(0, 0))]))
                continue
            where = labels[i] if labels is not None else f"line {first_line + i}" if first_line is not None \
                else f"text {i + 1}"
            wanted = constraints[i] if constraints is not None else None
            pieces = encode_constraints(wanted, self.trg_tok, where=f"constraints of {where}") if wanted else None
            if len(ids) > self.max_source_pieces:
                log.warning("%s has %d subword pieces; translating only the first %d (the model's data.max_length)",
                            where, len(ids), self.max_source_pieces)
                ids = ids[:self.max_source_pieces]
            limit = int(max_output_lengths(torch.tensor([len(ids) + 1]), ratio=self.options.max_length_ratio,
                                           extra=self.options.max_length_extra)) + (pieces.tokens if pieces else 0)
            stream = seeds[i] if seeds is not None else sentence_seed(self.options.seed(), first_number + i)
            sentences.append(Sentence(ids, limit, n_best, (tag, ids, pieces), pieces, stream))
        self.engine.add(sorted(sentences, key=lambda sentence: -len(sentence.src)))
        return done

    def step(self) -> list[tuple[Any, list[Translation]]]:
        """One decoding step; the (tag, translations) of the texts that finished with it."""
        return [(tag, [self._translation(h, src_ids, pieces) for h in hypotheses])
                for (tag, src_ids, pieces), hypotheses in self.engine.step()]

    def discard(self, unwanted: Callable[[Any], bool]) -> list[Any]:
        """Drop the waiting texts whose tag is ``unwanted``; returns their tags."""
        return [tag for tag, _, _ in self.engine.discard(lambda engine_tag: unwanted(engine_tag[0]))]

    def _translation(self, hypothesis: Hypothesis, src_ids: list[int],
                     constraints: TokenConstraints | None) -> Translation:
        return Translation(text=self.trg_tok.decode([hypothesis.tokens])[0],
                           src_pieces=self.src_tok.id_to_piece(src_ids),
                           trg_pieces=self.trg_tok.id_to_piece(hypothesis.tokens), score=hypothesis.score,
                           attention=hypothesis.attention,
                           placed=constraint_spans(hypothesis.tokens, constraints.include) if constraints else None)


def translate_texts(model: Seq2Seq | Ensemble, src_tok: Tokenizer, trg_tok: Tokenizer, texts: list[str], *,
                    options: SearchOptions, device: torch.device, max_source_pieces: int,
                    first_line: int = 1, shortlist: Shortlist | None = None,
                    constraints: Sequence[Constraints | None] | None = None,
                    segmenter: Segmenter | None = None) -> list[list[Translation]]:
    """The ``options.n_best`` best translations of each text, in input order (see :class:`TranslationStream`).

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
    >>> translator.translate(["The dog sleeps."], beam=5)
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

    def translate(self, texts: list[str], *, beam: int | None = None, constraints: ConstraintsArg = None,
                  sampling: Sampling | None = None, split_sentences: bool = False) -> list[str]:
        """Detokenized translations, one per input, in order (``beam`` defaults to decoding.beam_size).

        ``constraints``: one per text (None for none), each a :class:`~seq2seq.decoding.constraints.Constraints`,
        a dict ``{"include": [...], "avoid": [...]}`` or a list of phrases to include. ``sampling``: draw a
        translation (:class:`~seq2seq.decoding.sampling.Sampling`) instead of searching for the best.
        ``split_sentences``: cut each text into sentences, translate each as its own and put the translations back
        between the text's whitespace and line breaks (see :mod:`seq2seq.decoding.paragraphs`); else each text is
        one segment, as ``translate`` takes one line.
        """
        return [t.text for t in self.translate_with_details(texts, beam=beam, constraints=constraints,
                                                            sampling=sampling, split_sentences=split_sentences)]

    def translate_with_details(self, texts: list[str], *, beam: int | None = None, constraints: ConstraintsArg = None,
                               sampling: Sampling | None = None, split_sentences: bool = False) -> list[Translation]:
        """The best translation of each text, with pieces, score and attention matrix (arguments as
        :meth:`translate`; a text of several sentences has them in ``parts``)."""
        return [n_best[0] for n_best in self.translate_n_best(texts, beam=beam, n_best=1, constraints=constraints,
                                                              sampling=sampling, split_sentences=split_sentences)]

    def translate_n_best(self, texts: list[str], *, beam: int | None = None, n_best: int = 1,
                         batch_size: int | None = None, first_line: int = 1, constraints: ConstraintsArg = None,
                         sampling: Sampling | None = None, split_sentences: bool = False) -> list[list[Translation]]:
        """The ``n_best`` best translations of each text (``n_best`` ≤ beam), best first; with ``sampling``,
        ``n_best`` samples in the order drawn (arguments as :meth:`translate`)."""
        options = SearchOptions.from_config(self.config, beam_size=beam, n_best=n_best, batch_size=batch_size,
                                            sampling=sampling)
        return translate_texts(self.model, self.src_tok, self.trg_tok, texts, options=options, device=self.device,
                               max_source_pieces=self.config.data.max_length, first_line=first_line,
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

    def stream(self, *, beam: int | None = None, n_best: int = 1, batch_size: int | None = None,
               sampling: Sampling | None = None) -> TranslationStream:
        """A :class:`TranslationStream` of this model, for texts that arrive over time (a file, a server)."""
        options = SearchOptions.from_config(self.config, beam_size=beam, n_best=n_best, batch_size=batch_size,
                                            sampling=sampling)
        return TranslationStream(self.model, self.src_tok, self.trg_tok, options=options, device=self.device,
                                 max_source_pieces=self.config.data.max_length, shortlist=self.shortlist)

    def document_stream(self, *, beam: int | None = None, n_best: int = 1, batch_size: int | None = None,
                        sampling: Sampling | None = None, split_sentences: bool = False) -> DocumentStream:
        """A stream of texts of any number of sentences (see :mod:`seq2seq.decoding.paragraphs`)."""
        return DocumentStream(self.stream(beam=beam, n_best=n_best, batch_size=batch_size, sampling=sampling),
                              self.segmenter(split_sentences=split_sentences))
