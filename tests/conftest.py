"""Fixtures shared by the test modules."""

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import ROOT, train_tiny


@pytest.fixture(scope="session")
def script() -> Callable[[str], ModuleType]:
    """Import ``scripts/NAME.py`` as a module: ``script("tune_decoding").main()`` (scripts are not in the package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    return load


# Model variants trained once per session, on demand: a test asks ``trained_variant("concat")`` and gets the model
# directory. They are shared, so no test may write into them: the session checks at its end that every file is as
# training left it. VARIANTS are the model settings (each one trained, reloaded, translated and evaluated in
# test_variants.py); MODELS adds the models that other tests need beside the plain one.
VARIANTS = {
    "plain": [],  # the base alone: for tests about robustness and plumbing, not about a model setting
    "tied-decoder": ["model.tied_embeddings=decoder"],
    "tied-all-joint": ["tokenizer.joint=true", "model.tied_embeddings=all"],
    "unigram": ["tokenizer.type=unigram"],
    "concat": ["model.attention=concat"],
    "general": ["model.attention=general"],
    "local-m": ["model.alignment=local-m", "model.local_window=3"],
    "two-layers": ["model.encoder_layers=2", "model.decoder_layers=2"],
    "unidirectional": ["model.bidirectional=false", "model.decoder_hidden=16"],
    "input-feeding": ["model.input_feeding=true"],
}
MODELS = {
    **VARIANTS,
    "de-en": ["data.src_lang=de", "data.trg_lang=en"],  # the plain model the other way round, for serving two
    "shortlisted": ["training.shortlist=true"],  # learns its vocabulary shortlist at the end of training
    # bigger and trained longer on more pairs: it translates toy sentences mostly right, for the tests of
    # constraints and of the page, which need real words where they look
    "fluent": ["training.max_steps=200", "training.validate_every=200", "training.batch_tokens=1500",
               "model.embedding_dim=32", "model.encoder_hidden=32", "model.decoder_hidden=64",
               "tokenizer.src_vocab_size=200", "tokenizer.trg_vocab_size=200", "data.max_length=40",
               "decoding.beam_size=4"],
}
TRAIN_LINES = {"fluent": 1000}  # toy pairs each model trains on, where not 600
# two validations, so that a model has two step checkpoints for the ensemble tests
VARIANT_BASE = ["training.max_steps=30", "training.validate_every=15", "training.batch_tokens=800",
                "training.shortlist=false", "model.embedding_dim=16", "model.encoder_hidden=16",
                "model.decoder_hidden=32", "tokenizer.src_vocab_size=150", "tokenizer.trg_vocab_size=150",
                "data.max_length=20", "decoding.beam_size=3"]


def tree_digest(directory: Path) -> dict[str, str]:
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.fixture(scope="session")
def trained_variant(tmp_path_factory) -> Iterator[Callable[[str], Path]]:
    """``trained_variant(name)``: the model directory of a tiny model of ``MODELS[name]``, trained at first use."""
    trained: dict[str, Path] = {}
    digests: dict[str, dict[str, str]] = {}

    def get(name: str) -> Path:
        if name not in trained:
            root = tmp_path_factory.mktemp(f"variant-{name}")
            trained[name] = train_tiny(root, [*VARIANT_BASE, *MODELS[name]], train_lines=TRAIN_LINES.get(name, 600),
                                       valid_lines=20)
            digests[name] = tree_digest(trained[name])
        return trained[name]

    yield get
    changed = {name: sorted(set(tree_digest(directory).items()) ^ set(digests[name].items()))
               for name, directory in trained.items() if tree_digest(directory) != digests[name]}
    assert not changed, f"tests wrote into the shared model directories: {changed}"
