"""The package reads as layers (README, "Layout"): no module imports from a layer below its own."""

import ast

from tests.helpers import ROOT

LAYERS = [
    ("plumbing", {"errors", "special_ids", "model_dir", "atomic", "device", "textio", "corpus", "log_setup",
                  "stop_signals", "scoring", "alignment"}),
    ("config and data", {"config", "tokenizer", "bpe_dropout", "arrays", "prepare", "dataset", "batching", "loader",
                         "checkpoint", "plotting"}),
    ("network", {"attention", "encoder", "word_dropout", "fused_loop", "decoder", "model", "ensemble", "loss"}),
    ("translation", {"precision", "shortlist", "engine", "search", "translator", "translation_output", "evaluation"}),
    ("training", {"optimization", "update", "moving_average", "validation", "reporters", "tensorboard_log",
                  "run_state", "distributed", "trainer", "finish", "fit"}),
    ("applications", {"cli", "__main__", "__init__", "serve"}),
]
LAYER_OF = {module: depth for depth, (_, modules) in enumerate(LAYERS) for module in modules}


def seq2seq_imports(path) -> set[str]:
    """The top-level seq2seq modules a file imports (``seq2seq.serve.app`` counts as ``serve``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "seq2seq":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
    return found


def test_every_module_has_a_layer_and_imports_only_from_its_own_or_higher_ones():
    package = ROOT / "seq2seq"
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        name = relative.parts[0] if len(relative.parts) > 1 else path.stem
        assert name in LAYER_OF, f"{relative} has no layer: add it to LAYERS here and to the README's table"
        for imported in seq2seq_imports(path):
            assert LAYER_OF[imported] <= LAYER_OF[name], (
                f"{relative} ({LAYERS[LAYER_OF[name]][0]}) imports {imported} ({LAYERS[LAYER_OF[imported]][0]})")
