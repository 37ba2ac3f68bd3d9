"""A database outage on PostgreSQL: fast 503s, then recovery without a restart.

hookline reaches PostgreSQL through a proxy the test cuts, as a database restart would.
Polling is set to a minute, so prompt deliveries prove that LISTEN/NOTIFY wakes the
worker, before and after the outage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_URL, database_url
from tests.e2e.harness import ADMIN_TOKEN, HooklineProcess, Receiver, free_port, wait_until
from tests.e2e.proxy import Proxy

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)"
)

ENV = {
    "HOOKLINE_POLL_INTERVAL": "60",
    "HOOKLINE_RETRY_SCHEDULE": "0.2,0.5",
    "HOOKLINE_REQUEST_TIMEOUT": "3",
}
FAIL_FAST_SECONDS = 5.0


@pytest.fixture
def outage_db() -> Iterator[str]:
    name = f"hookline_outage_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _via_proxy(url: str, proxy: Proxy) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}127.0.0.1:{proxy.port}{parts.path}"


def test_outage_gives_fast_503_and_delivery_resumes(outage_db: str, tmp_path: Path) -> None:
    """While the database is unreachable the API and readiness answer 503 quickly and liveness
    still 200; afterwards it all resumes."""
    target = urlsplit(database_url(outage_db))
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    receiver = Receiver().start()
    url = _via_proxy(database_url(outage_db), proxy)
    api = HooklineProcess(url, free_port(), ENV, tmp_path).start("--no-worker", "--dev")
    worker = HooklineProcess(url, 0, ENV, tmp_path).start_worker("--dev")
    client = httpx.Client(base_url=api.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    try:
        app = client.post("/api/v1/app", json={"name": "Outage"}).json()
        client.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": f"{receiver.url}/out"})

        def publish(n: int) -> httpx.Response:
            return client.post(
                f"/api/v1/app/{app['id']}/msg", json={"eventType": "e", "payload": {"n": n}}
            )

        first = publish(1)
        assert first.status_code == 202
        wait_until(lambda: len(receiver.received("/out")) == 1, 10, "delivery woken by NOTIFY")

        proxy.cut()
        started = time.monotonic()
        refused = publish(2)
        elapsed = time.monotonic() - started
        assert refused.status_code == 503 and refused.json()["code"] == "unavailable"
        assert elapsed < FAIL_FAST_SECONDS
        health = client.get("/api/v1/health")
        assert health.status_code == 503 and health.json()["database"] == "down"
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["failing"] == ["database"]
        assert client.get("/health/live").status_code == 200

        proxy.restore()
        wait_until(lambda: client.get("/api/v1/health").status_code == 200, 15, "health")
        after = publish(3)
        assert after.status_code == 202
        wait_until(
            lambda: (
                {r.headers["webhook-id"] for r in receiver.received("/out")}
                == {first.json()["id"], after.json()["id"]}
            ),
            20,
            "delivery after the outage, woken by a re-established LISTEN",
        )
    finally:
        client.close()
        assert worker.terminate() == 0, worker.output()
        assert api.terminate() == 0, api.output()
        proxy.stop()
        receiver.stop()
