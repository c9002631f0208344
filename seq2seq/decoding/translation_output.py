"""Translate a stream of lines to a stream of output lines, batch by batch, in input order.

Output formats (one input line → one output line, unless n-best asks for more):
  default        the translation
  --align        translation ||| 0-0 1-2 ...           (Pharaoh word alignment: source-output word indices)
  --n-best N     N lines per input: INDEX ||| translation ||| score   (INDEX counts input lines from 0;
                 with --align, ||| alignment is appended)
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from seq2seq.common.plotting import plot_attention
from seq2seq.decoding.alignment import align_words, pharaoh
from seq2seq.decoding.translator import Translation, Translator


def format_lines(index: int, n_best: list[Translation], *, n_best_wanted: int, align: bool) -> list[str]:
    """The output lines of one input line (see the module docstring for the formats)."""
    lines = []
    for translation in n_best[:n_best_wanted]:
        fields = [translation.text]
        if n_best_wanted > 1:
            fields = [str(index), translation.text, f"{translation.score:.4f}"]
        if align:
            fields.append(pharaoh(align_words(translation.attention, translation.src_pieces,
                                              translation.trg_pieces)))
        lines.append(" ||| ".join(fields))
    return lines


def write_heatmap(translation: Translation, path: Path) -> None:
    """A PNG of the attention of one translation: source pieces (+ EOS) across, output pieces (+ EOS) down, with
    local attention's window on each row where the translation has one."""
    src_labels, trg_labels = translation.attention_labels()
    window = translation.window
    plot_attention(translation.attention, src_labels, trg_labels, path, title=translation.text,
                   centres=window.centres if window else None, radius=window.radius if window else 0)


def stream_translations(translator: Translator, numbered_lines: Iterable[tuple[int, str]], out: TextIO, *,
                        beam: int | None, n_best: int, batch_size: int, chunk_lines: int, align: bool,
                        attention_dir: Path | None, total: int | None = None, progress: bool = False) -> int:
    """Translate ``(line number, text)`` pairs through one :class:`TranslationStream`, writing each output line,
    in input order, as soon as it and the lines before it are done.

    Lines are read ``chunk_lines`` at a time whenever fewer than ``batch_size`` sentences wait, so the decoding
    batch stays full from the first line to the last. A chunk of one line (typed at a terminal) is answered
    before the next line is read. Returns the number of input lines translated.
    """
    if attention_dir is not None:
        attention_dir.mkdir(parents=True, exist_ok=True)
    stream = translator.stream(beam=beam, n_best=n_best, batch_size=batch_size)
    lines = iter(numbered_lines)
    order: deque[tuple[int, str]] = deque()  # the lines read and not yet written, in input order
    done: dict[int, list[Translation]] = {}
    exhausted, translated = False, 0
    with tqdm(total=total, unit="sent", disable=not progress, leave=False) as bar:
        while True:
            if not exhausted and (stream.idle or (chunk_lines > 1 and stream.engine.waiting < batch_size)):
                chunk = list(itertools.islice(lines, chunk_lines))  # (line, text): the line number is the tag
                exhausted = not chunk
                order.extend(chunk)
                done.update(stream.add(chunk, n_best=n_best, first_line=chunk[0][0] if chunk else None))
            if exhausted and stream.idle and not order:
                return translated
            done.update(stream.step())
            written = _write_ready(order, done, out, n_best=n_best, align=align, attention_dir=attention_dir,
                                   translator=translator)
            translated += written
            bar.update(written)


def _write_ready(order: deque[tuple[int, str]], done: dict[int, list[Translation]], out: TextIO, *, n_best: int,
                 align: bool, attention_dir: Path | None, translator: Translator) -> int:
    """Write the output of the leading lines of ``order`` that are done (and their heatmaps, with local
    attention's window, into ``attention_dir``); returns how many were written."""
    written = 0
    while order and order[0][0] in done:
        line, text = order.popleft()
        best = done.pop(line)
        out.write("".join(s + "\n" for s in format_lines(line - 1, best, n_best_wanted=n_best, align=align)))
        if attention_dir is not None and text.strip():
            write_heatmap(translator.with_window(best[0]), attention_dir / f"line-{line:06d}.png")
        written += 1
    if written:
        out.flush()
    return written
