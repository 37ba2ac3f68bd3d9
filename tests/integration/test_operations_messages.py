"""Message and attempt operations on every backend: publish, send-example, expunge, resend."""

from __future__ import annotations

import orjson
import pytest

from hookline.domain.errors import InvalidRequest, NotFound
from hookline.domain.models import Application, Endpoint, Message, MessageStatus
from hookline.operations import applications, attempts, endpoints, event_types, messages
from hookline.operations.applications import NewApplication
from hookline.operations.endpoints import EndpointFields
from hookline.operations.event_types import EventTypeFields
from hookline.operations.messages import NewMessage
from hookline.operations.principal import SYSTEM, Principal
from hookline.storage.base import (
    AttemptFilter,
    IdempotencyCompletion,
    ListQuery,
    MessageFilter,
)
from tests.conftest import utcnow
from tests.integration.conftest import Ops, fail_next_delivery

EXAMPLE_SCHEMAS = {"1": {"type": "object", "examples": [{"hello": "world"}]}}


@pytest.fixture
async def app(ops: Ops) -> Application:
    """An application ``acme`` with event type a.b (which has a schema example)."""
    created, _ = await applications.create(ops.ops, SYSTEM, NewApplication("Acme", uid="acme"))
    fields = EventTypeFields("a.b", schemas=EXAMPLE_SCHEMAS)
    await event_types.create(ops.ops, SYSTEM, "a.b", fields)
    return created


async def _endpoint(ops: Ops, uid: str, *filters: str) -> Endpoint:
    fields = EndpointFields(url=f"https://example.com/{uid}", uid=uid, event_types=filters or None)
    return await endpoints.create(ops.ops, SYSTEM, "acme", fields)


async def _destinations(ops: Ops, msg: Message) -> list[str]:
    page = await attempts.attempted_destinations(ops.ops, SYSTEM, "acme", msg.id, ListQuery())
    return [endpoint.id for endpoint, _ in page.data]


async def test_publish_commits_the_message_with_a_delivery_per_matching_endpoint(
    ops: Ops, app: Application
) -> None:
    """The returned message is stored, by id and eventId, and routed by the endpoints' filters."""
    everything = await _endpoint(ops, "all")
    await _endpoint(ops, "only-a", "a.b")
    msg = await messages.publish(
        ops.ops, SYSTEM, "acme", NewMessage("c.d", {"n": 1}, event_id="evt-1", channels=["eu"])
    )
    assert await messages.get(ops.ops, SYSTEM, "acme", msg.id) == msg
    assert await messages.get(ops.ops, SYSTEM, "acme", "evt-1") == msg
    assert orjson.loads(msg.payload or b"") == {"n": 1}
    assert await _destinations(ops, msg) == [everything.id]


async def test_publish_records_the_idempotent_response_in_the_same_transaction(
    ops: Ops, app: Application
) -> None:
    """The completion renders from the final message and is stored with it."""
    await ops.store.idempotency_begin("admin", "k-1", "hash", utcnow())
    rendered: list[str] = []

    def completion(msg: Message) -> IdempotencyCompletion:
        rendered.append(msg.id)
        return IdempotencyCompletion("admin", "k-1", 202, msg.id.encode())

    msg = await messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a.b", {}), completion)
    assert rendered == [msg.id]
    earlier = await ops.store.idempotency_begin("admin", "k-1", "hash", utcnow())
    assert earlier is not None and earlier.completed
    assert (earlier.status, earlier.body) == (202, msg.id.encode())


async def test_publish_creates_an_inline_application_for_admins_only(
    ops: Ops, app: Application
) -> None:
    """A publish to a missing application creates the inline one under the path uid, for an
    admin; a scoped token gets NotFound and nothing is created."""
    scoped = Principal(token_id="tok_p", app_id=app.id)
    inline = NewMessage("a.b", {}, application=NewApplication("New Co"))
    with pytest.raises(NotFound):
        await messages.publish(ops.ops, scoped, "new-co", inline)
    assert await ops.store.get_application("new-co") is None
    msg = await messages.publish(ops.ops, SYSTEM, "new-co", inline)
    created = await ops.store.get_application("new-co")
    assert created is not None and created.name == "New Co" and msg.app_id == created.id


