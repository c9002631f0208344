"""Seq2Seq: encoder, bridge and attention decoder, assembled from the model config by :func:`build_model`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from seq2seq.config import Config, ModelConfig
from seq2seq.errors import SettingError
from seq2seq.model.alignment_functions import ALIGNMENTS
from seq2seq.model.attention import SCORES, AttentionKeys
from seq2seq.model.decoder import DecoderState, LuongDecoder
from seq2seq.model.encoder import EncoderOutput, LSTMEncoder


class Bridge(nn.Module, ABC):
    """The decoder's initial state from the encoder's final state (h, c) each [L_enc, B, H_enc] → each
    [L_dec, B, H]: a subclass per model.bridge (:data:`BRIDGES`)."""

    kind: ClassVar[str]

    def __init__(self, *, encoder_size: int, decoder_size: int, decoder_layers: int):
        super().__init__()
        self.decoder_size = decoder_size
        self.decoder_layers = decoder_layers

    @abstractmethod
    def forward(self, final: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]: ...


class LinearBridge(Bridge):
    """``tanh(W h_final)`` and ``tanh(W' c_final)`` per layer; when the layer counts differ, every decoder layer
    starts from the top encoder layer."""

    kind = "linear"

    def __init__(self, *, encoder_size: int, decoder_size: int, decoder_layers: int):
        super().__init__(encoder_size=encoder_size, decoder_size=decoder_size, decoder_layers=decoder_layers)
        self.h_proj = nn.Linear(encoder_size, decoder_size)
        self.c_proj = nn.Linear(encoder_size, decoder_size)

    def forward(self, final: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = final
        if h.size(0) != self.decoder_layers:
            h = h[-1:].expand(self.decoder_layers, -1, -1)
            c = c[-1:].expand(self.decoder_layers, -1, -1)
        return torch.tanh(self.h_proj(h)).contiguous(), torch.tanh(self.c_proj(c)).contiguous()


class ZeroBridge(Bridge):
    """Zeros: the decoder starts from nothing and learns of the source through attention alone."""

    kind = "zeros"

    def forward(self, final: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, _ = final
        zeros = h.new_zeros(self.decoder_layers, h.size(1), self.decoder_size)
        return zeros, zeros.clone()


BRIDGES: dict[str, type[Bridge]] = {bridge.kind: bridge for bridge in (LinearBridge, ZeroBridge)}


class Seq2Seq(nn.Module):
    def __init__(self, *, encoder: LSTMEncoder, bridge: Bridge, decoder: LuongDecoder):
        super().__init__()
        self.encoder = encoder
        self.bridge = bridge
        self.decoder = decoder

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src [B, S], lengths [B] → EncoderOutput."""
        return self.encoder(src, src_lengths)

    def start(self, encoded: EncoderOutput) -> tuple[AttentionKeys, DecoderState]:
        """Attention keys (computed once) and the decoder's initial state for an encoded batch."""
        keys = self.decoder.attention.prepare(encoded.states, encoded.mask)
        h, c = self.bridge(encoded.final)
        feed = h.new_zeros(h.size(1), self.decoder.hidden_size)  # [B, H]
        step = torch.zeros(h.size(1), dtype=torch.long, device=h.device)  # [B]
        return keys, DecoderState(h, c, feed, step)

    @property
    def target_vocab_size(self) -> int:
        """V, the number of target pieces the output layer scores."""
        return self.decoder.output.out_features

    def search_start(self, src: Tensor, src_lengths: Tensor) -> tuple[AttentionKeys, DecoderState]:
        """What a search steps from: the attention keys and initial decoder state of src [B, S], lengths [B]."""
        return self.start(self.encode(src, src_lengths))

    def search_step(self, prev_tokens: Tensor, state: DecoderState, keys: AttentionKeys, *, beams: int = 1,
                    vocab: Tensor | None = None) -> tuple[Tensor, DecoderState, Tensor]:
        """One search step: previous tokens [R] → next-token log-probabilities [R, V] (float32), the next
        state, attention weights [R, S]; ``beams`` K consecutive rows share a sentence of ``keys`` [R / K, ...].
        With ``vocab`` [U] (target pieces, a shortlist) the log-probabilities are over those pieces only, [R, U].
        :class:`seq2seq.decoding.ensemble.Ensemble` offers the same two methods."""
        logits, state, weights = self.decoder.step(prev_tokens, state, keys, beams=beams, vocab=vocab)
        return torch.log_softmax(logits.float(), dim=-1), state, weights

    def window_centres(self, src: Tensor, src_lengths: Tensor, trg_in: Tensor) -> Tensor | None:
        """Where local attention centred its window, p_t [B, T], for teacher-forced ``trg_in`` [B, T] (None for
        global attention)."""
        keys, state = self.start(self.encode(src, src_lengths))
        return self.decoder.window_centres(trg_in, state, keys)

    def forward(self, src: Tensor, src_lengths: Tensor, trg_in: Tensor, *,
                step_loop: bool = False, project: bool = True) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits [B, T, V] and attention weights [B, T, S] (``step_loop=True``: the plain step
        loop; ``project=False``: the output layer's inputs [B, T, H] instead of logits)."""
        keys, state = self.start(self.encode(src, src_lengths))
        return self.decoder(trg_in, state, keys, step_loop=step_loop, project=project)


def build_model(config: ModelConfig, *, src_vocab_size: int, trg_vocab_size: int,
                max_source_positions: int | None = None) -> Seq2Seq:
    """The model ``config`` describes. ``max_source_positions`` (data.max_length + 1) sizes the scores that keep
    a parameter per source position (``attention: location``)."""
    encoder = LSTMEncoder(vocab_size=src_vocab_size, embedding_dim=config.embedding_dim,
                          hidden_size=config.encoder_hidden, num_layers=config.encoder_layers,
                          bidirectional=config.bidirectional, dropout=config.dropout,
                          word_dropout=config.source_word_dropout)
    bridge = BRIDGES[config.bridge](encoder_size=encoder.output_size, decoder_size=config.decoder_hidden,
                                    decoder_layers=config.decoder_layers)
    decoder = LuongDecoder(vocab_size=trg_vocab_size, embedding_dim=config.embedding_dim,
                           hidden_size=config.decoder_hidden, encoder_size=encoder.output_size,
                           num_layers=config.decoder_layers, attention=config.attention,
                           input_feeding=config.input_feeding, dropout=config.dropout,
                           tied_output=config.tied_embeddings != "none", word_dropout=config.target_word_dropout,
                           max_source_positions=max_source_positions, alignment=config.alignment,
                           local_window=config.local_window)
    if config.tied_embeddings == "all":
        if src_vocab_size != trg_vocab_size:
            raise ValueError(f"tied_embeddings 'all' needs one vocabulary, got {src_vocab_size} source and "
                             f"{trg_vocab_size} target pieces")
        encoder.embedding.weight = decoder.embedding.weight
    return Seq2Seq(encoder=encoder, bridge=bridge, decoder=decoder)


def check_model_config(whole: Config) -> None:
    """Raise a :class:`~seq2seq.errors.SettingError` naming the model key at fault when the config names a score,
    alignment or bridge that does not exist, or breaks a rule its score states (:meth:`Attention.rule`). The config
    loader reports it as a config error naming the file (``load_config(..., checks=[check_model_config])``)."""
    config = whole.model
    for key, registry in (("attention", SCORES), ("alignment", ALIGNMENTS), ("bridge", BRIDGES)):
        if getattr(config, key) not in registry:
            raise SettingError(f"model.{key}", "is not a valid choice; expected one of "
                               f"{', '.join(repr(name) for name in registry)}")
    encoder_out = config.encoder_hidden * (2 if config.bidirectional else 1)
    broken = SCORES[config.attention].rule(query_size=config.decoder_hidden, key_size=encoder_out,
                                           alignment=config.alignment)
    if broken is None:
        return
    setting, why = broken
    if setting == "sizes":
        directions = " x 2 directions" if config.bidirectional else ""
        raise SettingError("model.attention", f"{why}: model.decoder_hidden ({config.decoder_hidden}) must equal the "
                           f"encoder output size ({encoder_out} = encoder_hidden {config.encoder_hidden}{directions}). "
                           f"Set model.decoder_hidden: {encoder_out}, or use attention 'general' or 'concat', "
                           "which project the keys")
    raise SettingError(f"model.{setting}", f"{why}: use attention dot, general or concat, or alignment 'global'")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
