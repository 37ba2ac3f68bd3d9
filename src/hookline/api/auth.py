"""Bearer tokens: generated with ``secrets``, stored only as SHA-256 hashes.

A token is admin (full rights) or scoped to one application (the portal token from
``/auth/app-portal-access``); a scoped token sees other applications as absent (404).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from hookline.api.errors import Forbidden, Unauthorized
from hookline.domain import ids
from hookline.domain.models import AccessToken
from hookline.storage.base import Store

TOKEN_PREFIX_ADMIN = "hl_admin_"
TOKEN_PREFIX_APP = "hl_app_"
CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    app_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.app_id is None

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("This operation needs an admin token; portal tokens cannot use it")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(
    app_id: str | None, now: datetime, expires_at: datetime | None
) -> tuple[str, AccessToken]:
    """Return the plaintext (shown once) and the record to store."""
    prefix = TOKEN_PREFIX_APP if app_id else TOKEN_PREFIX_ADMIN
    plaintext = prefix + secrets.token_urlsafe(32)
    record = AccessToken(
        id=ids.new_id(ids.TOKEN),
        token_hash=hash_token(plaintext),
        app_id=app_id,
        expires_at=expires_at,
        created_at=now,
    )
    return plaintext, record


class Authenticator:
    """Checks bearer tokens, remembering recent hits for a few seconds to spare the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[float, AccessToken]] = {}

    async def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        digest = hash_token(token.strip())
        record = await self._lookup(digest)
        if record is None or (record.expires_at is not None and record.expires_at <= now):
            raise Unauthorized("Invalid or expired token")
        return Principal(token_id=record.id, app_id=record.app_id)

    async def _lookup(self, digest: str) -> AccessToken | None:
        cached = self._cache.get(digest)
        clock = time.monotonic()
        if cached is not None and cached[0] > clock:
            return cached[1]
        record = await self._store.find_token(digest)
        if record is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (clock + CACHE_SECONDS, record)
        return record
