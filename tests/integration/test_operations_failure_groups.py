"""Failure groups on every backend: the grouping pass (lease, cursor, automatic resolve,
reopen) and what an operator does (acknowledge, resolve, replay with its dry run), audited
and confined to the caller's application."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from hookline.domain.audit import AuditFilter
from hookline.domain.errors import Conflict, NotFound
from hookline.domain.failure_groups import SETTLE, FailureGroup, GroupFilter, GroupStatus
from hookline.domain.models import ClaimedDelivery, MessageStatus
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.domain.tasks import TaskKind, TaskStatus
from hookline.instrumentation import Event, FailureGroupOpened, Instrumentation, MetricsHook
from hookline.operations import (
    applications,
    endpoints,
    failure_groups,
    messages,
    operational_webhooks,
    tasks,
)
from hookline.operations.applications import NewApplication
from hookline.operations.context import Operations
from hookline.operations.endpoints import EndpointFields
from hookline.operations.failure_groups import FailureGrouper
from hookline.operations.messages import NewMessage
from hookline.operations.operational_webhooks import OperationalPublisher
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.tasks import TaskRunner
from hookline.storage.base import AttemptOutcome, ListQuery, MessageFilter
from tests.conftest import recorded_outcome, utcnow
from tests.integration.conftest import Ops

URL = "https://example.com/hook"


async def _app(ops: Ops, uid: str) -> None:
    await applications.create(ops.ops, SYSTEM, NewApplication(uid, uid=uid))
    await endpoints.create(ops.ops, SYSTEM, uid, EndpointFields(url=URL, uid="ep"))


async def _claimed(ops: Ops, app: str, count: int) -> list[ClaimedDelivery]:
    for n in range(count):
        await messages.publish(ops.ops, SYSTEM, app, NewMessage("a.b", {"n": n}))
    now = utcnow()
    return await ops.store.claim_due(count, now, now + timedelta(seconds=30), "w1")


def _late(ops: Ops, end: datetime) -> Operations:
    """The operations with a clock ``SETTLE`` past ``end``: a pass then reads to ``end``."""
    return replace(ops.ops, clock=lambda: end + SETTLE)


async def _pass(ops: Ops, grouper: FailureGrouper) -> list[FailureGroup]:
    """One pass that reads every attempt recorded so far; every group after it. It ends an
    id tick (4 ms) from now and returns once the clock passed that, so an attempt recorded
    later falls in the next pass (``group_failures`` in conftest)."""
    end = utcnow() + timedelta(milliseconds=4)
    await grouper.scan(_late(ops, end))
    await asyncio.sleep(max(0.0, (end - utcnow()).total_seconds()) + 0.001)
    return (await ops.store.list_failure_groups(ListQuery(limit=250), GroupFilter())).data


def _by_code(groups: list[FailureGroup]) -> dict[int, FailureGroup]:
    return {g.status_code: g for g in groups}


async def _complete(ops: Ops, *outcomes: AttemptOutcome) -> None:
    await ops.store.complete(list(outcomes))


async def test_a_pass_groups_failures_by_endpoint_and_error_and_the_next_pass_adds(
    ops: Ops,
) -> None:
    """Two 503s and a timeout of one endpoint are two groups (a success is none); a later
    503 is added to its group by the next pass, read once."""
    await _app(ops, "acme")
    claimed = await _claimed(ops, "acme", 5)
    now = utcnow()
    await _complete(
        ops,
        recorded_outcome(claimed[0], 503, now, response="Service Unavailable"),
        recorded_outcome(claimed[1], 503, now, response="busy"),
        recorded_outcome(claimed[2], 0, now, response="timeout after 15 s"),
        recorded_outcome(claimed[3], 200, now),
    )
    grouper = FailureGrouper()
    groups = _by_code(await _pass(ops, grouper))
    assert set(groups) == {503, 0}
    assert (groups[503].attempts, groups[503].messages, groups[503].outcome) == (2, 2, "5xx")
    assert (groups[0].outcome, groups[0].sample) == ("timeout", "timeout after 15 s")
    await _complete(ops, recorded_outcome(claimed[4], 503, utcnow(), response="later"))
    again = _by_code(await _pass(ops, grouper))
    assert (again[503].attempts, again[503].messages, again[503].sample) == (3, 3, "later")
    assert again[0].attempts == 1
    assert (await _pass(ops, grouper)) == list(await _pass(ops, grouper))


async def test_a_pass_reads_in_pages_and_chunks_and_counts_every_attempt_once(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of two attempts and chunks of three, five failures of one key are read
    whole and counted once each; the messages of one chunk are counted once."""
    monkeypatch.setattr(failure_groups, "PAGE_ATTEMPTS", 2)
    monkeypatch.setattr(failure_groups, "CHUNK_ATTEMPTS", 3)
    await _app(ops, "acme")
    claimed = await _claimed(ops, "acme", 5)
    now = utcnow()
    await _complete(ops, *(recorded_outcome(c, 500, now) for c in claimed))
    (group,) = await _pass(ops, FailureGrouper())
    assert (group.attempts, group.messages) == (5, 5)


