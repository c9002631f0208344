"""Lexically constrained search on random untrained models: every include phrase appears, no avoided phrase does,
unconstrained sentences decode exactly as without the constrained policy, and small beams still finish."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.decoding.constrained import Constrained, ConstraintRows
from seq2seq.decoding.constraints import constraint_spans
from seq2seq.decoding.engine import DecodingEngine
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.search import Beam, Greedy
from seq2seq.decoding.search_types import Sentence, TokenConstraints
from tests.helpers import random_model

VOCAB = 24  # target pieces 0..23; 0..3 are special
SOURCES = [[5, 9, 4], [7, 7, 12, 4, 8, 15], [6], [11, 13, 5, 9, 10, 4, 14], [8, 8], [15, 4, 9, 12]]
pieces = st.integers(4, VOCAB - 1)
phrase = st.lists(pieces, min_size=1, max_size=3)


def contains(ids: list[int], part: list[int]) -> bool:
    return any(ids[i:i + len(part)] == part for i in range(len(ids) - len(part) + 1))


def placed_apart(ids: list[int], phrases: list[list[int]], used: frozenset[int] = frozenset(),
                 continuations: frozenset[int] = frozenset()) -> bool:
    """Whether every phrase has an occurrence of its own in ``ids``, no two sharing a piece and none followed by a
    piece of ``continuations`` (which would go on with its last word): an independent check (a backtracking
    search over the occurrences) of what the production code calls met."""
    if not phrases:
        return True
    first, rest = phrases[0], phrases[1:]
    for start in range(len(ids) - len(first) + 1):
        end = start + len(first)
        cover = frozenset(range(start, end))
        whole_word = end == len(ids) or ids[end] not in continuations
        if ids[start:end] == first and whole_word and not cover & used \
                and placed_apart(ids, rest, used | cover, continuations):
            return True
    return False


def decode(model, policy, constraints, *, capacity: int = 4, extra: int = 6) -> list[list[int]]:
    """The best output of each of SOURCES (with its constraints), decoded ``capacity`` at a time."""
    engine = DecodingEngine(model, policy, device=torch.device("cpu"), max_sentences=capacity)
    engine.add([Sentence(src, 2 * len(src) + extra + (c.tokens if c else 0), 1, i, c)
                for i, (src, c) in enumerate(zip(SOURCES, constraints))])
    outputs: list[list[int]] = [[] for _ in SOURCES]
    for i, hypotheses in engine.run():
        outputs[i] = hypotheses[0].tokens
    return outputs


def constraint_sets(draw_phrases):
    """A strategy for one sentence's constraints: include and avoid phrases that do not contradict, or None."""
    def build(include, avoid):
        avoid = [a for a in avoid if not any(contains(p, a) for p in include)]
        return TokenConstraints(include, avoid)
    return st.one_of(st.none(), st.builds(build, st.lists(draw_phrases, max_size=3), st.lists(draw_phrases,
                                                                                              max_size=2)))


@settings(max_examples=30, deadline=None)
@given(constraints=st.lists(constraint_sets(phrase), min_size=len(SOURCES), max_size=len(SOURCES)),
       beams=st.sampled_from([1, 2, 4]), seed=st.integers(0, 3))
def test_every_include_phrase_appears_no_avoided_one_does_and_the_unconstrained_are_unchanged(constraints, beams,
                                                                                             seed):
    model = random_model(vocab=VOCAB, seed=seed)
    inner = Greedy() if beams == 1 else Beam(beams, alpha=0.6)
    outputs = decode(model, Constrained(inner), constraints)
    plain = decode(model, inner, [None] * len(SOURCES))
    for output, wanted, alone in zip(outputs, constraints, plain):
        if wanted is None:
            assert output == alone  # exactly the plain search, though constrained sentences share its steps
            continue
        assert placed_apart(output, wanted.include), (output, wanted)  # repeated phrases: distinct places
        assert not any(contains(output, banned) for banned in wanted.avoid), (output, wanted)


def test_a_beam_smaller_than_the_constraint_pieces_still_meets_them_all():
    model = random_model(vocab=VOCAB, seed=1)
    wanted = TokenConstraints([[5, 6, 7], [8, 9], [10], [5, 6, 7]], [])  # C = 9 pieces, 10 banks
    for inner in (Greedy(), Beam(2), Beam(3)):
        for output in decode(model, Constrained(inner), [wanted] * len(SOURCES), extra=1):
            assert placed_apart(output, wanted.include), output


def test_no_constraints_anywhere_is_the_inner_search_step_for_step():
    model = random_model(vocab=VOCAB, seed=2, input_feeding=True)
    for inner in (Greedy(), Beam(3), Beam(5, alpha=1.0)):
        assert decode(model, Constrained(inner), [None] * len(SOURCES)) == decode(model, inner,
                                                                               [None] * len(SOURCES))


