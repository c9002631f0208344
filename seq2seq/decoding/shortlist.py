"""A vocabulary shortlist: the target pieces a batch of sources can plausibly produce, so that the output layer
scores only those (Marian's lexical shortlist, CTranslate2's vocabulary map, Sockeye's lexicon).

It is learned once from the prepared training arrays with IBM Model 1 (Brown et al. 1993, §4): EM estimates of
the lexical translation probabilities t(f | e) of target piece f given source piece e. Each source piece keeps
its ``candidates`` most probable target pieces; every sentence also gets the ``frequent`` most frequent target
pieces (function words, punctuation: what any sentence may need) and the special ids. A decoding step scores
the union of its sentences' lists and normalises the softmax over it. With a vocabulary of 32k pieces a batch
needs a few thousand: the output layer, which dominates decoding at that size, shrinks by as much.

The scores of a shortlisted search differ from a full one (the softmax runs over fewer pieces), so training
uses the shortlist only where valid BLEU with it stays within :data:`BLEU_TOLERANCE` of without
(``seq2seq.training.finish``). The union always begins with the special ids 0..3 in order, so a search policy that
picks position i of the union picks piece i for every special piece (EOS included).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from seq2seq.common.atomic import atomic_file
from seq2seq.common.model_dir import ModelDir
from seq2seq.data.arrays import TokenArray
from seq2seq.errors import UserError
from seq2seq.special_ids import EOS_ID

log = logging.getLogger(__name__)

FORMAT = 1
CANDIDATES = 50  # target pieces per source piece (Marian's examples use 50-100)
FREQUENT = 200  # most frequent target pieces in every list
ITERATIONS = 5  # of EM: IBM Model 1's likelihood has one optimum, and a handful of iterations get near it
MAX_PAIRS = 500_000  # training pairs the table is learned from, evenly spread over a larger corpus
BLEU_TOLERANCE = 0.1  # valid BLEU a shortlist may cost and still be used
MAX_SHARE = 0.5  # and the most of the target vocabulary a batch may score with it, for it to pay
SPECIALS = EOS_ID + 1  # ids 0..EOS_ID: PAD, UNK, BOS, EOS
READ_PAIRS = 4096  # pairs read from the arrays at a time
GRID_ENTRIES = 1 << 19  # (source, target) piece combinations per vectorised E-step: its arrays take ~40 MB


@dataclass
class Shortlist:
    """Per source piece its candidate target pieces, and the pieces every sentence gets."""

    candidates: Tensor  # [V_src, C] long, each row's most probable target pieces first; -1 where fewer exist
    always: Tensor  # [F'] long, sorted: the special ids and the most frequent target pieces
    trg_vocab_size: int

    def pieces(self, src: list[int]) -> Tensor:
        """The sorted target pieces a sentence of source pieces ``src`` may produce: [U] long."""
        ids = self.candidates[torch.as_tensor(src, dtype=torch.long)].view(-1)  # [S * C]
        return torch.cat([self.always, ids[ids >= 0]]).unique()  # sorted

    def save(self, path: Path) -> None:
        with atomic_file(path) as handle:
            torch.save({"format": FORMAT, "candidates": self.candidates.to(torch.int32), "always": self.always,
                        "trg_vocab_size": self.trg_vocab_size}, handle)

    @classmethod
    def load(cls, path: Path, *, src_vocab_size: int, trg_vocab_size: int) -> Shortlist:
        """Read ``path``; a UserError naming it when it is not a shortlist of these vocabularies."""
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            candidates, always = saved["candidates"].long(), saved["always"].long()
            fits = (saved["format"] == FORMAT and saved["trg_vocab_size"] == trg_vocab_size
                    and candidates.size(0) == src_vocab_size and int(candidates.max()) < trg_vocab_size)
        except Exception as error:  # a torn or foreign file: say which and what to do, never a traceback
            raise UserError(f"{path} is not a readable vocabulary shortlist ({type(error).__name__}: {error}); "
                            f"rebuild it with `seq2seq shortlist {path.parent}`.") from None
        if not fits:
            raise UserError(f"{path} does not fit this model's vocabularies (source {src_vocab_size}, target "
                            f"{trg_vocab_size} pieces); rebuild it with `seq2seq shortlist {path.parent}`.")
        return cls(candidates, always, trg_vocab_size)


def build_shortlist(src: TokenArray, trg: TokenArray, *, src_vocab_size: int, trg_vocab_size: int,
                    candidates: int = CANDIDATES, frequent: int = FREQUENT, iterations: int = ITERATIONS,
                    max_pairs: int = MAX_PAIRS) -> Shortlist:
    """Learn IBM Model 1 on (up to ``max_pairs`` of) the training arrays and keep each source piece's
    ``candidates`` most probable target pieces, plus the ``frequent`` most frequent target pieces."""
    chosen = np.unique(np.linspace(0, len(src) - 1, num=min(max_pairs, len(src))).astype(np.int64))
    table = ibm1(src, trg, chosen, null=src_vocab_size, trg_vocab_size=trg_vocab_size, iterations=iterations)
    counts = np.zeros(trg_vocab_size, dtype=np.int64)
    for _, _, trg_ids, _ in _chunks(src, trg, chosen):
        counts += np.bincount(trg_ids, minlength=trg_vocab_size)
    top = np.argsort(-counts, kind="stable")[:frequent]
    always = np.union1d(np.arange(SPECIALS), top[counts[top] > 0])
    return Shortlist(_top_candidates(table, always, src_vocab_size, trg_vocab_size, candidates),
                     torch.from_numpy(always), trg_vocab_size)


@dataclass
class LexicalTable:
    """t(f | e) for the (e, f) pairs that co-occur in some training pair, keyed ``e * V_trg + f`` (sorted)."""

    keys: np.ndarray  # [P] int64
    probs: np.ndarray  # [P] float64


def ibm1(src: TokenArray, trg: TokenArray, chosen: np.ndarray, *, null: int, trg_vocab_size: int,
         iterations: int) -> LexicalTable:
    """EM for IBM Model 1 over the pairs ``chosen``: each target piece aligns to one source piece of its sentence
    or to the empty word (source id ``null``), with probability proportional to t(f | e); the expected counts of
    each (e, f) re-estimate t. The empty word takes the pieces no source piece explains (articles, punctuation),
    which would otherwise crowd every source piece's candidates.

    Memory is the table (a few arrays of one number per co-occurring pair) and one chunk's grid: it does not grow
    with the number of pairs beyond the table's own growth."""
    grids = functools.partial(_grids, src, trg, chosen, null=null, trg_vocab_size=trg_vocab_size)
    keys = _distinct_keys(grid_keys for grid_keys, _ in grids())
    probs = np.ones(len(keys))  # uniform: the first E-step splits each target piece evenly over its sources
    for _ in range(iterations):
        expected = np.zeros(len(keys))
        for pair_keys, target_position in grids():
            index = np.searchsorted(keys, pair_keys)
            t = probs[index]
            posterior = t / np.bincount(target_position, weights=t)[target_position]
            expected += np.bincount(index, weights=posterior, minlength=len(keys))
        source_of_key = keys // trg_vocab_size
        probs = expected / np.bincount(source_of_key, weights=expected)[source_of_key]
    return LexicalTable(keys, probs)


