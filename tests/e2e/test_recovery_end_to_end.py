"""Replay and recovery against a real receiver: the real ``hookline`` processes, driven by
the official svix SDK; on PostgreSQL a task left by a dead runner is finished by one of two
live workers once its lease ran out."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from svix.api import (
    ApplicationIn,
    BulkReplayIn,
    EndpointIn,
    EndpointPatch,
    EventTypeIn,
    MessageIn,
    RecoverIn,
    ReplayIn,
    Svix,
    SvixOptions,
)

from tests.conftest import POSTGRES_URL, database_url
from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

ENV = {
    "HOOKLINE_RETRY_SCHEDULE": "0.05,0.1",
    "HOOKLINE_REQUEST_TIMEOUT": "2",
    "HOOKLINE_POLL_INTERVAL": "0.05",
    # The deliveries must exhaust their retries, not wait behind an open breaker.
    "HOOKLINE_BREAKER_THRESHOLD": "1000",
}


def _ids(receiver: Receiver, path: str) -> Counter[str]:
    return Counter(r.headers["webhook-id"] for r in receiver.received(path))


def _finished(svix: Svix, task_id: str) -> bool:
    return svix.background_task.get(task_id).status.value == "finished"


def test_replay_missing_after_a_disable_and_bulk_replay_by_filter(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Messages published while the endpoint was disabled arrive once after replay-missing,
    and what it already had is not sent again; a bulk replay of one event type sends those
    messages a second time and no other."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), ENV, tmp_path).start("--dev")
    try:
        svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=proc.url))
        since = datetime.now(UTC) - timedelta(minutes=1)
        app = svix.application.create(ApplicationIn(name="Replay"))
        for name in ("a.b", "c.d"):
            svix.event_type.create(EventTypeIn(name=name, description=name))
        ep = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/ep"))
        first = svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 0})).id
        wait_until(lambda: len(_ids(receiver, "/ep")) == 1, 10, "the first delivery")
        svix.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=True))
        missed = [
            svix.message.create(app.id, MessageIn(event_type=t, payload={"n": n})).id
            for n, t in enumerate(("a.b", "a.b", "c.d"))
        ]
        svix.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=False))
        replay = svix.endpoint.replay_missing(app.id, ep.id, ReplayIn(since=since))
        assert replay.task.value == "endpoint.replay"
        wait_until(lambda: _finished(svix, replay.id), 10, "replay-missing to finish")
        wait_until(lambda: len(_ids(receiver, "/ep")) == 4, 10, "the missed messages")
        assert _ids(receiver, "/ep") == Counter({first: 1, **{m: 1 for m in missed}})
        assert svix.background_task.get(replay.id).data["messagesSent"] == 3

        bulk = svix.endpoint.bulk_replay(
            app.id, ep.id, BulkReplayIn(since=since, event_types=["c.d"])
        )
        wait_until(lambda: _finished(svix, bulk.id), 10, "bulk replay to finish")
        wait_until(lambda: _ids(receiver, "/ep")[missed[2]] == 2, 10, "the c.d message again")
        assert sum(_ids(receiver, "/ep").values()) == 5
        listed = svix.background_task.list()
        assert {t.id for t in listed.data} == {replay.id, bulk.id}
    finally:
        assert proc.terminate() == 0, proc.output()


def _cancel(api: HooklineProcess, task_id: str) -> dict[str, Any]:
    """hookline's cancel route (the svix SDK has none)."""
    r = httpx.post(
        f"{api.url}/api/v1/background-task/{task_id}/cancel",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture
async def database() -> AsyncIterator[str]:
    if POSTGRES_URL is None:
        pytest.skip("needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
    name = f"hookline_tasks_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_tasks_left_by_a_dead_runner_are_resumed_or_stay_canceled(
    database: str, tmp_path: Path, receiver: Receiver
) -> None:
    """On PostgreSQL: two recovers started on an API-only process, whose lease a runner that
    died still holds. The one canceled meanwhile sends nothing; the other is left alone
    until the lease runs out, then one of two worker processes finishes it and every dead
    letter of its endpoint arrives exactly once."""
    url = database_url(database)
    HooklineProcess(url, 0, ENV, tmp_path).run_command("migrate")
    api = HooklineProcess(url, free_port(), ENV, tmp_path).start("--no-worker", "--dev")
    first = HooklineProcess(url, 0, ENV, tmp_path).start_worker("--dev")
    workers: list[HooklineProcess] = []
    db = await asyncpg.connect(url)
    try:
        svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=api.url))
        since = datetime.now(UTC) - timedelta(minutes=1)
        app = svix.application.create(ApplicationIn(name="Dead runner"))
        for path in ("/down", "/held"):
            receiver.status_for[path] = lambda _: 500
        ep = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/down"))
        held = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/held"))
        sent = [
            svix.message.create(app.id, MessageIn(event_type="tick", payload={"n": n})).id
            for n in range(6)
        ]
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        letters = f"{api.url}/api/v1/app/{app.id}/dead-letter"

        def dead() -> int:
            return len(httpx.get(letters, headers=headers).json()["data"])

        wait_until(lambda: dead() == 12, 20, "every delivery to exhaust")
        first.kill()
        receiver.status_for.clear()
        before = {p: len(receiver.received(p)) for p in ("/down", "/held")}
        task = svix.endpoint.recover(app.id, ep.id, RecoverIn(since=since))
        canceled = svix.endpoint.recover(app.id, held.id, RecoverIn(since=since))
        lease_ends = time.time() + 3
        taken = await db.execute(
            "UPDATE background_tasks SET lease_token = 'dead-runner', lease_until = $1"
            " WHERE id = ANY($2::text[]) AND lease_token IS NULL",
            int(lease_ends * 1000),
            [task.id, canceled.id],
        )
        assert taken == "UPDATE 2"
        assert _cancel(api, canceled.id)["data"]["canceled"] is True
        workers = [HooklineProcess(url, 0, ENV, tmp_path).start_worker("--dev") for _ in range(2)]
        wait_until(lambda: _finished(svix, task.id), 20, "a live worker to finish the task")
        assert time.time() >= lease_ends
        wait_until(
            lambda: len(receiver.received("/down")) == before["/down"] + 6, 10, "redeliveries"
        )
        again = Counter(
            r.headers["webhook-id"] for r in receiver.received("/down")[before["/down"] :]
        )
        assert again == Counter(sent)
        assert svix.background_task.get(task.id).data["messagesSent"] == 6
        stopped = svix.background_task.get(canceled.id)
        assert (stopped.status.value, stopped.data["messagesSent"]) == ("failed", 0)
        assert len(receiver.received("/held")) == before["/held"]
    finally:
        await db.close()
        for proc in (api, *workers):
            assert proc.terminate() == 0, proc.output()


