"""Where attention may look: global attention, or Luong's local attention with a window (Luong et al. 2015, §3.2).

Legend: B batch, T decoder steps, S source positions, H decoder size.

The score (:mod:`seq2seq.model.attention`) gives e[t, s]; the alignment function turns scores into weights:

- ``global``: alpha_t = softmax(e_t) over the real source positions;
- ``local-m``: p_t = t (clipped to the sentence's last position, for a target longer than its source), and the
  softmax runs over the window [p_t - D, p_t + D] alone;
- ``local-p``: p_t = S_b · sigmoid(v_p · tanh(W_p h_t)), with S_b the sentence's length; the softmax runs over the
  window, and the weights are then multiplied by exp(-(s - p_t)² / (2σ²)), σ = D / 2 (Eq. 9-10), so that they
  favour positions near p_t and the model learns p_t through them.

Positions outside the window or the sentence get weight exactly 0, and the context stays Σ_s alpha_t[s] h_s. Each
alignment is one subclass of :class:`Alignment` (:data:`ALIGNMENTS`), and each gives the fused input-feeding loop
an :class:`~seq2seq.model.fused_loop.AlignmentLoop` of its own (:meth:`Alignment.loop`): one step's weights from its
scores, and their backward pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from seq2seq.model.fused_loop import AlignmentLoop, Matmul


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over source positions with padding excluded: [B, T, S], mask [B, S] → [B, T, S]."""
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    return torch.softmax(scores, dim=-1)


def inside_window(centre: Tensor, width: int, local_window: int) -> Tensor:
    """Which of ``width`` positions lie in the window [p_t - D, p_t + D] around each p_t [...] (float32):
    [..., width] bool."""
    offsets = torch.arange(width, device=centre.device) - centre.unsqueeze(-1)  # [..., S]
    return offsets.abs() <= local_window


def gaussian(centre: Tensor, width: int, sigma: float) -> Tensor:
    """exp(-(s - p_t)² / (2σ²)) of each of ``width`` positions around each p_t [...]: [..., width]."""
    offsets = torch.arange(width, device=centre.device) - centre.unsqueeze(-1)  # [..., S]
    return torch.exp(-offsets * offsets / (2 * sigma ** 2))


def softmax_backward(weights: Tensor, dweights: Tensor) -> Tensor:
    """The gradient into a softmax's inputs [..., S] from its outputs ``weights`` and their gradient ``dweights``."""
    return weights * (dweights - (weights * dweights).sum(-1, keepdim=True))


class Alignment(nn.Module, ABC):
    """Where one step's attention may look, and with what weights: a subclass per alignment function.

    ``local_window`` is D, the half-width of a local window (model.local_window)."""

    kind: ClassVar[str]
    local: ClassVar[bool]  # whether the softmax runs over a window around p_t (which needs a content score)

    def __init__(self, *, query_size: int, local_window: int):
        super().__init__()
        if self.local and local_window < 1:
            raise ValueError(f"local attention needs a window of at least 1 position each side, got {local_window}")
        self.local_window = local_window  # D

    @abstractmethod
    def weigh(self, scores: Tensor, mask: Tensor, query: Tensor, steps: Tensor) -> tuple[Tensor, Tensor | None]:
        """Weights [B, T, S] from scores [B, T, S] (mask [B, S] True at real positions) of queries [B, T, H] at
        decoder steps [B, T], and p_t [B, T] (None for global attention)."""

    def positions(self, query: Tensor, steps: Tensor, lengths: Tensor) -> Tensor | None:
        """p_t [B, T] (float32) for queries [B, T, H] at decoder steps [B, T] of sentences of ``lengths`` [B];
        None for global attention, which has no window."""
        return None

    @abstractmethod
    def loop(self) -> AlignmentLoop:
        """This alignment's part of the fused input-feeding loop, holding its own weights and buffers."""


class GlobalAlignment(Alignment):
    """``global``: the softmax over every real source position."""

    kind = "global"
    local = False

    def weigh(self, scores: Tensor, mask: Tensor, query: Tensor, steps: Tensor) -> tuple[Tensor, None]:
        return masked_softmax(scores, mask), None

    def loop(self) -> GlobalLoop:
        return GlobalLoop()


