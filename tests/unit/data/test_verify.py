"""Prepared data that verifies itself: every fault of a prepared directory's own files ends in preparing again or in
exit 2 naming the file, never in a traceback (exit 1)."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.cli import main
from seq2seq.data.verify import check_prepared
from tests.helpers import TOY_CONFIG, write_slice

TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "training.batch_tokens=600",
        "training.validate_every=10", "training.max_steps=4", "training.save_every_minutes=0", "data.test=null",
        "training.shortlist=false"]


def cli(command: str, root: Path, *extra: str) -> list[str]:
    overrides = [f"data.train={root / 'train'}", f"data.valid={root / 'valid'}", f"training.model_dir={root / 'model'}",
                 *TINY, *extra]
    return [command, TOY_CONFIG, *[word for override in overrides for word in ("--set", override)]]


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A toy corpus and its prepared directory (inputs are recorded by path, so each test prepares its own)."""
    write_slice(tmp_path, "train", 300)
    write_slice(tmp_path, "valid", 20)
    assert main(cli("prepare", tmp_path)) == 0
    return tmp_path


def flip_middle(path: Path, value: int = 0xFF) -> None:
    """Set two bytes in the middle of a file's data to ``value`` (0xFFFF is no id of a 150-piece vocabulary)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 & ~1
    data[middle:middle + 2] = bytes([value, value])
    path.write_bytes(bytes(data))


FAULTS = {
    "truncated array": (lambda d: d.joinpath("train.src.tokens.npy").write_bytes(
        d.joinpath("train.src.tokens.npy").read_bytes()[:-100]), "train.src.tokens.npy", "bytes where prepare wrote"),
    "missing offsets": (lambda d: d.joinpath("train.trg.offsets.npy").unlink(), "train.trg.offsets.npy", "missing"),
    "another split's file": (lambda d: shutil.copy(d / "valid.src.tokens.npy", d / "train.src.tokens.npy"),
                             "train.src.tokens.npy", "replaced by another file"),
    "ids outside the vocabulary": (lambda d: flip_middle(d / "train.trg.tokens.npy"), "train.trg.tokens.npy",
                                   "outside the vocabulary of"),
    "cut header": (lambda d: d.joinpath("valid.src.offsets.npy").write_bytes(b"\x93NUMPY"), "valid.src.offsets.npy",
                   "bytes where prepare wrote"),
    "damaged sentencepiece model": (lambda d: d.joinpath("spm", "src.model").write_bytes(b"not a model"),
                                    "src.model", "bytes where prepare wrote"),
    "manifest not JSON": (lambda d: d.joinpath("manifest.json").write_text('{"format": 2, "inp'), "manifest.json",
                          "is damaged"),
    "manifest from a newer version": (lambda d: d.joinpath("manifest.json").write_text(json.dumps(
        {**json.loads(d.joinpath("manifest.json").read_text()), "format": 99})), "format 99", "a newer version"),
    "manifest fields of the wrong type": (lambda d: d.joinpath("manifest.json").write_text(json.dumps(
        {**json.loads(d.joinpath("manifest.json").read_text()), "inputs": []})), "manifest.json", "wrong type"),
    "array left out of the manifest": (lambda d: d.joinpath("manifest.json").write_text(json.dumps(
        {**(m := json.loads(d.joinpath("manifest.json").read_text())),
         "files": {k: v for k, v in m["files"].items() if k != "valid.trg.offsets.npy"}})),
        "valid.trg.offsets.npy", "not recorded in the manifest"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_every_damaged_file_is_named_and_prepared_again(corpus, fault, caplog, capsys):
    damage, name, what = FAULTS[fault]
    prepared = corpus / "model" / "data"
    damage(prepared)
    assert main([*cli("prepare", corpus), "--verify"]) == 2
    error = capsys.readouterr().err
    assert name in error and what in error and "seq2seq prepare" in error
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        assert main(cli("train", corpus)) == 0
    assert name in caplog.text and what in caplog.text and "preparing" in caplog.text
    assert main([*cli("prepare", corpus), "--verify"]) == 0
    assert "verified" in capsys.readouterr().out


def test_bytes_changed_inside_the_vocabulary_are_found_by_their_hash(corpus, caplog, capsys):
    """Valid ids in the wrong place pass the start's checks (training reads them harmlessly); --verify finds them."""
    tokens = corpus / "model" / "data" / "train.src.tokens.npy"
    flip_middle(tokens, value=0)
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        assert main(cli("train", corpus)) == 0
    assert "using the prepared data" in caplog.text
    assert main([*cli("prepare", corpus), "--verify"]) == 2
    assert f"{tokens}: its content changed since prepare wrote it" in capsys.readouterr().err


