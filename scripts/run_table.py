"""Summarise finished runs as a Markdown table, one row per model directory, from their metrics.jsonl files.

Usage: python scripts/run_table.py MODEL_DIR [MODEL_DIR ...]

Columns: updates, minutes of training, the last and the best validation (greedy BLEU, perplexity), the
average of the last checkpoints when the run made one, and the final beam-search scores of the model the
run kept (best.pt). This is how the lever tables of docs/results.md were made.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def events(model_dir: Path) -> list[dict]:
    lines = (model_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def row(model_dir: Path) -> list[str]:
    found = events(model_dir)
    valid = [e for e in found if e["event"] == "valid"]
    if not valid:
        return [model_dir.name] + ["-"] * 8
    last, best = valid[-1], max(valid, key=lambda e: e["bleu"])
    average = next((e for e in found if e["event"] == "average"), None)
    final = next((e for e in reversed(found) if e["event"] == "final"), {})
    beam = final.get("beam_size", "?")

    def score(key: str) -> str:
        return f"{final[key]:.2f}" if key in final else "-"

    return [model_dir.name, str(last["step"]), f"{last['time'] / 60:.1f}", f"{last['bleu']:.2f}",
            f"{last['ppl']:.2f}", f"{best['bleu']:.2f} @ {best['step']}",
            f"{average['bleu']:.2f}" + (" (kept)" if average["best"] else "") if average else "-",
            f"{score('valid_bleu')} (beam {beam})", score("test_bleu")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    header = ["run", "updates", "minutes", "valid BLEU (last)", "valid ppl (last)", "best valid BLEU @ update",
              "average of last checkpoints", "final valid BLEU", "final test BLEU"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for model_dir in args.model_dirs:
        print("| " + " | ".join(row(model_dir)) + " |")


if __name__ == "__main__":
    main()
