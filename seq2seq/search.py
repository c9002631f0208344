"""Decoding: batched greedy search and batched beam search.

Both search a :class:`~seq2seq.model.Seq2Seq` or an :class:`~seq2seq.ensemble.Ensemble` through the same two
methods: ``search_start`` (encode, initial state) and ``search_step`` (next-token log-probabilities).

Legend: B batch, S source length, T output length, V target vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from seq2seq.ensemble import Ensemble
from seq2seq.model import Seq2Seq
from seq2seq.special_ids import BOS_ID, EOS_ID, PAD_ID


class Hypothesis(NamedTuple):
    tokens: list[int]  # output ids without BOS/EOS
    score: float  # sum of the log-probabilities of the tokens and the final EOS (when one was produced)
    attention: Tensor  # [T, S_real]: one row per emitted token (EOS included), one column per real source position


def max_output_lengths(src_lengths: Tensor, *, ratio: float, extra: int) -> Tensor:
    """Longest allowed output per sentence, in tokens including EOS: [B] → [B]."""
    return ((src_lengths.float() * ratio).long() + extra).clamp(min=1)  # room for at least EOS


@torch.inference_mode()
def greedy_search(model: Seq2Seq | Ensemble, src: Tensor, src_lengths: Tensor, *,
                  max_lengths: Tensor) -> list[Hypothesis]:
    """Pick the most probable token at every step, for a whole batch at once.

    src [B, S], src_lengths [B], max_lengths [B] → one Hypothesis per sentence, in batch order. A sentence
    leaves the batch as soon as it has produced EOS or reached its length limit, so every step computes
    only the sentences still being translated; the loop stops when none is left.
    """
    batch, device = src.size(0), src.device
    keys, state = model.search_start(src, src_lengths)
    limits = max_lengths.to(device)
    steps = int(limits.max())
    token_matrix = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=device)  # [B, T]
    weight_matrix = torch.zeros(batch, steps, src.size(1), device=device)  # [B, T, S]
    scores = torch.zeros(batch, device=device)
    active = torch.arange(batch, device=device)  # [A]: batch rows still being translated
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)  # [A]
    for t in range(steps):
        log_probs, state, alpha = model.search_step(prev, state, keys)  # [A, V], _, [A, S]
        best_log_prob, prev = log_probs.max(dim=-1)  # [A], [A]
        scores[active] += best_log_prob
        token_matrix[active, t] = prev
        weight_matrix[active, t] = alpha.float()
        going = (prev != EOS_ID) & (t + 1 < limits[active])  # [A]
        if not bool(going.any()):
            break
        if not bool(going.all()):
            rows = going.nonzero().squeeze(1)
            active, prev = active[rows], prev[rows]
            keys, state = keys.select(rows), state.select(rows)
    token_matrix, weight_matrix = token_matrix.cpu(), weight_matrix.cpu()
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
def beam_search(model: Seq2Seq | Ensemble, src: Tensor, src_lengths: Tensor, *, beam_size: int, max_lengths: Tensor,
                alpha: float = 0.0, n_best: int = 1) -> list[list[Hypothesis]]:
    """Beam search over all sentences and beams at once (Python loops only over time steps).

    src [B, S], src_lengths [B], max_lengths [B] → for each sentence its ``n_best`` hypotheses, best first.
    Candidates are ranked by score / length_penalty(length), with score the sum of token log-probabilities.
    A finished beam stays in the beam with its final score (its only continuation is PAD, at no cost), so
    it competes with longer ones. A sentence leaves the batch when all its beams have finished, and the
    search stops when none is left. With beam_size 1 this is exactly greedy search.
    """
    batch, beams, device = src.size(0), beam_size, src.device
    vocab = model.target_vocab_size  # beam_size <= vocab: SearchOptions.check makes sure
    keys, state = model.search_start(src, src_lengths)
    keys, state = keys.repeat(beams), state.repeat(beams)  # [B * K, ...]: each sentence K times
    scores = torch.full((batch, beams), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    lengths = torch.zeros(batch, beams, dtype=torch.long, device=device)  # scored tokens (EOS included)
    finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
    finished_row = torch.full((vocab,), float("-inf"), device=device)
    finished_row[PAD_ID] = 0.0  # a finished beam's only continuation
    limits = max_lengths.to(device).unsqueeze(1)  # [B, 1]
    offsets = (torch.arange(batch, device=device) * beams).unsqueeze(1)  # [B, 1]: first row of each sentence
    active = torch.arange(batch, device=device)  # [A]: sentences still being searched
    prev = torch.full((batch * beams,), BOS_ID, dtype=torch.long, device=device)  # [A * K]
    steps: list[tuple[Tensor, Tensor, Tensor]] = []  # per step, for all B: tokens, parents [B, K], attention [B, K, S]
    for t in range(int(limits.max())):
        log_probs, state, alpha_t = model.search_step(prev, state, keys)  # [A*K, V], _, [A*K, S]
        done = finished[active]  # [A, K]
        log_probs = log_probs.view(len(active), beams, vocab)
        log_probs = torch.where(done.unsqueeze(-1), finished_row, log_probs)
        candidates = scores[active].unsqueeze(-1) + log_probs  # [A, K, V]
        candidate_lengths = lengths[active] + (~done).long()  # [A, K]
        ranking = candidates / length_penalty(candidate_lengths, alpha).unsqueeze(-1)
        _, best = ranking.view(len(active), beams * vocab).topk(beams, dim=-1)  # [A, K], sorted best first
        parents, tokens = best // vocab, best % vocab  # [A, K]
        scores[active] = candidates.view(len(active), -1).gather(1, best)
        lengths[active] = candidate_lengths.gather(1, parents)
        done = done.gather(1, parents) | (tokens == EOS_ID) | (t + 1 >= limits[active])
        finished[active] = done
        state = state.select((parents + offsets[:len(active)]).view(-1))  # rows of the chosen parents
        steps.append(_full_step(batch, active, tokens, parents, alpha_t.view(len(active), beams, -1)))
        going = ~done.all(dim=1)  # [A]
        if not bool(going.any()):
            break
        prev = tokens.view(-1)
        if not bool(going.all()):
            kept = going.nonzero().squeeze(1)  # [A']
            rows = (offsets[kept] + torch.arange(beams, device=device)).view(-1)  # [A' * K]
            active, prev = active[kept], prev[rows]
            keys, state = keys.select(rows), state.select(rows)
    token_paths, attention_paths = _backtrack(steps)  # [B, K, T], [B, K, T, S]
    return [[_hypothesis(token_paths[b, k], scores[b, k].item(), attention_paths[b, k], int(src_lengths[b]),
                         int(lengths[b, k])) for k in range(min(n_best, beams))] for b in range(batch)]


def _full_step(batch: int, active: Tensor, tokens: Tensor, parents: Tensor,
               attention: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One step's tokens, parents [A, K] and attention [A, K, S] of the active sentences, as [B, K] and
    [B, K, S] for all: a sentence that has left the batch continues each beam with PAD, at no attention."""
    beams = tokens.size(1)
    full_tokens = tokens.new_full((batch, beams), PAD_ID)
    full_parents = torch.arange(beams, device=tokens.device).repeat(batch, 1)
    full_attention = attention.new_zeros(batch, beams, attention.size(-1))
    full_tokens[active], full_parents[active] = tokens, parents
    full_attention[active] = attention.gather(1, parents.unsqueeze(-1).expand(-1, -1, attention.size(-1)))
    return full_tokens, full_parents, full_attention


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
