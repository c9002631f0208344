"""What a vocabulary shortlist costs to learn and what it keeps: peak memory, time and coverage per setting.

Usage:
  python scripts/measure_shortlist.py PREPARED_DIR [--max-pairs 500000 200000 ...] [--valid-pairs 1000]

PREPARED_DIR is a prepared data directory (``seq2seq prepare``; MODEL_DIR/data by default): its training arrays
teach the shortlist, its valid arrays measure it. Each setting learns the shortlist in a child process of its own
and reports:
  - the memory the learning added: peak RSS of the child minus its RSS with the arrays opened (the kernel's
    accounting, KiB resolution);
  - the seconds it took and the size of its lexical table (co-occurring source/target piece pairs);
  - coverage: the share of the valid references' target pieces that their source's list holds (a piece outside
    the list cannot be produced), and the mean size of a sentence's list.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def measure(prepared: Path, max_pairs: int, valid_pairs: int) -> dict:
    """Learn the shortlist from ``prepared``'s training arrays (in this process) and measure it."""
    from seq2seq.data.arrays import TokenArray
    from seq2seq.data.tokenizer import load_tokenizers
    from seq2seq.decoding import shortlist as shortlists

    src, trg = TokenArray(prepared / "train.src"), TokenArray(prepared / "train.trg")
    src_tok, trg_tok = load_tokenizers(prepared / "spm")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    table_sizes: list[int] = []
    learn = shortlists.ibm1

    def counted(*args, **kwargs):
        table = learn(*args, **kwargs)
        table_sizes.append(len(table.keys))
        return table

    shortlists.ibm1 = counted
    listed = shortlists.build_shortlist(src, trg, src_vocab_size=src_tok.vocab_size, trg_vocab_size=trg_tok.vocab_size,
                                        max_pairs=max_pairs)
    seconds = time.monotonic() - start
    added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    valid_src, valid_trg = TokenArray(prepared / "valid.src"), TokenArray(prepared / "valid.trg")
    covered = total = pieces = 0
    count = min(valid_pairs, len(valid_src))
    for i in range(count):
        allowed = listed.pieces(valid_src[i].tolist()).numpy()
        reference = valid_trg[i].astype(np.int64)
        covered += int(np.isin(reference, allowed).sum())
        total += len(reference)
        pieces += len(allowed)
    return {"max_pairs": max_pairs, "pairs": min(max_pairs, len(src)), "added_mb": added, "seconds": seconds,
            "table": table_sizes[0], "coverage": covered / max(total, 1), "list_size": pieces / max(count, 1)}


def table(results: list[dict]) -> str:
    lines = ["| pairs learned from | memory added | seconds | table entries | coverage of valid references | "
             "pieces per sentence |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['pairs']:,} | {r['added_mb']:,.0f} MB | {r['seconds']:.1f} | {r['table']:,} | "
                     f"{100 * r['coverage']:.2f}% | {r['list_size']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared", type=Path, help="a prepared data directory (MODEL_DIR/data)")
    parser.add_argument("--max-pairs", type=int, nargs="+", default=[500_000])
    parser.add_argument("--valid-pairs", type=int, default=1000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one measurement, in this process
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.prepared, args.child, args.valid_pairs)))
        return
    results = []
    for max_pairs in args.max_pairs:
        out = subprocess.run([sys.executable, __file__, str(args.prepared), "--child", str(max_pairs),
                              "--valid-pairs", str(args.valid_pairs)], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
