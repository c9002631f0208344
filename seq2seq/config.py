"""Typed configuration: YAML → dataclasses, validated at load, with ``--set section.key=value`` overrides.

Every default lives here and only here. Unknown keys, wrong types and impossible values raise
:class:`ConfigError`, whose message names the file, the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seq2seq.common.atomic import atomic_write_text
from seq2seq.config_checks import (
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SHARE,
    VOCABULARY,
    check_bounds,
    check_required,
    coerce,
    doc,
)
from seq2seq.errors import ConfigError, SettingError


@dataclass
class DataConfig:
    train: str = doc("Path prefix of the training split: files PREFIX.SRC_LANG and PREFIX.TRG_LANG.", "", required=True)
    extra_train: list[str] = doc("More training corpora beside data.train, each a path prefix like it (a synthetic "
                                 "corpus from scripts/backtranslate.py, another domain); every pair of them is "
                                 "used, as if the files were one.", [])
    valid: str = doc("Path prefix of the validation split (model selection, early stopping).", "", required=True)
    test: str | None = doc("Path prefix of the test split, scored once at the end of training (optional).", None)
    src_lang: str = doc("File suffix of the source language.", "en")
    trg_lang: str = doc("File suffix of the target language.", "de")
    max_length: int = doc("Training pairs with more subword pieces than this on either side are dropped.", 100,
                          bounds=POSITIVE)
    prepared: str | None = doc(
        "Directory of the prepared data (token arrays, sentencepiece models, manifest.json); default "
        "MODEL_DIR/data. Point several runs at one directory to prepare a big corpus once.", None)


@dataclass
class TokenizerConfig:
    type: Literal["bpe", "unigram"] = doc("sentencepiece model type.", "bpe")
    src_vocab_size: int = doc("Source vocabulary size (pieces, including the 4 special ids).", 1000, bounds=VOCABULARY)
    trg_vocab_size: int = doc("Target vocabulary size (ignored with joint: true).", 1000, bounds=VOCABULARY)
    joint: bool = doc("One shared sentencepiece model for both languages, sized src_vocab_size.", False)
    character_coverage: float = doc("Share of characters covered by the model (1.0 for small alphabets).", 1.0,
                                    bounds=SHARE)
    sample_sentences: int = doc("Train each sentencepiece model on a seeded random sample of at most this many "
                                "training lines (all of them when the corpus is smaller).", 1_000_000, bounds=POSITIVE)
    sample_seed: int = doc("Seed of that sample.", 1)
    user_symbols: list[str] = doc("Strings each kept as one piece in both models (never split), such as the <BT> "
                                  "tag of back-translated sources.", [])


@dataclass
class ModelConfig:
    embedding_dim: int = doc("Size of source and target word embeddings.", 128, bounds=POSITIVE)
    encoder_hidden: int = doc("Encoder LSTM size per direction.", 128, bounds=POSITIVE)
    encoder_layers: int = doc("Number of stacked encoder LSTM layers.", 1, bounds=POSITIVE)
    bidirectional: bool = doc("Bidirectional encoder; its output size is then 2 * encoder_hidden.", True)
    decoder_hidden: int = doc("Decoder LSTM size; equals the encoder output size for dot attention.", 256,
                              bounds=POSITIVE)
    decoder_layers: int = doc("Number of stacked decoder LSTM layers.", 1, bounds=POSITIVE)
    attention: str = doc(
        "Luong score function (Luong et al. 2015, Eq. 8): dot, general, concat, location or none (the scores of "
        "seq2seq/model/attention.py, which check the choice and their rules); location scores each source position "
        "from the target state alone (a parameter row per position up to data.max_length); none drops attention "
        "(a baseline for ablations).", "dot")
    alignment: str = doc(
        "Where attention may look (Luong §3.2; seq2seq/model/alignment_functions.py): global, every source "
        "position; local-m, a window of local_window positions each side of p_t = t; local-p, of a predicted p_t, "
        "with a Gaussian around it.",
        "global")
    local_window: int = doc("D, the half-width of local attention's window [p_t - D, p_t + D] (the paper's 10).", 10,
                            bounds=POSITIVE)
    input_feeding: bool = doc("Feed the previous attentional vector into the next step (Luong §3.3).", False)
    bridge: str = doc("Decoder initial state: linear, tanh(W h_final) of the encoder; or zeros.", "linear")
    dropout: float = doc("Dropout on embeddings, between LSTM layers and on the attentional vector.", 0.2,
                         bounds=PROBABILITY)
    source_word_dropout: float = doc("Probability of dropping a whole source word's embedding in training.", 0.0,
                                     bounds=PROBABILITY)
    target_word_dropout: float = doc("Probability of dropping a whole target input word's embedding in training "
                                     "(the decoder then predicts from the context alone there).", 0.0,
                                     bounds=PROBABILITY)
    tied_embeddings: Literal["none", "decoder", "all"] = doc(
        "Share weights (Press & Wolf 2017): decoder ties the output layer W_y to the decoder's input embedding; "
        "all ties the source embedding to both as well (needs tokenizer.joint: true). When decoder_hidden "
        "differs from embedding_dim, s~ is projected to embedding_dim before the output layer.", "none")


class StoppingMetric(enum.StrEnum):
    """A validation figure that selects best.pt and stops training early (training.early_stopping_metric)."""

    BLEU = "bleu"
    LOSS = "loss"
    PPL = "ppl"

    @property
    def higher_is_better(self) -> bool:
        return self is StoppingMetric.BLEU

    def improved(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` (None: nothing to beat yet)."""
        return best is None or (value > best if self.higher_is_better else value < best)


