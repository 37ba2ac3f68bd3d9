"""Token operations on every backend: issue, list, revoke, expire, authenticate, cache bounds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hookline.domain import ids
from hookline.domain.capabilities import Capability
from hookline.domain.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from hookline.domain.models import AccessToken, Application
from hookline.operations import applications, tokens
from hookline.operations.applications import NewApplication
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.token_cache import CACHE_SECONDS, TokenCache
from hookline.operations.tokens import Authenticator, TokenRequest
from tests.conftest import utcnow
from tests.integration.conftest import Ops


@pytest.fixture
async def app(ops: Ops) -> Application:
    created, _ = await applications.create(ops.ops, SYSTEM, NewApplication("Acme", uid="acme"))
    return created


async def _auth(ops: Operations, token: str) -> Principal:
    return await Authenticator(ops).authenticate(f"Bearer {token}", utcnow())


async def test_portal_access_issues_a_scoped_token_that_expires(ops: Ops, app: Application) -> None:
    """The token authenticates as the application until its expiry; the link carries it."""
    access = await tokens.portal_access(ops.ops, SYSTEM, "acme", expiry=timedelta(hours=1))
    assert access.token.startswith("hl_app_")
    assert access.url == f"https://hooks.example/portal/{app.id}#key={access.token}"
    principal = await _auth(ops.ops, access.token)
    assert principal.app_id == app.id and not principal.is_admin
    with pytest.raises(Unauthorized):
        await Authenticator(ops.ops).authenticate(
            f"Bearer {access.token}", utcnow() + timedelta(hours=2)
        )


async def test_portal_access_grants_the_capabilities_asked_for(ops: Ops, app: Application) -> None:
    """Capabilities are granted as asked (plus ViewBase and what they imply); readOnly keeps
    only the reading ones; none asked means all of them, as in Svix."""
    asked = frozenset({Capability.MANAGE_ENDPOINT_SECRET})
    access = await tokens.portal_access(ops.ops, SYSTEM, "acme", capabilities=asked)
    held = (await _auth(ops.ops, access.token)).capabilities
    assert held == {
        Capability.VIEW_BASE,
        Capability.VIEW_ENDPOINT_SECRET,
        Capability.MANAGE_ENDPOINT_SECRET,
    }
    read_only = await tokens.portal_access(ops.ops, SYSTEM, "acme", read_only=True)
    assert (await _auth(ops.ops, read_only.token)).capabilities == {Capability.VIEW_BASE}
    everything = await tokens.portal_access(ops.ops, SYSTEM, "acme")
    assert (await _auth(ops.ops, everything.token)).capabilities == frozenset(Capability)


async def test_portal_access_creates_the_inline_application(ops: Ops) -> None:
    """A missing application named in the request is created under the path's uid."""
    access = await tokens.portal_access(ops.ops, SYSTEM, "new-co", NewApplication("New Co"))
    created = await ops.store.get_application("new-co")
    assert created is not None and access.url.endswith(f"/portal/{created.id}#key={access.token}")


async def test_only_admins_issue_list_and_revoke_tokens(ops: Ops, app: Application) -> None:
    """A scoped principal can issue, list, read, revoke and expire no tokens."""
    scoped = Principal(token_id="tok_p", app_id=app.id)
    with pytest.raises(Forbidden):
        await tokens.portal_access(ops.ops, scoped, "acme")
    with pytest.raises(Forbidden):
        await tokens.create_token(ops.ops, scoped)
    with pytest.raises(Forbidden):
        await tokens.list_tokens(ops.ops, scoped)
    with pytest.raises(Forbidden):
        await tokens.revoke_token(ops.ops, scoped, "tok_x")
    with pytest.raises(Forbidden):
        await tokens.expire_all(ops.ops, scoped, "acme")


