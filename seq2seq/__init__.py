"""seq2seq: LSTM encoder + Luong-attention decoder neural machine translation in PyTorch.

Importing the package is cheap: the heavy modules load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Translator", "__version__"]

if TYPE_CHECKING:
    from seq2seq.decoding.translator import Translator


def __getattr__(name: str):
    if name == "Translator":
        from seq2seq.decoding.translator import Translator

        return Translator
    raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
