"""The routing loop of a publish (storage/group_commit.route_batch), which both batch
writers run: per request, each message to the endpoints of its application that accept it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from hookline.domain.models import Message
from hookline.domain.policy import EndpointPolicy, OrderingPolicy
from hookline.storage.group_commit import PendingPublish, route_batch
from hookline.storage.handoff import DeliveryRows
from tests.conftest import make_app, make_endpoint, make_message


def _request(
    loop: asyncio.AbstractEventLoop, messages: Sequence[Message], only: str | None = None
) -> PendingPublish:
    return PendingPublish(messages, 1_000, only, None, loop.create_future())


def test_each_message_goes_to_the_endpoints_of_its_application_that_accept_it() -> None:
    """Filters and ``only_endpoint`` decide the targets; rows are pending with no offer."""
    acme, other = make_app(), make_app()
    users = make_endpoint(acme, event_types=("user.created",))
    everything = make_endpoint(acme)
    elsewhere = make_endpoint(other)
    created = make_message(acme, "user.created")
    paid = make_message(acme, "invoice.paid")
    theirs = make_message(other, "user.created")
    loop = asyncio.new_event_loop()
    try:
        batch = [
            _request(loop, [created, paid, theirs]),
            _request(loop, [created], only=everything.id),
        ]
        by_app = {acme.id: [users, everything], other.id: [elsewhere]}
        routed, pending, leased, ordered = route_batch(batch, by_app, DeliveryRows(None))
    finally:
        loop.close()
    assert routed == [
        [[users.id, everything.id], [everything.id], [elsewhere.id]],
        [[everything.id]],
    ]
    assert [(row["msg_id"], row["endpoint_id"], row["now"]) for row in pending] == [
        (created.id, users.id, 1_000),
        (created.id, everything.id, 1_000),
        (paid.id, everything.id, 1_000),
        (theirs.id, elsewhere.id, 1_000),
        (created.id, everything.id, 1_000),
    ]
    assert leased == [] and ordered == []
    assert len({row["id"] for row in pending}) == len(pending)


def test_an_ordered_endpoints_rows_carry_their_sequence_and_are_never_leased() -> None:
    """A delivery to an ordered endpoint is written pending with the message's ordering key
    ('' for none), even with room offered; an unordered endpoint's has no sequence."""
    app = make_app()
    ordered = replace(make_endpoint(app), policy=EndpointPolicy(ordering=OrderingPolicy()))
    plain = make_endpoint(app)
    keyed = replace(make_message(app), ordering_key="k1")
    unkeyed = make_message(app)
    loop = asyncio.new_event_loop()
    try:
        batch = [_request(loop, [keyed, unkeyed])]
        _, pending, leased, rows = route_batch(
            batch, {app.id: [ordered, plain]}, DeliveryRows(None)
        )
    finally:
        loop.close()
    assert [(row["msg_id"], row["ordering_key"]) for row in rows] == [
        (keyed.id, "k1"),
        (unkeyed.id, ""),
    ]
    assert all(row["endpoint_id"] == ordered.id for row in rows)
    assert [row["endpoint_id"] for row in pending] == [plain.id, plain.id]
    assert all("ordering_key" not in row for row in pending) and leased == []
