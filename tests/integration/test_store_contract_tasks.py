"""The storage contract for background tasks and dead letters, on every backend.

Part of the store contract (``test_store_contract.py``), kept in its own file: the task
table (create, list, lease, cancel, checkpoint) and the reads tasks walk.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hookline.domain import ids
from hookline.domain.models import Application, AttemptTrigger, Endpoint, MessageStatus
from hookline.domain.tasks import (
    BackgroundTask,
    TaskFilter,
    TaskKind,
    TaskStatus,
    first_cursor,
)
from hookline.storage.base import DeadLetterFilter, ListQuery, Store, TaskCheckpoint
from tests.conftest import failed_outcome, make_app, make_endpoint, make_message, utcnow

LEASE = timedelta(seconds=30)


def task_for(
    endpoint: Endpoint | None,
    app: Application | None = None,
    kind: TaskKind = TaskKind.RECOVER,
) -> BackgroundTask:
    """A running task of ``endpoint``'s application (or ``app``'s) over the last hour."""
    app_id = app.id if app is not None else endpoint.app_id if endpoint is not None else None
    assert app_id is not None, "name the endpoint or the application"
    now = utcnow()
    since = now - timedelta(hours=1)
    return BackgroundTask(
        id=ids.new_id(ids.TASK),
        app_id=app_id,
        endpoint_id=None if endpoint is None else endpoint.id,
        kind=kind,
        status=TaskStatus.RUNNING,
        filter=TaskFilter(since=since, until=now + timedelta(minutes=1)),
        cursor=first_cursor(kind, since),
        scanned=0,
        queued=0,
        error=None,
        created_at=now,
        updated_at=now,
    )


async def _app_with_endpoint(store: Store) -> tuple[Application, Endpoint]:
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    return app, endpoint


async def _fail_all(store: Store, code: int = 500) -> None:
    now = utcnow()
    claimed = await store.claim_due(100, now, now + LEASE, "w1")
    await store.complete([failed_outcome(c, code) for c in claimed])


def checkpoint(
    task: BackgroundTask,
    token: str,
    cursor: str,
    requeue: list[str] | None = None,
    new: list[tuple[str, str]] | None = None,
    finished: bool = False,
) -> TaskCheckpoint:
    now = utcnow()
    return TaskCheckpoint(
        task=task,
        lease_token=token,
        cursor=cursor,
        scanned=1,
        requeue=requeue or [],
        new_deliveries=new or [],
        finished=finished,
        now=now,
        lease_until=now + LEASE,
    )


async def test_a_task_is_stored_read_back_and_listed_per_application(store: Store) -> None:
    """A task reads back as written; an application sees its own tasks, None sees all, and
    status and kind filters narrow the list."""
    app, endpoint = await _app_with_endpoint(store)
    other = make_app()
    await store.create_application(other)
    mine = task_for(endpoint)
    theirs = task_for(None, other, TaskKind.REDRIVE)
    await store.create_task(mine)
    await store.create_task(theirs)
    assert await store.get_task(mine.id) == mine
    assert await store.get_task("qtask_nope") is None
    assert [t.id for t in (await store.list_tasks(app.id, ListQuery())).data] == [mine.id]
    assert {t.id for t in (await store.list_tasks(None, ListQuery())).data} == {
        mine.id,
        theirs.id,
    }
    redrives = await store.list_tasks(None, ListQuery(), kinds=[TaskKind.REDRIVE])
    assert [t.id for t in redrives.data] == [theirs.id]
    finished = await store.list_tasks(None, ListQuery(), statuses=[TaskStatus.FINISHED])
    assert finished.data == []


async def test_a_task_is_leased_by_one_runner_until_its_lease_runs_out(store: Store) -> None:
    """A leased task is not leased again while its lease holds; once it ran out (its runner
    died) another runner takes it, and the first one's checkpoint is refused."""
    _app, endpoint = await _app_with_endpoint(store)
    task = task_for(endpoint)
    await store.create_task(task)
    now = utcnow()
    first = await store.lease_task(now, now + LEASE, "runner-a")
    assert first is not None and first.id == task.id
    assert await store.lease_task(now, now + LEASE, "runner-b") is None
    later = now + LEASE + timedelta(seconds=1)
    taken = await store.lease_task(later, later + LEASE, "runner-b")
    assert taken is not None and taken.id == task.id
    assert not await store.checkpoint_task(checkpoint(first, "runner-a", "msg_z"))
    assert await store.checkpoint_task(checkpoint(taken, "runner-b", "msg_z"))
    stored = await store.get_task(task.id)
    assert stored is not None and (stored.cursor, stored.scanned) == ("msg_z", 1)


