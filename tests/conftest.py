"""Fixtures shared by the test modules."""

import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType

import pytest

from tests.helpers import ROOT


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
