"""Auto-disable and the operational publisher over each backend's store, on a driven clock
(SQLite always, PostgreSQL when ``HOOKLINE_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta

import orjson

from hookline.delivery.auto_disable import check_failing
from hookline.domain.models import Application, Endpoint
from hookline.domain.operational import OPERATIONAL_APP_ID, FailureStep
from hookline.instrumentation import (
    AttemptMilestone,
    BackgroundTaskFinished,
    BreakerClosed,
    BreakerOpened,
    EndpointCreated,
    EndpointDisabled,
    EndpointFailing,
    Event,
    Instrumentation,
)
from hookline.operations import endpoints, operational_webhooks
from hookline.operations.endpoints import EndpointFields
from hookline.operations.operational_webhooks import OperationalPublisher
from hookline.operations.principal import SYSTEM
from hookline.storage.base import EndpointFailure, ListQuery, MessageFilter
from tests.conftest import make_app, make_endpoint, utcnow
from tests.integration.conftest import Ops

PERIOD = timedelta(days=5)


@dataclass
class Heard:
    events: frozenset[type[Event]] = frozenset({EndpointDisabled, EndpointFailing})
    seen: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event)


async def _failing_endpoint(ops: Ops) -> tuple[Application, Endpoint]:
    app = make_app(uid="acme")
    await ops.store.create_application(app)
    endpoint = make_endpoint(app, uid="down")
    await ops.store.create_endpoint(endpoint)
    return app, endpoint


async def test_a_failing_endpoint_is_warned_twice_then_disabled_once(ops: Ops) -> None:
    """Checks at 40 %, 50 %, 60 %, 80 %, 100 % and 120 % of the period warn at 50 % and 80 %
    and disable at 100 %, each once; the endpoint reads disabled and healthy afterwards."""
    heard = Heard()
    ops.ops.instrumentation = Instrumentation([heard])
    app, endpoint = await _failing_endpoint(ops)
    start = utcnow().replace(microsecond=0)
    await ops.store.mark_endpoints_failing([endpoint.id], start)

    async def disable(failure: EndpointFailure) -> object:
        return await endpoints.disable_failing(ops.ops, failure)

    steps = []
    for share in (0.4, 0.5, 0.6, 0.8, 1.0, 1.2):
        steps += await check_failing(
            ops.store, start + PERIOD * share, PERIOD, disable, ops.ops.instrumentation
        )
    assert [s for _, s in steps] == [
        FailureStep.WARNED_HALF,
        FailureStep.WARNED_LATE,
        FailureStep.DISABLED,
    ]
    warnings = [e for e in heard.seen if isinstance(e, EndpointFailing)]
    assert [(w.endpoint_id, w.fail_since, w.disable_at) for w in warnings] == [
        (endpoint.id, start, start + PERIOD)
    ] * 2
    (disabled,) = [e for e in heard.seen if isinstance(e, EndpointDisabled)]
    assert (disabled.trigger, disabled.fail_since, disabled.endpoint_uid) == (
        "automatic",
        start,
        "down",
    )
    stored = await ops.store.get_endpoint(app.id, endpoint.id)
    assert stored is not None and stored.disabled and stored.failing_since is None
    assert stored.version == endpoint.version + 1


async def test_several_checkers_at_once_disable_an_endpoint_once(ops: Ops) -> None:
    """Four processes checking at the same moment: one disable, one announcement."""
    heard = Heard()
    ops.ops.instrumentation = Instrumentation([heard])
    _, endpoint = await _failing_endpoint(ops)
    start = utcnow().replace(microsecond=0)
    await ops.store.mark_endpoints_failing([endpoint.id], start)

    async def disable(failure: EndpointFailure) -> object:
        return await endpoints.disable_failing(ops.ops, failure)

    taken = await asyncio.gather(
        *(check_failing(ops.store, start + PERIOD, PERIOD, disable) for _ in range(4))
    )
    assert sorted(len(t) for t in taken) == [0, 0, 0, 1]
    assert len([e for e in heard.seen if isinstance(e, EndpointDisabled)]) == 1


async def test_the_disable_keeps_a_change_made_since_the_endpoint_was_read(ops: Ops) -> None:
    """The disable is a versioned update: a description written after the check read the
    endpoint survives, and the endpoint ends disabled."""
    app, endpoint = await _failing_endpoint(ops)
    start = utcnow().replace(microsecond=0)
    await ops.store.mark_endpoints_failing([endpoint.id], start)
    (failure,) = await ops.store.failing_endpoints(start)
    current = await ops.store.get_endpoint(app.id, endpoint.id)
    assert current is not None
    await ops.store.update_endpoint(replace(current, description="changed meanwhile"))
    assert await endpoints.disable_failing(ops.ops, failure) is not None
    stored = await ops.store.get_endpoint(app.id, endpoint.id)
    assert stored is not None and stored.disabled and stored.description == "changed meanwhile"


async def test_a_success_before_the_deadline_starts_over(ops: Ops) -> None:
    """An endpoint that succeeded (its failing period ended) is not disabled at the old
    deadline, and a new period is measured from its new first failure."""
    _, endpoint = await _failing_endpoint(ops)
    start = utcnow().replace(microsecond=0)
    await ops.store.mark_endpoints_failing([endpoint.id], start)
    await ops.store.mark_endpoints_healthy([endpoint.id])
    later = start + PERIOD * 0.9
    await ops.store.mark_endpoints_failing([endpoint.id], later)

    async def refuse(failure: EndpointFailure) -> object:
        raise AssertionError("must not disable")

    assert await check_failing(ops.store, start + PERIOD, PERIOD, refuse) == []


def _milestone(app_id: str, endpoint_id: str, number: int, kind: str) -> AttemptMilestone:
    return AttemptMilestone(
        kind=kind,
        app_id=app_id,
        msg_id="msg_1",
        msg_event_id="order-42" if number == 4 else None,
        endpoint_id=endpoint_id,
        attempt_id=f"atmpt_{number}",
        status_code=200 if kind == "message.attempt.recovered" else 503,
        started_at=utcnow().replace(microsecond=0),
    )


async def test_the_publisher_sends_svix_shaped_events_to_operational_endpoints_only(
    ops: Ops,
) -> None:
    """With an operational endpoint, attempt milestones, endpoint and background-task events
    become messages of the reserved application in Svix's shape; events about operational
    endpoints themselves make none."""
    publisher = OperationalPublisher()
    ops.ops.instrumentation = Instrumentation([publisher])
    assert await publisher.flush(ops.ops) == 0
    await operational_webhooks.create(
        ops.ops, SYSTEM, EndpointFields(url="https://ops.example/hook")
    )
    app, endpoint = await _failing_endpoint(ops)
    publisher(EndpointCreated(app.id, endpoint.id, endpoint.uid))
    for number, kind in (
        (4, "message.attempt.failing"),
        (5, "message.attempt.recovered"),
        (3, "message.attempt.exhausted"),
    ):
        publisher(_milestone(app.id, endpoint.id, number, kind))
    publisher(BackgroundTaskFinished("qtask_1", app.id, "endpoint.replay", "finished", {"n": 2}))
    publisher(_milestone(OPERATIONAL_APP_ID, "ep_ops", 4, "message.attempt.failing"))
    publisher(EndpointCreated(OPERATIONAL_APP_ID, "ep_ops", None))
    assert await publisher.flush(ops.ops) == 5
    page = await ops.store.list_messages(OPERATIONAL_APP_ID, ListQuery(), MessageFilter())
    bodies = sorted((orjson.loads(m.payload or b"{}") for m in page.data), key=lambda b: b["type"])
    assert [b["type"] for b in bodies] == [
        "background_task.finished",
        "endpoint.created",
        "message.attempt.exhausted",
        "message.attempt.failing",
        "message.attempt.recovered",
    ]
    assert bodies[0]["data"] == {
        "taskId": "qtask_1",
        "task": "endpoint.replay",
        "status": "finished",
        "data": {"n": 2},
    }
    assert bodies[1]["data"] == {
        "appId": app.id,
        "appUid": "acme",
        "endpointId": endpoint.id,
        "endpointUid": "down",
    }
    failing = bodies[3]["data"]
    assert failing["msgId"] == "msg_1" and failing["endpointId"] == endpoint.id
    assert failing["msgEventId"] == "order-42"
    assert failing["lastAttempt"]["id"] == "atmpt_4"
    assert failing["lastAttempt"]["responseStatusCode"] == 503


async def test_a_circuit_opening_and_closing_are_published_but_not_its_reopenings(
    ops: Ops,
) -> None:
    """A breaker's first opening and its closing become ``endpoint.circuit.opened`` (with the
    rule, the counts and the probe time) and ``endpoint.circuit.closed``; a re-opening after
    a failed probe, the same outage, makes no webhook."""
    publisher = OperationalPublisher()
    await operational_webhooks.create(
        ops.ops, SYSTEM, EndpointFields(url="https://ops.example/hook")
    )
    app, endpoint = await _failing_endpoint(ops)
    probe_at = utcnow().replace(microsecond=0) + timedelta(seconds=30)
    opened = BreakerOpened(
        endpoint.id,
        20,
        30.0,
        app_id=app.id,
        reason="failureRatio",
        failure_ratio=0.95,
        endpoint_uid=endpoint.uid,
        probe_at=probe_at,
    )
    publisher(opened)
    publisher(replace(opened, reopened=True))
    publisher(BreakerClosed(endpoint.id, app_id=app.id, endpoint_uid=endpoint.uid))
    assert await publisher.flush(ops.ops) == 2
    page = await ops.store.list_messages(OPERATIONAL_APP_ID, ListQuery(), MessageFilter())
    bodies = {b["type"]: b["data"] for b in (orjson.loads(m.payload or b"{}") for m in page.data)}
    names = {"appId": app.id, "appUid": "acme", "endpointId": endpoint.id, "endpointUid": "down"}
    assert bodies == {
        "endpoint.circuit.opened": names
        | {
            "reason": "failureRatio",
            "consecutiveFailures": 20,
            "failureRatio": 0.95,
            "probeAt": probe_at.isoformat().replace("+00:00", "Z"),
        },
        "endpoint.circuit.closed": names,
    }


async def test_without_an_operational_endpoint_nothing_is_published(ops: Ops) -> None:
    """Events heard while no operational endpoint exists write no message at all."""
    publisher = OperationalPublisher()
    app, endpoint = await _failing_endpoint(ops)
    publisher(_milestone(app.id, endpoint.id, 4, "message.attempt.failing"))
    assert await publisher.flush(ops.ops) == 0
    assert await ops.store.get_application(OPERATIONAL_APP_ID) is None


async def test_enabling_an_endpoint_again_forgets_its_old_failing_period(ops: Ops) -> None:
    """An endpoint disabled and enabled by updates starts healthy, so an old failing period
    does not disable it again at the next check."""
    app, endpoint = await _failing_endpoint(ops)
    await ops.store.mark_endpoints_failing([endpoint.id], utcnow() - PERIOD * 2)
    for disabled in (True, False):
        patch = endpoints.EndpointPatch(disabled=disabled)
        await endpoints.patch(ops.ops, SYSTEM, app.id, endpoint.id, patch)
    stored = await ops.store.get_endpoint(app.id, endpoint.id)
    assert stored is not None and not stored.disabled and stored.failing_since is None
