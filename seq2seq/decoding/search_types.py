"""The types the search stack shares: what goes into the decoding engine (sentences), what a search policy sees and
says (the rows' standing, its choice), what comes out (hypotheses, translations), and the search settings.

Its own module, importing only torch, the config and the special ids, so that the engine, the policies, the
translator, the server and training's reporters all import these types without importing one another (and
without the search stack).

Legend: N sentences, K rows (beams) per sentence, V target pieces, T output pieces, S source pieces.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, Self

import torch
from torch import Tensor

from seq2seq.config import Config, DecodingConfig
from seq2seq.errors import UserError
from seq2seq.special_ids import EOS_ID, PAD_ID

# -- into the engine -----------------------------------------------------------------------------------------------


class TokenConstraints(NamedTuple):
    """Constraints as target pieces: each phrase a list of ids (:func:`~seq2seq.decoding.constraints.encode_constraints`
    makes them from text)."""

    include: list[list[int]]
    avoid: list[list[int]]

    @property
    def tokens(self) -> int:
        """C, the pieces the include phrases add up to: what the output must make room for."""
        return sum(len(phrase) for phrase in self.include)


class SentenceRequest(NamedTuple):
    """What a request says of one sentence besides its source; a policy makes its own input from it
    (:meth:`SearchPolicy.prepare`), so that the engine never reads what only a policy needs."""

    constraints: TokenConstraints | None = None  # phrases to include and avoid, for a policy that honours them
    seed: int = 1  # the seed of the sentence's request (``--seed``, a server request's seed)
    number: int = 0  # the sentence's place in its request: with ``seed``, its own random stream


class Sentence(NamedTuple):
    """A sentence to decode."""

    src: list[int]  # source ids, without EOS
    limit: int  # the longest output allowed, in tokens including EOS (≥ 1)
    n_best: int  # how many hypotheses to return (≤ the policy's beams)
    tag: Any  # the caller's handle, returned with the hypotheses
    policy_input: Any = None  # what the policy made of the sentence's request (SearchPolicy.prepare); the engine
    # only carries it


class Hypothesis(NamedTuple):
    tokens: list[int]  # output ids without BOS/EOS
    score: float  # sum of the log-probabilities of the tokens and the final EOS (when one was produced)
    attention: Tensor  # [T, S_real]: one row per emitted token (EOS included), one column per real source position


# -- a policy's view of the rows -------------------------------------------------------------------------------------


class PolicyRows(Protocol):
    """A policy's own record of each sentence (the constraints its rows have met, its random stream), which
    moves with the sentence's slot."""

    def take(self, order: Tensor) -> Self: ...  # the sentences at ``order`` [N'], in that order
    def cat(self, other: Self) -> Self: ...  # these sentences, then ``other``'s


