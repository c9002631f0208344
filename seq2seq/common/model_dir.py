"""The layout of a model directory (``training.model_dir``), in one place.

Training writes it, and translation, averaging, evaluation and serving read it::

    config.yaml        the run's config, with what the end of training chose (length penalty, shortlist)
    spm/               the sentencepiece models
    checkpoints/       best.pt, last.pt, step_NNNNNNN.pt, averaged.pt, best_single.pt
    metrics.jsonl      one JSON event per line (train, valid, final, ...)
    train.log          the log
    tensorboard/       TensorBoard event files (training.tensorboard)
    data/              the prepared corpus, unless data.prepared puts it elsewhere
    shortlist.pt       the vocabulary shortlist
    valid.hyp, test.hyp  the final translations of valid and test
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BEST = "best.pt"  # the checkpoint translation, evaluation and serving use unless told otherwise
LAST = "last.pt"  # the newest training state, for resuming
AVERAGED = "averaged.pt"  # the mean of the last step checkpoints
BEST_SINGLE = "best_single.pt"  # the best single checkpoint, kept when the average replaced best.pt


@dataclass(frozen=True)
class ModelDir:
    """The paths of one model directory (none of them need exist)."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def spm(self) -> Path:
        return self.root / "spm"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, name: str) -> Path:
        """A checkpoint file by name (``BEST``, ``LAST``, ``step_0001000.pt``, ...)."""
        return self.checkpoints / name

    @property
    def best(self) -> Path:
        return self.checkpoint(BEST)

    @property
    def last(self) -> Path:
        return self.checkpoint(LAST)

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def prepared(self) -> Path:
        """Where the prepared corpus lives when ``data.prepared`` does not say otherwise."""
        return self.root / "data"

    @property
    def shortlist(self) -> Path:
        return self.root / "shortlist.pt"

    def hypotheses(self, split: str) -> Path:
        """The final translations of a split (``valid``, ``test``)."""
        return self.root / f"{split}.hyp"
