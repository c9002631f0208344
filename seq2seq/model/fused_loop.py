"""The teacher-forced input-feeding decoder as one autograd function, with its backward pass written by hand.

Legend: T target steps, B batch, S source length, L decoder layers, H decoder size, H_enc encoder output
size, K key size (H_enc for dot, H for general and concat).

Input feeding makes every step depend on the one before, so the decoder cannot run all steps as one LSTM
call. Run through autograd, each step records some thirty small operations forward and as many backward,
and each weight gradient is a sum of T thin matrix products. Here the loop keeps only what backward needs,
in buffers of shape [T, ...], and backward runs the recurrence in reverse by hand. What does not depend on
the recurrence is taken out of the loop:

- the embedding half of the first layer's input projection (``pre``, computed by the caller for all steps
  at once, biases included; its gradient is the first layer's gate gradient);
- every weight gradient: one matrix product over all T·B rows after the loop;
- the gradients of the attention keys and values: one batched product over all steps;
- the output layer and the loss, which the caller applies to the returned s~ (:mod:`seq2seq.model.loss`).

Per step, forward and backward each do one matrix product per LSTM layer and one for W_c. The result
equals :meth:`seq2seq.model.decoder.LuongDecoder.forward_steps` (the plain step loop) in value and gradient.

Step t, with the equations of :mod:`seq2seq.model.decoder` and PyTorch's gate order (i, f, g, o):
    gates_0 = pre_t + [s~_{t-1}; h_0,t-1] W_0^T        gates_l = b_l + [d_l ⊙ h_l-1,t; h_l,t-1] W_l^T
    c_t = σ(i) ⊙ tanh(g) + σ(f) ⊙ c_t-1                h_t = σ(o) ⊙ tanh(c_t)
    alpha_t = align(score(h_top,t, keys))              a_t = alpha_t · values
(align: the softmax over the real positions, or over a local window; seq2seq/model/alignment_functions.py)
    s~_t = tanh(W_c [a_t; h_top,t])
with d_l the dropout mask between layers l-1 and l (already scaled by 1 / (1 - p)).

Under autocast the matrix products run in the autocast type (bfloat16) and everything else in the weights'
type (float32).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
from torch import Tensor


class LoopWeights(NamedTuple):
    """The decoder's weights in the layout the loop multiplies by."""

    recurrent: list[Tensor]  # per layer [4H, in_l + H]: layer 0's feed block of W_ih (or W_ih_l), then W_hh_l
    biases: list[Tensor]  # per layer l > 0: b_ih_l + b_hh_l [4H] (layer 0's are inside ``pre``)
    combine: Tensor  # W_c [H, H_enc + H]


class Matmul:
    """``x @ w.T`` (and ``x @ w``) in the compute type, with results in the weights' type; each weight is
    cast once."""

    def __init__(self, compute: torch.dtype):
        self.compute = compute
        self.cast: dict[int, tuple[Tensor, Tensor]] = {}  # id → (the tensor, its cast)

    def weight(self, w: Tensor) -> Tensor:
        if w.dtype == self.compute:
            return w
        cached = self.cast.get(id(w))
        if cached is None or cached[0] is not w:  # the entry keeps w alive, so its id is never another tensor's
            cached = self.cast[id(w)] = (w, w.to(self.compute))
        return cached[1]

    def __call__(self, x: Tensor, w: Tensor, *, transpose: bool = True) -> Tensor:
        w = self.weight(w)
        product = x.to(self.compute) @ (w.t() if transpose else w)
        return product.to(x.dtype)


class ScoreLoop(Protocol):
    """One score function's part of the loop (an attention score's :meth:`loop`): it holds the score's weights and
    what it keeps of every step. ``keys`` [B, S, K] and ``keys_by_column`` [B, K, S] are the attention keys; a step
    sees its query [B, H]."""

    def params(self) -> list[Tensor]:
        """The weights the loop differentiates itself (a projection of the keys gets its gradient through them)."""
        ...

    def begin(self, steps: int, keys: Tensor) -> None:
        """Make room for what the score keeps of ``steps`` steps."""
        ...

    def scores(self, t: int, query: Tensor, keys: Tensor, keys_by_column: Tensor, matmul: Matmul) -> Tensor:
        """Step t's scores e [B, S]."""
        ...

    def query_grad(self, t: int, de: Tensor, keys: Tensor, matmul: Matmul) -> Tensor:
        """The gradient into step t's query [B, H] from its scores' gradient de [B, S]."""
        ...

    def weight_grads(self, score_grads: Tensor, queries: Tensor,
                     matmul: Matmul) -> tuple[Tensor | None, list[Tensor]]:
        """After the reverse loop: the keys' gradient [B, S, K] (None when the scores do not read them) and those
        of :meth:`params`, from the scores' gradients [T, B, S] and the queries [B, T, H]."""
        ...


