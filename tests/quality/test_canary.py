"""A quality canary in the default run: a short toy training must clear loss and BLEU floors, and a tiny model's
n-best scores must match stored values, so that a change that costs BLEU in training or in search turns the run
red. ``test_the_canary_catches_each_breakage`` (slow) shows that it can: it breaks the attention's padding mask,
the learning-rate schedule, the length penalty, beam search's finished-row rule and label smoothing in turn.

Budgets are in updates, not seconds, so a loaded machine cannot turn the canary red.
"""

import json
from pathlib import Path

import pytest
import torch

from seq2seq.decoding.translator import Translator
from tests.helpers import train_tiny

# 500 updates of a small model on 6,000 toy pairs, about 35 s on 2 cores. Over seeds 1, 2 and 3 it measured
# valid loss 0.658, 0.664, 0.757 and greedy valid BLEU 31.9, 30.6, 21.3 (100 sentences): the floors leave a margin
# below the worst seed, and seed 1 must clear them.
QUALITY = ["training.max_steps=500", "training.validate_every=500", "training.batch_tokens=1500",
           "training.scheduler=budget", "training.warmup_steps=20", "training.learning_rate=0.005",
           "training.max_minutes=0", "training.seed=1", "training.shortlist=false", "training.save_every_minutes=0",
           "model.embedding_dim=64", "model.encoder_hidden=64", "model.decoder_hidden=128",
           "tokenizer.src_vocab_size=300", "tokenizer.trg_vocab_size=300", "data.max_length=40",
           "decoding.beam_size=4"]
LOSS_CEILING = 0.80
BLEU_FLOOR = 18.0

# A tiny model, 150 updates on one thread (seed 1), searched with beam 4 and length penalty 2.0 (strong enough to
# reorder its n-best) over sentences of different lengths (so that the batch is padded): its n-best scores, stored
# when this test was written.
TINY = ["training.max_steps=150", "training.validate_every=150", "training.batch_tokens=1000",
        "training.scheduler=budget", "training.warmup_steps=5", "training.max_minutes=0", "training.seed=1",
        "training.num_threads=1", "training.shortlist=false", "training.save_every_minutes=0",
        "model.embedding_dim=32", "model.encoder_hidden=32", "model.decoder_hidden=64",
        "tokenizer.src_vocab_size=200", "tokenizer.trg_vocab_size=200", "data.max_length=30",
        "decoding.beam_size=4", "decoding.length_penalty=2.0"]
SENTENCES = ["The dog sleeps.", "Because the old man reads the book, the woman calls her dog.",
             "They have not seen the red car."]
STORED_SCORES = [[-14.4874, -20.2966, -17.6601], [-33.6895, -14.2945, -17.2795], [-14.5282, -17.6848, -18.3041]]
SCORE_TOLERANCE = 0.05  # relative: float rounding across CPUs stays below it; each breakage moves a score more


def quality_failures(root: Path) -> list[str]:
    """What the short training missed: its valid loss above the ceiling, its valid BLEU below the floor."""
    model_dir = train_tiny(root, QUALITY, train_lines=6000, valid_lines=100)
    valid = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "valid"][-1]
    failures = []
    if valid["loss"] > LOSS_CEILING:
        failures.append(f"valid loss {valid['loss']:.3f} > {LOSS_CEILING}")
    if valid["bleu"] < BLEU_FLOOR:
        failures.append(f"valid BLEU {valid['bleu']:.2f} < {BLEU_FLOOR}")
    return failures


def n_best_scores(root: Path) -> list[list[float]]:
    model_dir = train_tiny(root, TINY, train_lines=2000, valid_lines=20)
    translator = Translator.from_dir(model_dir)
    n_best = translator.translate_n_best(SENTENCES, translator.search_options(beam_size=4, n_best=3))
    return [[round(t.score, 4) for t in hypotheses] for hypotheses in n_best]


def score_failures(root: Path) -> list[str]:
    scores = n_best_scores(root)
    if torch.allclose(torch.tensor(scores), torch.tensor(STORED_SCORES), rtol=SCORE_TOLERANCE, atol=0.0):
        return []
    return [f"n-best scores {scores} differ from the stored {STORED_SCORES}"]


def test_quality_canary(tmp_path):
    assert quality_failures(tmp_path) == []


def test_n_best_scores_of_a_tiny_model_match_the_stored_ones(tmp_path):
    assert score_failures(tmp_path) == []


def drop_the_padding_mask(monkeypatch):
    from seq2seq.model import alignment_functions

    monkeypatch.setattr(alignment_functions, "masked_softmax", lambda scores, mask: torch.softmax(scores, dim=-1))


def halve_the_learning_rate_schedule(monkeypatch):
    from seq2seq.training.optimization import BudgetSchedule

    rate = BudgetSchedule.rate
    monkeypatch.setattr(BudgetSchedule, "rate", lambda self, step, elapsed: rate(self, step, elapsed) / 2)


def ignore_the_length_penalty(monkeypatch):
    from seq2seq.decoding import search

    monkeypatch.setattr(search, "length_penalty", lambda lengths, alpha: torch.ones_like(lengths, dtype=torch.float))


def break_the_finished_row_rule(monkeypatch):
    """Finished hypotheses go on decoding (and paying for their pieces) instead of standing still with their final
    score: the engine no longer closes their rows (seq2seq/decoding/search_types.py, the rule every policy follows)."""
    from seq2seq.decoding.search_types import BeamState

    monkeypatch.setattr(BeamState, "close_finished", lambda self, log_probs: None)


def double_label_smoothing(monkeypatch):
    from seq2seq.training import update

    loss = update.output_loss
    monkeypatch.setattr(update, "output_loss", lambda features, output, targets, *, label_smoothing: loss(
        features, output, targets, label_smoothing=2 * label_smoothing))


BREAKAGES = [drop_the_padding_mask, halve_the_learning_rate_schedule, ignore_the_length_penalty,
             break_the_finished_row_rule, double_label_smoothing]


@pytest.mark.slow
@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda breakage: breakage.__name__)
def test_the_canary_catches_each_breakage(breakage, tmp_path, monkeypatch):
    breakage(monkeypatch)
    (tmp_path / "scores").mkdir()
    failures = score_failures(tmp_path / "scores")
    if not failures:  # a breakage that leaves the tiny model's n-best alone must cost quality
        (tmp_path / "quality").mkdir()
        failures = quality_failures(tmp_path / "quality")
    assert failures, f"the canary did not notice {breakage.__name__}"
