"""End to end through the command line, on a slice of the shipped toy corpus."""

import json
import math

import pytest
import sacrebleu
import yaml

from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.decoding.scoring import bleu
from tests.helpers import TOY_CONFIG, write_slice

TINY_MODEL = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
              "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train a tiny model for 30 steps on 600 toy pairs; returns (model_dir, config path, overrides)."""
    root = tmp_path_factory.mktemp("toy")
    overrides = [f"data.train={write_slice(root, 'train', 600)}", f"data.valid={write_slice(root, 'valid', 40)}",
                 f"data.test={write_slice(root, 'test', 30)}", f"training.model_dir={root / 'model'}",
                 "training.max_steps=30", "training.validate_every=15", "training.batch_tokens=600",
                 "training.log_every=10", *TINY_MODEL]
    config = TOY_CONFIG
    args = ["train", config]
    for override in overrides:
        args += ["--set", override]
    assert main(args) == 0
    return root / "model", config, args


def test_train_writes_the_model_directory(trained):
    model_dir, _, _ = trained
    for name in ("config.yaml", "train.log", "metrics.jsonl", "spm/src.model", "spm/trg.model",
                 "checkpoints/best.pt", "checkpoints/last.pt", "test.hyp", "valid.hyp"):
        assert (model_dir / name).is_file(), name
    resolved = load_config(model_dir / "config.yaml")
    assert resolved.training.max_steps == 30 and resolved.model.decoder_hidden == 32
    assert resolved.training.model_dir == str(model_dir)
    assert not list(model_dir.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_train_log_takes_nothing_after_training_ends(trained):
    """What the same process logs after training (a translator, a server) stays out of the run's train.log."""
    import logging

    model_dir, _, _ = trained
    before = (model_dir / "train.log").read_bytes()
    logging.getLogger("seq2seq.decoding").warning("logged after training")
    assert (model_dir / "train.log").read_bytes() == before


def test_metrics_log_records_training_validation_and_final_events(trained):
    model_dir, _, _ = trained
    events = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("train") == 3 and kinds.count("valid") == 2 and kinds[-1] == "final"
    valid = [e for e in events if e["event"] == "valid"]
    assert [e["step"] for e in valid] == [15, 30]
    assert all({"loss", "ppl", "bleu", "lr"} <= e.keys() for e in valid)
    assert valid[1]["loss"] < valid[0]["loss"]  # it learns something in 30 steps
    hypotheses = (model_dir / "test.hyp").read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == 30
    references = (model_dir.parent / "test.de").read_text(encoding="utf-8").splitlines()
    independent = sacrebleu.corpus_bleu(hypotheses, [references]).score  # sacrebleu itself, on the files
    assert f"{events[-1]['test_bleu']:.2f}" == f"{independent:.2f}"


@pytest.mark.parametrize(("hypothesis", "reference", "expected"), [
    # n-gram precisions 4/5, 3/4, 2/3, 1/2 and equal lengths: (0.8 · 0.75 · 2/3 · 0.5) ** (1/4) = 0.2 ** 0.25
    ("a b c d e", "a b c d f", 100 * 0.2 ** 0.25),
    # every n-gram matches, but the output is 4 words for 6: brevity penalty exp(1 - 6/4)
    ("a b c d", "a b c d e f", 100 * math.exp(1 - 6 / 4)),
    ("the cat sat .", "the cat sat .", 100.0),
])
def test_bleu_against_a_hand_computation(hypothesis, reference, expected):
    assert bleu([hypothesis], [reference]).score == pytest.approx(expected, abs=1e-6)


def test_translate_from_arguments_file_and_stdin(trained, tmp_path, capsys, monkeypatch):
    import io

    model_dir, _, _ = trained
    assert main(["translate", str(model_dir), "The dog sleeps.", "", "A cat reads the book."]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # 3 lines, the empty one kept empty

    source = tmp_path / "in.en"
    source.write_text("The dog sleeps.\n\nThe man has read the book.\n", encoding="utf-8")
    assert main(["translate", str(model_dir), "-i", str(source), "-o", str(tmp_path / "out.de")]) == 0
    out = (tmp_path / "out.de").read_text(encoding="utf-8").split("\n")
    assert len(out) == 4 and out[1] == "" and out[0] == lines[0]

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"The dog sleeps.\nThe man has read the book.\n")))
    assert main(["translate", str(model_dir)]) == 0
    assert capsys.readouterr().out.split("\n") == [out[0], out[2], ""]


