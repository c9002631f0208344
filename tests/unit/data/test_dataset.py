"""Prepared splits: empty and over-long training pairs are dropped and counted; valid/test are kept whole;
the arrays decode back to the text they were encoded from."""

import logging

import pytest

from seq2seq.config import config_from_dict
from seq2seq.data.corpus import DataError, read_parallel
from seq2seq.data.dataset import prepare_data
from tests.helpers import write_slice


def write_pair(directory, name, pairs):
    (directory / f"{name}.en").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (directory / f"{name}.de").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return str(directory / name)


def test_filtering_counts_are_logged_and_valid_is_untouched(tmp_path, caplog):
    normal = [(f"the dog {i} sleeps", f"der Hund {i} schläft") for i in range(40)]
    train = normal + [("", "leer"), ("   ", "auch leer"), ("word " * 80, "Wort " * 80), ("ok", "")]
    config = config_from_dict({
        "data": {"train": write_pair(tmp_path, "train", train), "valid": write_pair(tmp_path, "valid", train[-4:]),
                 "max_length": 50},
        "tokenizer": {"src_vocab_size": 40, "trg_vocab_size": 40},
        "training": {"model_dir": str(tmp_path / "model")},
    })
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        _, _, splits = prepare_data(config, tmp_path / "model")
    assert len(splits["train"]) == 40
    assert "44 read, 3 dropped as empty, 1 dropped as longer than 50 pieces, 40 kept" in caplog.text
    assert len(splits["valid"]) == 4 and splits["valid"].references[-1] == ""
    assert len(splits["valid"].src[2]) > 50  # valid keeps its long pair
    assert "test" not in splits


def test_an_empty_valid_file_is_refused_before_training(tmp_path):
    train = [(f"the dog {i} sleeps", f"der Hund {i} schläft") for i in range(40)]
    config = config_from_dict({
        "data": {"train": write_pair(tmp_path, "train", train), "valid": write_pair(tmp_path, "valid", [])},
        "tokenizer": {"src_vocab_size": 40, "trg_vocab_size": 40},
        "training": {"model_dir": str(tmp_path / "model")},
    })
    with pytest.raises(DataError, match=r"valid split .*valid\.\{en,de\} is empty"):
        prepare_data(config, tmp_path / "model")
    assert not (tmp_path / "model" / "data").exists()  # nothing half-made is left to trust


def test_prepared_arrays_decode_to_the_encoding_of_their_text(tmp_path):
    config = config_from_dict({
        "data": {"train": write_slice(tmp_path, "train", 500), "valid": write_slice(tmp_path, "valid", 30),
                 "test": write_slice(tmp_path, "test", 20)},
        "tokenizer": {"src_vocab_size": 200, "trg_vocab_size": 300},
        "training": {"model_dir": str(tmp_path / "model")},
    })
    src_tok, trg_tok, splits = prepare_data(config, tmp_path / "model")
    for name in ("train", "valid", "test"):
        pairs = read_parallel(tmp_path / f"{name}.en", tmp_path / f"{name}.de")
        split = splits[name]
        assert len(split) == len(pairs)
        expected_src = src_tok.encode([s for s, _ in pairs])
        expected_trg = trg_tok.encode([t for _, t in pairs])
        assert [split.src[i].tolist() for i in range(len(split))] == expected_src
        assert [split.trg[i].tolist() for i in range(len(split))] == expected_trg
    assert splits["train"].src.tokens.dtype.name == "uint16"
    assert splits["test"].references == [t for _, t in read_parallel(tmp_path / "test.en", tmp_path / "test.de")]
