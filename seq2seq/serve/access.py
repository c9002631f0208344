"""Who may translate, and how much: API keys and per-client limits, as LibreTranslate does them.

Without ``--api-keys`` everyone may translate, and a sent ``api_key`` is accepted and ignored (clients such as
deep-translator always send one). With it, a translation request needs a key from the server's key database
(:mod:`seq2seq.serve.keys`): none gets 403 with LibreTranslate's "Please contact the server operator to get an
API key", an unknown or revoked one 403 with "Invalid API key".

Limits apply per key, or per client address where there is no key: ``--req-limit`` requests per minute and
``--char-limit`` characters per request; a key's own limits replace the server's. Past the request rate the
answer is 429 with LibreTranslate's body (``{"error": "Slowdown: 60 per 1 minute"}``) and a ``Retry-After``
header; past the characters, 400 with LibreTranslate's "request (N) exceeds text limit (M)". The rate is a
token bucket: a client may spend its whole minute at once, and then one request every 60/N seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from seq2seq.serve.keys import ApiKey, KeyStore, KeyStoreError
from seq2seq.serve.limits import ApiError

MISSING_KEY = "Please contact the server operator to get an API key"
INVALID_KEY = "Invalid API key"
MAX_CLIENTS = 100_000  # buckets kept; full ones (idle clients) are dropped first when there are more


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Requests per minute for each client: a bucket of ``limit`` tokens refilled at ``limit / 60`` per second."""

    buckets: dict[str, _Bucket] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def take(self, client: str, limit: int, at: float | None = None) -> float | None:
        """Spend one request of ``client``'s at time ``at`` (default: now); None when allowed, else the seconds
        until it would be."""
        at = self.clock() if at is None else at
        rate = limit / 60.0
        bucket = self.buckets.get(client)
        if bucket is None:
            self._make_room()
            bucket = self.buckets[client] = _Bucket(float(limit), at)
        bucket.tokens = min(float(limit), bucket.tokens + (at - bucket.updated) * rate)
        bucket.updated = at
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def _make_room(self) -> None:
        if len(self.buckets) < MAX_CLIENTS:
            return
        now = self.clock()
        self.buckets = {client: bucket for client, bucket in self.buckets.items()
                        if now - bucket.updated < 60.0}  # an idle minute refills any bucket: forget it
        while len(self.buckets) >= MAX_CLIENTS:  # still full of active clients: the oldest go
            self.buckets.pop(next(iter(self.buckets)))


@dataclass
class Access:
    """The server's access rules: its key database (None without ``--api-keys``) and default limits."""

    keys: KeyStore | None = None
    req_limit: int | None = None  # requests per minute per client; None: unlimited
    char_limit: int | None = None  # characters per request; None: only max_chars per text
    limiter: RateLimiter = field(default_factory=RateLimiter)

    @property
    def key_required(self) -> bool:
        return self.keys is not None

    def limit(self, key: ApiKey | None, client: str, chars: int) -> None:
        """Count a translation request of ``chars`` characters by ``key`` (:meth:`identify`) from address
        ``client``, or raise the :class:`ApiError` that refuses it (400 size, 429 rate)."""
        req_limit = key.req_limit if key is not None and key.req_limit is not None else self.req_limit
        char_limit = key.char_limit if key is not None and key.char_limit is not None else self.char_limit
        if char_limit is not None and chars > char_limit:
            raise ApiError(400, f"Invalid request: request ({chars}) exceeds text limit ({char_limit})")
        if req_limit is not None:
            wait = self.limiter.take(f"key:{key.name}" if key is not None else f"address:{client}", req_limit)
            if wait is not None:
                raise ApiError(429, f"Slowdown: {req_limit} per 1 minute",
                               headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def identify(self, api_key: object, client: str) -> ApiKey | None:
        """The key a request from address ``client`` sent, when keys are on (403 for none or a wrong one, which
        count against the address's request rate, so that keys cannot be guessed at full speed); None when they
        are off."""
        if self.keys is None:
            return None
        try:
            found = self.keys.lookup(api_key) if isinstance(api_key, str) and api_key else None
        except KeyStoreError as error:
            raise ApiError(503, f"the server cannot check API keys now: {error}") from None
        if found is None:
            if self.req_limit is not None and self.limiter.take(f"address:{client}", self.req_limit) is not None:
                raise ApiError(429, f"Slowdown: {self.req_limit} per 1 minute")
            raise ApiError(403, INVALID_KEY if api_key else MISSING_KEY)
        return found
