"""Smoke run of the benchmark harness with tiny sizes: it runs end to end and reports every key."""

import json
import subprocess
import sys

from seq2seq.decoding.precision import bf16_supported
from tests.helpers import ROOT, write_slice

TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=200", "tokenizer.trg_vocab_size=200", "training.batch_tokens=600",
        "decoding.beam_size=1"]


def test_benchmark_reports_every_figure(tmp_path):
    data = tmp_path / "data"  # slices of the toy corpus: the harness is under test, not the model
    data.mkdir()
    for split, lines in (("train", 3000), ("valid", 100), ("test", 100)):
        write_slice(data, split, lines)
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--json", "--steps", "2", "--repeats", "1",
               "--sentences", "20", "--train-minutes", "0.05", "--config", str(ROOT / "configs" / "toy.yaml"),
               "--data-dir", str(data)]
    for override in TINY:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["gemm_gflops"] > 0
    fp32 = {"parallel", "input_feeding", "input_feeding_step_loop"}
    assert fp32 <= result["train_tok_s"].keys() == result["roofline_pct"].keys()
    assert result["model_flops_per_token"]["input_feeding"] > result["model_flops_per_token"]["parallel"] > 0
    precisions = ["fp32", "int8"] + (["bf16"] if bf16_supported("cpu") else [])
    translate_keys = {f"{search}_{precision}{shortlist}" for search in ("greedy", "beam5") for precision in precisions
                      for shortlist in ("", "_shortlist")}  # training leaves a shortlist in the model directory
    assert result["translate_sent_s"].keys() == result["bleu"].keys() == translate_keys
    assert all(v > 0 for v in result["translate_sent_s"].values())
    assert result["translate_pieces_s"].keys() == result["translate_mflop_per_sentence"].keys() == translate_keys
    assert all(v > 0 for v in result["translate_mflop_per_sentence"].values())
    assert result["peak_rss_mb"]["train"] > 50 and result["peak_rss_mb"]["translate"] > 50


def test_scale_corpora_are_unique_deterministic_and_nested(tmp_path, script):
    scale = script("scale_benchmark")
    small = scale.build_corpus(tmp_path / "small", 300, valid_pairs=20)
    large = scale.build_corpus(tmp_path / "large", 600, valid_pairs=20)
    sources = (large / "train.en").read_text(encoding="utf-8").splitlines()
    valid = (large / "valid.en").read_text(encoding="utf-8").splitlines()
    assert len(sources) == 600 and len(set(sources + valid)) == 620  # unique, and never in valid
    assert sources[:300] == (small / "train.en").read_text(encoding="utf-8").splitlines()
    assert len((large / "train.de").read_text(encoding="utf-8").splitlines()) == 600


def test_scale_benchmark_measures_prepare_training_and_torchrun(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "scale_benchmark.py"), "--json", "--sizes", "200",
               "--updates", "3", "--processes", "2", "--valid-pairs", "20", "--work", str(tmp_path), "--config",
               str(ROOT / "configs" / "toy.yaml")]
    for override in TINY:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = json.loads(done.stdout)
    assert result["pairs"] == 200 and result["prepare_s"] > 0 and result["disk_mb"] > 0
    assert 0 < result["startup_s"] < 120 and result["train_tok_s"] > 0
    assert result["train_peak_rss_mb"] > 50 and len(result["ddp_peak_rss_mb"]) == 2