def test_an_endpoint_that_answers_again_gets_what_failed_meanwhile_when_it_opted_in(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Two endpoints fail until every delivery is exhausted; then both answer again. The one
    whose policy sets ``recovery.auto`` gets each failed message once more, by a recover task
    the audit log shows as the system's; the other gets only what was published after."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), ENV, tmp_path).start("--dev")
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        with httpx.Client(base_url=proc.url, headers=headers) as client:
            app = client.post("/api/v1/app", json={"name": "Auto"}).json()["id"]
            for path in ("/auto", "/manual"):
                receiver.status_for[path] = lambda _: 500
            opted = {"url": f"{receiver.url}/auto", "policy": {"recovery": {"auto": True}}}
            auto = client.post(f"/api/v1/app/{app}/endpoint", json=opted)
            assert auto.status_code == 201, auto.text
            assert auto.json()["policy"] == {"recovery": {"auto": True}}
            plain = {"url": f"{receiver.url}/manual"}
            client.post(f"/api/v1/app/{app}/endpoint", json=plain).raise_for_status()
            failed = [
                client.post(
                    f"/api/v1/app/{app}/msg", json={"eventType": "t", "payload": {}}
                ).json()["id"]
                for _ in range(3)
            ]
            letters = f"/api/v1/app/{app}/dead-letter"
            wait_until(
                lambda: len(client.get(letters).json()["data"]) == 6, 20, "every delivery failed"
            )
            receiver.status_for.clear()
            after = client.post(f"/api/v1/app/{app}/msg", json={"eventType": "t", "payload": {}})
            later = after.json()["id"]
            wait_until(
                lambda: _ids(receiver, "/auto") == Counter({**dict.fromkeys(failed, 4), later: 1}),
                20,
                "the failed messages sent again to the opted-in endpoint",
            )
            assert _ids(receiver, "/manual") == Counter({**dict.fromkeys(failed, 3), later: 1})
            audit = client.get("/api/v1/audit", params={"action": "background_task"}).json()
            started = [e for e in audit["data"] if e["action"] == "background_task.started"]
            assert [e["actor"] for e in started] == ["system"]
    finally:
        assert proc.terminate() == 0, proc.output()
