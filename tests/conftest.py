"""Shared fixtures: a store per backend, and factories for domain objects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hookline.domain import ids
from hookline.domain.clock import utcnow
from hookline.domain.models import Application, Endpoint, EventType, Message, SigningKey
from hookline.domain.signing import generate_secret
from hookline.storage.base import Store
from hookline.storage.sqlite import SqliteStore

STORE_BACKENDS = ["sqlite"]


@pytest.fixture(params=STORE_BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A freshly migrated store of each backend, closed after the test."""
    backend: Store
    if request.param == "sqlite":
        backend = SqliteStore(str(tmp_path / "hookline.db"))
    else:  # pragma: no cover - new backends register here
        raise AssertionError(request.param)
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
