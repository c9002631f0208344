"""Diverse beam search: one group is beam search, no penalty makes each group beam search of its size, the Hamming
penalty takes another piece than beam search where a hand computation says, the n-best lists differ in more pieces,
and they come back ranked over all groups with the model's own scores."""

import math

import pytest
import torch

from seq2seq.decoding.diverse import DiverseBeam, Diversity
from seq2seq.decoding.engine import DecodingEngine
from seq2seq.decoding.policies import search_policy
from seq2seq.decoding.search import Beam, length_penalty
from seq2seq.decoding.search_types import BeamState, SearchOptions, Sentence
from seq2seq.errors import UserError
from tests.helpers import random_model
from tests.unit.decoding.test_engine import SOURCES, assert_same, limits_of
from tests.unit.decoding.test_search import teacher_forced_log_prob


def decode(model, policy, n_best: int) -> list:
    """Each of SOURCES' n-best hypotheses, decoded four sentences at a time."""
    engine = DecodingEngine(model, policy, device=torch.device("cpu"), max_sentences=4)
    engine.add([Sentence(src, limit, n_best, i) for i, (src, limit) in enumerate(zip(SOURCES, limits_of(SOURCES)))])
    results: list = [[] for _ in SOURCES]
    for i, hypotheses in engine.run():
        results[i] = hypotheses
    return results


def test_one_group_is_plain_beam_search_exactly():
    model = random_model(input_feeding=True)
    options = SearchOptions(beam_size=4, length_penalty=1.0, policy=Diversity(groups=1, strength=0.7))
    diverse = search_policy(options)  # through the registry, as translate builds it
    assert isinstance(diverse, DiverseBeam)
    for got, expected in zip(decode(model, diverse, 4), decode(model, Beam(4, alpha=1.0), 4)):
        assert [h.tokens for h in got] == [h.tokens for h in expected]
        assert [h.score for h in got] == [h.score for h in expected]  # bit for bit
        assert all(torch.equal(a.attention, b.attention) for a, b in zip(got, expected))


def test_without_penalty_each_group_is_beam_search_of_its_size():
    """λ = 0: the three groups of two rows each find what beam search of 2 finds, so the n-best of six lists each of
    its hypotheses three times (the groups' equal rows side by side, ranked over all)."""
    model = random_model(seed=5)
    diverse = decode(model, DiverseBeam(6, groups=3, strength=0.0, alpha=0.6), 6)
    for got, expected in zip(diverse, decode(model, Beam(2, alpha=0.6), 2)):
        assert_same(got, [h for h in expected for _ in range(3)])


def test_the_hamming_penalty_takes_another_piece_than_beam_search_by_hand():
    """Two rows after one step, "4" (p 0.5) and "5" (p 0.3); next pieces 6 or 7 with p 0.6/0.4 after "4" and 0.9/0.1
    after "5". Beam search of 2 keeps the two best continuations, 4 6 (0.30) and 5 6 (0.27). Diverse beam search in
    two groups of one: group 0 takes 4 6; group 1 sees piece 6 lowered by λ (group 0 took it once), so it takes 5 7
    once log 0.9 - λ < log 0.1, that is λ > log 9 = 2.197. Its score stays the model's, log 0.3 + log 0.1."""
    probs = torch.zeros(1, 2, 8)
    probs[0, 0, 6], probs[0, 0, 7], probs[0, 1, 6], probs[0, 1, 7] = 0.6, 0.4, 0.9, 0.1
    log_probs = probs.log()  # [1, 2, 8]: -inf for the pieces of probability 0
    state = BeamState(torch.tensor([[math.log(0.5), math.log(0.3)]]), torch.ones(1, 2, dtype=torch.long),
                      torch.zeros(1, 2, dtype=torch.bool))
    at_limit = torch.tensor([False])
    plain = Beam(2).choose(log_probs, state, at_limit)
    assert plain.tokens.tolist() == [[6, 6]] and plain.parents.tolist() == [[0, 1]]
    weak = DiverseBeam(2, groups=2, strength=2.1).choose(log_probs, state, at_limit)
    assert weak.tokens.tolist() == [[6, 6]]  # 2.1 < log 9: the penalty is not enough
    strong = DiverseBeam(2, groups=2, strength=2.3).choose(log_probs, state, at_limit)
    assert strong.tokens.tolist() == [[6, 7]] and strong.parents.tolist() == [[0, 1]]
    assert strong.state.scores[0].tolist() == pytest.approx([math.log(0.5 * 0.6), math.log(0.3 * 0.1)])


def test_a_positive_strength_gives_n_best_lists_of_more_distinct_pieces():
    model = random_model(vocab=24)
    plain = decode(model, Beam(4, alpha=0.6), 4)
    diverse = decode(model, DiverseBeam(4, groups=4, strength=0.5, alpha=0.6), 4)

    def first_pieces(results) -> int:  # distinct first pieces of each n-best list, summed over the sentences
        return sum(len({tuple(h.tokens[:1]) for h in n_best}) for n_best in results)

    def pieces(results) -> int:  # distinct pieces of each n-best list, summed
        return sum(len({piece for h in n_best for piece in h.tokens}) for n_best in results)

    assert first_pieces(diverse) == 4 * len(SOURCES) > first_pieces(plain)  # groups of one row: all differ
    assert pieces(diverse) > pieces(plain)


def test_the_n_best_comes_back_ranked_over_all_groups_with_the_models_scores():
    model = random_model(seed=7)
    alpha = 0.8
    for i, n_best in enumerate(decode(model, DiverseBeam(6, groups=3, strength=1.0, alpha=alpha), 6)):
        limit = limits_of(SOURCES)[i]
        stopped = [len(h.tokens) < limit for h in n_best]  # EOS counts towards the length
        normalized = [h.score / length_penalty(torch.tensor(len(h.tokens) + s), alpha).item()
                      for h, s in zip(n_best, stopped)]
        assert len(n_best) == 6 and normalized == sorted(normalized, reverse=True)
        for hypothesis, ended in zip(n_best, stopped):  # no penalty in the scores
            expected = teacher_forced_log_prob(model, SOURCES[i], hypothesis.tokens, with_eos=ended)
            assert hypothesis.score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("settings", "message"), [
    (Diversity(groups=4), "4 groups do not divide the beam size 6"),
    (Diversity(groups=0), "0 groups do not divide the beam size 6"),
    (Diversity(groups=3, strength=-0.5), "diversity strength must be a number ≥ 0"),
    (Diversity(groups=3, strength=math.inf), "diversity strength must be a number ≥ 0"),
])
def test_groups_that_do_not_divide_the_beam_and_negative_strengths_are_refused(settings, message):
    with pytest.raises(UserError, match=message):
        SearchOptions(beam_size=6, policy=settings).check(vocab_size=24)
