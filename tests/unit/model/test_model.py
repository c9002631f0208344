"""Model invariants: padding does not change results, the fast paths equal the plain step loop, it can learn."""

import pytest
import torch
import torch.nn.functional as F

from seq2seq.config import ModelConfig
from seq2seq.data.batching import Example, collate
from seq2seq.model.attention import SCORES
from seq2seq.model.decoder import few_rows_linear, lstm_step
from seq2seq.model.fused_loop import fused_decoder_loop
from seq2seq.model.network import build_model, count_parameters
from seq2seq.model.word_dropout import WordDropout
from seq2seq.training.update import autocast_supported

VOCAB = 20


def tiny_model(**overrides):
    settings = dict(embedding_dim=8, encoder_hidden=6, encoder_layers=2, bidirectional=True, decoder_hidden=12,
                    decoder_layers=2, attention="dot", input_feeding=False, dropout=0.0)
    settings.update(overrides)
    torch.manual_seed(0)
    return build_model(ModelConfig(**settings), src_vocab_size=VOCAB, trg_vocab_size=VOCAB,
                       max_source_positions=16).eval()


EXAMPLES = [Example([5, 6, 7], [8, 9]), Example([4, 5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]),
            Example([12], [13, 14, 15])]


PADDING_CASES = [(kind, "global") for kind, score in SCORES.items() if score.attends] + [
    ("general", "local-m"), ("concat", "local-p"), ("dot", "local-p")]


@pytest.mark.parametrize(("attention", "alignment"), PADDING_CASES)
@pytest.mark.parametrize("input_feeding", [False, True])
def test_sentence_alone_equals_sentence_in_padded_batch(attention, alignment, input_feeding):
    model = tiny_model(attention=attention, input_feeding=input_feeding, alignment=alignment, local_window=2)
    batch = collate(EXAMPLES)
    with torch.no_grad():
        encoded = model.encode(batch.src, batch.src_lengths)
        logits, weights = model(batch.src, batch.src_lengths, batch.trg_in)
        for row, example in enumerate(EXAMPLES):
            alone = collate([example])
            alone_encoded = model.encode(alone.src, alone.src_lengths)
            alone_logits, alone_weights = model(alone.src, alone.src_lengths, alone.trg_in)
            s, t = alone.src.size(1), alone.trg_in.size(1)
            assert torch.allclose(encoded.states[row, :s], alone_encoded.states[0], atol=1e-6)
            assert torch.allclose(logits[row, :t], alone_logits[0], atol=1e-5)
            assert torch.allclose(weights[row, :t, :s], alone_weights[0], atol=1e-6)
            assert (weights[row, :, s:] == 0).all()  # padding gets no attention


def fast_and_step(model, batch) -> list[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]:
    """Logits, attention weights and every parameter's gradient of the fast path, then of the plain step loop,
    under a loss whose gradient differs per logit."""
    results = []
    for step_loop in (False, True):
        model.zero_grad()
        logits, weights = model(batch.src, batch.src_lengths, batch.trg_in, step_loop=step_loop)
        (logits.sin() * torch.arange(VOCAB)).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((logits.detach(), weights.detach(), grads))
    return results


@pytest.mark.parametrize("attention", list(SCORES))
@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("decoder_layers", [1, 2])
@pytest.mark.parametrize("bridge", ["linear", "zeros"])
def test_fast_path_equals_step_loop_in_values_and_gradients(attention, input_feeding, decoder_layers, bridge):
    """The parallel path (no input feeding) and the fused loop (input feeding) against the plain step loop."""
    model = tiny_model(attention=attention, input_feeding=input_feeding, decoder_layers=decoder_layers,
                       bridge=bridge).train()  # dropout is 0: train mode, real gradients, no randomness
    batch = collate(EXAMPLES)
    (fast_logits, fast_weights, fast_grads), (step_logits, step_weights, step_grads) = fast_and_step(model, batch)
    assert torch.allclose(fast_logits, step_logits, atol=1e-5)
    assert torch.allclose(fast_weights, step_weights, atol=1e-6)
    assert fast_grads.keys() == step_grads.keys()
    for name, grad in step_grads.items():
        assert grad.abs().max() > 0 or attention == "none", name  # every weight is reached (none: no keys)
        assert torch.allclose(fast_grads[name], grad, atol=1e-5, rtol=1e-4), name


