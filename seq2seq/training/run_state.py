"""The state of a run that every checkpoint holds (:class:`Progress`, RNG states), and resuming from it:
which checkpoint to continue from, and whether the config still fits it.

A resumed run must be indistinguishable from one that never stopped, so a checkpoint holds everything that
decides the next update: weights, optimizer and scheduler state, the counters (:class:`Progress`) including
the position inside the epoch's batch order, and the state of every random number generator.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seq2seq.common.model_dir import ModelDir
from seq2seq.config import Config, config_from_dict, config_to_dict
from seq2seq.errors import UserError
from seq2seq.model.checkpoint import load_checkpoint, step_checkpoints

log = logging.getLogger(__name__)

# Keys whose change makes a checkpoint unusable or changes what the run means: the vocabularies, the
# network's shapes, the training data and the optimizer's kind. Every other key (validation frequency,
# time and step limits, patience, decoding, ...) may change between a stop and a resume.
BREAKING_SECTIONS = ("tokenizer", "model")
BREAKING_KEYS = {("data", "train"), ("data", "src_lang"), ("data", "trg_lang"), ("data", "max_length"),
                 ("training", "optimizer"), ("training", "scheduler")}


@dataclass
class Progress:
    """Counters of a run, saved in every checkpoint."""

    step: int = 0  # updates made
    epoch: int = 0  # completed passes over the training data
    batch_in_epoch: int = 0  # batches of the current epoch already consumed (the resume position)
    best: float | None = None  # best value of the early-stopping metric so far
    bad_validations: int = 0  # validations since the last improvement
    skipped_updates: int = 0  # updates skipped for a non-finite loss or gradient, in total
    consecutive_skips: int = 0  # ... in a row, up to now
    elapsed: float = 0.0  # seconds of training (validation included) before this session
    metrics_bytes: int = 0  # length of metrics.jsonl when the checkpoint was written
    scores: dict[int, float] = field(default_factory=dict)  # validation metric per step, for keep_best


def rng_state() -> dict[str, Any]:
    """The state of every random number generator training uses (Python's, torch's CPU and CUDA)."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_resume_checkpoint(model_dir: Path, resume_from: str | None) -> tuple[dict[str, Any], Path]:
    """The checkpoint to continue from: ``resume_from`` or ``checkpoints/last.pt``.

    A corrupt file is refused with a message that names the newest step checkpoint that still loads.
    """
    layout = ModelDir(model_dir)
    if resume_from is not None:
        path = Path(resume_from)
        path = path if path.is_file() else layout.checkpoint(resume_from)
    else:
        path = layout.last
    if not path.is_file():
        raise UserError(f"cannot resume: {path} does not exist. Start a new run without --resume (add "
                        "--overwrite to delete the directory).")
    try:
        state = load_checkpoint(path)
    except UserError as error:
        raise UserError(f"{error} {_fallback_advice(layout.checkpoints, path)}") from None
    if "progress" not in state or "optimizer" not in state:
        raise UserError(f"cannot resume from {path}: it holds model weights only (an averaged or exported "
                        "checkpoint), not a training state.")
    return state, path


def _fallback_advice(checkpoints: Path, broken: Path) -> str:
    for step, path in reversed(step_checkpoints(checkpoints)):
        if path == broken:
            continue
        try:
            load_checkpoint(path)
        except UserError:
            continue
        return (f"The newest good checkpoint is {path} (step {step}); continue from it with "
                f"--resume-from {path.name}.")
    return "No other training checkpoint is left; start again with --overwrite."


def check_compatible(saved: dict[str, Any], config: Config, *, source: str) -> None:
    """Refuse config changes that break the checkpoint; log the harmless ones."""
    old = config_to_dict(config_from_dict(saved, source="the checkpoint's config"))
    new = config_to_dict(config)
    changes = [(section, key, old[section][key], new[section][key])
               for section in new for key in new[section] if old[section][key] != new[section][key]]
    breaking = [c for c in changes if c[0] in BREAKING_SECTIONS or (c[0], c[1]) in BREAKING_KEYS]
    if breaking:
        listed = "; ".join(f"{s}.{k}: {a!r} in the checkpoint, {b!r} now" for s, k, a, b in breaking)
        raise UserError(f"cannot resume with {source}: it changes keys the checkpoint depends on ({listed}). "
                        "Restore them, or start a new run with another training.model_dir.")
    for section, key, before, after in changes:
        log.info("resume: %s.%s changed from %r to %r", section, key, before, after)
