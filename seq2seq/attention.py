"""Luong global attention (Luong, Pham & Manning 2015, §3.1, Eq. 7-8), written as pure functions.

Legend: B batch, T decoder steps (1 when stepping), S source positions, H decoder size, H_enc encoder size.

1. scores  e[t, i] = score(s_t, h_i)       dot: s_t·h_i   general: s_t·(W_a h_i)   concat: v_a·tanh(W_a [s_t; h_i])
2. weights alpha[t] = softmax(e[t])          padded source positions get exactly 0
3. context a_t = sum_i alpha[t, i] h_i

The key projections of ``general`` and ``concat`` depend only on the source, so :meth:`Attention.prepare`
computes them once per sentence and the result is passed explicitly to every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn


class AttentionKeys(NamedTuple):
    """What every decoder step attends over, computed once per batch."""

    values: Tensor  # [B, S, H_enc] encoder states h_i; the context is their weighted sum
    keys: Tensor  # [B, S, K] what the query is scored against (h_i, or a projection of it)
    mask: Tensor  # [B, S] bool, True at real tokens

    def select(self, rows: Tensor) -> AttentionKeys:
        """The keys of some batch rows, in the order of ``rows`` [R]: each field [B, ...] → [R, ...]."""
        return AttentionKeys(*(field.index_select(0, rows) for field in self))

    def repeat(self, k: int) -> AttentionKeys:
        """Each batch row ``k`` times in a row (one copy per beam): each field [B, ...] → [B * k, ...]."""
        return AttentionKeys(*(field.repeat_interleave(k, dim=0) for field in self))

    # Slot buffers of the decoding engine (seq2seq/engine.py): sentences in rows, positions padded to a width.
    # With the dot score ``keys`` is ``values`` itself, and a buffer keeps them one tensor.

    def blank(self, rows: int, width: int) -> AttentionKeys:
        """A zeroed buffer of ``rows`` sentences and ``width`` positions, with these fields' sizes and dtypes."""
        def zeros(field: Tensor) -> Tensor:
            return field.new_zeros(rows, width, *field.shape[2:])

        values = zeros(self.values)
        return AttentionKeys(values, values if self.keys is self.values else zeros(self.keys), zeros(self.mask))

    def write(self, start: int, source: AttentionKeys) -> None:
        """Copy the m sentences of ``source`` (width w ≤ this width) into rows start..start+m, in place; their
        positions past w become padding (zero states, mask False)."""
        rows, width = source.mask.shape
        for target, field in zip(self._own(), source._own()):
            target[start:start + rows, :width] = field
            target[start:start + rows, width:] = 0

    def move(self, to: Tensor, take: Tensor) -> None:
        """In place: rows ``to`` [M] get the contents of rows ``take`` [M]."""
        for field in self._own():
            field[to] = field[take]

    def narrow(self, rows: int, width: int) -> AttentionKeys:
        """A view of the first ``rows`` sentences and ``width`` positions."""
        return self._map(lambda field: field[:rows, :width])

    def widened(self, width: int) -> AttentionKeys:
        """A copy of this buffer with room for ``width`` ≥ its width positions (the new ones padding)."""
        wider = self.blank(self.mask.size(0), width)
        wider.write(0, self)
        return wider

    def rows(self, start: int, stop: int) -> AttentionKeys:
        """A view of sentences start..stop."""
        return self._map(lambda field: field[start:stop])

    def _map(self, view: Callable[[Tensor], Tensor]) -> AttentionKeys:
        """``view`` of every field, with ``keys`` still ``values`` where it was."""
        values = view(self.values)
        return AttentionKeys(values, values if self.keys is self.values else view(self.keys), view(self.mask))

    def _own(self) -> list[Tensor]:
        """The distinct tensors (``keys`` is left out where it is ``values``)."""
        return [self.values, self.mask] if self.keys is self.values else [self.values, self.keys, self.mask]


def dot_scores(query: Tensor, keys: Tensor) -> Tensor:
    """``e[b, t, i] = query[b, t] · keys[b, i]``: [B, T, H] x [B, S, H] → [B, T, S]."""
    return torch.bmm(query, keys.transpose(1, 2))


def concat_scores(query_proj: Tensor, keys_proj: Tensor, v: Tensor) -> Tensor:
    """``e[b, t, i] = v · tanh(query_proj[b, t] + keys_proj[b, i])``: [B, T, A], [B, S, A], [A] → [B, T, S].

    ``W_a [s; h] = W_s s + W_h h``, so the two projections are computed separately and broadcast.
    """
    hidden = torch.tanh(query_proj.unsqueeze(2) + keys_proj.unsqueeze(1))  # [B, T, S, A]
    return hidden @ v


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over source positions with padding excluded: [B, T, S], mask [B, S] → [B, T, S]."""
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    return torch.softmax(scores, dim=-1)


def context_vectors(weights: Tensor, values: Tensor) -> Tensor:
    """``a[b, t] = sum_i weights[b, t, i] values[b, i]``: [B, T, S] x [B, S, H_enc] → [B, T, H_enc]."""
    return torch.bmm(weights, values)


class Attention(nn.Module):
    """The parameters of one score function, and the three steps above."""

    def __init__(self, *, kind: str, query_size: int, key_size: int):
        super().__init__()
        self.kind = kind
        if kind == "dot" and query_size != key_size:
            raise ValueError(f"dot attention needs equal sizes, got query {query_size} and keys {key_size}")
        if kind == "general":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W_a
        elif kind == "concat":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W_a's block acting on h_i
            self.query_proj = nn.Linear(query_size, query_size, bias=False)  # W_a's block acting on s_t
            self.v = nn.Parameter(torch.empty(query_size).uniform_(-0.1, 0.1))  # v_a
        elif kind not in ("dot", "none"):
            raise ValueError(f"unknown attention score {kind!r}")

    def prepare(self, values: Tensor, mask: Tensor) -> AttentionKeys:
        """Project the encoder states once: values [B, S, H_enc], mask [B, S]."""
        keys = values if self.kind in ("dot", "none") else self.key_proj(values)  # [B, S, H]
        return AttentionKeys(values, keys, mask)

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        """Unnormalised scores: query [B, T, H] → [B, T, S]."""
        if self.kind == "concat":
            return concat_scores(self.query_proj(query), keys.keys, self.v)
        return dot_scores(query, keys.keys)

    def forward(self, query: Tensor, keys: AttentionKeys) -> tuple[Tensor, Tensor]:
        """Context vectors [B, T, H_enc] and attention weights [B, T, S] for queries [B, T, H].

        ``none`` (the no-attention baseline of ablations) returns zero contexts and zero weights, so the
        decoder computes tanh(W_c [0; s_t]): the same network without the attention path.
        """
        if self.kind == "none":
            batch, steps, sources = query.size(0), query.size(1), keys.values.size(1)
            return keys.values.new_zeros(batch, steps, keys.values.size(2)), query.new_zeros(batch, steps, sources)
        weights = masked_softmax(self.scores(query, keys), keys.mask)
        return context_vectors(weights, keys.values), weights
