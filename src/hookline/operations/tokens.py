"""Bearer tokens: issued, listed, revoked and expired here, for the API and the CLI alike.

A token is admin (full rights) or scoped to one application with a set of capabilities
(``domain.capabilities``); a scoped token sees other applications as absent (404).

Tokens are 32 random bytes from ``secrets``, shown once. The store keeps an HMAC-SHA256
of each under a random 32-byte key that the first process to need it writes to the
database (``server_keys``): every replica and every restart reads the same key without a
new setting, and a leak of the tokens table alone (a backup of it, a query that reads it)
gives nothing to test guesses against, which matters for configured tokens that a person
chose. Hashes from before keyed hashing (plain SHA-256) are still found (one more lookup
for an unknown token) and left as they are, so that a rolling upgrade keeps them working on
processes of the previous version; revoke them to be rid of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hookline.domain import audit as a
from hookline.domain import ids
from hookline.domain.capabilities import Capability, grant
from hookline.domain.errors import Forbidden, InvalidRequest, NotFound, Unauthorized, Unavailable
from hookline.domain.models import AccessToken
from hookline.domain.networks import InvalidNetwork, Network, parse_allowlist, parse_network
from hookline.operations import applications
from hookline.operations.applications import NewApplication
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.operations.token_cache import CACHE_SECONDS as CACHE_SECONDS

TOKEN_PREFIX_ADMIN = "hl_admin_"
TOKEN_PREFIX_APP = "hl_app_"
MIN_CONFIGURED_LENGTH = 32
"""The shortest ``HOOKLINE_ADMIN_TOKEN`` accepted (config.py refuses shorter ones)."""
DEFAULT_PORTAL_EXPIRY = timedelta(days=7)
HASH_KEY_NAME = "token_hmac_sha256"
HASH_PREFIX = "h1:"
"""Marks a keyed hash; a stored hash without it is a plain SHA-256 from before."""


@dataclass(frozen=True, slots=True)
class PortalAccess:
    """A token scoped to one application, and the portal link that carries it."""

    url: str
    token: str


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What a new token may do; the defaults make an admin token that never expires."""

    app_key: str | None = None
    name: str | None = None
    expires_in: timedelta | None = None
    capabilities: frozenset[Capability] | None = None
    """For a scoped token: what it may do (None: everything, as Svix's default)."""
    read_only: bool = False
    session_id: str | None = None
    allowed_networks: Sequence[str] | None = None
    """The client networks (CIDRs, or single addresses) it may be used from; None: any."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: its plaintext (shown once, never stored) and its record."""

    token: str
    record: AccessToken


def legacy_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(key: bytes, token: str) -> str:
    return HASH_PREFIX + hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


async def hash_key(ops: Operations) -> bytes:
    """The deployment's token hash key, created in the store on first use."""
    if ops.token_cache.key is None:
        stored = await ops.store.server_key(HASH_KEY_NAME, secrets.token_hex(32), ops.clock())
        ops.token_cache.key = bytes.fromhex(stored)
    return ops.token_cache.key


async def hash_token(ops: Operations, token: str) -> str:
    return keyed_hash(await hash_key(ops), token)


async def create_token(
    ops: Operations, principal: Principal, request: TokenRequest = TokenRequest()
) -> IssuedToken:
    """A new token, admin or scoped to ``request.app_key``; its plaintext is returned once."""
    principal.require_admin()
    if request.app_key is None and (request.capabilities is not None or request.read_only):
        raise InvalidRequest(
            "capabilities and readOnly apply to application-scoped tokens; an admin token "
            "may do everything (give an application to scope the token)"
        )
    networks = allowed_networks(request.allowed_networks)
    app = None
    if request.app_key is not None:
        app = await applications.resolve(ops, principal, request.app_key)
    issued = await issue(ops, None if app is None else app.id, request, networks)
    await record_created(ops, principal, issued.record)
    return issued


async def record_created(
    ops: Operations, principal: Principal, token: AccessToken, **more: Any
) -> None:
    """Audit a new token: what it may do and until when; its name is a label, not a secret,
    and the token itself is never recorded."""
    summary = a.summary(
        name=token.name,
        admin=token.app_id is None,
        capabilities=None if token.app_id is None else sorted(c.value for c in token.capabilities),
        expiresAt=None if token.expires_at is None else token.expires_at.isoformat(),
        allowedNetworks=_shown(token.allowed_networks),
        **more,
    )
    await record(
        ops, principal, a.TOKEN_CREATED, app_id=token.app_id, target_id=token.id, summary=summary
    )


