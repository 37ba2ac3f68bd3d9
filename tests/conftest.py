"""Shared fixtures: a store per backend, and factories for domain objects.

PostgreSQL joins every store test when ``HOOKLINE_TEST_POSTGRES_URL`` is set (CI sets it):
the schema is migrated once into a template database, and each test gets a clone.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from hookline.domain import ids
from hookline.domain.clock import utcnow
from hookline.domain.models import (
    Application,
    Attempt,
    ClaimedDelivery,
    Endpoint,
    EventType,
    Message,
    MessageStatus,
    SigningKey,
)
from hookline.domain.signing import generate_secret
from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation
from hookline.storage.base import AttemptOutcome, Store
from hookline.storage.codec import PLAIN, RowCodec
from hookline.storage.postgres import PostgresStore
from hookline.storage.sqlite import SqliteStore

__all__ = ["utcnow"]

POSTGRES_URL = os.environ.get("HOOKLINE_TEST_POSTGRES_URL")
STORE_BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


LANGUAGE_COLLATION = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
"""Options of ``CREATE DATABASE`` for a database whose default collation sorts as English
does ('a0' before 'Az' before 'Z'), as databases created under en_US.UTF-8 do, unlike the
byte order hookline's ids sort by: the test databases are made so, so that every PostgreSQL
test also checks that the schema compares ids byte by byte (migration 0016)."""


def database_url(name: str) -> str:
    assert POSTGRES_URL is not None
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per session, cloned for each test (procrastinate's trick)."""
    name = f"hookline_template_{os.getpid()}"

    async def create() -> None:
        admin = await asyncpg.connect(POSTGRES_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}" {LANGUAGE_COLLATION}')
        await admin.close()
        template = PostgresStore(database_url(name), pool_size=1)
        await template.migrate()
        await template.close()

    async def drop() -> None:
        admin = await asyncpg.connect(POSTGRES_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(create())
    yield name
    asyncio.run(drop())


@pytest.fixture
async def postgres_url(postgres_template: str) -> AsyncIterator[str]:
    """A fresh database cloned from the template, dropped after the test."""
    name = f"hookline_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=STORE_BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Which backend, and where its database is: a file path or a PostgreSQL URL."""
    if request.param == "postgres":
        return "postgres", str(request.getfixturevalue("postgres_url"))
    return "sqlite", str(tmp_path / "hookline.db")


def make_store(
    location: tuple[str, str],
    codec: RowCodec = PLAIN,
    instrumentation: Instrumentation = NO_INSTRUMENTATION,
) -> Store:
    backend, where = location
    if backend == "postgres":
        return PostgresStore(where, pool_size=4, codec=codec, instrumentation=instrumentation)
    return SqliteStore(where, codec=codec, instrumentation=instrumentation)


@pytest.fixture
async def store(store_location: tuple[str, str]) -> AsyncIterator[Store]:
    """A freshly migrated store of each backend, closed after the test."""
    backend = make_store(store_location)
    await backend.open()
    yield backend
    await backend.close()


def make_app(uid: str | None = None, name: str = "Acme") -> Application:
    now = utcnow()
    return Application(
        id=ids.new_id(ids.APP),
        name=name,
        uid=uid,
        throttle_rate=None,
        metadata={},
        created_at=now,
        updated_at=now,
    )


def make_event_type(name: str) -> EventType:
    now = utcnow()
    return EventType(
        name=name,
        description=name,
        archived=False,
        deprecated=False,
        schemas=None,
        group_name=None,
        feature_flags=None,
        created_at=now,
        updated_at=now,
    )


def make_endpoint(
    app: Application,
    url: str = "https://example.com/hook",
    *,
    event_types: tuple[str, ...] | None = None,
    channels: tuple[str, ...] | None = None,
    disabled: bool = False,
    uid: str | None = None,
) -> Endpoint:
    now = utcnow()
    return Endpoint(
        id=ids.new_id(ids.ENDPOINT),
        app_id=app.id,
        url=url,
        uid=uid,
        description="",
        throttle_rate=None,
        disabled=disabled,
        event_types=event_types,
        channels=channels,
        metadata={},
        headers={},
        keys=(SigningKey(generate_secret()),),
        created_at=now,
        updated_at=now,
    )


def make_message(
    app: Application,
    event_type: str = "user.created",
    *,
    channels: tuple[str, ...] | None = None,
    event_id: str | None = None,
    payload: bytes = b'{"ok":true}',
) -> Message:
    return Message(
        id=ids.new_id(ids.MESSAGE),
        app_id=app.id,
        event_type=event_type,
        event_id=event_id,
        payload=payload,
        channels=channels,
        tags=None,
        timestamp=utcnow(),
    )


def recorded_outcome(
    claimed: ClaimedDelivery, code: int, at: datetime, duration_ms: int = 30, response: str = ""
) -> AttemptOutcome:
    """An attempt of ``claimed`` started at ``at`` that answered ``code`` (0: no answer,
    ``response`` says why) in ``duration_ms`` and ends its delivery: delivered on a 200,
    failed for good otherwise (no retry); a 410 also disables the endpoint, as the worker
    records an endpoint that answered Gone."""
    status = MessageStatus.SUCCESS if code == 200 else MessageStatus.FAIL
    attempt = Attempt(
        id=ids.new_id(ids.ATTEMPT),
        app_id=claimed.endpoint.app_id,
        msg_id=claimed.message.id,
        endpoint_id=claimed.endpoint.id,
        url=claimed.endpoint.url,
        status=status,
        response_status_code=code,
        response=response,
        response_duration_ms=duration_ms,
        trigger=claimed.trigger,
        timestamp=at,
    )
    return AttemptOutcome(
        claimed,
        attempt,
        status,
        None,
        claimed.attempt_count + 1,
        disable_endpoint=code == 410,
    )


def failed_outcome(claimed: ClaimedDelivery, code: int = 500) -> AttemptOutcome:
    """A failed attempt now that ends its delivery (``recorded_outcome``)."""
    return recorded_outcome(claimed, code, utcnow(), duration_ms=1)
