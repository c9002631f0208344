"""Back-translation (Sennrich et al. 2016): turn monolingual target-language text into a synthetic parallel corpus.

A model trained in the reverse direction (target → source) translates the monolingual text by sampling, which
Edunov et al. (2018) found makes better synthetic sources than beam search. The output is a corpus prefix whose
files a forward model trains on beside the real corpus (``data.extra_train``):

  python scripts/backtranslate.py runs/en_de --input mono.en --output data/bt/mono
      → data/bt/mono.de (sampled German: the synthetic sources), data/bt/mono.en (the English, copied)

and in the de→en config:

  data:
    train: data/multi30k/train
    extra_train: [data/bt/mono]
  tokenizer:
    user_symbols: ["<BT>"]          # with --tag <BT>: the tag stays one piece

``--tag <BT>`` starts every synthetic source with a tag, so the model can tell them from real ones (Caswell et al.
2019, "Tagged back-translation"). Input is read and output written as a stream, so the monolingual file may be
larger than memory; the files appear under their names only when complete. Sampling is seeded (``--seed``): the
same model, input and seed give the same corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from seq2seq.common.arguments import non_negative_float, non_negative_int, positive_int, probability
from seq2seq.common.log_setup import setup_logging
from seq2seq.common.textio import count_lines, read_input
from seq2seq.decoding.precision import PRECISIONS
from seq2seq.decoding.sampling import Sampling
from seq2seq.decoding.translation_output import stream_translations
from seq2seq.decoding.translator import Translator
from seq2seq.errors import UserError


class Tagged(io.TextIOBase):
    """Writes lines to ``out`` with ``tag`` and a space in front of each non-empty one (a line written in parts
    is tagged once, when it ends)."""

    def __init__(self, out: TextIO, tag: str):
        self.out, self.tag = out, tag
        self.pending = ""  # the start of a line not yet ended

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        self.out.write("".join(f"{self.tag} {line}\n" if line else "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def backtranslate(translator: Translator, source: Path, output: str, *, sampling: Sampling, seed: int,
                  tag: str | None, batch_size: int) -> int:
    """Sample a translation of every line of ``source`` (as ``sampling`` says, from the random streams of ``seed``)
    into OUTPUT.<model's target language>, copy the lines to OUTPUT.<model's source language>; returns the number of
    lines. Both files are renamed into place at the end."""
    data = translator.config.data
    real, synthetic = Path(f"{output}.{data.src_lang}"), Path(f"{output}.{data.trg_lang}")
    real.parent.mkdir(parents=True, exist_ok=True)
    partial = [path.with_name(path.name + ".partial") for path in (real, synthetic)]
    try:
        with contextlib.ExitStack() as stack:
            copy = stack.enter_context(open(partial[0], "w", encoding="utf-8"))
            out = stack.enter_context(open(partial[1], "w", encoding="utf-8"))
            lines = read_input(stack.enter_context(open(source, "rb")), str(source))

            def copied() -> Iterator[tuple[int, str]]:
                for number, text in lines:
                    copy.write(text + "\n")
                    yield number, text

            options = translator.search_options(batch_size=batch_size, policy=sampling, seed=seed)
            count = stream_translations(translator, copied(), Tagged(out, tag) if tag else out, options,
                                        chunk_lines=batch_size * 4, progress_total=count_lines(source))
        for done, path in zip(partial, (real, synthetic)):
            os.replace(done, path)
    except BaseException:
        for path in partial:
            path.unlink(missing_ok=True)
        raise
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a model trained in the reverse direction (target → source)")
    parser.add_argument("--input", required=True, type=Path, help="monolingual text in the model's source language")
    parser.add_argument("--output", required=True, help="prefix of the synthetic corpus (files PREFIX.<lang>)")
    parser.add_argument("--tag", help="start each synthetic sentence with this tag (e.g. <BT>; add it to "
                        "tokenizer.user_symbols)")
    parser.add_argument("--temperature", type=non_negative_float, default=1.0)
    parser.add_argument("--top-k", type=non_negative_int, default=0)
    parser.add_argument("--top-p", type=probability, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=positive_int, default=100)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        if not args.input.is_file():
            raise UserError(f"--input {args.input} does not exist or is not a file.")
        translator = Translator.from_dir(args.model_dir, precision=args.precision)
        sampling = Sampling(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
        count = backtranslate(translator, args.input, args.output, sampling=sampling, seed=args.seed, tag=args.tag,
                              batch_size=args.batch_size)
    except UserError as error:
        print(f"backtranslate: error: {error}", file=sys.stderr)
        return 2
    data = translator.config.data
    print(f"wrote {count} pairs: {args.output}.{data.trg_lang} (synthetic) and {args.output}.{data.src_lang}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