class LocalAlignment(Alignment):
    """A local alignment: the softmax over the window around each step's p_t (:meth:`positions`), whose weights
    :meth:`falloff` may then shape."""

    local = True

    @abstractmethod
    def positions(self, query: Tensor, steps: Tensor, lengths: Tensor) -> Tensor:
        """p_t [B, T] (float32), the centre of each step's window."""

    def weigh(self, scores: Tensor, mask: Tensor, query: Tensor, steps: Tensor) -> tuple[Tensor, Tensor]:
        centre = self.positions(query, steps, mask.sum(-1))  # [B, T]
        allowed = mask.unsqueeze(1) & inside_window(centre, mask.size(1), self.local_window)  # [B, T, S]
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)  # [B, T, S]
        falloff = self.falloff(centre, mask.size(1))
        return (weights if falloff is None else weights * falloff.to(weights.dtype)), centre

    def falloff(self, centre: Tensor, width: int) -> Tensor | None:
        """What the window's weights are multiplied by [..., S]: nothing (None) but for local-p's Gaussian."""
        return None


class MonotonicAlignment(LocalAlignment):
    """``local-m``: p_t = t, the decoder step, clipped to the sentence's last position."""

    kind = "local-m"

    def positions(self, query: Tensor, steps: Tensor, lengths: Tensor) -> Tensor:
        return torch.minimum(steps, lengths.unsqueeze(-1) - 1).float()  # [B, T]

    def loop(self) -> MonotonicLoop:
        return MonotonicLoop(self.local_window)


class PredictiveAlignment(LocalAlignment):
    """``local-p``: p_t = S_b · sigmoid(v_p · tanh(W_p h_t)), and a Gaussian of σ = D / 2 around p_t."""

    kind = "local-p"

    def __init__(self, *, query_size: int, local_window: int):
        super().__init__(query_size=query_size, local_window=local_window)
        self.position_proj = nn.Linear(query_size, query_size, bias=False)  # W_p
        self.v = nn.Parameter(torch.empty(query_size).uniform_(-0.1, 0.1))  # v_p

    @property
    def sigma(self) -> float:
        """σ = D / 2, as the paper sets it empirically."""
        return self.local_window / 2

    def positions(self, query: Tensor, steps: Tensor, lengths: Tensor) -> Tensor:
        hidden = torch.tanh(self.position_proj(query))  # [B, T, H]
        with torch.autocast(query.device.type, enabled=False):  # float32 for any model: p_t spans S positions
            z = hidden.float() @ self.v.float()  # [B, T]
        return lengths.unsqueeze(-1).float() * torch.sigmoid(z)  # [B, T]

    def falloff(self, centre: Tensor, width: int) -> Tensor:
        return gaussian(centre, width, self.sigma)

    def loop(self) -> PredictiveLoop:
        return PredictiveLoop(self.position_proj.weight, self.v, self.local_window)


ALIGNMENTS: dict[str, type[Alignment]] = {a.kind: a for a in (GlobalAlignment, MonotonicAlignment,
                                                              PredictiveAlignment)}


def make_alignment(kind: str, *, query_size: int, local_window: int) -> Alignment:
    """The alignment ``kind`` (a key of :data:`ALIGNMENTS`); a ValueError naming the valid ones otherwise."""
    if kind not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {kind!r}; the alignments are {', '.join(ALIGNMENTS)}")
    return ALIGNMENTS[kind](query_size=query_size, local_window=local_window)


# The fused loop's parts (seq2seq.model.fused_loop.AlignmentLoop): one step of B rows at step t, scores [B, S].


class GlobalLoop:
    """Global attention in the fused loop: the softmax over the real positions; nothing to keep."""

    def params(self) -> list[Tensor]:
        return []

    def begin(self, steps: int, batch: int, width: int, like: Tensor) -> None:
        pass

    def weigh(self, t: int, scores: Tensor, blocked: Tensor, query: Tensor, lengths: Tensor,
              matmul: Matmul) -> Tensor:
        return torch.softmax(scores.masked_fill_(blocked, float("-inf")), dim=-1)

    def weigh_backward(self, t: int, weights: Tensor, dweights: Tensor, matmul: Matmul) -> tuple[Tensor, None]:
        return softmax_backward(weights, dweights), None

    def weight_grads(self, queries: Tensor, matmul: Matmul) -> list[Tensor]:
        return []


class MonotonicLoop(GlobalLoop):
    """local-m in the fused loop: the softmax over the window around p_t = min(t, S_b - 1); its backward is the
    softmax's, as for global attention."""

    def __init__(self, local_window: int):
        self.local_window = local_window

    def weigh(self, t: int, scores: Tensor, blocked: Tensor, query: Tensor, lengths: Tensor,
              matmul: Matmul) -> Tensor:
        centre = torch.minimum(torch.full_like(lengths, t), lengths - 1).float()  # [B]
        outside = ~inside_window(centre, scores.size(-1), self.local_window)  # [B, S]
        return super().weigh(t, scores, blocked | outside, query, lengths, matmul)