LOCAL = ["local-m", "local-p"]
CONTENT = [kind for kind, score in SCORES.items() if score.attends and score.content]


@pytest.mark.parametrize("alignment", LOCAL)
@pytest.mark.parametrize("attention", CONTENT)
@pytest.mark.parametrize("input_feeding", [False, True])
def test_local_attention_fast_path_equals_step_loop_in_values_and_gradients(alignment, attention, input_feeding):
    """Local windows of D = 1 (narrower than every sentence but one): the parallel path and the fused loop
    against the plain step loop, every gradient included (local-p's W_p and v_p through p_t and the Gaussian)."""
    model = tiny_model(attention=attention, input_feeding=input_feeding, alignment=alignment,
                       local_window=1).train()
    batch = collate(EXAMPLES)
    (fast_logits, fast_weights, fast_grads), (step_logits, step_weights, step_grads) = fast_and_step(model, batch)
    assert torch.allclose(fast_logits, step_logits, atol=1e-5)
    assert torch.allclose(fast_weights, step_weights, atol=1e-6)
    assert fast_grads.keys() == step_grads.keys()
    if alignment == "local-p":
        assert {"decoder.attention.alignment.position_proj.weight", "decoder.attention.alignment.v"} <= set(step_grads)
    for name, grad in step_grads.items():
        assert grad.abs().max() > 0, name
        assert torch.allclose(fast_grads[name], grad, atol=1e-5, rtol=1e-4), name
    lengths = batch.src_lengths.tolist()
    for row, length in enumerate(lengths):  # at most 2D + 1 positions carry weight, none past the sentence
        assert ((fast_weights[row] > 0).sum(-1) <= 3).all() and (fast_weights[row, :, length:] == 0).all()


def test_fused_loop_applies_dropout_between_layers():
    """A 2-layer decoder's between-layer dropout reaches the fused loop as masks on the lower layer's output:
    masks of ones change nothing, and masks of 2 (what dropout 0.5 keeps) equal doubling the weights that
    read that output."""
    model = tiny_model(input_feeding=True, decoder_layers=2)
    decoder = model.decoder
    batch = collate(EXAMPLES)
    keys, state = model.start(model.encode(batch.src, batch.src_lengths))
    steps, size = batch.trg_in.size(1), decoder.hidden_size

    def run(mask_value: float):
        embedded = decoder.embedding(batch.trg_in.t())  # [T, B, E]
        lstm, e = decoder.lstm, decoder.embedding.embedding_dim
        pre = F.linear(embedded, lstm.weight_ih_l0[:, :e], lstm.bias_ih_l0 + lstm.bias_hh_l0)
        masks = torch.full((1, steps, batch.src.size(0), size), mask_value)
        out, _ = fused_decoder_loop(pre, state.h, state.c, state.feed, keys.keys, keys.values, keys.mask, masks,
                                    decoder.loop_weights(), decoder.loop_attention())
        return out

    with torch.no_grad():
        reference = decoder.forward_fused(batch.trg_in, state, keys)[0].transpose(0, 1)  # no masks
        assert torch.allclose(run(1.0), reference, atol=1e-6)
        scaled = run(2.0)
        assert not torch.allclose(scaled, reference, atol=1e-3)
        decoder.lstm.weight_ih_l1 *= 2.0
        assert torch.allclose(scaled, decoder.forward_fused(batch.trg_in, state, keys)[0].transpose(0, 1),
                              atol=1e-6)


def test_unidirectional_encoder_and_different_layer_counts():
    model = tiny_model(bidirectional=False, encoder_layers=3, decoder_layers=1, encoder_hidden=12)
    batch = collate(EXAMPLES)
    logits, weights = model(batch.src, batch.src_lengths, batch.trg_in)
    assert logits.shape == (3, batch.trg_in.size(1), VOCAB)
    assert weights.shape == (3, batch.trg_in.size(1), batch.src.size(1))


