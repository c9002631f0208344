"""Luong global attention (Luong, Pham & Manning 2015, §3.1, Eq. 7-8), written as pure functions.

Legend: B batch, T decoder steps (1 when stepping), S source positions, H decoder size, H_enc encoder size.

1. scores  e[t, i] = score(s_t, h_i)       dot: s_t·h_i   general: s_t·(W_a h_i)   concat: v_a·tanh(W_a [s_t; h_i])
                                            location: (W_a s_t)[i], from the target state alone
2. weights alpha[t] = softmax(e[t])          padded source positions get exactly 0
3. context a_t = sum_i alpha[t, i] h_i

The key projections of ``general`` and ``concat`` depend only on the source, so :meth:`Attention.prepare`
computes them once per sentence and the result is passed explicitly to every step. Each score is one subclass
of :class:`Attention` (:data:`SCORES`): adding a score means adding a subclass here, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from seq2seq.model.alignment import make_alignment


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


class Attention(nn.Module):
    """Luong attention with one score function: a subclass per score owns its parameters and every place the
    score is computed, the batched and one-step scores (:meth:`scores`) and the forward and backward pieces of
    the fused input-feeding loop (``loop_*``, see :mod:`seq2seq.model.fused_loop`). :data:`SCORES` names them all;
    :func:`make_attention` builds one by name.

    The loop pieces work on one step's query [B, H], the keys [B, S, K] (and [B, K, S]), and ``extra``, the
    parameters of :meth:`loop_params` as the loop saved them.
    """

    kind: ClassVar[str]
    attends: ClassVar[bool] = True  # False for the no-attention baseline: no scores, no context
    content: ClassVar[bool] = True  # whether the scores read the keys (local attention needs a content score)

    def __init__(self, *, query_size: int, key_size: int, max_positions: int | None = None,
                 alignment: str = "global", window: int = 10):
        super().__init__()
        if alignment != "global" and not (self.attends and self.content):
            raise ValueError(f"{alignment} attention needs a content score (dot, general or concat), not "
                             f"{self.kind}")
        self.alignment = make_alignment(alignment, query_size=query_size, window=window)  # where it may look

    def prepare(self, values: Tensor, mask: Tensor) -> AttentionKeys:
        """Project the encoder states once: values [B, S, H_enc], mask [B, S]."""
        return AttentionKeys(values, values, mask)

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        """Unnormalised scores: query [B, T, H] → [B, T, S]."""
        return dot_scores(query, keys.keys)

    def forward(self, query: Tensor, keys: AttentionKeys, steps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Context vectors [B, T, H_enc] and attention weights [B, T, S] for queries [B, T, H] at decoder steps
        ``steps`` [B, T] (default: 0..T-1, teacher forcing; local attention's windows move with them)."""
        if steps is None:
            steps = torch.arange(query.size(1), device=query.device).expand(query.size(0), -1)
        weights, _ = self.alignment.weigh(self.scores(query, keys), keys.mask, query, steps)
        return context_vectors(weights, keys.values), weights

    def loop_params(self) -> list[Tensor]:
        """The parameters the fused loop differentiates itself (the keys' projection gets its gradient through
        the keys): none, unless the score multiplies the query by a weight."""
        return []

    def loop_buffer(self, steps: int, keys: Tensor) -> Tensor | None:
        """What the loop keeps of every step's scores for backward, or None."""
        return None

    def loop_scores(self, query: Tensor, keys: Tensor, keys_by_column: Tensor, matmul: Matmul, extra: list[Tensor],
                    buffer: Tensor | None) -> Tensor:
        """One step's scores e [B, S] (``buffer``: this step's part of :meth:`loop_buffer`)."""
        return torch.bmm(query.unsqueeze(1), keys_by_column).squeeze(1)

    def loop_scores_backward(self, de: Tensor, keys: Tensor, matmul: Matmul, extra: list[Tensor],
                             buffer: Tensor | None, query_grad: Tensor | None) -> Tensor:
        """The gradient into one step's query [B, H] from the scores' gradient de [B, S] (``query_grad``: this
        step's part of a buffer like the query, for :meth:`loop_weight_grads`)."""
        return torch.bmm(de.unsqueeze(1), keys).squeeze(1)

    def loop_weight_grads(self, score_grads: Tensor, queries: Tensor, buffer: Tensor | None,
                          query_grads: Tensor | None, extra: list[Tensor],
                          matmul: Matmul) -> tuple[Tensor | None, list[Tensor]]:
        """After the reverse loop: the keys' gradient [B, S, K] and those of :meth:`loop_params`, from the
        scores' gradients [T, B, S] and the queries [B, T, H]."""
        return torch.bmm(score_grads.permute(1, 2, 0), queries), []


