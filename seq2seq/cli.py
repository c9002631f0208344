"""Command line: ``seq2seq train|translate``. Parses arguments and delegates; holds no logic.

Exit codes: 0 success, 2 usage or input error (one paragraph on stderr, no traceback), 1 a bug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seq2seq.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seq2seq", description="LSTM + Luong attention neural machine translation.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", help="YAML config file (see configs/)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value, e.g. --set training.max_steps=100 (repeatable)")
    train.add_argument("--overwrite", action="store_true", help="delete a non-empty model directory first")

    translate = commands.add_parser("translate", help="translate sentences with a trained model")
    translate.add_argument("model_dir", help="a trained model directory (training.model_dir)")
    translate.add_argument("sentences", nargs="*", help="sentences to translate (else -i FILE, else stdin)")
    translate.add_argument("-i", "--input", help="file with one sentence per line")
    translate.add_argument("-o", "--output", help="write translations here instead of stdout")
    return parser


def run_train(args: argparse.Namespace) -> None:
    from seq2seq.config import load_config
    from seq2seq.training import fit

    fit(load_config(args.config, args.overrides), overwrite=args.overwrite)


def run_translate(args: argparse.Namespace) -> None:
    from seq2seq.corpus import read_lines
    from seq2seq.translator import Translator

    translator = Translator.from_dir(args.model_dir)
    if args.sentences:
        lines = list(args.sentences)
    elif args.input:
        lines = read_lines(args.input)
    else:
        lines = [line.rstrip("\r\n") for line in sys.stdin]
    text = "".join(line + "\n" for line in translator.translate(lines))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": run_train, "translate": run_translate}[args.command](args)
    except UserError as error:
        print(f"seq2seq {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seq2seq {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
