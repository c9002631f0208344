"""seq2seq prepare: reuse when nothing changed, prepare again when anything did, never trust a half-made
directory, and name the file and line of every corpus fault."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from seq2seq.cli import main
from seq2seq.config import config_from_dict
from seq2seq.data.arrays import TokenArray, TokenArrayWriter
from seq2seq.data.loader import Prefetcher, epoch_plan, training_batches
from seq2seq.data.prepare import ensure_prepared, read_manifest
from seq2seq.errors import UserError
from tests.helpers import TOY_CONFIG, write_slice

TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "training.batch_tokens=600",
        "training.validate_every=10", "training.max_steps=10", "training.save_every_minutes=0", "data.test=null",
        "training.shortlist=false"]


def make_config(root: Path, *, train_lines: int = 300, **sections) -> object:
    raw = {"data": {"train": write_slice(root, "train", train_lines), "valid": write_slice(root, "valid", 20)},
           "tokenizer": {"src_vocab_size": 150, "trg_vocab_size": 150},
           "training": {"model_dir": str(root / "model")}}
    for section, values in sections.items():
        raw[section].update(values)
    return config_from_dict(raw)


def prepare_logged(config, caplog) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        ensure_prepared(config)
    return caplog.text


def test_an_untouched_corpus_is_reused_and_every_change_prepares_again(tmp_path, caplog):
    config = make_config(tmp_path)
    assert "no prepared data yet" in prepare_logged(config, caplog)
    manifest = tmp_path / "model" / "data" / "manifest.json"
    written = manifest.stat().st_mtime_ns
    assert "using the prepared data" in prepare_logged(config, caplog)
    assert manifest.stat().st_mtime_ns == written

    bigger = make_config(tmp_path, tokenizer={"src_vocab_size": 180})
    assert "tokenizer.src_vocab_size changed from 150 to 180" in prepare_logged(bigger, caplog)
    shorter = make_config(tmp_path, tokenizer={"src_vocab_size": 180}, data={"max_length": 12})
    log = prepare_logged(shorter, caplog)
    assert "data.max_length changed from 100 to 12" in log
    assert read_manifest(tmp_path / "model" / "data")["counts"]["train"]["too_long"] > 0

    path = tmp_path / "train.de"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:100] + ["Ein ganz anderer Satz.\n"] + lines[101:]), encoding="utf-8")
    log = prepare_logged(shorter, caplog)
    assert f"{path.resolve()} changed" in log and "preparing" in log
    assert not list(tmp_path.glob("model/.data.*"))  # the swap leaves nothing beside the directory


def test_the_tokenizer_sample_is_bounded_and_seeded(tmp_path, caplog):
    config = make_config(tmp_path, tokenizer={"sample_sentences": 100})
    assert "training sentencepiece on 100 of 300 training pairs" in prepare_logged(config, caplog)
    vocab = (tmp_path / "model" / "data" / "spm" / "src.vocab").read_text(encoding="utf-8")
    for seed, same in ((1, True), (2, False)):
        other = config_from_dict({**vars_of(config), "tokenizer": {**vars(config.tokenizer), "sample_seed": seed},
                                  "training": {"model_dir": str(tmp_path / f"seed{seed}")}})
        ensure_prepared(other)
        assert ((tmp_path / f"seed{seed}" / "data" / "spm" / "src.vocab").read_text(encoding="utf-8") == vocab) == same


def vars_of(config) -> dict:
    return {name: vars(getattr(config, name)) for name in ("data", "tokenizer", "model", "decoding")}


def test_planned_batches_hold_every_kept_pair_once_and_repeat_with_the_seed(tmp_path):
    config = make_config(tmp_path, train_lines=400)
    from seq2seq.data.dataset import prepare_data

    _, _, splits = prepare_data(config, tmp_path / "model")
    sizes = splits["train"].sizes()
    plan = epoch_plan(sizes, batch_tokens=500, seed=3, epoch=0)
    assert np.array_equal(np.sort(np.concatenate(plan)), np.arange(len(splits["train"])))
    assert all(len(b) == 1 or int(sizes[b].max()) * len(b) <= 500 for b in plan)
    again = epoch_plan(sizes, batch_tokens=500, seed=3, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(plan, again)) and len(plan) == len(again)
    assert any(not np.array_equal(a, b) for a, b in zip(plan, epoch_plan(sizes, batch_tokens=500, seed=3, epoch=1)))
    # the lazily collated batches hold exactly the planned pairs
    for (batch, tokens), indices in zip(training_batches(splits["train"], plan), plan):
        assert batch.src.size(0) == len(indices)
        assert tokens == sum(len(splits["train"].trg[i]) + 1 for i in indices) == batch.num_target_tokens


def test_two_process_shares_split_each_global_batch(tmp_path):
    config = make_config(tmp_path)
    from seq2seq.data.dataset import prepare_data
    from seq2seq.data.loader import shard

    _, _, splits = prepare_data(config, tmp_path / "model")
    plan = epoch_plan(splits["train"].sizes(), batch_tokens=400, seed=1, epoch=0, world_size=2)
    for indices in plan[:5]:
        (first, tokens), (second, same_tokens) = (shard(splits["train"], indices, rank=r, world_size=2) for r in (0, 1))
        assert tokens == same_tokens == first.num_target_tokens + second.num_target_tokens
        assert first.src.size(0) + second.src.size(0) == len(indices)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads Linux's per-process memory counters")
def test_random_reads_equal_the_mapped_arrays_and_leave_nothing_mapped(tmp_path):
    prefix = tmp_path / "side"
    writer = TokenArrayWriter(prefix, np.dtype(np.uint16))
    sentences = [list(range(n % 1000, n % 1000 + n % 7)) for n in range(400_000)]  # lengths 0..6
    writer.append(sentences)
    writer.close()
    array = TokenArray(prefix)
    picked = np.random.default_rng(1).permutation(len(sentences))[:300]

    def mapped_kib() -> int:
        return int(Path("/proc/self/status").read_text().split("RssFile:")[1].split()[0])

    before = mapped_kib()
    taken = array.take(picked)
    taken_cost = mapped_kib() - before
    through_map = [array[i].tolist() for i in picked]
    map_cost = mapped_kib() - before - taken_cost
    assert [t.tolist() for t in taken] == [sentences[i] for i in picked] == through_map
    assert taken_cost < 256 < map_cost  # KiB: 300 random reads through the map make ≥ 300 pages resident



def test_a_span_read_end_to_end_equals_the_sentences_one_by_one(tmp_path):
    prefix = tmp_path / "side"
    writer = TokenArrayWriter(prefix, np.dtype(np.uint16))
    sentences = [list(range(n % 50, n % 50 + n % 5)) for n in range(1000)]  # lengths 0..4, empty ones included
    writer.append(sentences)
    writer.close()
    array = TokenArray(prefix)
    for picked in (np.arange(1000), np.arange(3, 1000, 7), np.array([5]), np.array([0, 999]), np.array([], int)):
        ids, lengths = array.take_flat(picked)
        assert lengths.tolist() == [len(sentences[i]) for i in picked]
        assert ids.tolist() == [piece for i in picked for piece in sentences[i]]

def test_prefetcher_hands_on_errors_and_stops_when_left_early():
    def items():
        yield 1
        yield 2
        raise ValueError("broken batch")

    with pytest.raises(ValueError, match="broken batch"), Prefetcher(items()) as prefetched:
        assert list(prefetched) == [1, 2]
    endless = Prefetcher(iter(range(10**9)), depth=2)
    with endless as prefetched:
        assert next(iter(prefetched)) == 0
    assert not endless.thread.is_alive()


def test_a_directory_that_is_not_prepared_data_is_never_replaced(tmp_path):
    precious = tmp_path / "corpus"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    config = make_config(tmp_path, data={"prepared": str(precious)})
    with pytest.raises(UserError, match="not a prepared-data directory"):
        ensure_prepared(config)
    assert (precious / "notes.txt").read_text() == "mine"


def cli(args: list[str]) -> list[str]:
    out = ["train" if args[0] == "train" else args[0], TOY_CONFIG]
    for override in args[1:]:
        out += ["--set", override]
    return out


def test_prepare_then_train_shares_one_preparation(tmp_path, capsys, caplog):
    shared = tmp_path / "shared"
    corpus = [f"data.train={write_slice(tmp_path, 'train', 300)}", f"data.valid={write_slice(tmp_path, 'valid', 20)}",
              f"data.prepared={shared}", *TINY]
    assert main(cli(["prepare", f"training.model_dir={tmp_path / 'a'}", *corpus])) == 0
    assert "prepared" in capsys.readouterr().out and (shared / "manifest.json").is_file()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        for run in ("a", "b"):
            assert main(cli(["train", f"training.model_dir={tmp_path / run}", *corpus])) == 0
    assert caplog.text.count("using the prepared data") == 2 and "preparing" not in caplog.text
    assert (tmp_path / "b" / "spm" / "src.model").is_file()  # the model directory stays self-contained


def test_prepare_in_the_model_dir_then_train_and_overwrite_keep_it(tmp_path, caplog):
    corpus = [f"data.train={write_slice(tmp_path, 'train', 300)}", f"data.valid={write_slice(tmp_path, 'valid', 20)}",
              f"training.model_dir={tmp_path / 'model'}", *TINY]
    assert main(cli(["prepare", *corpus])) == 0
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        assert main(cli(["train", *corpus])) == 0  # only prepared data there: the directory counts as empty
        assert main([*cli(["train", *corpus]), "--overwrite"]) == 0
    assert caplog.text.count("using the prepared data") == 2


def test_resume_refuses_a_vocabulary_changed_by_an_edited_corpus(tmp_path, capsys):
    corpus = [f"data.train={write_slice(tmp_path, 'train', 300)}", f"data.valid={write_slice(tmp_path, 'valid', 20)}",
              f"training.model_dir={tmp_path / 'model'}", *TINY]
    assert main(cli(["train", *corpus])) == 0
    (tmp_path / "train.en").write_text("Völlig neue Wörter hier.\n" * 300, encoding="utf-8")
    assert main([*cli(["train", *corpus, "training.max_steps=20"]), "--resume"]) == 2
    assert "differs from the sentencepiece model prepared from the current data" in capsys.readouterr().err


@pytest.mark.parametrize("fault, expected", [
    (lambda d: (d / "train.de").write_bytes((d / "train.de").read_bytes().replace(b"\n", b"\n\xff", 1)),
     ["train.de, line 2", "invalid UTF-8"]),
    (lambda d: (d / "valid.en").write_bytes(b"fine\nshort\n"),
     ["valid.en", "has 2 lines", "valid.de has 20 lines"]),
    (lambda d: (d / "valid.de").write_bytes(b"ok\n" * 19 + b"nul\x00\n"), ["valid.de, line 20", "NUL"]),
])
def test_corpus_faults_exit_2_naming_file_and_line(tmp_path, capsys, fault, expected):
    corpus = [f"data.train={write_slice(tmp_path, 'train', 300)}", f"data.valid={write_slice(tmp_path, 'valid', 20)}",
              f"training.model_dir={tmp_path / 'model'}", *TINY]
    fault(tmp_path)
    assert main(cli(["prepare", *corpus])) == 2
    error = capsys.readouterr().err
    assert all(text in error for text in expected), error
    assert not (tmp_path / "model" / "data").exists()


def test_sigkill_during_prepare_then_train_prepares_again(tmp_path):
    corpus = [f"data.train={write_slice(tmp_path, 'train', 20_000)}",
              f"data.valid={write_slice(tmp_path, 'valid', 20)}", f"training.model_dir={tmp_path / 'model'}", *TINY]
    process = subprocess.Popen([sys.executable, "-m", "seq2seq", *cli(["prepare", *corpus])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "model").glob(".data.*.partial/spm/*.model")):  # killed while encoding
        assert process.poll() is None and time.monotonic() < deadline, "prepare ended before it could be killed"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "model" / "data").exists()
    done = subprocess.run([sys.executable, "-m", "seq2seq", *cli(["train", *corpus])], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "left by an interrupted prepare" in done.stderr and "no prepared data yet" in done.stderr
    assert read_manifest(tmp_path / "model" / "data")["counts"]["train"]["read"] == 20_000
