"""The storage contract of ordered delivery, on every backend (docs/delivery.md, "Ordered
delivery"): a claim takes a delivery of an ordered endpoint only while it heads its
sequence (endpoint and ordering key), whichever worker asks and whatever crashed before."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hookline.domain.models import (
    Application,
    AttemptTrigger,
    ClaimedDelivery,
    Endpoint,
    Message,
    MessageStatus,
)
from hookline.domain.policy import EndpointPolicy, OnExhausted, OrderingPolicy
from hookline.storage.base import Store
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.test_store_contract import RecordingHandoff, _outcome


def _ordered(app: Application, on_exhausted: OnExhausted = OnExhausted.SKIP) -> Endpoint:
    policy = EndpointPolicy(ordering=OrderingPolicy(on_exhausted))
    return replace(make_endpoint(app), policy=policy)


async def _setup(
    store: Store, keys: list[str | None], on_exhausted: OnExhausted = OnExhausted.SKIP
) -> tuple[Endpoint, list[Message]]:
    """An ordered endpoint and one message per key (None: no key), published in order."""
    app = make_app()
    await store.create_application(app)
    ep = _ordered(app, on_exhausted)
    await store.create_endpoint(ep)
    msgs = [replace(make_message(app), ordering_key=key) for key in keys]
    await store.publish(msgs, utcnow())
    return ep, msgs


async def _claim(store: Store, at: datetime | None = None, worker: str = "w1") -> list[str]:
    """The message ids one claim leases, in message order."""
    now = at or utcnow()
    claimed = await store.claim_due(100, now, now + timedelta(seconds=30), worker)
    return sorted(c.message.id for c in claimed)


async def _claim_one(store: Store, at: datetime | None = None) -> ClaimedDelivery:
    now = at or utcnow()
    (claimed,) = await store.claim_due(100, now, now + timedelta(seconds=30), "w1")
    return claimed


async def test_only_the_head_of_a_sequence_is_claimed_until_it_succeeds(store: Store) -> None:
    """Of three messages to an ordered endpoint, a claim takes the first only; no claim, by
    this worker or another, takes the second until the first succeeded."""
    _, msgs = await _setup(store, [None, None, None])
    head = await _claim_one(store)
    assert head.message.id == msgs[0].id
    assert await _claim(store, worker="w2") == []
    await store.complete([_outcome(head, MessageStatus.SUCCESS, 200, None)])
    second = await _claim_one(store)
    assert second.message.id == msgs[1].id


async def test_different_ordering_keys_flow_in_parallel(store: Store) -> None:
    """Each key, and the messages without a key, are a sequence of their own: one claim
    takes the head of each, and a key's second message waits for its own head only."""
    _, msgs = await _setup(store, ["a", "b", "a", None, "b", None])
    assert await _claim(store) == sorted([msgs[0].id, msgs[1].id, msgs[3].id])
    assert await _claim(store) == []


async def test_a_claim_takes_at_most_per_endpoint_heads_of_one_endpoint(store: Store) -> None:
    """Many keys of one endpoint are many heads; a claim takes no more of them than its
    per-endpoint limit, and the next claim takes the rest."""
    _, msgs = await _setup(store, [f"k{n}" for n in range(5)])
    now = utcnow()
    first = await store.claim_due(100, now, now + timedelta(seconds=30), "w1", (), 2)
    rest = await store.claim_due(100, now, now + timedelta(seconds=30), "w1", (), 10)
    assert len(first) == 2 and len(rest) == 3
    assert sorted(c.message.id for c in first + rest) == sorted(m.id for m in msgs)


async def test_a_retry_waiting_blocks_the_rest_of_its_sequence(store: Store) -> None:
    """A head that failed and waits for its retry keeps the next one back, even once the next
    is long due; when the retry falls due, the head is claimed again, not its successor."""
    _, msgs = await _setup(store, [None, None])
    head = await _claim_one(store)
    await store.complete([_outcome(head, MessageStatus.PENDING, 500, 60)])
    assert await _claim(store, utcnow() + timedelta(seconds=30)) == []
    retried = await _claim_one(store, utcnow() + timedelta(seconds=61))
    assert (retried.message.id, retried.attempt_count) == (msgs[0].id, 1)


async def test_skip_on_exhaustion_fails_the_head_and_moves_the_line(store: Store) -> None:
    """With onExhausted skip, an exhausted head is failed (a dead letter) and the next
    message is claimable at once."""
    ep, msgs = await _setup(store, [None, None])
    head = await _claim_one(store)
    await store.complete([_outcome(head, MessageStatus.FAIL, 500, None)])
    failed = await store.get_delivery(msgs[0].id, ep.id)
    assert failed is not None and failed.status is MessageStatus.FAIL
    assert await _claim(store) == [msgs[1].id]


async def test_a_held_line_stays_stopped_until_its_head_is_skipped(store: Store) -> None:
    """A held head (pending, no next attempt: what an exhausted delivery becomes with
    onExhausted hold) is never claimed and keeps its sequence back, however late; skipping it
    fails it and the line moves on. Only a held delivery can be skipped."""
    ep, msgs = await _setup(store, [None, None], OnExhausted.HOLD)
    head = await _claim_one(store)
    await store.complete([_outcome(head, MessageStatus.PENDING, 500, None)])
    assert await _claim(store, utcnow() + timedelta(days=30)) == []
    app_id = ep.app_id
    assert not await store.skip_held(app_id, msgs[1].id, ep.id, utcnow())
    assert await store.skip_held(app_id, msgs[0].id, ep.id, utcnow())
    skipped = await store.get_delivery(msgs[0].id, ep.id)
    assert skipped is not None and skipped.status is MessageStatus.FAIL
    assert await _claim(store) == [msgs[1].id]