class DotAttention(Attention):
    """``e_i = s_t · h_i``: no parameters; the query and the encoder states must have one size."""

    kind = "dot"

    def __init__(self, *, query_size: int, key_size: int, max_positions: int | None = None,
                 alignment: str = "global", window: int = 10):
        super().__init__(query_size=query_size, key_size=key_size, alignment=alignment, window=window)
        if query_size != key_size:
            raise ValueError(f"dot attention needs equal sizes, got query {query_size} and keys {key_size}")


class GeneralAttention(Attention):
    """``e_i = s_t · (W_a h_i)``: the dot score against projected keys, projected once per sentence."""

    kind = "general"

    def __init__(self, *, query_size: int, key_size: int, max_positions: int | None = None,
                 alignment: str = "global", window: int = 10):
        super().__init__(query_size=query_size, key_size=key_size, alignment=alignment, window=window)
        self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W_a

    def prepare(self, values: Tensor, mask: Tensor) -> AttentionKeys:
        return AttentionKeys(values, self.key_proj(values), mask)  # keys [B, S, H]


class ConcatAttention(Attention):
    """``e_i = v_a · tanh(W_a [s_t; h_i])``, with ``W_a [s; h] = W_s s + W_h h``: W_h h_i once per sentence."""

    kind = "concat"

    def __init__(self, *, query_size: int, key_size: int, max_positions: int | None = None,
                 alignment: str = "global", window: int = 10):
        super().__init__(query_size=query_size, key_size=key_size, alignment=alignment, window=window)
        self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W_a's block acting on h_i
        self.query_proj = nn.Linear(query_size, query_size, bias=False)  # W_a's block acting on s_t
        self.v = nn.Parameter(torch.empty(query_size).uniform_(-0.1, 0.1))  # v_a

    def prepare(self, values: Tensor, mask: Tensor) -> AttentionKeys:
        return AttentionKeys(values, self.key_proj(values), mask)  # keys [B, S, K]

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        return concat_scores(self.query_proj(query), keys.keys, self.v)

    def loop_params(self) -> list[Tensor]:
        return [self.query_proj.weight, self.v]  # W_s [K, H], v_a [K]

    def loop_buffer(self, steps: int, keys: Tensor) -> Tensor:
        return keys.new_empty(steps, *keys.shape)  # [T, B, S, K]: tanh(W_s s_t + W_h h_i) of every step

    def loop_scores(self, query: Tensor, keys: Tensor, keys_by_column: Tensor, matmul: Matmul, extra: list[Tensor],
                    buffer: Tensor | None) -> Tensor:
        query_proj, v = extra
        assert buffer is not None  # this score's loop_buffer always keeps one
        torch.tanh(matmul(query, query_proj).unsqueeze(1) + keys, out=buffer)  # [B, S, K]
        return buffer @ v

    def loop_scores_backward(self, de: Tensor, keys: Tensor, matmul: Matmul, extra: list[Tensor],
                             buffer: Tensor | None, query_grad: Tensor | None) -> Tensor:
        query_proj, v = extra
        assert buffer is not None and query_grad is not None
        torch.mul(((1.0 - buffer * buffer) * de.unsqueeze(-1)).sum(dim=1), v, out=query_grad)  # into W_s s_t [B, K]
        return matmul(query_grad, query_proj, transpose=False)

    def loop_weight_grads(self, score_grads: Tensor, queries: Tensor, buffer: Tensor | None,
                          query_grads: Tensor | None, extra: list[Tensor],
                          matmul: Matmul) -> tuple[Tensor | None, list[Tensor]]:
        _, v = extra
        assert buffer is not None and query_grads is not None
        steps, batch, size = query_grads.shape
        rows = steps * batch
        slope = score_grads.unsqueeze(-1) * (1.0 - buffer * buffer)  # [T, B, S, K]: de · tanh'
        query_proj_grad = matmul(query_grads.view(rows, -1).t(), queries.transpose(0, 1).reshape(rows, -1),
                                 transpose=False)  # [K, H]
        return slope.sum(dim=0) * v, [query_proj_grad, torch.einsum("tbs,tbsk->k", score_grads, buffer)]  # [K]


