"""API keys for ``seq2seq serve --api-keys``, in a SQLite database as LibreTranslate keeps its ``api_keys.db``.

A key is 32 random bytes (URL-safe base64), shown once by ``seq2seq keys add NAME`` and never stored: the
database keeps its SHA-256, which is enough to recognise the key and useless to whoever copies the file. Each
key has a name (what ``keys list`` and ``keys remove`` speak of, and what the server logs), optional limits
that replace the server's for it (requests per minute, characters per request), its creation time and when it
was last used. SQLite commits atomically, so a ``keys add`` killed at any moment leaves the database with or
without the key, never half of it, and a running server sees an added or removed key at its next request.

Importing this module is cheap (no FastAPI): ``seq2seq keys`` uses it without the serve extra.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from seq2seq.errors import UserError

COLUMNS = ("name", "key_sha256", "req_limit", "char_limit", "created", "last_used")
SCHEMA = """CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    key_sha256 TEXT NOT NULL UNIQUE,
    req_limit INTEGER,
    char_limit INTEGER,
    created TEXT NOT NULL,
    last_used TEXT
)"""
TOUCH_SECONDS = 60.0  # last_used is written at most this often per key: a database write per request costs


@dataclass(frozen=True)
class ApiKey:
    """What the database knows of a key (never the key itself)."""

    name: str
    req_limit: int | None  # requests per minute; None: the server's --req-limit
    char_limit: int | None  # characters per request; None: the server's --char-limit
    created: str  # ISO 8601, UTC
    last_used: str | None


class KeyStoreError(UserError):
    """The key database cannot be used: not a database, another program's table, locked, or gone."""


def digest(key: str) -> str:
    """What the database keeps of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def now() -> str:
    """The time as the database records it: ISO 8601, UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The key database at ``path``; ``create=False`` refuses a path that holds none (a typo must not serve
    with an empty key list). ``timeout``: seconds to wait for a database another process is writing (a server
    waits briefly, its event loop must not stall). Every database fault is a :class:`KeyStoreError`."""

    def __init__(self, path: str | Path, *, create: bool = True, timeout: float = 10.0):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise KeyStoreError(f"{self.path} holds no API key database; create it with `seq2seq keys add NAME "
                                f"--api-keys-db {self.path}`.")
        try:
            self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.db.execute(SCHEMA)
            columns = tuple(row[1] for row in self.db.execute("PRAGMA table_info(api_keys)"))
        except sqlite3.Error as error:
            raise KeyStoreError(f"{self.path} is not a usable API key database: {error}.") from None
        if columns != COLUMNS:
            self.db.close()
            raise KeyStoreError(f"{self.path} holds another program's api_keys table (columns {', '.join(columns)}; "
                                "LibreTranslate's has the same name); pass another --api-keys-db.")
        self._touched: dict[str, float] = {}

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def add(self, name: str, *, req_limit: int | None = None, char_limit: int | None = None) -> str:
        """Create a key named ``name`` with these limits; returns the key (the only time it is known)."""
        if not name or not name.isprintable():
            raise UserError("a key's name must be printable text, such as the name of who uses it.")
        key = secrets.token_urlsafe(32)
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("INSERT INTO api_keys (name, key_sha256, req_limit, char_limit, created) "
                                "VALUES (?, ?, ?, ?, ?)", (name, digest(key), req_limit, char_limit, now()))
        except sqlite3.IntegrityError:
            raise UserError(f"a key named {name!r} exists in {self.path}; remove it first (seq2seq keys remove "
                            f"{name}) or choose another name.") from None
        except sqlite3.Error as error:
            raise self._fault(error) from None
        return key

    def _fault(self, error: sqlite3.Error) -> KeyStoreError:
        return KeyStoreError(f"{self.path}: the API key database failed ({error}); is another process holding it?")

    def remove(self, name: str) -> None:
        """Revoke the key named ``name``."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                removed = self.db.execute("DELETE FROM api_keys WHERE name = ?", (name,)).rowcount
        except sqlite3.Error as error:
            raise self._fault(error) from None
        if removed == 0:
            raise UserError(f"{self.path} has no key named {name!r}; `seq2seq keys list` shows the names.")

    def list(self) -> list[ApiKey]:
        """Every key's record, by name."""
        try:
            rows = self.db.execute("SELECT name, req_limit, char_limit, created, last_used FROM api_keys "
                                   "ORDER BY name").fetchall()
        except sqlite3.Error as error:
            raise self._fault(error) from None
        return [ApiKey(*row) for row in rows]

    def lookup(self, key: str) -> ApiKey | None:
        """The key's record, or None for a key that is not (or no longer) in the database.

        The database is searched by the key's SHA-256 and the stored digest is then compared in constant time,
        so neither the lookup nor the comparison tells a caller how close a guess came.
        """
        wanted = digest(key)
        try:
            row = self.db.execute("SELECT name, req_limit, char_limit, created, last_used, key_sha256 FROM api_keys "
                                  "WHERE key_sha256 = ?", (wanted,)).fetchone()
        except sqlite3.Error as error:
            raise self._fault(error) from None
        if row is None or not hmac.compare_digest(row[5], wanted):
            return None
        found = ApiKey(*row[:5])
        self._touch(found.name)
        return found

    def _touch(self, name: str) -> None:
        if time.monotonic() - self._touched.get(name, -TOUCH_SECONDS) < TOUCH_SECONDS:
            return
        self._touched[name] = time.monotonic()
        try:
            self.db.execute("UPDATE api_keys SET last_used = ? WHERE name = ?", (now(), name))
        except sqlite3.Error:  # the database is busy (a `keys add` holds it): next time
            self._touched.pop(name, None)
