"""Word dropout: drop whole input words, not single embedding units (Gal & Ghahramani 2016; Sennrich & Zhang
2019 use it on both sides of small-data RNN systems, source and target, at 0.1-0.3)."""

from __future__ import annotations

from torch import Tensor, nn


class WordDropout(nn.Module):
    """In training, zero each token's whole embedding with probability ``p`` and scale the rest by 1 / (1 - p);
    at inference the identity. The model must then predict from context alone at some positions, which
    regularises far more than unit dropout on 29k sentences."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, embedded: Tensor) -> Tensor:
        """embedded [..., E] → the same shape, one keep/drop decision per token (all of its E units)."""
        if not self.training or self.p == 0.0:
            return embedded
        keep = 1.0 - self.p
        mask = embedded.new_empty(*embedded.shape[:-1], 1).bernoulli_(keep) / keep  # [..., 1]
        return embedded * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
