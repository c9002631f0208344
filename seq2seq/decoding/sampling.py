"""Sampling: each row draws its next piece from the model's distribution, reshaped by a temperature and cut to the
top k pieces or the top-p nucleus (Holtzman et al. 2020). The standard way to make back-translations: Edunov et al.
(2018) found sampled synthetic sources train better models than beam search's.

Legend: N sentences, K samples per sentence, V target pieces.

Reproducible: every sentence has its own random stream, seeded from the user's seed and the sentence's number
(:func:`sentence_seed`), so a sentence's samples do not depend on what else decodes beside it (batch size,
continuous batching, a server's other requests). A draw is the Gumbel-max trick over the whole vocabulary:
argmax(log p / T + g), g ~ Gumbel(0, 1), which is a draw from softmax(log p / T).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.search_types import BeamState, Choice, SearchOptions, Sentence, SentenceRequest
from seq2seq.errors import UserError

_GOLDEN = 0x9E3779B97F4A7C15  # spreads consecutive numbers over the seed space


def sentence_seed(seed: int, number: int) -> int:
    """The seed of the random stream of sentence ``number`` under the user's ``seed``."""
    return (seed * _GOLDEN + number) % 2**63


@dataclass(frozen=True)
class Sampling:
    """How to sample: ``temperature`` divides the log-probabilities (below 1 sharpens, above 1 flattens; 0 is
    greedy search); ``top_k`` > 0 keeps the k most probable pieces, ``top_p`` < 1 the smallest set of pieces whose
    probability reaches p (the nucleus). The draws are seeded by :attr:`SearchOptions.seed`, and the options'
    ``n_best`` says how many to draw per sentence."""

    name: ClassVar[str] = "sample"
    draws: ClassVar[bool] = True

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def check(self, options: SearchOptions, vocab_size: int) -> None:
        """Settings out of range are refused (a sample needs no beam, so the options' beam size is not read)."""
        if not 0 <= self.temperature < float("inf") or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise UserError(f"sampling needs a temperature ≥ 0, top-k ≥ 0 and 0 < top-p ≤ 1; got temperature "
                            f"{self.temperature}, top-k {self.top_k}, top-p {self.top_p}.")


class SampleRows:
    """Each sentence's random stream (one torch.Generator), moved with its slot."""

    def __init__(self, generators: list[torch.Generator]):
        self.generators = generators

    def take(self, order: Tensor) -> SampleRows:
        return SampleRows([self.generators[i] for i in order.tolist()])

    def cat(self, other: SampleRows) -> SampleRows:
        return SampleRows(self.generators + other.generators)


class Sample:
    """Draw ``samples`` translations per sentence as ``sampling`` says, each row on its own; they come back in the
    order drawn. Scores are the model's own log-probabilities of the drawn pieces. Each sentence's stream is seeded
    with the seed :meth:`prepare` gives it."""

    def __init__(self, samples: int, sampling: Sampling):
        self.beams = samples
        self.temperature, self.top_k, self.top_p = sampling.temperature, sampling.top_k, sampling.top_p

    def prepare(self, request: SentenceRequest) -> int:
        """A sentence's input is the seed of its own random stream, from its request's seed and its number."""
        return sentence_seed(request.seed, request.number)

    def start(self, sentences: list[Sentence], device: torch.device) -> BeamState:
        count = len(sentences)
        generators = [torch.Generator(device=device).manual_seed(s.policy_input) for s in sentences]
        return BeamState(torch.zeros(count, self.beams, device=device),
                         torch.zeros(count, self.beams, dtype=torch.long, device=device),
                         torch.zeros(count, self.beams, dtype=torch.bool, device=device), SampleRows(generators))

    def full_vocabulary(self, state: BeamState) -> bool:
        """A draw over a shortlist's union would depend on the other sentences of the batch: draw over all."""
        return True

    def choose(self, log_probs: Tensor, state: BeamState, at_limit: Tensor) -> Choice:
        """Each row's next piece, drawn from its own sentence's stream (a finished row, closed by the engine, can only
        draw PAD; it still draws, so that a stream's numbers do not depend on when its other rows finish)."""
        rows = state.rows
        assert isinstance(rows, SampleRows)
        count, samples, vocab = log_probs.shape
        if self.temperature == 0:
            tokens = log_probs.argmax(dim=-1)
        else:
            noise = torch.stack([torch.rand(samples, vocab, generator=generator, device=log_probs.device)
                                 for generator in rows.generators]) if count else log_probs.new_empty(0)
            gumbel = -torch.log(-torch.log(noise.clamp(min=torch.finfo(noise.dtype).tiny)))  # [N, K, V]
            best = log_probs.float().amax(dim=-1, keepdim=True)
            shifted = log_probs.float() - best  # 0 at the best piece, which a tiny temperature then keeps finite
            tokens = (self.truncate(shifted / self.temperature) + gumbel).argmax(dim=-1)  # [N, K]
        gained = log_probs.gather(2, tokens.unsqueeze(-1)).squeeze(-1).float()  # [N, K]
        parents = torch.arange(samples, device=log_probs.device).expand(count, samples)
        return state.advance(tokens, parents, state.scores + gained, at_limit, rows)

    def truncate(self, logits: Tensor) -> Tensor:
        """logits [N, K, V] with -inf outside the top k and outside the top-p nucleus."""
        if 0 < self.top_k < logits.size(-1):
            kth = logits.topk(self.top_k, dim=-1).values[..., -1:]  # [N, K, 1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1:
            ordered, order = logits.sort(dim=-1, descending=True)
            probs = ordered.softmax(dim=-1)
            outside = probs.cumsum(dim=-1) - probs >= self.top_p  # the pieces ranked above reach p already
            logits = logits.masked_fill(torch.empty_like(outside).scatter_(-1, order, outside), float("-inf"))
        return logits


def sample_policy(options: SearchOptions, trg_tok: Tokenizer | None) -> Sample:
    """The registry's sampling: ``options.n_best`` draws per sentence as ``options.policy`` says."""
    assert isinstance(options.policy, Sampling)
    return Sample(options.n_best, options.policy)
