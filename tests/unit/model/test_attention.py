"""Attention math against hand computation: scores, masked softmax, context, tanh(W_c [a; s])."""

import ast
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.model.alignment_functions import masked_softmax
from seq2seq.model.attention import SCORES, Attention, dot_scores
from seq2seq.model.attention import make_attention as build_attention
from seq2seq.model.decoder import LuongDecoder
from tests.helpers import ROOT

E = math.e
# One query s = [1, 0] and three encoder states h_1 = [1, 0], h_2 = [0, 1], h_3 = [1, 1].
QUERY = torch.tensor([[[1.0, 0.0]]])  # [B=1, T=1, H=2]
STATES = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # [B=1, S=3, H=2]
ALL = torch.tensor([[True, True, True]])
FIRST_TWO = torch.tensor([[True, True, False]])


def make_attention(kind: str) -> Attention:
    attention = build_attention(kind, query_size=2, key_size=2, max_source_positions=4)
    with torch.no_grad():
        # Asymmetric matrices, so a transposed or swapped projection gives different scores.
        if kind == "general":
            attention.key_proj.weight.copy_(torch.tensor([[2.0, 1.0], [0.0, 1.0]]))  # W_a
        if kind == "concat":
            attention.key_proj.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # W_h: swaps h's entries
            attention.query_proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))  # W_s
            attention.v.copy_(torch.tensor([1.0, 0.5]))
        if kind == "location":
            attention.position_proj.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0], [5.0, 5.0]]))
    return attention


# Scores by hand, s = [1, 0]:
#   dot      s·h_i                         = [1, 0, 1]
#   general  W_a h_i = [2, 0], [1, 1], [3, 1];  s·(W_a h_i) = [2, 1, 3]
#   concat   W_s s = [1, 0];  W_h h_i = [0, 1], [1, 0], [1, 1];  sums [1, 1], [2, 0], [2, 1];
#            v·tanh(sum) with v = [1, 0.5]
#   location W_a s = [1, 0, 3, 5] (a row per position); the first three: [1, 0, 3]
T1, T2 = math.tanh(1.0), math.tanh(2.0)
HAND_SCORES = {
    "dot": [1.0, 0.0, 1.0],
    "general": [2.0, 1.0, 3.0],
    "concat": [T1 + 0.5 * T1, T2, T2 + 0.5 * T1],
    "location": [1.0, 0.0, 3.0],
}


SCORING = [kind for kind, score in SCORES.items() if score.attends]  # every score of the registry but "none"


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [x / sum(exps) for x in exps]


@pytest.mark.parametrize("kind", SCORING)
def test_scores_weights_and_context_match_hand_computation(kind):
    attention = make_attention(kind)
    keys = attention.prepare(STATES, ALL)
    scores = attention.scores(QUERY, keys)
    assert scores.shape == (1, 1, 3)
    assert scores[0, 0].tolist() == pytest.approx(HAND_SCORES[kind], abs=1e-6)

    context, weights = attention(QUERY, keys)
    alpha = softmax(HAND_SCORES[kind])
    assert weights[0, 0].tolist() == pytest.approx(alpha, abs=1e-6)
    hand_context = [alpha[0] * 1 + alpha[2] * 1, alpha[1] * 1 + alpha[2] * 1]  # sum_i alpha_i h_i
    assert context[0, 0].tolist() == pytest.approx(hand_context, abs=1e-6)


def test_dot_attention_worked_example_in_closed_form():
    """e = [1, 0, 1] → alpha = [e, 1, e] / (2e + 1); context = [2e, 1 + e] / (2e + 1)."""
    context, weights = make_attention("dot")(QUERY, make_attention("dot").prepare(STATES, ALL))
    z = 2 * E + 1
    assert weights[0, 0].tolist() == pytest.approx([E / z, 1 / z, E / z], abs=1e-6)
    assert context[0, 0].tolist() == pytest.approx([2 * E / z, (1 + E) / z], abs=1e-6)


