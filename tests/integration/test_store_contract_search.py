"""The storage contract for the deliveries search (``Store.search_deliveries``), on every
backend.

Part of the store contract (``test_store_contract.py``), kept in its own file: the page
across applications, newest message first by a keyset cursor; each filter; payload words,
``path=value`` and header terms; both plans of payload terms (few matches, read by key, and
many, tested row by row) agreeing; and the word index following the payload column out of
the database on expunge, payload expiry and retention.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hookline.domain import ids
from hookline.domain.models import Application, Endpoint, Message, MessageStatus
from hookline.domain.search import DeliveryRow, DeliverySearch, parse_terms
from hookline.storage import search as delivery_search
from hookline.storage.base import Store
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome, utcnow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass
class World:
    """Two applications: ``a`` with endpoints ``a1`` and ``a2``, ``b`` with ``b1``; their
    messages by name, published oldest first."""

    a: Application
    b: Application
    a1: Endpoint
    a2: Endpoint
    b1: Endpoint
    msgs: dict[str, Message]


def _message(app: Application, event_type: str, payload: bytes, seconds_ago: int) -> Message:
    when = utcnow() - timedelta(seconds=seconds_ago)
    msg_id = ids.first_id_at(ids.MESSAGE, int(when.timestamp() * 1000))
    return replace(make_message(app, event_type, payload=payload), id=msg_id, timestamp=when)


async def _world(store: Store) -> World:
    a, b = make_app(uid="shop-a"), make_app(uid="shop-b")
    for app in (a, b):
        await store.create_application(app)
    a1, a2, b1 = make_endpoint(a, uid="orders"), make_endpoint(a), make_endpoint(b)
    for endpoint in (a1, a2, b1):
        await store.create_endpoint(endpoint)
    msgs = {
        "order": _message(
            a,
            "order.created",
            b'{"data":{"customer":{"id":"cus_123","email":"Ann@Example.com"},"total":42,'
            b'"items":[{"sku":"SKU-9"}]},"note":"Blue Widget ordered"}',
            50,
        ),
        "order_other": _message(
            a, "order.created", b'{"data":{"customer":{"id":"cus_1234"},"total":7}}', 40
        ),
        "refund": _message(
            a, "order.refunded", b'{"data":{"customer":{"id":"cus_123"},"total":42}}', 30
        ),
        "user": _message(b, "user.created", b'{"data":{"name":"Blue Widget Inc"}}', 20),
    }
    msgs["traced"] = replace(
        _message(b, "user.deleted", b'{"data":{"name":"gone"}}', 10),
        trace_context=f"00-{TRACE_ID}-00f067aa0ba902b7-01",
    )
    await store.publish(list(msgs.values()), utcnow())
    return World(a, b, a1, a2, b1, msgs)


async def _finish(store: Store, codes: dict[tuple[str, str], int]) -> None:
    """Claim every due delivery and record one attempt ending it with the code given for
    its (message, endpoint), 200 where none is given."""
    now = utcnow()
    claimed = await store.claim_due(1000, now, now + timedelta(seconds=30), "w1")
    await store.complete(
        [recorded_outcome(c, codes.get((c.message.id, c.endpoint.id), 200), now) for c in claimed]
    )


def _pairs(rows: list[DeliveryRow]) -> list[tuple[str, str]]:
    return [(r.msg_id, r.endpoint_id) for r in rows]


async def _found(store: Store, **filters: object) -> list[tuple[str, str]]:
    q = filters.pop("q", None)
    search = DeliverySearch(terms=parse_terms(q if isinstance(q, str) else None), limit=250)
    page = await store.search_deliveries(replace(search, **filters))  # type: ignore[arg-type]
    return _pairs(page.data)


def _expected(world: World, *names: str) -> list[tuple[str, str]]:
    """The (message, endpoint) pairs of the named messages, as the search orders them."""
    found: list[tuple[str, str]] = []
    for name in names:
        msg = world.msgs[name]
        endpoints = (world.a1, world.a2) if msg.app_id == world.a.id else (world.b1,)
        found += [(msg.id, e.id) for e in endpoints]
    return sorted(found, reverse=True)


async def test_lists_every_applications_deliveries_newest_first_with_their_messages_facts(
    store: Store,
) -> None:
    """Without filters the page holds each (message, endpoint) once, newest message first,
    with the message's event type and time and the latest attempt's status code."""
    world = await _world(store)
    order = world.msgs["order"]
    await _finish(store, {(order.id, world.a1.id): 503})
    page = await store.search_deliveries(DeliverySearch(limit=250))
    assert _pairs(page.data) == _expected(world, *world.msgs)
    assert page.done
    row = next(r for r in page.data if (r.msg_id, r.endpoint_id) == (order.id, world.a1.id))
    assert (row.app_id, row.event_type, row.status) == (
        world.a.id,
        "order.created",
        MessageStatus.FAIL,
    )
    assert (row.attempt_count, row.last_status_code) == (1, 503)
    assert row.timestamp == order.timestamp.replace(
        microsecond=order.timestamp.microsecond // 1000 * 1000
    )


async def test_pages_by_cursor_without_gaps_or_repeats(store: Store) -> None:
    """Pages of two follow each other from the iterator, newest first, and the last says done."""
    world = await _world(store)
    seen: list[tuple[str, str]] = []
    search = DeliverySearch(limit=2)
    while True:
        page = await store.search_deliveries(search)
        seen += _pairs(page.data)
        if page.done:
            break
        assert page.iterator is not None
        search = replace(search, cursor=page.data[-1].cursor)
    assert seen == _expected(world, *world.msgs)


async def test_filters_narrow_by_application_endpoint_event_type_and_status(store: Store) -> None:
    """Each filter keeps only the deliveries it names."""
    world = await _world(store)
    refund = world.msgs["refund"]
    await _finish(store, {(refund.id, world.a2.id): 500})
    assert await _found(store, app_id=world.b.id) == _expected(world, "user", "traced")
    assert await _found(store, endpoint_id=world.a2.id) == [
        (world.msgs[n].id, world.a2.id) for n in ("refund", "order_other", "order")
    ]
    assert await _found(store, event_types=("order.refunded", "user.created")) == _expected(
        world, "refund", "user"
    )
    assert await _found(store, status=MessageStatus.FAIL) == [(refund.id, world.a2.id)]
    assert await _found(store, app_id=world.b.id, status=MessageStatus.FAIL) == []


async def test_filters_by_an_attempts_status_code_or_its_class(store: Store) -> None:
    """A status code keeps deliveries with an attempt that got it; a class, any of its codes;
    a code outside the class given with it, nothing."""
    world = await _world(store)
    order, user = world.msgs["order"], world.msgs["user"]
    await _finish(store, {(order.id, world.a1.id): 503, (user.id, world.b1.id): 0})
    assert await _found(store, status_code=503) == [(order.id, world.a1.id)]
    assert await _found(store, status_code_class=500) == [(order.id, world.a1.id)]
    assert await _found(store, status_code_class=0) == [(user.id, world.b1.id)]
    assert await _found(store, status_code=503, status_code_class=400) == []
    assert len(await _found(store, status_code=200)) == 8 - 2


async def test_filters_by_the_messages_time(store: Store) -> None:
    """before and after bound the message's creation time, also when they are earlier than
    any id can spell."""
    world = await _world(store)
    refund = world.msgs["refund"]
    assert await _found(
        store,
        after=refund.timestamp - timedelta(seconds=1),
        before=refund.timestamp + timedelta(seconds=1),
    ) == _expected(world, "refund")
    assert await _found(store, before=world.msgs["order"].timestamp) == []
    long_ago = datetime(1971, 1, 1, tzinfo=UTC)
    assert await _found(store, before=long_ago) == []
    assert await _found(store, after=long_ago) == _expected(world, *world.msgs)


@pytest.mark.parametrize(
    ("q", "names"),
    [
        ("cus_123", ("order", "refund")),
        ("CUS_1234", ("order_other",)),
        ('"blue widget"', ("order", "user")),
        ("blue widget ordered", ("order",)),
        ("ann@example.com", ("order",)),
        ("example.com", ("order",)),
        ("widget-inc", ()),
        ("nowhere", ()),
        ("data.customer.id=cus_123", ("order", "refund")),
        ("data.total=42 cus_123", ("order", "refund")),
        ("data.items.0.sku=SKU-9", ("order",)),
        ("data.customer.id=cus_12", ()),
        (f"header.webhook-id={'{order}'}", ("order",)),
        (f"header.traceparent={TRACE_ID}", ("traced",)),
        (f"header.traceparent=00-{TRACE_ID}-00f067aa0ba902b7-01", ("traced",)),
    ],
)
@pytest.mark.parametrize("plan", ["few", "many", "many in small windows"])
async def test_payload_and_header_terms_find_the_messages_that_hold_them(
    store: Store, monkeypatch: pytest.MonkeyPatch, q: str, names: tuple[str, ...], plan: str
) -> None:
    """Words match whole runs of words of the payload text, case-insensitively; path=value
    compares the JSON value at the path; header terms match the message id and the trace
    id. Every plan of payload terms gives the same answer, SQLite's windows too when each
    holds one message."""
    # "few": a first window of one message leaves the page short, and the probe finds few;
    # "many": the probe finds more than its limit, and windows gather the page.
    if plan != "few":
        monkeypatch.setattr(delivery_search, "PROBE_LIMIT", 0)
    if plan != "many":
        monkeypatch.setattr(delivery_search, "FIRST_WINDOW", 1)
    world = await _world(store)
    q = q.replace("{order}", world.msgs["order"].id)
    assert await _found(store, q=q) == _expected(world, *names)


@pytest.mark.parametrize("window", [1, 2, 4096])
async def test_pages_of_the_many_matches_plan_follow_each_other(
    store: Store, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """With the many-matches plan, pages of one walk every match once, newest first,
    whatever the windows' size (SQLite) and wherever a page ends inside a message."""
    monkeypatch.setattr(delivery_search, "PROBE_LIMIT", 0)
    monkeypatch.setattr(delivery_search, "FIRST_WINDOW", window)
    world = await _world(store)
    seen: list[tuple[str, str]] = []
    search = DeliverySearch(terms=parse_terms("data"), limit=3)
    while True:
        page = await store.search_deliveries(search)
        seen += _pairs(page.data)
        if page.done:
            break
        search = replace(search, cursor=page.data[-1].cursor)
    assert seen == _expected(world, *world.msgs)


