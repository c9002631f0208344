"""The training loss without the [tokens, V] logits tensor: output layer and cross-entropy fused, in chunks.

The output layer (``logits = W_y s~ + b_y``) and label-smoothed cross-entropy are the largest tensors of a
training step: for 2,500 target tokens and an 8k vocabulary each [N, V] float tensor is 80 MB, and autograd
keeps several of them (logits, log-probabilities, and their gradients). Here the loss and its gradients
with respect to s~, W_y and b_y are computed together, ``CHUNK_LOGITS`` logits at a time, in the forward
pass; backward only scales them. The FLOPs are those of the unfused layer; the memory is one chunk.

Label smoothing follows ``torch.nn.functional.cross_entropy``: with ε, V classes and target y, the loss of a
token is ``(1 - ε) · -log p_y + ε/V · Σ_j -log p_j``, and its gradient w.r.t. the logits is
``p - (1 - ε) · onehot(y) - ε/V``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seq2seq.special_ids import PAD_ID

CHUNK_LOGITS = 1 << 22  # logits per chunk: 16 MB of float32, e.g. 512 tokens of an 8k vocabulary


class _FusedOutputLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features: Tensor, weight: Tensor, bias: Tensor, targets: Tensor,
                label_smoothing: float) -> Tensor:
        """features [N, H], weight [V, H], bias [V], targets [N] (no padding) → summed loss (scalar)."""
        need = ctx.needs_input_grad[:3]
        feature_grad, weight_grad, bias_grad = grads = [torch.zeros_like(t, dtype=torch.float32) if n else None
                                                        for t, n in zip((features, weight, bias), need)]
        compute = torch.get_autocast_dtype(features.device.type) if torch.is_autocast_enabled(
            features.device.type) else weight.dtype  # the matmul type autocast would use
        w = weight.to(compute)
        vocab = weight.size(0)
        total = features.new_zeros((), dtype=torch.float32)
        rows = max(1, CHUNK_LOGITS // vocab)
        with torch.autocast(features.device.type, enabled=False):
            for start in range(0, features.size(0), rows):
                x, y = features[start:start + rows].to(compute), targets[start:start + rows]
                logp = F.linear(x, w, bias.to(compute)).float().log_softmax(dim=-1)  # [n, V]
                nll = -logp.gather(1, y.unsqueeze(1)).sum()
                total += (1.0 - label_smoothing) * nll - label_smoothing / vocab * logp.sum()
                if not any(need):
                    continue
                g = logp.exp_()  # softmax p, in place: dloss/dlogits = p - (1 - ε) onehot(y) - ε/V
                g.scatter_add_(1, y.unsqueeze(1), g.new_full((len(y), 1), label_smoothing - 1.0))
                g -= label_smoothing / vocab
                if feature_grad is not None:
                    feature_grad[start:start + rows] = (g.to(compute) @ w).float()
                if weight_grad is not None:
                    weight_grad += (g.to(compute).t() @ x).float()
                if bias_grad is not None:
                    bias_grad += g.sum(dim=0)
        ctx.grads, ctx.dtypes = grads, [features.dtype, weight.dtype, bias.dtype]
        return total

    @staticmethod
    def backward(ctx, grad_loss: Tensor) -> tuple[Tensor | None, ...]:
        grads = [None if g is None else (g * grad_loss).to(dtype) for g, dtype in zip(ctx.grads, ctx.dtypes)]
        return (*grads, None, None)


def output_loss(features: Tensor, output: nn.Linear, targets: Tensor, *, label_smoothing: float) -> tuple[Tensor, int]:
    """Summed token cross-entropy of ``output(features)`` (padding ignored) and the number of real tokens.

    features [B, T, H] (the attentional vectors), targets [B, T]. Equal to
    ``sequence_loss(output(features), targets)`` in value and gradients, without materialising [B, T, V].
    """
    real = targets != PAD_ID  # [B, T]
    loss = _FusedOutputLoss.apply(features[real], output.weight, output.bias, targets[real], label_smoothing)
    return loss, int(real.sum())
