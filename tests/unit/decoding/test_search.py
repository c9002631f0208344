"""Greedy and beam search: batched equals one at a time, scores are the model's log-probabilities, limits hold,
finished sentences leave the batch."""

import pytest
import torch

from seq2seq.data.batching import source_tensor
from seq2seq.decoding.search import beam_search, greedy_search, length_penalty, max_output_lengths
from seq2seq.model.attention import SCORES
from seq2seq.special_ids import BOS_ID, EOS_ID
from tests.helpers import random_model

SOURCES = [[5, 6, 7, 8], [9], [4, 10, 11, 12, 13, 14, 15], [6, 6]]


def teacher_forced_log_prob(model, src_ids: list[int], output: list[int], with_eos: bool) -> float:
    src, lengths = source_tensor([src_ids])
    targets = output + ([EOS_ID] if with_eos else [])
    trg_in = torch.tensor([[BOS_ID] + targets[:-1]])
    with torch.no_grad():
        logits, _ = model(src, lengths, trg_in)
    log_probs = torch.log_softmax(logits[0], dim=-1)
    return sum(log_probs[t, token].item() for t, token in enumerate(targets))


@pytest.mark.parametrize("input_feeding", [False, True])
def test_batched_greedy_equals_one_at_a_time(input_feeding):
    greedy_batched_and_alone(random_model(input_feeding=input_feeding))


def greedy_batched_and_alone(model):
    """Greedy search of SOURCES in one batch, checked against each sentence alone; returns the batch's results
    with the sources, lengths and limits it was searched with."""
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=2.0, extra=3)
    batched = greedy_search(model, src, lengths, max_lengths=limits)
    for i, ids in enumerate(SOURCES):
        one_src, one_len = source_tensor([ids])
        (alone,) = greedy_search(model, one_src, one_len, max_lengths=limits[i:i + 1])
        assert batched[i].tokens == alone.tokens
        assert batched[i].score == pytest.approx(alone.score, abs=1e-5)
        assert torch.allclose(batched[i].attention, alone.attention, atol=1e-6)
    return batched, src, lengths, limits


def test_greedy_score_is_teacher_forced_log_probability():
    model = random_model()
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=2.0, extra=3)
    for i, hypothesis in enumerate(greedy_search(model, src, lengths, max_lengths=limits)):
        stopped = len(hypothesis.tokens) < int(limits[i])  # ended with EOS rather than at the limit
        expected = teacher_forced_log_prob(model, SOURCES[i], hypothesis.tokens, with_eos=stopped)
        assert hypothesis.score == pytest.approx(expected, abs=1e-4)


def test_length_limit_and_attention_shape():
    model = random_model()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] = -100.0  # never stop: every output runs to its limit
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=1.0, extra=2)
    for i, hypothesis in enumerate(greedy_search(model, src, lengths, max_lengths=limits)):
        assert len(hypothesis.tokens) == int(limits[i]) == len(SOURCES[i]) + 1 + 2
        assert hypothesis.attention.shape == (len(hypothesis.tokens), len(SOURCES[i]) + 1)
        assert torch.allclose(hypothesis.attention.sum(-1), torch.ones(len(hypothesis.tokens)), atol=1e-5)


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_size_1_is_exactly_greedy(input_feeding, alpha):
    model = random_model(input_feeding=input_feeding)
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=2.0, extra=3)
    greedy = greedy_search(model, src, lengths, max_lengths=limits)
    beam = beam_search(model, src, lengths, beam_size=1, max_lengths=limits, alpha=alpha)
    for g, (b,) in zip(greedy, beam):
        assert b.tokens == g.tokens
        assert b.score == pytest.approx(g.score, abs=1e-6)
        assert torch.allclose(b.attention, g.attention)


@pytest.mark.parametrize("beam_size", [2, 5])
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_scores_are_teacher_forced_log_probabilities(beam_size, alpha):
    model = random_model()
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=2.0, extra=3)
    results = beam_search(model, src, lengths, beam_size=beam_size, max_lengths=limits, alpha=alpha,
                          n_best=beam_size)
    for i, n_best in enumerate(results):
        for hypothesis in n_best:
            stopped = len(hypothesis.tokens) < int(limits[i])
            expected = teacher_forced_log_prob(model, SOURCES[i], hypothesis.tokens, with_eos=stopped)
            assert hypothesis.score == pytest.approx(expected, abs=1e-4)
            assert hypothesis.attention.shape == (len(hypothesis.tokens) + stopped, len(SOURCES[i]) + 1)


@pytest.mark.parametrize("input_feeding", [False, True])
def test_batched_beam_equals_one_at_a_time(input_feeding):
    model = random_model(input_feeding=input_feeding)
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=2.0, extra=3)
    batched = beam_search(model, src, lengths, beam_size=4, max_lengths=limits, alpha=1.0, n_best=4)
    for i, ids in enumerate(SOURCES):
        one_src, one_len = source_tensor([ids])
        (alone,) = beam_search(model, one_src, one_len, beam_size=4, max_lengths=limits[i:i + 1], alpha=1.0,
                               n_best=4)
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
        assert [h.score for h in batched[i]] == pytest.approx([h.score for h in alone], abs=1e-5)