@pytest.mark.parametrize("kind", SCORING)
def test_masked_position_gets_exactly_zero_weight(kind):
    attention = make_attention(kind)
    context, weights = attention(QUERY, attention.prepare(STATES, FIRST_TWO))
    assert weights[0, 0, 2].item() == 0.0
    alpha = softmax(HAND_SCORES[kind][:2])
    assert weights[0, 0, :2].tolist() == pytest.approx(alpha, abs=1e-6)
    assert context[0, 0].tolist() == pytest.approx([alpha[0], alpha[1]], abs=1e-6)


def test_masked_softmax_rows_sum_to_one_and_padding_is_zero():
    torch.manual_seed(0)
    scores = torch.randn(4, 5, 7) * 10  # [B, T, S]
    lengths = torch.tensor([7, 1, 3, 5])
    mask = torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)  # [B, S]
    weights = masked_softmax(scores, mask)
    assert torch.allclose(weights.sum(-1), torch.ones(4, 5), atol=1e-6)
    assert (weights.masked_select(~mask.unsqueeze(1).expand_as(weights)) == 0).all()
    assert (weights[1, :, 0] == 1).all()  # a single real position takes all the weight


def test_dot_attention_rejects_unequal_sizes():
    with pytest.raises(ValueError, match="equal sizes"):
        build_attention("dot", query_size=3, key_size=2)


def test_an_unknown_score_cannot_be_built_and_the_error_names_the_scores():
    with pytest.raises(ValueError, match="unknown attention score 'dots'; the scores are dot, general, concat, none"):
        build_attention("dots", query_size=2, key_size=2)
    assert all(issubclass(score, Attention) and SCORES[score.kind] is score for score in SCORES.values())


def test_a_score_without_its_own_fused_loop_part_cannot_be_built():
    """No score silently trains with another score's maths: a subclass that leaves out ``loop`` (or ``scores``)
    stays abstract."""
    class Forgetful(Attention):
        kind = "forgetful"

        def scores(self, query, keys):
            return dot_scores(query, keys.keys)

    with pytest.raises(TypeError, match="abstract"):
        Forgetful(query_size=2, key_size=2)


@pytest.mark.parametrize("module", ["decoder.py", "fused_loop.py"])
def test_the_decoder_and_the_fused_loop_never_test_a_score_by_name(module):
    """They ask the score object (seq2seq/model/attention.py) instead, so a new score needs no change there."""
    tree = ast.parse((ROOT / "seq2seq" / "model" / module).read_text(encoding="utf-8"))
    names = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in SCORES}
    assert not names, f"{module} names the scores {sorted(names)}"


def test_attentional_vector_is_tanh_of_wc_times_context_and_state():
    """s~ = tanh(W_c [a; s]) with W_c set by hand."""
    decoder = LuongDecoder(vocab_size=5, embedding_dim=2, hidden_size=2, encoder_size=2, num_layers=1,
                           attention="dot", input_feeding=False, dropout=0.0)
    w_c = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, -1.0]])  # [H, H_enc + H]
    with torch.no_grad():
        decoder.combine.weight.copy_(w_c)
    keys = decoder.attention.prepare(STATES, ALL)
    attentional, _ = decoder.attentional(QUERY, keys)
    z = 2 * E + 1
    a = [2 * E / z, (1 + E) / z]  # context from the worked example
    s = [1.0, 0.0]
    hand = [math.tanh(a[0] + s[0]), math.tanh(2 * a[1] - s[1])]
    assert attentional[0, 0].tolist() == pytest.approx(hand, abs=1e-6)


def test_the_config_accepts_exactly_the_registered_scores():
    """The score names come from the registry alone: each loads (with sizes that fit it), and an unknown one is
    refused with the registry's names."""
    from seq2seq.config import Config, ModelConfig
    from seq2seq.errors import SettingError
    from seq2seq.model.network import check_model_config

    for kind in SCORES:
        check_model_config(Config(model=ModelConfig(attention=kind)))  # encoder 2 x 128, decoder 256: fits dot
    with pytest.raises(SettingError, match="'dot', 'general', 'concat', 'none', 'location'"):
        check_model_config(Config(model=ModelConfig(attention="luong")))


# --- local attention (Luong §3.2) ----------------------------------------------------------------------------------

