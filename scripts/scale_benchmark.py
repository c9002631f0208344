"""Scale benchmark: prepare and train on synthetic corpora of growing size; memory must not grow with them.

Usage:
  python scripts/scale_benchmark.py [--sizes 29000 1000000 5000000] [--work runs/scale] [--updates 200]
      [--config configs/bench.yaml] [--processes 2] [--valid-pairs 1000] [--json] [--set section.key=value ...]

For each size it builds (once, then reuses) a deterministic English→German corpus from the toy grammar of
scripts/make_toy_corpus.py: unique source sentences of 3-25 words, plus --valid-pairs validation pairs. Then, each
command in a child process of its own:
  1. ``seq2seq prepare``: wall time, pairs/s, size of the prepared directory on disk;
  2. ``seq2seq train`` for --updates updates (no validation until the end, greedy final score): start-up
     (process start to the end of update 1, from the prepared data), peak RSS, training tokens/s (median
     of the per-update figures after the first 10 updates);
  3. the same training under torchrun with --processes processes (one thread each): peak RSS of each.

Peak RSS counts every page a process has resident, including the pages of the memory-mapped arrays it has
touched (shared between processes through the page cache). Single-process figures come from the kernel's
accounting of the finished child (wait4); torchrun workers are sampled from /proc (VmHWM) every 0.1 s.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_grammar():
    spec = importlib.util.spec_from_file_location("make_toy_corpus", ROOT / "scripts" / "make_toy_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build_corpus(directory: Path, pairs: int, *, valid_pairs: int, seed: int = 1) -> Path:
    """DIRECTORY/{train,valid}.{en,de}: ``pairs`` training pairs with unique sources; reused when complete."""
    done = directory / "complete"
    if done.is_file() and done.read_text() == f"{pairs} {valid_pairs}":
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    toy = load_grammar()
    grammar = toy.Grammar(random.Random(seed))
    seen: set[bytes] = set()
    for split, count in (("valid", valid_pairs), ("train", pairs)):
        with open(directory / f"{split}.en", "w", encoding="utf-8") as en, \
                open(directory / f"{split}.de", "w", encoding="utf-8") as de:
            written = 0
            while written < count:
                source, target = grammar.sentence()
                key = hashlib.blake2b(source.encode(), digest_size=8).digest()
                if key in seen or not toy.MIN_WORDS <= len(source.split()) <= toy.MAX_WORDS:
                    continue
                seen.add(key)
                en.write(source + "\n")
                de.write(target + "\n")
                written += 1
    done.write_text(f"{pairs} {valid_pairs}")
    return directory


def run_child(command: list[str], log: Path, *, metrics: Path | None = None) -> dict:
    """Run a command (stderr to ``log``); wall seconds, peak RSS (MiB) from wait4, first metrics event time."""
    start = time.monotonic()
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        first_event = None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if first_event is None and metrics is not None and metrics.is_file() and metrics.stat().st_size:
                first_event = time.monotonic() - start
            time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}); see {log}")
    return {"wall_s": time.monotonic() - start, "peak_rss_mb": usage.ru_maxrss / 1024, "first_event_s": first_event}


def run_torchrun(command: list[str], processes: int, log: Path) -> list[float]:
    """Run under torchrun; the peak RSS (MiB) of each worker, sampled from /proc while they live."""
    with open(log, "w") as stderr:
        launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                     "--nproc-per-node", str(processes), *command], stdout=subprocess.DEVNULL,
                                    stderr=stderr)
        peaks: dict[int, float] = {}
        while launcher.poll() is None:
            for pid in children(launcher.pid):
                peaks[pid] = max(peaks.get(pid, 0.0), vm_hwm_mb(pid))
            time.sleep(0.1)
    if launcher.returncode != 0:
        raise SystemExit(f"torchrun failed ({launcher.returncode}); see {log}")
    return sorted(peaks.values(), reverse=True)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tokens_per_second(metrics: Path, skip: int = 10) -> float:
    """Median of the per-update training speeds after the first ``skip`` updates (fewer in short runs)."""
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    speeds = [e["tokens_per_second"] for e in events if e["event"] == "train"]
    speeds = speeds[min(skip, len(speeds) // 2):]
    return statistics.median(speeds)


def disk_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20


def measure(size: int, args: argparse.Namespace) -> dict:
    corpus = build_corpus(args.work / f"corpus_{size}", size, valid_pairs=args.valid_pairs)
    run_dir = args.work / f"run_{size}"
    shutil.rmtree(run_dir, ignore_errors=True)
    settings = [f"data.train={corpus / 'train'}", f"data.valid={corpus / 'valid'}", "data.test=null",
                "data.src_lang=en", "data.trg_lang=de", f"training.model_dir={run_dir}", *args.overrides]
    seq2seq = [sys.executable, "-m", "seq2seq"]
    sets = [word for setting in settings for word in ("--set", setting)]
    prepared = run_child([*seq2seq, "prepare", str(args.config), *sets], args.work / f"prepare_{size}.log")
    training = [f"training.max_steps={args.updates}", "training.validate_every=1000000", "training.log_every=1",
                "training.save_every_minutes=0", "training.keep_last=0", "training.patience=0",
                "decoding.beam_size=1"]
    train_sets = [*sets, *[word for setting in training for word in ("--set", setting)]]
    trained = run_child([*seq2seq, "train", str(args.config), *train_sets], args.work / f"train_{size}.log",
                        metrics=run_dir / "metrics.jsonl")
    result = {"pairs": size, "prepare_s": prepared["wall_s"], "prepare_pairs_s": size / prepared["wall_s"],
              "prepare_peak_rss_mb": prepared["peak_rss_mb"], "disk_mb": disk_mb(run_dir / "data"),
              "startup_s": trained["first_event_s"], "train_peak_rss_mb": trained["peak_rss_mb"],
              "train_tok_s": tokens_per_second(run_dir / "metrics.jsonl")}
    if args.processes > 1:
        ddp_sets = [*train_sets, "--set", "training.num_threads=1", "--overwrite"]
        result["ddp_peak_rss_mb"] = run_torchrun(["-m", "seq2seq", "train", str(args.config), *ddp_sets],
                                                 args.processes, args.work / f"torchrun_{size}.log")
    return result


def table(results: list[dict]) -> str:
    base = results[0]
    rows = ["| training pairs | prepare | pairs/s | on disk | start-up | peak RSS (× smallest) | tokens/s (× smallest) "
            "| torchrun: RSS of each process |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ddp = ", ".join(f"{mb:,.0f} MB" for mb in r.get("ddp_peak_rss_mb", [])) or "—"
        rows.append(f"| {r['pairs']:,} | {r['prepare_s']:.1f} s | {r['prepare_pairs_s']:,.0f} | {r['disk_mb']:,.0f} MB "
                    f"| {r['startup_s']:.1f} s | {r['train_peak_rss_mb']:,.0f} MB "
                    f"({r['train_peak_rss_mb'] / base['train_peak_rss_mb']:.2f}) | {r['train_tok_s']:,.0f} "
                    f"({r['train_tok_s'] / base['train_tok_s']:.2f}) | {ddp} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[29_000, 1_000_000, 5_000_000])
    parser.add_argument("--work", type=Path, default=Path("runs/scale"), help="corpora and runs go here")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "bench.yaml")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--valid-pairs", type=int, default=1000, help="validation pairs (scored once, greedy)")
    parser.add_argument("--processes", type=int, default=2, help="torchrun processes (1: skip torchrun)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON, not a table")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        results.append(measure(size, args))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results) if args.json else table(results))


if __name__ == "__main__":
    main()