@dataclass
class TrainingConfig:
    model_dir: str = doc("Directory for config.yaml, spm/, checkpoints/, metrics.jsonl and train.log.", "",
                         required=True)
    seed: int = doc("Seed for every random number generator; the same seed repeats a run.", 1)
    device: Literal["auto", "cpu", "cuda"] = doc("auto picks cuda when available, else cpu.", "auto")
    num_threads: int = doc("CPU threads for PyTorch; 0 keeps PyTorch's default (one per core).", 0, bounds=NON_NEGATIVE)
    autocast: Literal["none", "bf16"] = doc(
        "bf16: run the training forward pass in bfloat16 autocast (fast on CPUs with AVX-512 BF16 or AMX and on "
        "recent GPUs); weights, optimizer and loss stay float32. Validation and decoding stay float32.", "none")
    optimizer: Literal["adam", "adamw"] = doc("Optimizer.", "adam")
    learning_rate: float = doc("Peak learning rate.", 0.002, bounds=POSITIVE)
    weight_decay: float = doc("Weight decay (decoupled for adamw).", 0.0, bounds=NON_NEGATIVE)
    clip_grad_norm: float = doc("Clip the gradient's global L2 norm to this value; 0 disables clipping.", 1.0,
                                bounds=NON_NEGATIVE)
    label_smoothing: float = doc("Label smoothing of the cross-entropy loss.", 0.1, bounds=PROBABILITY)
    bpe_dropout: float = doc("BPE-dropout (Provilkov et al. 2020): each training batch is segmented anew, every "
                             "merge skipped with this probability (0.1 in the paper); 0 keeps the prepared "
                             "segmentation. Needs tokenizer.type: bpe. Evaluation never samples. Sampled "
                             "segmentations are longer (0.1 gives ~40% more pieces on Multi30k), and batches, "
                             "planned on the prepared lengths, grow with them.", 0.0, bounds=PROBABILITY)
    batch_tokens: int = doc("Target tokens per batch (padding included); batches hold sentences of similar length.",
                            2000, bounds=POSITIVE)
    max_epochs: int = doc("Stop after this many passes over the training data.", 20, bounds=POSITIVE)
    max_steps: int = doc("Stop after this many updates; 0 means no limit.", 0, bounds=NON_NEGATIVE)
    max_minutes: float = doc("Stop after this much wall time (validation included); 0 means no limit.", 0.0,
                             bounds=NON_NEGATIVE)
    scheduler: Literal["none", "plateau", "warmup_decay", "budget"] = doc(
        "plateau: multiply the rate by plateau_factor when the validation metric stalls; warmup_decay: linear "
        "warm-up for warmup_steps, then inverse square-root decay; budget: linear warm-up for warmup_steps, "
        "then linear decay to zero at the end of the budget (max_steps and/or max_minutes, whichever runs out "
        "first).", "plateau")
    warmup_steps: int = doc("Warm-up length (updates) of warmup_decay and budget.", 1000, bounds=NON_NEGATIVE)
    decay_fraction: float = doc("budget: the share of the budget, at its end, over which the rate falls linearly "
                                "to zero; 1.0 decays from the start, 0.2 holds the peak rate for 80%.", 1.0,
                                bounds=SHARE)
    plateau_factor: float = doc("Learning-rate multiplier on a plateau.", 0.5, bounds=SHARE)
    plateau_patience: int = doc("Validations without improvement before the rate is cut.", 2, bounds=NON_NEGATIVE)
    min_learning_rate: float = doc("The plateau scheduler never goes below this rate.", 1.0e-5, bounds=NON_NEGATIVE)
    validate_every: int = doc("Validate every this many updates (and at the end of each epoch).", 500, bounds=POSITIVE)
    early_stopping_metric: StoppingMetric = doc("Validation metric that selects best.pt: bleu, loss or ppl.",
                                                StoppingMetric.BLEU)
    patience: int = doc("Stop after this many validations without improvement; 0 disables early stopping.", 5,
                        bounds=NON_NEGATIVE)
    log_every: int = doc("Write a training event to metrics.jsonl every this many updates.", 50, bounds=POSITIVE)
    tensorboard: bool = doc("Also write TensorBoard events to MODEL_DIR/tensorboard: losses, learning rate, "
                            "tokens/s, valid BLEU and ppl, and the attention of the first valid sentence at each "
                            "validation. Needs the tensorboard extra (pip install 'seq2seq[tensorboard]').", False)
    save_every_steps: int = doc("Also write checkpoints/last.pt every this many updates; 0: only at validations "
                                "and the time-based saves.", 0, bounds=NON_NEGATIVE)
    save_every_minutes: float = doc("Also write checkpoints/last.pt when this much time has passed since the "
                                    "last save, bounding what a hard kill can cost; 0 disables.", 5.0,
                                    bounds=NON_NEGATIVE)
    keep_last: int = doc("Keep the newest this many step checkpoints (checkpoints/step_N.pt, written at each "
                         "validation) for resuming and `seq2seq average`; 0 writes none.", 5, bounds=NON_NEGATIVE)
    keep_best: int = doc("Also keep this many step checkpoints with the best validation metric.", 0,
                         bounds=NON_NEGATIVE)
    average_last: int = doc(
        "At the end of training, average the weights of the newest this many step checkpoints and validate the "
        "average; when it beats best.pt on early_stopping_metric it becomes best.pt, the model scored at the end "
        "(the single best stays as best_single.pt). 0 or 1: no averaging.", 0, bounds=NON_NEGATIVE)
    ema_decay: float = doc(
        "Keep an exponential moving average of the weights (Polyak averaging): after each update average = "
        "ema_decay * average + (1 - ema_decay) * weights, with a lower decay for the first updates. Validation, "
        "best.pt and every checkpoint's model use the average; the weights that train are saved beside it. "
        "0.999 averages over about the last 1,000 updates; 0 turns it off.", 0.0, bounds=PROBABILITY)
    tune_length_penalty: list[float] = doc(
        "At the end of training, beam search (decoding.beam_size) scores valid with best.pt at each of these "
        "length penalties; the best becomes decoding.length_penalty in the run's config.yaml, the value the final "
        "scores, translate, evaluate and serve use. Empty: keep decoding.length_penalty.", [])
    shortlist: bool = doc(
        "At the end of training, learn a vocabulary shortlist (shortlist.pt: IBM Model 1 on the training arrays) "
        "and turn decoding.shortlist on when valid BLEU with it is within 0.1 of without and a batch scores at "
        "most half of the target pieces with it.", True)
    backend: Literal["auto", "gloo", "nccl"] = doc(
        "Process-group backend under torchrun: auto picks nccl with CUDA, gloo on CPU.", "auto")
    collective_timeout_minutes: float = doc(
        "Under torchrun, how long a process waits for the others (e.g. while rank 0 validates) before the "
        "job fails.", 30.0, bounds=POSITIVE)
    max_skipped_updates: int = doc("Stop when this many updates in a row had a non-finite loss or gradient "
                                   "(each is skipped with a warning).", 10, bounds=POSITIVE)


