"""Idempotency reservations, written once in the repository for both backends: a new key is
reserved, a stale unfinished one taken over, anything else read back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hookline.storage.base import Store
from hookline.storage.repository import IDEMPOTENCY_LEASE_SECONDS, SqlRepository
from tests.conftest import utcnow

STALE = timedelta(seconds=IDEMPOTENCY_LEASE_SECONDS)


async def test_an_unfinished_reservation_past_its_stale_age_is_taken_over(store: Store) -> None:
    """A key whose request never finished nor abandoned it goes to the next request."""
    now = utcnow()
    assert (
        await store.idempotency_begin("admin", "k", "dead", now - STALE - timedelta(seconds=1))
        is None
    )
    assert await store.idempotency_begin("admin", "k", "next", now) is None
    held = await store.idempotency_begin("admin", "k", "third", now)
    assert held is not None
    assert (held.request_hash, held.completed) == ("next", False)


async def test_an_unfinished_reservation_younger_than_its_stale_age_is_kept(store: Store) -> None:
    """A key still within its stale age stays with the request that holds it."""
    now = utcnow()
    assert await store.idempotency_begin("admin", "k", "first", now - STALE / 2) is None
    held = await store.idempotency_begin("admin", "k", "second", now)
    assert held is not None
    assert (held.request_hash, held.completed) == ("first", False)


async def test_a_renewed_reservation_is_kept_past_its_lease(store: Store) -> None:
    """A request that renews its key (a live owner) keeps it however long it runs; the same
    key left unrenewed for one lease (its owner died) goes to the next request."""
    start = utcnow()
    assert await store.idempotency_begin("admin", "k", "live", start) is None
    later = start
    for _ in range(5):
        later += STALE * 0.8
        await store.idempotency_renew("admin", "k", "live", later)
    held = await store.idempotency_begin("admin", "k", "other", later + STALE * 0.8)
    assert held is not None and held.request_hash == "live"
    taken = later + STALE + timedelta(seconds=1)
    assert await store.idempotency_begin("admin", "k", "next", taken) is None


async def test_a_renewal_does_not_touch_another_requests_or_a_finished_key(store: Store) -> None:
    """Renewing under another request's hash, or a key already finished, changes nothing."""
    now = utcnow()
    assert await store.idempotency_begin("admin", "k", "holder", now) is None
    await store.idempotency_renew("admin", "k", "impostor", now + STALE * 0.8)
    assert await store.idempotency_begin("admin", "k", "next", now + STALE * 1.1) is None


async def test_a_finished_key_is_replayed_however_old(store: Store) -> None:
    """A key with a stored response is never taken over: its response is replayed."""
    now = utcnow()
    assert await store.idempotency_begin("admin", "k", "first", now - STALE * 10) is None
    await store.idempotency_finish("admin", "k", 202, b"done")
    replay = await store.idempotency_begin("admin", "k", "second", now)
    assert replay is not None
    assert (replay.request_hash, replay.status, replay.body) == ("first", 202, b"done")


async def test_a_key_abandoned_between_the_reservation_and_the_read_is_reserved_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the holder abandons the key after it was found taken and before its record is read,
    the key is free: the request reserves it instead of failing."""
    assert isinstance(store, SqlRepository)
    now = utcnow()
    assert await store.idempotency_begin("admin", "k", "holder", now) is None
    connector = store._db
    query = connector.query
    abandoned: list[str] = []

    async def abandon_first(name: str, params: dict[str, Any]) -> list[Any]:
        if name == "idempotency_get" and not abandoned:
            abandoned.append(name)
            await store.idempotency_abandon("admin", "k")
        return await query(name, params)

    monkeypatch.setattr(connector, "query", abandon_first)
    assert await store.idempotency_begin("admin", "k", "next", now) is None
    assert abandoned == ["idempotency_get"]
    monkeypatch.undo()
    held = await store.idempotency_begin("admin", "k", "third", now)
    assert held is not None
    assert held.request_hash == "next"