@pytest.mark.parametrize("input_feeding", [False, True])
def test_tiny_batch_can_be_overfit(input_feeding):
    model = tiny_model(input_feeding=input_feeding).train()
    batch = collate(EXAMPLES)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(200):
        logits, _ = model(batch.src, batch.src_lengths, batch.trg_in)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch.trg_out, ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1  # from ~3.0 (uniform over 20 ids) at the start
    model.eval()
    with torch.no_grad():
        logits, _ = model(batch.src, batch.src_lengths, batch.trg_in)
    real = batch.trg_out != 0
    assert (logits.argmax(-1)[real] == batch.trg_out[real]).all()


def test_no_attention_baseline_ignores_the_source_states_after_the_bridge():
    model = tiny_model(attention="none", bridge="zeros")
    batch = collate(EXAMPLES)
    with torch.no_grad():
        logits, weights = model(batch.src, batch.src_lengths, batch.trg_in)
        other = batch.src.clone()
        other[batch.src > 3] = 7  # different source words, same lengths
        other_logits, _ = model(other, batch.src_lengths, batch.trg_in)
    assert (weights == 0).all()
    assert torch.equal(logits, other_logits)  # with a zero bridge and no attention the source cannot matter


def test_fused_loop_under_bf16_autocast_multiplies_in_bf16_and_keeps_float32_state():
    """Under autocast the fused loop's matrix products run in bfloat16: the result is float32 and close to
    the float32 loop (bf16 keeps ~3 significant digits), and gradients reach the weights in float32."""
    model = tiny_model(input_feeding=True, decoder_layers=1, attention="general").train()
    batch = collate(EXAMPLES)
    keys, state = model.start(model.encode(batch.src, batch.src_lengths))
    reference, _ = model.decoder.forward_fused(batch.trg_in, state, keys)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features, weights = model.decoder.forward_fused(batch.trg_in, state, keys)
    assert features.dtype == torch.float32 and weights.dtype == torch.float32
    assert not torch.equal(features, reference)  # it did round
    assert torch.allclose(features, reference, atol=3e-2)
    features.sum().backward()
    grad = model.decoder.lstm.weight_hh_l0.grad
    assert grad is not None and grad.dtype == torch.float32 and grad.abs().max() > 0


@pytest.mark.skipif(not autocast_supported("cpu", torch.bfloat16),
                    reason="this CPU has no bfloat16 LSTM kernel under autocast (oneDNN needs AVX-512)")
@pytest.mark.parametrize("alignment", ["global", "local-p"])
def test_fused_loop_gradients_under_bf16_autocast_stay_close_to_the_step_loop(alignment):
    """Under autocast both paths multiply in bfloat16, so they differ by rounding only: every gradient of a
    2-layer input-feeding decoder within 5% of its largest entry (a bf16 copy of the wrong tensor would not be)."""
    model = tiny_model(input_feeding=True, decoder_layers=2, attention="general", alignment=alignment,
                       local_window=2).train()
    batch = collate(EXAMPLES)
    grads = []
    for step_loop in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, _ = model(batch.src, batch.src_lengths, batch.trg_in, step_loop=step_loop)
        (logits.float().sin() * torch.arange(VOCAB)).sum().backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    fused, stepped = grads
    assert fused.keys() == stepped.keys()
    for name, grad in stepped.items():
        assert (fused[name] - grad).abs().max() <= 0.05 * grad.abs().max() + 1e-3, name


def test_local_attention_needs_a_window():
    with pytest.raises(ValueError, match="at least 1 position each side"):
        tiny_model(attention="general", alignment="local-m", local_window=0)


def test_inference_step_products_equal_the_layers():
    """Decoding multiplies weight @ x.T for few rows: the same numbers as nn.Linear and a 2-layer nn.LSTM."""
    torch.manual_seed(0)
    linear, lstm = torch.nn.Linear(6, 9), torch.nn.LSTM(6, 5, num_layers=2, batch_first=True)
    x, h, c = torch.randn(4, 6), torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    with torch.no_grad():
        assert torch.allclose(few_rows_linear(x, linear.weight, linear.bias), linear(x), atol=1e-6)
        output, (want_h, want_c) = lstm(x.unsqueeze(1), (h, c))
        got_h, got_c = lstm_step(lstm, x, h, c)
    assert torch.allclose(got_h, want_h, atol=1e-6) and torch.allclose(got_c, want_c, atol=1e-6)
    assert torch.allclose(got_h[-1], output[:, 0], atol=1e-6)


