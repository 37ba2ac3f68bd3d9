"""Ordered delivery end to end: real processes, a real receiver that fails attempts at random.

200 messages go to an ordered endpoint in three sequences (two ordering keys and the
messages without one); the receiver fails a quarter of all attempts, and two messages
always, so that they are exhausted and skipped. Whatever the receiver saw, no message of a
sequence arrives before the one before it had its final answer (a 2xx, or the last attempt
of an exhausted delivery). On SQLite one ``serve`` process; on PostgreSQL an API process and
two workers, one of them killed with SIGKILL mid-run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_URL, database_url
from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Received,
    Receiver,
    free_port,
    sqlite_url,
)

MESSAGES = 200
KEYS = ("alpha", "beta", None)
ALWAYS_FAILING = frozenset({17, 101})
"""Messages the receiver refuses every time: they are exhausted, and skipped."""
FAILURE_RATE = 0.25
ENV = {
    # Eight retries: a message failed at random nine times in a row is a chance in 250,000.
    "HOOKLINE_RETRY_SCHEDULE": "0.02,0.02,0.02,0.02,0.02,0.02,0.02,0.02",
    "HOOKLINE_REQUEST_TIMEOUT": "2",
    "HOOKLINE_POLL_INTERVAL": "0.05",
    "HOOKLINE_HEARTBEAT_INTERVAL": "0.5",
    "HOOKLINE_LEASE_SECONDS": "3",
    "HOOKLINE_STALL_TIMEOUT": "2",
    # The always-failing messages fail at the head of their line nine times in a row, which
    # opens the circuit breaker; its cooldowns (5 s, doubling) would then space their
    # attempts instead of the 20 ms schedule, and the run would take minutes. The breaker
    # is not what this test is about.
    "HOOKLINE_BREAKER_THRESHOLD": "1000",
}
HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class FlakyLine:
    """The receiver's rule for the ordered endpoint, and the log of what it answered, in the
    order it answered (the receiver's handlers run one at a time on its loop)."""

    rng: random.Random = field(default_factory=lambda: random.Random(13))
    answered: list[tuple[int, int]] = field(default_factory=list)
    """(message index, status) per request."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> int:
        index = int(json.loads(request.body)["i"])
        failing = index in ALWAYS_FAILING or self.rng.random() < FAILURE_RATE
        status = 500 if failing else 200
        with self.lock:
            self.answered.append((index, status))
        return status

    def log(self) -> list[tuple[int, int]]:
        with self.lock:
            return list(self.answered)


def _sequence_of(index: int) -> str | None:
    return KEYS[index % len(KEYS)]


def assert_in_order(answered: list[tuple[int, int]]) -> None:
    """In each sequence, a message's first request comes after the final answer to the one
    before it: its first 2xx, or its last request if it never got one (exhausted)."""
    first: dict[int, int] = {}
    final: dict[int, int] = {}
    for position, (index, status) in enumerate(answered):
        first.setdefault(index, position)
        if status < 300:
            final.setdefault(index, position)
    for position, (index, _) in enumerate(answered):
        if index in ALWAYS_FAILING:
            final[index] = position
    assert set(first) == set(range(MESSAGES)), "every message reaches the endpoint"
    for key in KEYS:
        line = [i for i in range(MESSAGES) if _sequence_of(i) == key]
        for earlier, later in itertools.pairwise(line):
            assert final[earlier] < first[later], (key, earlier, later)


async def _publish_in_order(api: str, app_id: str) -> None:
    """One message at a time, each after the previous one's 202: creation order is publish
    order."""
    async with httpx.AsyncClient(base_url=api, headers=HEADERS, timeout=30) as client:
        for i in range(MESSAGES):
            body: dict[str, object] = {"eventType": "tick", "payload": {"i": i}}
            key = _sequence_of(i)
            if key is not None:
                body["orderingKey"] = key
            r = await client.post(f"/api/v1/app/{app_id}/msg", json=body)
            assert r.status_code == 202, r.text
            assert r.json()["orderingKey"] == key


async def _ordered_endpoint(api: str, receiver: Receiver) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=api, headers=HEADERS) as client:
        app = (await client.post("/api/v1/app", json={"name": "Ordered"})).json()
        r = await client.post(
            f"/api/v1/app/{app['id']}/endpoint",
            json={
                "url": f"{receiver.url}/ordered",
                "policy": {"ordering": {"onExhausted": "skip"}},
            },
        )
        assert r.status_code == 201, r.text
        return app["id"], r.json()["id"]


async def _until_settled(api: str, app_id: str, endpoint_id: str, timeout: float) -> None:
    """Every delivery to the endpoint succeeded or failed, as its stats say."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=api, headers=HEADERS) as client:
        while True:
            stats = (await client.get(f"/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats")).json()
            if stats["success"] + stats["fail"] == MESSAGES:
                assert stats["fail"] == len(ALWAYS_FAILING), stats
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"deliveries not settled after {timeout}s: {stats}")
            await asyncio.sleep(0.1)


