"""Attention ablation (our version of Luong et al. 2015, Table 4): the same recipe with each score function,
global or local alignment, with and without input feeding, and without attention, each trained on the same
wall-clock budget.

Usage:
  python scripts/ablate_attention.py configs/multi30k_de_en.yaml --minutes 10 --out runs/ablation
      [--only dot location local-m:general local-p:general+feed ...] [--set section.key=value ...]

A variant is ``[ALIGNMENT:]SCORE[+feed]``: ``general`` is global attention with the general score, ``local-p:dot``
local-p attention (model.local_window from the config) with the dot score, ``+feed`` adds input feeding. Each
trains with `seq2seq train` into OUT/<variant>; the script then prints (and writes to OUT/ablation.md) a Markdown
table: valid BLEU (greedy, best checkpoint), valid perplexity, test BLEU greedy and with the config's beam (best
checkpoint), and median training tokens/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from seq2seq.common.plotting import plot_learning_curves, read_events
from seq2seq.config import load_config

VARIANTS = [f"{score}{feed}" for score in ("dot", "general", "concat") for feed in ("", "+feed")]
VARIANTS += ["none", "none+feed", "location", "local-m:dot", "local-m:general", "local-p:dot", "local-p:general"]


def parse_variant(name: str) -> tuple[str, str, bool]:
    """``local-p:general+feed`` → (alignment, score, input feeding)."""
    feeding = name.endswith("+feed")
    alignment, _, score = name.removesuffix("+feed").rpartition(":")
    return alignment or "global", score, feeding


def train(config: Path, out: Path, name: str, minutes: float, extra: list[str]) -> Path:
    model_dir = out / name
    alignment, attention, feeding = parse_variant(name)
    overrides = [f"model.attention={attention}", f"model.alignment={alignment}",
                 f"model.input_feeding={str(feeding).lower()}", f"training.max_minutes={minutes}",
                 f"training.model_dir={model_dir}", *extra]
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
            "test_greedy": greedy_test_bleu(model_dir), "beam": final.get("beam_size"),
            "tokens_per_second": statistics.median(speeds) if speeds else float("nan"), "steps": valid[-1]["step"]}


def greedy_test_bleu(model_dir: Path) -> float:
    """Test BLEU of the model's best checkpoint with greedy search (`seq2seq evaluate --beam 1`)."""
    data = load_config(model_dir / "config.yaml").data
    if not data.test:
        return float("nan")
    command = [sys.executable, "-m", "seq2seq", "evaluate", str(model_dir), "--src", f"{data.test}.{data.src_lang}",
               "--ref", f"{data.test}.{data.trg_lang}", "--beam", "1", "--json"]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)["bleu"]


def table(rows: dict[str, dict[str, float]], minutes: float) -> str:
    beam = next((r["beam"] for r in rows.values() if r.get("beam")), "config")
    lines = [f"| attention | valid BLEU | valid ppl | test BLEU greedy | test BLEU beam {beam} | target tokens/s | "
             f"updates in {minutes:g} min |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['valid_bleu']:.2f} | {r['valid_ppl']:.2f} | {r['test_greedy']:.2f} | "
                     f"{r['test_bleu']:.2f} | {r['tokens_per_second']:.0f} | {r['steps']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each variant")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--only", nargs="*", help="variants to run, in this order (e.g. dot location local-p:general); "
                        "default: every variant of the script's list")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()
    rows = {}
    for name in args.only or VARIANTS:
        rows[name] = summarize(train(args.config, args.out, name, args.minutes, args.overrides))
        (args.out / "ablation.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")  # after each run
    text = table(rows, args.minutes)
    print(text)
    (args.out / "ablation.md").write_text(text + "\n", encoding="utf-8")
    plot_learning_curves({name: args.out / name / "metrics.jsonl" for name in rows}, args.out / "ablation.png")


if __name__ == "__main__":
    main()