async def test_a_released_task_is_free_at_once_for_another_runner(store: Store) -> None:
    """A runner that stops hands its task back: another leases it without waiting for the
    lease to run out; a release by a runner that does not hold it changes nothing."""
    _, endpoint = await _app_with_endpoint(store)
    task = task_for(endpoint)
    await store.create_task(task)
    now = utcnow()
    assert await store.lease_task(now, now + LEASE, "runner-a") is not None
    await store.release_task(task.id, "not-the-holder", now)
    assert await store.lease_task(now, now + LEASE, "runner-b") is None
    await store.release_task(task.id, "runner-a", now)
    taken = await store.lease_task(now, now + LEASE, "runner-b")
    assert taken is not None and taken.id == task.id


async def test_a_checkpoint_writes_its_deliveries_and_cursor_together(store: Store) -> None:
    """A batch re-queues failed deliveries as manual with a fresh count, creates missing
    ones, and moves the task's cursor and counts; finishing ends the task."""
    app, endpoint = await _app_with_endpoint(store)
    sent = make_message(app)
    await store.publish([sent], utcnow())
    await _fail_all(store)
    missing = make_message(app)
    await store.publish([missing], utcnow(), only_endpoint="ep_none")
    delivery = await store.get_delivery(sent.id, endpoint.id)
    assert delivery is not None and delivery.status is MessageStatus.FAIL
    task = task_for(endpoint, kind=TaskKind.BULK_REPLAY)
    await store.create_task(task)
    now = utcnow()
    leased = await store.lease_task(now, now + LEASE, "t")
    assert leased is not None
    new_id = ids.new_id(ids.DELIVERY)
    point = checkpoint(leased, "t", missing.id, [delivery.id], [(new_id, missing.id)], True)
    assert await store.checkpoint_task(point)
    for msg in (sent, missing):
        found = await store.get_delivery(msg.id, endpoint.id)
        assert found is not None
        assert (found.status, found.attempt_count) == (MessageStatus.PENDING, 0)
    stored = await store.get_task(task.id)
    assert stored is not None
    assert (stored.status, stored.queued, stored.cursor) == (TaskStatus.FINISHED, 2, missing.id)
    claimed = await store.claim_due(10, utcnow(), utcnow() + LEASE, "w1")
    assert {c.message.id for c in claimed} == {sent.id, missing.id}
    assert {c.trigger for c in claimed} == {AttemptTrigger.MANUAL}


async def test_a_checkpoint_never_touches_another_applications_rows(store: Store) -> None:
    """Even handed another application's delivery and message ids, a task's batch re-queues
    and creates nothing outside its own application."""
    _, endpoint = await _app_with_endpoint(store)
    other, other_endpoint = await _app_with_endpoint(store)
    theirs = make_message(other)
    await store.publish([theirs], utcnow())
    await _fail_all(store)
    their_delivery = await store.get_delivery(theirs.id, other_endpoint.id)
    assert their_delivery is not None
    task = task_for(endpoint, kind=TaskKind.BULK_REPLAY)
    await store.create_task(task)
    now = utcnow()
    leased = await store.lease_task(now, now + LEASE, "t")
    assert leased is not None
    crafted = [(ids.new_id(ids.DELIVERY), theirs.id)]
    assert await store.checkpoint_task(
        checkpoint(leased, "t", theirs.id, [their_delivery.id], crafted)
    )
    still = await store.get_delivery(theirs.id, other_endpoint.id)
    assert still is not None and still.status is MessageStatus.FAIL
    assert await store.get_delivery(theirs.id, endpoint.id) is None


async def test_a_canceled_task_writes_nothing_more(store: Store) -> None:
    """Cancel ends a running task; its runner's next checkpoint is refused and re-queues
    nothing; a finished task cannot be canceled."""
    app, endpoint = await _app_with_endpoint(store)
    msg = make_message(app)
    await store.publish([msg], utcnow())
    await _fail_all(store)
    delivery = await store.get_delivery(msg.id, endpoint.id)
    assert delivery is not None
    task = task_for(endpoint)
    await store.create_task(task)
    now = utcnow()
    leased = await store.lease_task(now, now + LEASE, "t")
    assert leased is not None
    assert await store.cancel_task(task.id, utcnow())
    assert not await store.checkpoint_task(checkpoint(leased, "t", msg.id, [delivery.id]))
    still = await store.get_delivery(msg.id, endpoint.id)
    assert still is not None and still.status is MessageStatus.FAIL
    stored = await store.get_task(task.id)
    assert stored is not None and stored.status is TaskStatus.CANCELED
    assert not await store.cancel_task(task.id, utcnow())
    assert await store.lease_task(now + LEASE * 2, now + LEASE * 3, "u") is None


