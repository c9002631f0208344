"""Ensembles: several models of one target vocabulary searched as one.

At every step each member predicts the next token from its own state, and the ensemble's distribution is
the mean of the members' probabilities, ``log p(y) = log(1/M * sum_m p_m(y))``, as fairseq's
``EnsembleModel`` computes it: the mixture stays a distribution, so scores and length penalties mean what
they mean for one model. An ensemble of the last checkpoints of one run costs M times the decoding time and
no training time.

An ensemble offers the two methods the searches call (:meth:`Seq2Seq.search_start` and
:meth:`Seq2Seq.search_step`); its keys and states are :class:`Members`, one per model, which reorder and
expand like a single model's.

Legend: M members, B batch, S source length, V target vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seq2seq.model.decoder import DecoderState
from seq2seq.model.network import Seq2Seq


class Members(tuple):
    """One search value per member (its AttentionKeys, or its DecoderState), in member order."""

    def select(self, rows: Tensor) -> Members:
        """Each member's value for some batch rows, in the order of ``rows`` [R]."""
        return Members(value.select(rows) for value in self)

    def repeat(self, k: int) -> Members:
        """Each member's value with every batch row ``k`` times in a row (one copy per beam)."""
        return Members(value.repeat(k) for value in self)

    # What the decoding engine asks of keys and states (see AttentionKeys and DecoderState), member by member.

    @property
    def width(self) -> int:
        """The source positions of the members' keys."""
        return self[0].width

    def rows(self, start: int, stop: int) -> Members:
        return Members(value.rows(start, stop) for value in self)

    def cat(self, other: Members) -> Members:
        return Members(value.cat(more) for value, more in zip(self, other, strict=True))

    def blank(self, rows: int, width: int) -> Members:
        return Members(value.blank(rows, width) for value in self)

    def write(self, start: int, source: Members) -> None:
        for value, more in zip(self, source, strict=True):
            value.write(start, more)

    def move(self, to: Tensor, take: Tensor) -> None:
        for value in self:
            value.move(to, take)

    def narrow(self, rows: int, width: int) -> Members:
        return Members(value.narrow(rows, width) for value in self)

    def widened(self, width: int) -> Members:
        return Members(value.widened(width) for value in self)


class Ensemble(nn.Module):
    """Models of one target vocabulary, decoded together: their next-token probabilities are averaged."""

    def __init__(self, models: Sequence[Seq2Seq]):
        super().__init__()
        if len(models) < 2:
            raise ValueError(f"an ensemble needs at least 2 models, got {len(models)}")
        sizes = [model.target_vocab_size for model in models]
        if len(set(sizes)) > 1:
            raise ValueError(f"the models of an ensemble must share one target vocabulary; their sizes are {sizes}")
        self.members = nn.ModuleList(models)  # registered, so that .to() and .eval() reach every member
        self.models = list(models)  # the same modules, typed

    @property
    def target_vocab_size(self) -> int:
        """V, the members' shared target vocabulary size."""
        return self.models[0].target_vocab_size

    def search_start(self, src: Tensor, src_lengths: Tensor) -> tuple[Members, Members]:
        """Each member's attention keys and initial decoder state for src [B, S], lengths [B]."""
        starts = [member.search_start(src, src_lengths) for member in self.models]
        return Members(keys for keys, _ in starts), Members(state for _, state in starts)

    def search_step(self, prev_tokens: Tensor, state: Members, keys: Members, *, beams: int = 1,
                    vocab: Tensor | None = None) -> tuple[Tensor, Members, Tensor]:
        """Previous tokens [R] → log of the mean next-token probability [R, V], the members' next states, and
        the mean of their attention weights [R, S] (each row still sums to 1 over the real source positions);
        ``beams`` and ``vocab`` as in :meth:`Seq2Seq.search_step`."""
        steps: list[tuple[Tensor, DecoderState, Tensor]] = [
            member.search_step(prev_tokens, member_state, member_keys, beams=beams, vocab=vocab)
            for member, member_state, member_keys in zip(self.models, state, keys, strict=True)]
        log_probs = torch.stack([step_log_probs for step_log_probs, _, _ in steps])  # [M, B, V]
        mixture = torch.logsumexp(log_probs, dim=0) - math.log(len(steps))  # [B, V]
        weights = torch.stack([step_weights.float() for _, _, step_weights in steps]).mean(dim=0)  # [B, S]
        return mixture, Members(next_state for _, next_state, _ in steps), weights
