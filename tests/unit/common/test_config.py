"""Config loading and validation: every user mistake is a ConfigError naming the file, key, value and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from seq2seq.cli import main
from seq2seq.config import ConfigError, load_config
from seq2seq.model.network import check_model_config
from tests.helpers import TOY_CONFIG

MINIMAL = {"data": {"train": "data/train", "valid": "data/valid"}, "training": {"model_dir": "runs/test"}}


def config_dict(values: dict[str, Any] | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """MINIMAL with ``{"section.key": value}`` set and ``"section.key"`` or ``"section"`` entries removed."""
    raw = copy.deepcopy(MINIMAL)
    for name, value in (values or {}).items():
        section, key = name.split(".")
        raw.setdefault(section, {})[key] = value
    for name in drop:
        section, _, key = name.partition(".")
        if key:
            del raw[section][key]
        else:
            del raw[section]
    return raw


def write_text(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_config(tmp_path: Path, raw: dict[str, Any]) -> Path:
    return write_text(tmp_path, yaml.safe_dump(raw, sort_keys=False))


def error_of(path: Path, overrides: list[str] = ()) -> str:
    """The message of the ConfigError that loading ``path`` must raise (with the model's checks, as train loads)."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, list(overrides), checks=[check_model_config])
    return str(caught.value)


def assert_mentions(message: str, *parts: str) -> None:
    missing = [part for part in parts if part not in message]
    assert not missing, f"{missing} not in message: {message}"


# ---------------------------------------------------------------------------------------------------------
# Unknown keys and sections
# ---------------------------------------------------------------------------------------------------------


def test_unknown_key_suggests_close_match(tmp_path):
    path = write_config(tmp_path, config_dict({"model.atention": "general"}))
    assert_mentions(error_of(path), str(path), "model.atention", "Did you mean 'attention'?", "Valid keys of 'model'")


def test_unknown_section_suggests_close_match(tmp_path):
    path = write_config(tmp_path, config_dict({"modle.attention": "general"}))
    assert_mentions(error_of(path), str(path), "unknown section 'modle'", "Did you mean 'model'?",
                    "Valid sections: data, tokenizer, model, training, decoding")


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path):
    path = write_config(tmp_path, config_dict({"model.zzzzzz": 1}))
    message = error_of(path)
    assert_mentions(message, "model.zzzzzz")
    assert "Did you mean" not in message


# ---------------------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "shown", "expected"), [
    ("training.batch_tokens", "lots", "'lots'", "expected int"),
    ("training.learning_rate", [0.1], "[0.1]", "expected float"),
    ("model.encoder_layers", True, "True", "expected int"),
    ("training.learning_rate", "fast", "'fast'", "expected float"),
    ("data.train", 123, "123", "expected str"),
    ("model.bidirectional", "yes please", "'yes please'", "expected bool"),
    ("training.tune_length_penalty", 1.0, "1.0", "expected a list of float"),
    ("training.tune_length_penalty", "0.6 1.0", "'0.6 1.0'", "expected a list of float"),
])
def test_wrong_type_names_key_value_and_expected_type(tmp_path, key, value, shown, expected):
    path = write_config(tmp_path, config_dict({key: value}))
    assert_mentions(error_of(path), str(path), f"{key} = {shown}", expected)


def test_invalid_choice_lists_valid_choices(tmp_path):
    path = write_config(tmp_path, config_dict({"model.attention": "luong"}))
    assert_mentions(error_of(path), str(path), "model.attention = 'luong'", "not a valid choice",
                    "'dot', 'general', 'concat'")
    path = write_config(tmp_path, config_dict({"training.early_stopping_metric": "accuracy"}))
    assert_mentions(error_of(path), str(path), "training.early_stopping_metric = 'accuracy'", "not a valid choice",
                    "'bleu', 'loss', 'ppl'")
    path = write_config(tmp_path, config_dict({"model.bridge": "mean"}))
    assert_mentions(error_of(path), str(path), "model.bridge = 'mean'", "'linear', 'zeros'")


@pytest.mark.parametrize("attention", ["location", "none"])
def test_local_attention_without_a_content_score_names_the_alignment(tmp_path, attention):
    path = write_config(tmp_path, config_dict({"model.attention": attention, "model.alignment": "local-p"}))
    assert_mentions(error_of(path), str(path), "model.alignment = 'local-p'", "needs a content score",
                    "alignment 'global'")


