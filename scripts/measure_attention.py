"""How sharp a model's attention is, and how well the word alignments read off it agree with gold ones.

Usage:
  python scripts/measure_attention.py MODEL_DIR SOURCE_FILE [--gold GOLD_FILE] [--beam 5] [--lines N]

Translates SOURCE_FILE (one sentence per line) and reports, over every output piece (the row of EOS left out):
  - the largest attention weight of its row, averaged (1.0 is one source piece; 1/S is uniform);
  - the entropy of its row in nats, averaged (0 is one source piece; ln S is uniform);
  - the share of its weight on the source's end-of-sentence column.
With --gold (Pharaoh, ``i-j`` sure and ``ipj`` possible, on whitespace words, one line per source line) it also
reports precision, recall and AER of the links ``translate --align`` gives against the gold ones
(:mod:`seq2seq.decoding.alignment_error`).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("source", type=Path)
    parser.add_argument("--gold", type=Path, help="gold word alignments of SOURCE_FILE's lines and the outputs")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--lines", type=int, default=0, help="only the first N lines (0: all)")
    args = parser.parse_args()

    from seq2seq.decoding.alignment_error import alignment_scores, parse_links
    from seq2seq.decoding.translator import Translator
    from seq2seq.decoding.word_alignment import align_words

    texts = args.source.read_text(encoding="utf-8").splitlines()
    texts = texts[:args.lines] if args.lines else texts
    translator = Translator.from_dir(args.model_dir)
    translations = translator.translate_with_details(texts, translator.search_options(beam_size=args.beam))
    totals, pieces = [0.0, 0.0, 0.0], 0
    for translation in translations:
        count = len(translation.trg_pieces)
        totals = [a + b for a, b in zip(totals, sharpness(translation.attention, count), strict=True)]
        pieces += count
    report = {"sentences": len(texts), "pieces": pieces, "largest_weight": totals[0] / pieces,
              "entropy_nats": totals[1] / pieces, "eos_share": totals[2] / pieces}
    if args.gold:
        lines = args.gold.read_text(encoding="utf-8").splitlines()[:len(texts)]
        gold = [parse_links(line, where=f"{args.gold}:{number}") for number, line in enumerate(lines, 1)]
        links = [align_words(t.attention, t.src_pieces, t.trg_pieces) for t in translations]
        scores = alignment_scores(links, gold)
        report |= {"precision": scores.precision, "recall": scores.recall, "aer": scores.aer}
    print(json.dumps({key: round(value, 4) if isinstance(value, float) else value for key, value in report.items()}))


if __name__ == "__main__":
    main()
