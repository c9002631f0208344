"""Where attention may look: global attention, or Luong's local attention with a window (Luong et al. 2015, §3.2).

Legend: B batch, T decoder steps, S source positions, H decoder size.

The score (:mod:`seq2seq.model.attention`) gives e[t, s]; the alignment turns scores into weights:

- ``global``: alpha_t = softmax(e_t) over the real source positions;
- ``local-m``: p_t = t (clipped to the sentence's last position, for a target longer than its source), and the
  softmax runs over the window [p_t - D, p_t + D] alone;
- ``local-p``: p_t = S_b · sigmoid(v_p · tanh(W_p h_t)), with S_b the sentence's length; the softmax runs over the
  window, and the weights are then multiplied by exp(-(s - p_t)² / (2σ²)), σ = D / 2 (Eq. 9-10), so that they
  favour positions near p_t and the model learns p_t through them.

Positions outside the window or the sentence get weight exactly 0, and the context stays Σ_s alpha_t[s] h_s. Each
alignment is one subclass of :class:`Alignment` (:data:`ALIGNMENTS`), which also owns its part of the fused
input-feeding loop (``loop_*``, see :mod:`seq2seq.model.fused_loop`): the weights of one step from its scores,
and their backward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from seq2seq.model.attention import Matmul


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over source positions with padding excluded: [B, T, S], mask [B, S] → [B, T, S]."""
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    return torch.softmax(scores, dim=-1)


class Alignment(nn.Module):
    """Global attention: the softmax over every real source position. The base of the local ones, which give
    each step a centre p_t (:meth:`positions`) and may weigh their window (:meth:`falloff`)."""

    kind: ClassVar[str] = "global"
    local: ClassVar[bool] = False

    def __init__(self, *, query_size: int, window: int):
        super().__init__()
        if self.local and window < 1:
            raise ValueError(f"local attention needs a window of at least 1 position each side, got {window}")
        self.window = window  # D

    def positions(self, query: Tensor, steps: Tensor, lengths: Tensor) -> Tensor | None:
        """p_t [B, T] (float32) for queries [B, T, H] at decoder steps [B, T] of sentences of ``lengths`` [B];
        None for global attention, which has no window."""
        return None

    def weigh(self, scores: Tensor, mask: Tensor, query: Tensor, steps: Tensor) -> tuple[Tensor, Tensor | None]:
        """Weights [B, T, S] from scores [B, T, S] (mask [B, S] True at real positions), and p_t [B, T] (None for
        global attention)."""
        if not self.local:
            return masked_softmax(scores, mask), None
        centre = self.positions(query, steps, mask.sum(-1))  # [B, T]
        assert centre is not None  # a local alignment has one
        allowed = mask.unsqueeze(1) & self.inside(centre, mask.size(1))  # [B, T, S]
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)  # [B, T, S]
        falloff = self.falloff(centre, mask.size(1))
        return (weights if falloff is None else weights * falloff.to(weights.dtype)), centre

    def inside(self, centre: Tensor, width: int) -> Tensor:
        """Which positions lie in the window around each p_t [...] (float32): [..., S] bool."""
        offsets = torch.arange(width, device=centre.device) - centre.unsqueeze(-1)  # [..., S]
        return offsets.abs() <= self.window

    def falloff(self, centre: Tensor, width: int) -> Tensor | None:
        """What the window's weights are multiplied by [..., S]: nothing (None) but for local-p's Gaussian."""
        return None

    # The fused loop: one step of B rows at step t, scores [B, S]; ``saved`` holds what backward needs, per step.

    def loop_params(self) -> list[Tensor]:
        """The parameters the fused loop differentiates itself: none, unless p_t is predicted."""
        return []

    def loop_buffers(self, steps: int, batch: int, width: int, like: Tensor) -> dict[str, Tensor]:
        """What the loop keeps of every step for backward (besides the weights)."""
        return {}

    def loop_weigh(self, t: int, scores: Tensor, blocked: Tensor, query: Tensor, lengths: Tensor,
                   extra: list[Tensor], saved: dict[str, Tensor], matmul: Matmul) -> Tensor:
        """Step t's weights [B, S] from its scores [B, S] (``blocked`` [B, S]: padding), query [B, H] and the
        sentences' ``lengths`` [B]."""
        centre = self.loop_positions(t, query, lengths, extra, saved, matmul)  # [B] or None
        if centre is not None:
            blocked = blocked | ~self.inside(centre, scores.size(-1))
        probs = torch.softmax(scores.masked_fill_(blocked, float("-inf")), dim=-1)
        return probs if centre is None else self.loop_falloff(t, probs, centre, saved)

    def loop_positions(self, t: int, query: Tensor, lengths: Tensor, extra: list[Tensor], saved: dict[str, Tensor],
                       matmul: Matmul) -> Tensor | None:
        """p_t [B] (float32) of step t: :meth:`positions` of one step (local-p overrides, to keep what backward
        needs); None for global attention."""
        if not self.local:
            return None
        centre = self.positions(query.unsqueeze(1), lengths.new_full((len(lengths), 1), t), lengths)
        return None if centre is None else centre.squeeze(1)

    def loop_falloff(self, t: int, probs: Tensor, centre: Tensor, saved: dict[str, Tensor]) -> Tensor:
        """The weights [B, S] from the window's softmax ``probs``: the softmax itself (local-p overrides)."""
        return probs

    def loop_weigh_backward(self, t: int, weights: Tensor, dweights: Tensor, extra: list[Tensor],
                            saved: dict[str, Tensor], matmul: Matmul) -> tuple[Tensor, Tensor | None]:
        """The scores' gradient de [B, S] from the weights' dweights [B, S], and a gradient into the query [B, H]
        (None when p_t does not depend on it)."""
        return weights * (dweights - (weights * dweights).sum(-1, keepdim=True)), None

    def loop_weight_grads(self, queries: Tensor, extra: list[Tensor], saved: dict[str, Tensor],
                          matmul: Matmul) -> list[Tensor]:
        """After the reverse loop: the gradients of :meth:`loop_params`, from the queries [B, T, H]."""
        return []


