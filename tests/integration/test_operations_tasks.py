"""Background tasks on every backend: recover, replay-missing, bulk replay, redrive, dry
runs, cancel, a task resumed by another runner, and confinement to the caller's application."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from hookline.domain.errors import Conflict, InvalidRequest, NotFound
from hookline.domain.models import Application, Endpoint, MessageStatus
from hookline.domain.policy import EndpointPolicy, OnExhausted, OrderingPolicy
from hookline.domain.tasks import BackgroundTask, TaskKind, TaskStatus
from hookline.instrumentation import BackgroundTaskFinished, Event, Instrumentation
from hookline.operations import applications, endpoints, event_types, messages, tasks
from hookline.operations.applications import NewApplication
from hookline.operations.context import Operations
from hookline.operations.endpoints import EndpointFields, EndpointPatch
from hookline.operations.event_types import EventTypeFields
from hookline.operations.messages import NewMessage
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.tasks import TaskRequest, TaskRunner
from hookline.storage.base import DeadLetterFilter, ListQuery, Store
from tests.conftest import utcnow
from tests.integration.conftest import Ops, fail_next_delivery
from tests.integration.test_store_contract import _outcome

URL = "https://example.com/hook"


@dataclass
class Finished:
    events: frozenset[type[Event]] = frozenset({BackgroundTaskFinished})
    seen: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event)


@pytest.fixture
async def app(ops: Ops) -> Application:
    """An application ``acme`` with the event types a.b and c.d and an endpoint ``ep``."""
    created, _ = await applications.create(ops.ops, SYSTEM, NewApplication("Acme", uid="acme"))
    for name in ("a.b", "c.d"):
        await event_types.create(ops.ops, SYSTEM, name, EventTypeFields(name))
    await endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields(url=URL, uid="ep"))
    return created


async def _publish(ops: Ops, count: int, event_type: str = "a.b", app: str = "acme") -> list[str]:
    return [
        (await messages.publish(ops.ops, SYSTEM, app, NewMessage(event_type, {"n": n}))).id
        for n in range(count)
    ]


async def _fail(store: Store, count: int) -> None:
    for _ in range(count):
        await fail_next_delivery(store)


async def _status(store: Store, msg_id: str, endpoint_id: str) -> MessageStatus | None:
    found = await store.get_delivery(msg_id, endpoint_id)
    return None if found is None else found.status


async def _endpoint(ops: Ops, key: str = "ep", app: str = "acme") -> Endpoint:
    return await endpoints.get(ops.ops, SYSTEM, app, key)


async def _run(ops: Operations, task: BackgroundTask, **runner: Any) -> BackgroundTask:
    """Run the runner until no task is left, and read the task back."""
    walker = TaskRunner(ops, **runner)
    while await walker.run_one():
        pass
    return await tasks.get(ops, SYSTEM, task.id)


def _since() -> datetime:
    return utcnow() - timedelta(minutes=1)


async def test_recover_is_a_task_that_requeues_the_failures_of_its_window(
    ops: Ops, app: Application
) -> None:
    """Recover answers a running task at once; run, it re-queues the endpoint's failed
    deliveries of the window (and no other), wakes the worker and counts what it sent."""
    since = _since()
    msg_ids = await _publish(ops, 3)
    await _fail(ops.store, 2)
    endpoint = await _endpoint(ops)
    started = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, since, endpoint="ep")
    )
    assert started.status is TaskStatus.RUNNING and started.id.startswith("qtask_")
    assert await _status(ops.store, msg_ids[0], endpoint.id) is MessageStatus.FAIL
    done = await _run(ops.ops, started)
    assert done.status is TaskStatus.FINISHED
    assert tasks.task_data(done) == {"messagesScanned": 3, "messagesSent": 2}
    statuses = [await _status(ops.store, m, endpoint.id) for m in msg_ids]
    assert statuses == [MessageStatus.PENDING] * 3
    assert ops.wakes


async def test_recover_releases_the_held_head_of_an_ordered_line(
    ops: Ops, app: Application
) -> None:
    """A delivery holding an ordered endpoint's line (exhausted under ``hold``: pending with
    no attempt due) is re-queued by a recover of its window, with a fresh schedule, and is
    claimed before the rest of its line."""
    since = _since()
    policy = EndpointPolicy(ordering=OrderingPolicy(OnExhausted.HOLD))
    await endpoints.patch(ops.ops, SYSTEM, "acme", "ep", EndpointPatch(policy=policy))
    msg_ids = await _publish(ops, 2)
    endpoint = await _endpoint(ops)
    now = utcnow()
    (head,) = await ops.store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    await ops.store.complete([_outcome(head, MessageStatus.PENDING, 500, None)])
    assert await ops.store.claim_due(10, now, now + timedelta(seconds=30), "w1") == []
    started = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, since, endpoint="ep")
    )
    done = await _run(ops.ops, started)
    assert tasks.task_data(done) == {"messagesScanned": 2, "messagesSent": 1}
    later = utcnow()
    (again,) = await ops.store.claim_due(10, later, later + timedelta(seconds=30), "w1")
    assert (again.message.id, again.attempt_count) == (msg_ids[0], 0)
    assert again.endpoint.id == endpoint.id


async def test_a_window_that_is_empty_or_in_the_future_is_refused(
    ops: Ops, app: Application
) -> None:
    """'since' must be before 'until' (or now): otherwise a 422 on since and no task."""
    now = utcnow()
    for since, until in ((now, now), (now + timedelta(hours=1), None)):
        with pytest.raises(InvalidRequest) as refused:
            await tasks.start(
                ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, since, until, "ep")
            )
        assert refused.value.loc == ("body", "since")
    assert (await tasks.list_tasks(ops.ops, SYSTEM, ListQuery())).data == []


async def test_replay_missing_sends_what_arrived_while_disabled_and_now_passes_filters(
    ops: Ops, app: Application
) -> None:
    """Messages published while the endpoint was disabled, or of a type its filter used to
    refuse, get a delivery; those it already has, or its filter refuses now, do not. A dry
    run counts the same number first and writes nothing."""
    since = _since()
    endpoint = await _endpoint(ops)
    delivered = await _publish(ops, 1)
    await endpoints.patch(ops.ops, SYSTEM, "acme", "ep", EndpointPatch(disabled=True))
    while_disabled = await _publish(ops, 2) + await _publish(ops, 1, "c.d")
    await endpoints.patch(
        ops.ops, SYSTEM, "acme", "ep", EndpointPatch(disabled=False, event_types=["a.b"])
    )
    refused_type = await _publish(ops, 1, "c.d")
    await endpoints.patch(ops.ops, SYSTEM, "acme", "ep", EndpointPatch(event_types=["a.b"]))
    wanted = TaskRequest(TaskKind.REPLAY_MISSING, since, endpoint="ep")
    assert await tasks.count(ops.ops, SYSTEM, "acme", wanted) == 2
    assert await _status(ops.store, while_disabled[0], endpoint.id) is None
    done = await _run(ops.ops, await tasks.start(ops.ops, SYSTEM, "acme", wanted))
    assert tasks.task_data(done)["messagesSent"] == 2
    got = {m: await _status(ops.store, m, endpoint.id) for m in delivered + while_disabled}
    assert got == {
        delivered[0]: MessageStatus.PENDING,
        while_disabled[0]: MessageStatus.PENDING,
        while_disabled[1]: MessageStatus.PENDING,
        while_disabled[2]: None,
    }
    assert await _status(ops.store, refused_type[0], endpoint.id) is None
    again = await _run(ops.ops, await tasks.start(ops.ops, SYSTEM, "acme", wanted))
    assert tasks.task_data(again)["messagesSent"] == 0


async def test_bulk_replay_requeues_finished_deliveries_that_pass_its_filters(
    ops: Ops, app: Application
) -> None:
    """By event type and status: only the failed a.b deliveries go again; a dry run
    counts them without changing their state."""
    since = _since()
    endpoint = await _endpoint(ops)
    failed_ab = await _publish(ops, 2)
    failed_cd = await _publish(ops, 1, "c.d")
    await _fail(ops.store, 3)
    wanted = TaskRequest(
        TaskKind.BULK_REPLAY,
        since,
        endpoint="ep",
        event_types=("a.b",),
        status=MessageStatus.FAIL,
    )
    assert await tasks.count(ops.ops, SYSTEM, "acme", wanted) == 2
    assert await _status(ops.store, failed_ab[0], endpoint.id) is MessageStatus.FAIL
    await _run(ops.ops, await tasks.start(ops.ops, SYSTEM, "acme", wanted))
    assert [await _status(ops.store, m, endpoint.id) for m in failed_ab + failed_cd] == [
        MessageStatus.PENDING,
        MessageStatus.PENDING,
        MessageStatus.FAIL,
    ]


async def test_dead_letters_are_listed_and_redriven_by_filter(ops: Ops, app: Application) -> None:
    """Dead letters list the application's failures; a redrive filtered to another endpoint
    sends none of them, an unfiltered one sends them all, after a dry run that counted them."""
    await endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields(url=URL, uid="quiet"))
    endpoint = await _endpoint(ops)
    quiet = await _endpoint(ops, "quiet")
    msg_ids = await _publish(ops, 2)
    await _fail(ops.store, 4)
    letters = await tasks.dead_letters(ops.ops, SYSTEM, "acme", ListQuery(), DeadLetterFilter())
    assert len(letters.data) == 4
    only_ep = DeadLetterFilter(endpoint_id="ep")
    listed = await tasks.dead_letters(ops.ops, SYSTEM, "acme", ListQuery(), only_ep)
    assert {d.endpoint_id for d in listed.data} == {endpoint.id}
    to_quiet = TaskRequest(TaskKind.REDRIVE, endpoint="quiet", status_code_class=400)
    assert await tasks.count(ops.ops, SYSTEM, "acme", to_quiet) == 0
    everything = TaskRequest(TaskKind.REDRIVE)
    assert await tasks.count(ops.ops, SYSTEM, "acme", everything) == 4
    done = await _run(ops.ops, await tasks.start(ops.ops, SYSTEM, "acme", everything))
    assert done.kind is TaskKind.REDRIVE and tasks.task_data(done)["messagesSent"] == 4
    for msg_id in msg_ids:
        for target in (endpoint, quiet):
            assert await _status(ops.store, msg_id, target.id) is MessageStatus.PENDING
    left = await tasks.dead_letters(ops.ops, SYSTEM, "acme", ListQuery(), DeadLetterFilter())
    assert left.data == []


async def test_cancel_stops_a_task_between_batches(ops: Ops, app: Application) -> None:
    """A task canceled after its first batch queues nothing more: what it sent stays sent,
    the rest stays failed, and it is shown failed with data.canceled; canceling it again
    is a 409."""
    since = _since()
    endpoint = await _endpoint(ops)
    msg_ids = await _publish(ops, 5)
    await _fail(ops.store, 5)
    heard = Finished()
    ops.ops.instrumentation = Instrumentation([heard])
    started = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, since, endpoint="ep")
    )
    runner = TaskRunner(ops.ops, batch_size=2)
    now = utcnow()
    leased = await ops.store.lease_task(now, now + timedelta(seconds=30), "runner")
    assert leased is not None
    after_one = await runner.step(leased, "runner")
    assert after_one is not None and after_one.queued == 2
    canceled = await tasks.cancel(ops.ops, SYSTEM, started.id)
    assert canceled.status is TaskStatus.CANCELED
    assert await runner.step(after_one, "runner") is None
    statuses = [await _status(ops.store, m, endpoint.id) for m in msg_ids]
    assert statuses == [MessageStatus.PENDING] * 2 + [MessageStatus.FAIL] * 3
    assert tasks.task_data(canceled) == {
        "messagesScanned": 2,
        "messagesSent": 2,
        "canceled": True,
    }
    assert heard.seen == [
        BackgroundTaskFinished(
            started.id, started.app_id, "endpoint.recover", "failed", tasks.task_data(canceled)
        )
    ]
    with pytest.raises(Conflict):
        await tasks.cancel(ops.ops, SYSTEM, started.id)


async def test_a_task_whose_runner_died_is_resumed_from_its_last_batch(
    ops: Ops, app: Application
) -> None:
    """Runner A commits one batch and dies; once its lease ran out runner B leases the task
    and finishes it from A's cursor: every failure is re-queued once, none counted twice,
    and A's late checkpoint is refused."""
    since = _since()
    endpoint = await _endpoint(ops)
    msg_ids = await _publish(ops, 5)
    await _fail(ops.store, 5)
    heard = Finished()
    started = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, since, endpoint="ep")
    )
    lease = timedelta(seconds=10)
    now = utcnow()
    leased = await ops.store.lease_task(now, now + lease, "runner-a")
    assert leased is not None
    after_a = await TaskRunner(ops.ops, batch_size=2, lease=lease).step(leased, "runner-a")
    assert after_a is not None
    later = Operations(
        ops.store,
        clock=lambda: utcnow() + lease + timedelta(seconds=1),
        instrumentation=Instrumentation([heard]),
    )
    assert await TaskRunner(later, batch_size=2, lease=lease).run_one()
    assert await TaskRunner(ops.ops, batch_size=2, lease=lease).step(after_a, "runner-a") is None
    done = await tasks.get(ops.ops, SYSTEM, started.id)
    assert done.status is TaskStatus.FINISHED
    assert tasks.task_data(done) == {"messagesScanned": 5, "messagesSent": 5}
    assert [await _status(ops.store, m, endpoint.id) for m in msg_ids] == [
        MessageStatus.PENDING
    ] * 5
    assert [type(e) for e in heard.seen] == [BackgroundTaskFinished]