@pytest.mark.parametrize("alphas", [[1.0, -0.5], [1.0, 1.4, 1.0]])
def test_tuned_length_penalties_must_be_distinct_and_not_negative(tmp_path, alphas):
    path = write_config(tmp_path, config_dict({"training.tune_length_penalty": alphas}))
    assert_mentions(error_of(path), str(path), f"training.tune_length_penalty = {alphas}", "remove the negative or "
                    "repeated ones")


def test_list_of_floats_from_yaml_and_override_and_its_bad_element_named(tmp_path):
    path = write_config(tmp_path, config_dict({"training.tune_length_penalty": [1, "2e0", 0.6]}))
    assert load_config(path).training.tune_length_penalty == [1.0, 2.0, 0.6]
    overridden = load_config(path, ["training.tune_length_penalty=[0.6, 1.4]"]).training.tune_length_penalty
    assert overridden == [0.6, 1.4] and all(type(alpha) is float for alpha in overridden)
    bad = write_config(tmp_path, config_dict({"training.tune_length_penalty": [1.0, "long"]}))
    assert_mentions(error_of(bad), str(bad), "training.tune_length_penalty[1] = 'long'", "expected float")


def test_int_accepted_for_float_field(tmp_path):
    config = load_config(write_config(tmp_path, config_dict({"training.learning_rate": 1})))
    assert config.training.learning_rate == 1.0
    assert type(config.training.learning_rate) is float


def test_yaml_string_1e_minus_3_is_parsed_as_float(tmp_path):
    assert yaml.safe_load("x: 1e-3")["x"] == "1e-3"  # the YAML 1.1 quirk this coercion exists for
    path = write_text(tmp_path, "data: {train: a, valid: b}\ntraining: {model_dir: m, learning_rate: 1e-3}\n")
    config = load_config(path)
    assert config.training.learning_rate == pytest.approx(0.001)
    assert type(config.training.learning_rate) is float


# ---------------------------------------------------------------------------------------------------------
# Impossible values
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("encoder_hidden", "bidirectional", "decoder_hidden", "encoder_out"), [
    (128, True, 128, 256),
    (128, False, 256, 128),
])
def test_dot_attention_size_mismatch_names_both_sizes(tmp_path, encoder_hidden, bidirectional, decoder_hidden,
                                                      encoder_out):
    path = write_config(tmp_path, config_dict({"model.attention": "dot", "model.encoder_hidden": encoder_hidden,
                                               "model.bidirectional": bidirectional,
                                               "model.decoder_hidden": decoder_hidden}))
    assert_mentions(error_of(path), str(path), "model.attention = 'dot'",
                    f"model.decoder_hidden ({decoder_hidden})", f"encoder output size ({encoder_out}",
                    f"Set model.decoder_hidden: {encoder_out}", "'general' or 'concat'")


@pytest.mark.parametrize(("attention", "bidirectional", "decoder_hidden"), [
    ("dot", False, 128),  # unidirectional 128 = decoder 128
    ("dot", True, 256),  # 2 x 128 = decoder 256
    ("general", True, 100),  # general and concat project the keys, so any sizes work
    ("concat", False, 300),
])
def test_compatible_attention_sizes_load(tmp_path, attention, bidirectional, decoder_hidden):
    config = load_config(write_config(tmp_path, config_dict({
        "model.attention": attention, "model.encoder_hidden": 128, "model.bidirectional": bidirectional,
        "model.decoder_hidden": decoder_hidden})), checks=[check_model_config])
    assert (config.model.attention, config.model.decoder_hidden) == (attention, decoder_hidden)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("model.dropout", 1.5, "must be in [0, 1)"),
    ("training.learning_rate", -0.001, "must be greater than 0"),
    ("training.label_smoothing", 1.0, "must be in [0, 1)"),
    ("training.max_steps", -1, "must be 0 or greater"),
    ("training.batch_tokens", 0, "must be greater than 0"),
    ("tokenizer.character_coverage", 0.0, "must be in (0, 1]"),
    ("model.target_word_dropout", 1.0, "must be in [0, 1)"),
    ("training.bpe_dropout", -0.1, "must be in [0, 1)"),
    ("training.decay_fraction", 0.0, "must be in (0, 1]"),
    ("training.average_last", -2, "must be 0 or greater"),
])
def test_impossible_value_names_key_value_and_range(tmp_path, key, value, expected):
    path = write_config(tmp_path, config_dict({key: value}))
    assert_mentions(error_of(path), str(path), f"{key} = {value!r}", expected)


