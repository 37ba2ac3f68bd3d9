"""An in-process API on a real SQLite file, driven through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token
from hookline.storage.sqlite import SqliteStore

ADMIN_TOKEN = "hl_admin_test-token"


@dataclass
class Api:
    client: httpx.AsyncClient
    store: SqliteStore
    published: list[int]

    def as_token(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.client._transport,
            base_url="http://hookline",
            headers={"authorization": f"Bearer {token}"},
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The real app on a fresh SQLite file, with an admin token and a small payload limit."""
    settings = load_settings({"admin_token": ADMIN_TOKEN, "max_payload_bytes": "4096"}, environ={})
    store = SqliteStore(str(tmp_path / "api.db"))
    await store.open()
    await ensure_admin_token(store, settings)
    published: list[int] = []
    ops = Operations(store, base_url=settings.base_url, work_queued=lambda: published.append(1))
    services = Services(ops=ops, settings=settings)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://hookline",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield Api(client, store, published)
    await store.close()