class AlignmentLoop(Protocol):
    """One alignment function's part of the loop (an alignment's :meth:`loop`): it turns a step's scores [B, S]
    into weights [B, S] and holds its own weights and what it keeps of every step."""

    def params(self) -> list[Tensor]:
        """The weights the loop differentiates itself: none, unless p_t is predicted."""
        ...

    def begin(self, steps: int, batch: int, width: int, like: Tensor) -> None:
        """Make room for what the alignment keeps of ``steps`` steps of ``batch`` rows and ``width`` positions."""
        ...

    def weigh(self, t: int, scores: Tensor, blocked: Tensor, query: Tensor, lengths: Tensor,
              matmul: Matmul) -> Tensor:
        """Step t's weights [B, S] from its scores [B, S] (overwritten), ``blocked`` [B, S] (padding), the query
        [B, H] and the sentences' ``lengths`` [B]."""
        ...

    def weigh_backward(self, t: int, weights: Tensor, dweights: Tensor,
                       matmul: Matmul) -> tuple[Tensor, Tensor | None]:
        """The scores' gradient de [B, S] from the weights' dweights [B, S], and a gradient into the query [B, H]
        (None when the weights reach the query only through the scores)."""
        ...

    def weight_grads(self, queries: Tensor, matmul: Matmul) -> list[Tensor]:
        """After the reverse loop: the gradients of :meth:`params`, from the queries [B, T, H]."""
        ...


class Attending(NamedTuple):
    """The attention of the loop: a score and an alignment function, each with its own weights and buffers."""

    score: ScoreLoop
    alignment: AlignmentLoop

    def params(self) -> list[Tensor]:
        return [*self.score.params(), *self.alignment.params()]


def fused_decoder_loop(pre: Tensor, h0: Tensor, c0: Tensor, feed0: Tensor, keys: Tensor, values: Tensor,
                       mask: Tensor, layer_masks: Tensor | None, weights: LoopWeights,
                       attention: Attending | None) -> tuple[Tensor, Tensor]:
    """Run all T steps: pre [T, B, 4H], h0 and c0 [L, B, H], feed0 [B, H], keys [B, S, K], values
    [B, S, H_enc], mask [B, S] (True at real tokens), layer_masks [L - 1, T, B, H] or None
    → s~ [T, B, H] and attention weights [T, B, S] (the weights carry no gradient). ``attention``: the score's
    and the alignment's loops (None for the no-attention baseline: zero contexts and weights)."""
    device, state = pre.device.type, weights.combine.dtype  # state: the weights' type (float32)
    compute = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else state
    params = [*weights.recurrent, *weights.biases, weights.combine, *(attention.params() if attention else [])]
    cast = [x.to(state) for x in (pre, h0, c0, feed0, keys, values)]
    with torch.autocast(device, enabled=False):
        return _FusedLoop.apply(attention, len(weights.recurrent), compute, *cast, mask, layer_masks, *params)


