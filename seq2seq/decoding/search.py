"""Search policies for the decoding engine: greedy search and beam search, each a choice over one step.

:class:`~seq2seq.decoding.engine.DecodingEngine` runs the model and keeps the rows; a policy sees one step's
log-probabilities [N, K, V] and the rows' standing (:class:`~seq2seq.decoding.search_types.BeamState`) and says which
tokens the rows take next, which rows they continue, and which have finished. :func:`greedy_search` and
:func:`beam_search` decode one batch of source tensors through the engine.

Legend: B batch, N sentences, K beams, S source length, T output length, V target vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seq2seq.decoding.engine import DecodingEngine
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.search_types import BeamState, Choice, Hypothesis, Sentence, SentenceRequest
from seq2seq.model.network import Seq2Seq

__all__ = ["Beam", "Greedy", "Hypothesis", "beam_search", "greedy_search", "length_penalty", "max_output_lengths"]


def max_output_lengths(src_lengths: Tensor, *, ratio: float, extra: int) -> Tensor:
    """Longest allowed output per sentence, in tokens including EOS: [B] → [B]."""
    return ((src_lengths.float() * ratio).long() + extra).clamp(min=1)  # room for at least EOS


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + n) / 6) ** alpha (Wu et al. 2016, Eq. 14); alpha = 0 turns it off."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


class Greedy:
    """Pick the most probable token at every step; a sentence stops at EOS or its length limit."""

    beams = 1

    def prepare(self, request: SentenceRequest) -> None:
        """Nothing: greedy search reads no more than the source (constraints: see seq2seq.decoding.constrained)."""

    def start(self, sentences: list[Sentence], device: torch.device) -> BeamState:
        count = len(sentences)
        return BeamState(torch.zeros(count, 1, device=device), torch.zeros(count, 1, dtype=torch.long, device=device),
                         torch.zeros(count, 1, dtype=torch.bool, device=device))

    def full_vocabulary(self, state: BeamState) -> bool:
        return False

    def choose(self, log_probs: Tensor, state: BeamState, at_limit: Tensor) -> Choice:
        best, tokens = log_probs.max(dim=-1)  # [N, 1], [N, 1]
        return state.advance(tokens, torch.zeros_like(tokens), state.scores + best, at_limit)


class Beam:
    """Beam search with K beams per sentence, candidates ranked by score / length_penalty(length).

    A finished beam stays in the beam with its final score (its only continuation is PAD, at no cost), so it
    competes with longer ones; the sentence stops when all its beams have finished. The beams stay sorted best
    first. With K = 1 this is exactly greedy search.
    """

    def __init__(self, beams: int, *, alpha: float = 0.0):
        self.beams, self.alpha = beams, alpha

    def prepare(self, request: SentenceRequest) -> None:
        """Nothing: beam search reads no more than the source (constraints: see seq2seq.decoding.constrained)."""

    def start(self, sentences: list[Sentence], device: torch.device) -> BeamState:
        count = len(sentences)
        scores = torch.full((count, self.beams), float("-inf"), device=device)
        scores[:, 0] = 0.0  # all beams start identical: expand only the first
        return BeamState(scores, torch.zeros(count, self.beams, dtype=torch.long, device=device),
                         torch.zeros(count, self.beams, dtype=torch.bool, device=device))

    def full_vocabulary(self, state: BeamState) -> bool:
        return False

    def choose(self, log_probs: Tensor, state: BeamState, at_limit: Tensor) -> Choice:
        """The K best of the K * V candidates (a row and its next token) of each sentence, by ranking.

        Within one row, every candidate adds the row's score to its token's log-probability and divides by the
        same length penalty, so the row's K best candidates by ranking are its K most probable tokens: the
        sentence's K best are among those K * K, and only they are scored and ranked (not all K * V). A finished
        row's one candidate is PAD at no cost (the engine closed it), the others -inf.
        """
        count, beams, vocab = log_probs.shape  # beams <= vocab: SearchOptions.check makes sure
        top_log_probs, top_tokens = log_probs.topk(beams, dim=-1)  # [N, K, K]: each row's K best tokens
        candidates = state.scores.unsqueeze(-1) + top_log_probs  # [N, K, K]
        ranking = candidates / length_penalty(state.grown_lengths(), self.alpha).unsqueeze(-1)
        _, best = ranking.view(count, beams * beams).topk(beams, dim=-1)  # [N, K], sorted best first
        parents = best // beams  # [N, K]
        tokens = top_tokens.view(count, -1).gather(1, best)
        return state.advance(tokens, parents, candidates.view(count, -1).gather(1, best), at_limit)


def _sentences(src: Tensor, src_lengths: Tensor, max_lengths: Tensor, n_best: int) -> list[Sentence]:
    """The rows of a padded source batch [B, S] (EOS included in the lengths) as engine sentences."""
    return [Sentence(src[b, :int(src_lengths[b]) - 1].tolist(), int(max_lengths[b]), n_best, b)
            for b in range(src.size(0))]


def _decode(model: Seq2Seq | Ensemble, policy: Greedy | Beam, sentences: list[Sentence],
            device: torch.device) -> list[list[Hypothesis]]:
    engine: DecodingEngine[Any, Any] = DecodingEngine(model, policy, device=device,
                                                      max_sentences=max(len(sentences), 1))
    engine.add(sentences)
    results: list[list[Hypothesis]] = [[] for _ in sentences]
    for index, hypotheses in engine.run():
        results[index] = hypotheses
    return results


def greedy_search(model: Seq2Seq | Ensemble, src: Tensor, src_lengths: Tensor, *,
                  max_lengths: Tensor) -> list[Hypothesis]:
    """Greedy search of a batch, src [B, S], src_lengths [B], max_lengths [B] → one Hypothesis per sentence."""
    sentences = _sentences(src, src_lengths, max_lengths, 1)
    return [best for best, in _decode(model, Greedy(), sentences, src.device)]


def beam_search(model: Seq2Seq | Ensemble, src: Tensor, src_lengths: Tensor, *, beam_size: int, max_lengths: Tensor,
                alpha: float = 0.0, n_best: int = 1) -> list[list[Hypothesis]]:
    """Beam search of a batch, src [B, S], src_lengths [B], max_lengths [B] → for each sentence its ``n_best``
    hypotheses, best first."""
    sentences = _sentences(src, src_lengths, max_lengths, min(n_best, beam_size))
    return _decode(model, Beam(beam_size, alpha=alpha), sentences, src.device)
