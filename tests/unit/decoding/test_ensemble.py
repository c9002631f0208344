"""Ensembles: the mixture of the members' probabilities by hand, an ensemble of copies equals its model, beam 1
equals greedy, batched equals one at a time, and the searches run unchanged on it."""

import math

import pytest
import torch

from seq2seq.data.batching import source_tensor
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.decoding.search import beam_search, greedy_search, max_output_lengths
from seq2seq.special_ids import BOS_ID, EOS_ID
from tests.helpers import random_model

VOCAB = 16
SOURCES = [[5, 6, 7, 8], [9], [4, 10, 11, 12, 13, 14, 15], [6, 6]]


def batch_and_limits():
    src, lengths = source_tensor(SOURCES)
    return src, lengths, max_output_lengths(lengths, ratio=2.0, extra=3)


def test_step_is_the_log_of_the_mean_probability_by_hand():
    first, second = random_model(seed=1), random_model(input_feeding=True, seed=2)
    ensemble = Ensemble([first, second])
    src, lengths, _ = batch_and_limits()
    prev = torch.full((len(SOURCES),), BOS_ID)
    with torch.no_grad():
        keys, state = ensemble.search_start(src, lengths)
        log_probs, _, weights = ensemble.search_step(prev, state, keys)  # [B, V], _, [B, S]
        member_probs, member_weights = [], []
        for model in (first, second):
            keys, state = model.start(model.encode(src, lengths))
            logits, _, alpha = model.decoder.step(prev, state, keys)  # [B, V], _, [B, S]
            member_probs.append(torch.softmax(logits, dim=-1))
            member_weights.append(alpha)
    expected = torch.log((member_probs[0] + member_probs[1]) / 2)  # [B, V]
    assert torch.allclose(log_probs, expected, atol=1e-6)
    assert torch.allclose(log_probs.exp().sum(dim=-1), torch.ones(len(SOURCES)), atol=1e-5)  # still a distribution
    assert torch.allclose(weights, (member_weights[0] + member_weights[1]) / 2, atol=1e-7)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(len(SOURCES)), atol=1e-6)


def test_a_second_step_continues_each_members_own_state():
    first, second = random_model(seed=1), random_model(seed=2)
    ensemble = Ensemble([first, second])
    src, lengths, _ = batch_and_limits()
    tokens = [torch.full((len(SOURCES),), BOS_ID), torch.tensor([7, 8, 9, 10])]
    with torch.no_grad():
        keys, state = ensemble.search_start(src, lengths)
        for prev in tokens:
            log_probs, state, _ = ensemble.search_step(prev, state, keys)
        member_log_probs = []
        for model in (first, second):
            model_keys, model_state = model.search_start(src, lengths)
            for prev in tokens:
                step_log_probs, model_state, _ = model.search_step(prev, model_state, model_keys)
            member_log_probs.append(step_log_probs)
    expected = torch.logsumexp(torch.stack(member_log_probs), dim=0) - math.log(2)
    assert torch.allclose(log_probs, expected, atol=1e-6)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_an_ensemble_of_copies_translates_as_its_model(beam_size):
    model = random_model(seed=3)
    src, lengths, limits = batch_and_limits()
    copies = Ensemble([model, model, model])
    if beam_size == 1:
        alone = [[h] for h in greedy_search(model, src, lengths, max_lengths=limits)]
        together = [[h] for h in greedy_search(copies, src, lengths, max_lengths=limits)]
    else:
        alone = beam_search(model, src, lengths, beam_size=beam_size, max_lengths=limits, n_best=beam_size)
        together = beam_search(copies, src, lengths, beam_size=beam_size, max_lengths=limits, n_best=beam_size)
    for one, three in zip(alone, together):
        assert [h.tokens for h in one] == [h.tokens for h in three]
        assert [h.score for h in one] == pytest.approx([h.score for h in three], abs=1e-4)
        for a, b in zip(one, three):
            assert torch.allclose(a.attention, b.attention, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_1_is_exactly_greedy_for_an_ensemble(alpha):
    ensemble = Ensemble([random_model(seed=1), random_model(input_feeding=True, seed=2)])
    src, lengths, limits = batch_and_limits()
    greedy = greedy_search(ensemble, src, lengths, max_lengths=limits)
    beam = beam_search(ensemble, src, lengths, beam_size=1, max_lengths=limits, alpha=alpha)
    for g, (b,) in zip(greedy, beam):
        assert g.tokens == b.tokens
        assert g.score == pytest.approx(b.score, abs=1e-5)


def test_batched_beam_equals_one_at_a_time_for_an_ensemble():
    ensemble = Ensemble([random_model(seed=1), random_model(seed=2)])
    src, lengths, limits = batch_and_limits()
    batched = beam_search(ensemble, src, lengths, beam_size=3, max_lengths=limits, alpha=1.0)
    for i, ids in enumerate(SOURCES):
        one_src, one_len = source_tensor([ids])
        (alone,) = beam_search(ensemble, one_src, one_len, beam_size=3, max_lengths=limits[i:i + 1], alpha=1.0)
        assert batched[i][0].tokens == alone[0].tokens
        assert batched[i][0].score == pytest.approx(alone[0].score, abs=1e-5)


def mixture_log_prob(models, src_ids: list[int], output: list[int], *, with_eos: bool) -> float:
    """log of the mean of the models' teacher-forced probabilities of ``output``, summed over its tokens."""
    targets = output + ([EOS_ID] if with_eos else [])
    src, lengths = source_tensor([src_ids])
    trg_in = torch.tensor([[BOS_ID] + targets[:-1]])
    with torch.no_grad():
        probs = sum(torch.softmax(model(src, lengths, trg_in)[0][0], dim=-1) for model in models) / len(models)
    return sum(math.log(probs[t, token].item()) for t, token in enumerate(targets))  # probs [T, V]


def test_greedy_score_is_the_mixtures_teacher_forced_log_probability():
    first, second = random_model(seed=1), random_model(seed=2)
    src, lengths, limits = batch_and_limits()
    for i, hypothesis in enumerate(greedy_search(Ensemble([first, second]), src, lengths, max_lengths=limits)):
        stopped = len(hypothesis.tokens) < int(limits[i])  # ended with EOS rather than at the limit
        expected = mixture_log_prob([first, second], SOURCES[i], hypothesis.tokens, with_eos=stopped)
        assert hypothesis.score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_scores_are_the_mixtures_teacher_forced_log_probabilities(alpha):
    """Every hypothesis of the n-best list, with two different members: a beam reordered with the wrong
    member's rows would score its tokens with the wrong states."""
    first, second = random_model(seed=1), random_model(input_feeding=True, seed=2)
    src, lengths, limits = batch_and_limits()
    n_best = beam_search(Ensemble([first, second]), src, lengths, beam_size=3, max_lengths=limits, alpha=alpha,
                         n_best=3)
    for i, hypotheses in enumerate(n_best):
        for hypothesis in hypotheses:
            stopped = len(hypothesis.tokens) < int(limits[i])  # ended with EOS rather than at the limit
            expected = mixture_log_prob([first, second], SOURCES[i], hypothesis.tokens, with_eos=stopped)
            assert hypothesis.score == pytest.approx(expected, abs=1e-4)


def test_members_must_share_a_vocabulary_and_be_several():
    with pytest.raises(ValueError, match="at least 2 models"):
        Ensemble([random_model(seed=1)])
    with pytest.raises(ValueError, match="one target vocabulary"):
        Ensemble([random_model(seed=1), random_model(seed=2, vocab=VOCAB + 4)])
