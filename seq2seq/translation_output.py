"""Translate a stream of lines to a stream of output lines, batch by batch, in input order.

Output formats (one input line → one output line, unless n-best asks for more):
  default        the translation
  --align        translation ||| 0-0 1-2 ...           (Pharaoh word alignment: source-output word indices)
  --n-best N     N lines per input: INDEX ||| translation ||| score   (INDEX counts input lines from 0;
                 with --align, ||| alignment is appended)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from seq2seq.alignment import align_words, pharaoh
from seq2seq.plotting import plot_attention
from seq2seq.textio import chunks
from seq2seq.translator import Translation, Translator


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
    """A PNG of the attention of one translation: source pieces (+ EOS) across, output pieces (+ EOS) down."""
    src_labels, trg_labels = translation.attention_labels()
    plot_attention(translation.attention, src_labels, trg_labels, path, title=translation.text)


def stream_translations(translator: Translator, numbered_lines: Iterable[tuple[int, str]], out: TextIO, *,
                        beam: int | None, n_best: int, batch_size: int, chunk_lines: int, align: bool,
                        attention_dir: Path | None, total: int | None = None, progress: bool = False) -> int:
    """Translate ``(line number, text)`` pairs chunk by chunk, writing and flushing after each chunk.

    Returns the number of input lines translated. Only one chunk is in memory at a time.
    """
    if attention_dir is not None:
        attention_dir.mkdir(parents=True, exist_ok=True)
    done = 0
    with tqdm(total=total, unit="sent", disable=not progress, leave=False) as bar:
        for chunk in chunks(numbered_lines, chunk_lines):
            texts = [text for _, text in chunk]
            results = translator.translate_n_best(texts, beam=beam, n_best=n_best, batch_size=batch_size,
                                                  first_line=chunk[0][0])
            for (line, text), best in zip(chunk, results):
                out.write("".join(s + "\n" for s in format_lines(line - 1, best, n_best_wanted=n_best, align=align)))
                if attention_dir is not None and text.strip():
                    write_heatmap(best[0], attention_dir / f"line-{line:06d}.png")
            out.flush()
            done += len(chunk)
            bar.update(len(chunk))
    return done
