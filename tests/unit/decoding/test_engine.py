"""The decoding engine: a sentence's translation does not depend on what shares its batch, when it arrived, or
where its slot is; finished sentences leave and waiting ones take their places at the next step."""

import random

import pytest
import torch

from seq2seq.data.batching import source_tensor
from seq2seq.decoding.engine import DecodingEngine
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.search import Beam, Greedy, beam_search, greedy_search, max_output_lengths
from seq2seq.decoding.search_types import Sentence
from tests.helpers import random_model

SOURCES = [[5, 6, 7, 8], [9], [4, 10, 11, 12, 13, 14, 15], [6, 6], [12, 3, 3, 9, 9, 10, 11, 4, 5, 6, 7, 8],
           [7, 7, 7], [15, 14, 13, 12, 11], [8, 9]]


def alone(model, policy, ids, limit, n_best):
    """The hypotheses of one sentence decoded by itself."""
    engine = DecodingEngine(model, policy, device=torch.device("cpu"), max_sentences=1)
    engine.add([Sentence(ids, limit, n_best, 0)])
    ((_, hypotheses),) = engine.run()
    return hypotheses


def limits_of(sources):
    return max_output_lengths(torch.tensor([len(s) + 1 for s in sources]), ratio=1.5, extra=3).tolist()


def assert_same(got, expected):
    assert [h.tokens for h in got] == [h.tokens for h in expected]
    assert [h.score for h in got] == pytest.approx([h.score for h in expected], abs=1e-5)
    for a, b in zip(got, expected):
        assert a.attention.shape == b.attention.shape and torch.allclose(a.attention, b.attention, atol=1e-5)


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("policy", [Greedy(), Beam(3, alpha=1.0)], ids=["greedy", "beam3"])
@pytest.mark.parametrize("capacity", [1, 3, 8])
def test_a_translation_does_not_depend_on_its_batch_order_or_arrival(input_feeding, policy, capacity):
    model = random_model(input_feeding=input_feeding)
    limits = limits_of(SOURCES)
    n_best = policy.beams
    expected = [alone(model, policy, ids, limit, n_best) for ids, limit in zip(SOURCES, limits)]
    rng = random.Random(capacity)
    for _ in range(3):
        order = rng.sample(range(len(SOURCES)), len(SOURCES))
        engine = DecodingEngine(model, policy, device=torch.device("cpu"), max_sentences=capacity)
        results, arrivals = {}, list(order)
        while arrivals or not engine.idle:
            if arrivals and rng.random() < 0.5:  # sentences arrive between steps, a few at a time
                taken = rng.randint(1, 3)
                arrived, arrivals = arrivals[:taken], arrivals[taken:]
                engine.add([Sentence(SOURCES[i], limits[i], n_best, i) for i in arrived])
            assert engine.decoding <= capacity
            results.update(engine.step())
        assert sorted(results) == list(range(len(SOURCES)))
        for i in range(len(SOURCES)):
            assert_same(results[i], expected[i])


def test_finished_sentences_make_room_for_waiting_ones_at_the_next_step():
    model = random_model()
    limits = [2, 9, 2, 9, 2]  # the short ones finish early and free their slots
    engine = DecodingEngine(model, Greedy(), device=torch.device("cpu"), max_sentences=2)
    engine.add([Sentence(SOURCES[i], limits[i], 1, i) for i in range(5)])
    unfinished = 5
    while not engine.idle:
        rows_before = engine.work.rows
        finished = engine.step()
        assert engine.work.rows - rows_before == min(2, unfinished)  # no free slot while a sentence waits
        unfinished -= len(finished)
    assert unfinished == 0
    assert engine.work.encoded == sum(len(SOURCES[i]) + 1 for i in range(5))


def test_an_ensemble_decodes_through_the_engine_as_it_does_alone():
    first, second = random_model(seed=3), random_model(seed=4)
    ensemble = Ensemble([first, second])
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=1.5, extra=3)
    batched = beam_search(ensemble, src, lengths, beam_size=3, max_lengths=limits, alpha=1.0, n_best=3)
    for i, ids in enumerate(SOURCES):
        assert_same(batched[i], alone(ensemble, Beam(3, alpha=1.0), ids, int(limits[i]), 3))


def test_greedy_and_beam_1_agree_through_slots_that_move():
    model = random_model()
    limits = limits_of(SOURCES)
    engines = {name: DecodingEngine(model, policy, device=torch.device("cpu"), max_sentences=3)
               for name, policy in (("greedy", Greedy()), ("beam", Beam(1)))}
    results = {}
    for name, engine in engines.items():
        engine.add([Sentence(ids, limit, 1, i) for i, (ids, limit) in enumerate(zip(SOURCES, limits))])
        results[name] = dict(engine.run())
    for i in range(len(SOURCES)):
        assert_same(results["beam"][i], results["greedy"][i])


def test_discarded_sentences_are_never_decoded():
    model = random_model()
    engine = DecodingEngine(model, Greedy(), device=torch.device("cpu"), max_sentences=1)
    engine.add([Sentence(ids, 5, 1, i) for i, ids in enumerate(SOURCES[:4])])
    engine.step()  # sentence 0 is decoding; 1 is encoded ahead with it, 2 and 3 wait
    assert sorted(engine.discard(lambda tag: tag in (1, 3))) == [1, 3]
    assert sorted(tag for tag, _ in engine.run()) == [0, 2]


def test_greedy_search_of_a_batch_equals_the_engine_one_sentence_at_a_time():
    model = random_model(input_feeding=True)
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=1.5, extra=3)
    for i, hypothesis in enumerate(greedy_search(model, src, lengths, max_lengths=limits)):
        assert_same([hypothesis], alone(model, Greedy(), SOURCES[i], int(limits[i]), 1))


def test_sentences_that_ask_for_more_hypotheses_than_beams_are_refused():
    engine = DecodingEngine(random_model(), Beam(2), device=torch.device("cpu"), max_sentences=4)
    with pytest.raises(ValueError, match="n_best"):
        engine.add([Sentence([5], 5, 3, 0)])