class BeamState(NamedTuple):
    """Where each row of each sentence stands: [N, K] each.

    It also holds the one rule for finished rows, which every policy follows: a finished row's only continuation
    is PAD, at no cost (:meth:`close_finished`, which the engine applies to every step's log-probabilities), its
    length stops growing (:meth:`grown_lengths`), and a row that continues it stays finished (:meth:`advance`).
    """

    scores: Tensor  # sum of the log-probabilities of the row's tokens
    lengths: Tensor  # tokens scored so far (EOS included)
    finished: Tensor  # bool: the row has produced EOS or reached the sentence's limit
    rows: PolicyRows | None = None  # what else the policy keeps of each sentence

    def take(self, order: Tensor) -> BeamState:
        """The standing of the sentences at ``order`` [N'], in that order."""
        return BeamState(self.scores[order], self.lengths[order], self.finished[order],
                         None if self.rows is None else self.rows.take(order))

    def cat(self, other: BeamState) -> BeamState:
        """These sentences, then ``other``'s (of the same policy)."""
        rows = None if self.rows is None or other.rows is None else self.rows.cat(other.rows)
        return BeamState(torch.cat([self.scores, other.scores]), torch.cat([self.lengths, other.lengths]),
                         torch.cat([self.finished, other.finished]), rows)

    def close_finished(self, log_probs: Tensor) -> None:
        """Give each finished row of log_probs [N, K, V] (contiguous) one continuation, PAD at log-probability 0, and
        -inf for every other piece, in place: so a finished row competes with its final score, draws PAD, and
        proposes nothing else. Only the finished rows are written."""
        ended = self.finished.view(-1).nonzero().view(-1)  # [F] rows, counted over all sentences
        flat = log_probs.view(-1, log_probs.size(-1))  # [N * K, V]
        flat.index_fill_(0, ended, float("-inf"))
        flat[ended, PAD_ID] = 0.0  # a shortlist's union keeps PAD at its own id (it begins with the special ids)

    def grown_lengths(self) -> Tensor:
        """[N, K]: each row's length after the step, one token more unless it has finished."""
        return self.lengths + (~self.finished).long()

    def advance(self, tokens: Tensor, parents: Tensor, scores: Tensor, at_limit: Tensor,
                rows: PolicyRows | None = None) -> Choice:
        """The step's choice: each new row [N, K] continues row ``parents`` of its sentence with ``tokens`` and
        scores ``scores``. A row that continues a finished one takes PAD and stays finished with its length; any
        other grows by a token and finishes at EOS or when this step is its sentence's last (at_limit [N] bool)."""
        ended = self.finished.gather(1, parents)
        tokens = tokens.masked_fill(ended, PAD_ID)
        finished = ended | (tokens == EOS_ID) | at_limit.unsqueeze(1)
        return Choice(tokens, parents, BeamState(scores, self.grown_lengths().gather(1, parents), finished, rows))


class Choice(NamedTuple):
    """A policy's decision for one step: [N, K] each."""

    tokens: Tensor  # each row's next token
    parents: Tensor  # the row (0..K-1 within its sentence) that each new row continues
    state: BeamState  # the rows' standing after the step


class SearchPolicy(Protocol):
    """Chooses each step's tokens from the model's log-probabilities (greedy, beam, ...)."""

    beams: int  # K, the rows each sentence takes

    def prepare(self, request: SentenceRequest) -> Any:
        """The policy's input for one sentence (its constraints, its random seed), carried as
        :attr:`Sentence.policy_input`."""

    def start(self, sentences: list[Sentence], device: torch.device) -> BeamState:
        """The standing of new sentences before their first step."""

    def full_vocabulary(self, state: BeamState) -> bool:
        """Whether the next step must score every target piece (no shortlist), for the sentences of ``state``."""

    def choose(self, log_probs: Tensor, state: BeamState, at_limit: Tensor) -> Choice:
        """log_probs [N, K, V] (finished rows closed, :meth:`BeamState.close_finished`), the rows' standing,
        at_limit [N] bool (this step is the sentence's last allowed) → the step's choice. A sentence stops when all
        its rows are finished."""


# -- out of the search -----------------------------------------------------------------------------------------------

Span = tuple[int, int]  # [start, end) in code points


class Window(NamedTuple):
    """Local attention's window on each row of an attention matrix: the centre p_t of each row and D."""

    centres: list[float]  # one per row (output piece, then EOS when produced), in source positions
    radius: int  # D: the window is [p_t - D, p_t + D]


class Translation(NamedTuple):
    text: str  # detokenized output
    src_pieces: list[str]  # source subword pieces as translated, EOS excluded
    trg_pieces: list[str]  # output subword pieces, EOS excluded
    score: float  # sum of the token log-probabilities (EOS included when produced)
    attention: torch.Tensor  # [T, S]: rows are output pieces (+ EOS), columns source pieces + EOS
    window: Window | None = None  # local attention's window of each row, where a picture asked for it
    placed: list[tuple[int, int] | None] | None = None  # each include constraint's pieces [start, end) in trg_pieces
    parts: tuple[SentencePart, ...] = ()  # a text translated sentence by sentence: each sentence's translation

    def attention_labels(self) -> tuple[list[str], list[str]]:
        """Names of the attention's columns (source pieces + EOS) and rows (output pieces, + EOS if produced)."""
        return self.src_pieces + ["</s>"], (self.trg_pieces + ["</s>"])[:self.attention.size(0)]

    @property
    def sentences(self) -> tuple[SentencePart, ...]:
        """The sentences of the text with their translations: its parts, or the translation itself as one part."""
        if self.parts:
            return self.parts
        return (SentencePart(None, (0, len(self.text)), self),) if self.src_pieces else ()


