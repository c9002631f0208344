"""Tune beam size and length penalty on the valid split (never on test): BLEU for every pair of a grid.

Usage: python scripts/tune_decoding.py MODEL_DIR [--checkpoint best.pt]... [--beams 1 5 10]
                                       [--length-penalties 0 0.6 1.0 1.4]

Reads the valid split named in the run's config.yaml, prints a Markdown table (rows: beam sizes, columns:
length penalties) and the best pair, to copy into the recipe's ``decoding`` section. A repeated
``--checkpoint`` decodes the files as one ensemble, as in ``seq2seq translate`` (see seq2seq/decoding/ensemble.py).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from seq2seq.data.corpus import read_parallel, split_paths
from seq2seq.decoding.scoring import bleu
from seq2seq.decoding.search_types import SearchOptions
from seq2seq.decoding.translator import Translator, translate_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--checkpoint", action="append", help="a file in MODEL_DIR/checkpoints (default best.pt; "
                        "repeated: an ensemble)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--length-penalties", type=float, nargs="+", default=[0.0, 0.6, 1.0, 1.4])
    args = parser.parse_args()
    checkpoints = args.checkpoint or ["best.pt"]
    translator = Translator.from_dir(args.model_dir, checkpoint=checkpoints)
    data = translator.config.data
    pairs = read_parallel(*split_paths(data.valid, data.src_lang, data.trg_lang))
    sources, references = [s for s, _ in pairs], [r for _, r in pairs]
    base = SearchOptions.from_config(translator.config)
    scores: dict[tuple[int, float], float] = {}
    for beam in args.beams:
        for alpha in args.length_penalties if beam > 1 else [0.0]:  # greedy search has no length penalty
            options = replace(base, beam_size=beam, length_penalty=alpha)
            translations = translate_texts(translator.model, translator.src_tok, translator.trg_tok, sources,
                                           options=options, device=translator.device,
                                           max_source_pieces=data.max_length)
            scores[beam, alpha] = bleu([n_best[0].text for n_best in translations], references).score
    print(f"valid BLEU of {args.model_dir} ({' + '.join(checkpoints)}), {len(sources)} sentences\n")
    print("| beam | " + " | ".join(f"length penalty {alpha}" for alpha in args.length_penalties) + " |")
    print("| --- |" + " --- |" * len(args.length_penalties))
    for beam in args.beams:
        cells = [f"{scores[beam, alpha]:.2f}" if (beam, alpha) in scores else "-" for alpha in args.length_penalties]
        if beam == 1:
            cells = [f"{scores[1, 0.0]:.2f} (greedy)"] + ["-"] * (len(args.length_penalties) - 1)
        print(f"| {beam} | " + " | ".join(cells) + " |")
    (beam, alpha), best = max(scores.items(), key=lambda item: item[1])
    print(f"\nbest: beam_size {beam}, length_penalty {alpha} (valid BLEU {best:.2f})")


if __name__ == "__main__":
    main()
