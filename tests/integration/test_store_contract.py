"""The storage contract: every backend must pass these (see storage/base.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from hookline.domain import admission, ids, ratelimit
from hookline.domain.admission import EndpointLimits
from hookline.domain.breaker import CircuitState, ProbeGrant, Reason
from hookline.domain.endpoint_auth import (
    BasicAuth,
    EndpointAuth,
    MutualTls,
    OAuthClient,
    OAuthMethod,
)
from hookline.domain.errors import Conflict, Unavailable
from hookline.domain.models import (
    Application,
    Attempt,
    AttemptTrigger,
    ClaimedDelivery,
    Endpoint,
    Message,
    MessageStatus,
    SigningKey,
)
from hookline.domain.policy import (
    ApplicationPolicy,
    EndpointPolicy,
    FallbackPolicy,
    OnExhausted,
    OrderingPolicy,
    RetryPolicy,
)
from hookline.domain.ratelimit import SlotRequest
from hookline.domain.signing import generate_secret
from hookline.storage.base import (
    AttemptFilter,
    AttemptOutcome,
    BacklogSample,
    Deferral,
    Diversion,
    FallbackDelivery,
    IdempotencyCompletion,
    LeaseOffer,
    ListQuery,
    MessageFilter,
    QueueHealth,
    Store,
)
from hookline.storage.parts import Claimer, Leased
from hookline.storage.repository import SqlRepository
from hookline.storage.rows import to_us as rows_to_us
from tests.conftest import (
    failed_outcome,
    make_app,
    make_endpoint,
    make_event_type,
    make_message,
    make_store,
    utcnow,
)


async def test_application_is_found_by_id_and_by_uid(store: Store) -> None:
    """An application can be read back by its generated id and by its uid."""
    app = make_app(uid="acme")
    await store.create_application(app)
    assert await store.get_application(app.id) == app
    assert await store.get_application("acme") == app
    assert await store.get_application("nope") is None


async def test_duplicate_application_uid_is_a_conflict(store: Store) -> None:
    """Two applications cannot share a uid, and the second is not stored."""
    await store.create_application(make_app(uid="same"))
    with pytest.raises(Conflict):
        await store.create_application(make_app(uid="same"))
    page = await store.list_applications(ListQuery())
    assert len(page.data) == 1


async def test_list_pages_forward_and_back_without_gaps(store: Store) -> None:
    """Cursor pages cover every item once, and prevIterator returns to the previous page."""
    created = [make_app(name=f"a{i}") for i in range(7)]
    for app in created:
        await store.create_application(app)
    first = await store.list_applications(ListQuery(limit=3))
    second = await store.list_applications(ListQuery(limit=3, iterator=first.iterator))
    third = await store.list_applications(ListQuery(limit=3, iterator=second.iterator))
    assert [a.id for a in first.data + second.data + third.data] == [a.id for a in created]
    assert (first.done, second.done, third.done) == (False, False, True)
    back = await store.list_applications(ListQuery(limit=3, iterator=second.prev_iterator))
    assert [a.id for a in back.data] == [a.id for a in first.data]


async def test_descending_list_returns_newest_first(store: Store) -> None:
    """Descending order lists the most recently created items first."""
    created = [make_app(name=f"a{i}") for i in range(3)]
    for app in created:
        await store.create_application(app)
    page = await store.list_applications(ListQuery(descending=True))
    assert [a.id for a in page.data] == [a.id for a in reversed(created)]


async def test_deleting_an_application_removes_its_endpoints_and_messages(store: Store) -> None:
    """Deleting an application leaves nothing of it behind."""
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app)
    await store.create_endpoint(ep)
    msg = make_message(app)
    await store.publish([msg], utcnow())
    await store.delete_application(app.id)
    assert await store.get_application(app.id) is None
    assert await store.get_endpoint(app.id, ep.id) is None
    assert await store.get_message(app.id, msg.id) is None
    assert await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1") == []


async def test_event_types_conflict_archive_and_missing(store: Store) -> None:
    """Event type names are unique; archived ones hide unless asked; unknown ones are reported."""
    await store.create_event_type(make_event_type("user.created"))
    with pytest.raises(Conflict) as info:
        await store.create_event_type(make_event_type("user.created"))
    assert info.value.code == "event_type_exists"
    archived = replace(make_event_type("user.deleted"), archived=True)
    await store.create_event_type(archived)
    visible = await store.list_event_types(ListQuery(), include_archived=False)
    assert [e.name for e in visible.data] == ["user.created"]
    everything = await store.list_event_types(ListQuery(), include_archived=True)
    assert [e.name for e in everything.data] == ["user.created", "user.deleted"]
    assert await store.missing_event_types(["user.created", "x.y"]) == ["x.y"]


async def test_endpoint_round_trips_with_keys_headers_and_filters(store: Store) -> None:
    """Every endpoint field survives storage, and the endpoint is found by uid within its app."""
    app = make_app()
    await store.create_application(app)
    ep = replace(
        make_endpoint(app, event_types=("a.b",), channels=("eu",), uid="primary"),
        headers={"x-custom": "1"},
    )
    await store.create_endpoint(ep)
    assert await store.get_endpoint(app.id, ep.id) == ep
    assert await store.get_endpoint(app.id, "primary") == ep
    other = make_app()
    await store.create_application(other)
    assert await store.get_endpoint(other.id, ep.id) is None


async def test_endpoint_credentials_round_trip_through_every_read(store: Store) -> None:
    """An endpoint's authentication (Basic, OAuth, mTLS) survives create and a versioned
    update, reaches the worker with a claimed delivery, and clearing it stores none."""
    app = make_app()
    await store.create_application(app)
    oauth = OAuthClient(
        token_url="https://auth.example.com/token",
        client_id="hookline",
        client_secret="client-secret",
        method=OAuthMethod.CLIENT_SECRET_POST,
        scopes=("a", "b"),
        extra_params=(("audience", "x"),),
    )
    mtls = MutualTls(server_ca="-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
    ep = replace(make_endpoint(app), auth=EndpointAuth(basic=BasicAuth("user", "password")))
    await store.create_endpoint(ep)
    assert await store.get_endpoint(app.id, ep.id) == ep
    changed = replace(ep, auth=EndpointAuth(oauth=oauth, mtls=mtls))
    stored = await store.update_endpoint(changed)
    assert stored is not None and stored.auth == changed.auth
    assert (await store.list_endpoints(app.id, ListQuery())).data[0].auth == changed.auth
    await store.publish([make_message(app)], utcnow())
    now = utcnow()
    (claimed,) = await store.claim_due(1, now, now + timedelta(seconds=30), "w1")
    assert claimed.endpoint.auth == changed.auth
    cleared = await store.update_endpoint(replace(stored, auth=None))
    assert cleared is not None
    found = await store.get_endpoint(app.id, ep.id)
    assert found is not None and found.auth is None


async def test_publish_routes_by_event_type_channel_and_disabled(store: Store) -> None:
    """Only enabled endpoints whose event-type and channel filters match get a delivery."""
    app = make_app()
    await store.create_application(app)
    everything = make_endpoint(app)
    typed = make_endpoint(app, event_types=("user.created",))
    other_type = make_endpoint(app, event_types=("invoice.paid",))
    eu_only = make_endpoint(app, channels=("eu",))
    disabled = make_endpoint(app, disabled=True)
    for ep in (everything, typed, other_type, eu_only, disabled):
        await store.create_endpoint(ep)
    routed = await store.publish(
        [make_message(app, "user.created"), make_message(app, "user.created", channels=("eu",))],
        utcnow(),
    )
    assert set(routed[0]) == {everything.id, typed.id}
    assert set(routed[1]) == {everything.id, typed.id, eu_only.id}


async def test_a_messages_trace_context_rides_the_batch_write_into_every_read(
    store: Store,
) -> None:
    """``trace_context`` is written by the group commit (SQLite's one statement,
    PostgreSQL's arrays) beside messages without one, and read back by a claim and a get."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    context = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 rojo=00f067aa0ba902b7"
    traced = dataclasses.replace(make_message(app), trace_context=context)
    plain = make_message(app)
    await store.publish([traced, plain], utcnow())
    now = utcnow()
    claimed = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    by_id = {c.message.id: c.message.trace_context for c in claimed}
    assert by_id == {traced.id: context, plain.id: None}
    got = await store.get_message(app.id, traced.id)
    assert got is not None and got.trace_context == context


async def test_count_endpoints_counts_one_application_only(store: Store) -> None:
    """The endpoints-per-application cap reads this count: the application's own, deleted
    ones gone, another application's never included."""
    app, other = make_app(), make_app()
    await store.create_application(app)
    await store.create_application(other)
    assert await store.count_endpoints(app.id) == 0
    first, second = make_endpoint(app), make_endpoint(app)
    await store.create_endpoint(first)
    await store.create_endpoint(second)
    await store.create_endpoint(make_endpoint(other))
    assert await store.count_endpoints(app.id) == 2
    await store.delete_endpoint(app.id, first.id)
    assert await store.count_endpoints(app.id) == 1


async def test_each_publish_routes_by_the_endpoints_as_they_are_now(store: Store) -> None:
    """Endpoints created, changed, disabled by an outcome or deleted between two publishes
    route the second one as they are then (SQLite routes against endpoints it read before
    its write lock, and must notice every change); a handed-over delivery carries the
    endpoint as changed."""
    handoff = RecordingHandoff(slots=100)
    store.attach_handoff(handoff)
    app = make_app()
    await store.create_application(app)
    first = make_endpoint(app)
    await store.create_endpoint(first)

    async def routed_to() -> set[str]:
        (routed,) = await store.publish([make_message(app, "user.created")], utcnow())
        return set(routed)

    assert await routed_to() == {first.id}
    second = make_endpoint(app)
    await store.create_endpoint(second)
    assert await routed_to() == {first.id, second.id}
    moved = await store.update_endpoint(
        replace(first, url="https://example.com/moved", keys=(SigningKey(generate_secret()),))
    )
    assert moved is not None
    handoff.accepted.clear()
    assert await routed_to() == {first.id, second.id}
    (handed,) = [c.endpoint for c in handoff.claimed if c.endpoint.id == first.id]
    assert (handed.url, handed.keys) == (moved.url, moved.keys)
    assert await store.update_endpoint(replace(moved, event_types=("invoice.paid",)))
    assert await routed_to() == {second.id}
    (gone,) = [c for c in handoff.claimed if c.endpoint.id == second.id][-1:]
    await store.complete(
        [replace(_outcome(gone, MessageStatus.FAIL, 410, None), disable_endpoint=True)]
    )
    assert await routed_to() == set()
    disabled = await store.get_endpoint(app.id, second.id)
    assert disabled is not None
    assert await store.update_endpoint(replace(disabled, disabled=False))
    assert await routed_to() == {second.id}
    await store.delete_endpoint(app.id, second.id)
    assert await routed_to() == set()


async def test_an_endpoint_changed_by_another_process_routes_the_next_publish(
    store: Store, store_location: tuple[str, str]
) -> None:
    """Another store on the same database (another ``serve`` process) adds and deletes an
    endpoint between two publishes here: each publish sees the change."""
    app = make_app()
    await store.create_application(app)
    first = make_endpoint(app)
    await store.create_endpoint(first)
    assert await store.publish([make_message(app)], utcnow()) == [[first.id]]
    other = make_store(store_location)
    await other.open()
    try:
        second = make_endpoint(app)
        await other.create_endpoint(second)
        (routed,) = await store.publish([make_message(app)], utcnow())
        assert set(routed) == {first.id, second.id}
        await other.delete_endpoint(app.id, first.id)
        assert await store.publish([make_message(app)], utcnow()) == [[second.id]]
    finally:
        await other.close()


async def test_duplicate_event_id_rolls_back_the_whole_publish(store: Store) -> None:
    """A repeated eventId is a conflict and leaves no message or delivery behind."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app, event_id="evt-1")], utcnow())
    duplicate = make_message(app, event_id="evt-1")
    with pytest.raises(Conflict):
        await store.publish([duplicate], utcnow())
    assert await store.get_message(app.id, duplicate.id) is None
    assert (await store.get_message(app.id, "evt-1")) is not None
    claimed = await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    assert len(claimed) == 1


async def _setup_deliveries(
    store: Store, count: int
) -> tuple[Application, Endpoint, list[Message]]:
    """An application with one endpoint and ``count`` messages published to it."""
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app)
    await store.create_endpoint(ep)
    msgs = [make_message(app) for _ in range(count)]
    await store.publish(msgs, utcnow())
    return app, ep, msgs


async def _setup_one_delivery(store: Store) -> tuple[str, str]:
    _, ep, (msg,) = await _setup_deliveries(store, 1)
    return msg.id, ep.id


def _outcome(
    claimed: ClaimedDelivery, status: MessageStatus, code: int, next_at_seconds: float | None
) -> AttemptOutcome:
    now = utcnow()
    attempt = Attempt(
        id=ids.new_id(ids.ATTEMPT),
        app_id=claimed.endpoint.app_id,
        msg_id=claimed.message.id,
        endpoint_id=claimed.endpoint.id,
        url=claimed.endpoint.url,
        status=MessageStatus.SUCCESS if code == 200 else MessageStatus.FAIL,
        response_status_code=code,
        response="body",
        response_duration_ms=3,
        trigger=claimed.trigger,
        timestamp=now,
    )
    next_at = None if next_at_seconds is None else now + timedelta(seconds=next_at_seconds)
    return AttemptOutcome(
        claimed=claimed,
        attempt=attempt,
        delivery_status=status,
        next_attempt_at=next_at,
        scheduled_attempts=claimed.attempt_count + 1,
        disable_endpoint=False,
    )


async def test_claim_leases_until_the_lease_runs_out(store: Store) -> None:
    """A claimed delivery is invisible to other claims until its lease expires."""
    msg_id, ep_id = await _setup_one_delivery(store)
    now = utcnow()
    first = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    assert [(c.message.id, c.endpoint.id) for c in first] == [(msg_id, ep_id)]
    assert await store.claim_due(10, now, now + timedelta(seconds=30), "w1") == []
    later = now + timedelta(seconds=31)
    again = await store.claim_due(10, later, later + timedelta(seconds=30), "w1")
    assert [c.delivery_id for c in again] == [first[0].delivery_id]
    assert again[0].lease_token != first[0].lease_token


async def test_complete_records_attempt_and_schedules_retry(store: Store) -> None:
    """A failed attempt is logged and the delivery becomes due again at its retry time."""
    msg_id, ep_id = await _setup_one_delivery(store)
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    await store.complete([_outcome(claimed, MessageStatus.PENDING, 500, 60)])
    delivery = await store.get_delivery(msg_id, ep_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempt_count) == (MessageStatus.PENDING, 1)
    assert await store.claim_due(10, utcnow(), utcnow(), "w1") == []
    due = utcnow() + timedelta(seconds=61)
    (retry,) = await store.claim_due(10, due, due + timedelta(seconds=30), "w1")
    assert retry.attempt_count == 1
    page = await store.list_attempts(claimed.endpoint.app_id, ListQuery(), AttemptFilter(), msg_id)
    assert [a.response_status_code for a in page.data] == [500]


async def test_stale_lease_records_attempt_but_not_state(store: Store) -> None:
    """An attempt finished after its lease was taken over is logged but cannot overwrite state."""
    msg_id, ep_id = await _setup_one_delivery(store)
    now = utcnow()
    (stale,) = await store.claim_due(10, now, now + timedelta(seconds=1), "w1")
    later = now + timedelta(seconds=2)
    (fresh,) = await store.claim_due(10, later, later + timedelta(seconds=30), "w1")
    await store.complete([_outcome(stale, MessageStatus.SUCCESS, 200, None)])
    delivery = await store.get_delivery(msg_id, ep_id)
    assert delivery is not None and delivery.status is MessageStatus.SENDING
    await store.complete([_outcome(fresh, MessageStatus.SUCCESS, 200, None)])
    delivery = await store.get_delivery(msg_id, ep_id)
    assert delivery is not None and delivery.status is MessageStatus.SUCCESS
    page = await store.list_attempts(fresh.endpoint.app_id, ListQuery(), AttemptFilter(), msg_id)
    assert len(page.data) == 2


async def test_one_complete_call_writes_each_outcome_of_a_mixed_batch(store: Store) -> None:
    """A batch of a success, a retry and a failure, one with a lost lease: each delivery gets
    its own state (the lost one keeps its new holder's), and every attempt is logged."""
    app, ep, msgs = await _setup_deliveries(store, 4)
    now = utcnow()
    claimed = await store.claim_due(10, now, now + timedelta(seconds=1), "w1")
    by_msg = {c.message.id: c for c in claimed}
    ok, retry, failed, lost = (by_msg[m.id] for m in msgs)
    later = now + timedelta(seconds=2)
    taken = await store.claim_due(10, later, later + timedelta(seconds=30), "w2")
    assert {c.message.id for c in taken} == {m.id for m in msgs}
    by_msg = {c.message.id: c for c in taken}
    ok, retry, failed = by_msg[ok.message.id], by_msg[retry.message.id], by_msg[failed.message.id]
    await store.complete(
        [
            _outcome(ok, MessageStatus.SUCCESS, 200, None),
            _outcome(retry, MessageStatus.PENDING, 503, 60),
            _outcome(failed, MessageStatus.FAIL, 400, None),
            _outcome(lost, MessageStatus.SUCCESS, 200, None),
        ]
    )
    states = {}
    for m in msgs:
        delivery = await store.get_delivery(m.id, ep.id)
        assert delivery is not None
        states[m.id] = (delivery.status, delivery.attempt_count)
    assert states == {
        msgs[0].id: (MessageStatus.SUCCESS, 1),
        msgs[1].id: (MessageStatus.PENDING, 1),
        msgs[2].id: (MessageStatus.FAIL, 1),
        msgs[3].id: (MessageStatus.SENDING, 0),
    }
    codes = []
    for m in msgs:
        page = await store.list_attempts(app.id, ListQuery(), AttemptFilter(), m.id)
        codes += [a.response_status_code for a in page.data]
    assert sorted(codes) == [200, 200, 400, 503]


async def test_attempts_recorded_together_read_back_field_for_field(store: Store) -> None:
    """Attempts written in one call, with multi-byte response bodies and URLs, an empty body
    and a repeated one beside them, read back exactly as written, and each finishes its own
    delivery."""
    app, ep, _ = await _setup_deliveries(store, 4)
    now = utcnow()
    claimed = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    outcomes = [
        _outcome(c, MessageStatus.PENDING, code, 90)
        for c, code in zip(claimed, (503, 0, 429, 503), strict=True)
    ]
    texts = [("é ✓ done", "/π?q=ü"), ("", ""), ("x" * 5000, "/long"), ("é ✓ done", "/π?q=ü")]
    for (i, outcome), (response, suffix) in zip(enumerate(outcomes), texts, strict=True):
        attempt = dataclasses.replace(
            outcome.attempt,
            response=response,
            url=outcome.attempt.url + suffix,
            response_duration_ms=1234567 * i,
        )
        outcomes[i] = dataclasses.replace(outcome, attempt=attempt)
    await store.complete(outcomes)
    for outcome in outcomes:
        msg_id = outcome.claimed.message.id
        page = await store.list_attempts(app.id, ListQuery(), AttemptFilter(), msg_id)
        assert page.data == [outcome.attempt]
        delivery = await store.get_delivery(msg_id, ep.id)
        assert delivery is not None
        assert (delivery.status, delivery.attempt_count) == (MessageStatus.PENDING, 1)
        assert delivery.next_attempt_at == outcome.next_attempt_at


async def test_resend_requeues_as_manual(store: Store) -> None:
    """Resend queues a manual attempt of a delivery that succeeded."""
    msg_id, ep_id = await _setup_one_delivery(store)
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    await store.complete([_outcome(claimed, MessageStatus.SUCCESS, 200, None)])
    await store.resend(claimed.endpoint.app_id, msg_id, ep_id, utcnow())
    (resent,) = await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    assert resent.trigger is AttemptTrigger.MANUAL


async def test_attempt_filters_and_endpoint_views(store: Store) -> None:
    """Attempts filter by status and status-code class; endpoint and message views join status."""
    msg_id, ep_id = await _setup_one_delivery(store)
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    await store.complete([_outcome(claimed, MessageStatus.PENDING, 503, 0)])
    (again,) = await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    await store.complete([_outcome(again, MessageStatus.SUCCESS, 200, None)])
    app_id = claimed.endpoint.app_id
    ok = await store.list_attempts(
        app_id, ListQuery(), AttemptFilter(status_code_class=200, endpoint_id=ep_id), None
    )
    failed = await store.list_attempts(
        app_id, ListQuery(), AttemptFilter(status=MessageStatus.FAIL), None
    )
    assert [a.response_status_code for a in ok.data] == [200]
    assert [a.response_status_code for a in failed.data] == [503]
    msgs = await store.list_attempted_messages(app_id, ep_id, ListQuery(), MessageFilter())
    assert [(m.id, d.status) for m, d in msgs.data] == [(msg_id, MessageStatus.SUCCESS)]
    dests = await store.list_attempted_destinations(app_id, msg_id, ListQuery())
    assert [(e.id, d.status) for e, d in dests.data] == [(ep_id, MessageStatus.SUCCESS)]
    stats = await store.endpoint_stats(app_id, ep_id)
    assert (stats.success, stats.pending, stats.fail) == (1, 0, 0)


async def test_message_filters_by_type_channel_and_time(store: Store) -> None:
    """Messages list by event type, by channel and by creation time."""
    app = make_app()
    await store.create_application(app)
    a = make_message(app, "a.x", channels=("eu",))
    b = make_message(app, "b.x")
    await store.publish([a, b], utcnow())
    by_type = await store.list_messages(app.id, ListQuery(), MessageFilter(event_types=("b.x",)))
    by_channel = await store.list_messages(app.id, ListQuery(), MessageFilter(channel="eu"))
    future = await store.list_messages(
        app.id, ListQuery(), MessageFilter(after=utcnow() + timedelta(seconds=5))
    )
    assert [m.id for m in by_type.data] == [b.id]
    assert [m.id for m in by_channel.data] == [a.id]
    assert future.data == []


async def test_expunge_removes_payload_only(store: Store) -> None:
    """Expunging keeps the message record but drops its payload."""
    app = make_app()
    await store.create_application(app)
    msg = make_message(app)
    await store.publish([msg], utcnow())
    await store.expunge_message_content(app.id, msg.id)
    stored = await store.get_message(app.id, msg.id)
    assert stored is not None and stored.payload is None and stored.event_type == msg.event_type


async def test_idempotency_key_reserve_replay_and_abandon(store: Store) -> None:
    """A key is reserved once; later uses see the first request's hash and response."""
    now = utcnow()
    assert await store.idempotency_begin("admin", "k1", "h1", now) is None
    pending = await store.idempotency_begin("admin", "k1", "h1", now)
    assert pending is not None and not pending.completed
    await store.idempotency_finish("admin", "k1", 202, b"body")
    done = await store.idempotency_begin("admin", "k1", "h2", now)
    assert done is not None and (done.request_hash, done.status, done.body) == ("h1", 202, b"body")
    assert await store.idempotency_begin("app_x", "k1", "h1", now) is None
    await store.idempotency_abandon("app_x", "k1")
    assert await store.idempotency_begin("app_x", "k1", "h1", now) is None


async def test_tokens_are_found_by_hash(store: Store) -> None:
    """Tokens are looked up by hash, and admin tokens are counted apart from scoped ones."""
    from hookline.domain.models import AccessToken

    assert await store.count_admin_tokens() == 0
    token = AccessToken(
        id=ids.new_id(ids.TOKEN),
        token_hash="abc",
        app_id=None,
        expires_at=None,
        created_at=utcnow(),
    )
    await store.create_token(token)
    assert await store.find_token("abc") == token
    assert await store.count_admin_tokens() == 1


async def test_tokens_are_listed_expired_touched_and_deleted(store: Store) -> None:
    """Every token operation the token layer needs, with the fields added for capabilities,
    sessions and configured admin tokens read back as written."""
    from datetime import timedelta

    from hookline.domain.capabilities import Capability
    from hookline.domain.models import AccessToken

    now = utcnow()
    app = make_app(uid="acme")
    await store.create_application(app)
    scoped = AccessToken(
        ids.new_id(ids.TOKEN),
        "h1:scoped",
        app.id,
        now + timedelta(days=7),
        now,
        name="portal",
        capabilities=frozenset({Capability.VIEW_BASE}),
        session_id="s1",
    )
    configured = AccessToken(ids.new_id(ids.TOKEN), "h1:conf", None, None, now, configured=True)
    for token in (scoped, configured):
        await store.create_token(token)
    assert await store.get_token(scoped.id) == scoped
    assert [t.id for t in await store.list_tokens(app.id)] == [scoped.id]
    assert {t.id for t in await store.list_tokens()} == {scoped.id, configured.id}
    assert await store.expire_token(scoped.id, now + timedelta(hours=1))
    assert not await store.expire_token(scoped.id, now + timedelta(days=1))
    await store.touch_token(scoped.id, now)
    moved = await store.find_token("h1:scoped")
    assert moved is not None and moved.expires_at == now + timedelta(hours=1)
    assert moved.last_used_at == now
    await store.mark_configured_token(scoped.id)
    assert await store.delete_configured_tokens("h1:conf", "h1:scoped") == 0
    assert await store.delete_configured_tokens("h1:other", "h1:scoped") == 1
    assert (await store.get_token(scoped.id)) is not None
    assert await store.delete_configured_tokens("h1:other", "legacy") == 1
    assert not await store.delete_token(scoped.id)
    assert await store.list_tokens() == []
    assert await store.server_key("k", "first", now) == "first"
    assert await store.server_key("k", "second", now) == "first"


async def test_a_tokens_networks_are_stored_read_back_and_replaced(store: Store) -> None:
    """A token's client networks, IPv4 and IPv6, read back in order through every lookup
    (by hash, by id, in a list); ``set_token_networks`` replaces them or clears them (None:
    any address), touching no other token, and is False for a token that does not exist."""
    from hookline.domain.models import AccessToken
    from hookline.domain.networks import parse_allowlist

    now = utcnow()
    networks = parse_allowlist(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
    limited = AccessToken(
        ids.new_id(ids.TOKEN), "h1:limited", None, None, now, allowed_networks=networks
    )
    other = AccessToken(ids.new_id(ids.TOKEN), "h1:other", None, None, now)
    for token in (limited, other):
        await store.create_token(token)
    assert await store.find_token("h1:limited") == limited
    assert await store.get_token(limited.id) == limited
    listed = {t.id: t.allowed_networks for t in await store.list_tokens()}
    assert listed == {limited.id: networks, other.id: None}
    narrower = parse_allowlist(["::1"])
    assert await store.set_token_networks(limited.id, narrower)
    assert (await store.get_token(limited.id)) == replace(limited, allowed_networks=narrower)
    assert await store.set_token_networks(other.id, networks)
    assert await store.set_token_networks(limited.id, None)
    found = {t.id: t.allowed_networks for t in await store.list_tokens()}
    assert found == {limited.id: None, other.id: networks}
    assert not await store.set_token_networks("tok_absent", narrower)


async def test_concurrent_claimers_never_share_a_delivery(
    store_location: tuple[str, str],
) -> None:
    """Four stores claiming from one database at once never receive the same delivery."""
    stores = [make_store(store_location) for _ in range(4)]
    for s in stores:
        await s.open()
    try:
        app = make_app()
        await stores[0].create_application(app)
        for _ in range(4):
            await stores[0].create_endpoint(make_endpoint(app))
        await stores[0].publish([make_message(app) for _ in range(250)], utcnow())

        async def drain(s: Store) -> list[str]:
            got: list[str] = []
            while True:
                now = utcnow()
                batch = await s.claim_due(7, now, now + timedelta(minutes=5), "w1")
                if not batch:
                    return got
                got += [c.delivery_id for c in batch]

        results = await asyncio.gather(*(drain(s) for s in stores))
        claimed = [d for r in results for d in r]
        assert len(claimed) == 1000
        assert len(set(claimed)) == 1000
    finally:
        for s in stores:
            await s.close()


async def test_dead_workers_deliveries_are_released_before_their_lease_ends(
    store: Store,
) -> None:
    """A worker whose heartbeat stopped loses its leases; a live worker keeps its own."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app), make_message(app)], utcnow())
    start = utcnow()
    await store.heartbeat("dead", start)
    await store.heartbeat("alive", start)
    long_lease = start + timedelta(hours=1)
    (dead_claim,) = await store.claim_due(1, start, long_lease, "dead")
    (alive_claim,) = await store.claim_due(1, start, long_lease, "alive")
    later = start + timedelta(seconds=30)
    await store.heartbeat("alive", later)
    await store.release_stalled(later - timedelta(seconds=20), later)
    retaken = await store.claim_due(10, later, later + timedelta(minutes=1), "rescuer")
    assert [c.delivery_id for c in retaken] == [dead_claim.delivery_id]
    await store.unregister_worker("alive")
    await store.release_stalled(later, later)
    assert await store.claim_due(10, later, later + timedelta(minutes=1), "rescuer") == []
    assert alive_claim.delivery_id != dead_claim.delivery_id


async def test_publish_completes_its_idempotency_key_in_the_same_transaction(
    store: Store,
) -> None:
    """A publish carrying a completion stores the replayable response with the message."""
    app = make_app()
    await store.create_application(app)
    assert await store.idempotency_begin("admin", "k", "hash", utcnow()) is None
    completion = IdempotencyCompletion("admin", "k", 202, b"stored response")
    await store.publish([make_message(app)], utcnow(), completion=completion)
    replay = await store.idempotency_begin("admin", "k", "hash", utcnow())
    assert replay is not None and (replay.status, replay.body) == (202, b"stored response")
    await store.idempotency_abandon("admin", "k")
    assert await store.idempotency_begin("admin", "k", "hash", utcnow()) is not None


async def test_concurrent_publishes_fail_alone_on_a_duplicate_event_id(store: Store) -> None:
    """Publishes committed together (group commit) succeed or fail each on their own."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app, event_id="taken")], utcnow())
    batch = [make_message(app, event_id=f"e{i}") for i in range(20)]
    batch[7] = make_message(app, event_id="taken")
    results = await asyncio.gather(
        *(store.publish([msg], utcnow()) for msg in batch), return_exceptions=True
    )
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [7]
    assert isinstance(results[7], Conflict)
    for i, msg in enumerate(batch):
        stored = await store.get_message(app.id, msg.id)
        assert (stored is None) == (i == 7)
    claimed = await store.claim_due(100, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    assert len(claimed) == 20


async def test_claims_skip_busy_endpoints_and_renewed_leases_hold(store: Store) -> None:
    """Claims leave out endpoints the worker reports busy; a renewed lease outlives its term."""
    app = make_app()
    await store.create_application(app)
    busy, free = make_endpoint(app), make_endpoint(app)
    await store.create_endpoint(busy)
    await store.create_endpoint(free)
    await store.publish([make_message(app)], utcnow())
    now = utcnow()
    claimed = await store.claim_due(10, now, now + timedelta(seconds=5), "w1", [busy.id])
    assert [c.endpoint.id for c in claimed] == [free.id]
    await store.renew_leases("w1", {claimed[0].lease_token}, now + timedelta(hours=1))
    later = now + timedelta(seconds=10)
    again = await store.claim_due(10, later, later + timedelta(seconds=5), "w2")
    assert [c.endpoint.id for c in again] == [busy.id]


async def test_a_heartbeat_renews_only_the_leases_it_names(store: Store) -> None:
    """Renewing by lease token leaves the worker's other leases (a claim it never heard
    back from) to run out, so a live worker cannot keep deliveries it is not working on."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app), make_message(app)], utcnow())
    now = utcnow()
    lease = now + timedelta(seconds=5)
    (held,) = await store.claim_due(1, now, lease, "w1")
    (forgotten,) = await store.claim_due(1, now, lease, "w1")
    await store.renew_leases("w1", {held.lease_token}, now + timedelta(hours=1))
    later = now + timedelta(seconds=10)
    again = await store.claim_due(10, later, later + timedelta(seconds=5), "w2")
    assert [c.delivery_id for c in again] == [forgotten.delivery_id]


@dataclass
class CommitThenFail:
    """A claimer whose claim commits but whose caller hears a dropped connection, once:
    the outcome of that claim is unknown to the worker."""

    real: Claimer
    failures: int = 1

    async def lease(self, params: dict[str, Any]) -> Leased:
        leased = await self.real.lease(params)
        if self.failures:
            self.failures -= 1
            raise Unavailable("database unavailable: connection was closed in the middle")
        return leased


async def test_a_claim_of_unknown_outcome_is_put_back_by_the_next_claim(
    store: Store,
) -> None:
    """Rows a claim leased before its connection dropped are released by the next claim of
    the same process, long before their lease would run out."""
    assert isinstance(store, SqlRepository)
    store._claimer = CommitThenFail(store._claimer)
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app) for _ in range(3)], utcnow())
    now = utcnow()
    with pytest.raises(Unavailable):
        await store.claim_due(10, now, now + timedelta(hours=1), "w1")
    claimed = await store.claim_due(10, now, now + timedelta(hours=1), "w1")
    assert len(claimed) == 3


async def test_a_heartbeat_puts_back_a_claim_of_unknown_outcome(store: Store) -> None:
    """A worker too busy to claim again still releases an unknown claim's rows on its next
    heartbeat (``release_stalled``)."""
    assert isinstance(store, SqlRepository)
    store._claimer = CommitThenFail(store._claimer)
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    message = make_message(app)
    await store.publish([message], utcnow())
    now = utcnow()
    with pytest.raises(Unavailable):
        await store.claim_due(10, now, now + timedelta(hours=1), "w1")
    leased = await store.get_delivery(message.id, endpoint.id)
    assert leased is not None and leased.next_attempt_at is not None
    assert leased.next_attempt_at > now + timedelta(minutes=30)
    await store.heartbeat("w1", now)
    await store.release_stalled(now - timedelta(seconds=20), now)
    released = await store.get_delivery(message.id, endpoint.id)
    assert released is not None and released.next_attempt_at is not None
    assert released.next_attempt_at <= now + timedelta(seconds=1)


async def test_endpoint_states_give_each_endpoints_version_and_disabled(store: Store) -> None:
    """A worker's heartbeat read: version and disabled of the endpoints named, if they exist."""
    app = make_app()
    await store.create_application(app)
    on, off = make_endpoint(app), make_endpoint(app)
    await store.create_endpoint(on)
    await store.create_endpoint(off)
    stored = await store.update_endpoint(replace(off, disabled=True))
    assert stored is not None
    states = await store.endpoint_states({on.id, off.id, "ep_missing"})
    assert states == {on.id: (on.version, False), off.id: (stored.version, True)}
    assert await store.endpoint_states(set()) == {}


async def test_claims_are_fair_across_endpoints(store: Store) -> None:
    """An endpoint with a long backlog cannot crowd out another: each offers per_endpoint."""
    app = make_app()
    await store.create_application(app)
    crowded = make_endpoint(app, event_types=None, channels=("crowded",))
    quiet = make_endpoint(app, event_types=None, channels=("quiet",))
    await store.create_endpoint(crowded)
    await store.create_endpoint(quiet)
    await store.publish([make_message(app, channels=("crowded",)) for _ in range(50)], utcnow())
    await store.publish([make_message(app, channels=("quiet",)) for _ in range(5)], utcnow())
    now = utcnow() + timedelta(seconds=1)
    claimed = await store.claim_due(10, now, now + timedelta(seconds=30), "w1", per_endpoint=4)
    by_endpoint = Counter(c.endpoint.id for c in claimed)
    assert by_endpoint == {crowded.id: 4, quiet.id: 4}


async def test_purge_drops_old_keys_and_tokens(store: Store) -> None:
    """Maintenance removes idempotency keys past their day and expired tokens."""
    from hookline.domain.models import AccessToken

    app = make_app()
    await store.create_application(app)
    now = utcnow()
    await store.idempotency_begin("admin", "old", "h", now - timedelta(days=2))
    await store.idempotency_begin("admin", "new", "h", now)
    old_token = AccessToken(
        id=ids.new_id(ids.TOKEN),
        token_hash="gone",
        app_id=app.id,
        expires_at=now - timedelta(seconds=1),
        created_at=now,
    )
    await store.create_token(old_token)
    await store.purge_expired(now, now - timedelta(days=1))
    assert await store.find_token("gone") is None
    assert await store.idempotency_begin("admin", "old", "h", now) is None
    assert await store.idempotency_begin("admin", "new", "h", now) is not None


async def test_expired_payloads_go_in_bounded_batches_soonest_first_and_messages_stay(
    store: Store,
) -> None:
    """Each call clears at most ``limit`` payloads past their expiry, the soonest expired
    first, and says how many; the messages stay, and a payload not yet expired is kept."""
    app = make_app()
    await store.create_application(app)
    now = utcnow()
    expired = [replace(make_message(app), expires_at=now - timedelta(minutes=m)) for m in (3, 1, 2)]
    kept = replace(make_message(app), expires_at=now + timedelta(days=1))
    await store.publish([*expired, kept], now)
    assert await store.expire_payloads(now, 2) == 2
    payloads = [(await store.get_message(app.id, m.id)) for m in expired]
    assert [p is not None and p.payload is None for p in payloads] == [True, False, True]
    assert await store.expire_payloads(now, 2) == 1
    assert await store.expire_payloads(now, 2) == 0
    for msg in expired:
        gone = await store.get_message(app.id, msg.id)
        assert gone is not None and gone.payload is None
    still = await store.get_message(app.id, kept.id)
    assert still is not None and still.payload == kept.payload


async def test_deleting_an_endpoint_removes_its_pending_deliveries(store: Store) -> None:
    """A deleted endpoint is gone and nothing more is claimed for it."""
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app)
    await store.create_endpoint(ep)
    await store.publish([make_message(app)], utcnow())
    await store.delete_endpoint(app.id, ep.id)
    assert await store.get_endpoint(app.id, ep.id) is None
    assert await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1") == []


@dataclass
class RecordingHandoff:
    """A stand-in for the local worker: offers fixed room and records what it is given."""

    slots: int
    send_cap: int = 16
    endpoint_load: dict[str, int] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()
    lease_seconds: float = 30.0
    accepted: list[tuple[LeaseOffer, list[ClaimedDelivery], set[str]]] = field(default_factory=list)

    def offer(self) -> LeaseOffer | None:
        slots = self.slots
        if slots <= 0:
            return None
        return LeaseOffer(
            worker_id="w-local",
            lease_token=ids.new_id("lease"),
            lease_until=utcnow() + timedelta(seconds=self.lease_seconds),
            slots=slots,
            admission=admission.snapshot(
                EndpointLimits(self.send_cap), self.endpoint_load, self.blocked, slots
            ),
        )

    def accept(
        self, offer: LeaseOffer, claimed: Sequence[ClaimedDelivery], left_for: Collection[str]
    ) -> None:
        self.accepted.append((offer, list(claimed), set(left_for)))

    @property
    def claimed(self) -> list[ClaimedDelivery]:
        return [item for _, items, _ in self.accepted for item in items]


async def test_publish_hands_deliveries_to_the_local_worker_already_leased(store: Store) -> None:
    """With room offered, a publish leases its deliveries to the local worker in the same
    transaction: the worker gets message and endpoint without a claim, other workers cannot
    claim them, and the outcome is recorded under the handed-over lease."""
    handoff = RecordingHandoff(slots=10)
    store.attach_handoff(handoff)
    app = make_app()
    await store.create_application(app)
    endpoints = [make_endpoint(app), make_endpoint(app)]
    for ep in endpoints:
        await store.create_endpoint(ep)
    msg = make_message(app, payload=b'{"n":1}')
    await store.publish([msg], utcnow())
    (offer, claimed, left_for), *_ = handoff.accepted
    assert left_for == set()
    assert sorted(c.endpoint.id for c in claimed) == sorted(ep.id for ep in endpoints)
    assert all(c.message == msg and c.lease_token == offer.lease_token for c in claimed)
    assert all(c.attempt_count == 0 and c.trigger is AttemptTrigger.SCHEDULED for c in claimed)
    assert await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w2") == []
    delivery = await store.get_delivery(msg.id, endpoints[0].id)
    assert delivery is not None and delivery.status is MessageStatus.SENDING
    await store.complete([_outcome(c, MessageStatus.SUCCESS, 200, None) for c in claimed])
    for ep in endpoints:
        done = await store.get_delivery(msg.id, ep.id)
        assert done is not None and done.status is MessageStatus.SUCCESS


async def test_handoff_stays_within_the_offered_slots_and_the_endpoint_cap(store: Store) -> None:
    """Deliveries beyond the offered slots or the endpoint's room (its hold cap less what the
    worker holds) are written pending, counted as left over, and any worker can claim them."""
    app = make_app()
    await store.create_application(app)
    busy, free = make_endpoint(app), make_endpoint(app)
    for ep in (busy, free):
        await store.create_endpoint(ep)
    handoff = RecordingHandoff(slots=3, send_cap=1, endpoint_load={busy.id: 1})
    store.attach_handoff(handoff)
    await store.publish([make_message(app) for _ in range(3)], utcnow())
    (_, claimed, left_for), *_ = handoff.accepted
    assert Counter(c.endpoint.id for c in claimed) == {busy.id: 1, free.id: 2}
    assert left_for == {busy.id, free.id}
    later = await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w2")
    assert Counter(c.endpoint.id for c in later) == {busy.id: 2, free.id: 1}


async def test_handoff_takes_nothing_for_an_endpoint_whose_breaker_blocks(store: Store) -> None:
    """An endpoint the offer's admission blocks gets all its deliveries written pending, while
    another endpoint of the same publish is handed over."""
    app = make_app()
    await store.create_application(app)
    down, up = make_endpoint(app), make_endpoint(app)
    for ep in (down, up):
        await store.create_endpoint(ep)
    handoff = RecordingHandoff(slots=10, blocked=frozenset({down.id}))
    store.attach_handoff(handoff)
    await store.publish([make_message(app) for _ in range(2)], utcnow())
    (_, claimed, left_for), *_ = handoff.accepted
    assert Counter(c.endpoint.id for c in claimed) == {up.id: 2}
    assert left_for == {down.id}


async def test_a_conflicting_publish_hands_nothing_over(store: Store) -> None:
    """A publish refused for a repeated eventId hands no delivery to the worker, while a
    publish committed beside it (the same group commit on SQLite) still does."""
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app)
    await store.create_endpoint(ep)
    await store.publish([make_message(app, event_id="evt-1")], utcnow())
    handoff = RecordingHandoff(slots=10)
    store.attach_handoff(handoff)
    fresh = make_message(app)
    results = await asyncio.gather(
        store.publish([make_message(app, event_id="evt-1")], utcnow()),
        store.publish([fresh], utcnow()),
        return_exceptions=True,
    )
    assert isinstance(results[0], Conflict) and results[1] == [[ep.id]]
    assert [c.message.id for c in handoff.claimed] == [fresh.id]


async def test_a_handed_over_delivery_is_claimable_once_its_lease_runs_out(store: Store) -> None:
    """If the process that took a delivery dies before recording it, the lease runs out and
    any worker claims it again: handoff keeps at-least-once delivery."""
    handoff = RecordingHandoff(slots=10, lease_seconds=1)
    store.attach_handoff(handoff)
    msg_id, ep_id = await _setup_one_delivery(store)
    assert [c.message.id for c in handoff.claimed] == [msg_id]
    later = utcnow() + timedelta(seconds=2)
    (again,) = await store.claim_due(10, later, later + timedelta(seconds=30), "w2")
    assert (again.message.id, again.endpoint.id) == (msg_id, ep_id)


async def test_defer_gives_a_leased_delivery_back_unattempted(store: Store) -> None:
    """A deferred delivery is pending again, due at the given time, with no attempt recorded
    and its attempt count unchanged; a lease that was lost meanwhile defers nothing."""
    msg_id, ep_id = await _setup_one_delivery(store)
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    until = now + timedelta(seconds=60)
    await store.defer([Deferral(claimed, until)], now)
    delivery = await store.get_delivery(msg_id, ep_id)
    assert delivery is not None and delivery.status is MessageStatus.PENDING
    assert delivery.attempt_count == 0
    assert await store.claim_due(10, now, now + timedelta(seconds=30), "w1") == []
    due = until + timedelta(seconds=1)
    (again,) = await store.claim_due(10, due, due + timedelta(seconds=30), "w2")
    page = await store.list_attempts(claimed.endpoint.app_id, ListQuery(), AttemptFilter(), msg_id)
    assert page.data == []
    await store.defer([Deferral(claimed, until)], due)
    still = await store.get_delivery(msg_id, ep_id)
    assert still is not None and still.status is MessageStatus.SENDING
    assert again.lease_token != claimed.lease_token


async def test_messages_published_together_read_back_field_for_field(store: Store) -> None:
    """Messages of one publish, with and without event ids, channels, tags, an expiry and a
    payload (an expunged one has none), multi-byte event types among them, read back exactly
    as written."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    plain = make_message(app)
    full = dataclasses.replace(
        make_message(app, "ordre.créé ☃", channels=("c1", "ü"), event_id="evt-ü-1"),
        tags=("t1", "t2"),
        expires_at=utcnow() + timedelta(days=3),
    )
    same_type = make_message(app, "ordre.créé ☃", payload=b"")
    no_payload = dataclasses.replace(make_message(app), payload=None)
    messages = [plain, full, same_type, no_payload]
    await store.publish(messages, utcnow())
    for msg in messages:
        assert await store.get_message(app.id, msg.id) == msg


async def test_payload_bytes_are_stored_exactly_beside_others_in_one_commit(store: Store) -> None:
    """Payloads of one batch (empty, multi-byte UTF-8, escapes, large) come back byte for
    byte, each with its own message: SQLite carries a batch's payloads in one buffer."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    payloads = [
        b"{}",
        '{"name":"Ég ☃ 𝄞"}'.encode(),
        b'{"quote":"\\"\\\\\\n\\u0000"}',
        b'{"big":"' + b"z" * 100_000 + b'"}',
    ]
    messages = [make_message(app, payload=p) for p in payloads]
    await asyncio.gather(*(store.publish([m], utcnow()) for m in messages))
    for msg, payload in zip(messages, payloads, strict=True):
        stored = await store.get_message(app.id, msg.id)
        assert stored is not None and stored.payload == payload


# Optimistic concurrency: an update writes only the version it read (no lost updates).


async def test_a_stale_endpoint_update_is_refused_and_its_retry_keeps_both_changes(
    store: Store,
) -> None:
    """Of two writers that read an endpoint at one version, the first update wins and
    returns the endpoint as stored; the second returns None and writes nothing, and once it
    has read again and re-applied its change, the row holds both."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    a = await store.get_endpoint(app.id, endpoint.id)
    b = await store.get_endpoint(app.id, endpoint.id)
    assert a is not None and b is not None and a.version == b.version == 1
    written = await store.update_endpoint(replace(a, description="A", updated_at=utcnow()))
    assert written is not None and written.version == 2
    assert await store.get_endpoint(app.id, endpoint.id) == written
    assert await store.update_endpoint(replace(b, metadata={"by": "B"})) is None
    assert await store.get_endpoint(app.id, endpoint.id) == written
    fresh = await store.get_endpoint(app.id, endpoint.id)
    assert fresh is not None
    retried = await store.update_endpoint(replace(fresh, metadata={"by": "B"}))
    final = await store.get_endpoint(app.id, endpoint.id)
    assert final is not None and final == retried
    assert (final.description, final.metadata, final.version) == ("A", {"by": "B"}, 3)


async def test_an_update_read_before_the_worker_disabled_the_endpoint_cannot_enable_it(
    store: Store,
) -> None:
    """The worker's disable on 410 Gone moves the endpoint's version, so an update read
    before it returns None instead of writing the endpoint back enabled; re-read and
    re-applied, the change lands on top and the endpoint stays disabled."""
    app, endpoint, _ = await _setup_deliveries(store, 1)
    stale = await store.get_endpoint(app.id, endpoint.id)
    assert stale is not None and not stale.disabled
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    gone = replace(_outcome(claimed, MessageStatus.FAIL, 410, None), disable_endpoint=True)
    await store.complete([gone])
    assert await store.update_endpoint(replace(stale, description="renamed")) is None
    fresh = await store.get_endpoint(app.id, endpoint.id)
    assert fresh is not None and fresh.disabled and fresh.version == 2
    assert fresh.description == stale.description
    assert await store.update_endpoint(replace(fresh, description="renamed")) is not None
    final = await store.get_endpoint(app.id, endpoint.id)
    assert final is not None
    assert (final.description, final.disabled, final.version) == ("renamed", True, 3)


async def test_a_stale_application_update_is_refused_and_its_retry_keeps_both_changes(
    store: Store,
) -> None:
    """Two writers of one application: the stale one's update returns None and writes
    nothing; re-read and re-applied, the row holds both changes."""
    created = make_app(uid="before")
    await store.create_application(created)
    a = await store.get_application(created.id)
    b = await store.get_application(created.id)
    assert a is not None and b is not None
    written = await store.update_application(replace(a, name="A", updated_at=utcnow()))
    assert written is not None and written.version == 2
    assert await store.get_application(created.id) == written
    assert await store.update_application(replace(b, uid="after")) is None
    assert await store.get_application("before") == written
    fresh = await store.get_application(created.id)
    assert fresh is not None
    assert await store.update_application(replace(fresh, uid="after")) is not None
    final = await store.get_application("after")
    assert final is not None and (final.name, final.version) == ("A", 3)


async def test_a_stale_event_type_update_is_refused_and_its_retry_keeps_both_changes(
    store: Store,
) -> None:
    """Two writers of one event type: the stale one's update returns None and writes
    nothing; re-read and re-applied, the row holds both changes."""
    await store.create_event_type(make_event_type("user.created"))
    a = await store.get_event_type("user.created")
    b = await store.get_event_type("user.created")
    assert a is not None and b is not None
    written = await store.update_event_type(replace(a, description="A", updated_at=utcnow()))
    assert written is not None and written.version == 2
    assert await store.get_event_type("user.created") == written
    assert await store.update_event_type(replace(b, deprecated=True)) is None
    assert await store.get_event_type("user.created") == written
    fresh = await store.get_event_type("user.created")
    assert fresh is not None
    assert await store.update_event_type(replace(fresh, deprecated=True)) is not None
    final = await store.get_event_type("user.created")
    assert final is not None
    assert (final.description, final.deprecated, final.version) == ("A", True, 3)


async def test_versions_start_at_one_and_move_by_one_per_write(store: Store) -> None:
    """A created application, event type and endpoint are at version 1, whatever version
    the object carried, and each update moves its row by exactly one, as read and listed."""
    app = replace(make_app(), version=7)
    await store.create_application(app)
    await store.create_event_type(replace(make_event_type("user.created"), version=7))
    endpoint = replace(make_endpoint(app), version=7)
    await store.create_endpoint(endpoint)
    current_app = await store.get_application(app.id)
    current_type = await store.get_event_type("user.created")
    current_endpoint = await store.get_endpoint(app.id, endpoint.id)
    for expected in (2, 3, 4):
        assert current_app is not None and current_type is not None
        assert current_endpoint is not None
        assert current_app.version == current_type.version == current_endpoint.version
        current_app = await store.update_application(current_app)
        current_type = await store.update_event_type(current_type)
        current_endpoint = await store.update_endpoint(current_endpoint)
        assert current_app is not None and current_app.version == expected
        assert current_type is not None and current_type.version == expected
        assert current_endpoint is not None and current_endpoint.version == expected
    assert [a.version for a in (await store.list_applications(ListQuery())).data] == [4]
    listed_types = await store.list_event_types(ListQuery(), include_archived=True)
    assert [t.version for t in listed_types.data] == [4]
    listed = await store.list_endpoints(app.id, ListQuery())
    assert [e.version for e in listed.data] == [4]


async def test_updating_a_deleted_row_returns_none_and_writes_nothing(store: Store) -> None:
    """An update of an application, event type or endpoint deleted since it was read
    returns None and brings no row back."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    await store.create_event_type(make_event_type("user.created"))
    await store.delete_endpoint(app.id, endpoint.id)
    await store.delete_event_type("user.created")
    await store.delete_application(app.id)
    assert await store.update_endpoint(replace(endpoint, description="late")) is None
    assert await store.update_event_type(make_event_type("user.created")) is None
    assert await store.update_application(replace(app, name="late")) is None
    assert await store.get_endpoint(app.id, endpoint.id) is None
    assert await store.get_event_type("user.created") is None
    assert await store.get_application(app.id) is None


def opened(now: datetime, cooldown: float, failures: int = 5, **more: Any) -> CircuitState:
    return CircuitState(
        failures=failures,
        open_until=now.timestamp() + cooldown,
        cooldown=cooldown,
        opened_at=now.timestamp(),
        **more,
    )


async def test_a_circuit_is_seen_by_every_worker_until_it_closes(store: Store) -> None:
    """A saved circuit is returned, with what the API shows of it, while it is open and
    after its cooldown (half-open), until it is closed."""
    now = utcnow()
    down = opened(now, 30.0, failure_ratio=0.95, reason=Reason.FAILURE_RATIO)
    other = opened(now, 10.0, failures=6)
    await store.save_circuit("ep_down", down)
    await store.save_circuit("ep_other", other)
    assert await store.open_circuits(now) == {"ep_down": down, "ep_other": other}
    assert set(await store.open_circuits(now + timedelta(seconds=31))) == {"ep_down", "ep_other"}
    await store.save_circuit("ep_down", None)
    assert set(await store.open_circuits(now)) == {"ep_other"}
    assert await store.circuits_of(["ep_down", "ep_other", "ep_none"]) == {"ep_other": other}
    assert await store.circuits_of([]) == {}


async def test_of_two_openings_of_one_circuit_the_longer_hold_is_kept(store: Store) -> None:
    """A re-opening (which always holds longer) replaces an opening and keeps the time the
    episode began, and an opening written late by a slower worker does not shorten the hold
    another worker saved."""
    now = utcnow()
    first = opened(now, 5.0)
    reopened = replace(opened(now + timedelta(seconds=5), 15.0, failures=6), cooldown=10.0)
    await store.save_circuit("ep", first)
    await store.save_circuit("ep", reopened)
    await store.save_circuit("ep", first)
    assert await store.open_circuits(now) == {"ep": replace(reopened, opened_at=now.timestamp())}


async def test_exactly_one_worker_gets_the_half_open_probe(store: Store) -> None:
    """The probe cannot be claimed while the circuit cools down; after it, the first bid is
    granted and every other is told TAKEN with the winner's probe lease, until that lease
    runs out; a bid on a closed circuit says CLOSED."""
    now = utcnow()
    await store.save_circuit("ep", opened(now, 5.0))
    lease = timedelta(seconds=20)
    grant, state = await store.claim_probe("ep", "wrk_a", now, now + lease)
    assert grant is ProbeGrant.TAKEN and state is not None and state.probe_until is None
    later = now + timedelta(seconds=5)
    bids = await asyncio.gather(
        *(store.claim_probe("ep", f"wrk_{n}", later, later + lease) for n in range(4))
    )
    assert [grant for grant, _ in bids].count(ProbeGrant.GRANTED) == 1
    taken = [state for grant, state in bids if grant is ProbeGrant.TAKEN]
    assert len(taken) == 3
    assert all(s is not None and s.probe_until == (later + lease).timestamp() for s in taken)
    circuit = (await store.open_circuits(later))["ep"]
    assert circuit.hold_until == (later + lease).timestamp()
    expired = later + lease
    grant, _ = await store.claim_probe("ep", "wrk_b", expired, expired + lease)
    assert grant is ProbeGrant.GRANTED, "a probe lease that ran out is claimed again"
    await store.save_circuit("ep", None)
    assert await store.claim_probe("ep", "wrk_c", expired, expired + lease) == (
        ProbeGrant.CLOSED,
        None,
    )


async def test_a_reopening_ends_the_probe(store: Store) -> None:
    """The probe's failure re-opens the circuit: its lease is gone and the new cooldown
    holds every worker."""
    now = utcnow()
    await store.save_circuit("ep", opened(now, 5.0))
    later = now + timedelta(seconds=5)
    grant, _ = await store.claim_probe("ep", "wrk_a", later, later + timedelta(seconds=20))
    assert grant is ProbeGrant.GRANTED
    await store.save_circuit("ep", replace(opened(later, 10.0, failures=6), opened_at=0.0))
    circuit = (await store.open_circuits(later))["ep"]
    assert circuit.probe_until is None and circuit.hold_until == later.timestamp() + 10.0
    grant, _ = await store.claim_probe("ep", "wrk_b", later, later + timedelta(seconds=20))
    assert grant is ProbeGrant.TAKEN


async def test_a_circuit_goes_with_its_endpoint(store: Store) -> None:
    """Deleting an endpoint (or its application) deletes its circuit; purging removes a
    circuit whose endpoint is gone and keeps one whose endpoint exists, however old."""
    now = utcnow()
    app = make_app()
    await store.create_application(app)
    kept, deleted = make_endpoint(app), make_endpoint(app)
    for endpoint in (kept, deleted):
        await store.create_endpoint(endpoint)
        await store.save_circuit(endpoint.id, opened(now - timedelta(days=2), 5.0))
    await store.save_circuit("ep_orphan", opened(now - timedelta(days=2), 5.0))
    await store.delete_endpoint(app.id, deleted.id)
    assert set(await store.open_circuits(now)) == {kept.id, "ep_orphan"}
    await store.purge_expired(now, now - timedelta(days=1))
    assert set(await store.open_circuits(now)) == {kept.id}
    await store.delete_application(app.id)
    assert await store.open_circuits(now) == {}


async def test_policies_of_applications_and_endpoints_round_trip_and_update(
    store: Store,
) -> None:
    """A policy is stored with its row, read back equal, changed by an update and cleared."""
    policy = EndpointPolicy(
        retry=RetryPolicy((1.0, 2.0), 600.0), ordering=OrderingPolicy(OnExhausted.HOLD)
    )
    app = replace(make_app(), policy=ApplicationPolicy(RetryPolicy((9.0,))))
    await store.create_application(app)
    assert await store.get_application(app.id) == app
    endpoint = replace(make_endpoint(app), policy=policy)
    await store.create_endpoint(endpoint)
    assert await store.get_endpoint(app.id, endpoint.id) == endpoint
    cleared = await store.update_endpoint(replace(endpoint, policy=EndpointPolicy()))
    assert cleared is not None
    found = await store.get_endpoint(app.id, endpoint.id)
    assert found is not None and found.policy == EndpointPolicy()


async def test_a_failing_period_starts_once_and_shows_on_the_endpoint_until_a_success(
    store: Store,
) -> None:
    """The first failure mark starts the period; later marks keep its start; the endpoint
    read back (alone and in a list) carries it; a healthy mark ends it and returns its start,
    once: a second healthy mark (another worker's) ends nothing."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    start = utcnow().replace(microsecond=0)
    await store.mark_endpoints_failing([endpoint.id], start)
    await store.mark_endpoints_failing([endpoint.id], start + timedelta(hours=1))
    found = await store.get_endpoint(app.id, endpoint.id)
    assert found is not None and found.failing_since == start
    listed = await store.list_endpoints(app.id, ListQuery())
    assert [e.failing_since for e in listed.data] == [start]
    assert await store.mark_endpoints_healthy([endpoint.id, "ep_never_failed"]) == {
        endpoint.id: start
    }
    assert await store.mark_endpoints_healthy([endpoint.id]) == {}
    found = await store.get_endpoint(app.id, endpoint.id)
    assert found is not None and found.failing_since is None


async def test_an_update_of_a_failing_endpoint_keeps_its_failing_period(store: Store) -> None:
    """A versioned update of the endpoint neither writes nor clears its failing period."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    start = utcnow().replace(microsecond=0)
    await store.mark_endpoints_failing([endpoint.id], start)
    current = await store.get_endpoint(app.id, endpoint.id)
    assert current is not None
    assert await store.update_endpoint(replace(current, description="changed")) is not None
    found = await store.get_endpoint(app.id, endpoint.id)
    assert found is not None and found.failing_since == start and found.version == 2


async def test_failing_endpoints_lists_enabled_ones_failing_long_enough(store: Store) -> None:
    """Only enabled endpoints failing since the bound or earlier are listed, with their
    application and step; a disabled or recent one is not."""
    app = make_app()
    await store.create_application(app)
    old, recent, disabled = (make_endpoint(app) for _ in range(3))
    disabled = replace(disabled, disabled=True)
    for endpoint in (old, recent, disabled):
        await store.create_endpoint(endpoint)
    now = utcnow().replace(microsecond=0)
    await store.mark_endpoints_failing([old.id, disabled.id], now - timedelta(hours=3))
    await store.mark_endpoints_failing([recent.id], now)
    found = await store.failing_endpoints(now - timedelta(hours=1))
    assert [(f.endpoint_id, f.app_id, f.failing_since, f.step) for f in found] == [
        (old.id, app.id, now - timedelta(hours=3), 0)
    ]


async def test_each_auto_disable_step_is_taken_once_per_failing_period(store: Store) -> None:
    """Of concurrent callers one takes a step; a lower or equal step is refused after it; a
    step for a period that ended (a success, then new failures) is refused."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    start = utcnow().replace(microsecond=0)
    await store.mark_endpoints_failing([endpoint.id], start)
    taken = await asyncio.gather(
        *(store.advance_failure_step(endpoint.id, start, 1) for _ in range(4))
    )
    assert sorted(taken) == [False, False, False, True]
    assert not await store.advance_failure_step(endpoint.id, start, 1)
    assert await store.advance_failure_step(endpoint.id, start, 3)
    assert await store.failing_endpoints(start) == []
    await store.mark_endpoints_healthy([endpoint.id])
    later = start + timedelta(hours=1)
    await store.mark_endpoints_failing([endpoint.id], later)
    assert not await store.advance_failure_step(endpoint.id, start, 2)
    assert await store.advance_failure_step(endpoint.id, later, 2)


async def test_deleting_an_endpoint_forgets_its_failing_period(store: Store) -> None:
    """A deleted endpoint's failing period goes with it: the same id created again (an
    import, a restore) starts healthy."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    start = utcnow().replace(microsecond=0)
    await store.mark_endpoints_failing([endpoint.id], start)
    await store.delete_endpoint(app.id, endpoint.id)
    await store.create_endpoint(endpoint)
    assert await store.failing_endpoints(start + timedelta(days=1)) == []


