"""Typed configuration: YAML → dataclasses, validated at load, with ``--set section.key=value`` overrides.

Every default lives here and only here. Unknown keys, wrong types and impossible values raise
:class:`ConfigError`, whose message names the file, the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seq2seq.common.atomic import atomic_write_text
from seq2seq.config_checks import check_values
from seq2seq.errors import ConfigError


def doc(text: str, default: Any) -> Any:
    """A field with a default and a one-line description (kept with the field so docs cannot drift)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


@dataclass
class DataConfig:
    train: str = doc("Path prefix of the training split: files PREFIX.SRC_LANG and PREFIX.TRG_LANG.", "")
    extra_train: list[str] = doc("More training corpora beside data.train, each a path prefix like it (a synthetic "
                                 "corpus from scripts/backtranslate.py, another domain); every pair of them is "
                                 "used, as if the files were one.", [])
    valid: str = doc("Path prefix of the validation split (model selection, early stopping).", "")
    test: str | None = doc("Path prefix of the test split, scored once at the end of training (optional).", None)
    src_lang: str = doc("File suffix of the source language.", "en")
    trg_lang: str = doc("File suffix of the target language.", "de")
    max_length: int = doc("Training pairs with more subword pieces than this on either side are dropped.", 100)
    prepared: str | None = doc(
        "Directory of the prepared data (token arrays, sentencepiece models, manifest.json); default "
        "MODEL_DIR/data. Point several runs at one directory to prepare a big corpus once.", None)


@dataclass
class TokenizerConfig:
    type: Literal["bpe", "unigram"] = doc("sentencepiece model type.", "bpe")
    src_vocab_size: int = doc("Source vocabulary size (pieces, including the 4 special ids).", 1000)
    trg_vocab_size: int = doc("Target vocabulary size (ignored with joint: true).", 1000)
    joint: bool = doc("One shared sentencepiece model for both languages, sized src_vocab_size.", False)
    character_coverage: float = doc("Share of characters covered by the model (1.0 for small alphabets).", 1.0)
    sample_sentences: int = doc("Train each sentencepiece model on a seeded random sample of at most this many "
                                "training lines (all of them when the corpus is smaller).", 1_000_000)
    sample_seed: int = doc("Seed of that sample.", 1)
    user_symbols: list[str] = doc("Strings each kept as one piece in both models (never split), such as the <BT> "
                                  "tag of back-translated sources.", [])


@dataclass
class ModelConfig:
    embedding_dim: int = doc("Size of source and target word embeddings.", 128)
    encoder_hidden: int = doc("Encoder LSTM size per direction.", 128)
    encoder_layers: int = doc("Number of stacked encoder LSTM layers.", 1)
    bidirectional: bool = doc("Bidirectional encoder; its output size is then 2 * encoder_hidden.", True)
    decoder_hidden: int = doc("Decoder LSTM size; equals the encoder output size for dot attention.", 256)
    decoder_layers: int = doc("Number of stacked decoder LSTM layers.", 1)
    attention: Literal["dot", "general", "concat", "none", "location"] = doc(
        "Luong score function (Luong et al. 2015, Eq. 8); location scores each source position from the target "
        "state alone (a parameter row per position up to data.max_length); none drops attention (a baseline for "
        "ablations).", "dot")
    alignment: Literal["global", "local-m", "local-p"] = doc(
        "Where attention may look (Luong §3.2): global, every source position; local-m, a window of "
        "local_window positions each side of p_t = t; local-p, of a predicted p_t, with a Gaussian around it.",
        "global")
    local_window: int = doc("D, the half-width of local attention's window [p_t - D, p_t + D] (the paper's 10).", 10)
    input_feeding: bool = doc("Feed the previous attentional vector into the next step (Luong §3.3).", False)
    bridge: Literal["linear", "zeros"] = doc("Decoder initial state: tanh(W h_final) of the encoder, or zeros.",
                                             "linear")
    dropout: float = doc("Dropout on embeddings, between LSTM layers and on the attentional vector.", 0.2)
    source_word_dropout: float = doc("Probability of dropping a whole source word's embedding in training.", 0.0)
    target_word_dropout: float = doc("Probability of dropping a whole target input word's embedding in training "
                                     "(the decoder then predicts from the context alone there).", 0.0)
    tied_embeddings: Literal["none", "decoder", "all"] = doc(
        "Share weights (Press & Wolf 2017): decoder ties the output layer W_y to the decoder's input embedding; "
        "all ties the source embedding to both as well (needs tokenizer.joint: true). When decoder_hidden "
        "differs from embedding_dim, s~ is projected to embedding_dim before the output layer.", "none")