async def test_task_rows_walk_in_key_order_in_bounded_batches(store: Store) -> None:
    """Each walk reads at most the batch size after its cursor, in key order: messages with
    or without a delivery (replay-missing), an endpoint's deliveries with their last status
    code (replays), an application's dead letters only (redrive)."""
    app, endpoint = await _app_with_endpoint(store)
    msgs = [make_message(app) for _ in range(5)]
    await store.publish(msgs[:3], utcnow())
    await _fail_all(store, 503)
    await store.publish(msgs[3:], utcnow(), only_endpoint="ep_none")
    replay = task_for(endpoint, kind=TaskKind.REPLAY_MISSING)
    first = await store.task_rows(replay, replay.cursor, 3)
    assert [r.msg_id for r in first] == [m.id for m in msgs[:3]]
    rest = await store.task_rows(replay, first[-1].key, 3)
    assert [(r.msg_id, r.delivery_id) for r in rest] == [(m.id, None) for m in msgs[3:]]
    bulk = task_for(endpoint, kind=TaskKind.BULK_REPLAY)
    rows = await store.task_rows(bulk, bulk.cursor, 10)
    assert [(r.msg_id, r.status, r.last_status_code) for r in rows] == [
        (m.id, MessageStatus.FAIL, 503) for m in msgs[:3]
    ]
    redrive = task_for(None, app, TaskKind.REDRIVE)
    letters = await store.task_rows(redrive, redrive.cursor, 2)
    assert len(letters) == 2 and letters[0].key < letters[1].key
    more = await store.task_rows(redrive, letters[-1].key, 2)
    assert [r.msg_id for r in letters + more] == [m.id for m in msgs[:3]]


async def test_dead_letters_are_the_failed_deliveries_of_one_application(store: Store) -> None:
    """Only failed deliveries of the application are listed; endpoint, event type,
    status-code class and time range each narrow the list."""
    app, endpoint = await _app_with_endpoint(store)
    second = make_endpoint(app, "https://example.com/second")
    await store.create_endpoint(second)
    other, other_endpoint = await _app_with_endpoint(store)
    await store.publish([make_message(app, "a.b"), make_message(other)], utcnow())
    now = utcnow()
    claimed = await store.claim_due(100, now, now + LEASE, "w1")
    await store.complete(
        [failed_outcome(c, 404 if c.endpoint.id == second.id else 500) for c in claimed]
    )
    await store.publish([make_message(app, "c.d")], utcnow())
    everything = await store.list_dead_letters(app.id, ListQuery(), DeadLetterFilter())
    assert {d.endpoint_id for d in everything.data} == {endpoint.id, second.id}
    assert len(everything.data) == 2 and all(d.event_type == "a.b" for d in everything.data)
    by_endpoint = DeadLetterFilter(endpoint_id=second.id)
    assert [
        d.last_status_code
        for d in (await store.list_dead_letters(app.id, ListQuery(), by_endpoint)).data
    ] == [404]
    by_class = DeadLetterFilter(status_code_class=500)
    assert [
        d.endpoint_id for d in (await store.list_dead_letters(app.id, ListQuery(), by_class)).data
    ] == [endpoint.id]
    by_type = DeadLetterFilter(event_types=("c.d",))
    assert (await store.list_dead_letters(app.id, ListQuery(), by_type)).data == []
    past = DeadLetterFilter(until=datetime(2000, 1, 1, tzinfo=UTC))
    assert (await store.list_dead_letters(app.id, ListQuery(), past)).data == []
    page = await store.list_dead_letters(app.id, ListQuery(limit=1), DeadLetterFilter())
    assert len(page.data) == 1 and not page.done
    theirs = await store.list_dead_letters(other.id, ListQuery(), DeadLetterFilter())
    assert [d.endpoint_id for d in theirs.data] == [other_endpoint.id]


async def test_retention_removes_ended_tasks_before_the_horizon_never_running_ones(
    store: Store,
) -> None:
    """Finished, failed and canceled tasks that ended before the horizon go (a dry run only
    counts them); a running task stays however old, and so does one that ended since."""
    _, endpoint = await _app_with_endpoint(store)
    horizon = utcnow() - timedelta(days=90)
    old = horizon - timedelta(days=1)
    made = {}
    for name, status, at in (
        ("running", TaskStatus.RUNNING, old),
        ("finished", TaskStatus.FINISHED, old),
        ("failed", TaskStatus.FAILED, old),
        ("canceled", TaskStatus.CANCELED, old),
        ("recent", TaskStatus.FINISHED, utcnow()),
    ):
        task = replace(task_for(endpoint), status=status, created_at=at, updated_at=at)
        await store.create_task(task)
        made[name] = task.id
    assert await store.prune_tasks(horizon, dry_run=True) == 3
    assert await store.get_task(made["finished"]) is not None
    assert await store.prune_tasks(horizon) == 3
    assert await store.prune_tasks(horizon) == 0
    kept = {name for name, task_id in made.items() if await store.get_task(task_id)}
    assert kept == {"running", "recent"}
