"""A short-lived in-process cache of applications, read on every publish.

Every API call names its application; reading it from the database each time cost about
a twentieth of ingest time (docs/performance-decisions.md). Entries live one second, and
changes made through this process drop them at once, so another replica sees a change within
a second.
"""

from __future__ import annotations

import time

from hookline.domain.models import Application

TTL_SECONDS = 1.0
MAX_ENTRIES = 10_000


class ApplicationCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Application]] = {}

    def get(self, key: str) -> Application | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, app: Application) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, app)

    def forget(self, app: Application) -> None:
        """Drop every entry for this application, under whichever key it was found."""
        stale = [k for k, (_, cached) in self._entries.items() if cached.id == app.id]
        for key in stale:
            del self._entries[key]
