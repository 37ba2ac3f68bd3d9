"""The storage contract: every backend must pass these (see storage/base.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from hookline.domain import admission, ids
from hookline.domain.admission import EndpointLimits
from hookline.domain.breaker import CircuitState
from hookline.domain.errors import Conflict
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
from hookline.domain.signing import generate_secret
from hookline.storage.base import (
    AttemptFilter,
    AttemptOutcome,
    Deferral,
    IdempotencyCompletion,
    LeaseOffer,
    ListQuery,
    MessageFilter,
    Store,
)
from tests.conftest import (
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


async def test_resend_and_recover_requeue_as_manual(store: Store) -> None:
    """Resend queues a manual attempt; recover re-queues failed deliveries in a time range."""
    msg_id, ep_id = await _setup_one_delivery(store)
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    await store.complete([_outcome(claimed, MessageStatus.FAIL, 500, None)])
    app_id = claimed.endpoint.app_id
    count = await store.recover(app_id, ep_id, now - timedelta(hours=1), utcnow(), utcnow())
    assert count == 1
    (recovered,) = await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    assert recovered.trigger is AttemptTrigger.MANUAL and recovered.attempt_count == 0
    await store.complete([_outcome(recovered, MessageStatus.SUCCESS, 200, None)])
    await store.resend(app_id, msg_id, ep_id, utcnow())
    (resent,) = await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    assert resent.trigger is AttemptTrigger.MANUAL
    none_in_range = await store.recover(
        app_id, ep_id, utcnow() - timedelta(hours=2), utcnow() - timedelta(hours=1), utcnow()
    )
    assert none_in_range == 0


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
    await store.renew_leases("w1", now + timedelta(hours=1))
    later = now + timedelta(seconds=10)
    again = await store.claim_due(10, later, later + timedelta(seconds=5), "w2")
    assert [c.endpoint.id for c in again] == [busy.id]


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


async def test_purge_drops_old_keys_expired_payloads_and_tokens(store: Store) -> None:
    """Maintenance removes idempotency keys past their day, payloads past retention, old tokens."""
    from hookline.domain.models import AccessToken

    app = make_app()
    await store.create_application(app)
    now = utcnow()
    expired = replace(make_message(app), expires_at=now - timedelta(seconds=1))
    kept = replace(make_message(app), expires_at=now + timedelta(days=1))
    await store.publish([expired, kept], now)
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
    gone = await store.get_message(app.id, expired.id)
    still = await store.get_message(app.id, kept.id)
    assert gone is not None and gone.payload is None
    assert still is not None and still.payload == kept.payload
    assert await store.find_token("gone") is None
    assert await store.idempotency_begin("admin", "old", "h", now) is None
    assert await store.idempotency_begin("admin", "new", "h", now) is not None


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


async def test_an_open_circuit_is_seen_by_every_worker_until_it_ends_or_closes(
    store: Store,
) -> None:
    """A saved open circuit is returned while it holds, not once its hold has ended, and
    not after it was closed."""
    now = utcnow()
    until = now.timestamp() + 30.0
    await store.save_circuit("ep_down", CircuitState(failures=5, open_until=until, cooldown=30.0))
    await store.save_circuit("ep_other", CircuitState(failures=6, open_until=until, cooldown=10.0))
    assert await store.open_circuits(now) == {
        "ep_down": CircuitState(failures=5, open_until=until, cooldown=30.0),
        "ep_other": CircuitState(failures=6, open_until=until, cooldown=10.0),
    }
    assert await store.open_circuits(now + timedelta(seconds=31)) == {}
    await store.save_circuit("ep_down", None)
    assert set(await store.open_circuits(now)) == {"ep_other"}


async def test_of_two_openings_of_one_circuit_the_longer_hold_is_kept(store: Store) -> None:
    """A re-opening (which always holds longer) replaces an opening, and an opening written
    late by a slower worker does not shorten the hold another worker saved."""
    now = utcnow()
    first = CircuitState(failures=5, open_until=now.timestamp() + 5.0, cooldown=5.0)
    reopened = CircuitState(failures=6, open_until=now.timestamp() + 20.0, cooldown=10.0)
    await store.save_circuit("ep", first)
    await store.save_circuit("ep", reopened)
    await store.save_circuit("ep", first)
    assert await store.open_circuits(now) == {"ep": reopened}


async def test_purging_removes_circuits_whose_hold_has_ended(store: Store) -> None:
    """Circuits nobody closed (their endpoint deleted, say) are purged once they have ended."""
    now = utcnow()
    await store.save_circuit("ep_old", CircuitState(5, now.timestamp() - 1.0, 5.0))
    await store.save_circuit("ep_new", CircuitState(5, now.timestamp() + 60.0, 5.0))
    await store.purge_expired(now, now - timedelta(days=1))
    assert set(await store.open_circuits(now - timedelta(seconds=10))) == {"ep_new"}


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
