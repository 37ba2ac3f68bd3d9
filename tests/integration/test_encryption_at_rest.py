"""Secrets encrypted at rest, on both backends: the database files (SQLite, WAL included) and
the raw rows (PostgreSQL, read with SQL that bypasses hookline) hold no signing secret, no
header value and no endpoint credential (HTTP Basic password, OAuth client secret, mTLS
private key) in plaintext; ``hookline rekey`` moves every row under the first key, online,
without overwriting a concurrent update; a sealed value moved to another row does not open."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from hookline.domain.keyring import KeyRing, SecretsUnreadable, new_key_entry, parse_key_ring
from hookline.domain.models import Endpoint
from hookline.operations import encryption, endpoint_auth, endpoints, operational_webhooks
from hookline.operations.context import Operations
from hookline.operations.endpoint_auth import OAuthInput
from hookline.operations.endpoints import EndpointFields
from hookline.operations.principal import SYSTEM
from hookline.storage.base import Store
from hookline.storage.codec import PLAIN, RowCodec, SealingCodec
from tests.conftest import make_app, make_store
from tests.integration.certificates import CertificateAuthority

OLD = new_key_entry("old")
NEW = new_key_entry("new")
SECRET = "whsec_" + "c2lnbmluZy1zZWNyZXQtbmV2ZXItaW4tY2xlYXI="
ROTATED = "whsec_" + "cm90YXRlZC1zZWNyZXQtbmV2ZXItaW4tY2xlYXI="
BEARER = "Bearer header-credential-never-in-clear"
OPERATIONAL_BEARER = "Bearer operational-credential-never-in-clear"
CLIENT_SECRET = "oauth-client-secret-never-in-clear"
PASSWORD = "basic-password-never-in-clear"
IDENTITY = CertificateAuthority("at-rest").issue("hookline-sender", client=True)
KEY_LINE = IDENTITY.key.splitlines()[1]
"""A line of the mTLS private key's base64: found in the raw data only if the key is."""
PLAINTEXTS = (SECRET, ROTATED, BEARER, OPERATIONAL_BEARER, CLIENT_SECRET, PASSWORD, KEY_LINE)


def ring(text: str) -> KeyRing:
    parsed = parse_key_ring(text)
    assert parsed is not None
    return parsed


async def _open(location: tuple[str, str], codec: RowCodec) -> Store:
    store = make_store(location, codec)
    await store.open()
    return store


