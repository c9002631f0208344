"""Turn id sequences into padded batches of similar length, limited by a token budget.

Sentences are sorted by length (ties broken by a seeded shuffle) and cut into batches whose padded size
stays under ``batch_tokens``; the order of the batches is then shuffled with the same seed and the epoch
number. Padding therefore stays small, and the same seed gives the same batches in every run. Planning
needs only one small integer per sentence (its padded size), computed with NumPy, so a corpus of millions
of pairs is planned in a second and in a few bytes per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seq2seq.special_ids import BOS_ID, EOS_ID, PAD_ID

PieceIds = Sequence[int] | np.ndarray  # one side of a sentence pair: a list, or a row of the prepared arrays


@dataclass
class Example:
    """One sentence pair as piece ids (lists or NumPy arrays), without BOS/EOS."""

    src: PieceIds
    trg: PieceIds


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


def pad(sequences: Sequence[PieceIds], *, bos: bool = False, eos: bool = False) -> Tensor:
    """Right-pad id sequences into a [B, max_len] long tensor, optionally framed by BOS and/or EOS."""
    first = int(bos)
    out = np.full((len(sequences), max(len(s) for s in sequences) + first + int(eos)), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, first:first + len(seq)] = seq
        if eos:
            out[row, first + len(seq)] = EOS_ID
    if bos:
        out[:, 0] = BOS_ID
    return torch.from_numpy(out)


def source_tensor(sources: Sequence[PieceIds]) -> tuple[Tensor, Tensor]:
    """Source ids with EOS appended, padded: ([B, S], lengths [B]). Empty sources still get their EOS."""
    return pad(sources, eos=True), torch.tensor([len(s) + 1 for s in sources], dtype=torch.long)


def collate(examples: Sequence[Example]) -> Batch:
    src, src_lengths = source_tensor([e.src for e in examples])
    targets = [e.trg for e in examples]
    return Batch(src, src_lengths, pad(targets, bos=True), pad(targets, eos=True))


def padded_sizes(src_lengths: np.ndarray, trg_lengths: np.ndarray) -> np.ndarray:
    """[N] what a pair costs in a batch: its longer side plus EOS, in the smallest unsigned type that fits."""
    sizes = np.maximum(src_lengths, trg_lengths) + 1
    return sizes.astype(np.min_scalar_type(int(sizes.max()) if len(sizes) else 0))


def plan_batches(sizes: np.ndarray, *, batch_tokens: int, seed: int = 0, epoch: int = 0,
                 shuffle: bool = True) -> list[np.ndarray]:
    """Group pair indices into batches of similar size with at most ``batch_tokens`` padded tokens.

    ``sizes`` [N] is each pair's padded size (:func:`padded_sizes`); a batch costs its longest pair times
    its number of pairs, and a single pair longer than the budget still forms its own batch. Returns index
    arrays (views of one int32 array) in training order; the same (seed, epoch) gives the same plan.
    """
    rng = np.random.default_rng([seed, epoch])
    order = np.argsort(sizes, kind="stable").astype(np.int32)  # by size; int32 halves what an epoch holds
    sorted_sizes = sizes[order]
    if shuffle:  # random order among pairs of equal size, shuffled in place, one size at a time
        ends = np.cumsum(np.bincount(sorted_sizes))
        for start, end in zip(np.concatenate([[0], ends[:-1]]), ends):
            rng.shuffle(order[start:end])
    starts = [0]
    while starts[-1] < len(order):
        start = starts[-1]
        # cost of the batch order[start:start + k] is sorted_sizes[start + k - 1] * k, non-decreasing in k
        window = sorted_sizes[start:start + max(batch_tokens // int(sorted_sizes[start]), 1)].astype(np.int64)
        cost = window * np.arange(1, len(window) + 1)
        starts.append(start + max(int(np.searchsorted(cost, batch_tokens, side="right")), 1))
    batches = [order[a:b] for a, b in zip(starts, starts[1:])]
    if shuffle:
        batches = [batches[k] for k in rng.permutation(len(batches))]
    return batches
