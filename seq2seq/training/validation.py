"""Validation: the loss and perplexity of a split, its greedy (or beam) BLEU, and which value is better."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from seq2seq.data.batching import Batch
from seq2seq.data.dataset import Split
from seq2seq.decoding.scoring import bleu
from seq2seq.decoding.search_types import SearchOptions, Translation
from seq2seq.decoding.shortlist import Shortlist
from seq2seq.decoding.translator import translate_texts
from seq2seq.decoding.window import attention_window
from seq2seq.model.loss import output_loss
from seq2seq.model.network import Seq2Seq
from seq2seq.training.context import RunContext


@torch.inference_mode()
def evaluate_loss(model: Seq2Seq, batches: Iterable[Batch], device: torch.device) -> float:
    """Mean cross-entropy per target token (no label smoothing), in nats."""
    model.eval()
    total, tokens = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        features, _ = model(batch.src, batch.src_lengths, batch.trg_in, project=False)
        loss, num_tokens = output_loss(features, model.decoder.output, batch.trg_out, label_smoothing=0.0)
        total, tokens = total + loss.item(), tokens + num_tokens
    return total / max(tokens, 1)


def score_split(model: Seq2Seq, run: RunContext, split: Split, options: SearchOptions, *,
                shortlist: Shortlist | None = None) -> tuple[float, list[str]]:
    """BLEU of a split (detokenized output vs raw references) and the hypotheses, decoded with ``options``; a
    ``shortlist`` limits the scored target pieces (see :mod:`seq2seq.decoding.shortlist`)."""
    sources, references = split.text()
    translations = translate_texts(model, run.src_tok, run.trg_tok, sources, options=options,
                                   device=run.device, max_source_pieces=run.config.data.max_length,
                                   shortlist=shortlist)
    hypotheses = [n_best[0].text for n_best in translations]
    return bleu(hypotheses, references).score, hypotheses


def validate(model: Seq2Seq, run: RunContext, batches: Iterable[Batch]) -> dict[str, float]:
    """Loss, perplexity and greedy BLEU of the run's valid split (``batches`` are its evaluation batches)."""
    loss = evaluate_loss(model, batches, run.device)
    greedy = SearchOptions.from_config(run.config, beam_size=1)
    bleu_score, _ = score_split(model, run, run.splits["valid"], greedy)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": bleu_score}


def attention_sample(model: Seq2Seq, run: RunContext) -> Translation:
    """The greedy translation of the valid split's first sentence, with its attention: the same sentence at every
    validation, so that a reporter can show how the attention sharpens as training goes on (its first part, where
    it is too long for the model and was cut)."""
    greedy = SearchOptions.from_config(run.config, beam_size=1)
    translated = translate_texts(model, run.src_tok, run.trg_tok, run.splits["valid"].text()[0][:1], options=greedy,
                                 device=run.device, max_source_pieces=run.config.data.max_length)[0][0]
    sample = translated.sentences[0].translation if translated.sentences else translated
    window = attention_window(model, run.src_tok, run.trg_tok, sample.src_pieces, sample.trg_pieces,
                              sample.attention.size(0))
    return sample._replace(window=window)