@dataclass
class DecodingConfig:
    beam_size: int = doc("Beam size for translate, evaluate and the final test score; 1 is greedy search. "
                         "Validation during training always decodes greedily.", 5, bounds=POSITIVE)
    length_penalty: float = doc("alpha of the GNMT length penalty ((5 + length) / 6) ** alpha that beam search "
                                "divides scores by; 0 ranks by raw log-probability.", 1.0, bounds=NON_NEGATIVE)
    max_length_ratio: float = doc("Outputs stop at max_length_ratio * source length + max_length_extra tokens.", 1.5,
                                  bounds=POSITIVE)
    max_length_extra: int = doc("See max_length_ratio.", 10, bounds=NON_NEGATIVE)
    batch_size: int = doc("Sentences per batch when translating.", 64, bounds=POSITIVE)
    shortlist: bool = doc("Score only the target pieces of the model directory's vocabulary shortlist "
                          "(shortlist.pt) that the batch's sources may need; training turns it on where it pays.",
                          False)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    def sections(self) -> list[tuple[str, Any]]:
        """(name, section) of each section, in file order."""
        return [(name, getattr(self, name)) for name in SECTIONS]


SECTIONS: dict[str, type] = typing.get_type_hints(Config)

# A component's rule over a config (the model's: seq2seq.model.network.check_model_config), raising a SettingError
ConfigCheck = Callable[[Config], None]


