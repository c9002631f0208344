"""Decoding: batched greedy search and batched beam search.

Legend: B batch, S source length, T output length, V target vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from seq2seq.decoder import DecoderState
from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID


class Hypothesis(NamedTuple):
    tokens: list[int]  # output ids without BOS/EOS
    score: float  # sum of the log-probabilities of the tokens and the final EOS (when one was produced)
    attention: Tensor  # [T, S_real]: one row per emitted token (EOS included), one column per real source position


def max_output_lengths(src_lengths: Tensor, *, ratio: float, extra: int) -> Tensor:
    """Longest allowed output per sentence, in tokens including EOS: [B] → [B]."""
    return ((src_lengths.float() * ratio).long() + extra).clamp(min=1)  # room for at least EOS


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


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + n) / 6) ** alpha (Wu et al. 2016, Eq. 14); alpha = 0 turns it off."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.inference_mode()
def beam_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, *, beam_size: int, max_lengths: Tensor,
                alpha: float = 0.0, n_best: int = 1) -> list[list[Hypothesis]]:
    """Beam search over all sentences and beams at once (Python loops only over time steps).

    src [B, S], src_lengths [B], max_lengths [B] → for each sentence its ``n_best`` hypotheses, best first.
    Candidates are ranked by score / length_penalty(length), with score the sum of token log-probabilities.
    A finished beam stays in the beam with its final score (its only continuation is PAD, at no cost), so
    it competes with longer ones; the search stops when every beam of every sentence has finished.
    With beam_size 1 this is exactly greedy search.
    """
    batch, beams = src.size(0), beam_size
    device = src.device
    keys, state = model.start(model.encode(src, src_lengths))
    keys = type(keys)(*(x.repeat_interleave(beams, dim=0) for x in keys))  # each [B * K, ...]
    state = type(state)(state.h.repeat_interleave(beams, dim=1), state.c.repeat_interleave(beams, dim=1),
                        state.feed.repeat_interleave(beams, dim=0))
    vocab = model.decoder.output.out_features
    if beams > vocab:
        raise ValueError(f"beam size {beams} exceeds the target vocabulary ({vocab})")
    scores = torch.full((batch, beams), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    lengths = torch.zeros(batch, beams, dtype=torch.long, device=device)  # scored tokens (EOS included)
    finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
    finished_row = torch.full((vocab,), float("-inf"), device=device)
    finished_row[PAD_ID] = 0.0  # a finished beam's only continuation
    limits = max_lengths.to(device).unsqueeze(1)  # [B, 1]
    offsets = (torch.arange(batch, device=device) * beams).unsqueeze(1)  # [B, 1]
    prev = torch.full((batch * beams,), BOS_ID, dtype=torch.long, device=device)
    steps: list[tuple[Tensor, Tensor, Tensor]] = []  # per step: tokens [B, K], parents [B, K], attention [B, K, S]
    for t in range(int(limits.max())):
        logits, state, alpha_t = model.decoder.step(prev, state, keys)  # [B*K, V], _, [B*K, S]
        log_probs = torch.log_softmax(logits.float(), dim=-1).view(batch, beams, vocab)
        log_probs = torch.where(finished.unsqueeze(-1), finished_row, log_probs)
        candidates = scores.unsqueeze(-1) + log_probs  # [B, K, V]
        candidate_lengths = lengths + (~finished).long()  # [B, K]
        ranking = candidates / length_penalty(candidate_lengths, alpha).unsqueeze(-1)
        _, best = ranking.view(batch, beams * vocab).topk(beams, dim=-1)  # [B, K], sorted best first
        parents, tokens = best // vocab, best % vocab  # [B, K]
        scores = candidates.view(batch, -1).gather(1, best)
        lengths = candidate_lengths.gather(1, parents)
        finished = finished.gather(1, parents) | (tokens == EOS_ID) | (t + 1 >= limits)
        flat = (parents + offsets).view(-1)  # [B * K] rows of the chosen parents
        state = DecoderState(state.h[:, flat], state.c[:, flat], state.feed[flat])
        steps.append((tokens, parents, alpha_t.view(batch, beams, -1).gather(
            1, parents.unsqueeze(-1).expand(-1, -1, alpha_t.size(-1)))))
        prev = tokens.view(-1)
        if bool(finished.all()):
            break
    token_paths, attention_paths = _backtrack(steps)  # [B, K, T], [B, K, T, S]
    return [[_hypothesis(token_paths[b, k], scores[b, k].item(), attention_paths[b, k], int(src_lengths[b]),
                         int(lengths[b, k])) for k in range(min(n_best, beams))] for b in range(batch)]


def _backtrack(steps: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Follow parent pointers from the final beams: token paths [B, K, T] and attention [B, K, T, S] (CPU)."""
    tokens, parents, attention = steps[-1]
    current = torch.arange(tokens.size(1), device=tokens.device).expand_as(tokens)  # [B, K] final beam ids
    token_path, attention_path = [], []
    for tokens, parents, attention in reversed(steps):
        token_path.append(tokens.gather(1, current))
        attention_path.append(attention.gather(1, current.unsqueeze(-1).expand(-1, -1, attention.size(-1))))
        current = parents.gather(1, current)
    return (torch.stack(token_path[::-1], dim=2).cpu(), torch.stack(attention_path[::-1], dim=2).float().cpu())