def allowed_networks(entries: Sequence[str] | None) -> tuple[Network, ...] | None:
    """A token's networks from what was written (``domain/networks.py``), or None for any
    address; a bad one is an ``InvalidRequest`` at its place in ``allowedNetworks``."""
    if entries is None:
        return None
    for index, entry in enumerate(entries):
        try:
            parse_network(entry)
        except InvalidNetwork as exc:
            raise InvalidRequest(str(exc), loc=("body", "allowedNetworks", index)) from None
    try:
        return parse_allowlist(entries)
    except InvalidNetwork as exc:
        raise InvalidRequest(str(exc), loc=("body", "allowedNetworks")) from None


async def issue(
    ops: Operations,
    app_id: str | None,
    request: TokenRequest,
    networks: tuple[Network, ...] | None = None,
) -> IssuedToken:
    """Store a new token's hash and return its plaintext, once: every way a token comes
    to be (the API, the portal link, a console sign-in) goes through here."""
    now = ops.clock()
    prefix = TOKEN_PREFIX_APP if app_id else TOKEN_PREFIX_ADMIN
    plaintext = prefix + secrets.token_urlsafe(32)
    record = AccessToken(
        id=ids.new_id(ids.TOKEN),
        token_hash=await hash_token(ops, plaintext),
        app_id=app_id,
        expires_at=None if request.expires_in is None else now + request.expires_in,
        created_at=now,
        name=request.name,
        capabilities=grant(request.capabilities, read_only=request.read_only),
        session_id=request.session_id,
        allowed_networks=networks,
    )
    await ops.store.create_token(record)
    return IssuedToken(plaintext, record)


async def portal_access(
    ops: Operations,
    principal: Principal,
    app_key: str,
    application: NewApplication | None = None,
    expiry: timedelta = DEFAULT_PORTAL_EXPIRY,
    *,
    capabilities: frozenset[Capability] | None = None,
    read_only: bool = False,
    session_id: str | None = None,
) -> PortalAccess:
    """Issue a token scoped to the application (created from ``application`` if missing)."""
    principal.require_admin()
    app = await applications.resolve_or_create(ops, principal, app_key, application)
    request = TokenRequest(
        app_key, None, expiry, capabilities, read_only=read_only, session_id=session_id
    )
    issued = await issue(ops, app.id, request)
    await record_created(ops, principal, issued.record, portal=True)
    return PortalAccess(
        url=f"{ops.base_url}/portal/{app.id}#key={issued.token}", token=issued.token
    )


async def list_tokens(
    ops: Operations, principal: Principal, app_key: str | None = None
) -> list[AccessToken]:
    """Every token (never a plaintext), or one application's."""
    principal.require_admin()
    app_id = None
    if app_key is not None:
        app_id = (await applications.resolve(ops, principal, app_key)).id
    return await ops.store.list_tokens(app_id)


async def get_token(ops: Operations, principal: Principal, token_id: str) -> AccessToken:
    principal.require_admin()
    found = await ops.store.get_token(token_id)
    if found is None:
        raise NotFound(f"No token {token_id!r}")
    return found


async def set_allowed_networks(
    ops: Operations, principal: Principal, token_id: str, entries: Sequence[str] | None
) -> AccessToken:
    """Replace the networks the token may be used from (None: any address). Like a
    revocation, this process applies it from the next request and others within
    ``CACHE_SECONDS``, since the networks are read with the token."""
    principal.require_admin()
    networks = allowed_networks(entries)
    if not await ops.store.set_token_networks(token_id, networks):
        raise NotFound(f"No token {token_id!r}")
    ops.token_cache.clear()
    found = await get_token(ops, principal, token_id)
    await record(
        ops,
        principal,
        a.TOKEN_NETWORKS_CHANGED,
        app_id=found.app_id,
        target_id=token_id,
        summary={"allowedNetworks": _shown(networks)},
    )
    return found


def _shown(networks: tuple[Network, ...] | None) -> list[str] | None:
    """Networks as the audit log shows them: where a token may be used from is no secret."""
    return None if networks is None else [str(n) for n in networks]


async def revoke_token(ops: Operations, principal: Principal, token_id: str) -> None:
    """Delete the token: refused from the next request on (see ``CACHE_SECONDS``)."""
    principal.require_admin()
    found = await ops.store.get_token(token_id)
    deleted = await ops.store.delete_token(token_id)
    ops.token_cache.clear()
    if found is None or not deleted:
        raise NotFound(f"No token {token_id!r}")
    await record(ops, principal, a.TOKEN_REVOKED, app_id=found.app_id, target_id=token_id)


async def logout(ops: Operations, principal: Principal) -> None:
    """Revoke the calling token. As in Svix, only an application-scoped token logs out; an
    admin token is revoked by id, so that no stray call locks the operator out."""
    if principal.token_id is None or principal.app_id is None:
        raise Forbidden(
            "Only an application-scoped token can log out; revoke an admin token with "
            "DELETE /api/v1/token/{token_id} or `hookline token revoke`"
        )
    await ops.store.delete_token(principal.token_id)
    ops.token_cache.clear()
    token_id, app_id = principal.token_id, principal.app_id
    await record(ops, principal, a.TOKEN_LOGGED_OUT, app_id=app_id, target_id=token_id)


