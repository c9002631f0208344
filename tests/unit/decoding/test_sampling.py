"""Sampling: draws follow softmax(log p / T) cut to top-k / top-p, top-k 1 and temperature 0 are greedy, and a
sentence's samples depend only on the seed and its number, not on what decodes beside it."""

import pytest
import torch

from seq2seq.decoding.engine import DecodingEngine
from seq2seq.decoding.sampling import Sample, Sampling
from seq2seq.decoding.search import Greedy
from seq2seq.decoding.search_types import SearchOptions, Sentence, SentenceRequest
from seq2seq.errors import UserError
from tests.helpers import random_model
from tests.unit.decoding.test_search import teacher_forced_log_prob

SOURCES = [[5, 9, 4], [7, 7, 12, 4, 8, 15], [6], [11, 13, 5, 9, 10, 4, 14], [8, 8], [15, 4, 9, 12]]


def run(model, policy, *, capacity: int, seed: int = 1, n_best: int = 1) -> list[list[list[int]]]:
    engine = DecodingEngine(model, policy, device=torch.device("cpu"), max_sentences=capacity)
    engine.add([Sentence(src, 12, n_best, i, policy.prepare(SentenceRequest(seed=seed, number=i)))
                for i, src in enumerate(SOURCES)])
    outputs: list[list[list[int]]] = [[] for _ in SOURCES]
    for i, hypotheses in engine.run():
        outputs[i] = [h.tokens for h in hypotheses]
    return outputs


def step_draws(sampling: Sampling, log_probs: torch.Tensor, draws: int) -> torch.Tensor:
    """How often each piece is drawn from one row's ``log_probs`` [V] in ``draws`` independent first steps."""
    policy = Sample(draws, sampling)
    state = policy.start([Sentence([4], 5, 1, 0, 123)], torch.device("cpu"))
    choice = policy.choose(log_probs.expand(1, draws, -1), state, torch.tensor([False]))
    return torch.bincount(choice.tokens.view(-1), minlength=log_probs.numel()).float()


# Upper 1e-4 quantiles of the chi-square distribution (tables; for 2 degrees of freedom it is -2 ln 1e-4): a draw
# that follows the expected distribution exceeds them once in 10,000 seeds. The draws here are seeded, so each
# check is deterministic; the quantile says how unlucky a seed would have to be to fail a correct sampler.
CHI_SQUARE_1E4 = {2: 18.421, 5: 25.745}
LOG_PROBS = torch.tensor([1.0, 0.0, -1.0, 2.0, -0.5, 0.3]).log_softmax(0)
DRAWS = 100_000


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's statistic of ``counts`` against ``probs`` (pieces of probability 0 must never be drawn)."""
    kept = probs > 0
    assert counts[~kept].sum() == 0, counts
    expected = probs[kept] * counts.sum()
    return float(((counts[kept] - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("temperature", [0.7, 1.5])
def test_draws_pass_a_chi_square_test_that_a_temperature_3_percent_off_fails(temperature):
    counts = step_draws(Sampling(temperature=temperature), LOG_PROBS, DRAWS)
    assert chi_square(counts, (LOG_PROBS / temperature).softmax(0)) < CHI_SQUARE_1E4[5]
    # the test has the power to see a sampler whose temperature is 3% off (expected statistic 96 and 37)
    assert chi_square(counts, (LOG_PROBS / (temperature * 1.03)).softmax(0)) > CHI_SQUARE_1E4[5]


def test_top_k_with_top_p_draws_from_the_renormalized_nucleus():
    """By hand: the top 4 of exp(2, 1, 0.3, 0) are pieces 3, 0, 5, 1 with 0.593, 0.218, 0.108, 0.080; the pieces
    ranked above piece 1 already hold 0.920 ≥ 0.9, so the nucleus is {3, 0, 5}."""
    counts = step_draws(Sampling(top_k=4, top_p=0.9), LOG_PROBS, DRAWS)
    nucleus = torch.full_like(LOG_PROBS, float("-inf"))
    nucleus[[3, 0, 5]] = LOG_PROBS[[3, 0, 5]]
    assert chi_square(counts, nucleus.softmax(0)) < CHI_SQUARE_1E4[2]


def test_top_k_and_top_p_keep_the_pieces_a_hand_computation_says():
    probs = torch.tensor([0.05, 0.5, 0.3, 0.15])
    log_probs = probs.log()
    assert set(step_draws(Sampling(top_k=2), log_probs, 4000).nonzero().view(-1).tolist()) == {1, 2}
    # the nucleus: pieces by probability 0.5, 0.3, 0.15, 0.05; p = 0.75 needs the first two (0.5 < 0.75 ≤ 0.8)
    assert set(step_draws(Sampling(top_p=0.75), log_probs, 4000).nonzero().view(-1).tolist()) == {1, 2}
    assert set(step_draws(Sampling(top_p=0.5), log_probs, 4000).nonzero().view(-1).tolist()) == {1}
    assert set(step_draws(Sampling(top_p=0.81), log_probs, 4000).nonzero().view(-1).tolist()) == {1, 2, 3}
    counts = step_draws(Sampling(top_p=0.75), log_probs, 40_000)  # renormalized inside the nucleus
    assert abs(counts[1] / 40_000 - 0.5 / 0.8) < 0.01


@pytest.mark.parametrize("sampling", [Sampling(top_k=1), Sampling(temperature=0.0), Sampling(temperature=1e-4),
                                      Sampling(temperature=1e-40)])
def test_top_k_1_and_temperature_to_0_are_greedy(sampling):
    model = random_model(vocab=24, seed=3)
    greedy = run(model, Greedy(), capacity=4)
    assert run(model, Sample(1, sampling), capacity=4) == greedy


def test_the_same_seed_draws_the_same_samples_whatever_the_batch():
    model = random_model(vocab=24, seed=3)
    policy = Sample(3, Sampling(temperature=1.5))
    alone = run(model, policy, capacity=1, n_best=3)
    assert run(model, policy, capacity=6, n_best=3) == alone  # other sentences beside it change nothing
    assert run(model, policy, capacity=3, n_best=3, seed=2) != alone
    assert any(len({tuple(s) for s in samples}) > 1 for samples in alone)  # the rows draw independently


def test_sample_scores_are_the_model_log_probabilities_of_the_draw():
    model = random_model(vocab=24, seed=7)
    engine = DecodingEngine(model, Sample(2, Sampling(temperature=2.0)), device=torch.device("cpu"), max_sentences=2)
    engine.add([Sentence(SOURCES[1], 10, 2, 0, 5)])
    (_, hypotheses), = engine.run()
    for hypothesis in hypotheses:
        stopped = len(hypothesis.tokens) < 10  # ended with EOS rather than at the limit
        expected = teacher_forced_log_prob(model, SOURCES[1], hypothesis.tokens, with_eos=stopped)
        assert hypothesis.score == pytest.approx(expected, abs=1e-4)


def test_impossible_settings_are_refused():
    for bad in (Sampling(temperature=-1), Sampling(temperature=float("inf")), Sampling(top_k=-2), Sampling(top_p=0.0),
                Sampling(top_p=1.5)):
        with pytest.raises(UserError, match="sampling needs"):
            bad.check(SearchOptions(), 24)
