"""The package reads as layers (README, "Layout"): a subpackage is a layer, and no module imports from a layer above
its own."""

import ast

from tests.helpers import ROOT

# The layers, lowest first: a subpackage of seq2seq/ is a layer, and what it holds follows from its folder.
# A module may import from its own layer and the ones below it, never from one above.
LAYERS = [
    ("constants", {"errors", "special_ids"}),
    ("common", {"common"}),
    ("config", {"config", "config_checks"}),
    ("data", {"data"}),
    ("documents", {"documents"}),
    ("model", {"model"}),
    ("decoding", {"decoding"}),
    ("training", {"training"}),
    ("applications", {"serve", "cli", "__main__", "__init__"}),
]
LAYER_OF = {entry: depth for depth, (_, entries) in enumerate(LAYERS) for entry in entries}


def seq2seq_imports(path) -> set[str]:
    """The top-level seq2seq entries a file imports (``seq2seq.serve.app`` counts as ``serve``,
    ``seq2seq.data.arrays`` as ``data``)."""
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
        assert name in LAYER_OF, f"{relative} has no layer: place its folder in LAYERS here and in the README"
        for imported in seq2seq_imports(path):
            assert LAYER_OF[imported] <= LAYER_OF[name], (
                f"{relative} ({LAYERS[LAYER_OF[name]][0]}) imports {imported} ({LAYERS[LAYER_OF[imported]][0]})")


def test_modules_and_functions_stay_small():
    """One concept per module and small functions (STYLE): no module over 400 lines, no function over 60."""
    package = ROOT / "seq2seq"
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        relative = path.relative_to(package)
        assert text.count("\n") <= 400, f"{relative} has {text.count(chr(10))} lines: split it by concept"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{relative}: {node.name} has {length} lines: split it"
