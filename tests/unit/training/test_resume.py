"""Resume after a kill, stop signals, atomic saves, checkpoint rotation and averaging, non-finite updates."""

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
from seq2seq.common.atomic import remove_stale_temporaries
from seq2seq.model.checkpoint import (
    average_checkpoints,
    load_checkpoint,
    prune_step_checkpoints,
    save_checkpoint,
    step_checkpoints,
)
from seq2seq.training import update
from tests.unit.training.runs import events, train_args, validation_figures


def assert_same_weights(a: Path, b: Path) -> None:
    state_a, state_b = load_checkpoint(a), load_checkpoint(b)
    assert state_a["progress"]["step"] == state_b["progress"]["step"]
    for name, tensor in state_a["model"].items():
        assert torch.equal(tensor, state_b["model"][name]), name  # bitwise, not approximately


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seq2seq", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for_step(model_dir: Path, step: int, process: subprocess.Popen, timeout: float = 120) -> None:
    """Poll metrics.jsonl until a training event at ``step`` or later has been written."""
    deadline = time.monotonic() + timeout
    metrics = model_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if metrics.exists():
            for line in metrics.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line being written right now
                    continue
                if record["event"] == "train" and record["step"] >= step:
                    return
        time.sleep(0.02)
    raise AssertionError(f"no training event at step {step} within {timeout} s")


# ---------------------------------------------------------------------------------------------------------
# Kill and resume
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [
    [],  # the toy config: dropout 0.1, the parallel decoder
    # the recipes' setting with input feeding: the fused loop draws its own dropout masks; tied embeddings, with
    # the projection from the decoder's 32 to the embedding's 16
    ["model.input_feeding=true", "model.dropout=0.3", "model.tied_embeddings=decoder"],
], ids=["toy", "input-feeding-dropout-tied"])
def test_sigkill_then_resume_is_bitwise_identical_to_an_uninterrupted_run(corpus, tmp_path, variant):
    steps = ["training.max_steps=50", "training.validate_every=15", "training.save_every_steps=4",
             "training.patience=0", *variant]
    straight = tmp_path / "straight"
    assert main(train_args(straight, corpus, *steps)) == 0

    killed = tmp_path / "killed"
    process = run_cli(train_args(killed, corpus, *steps))
    wait_for_step(killed, 33, process)  # past a validation (30), a save (32) and an epoch boundary
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    saved_step = load_checkpoint(killed / "checkpoints" / "last.pt")["progress"]["step"]
    assert 32 <= saved_step < 50  # the kill really interrupted the run

    resumed = run_cli(train_args(killed, corpus, *steps) + ["--resume"])
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    for vocabulary in ("src.vocab", "trg.vocab"):  # the same pieces and scores
        assert (straight / "spm" / vocabulary).read_bytes() == (killed / "spm" / vocabulary).read_bytes()
    assert_same_weights(straight / "checkpoints" / "last.pt", killed / "checkpoints" / "last.pt")
    assert_same_weights(straight / "checkpoints" / "best.pt", killed / "checkpoints" / "best.pt")
    assert validation_figures(straight) == validation_figures(killed)
    assert [e["step"] for e in events(killed, "train")] == list(range(1, 51))  # no gap, no repeat


