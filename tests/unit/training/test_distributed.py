"""Data-parallel training with torchrun (gloo on CPU): 2 processes on a slice of the toy corpus."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.cli import main
from seq2seq.model.checkpoint import load_checkpoint
from tests.helpers import ROOT, write_slice

CONFIG = str(ROOT / "configs" / "toy.yaml")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "training.batch_tokens=600",
        "training.validate_every=10", "training.log_every=1", "training.save_every_minutes=0",
        "training.num_threads=1", "training.patience=0", "training.shortlist=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("corpus")
    return [f"data.train={write_slice(root, 'train', 400)}", f"data.valid={write_slice(root, 'valid', 20)}",
            "data.test=null", *TINY]


def torchrun(dump: Path, overrides: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    dump.mkdir(exist_ok=True)
    command = [*TORCHRUN, str(Path(__file__).with_name("ddp_worker.py")), str(dump), CONFIG, *overrides]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_processes_agree_with_each_other_and_with_one_process(corpus, tmp_path):
    overrides = [*corpus, "model.dropout=0", "training.max_steps=30", f"training.model_dir={tmp_path / 'ddp'}"]
    torchrun(tmp_path / "dump", overrides)
    rank0 = torch.load(tmp_path / "dump" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "dump" / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)  # DDP keeps replicas bitwise equal
    dumps = sorted((tmp_path / "dump").glob("threads*.txt"))
    if Path("/proc/self/task").is_dir():  # Linux: each rank lists its threads, and the group's are gone
        assert [path.name for path in dumps] == ["threads0.txt", "threads1.txt"]
    for threads in dumps:
        assert "gloo" not in threads.read_text(), threads.read_text()

    single = ["train", CONFIG]
    for override in [*overrides[:-1], f"training.model_dir={tmp_path / 'single'}"]:
        single += ["--set", override]
    assert main(single) == 0
    reference = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")["model"]
    # Same global batches and the same gradient, summed in another order: equal up to float rounding.
    worst = max((rank0[name] - reference[name]).abs().max().item() for name in rank0)
    print(f"largest difference from one process: {worst:.3g}")
    assert worst < 1e-5  # docs/training.md's claim

    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["ddp", "dump", "single"]  # one model directory from the two processes
    ddp_files = sorted(str(p.relative_to(tmp_path / "ddp")) for p in (tmp_path / "ddp").rglob("*") if p.is_file())
    single_files = sorted(str(p.relative_to(tmp_path / "single")) for p in (tmp_path / "single").rglob("*")
                          if p.is_file())
    assert ddp_files == single_files
    events = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(1, 31))  # written once, by rank 0


def test_a_time_budget_schedule_keeps_the_replicas_equal(corpus, tmp_path):
    """The budget schedule's rate follows the clock, and each process has its own: they must use one value."""
    overrides = [*corpus, "training.max_steps=20", "training.scheduler=budget", "training.warmup_steps=2",
                 "training.max_minutes=0.5", f"training.model_dir={tmp_path / 'ddp'}"]
    torchrun(tmp_path / "dump", overrides)
    rank0 = torch.load(tmp_path / "dump" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "dump" / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in environ:
        if entry.startswith(b"RANK="):
            return int(entry[5:])
    return None


def kill_rank_1_after(updates: int, model_dir: Path, overrides: list[str]) -> tuple[list[str], str]:
    """Start ``seq2seq train`` under torchrun, SIGKILL rank 1 once ``updates`` training events are logged, and
    wait for the job to end; returns the command (to resume with) and the job's stderr."""
    command = [*TORCHRUN, "-m", "seq2seq", "train", CONFIG]
    for override in [*overrides, f"training.model_dir={model_dir}"]:
        command += ["--set", override]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    metrics = model_dir / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().count('"train"') >= updates):
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()
        time.sleep(0.02)
    os.kill(next(pid for pid in children(job.pid) if rank_of(pid) == 1), signal.SIGKILL)
    killed_at = time.monotonic()
    _, stderr = job.communicate(timeout=60)
    assert job.returncode != 0
    assert time.monotonic() - killed_at < 30  # the job ends quickly
    return command, stderr


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker processes through /proc")
def test_a_rank_killed_for_real_ends_the_job_quickly_and_the_resume_is_bitwise_equal_to_a_straight_run(corpus,
                                                                                                     tmp_path):
    """Dropout: each process's RNG state must be restored; the moving average lives in rank 0 alone."""
    base = [*corpus, "model.dropout=0.2", "training.ema_decay=0.9", "training.max_steps=30",
            "training.save_every_steps=3"]
    torchrun(tmp_path / "dump", [*base, f"training.model_dir={tmp_path / 'straight'}"])
    model_dir = tmp_path / "killed"
    command, stderr = kill_rank_1_after(8, model_dir, base)  # which checks that the job ends within 30 s
    assert "rank" in stderr.lower() and ("SIGKILL" in stderr or "exitcode" in stderr)
    saved = load_checkpoint(model_dir / "checkpoints" / "last.pt")["progress"]["step"]
    assert 6 <= saved < 30  # the kill interrupted the run after a save
    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(model_dir / "checkpoints" / "last.pt")
    assert straight["progress"]["step"] == resumed["progress"]["step"] == 30
    for key in ("model", "training_model"):  # the average, and the weights that train
        assert all(torch.equal(straight[key][name], resumed[key][name]) for name in straight[key]), key