def local_attention(kind: str, alignment: str, window: int) -> Attention:
    attention = build_attention(kind, query_size=2, key_size=2, max_source_positions=4, alignment=alignment,
                                local_window=window)
    if alignment == "local-p":
        with torch.no_grad():
            attention.alignment.position_proj.weight.copy_(torch.eye(2))  # W_p
            attention.alignment.v.copy_(torch.tensor([1.0, 0.0]))  # v_p
    return attention


def test_local_m_softmax_runs_over_the_window_around_the_step_clipped_to_the_sentence():
    """dot scores [1, 0, 1]; D = 1. Step 0: window {0, 1}; step 1: all three (= global); step 5: p_t = 2, {1, 2}."""
    attention = local_attention("dot", "local-m", window=1)
    keys = attention.prepare(STATES, ALL)
    query = QUERY.expand(1, 3, 2)  # the same query at three steps
    _, weights = attention(query, keys, torch.tensor([[0, 1, 5]]))
    assert weights[0, 0].tolist() == pytest.approx([E / (E + 1), 1 / (E + 1), 0.0], abs=1e-6)
    assert weights[0, 1].tolist() == pytest.approx(softmax(HAND_SCORES["dot"]), abs=1e-6)
    assert weights[0, 2].tolist() == pytest.approx([0.0, 1 / (1 + E), E / (1 + E)], abs=1e-6)
    assert weights[0, 0, 2].item() == 0.0 and weights[0, 2, 0].item() == 0.0  # outside the window: exactly 0


def test_local_p_predicts_the_centre_and_weighs_the_window_by_a_gaussian():
    """p = S · sigmoid(v_p · tanh(W_p s)) = 3 · sigmoid(tanh 1) ≈ 2.045; D = 2 (σ = 1): the window is {1, 2};
    softmax of the dot scores [0, 1] there, times exp(-(s - p)² / 2)."""
    attention = local_attention("dot", "local-p", window=2)
    keys = attention.prepare(STATES, ALL)
    context, weights = attention(QUERY, keys, torch.tensor([[0]]))
    p = 3 / (1 + math.exp(-math.tanh(1.0)))
    gauss = [math.exp(-(s - p) ** 2 / 2) for s in (1, 2)]
    alpha = [0.0, gauss[0] / (1 + E), gauss[1] * E / (1 + E)]
    assert weights[0, 0].tolist() == pytest.approx(alpha, abs=1e-6)
    assert context[0, 0].tolist() == pytest.approx([alpha[2], alpha[1] + alpha[2]], abs=1e-6)  # Σ alpha_s h_s
    assert attention.alignment.positions(QUERY, torch.tensor([[0]]), torch.tensor([3]))[0, 0].item() == \
        pytest.approx(p, abs=1e-6)
    _, masked = attention(QUERY, attention.prepare(STATES, FIRST_TWO), torch.tensor([[0]]))
    assert masked[0, 0, 2].item() == 0.0  # p = 2 · sigmoid(tanh 1) ≈ 1.36: padding stays out of the window


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 9), window=st.integers(1, 12),
       kind=st.sampled_from(["dot", "general", "concat"]))
def test_local_m_with_a_window_as_wide_as_the_sentence_is_global_attention(seed, length, window, kind):
    torch.manual_seed(seed)
    width = max(length, 3)
    states, query = torch.randn(2, width, 4), torch.randn(2, 5, 4)
    mask = torch.arange(width) < torch.tensor([[length], [width]])  # [2, S]: one sentence padded
    local = build_attention(kind, query_size=4, key_size=4, alignment="local-m", local_window=max(window, width))
    overall = build_attention(kind, query_size=4, key_size=4)
    overall.load_state_dict(local.state_dict())
    keys = local.prepare(states, mask)
    assert torch.allclose(local(query, keys)[1], overall(query, keys)[1], atol=1e-6)


def test_local_attention_needs_a_content_score():
    for kind in ("location", "none"):
        with pytest.raises(ValueError, match="needs a content score"):
            build_attention(kind, query_size=2, key_size=2, max_source_positions=4, alignment="local-p")