async def test_a_runner_that_stops_hands_its_task_back_for_another_to_finish(
    ops: Ops, app: Application
) -> None:
    """A runner stopped after one batch (SIGTERM) releases its task: another runner takes
    it at once, not a lease later, and finishes it from the released cursor."""
    since = _since()
    await _publish(ops, 4)
    await _fail(ops.store, 4)
    started = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, since, endpoint="ep")
    )
    stop = asyncio.Event()
    stopping = Operations(ops.store, work_queued=stop.set)
    assert await TaskRunner(stopping, batch_size=2).run_one(stop)
    halfway = await tasks.get(ops.ops, SYSTEM, started.id)
    assert (halfway.status, halfway.queued) == (TaskStatus.RUNNING, 2)
    assert await TaskRunner(ops.ops, batch_size=2).run_one()
    done = await tasks.get(ops.ops, SYSTEM, started.id)
    assert tasks.task_data(done) == {"messagesScanned": 4, "messagesSent": 4}


async def test_a_task_whose_endpoint_was_deleted_fails_with_the_reason(
    ops: Ops, app: Application
) -> None:
    """Deleting the endpoint under a running task ends it failed, saying why."""
    started = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.REPLAY_MISSING, _since(), endpoint="ep")
    )
    await endpoints.delete(ops.ops, SYSTEM, "acme", "ep")
    done = await _run(ops.ops, started)
    assert done.status is TaskStatus.FAILED
    assert tasks.task_data(done)["error"] == "the endpoint was deleted"