class _FusedLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, attention: Attending | None, layers: int, compute: torch.dtype, pre: Tensor, h0: Tensor,
                c0: Tensor, feed0: Tensor, keys: Tensor, values: Tensor, mask: Tensor, layer_masks: Tensor | None,
                *params: Tensor) -> tuple[Tensor, Tensor]:
        recurrent, biases, combine = params[:layers], params[layers:2 * layers - 1], params[2 * layers - 1]
        matmul = Matmul(compute)
        steps, batch, _ = pre.shape
        size, enc = h0.size(-1), values.size(-1)
        inputs = [pre.new_empty(steps, batch, w.size(1)) for w in recurrent]  # [T, B, in_l + H]
        gates = [pre.new_empty(steps, batch, 4 * size) for _ in range(layers)]  # [T, B, 4H]
        cells = [pre.new_empty(steps + 1, batch, size) for _ in range(layers)]  # [T + 1, B, H]
        alpha = pre.new_zeros(steps, batch, values.size(1))  # [T, B, S]
        combined = pre.new_zeros(steps, batch, enc + size)  # [T, B, H_enc + H]: a_t stays 0 without attention
        attentional = pre.new_empty(steps, batch, size)  # [T, B, H]
        if attention is not None:
            attention.score.begin(steps, keys)
            attention.alignment.begin(steps, batch, values.size(1), like=pre)
        blocked, lengths = ~mask, mask.sum(-1)  # [B, S], [B]
        keys_by_column = keys.transpose(1, 2).contiguous()  # [B, K, S]: [B, 1, K] x [B, K, S] is the fast bmm
        h = list(h0.unbind(0))  # per layer [B, H]
        for layer in range(layers):
            cells[layer][0] = c0[layer]
        feed = feed0
        for t in range(steps):
            below = feed
            for layer in range(layers):
                x = inputs[layer][t]  # [B, in_l + H]
                x[:, :-size] = below if layer == 0 or layer_masks is None else below * layer_masks[layer - 1, t]
                x[:, -size:] = h[layer]
                g = gates[layer][t]  # [B, 4H]
                torch.add(pre[t] if layer == 0 else biases[layer - 1], matmul(x, recurrent[layer]), out=g)
                h[layer] = _cell_forward(g, cells[layer][t], out=cells[layer][t + 1])
                below = h[layer]
            query = h[-1]  # [B, H]
            combined[t, :, enc:] = query
            if attention is not None:
                scores = attention.score.scores(t, query, keys, keys_by_column, matmul)  # [B, S]
                alpha[t] = attention.alignment.weigh(t, scores, blocked, query, lengths, matmul)
                weights = alpha[t]  # [B, S]
                combined[t, :, :enc] = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # [B, H_enc]
            feed = torch.tanh(matmul(combined[t], combine), out=attentional[t])  # [B, H]
        ctx.attention, ctx.layers, ctx.compute = attention, layers, compute
        ctx.buffers = (inputs, gates, cells, combined)
        ctx.save_for_backward(keys, values, layer_masks, attentional, alpha, *params)
        ctx.mark_non_differentiable(alpha)
        return attentional, alpha

    @staticmethod
    def backward(ctx, grad_attentional: Tensor, _grad_alpha: Tensor | None) -> tuple[Tensor | None, ...]:
        keys, values, layer_masks, attentional, alpha, *params = ctx.saved_tensors
        inputs, gates, cells, combined = ctx.buffers
        attention: Attending | None = ctx.attention
        layers = ctx.layers
        recurrent, combine = params[:layers], params[2 * layers - 1]
        matmul = Matmul(ctx.compute)
        steps, batch, size = attentional.shape
        enc = values.size(-1)
        gate_grads = [torch.empty_like(g) for g in gates]  # per layer [T, B, 4H]
        combine_grads = torch.empty_like(attentional)  # [T, B, H]: gradient before s~'s tanh
        score_grads = torch.zeros_like(alpha)  # [T, B, S]
        context_grads = combined.new_zeros(steps, batch, enc)  # [T, B, H_enc]
        dh = [attentional.new_zeros(batch, size) for _ in range(layers)]  # from step t + 1
        dc = [attentional.new_zeros(batch, size) for _ in range(layers)]
        dfeed = attentional.new_zeros(batch, size)
        values_by_column = values.transpose(1, 2).contiguous()  # [B, H_enc, S]
        for t in reversed(range(steps)):
            s = attentional[t]  # [B, H]
            du = torch.mul(grad_attentional[t] + dfeed, 1.0 - s * s, out=combine_grads[t])  # [B, H]
            dcombined = matmul(du, combine, transpose=False)  # [B, H_enc + H]
            dquery = dcombined[:, enc:]
            if attention is not None:
                dcontext = context_grads[t]
                dcontext.copy_(dcombined[:, :enc])
                weights = alpha[t]  # [B, S]
                dweights = torch.bmm(dcontext.unsqueeze(1), values_by_column).squeeze(1)  # [B, S]
                de, dposition = attention.alignment.weigh_backward(t, weights, dweights, matmul)
                score_grads[t] = de
                if dposition is not None:  # p_t is predicted from the query
                    dquery = dquery + dposition
                dquery = dquery + attention.score.query_grad(t, de, keys, matmul)
            dbelow = dquery
            for layer in reversed(range(layers)):
                dc[layer] = _cell_backward(dh[layer] + dbelow, dc[layer], gates[layer][t], cells[layer][t],
                                           cells[layer][t + 1], out=gate_grads[layer][t])
                dx = matmul(gate_grads[layer][t], recurrent[layer], transpose=False)  # [B, in_l + H]
                dh[layer], dbelow = dx[:, -size:], dx[:, :-size]
                if layer > 0 and layer_masks is not None:
                    dbelow = dbelow * layer_masks[layer - 1, t]
            dfeed = dbelow
        weight_grads = _weight_grads(matmul, gate_grads, inputs, combine_grads, combined)
        queries = combined[:, :, enc:].transpose(0, 1)  # [B, T, H]
        keys_grad, values_grad, attention_grads = None, None, []
        if attention is not None:
            values_grad = torch.bmm(alpha.permute(1, 2, 0), context_grads.transpose(0, 1))  # [B, S, H_enc]
            keys_grad, score_weight_grads = attention.score.weight_grads(score_grads, queries, matmul)
            attention_grads = [*score_weight_grads, *attention.alignment.weight_grads(queries, matmul)]
        return (None, None, None, gate_grads[0], torch.stack(dh), torch.stack(dc), dfeed, keys_grad, values_grad,
                None, None, *weight_grads, *attention_grads)


