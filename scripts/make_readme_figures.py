"""Draw an attention heatmap for docs/translating.md from a trained model.

Usage: python scripts/make_readme_figures.py [MODEL_DIR] [--sentence TEXT] [--out docs/attention_toy.png]
(MODEL_DIR defaults to runs/toy, the model that `seq2seq train configs/toy.yaml` writes, and the sentence to
one that shows the toy corpus's verb movements.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seq2seq.decoding.translation_output import write_heatmap
from seq2seq.decoding.translator import Translator

# A fronted subordinate clause (verb-final in German) followed by verb-second inversion and a separable verb.
SENTENCE = "Because the old man has read the book, the woman calls her dog."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default="runs/toy")
    parser.add_argument("--sentence", default=SENTENCE)
    parser.add_argument("--out", type=Path, default=Path("docs/attention_toy.png"))
    args = parser.parse_args()
    translator = Translator.from_dir(args.model_dir)
    translation = translator.translate_with_details([args.sentence], translator.search_options(beam_size=5))[0]
    parts = [part.translation for part in translation.sentences]  # a sentence longer than the model's limit
    outs = [args.out] if len(parts) == 1 else [args.out.with_stem(f"{args.out.stem}-s{k}") for k in range(len(parts))]
    for part, out in zip(parts, outs):  # was translated in parts, each with its own attention
        write_heatmap(part, out)
    print(f"{args.sentence}\n→ {translation.text}\nwrote {', '.join(map(str, outs))}")


if __name__ == "__main__":
    main()
