"""Bearer tokens: generated with ``secrets``, stored only as SHA-256 hashes.

A token is admin (full rights) or scoped to one application (the portal token from
``app-portal-access``); a scoped token sees other applications as absent (404).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from hookline.domain import ids
from hookline.domain.errors import Unauthorized
from hookline.domain.models import AccessToken
from hookline.operations import applications
from hookline.operations.applications import NewApplication
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import Store

TOKEN_PREFIX_ADMIN = "hl_admin_"
TOKEN_PREFIX_APP = "hl_app_"
CACHE_SECONDS = 5.0
CACHE_MAX_ENTRIES = 10_000
DEFAULT_PORTAL_EXPIRY = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class PortalAccess:
    """A token scoped to one application, and the portal link that carries it."""

    url: str
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(
    app_id: str | None, now: datetime, expires_at: datetime | None
) -> tuple[str, AccessToken]:
    """Return the plaintext (shown once) and the record to store."""
    prefix = TOKEN_PREFIX_APP if app_id else TOKEN_PREFIX_ADMIN
    plaintext = prefix + secrets.token_urlsafe(32)
    return plaintext, _record(hash_token(plaintext), app_id, now, expires_at)


def _record(
    digest: str, app_id: str | None, now: datetime, expires_at: datetime | None
) -> AccessToken:
    return AccessToken(
        id=ids.new_id(ids.TOKEN),
        token_hash=digest,
        app_id=app_id,
        expires_at=expires_at,
        created_at=now,
    )


async def portal_access(
    ops: Operations,
    principal: Principal,
    app_key: str,
    application: NewApplication | None = None,
    expiry: timedelta = DEFAULT_PORTAL_EXPIRY,
) -> PortalAccess:
    """Issue a token scoped to the application (created from ``application`` if missing)."""
    principal.require_admin()
    app = await applications.resolve_or_create(ops, principal, app_key, application)
    now = ops.clock()
    token, record = new_token(app.id, now, now + expiry)
    await ops.store.create_token(record)
    return PortalAccess(url=f"{ops.base_url}/portal/{app.id}#key={token}", token=token)


async def create_token(ops: Operations, principal: Principal, app_key: str | None = None) -> str:
    """A new token that never expires, admin or scoped to ``app_key``; the plaintext, once."""
    principal.require_admin()
    app = None if app_key is None else await applications.resolve(ops, principal, app_key)
    token, record = new_token(None if app is None else app.id, ops.clock(), None)
    await ops.store.create_token(record)
    return token


async def ensure_admin_token(
    ops: Operations, principal: Principal, configured: str | None
) -> str | None:
    """Make the configured admin token valid, or generate one when no admin token exists.

    Returns a generated token's plaintext (the caller shows it once; only its hash is kept),
    or None when nothing was generated.
    """
    principal.require_admin()
    if configured:
        digest = hash_token(configured)
        if await ops.store.find_token(digest) is None:
            await ops.store.create_token(_record(digest, None, ops.clock(), None))
        return None
    if await ops.store.count_admin_tokens() > 0:
        return None
    return await create_token(ops, principal)


class Authenticator:
    """Checks bearer tokens, remembering recent hits for a few seconds to spare the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[float, AccessToken]] = {}

    async def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header, or ``Unauthorized``."""
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        record = await self._lookup(hash_token(token.strip()))
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
            if len(self._cache) > CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (clock + CACHE_SECONDS, record)
        return record