def test_an_ensemble_honours_constraints():
    ensemble = Ensemble([random_model(vocab=VOCAB, seed=4), random_model(vocab=VOCAB, seed=5)])
    wanted = TokenConstraints([[9, 10], [12]], [[13]])
    for output in decode(ensemble, Constrained(Beam(4)), [wanted] * len(SOURCES)):
        assert placed_apart(output, wanted.include) and 13 not in output


@pytest.mark.parametrize("attention,alignment", [("general", "local-p"), ("concat", "local-m"), ("location", "global")])
def test_every_attention_kind_honours_constraints(attention, alignment):
    model = random_model(vocab=VOCAB, seed=6, attention=attention, alignment=alignment)
    wanted = TokenConstraints([[4, 5], [20]], [[6]])
    for output in decode(model, Constrained(Beam(3)), [wanted] * len(SOURCES)):
        assert placed_apart(output, wanted.include) and 6 not in output


def test_rows_of_sentences_with_different_phrase_shapes_join_and_move():
    """Sentences whose phrase tables differ in size are padded when they share the engine's buffers, and keep
    their own phrases when the engine reorders its slots."""
    device = torch.device("cpu")
    first = ConstraintRows.of([TokenConstraints([[5]], [])], 2, device)
    second = ConstraintRows.of([TokenConstraints([[6, 7, 8], [9, 10]], [[11, 12, 13]]), None], 2, device)
    joined = first.cat(second)
    assert joined.include.shape == (3, 2, 3) and joined.avoid_prefix.shape == (3, 1, 2)
    assert joined.include[0].tolist() == [[5, -1, -1], [-1, -1, -1]]
    assert joined.avoid_prefix[1, 0].tolist() == [11, 12] and joined.avoid_last[1].tolist() == [13]
    assert joined.avoid_last[0].tolist() == [-1] and joined.include_lengths[2].tolist() == [0, 0]
    moved = joined.take(torch.tensor([2, 0]))
    assert moved.include_lengths.tolist() == [[0], [1]] and moved.include[1, 0].tolist() == [5]  # trimmed
    assert not ConstraintRows.of([None, None], 3, device).active and joined.active
    alone = joined.take(torch.tensor([0]))  # the larger sentences left: their padding goes with them
    assert alone.include.shape == (1, 1, 1) and alone.avoid_prefix.shape == (1, 0, 0) and alone.met.shape == (1, 2, 1)


def test_placed_apart_by_hand():
    assert placed_apart([5, 6, 7], [[5, 6], [7]]) and not placed_apart([5, 6, 7], [[5, 6], [6, 7]])
    assert placed_apart([5, 5, 5], [[5], [5], [5]]) and not placed_apart([5, 5], [[5], [5], [5]])
    assert placed_apart([4, 5, 6, 5], [[5], [5, 6]])  # [5, 6] takes 1-2, so [5] must take the last 5


def test_constraint_spans_give_each_phrase_its_own_pieces():
    assert constraint_spans([5, 6, 7], [[5, 6], [7]]) == [(0, 2), (2, 3)]
    assert constraint_spans([5, 6, 7], [[5, 6], [6, 7]]) == [(0, 2), None]  # overlapping: not both placed
    assert constraint_spans([5, 5, 9, 5], [[5], [5], [5], [5]]) == [(0, 1), (1, 2), (3, 4), None]
    assert constraint_spans([8, 9], [[9, 8]]) == [None]
    assert constraint_spans([4, 5, 6, 5], [[5], [5, 6]]) == [(3, 4), (1, 3)]  # [5] leaves 1 to [5, 6]
    assert constraint_spans([], [[5]]) == [None] and constraint_spans([5], []) == []


# a phrase as the target model cuts it: its first piece starts a word (4-13 here), the others may go on with it
word_phrase = st.builds(lambda first, rest: [first, *rest], st.integers(4, 13), st.lists(pieces, max_size=2))


@settings(max_examples=25, deadline=None)
@given(constraints=st.lists(constraint_sets(word_phrase), min_size=len(SOURCES), max_size=len(SOURCES)),
       beams=st.sampled_from([1, 3]), seed=st.integers(0, 3))
def test_phrases_are_met_as_whole_words(constraints, beams, seed):
    """With pieces 14-23 marked as going on with the word before them, no phrase counts as met where such a piece
    follows it ("night" is not met by "nighttime")."""
    continuations = torch.zeros(VOCAB, dtype=torch.bool)
    continuations[14:] = True
    inner = Greedy() if beams == 1 else Beam(beams, alpha=0.6)
    outputs = decode(random_model(vocab=VOCAB, seed=seed), Constrained(inner, continuations), constraints)
    for output, wanted in zip(outputs, constraints):
        if wanted is not None:
            assert placed_apart(output, wanted.include, continuations=frozenset(range(14, VOCAB))), (output, wanted)