async def test_ordered_endpoint_on_sqlite_gets_each_sequence_in_order(tmp_path: Path) -> None:
    """One ``serve`` process on SQLite: every sequence arrives in creation order, failures
    retried in place, the always-failing messages skipped once exhausted."""
    rule = FlakyLine()
    receiver = Receiver(status_for={"/ordered": rule}).start()
    api = HooklineProcess(sqlite_url(tmp_path), free_port(), ENV, tmp_path).start("--dev")
    try:
        app_id, endpoint_id = await _ordered_endpoint(api.url, receiver)
        await _publish_in_order(api.url, app_id)
        await _until_settled(api.url, app_id, endpoint_id, 90)
        assert_in_order(rule.log())
    finally:
        assert api.terminate() == 0, api.output()
        receiver.stop()


async def _until_holding(url: str, pid: int, answered: int, rule: FlakyLine) -> None:
    """Wait until a quarter of the run is answered and the worker ``pid`` holds a head."""
    db = await asyncpg.connect(url)
    deadline = asyncio.get_running_loop().time() + 30
    try:
        while True:
            holding = await db.fetchval(
                "SELECT count(*) FROM deliveries AS d JOIN workers AS w ON w.id = d.worker_id"
                " WHERE d.status = 3 AND w.pid = $1",
                pid,
            )
            if holding and len(rule.log()) >= answered:
                return
            assert asyncio.get_running_loop().time() < deadline, "the worker never held a head"
            await asyncio.sleep(0.005)
    finally:
        await db.close()


@pytest.fixture
async def database() -> AsyncIterator[str]:
    if POSTGRES_URL is None:
        pytest.skip("needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
    name = f"hookline_ordered_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_ordered_endpoint_on_postgres_keeps_order_across_two_workers_and_a_kill(
    database: str, tmp_path: Path
) -> None:
    """An API process and two workers on PostgreSQL, one of them killed with SIGKILL a
    quarter of the way through while it holds a head: each sequence still arrives in
    creation order, that head being sent again before anything after it."""
    rule = FlakyLine()
    receiver = Receiver(status_for={"/ordered": rule}).start()
    url = database_url(database)
    HooklineProcess(url, 0, ENV, tmp_path).run_command("migrate")
    api = HooklineProcess(url, free_port(), ENV, tmp_path).start("--no-worker", "--dev")
    workers = [HooklineProcess(url, 0, ENV, tmp_path).start_worker("--dev") for _ in range(2)]
    try:
        app_id, endpoint_id = await _ordered_endpoint(api.url, receiver)
        publishing = asyncio.create_task(_publish_in_order(api.url, app_id))
        victim = workers[0].process
        assert victim is not None
        await _until_holding(url, victim.pid, MESSAGES // 4, rule)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        await publishing
        await _until_settled(api.url, app_id, endpoint_id, 120)
        assert_in_order(rule.log())
    finally:
        for proc in (workers[1], api):
            assert proc.terminate() == 0, proc.output()
        receiver.stop()
