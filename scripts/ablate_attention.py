"""Attention ablation (our version of Luong et al. 2015, Table 4): the same recipe with each score function,
with and without input feeding, and without attention, each trained on the same wall-clock budget.

Usage:
  python scripts/ablate_attention.py configs/multi30k_de_en.yaml --minutes 10 --out runs/ablation
      [--set section.key=value ...]

Each variant trains with `seq2seq train` into OUT/<variant>; the script then prints (and writes to
OUT/ablation.md) a Markdown table: valid BLEU (greedy, best checkpoint), valid perplexity, test BLEU with
the config's beam, and median training tokens/s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from seq2seq.common.plotting import plot_learning_curves, read_events

VARIANTS = [(attention, feeding) for attention in ("dot", "general", "concat") for feeding in (False, True)]
VARIANTS += [("none", False), ("none", True)]


def variant_name(attention: str, feeding: bool) -> str:
    return f"{attention}{'+feed' if feeding else ''}"


def train(config: Path, out: Path, attention: str, feeding: bool, minutes: float, extra: list[str]) -> Path:
    model_dir = out / variant_name(attention, feeding)
    overrides = [f"model.attention={attention}", f"model.input_feeding={str(feeding).lower()}",
                 f"training.max_minutes={minutes}", f"training.model_dir={model_dir}", *extra]
    command = [sys.executable, "-m", "seq2seq", "train", str(config), "--overwrite"]
    for override in overrides:
        command += ["--set", override]
    subprocess.run(command, check=True)
    return model_dir


def summarize(model_dir: Path) -> dict[str, float]:
    metrics = model_dir / "metrics.jsonl"
    valid = read_events(metrics, "valid")
    best = max(valid, key=lambda r: r["bleu"])
    final = read_events(metrics, "final")[-1]
    speeds = [r["tokens_per_second"] for r in read_events(metrics, "train")]
    return {"valid_bleu": best["bleu"], "valid_ppl": best["ppl"], "test_bleu": final.get("test_bleu", float("nan")),
            "tokens_per_second": statistics.median(speeds) if speeds else float("nan"), "steps": valid[-1]["step"]}


def table(rows: dict[str, dict[str, float]], minutes: float) -> str:
    lines = [f"| attention | valid BLEU | valid ppl | test BLEU | target tokens/s | updates in {minutes:g} min |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['valid_bleu']:.2f} | {r['valid_ppl']:.2f} | {r['test_bleu']:.2f} | "
                     f"{r['tokens_per_second']:.0f} | {r['steps']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each variant")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--only", nargs="*", help="variant names to run (e.g. dot dot+feed none)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()
    rows = {}
    for attention, feeding in VARIANTS:
        name = variant_name(attention, feeding)
        if args.only and name not in args.only:
            continue
        rows[name] = summarize(train(args.config, args.out, attention, feeding, args.minutes, args.overrides))
    text = table(rows, args.minutes)
    print(text)
    (args.out / "ablation.md").write_text(text + "\n", encoding="utf-8")
    plot_learning_curves({name: args.out / name / "metrics.jsonl" for name in rows}, args.out / "ablation.png")


if __name__ == "__main__":
    main()
