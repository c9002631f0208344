"""The config's checks of values and of combinations: what the types alone cannot say (a positive size, a
file that must exist, a score that needs equal sizes). Each failure is a :class:`ConfigError` naming the source,
the key, the value and what was expected; :func:`seq2seq.config.config_from_dict` runs them at load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seq2seq.errors import ConfigError

if TYPE_CHECKING:
    from seq2seq.config import Config, ModelConfig

REQUIRED = {("data", "train"), ("data", "valid"), ("training", "model_dir")}


def check_values(config: Config, source: str) -> None:
    """Reject values that are well-typed but impossible: missing paths, values out of range."""
    for section, key in sorted(REQUIRED):
        if not getattr(getattr(config, section), key):
            raise ConfigError(f"{source}: {section}.{key} is required (a path); it is missing or empty.")
    positive = [("data", "max_length"), ("tokenizer", "src_vocab_size"), ("tokenizer", "trg_vocab_size"),
                ("tokenizer", "sample_sentences"),
                ("model", "embedding_dim"), ("model", "encoder_hidden"), ("model", "encoder_layers"),
                ("model", "decoder_hidden"), ("model", "decoder_layers"), ("model", "local_window"),
                ("training", "learning_rate"),
                ("training", "batch_tokens"), ("training", "max_epochs"), ("training", "validate_every"),
                ("training", "log_every"), ("training", "max_skipped_updates"),
                ("training", "collective_timeout_minutes"), ("decoding", "beam_size"), ("decoding", "batch_size"),
                ("decoding", "max_length_ratio")]
    for section, key in positive:
        value = getattr(getattr(config, section), key)
        if value <= 0:
            raise ConfigError(f"{source}: {section}.{key} = {value!r} must be greater than 0.")
    non_negative = [("training", "num_threads"), ("training", "weight_decay"), ("training", "clip_grad_norm"),
                    ("training", "max_steps"), ("training", "max_minutes"), ("training", "warmup_steps"),
                    ("training", "patience"), ("training", "plateau_patience"), ("training", "min_learning_rate"),
                    ("training", "save_every_steps"), ("training", "save_every_minutes"), ("training", "keep_last"),
                    ("training", "keep_best"), ("training", "average_last"),
                    ("decoding", "length_penalty"), ("decoding", "max_length_extra")]
    for section, key in non_negative:
        value = getattr(getattr(config, section), key)
        if value < 0:
            raise ConfigError(f"{source}: {section}.{key} = {value!r} must be 0 or greater.")
    alphas = config.training.tune_length_penalty
    if any(alpha < 0 for alpha in alphas) or len(set(alphas)) < len(alphas):
        raise ConfigError(f"{source}: training.tune_length_penalty = {alphas} must list distinct length penalties "
                          "of 0 or greater; remove the negative or repeated ones.")
    for section, key in [("model", "dropout"), ("model", "source_word_dropout"), ("model", "target_word_dropout"),
                         ("training", "label_smoothing"), ("training", "bpe_dropout"), ("training", "ema_decay")]:
        value = getattr(getattr(config, section), key)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{source}: {section}.{key} = {value!r} must be in [0, 1).")
    for section, key in [("tokenizer", "character_coverage"), ("training", "plateau_factor"),
                         ("training", "decay_fraction")]:
        value = getattr(getattr(config, section), key)
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"{source}: {section}.{key} = {value!r} must be in (0, 1].")
    for symbol in config.tokenizer.user_symbols:
        if not symbol.strip() or "," in symbol or any(c.isspace() for c in symbol):
            raise ConfigError(f"{source}: tokenizer.user_symbols holds {symbol!r}; each symbol must be a non-empty "
                              "string without spaces or commas (such as <BT>).")
    if any(not prefix for prefix in config.data.extra_train):
        raise ConfigError(f"{source}: data.extra_train holds an empty path; each entry is a path prefix like "
                          "data.train's.")
    check_combinations(config, source)


def check_combinations(config: Config, source: str) -> None:
    """Reject values that are possible alone but not together (or not for this kind of model)."""
    for key in ("src_vocab_size", "trg_vocab_size"):
        if getattr(config.tokenizer, key) < 8:
            raise ConfigError(f"{source}: tokenizer.{key} = {getattr(config.tokenizer, key)} is too small; "
                              "it must be at least 8 (4 ids are reserved for pad, unk, bos and eos).")
    check_attention(config.model, source)
    model = config.model
    if model.tied_embeddings == "all" and not config.tokenizer.joint:
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


def check_attention(model: ModelConfig, source: str) -> None:
    """A dot score needs equal sizes; local attention needs a score that reads the source (its window selects
    source positions to score), so it cannot go with location or none."""
    encoder_out = model.encoder_hidden * (2 if model.bidirectional else 1)
    if model.attention == "dot" and encoder_out != model.decoder_hidden:
        raise ConfigError(
            f"{source}: model.attention = 'dot' needs model.decoder_hidden ({model.decoder_hidden}) to equal the "
            f"encoder output size ({encoder_out} = encoder_hidden {model.encoder_hidden}"
            f"{' x 2 directions' if model.bidirectional else ''}). Set model.decoder_hidden: {encoder_out}, "
            "or use attention 'general' or 'concat'.")
    if model.alignment != "global" and model.attention in ("location", "none"):
        why = "scores positions from the target state alone" if model.attention == "location" else "has none"
        raise ConfigError(f"{source}: model.alignment = {model.alignment!r} needs a content score, and "
                          f"model.attention = {model.attention!r} {why}: use attention dot, general or concat, or "
                          "alignment 'global'.")
