"""Where decoding time goes: torch.profiler over ``seq2seq translate``'s path, greedy and beam search.

Usage:
  python scripts/profile_decoding.py MODEL_DIR [--src FILE] [--sentences 300] [--beam 1,5] [--batch-size N]
      [--quantize int8] [--rows 25]

Translates the first --sentences lines of --src (default: the model's test source) once to warm up, then once
under the profiler, for each beam size. Prints the wall time, sentences/s, the share of the time the model's
matrix products take (the part that runs at the roofline), and the operators with the most self CPU time:
what is left to cut per step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from seq2seq.config import load_config
from seq2seq.decoding.translator import Translator

MATMULS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear", "aten::_mkldnn",
           "quantized::linear_dynamic", "aten::mkldnn_rnn", "aten::lstm")


def source_lines(model_dir: Path, path: Path | None, count: int) -> list[str]:
    if path is None:
        data = load_config(model_dir / "config.yaml").data
        path = Path(f"{data.test or data.valid}.{data.src_lang}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:count]


def profile_search(translator: Translator, sentences: list[str], beam: int, batch_size: int | None,
                   rows: int) -> None:
    def run() -> None:
        translator.translate_n_best(sentences, translator.search_options(beam_size=beam, batch_size=batch_size))

    run()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run()
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    matmul = sum(event.self_cpu_time_total for event in events if event.key.startswith(MATMULS))
    print(f"\n=== beam {beam}: {seconds:.2f} s unprofiled, {len(sentences) / seconds:.1f} sent/s; matrix products "
          f"{100 * matmul / max(total, 1):.0f}% of the profiled self time")
    print(events.table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--src", type=Path, help="source sentences, one per line (default: the model's test source)")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--beam", default="1,5", help="beam sizes to profile, comma-separated")
    parser.add_argument("--batch-size", type=int, help="sentences decoding together (default: decoding.batch_size)")
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--rows", type=int, default=25, help="operators to list")
    args = parser.parse_args()
    translator = Translator.from_dir(args.model_dir, quantize=args.quantize)
    sentences = source_lines(args.model_dir, args.src, args.sentences)
    for beam in (int(value) for value in args.beam.split(",")):
        profile_search(translator, sentences, beam, args.batch_size, args.rows)


if __name__ == "__main__":
    main()