def _weight_grads(matmul: Matmul, gate_grads: list[Tensor], inputs: list[Tensor], combine_grads: Tensor,
                  combined: Tensor) -> list[Tensor]:
    """After the reverse loop, the gradients of the recurrent weights, the biases of layers > 0 and W_c, each a
    sum over steps computed as one product over all steps. The buffers are [T, B, ...] as in
    :meth:`_FusedLoop.forward`."""
    steps, batch, size = combine_grads.shape
    rows = steps * batch
    recurrent_grads = [matmul(g.view(rows, -1).t(), x.view(rows, -1), transpose=False)
                       for g, x in zip(gate_grads, inputs)]  # per layer [4H, in_l + H]
    bias_grads = [g.sum(dim=(0, 1)) for g in gate_grads[1:]]  # per layer l > 0 [4H]
    combine_grad = matmul(combine_grads.view(rows, size).t(), combined.view(rows, -1), transpose=False)
    return [*recurrent_grads, *bias_grads, combine_grad]


def _cell_forward(gates: Tensor, c_prev: Tensor, *, out: Tensor) -> Tensor:
    """The LSTM cell, in place: pre-activation gates [B, 4H] become σ(i), σ(f), tanh(g), σ(o), and ``out``
    [B, H] receives c_t (from c_prev [B, H]). Returns h_t [B, H]."""
    size = c_prev.size(-1)
    gates[:, :2 * size].sigmoid_()
    gates[:, 2 * size:3 * size].tanh_()
    gates[:, 3 * size:].sigmoid_()
    i, f, g, o = gates.split(size, dim=1)
    torch.mul(f, c_prev, out=out).addcmul_(i, g)
    return o * torch.tanh(out)


def _cell_backward(dh: Tensor, dc_next: Tensor, gates: Tensor, c_prev: Tensor, c: Tensor, *, out: Tensor) -> Tensor:
    """Backward of :func:`_cell_forward`: dh [B, H] (into h_t), dc_next [B, H] (into c_t from step t + 1),
    activated gates [B, 4H], c_prev and c [B, H]. Writes the gates' pre-activation gradient into ``out``
    [B, 4H] and returns the gradient into c_prev [B, H]."""
    size = c.size(-1)
    i, f, g, o = gates.split(size, dim=1)
    di, df, dg, do = out.split(size, dim=1)
    tanh_c = torch.tanh(c)
    torch.mul(dh, tanh_c, out=do).mul_(o * (1.0 - o))  # σ' = σ (1 - σ)
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)  # [B, H]
    torch.mul(dc, g, out=di).mul_(i * (1.0 - i))
    torch.mul(dc, c_prev, out=df).mul_(f * (1.0 - f))
    torch.mul(dc, i, out=dg).mul_(1.0 - g * g)  # tanh' = 1 - tanh²
    return dc * f
