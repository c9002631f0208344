"""Pictures: attention heatmaps (which source pieces each output piece attended to)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from seq2seq.checkpoint import atomic_write_bytes  # noqa: E402


def plot_attention(weights: Tensor, src_labels: list[str], trg_labels: list[str], path: Path, *,
                   title: str = "") -> None:
    """Write a heatmap PNG of attention weights [T, S]: source pieces on the x axis, output pieces on y."""
    rows, cols = weights.shape
    if (rows, cols) != (len(trg_labels), len(src_labels)):
        raise ValueError(f"attention is {rows}x{cols} but there are {len(trg_labels)}x{len(src_labels)} labels")
    width = min(2.0 + 0.42 * cols, 40.0)
    height = min(1.5 + 0.36 * rows, 40.0)
    figure, axes = plt.subplots(figsize=(width, height), dpi=100)
    axes.imshow(weights.float().numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(cols), labels=src_labels, rotation=60, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(rows), labels=trg_labels)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())