async def test_create_token_is_admin_or_scoped_to_an_existing_application(
    ops: Ops, app: Application
) -> None:
    """An admin token, or one scoped to an application by uid; an unknown application is
    NotFound and stores nothing; capabilities on an admin token are refused."""
    admin = await tokens.create_token(ops.ops, SYSTEM)
    assert admin.token.startswith("hl_admin_")
    assert (await _auth(ops.ops, admin.token)).is_admin
    scoped = await tokens.create_token(ops.ops, SYSTEM, TokenRequest(app_key="acme"))
    principal = await Authenticator(ops.ops).authenticate(f"bearer {scoped.token}", utcnow())
    assert principal.app_id == app.id
    with pytest.raises(NotFound):
        await tokens.create_token(ops.ops, SYSTEM, TokenRequest(app_key="nope"))
    with pytest.raises(InvalidRequest):
        await tokens.create_token(ops.ops, SYSTEM, TokenRequest(read_only=True))
    assert await ops.store.count_admin_tokens() == 1


async def test_tokens_are_stored_as_keyed_hashes_never_in_plaintext(ops: Ops) -> None:
    """The stored hash is an HMAC under the deployment's key, not the token nor its SHA-256;
    another Operations over the same database uses the same key."""
    issued = await tokens.create_token(ops.ops, SYSTEM, TokenRequest(name="ci"))
    (stored,) = await ops.store.list_tokens()
    assert stored.token_hash.startswith(tokens.HASH_PREFIX)
    assert issued.token not in stored.token_hash
    assert stored.token_hash != tokens.legacy_hash(issued.token)
    assert await tokens.hash_token(Operations(ops.store), issued.token) == stored.token_hash


async def test_a_token_stored_with_a_plain_hash_still_works_and_is_left_as_it_is(
    ops: Ops,
) -> None:
    """Tokens from before keyed hashes authenticate, and keep their plain SHA-256 so that
    processes of the previous version still find them during a rolling upgrade."""
    plaintext = "hl_admin_" + "x" * 43
    legacy = AccessToken(ids.new_id(ids.TOKEN), tokens.legacy_hash(plaintext), None, None, utcnow())
    await ops.store.create_token(legacy)
    assert (await _auth(ops.ops, plaintext)).token_id == legacy.id
    stored = await ops.store.get_token(legacy.id)
    assert stored is not None and stored.token_hash == legacy.token_hash


async def test_list_get_and_revoke(ops: Ops, app: Application) -> None:
    """Listed tokens carry no plaintext; a revoked token is refused on the next request in
    this process, and revoking it again is NotFound."""
    admin = await tokens.create_token(ops.ops, SYSTEM, TokenRequest(name="deploy"))
    scoped = await tokens.create_token(ops.ops, SYSTEM, TokenRequest(app_key="acme"))
    listed = await tokens.list_tokens(ops.ops, SYSTEM)
    assert {t.id for t in listed} == {admin.record.id, scoped.record.id}
    assert [t.id for t in await tokens.list_tokens(ops.ops, SYSTEM, "acme")] == [scoped.record.id]
    assert (await tokens.get_token(ops.ops, SYSTEM, admin.record.id)).name == "deploy"
    auth = Authenticator(ops.ops)
    await auth.authenticate(f"Bearer {scoped.token}", utcnow())
    await tokens.revoke_token(ops.ops, SYSTEM, scoped.record.id)
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {scoped.token}", utcnow())
    with pytest.raises(NotFound):
        await tokens.revoke_token(ops.ops, SYSTEM, scoped.record.id)
    with pytest.raises(NotFound):
        await tokens.get_token(ops.ops, SYSTEM, scoped.record.id)


async def test_logout_revokes_the_calling_application_token_only(
    ops: Ops, app: Application
) -> None:
    """``auth/logout`` revokes the scoped token that calls it; an admin token is refused."""
    access = await tokens.portal_access(ops.ops, SYSTEM, "acme")
    other = await tokens.portal_access(ops.ops, SYSTEM, "acme")
    auth = Authenticator(ops.ops)
    caller = await auth.authenticate(f"Bearer {access.token}", utcnow())
    await tokens.logout(ops.ops, caller)
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {access.token}", utcnow())
    await auth.authenticate(f"Bearer {other.token}", utcnow())
    admin = await tokens.create_token(ops.ops, SYSTEM)
    with pytest.raises(Forbidden):
        await tokens.logout(ops.ops, await auth.authenticate(f"Bearer {admin.token}", utcnow()))


