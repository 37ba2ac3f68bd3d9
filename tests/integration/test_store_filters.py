"""Store filters the Svix SDK sends: tags, delivery status, stats ranges, applications without
endpoints. Each is honoured by every backend (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hookline.domain.models import Application, MessageStatus
from hookline.storage.base import AttemptFilter, ListQuery, MessageFilter, Store
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.test_store_contract import _outcome


async def _app_with_endpoint(store: Store) -> tuple[Application, str]:
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    return app, endpoint.id


async def test_messages_and_attempts_filter_by_tag(store: Store) -> None:
    """``tag`` keeps only messages carrying it, and only attempts of such messages."""
    app, _ = await _app_with_endpoint(store)
    tagged = replace(make_message(app), tags=("vip", "eu"))
    plain = make_message(app)
    await store.publish([tagged, plain], utcnow())
    found = await store.list_messages(app.id, ListQuery(), MessageFilter(tag="vip"))
    assert [m.id for m in found.data] == [tagged.id]
    for claimed in await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1"):
        await store.complete([_outcome(claimed, MessageStatus.SUCCESS, 200, None)])
    attempts = await store.list_attempts(app.id, ListQuery(), AttemptFilter(tag="eu"), None)
    assert [a.msg_id for a in attempts.data] == [tagged.id]
    none = await store.list_attempts(app.id, ListQuery(), AttemptFilter(tag="nope"), None)
    assert none.data == []


async def test_attempted_messages_filter_by_delivery_status(store: Store) -> None:
    """``status`` keeps the messages whose delivery to this endpoint is in that state."""
    app, endpoint_id = await _app_with_endpoint(store)
    first, second = make_message(app), make_message(app)
    await store.publish([first, second], utcnow())
    claimed = await store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    by_msg = {c.message.id: c for c in claimed}
    await store.complete(
        [
            _outcome(by_msg[first.id], MessageStatus.SUCCESS, 200, None),
            _outcome(by_msg[second.id], MessageStatus.FAIL, 500, None),
        ]
    )
    failed = await store.list_attempted_messages(
        app.id, endpoint_id, ListQuery(), MessageFilter(), MessageStatus.FAIL
    )
    assert [m.id for m, _ in failed.data] == [second.id]
    every = await store.list_attempted_messages(app.id, endpoint_id, ListQuery(), MessageFilter())
    assert {m.id for m, _ in every.data} == {first.id, second.id}


async def test_endpoint_stats_count_only_messages_created_in_the_range(store: Store) -> None:
    """``since`` is inclusive and ``until`` exclusive, on the message's creation time."""
    app, endpoint_id = await _app_with_endpoint(store)
    now = utcnow()
    old = replace(make_message(app), timestamp=now - timedelta(days=2))
    new = replace(make_message(app), timestamp=now)
    await store.publish([old, new], now)
    recent = await store.endpoint_stats(app.id, endpoint_id, since=now - timedelta(days=1))
    earlier = await store.endpoint_stats(app.id, endpoint_id, until=now - timedelta(days=1))
    exact = await store.endpoint_stats(app.id, endpoint_id, since=new.timestamp, until=now)
    assert (recent.pending, earlier.pending, exact.pending) == (1, 1, 0)
    assert (await store.endpoint_stats(app.id, endpoint_id)).pending == 2


async def test_applications_without_endpoints_can_be_left_out(store: Store) -> None:
    """``exclude_without_endpoints`` lists only applications that have an endpoint."""
    with_endpoint, _ = await _app_with_endpoint(store)
    bare = make_app()
    await store.create_application(bare)
    every = await store.list_applications(ListQuery())
    some = await store.list_applications(ListQuery(), exclude_without_endpoints=True)
    assert {a.id for a in every.data} == {with_endpoint.id, bare.id}
    assert [a.id for a in some.data] == [with_endpoint.id]
