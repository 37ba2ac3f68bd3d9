"""Each group commit is heard once it has committed, on every backend (``BatchCommitted``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from hookline.domain.errors import Conflict
from hookline.instrumentation import BatchCommitted, Event, Instrumentation
from hookline.storage.base import Store
from tests.conftest import make_app, make_endpoint, make_message, make_store, utcnow


@dataclass
class Commits:
    events: frozenset[type[Event]] = frozenset({BatchCommitted})
    seen: list[BatchCommitted] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        assert isinstance(event, BatchCommitted)
        self.seen.append(event)


@pytest.fixture
async def heard(store_location: tuple[str, str]) -> AsyncIterator[tuple[Store, Commits]]:
    commits = Commits()
    store = make_store(store_location, instrumentation=Instrumentation([commits]))
    await store.open()
    yield store, commits
    await store.close()


async def test_publishes_that_share_a_commit_are_heard_as_one_batch(
    heard: tuple[Store, Commits], store_location: tuple[str, str]
) -> None:
    """Concurrent publishes are counted once each, with their messages, under the backend."""
    store, commits = heard
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await asyncio.gather(
        store.publish([make_message(app), make_message(app)], utcnow()),
        store.publish([make_message(app)], utcnow()),
    )
    assert sum(c.publishes for c in commits.seen) == 2
    assert sum(c.messages for c in commits.seen) == 3
    assert {c.backend for c in commits.seen} == {
        "sqlite" if store_location[0] == "sqlite" else "postgresql"
    }
    assert all(c.duration_s >= 0 and c.records == 0 for c in commits.seen)


async def test_a_commit_says_what_it_accepted_leaving_out_a_refused_publish(
    heard: tuple[Store, Commits],
) -> None:
    """``accepted``, ``deliveries`` and ``payload_bytes`` count the messages committed and
    their fan-out (what the metrics' accepted messages, deliveries created and payload sizes
    are counted from); a publish refused for a duplicate eventId is in ``messages`` only."""
    store, commits = heard
    app = make_app()
    await store.create_application(app)
    for _ in range(2):
        await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app, event_id="evt-1", payload=b"{}")], utcnow())
    refused, _ = await asyncio.gather(
        store.publish([make_message(app, event_id="evt-1")], utcnow()),
        store.publish([make_message(app, payload=b'{"a":12345}')], utcnow()),
        return_exceptions=True,
    )
    assert isinstance(refused, Conflict)
    assert sum(c.messages for c in commits.seen) == 3
    assert sum(c.accepted for c in commits.seen) == 2
    assert sum(c.deliveries for c in commits.seen) == 4
    assert sorted(size for c in commits.seen for size in c.payload_bytes) == [2, 11]