async def raw_database(location: tuple[str, str]) -> bytes:
    """Everything the database holds, read around hookline: SQLite's files (main, WAL and
    shared memory, whichever exist), or every column of PostgreSQL's endpoint rows."""
    backend, where = location
    if backend == "sqlite":
        files = [Path(where + suffix) for suffix in ("", "-wal", "-shm")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    conn = await asyncpg.connect(where)
    try:
        found = await conn.fetch("SELECT * FROM endpoints")
    finally:
        await conn.close()
    return repr([dict(r) for r in found]).encode()


def leaked(raw: bytes) -> list[str]:
    return [text for text in PLAINTEXTS if text.encode() in raw]


async def _secrets_everywhere(ops: Operations) -> tuple[Endpoint, Endpoint, Endpoint]:
    """An endpoint with a header credential, a rotated-out secret, OAuth client credentials
    and a client certificate; one with HTTP Basic; and an operational webhook endpoint with
    a header credential, created and changed through the operations."""
    app = make_app()
    await ops.store.create_application(app)
    given = EndpointFields(url="https://example.com/hook", secret=SECRET)
    ep = await endpoints.create(ops, SYSTEM, app.id, given)
    await endpoints.rotate_secret(ops, SYSTEM, app.id, ep.id, ROTATED)
    await endpoints.set_headers(ops, SYSTEM, app.id, ep.id, {"authorization": BEARER})
    oauth = OAuthInput("https://auth.example.com/token", "hookline", CLIENT_SECRET)
    await endpoint_auth.set_oauth(ops, SYSTEM, app.id, ep.id, oauth)
    identity = IDENTITY.key + IDENTITY.certificate
    await endpoint_auth.set_mtls(ops, SYSTEM, app.id, ep.id, identity, None)
    basic = await endpoints.create(ops, SYSTEM, app.id, EndpointFields(url="https://b.example"))
    await endpoint_auth.set_basic(ops, SYSTEM, app.id, basic.id, "hookline", PASSWORD)
    operational = await operational_webhooks.create(
        ops,
        SYSTEM,
        EndpointFields(
            url="https://example.com/ops", headers={"authorization": OPERATIONAL_BEARER}
        ),
    )
    return (
        await endpoints.get(ops, SYSTEM, app.id, ep.id),
        await endpoints.get(ops, SYSTEM, app.id, basic.id),
        operational,
    )


async def test_no_secret_is_in_the_database_in_plaintext(store_location: tuple[str, str]) -> None:
    """With a key configured, the signing secret, the rotated-out one and the header values
    of an endpoint and of an operational-webhook endpoint are nowhere in the raw database,
    and hookline reads them back whole."""
    store = await _open(store_location, SealingCodec(ring(NEW)))
    ops = Operations(store)
    try:
        ep, basic, operational = await _secrets_everywhere(ops)
        assert {k.secret for k in ep.keys} == {SECRET, ROTATED}
        assert ep.headers == {"authorization": BEARER}
        assert ep.auth is not None and ep.auth.oauth is not None and ep.auth.mtls is not None
        assert ep.auth.oauth.client_secret == CLIENT_SECRET
        assert ep.auth.mtls.key == IDENTITY.key
        assert basic.auth is not None and basic.auth.basic is not None
        assert basic.auth.basic.password == PASSWORD
        assert operational.headers == {"authorization": OPERATIONAL_BEARER}
        assert leaked(await raw_database(store_location)) == []
        assert await store.get_endpoint(ep.app_id, ep.id) == ep
        assert await store.get_endpoint(basic.app_id, basic.id) == basic
    finally:
        await store.close()
    assert leaked(await raw_database(store_location)) == []


async def test_the_raw_check_sees_plaintext_when_there_is_no_key(
    store_location: tuple[str, str],
) -> None:
    """The check above can fail: without a key the same secrets are found in the raw data."""
    store = await _open(store_location, PLAIN)
    try:
        await _secrets_everywhere(Operations(store))
        assert set(leaked(await raw_database(store_location))) == set(PLAINTEXTS)
    finally:
        await store.close()


async def test_rekey_moves_plaintext_and_old_keys_under_the_first_key(
    store_location: tuple[str, str],
) -> None:
    """Rows from before keys were configured and rows under an older key are re-encrypted
    under the first key, so the older key can be dropped; the plaintext is then gone from
    the raw database (SQLite: secure_delete and a truncated WAL), and a second rekey finds
    nothing to do."""
    plain = await _open(store_location, PLAIN)
    first, basic, operational = await _secrets_everywhere(Operations(plain))
    await plain.close()
    old = await _open(store_location, SealingCodec(ring(OLD)))
    app = make_app()
    await old.create_application(app)
    under_old = await endpoints.create(
        Operations(old), SYSTEM, app.id, EndpointFields(url="https://example.com/old")
    )
    await old.close()

    rotated = await _open(store_location, SealingCodec(ring(f"{NEW},{OLD}")))
    try:
        ops = Operations(rotated)
        dry = await encryption.rekey(ops, SYSTEM, batch_size=2, dry_run=True)
        assert (dry.scanned, dry.rekeyed, dry.raced) == (4, 4, 0)
        report = await encryption.rekey(ops, SYSTEM, batch_size=2)
        assert (report.scanned, report.rekeyed, report.raced) == (4, 4, 0)
        assert (await encryption.rekey(ops, SYSTEM)).rekeyed == 0
        assert leaked(await raw_database(store_location)) == []
    finally:
        await rotated.close()

    only_new = await _open(store_location, SealingCodec(ring(NEW)))
    try:
        for ep in (first, basic, operational, under_old):
            assert await only_new.get_endpoint(ep.app_id, ep.id) == ep
    finally:
        await only_new.close()


class RacingCodec(SealingCodec):
    """Runs ``race`` once, the first time rekey re-encodes a value: between its read and its
    compare-and-set write."""

    def __init__(self, keys: KeyRing, race: Callable[[], None]) -> None:
        super().__init__(keys)
        self.race: Callable[[], None] | None = race

    def encode(self, table: str, column: str, row: str, value: str) -> str:
        race, self.race = self.race, None
        if race is not None:
            race()
        return super().encode(table, column, row, value)


async def test_rekey_never_overwrites_a_concurrent_update(
    store_location: tuple[str, str],
) -> None:
    """A process still on the old key list updates an endpoint's headers while rekey is
    between its read and its write: the update stands, rekey's write for that row is refused
    by the compare-and-set, and its next pass re-encrypts the updated row."""
    old = await _open(store_location, SealingCodec(ring(OLD)))
    app = make_app()
    await old.create_application(app)
    given = EndpointFields(url="https://example.com/hook", headers={"authorization": BEARER})
    ep = await endpoints.create(Operations(old), SYSTEM, app.id, given)
    await old.close()

    def concurrent_update() -> None:
        async def update() -> None:
            writer = await _open(store_location, SealingCodec(ring(OLD)))
            try:
                await endpoints.set_headers(
                    Operations(writer), SYSTEM, app.id, ep.id, {"x-changed": "meanwhile"}
                )
            finally:
                await writer.close()

        thread = threading.Thread(target=lambda: asyncio.run(update()))
        thread.start()
        thread.join(30)

    racing = await _open(store_location, RacingCodec(ring(f"{NEW},{OLD}"), concurrent_update))
    try:
        first = await racing.rekey_batch("", 10)
        assert (first.scanned, first.rekeyed, first.raced) == (1, 0, 1)
        report = await encryption.rekey(Operations(racing), SYSTEM)
        assert (report.rekeyed, report.raced) == (1, 0)
    finally:
        await racing.close()
    only_new = await _open(store_location, SealingCodec(ring(NEW)))
    try:
        stored = await only_new.get_endpoint(app.id, ep.id)
        assert stored is not None and stored.headers == {"x-changed": "meanwhile"}
        assert stored.version == ep.version + 1
    finally:
        await only_new.close()


async def _copy_headers(location: tuple[str, str], source: str, target: str) -> None:
    backend, where = location
    if backend == "sqlite":
        with sqlite3.connect(where) as db:
            db.execute(
                "UPDATE endpoints SET headers = (SELECT headers FROM endpoints WHERE id = ?) "
                "WHERE id = ?",
                (source, target),
            )
        return
    conn = await asyncpg.connect(where)
    try:
        await conn.execute(
            "UPDATE endpoints SET headers = (SELECT headers FROM endpoints WHERE id = $1) "
            "WHERE id = $2",
            source,
            target,
        )
    finally:
        await conn.close()


async def test_a_sealed_value_copied_into_another_endpoint_does_not_open(
    store_location: tuple[str, str],
) -> None:
    """Someone who can write the database copies a victim's sealed header credential into
    an endpoint whose URL they chose: hookline refuses to decrypt it there (503, naming no
    secret) instead of sending the credential to that URL."""
    store = await _open(store_location, SealingCodec(ring(NEW)))
    try:
        ops = Operations(store)
        app = make_app()
        await store.create_application(app)
        victim = await endpoints.create(
            ops, SYSTEM, app.id, EndpointFields(url="https://a.example", headers={"a": BEARER})
        )
        attacker = await endpoints.create(
            ops, SYSTEM, app.id, EndpointFields(url="https://b.example")
        )
        await _copy_headers(store_location, victim.id, attacker.id)
        with pytest.raises(SecretsUnreadable) as caught:
            await store.get_endpoint(app.id, attacker.id)
        assert caught.value.code == "secrets_unreadable" and BEARER not in caught.value.detail
        assert await store.get_endpoint(app.id, victim.id) == victim
    finally:
        await store.close()


async def test_a_store_without_the_keys_refuses_sealed_rows(
    store_location: tuple[str, str],
) -> None:
    """Started without HOOKLINE_ENCRYPTION_KEYS on a database whose secrets are sealed, the
    store says which key is missing instead of failing on ciphertext."""
    sealed = await _open(store_location, SealingCodec(ring(NEW)))
    app = make_app()
    await sealed.create_application(app)
    ep = await endpoints.create(
        Operations(sealed), SYSTEM, app.id, EndpointFields(url="https://example.com/hook")
    )
    await sealed.close()
    plain = await _open(store_location, PLAIN)
    try:
        with pytest.raises(SecretsUnreadable, match="'new'"):
            await plain.get_endpoint(app.id, ep.id)
    finally:
        await plain.close()