@dataclass
class _PredictiveSteps:
    """What local-p's loop keeps of every step for backward: [T, B, ...] each."""

    hidden: Tensor  # [T, B, H] u_t = tanh(W_p h_t)
    rate: Tensor  # [T, B] float32: sigmoid(v_p · u_t) = p_t / S
    centre: Tensor  # [T, B] float32: p_t
    probs: Tensor  # [T, B, S] the window's softmax, before the Gaussian
    gauss: Tensor  # [T, B, S]
    dz: Tensor  # [T, B] float32: the gradient into v_p · u_t, written by backward


class PredictiveLoop:
    """local-p in the fused loop: p_t predicted from the query, the window's softmax times a Gaussian around it;
    backward also reaches the query and W_p, v_p through p_t."""

    def __init__(self, position_proj: Tensor, v: Tensor, local_window: int):
        self.position_proj, self.v = position_proj, v  # W_p [H, H], v_p [H]
        self.local_window, self.sigma = local_window, local_window / 2
        self.saved: _PredictiveSteps | None = None

    def params(self) -> list[Tensor]:
        return [self.position_proj, self.v]

    def begin(self, steps: int, batch: int, width: int, like: Tensor) -> None:
        exact = torch.float32  # positions in float32 whatever the loop's type
        self.saved = _PredictiveSteps(hidden=like.new_empty(steps, batch, self.v.size(0)),
                                      rate=like.new_empty(steps, batch, dtype=exact),
                                      centre=like.new_empty(steps, batch, dtype=exact),
                                      probs=like.new_zeros(steps, batch, width),
                                      gauss=like.new_zeros(steps, batch, width),
                                      dz=like.new_zeros(steps, batch, dtype=exact))

    def weigh(self, t: int, scores: Tensor, blocked: Tensor, query: Tensor, lengths: Tensor,
              matmul: Matmul) -> Tensor:
        saved = self._saved()
        hidden = torch.tanh(matmul(query, self.position_proj), out=saved.hidden[t])  # [B, H]
        rate = torch.sigmoid(hidden.float() @ self.v.float(), out=saved.rate[t])  # [B], float32 as in positions()
        centre = torch.mul(lengths, rate, out=saved.centre[t])  # [B]
        blocked = blocked | ~inside_window(centre, scores.size(-1), self.local_window)
        saved.probs[t] = torch.softmax(scores.masked_fill_(blocked, float("-inf")), dim=-1)
        saved.gauss[t] = gaussian(centre, scores.size(-1), self.sigma)  # [B, S]
        return saved.probs[t] * saved.gauss[t]

    def weigh_backward(self, t: int, weights: Tensor, dweights: Tensor, matmul: Matmul) -> tuple[Tensor, Tensor]:
        """weights = probs ⊙ g: dprobs = dweights ⊙ g; dp = Σ_s dweights_s probs_s g_s (s - p) / σ² (g's slope);
        p = S · sigmoid(z), z = v · u, u = tanh(W_p h): dz = dp · S σ(z) (1 - σ(z)), du = dz v,
        d(W_p h) = du (1 - u²)."""
        saved = self._saved()
        probs, centre, hidden = saved.probs[t], saved.centre[t], saved.hidden[t]
        de = softmax_backward(probs, dweights * saved.gauss[t])  # [B, S]
        offsets = torch.arange(probs.size(-1), device=probs.device) - centre.unsqueeze(-1)  # [B, S]
        dcentre = (dweights * weights * offsets).sum(-1) / self.sigma ** 2  # [B]
        dz = torch.mul(dcentre, centre * (1 - saved.rate[t]), out=saved.dz[t])  # [B]: S σ (1 - σ) = p (1 - σ)
        dpre = dz.unsqueeze(-1).to(hidden.dtype) * self.v * (1 - hidden * hidden)  # [B, H]: into W_p h
        return de, matmul(dpre, self.position_proj, transpose=False)

    def weight_grads(self, queries: Tensor, matmul: Matmul) -> list[Tensor]:
        saved = self._saved()
        hidden, dz = saved.hidden, saved.dz.to(saved.hidden.dtype)  # [T, B, H], [T, B]
        dpre = dz.unsqueeze(-1) * self.v * (1 - hidden * hidden)  # [T, B, H]
        rows = dz.numel()
        position_grad = matmul(dpre.reshape(rows, -1).t(), queries.transpose(0, 1).reshape(rows, -1),
                               transpose=False)  # [H, H]
        return [position_grad, (dz.unsqueeze(-1) * hidden).sum(dim=(0, 1))]

    def _saved(self) -> _PredictiveSteps:
        assert self.saved is not None, "begin() allocates the buffers before the first step"
        return self.saved
