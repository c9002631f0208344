"""Every model variant end to end through the command line: each trains (in the session's shared fixture), reloads,
translates in fp32 and int8, and evaluates; the BLEU ``evaluate`` reports is sacrebleu's on what ``translate``
wrote."""

import json

import pytest
import sacrebleu

from seq2seq.cli import main
from seq2seq.config import load_config
from tests.conftest import VARIANTS
from tests.helpers import write_slice

SENTENCES = ["The dog sleeps.", "A cat reads the book.", "They have not seen the red car."]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_variant_trains_reloads_translates_and_evaluates(name, trained_variant, tmp_path, capsys):
    model_dir = trained_variant(name)
    config = load_config(model_dir / "config.yaml")
    for override in VARIANTS[name]:  # the resolved config is the variant's
        section, rest = override.split(".", 1)
        key, value = rest.split("=")
        assert str(getattr(getattr(config, section), key)).lower() == value.lower(), override
    src, ref = write_slice(tmp_path, "test", 20) + ".en", str(tmp_path / "test.de")
    for precision in ("fp32", "int8"):
        assert main(["translate", str(model_dir), "-i", src, "--precision", precision, "--beam", "2"]) == 0
        output = capsys.readouterr().out.split("\n")[:-1]
        assert len(output) == 20
        assert main(["evaluate", str(model_dir), "--src", src, "--ref", ref, "--precision", precision, "--beam", "2",
                     "--json"]) == 0
        reported = json.loads(capsys.readouterr().out)["bleu"]
        references = open(ref, encoding="utf-8").read().splitlines()
        assert reported == round(sacrebleu.corpus_bleu(output, [references]).score, 2), precision
