"""A torchrun entry point for test_distributed.py: `seq2seq train`, then each rank dumps its weights.

After training each rank also writes the names of its threads that are still running (Linux), so that the
test sees whether the process group was freed before the interpreter shuts down.

Usage: torchrun --nproc-per-node N tests/unit/training/ddp_worker.py DUMP_DIR CONFIG [SECTION.KEY=VALUE ...]
"""

import os
import sys
from pathlib import Path

import torch

from seq2seq.config import load_config
from seq2seq.training import fit, trainer

real_run = trainer.Trainer.run


def run_and_dump(self: trainer.Trainer) -> str:
    reason = real_run(self)
    torch.save(self.model.state_dict(), f"{sys.argv[1]}/rank{self.job.rank}.pt")
    return reason


trainer.Trainer.run = run_and_dump
fit.fit(load_config(sys.argv[2], sys.argv[3:]))

tasks = Path("/proc/self/task")
if tasks.is_dir():
    names = [(task / "comm").read_text().strip() for task in tasks.iterdir()]
    Path(sys.argv[1], f"threads{os.environ['RANK']}.txt").write_text("\n".join(sorted(names)) + "\n")
