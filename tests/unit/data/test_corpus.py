"""Reading parallel text: encodings, line endings, and errors that name the file, line and counts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from seq2seq.cli import main
from seq2seq.data.corpus import DataError, read_lines, read_parallel


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def data_error_of(function, *args) -> str:
    """The message of the DataError that ``function(*args)`` must raise."""
    with pytest.raises(DataError) as caught:
        function(*args)
    return str(caught.value)


def assert_mentions(message: str, *parts: str) -> None:
    missing = [part for part in parts if part not in message]
    assert not missing, f"{missing} not in message: {message}"


@pytest.fixture
def restore_logging():
    """fit() attaches a train.log handler to the 'seq2seq' logger; put the previous handlers back afterwards."""
    logger = logging.getLogger("seq2seq")
    before, level = list(logger.handlers), logger.level
    yield
    for handler in list(logger.handlers):
        if handler not in before:
            logger.removeHandler(handler)
            handler.close()
    for handler in before:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(level)


# ---------------------------------------------------------------------------------------------------------
# read_lines
# ---------------------------------------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.en"
    assert_mentions(data_error_of(read_lines, path), str(path), "does not exist")


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = write_bytes(tmp_path, "bad.en", b"one\ntwo\nth\xffree\nfour\n")
    assert_mentions(data_error_of(read_lines, path), str(path), "line 3", "invalid UTF-8", "byte 3", r"b'\xff'")


def test_latin1_file_is_rejected_on_the_right_line(tmp_path):
    path = write_bytes(tmp_path, "latin1.de", "gut\nschön\n".encode("latin-1"))
    assert_mentions(data_error_of(read_lines, path), str(path), "line 2", "invalid UTF-8")


def test_utf8_bom_is_dropped(tmp_path):
    path = write_bytes(tmp_path, "bom.en", b"\xef\xbb\xbfhello\nworld\n")
    assert read_lines(path) == ["hello", "world"]


def test_crlf_endings_are_stripped(tmp_path):
    path = write_bytes(tmp_path, "crlf.en", b"one\r\ntwo\r\nthree\r\n")
    assert read_lines(path) == ["one", "two", "three"]


def test_crlf_with_bom_and_no_final_newline(tmp_path):
    path = write_bytes(tmp_path, "windows.en", b"\xef\xbb\xbfone\r\ntwo")
    assert read_lines(path) == ["one", "two"]


def test_missing_trailing_newline_gives_the_same_lines(tmp_path):
    with_newline = write_bytes(tmp_path, "with.en", b"one\ntwo\n")
    without_newline = write_bytes(tmp_path, "without.en", b"one\ntwo")
    assert read_lines(with_newline) == read_lines(without_newline) == ["one", "two"]


def test_mixed_line_endings_give_the_same_lines(tmp_path):
    path = write_bytes(tmp_path, "mixed.en", b"one\r\ntwo\nthree\r\nfour")
    assert read_lines(path) == ["one", "two", "three", "four"]


def test_nul_byte_names_file_line_and_byte(tmp_path):
    path = write_bytes(tmp_path, "binary.en", b"one\ntwo\nab\x00c\n")
    assert_mentions(data_error_of(read_lines, path), str(path), "line 3", "NUL", "byte 3")


def test_empty_file_gives_no_lines(tmp_path):
    assert read_lines(write_bytes(tmp_path, "empty.en", b"")) == []


def test_empty_lines_are_kept_so_files_stay_aligned(tmp_path):
    path = write_bytes(tmp_path, "gaps.en", b"one\n\nthree\n\n")
    assert read_lines(path) == ["one", "", "three", ""]


def test_unicode_line_separators_do_not_split_lines(tmp_path):
    path = write_bytes(tmp_path, "separators.en", "a\u2028b\x85c\n".encode("utf-8"))
    assert read_lines(path) == ["a\u2028b\x85c"]


# ---------------------------------------------------------------------------------------------------------
# read_parallel
# ---------------------------------------------------------------------------------------------------------


def test_parallel_files_give_aligned_pairs(tmp_path):
    src = write_bytes(tmp_path, "train.en", b"hello\nworld\n")
    trg = write_bytes(tmp_path, "train.de", b"hallo\r\nwelt")
    assert read_parallel(src, trg) == [("hello", "hallo"), ("world", "welt")]


def test_differing_line_counts_name_both_files_and_counts(tmp_path):
    src = write_bytes(tmp_path, "train.en", b"a\nb\nc\n")
    trg = write_bytes(tmp_path, "train.de", b"a\nb\n")
    assert_mentions(data_error_of(read_parallel, src, trg), f"{src} has 3 lines", f"{trg} has 2 lines")


def test_parallel_missing_target_is_named(tmp_path):
    src = write_bytes(tmp_path, "train.en", b"a\n")
    trg = tmp_path / "train.de"
    assert_mentions(data_error_of(read_parallel, src, trg), str(trg), "does not exist")


# ---------------------------------------------------------------------------------------------------------
# CLI: a data error stops `seq2seq train` before training, with exit code 2
# ---------------------------------------------------------------------------------------------------------


def test_cli_mismatched_training_files_exit_2(tmp_path, capsys, restore_logging):
    src = write_bytes(tmp_path, "train.en", b"a\nb\nc\n")
    trg = write_bytes(tmp_path, "train.de", b"a\nb\n")
    raw = {"data": {"train": str(tmp_path / "train"), "valid": str(tmp_path / "train"), "src_lang": "en",
                    "trg_lang": "de"},
           "training": {"model_dir": str(tmp_path / "model"), "device": "cpu"}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    assert main(["train", str(config)]) == 2
    stderr = capsys.readouterr().err
    assert_mentions(stderr, "seq2seq train: error: ", f"{src} has 3 lines", f"{trg} has 2 lines")
    assert "Traceback" not in stderr
    assert not (tmp_path / "model" / "checkpoints" / "last.pt").exists()
