"""Token-bucket batching: budget respected, every example once, small padding, seeded and repeatable."""

import random

import numpy as np
import torch

from seq2seq.data.batching import Batch, Example, collate, padded_sizes, plan_batches
from seq2seq.special_ids import BOS_ID, EOS_ID, PAD_ID


def token_batches(examples: list[Example], *, batch_tokens: int, seed: int, epoch: int) -> list[list[int]]:
    """:func:`plan_batches` for examples in memory, as lists of indices."""
    sizes = padded_sizes(np.array([len(e.src) for e in examples]), np.array([len(e.trg) for e in examples]))
    return [b.tolist() for b in plan_batches(sizes, batch_tokens=batch_tokens, seed=seed, epoch=epoch)]


def make_batches(examples: list[Example], *, batch_tokens: int, seed: int = 0) -> list[Batch]:
    """Padded batches of ``examples`` (see :func:`plan_batches`)."""
    return [collate([examples[i] for i in indices])
            for indices in token_batches(examples, batch_tokens=batch_tokens, seed=seed, epoch=0)]


def random_examples(n: int, seed: int = 0) -> list[Example]:
    """Pairs of 1-40 source tokens whose target is up to 3 tokens shorter or longer, as in real data."""
    rng = random.Random(seed)
    lengths = [rng.randint(1, 40) for _ in range(n)]
    return [Example([rng.randrange(4, 50) for _ in range(length)],
                    [rng.randrange(4, 50) for _ in range(max(1, length + rng.randint(-3, 3)))]) for length in lengths]


def test_every_example_once_and_budget_respected():
    examples = random_examples(1000)
    batches = token_batches(examples, batch_tokens=400, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    for indices in batches:
        longest = max(max(len(examples[i].src), len(examples[i].trg)) + 1 for i in indices)
        assert longest * len(indices) <= 400


def test_single_overlong_sentence_forms_its_own_batch():
    examples = [Example([5] * 100, [6] * 100), Example([5], [6])]
    batches = token_batches(examples, batch_tokens=10, seed=0, epoch=0)
    assert sorted(map(sorted, batches)) == [[0], [1]]


def test_length_bucketing_keeps_padding_small():
    examples = random_examples(2000)
    batches = make_batches(examples, batch_tokens=600, seed=3)
    real = sum(int((b.trg_out != PAD_ID).sum()) for b in batches)
    total = sum(b.trg_out.numel() for b in batches)
    # Unbucketed random batches of this data pad ~50% of target positions; bucketed by length far fewer.
    assert real / total > 0.8


def test_same_seed_same_batches_and_epochs_differ():
    examples = random_examples(500)
    first = token_batches(examples, batch_tokens=300, seed=7, epoch=0)
    assert first == token_batches(examples, batch_tokens=300, seed=7, epoch=0)
    assert first != token_batches(examples, batch_tokens=300, seed=7, epoch=1)
    assert first != token_batches(examples, batch_tokens=300, seed=8, epoch=0)


def test_collate_shifts_target_and_appends_eos():
    batch = collate([Example([7, 8], [9, 10, 11]), Example([], [12])])
    assert batch.src.tolist() == [[7, 8, EOS_ID], [EOS_ID, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.trg_in.tolist() == [[BOS_ID, 9, 10, 11], [BOS_ID, 12, PAD_ID, PAD_ID]]
    assert batch.trg_out.tolist() == [[9, 10, 11, EOS_ID], [12, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.num_target_tokens == 6
    assert batch.src.dtype == torch.long