async def test_terms_and_filters_hold_together(store: Store) -> None:
    """A payload word with an application filter keeps only that application's matches."""
    world = await _world(store)
    assert await _found(store, q="blue", app_id=world.b.id) == _expected(world, "user")
    assert await _found(store, q="blue", endpoint_id=world.a2.id) == [
        (world.msgs["order"].id, world.a2.id)
    ]


async def test_an_expunged_or_expired_payload_is_no_longer_found(store: Store) -> None:
    """Expunging a payload (and its expiry) takes its words out of the search; the delivery
    is still listed without payload terms."""
    world = await _world(store)
    order = world.msgs["order"]
    await store.expunge_message_content(world.a.id, order.id)
    assert await _found(store, q="cus_123") == _expected(world, "refund")
    assert await _found(store, q="data.items.0.sku=SKU-9") == []
    assert (order.id, world.a1.id) in await _found(store)


async def test_retention_removes_a_pruned_messages_words(store: Store) -> None:
    """A message pruned by retention is no longer found, and a new message of the same
    words is found alone."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    old = _message(app, "order.created", b'{"code":"zebra42"}', 91 * 24 * 3600)
    await store.publish([old], utcnow())
    await _finish(store, {})
    batch = await store.prune_batch(utcnow() - timedelta(days=90), "", 100)
    assert batch.messages == 1
    assert await _found(store, q="zebra42") == []
    new = _message(app, "order.created", b'{"code":"zebra42"}', 1)
    await store.publish([new], utcnow())
    assert await _found(store, q="zebra42") == [(new.id, endpoint.id)]


async def test_sqlite_compact_takes_an_expunged_payloads_words_out_of_the_file(
    tmp_path: Path,
) -> None:
    """FTS5 keeps a deleted row's words in older index segments until they merge; compact
    (`hookline prune --vacuum`) merges them, so an expunged payload's words leave the index's
    pages, not only its answers."""
    store = SqliteStore(str(tmp_path / "search.db"))
    await store.open()
    try:
        app = make_app()
        await store.create_application(app)
        await store.create_endpoint(make_endpoint(app))
        secret, other = make_message(app, payload=b'{"code":"qqqzebra"}'), make_message(app)
        await store.publish([secret, other], utcnow())
        await store.expunge_message_content(app.id, secret.id)
        assert await _found(store, q="qqqzebra") == []
        assert await store.compact() is True
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "search.db")
    try:
        blocks = [bytes(b) for (b,) in conn.execute("SELECT block FROM message_search_data")]
    finally:
        conn.close()
    assert blocks and not any(b"qqqzebra" in block for block in blocks)
