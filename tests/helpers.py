"""Shared by the tests: slices of the shipped toy corpus and tiny models trained on them."""

from pathlib import Path

from seq2seq.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "data" / "toy"
TOY_CONFIG = str(ROOT / "configs" / "toy.yaml")


def write_slice(directory: Path, split: str, lines: int) -> str:
    """The first ``lines`` pairs of a toy split as DIRECTORY/SPLIT.{en,de}; returns the prefix."""
    for lang in ("en", "de"):
        text = (TOY / f"{split}.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)[:lines]
        (directory / f"{split}.{lang}").write_text("".join(text), encoding="utf-8")
    return str(directory / split)


def train_tiny(root: Path, overrides: list[str], *, train_lines: int, valid_lines: int) -> Path:
    """Train a model on toy slices written to ``root`` (with ``overrides``); returns its model directory."""
    args = ["train", TOY_CONFIG]
    for override in [f"data.train={write_slice(root, 'train', train_lines)}",
                     f"data.valid={write_slice(root, 'valid', valid_lines)}", "data.test=null",
                     f"training.model_dir={root / 'model'}", *overrides]:
        args += ["--set", override]
    assert main(args) == 0
    return root / "model"
