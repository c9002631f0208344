"""Smoke tests on a CUDA GPU (``pytest -m gpu``): training in fp32 and bf16, a resume, and decoding that gives
the CPU's tokens. They skip, saying why, where CUDA is not available."""

import json

import pytest
import torch

from seq2seq.cli import main
from seq2seq.decoding.translator import Translator
from seq2seq.model.checkpoint import load_checkpoint
from tests.helpers import TOY_CONFIG, train_tiny, write_slice

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available())")]

TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "training.batch_tokens=600",
        "training.validate_every=10", "decoding.beam_size=3"]
SENTENCES = ["The dog sleeps.", "A cat reads the book.", "Because the man reads, the woman sleeps."]


def train_events(model_dir):
    lines = (model_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event.get("event") == "train"]


@pytest.mark.parametrize("autocast", ["none", "bf16"])
def test_twenty_training_steps_on_cuda(tmp_path, autocast):
    model_dir = train_tiny(tmp_path, TINY + ["training.device=cuda", f"training.autocast={autocast}",
                                             "training.max_steps=20", "training.log_every=5"],
                           train_lines=400, valid_lines=20)
    losses = [event["loss"] for event in train_events(model_dir)]
    assert losses and all(loss == loss and loss < 100 for loss in losses)  # finite
    assert load_checkpoint(model_dir / "checkpoints" / "last.pt")["progress"]["step"] == 20


def test_a_cuda_run_resumes(tmp_path):
    model_dir = train_tiny(tmp_path, TINY + ["training.device=cuda", "training.max_steps=10"],
                           train_lines=400, valid_lines=20)
    args = ["train", TOY_CONFIG]
    for override in [f"data.train={write_slice(tmp_path, 'train', 400)}",
                     f"data.valid={write_slice(tmp_path, 'valid', 20)}", "data.test=null",
                     f"training.model_dir={model_dir}", *TINY, "training.device=cuda", "training.max_steps=20"]:
        args += ["--set", override]
    assert main(args + ["--resume"]) == 0
    assert load_checkpoint(model_dir / "checkpoints" / "last.pt")["progress"]["step"] == 20


@pytest.mark.parametrize("beam", [1, 3])
def test_decoding_on_cuda_gives_the_cpu_tokens(tmp_path, beam):
    model_dir = train_tiny(tmp_path, TINY + ["training.device=cpu", "training.max_steps=40"],
                           train_lines=400, valid_lines=20)
    cpu, gpu = (Translator.from_dir(model_dir, device=device) for device in ("cpu", "cuda"))
    on_cpu = cpu.translate_with_details(SENTENCES, cpu.search_options(beam_size=beam))
    on_gpu = gpu.translate_with_details(SENTENCES, gpu.search_options(beam_size=beam))
    assert [t.trg_pieces for t in on_gpu] == [t.trg_pieces for t in on_cpu]
    assert [t.score for t in on_gpu] == pytest.approx([t.score for t in on_cpu], abs=1e-3)
