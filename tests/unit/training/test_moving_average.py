"""The moving average of the weights (training.ema_decay): its arithmetic, and how a run validates, saves and
resumes it."""

import pytest
import torch

from seq2seq.cli import main
from seq2seq.model.checkpoint import load_checkpoint
from seq2seq.training.moving_average import MovingAverage, decay_at
from tests.unit.training.runs import events, train_args, validation_figures


def test_the_average_follows_the_formula_with_the_warm_up_decay():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(4.0)
    average = MovingAverage(model, decay=0.5)
    with torch.no_grad():  # update 1: the decay is min(0.5, 1/10) = 0.1
        model.weight.copy_(torch.tensor([[11.0, 2.0]]))
        model.bias.fill_(-6.0)
    average.update(model, step=1)
    assert average.model.weight[0].tolist() == pytest.approx([0.1 * 1 + 0.9 * 11, 2.0])
    assert average.model.bias.item() == pytest.approx(0.1 * 4 + 0.9 * -6)
    with torch.no_grad():  # update 2: min(0.5, 2/11)
        model.weight.copy_(torch.tensor([[0.0, 0.0]]))
    average.update(model, step=2)
    assert average.model.weight[0].tolist() == pytest.approx([2 / 11 * 10.0, 2 / 11 * 2.0])
    assert [decay_at(0.999, n) for n in (1, 9, 891, 10**6)] == pytest.approx([0.1, 0.5, 0.99, 0.999])
    assert not average.model.weight.requires_grad  # the average never trains


def test_validation_and_checkpoints_use_the_average_and_a_resume_is_bitwise(corpus, tmp_path):  # noqa: F811
    steps = ["training.scheduler=none", "training.validate_every=4", "training.patience=0"]
    plain, straight, stopped = tmp_path / "plain", tmp_path / "straight", tmp_path / "stopped"
    assert main(train_args(plain, corpus, "training.max_steps=12", *steps)) == 0
    assert main(train_args(straight, corpus, "training.max_steps=12", "training.ema_decay=0.9", *steps)) == 0

    # the average never changes training: the same losses, and the weights that train are the plain run's
    assert [e["loss"] for e in events(plain, "train")] == [e["loss"] for e in events(straight, "train")]
    plain_last, average_last = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (plain, straight))
    for name, tensor in plain_last["model"].items():
        assert torch.equal(tensor, average_last["training_model"][name]), name
    # ... while validation scores the average, which checkpoints hold as the model to translate with
    assert validation_figures(plain) != validation_figures(straight)
    assert any(not torch.equal(tensor, average_last["training_model"][name])
               for name, tensor in average_last["model"].items())
    assert main(["translate", str(straight), "--checkpoint", "last.pt", "The dog sleeps."]) == 0

    # stopped at update 8 (a validation in both runs), then resumed to 12: the same average, bit for bit
    assert main(train_args(stopped, corpus, "training.max_steps=8", "training.ema_decay=0.9", *steps)) == 0
    assert main(train_args(stopped, corpus, "training.max_steps=12", "training.ema_decay=0.9", *steps)
                + ["--resume"]) == 0
    resumed_last = load_checkpoint(stopped / "checkpoints" / "last.pt")
    for key in ("model", "training_model"):
        for name, tensor in average_last[key].items():
            assert torch.equal(tensor, resumed_last[key][name]), (key, name)
    assert validation_figures(straight) == validation_figures(stopped)


def test_the_weights_that_trained_decode_and_average_on_request(corpus, tmp_path, capsys):  # noqa: F811
    from seq2seq.decoding.translator import Translator

    steps = ["training.scheduler=none", "training.validate_every=4", "training.patience=0", "training.max_steps=12"]
    plain, averaged = tmp_path / "plain", tmp_path / "averaged"
    assert main(train_args(plain, corpus, *steps)) == 0
    assert main(train_args(averaged, corpus, "training.ema_decay=0.9", *steps)) == 0

    # --training-weights decodes the weights the plain run ended with, not the average
    trained = Translator.from_dir(averaged, checkpoint="last.pt", training_weights=True).model.state_dict()
    smoothed = Translator.from_dir(averaged, checkpoint="last.pt").model.state_dict()
    for name, tensor in Translator.from_dir(plain, checkpoint="last.pt").model.state_dict().items():
        assert torch.equal(tensor, trained[name]), name
    assert any(not torch.equal(tensor, smoothed[name]) for name, tensor in trained.items())

    # averaging the weights that trained gives the plain run's average of the same checkpoints
    assert main(["average", str(plain), "-n", "2"]) == 0
    assert main(["average", str(averaged), "-n", "2", "--training-weights"]) == 0
    plain_mean, trained_mean = (load_checkpoint(d / "checkpoints" / "averaged.pt")["model"] for d in (plain, averaged))
    for name, tensor in plain_mean.items():
        assert torch.equal(tensor, trained_mean[name]), name

    # a run without the average has no separate training weights: a clear error that names the file
    capsys.readouterr()
    assert main(["translate", str(plain), "--checkpoint", "last.pt", "--training-weights", "The dog sleeps."]) != 0
    error = capsys.readouterr().err
    assert "last.pt holds no separate training weights" in error and "training.ema_decay" in error
