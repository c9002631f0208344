"""Smoke run of the benchmark harness with tiny sizes: it runs end to end and reports every key."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=200", "tokenizer.trg_vocab_size=200", "training.batch_tokens=600",
        "decoding.beam_size=1"]


def test_benchmark_reports_every_figure(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--json", "--steps", "2", "--repeats", "1",
               "--sentences", "20", "--train-minutes", "0.05", "--config", str(ROOT / "configs" / "toy.yaml"),
               "--data-dir", str(ROOT / "data" / "toy")]
    for override in TINY:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["gemm_gflops"] > 0 and result["model_flops_per_token"] > 0
    assert {"parallel", "step", "input_feeding"} <= result["train_tok_s"].keys() == result["roofline_pct"].keys()
    translate_keys = {"greedy_fp32", "beam5_fp32", "greedy_int8", "beam5_int8"}
    assert result["translate_sent_s"].keys() == result["bleu"].keys() == translate_keys
    assert all(v > 0 for v in result["translate_sent_s"].values())
    assert result["peak_rss_mb"]["train"] > 50 and result["peak_rss_mb"]["translate"] > 50
