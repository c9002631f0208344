"""The attention decoder (Luong et al. 2015): LSTM, global attention, attentional vector, output layer.

Legend: B batch, T target length, S source length, H decoder size, H_enc encoder size, V target vocabulary.

Per step t, with decoder LSTM output s_t:
    a_t, alpha_t = attention(s_t, h_1..h_S)          (see attention.py)
    s~_t = tanh(W_c [a_t; s_t])                       the attentional vector
    logits_t = W_y s~_t + b_y
With input feeding (§3.3) s~_{t-1} is concatenated to the embedding of the next input token.

Three ways to run teacher forcing, which agree numerically (tests check it):
- without input feeding, all T steps at once: one LSTM call, one batched attention;
- with input feeding, the fused loop of :mod:`seq2seq.model.fused_loop`: the recurrence by hand, forward and backward;
- the plain step loop, :meth:`LuongDecoder.step` T times: the reference the other two are tested against.
Search runs :meth:`LuongDecoder.step` one step at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seq2seq.model.attention import AttentionKeys, make_attention
from seq2seq.model.fused_loop import Attending, LoopWeights, fused_decoder_loop
from seq2seq.model.word_dropout import WordDropout
from seq2seq.special_ids import PAD_ID

FEW_ROWS = 128  # up to this many rows per step, inference multiplies weight @ x.T (see few_rows_linear)


class DecoderState(NamedTuple):
    h: Tensor  # [L, B, H] LSTM hidden state of each layer
    c: Tensor  # [L, B, H] LSTM cell state of each layer
    feed: Tensor  # [B, H] previous attentional vector s~_{t-1} (zeros before the first step)
    step: Tensor  # [B] long: the steps taken, the position of the word the next step predicts (local attention)

    def select(self, rows: Tensor) -> DecoderState:
        """The state of some batch rows, in the order of ``rows`` [R]: h, c → [L, R, H], feed → [R, H]."""
        return DecoderState(self.h.index_select(1, rows), self.c.index_select(1, rows),
                            self.feed.index_select(0, rows), self.step.index_select(0, rows))

    def repeat(self, k: int) -> DecoderState:
        """Each batch row ``k`` times in a row (one copy per beam): h, c → [L, B * k, H], feed → [B * k, H]."""
        return DecoderState(self.h.repeat_interleave(k, dim=1), self.c.repeat_interleave(k, dim=1),
                            self.feed.repeat_interleave(k, dim=0), self.step.repeat_interleave(k, dim=0))

    def rows(self, start: int, stop: int) -> DecoderState:
        """A view of the batch rows start..stop."""
        return DecoderState(self.h[:, start:stop], self.c[:, start:stop], self.feed[start:stop],
                            self.step[start:stop])

    def cat(self, other: DecoderState) -> DecoderState:
        """This state's rows followed by ``other``'s."""
        return DecoderState(torch.cat([self.h, other.h], dim=1), torch.cat([self.c, other.c], dim=1),
                            torch.cat([self.feed, other.feed]), torch.cat([self.step, other.step]))


class LuongDecoder(nn.Module):
    def __init__(self, *, vocab_size: int, embedding_dim: int, hidden_size: int, encoder_size: int,
                 num_layers: int, attention: str, input_feeding: bool, dropout: float, tied_output: bool = False,
                 word_dropout: float = 0.0, max_source_positions: int | None = None, alignment: str = "global",
                 local_window: int = 10):
        super().__init__()
        self.input_feeding = input_feeding
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.word_dropout = WordDropout(word_dropout)
        self.dropout = nn.Dropout(dropout)
        input_size = embedding_dim + (hidden_size if input_feeding else 0)
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.attention = make_attention(attention, query_size=hidden_size, key_size=encoder_size,
                                        max_source_positions=max_source_positions, alignment=alignment,
                                        local_window=local_window)
        self.combine = nn.Linear(encoder_size + hidden_size, hidden_size, bias=False)  # W_c
        # A tied output layer reads embedding-sized vectors: s~ is projected when the sizes differ.
        self.readout = (nn.Linear(hidden_size, embedding_dim, bias=False)
                        if tied_output and hidden_size != embedding_dim else None)
        self.output = nn.Linear(embedding_dim if tied_output else hidden_size, vocab_size)  # W_y, b_y
        if tied_output:
            self.output.weight = self.embedding.weight  # [V, E], one parameter (Press & Wolf 2017)
        # Whether an inference step may read the LSTM's and the output layer's float weights itself
        # (lstm_step, few_rows_linear, a shortlist's rows): a decoding that swaps those layers for others
        # (int8 quantization, seq2seq.decoding.precision) turns these off, and the step calls the layers.
        self.reads_lstm_weights = True
        self.reads_output_weights = True

    def attentional(self, outputs: Tensor, keys: AttentionKeys,
                    steps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """LSTM outputs s [B, T, H] at decoder steps [B, T] (default 0..T-1) → attentional vectors s~ [B, T, H] and
        weights alpha [B, T, S]."""
        context, weights = self.attention(outputs, keys, steps)  # [B, T, H_enc], [B, T, S]
        return torch.tanh(self.combine(torch.cat([context, outputs], dim=-1))), weights

    def forward(self, trg_in: Tensor, state: DecoderState, keys: AttentionKeys, *,
                step_loop: bool = False, project: bool = True) -> tuple[Tensor, Tensor]:
        """Teacher forcing: inputs [B, T] → logits [B, T, V] and attention weights [B, T, S].

        ``step_loop=True`` runs the plain step loop instead of the fast path (the same numbers, slower).
        ``project=False`` returns the output layer's inputs (:meth:`features` [B, T, H]) instead of logits, for a
        loss that applies the layer itself (:mod:`seq2seq.model.loss`).
        """
        if step_loop:
            features, weights = self.forward_steps(trg_in, state, keys)
        elif self.input_feeding:
            features, weights = self.forward_fused(trg_in, state, keys)
        else:
            embedded = self.embed(trg_in)  # [B, T, E]
            outputs, _ = self.lstm(embedded, (state.h, state.c))  # [B, T, H]
            attentional, weights = self.attentional(outputs, keys)
            features = self.features(attentional)
        return (self.output(features) if project else features), weights

    def embed(self, tokens: Tensor) -> Tensor:
        """Input tokens [...] → embeddings [..., E], after word dropout and dropout (in training)."""
        return self.dropout(self.word_dropout(self.embedding(tokens)))

    def features(self, attentional: Tensor) -> Tensor:
        """What the output layer reads: dropout(s~) [..., H], projected to [..., E] when the layer is tied."""
        features = self.dropout(attentional)
        return features if self.readout is None else self.readout(features)

    def forward_fused(self, trg_in: Tensor, state: DecoderState, keys: AttentionKeys) -> tuple[Tensor, Tensor]:
        """Input feeding through :func:`seq2seq.model.fused_loop.fused_decoder_loop`: features [B, T, H] and
        weights [B, T, S].

        The embedding half of the first layer's input projection is one matrix product over all steps.
        """
        lstm, embedding_dim = self.lstm, self.embedding.embedding_dim
        embedded = self.embed(trg_in.t())  # [T, B, E]
        weight_ih, _, bias_ih, bias_hh = lstm.all_weights[0]
        pre = F.linear(embedded, weight_ih[:, :embedding_dim], bias_ih + bias_hh)  # [T, B, 4H]
        layer_masks = None
        if self.training and lstm.dropout > 0 and lstm.num_layers > 1:  # nn.LSTM's dropout between layers
            keep = 1.0 - lstm.dropout
            layer_masks = pre.new_empty(lstm.num_layers - 1, *pre.shape[:2], self.hidden_size).bernoulli_(keep) / keep
        attentional, alpha = fused_decoder_loop(pre, state.h, state.c, state.feed, keys.keys, keys.values, keys.mask,
                                                layer_masks, self.loop_weights(), self.loop_attention())
        return self.features(attentional.transpose(0, 1)), alpha.transpose(0, 1)  # [B, T, H], [B, T, S]

    def loop_weights(self) -> LoopWeights:
        """The LSTM, W_c and attention weights in the layout of the fused loop (layer 0 without its embedding
        block, which :meth:`forward_fused` applies to all steps at once)."""
        (weight_ih, weight_hh, _, _), *upper = self.lstm.all_weights  # per layer [W_ih, W_hh, b_ih, b_hh]
        embedding_dim = self.embedding.embedding_dim
        return LoopWeights(
            recurrent=[torch.cat([weight_ih[:, embedding_dim:], weight_hh], dim=1)]
            + [torch.cat([w_ih, w_hh], dim=1) for w_ih, w_hh, _, _ in upper],
            biases=[b_ih + b_hh for _, _, b_ih, b_hh in upper],
            combine=self.combine.weight)

    def loop_attention(self) -> Attending | None:
        """The attention's part of the fused loop, fresh for one run: the score's loop and the alignment's (None
        for the no-attention baseline)."""
        score = self.attention.loop()
        return None if score is None else Attending(score, self.attention.alignment.loop())

    def forward_steps(self, trg_in: Tensor, state: DecoderState, keys: AttentionKeys) -> tuple[Tensor, Tensor]:
        """Teacher forcing one step at a time: features [B, T, H], weights [B, T, S].

        The output layer needs only s~, so :meth:`forward` applies it once to all steps, as one matmul.
        """
        features, weights = [], []
        for t in range(trg_in.size(1)):
            step_features, state, step_weights = self.step_features(trg_in[:, t], state, keys)
            features.append(step_features)
            weights.append(step_weights)
        return torch.stack(features, dim=1), torch.stack(weights, dim=1)

    def step(self, prev_tokens: Tensor, state: DecoderState, keys: AttentionKeys, *, beams: int = 1,
             vocab: Tensor | None = None) -> tuple[Tensor, DecoderState, Tensor]:
        """One step: previous tokens [R] → logits [R, V], the next state, attention weights [R, S].

        With ``beams`` K > 1 the rows are K consecutive hypotheses of each of the R / K sentences of ``keys``:
        each sentence's keys are read once for all its beams instead of once per row. With ``vocab`` [U] only
        those target pieces are scored: logits [R, U].
        """
        features, state, weights = self.step_features(prev_tokens, state, keys, beams=beams)
        return self.project(features, vocab), state, weights

    def project(self, features: Tensor, vocab: Tensor | None = None) -> Tensor:
        """The output layer at inference: features [R, H] → logits [R, V], or [R, U] for the pieces ``vocab`` [U].

        A shortlist needs the output layer's float weights (``seq2seq.decoding.precision`` leaves them so under int8);
        without them the layer scores every piece and the shortlist's columns are kept."""
        if not self.reads_output_weights:
            logits = self.output(features)  # [R, V]
            return logits if vocab is None else logits.index_select(1, vocab)
        weight: Tensor = self.output.weight  # [V, H]
        bias: Tensor | None = self.output.bias  # [V]
        if vocab is not None:
            weight, bias = weight.index_select(0, vocab), None if bias is None else bias.index_select(0, vocab)
        if not torch.is_grad_enabled() and len(features) <= FEW_ROWS:
            return few_rows_linear(features, weight, bias)
        return nn.functional.linear(features, weight, bias)

    def step_features(self, prev_tokens: Tensor, state: DecoderState, keys: AttentionKeys, *,
                      beams: int = 1) -> tuple[Tensor, DecoderState, Tensor]:
        """One step up to the output layer: features [R, H], the next state, attention weights [R, S] (``beams``
        as in :meth:`step`)."""
        output, h, c = self.step_query(prev_tokens, state)  # [R, 1, H]
        rows = output.size(0)
        attentional, weights = self.attentional(output.view(rows // beams, beams, -1), keys,
                                                 state.step.view(rows // beams, beams))  # [R/K, K, H], [R/K, K, S]
        attentional, weights = attentional.view(rows, -1), weights.view(rows, -1)  # [R, H], [R, S]
        features = self.features(attentional)  # [R, H] (E when tied)
        return features, DecoderState(h, c, attentional, state.step + 1), weights

    def step_query(self, prev_tokens: Tensor, state: DecoderState) -> tuple[Tensor, Tensor, Tensor]:
        """The LSTM part of one step: previous tokens [R] → its output s_t [R, 1, H] (the attention's query),
        and the new h and c [L, R, H]."""
        embedded = self.embed(prev_tokens).unsqueeze(1)  # [R, 1, E]
        if self.input_feeding:
            embedded = torch.cat([embedded, state.feed.unsqueeze(1)], dim=-1)  # [R, 1, E + H]
        if self.reads_lstm_weights and not self.training and not torch.is_grad_enabled() \
                and len(prev_tokens) <= FEW_ROWS:
            h, c = lstm_step(self.lstm, embedded.squeeze(1), state.h, state.c)
            return h[-1].unsqueeze(1), h, c
        output, (h, c) = self.lstm(embedded, (state.h, state.c))
        return output, h, c

    def window_centres(self, trg_in: Tensor, state: DecoderState, keys: AttentionKeys) -> Tensor | None:
        """p_t [B, T] of teacher-forced inputs [B, T]: where local attention centred its window at each step
        (None for global attention). For pictures of the window, so it replays the step loop."""
        alignment = self.attention.alignment
        if not alignment.local:
            return None
        lengths, centres = keys.mask.sum(-1), []
        for t in range(trg_in.size(1)):
            query, h, c = self.step_query(trg_in[:, t], state)  # [B, 1, H]
            steps = state.step.unsqueeze(1)  # [B, 1]
            centre = alignment.positions(query, steps, lengths)  # [B, 1]
            assert centre is not None  # local alignments have one
            centres.append(centre)
            attentional, _ = self.attentional(query, keys, steps)
            state = DecoderState(h, c, attentional.squeeze(1), state.step + 1)
        return torch.cat(centres, dim=1)


def few_rows_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight.T + bias`` for a few rows x [N, in] (weight [out, in], bias [out]) → [N, out].

    Computed as ``(weight @ x.T).T``: with N in the tens, as in a greedy decoding step, MKL runs the product
    with the long dimension first up to twice as fast on a CPU; with hundreds of rows (a beam of 5 over 64
    sentences) it is slower, hence ``FEW_ROWS`` (docs/performance.md)."""
    product = weight @ x.t() if bias is None else torch.addmm(bias.unsqueeze(1), weight, x.t())  # [out, N]
    return product.t().contiguous()


def lstm_step(lstm: nn.LSTM, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One inference step of a stacked nn.LSTM, with :func:`few_rows_linear`'s product order:
    x [B, in], h and c [L, B, H] → the new h and c [L, B, H] (the top layer's h is the output)."""
    new_h, new_c = [], []
    for layer in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        gates = torch.addmm(bias.unsqueeze(1), w_ih, x.t()).addmm_(w_hh, h[layer].t())  # [4H, B]
        i, f, g, o = gates.chunk(4, dim=0)  # each [H, B], PyTorch's gate order
        cell = torch.sigmoid(f) * c[layer].t() + torch.sigmoid(i) * torch.tanh(g)  # [H, B]
        x = (torch.sigmoid(o) * torch.tanh(cell)).t().contiguous()  # [B, H]
        new_h.append(x)
        new_c.append(cell.t())
    return torch.stack(new_h), torch.stack(new_c)
