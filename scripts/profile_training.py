"""Where a training step's time goes: torch.profiler over real batches, fast path vs plain step loop.

Usage:
  python scripts/profile_training.py --config configs/bench_joey.yaml [--model-dir runs/bench_joey] [--steps 10]
      [--set section.key=value ...]

The fast path is the parallel decoder without input feeding and the fused loop (seq2seq/model/fused_loop.py)
with it; the plain step loop runs the decoder's step T times through autograd, as training did before the
fused loop. --model-dir keeps the prepared data and sentencepiece files there between runs (without it they
are built in a temporary directory); give each config its own directory. Prints, for each path, the wall
time per batch and the operators with the most self CPU time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from seq2seq.config import load_config
from seq2seq.data.dataset import prepare_data
from seq2seq.data.loader import first_batches
from seq2seq.model.network import build_model
from seq2seq.training.optimization import make_optimizer
from seq2seq.training.update import AUTOCAST_TYPES, train_step


def profile_path(model, optimizer, batches, config, *, step_loop: bool, rows: int) -> float:
    """Print the profile of one pass over ``batches``; return seconds per batch (measured outside the profiler)."""
    autocast = AUTOCAST_TYPES[config.training.autocast]

    def run() -> None:
        for batch in batches:
            train_step(model, batch, optimizer, label_smoothing=config.training.label_smoothing,
                       clip_grad_norm=config.training.clip_grad_norm, autocast=autocast, step_loop=step_loop)

    run()  # warm-up
    start = time.perf_counter()
    run()
    seconds = (time.perf_counter() - start) / len(batches)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    name = "plain step loop" if step_loop else "fast path"
    print(f"\n=== {name}: {seconds * 1000:.0f} ms per batch ===")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/bench.yaml"))
    parser.add_argument("--model-dir", type=Path, help="reuse this model's sentencepiece files")
    parser.add_argument("--steps", type=int, default=10, help="batches per pass")
    parser.add_argument("--rows", type=int, default=15, help="operators shown per path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    torch.manual_seed(config.training.seed)
    with tempfile.TemporaryDirectory() as tmp:
        config.training.model_dir = str(args.model_dir or tmp)  # reuses a model's prepared data when given
        src_tok, trg_tok, splits = prepare_data(config, Path(config.training.model_dir))
        batches = first_batches(splits["train"], batch_tokens=config.training.batch_tokens,
                                seed=config.training.seed, count=args.steps)
    model = build_model(config.model, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size,
                        max_source_positions=config.data.max_length + 1)
    optimizer = make_optimizer(model, config)
    fast = profile_path(model, optimizer, batches, config, step_loop=False, rows=args.rows)
    step = profile_path(model, optimizer, batches, config, step_loop=True, rows=args.rows)
    print(f"\nthe fast path is {step / fast:.2f}x faster than the plain step loop "
          f"({config.training.autocast} autocast, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
