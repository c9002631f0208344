"""The model directory's layout lives in seq2seq/common/model_dir.py alone: no other module spells its paths."""

import ast

from seq2seq.common.model_dir import BEST, LAST, ModelDir
from tests.helpers import ROOT

NAMES = {"config.yaml", "checkpoints", "metrics.jsonl", "train.log", "tensorboard", "shortlist.pt", "best.pt",
         "last.pt", "averaged.pt", "best_single.pt"}


def test_the_layout_names_every_file_of_a_model_directory(tmp_path):
    layout = ModelDir(str(tmp_path))
    assert layout.root == tmp_path
    assert layout.best == tmp_path / "checkpoints" / BEST and layout.last == tmp_path / "checkpoints" / LAST
    assert layout.checkpoint("step_0000100.pt").parent == layout.checkpoints
    paths = {layout.config, layout.spm, layout.metrics, layout.log, layout.tensorboard, layout.prepared,
             layout.shortlist, layout.hypotheses("test")}
    assert {path.parent for path in paths} == {tmp_path} and len(paths) == 8


def test_no_other_module_spells_a_model_directory_path():
    for path in sorted((ROOT / "seq2seq").rglob("*.py")):
        if path.name == "model_dir.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in NAMES}
        assert not found, f"{path.relative_to(ROOT)} spells {sorted(found)}: use seq2seq.common.model_dir"