def test_n_best_lists_are_sorted_and_distinct():
    model = random_model()
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=2.0, extra=3)
    alpha = 0.8
    results = beam_search(model, src, lengths, beam_size=6, max_lengths=limits, alpha=alpha, n_best=6)
    for i, n_best in enumerate(results):
        assert len(n_best) == 6
        assert len({tuple(h.tokens) for h in n_best}) == 6
        stopped = [len(h.tokens) < int(limits[i]) for h in n_best]  # EOS counts towards the length
        normalized = [h.score / length_penalty(torch.tensor(len(h.tokens) + s), alpha).item()
                      for h, s in zip(n_best, stopped)]
        assert normalized == sorted(normalized, reverse=True)


def test_beam_finds_a_sequence_at_least_as_probable_as_greedy():
    model = random_model()
    src, lengths = source_tensor(SOURCES)
    limits = max_output_lengths(lengths, ratio=2.0, extra=3)
    greedy = greedy_search(model, src, lengths, max_lengths=limits)
    beam = beam_search(model, src, lengths, beam_size=8, max_lengths=limits, alpha=0.0)
    for g, (b,) in zip(greedy, beam):
        assert b.score >= g.score - 1e-5


def test_tiny_length_limits_still_allow_an_eos():
    model = random_model()
    src, lengths = source_tensor([[5]])
    limits = max_output_lengths(lengths, ratio=0.1, extra=0)  # 0.1 * 2 + 0 rounds down to 0
    assert limits.tolist() == [1]
    (greedy,) = greedy_search(model, src, lengths, max_lengths=limits)
    ((beam,),) = beam_search(model, src, lengths, beam_size=3, max_lengths=limits)
    assert len(greedy.tokens) <= 1 and len(beam.tokens) <= 1


@pytest.mark.parametrize("beam_size", [1, 3])
def test_finished_sentences_leave_the_batch(beam_size):
    """Every step decodes only the sentences still going: the rows given to the decoder shrink as sentences
    finish (here the limits make them finish at different steps), and the results do not change."""
    model = random_model()
    src, lengths = source_tensor(SOURCES)
    limits = torch.tensor([2, 5, 3, 1])  # no sentence may outlive its limit, whatever it predicts
    rows_per_step = []
    step = model.decoder.step

    def counting_step(prev, state, keys, **options):
        rows_per_step.append(prev.size(0))
        return step(prev, state, keys, **options)

    model.decoder.step = counting_step
    if beam_size == 1:
        results = [[h] for h in greedy_search(model, src, lengths, max_lengths=limits)]
    else:
        results = beam_search(model, src, lengths, beam_size=beam_size, max_lengths=limits)
    assert rows_per_step[0] == len(SOURCES) * beam_size
    assert rows_per_step == sorted(rows_per_step, reverse=True) and rows_per_step[-1] <= beam_size
    assert len(rows_per_step) <= 5
    for (best, *_), limit in zip(results, limits.tolist()):
        assert len(best.tokens) <= limit
    del model.decoder.step
    for i, ids in enumerate(SOURCES):  # alone, each sentence gets the same translation
        one_src, one_len = source_tensor([ids])
        if beam_size == 1:
            (alone,) = greedy_search(model, one_src, one_len, max_lengths=limits[i:i + 1])
        else:
            ((alone, *_),) = beam_search(model, one_src, one_len, beam_size=beam_size, max_lengths=limits[i:i + 1])
        assert results[i][0].tokens == alone.tokens
        assert results[i][0].score == pytest.approx(alone.score, abs=1e-5)


@pytest.mark.parametrize(("attention", "alignment"), [(kind, "global") for kind in SCORES] + [
    ("dot", "local-m"), ("general", "local-p"), ("concat", "local-p")])
def test_every_score_searches_batched_as_alone_and_beam_1_as_greedy(attention, alignment):
    """The step path of each score of the registry and of local attention (with input feeding; windows of D = 2
    that move with each sentence's own step): batch rows do not leak into each other, beam 1 is greedy, and beam
    scores are the teacher-forced log-probabilities of the parallel path."""
    model = random_model(input_feeding=True, attention=attention, seed=5, alignment=alignment)
    greedy, src, lengths, limits = greedy_batched_and_alone(model)
    for g, (b,) in zip(greedy, beam_search(model, src, lengths, beam_size=1, max_lengths=limits, alpha=1.0)):
        assert b.tokens == g.tokens and b.score == pytest.approx(g.score, abs=1e-6)
    for i, n_best in enumerate(beam_search(model, src, lengths, beam_size=3, max_lengths=limits, alpha=0.0,
                                           n_best=3)):
        for hypothesis in n_best:
            stopped = len(hypothesis.tokens) < int(limits[i])
            expected = teacher_forced_log_prob(model, SOURCES[i], hypothesis.tokens, with_eos=stopped)
            assert hypothesis.score == pytest.approx(expected, abs=1e-4)