@pytest.mark.parametrize(("values", "expected"), [
    ({"training.bpe_dropout": 0.1, "tokenizer.type": "unigram"},
     ["training.bpe_dropout = 0.1", "tokenizer.type: bpe"]),
    ({"training.average_last": 5, "training.keep_last": 3},
     ["training.average_last = 5", "raise keep_last to at least 5"]),
    ({"training.scheduler": "budget"}, ["training.scheduler = 'budget'", "set training.max_minutes"]),
    ({"training.tune_length_penalty": [1.0, 1.4], "decoding.beam_size": 1},
     ["training.tune_length_penalty needs beam search", "decoding.beam_size is 1"]),
])
def test_contradicting_training_keys_name_both(tmp_path, values, expected):
    path = write_config(tmp_path, config_dict(values))
    assert_mentions(error_of(path), str(path), *expected)


@pytest.mark.parametrize("key", ["tokenizer.src_vocab_size", "tokenizer.trg_vocab_size"])
def test_vocab_size_below_special_ids_is_rejected(tmp_path, key):
    path = write_config(tmp_path, config_dict({key: 4}))
    assert_mentions(error_of(path), str(path), f"{key} = 4", "at least 8")


def test_same_source_and_target_language_is_rejected(tmp_path):
    path = write_config(tmp_path, config_dict({"data.src_lang": "en", "data.trg_lang": "en"}))
    assert_mentions(error_of(path), str(path), "data.src_lang and data.trg_lang", "'en'", "must differ")


# ---------------------------------------------------------------------------------------------------------
# Missing keys, bad files
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("drop", "key"), [
    (("data.train",), "data.train"),
    (("data.valid",), "data.valid"),
    (("training",), "training.model_dir"),
])
def test_missing_required_key_is_named(tmp_path, drop, key):
    path = write_config(tmp_path, config_dict(drop=drop))
    assert_mentions(error_of(path), str(path), f"{key} is required", "missing or empty")


def test_empty_required_path_is_rejected(tmp_path):
    path = write_config(tmp_path, config_dict({"data.train": ""}))
    assert_mentions(error_of(path), str(path), "data.train is required")


def test_invalid_yaml_reports_line_and_column(tmp_path):
    path = write_text(tmp_path, "data:\n  train: a\n  valid: b: c\n")
    assert_mentions(error_of(path), str(path), "invalid YAML", "line 3, column 11", "mapping values are not allowed")


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_reports_first_missing_required_key(tmp_path, text):
    path = write_text(tmp_path, text)
    assert_mentions(error_of(path), str(path), "data.train is required")


def test_top_level_list_is_rejected(tmp_path):
    path = write_text(tmp_path, "- data\n- model\n")
    assert_mentions(error_of(path), str(path), "expected a mapping of sections", "got list")


def test_section_that_is_not_a_mapping_is_rejected(tmp_path):
    path = write_config(tmp_path, {**MINIMAL, "model": "big"})
    assert_mentions(error_of(path), str(path), "section 'model' must be a mapping", "'big'")


def test_missing_config_file_is_named(tmp_path):
    path = tmp_path / "nowhere.yaml"
    assert_mentions(error_of(path), str(path), "does not exist")


def test_shipped_toy_config_loads():
    config = load_config(TOY_CONFIG)
    assert config.data.train == "data/toy/train"
    assert config.training.model_dir == "runs/toy"
    assert (config.model.attention, config.model.decoder_hidden) == ("dot", 256)


# ---------------------------------------------------------------------------------------------------------
# --set overrides
# ---------------------------------------------------------------------------------------------------------


def test_overrides_change_values_with_parsed_types(tmp_path):
    path = write_config(tmp_path, config_dict({"training.max_steps": 3, "model.attention": "dot"}))
    config = load_config(path, ["training.max_steps=7", "model.attention=general", "model.bidirectional=false",
                                "training.learning_rate=1e-3"])
    assert config.training.max_steps == 7 and type(config.training.max_steps) is int
    assert config.model.attention == "general"
    assert config.model.bidirectional is False
    assert config.training.learning_rate == pytest.approx(0.001)


