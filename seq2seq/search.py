"""Decoding: batched greedy search.

Legend: B batch, S source length, T output length, V target vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import BOS_ID, EOS_ID


class Hypothesis(NamedTuple):
    tokens: list[int]  # output ids without BOS/EOS
    score: float  # sum of the log-probabilities of the tokens and the final EOS (when one was produced)
    attention: Tensor  # [T, S_real]: one row per emitted token (EOS included), one column per real source position


def max_output_lengths(src_lengths: Tensor, *, ratio: float, extra: int) -> Tensor:
    """Longest allowed output per sentence, in tokens including EOS: [B] → [B]."""
    return (src_lengths.float() * ratio).long() + extra


@torch.inference_mode()
def greedy_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, *, max_lengths: Tensor) -> list[Hypothesis]:
    """Pick the most probable token at every step, for a whole batch at once.

    src [B, S], src_lengths [B], max_lengths [B] → one Hypothesis per sentence, in batch order. The loop
    stops as soon as every sentence has produced EOS or reached its length limit.
    """
    batch = src.size(0)
    keys, state = model.start(model.encode(src, src_lengths))
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    scores = torch.zeros(batch, device=src.device)
    limits = max_lengths.to(src.device)
    tokens, weights = [], []
    for t in range(int(limits.max())):
        logits, state, alpha = model.decoder.step(prev, state, keys)  # [B, V], _, [B, S]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        best_log_prob, prev = log_probs.max(dim=-1)  # [B], [B]
        scores += best_log_prob.masked_fill(finished, 0.0)
        tokens.append(prev)
        weights.append(alpha)
        finished |= (prev == EOS_ID) | (t + 1 >= limits)
        if bool(finished.all()):
            break
    token_matrix = torch.stack(tokens, dim=1).cpu()  # [B, T]
    weight_matrix = torch.stack(weights, dim=1).float().cpu()  # [B, T, S]
    return [_hypothesis(token_matrix[b], scores[b].item(), weight_matrix[b], int(src_lengths[b]), int(limits[b]))
            for b in range(batch)]


def _hypothesis(tokens: Tensor, score: float, weights: Tensor, src_length: int, limit: int) -> Hypothesis:
    """Cut a row of output at its first EOS or its length limit: tokens [T], weights [T, S]."""
    ids = tokens.tolist()[:limit]
    steps = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
    return Hypothesis([i for i in ids[:steps] if i != EOS_ID], score, weights[:steps, :src_length])