class NoAttention(Attention):
    """The no-attention baseline of ablations: zero contexts and zero weights, so the decoder computes
    tanh(W_c [0; s_t]), the same network without the attention path."""

    kind = "none"
    attends = False

    def forward(self, query: Tensor, keys: AttentionKeys, steps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        batch, steps_, sources = query.size(0), query.size(1), keys.values.size(1)
        return keys.values.new_zeros(batch, steps_, keys.values.size(2)), query.new_zeros(batch, steps_, sources)

    def loop_weight_grads(self, score_grads: Tensor, queries: Tensor, buffer: Tensor | None,
                          query_grads: Tensor | None, extra: list[Tensor],
                          matmul: Matmul) -> tuple[Tensor | None, list[Tensor]]:
        return None, []


class LocationAttention(Attention):
    """``e = W_a s_t`` (Luong §3.1, Eq. 8, location): one score per source position, from the target state alone.

    W_a has a row per position up to the longest source (``max_positions``: data.max_length + 1, for EOS); a
    sentence of S positions uses the first S rows, and the masked softmax its real ones. A position past the
    longest training source (a long valid sentence scored by teacher forcing) gets no weight. The keys are the
    encoder states themselves: only the context reads them.
    """

    kind = "location"
    content = False  # from the target state alone: global only

    def __init__(self, *, query_size: int, key_size: int, max_positions: int | None = None,
                 alignment: str = "global", window: int = 10):
        super().__init__(query_size=query_size, key_size=key_size, alignment=alignment, window=window)
        if max_positions is None:
            raise ValueError("location attention needs max_positions, the longest source (data.max_length + 1)")
        self.position_proj = nn.Linear(query_size, max_positions, bias=False)  # W_a [P, H]

    def scores(self, query: Tensor, keys: AttentionKeys) -> Tensor:
        return fit_positions(self.position_proj(query), keys.mask.size(1))  # [B, T, S]

    def loop_params(self) -> list[Tensor]:
        return [self.position_proj.weight]  # W_a [P, H]

    def loop_scores(self, query: Tensor, keys: Tensor, keys_by_column: Tensor, matmul: Matmul, extra: list[Tensor],
                    buffer: Tensor | None) -> Tensor:
        return fit_positions(matmul(query, extra[0]), keys.size(1))  # [B, P] → [B, S]

    def loop_scores_backward(self, de: Tensor, keys: Tensor, matmul: Matmul, extra: list[Tensor],
                             buffer: Tensor | None, query_grad: Tensor | None) -> Tensor:
        return matmul(fit_positions(de, extra[0].size(0), fill=0.0), extra[0], transpose=False)  # [B, H]

    def loop_weight_grads(self, score_grads: Tensor, queries: Tensor, buffer: Tensor | None,
                          query_grads: Tensor | None, extra: list[Tensor],
                          matmul: Matmul) -> tuple[Tensor | None, list[Tensor]]:
        steps, batch, _ = score_grads.shape
        positions = fit_positions(score_grads, extra[0].size(0), fill=0.0).reshape(steps * batch, -1)  # [T·B, P]
        weight_grad = matmul(positions.t(), queries.transpose(0, 1).reshape(steps * batch, -1), transpose=False)
        return None, [weight_grad]  # the keys take no part in the scores


def fit_positions(scores: Tensor, width: int, *, fill: float = float("-inf")) -> Tensor:
    """Per-position values [..., P] cut or padded (with ``fill``) to ``width`` positions: [..., width]."""
    have = scores.size(-1)
    if width <= have:
        return scores[..., :width]
    return torch.cat([scores, scores.new_full((*scores.shape[:-1], width - have), fill)], dim=-1)


SCORES: dict[str, type[Attention]] = {score.kind: score for score in (DotAttention, GeneralAttention,
                                                                      ConcatAttention, NoAttention,
                                                                      LocationAttention)}


def make_attention(kind: str, *, query_size: int, key_size: int, max_positions: int | None = None,
                   alignment: str = "global", window: int = 10) -> Attention:
    """The attention of score ``kind`` (a key of :data:`SCORES`) with ``alignment`` (global or local, with a window
    of ``window`` positions each side; :mod:`seq2seq.model.alignment`); a ValueError naming the valid ones
    otherwise. ``max_positions``: the longest source, for scores with a parameter per position."""
    if kind not in SCORES:
        raise ValueError(f"unknown attention score {kind!r}; the scores are {', '.join(SCORES)}")
    return SCORES[kind](query_size=query_size, key_size=key_size, max_positions=max_positions,
                        alignment=alignment, window=window)


class Matmul(Protocol):
    """The fused loop's matrix product (``x @ w.T``, or ``x @ w`` with transpose=False) in its compute type."""

    def __call__(self, x: Tensor, w: Tensor, *, transpose: bool = True) -> Tensor: ...
