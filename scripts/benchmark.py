"""Benchmark harness: training and translation speed against this machine's matmul roofline, side by side.

Usage:
  python scripts/benchmark.py [--config configs/toy.yaml] [--data-dir DIR] [--model-dir DIR] [--quick] [--json]
      [--train-only | --translate-only] [--baseline COMMIT] [--batch-size N] [--set section.key=value ...]

``--translate-only --model-dir DIR --baseline COMMIT`` times translation of this checkout and of an earlier
commit's package (extracted with ``git archive``), in turns, one child process each, and prints per search:
sentences/s, target pieces/s, the model MFLOP per sentence the search needed, % of the fp32 roofline, BLEU.

Every figure is the median of several timed repetitions after a warm-up, and all are measured in one run,
so ratios hold on a noisy machine; the training variants and the roofline's matrix products take turns.
Training is measured without input feeding (the parallel path), with it (the fused loop), with it through
the plain step loop (the reference the fused loop replaces), and in bf16 autocast where this machine runs
bf16 faster than fp32. Training and translation run in child processes so that each reports its own peak
resident memory. Without --model-dir, a model is first trained with the config (for --train-minutes) so
that translation speed comes with a meaningful BLEU.

Model FLOPs per target token (multiply-adds count 2; training = 3 x forward: backward costs ~2 x forward):
  encoder, per source token:  sum over layers l and directions: 2 * 4 * H_e * (in_l + H_e),
                              in_1 = E, in_l = dirs * H_e                     (x S/T source tokens per target)
  decoder LSTM:               sum over layers: 2 * 4 * H * (in_l + H), in_1 = E (+ H with input feeding)
  attention:                  2 * S * H (scores) + 2 * S * H_enc (context)
                              (+ 2 * H_enc * H per source token for general/concat keys)
  W_c and output layer:       2 * (H_enc + H) * H + 2 * H * V
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

from seq2seq.config import Config, ModelConfig, load_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the report beside this script, however it is loaded
from benchmark_report import median_results, report  # noqa: E402


def package_module(name: str, old: str | None = None) -> ModuleType:
    """``seq2seq.<name>`` of this checkout, or of a ``--baseline`` commit's package from before the subpackages,
    where it was ``seq2seq.<old>`` (by default the last part of ``name``)."""
    try:
        return importlib.import_module(f"seq2seq.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"seq2seq.{old or name.rsplit('.', 1)[-1]}")


read_parallel, split_paths = (getattr(package_module("data.corpus"), n) for n in ("read_parallel", "split_paths"))
prepare_data = package_module("data.dataset").prepare_data
first_batches = package_module("data.loader").first_batches
bleu = package_module("decoding.scoring").bleu
translator_module = package_module("decoding.translator")
Translator = translator_module.Translator
build_model = package_module("model.network", old="model").build_model
make_optimizer = package_module("training.optimization").make_optimizer
train_step = package_module("training.update").train_step

TRAIN_VARIANTS = {  # name: (input feeding, plain step loop, autocast dtype)
    "parallel": (False, False, None),  # no input feeding: all steps in one LSTM call
    "input_feeding": (True, False, None),  # the fused loop (seq2seq/model/fused_loop.py)
    "input_feeding_step_loop": (True, True, None),  # the same model through the plain step loop
    "parallel_bf16": (False, False, torch.bfloat16),
    "input_feeding_bf16": (True, False, torch.bfloat16),
}
TRANSLATE_VARIANTS = {  # name: (beam size, precision, vocabulary shortlist)
    f"{search}_{precision}{'_shortlist' if shortlist else ''}": (beam, precision, shortlist)
    for shortlist in (False, True) for precision in ("fp32", "bf16", "int8") for search, beam in (("greedy", 1),
                                                                                                ("beam5", 5))}


def median_time(work, repeats: int) -> float:
    """Median wall time of ``work()`` over ``repeats`` runs, after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(works: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median wall time of each ``work()``, timed in turns (A B C, A B C, ...) after one warm-up each.

    Turns keep the comparison fair on a machine whose speed drifts: a slow minute slows every variant once
    instead of all the repetitions of one."""
    for work in works.values():
        work()
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def gemm_work(size: int = 1024) -> tuple[Callable[[], None], float]:
    """Ten fp32 products of two size x size matrices, and their FLOPs: timed in turn with the training
    variants, their median rate is the roofline, this machine's matmul throughput at the current thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return (lambda: [a @ b for _ in range(10)]), 10 * 2 * size**3


def flops_per_target_token(model: ModelConfig, *, src_vocab: int, trg_vocab: int, src_per_trg: float,
                           src_len: float) -> float:
    """Training FLOPs per target token (forward + backward), from the layer sizes (see the module docstring)."""
    dirs = 2 if model.bidirectional else 1
    h_enc_out = dirs * model.encoder_hidden
    encoder = sum(dirs * 2 * 4 * model.encoder_hidden * ((model.embedding_dim if layer == 0 else h_enc_out)
                                                          + model.encoder_hidden)
                  for layer in range(model.encoder_layers))
    h = model.decoder_hidden
    decoder_in = model.embedding_dim + (h if model.input_feeding else 0)
    decoder = sum(2 * 4 * h * ((decoder_in if layer == 0 else h) + h) for layer in range(model.decoder_layers))
    attention = 2 * src_len * h + 2 * src_len * h_enc_out
    if model.attention in ("general", "concat"):
        encoder += 2 * h_enc_out * h
    output = 2 * (h_enc_out + h) * h + 2 * h * trg_vocab
    return 3 * (encoder * src_per_trg + decoder + attention + output)


def apply_data_dir(config: Config, data_dir: Path | None) -> None:
    """Point the config's split prefixes into ``data_dir`` (keeping their file names)."""
    if data_dir is not None:
        for key in ("train", "valid", "test"):
            prefix = getattr(config.data, key)
            if prefix:
                setattr(config.data, key, str(data_dir / Path(prefix).name))


def load(args: argparse.Namespace) -> Config:
    config = load_config(args.config, args.overrides)
    apply_data_dir(config, args.data_dir)
    return config


# ---------------------------------------------------------------------------------------------------------
# Phases (each runs in its own process)
# ---------------------------------------------------------------------------------------------------------


def phase_train(args: argparse.Namespace) -> dict:
    """Training tokens/s of each variant on the same real batches, and the roofline."""
    config = load(args)
    torch.manual_seed(config.training.seed)
    config.training.model_dir = str(args.model_dir)  # reuses the model's prepared data and sentencepiece files
    src_tok, trg_tok, splits = prepare_data(config, args.model_dir)
    batches = first_batches(splits["train"], batch_tokens=config.training.batch_tokens, seed=config.training.seed,
                            count=args.steps)
    target_tokens = sum(b.num_target_tokens for b in batches)
    src_tokens = sum(int((b.src != 0).sum()) for b in batches)
    mean_src_len = src_tokens / sum(b.src.size(0) for b in batches)
    gemm, gemm_flops = gemm_work()
    works: dict[str, Callable[[], None]] = {"gemm": gemm}
    flops: dict[str, float] = {}
    for name, (feeding, step_loop, autocast) in TRAIN_VARIANTS.items():
        if autocast is not None and not bf16_supported():
            continue
        model_config = ModelConfig(**{**config.model.__dict__, "input_feeding": feeding})
        model = build_model(model_config, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size,
                            max_source_positions=config.data.max_length + 1)
        works[name] = epoch_work(model, make_optimizer(model, config), batches, config, autocast=autocast,
                                 step_loop=step_loop)
        flops[name] = flops_per_target_token(model_config, src_vocab=src_tok.vocab_size,
                                             trg_vocab=trg_tok.vocab_size, src_per_trg=src_tokens / target_tokens,
                                             src_len=mean_src_len)
    seconds = interleaved_medians(works, args.repeats)
    roofline = gemm_flops / seconds.pop("gemm") / 1e9
    speeds = {name: target_tokens / value for name, value in seconds.items()}
    result = {"gemm_gflops": roofline, "train_tok_s": speeds, "model_flops_per_token": flops,
              "roofline_pct": {name: 100 * speeds[name] * flops[name] / (roofline * 1e9) for name in speeds}}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def epoch_work(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list, config: Config, *,
               autocast: torch.dtype | None, step_loop: bool) -> Callable[[], None]:
    """One pass of training updates over ``batches``."""
    def epoch() -> None:
        for batch in batches:
            train_step(model, batch, optimizer, label_smoothing=config.training.label_smoothing,
                       clip_grad_norm=config.training.clip_grad_norm, autocast=autocast, step_loop=step_loop)
    return epoch


def phase_translate(args: argparse.Namespace) -> dict:
    """Sentences/s, target pieces/s and BLEU on the test split for greedy and beam 5, fp32 and int8, timed in
    turns with the roofline's matrix products; with the decoding engine, also the model FLOPs each search needed."""
    config = load(args)
    prefix = config.data.test or config.data.valid
    pairs = read_parallel(*split_paths(prefix, config.data.src_lang, config.data.trg_lang))[: args.sentences]
    sources, references = [s for s, _ in pairs], [r for _, r in pairs]
    outputs: dict[str, list] = {}
    variants = {name: variant for name, variant in TRANSLATE_VARIANTS.items() if name in args.variants}
    translators = {name: translator for name, (_, precision, shortlist) in variants.items()
                   if (translator := variant_translator(args.model_dir, precision, shortlist)) is not None}
    works = {name: translate_work(translator, sources, search_args(translator, variants[name][0], args.batch_size),
                                  outputs.setdefault(name, [])) for name, translator in translators.items()}
    gemm, gemm_flops = gemm_work()
    seconds = interleaved_medians({"gemm": gemm, **works}, args.repeats)
    result = {"code": str(Path(importlib.import_module("seq2seq").__file__).parent.parent),
              "gemm_gflops": gemm_flops / seconds.pop("gemm") / 1e9,
              "translate_sent_s": {name: len(sources) / value for name, value in seconds.items()},
              "translate_pieces_s": {name: sum(len(t.trg_pieces) for t in outputs[name]) / value
                                     for name, value in seconds.items()},
              "bleu": {name: bleu([t.text for t in outputs[name]], references).score for name in works}}
    if hasattr(translator_module, "TranslationStream"):  # the engine counts the work of each search
        result["translate_mflop_per_sentence"] = {
            name: search_flops(translator, sources, variants[name][0], args.batch_size) / len(sources) / 1e6
            for name, translator in translators.items()}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def variant_translator(model_dir: Path, precision: str, shortlist: bool) -> Translator | None:
    """The model of ``model_dir`` in ``precision``, with or without its vocabulary shortlist; None where this
    machine, the model directory or the package (a baseline commit's) cannot decode so."""
    if "precision" not in inspect.signature(Translator.from_dir).parameters:  # a package from before bf16
        if precision == "bf16" or shortlist:
            return None
        return Translator.from_dir(model_dir, quantize=None if precision == "fp32" else precision)
    bf16_runs = package_module("decoding.precision").bf16_supported

    if (precision == "bf16" and not bf16_runs("cpu")) or (shortlist and not (model_dir / "shortlist.pt").is_file()):
        return None
    return Translator.from_dir(model_dir, precision=precision, shortlist=shortlist)


def translate_work(translator: Translator, sources: list[str], search: dict, outputs: list) -> Callable[[], None]:
    """Translate ``sources`` as ``seq2seq translate`` does (``search_args``), leaving the best ones in ``outputs``."""
    def run() -> None:
        outputs[:] = [n_best[0] for n_best in translator.translate_n_best(sources, **search)]
    return run


def search_args(translator: Translator, beam: int, batch_size: int) -> dict:
    """``translate_n_best``'s and ``stream``'s keywords: SearchOptions, or a baseline's ``beam`` and ``batch_size``."""
    return ({"options": translator.search_options(beam_size=beam, batch_size=batch_size)}
            if hasattr(translator, "search_options") else {"beam": beam, "batch_size": batch_size})


def search_flops(translator: Translator, sources: list[str], beam: int, batch_size: int) -> float:
    """The model FLOPs a search of ``sources`` needs, from the work its decoding engine counted: the encoder per
    source position, per decoder row and step the LSTM, W_c, readout and output layer, and attention per real
    source position attended."""
    stream = translator.stream(**search_args(translator, beam, batch_size))
    stream.add(list(enumerate(sources)))
    while not stream.idle:
        stream.step()
    work, model = stream.engine.work, translator.config.model
    dirs = 2 if model.bidirectional else 1
    h_enc, h, e = dirs * model.encoder_hidden, model.decoder_hidden, model.embedding_dim
    encoder = sum(dirs * 2 * 4 * model.encoder_hidden * ((e if layer == 0 else h_enc) + model.encoder_hidden)
                  for layer in range(model.encoder_layers))
    if model.attention in ("general", "concat"):
        encoder += 2 * h_enc * h  # the keys' projection
    decoder_in = e + (h if model.input_feeding else 0)
    tied = model.tied_embeddings != "none"
    row = (sum(2 * 4 * h * ((decoder_in if layer == 0 else h) + h) for layer in range(model.decoder_layers))
           + 2 * (h_enc + h) * h + (2 * h * e if tied and h != e else 0))
    scored = getattr(work, "scored", work.rows * translator.trg_tok.vocab_size)  # rows x pieces scored
    attention = 2 * h + 2 * h_enc  # per position: its score and its share of the context
    return (encoder * work.encoded + row * work.rows + 2 * (e if tied else h) * scored
            + attention * work.attended)


def bf16_supported() -> bool:
    """Whether bf16 matmuls beat fp32 here (CPUs with AVX-512 BF16 or AMX), so bf16 autocast can pay off."""
    a = torch.randn(512, 512)
    fp32 = median_time(lambda: a @ a, 5)
    half = a.bfloat16()
    return median_time(lambda: half @ half, 5) < fp32


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------


def run_phase(phase: str, args: argparse.Namespace, *, repeats: int | None = None, code: Path | None = None) -> dict:
    """Run a phase in a child process (of the package in ``code``, a source tree, instead of this one's)."""
    command = [sys.executable, __file__, "--phase", phase, "--config", str(args.config), "--steps", str(args.steps),
               "--repeats", str(repeats or args.repeats), "--sentences", str(args.sentences)]
    for flag, value in (("--data-dir", args.data_dir), ("--model-dir", args.model_dir),
                        ("--batch-size", args.batch_size), ("--variants", ",".join(args.variants))):
        if value is not None:
            command += [flag, str(value)]
    for override in args.overrides:
        command += ["--set", override]
    env = {**os.environ, "PYTHONPATH": str(code)} if code is not None else None
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def translate_against(args: argparse.Namespace, baseline: str) -> tuple[dict, dict]:
    """The translate phase of this checkout and of the commit ``baseline``, in turns, one timed pass per child
    process and ``--repeats`` turns: the medians of each."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", baseline, "seq2seq"], check=True, capture_output=True,
                                 cwd=Path(__file__).resolve().parent.parent).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        turns: dict[str, list[dict]] = {"this": [], "baseline": []}
        for _ in range(args.repeats):
            turns["this"].append(run_phase("translate", args, repeats=1))
            turns["baseline"].append(run_phase("translate", args, repeats=1, code=Path(tmp)))
    return median_results(turns["this"]), median_results(turns["baseline"])


def train_model(args: argparse.Namespace, model_dir: Path) -> None:
    command = [sys.executable, "-m", "seq2seq", "train", str(args.config), "--overwrite",
               "--set", f"training.model_dir={model_dir}", "--set", f"training.max_minutes={args.train_minutes}",
               "--set", "data.test=null"]
    config = load(args)
    for key in ("train", "valid"):
        command += ["--set", f"data.{key}={getattr(config.data, key)}"]
    for override in args.overrides:
        command += ["--set", override]
    subprocess.run(command, check=True, capture_output=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/toy.yaml"))
    parser.add_argument("--data-dir", type=Path, help="directory holding the config's split files")
    parser.add_argument("--model-dir", type=Path, help="trained model for the translation figures")
    parser.add_argument("--train-minutes", type=float, default=3.0, help="training time when there is no --model-dir")
    parser.add_argument("--quick", action="store_true", help="fewer steps, repeats and sentences (toy: < 3 min)")
    parser.add_argument("--steps", type=int, default=20, help="training batches per timed repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=1000, help="test sentences to translate")
    parser.add_argument("--train-only", action="store_true", help="measure training speed only (no model needed)")
    parser.add_argument("--translate-only", action="store_true", help="measure translation only (needs --model-dir)")
    parser.add_argument("--baseline", metavar="COMMIT", help="also time the translation of this git commit's "
                        "package, in turns with this checkout's")
    parser.add_argument("--batch-size", type=int, help="sentences decoding together (default: the model's "
                        "decoding.batch_size)")
    parser.add_argument("--variants", type=lambda text: text.split(","), default=list(TRANSLATE_VARIANTS),
                        help="comma-separated translation variants to time (default: all this machine and the "
                        f"model can run): {', '.join(TRANSLATE_VARIANTS)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--phase", choices=["train", "translate"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if unknown := set(args.variants) - set(TRANSLATE_VARIANTS):
        parser.error(f"unknown --variants {', '.join(sorted(unknown))}; choose from {', '.join(TRANSLATE_VARIANTS)}")
    if args.quick:
        args.steps, args.repeats, args.sentences = min(args.steps, 8), min(args.repeats, 2), min(args.sentences, 300)
        args.train_minutes = min(args.train_minutes, 1.0)
    return args


def main() -> None:
    args = parse_args()
    if args.phase:
        print(json.dumps((phase_train if args.phase == "train" else phase_translate)(args)))
        return
    if args.translate_only and args.model_dir is None:
        raise SystemExit("--translate-only needs --model-dir")
    results: dict = {"peak_rss_mb": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if args.model_dir is None:
            args.model_dir = Path(tmp) / "model"
            if not args.train_only:
                train_model(args, args.model_dir)
        if not args.translate_only:
            train = run_phase("train", args)
            results.update(train)
            results["peak_rss_mb"] = {"train": train["peak_rss_mb"]}
        if not args.train_only:
            if args.baseline:
                translate, results["baseline"] = translate_against(args, args.baseline)
            else:
                translate = run_phase("translate", args)
            results.update({key: value for key, value in translate.items() if key.startswith("translate_")},
                           bleu=translate["bleu"], translate=translate)
            results["peak_rss_mb"]["translate"] = translate["peak_rss_mb"]
    print(json.dumps(results) if args.json else report(results))


if __name__ == "__main__":
    main()
