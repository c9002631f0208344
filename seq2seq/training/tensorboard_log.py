"""TensorBoard events of a training run (``training.tensorboard: true``; needs the tensorboard extra).

Scalars: ``train/loss``, ``train/lr``, ``train/tokens_per_second``, ``valid/loss``, ``valid/ppl``,
``valid/bleu`` (and ``average/*``, ``final/*`` at the end); images: ``valid/attention``, the attention of
the first valid sentence at each validation. Every event is stamped with the update it belongs to.

On ``--resume`` the run repeats the updates after its checkpoint, so the writer starts with
``purge_step = checkpoint step + 1``: TensorBoard then drops the first session's events from that step on,
and each step appears once. (Continuing a run that had finished, e.g. with a larger ``max_steps``, keeps
its ``final/*`` and ``average/*`` points at the old last step; metrics.jsonl drops them.)
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.common.plotting import attention_figure
from seq2seq.decoding.search_types import Translation
from seq2seq.errors import UserError
from seq2seq.training.reporters import Reporter


def require_tensorboard() -> None:
    """Fail with advice, before any work is done, where the tensorboard package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError("training.tensorboard is true but the tensorboard package is not installed: "
                        "pip install 'seq2seq[tensorboard]', or set training.tensorboard: false.") from None


class TensorBoard(Reporter):
    """Writes the run's events to ``log_dir`` with ``torch.utils.tensorboard.SummaryWriter``."""

    wants_sample = True

    def __init__(self, log_dir: Path, *, purge_step: int | None = None):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def train(self, step: int, epoch: int, *, loss: float, lr: float, tokens_per_second: float,
              skipped_updates: int) -> None:
        self.scalars("train", step, {"loss": loss, "lr": lr, "tokens_per_second": tokens_per_second})

    def valid(self, step: int, epoch: int, *, lr: float, best: bool, figures: dict[str, float],
              sample: Translation | None = None) -> None:
        self.scalars("valid", step, figures)
        if sample is not None and sample.attention.numel():
            window = sample.window
            figure = attention_figure(sample.attention, *sample.attention_labels(),
                                      title=f"update {step}: {sample.text}",
                                      centres=window.centres if window else None, radius=window.radius if window else 0)
            self.writer.add_figure("valid/attention", figure, global_step=step, close=True)
        self.writer.flush()

    def average(self, step: int, *, checkpoints: list[str], best: bool, figures: dict[str, float]) -> None:
        self.scalars("average", step, figures)

    def length_penalty(self, step: int, *, beam_size: int, bleu: dict[float, float], chosen: float) -> None:
        self.writer.add_scalar("length_penalty/chosen", chosen, global_step=step)

    def final(self, step: int, *, beam_size: int, length_penalty: float, scores: dict[str, float]) -> None:
        self.scalars("final", step, scores)
        self.writer.flush()

    def scalars(self, prefix: str, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, global_step=step)

    def close(self) -> None:
        self.writer.close()
