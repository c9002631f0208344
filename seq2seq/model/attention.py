"""Luong attention's score functions (Luong, Pham & Manning 2015, §3.1, Eq. 7-8), one class per score.

Legend: B batch, T decoder steps (1 when stepping), S source positions, H decoder size, H_enc encoder size.

1. scores  e[t, i] = score(s_t, h_i)       dot: s_t·h_i   general: s_t·(W_a h_i)   concat: v_a·tanh(W_a [s_t; h_i])
                                            location: (W_a s_t)[i], from the target state alone
2. weights alpha[t] = softmax(e[t])          padded source positions get exactly 0
3. context a_t = sum_i alpha[t, i] h_i

Step 2 is the alignment function's (global or local: :mod:`seq2seq.model.alignment_functions`). The key
projections of ``general`` and ``concat`` depend only on the source, so :meth:`Attention.prepare` computes them
once per sentence and the result is passed explicitly to every step. Each score is one subclass of
:class:`Attention` (:data:`SCORES`), which also states its own rules (:meth:`Attention.rule`) and gives the fused
input-feeding loop its part (:meth:`Attention.loop`): adding a score means adding a subclass here, and nothing
else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from seq2seq.model.alignment_functions import ALIGNMENTS, make_alignment
from seq2seq.model.fused_loop import Matmul, ScoreLoop


class AttentionKeys(NamedTuple):
    """What every decoder step attends over, computed once per batch."""

    values: Tensor  # [B, S, H_enc] encoder states h_i; the context is their weighted sum
    keys: Tensor  # [B, S, K] what the query is scored against (h_i, or a projection of it)
    mask: Tensor  # [B, S] bool, True at real tokens

    @property
    def width(self) -> int:
        """S, the source positions."""
        return self.mask.size(1)

    def select(self, rows: Tensor) -> AttentionKeys:
        """The keys of some batch rows, in the order of ``rows`` [R]: each field [B, ...] → [R, ...]."""
        return AttentionKeys(*(field.index_select(0, rows) for field in self))

    def repeat(self, k: int) -> AttentionKeys:
        """Each batch row ``k`` times in a row (one copy per beam): each field [B, ...] → [B * k, ...]."""
        return AttentionKeys(*(field.repeat_interleave(k, dim=0) for field in self))

    # Slot buffers of the decoding engine (seq2seq/decoding/engine.py): sentences in rows, positions padded to a width.
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


def context_vectors(weights: Tensor, values: Tensor) -> Tensor:
    """``a[b, t] = sum_i weights[b, t, i] values[b, i]``: [B, T, S] x [B, S, H_enc] → [B, T, H_enc]."""
    return torch.bmm(weights, values)


class Attention(nn.Module, ABC):
    """Luong attention with one score function: a subclass per score owns its parameters and every place the
    score is computed, the batched and one-step scores (:meth:`scores`) and its part of the fused input-feeding
    loop (:meth:`loop`, see :mod:`seq2seq.model.fused_loop`). :data:`SCORES` names them all; :func:`make_attention`
    builds one by name.

    ``max_source_positions``: the longest source, for a score with a parameter per position;
    ``local_window``: D, the half-width of a local alignment's window.
    """

    kind: ClassVar[str]
    attends: ClassVar[bool] = True  # False for the no-attention baseline: no scores, no context
    content: ClassVar[bool] = True  # whether the scores read the keys (local attention needs a content score)

    def __init__(self, *, query_size: int, key_size: int, max_source_positions: int | None = None,
                 alignment: str = "global", local_window: int = 10):
        super().__init__()
        broken = self.rule(query_size=query_size, key_size=key_size, alignment=alignment)
        if broken is not None:
            raise ValueError(broken[1])
        self.alignment = make_alignment(alignment, query_size=query_size, local_window=local_window)

    @classmethod
    def rule(cls, *, query_size: int, key_size: int, alignment: str) -> tuple[str, str] | None:
        """What this score needs of the sizes and of the alignment, as (the setting at fault: ``"sizes"`` or
        ``"alignment"``, why) when it is not met; None when it is. The model's config check and the constructor
        both ask here, so each rule is stated once."""
        if ALIGNMENTS[alignment].local and not (cls.attends and cls.content):
            why = "scores positions from the target state alone" if cls.attends else "has none"
            return "alignment", (f"{alignment} attention needs a content score (dot, general or concat), and "
                                 f"{cls.kind} {why}")
        return None

    def prepare(self, values: Tensor, mask: Tensor) -> AttentionKeys:
        """Project the encoder states once: values [B, S, H_enc], mask [B, S]. The keys are the states themselves
        unless the score projects them."""
        return AttentionKeys(values, values, mask)

    @abstractmethod
    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        """Unnormalised scores: query [B, T, H] → [B, T, S]."""

    @abstractmethod
    def loop(self) -> ScoreLoop | None:
        """This score's part of the fused input-feeding loop, holding its own weights and buffers (None for a
        score that does not attend)."""

    def forward(self, query: Tensor, keys: AttentionKeys, steps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Context vectors [B, T, H_enc] and attention weights [B, T, S] for queries [B, T, H] at decoder steps
        ``steps`` [B, T] (default: 0..T-1, teacher forcing; local attention's windows move with them)."""
        if steps is None:
            steps = torch.arange(query.size(1), device=query.device).expand(query.size(0), -1)
        weights, _ = self.alignment.weigh(self.scores(query, keys), keys.mask, query, steps)
        return context_vectors(weights, keys.values), weights


