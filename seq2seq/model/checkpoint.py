"""Checkpoints: saving and loading them, step checkpoints and their pruning, and averaging.

Every save goes through :func:`seq2seq.common.atomic.atomic_file`, so a crash or kill during a save never leaves
a half-written checkpoint behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from seq2seq.common.atomic import atomic_file
from seq2seq.errors import UserError


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save ``state`` straight into a temporary file, then rename it over ``path``.

    Streaming to the file (rather than serializing into memory first) keeps a save from holding a second
    copy of the model and optimizer state: that copy was the largest transient of a training run.
    """
    with atomic_file(path) as handle:
        torch.save(state, handle)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; a missing or corrupt file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist. Train a model first (seq2seq train CONFIG).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise UserError(f"checkpoint {path} is truncated or corrupt and cannot be loaded ({error}).") from None


def model_weights(state: dict[str, Any], path: Path, *, training: bool = False) -> dict[str, torch.Tensor]:
    """The weights to decode from a loaded checkpoint: its ``model``, or with ``training`` its ``training_model``.

    A run with ``training.ema_decay`` saves the moving average as ``model`` (what validation chose) and the
    weights that trained as ``training_model``; comparing the two needs both to be decodable.
    """
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise UserError(f"{path} is not a seq2seq checkpoint: it holds no model weights.")
    if not training:
        return state["model"]
    if not isinstance(state.get("training_model"), dict):
        raise UserError(f"checkpoint {path} holds no separate training weights: only runs with "
                        "training.ema_decay save them; decode it without --training-weights.")
    return state["training_model"]


# ---------------------------------------------------------------------------------------------------------
# Step checkpoints: checkpoints/step_N.pt, written at validations, pruned by keep_last / keep_best
# ---------------------------------------------------------------------------------------------------------

_STEP_NAME = re.compile(r"step_(\d+)\.pt")


def step_checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"step_{step:07d}.pt"


def step_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of every step checkpoint in ``directory``, oldest first."""
    found = []
    for path in Path(directory).glob("step_*.pt"):
        match = _STEP_NAME.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def newest_step_checkpoints(directory: Path, count: int, *, option: str) -> list[Path]:
    """The newest ``count`` step checkpoints in ``directory``, oldest first; fewer is a UserError that names
    the command-line ``option`` which asked for them."""
    found = step_checkpoints(directory)
    if len(found) < count:
        raise UserError(f"{directory} holds {len(found)} step checkpoints (step_N.pt), fewer than {option} {count}. "
                        f"Lower {option}, or train with a larger training.keep_last.")
    return [path for _, path in found[len(found) - count:]]


def prune_step_checkpoints(directory: Path, *, keep_last: int, keep_best: int, scores: dict[int, float],
                           higher_is_better: bool) -> list[Path]:
    """Delete step checkpoints that are neither among the newest ``keep_last`` nor the best ``keep_best``.

    ``scores`` maps a step to its validation metric. Returns the deleted paths.
    """
    found = step_checkpoints(directory)
    keep = {step for step, _ in found[max(len(found) - keep_last, 0):]} if keep_last else set()
    scored = [step for step, _ in found if step in scores]
    scored.sort(key=lambda step: scores[step], reverse=higher_is_better)
    keep.update(scored[:keep_best])
    deleted = [path for step, path in found if step not in keep]
    for path in deleted:
        path.unlink(missing_ok=True)
    return deleted


def average_checkpoints(paths: list[Path], *, training: bool = False) -> dict[str, Any]:
    """The element-wise mean of the model weights in ``paths`` (checkpoint averaging, as in Vaswani et al.).

    Returns a checkpoint dict with the averaged ``model`` and the ``config`` of the newest checkpoint. With
    ``training``, it averages the weights that trained instead of their moving average (:func:`model_weights`).
    """
    if not paths:
        raise UserError("no checkpoints to average.")
    total: dict[str, torch.Tensor] = {}
    newest: dict[str, Any] = {}
    for path in paths:
        newest = load_checkpoint(path)
        weights = model_weights(newest, path, training=training)
        if total and weights.keys() != total.keys():
            raise UserError(f"checkpoint {path} holds different parameters from {paths[0]}; "
                            "only checkpoints of one run can be averaged.")
        for name, tensor in weights.items():
            total[name] = total[name] + tensor.double() if name in total else tensor.double()
    model = {name: (tensor / len(paths)).to(weights[name].dtype) for name, tensor in total.items()}
    return {"model": model, "config": newest.get("config"), "averaged": [str(Path(p).name) for p in paths]}