def test_offsets_that_decrease_or_overrun_are_named(corpus):
    prepared = corpus / "model" / "data"
    files = json.loads((prepared / "manifest.json").read_text())["files"]
    path = prepared / "train.src.offsets.npy"
    offsets = np.load(path)
    offsets[5], offsets[6] = offsets[6], offsets[5]  # same size, same header: only the values are wrong
    np.save(path, offsets)
    assert check_prepared(prepared, files) == [f"{path}: offsets decrease at sentence 5"]
    offsets[5], offsets[6] = offsets[6], offsets[5]
    offsets[-1] += 1
    np.save(path, offsets)
    assert check_prepared(prepared, files) == [f"{path}: offsets must run from 0 to the "
                                               f"{files['train.src.tokens.npy']['length']:,} ids of the token array"]


def test_a_process_that_cannot_prepare_exits_2_naming_the_file_and_the_command(corpus, capsys):
    """`seq2seq shortlist MODEL_DIR` opens the prepared arrays of a trained model and never prepares them."""
    assert main(cli("train", corpus)) == 0
    tokens = corpus / "model" / "data" / "train.trg.tokens.npy"
    tokens.write_bytes(tokens.read_bytes()[:200])
    assert main(["shortlist", str(corpus / "model")]) == 2
    error = capsys.readouterr().err
    assert f"{tokens}: 200 bytes where prepare wrote" in error
    assert f"seq2seq prepare {corpus / 'model' / 'config.yaml'}" in error


# --- the other files the toolkit reads back ------------------------------------------------------------------------

def test_a_torn_last_line_of_metrics_jsonl_is_dropped_on_resume(corpus, caplog):
    assert main(cli("train", corpus)) == 0
    metrics = corpus / "model" / "metrics.jsonl"
    seen = torch.load(corpus / "model" / "checkpoints" / "last.pt", weights_only=False)["progress"]["metrics_bytes"]
    data = metrics.read_bytes()[:seen]
    last_line = len(data) - data.rfind(b"\n", 0, len(data) - 1) - 1
    metrics.write_bytes(data[:-30] + b"\0" * 30)  # what a power loss can leave: the last line's end as NUL bytes
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        assert main([*cli("train", corpus, "training.max_steps=8"), "--resume"]) == 0
    assert f"metrics.jsonl ended in a damaged line ({last_line} bytes" in caplog.text
    events = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]
    assert events[-1]["event"] == "final" and max(e.get("step", 0) for e in events) == 8


def test_damaged_files_of_a_model_directory_exit_2_naming_them(corpus, capsys):
    assert main(cli("train", corpus)) == 0
    model = corpus / "model"
    config = (model / "config.yaml").read_bytes()
    (model / "config.yaml").write_bytes(config[:len(config) // 3] + b"\n  - [")  # cut short mid-list
    assert main(["translate", str(model), "A dog."]) == 2
    assert f"{model / 'config.yaml'}" in capsys.readouterr().err
    (model / "config.yaml").write_bytes(config)
    (model / "spm" / "trg.model").write_bytes(b"\0" * 100)
    for command in (["translate", str(model), "A dog."], [*cli("train", corpus, "training.max_steps=6"), "--resume"]):
        assert main(command) == 2
        assert f"{model / 'spm'} holds no readable sentencepiece models: trg.model does not load" in \
            capsys.readouterr().err
