"""Scheduling and retry policy end to end: real processes, a real receiver on loopback.

On SQLite one ``hookline serve`` (API and worker in one process, so a publish hands its
deliveries to the local worker); on PostgreSQL one ``serve --no-worker`` and two
``hookline worker`` processes, so what is due is claimed by whichever worker polls first.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions

from tests.conftest import STORE_BACKENDS
from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Received,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 0.5
ENV = {
    "HOOKLINE_RETRY_SCHEDULE": "",  # the server's own: one attempt, no retries
    "HOOKLINE_REQUEST_TIMEOUT": "2",
    "HOOKLINE_LEASE_SECONDS": "3",
    "HOOKLINE_POLL_INTERVAL": str(POLL_SECONDS),
    "HOOKLINE_HEARTBEAT_INTERVAL": str(HEARTBEAT_SECONDS),
    "HOOKLINE_STALL_TIMEOUT": "3",
    "HOOKLINE_BREAKER_THRESHOLD": "100",  # this test is about retries, not the breaker
}
LATE_BOUND_SECONDS = POLL_SECONDS + 1.25
"""How late a due delivery may arrive: a poll interval, and time to claim and send on a
busy two-core machine."""


class Clocked:
    """A receiver that notes when each request arrived, by path, and answers a fixed status
    per path prefix."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._lock = threading.Lock()
        self.times: dict[str, list[float]] = {}

    def answer(self, prefix: str, status: int) -> None:
        def rule(item: Received) -> int:
            with self._lock:
                self.times.setdefault(item.path, []).append(time.time())
            return status

        self.receiver.status_for[prefix] = rule

    def at(self, path: str) -> list[float]:
        with self._lock:
            return list(self.times.get(path, []))


@pytest.fixture
def clocked() -> Iterator[Clocked]:
    receiver = Receiver().start()
    yield Clocked(receiver)
    receiver.stop()


@pytest.fixture(params=STORE_BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HooklineProcess]:
    """The API process to publish to, with the workers of the deployment running."""
    workers: list[HooklineProcess] = []
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
        proc = HooklineProcess(url, free_port(), dict(ENV), tmp_path).start("--no-worker", "--dev")
        workers = [
            HooklineProcess(url, 0, dict(ENV), tmp_path).start_worker("--dev") for _ in range(2)
        ]
        wait_until(lambda: asyncio.run(_workers(url)) == 2, 20, "both workers to register")
    else:
        proc = HooklineProcess(sqlite_url(tmp_path), free_port(), dict(ENV), tmp_path)
        proc.start("--dev")
    yield proc
    for each in (*workers, proc):
        if each.process is not None and each.process.poll() is None:
            assert each.terminate() == 0, each.output()


async def _workers(url: str) -> int:
    """Workers registered: each has made its first heartbeat, so it is running."""
    db = await asyncpg.connect(url)
    try:
        return int(await db.fetchval("SELECT count(*) FROM workers"))
    finally:
        await db.close()