def _distinct_keys(chunks: Iterator[np.ndarray]) -> np.ndarray:
    """The sorted distinct keys of all ``chunks``, merged as they come: the chunks' own distinct keys wait until
    they outnumber the merged ones, so the memory held stays within a few times the result (collecting every
    chunk's keys first held the same key once per chunk it occurs in: hundreds of MB over 500k pairs)."""
    merged = np.empty(0, dtype=np.int64)
    waiting: list[np.ndarray] = []
    waiting_size = 0
    for keys in chunks:
        waiting.append(np.unique(keys))
        waiting_size += len(waiting[-1])
        if waiting_size > max(len(merged), GRID_ENTRIES):
            merged, waiting, waiting_size = np.unique(np.concatenate([merged, *waiting])), [], 0
    return np.unique(np.concatenate([merged, *waiting]))


def _chunks(src: TokenArray, trg: TokenArray, chosen: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """The chosen training pairs, :data:`READ_PAIRS` at a time: source ids end to end and each sentence's
    length, the same for the target (int64)."""
    for start in range(0, len(chosen), READ_PAIRS):
        indices = chosen[start:start + READ_PAIRS]
        (src_ids, src_lengths), (trg_ids, trg_lengths) = src.take_flat(indices), trg.take_flat(indices)
        yield src_ids.astype(np.int64), src_lengths, trg_ids.astype(np.int64), trg_lengths


def _grids(src: TokenArray, trg: TokenArray, chosen: np.ndarray, *, null: int,
           trg_vocab_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per group of pairs, every (source piece or the empty word ``null``, target piece) combination of each
    pair: its key ``e * V_trg + f`` [G] and the number of the target position it belongs to in the group [G].
    A group ends once it holds :data:`GRID_ENTRIES` combinations, so its arrays take the same memory whatever
    the sentences' lengths."""
    for src_ids, src_lengths, trg_ids, trg_lengths in _chunks(src, trg, chosen):
        src_ids = np.insert(src_ids, np.cumsum(src_lengths), null)  # the empty word ends each source sentence
        src_lengths = src_lengths + 1
        entries = np.cumsum(src_lengths * trg_lengths)
        ends = np.unique(np.append(np.searchsorted(entries, np.arange(GRID_ENTRIES, entries[-1], GRID_ENTRIES)),
                                   len(entries) - 1)) + 1  # each group's last pair + 1
        src_starts, trg_starts = np.cumsum(src_lengths) - src_lengths, np.cumsum(trg_lengths) - trg_lengths
        for first, end in zip(np.append(0, ends[:-1]), ends):
            group = slice(first, end)
            yield _grid(src_ids, src_starts[group], src_lengths[group], trg_ids, trg_starts[group],
                        trg_lengths[group], trg_vocab_size)


def _grid(src_ids: np.ndarray, src_starts: np.ndarray, src_lengths: np.ndarray, trg_ids: np.ndarray,
          trg_starts: np.ndarray, trg_lengths: np.ndarray, trg_vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys and target positions of a group of pairs (starts and lengths [P] into ``src_ids``/``trg_ids``),
    each pair's source-major: the key of source position i and target position j at i * T + j."""
    sizes = src_lengths * trg_lengths  # [P]
    pair = np.repeat(np.arange(len(sizes)), sizes)  # [G] the pair of each entry
    within = np.arange(len(pair)) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # [G] its index in the pair
    i, j = np.divmod(within, trg_lengths[pair])
    target_position = (trg_starts - trg_starts[0])[pair] + j  # numbered from the group's first target
    keys = src_ids[src_starts[pair] + i] * trg_vocab_size + trg_ids[trg_starts[pair] + j]
    return keys, target_position


def _top_candidates(table: LexicalTable, always: np.ndarray, src_vocab_size: int, trg_vocab_size: int,
                    candidates: int) -> Tensor:
    """[V_src, C]: each source piece's ``candidates`` most probable target pieces outside ``always`` (which every
    list has anyway), -1 where it has fewer."""
    sources, targets = table.keys // trg_vocab_size, table.keys % trg_vocab_size
    real = (sources < src_vocab_size) & ~np.isin(targets, always)  # the empty word is not a source piece
    sources, targets, probs = sources[real], targets[real], table.probs[real]
    order = np.lexsort((-probs, sources))  # by source piece, then most probable first
    sources, targets = sources[order], targets[order]
    group_start = np.searchsorted(sources, sources)  # where each entry's source piece begins
    rank = np.arange(len(sources)) - group_start
    keep = rank < candidates
    out = np.full((src_vocab_size, candidates), -1, dtype=np.int64)
    out[sources[keep], rank[keep]] = targets[keep]
    return torch.from_numpy(out)


def union_share(shortlist: Shortlist, sources: list[list[int]], batch_size: int) -> float:
    """The mean share of the target vocabulary that batches of ``batch_size`` consecutive sources score."""
    shares = []
    for start in range(0, len(sources), batch_size):
        union = torch.cat([shortlist.pieces(src) for src in sources[start:start + batch_size]]).unique()
        shares.append(len(union) / shortlist.trg_vocab_size)
    return sum(shares) / max(len(shares), 1)


def worth_using(bleu: float, shortlist_bleu: float, share: float) -> bool:
    """Whether decoding should use a shortlist that scored ``shortlist_bleu`` where the full vocabulary scored
    ``bleu``, with batches scoring ``share`` of the target pieces: it costs at most :data:`BLEU_TOLERANCE` and
    leaves out at least half of the output layer's work."""
    return shortlist_bleu >= bleu - BLEU_TOLERANCE and share <= MAX_SHARE


def load_shortlist(model_dir: Path, *, src_vocab_size: int, trg_vocab_size: int) -> Shortlist:
    """The shortlist of ``model_dir``; a UserError when it has none (``seq2seq shortlist`` builds one)."""
    path = ModelDir(model_dir).shortlist
    if not path.is_file():
        raise UserError(f"{model_dir} has no vocabulary shortlist ({path.name}); build one with "
                        f"`seq2seq shortlist {model_dir}`.")
    return Shortlist.load(path, src_vocab_size=src_vocab_size, trg_vocab_size=trg_vocab_size)


class ShortlistUnion:
    """The union of the shortlists of the sentences decoding together, kept as a count per target piece, so that
    sentences join and leave in O(their list) and the union is read once per change."""

    def __init__(self, shortlist: Shortlist, device: torch.device):
        self.shortlist = shortlist
        self._counts = torch.zeros(shortlist.trg_vocab_size, dtype=torch.int32, device=device)  # [V]
        self._counts[shortlist.always.to(device)] = 1  # in every union, whoever decodes
        self._pieces: Tensor | None = None

    def add(self, src: list[int]) -> Tensor:
        """Count in a sentence of source pieces ``src``; returns its list [U_s] for :meth:`remove`."""
        pieces = self.shortlist.pieces(src).to(self._counts.device)
        self._counts.index_add_(0, pieces, torch.ones_like(pieces, dtype=torch.int32))
        self._pieces = None
        return pieces

    def remove(self, pieces: Tensor) -> None:
        self._counts.index_add_(0, pieces, torch.full_like(pieces, -1, dtype=torch.int32))
        self._pieces = None

    def pieces(self) -> Tensor:
        """The sorted union [U] long: it begins with the special ids 0..3 (each in every list)."""
        if self._pieces is None:
            self._pieces = self._counts.nonzero().view(-1)
        return self._pieces
