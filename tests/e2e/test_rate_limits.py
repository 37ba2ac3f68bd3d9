"""Rate limits end to end: the real ``hookline`` process(es), a real receiver on loopback,
the limit measured by receipt times. On SQLite one ``serve``; on PostgreSQL one API and two
worker processes sharing the limit.

Tolerances: the busiest one-second window may hold at most half as much again as the rate
(the slots are spaced exactly, but on a loaded two-core machine a stalled worker sends its
late slots together, and the receiver in this test process, sharing the GIL with it, notes
arrivals late and in bunches), and the whole run must take at least 85 % of what the rate
implies. Without the limit the messages arrive as fast as they are published, all within
about a second, so each bound fails without it; the bench measures the limit closely.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_URL, database_url
from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

RATE = 20
ENV = {"HOOKLINE_HEARTBEAT_INTERVAL": "0.5", "HOOKLINE_POLL_INTERVAL": "0.2"}


def busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def _publish(api: HooklineProcess, receiver: Receiver, messages: int) -> None:
    """An application whose endpoint has ``rateLimit`` 20 (the SDK's older name) and one
    without a limit, and ``messages`` messages to both."""
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as client:
        app = (await client.post("/api/v1/app", json={"name": "Rate"})).json()
        for path, limit in (("/limited", RATE), ("/free", None)):
            endpoint = {"url": f"{receiver.url}{path}", "rateLimit": limit}
            r = await client.post(f"/api/v1/app/{app['id']}/endpoint", json=endpoint)
            assert r.status_code == 201, r.text
        for i in range(messages):
            message = {"eventType": "tick", "payload": {"i": i}}
            r = await client.post(f"/api/v1/app/{app['id']}/msg", json=message)
            assert r.status_code == 202, r.text


def _assert_paced(receiver: Receiver, messages: int) -> None:
    limited = [r.at for r in receiver.received("/limited")]
    free = [r.at for r in receiver.received("/free")]
    assert len(limited) == messages
    assert len({r.headers["webhook-id"] for r in receiver.received("/limited")}) == messages
    assert busiest_second(limited) <= RATE * 3 // 2, busiest_second(limited)
    assert max(limited) - min(limited) >= (messages - 1) / RATE * 0.85
    assert max(free) < max(limited)


async def test_sqlite_serve_sends_a_limited_endpoint_at_its_rate(tmp_path: Path) -> None:
    """One ``serve`` on SQLite: 50 messages reach a 20/s endpoint over about 2.5 s, never
    more than 20 in a second, while its unlimited neighbour gets them first."""
    receiver = Receiver().start()
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), ENV, tmp_path).start("--dev")
    try:
        await _publish(proc, receiver, 50)
        await asyncio.to_thread(
            wait_until, lambda: len(receiver.received("/limited")) >= 50, 30, "50 receipts"
        )
        _assert_paced(receiver, 50)
    finally:
        assert proc.terminate() == 0, proc.output()
        receiver.stop()


@pytest.fixture
async def database() -> AsyncIterator[str]:
    if POSTGRES_URL is None:
        pytest.skip("needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
    name = f"hookline_rate_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_two_postgres_workers_share_one_endpoints_rate(database: str, tmp_path: Path) -> None:
    """An API and two worker processes on PostgreSQL: 60 messages reach a 20/s endpoint
    over about 3 s, never more than 20 in a second, while both workers hold some of them."""
    url = database_url(database)
    receiver = Receiver().start()
    HooklineProcess(url, 0, ENV, tmp_path).run_command("migrate")
    api = HooklineProcess(url, free_port(), ENV, tmp_path).start("--no-worker", "--dev")
    workers = [HooklineProcess(url, 0, ENV, tmp_path).start_worker("--dev") for _ in range(2)]
    db = await asyncpg.connect(url)
    try:
        await _publish(api, receiver, 60)
        holders = 0
        while len(receiver.received("/limited")) < 60:
            held = await db.fetchval(
                "SELECT count(DISTINCT worker_id) FROM deliveries AS d"
                " JOIN endpoints AS e ON e.id = d.endpoint_id"
                " WHERE e.url LIKE '%/limited' AND d.status = 3"
            )
            holders = max(holders, held)
            await asyncio.sleep(0.05)
        _assert_paced(receiver, 60)
        assert holders == 2, "both workers held deliveries of the limited endpoint"
    finally:
        await db.close()
        for proc in [*workers, api]:
            assert proc.terminate() == 0, proc.output()
        receiver.stop()
