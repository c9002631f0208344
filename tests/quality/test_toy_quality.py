"""The README's promises on the toy corpus: test BLEU ≥ 90 (greedy) within the config's time budget,
and beam 5 no worse than greedy − 0.5 BLEU.

Slow (about 3.5 minutes on 2 cores): run with ``python -m pytest -m slow``.
"""


import pytest

from seq2seq.config import load_config
from seq2seq.decoding.evaluation import evaluate_files
from seq2seq.decoding.translator import Translator
from seq2seq.training.fit import fit
from tests.helpers import ROOT


@pytest.mark.slow
def test_toy_config_reaches_bleu_90_and_beam_does_not_hurt(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the config's data paths are relative to the repository root
    config = load_config(ROOT / "configs" / "toy.yaml", [f"training.model_dir={tmp_path / 'toy'}"])
    fit(config)
    translator = Translator.from_dir(tmp_path / "toy")
    src, ref = ROOT / "data" / "toy" / "test.en", ROOT / "data" / "toy" / "test.de"
    greedy = evaluate_files(translator, src, ref, options=translator.search_options(beam_size=1))["bleu"]
    beam = evaluate_files(translator, src, ref, options=translator.search_options(beam_size=5))["bleu"]
    print(f"toy test BLEU: greedy {greedy:.2f}, beam 5 {beam:.2f}")
    assert greedy >= 90.0
    assert beam >= greedy - 0.5
