"""Plot validation BLEU and training loss of one or more runs from their metrics.jsonl files.

Usage: python scripts/plot_learning_curve.py MODEL_DIR [MODEL_DIR ...] --out docs/learning_curve.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seq2seq.common.plotting import plot_learning_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    plot_learning_curves({d.name: d / "metrics.jsonl" for d in args.model_dirs}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
