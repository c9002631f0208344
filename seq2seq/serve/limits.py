"""What a request may ask for, and the errors that say what it asked wrong (as ``{"error": "..."}``)."""

from __future__ import annotations

from dataclasses import dataclass


class ApiError(Exception):
    """A request the server refuses: answered with ``status`` and ``{"error": message}``, never a 500."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_texts: int = 64  # texts per request (413 above)
    max_chars: int = 5000  # characters per text (413 above)
    max_beam: int = 16  # beam size (400 above): the cost of a request grows with it
    max_alternatives: int = 4  # LibreTranslate's "alternatives" (400 above)

    def check_texts(self, texts: list[str]) -> None:
        """413 naming the limit when a request holds too many texts or too long a text."""
        if len(texts) > self.max_texts:
            raise ApiError(413, f"Invalid request: the request holds {len(texts)} texts; this server accepts at most "
                                f"{self.max_texts} per request (max_texts).")
        for i, text in enumerate(texts):
            if len(text) > self.max_chars:
                raise ApiError(413, f"Invalid request: text {i} has {len(text)} characters; this server accepts at "
                                    f"most {self.max_chars} per text (max_chars).")

    def check_search(self, beam: int, n_best: int, trg_vocab_size: int) -> None:
        """400 for a beam or n-best the server will not run."""
        if not 1 <= beam <= min(self.max_beam, trg_vocab_size):
            raise ApiError(400, f"Invalid request: beam must be between 1 and {min(self.max_beam, trg_vocab_size)}, "
                                f"got {beam}.")
        if not 1 <= n_best <= beam:
            raise ApiError(400, f"Invalid request: n_best must be between 1 and the beam size ({beam}), got {n_best}.")