async def test_expire_all_expires_the_application_tokens_by_session(
    ops: Ops, app: Application
) -> None:
    """expire-all ends the application's tokens (those of the named sessions only, when
    given) and leaves other applications' and admin tokens alone."""
    await applications.create(ops.ops, SYSTEM, NewApplication("Other", uid="other"))
    one = await tokens.portal_access(ops.ops, SYSTEM, "acme", session_id="s1")
    two = await tokens.portal_access(ops.ops, SYSTEM, "acme", session_id="s2")
    elsewhere = await tokens.portal_access(ops.ops, SYSTEM, "other")
    auth = Authenticator(ops.ops)
    assert await tokens.expire_all(ops.ops, SYSTEM, "acme", session_ids=frozenset({"s1"})) == 1
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {one.token}", utcnow())
    await auth.authenticate(f"Bearer {two.token}", utcnow())
    assert await tokens.expire_all(ops.ops, SYSTEM, "acme", timedelta(hours=1)) == 1
    await auth.authenticate(f"Bearer {two.token}", utcnow())
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {two.token}", utcnow() + timedelta(hours=1, seconds=1))
    await auth.authenticate(f"Bearer {elsewhere.token}", utcnow())


async def test_last_use_is_recorded_at_most_once_a_minute(ops: Ops) -> None:
    """The first request records the time of use; requests within the minute write nothing."""
    issued = await tokens.create_token(ops.ops, SYSTEM)
    auth = Authenticator(ops.ops)
    first = utcnow()
    await auth.authenticate(f"Bearer {issued.token}", first)
    await auth.authenticate(f"Bearer {issued.token}", first + timedelta(seconds=30))
    stored = await ops.store.get_token(issued.record.id)
    assert stored is not None and stored.last_used_at is not None
    assert abs((stored.last_used_at - first).total_seconds()) < 0.01


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_revocation_reaches_another_process_within_the_cache_bound(
    ops: Ops, app: Application
) -> None:
    """Two processes over one database: a token revoked (or expired) by one is refused by the
    other as soon as the other's cached lookup is older than CACHE_SECONDS."""
    clock = _Clock()
    other = Operations(ops.store, token_cache=TokenCache(monotonic=clock))
    revoked = await tokens.portal_access(ops.ops, SYSTEM, "acme")
    expired = await tokens.portal_access(ops.ops, SYSTEM, "acme")
    replica = Authenticator(other)
    for access in (revoked, expired):
        await replica.authenticate(f"Bearer {access.token}", utcnow())
    revoked_id = (await _auth(ops.ops, revoked.token)).token_id
    assert revoked_id is not None
    await tokens.revoke_token(ops.ops, SYSTEM, revoked_id)
    await tokens.expire_all(ops.ops, SYSTEM, "acme")
    clock.now += CACHE_SECONDS - 0.1
    await replica.authenticate(f"Bearer {revoked.token}", utcnow())
    clock.now += 0.2
    for access in (revoked, expired):
        with pytest.raises(Unauthorized):
            await replica.authenticate(f"Bearer {access.token}", utcnow())


async def test_the_token_cache_is_bounded(ops: Ops) -> None:
    """The cache keeps at most max_entries lookups, dropping the oldest."""
    cache = TokenCache(max_entries=2)
    issued = [await tokens.create_token(ops.ops, SYSTEM) for _ in range(3)]
    for one in issued:
        cache.put(one.record.token_hash, one.record)
    assert cache.get(issued[0].record.token_hash) is None
    assert cache.get(issued[2].record.token_hash) == issued[2].record


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer hl_admin_wrong"])
async def test_authentication_refuses_missing_malformed_and_unknown_tokens(
    ops: Ops, header: str | None
) -> None:
    """Anything but a stored, unexpired bearer token is Unauthorized (401)."""
    with pytest.raises(Unauthorized):
        await Authenticator(ops.ops).authenticate(header, utcnow())
