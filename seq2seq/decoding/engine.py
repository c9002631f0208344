"""The decoding engine: continuous (in-flight) batching of one search policy over one model step.

Legend: N sentences in the engine, K rows (beams) per sentence, R = N * K rows, S source positions, T steps,
V target vocabulary.

Every search is the same loop: run the model one step for all rows (``search_step`` of a
:class:`~seq2seq.model.network.Seq2Seq` or an :class:`~seq2seq.decoding.ensemble.Ensemble`), choose the next
token of each row from the step's log-probabilities, and stop a sentence once all its rows have finished. The
engine owns that loop, the rows and the bookkeeping; a :class:`~seq2seq.decoding.search_types.SearchPolicy` (named
in :mod:`seq2seq.decoding.policies`) only chooses. Before it does, the engine closes the finished rows (their only
continuation is PAD, at no cost: :meth:`~seq2seq.decoding.search_types.BeamState.close_finished`), so that no policy
restates that rule. What a sentence brings for its policy alone (constraints, a random stream) travels in
:attr:`~seq2seq.decoding.search_types.Sentence.policy_input`, which the engine never reads.

The engine keeps up to ``max_sentences`` sentences decoding at once. When one finishes, its hypotheses are read
back from the step history and the next waiting sentence takes its place at the next step, so the batch stays
full until the input runs dry instead of running until its longest sentence ends, and a server can add a
request's sentences between any two steps. Sentences occupy the first N slots of preallocated buffers
(attention keys, step history, beam scores); the slot a finished sentence frees is filled by a waiting one or
by the sentence in the last slot, so a step moves only the buffers of the sentences that came and went. Waiting
sentences are encoded in batches of up to ``max_sentences``, ahead of need, where the encoder runs fastest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, Self, TypeVar

import torch
from torch import Tensor

from seq2seq.data.batching import source_tensor
from seq2seq.decoding.history import History
from seq2seq.decoding.search_types import Hypothesis, SearchPolicy, Sentence
from seq2seq.decoding.shortlist import Shortlist, ShortlistUnion
from seq2seq.special_ids import BOS_ID


@dataclass
class DecodingWork:
    """What the engine has computed, for counting FLOPs (scripts/benchmark.py)."""

    steps: int = 0  # model steps
    rows: int = 0  # decoder rows stepped, summed over the steps
    attended: int = 0  # real source positions the stepped rows attended over, summed over rows and steps
    encoded: int = 0  # source positions encoded (EOS included)
    scored: int = 0  # output-layer scores computed: rows x target pieces scored (all V, or a shortlist's union)


class _Slot(NamedTuple):
    sentence: Sentence
    src_length: int  # source positions, EOS included
    pieces: Tensor | None  # [U_s] its shortlist (None without one)


class SearchKeys(Protocol):
    """What the engine asks of attention keys (:class:`~seq2seq.model.attention.AttentionKeys`, or an ensemble's
    :class:`~seq2seq.decoding.ensemble.Members` of them): batch rows first, source positions second."""

    @property
    def width(self) -> int: ...  # source positions
    def select(self, rows: Tensor) -> Self: ...
    def rows(self, start: int, stop: int) -> Self: ...
    def blank(self, rows: int, width: int) -> Self: ...
    def write(self, start: int, source: Self) -> None: ...
    def move(self, to: Tensor, take: Tensor) -> None: ...
    def narrow(self, rows: int, width: int) -> Self: ...
    def widened(self, width: int) -> Self: ...


class SearchState(Protocol):
    """What the engine asks of a decoder state (:class:`~seq2seq.model.decoder.DecoderState`, or Members)."""

    def select(self, rows: Tensor) -> Self: ...
    def repeat(self, k: int) -> Self: ...
    def rows(self, start: int, stop: int) -> Self: ...
    def cat(self, other: Self) -> Self: ...


KeysT = TypeVar("KeysT", bound=SearchKeys)
StateT = TypeVar("StateT", bound=SearchState)


class SearchModel(Protocol[KeysT, StateT]):
    """A model the engine decodes with: a :class:`~seq2seq.model.network.Seq2Seq` (AttentionKeys, DecoderState)
    or an :class:`~seq2seq.decoding.ensemble.Ensemble` (Members, Members)."""

    def search_start(self, src: Tensor, src_lengths: Tensor) -> tuple[KeysT, StateT]: ...
    def search_step(self, prev_tokens: Tensor, state: StateT, keys: KeysT, *, beams: int = 1,
                    vocab: Tensor | None = None) -> tuple[Tensor, StateT, Tensor]: ...


@dataclass
class _Encoded(Generic[KeysT, StateT]):
    """Sentences encoded ahead of need: their keys and initial states, rows in ``sentences`` order."""

    sentences: list[Sentence]
    keys: KeysT  # [M, S_m, ...]
    state: StateT  # M rows


class DecodingEngine(Generic[KeysT, StateT]):
    """Decode sentences with ``policy``, keeping up to ``max_sentences`` of them in every model step.

    With a ``shortlist`` each step scores only the union of its sentences' target shortlists (see
    :mod:`seq2seq.decoding.shortlist`); the policy then sees log-probabilities over that union, and the engine maps its
    choices back to target pieces.
    """

    def __init__(self, model: SearchModel[KeysT, StateT], policy: SearchPolicy, *, device: torch.device,
                 max_sentences: int, shortlist: Shortlist | None = None):
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be ≥ 1, got {max_sentences}")
        self.model, self.policy, self.device = model, policy, device
        self.capacity = max_sentences
        self.work = DecodingWork()
        self._waiting: deque[Sentence] = deque()
        self._encoded: deque[_Encoded[KeysT, StateT]] = deque()
        self._slots: list[_Slot] = []  # the N decoding sentences, in slot order
        self._keys: KeysT | None = None  # slot buffer [capacity, width, ...], made when needed
        self._state: StateT | None = None  # the decoder state of the N * K rows
        self._prev = torch.empty(0, dtype=torch.long, device=device)  # [R] each row's last token
        self._beam = policy.start([], device)  # [N, K] standing of the decoding sentences
        self._history: History | None = None
        self._union = ShortlistUnion(shortlist, device) if shortlist is not None else None

    @property
    def waiting(self) -> int:
        """Sentences added but not yet decoding."""
        return len(self._waiting) + sum(len(group.sentences) for group in self._encoded)

    @property
    def decoding(self) -> int:
        return len(self._slots)

    @property
    def idle(self) -> bool:
        return not self._slots and not self.waiting

    def add(self, sentences: list[Sentence]) -> None:
        """Queue sentences; they start decoding, in order, as slots become free."""
        for sentence in sentences:
            if not 1 <= sentence.n_best <= self.policy.beams or sentence.limit < 1:
                raise ValueError(f"a sentence needs 1 ≤ n_best ≤ {self.policy.beams} and a limit ≥ 1, got "
                                 f"n_best {sentence.n_best} and limit {sentence.limit}")
        self._waiting.extend(sentences)

    def discard(self, unwanted: Callable[[Any], bool]) -> list[Any]:
        """Drop the waiting sentences whose tag is ``unwanted``; returns their tags."""
        dropped = [s.tag for s in self._waiting if unwanted(s.tag)]
        self._waiting = deque(s for s in self._waiting if not unwanted(s.tag))
        for number, group in enumerate(self._encoded):
            kept = [i for i, s in enumerate(group.sentences) if not unwanted(s.tag)]
            if len(kept) < len(group.sentences):
                dropped += [s.tag for s in group.sentences if unwanted(s.tag)]
                index = torch.tensor(kept, dtype=torch.long, device=self.device)
                self._encoded[number] = _Encoded([group.sentences[i] for i in kept], group.keys.select(index),
                                                 group.state.select(index))
        self._encoded = deque(group for group in self._encoded if group.sentences)
        return dropped

    def run(self) -> list[tuple[Any, list[Hypothesis]]]:
        """Decode until every added sentence has finished; (tag, hypotheses) in the order they finished."""
        finished = []
        while not self.idle:
            finished += self.step()
        return finished

    @torch.inference_mode()
    def step(self) -> list[tuple[Any, list[Hypothesis]]]:
        """Let waiting sentences into the free slots, run one model step for all rows, and return the
        sentences that finished with it: (tag, its n-best hypotheses, best first)."""
        self._admit()
        count, beams = len(self._slots), self.policy.beams
        if count == 0:
            return []
        history, keys, state = self._history, self._keys, self._state
        assert history is not None and keys is not None and state is not None  # the first admitted made them
        width = max(slot.src_length for slot in self._slots)
        vocab = self._vocab()
        log_probs, state, alpha = self.model.search_step(self._prev, state, keys.narrow(count, width),
                                                         beams=beams, vocab=vocab)  # [R, V or U], _, [R, S]
        steps = history.steps[:count]  # [N] steps each sentence has taken
        self._beam.close_finished(log_probs.view(count, beams, -1))  # the rule for finished rows, for every policy
        choice = self.policy.choose(log_probs.view(count, beams, -1), self._beam, steps + 1 >= history.limits[:count])
        if vocab is not None:  # positions in the union → target pieces
            choice = choice._replace(tokens=vocab[choice.tokens])
        history.record(choice, alpha.view(count, beams, -1))
        self._beam = choice.state
        self.work.steps += 1
        self.work.rows += count * beams
        self.work.attended += sum(slot.src_length for slot in self._slots) * beams
        self.work.scored += count * beams * log_probs.size(-1)
        done = choice.state.finished.all(dim=1).nonzero().view(-1).tolist()  # on the host: who leaves
        results = [(self._slots[slot].sentence.tag, self._hypotheses(slot)) for slot in done]
        parents, tokens = choice.parents, choice.tokens  # [N, K]
        if done or beams > 1:  # reorder the rows: by parent, and to the slots the sentences now hold
            slots = torch.arange(count, device=self.device)  # [N'] the slot each sentence comes from
            if done:
                slots = self._release(done)
                parents, tokens = parents[slots], tokens[slots]
            state = state.select((parents + slots.unsqueeze(1) * beams).view(-1))
        self._state, self._prev = state, tokens.reshape(-1)
        return results

    def _vocab(self) -> Tensor | None:
        """The target pieces this step scores [U]: the union of the decoding sentences' shortlists, or None
        for all of them (no shortlist, or a union too small to hold a beam's candidates)."""
        if self._union is None or self.policy.full_vocabulary(self._beam):
            return None
        pieces = self._union.pieces()
        return pieces if len(pieces) >= self.policy.beams else None

    def _hypotheses(self, slot: int) -> list[Hypothesis]:
        """The n-best hypotheses of the finished sentence in ``slot``, best first (the policy keeps the rows in
        rank order)."""
        sentence, src_length, _ = self._slots[slot]
        assert self._history is not None
        return [Hypothesis(tokens, score, attention) for tokens, score, attention in self._history.paths(
            slot, sentence.n_best, self._beam.scores[slot].tolist(), self._beam.lengths[slot].tolist(), src_length)]

    def _release(self, done: list[int]) -> Tensor:
        """Free the slots of finished sentences: each hole below the new count takes the sentence of a slot
        above it. Returns, for the new slot order, the old slot of each sentence [N'] (for the row tensors)."""
        count = len(self._slots)
        remaining = count - len(done)
        gone = set(done)
        if self._union is not None:
            for slot in done:
                if (pieces := self._slots[slot].pieces) is not None:
                    self._union.remove(pieces)
        holes = [slot for slot in done if slot < remaining]
        movers = [slot for slot in range(remaining, count) if slot not in gone]
        order = list(range(remaining))
        for hole, mover in zip(holes, movers, strict=True):
            order[hole] = mover
            self._slots[hole] = self._slots[mover]
        del self._slots[remaining:]
        order_tensor = torch.tensor(order, dtype=torch.long, device=self.device)
        if holes:
            assert self._keys is not None and self._history is not None
            to = torch.tensor(holes, dtype=torch.long, device=self.device)
            take = torch.tensor(movers, dtype=torch.long, device=self.device)
            self._keys.move(to, take)
            self._history.move(to, take)
        self._beam = self._beam.take(order_tensor)
        return order_tensor

    def _admit(self) -> None:
        """Move waiting sentences into the free slots: their keys into the buffer, their rows after the others."""
        free = self.capacity - len(self._slots)
        while free > 0 and (self._encoded or self._waiting):
            if not self._encoded:
                self._encode_next()
            group = self._encoded[0]
            taken = min(free, len(group.sentences))
            self._place(group.sentences[:taken], group.keys.rows(0, taken), group.state.rows(0, taken))
            if taken == len(group.sentences):
                self._encoded.popleft()
            else:
                self._encoded[0] = _Encoded(group.sentences[taken:], group.keys.rows(taken, len(group.sentences)),
                                            group.state.rows(taken, len(group.sentences)))
            free -= taken

    def _encode_next(self) -> None:
        """Encode the next ≤ capacity waiting sentences as one batch."""
        sentences = [self._waiting.popleft() for _ in range(min(self.capacity, len(self._waiting)))]
        src, lengths = source_tensor([s.src for s in sentences])
        self.work.encoded += int(lengths.sum())
        keys, state = self.model.search_start(src.to(self.device), lengths)
        self._encoded.append(_Encoded(sentences, keys, state))

    def _place(self, sentences: list[Sentence], keys: KeysT, state: StateT) -> None:
        """Put encoded sentences (keys [M, S_m, ...], state of M rows) into the slots after the N taken ones."""
        start, beams = len(self._slots), self.policy.beams
        width = keys.width
        limit = max(s.limit for s in sentences)
        if self._keys is None or self._history is None:
            self._keys = keys.blank(self.capacity, width)
            self._history = History(self.capacity, beams, limit, width, self.device)
        if width > self._keys.width:
            self._keys = self._keys.widened(width)
        self._history.reserve(limit, width)
        self._keys.write(start, keys)
        self._history.start(start, [s.limit for s in sentences])
        union = self._union
        self._slots += [_Slot(s, len(s.src) + 1, union.add(s.src) if union is not None else None) for s in sentences]
        state = state.repeat(beams) if beams > 1 else state
        self._state = state if self._state is None or start == 0 else self._state.cat(state)
        bos = torch.full((len(sentences) * beams,), BOS_ID, dtype=torch.long, device=self.device)
        self._prev = torch.cat([self._prev[:start * beams], bos])
        fresh = self.policy.start(sentences, self.device)
        self._beam = self._beam.take(torch.arange(start, device=self.device)).cat(fresh)