async def test_publish_to_another_tenant_is_not_found_and_stores_nothing(
    ops: Ops, app: Application
) -> None:
    """A scoped token cannot publish into another application."""
    other, _ = await applications.create(ops.ops, SYSTEM, NewApplication("O", uid="other"))
    scoped = Principal(token_id="tok_p", app_id=other.id)
    with pytest.raises(NotFound):
        await messages.publish(ops.ops, scoped, "acme", NewMessage("a.b", {}))
    page = await messages.list_messages(ops.ops, SYSTEM, "acme", ListQuery(), MessageFilter())
    assert page.data == []


async def test_send_example_goes_to_the_chosen_endpoint_only(ops: Ops, app: Application) -> None:
    """send-example publishes the schema example to one endpoint, whatever the others match."""
    target = await _endpoint(ops, "target")
    await _endpoint(ops, "bystander")
    msg = await messages.send_example(ops.ops, SYSTEM, "acme", "target", "a.b")
    assert orjson.loads(msg.payload or b"") == {"hello": "world"}
    assert await _destinations(ops, msg) == [target.id]
    with pytest.raises(InvalidRequest) as refused:
        await messages.send_example(ops.ops, SYSTEM, "acme", "target", "no.such")
    assert refused.value.loc == ("body", "eventType")


async def test_expunge_removes_the_payload_and_keeps_the_message(
    ops: Ops, app: Application
) -> None:
    """After expunge the message is still listed, with no payload."""
    msg = await messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a.b", {"secret": 1}))
    await messages.expunge_content(ops.ops, SYSTEM, "acme", msg.id)
    stored = await messages.get(ops.ops, SYSTEM, "acme", msg.id)
    assert stored.payload is None and stored.id == msg.id


async def test_resend_needs_a_delivery_and_wakes_the_worker(ops: Ops, app: Application) -> None:
    """Resending a pair the message never targeted is NotFound and wakes nothing; a real
    pair is queued now as a manual attempt."""
    routed = await _endpoint(ops, "only-a", "a.b")
    await event_types.create(ops.ops, SYSTEM, "c.d", EventTypeFields("c.d"))
    other = await _endpoint(ops, "only-c", "c.d")
    msg = await messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a.b", {}))
    with pytest.raises(NotFound):
        await attempts.resend(ops.ops, SYSTEM, "acme", msg.id, other.id)
    assert ops.wakes == []
    await attempts.resend(ops.ops, SYSTEM, "acme", msg.id, "only-a")
    assert ops.wakes == [1]
    delivery = await ops.store.get_delivery(msg.id, routed.id)
    assert delivery is not None and delivery.status is MessageStatus.PENDING


async def test_attempt_lists_resolve_endpoint_uids_and_attempts_belong_to_their_message(
    ops: Ops, app: Application
) -> None:
    """A message's attempts filter by endpoint uid; an attempt is found only under its own
    message; the endpoint's views list the message with its delivery state."""
    await _endpoint(ops, "ep")
    msg = await messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a.b", {}))
    other = await messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a.b", {}))
    attempt = await fail_next_delivery(ops.store)
    assert attempt.msg_id == msg.id

    async def by_endpoint(key: str) -> list[str]:
        page = await attempts.list_by_message(
            ops.ops, SYSTEM, "acme", msg.id, ListQuery(), AttemptFilter(endpoint_id=key)
        )
        return [a.id for a in page.data]

    assert await by_endpoint("ep") == [attempt.id]
    assert await by_endpoint("nope") == []
    assert await attempts.get(ops.ops, SYSTEM, "acme", msg.id, attempt.id) == attempt
    with pytest.raises(NotFound):
        await attempts.get(ops.ops, SYSTEM, "acme", other.id, attempt.id)
    listed = await attempts.list_by_endpoint(
        ops.ops, SYSTEM, "acme", "ep", ListQuery(), AttemptFilter()
    )
    assert [a.id for a in listed.data] == [attempt.id]
    sent = await attempts.attempted_messages(
        ops.ops, SYSTEM, "acme", "ep", ListQuery(), MessageFilter()
    )
    states = {m.id: d.status for m, d in sent.data}
    assert states == {msg.id: MessageStatus.FAIL, other.id: MessageStatus.PENDING}