async def test_a_grouper_without_the_lease_reads_and_writes_nothing(ops: Ops) -> None:
    """Of two processes' groupers only the lease holder passes; the other leaves the cursor
    and the groups as they are."""
    await _app(ops, "acme")
    (claimed,) = await _claimed(ops, "acme", 1)
    holder = FailureGrouper()
    await _pass(ops, holder)
    cursor = await ops.store.scan_cursor(failure_groups.CURSOR)
    await _complete(ops, recorded_outcome(claimed, 500, utcnow()))
    assert await FailureGrouper().scan(_late(ops, utcnow() + timedelta(seconds=5))) is None
    assert await ops.store.scan_cursor(failure_groups.CURSOR) == cursor
    assert [g.status_code for g in await _pass(ops, holder)] == [500]


async def test_a_quiet_group_resolves_on_its_own_only_once_its_endpoint_delivered(
    ops: Ops,
) -> None:
    """Both endpoints failed half an hour ago; the one that delivered since is resolved by
    the pass (``automatic``), the silent one stays open; a new failure reopens the first."""
    await _app(ops, "acme")
    await _app(ops, "beta")
    (acme,) = await _claimed(ops, "acme", 1)
    (beta,) = await _claimed(ops, "beta", 1)
    (acme_ok,) = await _claimed(ops, "acme", 1)
    now = utcnow()
    await _complete(
        ops,
        recorded_outcome(acme, 502, now - timedelta(minutes=30)),
        recorded_outcome(beta, 502, now - timedelta(minutes=30)),
        recorded_outcome(acme_ok, 200, now - timedelta(minutes=5)),
    )
    grouper = FailureGrouper()
    groups = {g.app_id: g for g in await _pass(ops, grouper)}
    acme_app = await applications.resolve(ops.ops, SYSTEM, "acme")
    beta_app = await applications.resolve(ops.ops, SYSTEM, "beta")
    resolved = groups[acme_app.id]
    assert (resolved.status, resolved.resolved_by) == (GroupStatus.RESOLVED, "automatic")
    assert groups[beta_app.id].status is GroupStatus.OPEN

    (acme_again,) = await _claimed(ops, "acme", 1)
    await _complete(ops, recorded_outcome(acme_again, 502, utcnow()))
    reopened = {g.app_id: g for g in await _pass(ops, grouper)}[acme_app.id]
    assert (reopened.id, reopened.status, reopened.reopened) == (
        resolved.id,
        GroupStatus.OPEN,
        1,
    )


async def test_a_quiet_group_of_a_deleted_endpoint_resolves_on_its_own(ops: Ops) -> None:
    """An endpoint that failed half an hour ago and was deleted since: its group is resolved
    by the pass without a success."""
    await _app(ops, "acme")
    (claimed,) = await _claimed(ops, "acme", 1)
    await _complete(ops, recorded_outcome(claimed, 500, utcnow() - timedelta(minutes=30)))
    await endpoints.delete(ops.ops, SYSTEM, "acme", "ep")
    (group,) = await _pass(ops, FailureGrouper())
    assert (group.status, group.resolved_by) == (GroupStatus.RESOLVED, "automatic")


