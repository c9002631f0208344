"""Sentence segmenters on the gold set ``data/segmentation/gold.json`` (German and English, with their traps).

For each candidate: the items segmented exactly right, and precision, recall and F1 of the sentence boundaries it
finds; then the items it got wrong. The candidates besides sentencex (our dependency) are optional installs:

  pip install sentence-splitter pysbd
  python scripts/compare_segmenters.py [--gold data/segmentation/gold.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from seq2seq.documents.segmentation import aligned_spans

Segment = Callable[[str, str], list[str]]  # (language, text) -> sentences


def candidates() -> dict[str, Segment]:
    """Each installed segmenter as (language, text) → sentences."""
    from sentencex import segment

    found: dict[str, Segment] = {"sentencex": lambda lang, text: list(segment(lang, text))}
    try:
        from sentence_splitter import SentenceSplitter

        moses = {lang: SentenceSplitter(language=lang) for lang in ("de", "en")}
        found["sentence-splitter (Moses)"] = lambda lang, text: moses[lang].split(text)
    except ImportError:
        print("sentence-splitter is not installed: skipped")
    try:
        import pysbd

        sbd = {lang: pysbd.Segmenter(language=lang, clean=False) for lang in ("de", "en")}
        found["pysbd"] = lambda lang, text: sbd[lang].segment(text)
    except ImportError:
        print("pysbd is not installed: skipped")
    return found


def boundaries(text: str, sentences: list[str]) -> set[int]:
    """Where the sentences end inside the text (the text's own end excluded)."""
    return {end for _, end in aligned_spans(text, sentences) if text[end:].strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "segmentation" /
                        "gold.json")
    items = json.loads(parser.parse_args().gold.read_text(encoding="utf-8"))["items"]
    print("| segmenter | items right | boundary precision | recall | F1 |")
    print("| --- | --- | --- | --- | --- |")
    wrong: dict[str, list[str]] = {}
    for name, segment in candidates().items():
        right, found, correct, wanted = 0, 0, 0, 0
        for item in items:
            text = " ".join(item["sentences"])
            got = [s.strip() for s in segment(item["lang"], text) if s.strip()]
            right += got == item["sentences"]
            if got != item["sentences"]:
                wrong.setdefault(name, []).append(f"{item['lang']}: {' | '.join(got)}")
            gold, predicted = boundaries(text, item["sentences"]), boundaries(text, got)
            found, correct, wanted = found + len(predicted), correct + len(gold & predicted), wanted + len(gold)
        precision, recall = correct / max(found, 1), correct / max(wanted, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        print(f"| {name} | {right} of {len(items)} | {100 * precision:.1f} | {100 * recall:.1f} | {100 * f1:.1f} |")
    for name, mistakes in wrong.items():
        print(f"\n{name} got wrong:")
        for mistake in mistakes:
            print(f"  {mistake}")


if __name__ == "__main__":
    main()
