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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from seq2seq.common.plotting import plot_attention
from seq2seq.decoding.constraints import Constraints
from seq2seq.decoding.paragraphs import text_alignment
from seq2seq.decoding.search_types import SearchOptions, Translation
from seq2seq.decoding.translator import Translator
from seq2seq.decoding.word_alignment import pharaoh
from seq2seq.errors import UserError


def format_lines(index: int, n_best: list[Translation], *, n_best_wanted: int, align: bool) -> list[str]:
    """The output lines of one input line (see the module docstring for the formats)."""
    lines = []
    for translation in n_best[:n_best_wanted]:
        fields = [translation.text]
        if n_best_wanted > 1:
            fields = [str(index), translation.text, f"{translation.score:.4f}"]
        if align:
            fields.append(pharaoh(text_alignment(translation)))
        lines.append(" ||| ".join(fields))
    return lines


def write_heatmaps(translation: Translation, directory: Path, line: int) -> None:
    """The heatmap of a line's translation, ``line-000001.png``; one per sentence of a line translated sentence by
    sentence, ``line-000001-s1.png`` and so on, where it has several."""
    parts = translation.sentences
    if len(parts) == 1:
        write_heatmap(parts[0].translation, directory / f"line-{line:06d}.png")
        return
    for k, part in enumerate(parts, start=1):
        write_heatmap(part.translation, directory / f"line-{line:06d}-s{k}.png")


def write_heatmap(translation: Translation, path: Path) -> None:
    """A PNG of the attention of one translation: source pieces (+ EOS) across, output pieces (+ EOS) down, with
    local attention's window on each row where the translation has one."""
    src_labels, trg_labels = translation.attention_labels()
    window = translation.window
    plot_attention(translation.attention, src_labels, trg_labels, path, title=translation.text,
                   centres=window.centres if window else None, radius=window.radius if window else 0)


def stream_translations(translator: Translator, numbered_lines: Iterable[tuple[int, str]], out: TextIO,
                        options: SearchOptions, *, chunk_lines: int, align: bool = False,
                        attention_dir: Path | None = None, constraints: Iterator[Constraints] | None = None,
                        avoid: Constraints = Constraints(), split_sentences: bool = False,
                        progress_total: int | None = None) -> int:
    """Translate ``(line number, text)`` pairs through one
    :class:`~seq2seq.decoding.translation_stream.TranslationStream` searching as ``options`` say (``options.n_best``
    output lines per input line), writing each output line, in input order, as soon as it and the lines before it
    are done.

    Lines are read ``chunk_lines`` at a time whenever fewer than ``options.batch_size`` sentences wait, so the
    decoding batch stays full from the first line to the last. A chunk of one line (typed at a terminal) is answered
    before the next line is read. ``align`` and ``attention_dir`` add word alignments and heatmaps (see the module
    docstring). ``constraints`` gives each line's constraints (a constraints file, line-aligned with the input),
    ``avoid`` phrases no line may contain. ``split_sentences`` translates each sentence of a line as its own (one
    output line per input line still). ``progress_total`` shows a progress bar over that many lines (None: no bar).
    Returns the number of input lines translated.
    """
    if attention_dir is not None:
        attention_dir.mkdir(parents=True, exist_ok=True)
    stream = translator.document_stream(options, split_sentences=split_sentences)
    wanted = constraints is not None or bool(avoid)
    lines = iter(numbered_lines)
    order: deque[tuple[int, str]] = deque()  # the lines read and not yet written, in input order
    done: dict[int, list[Translation]] = {}
    exhausted, translated = False, 0
    with tqdm(total=progress_total, unit="sent", disable=progress_total is None, leave=False) as bar:
        while True:
            if not exhausted and (stream.idle or (chunk_lines > 1 and stream.engine.waiting < options.batch_size)):
                chunk = list(itertools.islice(lines, chunk_lines))  # (line, text): the line number is the tag
                exhausted = not chunk
                order.extend(chunk)
                each = _line_constraints(constraints, avoid, chunk) if wanted else None
                done.update(stream.add(chunk, first_line=chunk[0][0] if chunk else None, constraints=each))
            if exhausted and stream.idle and not order:
                return translated
            done.update(stream.step())
            written = _write_ready(order, done, out, n_best=options.n_best, align=align, attention_dir=attention_dir,
                                   translator=translator)
            translated += written
            bar.update(written)


def _line_constraints(constraints: Iterator[Constraints] | None, avoid: Constraints,
                      chunk: list[tuple[int, str]]) -> list[Constraints | None]:
    """The constraints of each line of ``chunk``: its line of the constraints file, plus the global ``avoid``."""
    each: list[Constraints | None] = []
    for line, _ in chunk:
        own = next(constraints, None) if constraints is not None else Constraints()
        if own is None:
            raise UserError(f"the constraints file ends before input line {line}; it needs one line per input line "
                            "(an empty line constrains nothing).")
        each.append(own + avoid)
    if not chunk and constraints is not None and any(constraints):  # empty lines at its end are allowed
        raise UserError("the constraints file has more lines than the input; it needs one line per input line.")
    return each


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
            write_heatmaps(translator.with_window(best[0]), attention_dir, line)
        written += 1
    if written:
        out.flush()
    return written