async def test_groups_of_endpoints_that_stay_down_never_keep_others_from_resolving(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of one quiet group, the quietest (its endpoint silent since) stays open
    and the next, whose endpoint delivered, is still judged and resolved."""
    monkeypatch.setattr(failure_groups, "QUIET_BATCH", 1)
    await _app(ops, "acme")
    await _app(ops, "beta")
    (acme,) = await _claimed(ops, "acme", 1)
    (beta,) = await _claimed(ops, "beta", 1)
    (beta_ok,) = await _claimed(ops, "beta", 1)
    now = utcnow()
    await _complete(
        ops,
        recorded_outcome(acme, 502, now - timedelta(minutes=40)),
        recorded_outcome(beta, 502, now - timedelta(minutes=30)),
        recorded_outcome(beta_ok, 200, now - timedelta(minutes=5)),
    )
    groups = {g.app_id: g for g in await _pass(ops, FailureGrouper())}
    acme_app = await applications.resolve(ops.ops, SYSTEM, "acme")
    beta_app = await applications.resolve(ops.ops, SYSTEM, "beta")
    assert groups[acme_app.id].status is GroupStatus.OPEN
    assert groups[beta_app.id].status is GroupStatus.RESOLVED


async def test_acknowledge_and_resolve_are_audited_once_and_refuse_a_resolved_acknowledge(
    ops: Ops,
) -> None:
    """Acknowledging twice records one entry; resolving twice records one; acknowledging a
    resolved group is a 409 that changes nothing."""
    await _app(ops, "acme")
    (claimed,) = await _claimed(ops, "acme", 1)
    await _complete(ops, recorded_outcome(claimed, 500, utcnow()))
    (group,) = await _pass(ops, FailureGrouper())
    seen = await failure_groups.acknowledge(ops.ops, SYSTEM, "acme", group.id)
    assert seen.status is GroupStatus.ACKNOWLEDGED and seen.acknowledged_at is not None
    await failure_groups.acknowledge(ops.ops, SYSTEM, "acme", group.id)
    done = await failure_groups.resolve(ops.ops, SYSTEM, "acme", group.id)
    assert (done.status, done.resolved_by) == (GroupStatus.RESOLVED, "operator")
    await failure_groups.resolve(ops.ops, SYSTEM, "acme", group.id)
    with pytest.raises(Conflict):
        await failure_groups.acknowledge(ops.ops, SYSTEM, "acme", group.id)
    log = await ops.store.list_audit(ListQuery(limit=250), AuditFilter(action="failure_group"))
    assert [e.action for e in log.data] == [
        "failure_group.acknowledged",
        "failure_group.resolved",
    ]
    assert {e.target_id for e in log.data} == {group.id}


async def test_replay_redrives_the_groups_dead_letters_only_with_its_dry_run_count(
    ops: Ops,
) -> None:
    """The dry run counts the endpoint's dead letters that last got the group's code, and
    changes nothing; the replay is a redrive task that re-queues exactly those, audited with
    the group's id; a delivery that failed with another code stays failed."""
    await _app(ops, "acme")
    claimed = await _claimed(ops, "acme", 3)
    now = utcnow()
    await _complete(
        ops,
        recorded_outcome(claimed[0], 503, now),
        recorded_outcome(claimed[1], 503, now),
        recorded_outcome(claimed[2], 500, now),
    )
    groups = _by_code(await _pass(ops, FailureGrouper()))
    group = groups[503]
    assert await failure_groups.replay_count(ops.ops, SYSTEM, "acme", group.id) == 2
    assert not ops.wakes
    task = await failure_groups.replay(ops.ops, SYSTEM, "acme", group.id)
    assert (task.kind, task.endpoint_id, task.filter.status_code) == (
        TaskKind.REDRIVE,
        group.endpoint_id,
        503,
    )
    walker = TaskRunner(ops.ops)
    while await walker.run_one():
        pass
    ended = await tasks.get(ops.ops, SYSTEM, task.id)
    assert (ended.status, ended.queued) == (TaskStatus.FINISHED, 2)

    def status(c: ClaimedDelivery) -> MessageStatus | None:
        return statuses[c.message.id]

    statuses = {}
    for c in claimed:
        found = await ops.store.get_delivery(c.message.id, c.endpoint.id)
        statuses[c.message.id] = None if found is None else found.status
    assert [status(c) for c in claimed] == [
        MessageStatus.PENDING,
        MessageStatus.PENDING,
        MessageStatus.FAIL,
    ]
    log = await ops.store.list_audit(ListQuery(limit=250), AuditFilter(action="background_task"))
    (started,) = log.data
    assert started.summary["failureGroupId"] == group.id


async def test_another_applications_token_finds_no_group_and_changes_nothing(ops: Ops) -> None:
    """An application-scoped principal of beta: acme's group is absent whichever application
    it names, and its own list is empty."""
    await _app(ops, "acme")
    await _app(ops, "beta")
    (claimed,) = await _claimed(ops, "acme", 1)
    await _complete(ops, recorded_outcome(claimed, 500, utcnow()))
    (group,) = await _pass(ops, FailureGrouper())
    beta = await applications.resolve(ops.ops, SYSTEM, "beta")
    as_beta = Principal(token_id="tok_beta", app_id=beta.id)
    for app_key in ("acme", "beta"):
        for action in (
            failure_groups.get,
            failure_groups.acknowledge,
            failure_groups.resolve,
            failure_groups.replay,
            failure_groups.replay_count,
        ):
            with pytest.raises(NotFound):
                await action(ops.ops, as_beta, app_key, group.id)
    own = await failure_groups.list_for_application(
        ops.ops, as_beta, "beta", ListQuery(), GroupFilter()
    )
    assert own.data == []
    after = await ops.store.failure_group(group.id)
    assert after == group


class Opened:
    events: frozenset[type[Event]] = frozenset({FailureGroupOpened})

    def __init__(self) -> None:
        self.groups: list[FailureGroup] = []

    def __call__(self, event: Event) -> None:
        assert isinstance(event, FailureGroupOpened)
        self.groups.append(event.group)


async def test_a_group_is_told_once_when_it_opens_and_again_when_it_reopens(
    ops: Ops, tmp_path: Path
) -> None:
    """The pass that opens a group emits ``FailureGroupOpened`` (an operational webhook
    ``hookline.failure_group.opened`` and the metric follow); a failure added to the open
    group tells nothing; after a resolve, the failure that reopens it is told again."""
    await _app(ops, "acme")
    await operational_webhooks.create(ops.ops, SYSTEM, EndpointFields(url="https://ops.example/h"))
    opened, publisher = Opened(), OperationalPublisher()
    (tmp_path / "metrics").mkdir()
    metrics = MetricsHook(str(tmp_path / "metrics"), "test")
    ops.ops.instrumentation = Instrumentation([opened, publisher, metrics])
    claimed = await _claimed(ops, "acme", 4)
    grouper = FailureGrouper()
    await _complete(ops, *(recorded_outcome(c, 503, utcnow()) for c in claimed[:2]))
    (group,) = await _pass(ops, grouper)
    await _complete(ops, recorded_outcome(claimed[2], 503, utcnow()))
    await _pass(ops, grouper)
    assert [(g.id, g.reopened, g.attempts) for g in opened.groups] == [(group.id, 0, 2)]
    await failure_groups.resolve(ops.ops, SYSTEM, "acme", group.id)
    await _complete(ops, recorded_outcome(claimed[3], 503, utcnow()))
    await _pass(ops, grouper)
    assert [(g.id, g.reopened) for g in opened.groups] == [(group.id, 0), (group.id, 1)]

    assert await publisher.flush(ops.ops) == 2
    page = await ops.store.list_messages(OPERATIONAL_APP_ID, ListQuery(), MessageFilter())
    webhooks = [orjson.loads(m.payload or b"{}") for m in page.data]
    assert {w["type"] for w in webhooks} == {"hookline.failure_group.opened"}
    data = sorted((w["data"] for w in webhooks), key=lambda d: d["reopened"])
    assert (data[0]["failureGroupId"], data[0]["appUid"], data[0]["statusCode"]) == (
        group.id,
        "acme",
        503,
    )
    assert (data[0]["outcome"], data[0]["attempts"], data[1]["reopened"]) == ("5xx", 2, 1)
    assert "sample" not in data[0]
    exposition = metrics.exposition().decode()
    assert 'hookline_failure_groups_opened_total{outcome="5xx"} 2.0' in exposition
