"""training.tensorboard: the events a run writes, read back with TensorBoard's own reader, and a resume that
repeats updates without duplicating their events."""

import json

import pytest

pytest.importorskip("tensorboard", reason="the TensorBoard reporter needs the tensorboard extra: "
                                          "pip install -e '.[tensorboard]'")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seq2seq.cli import main
from tests.helpers import TOY_CONFIG, write_slice

TINY = ["model.embedding_dim=16", "model.encoder_hidden=16", "model.decoder_hidden=32",
        "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150", "training.batch_tokens=300",
        "training.num_threads=1", "training.validate_every=10", "training.log_every=5",
        "training.save_every_minutes=0", "training.scheduler=none", "training.tensorboard=true",
        "decoding.beam_size=1", "training.shortlist=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[str]:
    """600 toy pairs, about 30 batches of 300 tokens: no epoch ends within 20 updates."""
    root = tmp_path_factory.mktemp("corpus")
    return [f"data.train={write_slice(root, 'train', 600)}", f"data.valid={write_slice(root, 'valid', 10)}",
            "data.test=null"]


def train(tmp_path, corpus: list[str], *overrides: str, resume_from: str | None = None) -> int:
    args = ["train", TOY_CONFIG]
    for override in [*corpus, f"training.model_dir={tmp_path / 'model'}", *TINY, *overrides]:
        args += ["--set", override]
    return main(args + (["--resume-from", resume_from] if resume_from else []))


def read_events(tmp_path) -> EventAccumulator:
    events = EventAccumulator(str(tmp_path / "model" / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def steps(events: EventAccumulator, tag: str) -> list[int]:
    return [event.step for event in events.Scalars(tag)]


def test_a_run_writes_losses_rates_speed_validation_and_attention(tmp_path, corpus):
    assert train(tmp_path, corpus, "training.max_steps=20") == 0
    events = read_events(tmp_path)
    assert steps(events, "train/loss") == [5, 10, 15, 20]
    assert steps(events, "train/lr") == [5, 10, 15, 20]
    assert all(event.value > 0 for event in events.Scalars("train/tokens_per_second"))
    for tag in ("valid/loss", "valid/ppl", "valid/bleu"):
        assert steps(events, tag) == [10, 20], tag
    assert steps(events, "final/valid_bleu") == [20]
    images = events.Images("valid/attention")
    assert [image.step for image in images] == [10, 20]
    assert images[0].encoded_image_string.startswith(b"\x89PNG")  # a rendered heatmap
    records = [json.loads(line) for line in (tmp_path / "model" / "metrics.jsonl").read_text().splitlines()]
    for event, tag, key in (("train", "train/loss", "loss"), ("train", "train/lr", "lr"),
                            ("valid", "valid/loss", "loss"), ("valid", "valid/bleu", "bleu")):
        logged = [(r["step"], r[key]) for r in records if r["event"] == event]
        shown = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [step for step, _ in shown] == [step for step, _ in logged], tag
        assert [value for _, value in shown] == pytest.approx([value for _, value in logged], rel=1e-6), tag


def test_resume_does_not_duplicate_the_events_of_repeated_updates(tmp_path, corpus):
    assert train(tmp_path, corpus, "training.max_steps=15") == 0  # validations (and step checkpoints) at 10 and 15
    assert steps(read_events(tmp_path), "train/loss") == [5, 10, 15]
    # resume from update 10: updates 11-15 run again, and then 16-20
    assert train(tmp_path, corpus, "training.max_steps=20", resume_from="step_0000010.pt") == 0
    events = read_events(tmp_path)
    assert steps(events, "train/loss") == [5, 10, 15, 20]
    assert steps(events, "valid/bleu") == [10, 20]  # the first session's validation at 15 is purged
