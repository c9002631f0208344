"""The Multi30k recipe: configs load, the data script copies and checks files, the report scripts work."""

import json
import math
import subprocess
from pathlib import Path

import pytest

from seq2seq.config import config_from_dict, config_to_dict, load_config, save_config
from seq2seq.data.corpus import read_parallel
from tests.helpers import ROOT

SHARED_MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
COUNTS = {"train": 29000, "val": 1014, "test_2016_flickr": 1000}


@pytest.mark.parametrize("name", ["multi30k_de_en", "multi30k_en_de"])
def test_recipe_configs_load(name):
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    assert {config.data.src_lang, config.data.trg_lang} == {"de", "en"}
    assert config.data.test.endswith("test_2016_flickr") and config.training.max_minutes == 60


def test_both_directions_run_the_same_recipe_except_the_languages():
    """Each language keeps its vocabulary size; everything else (model, schedule, decoding) is shared."""
    de_en = config_to_dict(load_config(ROOT / "configs" / "multi30k_de_en.yaml"))
    en_de = config_to_dict(load_config(ROOT / "configs" / "multi30k_en_de.yaml"))
    for config in (de_en, en_de):
        data, tokenizer = config["data"], config["tokenizer"]
        sizes = {data["src_lang"]: tokenizer.pop("src_vocab_size"), data["trg_lang"]: tokenizer.pop("trg_vocab_size")}
        tokenizer["sizes"] = sizes
        data.pop("src_lang"), data.pop("trg_lang"), config["training"].pop("model_dir")
    assert de_en == en_de


def test_bench_config_has_the_sizes_the_performance_targets_name():
    config = load_config(ROOT / "configs" / "bench.yaml")
    tok, model = config.tokenizer, config.model
    assert (tok.type, tok.src_vocab_size, tok.trg_vocab_size) == ("bpe", 8000, 8000)
    assert (model.embedding_dim, model.encoder_hidden, model.encoder_layers, model.bidirectional) == (256, 256, 2, True)
    assert (model.decoder_hidden, model.attention, model.dropout) == (512, "dot", 0.3)


def fake_multi30k(directory: Path, short: str = "") -> None:
    directory.mkdir()
    for split, count in COUNTS.items():
        for lang in ("de", "en"):
            lines = count - 1 if f"{split}.{lang}" == short else count
            (directory / f"{split}.{lang}").write_text("x\n" * lines, encoding="utf-8")


def test_get_multi30k_copies_and_checks_line_counts(tmp_path):
    fake_multi30k(tmp_path / "src")
    done = subprocess.run(["bash", ROOT / "scripts" / "get_multi30k.sh", "--from", tmp_path / "src", tmp_path / "out"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{split}.{lang}" for split in COUNTS for lang in ("de", "en"))


def test_get_multi30k_refuses_wrong_line_counts(tmp_path):
    fake_multi30k(tmp_path / "src", short="val.en")
    done = subprocess.run(["bash", ROOT / "scripts" / "get_multi30k.sh", "--from", tmp_path / "src", tmp_path / "out"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "val.en has 1013 lines, expected 1014" in done.stderr


@pytest.mark.skipif(not SHARED_MULTI30K.is_dir(), reason="Multi30k is not available beside the project")
def test_real_multi30k_files_are_valid_parallel_text():
    for split, count in COUNTS.items():
        pairs = read_parallel(SHARED_MULTI30K / f"{split}.de", SHARED_MULTI30K / f"{split}.en")
        assert len(pairs) == count and all(de and en for de, en in pairs)


def test_ablation_summary_and_learning_curve(tmp_path, script):
    ablation = script("ablate_attention")
    run = tmp_path / "dot"
    run.mkdir()
    events = [{"event": "train", "time": 30, "step": 50, "loss": 5.0, "tokens_per_second": 1000.0},
              {"event": "valid", "time": 60, "step": 100, "bleu": 20.0, "ppl": 9.0},
              {"event": "train", "time": 90, "step": 150, "loss": 4.0, "tokens_per_second": 3000.0},
              {"event": "valid", "time": 120, "step": 200, "bleu": 18.0, "ppl": 8.0},
              {"event": "final", "time": 130, "step": 200, "test_bleu": 19.5}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    save_config(config_from_dict({"data": {"train": "t", "valid": "v", "test": None},
                                  "training": {"model_dir": str(run)}}), run / "config.yaml")
    summary = ablation.summarize(run)
    assert math.isnan(summary.pop("test_greedy"))  # no test split to decode greedily
    assert summary == {"valid_bleu": 20.0, "valid_ppl": 9.0, "test_bleu": 19.5, "beam": None,
                       "tokens_per_second": 2000.0, "steps": 200}
    summary["test_greedy"] = 18.25
    assert "| dot | 20.00 | 9.00 | 18.25 | 19.50 | 2000 | 200 |" in ablation.table({"dot": summary}, 10)
    assert ablation.parse_variant("local-p:general+feed") == ("local-p", "general", True)
    assert ablation.parse_variant("dot") == ("global", "dot", False)
    ablation.plot_learning_curves({"dot": run / "metrics.jsonl"}, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_reference_is_current(script):
    generator = script("config_reference")
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == generator.reference(), \
        "docs/config.md is stale: run python scripts/config_reference.py"
