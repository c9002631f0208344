"""Training pieces: loss, learning-rate schedules, early-stopping comparisons, atomic checkpoints."""

import math

import pytest
import torch

import seq2seq.model.loss as loss_module
import seq2seq.training.finish as finish
from seq2seq.common.atomic import atomic_write_text
from seq2seq.common.model_dir import ModelDir
from seq2seq.config import ModelConfig, StoppingMetric, config_from_dict, load_config
from seq2seq.data.batching import Example, collate
from seq2seq.errors import UserError
from seq2seq.model.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.model.loss import output_loss
from seq2seq.model.network import build_model
from seq2seq.special_ids import PAD_ID
from seq2seq.training.context import RunContext
from seq2seq.training.optimization import make_optimizer, make_scheduler
from seq2seq.training.reporters import Reporter
from seq2seq.training.run_state import Progress
from seq2seq.training.update import autocast_supported, train_step


def config(**training):
    return config_from_dict({"data": {"train": "t", "valid": "v"},
                             "training": {"model_dir": "m", "learning_rate": 1.0, **training}})


def test_output_loss_ignores_padding_and_matches_hand_value():
    output = torch.nn.Linear(2, 4)  # H=2 → V=4, all zero: uniform predictions
    torch.nn.init.zeros_(output.weight)
    torch.nn.init.zeros_(output.bias)
    features = torch.randn(1, 3, 2)  # [B=1, T=3, H=2]
    targets = torch.tensor([[2, 3, 0]])  # the last position is padding
    loss, tokens = output_loss(features, output, targets, label_smoothing=0.0)
    assert tokens == 2 and loss.item() == pytest.approx(2 * math.log(4))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_logits", [7, 1 << 22])  # 7: one token per chunk; else all at once
def test_fused_output_loss_equals_cross_entropy_of_the_logits_in_value_and_gradients(
        monkeypatch, label_smoothing, chunk_logits):
    monkeypatch.setattr(loss_module, "CHUNK_LOGITS", chunk_logits)
    torch.manual_seed(0)
    output = torch.nn.Linear(16, 7)
    features = torch.randn(3, 5, 16, requires_grad=True)  # [B, T, H]
    targets = torch.randint(4, 7, (3, 5))
    targets[0, 3:] = PAD_ID
    targets[2, 1:] = PAD_ID

    def gradients(loss):
        loss.backward()
        out = [t.grad.clone() for t in (features, output.weight, output.bias)]
        features.grad = output.weight.grad = output.bias.grad = None
        return out

    fused, tokens = output_loss(features, output, targets, label_smoothing=label_smoothing)
    fused_grads = gradients(fused)
    plain = torch.nn.functional.cross_entropy(output(features).reshape(-1, 7), targets.reshape(-1),
                                              ignore_index=PAD_ID, label_smoothing=label_smoothing, reduction="sum")
    assert tokens == 15 - 2 - 4
    assert fused.item() == pytest.approx(plain.item(), abs=1e-5)
    for mine, reference in zip(fused_grads, gradients(plain)):
        assert torch.allclose(mine, reference, atol=1e-6)


def test_warmup_decay_schedule_rises_then_decays():
    model = torch.nn.Linear(2, 2)
    cfg = config(scheduler="warmup_decay", warmup_steps=4)
    optimizer = make_optimizer(model, cfg)
    scheduler, step_at = make_scheduler(optimizer, cfg)
    assert step_at == "update"
    rates = []
    for _ in range(16):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[15] == pytest.approx(math.sqrt(4 / 16))  # inverse square-root decay after warm-up


def test_budget_schedule_warms_up_then_decays_linearly_to_zero_at_the_step_budget():
    model = torch.nn.Linear(2, 2)
    schedule, step_at = make_scheduler(
        make_optimizer(model, cfg := config(scheduler="budget", warmup_steps=4, max_steps=20)), cfg)
    assert step_at == "before_update"
    rates = [schedule.rate(step, elapsed=0.0) for step in range(21)]
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 0.85])  # warm-up until it meets the line 1 - 3/20
    assert rates[10] == pytest.approx(0.5) and rates[19] == pytest.approx(0.05) and rates[20] == 0.0
    assert schedule.optimizer.param_groups[0]["lr"] == pytest.approx(0.25)  # set for the first update at once


def test_budget_schedule_follows_whichever_budget_runs_out_first():
    cfg = config(scheduler="budget", warmup_steps=0, max_steps=100, max_minutes=10)
    schedule, _ = make_scheduler(make_optimizer(torch.nn.Linear(2, 2), cfg), cfg)
    assert schedule.rate(10, elapsed=300.0) == pytest.approx(0.5)  # half the 600 s gone, a tenth of the steps
    assert schedule.rate(90, elapsed=60.0) == pytest.approx(0.1)  # the steps run out first
    schedule.set(step=0, elapsed=450.0)
    assert schedule.optimizer.param_groups[0]["lr"] == pytest.approx(0.25)
    minutes_only = config(scheduler="budget", warmup_steps=0, max_minutes=10)
    assert make_scheduler(make_optimizer(torch.nn.Linear(2, 2), minutes_only), minutes_only)[0].rate(
        10**6, elapsed=540.0) == pytest.approx(0.1)