class DotAttention(Attention):
    """``e_i = s_t · h_i``: no parameters; the query and the encoder states must have one size."""

    kind = "dot"

    @classmethod
    def rule(cls, *, query_size: int, key_size: int, alignment: str) -> tuple[str, str] | None:
        if query_size != key_size:
            return "sizes", f"dot attention needs equal sizes, got query {query_size} and keys {key_size}"
        return super().rule(query_size=query_size, key_size=key_size, alignment=alignment)

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        return dot_scores(query, keys.keys)

    def loop(self) -> DotLoop:
        return DotLoop()


class GeneralAttention(Attention):
    """``e_i = s_t · (W_a h_i)``: the dot score against projected keys, projected once per sentence."""

    kind = "general"

    def __init__(self, *, query_size: int, key_size: int, max_source_positions: int | None = None,
                 alignment: str = "global", local_window: int = 10):
        super().__init__(query_size=query_size, key_size=key_size, alignment=alignment, local_window=local_window)
        self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W_a

    def prepare(self, values: Tensor, mask: Tensor) -> AttentionKeys:
        return AttentionKeys(values, self.key_proj(values), mask)  # keys [B, S, H]

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        return dot_scores(query, keys.keys)

    def loop(self) -> DotLoop:
        return DotLoop()  # W_a gets its gradient through the keys


class ConcatAttention(Attention):
    """``e_i = v_a · tanh(W_a [s_t; h_i])``, with ``W_a [s; h] = W_s s + W_h h``: W_h h_i once per sentence."""

    kind = "concat"

    def __init__(self, *, query_size: int, key_size: int, max_source_positions: int | None = None,
                 alignment: str = "global", local_window: int = 10):
        super().__init__(query_size=query_size, key_size=key_size, alignment=alignment, local_window=local_window)
        self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W_a's block acting on h_i
        self.query_proj = nn.Linear(query_size, query_size, bias=False)  # W_a's block acting on s_t
        self.v = nn.Parameter(torch.empty(query_size).uniform_(-0.1, 0.1))  # v_a

    def prepare(self, values: Tensor, mask: Tensor) -> AttentionKeys:
        return AttentionKeys(values, self.key_proj(values), mask)  # keys [B, S, K]

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        return concat_scores(self.query_proj(query), keys.keys, self.v)

    def loop(self) -> ConcatLoop:
        return ConcatLoop(self.query_proj.weight, self.v)