@pytest.mark.parametrize("embedding_dim", [12, 8])  # = decoder_hidden (no projection), and smaller
def test_tied_output_layer_shares_the_decoder_embedding(embedding_dim):
    """With tied embeddings W_y is the decoder's input embedding: one parameter (V x H fewer weights, plus an
    H x E projection when the sizes differ), one gradient from both uses; the fast path still equals the step
    loop."""
    untied = tiny_model(embedding_dim=embedding_dim, input_feeding=True)
    model = tiny_model(embedding_dim=embedding_dim, tied_embeddings="decoder", input_feeding=True)
    decoder = model.decoder
    assert decoder.output.weight is decoder.embedding.weight
    assert (decoder.readout is None) == (embedding_dim == decoder.hidden_size)
    projection = 0 if decoder.readout is None else decoder.readout.weight.numel()
    untied_output = untied.decoder.output.weight.numel()  # V x H, which tying removes
    assert count_parameters(model) == count_parameters(untied) - untied_output + projection
    batch = collate(EXAMPLES)
    model.train()
    fast, _ = model(batch.src, batch.src_lengths, batch.trg_in)
    step, _ = model(batch.src, batch.src_lengths, batch.trg_in, step_loop=True)
    assert torch.allclose(fast, step, atol=1e-5)
    (fast.sin().sum()).backward()
    assert decoder.embedding.weight.grad is not None and decoder.embedding.weight.grad.abs().max() > 0


def test_three_way_tying_shares_the_source_embedding_too():
    model = tiny_model(tied_embeddings="all")
    assert model.encoder.embedding.weight is model.decoder.embedding.weight is model.decoder.output.weight
    with pytest.raises(ValueError, match="one vocabulary"):
        build_model(ModelConfig(tied_embeddings="all"), src_vocab_size=VOCAB, trg_vocab_size=VOCAB + 1)


def test_word_dropout_drops_whole_words_in_training_only():
    dropout = WordDropout(0.5)
    embedded = torch.ones(40, 30, 8)  # [B, T, E]
    torch.manual_seed(0)
    dropped = dropout(embedded)
    per_token = dropped[..., 0]  # [B, T]: every unit of a token shares its token's fate
    assert torch.equal(dropped, per_token.unsqueeze(-1).expand_as(dropped))
    assert set(per_token.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - p)
    assert 0.4 < (per_token == 0).float().mean().item() < 0.6
    assert torch.equal(dropout.eval()(embedded), embedded)


def test_word_dropout_reaches_every_decoder_path():
    """With target word dropout 1 - tiny, the decoder inputs are all but always zero in training: the
    parallel path, the fused loop and the step loop then give the logits of all-zero input embeddings."""
    for input_feeding in (False, True):
        model = tiny_model(input_feeding=input_feeding, target_word_dropout=0.999999).train()
        batch = collate(EXAMPLES)
        zeroed = tiny_model(input_feeding=input_feeding).train()
        with torch.no_grad():
            zeroed.decoder.embedding.weight.zero_()
        expected, _ = zeroed(batch.src, batch.src_lengths, batch.trg_in)
        for step_loop in (False, True):
            torch.manual_seed(1)
            logits, _ = model(batch.src, batch.src_lengths, batch.trg_in, step_loop=step_loop)
            assert torch.allclose(logits, expected, atol=1e-5), (input_feeding, step_loop)


def test_source_word_dropout_reaches_the_encoder():
    model = tiny_model(source_word_dropout=0.999999).train()
    zeroed = tiny_model().train()
    with torch.no_grad():
        zeroed.encoder.embedding.weight.zero_()
    batch = collate(EXAMPLES)
    torch.manual_seed(1)
    assert torch.allclose(model(batch.src, batch.src_lengths, batch.trg_in)[0],
                          zeroed(batch.src, batch.src_lengths, batch.trg_in)[0], atol=1e-5)
