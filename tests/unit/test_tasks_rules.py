"""The pure rules of background tasks: which rows a task acts on, and its key ranges."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hookline.domain import ids
from hookline.domain.models import MessageStatus
from hookline.domain.tasks import (
    EndpointRoute,
    TaskFilter,
    TaskKind,
    TaskRow,
    TaskStatus,
    first_cursor,
    in_code_class,
    selects,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = TaskFilter(since=T0, until=T0 + timedelta(hours=1))
ROW = TaskRow(
    key="msg_1",
    msg_id="msg_1",
    endpoint_id="ep_1",
    delivery_id="dlv_1",
    status=MessageStatus.FAIL,
    attempt_count=3,
    updated_at=T0,
    event_type="user.created",
    channels=("eu",),
    tags=("vip",),
    created_at=T0 + timedelta(minutes=5),
    last_status_code=503,
)
MISSING = replace(ROW, delivery_id=None, status=None, endpoint_id=None, last_status_code=None)
OPEN = EndpointRoute(event_types=None, channels=None)


def test_replay_missing_takes_only_messages_without_a_delivery_that_the_filters_accept() -> None:
    """replay-missing queues what the endpoint never got, and only what its filters accept now."""
    assert selects(TaskKind.REPLAY_MISSING, SPEC, MISSING, OPEN)
    assert not selects(TaskKind.REPLAY_MISSING, SPEC, ROW, OPEN)
    only_orders = EndpointRoute(event_types=("order.paid",), channels=None)
    assert not selects(TaskKind.REPLAY_MISSING, SPEC, MISSING, only_orders)
    us_only = EndpointRoute(event_types=None, channels=("us",))
    assert not selects(TaskKind.REPLAY_MISSING, SPEC, MISSING, us_only)


def test_recover_and_redrive_take_failures_and_bulk_replay_any_finished_delivery() -> None:
    """Recover and redrive re-queue failed deliveries; bulk replay successes too; none a
    delivery still pending or sending (it is queued already)."""
    success = replace(ROW, status=MessageStatus.SUCCESS)
    pending = replace(ROW, status=MessageStatus.PENDING)
    for kind in (TaskKind.RECOVER, TaskKind.REDRIVE):
        assert selects(kind, SPEC, ROW) and not selects(kind, SPEC, success)
    assert selects(TaskKind.BULK_REPLAY, SPEC, success)
    for kind in (TaskKind.RECOVER, TaskKind.REDRIVE, TaskKind.BULK_REPLAY):
        assert not selects(kind, SPEC, pending)
        assert not selects(kind, SPEC, MISSING)


def test_the_time_range_is_half_open_on_creation_time() -> None:
    """A message created at ``since`` is in; one created at ``until`` is out."""
    assert selects(TaskKind.RECOVER, SPEC, replace(ROW, created_at=SPEC.since))
    assert not selects(TaskKind.RECOVER, SPEC, replace(ROW, created_at=SPEC.until))
    assert not selects(TaskKind.RECOVER, SPEC, replace(ROW, created_at=T0 - timedelta(1)))


def test_each_filter_of_a_bulk_replay_narrows_it() -> None:
    """Event types, channel, tag, status, status-code class and endpoint each must match."""
    kind = TaskKind.BULK_REPLAY
    matching = replace(
        SPEC,
        endpoint_id="ep_1",
        event_types=("user.created",),
        channel="eu",
        tag="vip",
        status=MessageStatus.FAIL,
        status_code_class=500,
    )
    assert selects(kind, matching, ROW)
    for change in (
        {"endpoint_id": "ep_2"},
        {"event_types": ("order.paid",)},
        {"channel": "us"},
        {"tag": "free"},
        {"status": MessageStatus.SUCCESS},
        {"status_code_class": 400},
    ):
        assert not selects(kind, replace(matching, **change), ROW), change


def test_status_code_class_zero_means_no_http_answer() -> None:
    """Class 0 is a status code of 0 (no answer); 500 spans 500-599; no attempt is no class."""
    assert in_code_class(0, 0) and not in_code_class(200, 0)
    assert in_code_class(599, 500) and not in_code_class(600, 500)
    assert not in_code_class(None, 500)


def test_a_message_walk_starts_before_every_id_minted_since_its_start() -> None:
    """The first cursor sorts before every message id minted at or after ``since``, and
    after ids minted well before it; a redrive walks dead letters from the start."""
    now = datetime.now(UTC)
    cursor = first_cursor(TaskKind.BULK_REPLAY, now)
    assert cursor < ids.new_id(ids.MESSAGE)
    assert first_cursor(TaskKind.BULK_REPLAY, now + timedelta(seconds=5)) > ids.new_id(ids.MESSAGE)
    assert first_cursor(TaskKind.REDRIVE, now) == ""


def test_canceled_and_redrive_are_shown_in_svix_terms() -> None:
    """Svix SDKs know neither a canceled status nor a redrive task: they read as a failed
    task and a bulk replay."""
    assert TaskStatus.CANCELED.wire == "failed" and TaskStatus.FINISHED.wire == "finished"
    assert TaskKind.REDRIVE.wire == "endpoint.bulk-replay"
    assert TaskKind.REPLAY_MISSING.wire == "endpoint.replay"


def test_a_recover_limited_to_a_failing_period_skips_failures_that_ended_before_it() -> None:
    """With ``failed_since`` (automatic recovery), a recover re-queues only deliveries that
    ended at or after the failing period began, not an earlier outage's failures."""
    period = replace(SPEC, failed_since=T0 + timedelta(minutes=10))
    during = replace(ROW, updated_at=T0 + timedelta(minutes=10))
    before = replace(ROW, updated_at=T0 + timedelta(minutes=9))
    assert selects(TaskKind.RECOVER, period, during)
    assert not selects(TaskKind.RECOVER, period, before)
    assert selects(TaskKind.RECOVER, SPEC, before)
