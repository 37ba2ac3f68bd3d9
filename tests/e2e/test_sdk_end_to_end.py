"""The real ``hookline serve`` process, driven by the official svix SDK, delivering over loopback.

Every received request is verified with the public ``standardwebhooks`` package, so the
signatures are checked by code hookline did not write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook
from svix.api import (
    ApplicationIn,
    EndpointIn,
    EndpointSecretRotateIn,
    EventTypeIn,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageIn,
    MessageListOptions,
    RecoverIn,
    Svix,
    SvixOptions,
)
from svix.models import StatusCodeClass

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

FAST_RETRIES = {
    "HOOKLINE_RETRY_SCHEDULE": "0.05,0.1,0.1",
    "HOOKLINE_REQUEST_TIMEOUT": "2",
    "HOOKLINE_LEASE_SECONDS": "3",
    "HOOKLINE_POLL_INTERVAL": "0.05",
}


@pytest.fixture
def hookline(tmp_path: Path) -> Iterator[HooklineProcess]:
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), dict(FAST_RETRIES), tmp_path).start(
        "--dev"
    )
    yield proc
    if proc.process is not None and proc.process.poll() is None:
        assert proc.terminate() == 0, proc.output()


def sdk(proc: HooklineProcess) -> Svix:
    return Svix(ADMIN_TOKEN, SvixOptions(server_url=proc.url))


def verify(secret: str, body: bytes, headers: dict[str, str]) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    Webhook(secret).verify(body, lowered)


def test_sdk_fan_out_filters_signatures_and_retries(
    hookline: HooklineProcess, receiver: Receiver
) -> None:
    """200 messages arrive signed; a filtered endpoint gets none; a flaky one retries."""
    svix = sdk(hookline)
    app = svix.application.create(ApplicationIn(name="Acme", uid="acme"))
    svix.event_type.create(EventTypeIn(name="user.created", description="A user signed up"))
    svix.event_type.create(EventTypeIn(name="invoice.paid", description="An invoice was paid"))
    everything = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/all"))
    invoices = svix.endpoint.create(
        app.id, EndpointIn(url=f"{receiver.url}/invoices", event_types=["invoice.paid"])
    )
    flaky = svix.endpoint.create(
        app.id, EndpointIn(url=f"{receiver.url}/flaky", event_types=["user.created"])
    )
    failures_left = {"n": 2}
    lock = threading.Lock()

    def flaky_status(_: object) -> int:
        with lock:
            if failures_left["n"] > 0:
                failures_left["n"] -= 1
                return 503
        return 200

    receiver.status_for["/flaky"] = flaky_status
    first = svix.message.create(
        app.id, MessageIn(event_type="user.created", payload={"n": 0, "name": "Ada"})
    )
    wait_until(lambda: len(receiver.received("/flaky")) >= 3, 15, "flaky endpoint to succeed")
    attempts = svix.message_attempt.list_by_msg(
        app.id, first.id, MessageAttemptListByMsgOptions(endpoint_id=flaky.id)
    ).data
    assert sorted(a.response_status_code for a in attempts) == [200, 503, 503]
    assert [a.status_text for a in sorted(attempts, key=lambda a: a.id)] == [
        "fail",
        "fail",
        "success",
    ]

    sent = [first.id] + [
        svix.message.create(app.id, MessageIn(event_type="user.created", payload={"n": i})).id
        for i in range(1, 200)
    ]
    wait_until(lambda: len(receiver.received("/all")) >= 200, 30, "200 deliveries to /all")
    secret = svix.endpoint.get_secret(app.id, everything.id).key
    got = receiver.received("/all")
    for item in got:
        verify(secret, item.body, item.headers)
    assert {r.headers["webhook-id"] for r in got} == set(sent)
    assert receiver.received("/invoices") == []
    assert invoices.event_types == ["invoice.paid"]

    svix.health.get()
    assert svix.application.get("acme").id == app.id
    assert len(svix.endpoint.list(app.id).data) == 3
    messages = svix.message.list(app.id)
    assert len(messages.data) == 50 and not messages.done
    more = svix.message.list(app.id, MessageListOptions(iterator=messages.iterator))
    assert not {m.id for m in more.data} & {m.id for m in messages.data}
    sent_to_all = svix.message_attempt.list_attempted_messages(app.id, everything.id)
    assert len(sent_to_all.data) == 50
    assert {m.status_text for m in sent_to_all.data} == {"success"}
    destinations = svix.message_attempt.list_attempted_destinations(app.id, first.id)
    assert {d.id for d in destinations.data} == {everything.id, flaky.id}
    by_endpoint = svix.message_attempt.list_by_endpoint(
        app.id,
        flaky.id,
        MessageAttemptListByEndpointOptions(status_code_class=StatusCodeClass.CODE5XX),
    )
    assert [a.response_status_code for a in by_endpoint.data] == [503, 503]
    one = svix.message_attempt.get(app.id, first.id, attempts[0].id)
    assert one.id == attempts[0].id and one.msg_id == first.id


def test_responses_carry_a_date_and_do_not_name_the_server(hookline: HooklineProcess) -> None:
    """Every response has the Date HTTP requires of an origin server with a clock, and no
    Server header naming the software underneath."""
    with httpx.Client(base_url=hookline.url) as client:
        for response in (
            client.get("/api/v1/health"),
            client.get("/api/v1/app", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}),
            client.get("/api/v1/app"),
        ):
            assert "date" in response.headers
            assert "server" not in response.headers


def test_sdk_rotation_resend_and_recover(hookline: HooklineProcess, receiver: Receiver) -> None:
    """During rotation both keys verify; resend is a manual attempt; recover redelivers failures."""
    svix = sdk(hookline)
    app = svix.application.create(ApplicationIn(name="Rotate"))
    svix.event_type.create(EventTypeIn(name="order.placed", description="An order"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/rotating"))
    old = svix.endpoint.get_secret(app.id, ep.id).key
    new = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn()).key
    assert new != old and svix.endpoint.get_secret(app.id, ep.id).key == new
    msg = svix.message.create(app.id, MessageIn(event_type="order.placed", payload={"a": 1}))
    wait_until(lambda: len(receiver.received("/rotating")) == 1, 10, "rotated delivery")
    (delivered,) = receiver.received("/rotating")
    assert len(delivered.headers["webhook-signature"].split(" ")) == 2
    verify(old, delivered.body, delivered.headers)
    verify(new, delivered.body, delivered.headers)

    svix.message_attempt.resend(app.id, msg.id, ep.id)
    wait_until(lambda: len(receiver.received("/rotating")) == 2, 10, "resent delivery")
    resent = receiver.received("/rotating")[1]
    assert resent.headers["webhook-id"] == msg.id
    triggers = sorted(a.trigger_type for a in svix.message_attempt.list_by_msg(app.id, msg.id).data)
    assert [int(t) for t in triggers] == [0, 1]

    down = {"status": 500}
    receiver.status_for["/down"] = lambda _: down["status"]
    broken = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/down"))
    lost = svix.message.create(app.id, MessageIn(event_type="order.placed", payload={"b": 2}))
    wait_until(
        lambda: svix.endpoint.get_stats(app.id, broken.id).fail == 1, 15, "retries to exhaust"
    )
    assert len(receiver.received("/down")) == 4
    down["status"] = 200
    svix.endpoint.recover(
        app.id, broken.id, RecoverIn(since=datetime.now(UTC) - timedelta(hours=1))
    )
    wait_until(lambda: svix.endpoint.get_stats(app.id, broken.id).success == 1, 15, "recovery")
    assert receiver.received("/down")[-1].headers["webhook-id"] == lost.id


def test_kill_9_during_backlog_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """After kill -9 mid-backlog and a restart, every one of 500 accepted messages arrives."""
    env = {**FAST_RETRIES, "HOOKLINE_MAX_IN_FLIGHT": "8"}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), env, tmp_path).start("--dev")
    svix = sdk(proc)
    app = svix.application.create(ApplicationIn(name="Crash"))
    svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/backlog"))
    receiver.hold_after = 100
    accepted = [
        svix.message.create(app.id, MessageIn(event_type="tick", payload={"i": i})).id
        for i in range(500)
    ]
    wait_until(lambda: len(receiver.received("/backlog")) > 100, 15, "a partial drain")
    proc.kill()
    before = {r.headers["webhook-id"] for r in receiver.received("/backlog")}
    assert len(before) < 500, "the kill must happen with a backlog pending"
    receiver.hold.set()
    restarted = HooklineProcess(proc.database_url, proc.port, env, tmp_path).start("--dev")
    try:
        wait_until(
            lambda: (
                {r.headers["webhook-id"] for r in receiver.received("/backlog")} >= set(accepted)
            ),
            60,
            "every accepted message to arrive after restart",
        )
    finally:
        assert restarted.terminate() == 0, restarted.output()


def test_api_and_worker_as_separate_processes(tmp_path: Path, receiver: Receiver) -> None:
    """`serve --no-worker` accepts and `worker` delivers from the same SQLite file; both exit 0."""
    db = sqlite_url(tmp_path)
    api = HooklineProcess(db, free_port(), dict(FAST_RETRIES), tmp_path).start(
        "--no-worker", "--dev"
    )
    worker = HooklineProcess(db, 0, dict(FAST_RETRIES), tmp_path)
    try:
        svix = sdk(api)
        app = svix.application.create(ApplicationIn(name="Split"))
        svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/split"))
        sent = {
            svix.message.create(app.id, MessageIn(event_type="e", payload={"i": i})).id
            for i in range(20)
        }
        worker.start_worker("--dev")
        wait_until(
            lambda: {r.headers["webhook-id"] for r in receiver.received("/split")} == sent,
            20,
            "the worker process to deliver what the API process accepted",
        )
    finally:
        assert worker.terminate() == 0, worker.output()
        assert api.terminate() == 0, api.output()
