"""Data-parallel training under ``torchrun``: one process per CPU share or GPU, on one machine or several.

torchrun starts the processes and sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; we only
join the process group (gloo on CPU, nccl on CUDA) and wrap the model in DistributedDataParallel.

Every process plans the same global batches (same seed) and trains on its own share of each one (see
:mod:`seq2seq.data.loader`). The loss
of a share is divided by the *global* batch's token count times the number of processes, so that DDP's
gradient average is exactly the gradient of the whole batch: ``training.batch_tokens`` is the global batch,
and results do not depend on the number of processes. Decisions that must agree (stop, save, early
stopping, the plateau schedule) are made once, or from values all processes share, and never diverge.

Outside torchrun everything here reduces to the single-process case with no communication.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from seq2seq.common.device import pick_device
from seq2seq.config import TrainingConfig
from seq2seq.errors import UserError

if dist.is_available():  # before any process group exists: see Distributed.close
    import torch.distributed.nn  # noqa: F401

SEED_STRIDE = 1_000_003  # a prime, larger than any seed, rank or step count in practice


def mixed_seed(major: int, minor: int) -> int:
    """One seed from two numbers, distinct for distinct pairs (e.g. a run's seed and a process's rank)."""
    return major * SEED_STRIDE + minor


@dataclass
class Distributed:
    """This process's place in the job (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # where this process computes (and its collectives run)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every file and log line of the run."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all processes."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flags: list[bool]) -> list[bool]:
        """For each flag: is it set in any process?"""
        return [total > 0 for total in self.sum([float(flag) for flag in flags])]

    def broadcast(self, value: float) -> float:
        """Rank 0's ``value``, in every process."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(tensor, src=0)
        return tensor.item()

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (a picklable object, e.g. RNG states)."""
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def close(self, *, wait: bool = True) -> None:
        """Leave the job. ``wait``: first wait for every process, so none tears down a group others still use.

        Destroying the group frees it, and joins its gloo threads, once nothing else holds it (DDP does: drop
        the wrapper first). ``torch.distributed.nn``, which DDP's first use imports, takes ``group.WORLD`` as a
        default argument; imported after the group exists, it would hold the group for the life of the
        process, and the threads would be torn down during interpreter shutdown, which now and then aborts
        the process ("terminate called without an active exception"). So this module imports it first.
        """
        if self.enabled and dist.is_initialized():
            if wait:
                dist.barrier()
            dist.destroy_process_group()


def setup(train: TrainingConfig) -> Distributed:
    """Join the torchrun job described by the environment, or return the single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(device=pick_device(train.device, key="training.device"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(train.device, local_rank=local_rank, key="training.device")
    use_cuda = device.type == "cuda"
    backend = train.backend if train.backend != "auto" else ("nccl" if use_cuda else "gloo")
    if backend == "nccl" and not use_cuda:
        raise UserError("training.backend is 'nccl', which needs CUDA devices; use gloo (or auto) on CPU.")
    if use_cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(minutes=train.collective_timeout_minutes))
    return Distributed(rank, world_size, local_rank, device)