class SentencePart(NamedTuple):
    """One sentence of a text translated sentence by sentence."""

    source: Span | None  # where the sentence lies in the source text (None: the whole text, not segmented)
    target: Span  # where its translation lies in the translated text
    translation: Translation  # the sentence's own translation (pieces, score, attention)


# -- the search settings ---------------------------------------------------------------------------------------------


class PolicySettings(Protocol):
    """The settings of a search policy other than beam search (:class:`~seq2seq.decoding.sampling.Sampling`,
    :class:`~seq2seq.decoding.diverse.Diversity`): a frozen dataclass in the policy's own module, hashable because
    a server keys its decoding streams on the settings."""

    name: ClassVar[str]  # the policy's name in the registry, seq2seq.decoding.policies.POLICIES
    draws: ClassVar[bool]  # True: n_best rows drawn, returned in the order drawn; False: an n-best ranked best first

    def check(self, options: SearchOptions, vocab_size: int) -> None:
        """A UserError for settings that cannot run with ``options`` over ``vocab_size`` target pieces."""


@dataclass(unsafe_hash=True)  # never changed once made (dataclasses.replace makes another): a server keys on it
class SearchOptions(DecodingConfig):
    """Every setting of a search: the decoding section (every default lives in :class:`DecodingConfig`), ``n_best``
    (hypotheses per sentence; samples, when sampling), ``policy`` (the settings of a policy other than beam search;
    None: beam search, greedy at beam size 1, the one search that honours constraints) and ``seed`` (the random
    streams of a policy that draws)."""

    n_best: int = 1
    policy: PolicySettings | None = None
    seed: int = 1

    BEAM: ClassVar[str] = "beam"  # the registry's name of beam search, the policy of ``policy=None``

    @property
    def policy_name(self) -> str:
        """The name the registry (seq2seq.decoding.policies.POLICIES) knows the policy by."""
        return self.BEAM if self.policy is None else self.policy.name

    @property
    def draws(self) -> bool:
        """Whether the policy draws ``n_best`` rows per sentence (and returns them in the order drawn) rather than
        searching ``beam_size`` beams for a ranked n-best."""
        return self.policy is not None and self.policy.draws

    @property
    def honours_constraints(self) -> bool:
        """Whether the policy honours constraints: beam search does (seq2seq.decoding.constrained), no other does."""
        return self.policy is None

    def refuse_constraints(self) -> None:
        """The UserError for constraints given to a policy that does not honour them."""
        if not self.honours_constraints:
            raise UserError(f"constraints need beam or greedy search; the search policy {self.policy_name!r} does "
                            "not honour them.")

    @classmethod
    def from_config(cls, config: Config, **overrides: object) -> SearchOptions:
        """The config's decoding section, with the ``overrides`` that are not None."""
        return cls.of(config.decoding, **overrides)

    @classmethod
    def of(cls, decoding: DecodingConfig, **overrides: object) -> SearchOptions:
        """A decoding section (or other options), with the ``overrides`` that are not None."""
        values = {f.name: getattr(decoding, f.name) for f in dataclasses.fields(decoding)}
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def check(self, vocab_size: int) -> None:
        """Refuse a search that cannot run over ``vocab_size`` target pieces: beam search's limits
        (:meth:`check_beam`), or the policy's own."""
        if self.policy is None:
            self.check_beam(vocab_size)
        else:
            self.policy.check(self, vocab_size)

    def check_beam(self, vocab_size: int) -> None:
        """Refuse more hypotheses than beams, or more beams than target pieces."""
        if self.n_best > self.beam_size:
            raise UserError(f"n-best {self.n_best} is larger than the beam size {self.beam_size}; "
                            "a beam keeps only beam-size hypotheses.")
        if self.beam_size > vocab_size:
            raise UserError(f"beam size {self.beam_size} exceeds the target vocabulary ({vocab_size} pieces).")