def _whole_ms(when: datetime) -> datetime:
    """A time as hookline stores it (milliseconds), so "not before" can be exact."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def client(proc: HooklineProcess) -> httpx.Client:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    return httpx.Client(base_url=proc.url, headers=headers, timeout=10)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_scheduled_message_arrives_at_its_time_and_not_before(
    api: HooklineProcess, clocked: Clocked
) -> None:
    """A message the official SDK publishes with deliverAt 2 s ahead is not sent before
    then, and arrives within a poll interval (and the time to send) after it; the message
    shows its deliverAt, as the SDK reads it."""
    clocked.answer("/later", 200)
    svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=api.url))
    app = svix.application.create(ApplicationIn(name="Scheduled"))
    svix.endpoint.create(app.id, EndpointIn(url=f"{clocked.receiver.url}/later"))
    when = _whole_ms(datetime.now(UTC) + timedelta(seconds=2))
    msg = svix.message.create(app.id, MessageIn(event_type="e", payload={}, deliver_at=when))
    assert msg.deliver_at == when
    wait_until(lambda: clocked.at("/later") != [], 10, "the scheduled message to arrive")
    (arrived,) = clocked.at("/later")
    late = arrived - when.timestamp()
    assert 0 <= late <= LATE_BOUND_SECONDS, f"arrived {late:.3f} s after its deliverAt"
    assert svix.message.get(app.id, msg.id).deliver_at == when


def test_deliver_at_too_far_ahead_is_a_422_naming_the_field(api: HooklineProcess) -> None:
    """More than 24 hours ahead is refused, and nothing is stored."""
    with client(api) as http:
        app = created(http.post("/api/v1/app", json={"name": "Too far"}))
        when = datetime.now(UTC) + timedelta(hours=25)
        body = {"eventType": "e", "payload": {}, "deliverAt": when.isoformat()}
        refused = http.post(f"/api/v1/app/{app['id']}/msg", json=body)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "deliverAt"]
        assert http.get(f"/api/v1/app/{app['id']}/msg").json()["data"] == []


def _statuses(http: httpx.Client, app_id: str, msg_id: str) -> dict[str, int]:
    found = http.get(f"/api/v1/app/{app_id}/msg/{msg_id}/endpoint").json()["data"]
    return {item["url"].rsplit("/", 1)[1]: item["status"] for item in found}


def test_retry_policy_endpoint_over_application_over_server_and_max_age(
    api: HooklineProcess, clocked: Clocked
) -> None:
    """An endpoint's own schedule [0.2, 0.2] gives exactly 3 attempts at those intervals
    while its application's schedule (five retries) applies to a sibling without its own,
    and a max age ends retries that would start after it."""
    for path in ("/own", "/inherits", "/aged"):
        clocked.answer(path, 500)
    app_policy = {"retry": {"schedule": [0.05] * 5}}
    with client(api) as http:
        app = created(http.post("/api/v1/app", json={"name": "Policies", "policy": app_policy}))
        base = clocked.receiver.url
        endpoints = [
            {"url": f"{base}/own", "policy": {"retry": {"schedule": [0.2, 0.2]}}},
            {"url": f"{base}/inherits"},
            {
                "url": f"{base}/aged",
                "policy": {"retry": {"schedule": [0.3] * 10, "maxAgeSeconds": 1}},
            },
        ]
        for endpoint in endpoints:
            created(http.post(f"/api/v1/app/{app['id']}/endpoint", json=endpoint))
        # Workers learn an application's policy on their heartbeat: the stated bound.
        time.sleep(2 * HEARTBEAT_SECONDS)
        msg = created(
            http.post(f"/api/v1/app/{app['id']}/msg", json={"eventType": "e", "payload": {}})
        )
        published = time.time()
        wait_until(
            lambda: _statuses(http, app["id"], msg["id"]) == {"own": 2, "inherits": 2, "aged": 2},
            15,
            "every delivery to be exhausted",
        )
    own = clocked.at("/own")
    assert len(own) == 3
    gaps = [b - a for a, b in itertools.pairwise(own)]
    assert all(0.2 * 0.8 <= gap <= 0.2 * 1.2 + LATE_BOUND_SECONDS for gap in gaps), gaps
    assert len(clocked.at("/inherits")) == 6
    aged = clocked.at("/aged")
    assert 2 <= len(aged) <= 4, aged
    assert aged[-1] - published <= 1.0 + LATE_BOUND_SECONDS


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_a_scheduled_message_survives_kill_9(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clocked: Clocked
) -> None:
    """A message scheduled 2 s ahead by a process killed with -9 right after is delivered at
    its time by the process started in its place: it is only rows."""
    clocked.answer("/after-restart", 200)
    url = (
        str(request.getfixturevalue("postgres_url"))
        if backend == "postgres"
        else sqlite_url(tmp_path)
    )
    first = HooklineProcess(url, free_port(), dict(ENV), tmp_path).start("--dev")
    with client(first) as http:
        app = created(http.post("/api/v1/app", json={"name": "Restarted"}))
        endpoint = {"url": f"{clocked.receiver.url}/after-restart"}
        created(http.post(f"/api/v1/app/{app['id']}/endpoint", json=endpoint))
        when = _whole_ms(datetime.now(UTC) + timedelta(seconds=2))
        body = {"eventType": "e", "payload": {}, "deliverAt": when.isoformat()}
        created(http.post(f"/api/v1/app/{app['id']}/msg", json=body))
    first.kill()
    second = HooklineProcess(url, free_port(), dict(ENV), tmp_path).start("--dev")
    up = time.time()
    try:
        wait_until(lambda: clocked.at("/after-restart") != [], 10, "the scheduled message")
        (arrived,) = clocked.at("/after-restart")
        assert arrived >= when.timestamp()
        # A restart slower than the 2 s (a loaded machine) delivers it on its first claim.
        assert arrived - max(when.timestamp(), up) <= LATE_BOUND_SECONDS
    finally:
        assert second.terminate() == 0, second.output()
