"""Terminology constraints taken from the references, as in Post & Vilar (2018): BLEU without and with them, the
share of constraints met, and decoding speed with and without.

Each test sentence gets 1 or 2 constraints (seeded), each a word or a phrase of 2-3 words cut from its reference
(punctuation stripped at the ends). Usage:

  python scripts/measure_constraints.py runs/multi30k_de_en --src data/multi30k/test_2016_flickr.de \\
      --ref data/multi30k/test_2016_flickr.en [--beam 5] [--seed 1] [--out runs/constraints]

Prints a Markdown table; with --out, also writes the constraints file used (constraints.jsonl) and both outputs.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import sacrebleu

from seq2seq.decoding.constraints import Constraints
from seq2seq.decoding.translator import Translator


def reference_constraints(reference: str, rng: random.Random) -> list[str]:
    """1 or 2 non-overlapping words or phrases of 2-3 words from ``reference``."""
    words = [w for w in (word.strip(".,;:!?\"'()") for word in reference.split()) if w.strip()]
    phrases: list[str] = []
    taken: set[int] = set()
    for _ in range(rng.choice((1, 2))):
        length = min(rng.choice((1, 1, 2, 3)), len(words))
        starts = [i for i in range(len(words) - length + 1) if not taken & set(range(i, i + length))]
        if not starts:
            break
        start = rng.choice(starts)
        taken |= set(range(start, start + length))
        phrases.append(" ".join(words[start:start + length]))
    return phrases


def met(output: str, phrases: list[str]) -> int:
    """How many of ``phrases`` the output holds (a repeated phrase must appear that many times)."""
    return sum(min(len(re.findall(rf"(?<!\w){re.escape(p)}(?!\w)", output)), phrases.count(p)) for p in set(phrases))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--src", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sources = Path(args.src).read_text(encoding="utf-8").splitlines()
    references = Path(args.ref).read_text(encoding="utf-8").splitlines()
    rng = random.Random(args.seed)
    wanted = [reference_constraints(reference, rng) for reference in references]
    translator = Translator.from_dir(args.model_dir)
    options = translator.search_options(beam_size=args.beam)
    translator.translate(sources[:20], options)  # warm up

    rows = []
    for name, constraints in (("without constraints", None), ("with reference constraints",
                                                                 [Constraints(tuple(p)) for p in wanted])):
        start = time.perf_counter()
        outputs = translator.translate(sources, options, constraints=constraints)
        seconds = time.perf_counter() - start
        bleu = sacrebleu.corpus_bleu(outputs, [references]).score
        hits = sum(met(output, phrases) for output, phrases in zip(outputs, wanted))
        rows.append((name, bleu, hits, len(sources) / seconds))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name.split()[0]}.txt").write_text("\n".join(outputs) + "\n", encoding="utf-8")
    if args.out:
        lines = [json.dumps({"include": phrases}, ensure_ascii=False) + "\n" for phrases in wanted]
        (args.out / "constraints.jsonl").write_text("".join(lines), encoding="utf-8")
    total = max(sum(len(p) for p in wanted), 1)
    words = sum(len(p.split()) for phrases in wanted for p in phrases)
    print(f"{len(sources)} sentences, {total} constraints ({words} words), beam {args.beam}\n")
    print("| decoding | BLEU | constraints met | sent/s |")
    print("| --- | --- | --- | --- |")
    for name, bleu, hits, speed in rows:
        print(f"| {name} | {bleu:.2f} | {hits} / {total} ({100 * hits / total:.1f}%) | {speed:.1f} |")


if __name__ == "__main__":
    main()
