"""Fixtures of the training tests."""

import pytest

from tests.helpers import write_slice


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[str]:
    """Overrides that point at a 400-pair slice of the toy corpus (about 20 batches per epoch)."""
    root = tmp_path_factory.mktemp("corpus")
    return [f"data.train={write_slice(root, 'train', 400)}", f"data.valid={write_slice(root, 'valid', 30)}",
            "data.test=null"]
