"""Score a model on a test set: translate the source file and compare with the references (sacrebleu)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from seq2seq.common.textio import PROGRESS_MIN_LINES
from seq2seq.data.corpus import read_parallel
from seq2seq.decoding.scoring import bleu, chrf
from seq2seq.decoding.search_types import SearchOptions
from seq2seq.decoding.translation_output import stream_translations
from seq2seq.decoding.translator import Translator


def evaluate_files(translator: Translator, src_path: str | Path, ref_path: str | Path, *,
                   options: SearchOptions | None = None) -> dict[str, Any]:
    """BLEU and chrF (with signatures) of the best translations of ``src_path``, searched as ``options`` say (default:
    the model's :meth:`~seq2seq.decoding.translator.Translator.search_options`), against ``ref_path``.

    ``length_penalty`` in the result is None for greedy search, which has none.
    """
    options = dataclasses.replace(options or translator.search_options(), n_best=1)
    beam = options.beam_size
    pairs = read_parallel(src_path, ref_path)
    sources, references = [s for s, _ in pairs], [r for _, r in pairs]
    output = io.StringIO()  # the same chunked, ordered path as `seq2seq translate`, one line per source
    stream_translations(translator, enumerate(sources, start=1), output, options, chunk_lines=options.batch_size * 4,
                        progress_total=len(sources) if len(sources) >= PROGRESS_MIN_LINES else None)
    hypotheses = output.getvalue().split("\n")[: len(sources)]
    bleu_score, chrf_score = bleu(hypotheses, references), chrf(hypotheses, references)
    lowercase = bleu(hypotheses, references, lowercase=True)
    return {"bleu": round(bleu_score.score, 2), "chrf": round(chrf_score.score, 2),
            "bleu_lowercase": round(lowercase.score, 2), "bleu_signature": bleu_score.signature,
            "chrf_signature": chrf_score.signature, "bleu_lowercase_signature": lowercase.signature,
            "beam": beam, "length_penalty": options.length_penalty if beam > 1 else None,
            "sentences": len(sources), "src": str(src_path), "ref": str(ref_path)}
