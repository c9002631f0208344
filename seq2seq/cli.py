"""Command line: ``seq2seq prepare|train|translate|evaluate|average|shortlist|serve|keys``. Parses and checks arguments,
then delegates: the work lives in the layers below.

Exit codes: 0 success, 2 usage or input error (one paragraph on stderr, no traceback), 1 a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seq.common.arguments import non_negative_float, port_number, positive_float, positive_int
from seq2seq.common.model_dir import AVERAGED, BEST, LAST, ModelDir
from seq2seq.decoding.control_arguments import add_control_arguments, open_constraints, policy_of
from seq2seq.errors import UserError
from seq2seq.serve.keys_command import add_keys_parser, run_keys
from seq2seq.serve.settings import ServeSettings

if TYPE_CHECKING:
    from seq2seq.decoding.translator import Translator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seq2seq", description="LSTM + Luong attention neural machine translation.")
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="prepare a config's corpus once (train runs it when needed)")
    add_config_arguments(prepare)
    prepare.add_argument("--verify", action="store_true", help="check the prepared data against its manifest, "
                         "every file's SHA-256 included, and prepare nothing: exit 0 when intact, else 2 naming each "
                         "damaged file")

    train = commands.add_parser("train", help="train a model from a YAML config")
    add_config_arguments(train)
    train.add_argument("--overwrite", action="store_true", help="delete a non-empty model directory first")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in training.model_dir from checkpoints/last.pt, exactly where it "
                       "stopped")
    train.add_argument("--resume-from", metavar="CHECKPOINT",
                       help="continue from this checkpoint (a file in MODEL_DIR/checkpoints, e.g. step_0004000.pt)")

    average = commands.add_parser("average", help="average the weights of a run's last step checkpoints")
    average.add_argument("model_dir", help="a trained model directory (training.model_dir)")
    average.add_argument("-n", type=positive_int, default=5, help="how many of the newest step checkpoints "
                         "(default 5)")
    average.add_argument("-o", "--output", default=AVERAGED,
                         help="file name in MODEL_DIR/checkpoints (default averaged.pt); translate with "
                         "--checkpoint NAME")
    average.add_argument("--training-weights", action="store_true", help="average the weights that trained "
                         "instead of their moving average (runs with training.ema_decay)")

    shortlist = commands.add_parser("shortlist", help="learn a trained model's vocabulary shortlist and decide on "
                                    "valid whether decoding uses it (training does this at its end)")
    shortlist.add_argument("model_dir", help="a trained model directory (training.model_dir)")

    translate = commands.add_parser("translate", help="translate sentences with a trained model")
    translate.add_argument("model_dir", help="a trained model directory (training.model_dir)")
    translate.add_argument("sentences", nargs="*", help="sentences to translate (else -i FILE, else stdin)")
    translate.add_argument("-i", "--input", help="file with one sentence per line")
    translate.add_argument("-o", "--output", help="write translations here instead of stdout")
    add_search_arguments(translate)
    translate.add_argument("--n-best", type=positive_int, default=1,
                           help="print the N best translations per line as 'INDEX ||| text ||| score'")
    translate.add_argument("--attention-dir", type=Path, help="write one attention heatmap PNG per sentence here")
    translate.add_argument("--split-sentences", action="store_true",
                           help="cut each line into sentences and translate each as its own; the output keeps one "
                                "line per input line, with the line's spacing")
    translate.add_argument("--align", action="store_true",
                           help="append ' ||| ' and word alignments from the attention (Pharaoh format)")
    add_control_arguments(translate)

    evaluate = commands.add_parser("evaluate", help="translate a test set and print BLEU and chrF")
    evaluate.add_argument("model_dir", help="a trained model directory (training.model_dir)")
    evaluate.add_argument("--src", required=True, help="source sentences, one per line")
    evaluate.add_argument("--ref", required=True, help="reference translations, line-aligned with --src")
    add_search_arguments(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_serve_parser(commands)
    add_keys_parser(commands, positive_int)
    return parser


def add_serve_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve models over HTTP: a LibreTranslate-compatible API, a native "
                                "API and a web page (needs the serve extra)")
    serve.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR", help="trained model directories; each "
                       "serves its language pair, named after its directory")
    types = {"port": port_number, "beam": positive_int, "max_batch": positive_int, "max_texts": positive_int,
             "max_chars": positive_int, "req_limit": positive_int, "char_limit": positive_int,
             "max_connections": positive_int, "timeout_s": positive_float}
    for setting in dataclasses.fields(ServeSettings):  # every option, its default and its help, from one place
        flag, doc = f"--{setting.name.replace('_', '-')}", setting.metadata["doc"]
        if setting.type == "bool":
            serve.add_argument(flag, action="store_true", help=doc)
            continue
        shown = "" if setting.default is None else f" (default {setting.default})"
        serve.add_argument(flag, type=types.get(setting.name, str), default=setting.default, help=doc + shown)
    add_precision_arguments(serve)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set training.max_steps=100 (repeatable)")


# seq2seq.decoding.precision.PRECISIONS, spelled out: this module imports torch only after setting its environment.
PRECISIONS = ("fp32", "bf16", "int8")


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="number format of decoding: fp32 "
                        "(as trained, the default), bf16 (CPUs with AVX-512 BF16 or AMX, and GPUs) or int8 (dynamic "
                        "quantization of the LSTM and Linear layers, CPU)")
    parser.add_argument("--quantize", choices=["int8"], help="the same as --precision int8")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    add_precision_arguments(parser)
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--checkpoint", action="append", metavar="NAME",
                        help="checkpoint file in MODEL_DIR/checkpoints (default: best.pt); repeat the option "
                        "(--checkpoint A --checkpoint B) to decode the files as an ensemble that averages their "
                        "next-piece probabilities")
    chosen.add_argument("--ensemble-last", type=positive_int, metavar="K", help="decode with an ensemble of the "
                        "newest K step checkpoints (the ones `seq2seq average -n K` would average)")
    parser.add_argument("--training-weights", action="store_true", help="decode the weights that trained instead "
                        "of their moving average, which a run with training.ema_decay saves as its model")
    parser.add_argument("--beam", type=positive_int, help="beam size (default: the model's decoding.beam_size; "
                        "1 is greedy search)")
    parser.add_argument("--length-penalty", type=non_negative_float, metavar="ALPHA", help="alpha of the beam "
                        "search's length penalty (default: the model's decoding.length_penalty; higher favours "
                        "longer output)")
    parser.add_argument("--batch-size", type=positive_int, help="sentences per batch (default: decoding.batch_size)")
    parser.add_argument("--shortlist", action=argparse.BooleanOptionalAction, help="score only the target pieces "
                        "of the model's vocabulary shortlist (default: the model's decoding.shortlist, which training "
                        "turns on where it pays)")


def load_translator(args: argparse.Namespace) -> Translator:
    """The model of ``args.model_dir`` with the chosen checkpoints, precision and ``--length-penalty``."""
    from seq2seq.decoding.translator import Translator

    return Translator.from_dir(args.model_dir, checkpoint=chosen_checkpoints(args), precision=precision(args),
                               shortlist=args.shortlist, length_penalty=args.length_penalty,
                               training_weights=args.training_weights)


def precision(args: argparse.Namespace) -> str:
    """``--precision``, or int8 for ``--quantize int8`` (which contradicts an explicit other precision)."""
    if args.quantize is None:
        return args.precision
    if args.precision not in ("fp32", args.quantize):
        raise UserError(f"--quantize {args.quantize} and --precision {args.precision} ask for two number formats; "
                        "give one of them.")
    return args.quantize


def chosen_checkpoints(args: argparse.Namespace) -> list[str]:
    """The checkpoint names of ``--checkpoint`` or ``--ensemble-last``, in MODEL_DIR/checkpoints."""
    if args.ensemble_last is None:
        return args.checkpoint or [BEST]
    from seq2seq.decoding.translator import require_model_dir
    from seq2seq.model.checkpoint import newest_step_checkpoints

    directory = ModelDir(require_model_dir(args.model_dir)).checkpoints
    return [path.name for path in newest_step_checkpoints(directory, args.ensemble_last, option="--ensemble-last")]


def run_prepare(args: argparse.Namespace) -> None:
    from seq2seq.common.log_setup import setup_logging
    from seq2seq.config import load_config
    from seq2seq.data.prepare import ensure_prepared, read_manifest, verify_prepared

    setup_logging()
    config = load_config(args.config, args.overrides)
    if args.verify:
        directory, problems = verify_prepared(config)
        if problems:
            raise UserError(f"{directory} does not verify:\n" + "".join(f"  {problem}\n" for problem in problems)
                            + f"Prepare it again with: seq2seq prepare {args.config}")
        print(f"verified {directory}: every file as prepare wrote it")
        return
    directory = ensure_prepared(config)
    manifest = read_manifest(directory)
    if manifest is None:
        raise UserError(f"{directory} was prepared but its manifest cannot be read back.")
    counts = manifest["counts"]
    splits = ", ".join(f"{name} {count['kept']:,} pairs" for name, count in counts.items())
    print(f"prepared {directory}: {splits}")


def run_shortlist(args: argparse.Namespace) -> None:
    from seq2seq.common.log_setup import setup_logging
    from seq2seq.training.finish import shortlist_trained

    setup_logging()
    choice = shortlist_trained(Path(args.model_dir))
    print(f"valid BLEU {choice.listed[0]:.2f} with the shortlist, {choice.full[0]:.2f} without; a batch scores "
          f"{100 * choice.share:.0f}% of the target pieces with it. decoding.shortlist: "
          f"{'on' if choice.used else 'off'}")


def run_train(args: argparse.Namespace) -> None:
    from seq2seq.common.stop_signals import Interrupted
    from seq2seq.config import load_config
    from seq2seq.model.network import check_model_config
    from seq2seq.training.fit import fit

    config = load_config(args.config, args.overrides, checks=[check_model_config])
    try:
        fit(config, overwrite=args.overwrite, resume=args.resume, resume_from=args.resume_from,
            config_source=args.config)
    except Interrupted as stop:
        if not stop.is_main:
            return
        sets = "".join(f" --set {override}" for override in args.overrides)
        print(f"seq2seq train: stopped by {stop.signal_name} after update {stop.step}; the state is saved in "
              f"{stop.checkpoint}. Continue with: seq2seq train {args.config}{sets} --resume", file=sys.stderr)


def run_average(args: argparse.Namespace) -> None:
    from seq2seq.model.checkpoint import average_checkpoints, newest_step_checkpoints, save_checkpoint

    checkpoints = ModelDir(args.model_dir).checkpoints
    chosen = newest_step_checkpoints(checkpoints, args.n, option="-n")
    output = checkpoints / args.output
    if output in chosen or output.name in (LAST, BEST):
        raise UserError(f"-o {args.output} would overwrite a training checkpoint; choose another name.")
    save_checkpoint(output, average_checkpoints(chosen, training=args.training_weights))
    print(f"averaged {', '.join(path.name for path in chosen)} into {output}; translate with "
          f"--checkpoint {output.name}")


def run_translate(args: argparse.Namespace) -> None:
    from seq2seq.common.log_setup import setup_logging
    from seq2seq.common.textio import PROGRESS_MIN_LINES, open_input
    from seq2seq.decoding.constraints import Constraints
    from seq2seq.decoding.translation_output import stream_translations

    setup_logging()
    if args.attention_dir is not None and args.attention_dir.exists() and not args.attention_dir.is_dir():
        raise UserError(f"--attention-dir {args.attention_dir} exists and is not a directory.")
    if args.input and not Path(args.input).is_file():
        raise UserError(f"input file {args.input} does not exist or is not a file.")
    policy = policy_of(args)
    translator = load_translator(args)
    options = translator.search_options(beam_size=args.beam, n_best=args.n_best, batch_size=args.batch_size,
                                        policy=policy, seed=args.seed)
    with contextlib.ExitStack() as stack:
        source = open_input(stack, args.sentences, args.input)
        constraints = open_constraints(stack, args.constraints)
        out = stack.enter_context(open_output(args.output)) if args.output else sys.stdout
        shown = source.total if (source.total or 0) >= PROGRESS_MIN_LINES else None
        stream_translations(translator, source.lines, out, options,
                            chunk_lines=1 if source.interactive else options.batch_size * 4, align=args.align,
                            attention_dir=args.attention_dir, constraints=constraints,
                            avoid=Constraints.of({"avoid": args.avoid}, where="--avoid"),
                            split_sentences=args.split_sentences, progress_total=shown)


def open_output(path: str) -> io.TextIOWrapper:
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write the output file {path}: {error.strerror}.") from None


def run_evaluate(args: argparse.Namespace) -> None:
    from seq2seq.common.log_setup import setup_logging
    from seq2seq.decoding.evaluation import evaluate_files

    setup_logging()
    translator = load_translator(args)
    options = translator.search_options(beam_size=args.beam, batch_size=args.batch_size)
    result = evaluate_files(translator, args.src, args.ref, options=options)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"BLEU = {result['bleu']:.2f}  ({result['bleu_signature']})")
        print(f"chrF = {result['chrf']:.2f}  ({result['chrf_signature']})")
        print(f"BLEU = {result['bleu_lowercase']:.2f}  ({result['bleu_lowercase_signature']})")
        search = ("greedy" if result["beam"] == 1
                  else f"beam {result['beam']}, length penalty {result['length_penalty']}")
        print(f"{result['sentences']} sentences, {search}")


def run_serve(args: argparse.Namespace) -> None:
    from seq2seq.common.log_setup import setup_logging

    try:
        from seq2seq.serve.server import serve
    except ImportError as error:
        raise UserError(f"serving needs the serve extra ({error.name} is missing): pip install -e '.[serve]'") \
            from None
    setup_logging()
    settings = ServeSettings(**{setting.name: getattr(args, setting.name)
                                for setting in dataclasses.fields(ServeSettings)})
    serve(args.model_dirs, settings, precision=precision(args))


# oneDNN (bf16 on CPU) caches a compiled kernel per tensor shape, 1,024 by default. Training's token batches
# have many shapes, and on the benchmark config the cache alone grew training memory by about 640 MB; 16 entries
# cost training no measurable speed. Decoding keeps the default: its shapes repeat from step to step, and bf16
# translation ran 10% slower with 16 entries (for 56 MB less memory). Set before torch is imported; a user's own
# setting wins.
ONEDNN_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        os.environ.setdefault(*ONEDNN_CACHE)
    if rest and args.command == "translate" and not any(word.startswith("-") for word in rest):
        args.sentences += rest  # sentences after an option: `translate MODEL --beam 1 "A sentence."`
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a translation is never lost to the terminal's encoding
    try:
        commands = {"prepare": run_prepare, "train": run_train, "translate": run_translate, "evaluate": run_evaluate,
                    "average": run_average, "serve": run_serve, "shortlist": run_shortlist, "keys": run_keys}
        commands[args.command](args)
    except UserError as error:
        print(f"seq2seq {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"seq2seq {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