class NoAttention(Attention):
    """The no-attention baseline of ablations: zero contexts and zero weights, so the decoder computes
    tanh(W_c [0; s_t]), the same network without the attention path."""

    kind = "none"
    attends = False

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        return query.new_zeros(query.size(0), query.size(1), keys.width)  # [B, T, S]: nothing is scored

    def forward(self, query: Tensor, keys: AttentionKeys, steps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        batch, steps_, sources = query.size(0), query.size(1), keys.values.size(1)
        return keys.values.new_zeros(batch, steps_, keys.values.size(2)), query.new_zeros(batch, steps_, sources)

    def loop(self) -> None:
        return None


class LocationAttention(Attention):
    """``e = W_a s_t`` (Luong §3.1, Eq. 8, location): one score per source position, from the target state alone.

    W_a has a row per position up to the longest source (``max_source_positions``: data.max_length + 1, for EOS);
    a sentence of S positions uses the first S rows, and the masked softmax its real ones. A position past the
    longest training source (a long valid sentence scored by teacher forcing) gets no weight. The keys are the
    encoder states themselves: only the context reads them.
    """

    kind = "location"
    content = False  # from the target state alone: global only

    def __init__(self, *, query_size: int, key_size: int, max_source_positions: int | None = None,
                 alignment: str = "global", local_window: int = 10):
        super().__init__(query_size=query_size, key_size=key_size, alignment=alignment, local_window=local_window)
        if max_source_positions is None:
            raise ValueError("location attention needs max_source_positions, the longest source "
                             "(data.max_length + 1)")
        self.position_proj = nn.Linear(query_size, max_source_positions, bias=False)  # W_a [P, H]

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        return fit_positions(self.position_proj(query), keys.mask.size(1))  # [B, T, S]

    def loop(self) -> LocationLoop:
        return LocationLoop(self.position_proj.weight)


def fit_positions(scores: Tensor, width: int, *, fill: float = float("-inf")) -> Tensor:
    """Per-position values [..., P] cut or padded (with ``fill``) to ``width`` positions: [..., width]."""
    have = scores.size(-1)
    if width <= have:
        return scores[..., :width]
    return torch.cat([scores, scores.new_full((*scores.shape[:-1], width - have), fill)], dim=-1)


SCORES: dict[str, type[Attention]] = {score.kind: score for score in (DotAttention, GeneralAttention,
                                                                      ConcatAttention, NoAttention,
                                                                      LocationAttention)}


def make_attention(kind: str, *, query_size: int, key_size: int, max_source_positions: int | None = None,
                   alignment: str = "global", local_window: int = 10) -> Attention:
    """The attention of score ``kind`` (a key of :data:`SCORES`) with ``alignment`` (global or local, with a window
    of ``local_window`` positions each side; :mod:`seq2seq.model.alignment_functions`); a ValueError naming the
    valid ones otherwise. ``max_source_positions``: the longest source, for scores with a parameter per
    position."""
    if kind not in SCORES:
        raise ValueError(f"unknown attention score {kind!r}; the scores are {', '.join(SCORES)}")
    return SCORES[kind](query_size=query_size, key_size=key_size, max_source_positions=max_source_positions,
                        alignment=alignment, local_window=local_window)


# The fused loop's parts (seq2seq.model.fused_loop.ScoreLoop): one step's query [B, H], keys [B, S, K].


class DotLoop:
    """The dot score in the fused loop (general's too, against its projected keys): no weights of its own."""

    def params(self) -> list[Tensor]:
        return []

    def begin(self, steps: int, keys: Tensor) -> None:
        pass

    def scores(self, t: int, query: Tensor, keys: Tensor, keys_by_column: Tensor, matmul: Matmul) -> Tensor:
        return torch.bmm(query.unsqueeze(1), keys_by_column).squeeze(1)  # [B, S]

    def query_grad(self, t: int, de: Tensor, keys: Tensor, matmul: Matmul) -> Tensor:
        return torch.bmm(de.unsqueeze(1), keys).squeeze(1)  # [B, K]

    def weight_grads(self, score_grads: Tensor, queries: Tensor, matmul: Matmul) -> tuple[Tensor, list[Tensor]]:
        return torch.bmm(score_grads.permute(1, 2, 0), queries), []  # [B, S, K]


class ConcatLoop:
    """The concat score in the fused loop: keeps tanh(W_s s_t + W_h h_i) of every step, and the gradient into
    W_s s_t, for backward."""

    def __init__(self, query_proj: Tensor, v: Tensor):
        self.query_proj, self.v = query_proj, v  # W_s [K, H], v_a [K]
        self.hidden: Tensor | None = None  # [T, B, S, K]
        self.query_grads: Tensor | None = None  # [T, B, K]: into W_s s_t

    def params(self) -> list[Tensor]:
        return [self.query_proj, self.v]

    def begin(self, steps: int, keys: Tensor) -> None:
        self.hidden = keys.new_empty(steps, *keys.shape)
        self.query_grads = keys.new_empty(steps, keys.size(0), self.query_proj.size(0))

    def scores(self, t: int, query: Tensor, keys: Tensor, keys_by_column: Tensor, matmul: Matmul) -> Tensor:
        hidden, _ = self._buffers()
        torch.tanh(matmul(query, self.query_proj).unsqueeze(1) + keys, out=hidden[t])  # [B, S, K]
        return hidden[t] @ self.v

    def query_grad(self, t: int, de: Tensor, keys: Tensor, matmul: Matmul) -> Tensor:
        hidden, query_grads = self._buffers()
        slope = (1.0 - hidden[t] * hidden[t]) * de.unsqueeze(-1)  # [B, S, K]
        torch.mul(slope.sum(dim=1), self.v, out=query_grads[t])  # into W_s s_t [B, K]
        return matmul(query_grads[t], self.query_proj, transpose=False)

    def weight_grads(self, score_grads: Tensor, queries: Tensor, matmul: Matmul) -> tuple[Tensor, list[Tensor]]:
        hidden, query_grads = self._buffers()
        steps, batch, _ = query_grads.shape
        rows = steps * batch
        slope = score_grads.unsqueeze(-1) * (1.0 - hidden * hidden)  # [T, B, S, K]: de · tanh'
        query_proj_grad = matmul(query_grads.view(rows, -1).t(), queries.transpose(0, 1).reshape(rows, -1),
                                 transpose=False)  # [K, H]
        return slope.sum(dim=0) * self.v, [query_proj_grad, torch.einsum("tbs,tbsk->k", score_grads, hidden)]

    def _buffers(self) -> tuple[Tensor, Tensor]:
        assert self.hidden is not None and self.query_grads is not None, "begin() makes them before the first step"
        return self.hidden, self.query_grads


class LocationLoop:
    """The location score in the fused loop: W_a s_t, cut or padded to the source's positions."""

    def __init__(self, position_proj: Tensor):
        self.position_proj = position_proj  # W_a [P, H]

    def params(self) -> list[Tensor]:
        return [self.position_proj]

    def begin(self, steps: int, keys: Tensor) -> None:
        pass

    def scores(self, t: int, query: Tensor, keys: Tensor, keys_by_column: Tensor, matmul: Matmul) -> Tensor:
        return fit_positions(matmul(query, self.position_proj), keys.size(1))  # [B, P] → [B, S]

    def query_grad(self, t: int, de: Tensor, keys: Tensor, matmul: Matmul) -> Tensor:
        positions = fit_positions(de, self.position_proj.size(0), fill=0.0)  # [B, P]
        return matmul(positions, self.position_proj, transpose=False)  # [B, H]

    def weight_grads(self, score_grads: Tensor, queries: Tensor,
                     matmul: Matmul) -> tuple[None, list[Tensor]]:
        steps, batch, _ = score_grads.shape
        positions = fit_positions(score_grads, self.position_proj.size(0), fill=0.0).reshape(steps * batch, -1)
        weight_grad = matmul(positions.t(), queries.transpose(0, 1).reshape(steps * batch, -1), transpose=False)
        return None, [weight_grad]  # the keys take no part in the scores
