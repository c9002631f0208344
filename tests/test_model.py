"""Model invariants: padding does not change results, the parallel path equals the step path, it can learn."""

import pytest
import torch

from seq2seq.batching import Example, collate
from seq2seq.config import ModelConfig
from seq2seq.model import build_model

VOCAB = 20


def tiny_model(**overrides):
    settings = dict(embedding_dim=8, encoder_hidden=6, encoder_layers=2, bidirectional=True, decoder_hidden=12,
                    decoder_layers=2, attention="dot", input_feeding=False, dropout=0.0)
    settings.update(overrides)
    torch.manual_seed(0)
    return build_model(ModelConfig(**settings), src_vocab_size=VOCAB, trg_vocab_size=VOCAB).eval()


EXAMPLES = [Example([5, 6, 7], [8, 9]), Example([4, 5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]),
            Example([12], [13, 14, 15])]


@pytest.mark.parametrize("attention", ["dot", "general", "concat"])
@pytest.mark.parametrize("input_feeding", [False, True])
def test_sentence_alone_equals_sentence_in_padded_batch(attention, input_feeding):
    model = tiny_model(attention=attention, input_feeding=input_feeding)
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


@pytest.mark.parametrize("attention", ["dot", "general", "concat"])
@pytest.mark.parametrize("bridge", ["linear", "zeros"])
def test_parallel_path_equals_step_path(attention, bridge):
    model = tiny_model(attention=attention, bridge=bridge)
    batch = collate(EXAMPLES)
    with torch.no_grad():
        keys, state = model.start(model.encode(batch.src, batch.src_lengths))
        parallel_logits, parallel_weights = model.decoder(batch.trg_in, state, keys)
        step_logits, step_weights = model.decoder(batch.trg_in, state, keys, parallel=False)
    assert torch.allclose(parallel_logits, step_logits, atol=1e-5)
    assert torch.allclose(parallel_weights, step_weights, atol=1e-6)


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
