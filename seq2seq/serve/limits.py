"""What a request may ask for, and the errors that say what it asked wrong (as ``{"error": "..."}``)."""

from __future__ import annotations

from dataclasses import dataclass

from seq2seq.decoding.constraints import Constraints, TokenConstraints
from seq2seq.serve.settings import ServeSettings


class ApiError(Exception):
    """A request the server refuses: answered with ``status`` and ``{"error": message}``, never a 500."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")  # it may echo a lone surrogate
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def check_text(value: str, what: str) -> None:
    """400 for a string that is not valid Unicode text (a lone surrogate from a JSON escape like "\\ud800")."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ApiError(400, f"Invalid request: {what} holds a lone surrogate at character {error.start}, "
                            "which is not text") from None


@dataclass(frozen=True)
class Limits:
    max_texts: int = ServeSettings.max_texts  # texts per request (413 above)
    max_chars: int = ServeSettings.max_chars  # characters per text (413 above)
    max_beam: int = 16  # beam size (400 above): the cost of a request grows with it
    max_alternatives: int = 4  # LibreTranslate's "alternatives" (400 above)
    max_queued: int = 4096  # sentences waiting to be decoded (503 above: the server is overloaded)
    max_phrases: int = 16  # constraint phrases per text, include and avoid together (400 above)
    max_phrase_chars: int = 200  # characters per constraint phrase (400 above)
    max_constraint_pieces: int = 64  # target pieces of a text's constraints, include and avoid together (400 above)

    @property
    def max_body_bytes(self) -> int:
        """The largest request body worth reading: every text at its longest, 4 bytes a character, and slack."""
        return self.max_texts * self.max_chars * 4 + 65536

    def check_texts(self, texts: list[str], *, unit: str = "texts") -> None:
        """413 naming the limit when a request holds too many texts (or lines) or too long a text; 400 for non-text."""
        if len(texts) > self.max_texts:
            raise ApiError(413, f"Invalid request: the request holds {len(texts)} {unit}; this server accepts at "
                                f"most {self.max_texts} per request (max_texts).")
        for i, text in enumerate(texts):
            if len(text) > self.max_chars:
                raise ApiError(413, f"Invalid request: text {i} has {len(text)} characters; this server accepts at "
                                    f"most {self.max_chars} per text (max_chars).")
            check_text(text, f"text {i}")

    def check_constraints(self, constraints: Constraints, index: int) -> None:
        """400 for more constraint phrases, or longer ones, than a search should carry."""
        phrases = constraints.include + constraints.avoid
        if len(phrases) > self.max_phrases:
            raise ApiError(400, f"Invalid request: text {index} has {len(phrases)} constraint phrases (its own and "
                                f"the glossary's); this server accepts at most {self.max_phrases}.")
        for phrase in phrases:
            check_text(phrase, f"a constraint of text {index}")
            if len(phrase) > self.max_phrase_chars:
                raise ApiError(400, f"Invalid request: a constraint of text {index} has {len(phrase)} characters; "
                                    f"this server accepts at most {self.max_phrase_chars}.")

    def check_constraint_pieces(self, constraints: TokenConstraints, index: int) -> None:
        """400 for constraints of more target pieces than a search should carry (each piece to include is one
        more step, and widens the search's banks)."""
        pieces = constraints.tokens + sum(len(phrase) for phrase in constraints.avoid)
        if pieces > self.max_constraint_pieces:
            raise ApiError(400, f"Invalid request: the constraints of text {index} are {pieces} subword pieces "
                                f"long; this server accepts at most {self.max_constraint_pieces}.")

    def check_search(self, beam: int, n_best: int, trg_vocab_size: int) -> None:
        """400 for a beam or n-best the server will not run."""
        if not 1 <= beam <= min(self.max_beam, trg_vocab_size):
            raise ApiError(400, f"Invalid request: beam must be between 1 and {min(self.max_beam, trg_vocab_size)}, "
                                f"got {beam}.")
        if not 1 <= n_best <= beam:
            raise ApiError(400, f"Invalid request: n_best must be between 1 and the beam size ({beam}), got {n_best}.")
