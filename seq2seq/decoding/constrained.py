"""Lexically constrained search: Dynamic Beam Allocation (Post & Vilar 2018), batched and vectorized as Hu et al.
(2019) do, with phrases to avoid (negative constraints, as in Sockeye).

Legend: N sentences, K rows (beams) per sentence, V target pieces, P include phrases (the most of any sentence),
L pieces of the longest, Q avoid phrases, W pieces of the longest avoid phrase less one, M = K + P candidates per
row, G a sentence's include pieces (its goal), B = G + 1 banks.

Each row remembers which include phrases it has produced and how far it is into the one it is producing. Every step,
each row proposes its K most probable next pieces (as in beam search) and the pieces that would advance its
constraints (the next piece of the phrase in progress, or the first piece of each phrase not yet met). A candidate's
bank is how many include pieces it has met (0..G). The K rows kept are taken stripe by stripe: the best candidate of
every bank (highest bank first), then the second best of every bank, ... (Hu et al.'s "stripe" allocation), so each
bank gets its share of the beam and the share of an empty bank goes to the others. The highest bank's best candidate
always advances, so some row has met every constraint after G steps. A row may produce EOS only once it has met all
of its constraints; sentences get G more steps to make room. Sentences without constraints take the inner search's
own choice, so they decode exactly as without this policy, even beside constrained ones.

Avoided phrases are banned where they would complete: a piece gets probability 0 in a row whose last pieces are the
phrase without its last piece.

Phrase tracking is Post & Vilar's: a piece that breaks off the phrase in progress abandons it, and a phrase that
overlaps itself (a a b in a a a b) is not recognised on the way and is produced again. A phrase is its pieces as
the target model segments it on its own (a word start); given the vocabulary's word-continuing pieces, the piece
after a phrase must not go on with its last word, so "Ball" is not met by "Ballon" (▁Ball on). An avoided word
spelled with other pieces escapes the ban, and one that starts a longer word bans that word too.

Fallback: with fewer beams than banks (K < G + 1), the higher banks take the beam and the constraints are placed
early. A row that reaches the length limit finishes with what it has; a sentence returns its rows that met every
constraint first (best first), then the others, so a translation misses a constraint only when the limit cut every
row short or an avoided phrase made a constraint impossible.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from seq2seq.data.tokenizer import Tokenizer
from seq2seq.decoding.search import Beam, Greedy, length_penalty
from seq2seq.decoding.search_types import BeamState, Choice, SearchOptions, Sentence, SentenceRequest, TokenConstraints
from seq2seq.special_ids import EOS_ID

NOTHING = -1  # no piece, no phrase
BEFORE_START = -2  # a row's history before its first piece

# How :meth:`ConstraintRows.cat` pads each tensor to the larger P, L, Q and W: (pad value, dims padded on the right,
# dims padded on the left).
_PADDING: dict[str, tuple[int | bool, tuple[int, ...], tuple[int, ...]]] = {
    "include": (NOTHING, (1, 2), ()), "include_lengths": (0, (1,), ()), "avoid_prefix": (NOTHING, (1,), (2,)),
    "avoid_last": (NOTHING, (1,), ()), "met": (False, (2,), ()), "current": (NOTHING, (), ()),
    "progress": (0, (), ()), "recent": (BEFORE_START, (), (2,)), "ended": (False, (), ())}


@dataclass(frozen=True, eq=False)
class ConstraintRows:
    """Each sentence's phrases and each row's progress through them (the engine moves them with the slots)."""

    include: Tensor  # [N, P, L] each phrase's pieces, NOTHING after its end and for missing phrases
    include_lengths: Tensor  # [N, P] (0 for a missing phrase)
    avoid_prefix: Tensor  # [N, Q, W] each avoided phrase less its last piece, right-aligned
    avoid_last: Tensor  # [N, Q] its last piece, NOTHING for a missing phrase
    met: Tensor  # [N, K, P] bool: the row has produced the phrase
    current: Tensor  # [N, K] the phrase the row is in the middle of, NOTHING for none
    progress: Tensor  # [N, K] how many of its pieces the row has produced
    recent: Tensor  # [N, K, W] the row's last W pieces, right-aligned, BEFORE_START before its first
    ended: Tensor  # [N, K] bool: the row's last piece completed a phrase (the next must not go on its word)
    active: bool  # whether any sentence is constrained: read on the host once per change of sentences (made())

    @classmethod
    def made(cls, **tensors: Tensor) -> ConstraintRows:
        """Rows of the named tensors (every field but ``active``, which this reads off the phrases)."""
        active = bool((tensors["include_lengths"] > 0).any() or (tensors["avoid_last"] != NOTHING).any())
        return cls(**tensors, active=active)

    def tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in _PADDING}

    def free(self) -> Tensor:
        """[N] bool: the sentence has no constraints."""
        return (self.include_lengths == 0).all(-1) & (self.avoid_last == NOTHING).all(-1)

    def take(self, order: Tensor) -> ConstraintRows:
        """The sentences at ``order`` [N'], without the padding only sentences that left needed."""
        return ConstraintRows.made(**{name: tensor[order] for name, tensor in self.tensors().items()}).trimmed()

    def trimmed(self) -> ConstraintRows:
        """These rows with P, L, Q and W cut to what their sentences need (phrases are packed from the first)."""
        if self.include.size(0) == 0:
            phrases = longest = avoids = width = 0
        else:
            phrases = int((self.include_lengths > 0).sum(1).max())
            longest = int(self.include_lengths.max()) if phrases else 0
            avoids = int((self.avoid_last != NOTHING).sum(1).max())
            width = int((self.avoid_prefix != NOTHING).sum(-1).max()) if avoids else 0
        longest, cut = max(longest, 1), self.recent.size(-1) - width  # L ≥ 1: the first pieces are read
        return dataclasses.replace(self, include=self.include[:, :phrases, :longest],
                                   include_lengths=self.include_lengths[:, :phrases],
                                   avoid_prefix=self.avoid_prefix[:, :avoids, cut:],
                                   avoid_last=self.avoid_last[:, :avoids], met=self.met[:, :, :phrases],
                                   recent=self.recent[:, :, cut:])

    def cat(self, other: ConstraintRows) -> ConstraintRows:
        """Both sets of sentences, padded to the larger P, L, Q and W."""
        joined = {}
        for name, (value, right, left) in _PADDING.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            shape = [max(a, b) for a, b in zip(mine.shape[1:], theirs.shape[1:])]
            joined[name] = torch.cat([_pad(mine, shape, value, right, left), _pad(theirs, shape, value, right, left)])
        return ConstraintRows(**joined, active=self.active or other.active)

    @classmethod
    def of(cls, constraints: list[TokenConstraints | None], beams: int, device: torch.device) -> ConstraintRows:
        """The rows of new sentences with these constraints (None: unconstrained)."""
        include = [c.include if c is not None else [] for c in constraints]
        avoid = [c.avoid if c is not None else [] for c in constraints]
        count = len(constraints)
        phrases, longest = max(map(len, include), default=0), max((len(p) for ps in include for p in ps), default=1)
        avoids, width = max(map(len, avoid), default=0), max((len(p) - 1 for ps in avoid for p in ps), default=0)
        table = torch.full((count, phrases, longest), NOTHING, dtype=torch.long)
        lengths = torch.zeros(count, phrases, dtype=torch.long)
        prefix = torch.full((count, avoids, width), NOTHING, dtype=torch.long)
        last = torch.full((count, avoids), NOTHING, dtype=torch.long)
        for n, (kept, banned) in enumerate(zip(include, avoid)):
            for p, ids in enumerate(kept):
                table[n, p, :len(ids)] = torch.tensor(ids)
                lengths[n, p] = len(ids)
            for q, ids in enumerate(banned):
                last[n, q] = ids[-1]
                if len(ids) > 1:
                    prefix[n, q, width - len(ids) + 1:] = torch.tensor(ids[:-1])
        return cls.made(include=table.to(device), include_lengths=lengths.to(device), avoid_prefix=prefix.to(device),
                        avoid_last=last.to(device),
                        met=torch.zeros(count, beams, phrases, dtype=torch.bool, device=device),
                        current=torch.full((count, beams), NOTHING, dtype=torch.long, device=device),
                        progress=torch.zeros(count, beams, dtype=torch.long, device=device),
                        recent=torch.full((count, beams, width), BEFORE_START, dtype=torch.long, device=device),
                        ended=torch.zeros(count, beams, dtype=torch.bool, device=device))


def _pad(tensor: Tensor, shape: list[int], value: int | bool, right: tuple[int, ...], left: tuple[int, ...]) -> Tensor:
    """``tensor`` [N, ...] grown to [N, *shape] with ``value``: after its entries in the ``right`` dims, before them
    in the ``left`` dims."""
    if list(tensor.shape[1:]) == shape:
        return tensor
    out = torch.full((tensor.size(0), *shape), value, dtype=tensor.dtype, device=tensor.device)
    index = [slice(None)] + [slice(shape[d - 1] - tensor.size(d), None) if d in left else slice(0, tensor.size(d))
                             for d in range(1, tensor.dim())]
    out[tuple(index)] = tensor
    return out


class Constrained:
    """Greedy or beam search that honours each sentence's constraints (see the module docstring). Sentences without
    constraints decode exactly as ``inner`` decodes them: they take its choice, step by step."""

    def __init__(self, inner: Greedy | Beam, word_continuations: Tensor | None = None):
        """``word_continuations`` [V] bool marks the target pieces that go on with the word before them (not a word
        start, not punctuation): a phrase must not be followed by one, so that it is met as whole words."""
        self.inner = inner
        self.beams = inner.beams
        self.alpha = inner.alpha if isinstance(inner, Beam) else 0.0
        self.word_continuations = word_continuations

    def prepare(self, request: SentenceRequest) -> TokenConstraints | None:
        """A sentence's input is its constraints (None: it decodes as ``inner`` decodes it)."""
        return request.constraints

    def start(self, sentences: list[Sentence], device: torch.device) -> BeamState:
        rows = ConstraintRows.of([s.policy_input for s in sentences], self.beams, device)
        return self.inner.start(sentences, device)._replace(rows=rows)

    def full_vocabulary(self, state: BeamState) -> bool:
        """Constraints name target pieces, which a shortlist's union may lack: a step that decodes a constrained
        sentence scores every piece, for all its sentences."""
        assert isinstance(state.rows, ConstraintRows)
        return state.rows.active

    def choose(self, log_probs: Tensor, state: BeamState, at_limit: Tensor) -> Choice:
        """The inner search's choice for unconstrained sentences, Dynamic Beam Allocation's for the others."""
        rows = state.rows
        assert isinstance(rows, ConstraintRows)
        plain = self.inner.choose(log_probs, state._replace(rows=None), at_limit)
        if not rows.active:
            return plain._replace(state=plain.state._replace(rows=rows))
        constrained = self._allocate(log_probs, state, rows, at_limit)
        free = rows.free().unsqueeze(1)  # [N, 1]
        ours, theirs = plain.state, constrained.state
        standing = BeamState(torch.where(free, ours.scores, theirs.scores),
                             torch.where(free, ours.lengths, theirs.lengths),
                             torch.where(free, ours.finished, theirs.finished), theirs.rows)
        return Choice(torch.where(free, plain.tokens, constrained.tokens),
                      torch.where(free, plain.parents, constrained.parents), standing)

    def _allocate(self, log_probs: Tensor, state: BeamState, rows: ConstraintRows, at_limit: Tensor) -> Choice:
        """Dynamic Beam Allocation over every sentence of the batch (log_probs [N, K, V])."""
        count, beams, _ = log_probs.shape
        met_pieces = (rows.met * rows.include_lengths.unsqueeze(1)).sum(-1)  # [N, K] pieces of the phrases met
        total = rows.include_lengths.sum(-1, keepdim=True)  # [N, 1] G
        log_probs = _ban(log_probs.clone(), rows)
        if self.word_continuations is not None:  # a phrase just completed ends its word
            continuations = self.word_continuations.to(log_probs.device)
            log_probs.masked_fill_(rows.ended.unsqueeze(-1) & continuations, float("-inf"))
        log_probs[..., EOS_ID].masked_fill_(met_pieces < total, float("-inf"))  # no end before every constraint
        tokens, token_log_probs = _candidates(log_probs, rows)  # [N, K, M] each
        scores = state.scores.unsqueeze(-1) + token_log_probs  # [N, K, M]
        ranking = scores / length_penalty(state.grown_lengths(), self.alpha).unsqueeze(-1)
        current, progress, completed = _advance(tokens, rows)  # [N, K, M] each
        banks = met_pieces.unsqueeze(-1) + progress + _pieces(completed, rows)  # [N, K, M] pieces met
        chosen = _stripes(ranking.view(count, -1), banks.view(count, -1), total, beams)  # [N, K] best first
        parents = chosen // tokens.size(-1)
        tokens, current, progress, completed = (t.view(count, -1).gather(1, chosen)
                                                for t in (tokens, current, progress, completed))
        choice = state.advance(tokens, parents, scores.view(count, -1).gather(1, chosen), at_limit)
        moved = _next_rows(rows, parents, choice.tokens, current, progress, completed)
        return choice._replace(state=choice.state._replace(rows=moved))


def constrained_search(options: SearchOptions, trg_tok: Tokenizer | None) -> Constrained:
    """The registry's beam search: greedy search for beam size 1, beam search with the options' length penalty
    otherwise, each honouring the constraints a sentence comes with (and exactly itself for one without; with
    ``trg_tok``, constraints are met as whole words)."""
    inner = Greedy() if options.beam_size == 1 else Beam(options.beam_size, alpha=options.length_penalty)
    return Constrained(inner, word_continuations(trg_tok) if trg_tok is not None else None)


@functools.lru_cache(maxsize=8)  # once per tokenizer, not at every stream (validation opens one each time)
def word_continuations(trg_tok: Tokenizer) -> Tensor:
    """[V] bool: the target pieces that go on with the word before them (no word start, a letter or digit first)."""
    pieces = trg_tok.id_to_piece(range(trg_tok.vocab_size))
    special = {trg_tok.processor.piece_to_id(p) for p in ("<unk>", "<s>", "</s>", "<pad>")}
    return torch.tensor([i not in special and not p.startswith("\u2581") and p[:1].isalnum()
                         for i, p in enumerate(pieces)])


def _ban(log_probs: Tensor, rows: ConstraintRows) -> Tensor:
    """log_probs [N, K, V] with -inf for each piece that would complete an avoided phrase in its row."""
    if rows.avoid_last.size(1) == 0:
        return log_probs
    count, beams, _ = log_probs.shape
    follows = ((rows.recent.unsqueeze(2) == rows.avoid_prefix.unsqueeze(1))
               | (rows.avoid_prefix == NOTHING).unsqueeze(1)).all(-1)  # [N, K, Q]: the row ends with the prefix
    follows &= (rows.avoid_last != NOTHING).unsqueeze(1)
    index = rows.avoid_last.clamp(min=0).unsqueeze(1).expand(count, beams, -1)  # [N, K, Q]
    banned = log_probs.gather(2, index).masked_fill(follows, float("-inf"))
    return log_probs.scatter_reduce_(2, index, banned, reduce="amin")  # a piece two phrases name: -inf if either


def _candidates(log_probs: Tensor, rows: ConstraintRows) -> tuple[Tensor, Tensor]:
    """Each row's candidates: its K most probable pieces, then the pieces that advance its constraints (those
    not among the first K). Returns pieces and their log-probabilities [N, K, M] (-inf: no candidate); a finished
    row's only candidate is PAD at no cost (the engine closed the row)."""
    beams = log_probs.size(1)
    top_log_probs, top_tokens = log_probs.topk(beams, dim=-1)  # [N, K, K]
    advancing = _advancing(rows)  # [N, K, P]
    repeated = (advancing.unsqueeze(-1) == top_tokens.unsqueeze(-2)).any(-1)  # [N, K, P]
    repeated |= torch.tril(advancing.unsqueeze(-1) == advancing.unsqueeze(-2), diagonal=-1).any(-1)
    keep = (advancing != NOTHING) & ~repeated
    advancing = advancing.clamp(min=0)
    advancing_log_probs = log_probs.gather(2, advancing).masked_fill(~keep, float("-inf"))
    return torch.cat([top_tokens, advancing], dim=-1), torch.cat([top_log_probs, advancing_log_probs], dim=-1)


def _advancing(rows: ConstraintRows) -> Tensor:
    """[N, K, P]: the pieces that advance each row's constraints: the next piece of the phrase in progress, else
    the first piece of each phrase not met; NOTHING elsewhere."""
    count, beams, phrases = rows.met.shape
    firsts = rows.include[:, :, 0].unsqueeze(1).expand(count, beams, phrases)  # [N, K, P]
    advancing = firsts.masked_fill(rows.met, NOTHING)
    busy = rows.current != NOTHING  # [N, K]
    if phrases > 0:
        advancing = advancing.masked_fill(busy.unsqueeze(-1), NOTHING)
        advancing[..., 0] = torch.where(busy, _next_piece(rows), advancing[..., 0])
    return advancing


def _next_piece(rows: ConstraintRows) -> Tensor:
    """[N, K]: the next piece of each row's phrase in progress (meaningless for rows with none)."""
    count, beams = rows.current.shape
    phrase = rows.include.gather(1, rows.current.clamp(min=0).unsqueeze(-1).expand(count, beams,
                                                                                   rows.include.size(-1)))
    return phrase.gather(2, rows.progress.unsqueeze(-1)).squeeze(-1)  # [N, K]


def _advance(tokens: Tensor, rows: ConstraintRows) -> tuple[Tensor, Tensor, Tensor]:
    """Each candidate's progress after its piece [N, K, M]: the phrase in progress (NOTHING for none), the pieces of
    it produced, and the phrase the piece completes (NOTHING for none).

    A piece that continues the phrase in progress advances it; any other piece abandons it (its pieces no longer
    count), and may start the first phrase not met that begins with it.
    """
    count, beams, phrases = rows.met.shape
    if phrases == 0:
        nothing = torch.full_like(tokens, NOTHING)
        return nothing, torch.zeros_like(tokens), nothing
    continues = (rows.current != NOTHING).unsqueeze(-1) & (tokens == _next_piece(rows).unsqueeze(-1))
    starts = ((tokens.unsqueeze(-1) == rows.include[:, :, 0].view(count, 1, 1, phrases))
              & ~rows.met.unsqueeze(2) & (rows.include_lengths > 0).view(count, 1, 1, phrases))  # [N, K, M, P]
    started = starts.any(-1)
    phrase = torch.where(continues, rows.current.unsqueeze(-1),
                         torch.where(started, starts.long().argmax(-1), NOTHING))  # argmax: the first such phrase
    progress = torch.where(continues, rows.progress.unsqueeze(-1) + 1, started.long())
    completes = (phrase != NOTHING) & (progress == _pieces(phrase, rows))
    return (phrase.masked_fill(completes, NOTHING), progress.masked_fill(completes, 0),
            phrase.masked_fill(~completes, NOTHING))


def _pieces(phrase: Tensor, rows: ConstraintRows) -> Tensor:
    """The length of each candidate's ``phrase`` [N, K, M] (0 for NOTHING)."""
    if rows.include_lengths.size(1) == 0:
        return torch.zeros_like(phrase)
    lengths = rows.include_lengths.gather(1, phrase.clamp(min=0).view(phrase.size(0), -1)).view_as(phrase)
    return lengths.masked_fill(phrase == NOTHING, 0)


def _stripes(ranking: Tensor, banks: Tensor, total: Tensor, beams: int) -> Tensor:
    """The K candidates kept of each sentence (ranking, banks [N, K * M]): stripe by stripe, the r-th best of every
    bank, higher banks first; returned best first, rows that met every constraint before the others [N, K]."""
    top_bank = int(total.max())
    order = ranking.argsort(dim=-1, descending=True, stable=True)  # [N, K * M]
    sorted_banks, valid = banks.gather(1, order), ranking.gather(1, order) > float("-inf")
    member = F.one_hot(sorted_banks, top_bank + 1) & valid.unsqueeze(-1)  # [N, K * M, B]
    rank_in_bank = (member.cumsum(1) - 1).gather(2, sorted_banks.unsqueeze(-1)).squeeze(-1)  # [N, K * M]
    key = rank_in_bank * (top_bank + 1) + (top_bank - sorted_banks)
    key = key.masked_fill(~valid, torch.iinfo(torch.long).max)
    picked = order.gather(1, key.topk(beams, dim=-1, largest=False).indices)  # [N, K]
    by_rank = ranking.gather(1, picked).argsort(dim=-1, descending=True, stable=True)
    picked = picked.gather(1, by_rank)
    complete = (banks.gather(1, picked) == total) & (ranking.gather(1, picked) > float("-inf"))
    return picked.gather(1, complete.long().argsort(dim=-1, descending=True, stable=True))


def _next_rows(rows: ConstraintRows, parents: Tensor, tokens: Tensor, current: Tensor, progress: Tensor,
               completed: Tensor) -> ConstraintRows:
    """The rows' progress after the step: each continues its parent [N, K] with its piece."""
    count, beams, phrases = rows.met.shape
    met = rows.met.gather(1, parents.unsqueeze(-1).expand(count, beams, phrases))
    if phrases > 0:
        met = met | (F.one_hot(completed.clamp(min=0), phrases).bool() & (completed != NOTHING).unsqueeze(-1))
    recent = rows.recent.gather(1, parents.unsqueeze(-1).expand_as(rows.recent))
    if recent.size(-1) > 0:
        recent = torch.cat([recent[..., 1:], tokens.unsqueeze(-1)], dim=-1)
    return dataclasses.replace(rows, met=met, current=current, progress=progress, recent=recent,
                               ended=completed != NOTHING)
