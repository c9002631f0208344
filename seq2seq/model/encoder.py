"""The source encoder: embeddings → (bi)LSTM over packed sequences."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.model.word_dropout import WordDropout
from seq2seq.special_ids import PAD_ID


class EncoderOutput(NamedTuple):
    """Legend: B batch, S source length, L encoder layers, H_enc = hidden size x directions."""

    states: Tensor  # [B, S, H_enc] top-layer states h_1..h_S (zeros at padding)
    final: tuple[Tensor, Tensor]  # (h, c), each [L, B, H_enc]: last state of each layer, directions concatenated
    mask: Tensor  # [B, S] bool, True at real tokens


class LSTMEncoder(nn.Module):
    def __init__(self, *, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int,
                 bidirectional: bool, dropout: float, word_dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.word_dropout = WordDropout(word_dropout)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        """src [B, S] ids, lengths [B] (CPU) → EncoderOutput.

        Packing makes every sentence's states independent of the padding around it.
        """
        batch, max_len = src.shape
        embedded = self.dropout(self.word_dropout(self.embedding(src)))  # [B, S, E]
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, (h, c) = self.lstm(packed)
        states, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=max_len)  # [B, S, H_enc]
        mask = torch.arange(max_len, device=src.device).unsqueeze(0) < lengths.to(src.device).unsqueeze(1)
        return EncoderOutput(self.dropout(states), (self._merge(h), self._merge(c)), mask)

    def _merge(self, state: Tensor) -> Tensor:
        """[L * dirs, B, H] → [L, B, dirs * H]: concatenate the directions of each layer."""
        layers_dirs, batch, hidden = state.shape
        state = state.view(layers_dirs // self.num_directions, self.num_directions, batch, hidden)
        return torch.cat(state.unbind(1), dim=-1)
