"""Language identifiers restricted to two languages, on 1-, 3- and 10-word snippets and whole sentences.

Snippets are cut (seeded) from a parallel test set, e.g. Multi30k's German and English test sentences; each
identifier chooses between the two languages only, as ``/detect`` does among the served ones. Prints accuracy and
time per text. py3langid is an optional install (Lingua is the serve extra's):

  pip install py3langid
  python scripts/compare_language_ids.py data/multi30k/test_2016_flickr.de data/multi30k/test_2016_flickr.en
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from seq2seq.documents.language import LanguageIdentifier


def identifiers(codes: list[str]) -> dict[str, Callable[[str], str]]:
    lingua = LanguageIdentifier(codes)
    found = {"lingua": lambda text: max(lingua.confidences(text).items(), key=lambda item: item[1])[0]}
    try:
        from py3langid.langid import MODEL_FILE
        from py3langid.langid import LanguageIdentifier as LangId

        langid = LangId.from_model_file(MODEL_FILE, norm_probs=True)
        langid.set_languages(codes)
        found["py3langid"] = lambda text: langid.classify(text)[0]
    except ImportError:
        print("py3langid is not installed: skipped")
    return found


def snippets(lines: list[str], words: int | None, rng: random.Random) -> list[str]:
    """A run of ``words`` consecutive words from each line long enough (None: the whole line)."""
    if words is None:
        return [line for line in lines if line.strip()]
    cut = []
    for line in lines:
        tokens = line.split()
        if len(tokens) >= words:
            start = rng.randrange(len(tokens) - words + 1)
            cut.append(" ".join(tokens[start:start + words]))
    return cut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs=2, help="two files whose extensions are their language codes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    codes = [path.suffix.lstrip(".") for path in args.files]
    texts = {code: path.read_text(encoding="utf-8").splitlines() for code, path in zip(codes, args.files)}
    found = identifiers(codes)
    print("| input | " + " | ".join(f"{name}: accuracy | ms per text" for name in found) + " |")
    print("| --- | " + " | ".join("--- | ---" for _ in found) + " |")
    for words in (1, 3, 10, None):
        rng = random.Random(args.seed)
        cases = [(text, code) for code in codes for text in snippets(texts[code], words, rng)]
        cells = []
        for identify in found.values():
            start = time.perf_counter()
            right = sum(identify(text) == code for text, code in cases)
            cells.append(f"{100 * right / len(cases):.1f}% | {1000 * (time.perf_counter() - start) / len(cases):.3f}")
        label = f"{words} word{'s' if words != 1 else ''}" if words else "whole sentences"
        print(f"| {label} ({len(cases)} texts) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