async def expire_all(
    ops: Operations,
    principal: Principal,
    app_key: str,
    expiry: timedelta = timedelta(0),
    session_ids: frozenset[str] | None = None,
) -> int:
    """Expire the application's tokens ``expiry`` from now (those of ``session_ids`` only,
    when given); a token due to expire sooner keeps its expiry. The number expired."""
    principal.require_admin()
    app = await applications.resolve(ops, principal, app_key)
    until = ops.clock() + expiry
    count = 0
    for token in await ops.store.list_tokens(app.id):
        if session_ids is not None and token.session_id not in session_ids:
            continue
        count += await ops.store.expire_token(token.id, until)
    ops.token_cache.clear()
    summary = a.summary(
        expired=count,
        expirySeconds=int(expiry.total_seconds()),
        sessions=None if session_ids is None else len(session_ids),
    )
    await record(ops, principal, a.TOKENS_EXPIRED, app_id=app.id, summary=summary)
    return count


async def ensure_admin_token(
    ops: Operations, principal: Principal, configured: str | None
) -> str | None:
    """Make the configured admin token valid and the previously configured one invalid, or,
    with none configured, generate an admin token when none exists.

    Returns a generated token's plaintext (the caller shows it once; only its hash is kept),
    or None when nothing was generated.
    """
    principal.require_admin()
    if configured:
        digest = await hash_token(ops, configured)
        replaced = await ops.store.delete_configured_tokens(digest, legacy_hash(configured))
        ops.token_cache.clear()
        stored = await _store_configured(ops, configured, digest)
        if stored is not None or replaced:
            # Audited only when the setting changed something: not on every restart.
            summary = {"replaced": replaced}
            target = None if stored is None else stored.id
            await record(ops, principal, a.TOKEN_CONFIGURED, target_id=target, summary=summary)
        return None
    # Unset: the configured token stays (a replica started without the setting must not
    # revoke the fleet's token); revoke it by id if it should go.
    if await ops.store.count_admin_tokens() > 0:
        return None
    issued = await issue(ops, None, TokenRequest(name="generated at first start"))
    await record_created(ops, principal, issued.record, generated=True)
    return issued.token


async def _store_configured(ops: Operations, configured: str, digest: str) -> AccessToken | None:
    """The configured token's new record, or None when it was stored already."""
    if await ops.store.find_token(digest) is not None:
        return None
    legacy = await ops.store.find_token(legacy_hash(configured))
    if legacy is not None:
        # Stored by the previous version, whose processes still look it up during a rolling
        # upgrade: kept, but marked, so that a changed setting deletes it with the new row.
        await ops.store.mark_configured_token(legacy.id)
    record = AccessToken(
        id=ids.new_id(ids.TOKEN),
        token_hash=digest,
        app_id=None,
        expires_at=None,
        created_at=ops.clock(),
        name="HOOKLINE_ADMIN_TOKEN",
        configured=True,
    )
    await ops.store.create_token(record)
    return record


class Authenticator:
    """Checks bearer tokens against the store, through the process's ``TokenCache``."""

    def __init__(self, ops: Operations) -> None:
        self._ops = ops
        self._cache = ops.token_cache

    async def authenticate(
        self, authorization: str | None, now: datetime, address: str | None = None
    ) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header, or ``Unauthorized``;
        ``address`` is the client's, which the audit log records with each change."""
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        record = await self._lookup(token.strip())
        if record is None or (record.expires_at is not None and record.expires_at <= now):
            raise Unauthorized("Invalid or expired token")
        if self._cache.due_for_touch(record.id):
            await self._touch(record.id, now)
        return Principal(
            token_id=record.id,
            app_id=record.app_id,
            capabilities=record.capabilities,
            address=address,
            networks=record.allowed_networks,
        )

    async def _lookup(self, token: str) -> AccessToken | None:
        digest = await hash_token(self._ops, token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        store = self._ops.store
        record = await store.find_token(digest)
        if record is None:
            # Stored before keyed hashes. Left as it is, not rehashed, so that processes of
            # the previous version still find it during a rolling upgrade.
            record = await store.find_token(legacy_hash(token))
            if record is None:
                return None
        self._cache.put(digest, record)
        return record

    async def _touch(self, token_id: str, now: datetime) -> None:
        """Best effort: a request is never refused because its last use was not recorded."""
        with contextlib.suppress(Unavailable):
            await self._ops.store.touch_token(token_id, now)