class MonotonicAlignment(Alignment):
    """``local-m``: p_t = t, the decoder step, clipped to the sentence's last position."""

    kind = "local-m"
    local = True

    def positions(self, query: Tensor, steps: Tensor, lengths: Tensor) -> Tensor:
        return torch.minimum(steps, lengths.unsqueeze(-1) - 1).float()  # [B, T]


class PredictiveAlignment(Alignment):
    """``local-p``: p_t = S_b · sigmoid(v_p · tanh(W_p h_t)), and a Gaussian of σ = D / 2 around p_t."""

    kind = "local-p"
    local = True

    def __init__(self, *, query_size: int, window: int):
        super().__init__(query_size=query_size, window=window)
        self.position_proj = nn.Linear(query_size, query_size, bias=False)  # W_p
        self.v = nn.Parameter(torch.empty(query_size).uniform_(-0.1, 0.1))  # v_p

    @property
    def sigma(self) -> float:
        """σ = D / 2, as the paper sets it empirically."""
        return self.window / 2

    def positions(self, query: Tensor, steps: Tensor, lengths: Tensor) -> Tensor:
        hidden = torch.tanh(self.position_proj(query))  # [B, T, H]
        with torch.autocast(query.device.type, enabled=False):  # float32 for any model: p_t spans S positions
            z = hidden.float() @ self.v.float()  # [B, T]
        return lengths.unsqueeze(-1).float() * torch.sigmoid(z)  # [B, T]

    def falloff(self, centre: Tensor, width: int) -> Tensor:
        offsets = torch.arange(width, device=centre.device) - centre.unsqueeze(-1)  # [..., S]
        return torch.exp(-offsets * offsets / (2 * self.sigma ** 2))

    def loop_params(self) -> list[Tensor]:
        return [self.position_proj.weight, self.v]  # W_p [H, H], v_p [H]

    def loop_buffers(self, steps: int, batch: int, width: int, like: Tensor) -> dict[str, Tensor]:
        exact = torch.float32  # positions in float32 whatever the loop's type
        return {"hidden": like.new_empty(steps, batch, self.v.size(0)),  # u_t = tanh(W_p h_t)
                "rate": like.new_empty(steps, batch, dtype=exact),  # sigmoid(v_p · u_t) = p_t / S
                "centre": like.new_empty(steps, batch, dtype=exact),  # p_t
                "probs": like.new_zeros(steps, batch, width),  # the window's softmax, before the Gaussian
                "gauss": like.new_zeros(steps, batch, width),
                "dz": like.new_zeros(steps, batch, dtype=exact)}  # the gradient into v_p · u_t, from backward

    def loop_positions(self, t: int, query: Tensor, lengths: Tensor, extra: list[Tensor], saved: dict[str, Tensor],
                       matmul: Matmul) -> Tensor:
        position_proj, v = extra
        hidden = torch.tanh(matmul(query, position_proj), out=saved["hidden"][t])  # [B, H]
        rate = torch.sigmoid(hidden.float() @ v.float(), out=saved["rate"][t])  # [B], float32 as in positions()
        return torch.mul(lengths, rate, out=saved["centre"][t])  # [B]

    def loop_falloff(self, t: int, probs: Tensor, centre: Tensor, saved: dict[str, Tensor]) -> Tensor:
        saved["probs"][t] = probs
        saved["gauss"][t] = self.falloff(centre, probs.size(-1))  # [B, S]
        return probs * saved["gauss"][t]

    def loop_weigh_backward(self, t: int, weights: Tensor, dweights: Tensor, extra: list[Tensor],
                            saved: dict[str, Tensor], matmul: Matmul) -> tuple[Tensor, Tensor | None]:
        """weights = probs ⊙ g: dprobs = dweights ⊙ g; dp = Σ_s dweights_s probs_s g_s (s - p) / σ² (g's slope);
        p = S · sigmoid(z), z = v · u, u = tanh(W_p h): dz = dp · S σ(z) (1 - σ(z)), du = dz v,
        d(W_p h) = du (1 - u²)."""
        position_proj, v = extra
        probs, gauss, centre, hidden = saved["probs"][t], saved["gauss"][t], saved["centre"][t], saved["hidden"][t]
        dprobs = dweights * gauss
        de = probs * (dprobs - (probs * dprobs).sum(-1, keepdim=True))  # [B, S]
        offsets = torch.arange(probs.size(-1), device=probs.device) - centre.unsqueeze(-1)  # [B, S]
        dcentre = (dweights * weights * offsets).sum(-1) / self.sigma ** 2  # [B]
        rate = saved["rate"][t]
        dz = torch.mul(dcentre, centre * (1 - rate), out=saved["dz"][t])  # [B]: S σ (1 - σ) = p (1 - σ)
        dpre = dz.unsqueeze(-1).to(hidden.dtype) * v * (1 - hidden * hidden)  # [B, H]: into W_p h
        return de, matmul(dpre, position_proj, transpose=False)

    def loop_weight_grads(self, queries: Tensor, extra: list[Tensor], saved: dict[str, Tensor],
                          matmul: Matmul) -> list[Tensor]:
        _, v = extra
        hidden, dz = saved["hidden"], saved["dz"].to(saved["hidden"].dtype)  # [T, B, H], [T, B]
        dpre = dz.unsqueeze(-1) * v * (1 - hidden * hidden)  # [T, B, H]
        rows = dz.numel()
        position_grad = matmul(dpre.reshape(rows, -1).t(), queries.transpose(0, 1).reshape(rows, -1),
                               transpose=False)  # [H, H]
        return [position_grad, (dz.unsqueeze(-1) * hidden).sum(dim=(0, 1))]


ALIGNMENTS: dict[str, type[Alignment]] = {a.kind: a for a in (Alignment, MonotonicAlignment, PredictiveAlignment)}


def make_alignment(kind: str, *, query_size: int, window: int) -> Alignment:
    """The alignment ``kind`` (a key of :data:`ALIGNMENTS`); a ValueError naming the valid ones otherwise."""
    if kind not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {kind!r}; the alignments are {', '.join(ALIGNMENTS)}")
    return ALIGNMENTS[kind](query_size=query_size, window=window)
