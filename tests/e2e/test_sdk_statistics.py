"""Statistics through the official svix SDK against the real ``hookline serve``: attempt
statistics read from the rollups the worker's recorder writes, and Svix's statistics
background tasks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from svix.api import (
    ApplicationIn,
    AppUsageStatsIn,
    EndpointGetAttemptStatsOptions,
    EndpointIn,
    EventTypeIn,
    MessageIn,
    Svix,
    SvixOptions,
)
from svix.models import BackgroundTaskStatus

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Received,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

FAST_RETRIES = {"HOOKLINE_RETRY_SCHEDULE": "0.05,0.05", "HOOKLINE_POLL_INTERVAL": "0.05"}


@pytest.fixture
def hookline(tmp_path: Path) -> Iterator[HooklineProcess]:
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), dict(FAST_RETRIES), tmp_path).start(
        "--dev"
    )
    yield proc
    if proc.process is not None and proc.process.poll() is None:
        assert proc.terminate() == 0, proc.output()


def test_sdk_reads_attempt_stats_the_recorder_rolled_up(
    hookline: HooklineProcess, receiver: Receiver
) -> None:
    """Ten messages to an endpoint that fails each first attempt with a 503 and then takes
    it: the SDK's ``get_attempt_stats`` counts ten successes and ten failures, within a
    window around now and none in a window a day ago."""
    svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=hookline.url))
    app = svix.application.create(ApplicationIn(name="Acme"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/flaky"))
    seen: set[str] = set()
    lock = threading.Lock()

    def first_fails(item: Received) -> int:
        msg_id = item.headers["webhook-id"]
        with lock:
            if msg_id in seen:
                return 200
            seen.add(msg_id)
            return 503

    receiver.status_for["/flaky"] = first_fails
    for i in range(10):
        svix.message.create(app.id, MessageIn(event_type="user.created", payload={"n": i}))

    def counted() -> bool:
        stats = svix.endpoint.get_attempt_stats(app.id, ep.id)
        return stats.success == 10 and stats.fail == 10

    wait_until(counted, 20, "ten successes and ten failures in the attempt stats")
    now = datetime.now(UTC)
    around = svix.endpoint.get_attempt_stats(
        app.id,
        ep.id,
        EndpointGetAttemptStatsOptions(since=now - timedelta(hours=1), until=now),
    )
    assert (around.success, around.fail, around.canceled) == (10, 10, 0)
    day_ago = svix.endpoint.get_attempt_stats(
        app.id,
        ep.id,
        EndpointGetAttemptStatsOptions(
            since=now - timedelta(days=2), until=now - timedelta(days=1)
        ),
    )
    assert (day_ago.success, day_ago.fail) == (0, 0)


def test_sdk_starts_statistics_tasks_and_reads_their_data(
    hookline: HooklineProcess, receiver: Receiver
) -> None:
    """The SDK's ``statistics.aggregate_app_stats`` and ``aggregate_event_types`` start
    background tasks that the server's runner finishes; ``background_task.get`` then shows
    Svix's documented data: attempts per application, and subscribed event types."""
    svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=hookline.url))
    app = svix.application.create(ApplicationIn(name="Acme", uid="acme"))
    svix.event_type.create(EventTypeIn(name="user.created", description="A user signed up"))
    svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/all"))
    svix.endpoint.create(
        app.id, EndpointIn(url=f"{receiver.url}/users", event_types=["user.created"])
    )
    for i in range(3):
        svix.message.create(app.id, MessageIn(event_type="user.created", payload={"n": i}))
    wait_until(lambda: len(receiver.received("/")) >= 6, 20, "six deliveries")
    wait_until(
        lambda: (
            sum(
                svix.endpoint.get_attempt_stats(app.id, ep.id).success
                for ep in svix.endpoint.list(app.id).data
            )
            >= 6
        ),
        20,
        "six attempts recorded",
    )
    now = datetime.now(UTC)
    usage = svix.statistics.aggregate_app_stats(
        AppUsageStatsIn(since=now - timedelta(hours=1), until=now, app_ids=["acme", "nope"])
    )
    assert usage.unresolved_app_ids == ["nope"]
    types = svix.statistics.aggregate_event_types()

    def finished(task_id: str) -> bool:
        return svix.background_task.get(task_id).status == BackgroundTaskStatus.FINISHED

    wait_until(lambda: finished(usage.id) and finished(types.id), 20, "both tasks to finish")
    assert svix.background_task.get(usage.id).data == {
        "appStats": [{"appId": app.id, "appUid": "acme", "messageDestinations": 6}]
    }
    assert svix.background_task.get(types.id).data == {
        "event_types": [
            {
                "appId": app.id,
                "explicitlySubscribedEventTypes": ["user.created"],
                "hasCatchAllEndpoint": True,
            }
        ]
    }