@dataclass
class TrainingConfig:
    model_dir: str = doc("Directory for config.yaml, spm/, checkpoints/, metrics.jsonl and train.log.", "")
    seed: int = doc("Seed for every random number generator; the same seed repeats a run.", 1)
    device: Literal["auto", "cpu", "cuda"] = doc("auto picks cuda when available, else cpu.", "auto")
    num_threads: int = doc("CPU threads for PyTorch; 0 keeps PyTorch's default (one per core).", 0)
    autocast: Literal["none", "bf16"] = doc(
        "bf16: run the training forward pass in bfloat16 autocast (fast on CPUs with AVX-512 BF16 or AMX and on "
        "recent GPUs); weights, optimizer and loss stay float32. Validation and decoding stay float32.", "none")
    optimizer: Literal["adam", "adamw"] = doc("Optimizer.", "adam")
    learning_rate: float = doc("Peak learning rate.", 0.002)
    weight_decay: float = doc("Weight decay (decoupled for adamw).", 0.0)
    clip_grad_norm: float = doc("Clip the gradient's global L2 norm to this value; 0 disables clipping.", 1.0)
    label_smoothing: float = doc("Label smoothing of the cross-entropy loss.", 0.1)
    bpe_dropout: float = doc("BPE-dropout (Provilkov et al. 2020): each training batch is segmented anew, every "
                             "merge skipped with this probability (0.1 in the paper); 0 keeps the prepared "
                             "segmentation. Needs tokenizer.type: bpe. Evaluation never samples. Sampled "
                             "segmentations are longer (0.1 gives ~40% more pieces on Multi30k), and batches, "
                             "planned on the prepared lengths, grow with them.", 0.0)
    batch_tokens: int = doc("Target tokens per batch (padding included); batches hold sentences of similar length.",
                            2000)
    max_epochs: int = doc("Stop after this many passes over the training data.", 20)
    max_steps: int = doc("Stop after this many updates; 0 means no limit.", 0)
    max_minutes: float = doc("Stop after this much wall time (validation included); 0 means no limit.", 0.0)
    scheduler: Literal["none", "plateau", "warmup_decay", "budget"] = doc(
        "plateau: multiply the rate by plateau_factor when the validation metric stalls; warmup_decay: linear "
        "warm-up for warmup_steps, then inverse square-root decay; budget: linear warm-up for warmup_steps, "
        "then linear decay to zero at the end of the budget (max_steps and/or max_minutes, whichever runs out "
        "first).", "plateau")
    warmup_steps: int = doc("Warm-up length (updates) of warmup_decay and budget.", 1000)
    decay_fraction: float = doc("budget: the share of the budget, at its end, over which the rate falls linearly "
                                "to zero; 1.0 decays from the start, 0.2 holds the peak rate for 80%.", 1.0)
    plateau_factor: float = doc("Learning-rate multiplier on a plateau.", 0.5)
    plateau_patience: int = doc("Validations without improvement before the rate is cut.", 2)
    min_learning_rate: float = doc("The plateau scheduler never goes below this rate.", 1.0e-5)
    validate_every: int = doc("Validate every this many updates (and at the end of each epoch).", 500)
    early_stopping_metric: Literal["bleu", "loss", "ppl"] = doc("Validation metric that selects best.pt.", "bleu")
    patience: int = doc("Stop after this many validations without improvement; 0 disables early stopping.", 5)
    log_every: int = doc("Write a training event to metrics.jsonl every this many updates.", 50)
    tensorboard: bool = doc("Also write TensorBoard events to MODEL_DIR/tensorboard: losses, learning rate, "
                            "tokens/s, valid BLEU and ppl, and the attention of the first valid sentence at each "
                            "validation. Needs the tensorboard extra (pip install 'seq2seq[tensorboard]').", False)
    save_every_steps: int = doc("Also write checkpoints/last.pt every this many updates; 0: only at validations "
                                "and the time-based saves.", 0)
    save_every_minutes: float = doc("Also write checkpoints/last.pt when this much time has passed since the "
                                    "last save, bounding what a hard kill can cost; 0 disables.", 5.0)
    keep_last: int = doc("Keep the newest this many step checkpoints (checkpoints/step_N.pt, written at each "
                         "validation) for resuming and `seq2seq average`; 0 writes none.", 5)
    keep_best: int = doc("Also keep this many step checkpoints with the best validation metric.", 0)
    average_last: int = doc(
        "At the end of training, average the weights of the newest this many step checkpoints and validate the "
        "average; when it beats best.pt on early_stopping_metric it becomes best.pt, the model scored at the end "
        "(the single best stays as best_single.pt). 0 or 1: no averaging.", 0)
    ema_decay: float = doc(
        "Keep an exponential moving average of the weights (Polyak averaging): after each update average = "
        "ema_decay * average + (1 - ema_decay) * weights, with a lower decay for the first updates. Validation, "
        "best.pt and every checkpoint's model use the average; the weights that train are saved beside it. "
        "0.999 averages over about the last 1,000 updates; 0 turns it off.", 0.0)
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
        "job fails.", 30.0)
    max_skipped_updates: int = doc("Stop when this many updates in a row had a non-finite loss or gradient "
                                   "(each is skipped with a warning).", 10)


