"""Turn id sequences into padded batches of similar length, limited by a token budget.

Sentences are sorted by length (ties broken by a seeded shuffle) and cut into batches whose padded target
size stays under ``batch_tokens``; the order of the batches is then shuffled with the same seed and the
epoch number. Padding therefore stays small, and the same seed gives the same batches in every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Example:
    """One sentence pair as piece ids, without BOS/EOS."""

    src: list[int]
    trg: list[int]


@dataclass
class Batch:
    """A padded batch. Legend: B batch, S source length, T target length (+1 for BOS/EOS)."""

    src: Tensor  # [B, S] source ids followed by EOS, then PAD
    src_lengths: Tensor  # [B] (on CPU: pack_padded_sequence wants it there)
    trg_in: Tensor  # [B, T] BOS y_1 .. y_n, then PAD: the decoder's inputs
    trg_out: Tensor  # [B, T] y_1 .. y_n EOS, then PAD: what the decoder must predict

    @property
    def num_target_tokens(self) -> int:
        return int((self.trg_out != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(self.src.to(device), self.src_lengths, self.trg_in.to(device), self.trg_out.to(device))


def pad(sequences: list[list[int]]) -> Tensor:
    """Right-pad id lists into a [B, max_len] long tensor."""
    out = torch.full((len(sequences), max(len(s) for s in sequences)), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def source_tensor(sources: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Source ids with EOS appended, padded: ([B, S], lengths [B]). Empty sources still get their EOS."""
    with_eos = [s + [EOS_ID] for s in sources]
    return pad(with_eos), torch.tensor([len(s) for s in with_eos], dtype=torch.long)


def collate(examples: list[Example]) -> Batch:
    src, src_lengths = source_tensor([e.src for e in examples])
    trg_in = pad([[BOS_ID] + e.trg for e in examples])
    trg_out = pad([e.trg + [EOS_ID] for e in examples])
    return Batch(src, src_lengths, trg_in, trg_out)


def token_batches(examples: list[Example], *, batch_tokens: int, seed: int, epoch: int,
                  shuffle: bool = True) -> list[list[int]]:
    """Group example indices into batches of similar length with at most ``batch_tokens`` padded tokens.

    The budget counts the longer side of each pair (source or target, plus EOS), times the batch size; a
    single sentence longer than the budget still forms its own batch.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(examples)))
    if shuffle:
        rng.shuffle(order)  # random tie-breaking among equal lengths

    def size(i: int) -> int:
        return max(len(examples[i].src), len(examples[i].trg)) + 1

    order.sort(key=size)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        longest_if_added = max(longest, size(i))
        if current and longest_if_added * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest_if_added = [], size(i)
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def make_batches(examples: list[Example], *, batch_tokens: int, seed: int = 0, epoch: int = 0,
                 shuffle: bool = True) -> list[Batch]:
    """Padded batches of ``examples`` (see :func:`token_batches`)."""
    return [collate([examples[i] for i in idx])
            for idx in token_batches(examples, batch_tokens=batch_tokens, seed=seed, epoch=epoch, shuffle=shuffle)]
