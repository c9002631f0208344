"""Diverse beam search (Vijayakumar et al. 2016, "Diverse Beam Search: Decoding Diverse Solutions from Neural Sequence
Models", §4, with the Hamming diversity of §5): n-best lists whose hypotheses differ in more than their last words.

The K beams of a sentence split into G groups of K/G rows: group g holds rows g·K/G .. (g+1)·K/G - 1. At every step
the groups choose in turn. Group g's log-probabilities are lowered by λ times the number of times each piece was
chosen at this step by the live rows of groups 0..g-1 (the Hamming diversity term), and the group then takes an
ordinary beam step of K/G over its own rows (:class:`~seq2seq.decoding.search.Beam`). So group 0 is plain beam search
of K/G, and each later group is pushed away from the pieces the groups before it took. With G = 1 this is beam search
of K; with λ = 0 every group is beam search of K/G.

As in the paper's objective, the penalty ranks the candidates of this step only: a row's score stays the sum of the
model's log-probabilities of its pieces (fairseq's ``DiverseBeamSearch`` adds the penalties into the scores, and
interleaves the groups' rows). Rows that have finished take no penalty and cost none (PAD, as in every search). When
a sentence finishes, its rows are ranked over all groups by score / length_penalty(length), so its n-best comes back
best first.

Legend: N sentences, K beams per sentence, G groups, V target pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.search import Beam, length_penalty
from seq2seq.decoding.search_types import BeamState, Choice, SearchOptions, Sentence, SentenceRequest
from seq2seq.errors import UserError


@dataclass(frozen=True)
class Diversity:
    """Diverse beam search's settings: the beam splits into ``groups`` (G, which must divide the beam size), and
    ``strength`` (λ ≥ 0) is how much a piece's log-probability drops for each earlier group that took it at this
    step. The paper finds λ from 0.2 to 0.8 works for most tasks; fairseq's default is 0.5."""

    name: ClassVar[str] = "diverse-beam"
    draws: ClassVar[bool] = False

    groups: int = 2
    strength: float = 0.5

    def check(self, options: SearchOptions, vocab_size: int) -> None:
        """Beam search's limits, then groups that split the beam evenly and a finite strength ≥ 0."""
        options.check_beam(vocab_size)
        if self.groups < 1 or options.beam_size % self.groups:
            raise UserError(f"diverse beam search splits the beam into groups of equal size: {self.groups} groups do "
                            f"not divide the beam size {options.beam_size}; give a number of groups ≥ 1 that divides "
                            "it (groups equal to the beam size are the most diverse).")
        if not 0 <= self.strength < float("inf"):
            raise UserError(f"the diversity strength must be a number ≥ 0 (0: each group is plain beam search); got "
                            f"{self.strength}.")


class DiverseBeam:
    """Diverse beam search with ``beams`` rows per sentence in ``groups`` groups, penalty ``strength`` (see the module
    docstring), each group's candidates ranked with the length penalty ``alpha``."""

    def __init__(self, beams: int, *, groups: int, strength: float, alpha: float = 0.0):
        assert groups >= 1 and beams % groups == 0, (beams, groups)  # Diversity.check refuses others
        self.beams, self.groups, self.strength, self.alpha = beams, groups, strength, alpha
        self.group = Beam(beams // groups, alpha=alpha)  # the step each group takes over its own rows

    def prepare(self, request: SentenceRequest) -> None:
        """Nothing: the search reads no more than the source."""

    def start(self, sentences: list[Sentence], device: torch.device) -> BeamState:
        count, size = len(sentences), self.beams // self.groups
        scores = torch.full((count, self.beams), float("-inf"), device=device)
        scores[:, ::size] = 0.0  # each group's rows start identical: expand only its first
        return BeamState(scores, torch.zeros(count, self.beams, dtype=torch.long, device=device),
                         torch.zeros(count, self.beams, dtype=torch.bool, device=device))

    def full_vocabulary(self, state: BeamState) -> bool:
        return False

    def choose(self, log_probs: Tensor, state: BeamState, at_limit: Tensor) -> Choice:
        """Each group's beam step in turn, on log-probabilities [N, K, V] lowered by the earlier groups' pieces;
        the rows of a sentence that finishes with this step ranked over all groups."""
        count, beams, vocab = log_probs.shape
        size = beams // self.groups
        taken = log_probs.new_zeros(count, vocab, dtype=torch.float)  # [N, V] times each piece was taken so far
        choices = []
        for first in range(0, beams, size):
            rows = slice(first, first + size)
            group = BeamState(state.scores[:, rows], state.lengths[:, rows], state.finished[:, rows])
            choice = self._group_step(log_probs[:, rows], group, taken, at_limit)
            live = ~group.finished.gather(1, choice.parents)  # [N, K/G] rows that chose a piece (not PAD)
            taken.scatter_add_(1, choice.tokens, live.float())
            choices.append(choice._replace(parents=choice.parents + first))
        states = [c.state for c in choices]  # the groups' rows side by side: [N, K] each below
        joined = Choice(torch.cat([c.tokens for c in choices], 1), torch.cat([c.parents for c in choices], 1),
                        BeamState(torch.cat([s.scores for s in states], 1), torch.cat([s.lengths for s in states], 1),
                                  torch.cat([s.finished for s in states], 1)))
        return self._ranked_when_done(joined)

    def _group_step(self, log_probs: Tensor, group: BeamState, taken: Tensor, at_limit: Tensor) -> Choice:
        """One group's beam step (log_probs [N, K/G, V]) ranked with the Hamming penalty λ · taken [N, V] on its live
        rows, scored with the model's own log-probabilities."""
        penalty = (self.strength * taken).unsqueeze(1).expand_as(log_probs)  # [N, K/G, V]
        penalised = log_probs - penalty.masked_fill(group.finished.unsqueeze(-1), 0.0)
        choice = self.group.choose(penalised, group, at_limit)
        size, vocab = log_probs.shape[1:]
        gained = log_probs.reshape(-1, size * vocab).gather(1, choice.parents * vocab + choice.tokens)  # [N, K/G]
        scores = group.scores.gather(1, choice.parents) + gained  # a finished row gains PAD's 0
        return choice._replace(state=choice.state._replace(scores=scores))

    def _ranked_when_done(self, choice: Choice) -> Choice:
        """The choice with the rows of each sentence that has now finished sorted best first over all groups (by
        score / length_penalty(length)); the other sentences keep their rows in group order."""
        state = choice.state
        ranking = state.scores / length_penalty(state.lengths, self.alpha)  # [N, K]
        order = ranking.argsort(dim=1, descending=True, stable=True)
        unchanged = torch.arange(state.scores.size(1), device=order.device).expand_as(order)
        order = torch.where(state.finished.all(dim=1, keepdim=True), order, unchanged)  # [N, K]
        return Choice(choice.tokens.gather(1, order), choice.parents.gather(1, order),
                      BeamState(state.scores.gather(1, order), state.lengths.gather(1, order),
                                state.finished.gather(1, order)))


def diverse_beam_policy(options: SearchOptions, trg_tok: Tokenizer | None) -> DiverseBeam:
    """The registry's diverse beam search: ``options.beam_size`` rows in ``options.policy``'s groups."""
    assert isinstance(options.policy, Diversity)
    return DiverseBeam(options.beam_size, groups=options.policy.groups, strength=options.policy.strength,
                       alpha=options.length_penalty)