@dataclass
class DecodingConfig:
    beam_size: int = doc("Beam size for translate, evaluate and the final test score; 1 is greedy search. "
                         "Validation during training always decodes greedily.", 5)
    length_penalty: float = doc("alpha of the GNMT length penalty ((5 + length) / 6) ** alpha that beam search "
                                "divides scores by; 0 ranks by raw log-probability.", 1.0)
    max_length_ratio: float = doc("Outputs stop at max_length_ratio * source length + max_length_extra tokens.", 1.5)
    max_length_extra: int = doc("See max_length_ratio.", 10)
    batch_size: int = doc("Sentences per batch when translating.", 64)
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


SECTIONS: dict[str, type] = typing.get_type_hints(Config)


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


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read, override and validate a YAML config. Raises ConfigError naming the file, key and value."""
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
    return config_from_dict(raw, source=source)


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> Config:
    """Build and validate a Config from nested dicts (as read from YAML)."""
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
    check_values(config, source)
    return config


def _build_section(cls: type, section: str, values: dict[str, Any], source: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{section}.{key}'.{_suggest(key, fields)} "
                              f"Valid keys of '{section}': {', '.join(fields)}.")
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}", source)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _coerce(value, hint, key, source)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: {key} = {value!r} is not a valid choice; expected one of {choices}.")
        return value
    if hint is float:
        return _coerce_float(value, key, source)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} = {value!r} has type {type(value).__name__}; expected a list of "
                              f"{args[0].__name__}, e.g. [0.6, 1.0].")
        return [_coerce(item, args[0], f"{key}[{index}]", source) for index, item in enumerate(value)]
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        quote = " (YAML reads yes/no/on/off as booleans: quote the value)" if hint is str and isinstance(
            value, bool) else ""
        raise ConfigError(f"{source}: {key} = {value!r} has type {type(value).__name__}; expected "
                          f"{hint.__name__}{quote}.")
    return value


def _coerce_float(value: Any, key: str, source: str) -> float:
    """Floats, ints, and strings such as "1e-3" (YAML 1.1 reads exponents without a dot as strings); finite."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise ConfigError(f"{source}: {key} = {value!r} has type {type(value).__name__}; expected float.")
    if not math.isfinite(number):
        raise ConfigError(f"{source}: {key} = {value!r} is not a finite number; expected a float.")
    return number


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
    return dataclasses.asdict(config)


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config (every key, defaults included) as YAML."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True))