async def test_a_held_head_is_released_by_resend(store: Store) -> None:
    """Resending a held head queues it again in its place: it is claimed (manually
    triggered) before its successor, which waits for its outcome. (Recover releases a held
    head too: ``test_operations_tasks.py``.)"""
    ep, msgs = await _setup(store, [None, None], OnExhausted.HOLD)
    head = await _claim_one(store)
    await store.complete([_outcome(head, MessageStatus.PENDING, 500, None)])
    assert await _claim(store) == []
    await store.resend(ep.app_id, msgs[0].id, ep.id, utcnow())
    resent = await _claim_one(store)
    assert (resent.message.id, resent.trigger) == (msgs[0].id, AttemptTrigger.MANUAL)
    assert await _claim(store) == []
    await store.complete([_outcome(resent, MessageStatus.SUCCESS, 200, None)])
    assert await _claim(store) == [msgs[1].id]


async def test_a_lease_that_runs_out_gives_the_head_again_never_its_successor(
    store: Store,
) -> None:
    """A worker that dies holding the head (its lease runs out) blocks the sequence until
    another worker claims that same head again and finishes it."""
    _, msgs = await _setup(store, [None, None])
    now = utcnow()
    (lost,) = await store.claim_due(100, now, now + timedelta(seconds=1), "w1")
    assert await _claim(store, now + timedelta(milliseconds=500), "w2") == []
    later = now + timedelta(seconds=2)
    (again,) = await store.claim_due(100, later, later + timedelta(seconds=30), "w2")
    assert again.message.id == msgs[0].id and again.lease_token != lost.lease_token
    assert await _claim(store, later, "w3") == []
    await store.complete([_outcome(again, MessageStatus.SUCCESS, 200, None)])
    assert await _claim(store, later, "w3") == [msgs[1].id]


async def test_a_resend_of_a_delivered_message_goes_before_the_rest_of_its_line(
    store: Store,
) -> None:
    """Resending a message already delivered puts it back in its place: the messages of its
    sequence still waiting go after it."""
    ep, msgs = await _setup(store, ["k", "k", "k"])
    first = await _claim_one(store)
    await store.complete([_outcome(first, MessageStatus.SUCCESS, 200, None)])
    await store.resend(ep.app_id, msgs[0].id, ep.id, utcnow())
    assert await _claim(store) == [msgs[0].id]


async def test_an_unordered_endpoint_beside_an_ordered_one_is_claimed_whole(
    store: Store,
) -> None:
    """Ordering is the ordered endpoint's alone: the same messages to an unordered endpoint of
    the same application are all claimed at once."""
    app = make_app()
    await store.create_application(app)
    ordered, plain = _ordered(app), make_endpoint(app)
    for ep in (ordered, plain):
        await store.create_endpoint(ep)
    msgs = [make_message(app) for _ in range(3)]
    await store.publish(msgs, utcnow())
    now = utcnow()
    claimed = await store.claim_due(100, now, now + timedelta(seconds=30), "w1")
    assert [c.message.id for c in claimed if c.endpoint.id == ordered.id] == [msgs[0].id]
    assert sorted(c.message.id for c in claimed if c.endpoint.id == plain.id) == sorted(
        m.id for m in msgs
    )


async def test_an_ordered_endpoints_deliveries_are_never_handed_over(store: Store) -> None:
    """A publish hands an unordered endpoint's deliveries to the local worker and writes the
    ordered endpoint's pending, for a claim to take each when it heads its sequence."""
    handoff = RecordingHandoff(slots=10)
    store.attach_handoff(handoff)
    app = make_app()
    await store.create_application(app)
    ordered, plain = _ordered(app), make_endpoint(app)
    for ep in (ordered, plain):
        await store.create_endpoint(ep)
    msgs = [make_message(app) for _ in range(2)]
    await store.publish(msgs, utcnow())
    assert {c.endpoint.id for c in handoff.claimed} == {plain.id}
    assert handoff.accepted[0][2] == {ordered.id}
    assert await _claim(store) == [msgs[0].id]


async def test_messages_published_before_the_endpoint_was_ordered_are_in_no_sequence(
    store: Store,
) -> None:
    """Ordering applies from the moment an endpoint is ordered: what was written before is
    claimed as it always was, and does not hold back what comes after."""
    app = make_app()
    await store.create_application(app)
    plain = make_endpoint(app)
    await store.create_endpoint(plain)
    before = [make_message(app) for _ in range(2)]
    await store.publish(before, utcnow())
    stored = await store.get_endpoint(app.id, plain.id)
    assert stored is not None
    ordered = replace(stored, policy=EndpointPolicy(ordering=OrderingPolicy()))
    assert await store.update_endpoint(ordered) is not None
    after = [make_message(app) for _ in range(2)]
    await store.publish(after, utcnow())
    assert await _claim(store) == sorted([before[0].id, before[1].id, after[0].id])


async def test_the_ordering_key_is_stored_with_the_message(store: Store) -> None:
    """A message's ordering key reads back as written, and a message without one has none."""
    _, msgs = await _setup(store, ["order-42", None])
    keyed = await store.get_message(msgs[0].app_id, msgs[0].id)
    plain = await store.get_message(msgs[1].app_id, msgs[1].id)
    assert keyed is not None and keyed.ordering_key == "order-42"
    assert plain is not None and plain.ordering_key is None