def test_sigterm_finishes_the_update_saves_and_exits_zero(corpus, tmp_path):
    model_dir = tmp_path / "model"
    process = run_cli(train_args(model_dir, corpus, "training.max_steps=100000", "training.validate_every=1000"))
    wait_for_step(model_dir, 5, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "SIGTERM" in stderr and "--resume" in stderr
    last_logged = events(model_dir, "train")[-1]["step"]
    assert load_checkpoint(model_dir / "checkpoints" / "last.pt")["progress"]["step"] == last_logged


def test_kill_during_a_save_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "last.pt"
    script = f"""
import sys, time, torch
from seq2seq.common import atomic
from seq2seq.model import checkpoint
checkpoint.save_checkpoint({str(path)!r}, {{"v": torch.zeros(3)}})
def stalled_fsync(fd):
    print("saving", flush=True)
    time.sleep(60)
atomic.os.fsync = stalled_fsync  # the new bytes are in the temporary file; the rename has not happened
checkpoint.save_checkpoint({str(path)!r}, {{"v": torch.ones(3)}})
"""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "saving"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert torch.equal(load_checkpoint(path)["v"], torch.zeros(3))
    leftovers = list(tmp_path.glob(".*.tmp"))
    assert len(leftovers) == 1
    assert remove_stale_temporaries(tmp_path) == leftovers and not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------------------------------------------------
# Starting, resuming and refusing
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_run(corpus, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("short") / "model"
    assert main(train_args(model_dir, corpus, "training.max_steps=12", "training.validate_every=4",
                           "training.keep_last=2")) == 0
    return model_dir


def test_a_non_empty_model_dir_needs_resume_or_overwrite(short_run, corpus, capsys):
    assert main(train_args(short_run, corpus, "training.max_steps=12")) == 2
    error = capsys.readouterr().err
    assert str(short_run) in error and "--resume" in error and "--overwrite" in error


def test_resume_refuses_a_changed_model_and_names_every_changed_key_in_one_message(short_run, corpus, capsys):
    changed = ["model.encoder_hidden=24", "model.decoder_hidden=48"]  # a valid config (dot: 48 = 24 x 2)
    assert main(train_args(short_run, corpus, "training.max_steps=12", *changed) + ["--resume"]) == 2
    error = capsys.readouterr().err
    assert "cannot resume" in error
    assert "model.encoder_hidden: 16 in the checkpoint, 24 now" in error
    assert "model.decoder_hidden: 32 in the checkpoint, 48 now" in error


def test_resume_accepts_harmless_changes_and_logs_them(short_run, corpus, tmp_path, capsys):
    copy = tmp_path / "model"
    subprocess.run(["cp", "-r", str(short_run), str(copy)], check=True, timeout=120)
    assert main(train_args(copy, corpus, "training.max_steps=16", "training.validate_every=8") + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "training.validate_every changed from 4 to 8" in err
    assert [e["step"] for e in events(copy, "valid")] == [4, 8, 12, 16]


def test_resume_without_a_checkpoint_explains(corpus, tmp_path, capsys):
    assert main(train_args(tmp_path / "new", corpus) + ["--resume"]) == 2
    assert "last.pt does not exist" in capsys.readouterr().err


def test_a_corrupt_last_checkpoint_names_the_newest_good_one(short_run, corpus, tmp_path, capsys):
    copy = tmp_path / "model"
    subprocess.run(["cp", "-r", str(short_run), str(copy)], check=True, timeout=120)
    last = copy / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # truncated, as by a full disk outside our atomic writes
    assert main(train_args(copy, corpus, "training.max_steps=12") + ["--resume"]) == 2
    error = capsys.readouterr().err
    assert str(last) in error and "step_0000012.pt" in error and "--resume-from step_0000012.pt" in error
    assert main(train_args(copy, corpus, "training.max_steps=16") + ["--resume-from", "step_0000012.pt"]) == 0
    assert load_checkpoint(last)["progress"]["step"] == 16


# ---------------------------------------------------------------------------------------------------------
# Step checkpoints and averaging
# ---------------------------------------------------------------------------------------------------------


def test_keep_last_bounds_the_step_checkpoints(short_run):
    assert [step for step, _ in step_checkpoints(short_run / "checkpoints")] == [8, 12]


def test_prune_keeps_the_newest_and_the_best(tmp_path):
    for step in (10, 20, 30, 40, 50):
        save_checkpoint(tmp_path / f"step_{step:07d}.pt", {"model": {}})
    scores = {10: 5.0, 20: 9.0, 30: 7.0, 40: 1.0, 50: 2.0}
    prune_step_checkpoints(tmp_path, keep_last=2, keep_best=2, scores=scores, higher_is_better=True)
    assert [step for step, _ in step_checkpoints(tmp_path)] == [20, 30, 40, 50]
    prune_step_checkpoints(tmp_path, keep_last=1, keep_best=1, scores=scores, higher_is_better=False)
    assert [step for step, _ in step_checkpoints(tmp_path)] == [40, 50]  # lowest loss is step 40


def test_prune_keeps_everything_while_there_are_fewer_than_keep_last(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path / f"step_{step:07d}.pt", {"model": {}})
        prune_step_checkpoints(tmp_path, keep_last=5, keep_best=0, scores={}, higher_is_better=True)
    assert [step for step, _ in step_checkpoints(tmp_path)] == [10, 20, 30, 40]


def test_average_is_the_elementwise_mean(tmp_path):
    paths = []
    for i, values in enumerate(([1.0, 2.0], [3.0, 6.0], [5.0, 1.0])):
        paths.append(tmp_path / f"step_{i:07d}.pt")
        save_checkpoint(paths[-1], {"model": {"w": torch.tensor(values)}, "config": {"i": i}})
    averaged = average_checkpoints(paths)
    assert torch.allclose(averaged["model"]["w"], torch.tensor([3.0, 3.0]))
    assert averaged["config"] == {"i": 2}


def test_bpe_dropout_training_is_repeatable(corpus, tmp_path):
    """BPE-dropout samples from seeds of (run, epoch, batch): the same run twice makes the same updates."""
    for name in ("a", "b"):
        assert main(train_args(tmp_path / name, corpus, "training.bpe_dropout=0.2", "training.max_steps=6",
                               "training.validate_every=6")) == 0
    assert_same_weights(tmp_path / "a" / "checkpoints" / "last.pt", tmp_path / "b" / "checkpoints" / "last.pt")
    losses = [[e["loss"] for e in events(tmp_path / name, "train")] for name in ("a", "b")]
    assert losses[0] == losses[1]


def test_budget_schedule_and_averaging_the_last_checkpoints_at_the_end(corpus, tmp_path):
    model_dir = tmp_path / "model"
    assert main(train_args(model_dir, corpus, "training.scheduler=budget", "training.warmup_steps=2",
                           "training.max_steps=12", "training.validate_every=4", "training.patience=0",
                           "training.keep_last=3", "training.average_last=3")) == 0
    rates = [e["lr"] for e in events(model_dir, "train")]  # the rate of each update, 1 to 12
    assert rates == pytest.approx([0.003 * min(k / 2, 1 - (k - 1) / 12) for k in range(1, 13)])
    checkpoints = model_dir / "checkpoints"
    steps = [load_checkpoint(checkpoints / f"step_{k:07d}.pt")["model"] for k in (4, 8, 12)]
    averaged = load_checkpoint(checkpoints / "averaged.pt")["model"]
    for name, tensor in averaged.items():
        assert torch.allclose(tensor, sum(step[name] for step in steps) / 3, atol=1e-6), name
    (average,) = events(model_dir, "average")
    assert average["checkpoints"] == ["step_0000004.pt", "step_0000008.pt", "step_0000012.pt"]
    best_bleu = max(e["bleu"] for e in events(model_dir, "valid"))
    assert average["best"] == (average["bleu"] > best_bleu)
    best = load_checkpoint(checkpoints / "best.pt")["model"]
    assert all(torch.equal(best[name], averaged[name]) for name in best) == average["best"]
    assert (checkpoints / "best_single.pt").exists() == average["best"]


def test_average_command_writes_a_checkpoint_translate_can_use(short_run, capsys):
    assert main(["average", str(short_run), "-n", "2"]) == 0
    averaged = load_checkpoint(short_run / "checkpoints" / "averaged.pt")["model"]
    parts = [load_checkpoint(path)["model"] for _, path in step_checkpoints(short_run / "checkpoints")]
    for name, tensor in averaged.items():
        assert torch.allclose(tensor, (parts[0][name] + parts[1][name]) / 2, atol=1e-6)
    assert main(["translate", str(short_run), "--checkpoint", "averaged.pt", "The dog sleeps."]) == 0
    # the averaging report, then one translation (after 12 updates it may be empty)
    assert capsys.readouterr().out.count("\n") == 2
    assert main(["average", str(short_run), "-n", "3"]) == 2
    assert "fewer than -n 3" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# Non-finite losses and gradients
# ---------------------------------------------------------------------------------------------------------


class InfiniteGradient(torch.autograd.Function):
    """Identity forward; an infinite gradient backward (a finite loss with an exploding gradient)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def inject_faults(monkeypatch, faulty_calls: set[int] | None, kind: str) -> None:
    """Make the training loss NaN (or its gradient infinite) on the given training calls (None: all)."""
    real = update.output_loss
    calls = [0]

    def faulty(features, output, targets, *, label_smoothing):
        loss, tokens = real(features, output, targets, label_smoothing=label_smoothing)
        if not torch.is_grad_enabled():  # validation: leave alone
            return loss, tokens
        calls[0] += 1
        if faulty_calls is None or calls[0] in faulty_calls:
            loss = loss * float("nan") if kind == "loss" else InfiniteGradient.apply(loss)
        return loss, tokens

    monkeypatch.setattr(update, "output_loss", faulty)


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_non_finite_updates_are_skipped_and_counted(corpus, tmp_path, monkeypatch, kind):
    inject_faults(monkeypatch, {3, 4, 9}, kind)
    model_dir = tmp_path / "model"
    assert main(train_args(model_dir, corpus, "training.max_steps=10", "training.validate_every=10")) == 0
    assert [e["step"] for e in events(model_dir, "skip")] == [2, 2, 6]  # after updates 2, 2 and 6
    assert events(model_dir, "train")[-1]["skipped_updates"] == 3
    assert events(model_dir, "train")[-1]["step"] == 10  # 10 real updates from 13 batches
    weights = load_checkpoint(model_dir / "checkpoints" / "last.pt")["model"]
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_training_stops_after_too_many_skips_in_a_row(corpus, tmp_path, monkeypatch, capsys):
    inject_faults(monkeypatch, None, "loss")
    args = train_args(tmp_path / "model", corpus, "training.max_steps=50", "training.max_skipped_updates=4")
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "4 updates in a row" in error and "training.learning_rate" in error


def test_the_limit_of_skipped_updates_defaults_to_10(corpus, tmp_path, monkeypatch, capsys):
    inject_faults(monkeypatch, None, "loss")
    assert main(train_args(tmp_path / "model", corpus, "training.max_steps=50")) == 2
    assert "10 updates in a row" in capsys.readouterr().err


def test_a_stale_temporary_file_is_removed_by_the_next_start(short_run, corpus, tmp_path, capsys):
    copy = tmp_path / "model"
    subprocess.run(["cp", "-r", str(short_run), str(copy)], check=True, timeout=120)
    stale = copy / "checkpoints" / ".last.pt.x1y2.tmp"  # what a kill during a save leaves (see above)
    stale.write_bytes(b"half a checkpoint")
    assert main(train_args(copy, corpus, "training.max_steps=16", "training.validate_every=4") + ["--resume"]) == 0
    assert not stale.exists() and not list(copy.rglob("*.tmp"))
    assert str(stale.name) in capsys.readouterr().err  # and the log says what it removed


def interrupt_update(monkeypatch, update_number: int, signals: int) -> None:
    """Send this process ``signals`` SIGINTs (Ctrl-C presses) during training update ``update_number``."""
    real = update.output_loss
    calls = [0]

    def interrupting(features, output, targets, *, label_smoothing):
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == update_number:
                for _ in range(signals):
                    os.kill(os.getpid(), signal.SIGINT)
        return real(features, output, targets, label_smoothing=label_smoothing)

    monkeypatch.setattr(update, "output_loss", interrupting)


def test_a_second_ctrl_c_stops_at_once_and_leaves_the_checkpoints_whole(corpus, tmp_path, monkeypatch, capsys):
    """Ctrl-C twice during update 5 (after a save at update 3): the run stops inside that update, exit 130,
    without the save a first Ctrl-C would make, and the checkpoints on disk still load."""
    interrupt_update(monkeypatch, 5, signals=2)  # the first asks to stop after the update, the second stops now
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a foreground shell
    try:
        model_dir = tmp_path / "model"
        assert main(train_args(model_dir, corpus, "training.max_steps=50", "training.save_every_steps=3")) == 130
        assert "interrupted" in capsys.readouterr().err
        assert load_checkpoint(model_dir / "checkpoints" / "last.pt")["progress"]["step"] == 3
        assert not list(model_dir.rglob("*.tmp"))
    finally:
        signal.signal(signal.SIGINT, before)


def test_sigint_in_process_stops_like_sigterm(corpus, tmp_path, monkeypatch, capsys):
    """The same path through the handler, without a subprocess: a signal raised during an update."""
    interrupt_update(monkeypatch, 3, signals=1)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a foreground shell
    try:
        model_dir = tmp_path / "model"
        assert main(train_args(model_dir, corpus, "training.max_steps=50")) == 0
        assert "stopped by SIGINT after update 3" in capsys.readouterr().err
        assert load_checkpoint(model_dir / "checkpoints" / "last.pt")["progress"]["step"] == 3
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    finally:
        signal.signal(signal.SIGINT, before)
