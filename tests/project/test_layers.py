"""The package reads as layers (docs/architecture.md, "Layers"): a subpackage is a layer, and no module imports
from a layer above its own."""

import ast
import sys

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
    ``seq2seq.data.arrays`` as ``data``), in every form: ``from seq2seq.x import``, ``import seq2seq.x``, relative
    imports, ``importlib.import_module("seq2seq.x")`` and ``__import__``, wherever they stand (in functions, under
    ``TYPE_CHECKING``)."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])  # e.g. ["seq2seq", "serve"]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        for module, names in _imported(node, package):
            parts = module.split(".")
            if parts[0] == "seq2seq":
                found |= {parts[1]} if len(parts) > 1 else set(names)
    return found


def _imported(node: ast.AST, package: list[str]) -> list[tuple[str, list[str]]]:
    """(module, imported names) of an import statement or an import call; nothing for other nodes."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        names = [alias.name for alias in node.names]
        if node.level:  # relative: from the file's package, one level up per extra dot
            base = package[:len(package) - node.level + 1]
            return [(".".join(base + ([node.module] if node.module else [])), names)]
        return [(node.module or "", names)]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name in ("import_module", "__import__"):
            return [(node.args[0].value, [])]
    return []


def test_the_import_reader_sees_every_form(tmp_path, monkeypatch):
    source = tmp_path / "seq2seq" / "serve" / "probe.py"
    source.parent.mkdir(parents=True)
    source.write_text("import seq2seq.training.fit\n"
                      "from . import libre\n"
                      "from ..documents import language\n"
                      "from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from seq2seq.model import network\n"
                      "def late():\n    import importlib\n    importlib.import_module('seq2seq.data.arrays')\n"
                      "    __import__('seq2seq.common.atomic')\n"
                      "from seq2seq import errors\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert seq2seq_imports(source) == {"training", "serve", "documents", "model", "data", "common", "errors"}


def test_every_module_has_a_layer_and_imports_only_from_its_own_or_higher_ones():
    package = ROOT / "seq2seq"
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        name = relative.parts[0] if len(relative.parts) > 1 else path.stem
        assert name in LAYER_OF, f"{relative} has no layer: place its folder in LAYERS here and in docs/architecture.md"
        for imported in seq2seq_imports(path):
            assert LAYER_OF[imported] <= LAYER_OF[name], (
                f"{relative} ({LAYERS[LAYER_OF[name]][0]}) imports {imported} ({LAYERS[LAYER_OF[imported]][0]})")


def test_modules_and_functions_stay_small():
    """One concept per module and small functions (STYLE): no module over 400 lines, no function over 60, in the
    package and in scripts/."""
    for path in sorted([*(ROOT / "seq2seq").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]):
        text = path.read_text(encoding="utf-8")
        relative = path.relative_to(ROOT)
        assert text.count("\n") <= 400, f"{relative} has {text.count(chr(10))} lines: split it by concept"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{relative}: {node.name} has {length} lines: split it"


def module_imports(path) -> set[str]:
    """The seq2seq modules a file imports (``seq2seq.model.attention``), in every form :func:`seq2seq_imports` reads;
    ``from seq2seq.model import attention`` counts as the module it names."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        for module, names in _imported(node, package):
            if module.split(".")[0] != "seq2seq":
                continue
            found |= {f"{module}.{name}" for name in names if _is_module(f"{module}.{name}")} or {module}
    return {module for module in found if _is_module(module)}


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_no_module_imports_itself_through_others():
    """No import circle between modules, counting imports inside functions and under TYPE_CHECKING: a circle means a
    type lives in the wrong module (docs/architecture.md, "Layers")."""
    graph = {}
    for path in sorted((ROOT / "seq2seq").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        graph[name.removesuffix(".__init__")] = module_imports(path)
    circles = []
    for start in graph:
        path = _path_back(graph, start)
        if path is not None:
            circles.append(" → ".join(path))
    assert not circles, "import circles:\n" + "\n".join(circles)


def _path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A chain of imports from ``start`` back to itself (depth first), or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        module, path = stack.pop()
        for imported in graph.get(module, ()):
            if imported == start:
                return [*path, start]
            if imported not in seen and imported != module:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return None
