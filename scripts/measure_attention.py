"""How sharp a model's attention is, and how well the word alignments read off it agree with gold ones.

Usage:
  python scripts/measure_attention.py MODEL_DIR SOURCE_FILE [--reference FILE] [--gold GOLD_FILE] [--beam 5]
                                      [--lines N]

Translates SOURCE_FILE (one sentence per line) with beam search, or with --reference reads the attention the model
gives the reference translation itself (teacher forcing, as alignment is measured: gold links are made between a
source and its reference), and reports, over every output piece (the row of EOS left out):
  - the largest attention weight of its row, averaged (1.0 is one source piece; 1/S is uniform);
  - the entropy of its row in nats, averaged (0 is one source piece; ln S is uniform);
  - the share of its weight on the source's end-of-sentence column.
With --gold (Pharaoh, ``i-j`` sure and ``ipj`` possible, on whitespace words, one line per source line) it also
reports precision, recall and AER of the links read off the attention as ``translate --align`` reads them
(:func:`seq2seq.decoding.word_alignment.align_words`) against the gold ones (:mod:`seq2seq.decoding.alignment_error`);
gold links refer to the reference, so --gold goes with --reference (the toy corpus, whose model outputs the
reference, is the exception).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def sharpness(attention: torch.Tensor, pieces: int) -> tuple[float, float, float]:
    """Summed over the first ``pieces`` rows of attention [T, S + 1] (its last column the source's EOS): largest
    weights, entropies (nats) and weights on EOS."""
    rows = attention[:pieces].double()  # [T', S + 1]
    entropy = -(rows * rows.clamp(min=1e-12).log()).sum(-1)
    return float(rows.max(-1).values.sum()), float(entropy.sum()), float(rows[:, -1].sum())


@torch.inference_mode()
def forced_attention(translator, source: str, reference: str) -> tuple[torch.Tensor, list[str], list[str]]:
    """The attention [T + 1, S + 1] the model gives ``reference`` as the translation of ``source`` (teacher forcing),
    with the source's and the reference's pieces."""
    from seq2seq.data.batching import Example, collate

    src_ids, trg_ids = translator.src_tok.encode([source])[0], translator.trg_tok.encode([reference])[0]
    batch = collate([Example(src_ids, trg_ids)])
    device = translator.device
    _, weights = translator.model(batch.src.to(device), batch.src_lengths, batch.trg_in.to(device))  # [1, T + 1, S + 1]
    return (weights[0].float().cpu(), translator.src_tok.id_to_piece(src_ids), translator.trg_tok.id_to_piece(trg_ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("source", type=Path)
    parser.add_argument("--reference", type=Path, help="reference translations: read the attention they get")
    parser.add_argument("--gold", type=Path, help="gold word alignments of SOURCE_FILE's lines and the references")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--lines", type=int, default=0, help="only the first N lines (0: all)")
    args = parser.parse_args()

    from seq2seq.decoding.alignment_error import alignment_scores, parse_links
    from seq2seq.decoding.translator import Translator
    from seq2seq.decoding.word_alignment import align_words

    texts = args.source.read_text(encoding="utf-8").splitlines()
    texts = texts[:args.lines] if args.lines else texts
    translator = Translator.from_dir(args.model_dir)
    if args.reference:
        references = args.reference.read_text(encoding="utf-8").splitlines()[:len(texts)]
        read = [forced_attention(translator, text, reference)
                for text, reference in zip(texts, references, strict=True)]
    else:
        found = translator.translate_with_details(texts, translator.search_options(beam_size=args.beam))
        read = [(t.attention, t.src_pieces, t.trg_pieces) for t in found]
    totals, pieces = [0.0, 0.0, 0.0], 0
    for attention, _, trg_pieces in read:
        totals = [a + b for a, b in zip(totals, sharpness(attention, len(trg_pieces)), strict=True)]
        pieces += len(trg_pieces)
    report = {"sentences": len(texts), "pieces": pieces, "largest_weight": totals[0] / pieces,
              "entropy_nats": totals[1] / pieces, "eos_share": totals[2] / pieces}
    if args.gold:
        lines = args.gold.read_text(encoding="utf-8").splitlines()[:len(texts)]
        gold = [parse_links(line, where=f"{args.gold}:{number}") for number, line in enumerate(lines, 1)]
        links = [align_words(attention, src_pieces, trg_pieces) for attention, src_pieces, trg_pieces in read]
        scores = alignment_scores(links, gold)
        report |= {"precision": scores.precision, "recall": scores.recall, "aer": scores.aer}
    print(json.dumps({key: round(value, 4) if isinstance(value, float) else value for key, value in report.items()}))


if __name__ == "__main__":
    main()
