"""Lexically constrained search on random untrained models: every include phrase appears, no avoided phrase does,
unconstrained sentences decode exactly as without the constrained policy, and small beams still finish."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.decoding.constrained import Constrained, ConstraintRows
from seq2seq.decoding.constraints import TokenConstraints, constraint_spans
from seq2seq.decoding.engine import DecodingEngine, Sentence
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.search import Beam, Greedy
from tests.helpers import random_model

VOCAB = 24  # target pieces 0..23; 0..3 are special
SOURCES = [[5, 9, 4], [7, 7, 12, 4, 8, 15], [6], [11, 13, 5, 9, 10, 4, 14], [8, 8], [15, 4, 9, 12]]
pieces = st.integers(4, VOCAB - 1)
phrase = st.lists(pieces, min_size=1, max_size=3)


def contains(ids: list[int], part: list[int]) -> bool:
    return any(ids[i:i + len(part)] == part for i in range(len(ids) - len(part) + 1))


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
        spans = constraint_spans(output, wanted.include)
        assert all(span is not None for span in spans), (output, wanted)  # repeated phrases: distinct places
        assert not any(contains(output, banned) for banned in wanted.avoid), (output, wanted)


def test_a_beam_smaller_than_the_constraint_pieces_still_meets_them_all():
    model = random_model(vocab=VOCAB, seed=1)
    wanted = TokenConstraints([[5, 6, 7], [8, 9], [10], [5, 6, 7]], [])  # C = 9 pieces, 10 banks
    for inner in (Greedy(), Beam(2), Beam(3)):
        for output in decode(model, Constrained(inner), [wanted] * len(SOURCES), extra=1):
            assert all(span is not None for span in constraint_spans(output, wanted.include)), output


def test_no_constraints_anywhere_is_the_inner_search_step_for_step():
    model = random_model(vocab=VOCAB, seed=2, input_feeding=True)
    for inner in (Greedy(), Beam(3), Beam(5, alpha=1.0)):
        assert decode(model, Constrained(inner), [None] * len(SOURCES)) == decode(model, inner,
                                                                               [None] * len(SOURCES))


def test_an_ensemble_honours_constraints():
    ensemble = Ensemble([random_model(vocab=VOCAB, seed=4), random_model(vocab=VOCAB, seed=5)])
    wanted = TokenConstraints([[9, 10], [12]], [[13]])
    for output in decode(ensemble, Constrained(Beam(4)), [wanted] * len(SOURCES)):
        assert all(constraint_spans(output, wanted.include)) and 13 not in output


@pytest.mark.parametrize("attention,alignment", [("general", "local-p"), ("concat", "local-m"), ("location", "global")])
def test_every_attention_kind_honours_constraints(attention, alignment):
    model = random_model(vocab=VOCAB, seed=6, attention=attention, alignment=alignment)
    wanted = TokenConstraints([[4, 5], [20]], [[6]])
    for output in decode(model, Constrained(Beam(3)), [wanted] * len(SOURCES)):
        assert all(constraint_spans(output, wanted.include)) and 6 not in output


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