# ---------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_config(path: str | Path, overrides: Sequence[str] = (), *, checks: Sequence[ConfigCheck] = ()) -> Config:
    """Read, override and validate a YAML config. Raises ConfigError naming the file, key and value. ``checks``:
    rules of the components the config names (:data:`ConfigCheck`), such as the model's."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist.")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(error, 'problem', error)}.") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start}).") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, ...), got {type(raw).__name__}.")
    for override in overrides:
        _apply_override(raw, override)
    source = f"{path} with --set {' '.join(overrides)}" if overrides else str(path)
    return config_from_dict(raw, source=source, checks=checks)


def config_from_dict(raw: dict[str, Any], *, source: str = "config", checks: Sequence[ConfigCheck] = ()) -> Config:
    """Build and validate a Config from nested dicts (as read from YAML); ``checks`` as in :func:`load_config`."""
    sections = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(f"{source}: unknown section '{name}'.{_suggest(name, SECTIONS)} "
                              f"Valid sections: {', '.join(SECTIONS)}.")
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: section '{name}' must be a mapping of keys, got {value!r}.")
        sections[name] = _build_section(SECTIONS[name], name, value, source)
    config = Config(**sections)
    check_config(config, source, checks)
    return config


def check_config(config: Config, source: str, checks: Sequence[ConfigCheck] = ()) -> None:
    """Every field's own rule (:mod:`seq2seq.config_checks`), then the rules between fields, then ``checks``; the
    first one broken raises a ConfigError naming ``source``."""
    for name, section in config.sections():
        check_required(section, name, source)
    for name, section in config.sections():
        check_bounds(section, name, source)
    check_combinations(config, source)
    for check in checks:
        try:
            check(config)
        except SettingError as error:
            section, key = error.key.split(".")
            value = getattr(getattr(config, section), key)
            raise ConfigError(f"{source}: {error.key} = {value!r}: {error.reason}.") from None


def check_combinations(config: Config, source: str) -> None:
    """Reject values that are possible alone but not together."""
    alphas = config.training.tune_length_penalty
    if any(alpha < 0 for alpha in alphas) or len(set(alphas)) < len(alphas):
        raise ConfigError(f"{source}: training.tune_length_penalty = {alphas} must list distinct length penalties "
                          "of 0 or greater; remove the negative or repeated ones.")
    for symbol in config.tokenizer.user_symbols:
        if not symbol.strip() or "," in symbol or any(c.isspace() for c in symbol):
            raise ConfigError(f"{source}: tokenizer.user_symbols holds {symbol!r}; each symbol must be a non-empty "
                              "string without spaces or commas (such as <BT>).")
    if any(not prefix for prefix in config.data.extra_train):
        raise ConfigError(f"{source}: data.extra_train holds an empty path; each entry is a path prefix like "
                          "data.train's.")
    if config.model.tied_embeddings == "all" and not config.tokenizer.joint:
        raise ConfigError(f"{source}: model.tied_embeddings = 'all' shares one embedding between source and target, "
                          "which needs one vocabulary: set tokenizer.joint: true, or use tied_embeddings 'decoder'.")
    settings = config.training
    if settings.average_last > max(settings.keep_last, 1):
        raise ConfigError(f"{source}: training.average_last = {settings.average_last} averages more step checkpoints "
                          f"than training.keep_last = {settings.keep_last} keeps: raise keep_last to at least "
                          f"{settings.average_last}.")
    if settings.tune_length_penalty and config.decoding.beam_size == 1:
        raise ConfigError(f"{source}: training.tune_length_penalty needs beam search, and decoding.beam_size is 1 "
                          "(greedy search has no length penalty): raise decoding.beam_size or set "
                          "tune_length_penalty: [].")
    if settings.bpe_dropout and config.tokenizer.type != "bpe":
        raise ConfigError(f"{source}: training.bpe_dropout = {settings.bpe_dropout} needs tokenizer.type: bpe "
                          f"(it drops BPE merges), got {config.tokenizer.type!r}.")
    if settings.scheduler == "budget" and not (settings.max_steps or settings.max_minutes):
        raise ConfigError(f"{source}: training.scheduler = 'budget' decays the rate to zero at the end of the "
                          "budget, and no budget is set: set training.max_minutes or training.max_steps.")
    if config.data.src_lang == config.data.trg_lang:
        raise ConfigError(f"{source}: data.src_lang and data.trg_lang are both {config.data.src_lang!r}; "
                          "they name the two files of each split and must differ.")


def _build_section(cls: type, section: str, values: dict[str, Any], source: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{section}.{key}'.{_suggest(key, fields)} "
                              f"Valid keys of '{section}': {', '.join(fields)}.")
        kwargs[key] = coerce(value, hints[key], f"{section}.{key}", source)
    return cls(**kwargs)


def _apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) to the raw nested dict."""
    name, sep, text = override.partition("=")
    parts = name.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {override!r}: expected section.key=value, e.g. --set training.max_steps=100.")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    section, key = parts
    if section not in SECTIONS:
        raise ConfigError(f"--set {override!r}: unknown section '{section}'.{_suggest(section, SECTIONS)} "
                          f"Valid sections: {', '.join(SECTIONS)}.")
    fields = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key not in fields:
        raise ConfigError(f"--set {override!r}: unknown key '{section}.{key}'.{_suggest(key, fields)} "
                          f"Valid keys of '{section}': {', '.join(fields)}.")
    if raw.get(section) is None:
        raw[section] = {}
    if not isinstance(raw[section], dict):
        raise ConfigError(f"--set {override!r}: section '{section}' in the config file is not a mapping.")
    raw[section][key] = value


def _suggest(name: Any, choices: typing.Iterable[str]) -> str:
    if not isinstance(name, str):  # YAML reads keys such as `1:` or `yes:` as numbers and booleans
        return ""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as plain nested dicts of YAML's types (an enum member becomes its value)."""
    return dataclasses.asdict(config, dict_factory=lambda items: {key: value.value if isinstance(value, enum.Enum)
                                                                  else value for key, value in items})


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config (every key, defaults included) as YAML."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True))
