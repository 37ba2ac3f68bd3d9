"""The bulk expunge of message content (``application.purge_content``) on every backend:
its dry-run count, the task that removes the payloads of the messages passing its filters
and nothing else, its progress, and confinement to the caller's application."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hookline.domain.audit import AuditFilter
from hookline.domain.errors import InvalidRequest, NotFound
from hookline.domain.tasks import TaskKind, TaskStatus
from hookline.operations import applications, messages, tasks
from hookline.operations.applications import NewApplication
from hookline.operations.messages import NewMessage
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.tasks import TaskRequest, TaskRunner, task_data
from hookline.storage.base import ListQuery
from tests.conftest import utcnow
from tests.integration.conftest import Ops


async def _publish(ops: Ops, app: str, *event_types: str) -> list[str]:
    return [
        (await messages.publish(ops.ops, SYSTEM, app, NewMessage(name, {"secret": "x"}))).id
        for name in event_types
    ]


async def _held(ops: Ops, app_key: str, msg_ids: list[str]) -> list[bool]:
    """Whether each message still holds its payload."""
    app = await applications.resolve(ops.ops, SYSTEM, app_key)
    found = [await ops.store.get_message(app.id, msg_id) for msg_id in msg_ids]
    return [m is not None and m.payload is not None for m in found]


def _request(**filters: object) -> TaskRequest:
    since = utcnow() - timedelta(hours=1)
    return TaskRequest(TaskKind.PURGE_CONTENT, since, **filters)  # type: ignore[arg-type]


async def test_a_dry_run_counts_then_the_task_expunges_only_the_matching_payloads(
    ops: Ops,
) -> None:
    """The dry run counts the messages of the event type still holding a payload and
    changes nothing; the task removes exactly those payloads, reports them as expunged,
    and a second dry run counts none; the start is audited."""
    for uid in ("acme", "beta"):
        await applications.create(ops.ops, SYSTEM, NewApplication(uid, uid=uid))
    acme = await _publish(ops, "acme", "a.b", "a.b", "c.d")
    beta = await _publish(ops, "beta", "a.b")
    wanted = _request(event_types=("a.b",))
    assert await tasks.count(ops.ops, SYSTEM, "acme", wanted) == 2
    assert await _held(ops, "acme", acme) == [True, True, True]

    task = await tasks.start(ops.ops, SYSTEM, "acme", wanted)
    assert task.endpoint_id is None
    runner = TaskRunner(ops.ops)
    while await runner.run_one():
        pass
    ended = await tasks.get(ops.ops, SYSTEM, task.id)
    assert ended.status is TaskStatus.FINISHED
    assert task_data(ended) == {"messagesScanned": 3, "messagesExpunged": 2}
    assert await _held(ops, "acme", acme) == [False, False, True]
    assert await _held(ops, "beta", beta) == [True]
    assert await tasks.count(ops.ops, SYSTEM, "acme", wanted) == 0
    log = await ops.store.list_audit(ListQuery(limit=50), AuditFilter(action="background_task"))
    assert [(e.action, e.summary["task"]) for e in log.data] == [
        ("background_task.started", "application.purge_content")
    ]


async def test_an_expunge_needs_a_since_and_stays_in_the_callers_application(ops: Ops) -> None:
    """Without ``since`` it is refused (a purge of everything is asked for explicitly); a
    token of another application finds the application absent, counts nothing and starts
    nothing."""
    for uid in ("acme", "beta"):
        await applications.create(ops.ops, SYSTEM, NewApplication(uid, uid=uid))
    acme = await _publish(ops, "acme", "a.b")
    with pytest.raises(InvalidRequest):
        await tasks.start(ops.ops, SYSTEM, "acme", TaskRequest(TaskKind.PURGE_CONTENT))
    beta = await applications.resolve(ops.ops, SYSTEM, "beta")
    as_beta = Principal(token_id="tok_beta", app_id=beta.id)
    with pytest.raises(NotFound):
        await tasks.count(ops.ops, as_beta, "acme", _request())
    with pytest.raises(NotFound):
        await tasks.start(ops.ops, as_beta, "acme", _request())
    assert await _held(ops, "acme", acme) == [True]
    own = await tasks.start(ops.ops, as_beta, "beta", _request())
    runner = TaskRunner(ops.ops)
    while await runner.run_one():
        pass
    assert (await tasks.get(ops.ops, as_beta, own.id)).queued == 0
    assert await _held(ops, "acme", acme) == [True]
