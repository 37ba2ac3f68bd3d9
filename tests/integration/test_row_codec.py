"""The row codec (storage/codec.py): secrets are stored as the codec encodes them, on every
backend, and every read gives them back decoded, whichever path reads them."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from hookline.domain.models import Endpoint, SigningKey
from hookline.domain.signing import generate_secret
from hookline.storage.base import ListQuery, Store
from hookline.storage.codec import SECRET_COLUMNS
from tests.conftest import make_app, make_endpoint, make_message, make_store, utcnow
from tests.integration.test_store_contract import RecordingHandoff

SEALED = "sealed:"


class ReversingCodec:
    """A stand-in for encryption: the secret columns are stored reversed behind a prefix
    naming the column and the row, and it refuses to decode what it did not encode for that
    row."""

    def encode(self, table: str, column: str, row: str, value: str) -> str:
        assert (table, column) in SECRET_COLUMNS
        return f"{SEALED}{table}.{column}.{row}:{value[::-1]}"

    def decode(self, table: str, column: str, row: str, value: str) -> str:
        prefix = f"{SEALED}{table}.{column}.{row}:"
        assert value.startswith(prefix), value
        return value[len(prefix) :][::-1]

    def current(self, value: str) -> bool:
        return value.startswith(SEALED)


@pytest.fixture
async def sealed_store(store_location: tuple[str, str]) -> AsyncIterator[Store]:
    """A store of each backend that encodes secrets with ``ReversingCodec``."""
    backend = make_store(store_location, ReversingCodec())
    await backend.open()
    yield backend
    await backend.close()


async def _stored_secrets(location: tuple[str, str], endpoint_id: str) -> tuple[str, str]:
    """The ``keys`` and ``headers`` columns of an endpoint as they are in the table."""
    backend, where = location
    if backend == "postgres":
        conn = await asyncpg.connect(where)
        try:
            row = await conn.fetchrow(
                "SELECT keys, headers FROM endpoints WHERE id = $1", endpoint_id
            )
        finally:
            await conn.close()
    else:
        with sqlite3.connect(where) as db:
            row = db.execute(
                "SELECT keys, headers FROM endpoints WHERE id = ?", (endpoint_id,)
            ).fetchone()
    return str(row[0]), str(row[1])


def _with_secret_header(endpoint: Endpoint) -> Endpoint:
    return dataclasses.replace(endpoint, headers={"authorization": "Bearer s3cret"})


async def test_secrets_are_stored_encoded_and_read_back_plain(
    sealed_store: Store, store_location: tuple[str, str]
) -> None:
    """An endpoint's keys and headers are in the table only as the codec encoded them, and
    reading the endpoint by id, by uid or in a list gives them back as they were, also
    after an update that rotates the key."""
    app = make_app()
    await sealed_store.create_application(app)
    ep = _with_secret_header(make_endpoint(app, uid="primary"))
    await sealed_store.create_endpoint(ep)
    keys, headers = await _stored_secrets(store_location, ep.id)
    assert keys.startswith(f"{SEALED}endpoints.keys.{ep.id}:") and ep.keys[0].secret not in keys
    assert headers.startswith(f"{SEALED}endpoints.headers.{ep.id}:") and "s3cret" not in headers
    assert await sealed_store.get_endpoint(app.id, ep.id) == ep
    assert await sealed_store.get_endpoint(app.id, "primary") == ep
    assert (await sealed_store.list_endpoints(app.id, ListQuery())).data == [ep]
    rotated = dataclasses.replace(ep, keys=(SigningKey(generate_secret()),))
    stored = await sealed_store.update_endpoint(rotated)
    keys, _ = await _stored_secrets(store_location, ep.id)
    assert rotated.keys[0].secret not in keys
    assert stored == dataclasses.replace(rotated, version=2)
    assert await sealed_store.get_endpoint(app.id, ep.id) == stored


async def test_routing_claims_and_handoffs_read_secrets_plain(sealed_store: Store) -> None:
    """A publish routes against encoded endpoints, and the endpoint a worker gets, handed
    over by the publish or claimed later, or listed as a message's destination, carries
    its secrets decoded."""
    app = make_app()
    await sealed_store.create_application(app)
    ep = _with_secret_header(make_endpoint(app, event_types=("user.created",)))
    await sealed_store.create_endpoint(ep)
    handoff = RecordingHandoff(slots=1)
    sealed_store.attach_handoff(handoff)
    first, second = make_message(app), make_message(app)
    assert await sealed_store.publish([first, second], utcnow()) == [[ep.id], [ep.id]]
    (handed,) = handoff.claimed
    assert handed.endpoint == ep
    now = utcnow()
    (claimed,) = await sealed_store.claim_due(10, now, now + timedelta(seconds=30), "w2")
    assert claimed.message.id == second.id and claimed.endpoint == ep
    destinations = await sealed_store.list_attempted_destinations(app.id, first.id, ListQuery())
    assert [found for found, _ in destinations.data] == [ep]