async def test_a_task_that_breaks_fails_instead_of_stopping_the_runner(
    ops: Ops, app: Application, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error in a batch ends that task failed, logged, and the runner goes
    on: the process is not brought down and the task is not retried forever."""
    started = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, _since(), endpoint="ep")
    )
    runner = TaskRunner(ops.ops)

    async def broken(task: BackgroundTask, token: str) -> BackgroundTask | None:
        raise RuntimeError("a bug")

    runner.step = broken  # type: ignore[method-assign]
    assert await runner.run_one()
    done = await tasks.get(ops.ops, SYSTEM, started.id)
    assert done.status is TaskStatus.FAILED
    assert tasks.task_data(done)["error"] == "internal error; see the server's log"
    assert "background task" in caplog.text and "a bug" in caplog.text
    assert not await runner.run_one()


async def test_every_bulk_operation_is_confined_to_the_callers_application(
    ops: Ops, app: Application
) -> None:
    """A portal token of another application reaches none of acme's endpoints, dead letters
    or tasks: by acme's key, by its own key with acme's endpoint id, or by task id; its
    lists show only its own tasks, and an admin's show all."""
    await _publish(ops, 2)
    await _fail(ops.store, 2)
    acme_endpoint = await _endpoint(ops)
    other, _ = await applications.create(ops.ops, SYSTEM, NewApplication("Other", uid="other"))
    await endpoints.create(ops.ops, SYSTEM, "other", EndpointFields(url=URL, uid="own"))
    intruder = Principal(token_id="tok_x", app_id=other.id)
    acme_task = await tasks.start(
        ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.RECOVER, _since(), endpoint="ep")
    )
    since = _since()
    attempts = [
        ("acme", TaskRequest(TaskKind.RECOVER, since, endpoint=acme_endpoint.id)),
        ("acme", TaskRequest(TaskKind.REDRIVE)),
        ("other", TaskRequest(TaskKind.RECOVER, since, endpoint=acme_endpoint.id)),
        ("other", TaskRequest(TaskKind.REPLAY_MISSING, since, endpoint=acme_endpoint.id)),
        ("other", TaskRequest(TaskKind.BULK_REPLAY, since, endpoint=acme_endpoint.id)),
        ("other", TaskRequest(TaskKind.REDRIVE, endpoint=acme_endpoint.id)),
        (app.id, TaskRequest(TaskKind.BULK_REPLAY, since, endpoint="ep")),
    ]
    for app_key, wanted in attempts:
        for attempt in (tasks.start, tasks.count):
            with pytest.raises(NotFound):
                await attempt(ops.ops, intruder, app_key, wanted)
    for reach in (tasks.get, tasks.cancel):
        with pytest.raises(NotFound):
            await reach(ops.ops, intruder, acme_task.id)
    for app_key, letters in (("acme", DeadLetterFilter()), ("other", DeadLetterFilter("ep"))):
        with pytest.raises(NotFound):
            await tasks.dead_letters(ops.ops, intruder, app_key, ListQuery(), letters)
    own = await tasks.start(ops.ops, intruder, "other", TaskRequest(TaskKind.REDRIVE))
    mine = await tasks.list_tasks(ops.ops, intruder, ListQuery())
    assert [t.id for t in mine.data] == [own.id]
    assert {t.id for t in (await tasks.list_tasks(ops.ops, SYSTEM, ListQuery())).data} == {
        own.id,
        acme_task.id,
    }
    assert await tasks.count(ops.ops, intruder, "other", TaskRequest(TaskKind.REDRIVE)) == 0
