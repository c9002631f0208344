"""Pictures: attention heatmaps (which source pieces each output piece attended to) and learning curves."""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from seq2seq.common.atomic import atomic_write_bytes  # noqa: E402


def plot_attention(weights: Tensor, src_labels: list[str], trg_labels: list[str], path: Path, *,
                   title: str = "", centres: list[float] | None = None, radius: int = 0) -> None:
    """Write a heatmap PNG of attention weights [T, S]: source pieces on the x axis, output pieces on y (with
    local attention's window on each row, see :func:`attention_figure`)."""
    figure = attention_figure(weights, src_labels, trg_labels, title=title, centres=centres, radius=radius)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())


def attention_figure(weights: Tensor, src_labels: list[str], trg_labels: list[str], *,
                     title: str = "", centres: list[float] | None = None, radius: int = 0) -> Figure:
    """The heatmap of attention weights [T, S] as a matplotlib figure (the caller closes it). ``centres``: local
    attention's p_t of each row, drawn as a dot with a line over the window [p_t - radius, p_t + radius]."""
    rows, cols = weights.shape
    if (rows, cols) != (len(trg_labels), len(src_labels)):
        raise ValueError(f"attention is {rows}x{cols} but there are {len(trg_labels)}x{len(src_labels)} labels")
    width = min(2.0 + 0.42 * cols, 40.0)
    height = min(1.5 + 0.36 * rows, 40.0)
    figure, axes = plt.subplots(figsize=(width, height), dpi=100)
    axes.imshow(weights.float().numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(cols), labels=src_labels, rotation=60, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(rows), labels=trg_labels)
    if centres is not None:
        steps = range(len(centres))
        inside = [min(max(p, -0.5), cols - 0.5) for p in centres]  # p_t may lie just past the last column
        axes.hlines(steps, [max(p - radius, -0.5) for p in centres], [min(p + radius, cols - 0.5) for p in centres],
                    colors="#12b76a", linewidth=1.0, alpha=0.8)
        axes.plot(inside, steps, "o", color="#12b76a", markersize=4, label="p_t and its window")
        axes.legend(loc="upper right", fontsize=7)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def read_events(metrics_path: Path, event: str) -> list[dict]:
    """The records of one kind ("train", "valid", "final") from a metrics.jsonl file."""
    with open(metrics_path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return [r for r in records if r.get("event") == event]


def plot_learning_curves(runs: dict[str, Path], path: Path) -> None:
    """Validation BLEU and training loss against wall-clock minutes, one line per run (label → metrics.jsonl)."""
    figure, (bleu_axes, loss_axes) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for label, metrics_path in runs.items():
        valid, train = read_events(metrics_path, "valid"), read_events(metrics_path, "train")
        bleu_axes.plot([r["time"] / 60 for r in valid], [r["bleu"] for r in valid], marker=".", label=label)
        loss_axes.plot([r["time"] / 60 for r in train], [r["loss"] for r in train], label=label)
    bleu_axes.set(xlabel="minutes (validation included)", ylabel="valid BLEU (greedy)", title="validation")
    loss_axes.set(xlabel="minutes (validation included)", ylabel="loss per token (label-smoothed)",
                  title="training")
    for axes in (bleu_axes, loss_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())
