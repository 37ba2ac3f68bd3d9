"""Scale-out on PostgreSQL: 2 API and 3 worker processes, one killed, connections cut once.

The receiver and the publishers run in this test; everything else is real processes
sharing one real PostgreSQL database, as the deployment guide describes.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import POSTGRES_URL, database_url
from tests.e2e.harness import ADMIN_TOKEN, HooklineProcess, Receiver, free_port

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)"
)

MESSAGES = 5000
ENDPOINTS = 20
PUBLISHERS = 32
WORKER_IN_FLIGHT = 64
ENV = {
    "HOOKLINE_RETRY_SCHEDULE": "0.2,0.5,1,1,2,2,5",
    "HOOKLINE_REQUEST_TIMEOUT": "5",
    "HOOKLINE_LEASE_SECONDS": "30",
    "HOOKLINE_HEARTBEAT_INTERVAL": "0.5",
    # The test counts repeats against the killed worker's leases only, so a live worker must
    # never be taken for dead: with 2 s, a live worker whose heartbeats stall while the
    # connections are cut on a busy 2-core machine can be released, and its deliveries sent
    # again (one repeat beyond the bound was seen once). Five seconds is ten missed
    # heartbeats, and still quick to take the killed worker's deliveries over.
    "HOOKLINE_STALL_TIMEOUT": "5",
    "HOOKLINE_POLL_INTERVAL": "0.5",
    "HOOKLINE_MAX_IN_FLIGHT": str(WORKER_IN_FLIGHT),
    "HOOKLINE_DB_POOL_SIZE": "8",
}


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = f"hookline_scale_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _publish_all(apis: list[HooklineProcess], app_id: str) -> list[str]:
    """Publish through both API processes; a 503 is retried with the same idempotency key."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(MESSAGES):
        queue.put_nowait(i)
    accepted: list[str] = []
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    async def publisher(n: int) -> None:
        async with httpx.AsyncClient(base_url=apis[n % len(apis)].url, headers=headers) as client:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"eventType": "tick", "payload": {"i": i}, "channels": [f"c{i % ENDPOINTS}"]}
                for _ in range(50):
                    try:
                        r = await client.post(
                            f"/api/v1/app/{app_id}/msg",
                            json=body,
                            headers={"idempotency-key": f"pub-{i}"},
                        )
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                        continue
                    if r.status_code == 202:
                        accepted.append(r.json()["id"])
                        break
                    assert r.status_code in (409, 503), r.text
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"message {i} was never accepted")

    await asyncio.gather(*(publisher(n) for n in range(PUBLISHERS)))
    return accepted


async def _until(check: object, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():  # type: ignore[operator]
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_two_apis_three_workers_kill_and_cut_connections(
    database: str, tmp_path: Path
) -> None:
    """5,000 messages to 20 endpoints all succeed once, despite a kill -9 and a connection cut."""
    url = database_url(database)
    receiver = Receiver().start()
    migrate = HooklineProcess(url, 0, ENV, tmp_path)
    migrate.run_command("migrate")
    apis = [
        HooklineProcess(url, free_port(), ENV, tmp_path).start("--no-worker", "--dev")
        for _ in range(2)
    ]
    workers = [HooklineProcess(url, 0, ENV, tmp_path).start_worker("--dev") for _ in range(3)]
    db = await asyncpg.connect(url)
    try:
        async with httpx.AsyncClient(
            base_url=apis[0].url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as client:
            app = (await client.post("/api/v1/app", json={"name": "Scale"})).json()
            for n in range(ENDPOINTS):
                r = await client.post(
                    f"/api/v1/app/{app['id']}/endpoint",
                    json={"url": f"{receiver.url}/ep{n}", "channels": [f"c{n}"]},
                )
                assert r.status_code == 201, r.text

        publishing = asyncio.create_task(_publish_all(apis, app["id"]))
        await _until(lambda: _has(receiver, 500), 30, "deliveries to start")
        victim = workers[0]
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        in_flight_at_kill = await db.fetchval(
            "SELECT count(*) FROM deliveries AS d JOIN workers AS w ON w.id = d.worker_id"
            " WHERE d.status = 3 AND w.pid = $1",
            victim.process.pid,
        )
        cut = await db.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        assert len(cut) > 0
        accepted = await publishing

        async def all_succeeded() -> bool:
            """Every delivery row is a success."""
            left = await db.fetchval("SELECT count(*) FROM deliveries WHERE status <> 0")
            return bool(left == 0)

        await _until(all_succeeded, 45, "every accepted message to be delivered")
        pairs = await db.fetch("SELECT msg_id, endpoint_id FROM deliveries")
        assert len(pairs) == MESSAGES, "a retried publish must replay, never publish twice"
        successes = Counter(
            (r["msg_id"], r["endpoint_id"])
            for r in await db.fetch("SELECT msg_id, endpoint_id FROM attempts WHERE status = 0")
        )
        assert {(r["msg_id"], r["endpoint_id"]) for r in pairs} == set(successes)
        repeated = [pair for pair, n in successes.items() if n > 1]
        received = Counter(r.headers["webhook-id"] for r in receiver.received("/ep"))
        duplicates = sum(n - 1 for n in received.values())
        assert set(accepted) <= set(received)
        assert len(repeated) <= in_flight_at_kill, (len(repeated), in_flight_at_kill)
        assert duplicates <= in_flight_at_kill, (duplicates, in_flight_at_kill)
        print(
            f"\naccepted={len(accepted)} pairs={len(pairs)} in_flight_at_kill={in_flight_at_kill}"
            f" receiver_duplicates={duplicates} repeated_successes={len(repeated)}"
        )
    finally:
        await db.close()
        for proc in [*workers[1:], *apis]:
            assert proc.terminate() == 0, proc.output()
        receiver.stop()


async def _has(receiver: Receiver, count: int) -> bool:
    return len(receiver.received("/ep")) >= count