def test_budget_schedule_can_hold_the_peak_and_cool_down_at_the_end():
    cfg = config(scheduler="budget", warmup_steps=2, max_steps=100, decay_fraction=0.2)
    schedule, _ = make_scheduler(make_optimizer(torch.nn.Linear(2, 2), cfg), cfg)
    rates = [schedule.rate(step, elapsed=0.0) for step in range(101)]
    assert rates[:2] == pytest.approx([0.5, 1.0]) and rates[80] == pytest.approx(1.0)
    assert rates[90] == pytest.approx(0.5) and rates[99] == pytest.approx(0.05) and rates[100] == 0.0


def test_budget_schedule_needs_a_budget():
    with pytest.raises(UserError, match="max_minutes or training.max_steps"):
        config(scheduler="budget")


def test_plateau_schedule_cuts_the_rate_when_bleu_stalls():
    model = torch.nn.Linear(2, 2)
    cfg = config(scheduler="plateau", plateau_patience=1, plateau_factor=0.5, early_stopping_metric="bleu")
    optimizer = make_optimizer(model, cfg)
    scheduler, step_at = make_scheduler(optimizer, cfg)
    assert step_at == "validation"
    for bleu in (10.0, 12.0, 11.0, 11.5):
        scheduler.step(bleu)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


def test_length_penalty_chosen_on_valid_is_the_first_best_and_written_to_config_yaml(tmp_path, monkeypatch):
    """choose_length_penalty keeps the candidate with the highest valid BLEU (the earlier one on a tie), returns
    its BLEU and hypotheses, reports every candidate, and rewrites the run's config.yaml with the choice."""
    bleu = {0.6: 30.0, 1.0: 31.5, 1.4: 31.5, 2.0: 29.0}
    searched = []

    def fake_score_split(model, run, split, options):
        searched.append((options.beam_size, options.length_penalty))
        return bleu[options.length_penalty], [f"hypothesis at {options.length_penalty}"]

    class Recorder(Reporter):
        def length_penalty(self, step, **fields):
            self.event = (step, fields)

    monkeypatch.setattr(finish, "score_split", fake_score_split)
    config = config_from_dict({"data": {"train": "t", "valid": "v"}, "training": {
        "model_dir": str(tmp_path), "tune_length_penalty": list(bleu)}, "decoding": {"beam_size": 4}})
    reporter = Recorder()
    run = RunContext(config, ModelDir(tmp_path), {"valid": None}, None, None, torch.device("cpu"), reporter,
                     Progress(step=7))
    chosen, valid = finish.choose_length_penalty(None, run)
    assert chosen == 1.0
    assert searched == [(4, alpha) for alpha in bleu]
    assert valid == (31.5, ["hypothesis at 1.0"])
    assert reporter.event == (7, {"beam_size": 4, "bleu": bleu, "chosen": 1.0})
    assert load_config(tmp_path / "config.yaml").decoding.length_penalty == 1.0


def test_improved_direction_depends_on_metric():
    bleu, loss, ppl = StoppingMetric("bleu"), StoppingMetric("loss"), StoppingMetric("ppl")
    assert bleu.improved(20.0, 10.0) and not bleu.improved(5.0, 10.0)
    assert loss.improved(1.0, 2.0) and not ppl.improved(3.0, 2.0)
    assert loss.improved(9.0, None)


def losses_of_60_steps(autocast=None):
    """Train a tiny model on one batch for 60 steps; returns the model and the per-step losses."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(embedding_dim=8, encoder_hidden=4, decoder_hidden=8, dropout=0.0),
                        src_vocab_size=12, trg_vocab_size=12)
    batch = collate([Example([4, 5, 6], [7, 8]), Example([9], [10, 11, 4])])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return model, [train_step(model, batch, optimizer, label_smoothing=0.0, clip_grad_norm=1.0, autocast=autocast)
                   for _ in range(60)]


def test_train_step_lowers_the_loss_on_a_batch():
    _, losses = losses_of_60_steps()
    assert losses[-1] < 0.5 * losses[0]


def test_checkpoint_round_trip_and_corrupt_file_error(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"weights": torch.arange(5), "step": 3})
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and loaded["weights"].tolist() == [0, 1, 2, 3, 4]
    path.write_bytes(path.read_bytes()[:40])  # truncated, as after a crash without atomic writes
    with pytest.raises(UserError, match="c.pt is truncated or corrupt"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "state.txt"
    atomic_write_text(path, "old")

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.txt"]  # the temporary file was removed


@pytest.mark.skipif(not autocast_supported("cpu", torch.bfloat16),
                    reason="this CPU's oneDNN has no bfloat16 LSTM kernel (it needs AVX-512)")
def test_bf16_autocast_step_keeps_float32_weights_and_learns():
    model, losses = losses_of_60_steps(autocast=torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]