def _whole_ms(when: datetime) -> datetime:
    """A time as the store keeps it (milliseconds)."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


async def test_a_scheduled_delivery_is_neither_handed_over_nor_claimed_before_its_time(
    store: Store,
) -> None:
    """A message with deliverAt ahead is stored with it, and its delivery is written pending,
    due then: the local worker is not handed it even with room, no claim takes it before
    then, and a claim at its time does."""
    handoff = RecordingHandoff(slots=10, lease_seconds=600)
    store.attach_handoff(handoff)
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    now = utcnow()
    when = _whole_ms(now + timedelta(seconds=60))
    scheduled = replace(make_message(app), deliver_at=when)
    at_once = make_message(app)
    await store.publish([scheduled, at_once], now)
    assert [c.message.id for c in handoff.claimed] == [at_once.id]
    assert handoff.accepted[0][2] == set()
    stored = await store.get_message(app.id, scheduled.id)
    assert stored is not None and stored.deliver_at == when
    delivery = await store.get_delivery(scheduled.id, endpoint.id)
    assert delivery is not None and delivery.status is MessageStatus.PENDING
    assert delivery.next_attempt_at == when
    lease = timedelta(seconds=30)
    before = when - timedelta(milliseconds=1)
    assert await store.claim_due(10, before, before + lease, "w2") == []
    (claimed,) = await store.claim_due(10, when, when + lease, "w2")
    assert claimed.message.id == scheduled.id and claimed.message.deliver_at == when


async def test_a_deliver_at_already_past_is_delivered_at_once(store: Store) -> None:
    """A deliverAt at or before the publish (within the tolerance the API allows) is due at
    once: the local worker is handed it like any other delivery."""
    handoff = RecordingHandoff(slots=10)
    store.attach_handoff(handoff)
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    now = utcnow()
    msg = replace(make_message(app), deliver_at=_whole_ms(now - timedelta(seconds=5)))
    await store.publish([msg], now)
    assert [c.message.id for c in handoff.claimed] == [msg.id]


async def test_application_policies_lists_the_applications_that_set_one(store: Store) -> None:
    """Workers read every application's policy at once: only those that set one, with the
    change an update makes, and without those whose policy was cleared."""
    plain = make_app()
    strict = replace(make_app(), policy=ApplicationPolicy(RetryPolicy((1.0,), 60.0)))
    for app in (plain, strict):
        await store.create_application(app)
    assert await store.application_policies() == {strict.id: strict.policy}
    changed = ApplicationPolicy(RetryPolicy((), None))
    updated = await store.update_application(replace(strict, policy=changed))
    assert updated is not None
    assert await store.application_policies() == {strict.id: changed}
    current = await store.get_application(strict.id)
    assert current is not None
    assert await store.update_application(replace(current, policy=ApplicationPolicy()))
    assert await store.application_policies() == {}


async def test_rate_slots_are_spaced_at_the_rate_and_reach_no_further_than_the_horizon(
    store: Store,
) -> None:
    """Slots of one endpoint follow each other ``interval`` apart across grants, whoever asks,
    and a grant stops at the horizon: the rest must be asked for later."""
    now = utcnow()
    interval = ratelimit.interval_us(100)
    first = await store.take_rate_slots([SlotRequest("ep", 100, 5)], now)
    second = await store.take_rate_slots([SlotRequest("ep", 100, 5)], now)
    assert first["ep"].count == 5
    assert second["ep"].first_us == first["ep"].first_us + 5 * interval
    assert first["ep"].first_us == rows_to_us(now)
    full = await store.take_rate_slots([SlotRequest("ep", 100, 1000)], now)
    horizon_slots = ratelimit.HORIZON_US // interval + 1
    assert full["ep"].count == horizon_slots - 10
    assert (await store.take_rate_slots([SlotRequest("ep", 100, 5)], now))["ep"].count == 0
    later = now + timedelta(seconds=0.1)
    assert (await store.take_rate_slots([SlotRequest("ep", 100, 5)], later))["ep"].count == 5


async def test_an_idle_rate_timeline_earns_no_burst(store: Store) -> None:
    """After a quiet minute a grant starts now, and still no more than the horizon holds."""
    now = utcnow()
    await store.take_rate_slots([SlotRequest("ep", 10, 2)], now)
    later = now + timedelta(seconds=60)
    grant = (await store.take_rate_slots([SlotRequest("ep", 10, 100)], later))["ep"]
    assert grant.first_us == rows_to_us(later)
    assert grant.count == ratelimit.HORIZON_US // ratelimit.interval_us(10) + 1


async def test_concurrent_slot_grants_never_share_a_slot(store: Store) -> None:
    """Workers asking at once (PostgreSQL: several connections) get disjoint slots."""
    now = utcnow()
    grants = await asyncio.gather(
        *(store.take_rate_slots([SlotRequest("ep", 1000, 20)], now) for _ in range(8))
    )
    times = [t for grant in grants for t in grant["ep"].times()]
    assert len(times) == len(set(times)) == sum(g["ep"].count for g in grants)
    assert len(times) == min(160, ratelimit.HORIZON_US // ratelimit.interval_us(1000) + 1)


async def test_a_slowdown_is_seen_by_every_worker_and_with_each_grant(store: Store) -> None:
    """A receiver's slowdown is listed while it may hold, and comes back with the slots."""
    now = utcnow()
    await store.slow_endpoint("ep_slow", 50.0, now)
    assert await store.slowed_endpoints(now) == {
        "ep_slow": ratelimit.Slowdown(50.0, rows_to_us(now) // 1000 / 1000)
    }
    grant = (await store.take_rate_slots([SlotRequest("ep_slow", 50, 1)], now))["ep_slow"]
    assert grant.slowdown is not None and grant.slowdown.rate == 50.0
    slowdown = await store.endpoint_slowdown("ep_slow")
    assert slowdown is not None and slowdown.rate == 50.0
    assert await store.endpoint_slowdown("ep_other") is None
    gone = now + timedelta(seconds=ratelimit.RECOVERY_SECONDS * ratelimit.RECOVERY_DOUBLINGS + 1)
    assert await store.slowed_endpoints(gone) == {}


async def test_an_application_rate_limit_reaches_its_endpoints_claimed_deliveries(
    store: Store,
) -> None:
    """A claimed delivery's endpoint carries its application's limit where its own is unset."""
    app, _, _ = await _setup_deliveries(store, 1)
    stored = await store.get_application(app.id)
    assert stored is not None
    await store.update_application(replace(stored, throttle_rate=7))
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    assert claimed.endpoint.rate_limit == 7


async def test_a_claim_takes_turns_across_applications_then_endpoints(store: Store) -> None:
    """One application's backlog over many endpoints takes no more of a claim than another
    application's single, newer message; within an application, endpoints take turns."""
    busy_app = make_app()
    await store.create_application(busy_app)
    for _ in range(5):
        await store.create_endpoint(make_endpoint(busy_app))
    now = utcnow()
    await store.publish([make_message(busy_app) for _ in range(10)], now)
    other_app = make_app()
    await store.create_application(other_app)
    await store.create_endpoint(make_endpoint(other_app))
    (late,) = [make_message(other_app)]
    await store.publish([late], now + timedelta(seconds=1))
    later = now + timedelta(seconds=2)
    claimed = await store.claim_due(4, later, later + timedelta(seconds=30), "w1", (), 10)
    assert late.id in {c.message.id for c in claimed}
    of_busy = [c.endpoint.id for c in claimed if c.message.app_id == busy_app.id]
    assert len(of_busy) == len(set(of_busy)) == 3


async def test_a_publish_after_an_application_limit_changes_hands_over_the_new_limit(
    store: Store,
) -> None:
    """Routes read before an application's limit changed are not used after it (SQLite
    caches them by the endpoint counter, which the change moves)."""
    app, _, _ = await _setup_deliveries(store, 1)
    stored = await store.get_application(app.id)
    assert stored is not None
    await store.update_application(replace(stored, throttle_rate=3))
    (msg,) = [make_message(app)]
    offer = LeaseOffer(
        worker_id="w1",
        lease_token="t",
        lease_until=utcnow() + timedelta(seconds=30),
        slots=10,
        admission=admission.snapshot(EndpointLimits(4), {}, (), 10),
    )
    handed: list[ClaimedDelivery] = []

    class Taker:
        def offer(self) -> LeaseOffer | None:
            return offer

        def accept(
            self, offer: LeaseOffer, claimed: Sequence[ClaimedDelivery], left: Collection[str]
        ) -> None:
            handed.extend(claimed)

    store.attach_handoff(Taker())
    await store.publish([msg], utcnow())
    assert [c.endpoint.rate_limit for c in handed] == [3]


async def _primary_and_fallback(
    store: Store, *, fallback_disabled: bool = False
) -> tuple[ClaimedDelivery, Endpoint]:
    """An application with a primary endpoint (one leased delivery) and the endpoint its
    policy names as fallback (subscribed to nothing, so it has no delivery of its own)."""
    app = make_app()
    await store.create_application(app)
    backup = make_endpoint(app, "https://backup.example/h", disabled=fallback_disabled)
    backup = replace(backup, event_types=("other.type",))
    primary = replace(
        make_endpoint(app, "https://primary.example/h"),
        policy=EndpointPolicy(fallback=FallbackPolicy(backup.id)),
    )
    await store.create_endpoint(backup)
    await store.create_endpoint(primary)
    await store.publish([make_message(app)], utcnow())
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    assert claimed.endpoint.id == primary.id and claimed.fallback_for is None
    return claimed, backup


def _stand_in(claimed: ClaimedDelivery, backup: Endpoint) -> FallbackDelivery:
    return FallbackDelivery(
        ids.new_id(ids.DELIVERY),
        claimed.endpoint.app_id,
        claimed.message.id,
        backup.id,
        claimed.endpoint.id,
        utcnow(),
    )


async def test_an_exhausted_delivery_s_stand_in_is_written_with_its_exhaustion(
    store: Store,
) -> None:
    """complete() with an exhausted outcome that carries a fallback writes a pending delivery
    to the fallback destination, naming the endpoint it stands in for; a claim hands it out
    with that name, and its attempt is logged with it."""
    claimed, backup = await _primary_and_fallback(store)
    exhausted = replace(failed_outcome(claimed), fallback=_stand_in(claimed, backup))
    await store.complete([exhausted])
    primary = await store.get_delivery(claimed.message.id, claimed.endpoint.id)
    assert primary is not None and primary.status is MessageStatus.FAIL
    now = utcnow()
    (stand_in,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    assert (stand_in.endpoint.id, stand_in.fallback_for) == (backup.id, claimed.endpoint.id)
    ok = failed_outcome(stand_in, 200)
    attempt = replace(ok.attempt, status=MessageStatus.SUCCESS, fallback_for=claimed.endpoint.id)
    await store.complete([replace(ok, attempt=attempt, delivery_status=MessageStatus.SUCCESS)])
    app_id = claimed.endpoint.app_id
    page = await store.list_attempts(app_id, ListQuery(), AttemptFilter(), claimed.message.id)
    stood_in = {a.endpoint_id: a.fallback_for for a in page.data}
    assert stood_in == {claimed.endpoint.id: None, backup.id: claimed.endpoint.id}
    logged = await store.get_attempt(app_id, attempt.id)
    assert logged is not None and logged.fallback_for == claimed.endpoint.id


async def test_no_stand_in_is_written_for_a_disabled_or_deleted_fallback(store: Store) -> None:
    """A fallback destination that is disabled, or deleted since, gets nothing; the primary's
    exhaustion is recorded all the same."""
    claimed, backup = await _primary_and_fallback(store, fallback_disabled=True)
    await store.complete([replace(failed_outcome(claimed), fallback=_stand_in(claimed, backup))])
    assert await store.get_delivery(claimed.message.id, backup.id) is None
    primary = await store.get_delivery(claimed.message.id, claimed.endpoint.id)
    assert primary is not None and primary.status is MessageStatus.FAIL


async def test_a_diverted_delivery_fails_unattempted_and_its_stand_in_is_written(
    store: Store,
) -> None:
    """divert() fails the leased delivery without an attempt and writes its stand-in."""
    claimed, backup = await _primary_and_fallback(store)
    await store.divert([Diversion(claimed, _stand_in(claimed, backup), utcnow())])
    primary = await store.get_delivery(claimed.message.id, claimed.endpoint.id)
    assert primary is not None
    assert (primary.status, primary.attempt_count) == (MessageStatus.FAIL, 0)
    stand_in = await store.get_delivery(claimed.message.id, backup.id)
    assert stand_in is not None and stand_in.status is MessageStatus.PENDING


async def test_a_diversion_whose_lease_was_lost_or_whose_fallback_is_gone_fails_nothing(
    store: Store,
) -> None:
    """No stand-in is written when the diversion's lease is no longer the delivery's (the
    delivery keeps its new holder's state), nor when the fallback destination was deleted
    (the delivery is put back until the hold ends, as a deferral would)."""
    claimed, gone = await _primary_and_fallback(store)
    await store.delete_endpoint(claimed.endpoint.app_id, gone.id)
    stale = replace(claimed, lease_token="not-the-lease")
    other = replace(make_endpoint(await _app_of(store, claimed)), event_types=("other.type",))
    await store.create_endpoint(other)
    await store.divert([Diversion(stale, _stand_in(stale, other), utcnow())])
    kept = await store.get_delivery(claimed.message.id, claimed.endpoint.id)
    assert kept is not None and kept.status is MessageStatus.SENDING
    assert await store.get_delivery(claimed.message.id, other.id) is None
    until = utcnow() + timedelta(seconds=30)
    await store.divert([Diversion(claimed, _stand_in(claimed, gone), until)])
    kept = await store.get_delivery(claimed.message.id, claimed.endpoint.id)
    assert kept is not None
    assert (kept.status, kept.attempt_count) == (MessageStatus.PENDING, 0), "put back"
    assert kept.next_attempt_at is not None and kept.next_attempt_at >= until - timedelta(seconds=1)
    assert await store.get_delivery(claimed.message.id, gone.id) is None


async def _app_of(store: Store, claimed: ClaimedDelivery) -> Application:
    app = await store.get_application(claimed.endpoint.app_id)
    assert app is not None
    return app


async def test_purging_forgets_the_rate_timeline_of_a_deleted_endpoint(store: Store) -> None:
    """A deleted endpoint's slowdown (its rate_slots row) goes at the next purge; a live
    endpoint's stays."""
    app = make_app()
    await store.create_application(app)
    live, gone = make_endpoint(app), make_endpoint(app)
    for endpoint in (live, gone):
        await store.create_endpoint(endpoint)
    now = utcnow()
    await store.slow_endpoint(live.id, 5.0, now)
    await store.slow_endpoint(gone.id, 5.0, now)
    await store.delete_endpoint(app.id, gone.id)
    await store.purge_expired(now, now - timedelta(days=1))
    assert await store.endpoint_slowdown(gone.id) is None
    assert await store.endpoint_slowdown(live.id) is not None


# -- retention ----------------------------------------------------------------------------


def _old_message(app: Application, days_ago: float, seq: int = 0) -> Message:
    """A message created ``days_ago``, its id minted then (ids sort by time); ``seq`` seconds
    apart keeps several such ids distinct."""
    when = utcnow() - timedelta(days=days_ago) + timedelta(seconds=seq)
    msg_id = ids.first_id_at(ids.MESSAGE, int(when.timestamp() * 1000))
    return replace(make_message(app), id=msg_id, timestamp=when)


async def _finish_all(store: Store, status: MessageStatus = MessageStatus.SUCCESS) -> None:
    """Claim every due delivery and record one attempt that ends it (success or failure)."""
    now = utcnow()
    claimed = await store.claim_due(1000, now, now + timedelta(seconds=30), "w1")
    code = 200 if status is MessageStatus.SUCCESS else 500
    await store.complete([_outcome(c, status, code, None) for c in claimed])


async def _attempt_count(store: Store, app_id: str, msg_id: str) -> int:
    page = await store.list_attempts(app_id, ListQuery(), AttemptFilter(), msg_id)
    return len(page.data)


async def test_pruning_removes_finished_messages_past_the_horizon_only(store: Store) -> None:
    """Messages older than the horizon whose deliveries all ended (succeeded or failed) go
    with their deliveries and attempts; a newer finished message stays whole."""
    app, ep, (new,) = await _setup_deliveries(store, 1)
    old_ok, old_failed = _old_message(app, 91), _old_message(app, 91, seq=1)
    await store.publish([old_ok], utcnow())
    await _finish_all(store)
    await store.publish([old_failed], utcnow())
    await _finish_all(store, MessageStatus.FAIL)
    batch = await store.prune_batch(utcnow() - timedelta(days=90), "", 100)
    assert (batch.messages, batch.deliveries, batch.attempts, batch.held) == (2, 2, 2, 0)
    assert batch.scanned_to is None
    for gone in (old_ok, old_failed):
        assert await store.get_message(app.id, gone.id) is None
        assert await store.get_delivery(gone.id, ep.id) is None
        assert await _attempt_count(store, app.id, gone.id) == 0
    assert await store.get_message(app.id, new.id) is not None
    delivery = await store.get_delivery(new.id, ep.id)
    assert delivery is not None and delivery.status is MessageStatus.SUCCESS
    assert await _attempt_count(store, app.id, new.id) == 1


async def test_pruning_keeps_a_message_while_any_delivery_can_still_be_attempted(
    store: Store,
) -> None:
    """An old message with one delivery done and one still pending is kept whole (held),
    and goes on the first pass after its last delivery ends."""
    app = make_app()
    await store.create_application(app)
    done, waiting = make_endpoint(app), make_endpoint(app)
    for ep in (done, waiting):
        await store.create_endpoint(ep)
    old = _old_message(app, 100)
    await store.publish([old], utcnow())
    now = utcnow()
    claimed = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    first = next(c for c in claimed if c.endpoint.id == done.id)
    second = next(c for c in claimed if c.endpoint.id == waiting.id)
    await store.complete(
        [
            _outcome(first, MessageStatus.SUCCESS, 200, None),
            _outcome(second, MessageStatus.PENDING, 500, 3600),
        ]
    )
    horizon = utcnow() - timedelta(days=90)
    held = await store.prune_batch(horizon, "", 100)
    assert (held.messages, held.deliveries, held.attempts, held.held) == (0, 0, 0, 1)
    assert await store.get_message(app.id, old.id) is not None
    assert await store.get_delivery(old.id, done.id) is not None
    assert await _attempt_count(store, app.id, old.id) == 2
    later = utcnow() + timedelta(seconds=3601)
    (retry,) = await store.claim_due(10, later, later + timedelta(seconds=30), "w1")
    await store.complete([_outcome(retry, MessageStatus.SUCCESS, 200, None)])
    freed = await store.prune_batch(horizon, "", 100)
    assert (freed.messages, freed.deliveries, freed.attempts, freed.held) == (1, 2, 3, 0)


async def test_a_batch_removes_around_the_messages_it_keeps_and_leaves_theirs_whole(
    store: Store,
) -> None:
    """In one batch, a held message (a delivery still pending) and one whose id sorts
    before the horizon though it was created after it sit between removable ones: the
    neighbours go with their rows, and the two kept keep their deliveries and attempts."""
    app, ep, _ = await _setup_deliveries(store, 0)
    first, held, last = (_old_message(app, 100, seq=i) for i in (0, 1, 3))
    recent = replace(_old_message(app, 100, seq=2), timestamp=utcnow())
    await store.publish([first, held, recent, last], utcnow())
    now = utcnow()
    claimed = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    await store.complete(
        [
            _outcome(c, MessageStatus.PENDING, 500, 3600)
            if c.message.id == held.id
            else _outcome(c, MessageStatus.SUCCESS, 200, None)
            for c in claimed
        ]
    )
    batch = await store.prune_batch(utcnow() - timedelta(days=90), "", 100)
    assert (batch.messages, batch.deliveries, batch.attempts, batch.held) == (2, 2, 2, 1)
    for gone in (first, last):
        assert await store.get_message(app.id, gone.id) is None
        assert await _attempt_count(store, app.id, gone.id) == 0
    for kept in (held, recent):
        assert await store.get_message(app.id, kept.id) is not None
        assert await store.get_delivery(kept.id, ep.id) is not None
        assert await _attempt_count(store, app.id, kept.id) == 1


async def test_a_sending_delivery_holds_its_message_past_the_horizon(store: Store) -> None:
    """A delivery leased to a worker (sending) is never pruned, nor its message."""
    app, ep, _ = await _setup_deliveries(store, 0)
    old = _old_message(app, 100)
    await store.publish([old], utcnow())
    now = utcnow()
    assert len(await store.claim_due(10, now, now + timedelta(seconds=30), "w1")) == 1
    batch = await store.prune_batch(utcnow() - timedelta(days=90), "", 100)
    assert (batch.messages, batch.held) == (0, 1)
    delivery = await store.get_delivery(old.id, ep.id)
    assert delivery is not None and delivery.status is MessageStatus.SENDING


async def test_pruning_batches_are_bounded_and_a_pass_resumes_where_one_ended(
    store: Store,
) -> None:
    """A batch scans at most ``limit`` messages and says where it stopped; the next batch
    starts there, and the pass ends on a short batch."""
    app, _, _ = await _setup_deliveries(store, 0)
    olds = [_old_message(app, 120, seq=i) for i in range(5)]
    await store.publish(olds, utcnow())
    await _finish_all(store)
    horizon = utcnow() - timedelta(days=90)
    first = await store.prune_batch(horizon, "", 2)
    assert (first.messages, first.scanned_to) == (2, olds[1].id)
    second = await store.prune_batch(horizon, first.scanned_to or "", 2)
    assert (second.messages, second.scanned_to) == (2, olds[3].id)
    last = await store.prune_batch(horizon, second.scanned_to or "", 2)
    assert (last.messages, last.scanned_to) == (1, None)


async def test_a_dry_run_counts_what_pruning_then_removes_and_a_second_pass_finds_nothing(
    store: Store,
) -> None:
    """A dry run changes nothing and counts exactly what the real pass removes; pruning
    again removes nothing (idempotent)."""
    app, _, _ = await _setup_deliveries(store, 0)
    await store.create_endpoint(make_endpoint(app))
    olds = [_old_message(app, 95, seq=i) for i in range(3)]
    await store.publish(olds, utcnow())
    await _finish_all(store)
    horizon = utcnow() - timedelta(days=90)
    dry = await store.prune_batch(horizon, "", 100, dry_run=True)
    assert (dry.messages, dry.deliveries, dry.attempts) == (3, 6, 6)
    assert await store.get_message(app.id, olds[0].id) is not None
    real = await store.prune_batch(horizon, "", 100)
    assert (real.messages, real.deliveries, real.attempts) == (3, 6, 6)
    again = await store.prune_batch(horizon, "", 100)
    assert (again.messages, again.deliveries, again.attempts, again.held) == (0, 0, 0, 0)


async def test_two_pruners_at_once_remove_each_message_once_without_error(
    store: Store, store_location: tuple[str, str]
) -> None:
    """Two stores (two processes) pruning the same range concurrently neither fail nor count
    a message twice, and together remove all of it."""
    app, _, _ = await _setup_deliveries(store, 0)
    olds = [_old_message(app, 200, seq=i) for i in range(60)]
    await store.publish(olds, utcnow())
    await _finish_all(store)
    horizon = utcnow() - timedelta(days=90)
    other = make_store(store_location)
    await other.open()

    async def pass_of(pruner: Store) -> int:
        removed, after = 0, ""
        while True:
            batch = await pruner.prune_batch(horizon, after, 7)
            removed += batch.messages
            if batch.scanned_to is None:
                return removed
            after = batch.scanned_to

    try:
        counts = await asyncio.gather(pass_of(store), pass_of(other))
    finally:
        await other.close()
    assert sum(counts) == 60
    page = await store.list_messages(app.id, ListQuery(), MessageFilter())
    assert page.data == []


async def test_compact_after_pruning_keeps_what_was_not_pruned(store: Store) -> None:
    """Reclaiming space by hand (SQLite's rebuild, PostgreSQL's VACUUM) is done, and the
    rows left after pruning read back unchanged."""
    app, ep, (kept,) = await _setup_deliveries(store, 1)
    await _finish_all(store)
    await store.publish([_old_message(app, 100)], utcnow())
    await _finish_all(store)
    assert (await store.prune_batch(utcnow() - timedelta(days=90), "", 100)).messages == 1
    assert await store.compact() is True
    assert await store.get_message(app.id, kept.id) == kept
    delivery = await store.get_delivery(kept.id, ep.id)
    assert delivery is not None and delivery.status is MessageStatus.SUCCESS


async def test_queue_health_counts_live_workers_and_finds_the_first_due_delivery(
    store: Store,
) -> None:
    """``queue_health`` counts the workers heard from within the window, and reports the
    earliest due time among unordered deliveries and the heads of ordered sequences: a row
    waiting behind its sequence's head is not due, and a leased row is due when its lease
    runs out."""
    now = utcnow()
    assert await store.queue_health(now) == QueueHealth(live_workers=0, first_due_at=None)
    await store.heartbeat("silent", now - timedelta(seconds=60))
    await store.heartbeat("alive", now - timedelta(seconds=5))
    app = make_app()
    await store.create_application(app)
    plain = make_endpoint(app)
    ordered = replace(make_endpoint(app), policy=EndpointPolicy(ordering=OrderingPolicy()))
    await store.create_endpoint(plain)
    await store.create_endpoint(ordered)
    await store.publish([make_message(app)], now - timedelta(seconds=30), only_endpoint=plain.id)
    later = [make_message(app), make_message(app)]
    await store.publish(later, now - timedelta(seconds=10), only_endpoint=ordered.id)
    health = await store.queue_health(now - timedelta(seconds=20))
    assert health.live_workers == 1
    assert health.first_due_at is not None
    assert abs(health.first_due_at - (now - timedelta(seconds=30))) < timedelta(milliseconds=2)
    lease_until = now + timedelta(seconds=30)
    claimed = await store.claim_due(10, now, lease_until, "alive")
    assert len(claimed) == 2
    health = await store.queue_health(now - timedelta(seconds=20))
    assert health.first_due_at is not None
    assert abs(health.first_due_at - lease_until) < timedelta(milliseconds=2)


async def test_backlog_sample_counts_due_deliveries_of_enabled_endpoints_and_the_oldest(
    store: Store,
) -> None:
    """``backlog_sample`` counts the deliveries due by ``now`` (unordered rows and every row of
    an ordered endpoint, pending or with a lapsed lease), never a later one, one being
    attempted or one of a disabled endpoint; it reports the oldest due time, the live
    workers, the disabled endpoints and the breakers not closed."""
    now = utcnow()
    empty = await store.backlog_sample(now, now)
    assert empty == BacklogSample(0, None, 0, 0, 0)
    await store.heartbeat("alive", now - timedelta(seconds=5))
    app = make_app()
    await store.create_application(app)
    plain = make_endpoint(app)
    ordered = replace(make_endpoint(app), policy=EndpointPolicy(ordering=OrderingPolicy()))
    off = make_endpoint(app, disabled=True)
    for endpoint in (plain, ordered, off):
        await store.create_endpoint(endpoint)
    await store.publish([make_message(app)], now - timedelta(seconds=30), only_endpoint=plain.id)
    await store.publish([make_message(app)], now - timedelta(seconds=20), only_endpoint=plain.id)
    two = [make_message(app), make_message(app)]
    await store.publish(two, now - timedelta(seconds=10), only_endpoint=ordered.id)
    await store.publish([make_message(app)], now - timedelta(seconds=60), only_endpoint=off.id)
    await store.publish([make_message(app)], now + timedelta(seconds=60), only_endpoint=plain.id)
    await store.save_circuit(plain.id, opened(now, 30.0))
    sample = await store.backlog_sample(now, now - timedelta(seconds=20))
    assert (sample.due, sample.live_workers) == (4, 1)
    assert (sample.disabled_endpoints, sample.open_breakers) == (1, 1)
    assert sample.oldest_due_at is not None
    assert abs(sample.oldest_due_at - (now - timedelta(seconds=30))) < timedelta(milliseconds=2)
    claimed = await store.claim_due(10, now, now + timedelta(seconds=30), "alive")
    assert len(claimed) == 3  # both unordered rows and the ordered sequence's head
    leased = await store.backlog_sample(now, now - timedelta(seconds=20))
    assert (leased.due, leased.oldest_due_at is not None) == (1, True)
    lapsed = await store.backlog_sample(now + timedelta(seconds=31), now)
    assert lapsed.due == 4
