"""Word alignments read off the attention weights, in Pharaoh format (``0-0 1-2 ...``).

Attention is over subword pieces; a word is a run of pieces whose first piece starts with ``▁``. The
weight between two words is the sum of the weights between their pieces, and each output word is aligned
to the source word it attends to most (the end-of-sentence column is ignored).
"""

from __future__ import annotations

import torch
from torch import Tensor

WORD_START = "\u2581"  # sentencepiece's word-boundary mark


def word_ids(pieces: list[str]) -> list[int]:
    """The word index of each piece: ``["▁Der", "▁Ha", "us"]`` → ``[0, 1, 1]``."""
    ids, current = [], -1
    for i, piece in enumerate(pieces):
        if piece.startswith(WORD_START) or i == 0:
            current += 1
        ids.append(current)
    return ids


def align_words(weights: Tensor, src_pieces: list[str], trg_pieces: list[str]) -> list[tuple[int, int]]:
    """(source word, output word) pairs from attention weights [T, S] (rows and columns may include EOS)."""
    if not src_pieces or not trg_pieces:
        return []
    src_words, trg_words = word_ids(src_pieces), word_ids(trg_pieces)
    pieces = weights[: len(trg_pieces), : len(src_pieces)].float()  # [T', S'] without EOS row/column
    to_src = torch.zeros(len(src_pieces), src_words[-1] + 1)
    to_src[torch.arange(len(src_pieces)), torch.tensor(src_words)] = 1.0  # [S', source words]
    to_trg = torch.zeros(trg_words[-1] + 1, len(trg_pieces))
    to_trg[torch.tensor(trg_words), torch.arange(len(trg_pieces))] = 1.0  # [output words, T']
    word_weights = to_trg @ pieces @ to_src  # [output words, source words]
    best = word_weights.argmax(dim=1)
    return [(int(s), t) for t, s in enumerate(best)]


def pharaoh(pairs: list[tuple[int, int]]) -> str:
    return " ".join(f"{s}-{t}" for s, t in pairs)