def test_override_adds_a_section_missing_from_the_file(tmp_path):
    path = write_config(tmp_path, config_dict(drop=("training",)))
    assert load_config(path, ["training.model_dir=runs/x"]).training.model_dir == "runs/x"


@pytest.mark.parametrize("override", ["nodot=3", "training.max_steps", "a.b.c=1", ".max_steps=1"])
def test_malformed_override_is_rejected(tmp_path, override):
    path = write_config(tmp_path, config_dict())
    assert_mentions(error_of(path, [override]), repr(override), "expected section.key=value")


def test_override_of_unknown_key_suggests_close_match(tmp_path):
    path = write_config(tmp_path, config_dict())
    assert_mentions(error_of(path, ["model.atention=general"]), "model.atention", "Did you mean 'attention'?")


@pytest.mark.parametrize(("override", "message"), [
    ("tokenizer.user_symbols=[<BT>, 'a,b']", "tokenizer.user_symbols holds 'a,b'"),
    ("tokenizer.user_symbols=['']", "tokenizer.user_symbols holds ''"),
    ("data.extra_train=['']", "data.extra_train holds an empty path"),
])
def test_user_symbols_and_extra_corpora_are_checked(tmp_path, override, message):
    path = write_config(tmp_path, config_dict())
    assert_mentions(error_of(path, [override]), message)


def test_override_with_wrong_type_is_rejected(tmp_path):
    path = write_config(tmp_path, config_dict())
    assert_mentions(error_of(path, ["training.batch_tokens=lots"]), "training.batch_tokens = 'lots'", "expected int")


# ---------------------------------------------------------------------------------------------------------
# CLI: exit code 2, one paragraph, no traceback
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "key"), [
    ({"model.atention": "general"}, "model.atention"),
    ({"model.attention": "dot", "model.bidirectional": True, "model.encoder_hidden": 128,
      "model.decoder_hidden": 128}, "model.decoder_hidden"),
])
def test_cli_bad_config_exits_2_with_one_paragraph(tmp_path, capsys, values, key):
    path = write_config(tmp_path, config_dict(values))
    assert main(["train", str(path)]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("seq2seq train: error: ")
    assert_mentions(stderr, str(path), key)
    assert "Traceback" not in stderr
    assert stderr.strip().count("\n") == 0, stderr


# ---------------------------------------------------------------------------------------------------------
# Keys and values that YAML reads in surprising ways
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1: x\n", "model: {yes: 1}\n"])
def test_non_string_key_is_a_config_error(tmp_path, text):
    path = write_text(tmp_path, yaml.safe_dump(MINIMAL) + text)
    assert_mentions(error_of(path), str(path))


@pytest.mark.parametrize("key", ["training.learning_rate", "training.clip_grad_norm"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_rejected(tmp_path, key, value):
    path = write_config(tmp_path, config_dict({key: value}))  # written as .nan / .inf
    assert_mentions(error_of(path), str(path), key, "finite")


def test_duplicate_key_is_rejected_with_its_line(tmp_path):
    first = yaml.safe_dump(MINIMAL)
    path = write_text(tmp_path, first + "data:\n  train: other\n")
    message = error_of(path)
    duplicate_line = len(first.splitlines()) + 1  # the second "data:"
    assert_mentions(message, str(path), "duplicate key 'data'", f"line {duplicate_line}, column 1")


def test_yaml_boolean_for_a_string_suggests_quoting(tmp_path):
    path = write_text(tmp_path, yaml.safe_dump(MINIMAL).replace("data:\n", "data:\n  src_lang: no\n", 1))
    assert_mentions(error_of(path), "data.src_lang", "quote")


def test_three_way_tying_needs_a_joint_vocabulary(tmp_path):
    path = write_config(tmp_path, config_dict({"model.tied_embeddings": "all", "tokenizer.joint": False}))
    assert_mentions(error_of(path), str(path), "model.tied_embeddings = 'all'", "tokenizer.joint: true")
    joint = write_config(tmp_path, config_dict({"model.tied_embeddings": "all", "tokenizer.joint": True}))
    assert load_config(joint).model.tied_embeddings == "all"
