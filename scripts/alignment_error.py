"""Precision, recall and AER (Och & Ney 2003) of word alignments against gold ones.

Usage:
  python scripts/alignment_error.py GOLD_FILE PREDICTED_FILE

Both files hold one sentence pair per line, in Pharaoh format: ``i-j`` links source word i to target word j
(0-based); in the gold file ``ipj`` marks a possible link. PREDICTED_FILE may be the output of
``seq2seq translate --align`` as it is: a line ``translation ||| links`` is read after its last ``|||``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", type=Path)
    parser.add_argument("predicted", type=Path)
    args = parser.parse_args()

    from seq2seq.decoding.alignment_error import alignment_scores, parse_links

    gold = [parse_links(line, where=f"{args.gold}:{number}")
            for number, line in enumerate(args.gold.read_text(encoding="utf-8").splitlines(), 1)]
    predicted = [parse_links(line.rpartition("|||")[2], where=f"{args.predicted}:{number}").possible
                 for number, line in enumerate(args.predicted.read_text(encoding="utf-8").splitlines(), 1)]
    scores = alignment_scores(predicted, gold)
    print(json.dumps({"pairs": len(gold), "precision": round(scores.precision, 4), "recall": round(scores.recall, 4),
                      "aer": round(scores.aer, 4)}))


if __name__ == "__main__":
    main()
