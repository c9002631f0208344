"""Corpus-level BLEU and chrF with sacrebleu, the field's standard: detokenized hypotheses vs raw references.

Scores are on sacrebleu's 0-100 scale; each comes with the signature that makes it reproducible.
"""

from __future__ import annotations

from typing import NamedTuple

from sacrebleu.metrics import BLEU, CHRF


class Score(NamedTuple):
    name: str
    score: float  # 0-100
    signature: str


def bleu(hypotheses: list[str], references: list[str], *, lowercase: bool = False) -> Score:
    metric = BLEU(lowercase=lowercase)
    result = metric.corpus_score(hypotheses, [references])
    return Score("BLEU", result.score, str(metric.get_signature()))


def chrf(hypotheses: list[str], references: list[str]) -> Score:
    metric = CHRF()
    result = metric.corpus_score(hypotheses, [references])
    return Score("chrF", result.score, str(metric.get_signature()))