def test_train_refuses_a_non_empty_model_dir(trained, capsys):
    model_dir, _, args = trained
    assert main(args) == 2
    error = capsys.readouterr().err
    assert str(model_dir) in error and "--overwrite" in error and "Traceback" not in error


def test_translate_with_a_bad_model_dir_exits_2(tmp_path, capsys):
    assert main(["translate", str(tmp_path), "hello"]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_resolved_config_is_complete_yaml(trained):
    model_dir, _, _ = trained
    raw = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert set(raw) == {"data", "tokenizer", "model", "training", "decoding"}
    assert raw["model"]["attention"] == "dot" and "patience" in raw["training"]


def test_training_with_no_usable_pairs_exits_2(trained, tmp_path, capsys):
    _, config, args = trained
    new_args = [a.replace(str(trained[0]), str(tmp_path / "m")) for a in args] + ["--set", "data.max_length=1"]
    assert main(new_args) == 2
    assert "no training pairs are left" in capsys.readouterr().err


def test_overwrite_refuses_to_delete_a_directory_that_is_not_a_model_dir(trained, tmp_path, capsys):
    _, _, args = trained
    (tmp_path / "precious.txt").write_text("keep me")
    new_args = [a.replace(str(trained[0]), str(tmp_path)) for a in args] + ["--overwrite"]
    assert main(new_args) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_set_errors_name_the_override(tmp_path, capsys):
    config = TOY_CONFIG
    assert main(["train", config, "--set", "model.atention=dot"]) == 2
    error = capsys.readouterr().err
    assert "--set 'model.atention=dot'" in error and "Did you mean 'attention'" in error


def test_tune_decoding_scores_the_grid_on_valid(trained, capsys, monkeypatch, script):
    model_dir, _, _ = trained
    monkeypatch.setattr("sys.argv", ["tune_decoding.py", str(model_dir), "--beams", "1", "3",
                                     "--length-penalties", "0", "1.0"])
    script("tune_decoding").main()
    printed = capsys.readouterr().out
    assert "| 1 | " in printed and "(greedy)" in printed and "| 3 | " in printed
    assert "best: beam_size " in printed and "40 sentences" in printed


def test_run_table_summarises_a_run(trained, capsys, monkeypatch, script):
    model_dir, _, _ = trained
    monkeypatch.setattr("sys.argv", ["run_table.py", str(model_dir)])
    script("run_table").main()
    rows = capsys.readouterr().out.splitlines()
    valid = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "valid"]
    assert rows[2].startswith("| model | 30 | ") and f"| {valid[-1]['bleu']:.2f} |" in rows[2]


@pytest.mark.parametrize("content", ["", "\n\n", "  \n\t\n"], ids=["empty", "empty-lines", "whitespace"])
def test_a_training_file_with_nothing_to_train_on_is_exit_2(tmp_path, capsys, content):
    for lang in ("en", "de"):
        (tmp_path / f"train.{lang}").write_text(content, encoding="utf-8")
    args = ["train", TOY_CONFIG]
    for override in [f"data.train={tmp_path / 'train'}", f"data.valid={write_slice(tmp_path, 'valid', 10)}",
                     "data.test=null", f"training.model_dir={tmp_path / 'model'}", *TINY_MODEL]:
        args += ["--set", override]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "train") in error and "nothing to train on" in error, error
