"""The per-process memory of tokens: the hash key once read, and recent lookups.

Looking a token up costs a query; ingest cannot pay one per request, so a looked-up token is
trusted for ``CACHE_SECONDS``. That is the bound on how late a revocation or an expiry
brought forward in *another* process takes effect; the process that revokes empties its
cache, so there it takes effect on the next request. Entries are bounded in number too.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from hookline.domain.models import AccessToken

CACHE_SECONDS = 2.0
"""How long a process trusts a token it looked up: the bound on how late a revocation or
an expiry brought forward *in another process* takes effect. In the revoking process it
takes effect on the next request (the cache is emptied)."""
CACHE_MAX_ENTRIES = 10_000
TOUCH_SECONDS = 60.0
"""``last_used_at`` is written at most this often per token and process."""


@dataclass
class TokenCache:
    """Per process: the hash key once read, recent lookups (bounded in time and size), and
    when each token's last use was last written."""

    ttl: float = CACHE_SECONDS
    max_entries: int = CACHE_MAX_ENTRIES
    monotonic: Callable[[], float] = time.monotonic
    key: bytes | None = None
    _entries: OrderedDict[str, tuple[float, AccessToken]] = field(default_factory=OrderedDict)
    _touched: dict[str, float] = field(default_factory=dict)

    def get(self, digest: str) -> AccessToken | None:
        found = self._entries.get(digest)
        if found is None or found[0] <= self.monotonic():
            return None
        return found[1]

    def put(self, digest: str, record: AccessToken) -> None:
        self._entries[digest] = (self.monotonic() + self.ttl, record)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every lookup: called on each revocation or expiry in this process."""
        self._entries.clear()

    def due_for_touch(self, token_id: str) -> bool:
        now = self.monotonic()
        last = self._touched.get(token_id)
        if last is not None and now - last < TOUCH_SECONDS:
            return False
        if len(self._touched) >= self.max_entries:
            self._touched.clear()
        self._touched[token_id] = now
        return True
